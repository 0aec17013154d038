/* Model-based fuzzing: op sequences, their text form, the shrinker and the C reproducer writer. */
#ifndef MMSTORM_FUZZ_H
#define MMSTORM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * A sequence is a list of ops over one window of nslots pages (anonymous, private, 4 KiB
 * pages, the first npages mapped R/W by process 0), plus a small window of MS_FZ_PFN_SLOTS
 * slots where /dev/mem pages get mapped. Processes are named by the reference model's ids:
 * 0 is the first, FORK gives the next free id. The text form is one op a line:
 *
 *   window 16 8
 *   write p0 0+4
 *   uffd-reg p0 0+4 remap      uffd-reg p0 0+4        (with / without UFFD_FEATURE_EVENT_REMAP)
 *   uffd-wp p0 0+4 on          uffd-wp p0 0+4 off
 *   mremap p0 0+4 -> 8+4       mremap p0 0+4 -> 0+2   (move / resize in place)
 *   mprotect p0 0+2 r          (r, rw or none)
 *   fork p0 nth=3              (fail-nth: the 3rd fault site of the fork fails)
 *   pfn-map p0 0+2             pfn-munmap p0 1+1   pfn-mremap p0 0+2 -> 0+1   pfn-mprotect p0 1+1 r
 *   pin p0 0+2                 (vmsplice: a FOLL_GET reference)   unpin p0 pin=0
 *   pin-uring p0 0+2           (io_uring fixed buffer: FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM)
 *   pin-gup p0 0+2 r           (gup_test long-term pin, R/O; rw: FOLL_WRITE too)
 *   collapse p0                (MADV_COLLAPSE of the window's PMD; only in a THP window)
 *   pin-write p0 0+1 pin=0      (fresh fills into pin pages 0.., through a pin-uring pin)
 *   file shmem                 (after "window": a shared-file window of MS_FZ_FILE_SLOTS
 *                               slots; "file hugetlb": one 2 MiB huge page a slot)
 *   file-write p0 0+2          (fresh fills through the main MAP_SHARED mapping: PTEs there)
 *   file-fill p0 0+2           (fresh fills into the page cache through an alias: no PTE)
 *   file-zap p0 0+2            (MADV_DONTNEED of the main mapping)   file-punch p0 0+2
 *   uffd-minor p0 0+4          (UFFDIO_REGISTER_MODE_MINOR)   continue p0 0+2 (UFFDIO_CONTINUE)
 *
 * "window 16 8 thp" makes the window the start of one 2 MiB-aligned, MADV_HUGEPAGE, R/W
 * anonymous mapping of a whole PMD (a THP needs one VMA), so the first write faults in a THP
 * and partial mprotect/munmap/mremap/dontneed split it. Slots past npages are mapped in the
 * kernel but unmapped to the model: no op touches them until a move or munmap replaces them.
 *
 * An op the model says cannot happen in its context (a dead process, an unmapped range, a
 * range registered with another userfaultfd) is skipped, not run: that keeps every subsequence
 * runnable, which is what the shrinker needs.
 */
#define MS_FZ_MAX_OPS 256
#define MS_FZ_MAX_SLOTS 64
#define MS_FZ_PFN_SLOTS 4
#define MS_FZ_MAX_PROCS 6
#define MS_FZ_FILE_SLOTS 4

/* The file window of a sequence: none, shmem (4 KiB slots) or hugetlb (2 MiB slots). */
enum { MS_FZ_FILE_NONE, MS_FZ_FILE_SHMEM, MS_FZ_FILE_HUGETLB };

enum ms_fz_kind {
	MS_FZ_WRITE, MS_FZ_FORK, MS_FZ_EXIT, MS_FZ_DONTNEED, MS_FZ_FREE, MS_FZ_COLD,
	MS_FZ_PAGEOUT, MS_FZ_MREMAP, MS_FZ_MUNMAP, MS_FZ_MPROTECT, MS_FZ_MIGRATE,
	MS_FZ_UFFD_REG, MS_FZ_UFFD_WP,
	MS_FZ_PFN_MAP, MS_FZ_PFN_MUNMAP, MS_FZ_PFN_MREMAP, MS_FZ_PFN_MPROTECT,
	MS_FZ_PIN, MS_FZ_UNPIN, MS_FZ_PIN_URING, MS_FZ_PIN_GUP, MS_FZ_COLLAPSE,
	MS_FZ_PIN_WRITE,
	MS_FZ_FILE_WRITE, MS_FZ_FILE_FILL, MS_FZ_FILE_ZAP, MS_FZ_FILE_PUNCH, MS_FZ_UFFD_MINOR,
	MS_FZ_CONTINUE,
	MS_FZ_KIND_COUNT
};

/* flags */
#define MS_FZ_F_REMAP	0x1	/* UFFD_REG: the context has UFFD_FEATURE_EVENT_REMAP */
#define MS_FZ_F_ON	0x1	/* UFFD_WP: protect (else unprotect) */
#define MS_FZ_F_READ	0x1	/* MPROTECT, PFN_MPROTECT */
#define MS_FZ_F_WRITE	0x2

/* PIN, PIN_URING, PIN_GUP: the op takes a reference that UNPIN reads back. */
static inline bool ms_fz_is_pin(unsigned kind)
{
	return kind == MS_FZ_PIN || kind == MS_FZ_PIN_URING || kind == MS_FZ_PIN_GUP;
}

/* The ops of the shared-file window (its own slots, 0 .. MS_FZ_FILE_SLOTS - 1). */
static inline bool ms_fz_is_file(unsigned kind)
{
	return kind >= MS_FZ_FILE_WRITE && kind <= MS_FZ_CONTINUE;
}

/*
 * The ops that take nth=: their failure paths are modelled (ms_fz_model_fail()). Left out,
 * because no fault site fail-nth can hit lies on their path in 6.12 (docs/fuzz.md): write,
 * exit, dontneed, free, cold, pageout (madvise returns 0 for an anonymous VMA and allocates
 * only order-0 pages, below fail_page_alloc's min-order) and pin (vmsplice: the iovec is read
 * with unsafe_get_user(), the pages come from GUP without allocations of their own). The
 * shared-file window's ops take none yet: their failure states are not modelled.
 */
static inline bool ms_fz_nth_kind(unsigned kind)
{
	switch (kind) {
	case MS_FZ_FORK: case MS_FZ_MPROTECT: case MS_FZ_MUNMAP: case MS_FZ_MREMAP:
	case MS_FZ_COLLAPSE: case MS_FZ_PIN_URING: case MS_FZ_PIN_GUP:
	case MS_FZ_MIGRATE: case MS_FZ_UFFD_REG: case MS_FZ_UFFD_WP: case MS_FZ_UNPIN:
	case MS_FZ_PIN_WRITE: case MS_FZ_PFN_MAP: case MS_FZ_PFN_MUNMAP: case MS_FZ_PFN_MREMAP:
	case MS_FZ_PFN_MPROTECT:
		return true;
	default:
		return false;
	}
}

struct ms_fz_op {
	uint8_t kind;		/* enum ms_fz_kind */
	uint8_t proc;
	uint8_t flags;
	uint8_t pin;		/* UNPIN, PIN_WRITE: the model's pin id */
	uint16_t nth;		/* > 0: run the op with fail-nth = nth (ms_fz_nth_kind()) */
	uint16_t first, n;
	uint16_t to, n2;	/* MREMAP, PFN_MREMAP */
};

struct ms_fz_seq {
	uint16_t nslots, npages;
	bool thp;		/* the window is the start of a THP-able PMD */
	uint8_t file;		/* MS_FZ_FILE_*: the shared-file window's backing */
	uint32_t nops;
	struct ms_fz_op ops[MS_FZ_MAX_OPS];
};

/* What the generator may use (the probe's findings). */
struct ms_fz_gen_cfg {
	uint32_t max_ops;
	uint16_t nslots, npages;
	bool uffd, pfn, nth, migrate;
	bool uring, gup;		/* FOLL_PIN pins: io_uring fixed buffers, gup_test */
	bool thp;			/* a third of the sequences in a THP window */
	/* a quarter in a shared-file window: shmem, hugetlb; MINOR faults on each */
	bool file_shmem, file_hugetlb, minor_shmem, minor_hugetlb;
};

const char *ms_fz_kind_name(unsigned kind);
/* One op as a text line (no newline). */
size_t ms_fz_op_str(const struct ms_fz_op *op, char *buf, size_t len);
/* The whole sequence, "window" line first, one op a line; sep joins lines ("\n" or "; "). */
char *ms_fz_seq_text(const struct ms_fz_seq *s, const char *sep);
/*
 * Parse the text form (lines split at '\n', ';' or '|'; a '#' comment runs to the end of its
 * line). 0, or -EINVAL + reason.
 */
int ms_fz_seq_parse(struct ms_fz_seq *s, const char *text, char *err, size_t errlen);

/* A random sequence (splitmix64 over *rng). */
void ms_fz_generate(struct ms_fz_seq *s, const struct ms_fz_gen_cfg *g, uint64_t *rng);

/*
 * Delta debugging. pred() runs a candidate (in a fresh worker) and says whether it still fails
 * the way the original did. Tries, in rounds until nothing changes or max_tests candidates ran:
 * dropping chunks of ops (halves down to single ops), dropping fail-nth, shrinking ranges,
 * dropping processes (every op of one process and the fork that made it), merging a process
 * into process 0 (its ops done by p0, the first fork gone). *s becomes the
 * smallest failing sequence found. Returns how many candidates ran.
 */
typedef bool (*ms_fz_pred)(const struct ms_fz_seq *s, void *arg);
unsigned ms_fz_shrink(struct ms_fz_seq *s, ms_fz_pred pred, void *arg, unsigned max_tests);

/*
 * The model of a sequence: the reference model (contents, processes) plus what it does not
 * cover: which slots of process 0 are registered with which userfaultfd and their expected
 * uffd-wp bits, and the /dev/mem window of every process. Only process 0 registers
 * userfaultfds (a child forked without UFFD_FEATURE_EVENT_FORK inherits none).
 */
enum { MS_FZ_WP_OFF, MS_FZ_WP_ON, MS_FZ_WP_ANY };
enum { MS_FZ_UFFD_NONE, MS_FZ_UFFD_PLAIN, MS_FZ_UFFD_REMAP };
enum { MS_FZ_PFN_UNMAPPED, MS_FZ_PFN_NONE, MS_FZ_PFN_READ };

struct ms_rm;
struct ms_rm_op;
struct ms_fz_model {
	struct ms_rm *rm;
	uint16_t nslots;
	bool thp;				/* the sequence's window is a THP window */
	uint8_t reg[MS_FZ_MAX_SLOTS];		/* MS_FZ_UFFD_* of process 0's slot */
	uint8_t wp[MS_FZ_MAX_SLOTS];		/* MS_FZ_WP_* */
	uint8_t pfn[MS_FZ_MAX_PROCS][MS_FZ_PFN_SLOTS];	/* MS_FZ_PFN_* */
	uint8_t pin_kind[16];			/* the op kind that took each model pin id */
	/*
	 * The shared-file window (a shared-file model, not the reference model's private
	 * COW): per slot the page cache (0: no page, else the fill it holds), whether process
	 * 0's main mapping has a PTE there, and whether process 0 registered it MINOR.
	 */
	uint8_t file;
	uint64_t fcache[MS_FZ_FILE_SLOTS];
	uint8_t fpte[MS_FZ_FILE_SLOTS];
	uint8_t fminor[MS_FZ_FILE_SLOTS];
	uint32_t fgen;				/* FILE_WRITE, FILE_FILL ops so far */
};

int ms_fz_model_init(struct ms_fz_model *m, const struct ms_fz_seq *s);
void ms_fz_model_fini(struct ms_fz_model *m);
/*
 * Can op run now? 0, or -EINVAL (it is skipped). The id a FORK's child would get in *child.
 * Does not change the model.
 */
int ms_fz_model_check(const struct ms_fz_model *m, const struct ms_fz_op *op, unsigned *child);
/*
 * The op ran (and succeeded): update. rm_op receives the reference model's op (for the fills
 * of a WRITE). 0, or the reference model's error (the op should have been skipped).
 */
int ms_fz_model_apply(struct ms_fz_model *m, const struct ms_fz_op *op, struct ms_rm_op *rm_op);
/*
 * An op run with fail-nth (nth > 0, ms_fz_nth_kind()) failed, and ms_fzrt_partial() saw part
 * of its effect anyway (bit i: slot first + i).
 * If that is a state the op's failure may leave, the model follows it: 0. Else -EINVAL, the
 * model unchanged: the kernel left what the failure does not allow.
 */
int ms_fz_model_fail(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part);
/* The model after ops [0, upto) of s ran as ran[] and part[] say (as for ms_fz_emit_c()). */
int ms_fz_model_replay(struct ms_fz_model *m, const struct ms_fz_seq *s, uint32_t upto,
		       const int8_t *ran, const uint64_t *part);
/*
 * The same, calling see() before each op that ran with the model as it was, the child id a
 * FORK got and whether the op succeeded (false: it failed under fail-nth).
 */
typedef void (*ms_fz_see)(void *arg, const struct ms_fz_model *m, const struct ms_fz_op *op,
			  unsigned child, bool ok);
int ms_fz_model_walk(struct ms_fz_model *m, const struct ms_fz_seq *s, uint32_t upto,
		     const int8_t *ran, const uint64_t *part, ms_fz_see see, void *arg);
/* The state of proc's slot as a small number, for transition coverage (< MS_FZ_STATES). */
#define MS_FZ_STATES 64
unsigned ms_fz_model_state(const struct ms_fz_model *m, const struct ms_fz_op *op);
/* The fill that FILE_WRITE / FILE_FILL op writes to slot first + k when it runs next. */
uint64_t ms_fz_model_file_fill(const struct ms_fz_model *m, const struct ms_fz_op *op, unsigned k);
/*
 * What UFFDIO_CONTINUE of op's range must return now: *ret the ioctl's result (0, or -errno),
 * *mapped what the kernel writes to uffdio_continue.mapped (bytes done, or the error).
 */
void ms_fz_model_continue(const struct ms_fz_model *m, const struct ms_fz_op *op, long *ret,
			  long *mapped);
/* What pin holds now, page by page (fill, or alt where alt_mask has the bit); its length. */
unsigned ms_fz_model_pin_wants(const struct ms_fz_model *m, unsigned pin, uint64_t *fill,
			       uint64_t *alt, uint64_t *alt_mask);


/*
 * x86 PAT tracking of the /dev/mem window as kernels before the pfnmap tracking rework do it
 * (6.12 arch/x86/mm/pat/memtype.c, memtype_interval.c): a pfnmap VMA reserves its physical
 * range when mapped or copied by fork() (track_pfn_remap(), track_pfn_copy()) and frees the
 * range of whatever piece of it is unmapped (untrack_pfn()). memtype_erase() frees an exact
 * match or cuts an entry that ends where the piece ends; any other piece fails ("freeing
 * invalid memtype") and its reservation stays. mremap() moves clear VM_PAT on the whole old
 * VMA (move_vma(): untrack_pfn_clear()), so its remaining pieces free nothing. The model plays
 * a sequence through that and says which entries the list holds afterwards and which frees
 * fail: the kernel's own limits are predicted, anything else is a finding.
 */
#define MS_FZ_PAT_MAX 48

struct ms_fz_pat_range {
	uint64_t start, end;		/* physical bytes, end exclusive */
};

struct ms_fz_pat_vma {
	uint8_t start, end;		/* slots */
	uint8_t phys;			/* the page of /dev/mem at start */
	uint8_t prot;			/* MS_FZ_F_READ or 0 */
	bool pat;			/* VM_PAT: unmapping it frees its range */
};

struct ms_fz_pat {
	struct ms_fz_pat_range node[MS_FZ_PAT_MAX];	/* the list's entries in the window */
	unsigned nnode;
	struct ms_fz_pat_range failed[MS_FZ_PAT_MAX];	/* frees that fail */
	unsigned nfailed;
	struct ms_fz_pat_vma vma[MS_FZ_MAX_PROCS][MS_FZ_PFN_SLOTS];	/* by address */
	uint8_t nvma[MS_FZ_MAX_PROCS];
	bool unsure;		/* a pfn op failed under fail-nth: its splits are not known */
};

/* The physical range the window maps: /dev/mem from 0. */
#define MS_FZ_PAT_WINDOW ((uint64_t)MS_FZ_PFN_SLOTS * 4096)

/*
 * Start from the list's entries in the window (nodes), play s as ran[]/part[] say (NULL: all
 * ran and succeeded), then the worker's teardown (processes 1.. killed in order, then process
 * 0 unmaps its windows). 0 or -errno of the model.
 */
int ms_fz_pat_predict(struct ms_fz_pat *pt, const struct ms_fz_pat_range *nodes, unsigned n,
		      const struct ms_fz_seq *s, const int8_t *ran, const uint64_t *part);
/* Equal as multisets. */
bool ms_fz_pat_same(const struct ms_fz_pat_range *a, unsigned na,
		    const struct ms_fz_pat_range *b, unsigned nb);
/* What want has that got lacks and the other way round, as text. */
void ms_fz_pat_diff(const struct ms_fz_pat_range *want, unsigned nw,
		    const struct ms_fz_pat_range *got, unsigned ng, char *buf, size_t len);
/* Print ranges as "[0x0-0x2000) [0x1000-0x3000)" into buf. */
void ms_fz_pat_str(const struct ms_fz_pat_range *r, unsigned n, char *buf, size_t len);
/*
 * The list's entries that overlap the window, from debugfs (or text when not NULL: the file's
 * contents). The count, or -errno.
 */
int ms_fz_pat_read(const char *text, struct ms_fz_pat_range *r, unsigned max);
/* A "freeing invalid memtype [mem A-B]" line's range; false when line is not one. */
bool ms_fz_pat_log_range(const char *line, struct ms_fz_pat_range *r);

/* The failing condition an emitted program checks after every op. */
struct ms_fz_emit_opts {
	const char *title;		/* first comment line */
	const char *failure;		/* what mmstorm saw (comment) */
};

/*
 * Write a standalone C program (libc and raw syscalls only) that runs the sequence and checks
 * after each op what mmstorm checks: contents against the model's expectations (computed here
 * and embedded), no uffd-wp bit outside a uffd-wp registered VMA, the model's uffd-wp bits,
 * and at the end the PAT memtype list back at its baseline. Exits 1 when a check fails, 0 when
 * all pass, 2 when a run went another way (an injected fault, the VMA layout), 4 when something
 * it needs is missing. ran (NULL: every op the model allows ran and succeeded) is what
 * mmstorm saw of each op: 1 ran, 0 ran and failed (an injected fault), -1 not run; part (NULL:
 * none) what ms_fzrt_partial() saw of a failed one. 0 or -errno.
 */
int ms_fz_emit_c(FILE *f, const struct ms_fz_seq *s, const struct ms_fz_emit_opts *o,
		 const int8_t *ran, const uint64_t *part);

/* `mmstorm fuzz`, argv[0] "fuzz": returns the process exit status (DESIGN.md). */
int ms_cmd_fuzz(int argc, char **argv);

#endif

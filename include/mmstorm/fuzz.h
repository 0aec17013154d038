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

enum ms_fz_kind {
	MS_FZ_WRITE, MS_FZ_FORK, MS_FZ_EXIT, MS_FZ_DONTNEED, MS_FZ_FREE, MS_FZ_COLD,
	MS_FZ_PAGEOUT, MS_FZ_MREMAP, MS_FZ_MUNMAP, MS_FZ_MPROTECT, MS_FZ_MIGRATE,
	MS_FZ_UFFD_REG, MS_FZ_UFFD_WP,
	MS_FZ_PFN_MAP, MS_FZ_PFN_MUNMAP, MS_FZ_PFN_MREMAP, MS_FZ_PFN_MPROTECT,
	MS_FZ_PIN, MS_FZ_UNPIN, MS_FZ_PIN_URING, MS_FZ_PIN_GUP, MS_FZ_COLLAPSE,
	MS_FZ_PIN_WRITE,
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

/*
 * The ops that take nth=: their failure paths are modelled (ms_fz_model_fail()). Left out,
 * because no fault site fail-nth can hit lies on their path in 6.12 (docs/fuzz.md): write,
 * exit, dontneed, free, cold, pageout (madvise returns 0 for an anonymous VMA and allocates
 * only order-0 pages, below fail_page_alloc's min-order) and pin (vmsplice: the iovec is read
 * with unsafe_get_user(), the pages come from GUP without allocations of their own).
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
};

const char *ms_fz_kind_name(unsigned kind);
/* One op as a text line (no newline). */
size_t ms_fz_op_str(const struct ms_fz_op *op, char *buf, size_t len);
/* The whole sequence, "window" line first, one op a line; sep joins lines ("\n" or "; "). */
char *ms_fz_seq_text(const struct ms_fz_seq *s, const char *sep);
/* Parse the text form (lines split at '\n', ';' or '|', '#' comments). 0, or -EINVAL + reason. */
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
/* The state of proc's slot as a small number, for transition coverage (< MS_FZ_STATES). */
#define MS_FZ_STATES 64
unsigned ms_fz_model_state(const struct ms_fz_model *m, const struct ms_fz_op *op);
/* What pin holds now, page by page (fill, or alt where alt_mask has the bit); its length. */
unsigned ms_fz_model_pin_wants(const struct ms_fz_model *m, unsigned pin, uint64_t *fill,
			       uint64_t *alt, uint64_t *alt_mask);

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

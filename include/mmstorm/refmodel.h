/* Reference model: what each process and each GUP pin must see after a sequence of MM ops. */
#ifndef MMSTORM_REFMODEL_H
#define MMSTORM_REFMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The model follows one region through fork, writes, pins and address-space operations, and
 * says, for every page every process can touch and every page every pin holds, what it must
 * contain. Pages are whole-page fills (model.h: ms_page_fill), so "contents" is one 64-bit
 * fill per page (0 = zero-filled).
 *
 * Addresses are page slots of one window, [0, nslots), the same in every process (fork keeps
 * addresses); mremap moves mappings between slots. A "page" is the unit of writes and checks:
 * the base page, or for hugetlb the huge page.
 *
 * The model states the guarantees of the kernel since the PageAnonExclusive work (5.19):
 * - a private page written by one process is never seen by another (COW isolation);
 * - a FOLL_PIN pin (R/O or R/W) on an anonymous page references the page its process maps,
 *   and stays coherent with it: the pinner's later writes are seen through the pin, writes
 *   through the pin are seen by the pinner, as long as the pinner keeps it mapped;
 * - fork copies pinned anonymous pages for the child (the whole folio when any page of it is
 *   pinned), so the child never shares a pinned page;
 * - a R/O FOLL_LONGTERM pin in a private file mapping breaks COW first (6.2+), so the same
 *   coherence holds there; a short-term R/O pin and a FOLL_GET reference do not;
 * - a FOLL_GET reference (vmsplice, /proc/PID/mem) sees the page as it was unless the
 *   process that exclusively owns that page writes it; never another process's writes;
 * - DONTNEED, munmap, exit drop the mapping; the pin keeps the old page;
 * - COLD, PAGEOUT, migration, THP split and collapse never change contents, and never move a
 *   pinned page away from its pin.
 * Where the kernel may do either of two things that a reader can tell apart (after MADV_FREE
 * each unpinned mapping of a page may or may not lose it; after PAGEOUT a FOLL_GET reference
 * may or may not follow the owner's write), the expectation carries an alternative.
 */
#define MS_RM_MAX_PROCS 16
#define MS_RM_MAX_PINS 16

enum ms_rm_op_kind {
	MS_RM_POPULATE,		/* proc writes [first, +n), new pages grouped in folios */
	MS_RM_WRITE,		/* proc writes every page of [first, +n) (CPU stores) */
	MS_RM_FORCE_WRITE,	/* FOLL_FORCE write (/proc/PID/mem): COW even in R/O private */
	MS_RM_FORK,		/* proc forks; out = the child */
	MS_RM_EXIT,		/* proc exits: every mapping and every pin it owns goes */
	MS_RM_PIN,		/* proc pins [first, +n) with flags MS_RM_PF_*; out = pin id */
	MS_RM_PIN_WRITE,	/* write pages [first, +n) of pin `pin` through the pin */
	MS_RM_UNPIN,		/* release pin `pin` */
	MS_RM_DONTNEED,
	MS_RM_FREE,
	MS_RM_COLD,
	MS_RM_PAGEOUT,
	MS_RM_MREMAP,		/* [first, +n) to [to, +n2); to == first: resize in place */
	MS_RM_MUNMAP,
	MS_RM_MPROTECT,		/* flags: MS_RM_PROT_* */
	MS_RM_MIGRATE,
	MS_RM_SPLIT,		/* THP: PMD split */
	MS_RM_COLLAPSE,		/* MADV_COLLAPSE */
	MS_RM_DONTFORK,		/* MADV_DONTFORK: a later fork maps nothing there */
	MS_RM_OP_COUNT
};

/* PIN flags */
#define MS_RM_PF_WRITE		0x1	/* FOLL_WRITE */
#define MS_RM_PF_LONGTERM	0x2	/* FOLL_LONGTERM */
#define MS_RM_PF_GET		0x4	/* a FOLL_GET reference, not a FOLL_PIN pin */

/* WRITE, FORCE_WRITE flags */
#define MS_RM_W_GUP		0x1	/* through a GUP access ("gw", "gfw"): same effect */

/* MPROTECT flags */
#define MS_RM_PROT_READ		0x1
#define MS_RM_PROT_WRITE	0x2

struct ms_rm_op {
	uint8_t kind;		/* enum ms_rm_op_kind */
	uint8_t proc;		/* the process doing it */
	uint8_t pin;		/* PIN_WRITE, UNPIN */
	uint8_t flags;		/* PIN: MS_RM_PF_*; MPROTECT: MS_RM_PROT_*; WRITE: MS_RM_W_GUP */
	uint32_t first, n;	/* slots; PIN_WRITE: page indexes inside the pin */
	uint32_t to, n2;	/* MREMAP: destination and new length */
	/* set by ms_rm_apply() */
	uint32_t gen;		/* sequence number of the op: names the fills it writes */
	uint8_t out;		/* FORK: child id; PIN: pin id */
};

struct ms_rm_cfg {
	uint32_t nslots;	/* the address window, in pages */
	uint32_t npages;	/* process 0 starts with [0, npages) mapped (R/W, not faulted) */
	uint32_t folio_pages;	/* POPULATE makes folios of this many pages (THP: PMD pages) */
	uint32_t file_pages;	/* > 0: file-backed (page i holds ms_rm_file_fill(i)); 0: anon */
	bool shared;		/* MAP_SHARED (file or shmem); else MAP_PRIVATE */
	bool huge;		/* hugetlb: no FREE/COLLAPSE, no FOLL_FORCE write to R/O */
	bool longterm_rw_refused; /* regular-file MAP_SHARED: R/W FOLL_LONGTERM pins fail */
	/* 6.2+: a R/O longterm pin breaks COW on file pages and on the shared zero page */
	bool ro_longterm_unshares_file;
	bool huge_force_write;	/* FOLL_FORCE writes to R/O private hugetlb work (newer kernels) */
	uint64_t seed;
};

enum ms_rm_view {
	MS_RM_V_UNMAPPED,	/* no mapping at the slot: an access faults (SIGSEGV) */
	MS_RM_V_NOACCESS,	/* mapped PROT_NONE */
	MS_RM_V_DATA,		/* readable: fill (or alt, when has_alt) */
};

struct ms_rm_want {
	uint8_t view;		/* enum ms_rm_view */
	bool has_alt;
	bool writable;		/* DATA: mapped with PROT_WRITE */
	uint64_t fill;
	uint64_t alt;		/* a second allowed content (MADV_FREE, loose references) */
};

struct ms_rm;

int ms_rm_new(struct ms_rm **mp, const struct ms_rm_cfg *cfg);
void ms_rm_free(struct ms_rm *m);
const struct ms_rm_cfg *ms_rm_config(const struct ms_rm *m);

/*
 * Apply one op. Returns 0, or an error with the model unchanged:
 *   -EINVAL  bad op: dead process, unknown pin, slots out of the window, bad flags;
 *   -EFAULT  the op hits a slot that is not mapped, or a pin needs a protection the slot
 *            lacks: the real op must fail too;
 *   -EOPNOTSUPP the kernel refuses the op for this kind of memory (R/W longterm pin of a
 *            regular file, FOLL_FORCE write to R/O shared memory or hugetlb (unless
 *            huge_force_write), MADV_FREE of file or hugetlb memory, MADV_COLLAPSE of
 *            hugetlb): the real op must fail too;
 *   -EACCES  a CPU write to a mapping without PROT_WRITE (the real one would SIGSEGV);
 *   -ENOSPC  too many processes or pins; -ENOMEM.
 * MREMAP needs the source mapped with one protection and the destination free. Shared
 * mappings need a file (shmem, memfd or a regular file): file_pages > 0.
 */
int ms_rm_apply(struct ms_rm *m, struct ms_rm_op *op);

/* The fill page i of a WRITE/FORCE_WRITE/POPULATE/PIN_WRITE op writes (after apply). */
uint64_t ms_rm_fill(const struct ms_rm *m, const struct ms_rm_op *op, uint32_t i);
/* The initial fill of file page i. */
uint64_t ms_rm_file_fill(const struct ms_rm *m, uint32_t i);

/* What process proc sees at slot (view UNMAPPED for a dead process). 0 or -EINVAL. */
int ms_rm_expect(const struct ms_rm *m, unsigned proc, uint32_t slot, struct ms_rm_want *w);
/* What pin `pin` holds at its page i. 0, or -EINVAL for no such (active) pin. */
int ms_rm_pin_expect(const struct ms_rm *m, unsigned pin, uint32_t i, struct ms_rm_want *w);
/*
 * Where a want has an alternative, tell the model which content was seen (at proc's slot),
 * so that later expectations follow. 0, or -EINVAL if fill was not allowed there.
 */
int ms_rm_observe(struct ms_rm *m, unsigned proc, uint32_t slot, uint64_t fill);

bool ms_rm_alive(const struct ms_rm *m, unsigned proc);
/* Pin owner, range and flags. 0, or -EINVAL for no such (active) pin. */
int ms_rm_pin_info(const struct ms_rm *m, unsigned pin, unsigned *owner, uint32_t *first,
		   uint32_t *n, unsigned *flags);
/* Processes mapping the page that proc maps at slot (0 if none): what /proc/kpagecount says. */
unsigned ms_rm_mapcount(const struct ms_rm *m, unsigned proc, uint32_t slot);
/* True when proc's slot and pin page i are the same page (the pin is coherent with it). */
bool ms_rm_same_page(const struct ms_rm *m, unsigned proc, uint32_t slot, unsigned pin,
		     uint32_t i);

/* "fork(0)=1", "pin(0,0+4,rw|lt)=0", ... (NUL-terminated, cut to len). */
size_t ms_rm_op_str(const struct ms_rm_op *op, char *buf, size_t len);
/* Every op applied so far, "; "-separated; when longer than len, the middle is elided. */
size_t ms_rm_history(const struct ms_rm *m, char *buf, size_t len);
const char *ms_rm_op_name(unsigned kind);

#endif

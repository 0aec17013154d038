/* The fuzz runtime: runs fuzz ops in real processes, plain libc (also pasted into reproducers). */
#ifndef MMSTORM_FZRT_H
#define MMSTORM_FZRT_H

#include <linux/io_uring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * This file and fzrt.c use nothing but libc and raw syscalls: `mmstorm fuzz` runs its
 * sequences with them, and every C reproducer it writes carries their text verbatim, so the
 * reproducer does exactly what the fuzzer did. Op kinds and flags are those of fuzz.h.
 */
#define MS_FZRT_PAGE 4096UL
#define MS_FZRT_PROCS 6
#define MS_FZRT_PFN_SLOTS 4
#define MS_FZRT_MAX_N 64
#define MS_FZRT_SKIP 1			/* the op does not fit the VMA layout: not run */
#define MS_FZRT_PIN_DIFF 2		/* UNPIN: the reference held other bytes (rt->bad says) */
#define MS_FZRT_PINS 16
#define MS_FZRT_PMD (2UL << 20)		/* a THP window: the window starts one PMD this big */
#define MS_FZRT_CONT_DIFF 3		/* CONTINUE: the ioctl did not do what the op expects */
#define MS_FZRT_FILE_SLOTS 4
enum { MS_FZRT_FILE_NONE, MS_FZRT_FILE_SHMEM, MS_FZRT_FILE_HUGETLB };

enum {
	MS_FZRT_WRITE, MS_FZRT_FORK, MS_FZRT_EXIT, MS_FZRT_DONTNEED, MS_FZRT_FREE, MS_FZRT_COLD,
	MS_FZRT_PAGEOUT, MS_FZRT_MREMAP, MS_FZRT_MUNMAP, MS_FZRT_MPROTECT, MS_FZRT_MIGRATE,
	MS_FZRT_UFFD_REG, MS_FZRT_UFFD_WP,
	MS_FZRT_PFN_MAP, MS_FZRT_PFN_MUNMAP, MS_FZRT_PFN_MREMAP, MS_FZRT_PFN_MPROTECT,
	MS_FZRT_PIN, MS_FZRT_UNPIN, MS_FZRT_PIN_URING, MS_FZRT_PIN_GUP,
	MS_FZRT_COLLAPSE, MS_FZRT_PIN_WRITE,
	MS_FZRT_FILE_WRITE, MS_FZRT_FILE_FILL, MS_FZRT_FILE_ZAP, MS_FZRT_FILE_PUNCH,
	MS_FZRT_UFFD_MINOR, MS_FZRT_CONTINUE,
};

struct ms_fzrt_op {
	int kind, proc, flags, nth;
	int first, n, to, n2;
	int child;			/* FORK: the id the child gets */
	int dry;			/* MREMAP, PFN_MREMAP: does the layout fit? 0 or SKIP */
	int pin;			/* PIN, UNPIN: the pin id */
	uint64_t fill[MS_FZRT_MAX_N];	/* WRITE, PIN_WRITE: each page's fill; UNPIN: the pin's */
	uint64_t alt[MS_FZRT_MAX_N];	/* UNPIN: a second allowed content where alt_mask says */
	uint64_t alt_mask;
	long want_ret, want_mapped;	/* CONTINUE: its result, uffdio_continue.mapped */
};

struct ms_fzrt {
	char *win, *pwin;		/* the window and the /dev/mem window, same in all procs */
	char *base;			/* the reservation holding both */
	size_t len;
	unsigned nslots, npages;
	bool thp;
	int uffd[3];			/* [1] plain, [2] UFFD_FEATURE_EVENT_REMAP; -1 until used */
	bool monitor;
	pthread_t mon;
	int mem_fd;			/* /dev/mem, -1 until used */
	bool live[MS_FZRT_PROCS];
	pid_t pid[MS_FZRT_PROCS];
	int pidfd[MS_FZRT_PROCS];
	int cmd[MS_FZRT_PROCS][2], rep[MS_FZRT_PROCS][2];
	unsigned wp_faults;		/* resolved by the monitor */
	/*
	 * A pin in the process that took it: PIN the read end of the vmsplice pipe, PIN_URING the
	 * io_uring whose buffer 0 is the pinned range, PIN_GUP the gup_test file.
	 */
	int pin_fd[MS_FZRT_PINS];
	int pin_kind[MS_FZRT_PINS];
	char *pin_addr[MS_FZRT_PINS];	/* PIN_URING: the registered address */
	struct io_uring_params pin_ring[MS_FZRT_PINS];
	struct ms_fzrt_bad {		/* MAP_SHARED: a PIN_DIFF's first differing byte */
		int page;
		long off;
		unsigned char want, got;
	} *bad;
	/*
	 * The shared-file window: a memfd (shmem or hugetlb) mapped MAP_SHARED at fwin in every
	 * process (the main mapping, which MINOR registration covers), and at falias, where
	 * FILE_FILL puts data in the page cache without a PTE in the main mapping. uffd[0] is
	 * the MINOR context; the monitor resolves a minor fault with UFFDIO_CONTINUE.
	 */
	int file, ffd;
	char *fwin, *fbase, *falias;
	size_t fslot, flen;
	unsigned minor_faults;
	long cont_ret, cont_mapped;	/* CONTINUE: what the ioctl gave (on CONT_DIFF) */
};

/*
 * Reserve the windows, map the first npages R/W, make the pipes. thp: the window starts a
 * 2 MiB-aligned MADV_HUGEPAGE R/W mapping of one PMD, all of it (a THP needs one VMA); slots
 * past npages are then there but unused until a move or munmap replaces them. 0 or -errno.
 */
int ms_fzrt_init(struct ms_fzrt *rt, unsigned nslots, unsigned npages, bool thp);
/*
 * Add the shared-file window (MS_FZRT_FILE_SHMEM or _HUGETLB: one 2 MiB page a slot) after
 * ms_fzrt_init(), before any fork. 0 or -errno (hugetlb: -ENOMEM without free huge pages).
 */
int ms_fzrt_file_init(struct ms_fzrt *rt, int file);
/*
 * Run op in its process (forwarded to a child when op->proc != 0). 0, -errno of the failing
 * call, or MS_FZRT_SKIP. FORK with nth > 0 may fail with the injected error; an EXIT returns
 * once the process's memory is gone.
 */
int ms_fzrt_run(struct ms_fzrt *rt, const struct ms_fzrt_op *op);
/* One page of proc's view at slot into buf (MS_FZRT_PAGE bytes). 0 or -errno. */
int ms_fzrt_read(struct ms_fzrt *rt, unsigned proc, unsigned slot, void *buf);
/*
 * For each slot of proc's window: bit 0 = its pagemap entry has PM_UFFD_WP (bit 57), bit 1 =
 * its VMA is registered for uffd-wp ("uw" in smaps VmFlags). 0 or -errno.
 */
int ms_fzrt_wp(struct ms_fzrt *rt, unsigned proc, uint8_t *bits);
/* What a process must see at a slot after an op (readable slots only). */
struct ms_fzrt_want {
	int proc, slot;
	bool has_alt;
	uint64_t fill, alt;
};

enum {
	MS_FZRT_OK, MS_FZRT_BAD_DATA, MS_FZRT_BAD_STRAY_WP, MS_FZRT_BAD_WP, MS_FZRT_BAD_IO,
	MS_FZRT_BAD_PTE
};

/*
 * The checks after an op: every want against the real page; in every live process no uffd-wp
 * bit outside a uffd-wp registered VMA; process 0's bits against wp0 (one char a slot: '0' off,
 * '1' on, '2' either; NULL: not compared). MS_FZRT_OK, or the first MS_FZRT_BAD_* with msg.
 */
int ms_fzrt_check(struct ms_fzrt *rt, const struct ms_fzrt_want *w, unsigned nw, const char *wp0,
		  char *msg, size_t len);
/*
 * The file window against its model: cache[s] is what the page cache holds at slot s (0: no
 * page, reads as zeros), read with pread() (no fault, no page allocated); pte0[s] '1' where
 * process 0's main mapping must have a PTE, '0' where not (pagemap present bit). Process 0's
 * main mapping is read only where a PTE is expected: a read of a MINOR-registered page
 * without one would be a minor fault. A child (not registered) reads its main mapping at
 * every slot with a page; that must be the page cache's. MS_FZRT_OK or MS_FZRT_BAD_*.
 */
int ms_fzrt_check_file(struct ms_fzrt *rt, const uint64_t *cache, const char *pte0, char *msg,
		       size_t len);
/*
 * After op failed under fail-nth: bit i set where slot first + i shows the op's effect anyway
 * (MPROTECT: the new protection; MUNMAP: no mapping left; PIN_URING, PIN_GUP: the page present
 * and mapped by this process alone, as a write fault or an unshare leaves it). Which of these
 * states the failure allows is the model's business (ms_fz_model_fail()). ~0 on an error.
 */
uint64_t ms_fzrt_partial(struct ms_fzrt *rt, const struct ms_fzrt_op *op);
/* Kill and reap every child, unmap the windows, close everything. */
void ms_fzrt_fini(struct ms_fzrt *rt);
/*
 * The window's two moves, shared with gup-pin's executor: a PROT_NONE placeholder where nothing
 * is mapped (so the window stays ours), and mremap from -> to (to == from: resize in place),
 * with placeholders where the mapping was or is no more. 0 or -errno.
 */
int ms_fzrt_placeholder(char *addr, size_t len);
int ms_fzrt_mremap(char *from, size_t old, char *to, size_t new);
/* Entries of /sys/kernel/debug/x86/pat_memtype_list, or -errno. */
long ms_fzrt_pat_entries(void);
/* 1: the kernel tracks pfnmaps the pre-rework way (track_pfn_copy in kallsyms). */
int ms_fzrt_pat_legacy(void);
/* The page image of model.h's ms_page_fill(); the offset of the first byte that differs or -1. */
void ms_fzrt_fill(void *page, uint64_t fill);
long ms_fzrt_diff(const void *page, uint64_t fill);

#endif

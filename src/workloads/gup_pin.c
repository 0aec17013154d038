/* gup-pin: GUP pins x fork/COW/madvise/mremap/migration, checked against the reference model. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/loop.h>

#include "mmstorm/inject.h"
#include "mmstorm/journal.h"
#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/refmodel.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"
#include "model/fzrt.h"

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif
#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB (30 << 26)	/* log2(1 GiB) << MAP_HUGE_SHIFT */
#endif
#ifndef MADV_DONTFORK
#define MADV_DONTFORK 10
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* mm/gup_test.h (uapi of CONFIG_GUP_TEST; not exported as a header) */
struct gp_gup_test {
	uint64_t get_delta_usec, put_delta_usec, addr, size;
	uint32_t nr_pages_per_call, gup_flags, test_flags;
	uint32_t which_pages[8];
};

struct gp_pin_longterm_test {
	uint64_t addr, size;
	uint32_t flags;
};

#define GP_GUP_FAST_BENCHMARK _IOWR('g', 1, struct gp_gup_test)
#define GP_PIN_FAST_BENCHMARK _IOWR('g', 2, struct gp_gup_test)
#define GP_PIN_LONGTERM_BENCHMARK _IOWR('g', 3, struct gp_gup_test)
#define GP_DUMP_USER_PAGES_TEST _IOWR('g', 6, struct gp_gup_test)
#define GP_PIN_LONGTERM_TEST_START _IOW('g', 7, struct gp_pin_longterm_test)
#define GP_PIN_LONGTERM_TEST_STOP _IO('g', 8)
#define GP_PIN_LONGTERM_TEST_READ _IOW('g', 9, uint64_t)
#define GP_LT_FLAG_WRITE 1
#define GP_LT_FLAG_FAST 2
#define GP_DUMP_USE_PIN 1
#define GP_FOLL_WRITE 0x01		/* the kernel's FOLL_WRITE, as gup_test takes it */
#define GP_GUP_TEST "/sys/kernel/debug/gup_test"
#define GP_KPF_THP 22
#define GP_KPF_ZERO_PAGE 24
#define GP_PM_SWAP (1ULL << 62)
#define GP_PM_PRESENT (1ULL << 63)

/* ---- pin kinds and memory kinds ---- */

enum {
	PK_IO_URING, PK_VMSPLICE, PK_LT_RO, PK_LT_RW, PK_LT_RO_FAST, PK_LT_RW_FAST, PK_BENCH,
	PK_ODIRECT, PK_PROCESS_VM, PK_PROCMEM, PK_NR
};

struct gp_kind {
	const char *name;
	unsigned flags;		/* MS_RM_PF_* of the pin the model holds (persistent kinds) */
	bool persistent;	/* the pin lives across ops; else it exists for one syscall */
	bool can_read;		/* contents can be read back through it */
	bool read_destroys;	/* reading it back ends it (a pipe) */
	bool can_write;		/* contents can be written through it */
	bool force;		/* its writes are FOLL_FORCE (/proc/PID/mem) */
	bool counts;		/* FOLL_PIN on every kernel: nr_foll_pin_acquired grows */
	bool gup_test;		/* needs /sys/kernel/debug/gup_test */
	const char *what;
};

static const struct gp_kind gp_kinds[PK_NR] = {
	[PK_IO_URING] = { "io_uring", MS_RM_PF_WRITE | MS_RM_PF_LONGTERM, true, true, false, true,
			  false, true, false, "io_uring fixed buffer (R/W longterm FOLL_PIN)" },
	[PK_VMSPLICE] = { "vmsplice", MS_RM_PF_GET, true, true, true, false, false, false, false,
			  "vmsplice() into a pipe (R/O FOLL_GET)" },
	[PK_LT_RO] = { "gup-lt-ro", MS_RM_PF_LONGTERM, true, true, false, false, false, true,
		       true, "gup_test PIN_LONGTERM_TEST R/O" },
	[PK_LT_RW] = { "gup-lt-rw", MS_RM_PF_WRITE | MS_RM_PF_LONGTERM, true, true, false, false,
		       false, true, true, "gup_test PIN_LONGTERM_TEST R/W" },
	[PK_LT_RO_FAST] = { "gup-lt-ro-fast", MS_RM_PF_LONGTERM, true, true, false, false, false,
			    true, true, "gup_test PIN_LONGTERM_TEST R/O, GUP-fast" },
	[PK_LT_RW_FAST] = { "gup-lt-rw-fast", MS_RM_PF_WRITE | MS_RM_PF_LONGTERM, true, true,
			    false, false, false, true, true,
			    "gup_test PIN_LONGTERM_TEST R/W, GUP-fast" },
	[PK_BENCH] = { "gup-bench", 0, false, false, false, false, false, true, true,
		       "gup_test GUP_FAST/PIN_FAST/PIN_LONGTERM_BENCHMARK R/O and R/W, "
		       "DUMP_USER_PAGES_TEST" },
	[PK_ODIRECT] = { "odirect", 0, false, true, false, true, false, false, false,
			 "O_DIRECT read/write of a block-backed file or loop device" },
	[PK_PROCESS_VM] = { "process-vm", 0, false, true, false, true, false, true, false,
			    "process_vm_readv/writev (remote FOLL_PIN)" },
	[PK_PROCMEM] = { "procmem", 0, false, true, false, true, true, false, false,
			 "/proc/PID/mem (FOLL_GET | FOLL_FORCE)" },
};

enum {
	MK_ANON, MK_THP, MK_THP_PTE, MK_HUGETLB, MK_SHMEM, MK_SHMEM_PRIVATE, MK_FILE,
	MK_FILE_PRIVATE, MK_HUGETLB_1G, MK_MTHP, MK_ZERO, MK_HUGE_ZERO, MK_NR
};

struct gp_mem {
	const char *name;
	bool shared, file, huge, thp, pte;
	bool regular;		/* a regular file, not shmem */
	bool gig;		/* hugetlb: 1 GiB pages */
	bool mthp;		/* thp: folios of mthp_kb, not of a PMD */
	uint8_t zero;		/* only read-faulted: 1 the zero page, 2 the huge zero page */
	bool swappable;		/* private anonymous: MADV_PAGEOUT swaps it out */
};

static const struct gp_mem gp_mems[MK_NR] = {
	[MK_ANON] = { "anon", false, false, false, false, false, false, .swappable = true },
	[MK_THP] = { "thp", false, false, false, true, false, false, .swappable = true },
	[MK_THP_PTE] = { "thp-pte", false, false, false, true, true, false, .swappable = true },
	[MK_HUGETLB] = { "hugetlb", false, false, true, false, false, false },
	[MK_SHMEM] = { "shmem", true, true, false, false, false, false },
	[MK_SHMEM_PRIVATE] = { "shmem-private", false, true, false, false, false, false },
	[MK_FILE] = { "file", true, true, false, false, false, true },
	[MK_FILE_PRIVATE] = { "file-private", false, true, false, false, false, true },
	[MK_HUGETLB_1G] = { .name = "hugetlb-1g", .huge = true, .gig = true },
	[MK_MTHP] = { .name = "mthp", .thp = true, .mthp = true, .swappable = true },
	[MK_ZERO] = { .name = "zero", .zero = 1, .swappable = true },
	[MK_HUGE_ZERO] = { .name = "huge-zero", .zero = 2, .swappable = true },
};

/* ---- scenarios: cow.c-style fixed op programs ---- */

enum {
	S_POP, S_PIN, S_PREAD, S_PWRITE, S_UNPIN, S_FORK, S_W, S_EXIT, S_MPROT, S_MADV, S_MREMAP,
	S_MUNMAP, S_END
};
enum { R_ALL, R_PIN, R_REST };		/* the region, its pinned part, the rest */

struct gp_step {
	uint8_t op, proc, range, arg;	/* arg: MPROT prot, MADV model op kind */
};

struct gp_scen {
	const char *name;
	unsigned needs;			/* NEED_* */
	struct gp_step steps[16];
};

#define NEED_WRITE 1			/* the kind writes through the pin */
#define NEED_THP 2
#define NEED_ANON_PRIVATE 4		/* MADV_FREE */
#define NEED_MIGRATE 8
#define NEED_SWAP 16			/* swap on, and private anonymous memory */

#define ST(o, p, r, a) { S_##o, p, R_##r, a }
#define RO MS_RM_PROT_READ
#define RW (MS_RM_PROT_READ | MS_RM_PROT_WRITE)

static const struct gp_scen gp_scens[] = {
	/* cow.c: fork() with a pinned buffer; the pin stays the parent's */
	{ "pin-fork", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(FORK, 0, ALL, 0), ST(W, 0, PIN, 0),
	    ST(PREAD, 0, ALL, 0), ST(W, 1, ALL, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0),
	    ST(EXIT, 1, ALL, 0), ST(END, 0, ALL, 0) } },
	/* cow.c: R/O pin on a page shared with a child (unshare first) */
	{ "fork-pin", 0,
	  { ST(POP, 0, ALL, 0), ST(FORK, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(W, 0, PIN, 0),
	    ST(PREAD, 0, ALL, 0), ST(W, 1, PIN, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0),
	    ST(EXIT, 1, ALL, 0), ST(END, 0, ALL, 0) } },
	/* cow.c/CVE-2020-29374: pin in the child, child unmaps, parent writes */
	{ "child-pin-unmap", 0,
	  { ST(POP, 0, ALL, 0), ST(FORK, 0, ALL, 0), ST(PIN, 1, PIN, 0), ST(MUNMAP, 1, ALL, 0),
	    ST(W, 0, ALL, 0), ST(PREAD, 1, ALL, 0), ST(UNPIN, 1, ALL, 0), ST(EXIT, 1, ALL, 0),
	    ST(END, 0, ALL, 0) } },
	/* cow.c: pin before fork, parent unmaps, child writes */
	{ "pin-fork-unmap-parent", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(FORK, 0, ALL, 0), ST(MUNMAP, 0, ALL, 0),
	    ST(W, 1, ALL, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(EXIT, 1, ALL, 0),
	    ST(END, 0, ALL, 0) } },
	/* cow.c: R/O pin on a previously shared page */
	{ "fork-exit-pin", 0,
	  { ST(POP, 0, ALL, 0), ST(FORK, 0, ALL, 0), ST(EXIT, 1, ALL, 0), ST(PIN, 0, PIN, 0),
	    ST(W, 0, PIN, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* cow.c: pin a page mapped R/O by mprotect, then write */
	{ "mprotect-pin", 0,
	  { ST(POP, 0, ALL, 0), ST(MPROT, 0, ALL, RO), ST(MPROT, 0, ALL, RW), ST(PIN, 0, PIN, 0),
	    ST(W, 0, PIN, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* cow.c iouring_ro: mprotect R/O and back under the pin, then write */
	{ "pin-mprotect", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MPROT, 0, ALL, RO), ST(PREAD, 0, ALL, 0),
	    ST(MPROT, 0, ALL, RW), ST(W, 0, PIN, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0),
	    ST(END, 0, ALL, 0) } },
	/* MADV_DONTNEED under the pin: the pin keeps the old page */
	{ "pin-dontneed", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, PIN, MS_RM_DONTNEED),
	    ST(W, 0, PIN, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* MADV_FREE under the pin: a pinned page is never discarded */
	{ "pin-free", NEED_ANON_PRIVATE,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, ALL, MS_RM_FREE),
	    ST(PREAD, 0, ALL, 0), ST(W, 0, REST, 0), ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* mremap() moves the pinned pages: the pin follows */
	{ "pin-mremap", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MREMAP, 0, ALL, 0), ST(W, 0, PIN, 0),
	    ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* munmap() under the pin: the pin keeps the pages */
	{ "pin-munmap", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MUNMAP, 0, ALL, 0), ST(PREAD, 0, ALL, 0),
	    ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* MADV_COLD and MADV_PAGEOUT never take a pinned page away */
	{ "pin-pageout", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, ALL, MS_RM_COLD),
	    ST(MADV, 0, ALL, MS_RM_PAGEOUT), ST(W, 0, ALL, 0), ST(PREAD, 0, ALL, 0),
	    ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* migration fails for pinned pages, moves the others: contents kept */
	{ "pin-migrate", NEED_MIGRATE,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, ALL, MS_RM_MIGRATE),
	    ST(W, 0, ALL, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* THP PMD split and folio split under the pin */
	{ "pin-split", NEED_THP,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, ALL, MS_RM_SPLIT),
	    ST(W, 0, ALL, 0), ST(PREAD, 0, ALL, 0), ST(FORK, 0, ALL, 0), ST(W, 1, ALL, 0),
	    ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(EXIT, 1, ALL, 0),
	    ST(END, 0, ALL, 0) } },
	/* MADV_COLLAPSE over pinned pages */
	{ "pin-collapse", NEED_THP,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, ALL, MS_RM_COLLAPSE),
	    ST(W, 0, ALL, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(END, 0, ALL, 0) } },
	/* writes through the pin before and after fork */
	{ "write-through-fork", NEED_WRITE,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(PWRITE, 0, ALL, 0), ST(FORK, 0, ALL, 0),
	    ST(PWRITE, 0, ALL, 0), ST(W, 1, PIN, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0),
	    ST(EXIT, 1, ALL, 0), ST(END, 0, ALL, 0) } },
	/* a pin taken by a child goes when the child exits */
	{ "pin-exit", 0,
	  { ST(POP, 0, ALL, 0), ST(FORK, 0, ALL, 0), ST(PIN, 1, PIN, 0), ST(W, 1, PIN, 0),
	    ST(PREAD, 1, ALL, 0), ST(W, 0, PIN, 0), ST(EXIT, 1, ALL, 0), ST(END, 0, ALL, 0) } },
	/* MADV_DONTFORK on the pinned part: the child has nothing there, shares the rest */
	{ "pin-dontfork", 0,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, PIN, MS_RM_DONTFORK),
	    ST(FORK, 0, ALL, 0), ST(W, 0, PIN, 0), ST(PREAD, 0, ALL, 0), ST(W, 1, REST, 0),
	    ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(EXIT, 1, ALL, 0),
	    ST(END, 0, ALL, 0) } },
	/* swapped out for real (pagemap): the pinned part stays, the rest comes back intact */
	{ "pin-swap", NEED_SWAP,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, ALL, MS_RM_PAGEOUT),
	    ST(PREAD, 0, ALL, 0), ST(W, 0, ALL, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0),
	    ST(END, 0, ALL, 0) } },
	/* fork of swapped-out pages: COW isolation after swap-in, then a pin in the parent */
	{ "swap-fork", NEED_SWAP,
	  { ST(POP, 0, ALL, 0), ST(MADV, 0, ALL, MS_RM_PAGEOUT), ST(FORK, 0, ALL, 0),
	    ST(W, 1, ALL, 0), ST(PIN, 0, PIN, 0), ST(W, 0, PIN, 0), ST(PREAD, 0, ALL, 0),
	    ST(W, 1, PIN, 0), ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(EXIT, 1, ALL, 0),
	    ST(END, 0, ALL, 0) } },
	/* pin, swap out the rest, fork: the child gets a copy and swap entries */
	{ "swap-pin-fork", NEED_SWAP,
	  { ST(POP, 0, ALL, 0), ST(PIN, 0, PIN, 0), ST(MADV, 0, ALL, MS_RM_PAGEOUT),
	    ST(FORK, 0, ALL, 0), ST(W, 0, ALL, 0), ST(PREAD, 0, ALL, 0), ST(W, 1, ALL, 0),
	    ST(PREAD, 0, ALL, 0), ST(UNPIN, 0, ALL, 0), ST(EXIT, 1, ALL, 0),
	    ST(END, 0, ALL, 0) } },
};

#define GP_NSCEN MS_ARRAY_SIZE(gp_scens)

/* ---- parameters ---- */

enum { MODE_MATRIX, MODE_RANDOM, MODE_FORK_CURVE };

static const char *const gp_modes[] = { "matrix", "random", "fork-curve", NULL };

static const struct ms_param gup_pin_params[] = {
	{ "mode", MS_P_ENUM, "matrix", "", 1, 0, gp_modes,
	  "matrix: every scenario for every pin x memory kind; random: seeded op sequences; "
	  "fork-curve: fork latency against the pinned share of a region (0..100%)" },
	{ "pins", MS_P_STRING, "all", "", 1, 0, NULL,
	  "comma list of pin kinds: io_uring vmsplice gup-lt-ro gup-lt-rw gup-lt-ro-fast "
	  "gup-lt-rw-fast gup-bench odirect process-vm procmem; or all" },
	{ "mems", MS_P_STRING, "all", "", 1, 0, NULL,
	  "comma list of memory kinds: anon thp thp-pte hugetlb shmem shmem-private file "
	  "file-private hugetlb-1g mthp zero huge-zero; or all (all but hugetlb-1g)" },
	{ "scenarios", MS_P_STRING, "all", "", 1, 0, NULL,
	  "mode=matrix: comma list of scenario names (see docs/workloads/gup-pin.md), or all" },
	{ "pages", MS_P_INT, "8", "pages", 2, 4096, NULL,
	  "region size in base pages (anon, shmem, file; THP regions are one PMD)" },
	{ "pin_pages", MS_P_INT, "2", "pages", 1, 4096, NULL,
	  "pages pinned by a scenario (at most the region)" },
	{ "huge_pages", MS_P_INT, "2", "pages", 1, 64, NULL,
	  "hugetlb region size in 2 MiB pages (hugetlb-1g: always one 1 GiB page)" },
	{ "mthp_kb", MS_P_INT, "64", "KiB", 8, 1024, NULL,
	  "mthp: the mTHP folio size (a hugepages-<N>kB size of this kernel)" },
	{ "sequences", MS_P_INT, "4", "", 1, 100000, NULL,
	  "mode=random: sequences per pin x memory kind and iteration" },
	{ "steps", MS_P_INT, "24", "ops", 1, 10000, NULL, "mode=random: ops per sequence" },
	{ "size", MS_P_SIZE, "64M", "bytes", 2 << 20, 16LL << 30, NULL,
	  "mode=fork-curve: region size (anon, thp or hugetlb from mems)" },
	{ "forks", MS_P_INT, "4", "", 1, 100000, NULL,
	  "mode=fork-curve: forks per pinned share and iteration" },
	{ NULL }
};

/* ---- case-wide configuration ---- */

#define GP_MAX_PROCS 4			/* live processes per sequence (model allows more) */
#define GP_FORK_POINTS 5		/* fork-curve: 0, 25, 50, 75, 100 % pinned */
#define GP_REASON 200

struct gp_result {			/* one combination, written by its driver */
	int32_t verdict;		/* CV_* */
	uint64_t pinned_pages;		/* base pages pinned with FOLL_PIN */
	uint32_t zero_skips;
	char reason[GP_REASON];
};

enum { CV_PASS, CV_FAIL, CV_SKIP, CV_KNOWN, CV_ERROR };

struct gp_cfg {
	int mode;
	bool kind_on[PK_NR], mem_on[MK_NR], scen_on[GP_NSCEN];
	char kind_skip[PK_NR][GP_REASON];	/* non-empty: the kind cannot run here */
	char mem_skip[MK_NR][GP_REASON];
	size_t psz, pmd, hpage;
	size_t mthp;			/* mthp folio bytes */
	uint32_t pages, pin_pages, huge_pages, sequences, steps, forks;
	uint64_t size;
	uint64_t seed;
	bool root, in_guest;
	int numa_nodes;
	unsigned kver;			/* major * 1000 + minor */
	char tmpdir[256];
	char odirect_path[PATH_MAX];	/* file or loop device for O_DIRECT, "" if none */
	char odirect_what[384];
	bool tmp_is_tmpfs;
	bool have_kpage;		/* /proc/kpagecount and PFNs in pagemap */
	bool have_split_debugfs;
	bool huge_force_write;		/* /proc/PID/mem writes R/O private hugetlb */
	bool swap_on;			/* MADV_PAGEOUT really swaps out (probed) */
	char swap_skip[GP_REASON];	/* why not */
	char swap_dev[32];		/* a guest swap device mmstorm set up, else "" */
};

/* The model page of a memory kind: the base page, or the huge page. */
static size_t mem_page(const struct gp_cfg *cfg, const struct gp_mem *mk)
{
	return mk->gig ? (size_t)1 << 30 : mk->huge ? cfg->hpage : cfg->psz;
}

/* Bytes of one folio a populate makes (THP, mTHP), or of the huge zero page. */
static size_t mem_folio(const struct gp_cfg *cfg, const struct gp_mem *mk)
{
	if (mk->mthp)
		return cfg->mthp;
	return mk->thp || mk->zero == 2 ? cfg->pmd : mem_page(cfg, mk);
}

struct gp_state {
	struct gp_cfg cfg;
	int m_pin, m_unpin, m_access, m_fork, m_run, m_pass, m_fail, m_skip, m_known, m_pages;
	int m_curve[GP_FORK_POINTS], m_forks;
	struct gp_result *res;		/* MAP_SHARED, one per driver at a time */
	int loop_fd;			/* keeps an autoclear loop device alive */
	/* tallies for the notes */
	unsigned run, pass, fail, skip, known;
	char skips[16][GP_REASON];
	unsigned skip_counts[16], nskips;
	unsigned unjudged;		/* pin balances other pinners blurred */
	unsigned zero_skips;
	char failed[240];		/* labels of failed combinations, for a note */
	char known_list[240];
	/* fork-curve */
	char *curve_region;
	size_t curve_bytes;
};

/* ---- the driver: one combination, in its own process, with its children ---- */

/* The real handle of a model pin, held by the process that took it. */
struct gp_pinh {
	bool live;
	int fd[2];			/* vmsplice: the pipe; gup_test: fd[0] */
	struct io_uring ring;
	char *addr;
	size_t len;
};

struct gp_bad {				/* first mismatch of a check, written by the checker */
	uint32_t slot, count;
	uint64_t off;
	uint8_t want, got;
};

enum {
	C_EXEC, C_CHECK, C_PIN, C_PREAD, C_PWRITE, C_UNPIN, C_ACCESS_READ, C_ACCESS_WRITE,
	C_BENCH, C_EXIT
};

struct gp_cmd {
	uint32_t what;
	uint32_t arg;			/* C_BENCH: gup_test command index, write flag */
	struct ms_rm_op op;
};

struct gp_drv {
	struct ms_ctx *ctx;
	struct gp_state *st;
	const struct gp_cfg *cfg;
	const struct gp_kind *k;
	const struct gp_mem *mk;
	int kind, mem;
	char label[96];
	struct ms_rm *m;
	size_t mpsz;			/* model page: base page, or the huge page */
	uint32_t npages, nslots, pin_n;
	char *win;
	size_t win_bytes;
	int fd;				/* backing file (file kinds), else -1 */
	int scratch_fd;			/* io_uring reads and writes it */
	int odirect_fd;
	unsigned self;			/* model id of this process */
	pid_t pid[GP_MAX_PROCS];
	int cmd[GP_MAX_PROCS][2];
	int reply[2];
	uint32_t base[GP_MAX_PROCS];	/* slot where each process's region starts */
	struct gp_pinh pin[MS_RM_MAX_PINS];
	char *box;			/* MAP_SHARED mailbox: wants, codes, bad, data */
	size_t box_bytes;
	struct ms_rm_want *want;
	uint8_t *code;
	struct gp_bad *bad;
	char *data;
	unsigned char *scratch;		/* one model page: the expected image of a mismatch */
	/* transient kinds: who "holds" the pin, and where (offset from its region base) */
	int tproc;
	uint32_t toff, tn;
	bool checked_thp;
	bool swap_checked;		/* a PAGEOUT was checked against pagemap */
	uint64_t rng;
	uint64_t pinned_pages;		/* base pages pinned with FOLL_PIN successfully */
	unsigned zero_skips;		/* R/O PIN_FAST_BENCHMARKs left out over zero pages */
	uint64_t pfns[64];
	unsigned npfns;
	int verdict;			/* CV_* so far */
	char reason[GP_REASON];
};

static uint64_t gp_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static char *slot_addr(const struct gp_drv *d, uint32_t slot)
{
	return d->win + (size_t)slot * d->mpsz;
}

static void set_verdict(struct gp_drv *d, int v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Worst first: ERROR > FAIL > KNOWN > SKIP > PASS; the first reason of the worst stays. */
static void set_verdict(struct gp_drv *d, int v, const char *fmt, ...)
{
	static const int rank[] = { [CV_PASS] = 0, [CV_SKIP] = 1, [CV_KNOWN] = 2, [CV_FAIL] = 3,
				    [CV_ERROR] = 4 };
	va_list ap;

	if (rank[v] <= rank[d->verdict])
		return;
	d->verdict = v;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
}

static void history(const struct gp_drv *d, char *buf, size_t len)
{
	ms_rm_history(d->m, buf, len);
}

/* A check failed: one ms_check with the label, where, and what led there. */
static void report(struct gp_drv *d, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct gp_drv *d, const char *what, const char *fmt, ...)
{
	char msg[300], ops[4000], title[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	history(d, ops, sizeof(ops));
	snprintf(title, sizeof(title), "%s: %s", d->label, what);
	ms_check(d->ctx, false, title, "%s; ops: %s", msg, ops);
	set_verdict(d, CV_FAIL, "%s: %s", what, msg);
}

/* ---- real memory ---- */

static int placeholder(struct gp_drv *d, uint32_t slot, uint32_t n)
{
	return ms_fzrt_placeholder(slot_addr(d, slot), (size_t)n * d->mpsz);
}

static int prot_of(unsigned f)
{
	return (f & MS_RM_PROT_READ ? PROT_READ : 0) | (f & MS_RM_PROT_WRITE ? PROT_WRITE : 0);
}

static int map_region(struct gp_drv *d, uint32_t slot, uint32_t n, off_t file_off)
{
	const struct gp_mem *mk = d->mk;
	int flags = MAP_FIXED | (mk->shared ? MAP_SHARED : MAP_PRIVATE);
	void *p;

	if (!mk->file)
		flags |= MAP_ANONYMOUS | (mk->huge ? MAP_HUGETLB : 0) |
			 (mk->gig ? MAP_HUGE_1GB : 0);
	p = mmap(slot_addr(d, slot), (size_t)n * d->mpsz, PROT_READ | PROT_WRITE, flags,
		 mk->file ? d->fd : -1, file_off);
	if (p == MAP_FAILED)
		return -errno;
	if ((mk->thp || mk->zero == 2) && madvise(p, (size_t)n * d->mpsz, MADV_HUGEPAGE))
		return -errno;
	/* Small pages must stay small even where THP is "always". */
	if (!mk->thp && !mk->huge && !mk->file && mk->zero != 2 &&
	    madvise(p, (size_t)n * d->mpsz, MADV_NOHUGEPAGE) && errno != EINVAL)
		return -errno;
	return 0;
}

static void fill_pages(struct gp_drv *d, char *dst, const struct ms_rm_op *op, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		ms_page_fill(dst + (size_t)i * d->mpsz, d->mpsz, ms_rm_fill(d->m, op, i));
}

static int numa_migrate(struct gp_drv *d, char *addr, size_t len)
{
	size_t n = len / d->cfg->psz;
	void **pages = calloc(n, sizeof(*pages));
	int *nodes = calloc(n, sizeof(int)), *status = calloc(n, sizeof(int));
	int ret = 0;

	if (!pages || !nodes || !status) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		pages[i] = addr + i * d->cfg->psz;
	/* Where each page is now, then each to the next node. */
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0)) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		nodes[i] = status[i] >= 0 ? (status[i] + 1) % d->cfg->numa_nodes : 0;
	/* Pinned pages fail to move (-EBUSY/-EAGAIN in status): that is the point. */
	if (syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE) < 0)
		ret = -errno;
out:
	free(pages);
	free(nodes);
	free(status);
	return ret;
}

static int do_migrate(struct gp_drv *d, char *addr, size_t len)
{
	if (d->cfg->numa_nodes >= 2)
		return numa_migrate(d, addr, len);
	/* One node: compaction migrates movable pages of the whole node (a guest is small). */
	return ms_write_file("/proc/sys/vm/compact_memory", "1");
}

static int do_split(struct gp_drv *d, uint32_t slot, uint32_t n, unsigned prot, bool folio)
{
	char *addr = slot_addr(d, slot), buf[96];
	size_t len = (size_t)n * d->mpsz;

	if (!d->mk->thp)
		return 0;
	/*
	 * A one-page mprotect splits the PMD mapping (cow.c's PTE-mapped THP). Only the first
	 * page's protection is known here (the range may mix them), and a page outside the
	 * range must not be touched: the first PMD splits, the folio split below does the rest.
	 */
	if (mprotect(addr, d->cfg->psz, PROT_READ) || mprotect(addr, d->cfg->psz, prot_of(prot)))
		return -errno;
	if (!folio || !d->cfg->have_split_debugfs)
		return 0;
	snprintf(buf, sizeof(buf), "%d,0x%lx,0x%lx", (int)getpid(), (unsigned long)addr,
		 (unsigned long)(addr + len));
	return ms_write_file("/sys/kernel/debug/split_huge_pages", buf);
}

static int do_mremap(struct gp_drv *d, const struct ms_rm_op *op)
{
	return ms_fzrt_mremap(slot_addr(d, op->first), (size_t)op->n * d->mpsz,
			      slot_addr(d, op->to), (size_t)op->n2 * d->mpsz);
}

/* Run a model op on this process's own memory. 0 or -errno. */
static int exec_op(struct gp_drv *d, const struct ms_rm_op *op)
{
	static const int advice[MS_RM_OP_COUNT] = {
		[MS_RM_DONTNEED] = MADV_DONTNEED, [MS_RM_FREE] = MADV_FREE,
		[MS_RM_COLD] = MADV_COLD, [MS_RM_PAGEOUT] = MADV_PAGEOUT,
		[MS_RM_COLLAPSE] = MADV_COLLAPSE,
		[MS_RM_DONTFORK] = MADV_DONTFORK,
	};
	char *addr = slot_addr(d, op->first);
	size_t len = (size_t)op->n * d->mpsz;

	switch (op->kind) {
	case MS_RM_POPULATE:
	case MS_RM_WRITE:
		fill_pages(d, addr, op, op->n);
		return 0;
	case MS_RM_MPROTECT:
		return mprotect(addr, len, prot_of(op->flags)) ? -errno : 0;
	case MS_RM_MUNMAP:
		if (munmap(addr, len))
			return -errno;
		return placeholder(d, op->first, op->n);
	case MS_RM_MREMAP:
		return do_mremap(d, op);
	case MS_RM_MIGRATE:
		return do_migrate(d, addr, len);
	case MS_RM_SPLIT:
		return do_split(d, op->first, op->n, op->flags ? op->flags : RW, true);
	default:
		if (op->kind < MS_RM_OP_COUNT && advice[op->kind])
			return madvise(addr, len, advice[op->kind]) ? -errno : 0;
		return -EINVAL;
	}
}

/* Compare every slot with a DATA want; codes: 0 ok, 1 matched alt, 2 differs. */
static int exec_check(struct gp_drv *d)
{
	d->bad->count = 0;
	for (uint32_t s = 0; s < d->nslots; s++) {
		const struct ms_rm_want *w = &d->want[s];
		const char *page = slot_addr(d, s);
		size_t off;

		d->code[s] = 0;
		if (w->view != MS_RM_V_DATA)
			continue;
		off = ms_page_check(page, d->mpsz, w->fill, 0);
		if (off == MS_PAGE_MATCH)
			continue;
		if (w->has_alt && ms_page_check(page, d->mpsz, w->alt, 0) == MS_PAGE_MATCH) {
			d->code[s] = 1;
			continue;
		}
		d->code[s] = 2;
		if (d->bad->count++)
			continue;
		ms_page_expect(d->scratch, d->mpsz, w->fill, 0);
		d->bad->slot = s;
		d->bad->off = off;
		d->bad->want = d->scratch[off];
		d->bad->got = (unsigned char)page[off];
	}
	return 0;
}

/* ---- pins, in the process that owns them ---- */

static int set_pipe_size(int fd, size_t len)
{
	size_t want = 4096;

	while (want < len)
		want *= 2;
	return fcntl(fd, F_SETPIPE_SZ, (int)want) < 0 ? -errno : 0;
}

static int pin_vmsplice(struct gp_pinh *h)
{
	size_t done = 0;
	int ret;

	if (pipe2(h->fd, O_CLOEXEC))
		return -errno;
	/* Without CAP_SYS_RESOURCE a pipe cannot exceed fs.pipe-max-size: say so, not EPERM. */
	if ((ret = set_pipe_size(h->fd[1], h->len)))
		return ret == -EPERM ? -E2BIG : ret;
	while (done < h->len) {
		struct iovec iov = { h->addr + done, h->len - done };
		ssize_t n = vmsplice(h->fd[1], &iov, 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/*
 * A pin call an injector made fail (exec_pin's reply): no errno, so the driver can tell it
 * from a refusal. The model then takes no pin, and the data must be as if none was asked for.
 */
#define GP_INJECTED (-2000)

static int pin_gup_lt(struct gp_drv *d, struct gp_pinh *h)
{
	struct gp_pin_longterm_test a = { .addr = (uintptr_t)h->addr, .size = h->len };
	int ret;

	if (d->k->flags & MS_RM_PF_WRITE)
		a.flags |= GP_LT_FLAG_WRITE;
	if (d->kind == PK_LT_RO_FAST || d->kind == PK_LT_RW_FAST)
		a.flags |= GP_LT_FLAG_FAST;
	h->fd[0] = open(GP_GUP_TEST, O_RDWR | O_CLOEXEC);
	if (h->fd[0] < 0)
		return -errno;
	ms_inject_point(d->ctx, "ioctl:PIN_LONGTERM_TEST_START");
	ret = ioctl(h->fd[0], GP_PIN_LONGTERM_TEST_START, &a);
	if (ms_inject_done(d->ctx, "ioctl:PIN_LONGTERM_TEST_START", ret, ret ? errno : 0))
		return GP_INJECTED;
	return ret ? -errno : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void drop_handle(struct gp_drv *d, struct gp_pinh *h, bool release)
{
	if (!h->live)
		return;
	if (d->kind == PK_IO_URING) {
		if (release)
			io_uring_unregister_buffers(&h->ring);
		io_uring_queue_exit(&h->ring);
	} else if (release && d->k->gup_test && h->fd[0] >= 0) {
		ioctl(h->fd[0], GP_PIN_LONGTERM_TEST_STOP);
	}
	close_fd(&h->fd[0]);
	close_fd(&h->fd[1]);
	h->live = false;
}

/* The pin is held: sigkill_point=pinned kills here (the pins must then all be released). */
static void pinned(struct gp_drv *d)
{
	ms_inject_point(d->ctx, "pinned");
	ms_inject_done(d->ctx, "pinned", 0, 0);
}

static int exec_pin(struct gp_drv *d, const struct ms_rm_op *op)
{
	struct gp_pinh *h = &d->pin[op->out];
	uint64_t t0 = ms_now_ns();
	int ret;

	h->addr = slot_addr(d, op->first);
	h->len = (size_t)op->n * d->mpsz;
	h->fd[0] = h->fd[1] = -1;
	if (d->kind == PK_IO_URING) {
		struct iovec iov = { h->addr, h->len };

		ret = io_uring_queue_init(4, &h->ring, 0);
		if (ret)
			return ret;
		ms_inject_point(d->ctx, "io_uring_register");
		ret = io_uring_register_buffers(&h->ring, &iov, 1);
		if (ms_inject_done(d->ctx, "io_uring_register", ret ? -1 : 0, -ret))
			ret = GP_INJECTED;
		if (ret) {
			io_uring_queue_exit(&h->ring);
			return ret;
		}
		h->live = true;
		pinned(d);
		ms_sample(d->ctx, d->st->m_pin, ms_now_ns() - t0);
		return 0;
	} else if (d->kind == PK_VMSPLICE) {
		ret = pin_vmsplice(h);
	} else {
		ret = pin_gup_lt(d, h);
	}
	h->live = true;
	if (ret) {
		drop_handle(d, h, false);
		return ret;
	}
	pinned(d);
	ms_sample(d->ctx, d->st->m_pin, ms_now_ns() - t0);
	return 0;
}

static int uring_rw(struct gp_pinh *h, bool write, char *addr, size_t len, off_t off, int fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&h->ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	if (write)
		io_uring_prep_write_fixed(sqe, fd, addr, (unsigned)len, (uint64_t)off, 0);
	else
		io_uring_prep_read_fixed(sqe, fd, addr, (unsigned)len, (uint64_t)off, 0);
	ret = io_uring_submit(&h->ring);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(&h->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&h->ring, cqe);
	if (ret < 0)
		return ret;
	return (size_t)ret == len ? 0 : -EIO;
}

static int read_all(int fd, char *buf, size_t len, off_t off, bool seek)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = seek ? pread(fd, buf + done, len - done, off + (off_t)done) :
				   read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int write_at(int fd, const char *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Everything the pin holds, into the mailbox's data. */
static int exec_pread(struct gp_drv *d, unsigned pin)
{
	struct gp_pinh *h = &d->pin[pin];
	uint64_t ua = (uintptr_t)d->data, t0 = ms_now_ns();
	int ret;

	if (!h->live)
		return -EINVAL;
	if (d->kind == PK_IO_URING) {
		ret = uring_rw(h, true, h->addr, h->len, 0, d->scratch_fd);
		if (!ret)
			ret = read_all(d->scratch_fd, d->data, h->len, 0, true);
	} else if (d->kind == PK_VMSPLICE) {
		ret = read_all(h->fd[0], d->data, h->len, 0, false);
	} else {
		ret = ioctl(h->fd[0], GP_PIN_LONGTERM_TEST_READ, &ua) ? -errno : 0;
	}
	ms_sample(d->ctx, d->st->m_access, ms_now_ns() - t0);
	return ret;
}

/* io_uring: the op's fills go to the scratch file, then READ_FIXED into the pinned pages. */
static int exec_pwrite(struct gp_drv *d, const struct ms_rm_op *op)
{
	struct gp_pinh *h = &d->pin[op->pin];
	size_t len = (size_t)op->n * d->mpsz;
	int ret;

	if (!h->live || d->kind != PK_IO_URING)
		return -EINVAL;
	fill_pages(d, d->data, op, op->n);
	if ((ret = write_at(d->scratch_fd, d->data, len, 0)))
		return ret;
	return uring_rw(h, false, h->addr + (size_t)op->first * d->mpsz, len, 0, d->scratch_fd);
}

static int exec_unpin(struct gp_drv *d, unsigned pin)
{
	uint64_t t0 = ms_now_ns();

	if (!d->pin[pin].live)
		return -EINVAL;
	drop_handle(d, &d->pin[pin], true);
	ms_sample(d->ctx, d->st->m_unpin, ms_now_ns() - t0);
	return 0;
}

/* O_DIRECT: this process's pages go to the device and come back into the mailbox. */
static int exec_access(struct gp_drv *d, const struct ms_rm_op *op, bool write)
{
	char *addr = slot_addr(d, op->first);
	size_t len = (size_t)op->n * d->mpsz;
	uint64_t t0 = ms_now_ns();
	int ret;

	if (write) {
		fill_pages(d, d->data, op, op->n);
		ret = write_at(d->odirect_fd, d->data, len, 0);
		if (!ret)
			ret = read_all(d->odirect_fd, addr, len, 0, true);
	} else {
		ret = write_at(d->odirect_fd, addr, len, 0);
		if (!ret)
			ret = read_all(d->odirect_fd, d->data, len, 0, true);
	}
	ms_sample(d->ctx, d->st->m_access, ms_now_ns() - t0);
	return ret;
}

/*
 * One gup_test benchmark ioctl over the op's range: 0 when every page was taken, -EFAULT when
 * GUP stopped early (the ioctl itself succeeds and reports how far it got).
 */
static int exec_bench(struct gp_drv *d, const struct ms_rm_op *op, unsigned arg)
{
	static const unsigned long cmds[] = { GP_GUP_FAST_BENCHMARK, GP_PIN_FAST_BENCHMARK,
					      GP_PIN_LONGTERM_BENCHMARK,
					      GP_DUMP_USER_PAGES_TEST };
	struct gp_gup_test g = { .addr = (uintptr_t)slot_addr(d, op->first) };
	unsigned idx = arg & 0xff;
	int fd, ret = 0;

	g.size = (uint64_t)op->n * d->mpsz;
	g.nr_pages_per_call = (uint32_t)(g.size / d->cfg->psz);
	g.gup_flags = arg & 0x100 ? GP_FOLL_WRITE : 0;
	if (idx == 3) {
		g.test_flags = GP_DUMP_USE_PIN;
		g.which_pages[0] = 1;
	}
	fd = open(GP_GUP_TEST, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, cmds[idx], &g))
		ret = -errno;
	else if (g.size != (uint64_t)op->n * d->mpsz)
		ret = -EFAULT;
	close(fd);
	if (!ret && idx != 3) {
		ms_sample(d->ctx, d->st->m_pin, g.get_delta_usec * 1000);
		ms_sample(d->ctx, d->st->m_unpin, g.put_delta_usec * 1000);
	}
	return ret;
}

static int exec_cmd(struct gp_drv *d, const struct gp_cmd *c)
{
	switch (c->what) {
	case C_EXEC:
		return exec_op(d, &c->op);
	case C_CHECK:
		return exec_check(d);
	case C_PIN:
		return exec_pin(d, &c->op);
	case C_PREAD:
		return exec_pread(d, c->op.pin);
	case C_PWRITE:
		return exec_pwrite(d, &c->op);
	case C_UNPIN:
		return exec_unpin(d, c->op.pin);
	case C_ACCESS_READ:
	case C_ACCESS_WRITE:
		return exec_access(d, &c->op, c->what == C_ACCESS_WRITE);
	case C_BENCH:
		return exec_bench(d, &c->op, c->arg);
	default:
		return -EINVAL;
	}
}

/* ---- children: command loop ---- */

static void child_loop(struct gp_drv *d, unsigned me)
{
	struct gp_cmd c;
	int32_t ret;

	/* The parent's pins are the parent's: drop the inherited handles without releasing. */
	for (unsigned k = 0; k < MS_RM_MAX_PINS; k++)
		drop_handle(d, &d->pin[k], false);
	d->self = me;
	signal(SIGCHLD, SIG_DFL);
	for (;;) {
		if (read_all(d->cmd[me][0], (char *)&c, sizeof(c), 0, false))
			_exit(3);
		if (c.what == C_EXIT) {
			for (unsigned k = 0; k < MS_RM_MAX_PINS; k++)
				drop_handle(d, &d->pin[k], true);
			_exit(0);
		}
		ret = exec_cmd(d, &c);
		if (ms_write_all(d->reply[1], &ret, sizeof(ret)))
			_exit(3);
	}
}

/* Run a command in process p (this one, or a child through its pipe). */
static int run_in(struct gp_drv *d, unsigned p, const struct gp_cmd *c)
{
	int32_t ret;
	int status;

	if (p == d->self)
		return exec_cmd(d, c);
	if (p >= GP_MAX_PROCS || !d->pid[p])
		return -ESRCH;
	if (ms_write_all(d->cmd[p][1], c, sizeof(*c)))
		return -EPIPE;
	for (;;) {
		struct pollfd pfd = { d->reply[0], POLLIN, 0 };
		int n = poll(&pfd, 1, 200);

		if (n > 0)
			break;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (waitpid(d->pid[p], &status, WNOHANG) == d->pid[p]) {
			d->pid[p] = 0;
			return WIFSIGNALED(status) ? -(1000 + WTERMSIG(status)) : -ECHILD;
		}
	}
	if (read_all(d->reply[0], (char *)&ret, sizeof(ret), 0, false))
		return -EPIPE;
	return ret;
}

static int run_op(struct gp_drv *d, unsigned what, const struct ms_rm_op *op, unsigned arg)
{
	struct gp_cmd c = { .what = what, .arg = arg, .op = *op };

	return run_in(d, op->proc, &c);
}

static const char *err_str(int err, char *buf, size_t len)
{
	if (err <= -1000)
		snprintf(buf, len, "process killed by signal %d (%s)", -err - 1000,
			 strsignal(-err - 1000));
	else
		snprintf(buf, len, "%s", strerror(-err));
	return buf;
}

/* ---- the driver's view of everything: model, checks, steps ---- */

static bool best_effort(unsigned kind)
{
	return kind == MS_RM_COLLAPSE || kind == MS_RM_MIGRATE || kind == MS_RM_PAGEOUT ||
	       kind == MS_RM_COLD || kind == MS_RM_SPLIT;
}

static void op_text(const struct ms_rm_op *op, char *buf, size_t len)
{
	ms_rm_op_str(op, buf, len);
}

/* Where a view check found a mismatch: report it with its address and bytes. */
static void report_bad(struct gp_drv *d, unsigned p, const struct gp_bad *b)
{
	struct ms_rm_want w;
	char what[64];

	ms_rm_expect(d->m, p, b->slot, &w);
	snprintf(what, sizeof(what), "process %u sees the model's contents", p);
	report(d, what, "%u page(s) differ; first: slot %u addr %p byte %llu: expected 0x%02x "
	       "observed 0x%02x (page fill %016llx%s)", b->count, b->slot,
	       (void *)(slot_addr(d, b->slot) + b->off), (unsigned long long)b->off, b->want,
	       b->got, (unsigned long long)w.fill, w.has_alt ? " or its alternative" : "");
}

static bool check_view(struct gp_drv *d, unsigned p)
{
	struct gp_cmd c = { .what = C_CHECK, .op.proc = (uint8_t)p };
	uint64_t pages = 0;
	char err[96];
	int ret;

	for (uint32_t s = 0; s < d->nslots; s++) {
		ms_rm_expect(d->m, p, s, &d->want[s]);
		pages += d->want[s].view == MS_RM_V_DATA;
	}
	ret = run_in(d, p, &c);
	if (ret) {
		report(d, "check ran", "process %u could not check its pages: %s", p,
		       err_str(ret, err, sizeof(err)));
		return false;
	}
	ms_count(d->ctx, d->st->m_pages, pages);
	for (uint32_t s = 0; s < d->nslots; s++)
		if (d->code[s] == 1)
			ms_rm_observe(d->m, p, s, d->want[s].alt);
	if (!d->bad->count) {
		ms_check(d->ctx, true, "view", "%s", "");
		return true;
	}
	report_bad(d, p, d->bad);
	return false;
}

static bool check_all(struct gp_drv *d)
{
	bool ok = true;

	for (unsigned p = 0; p < GP_MAX_PROCS; p++)
		if (ms_rm_alive(d->m, p))
			ok &= check_view(d, p);
	return ok;
}

/* The model's page at i of what was read: through pin `pin`, or process p's view. */
static int want_at(struct gp_drv *d, int pin, unsigned p, uint32_t slot, uint32_t i,
		   struct ms_rm_want *w)
{
	int ret = pin >= 0 ? ms_rm_pin_expect(d->m, (unsigned)pin, i, w) :
			     ms_rm_expect(d->m, p, slot + i, w);

	/*
	 * The window's unmapped parts are PROT_NONE anonymous placeholders (so nothing else
	 * lands there): FOLL_FORCE reads them, as zeroes.
	 */
	if (!ret && pin < 0 && d->k->force && w->view == MS_RM_V_UNMAPPED) {
		w->view = MS_RM_V_DATA;
		w->fill = 0;
		w->has_alt = false;
	}
	return ret;
}

/* Compare n pages the mailbox holds with the model. */
static bool compare_data(struct gp_drv *d, const char *via, int pin, unsigned p,
			 uint32_t slot, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const char *page = d->data + (size_t)i * d->mpsz;
		struct ms_rm_want w;
		size_t off;

		if (want_at(d, pin, p, slot, i, &w) || w.view != MS_RM_V_DATA)
			continue;
		off = ms_page_check(page, d->mpsz, w.fill, 0);
		if (off == MS_PAGE_MATCH ||
		    (w.has_alt && ms_page_check(page, d->mpsz, w.alt, 0) == MS_PAGE_MATCH))
			continue;
		ms_page_expect(d->scratch, d->mpsz, w.fill, 0);
		/* cow.c marks these expected failures on hugetlb (known-bugs.md #5). */
		if (pin >= 0 && d->kind == PK_VMSPLICE && d->mk->huge) {
			set_verdict(d, CV_KNOWN, "hugetlb vmsplice pin sees another process's "
				    "write (cow.c xfail, known-bugs.md #5)");
			return false;
		}
		report(d, via, "page %u (slot %u) byte %llu: expected 0x%02x observed 0x%02x "
		       "(page fill %016llx)", i, slot + i, (unsigned long long)off,
		       d->scratch[off], (unsigned char)page[off], (unsigned long long)w.fill);
		return false;
	}
	ms_check(d->ctx, true, via, "%s", "");
	return true;
}

/* A model op that the kernel must refuse (or that failed in the model) and what really did. */
static void refusal(struct gp_drv *d, const struct ms_rm_op *op, int mret, int rret)
{
	char txt[96];

	op_text(op, txt, sizeof(txt));
	if (rret)
		ms_check(d->ctx, true, "refused", "%s", "");
	else
		report(d, "kernel refuses what the model refuses",
		       "%s succeeded; the model says %s", txt, strerror(-mret));
}

/*
 * Apply op to the model, then to the process. Returns 1 when the op was not applicable
 * (the model refused it with no kernel counterpart: random sequences skip those), 0 when
 * done, < 0 when the combination must stop.
 */
static int act(struct gp_drv *d, struct ms_rm_op *op)
{
	char err[96], txt[96];
	int mret = ms_rm_apply(d->m, op), rret;

	if (mret && mret != -EOPNOTSUPP)
		return 1;
	rret = run_op(d, C_EXEC, op, 0);
	if (mret) {
		refusal(d, op, mret, rret);
		return 0;
	}
	if (!rret || (best_effort(op->kind) && rret > -1000))
		return 0;
	op_text(op, txt, sizeof(txt));
	set_verdict(d, CV_ERROR, "%s failed: %s", txt, err_str(rret, err, sizeof(err)));
	return -EIO;
}

static int read_pagemap_entry(pid_t pid, uintptr_t addr, uint64_t *e)
{
	char path[64];
	int fd, ret = 0;

	*e = 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, e, sizeof(*e), (off_t)(addr / 4096 * 8)) != sizeof(*e))
		ret = -EIO;
	close(fd);
	return ret;
}

static int read_pagemap(pid_t pid, uintptr_t addr, uint64_t *pfn)
{
	uint64_t e;
	int ret = read_pagemap_entry(pid, addr, &e);

	*pfn = (e & GP_PM_PRESENT) ? e & ((1ULL << 55) - 1) : 0;
	return ret;
}

static int read_kpage(const char *file, uint64_t pfn, uint64_t *v)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (pread(fd, v, sizeof(*v), (off_t)(pfn * 8)) != sizeof(*v))
		ret = -EIO;
	close(fd);
	return ret;
}

static pid_t pid_of(const struct gp_drv *d, unsigned p)
{
	return p == d->self ? getpid() : d->pid[p];
}

/*
 * Base pages of [slot, +n) that p maps: what a FOLL_PIN of that range surely adds to
 * nr_foll_pin_acquired (pins of the shared zero page are not counted since 6.5).
 */
static uint64_t count_mapped(const struct gp_drv *d, unsigned p, uint32_t slot, uint32_t n)
{
	uint64_t pages = 0;

	for (uint32_t i = 0; i < n; i++)
		pages += ms_rm_mapcount(d->m, p, slot + i) > 0;
	return pages * (d->mpsz / d->cfg->psz);
}

/* The PFNs behind a pin, to see their map counts settle at the end. */
static void record_pfns(struct gp_drv *d, unsigned p, uint32_t first, uint32_t n)
{
	if (!d->cfg->have_kpage)
		return;
	for (uint32_t i = 0; i < n && d->npfns < MS_ARRAY_SIZE(d->pfns); i++) {
		uint64_t pfn;

		if (!read_pagemap(pid_of(d, p), (uintptr_t)slot_addr(d, first + i), &pfn) && pfn)
			d->pfns[d->npfns++] = pfn;
	}
}

static bool thp_backed(struct gp_drv *d, uint32_t slot)
{
	uint64_t pfn = 0, flags = 0;

	if (!d->cfg->have_kpage)
		return true;	/* cannot tell: the checks still hold for small pages */
	if (read_pagemap(getpid(), (uintptr_t)slot_addr(d, slot), &pfn) || !pfn ||
	    read_kpage("/proc/kpageflags", pfn, &flags))
		return false;
	return flags & (1ULL << GP_KPF_THP);
}

/* After the first populate: is it THP, and for thp-pte, PTE-map it as cow.c does. */
static int prepare_thp(struct gp_drv *d)
{
	if (!d->mk->thp || d->checked_thp)
		return 0;
	d->checked_thp = true;
	if (!thp_backed(d, d->base[0])) {
		set_verdict(d, CV_SKIP, "no THP backs the region (kpageflags): memory "
			    "fragmented, or THP disabled for it");
		return -EAGAIN;
	}
	if (!d->mk->pte)
		return 0;
	return do_split(d, d->base[0], d->npages, MS_RM_PROT_READ | MS_RM_PROT_WRITE, false) ?
	       -EIO : 0;
}

/*
 * The zero kinds populate by reading: the process then maps the shared zero page (or the huge
 * one), which the model already says of a slot mapped but never written. Is it really there?
 */
static int populate_zero(struct gp_drv *d, unsigned p, uint32_t first, uint32_t n)
{
	const char *what = d->mk->zero == 2 ? "the huge zero page" : "the shared zero page";
	uint64_t pfn = 0, flags = 0, want = 1ULL << GP_KPF_ZERO_PAGE;

	if (p != d->self)
		return 1;
	for (size_t off = 0; off < (size_t)n * d->mpsz; off += d->cfg->psz)
		(void)*(volatile char *)(slot_addr(d, first) + off);
	if (!d->cfg->have_kpage)
		return 0;
	if (d->mk->zero == 2)
		want |= 1ULL << GP_KPF_THP;
	if (read_pagemap(getpid(), (uintptr_t)slot_addr(d, first), &pfn) || !pfn ||
	    read_kpage("/proc/kpageflags", pfn, &flags) || (flags & want) != want) {
		set_verdict(d, CV_SKIP, "a read fault did not map %s (kpageflags %#llx)", what,
			    (unsigned long long)flags);
		return -EAGAIN;
	}
	return 0;
}

/* ---- steps ---- */

/*
 * A MADV_DONTFORK range leaves a hole in the child where the window had a mapping: give it a
 * placeholder too, so that nothing lands there and FOLL_FORCE reads it as zeroes, as it
 * reads every other unmapped part of the window.
 */
static void fill_holes(struct gp_drv *d, unsigned me)
{
	for (uint32_t s = 0; s < d->nslots; s++) {
		struct ms_rm_want w;

		if (!ms_rm_expect(d->m, me, s, &w) && w.view == MS_RM_V_UNMAPPED)
			placeholder(d, s, 1);	/* -EEXIST: the inherited placeholder */
	}
}

static int act_fork(struct gp_drv *d, unsigned parent)
{
	struct ms_rm_op op = { .kind = MS_RM_FORK, .proc = (uint8_t)parent };
	uint64_t t0;
	pid_t pid;
	int ret;

	if (parent != d->self)
		return 1;		/* only the driver forks: it reaps */
	if ((ret = ms_rm_apply(d->m, &op)))
		return 1;
	if (op.out >= GP_MAX_PROCS) {
		struct ms_rm_op undo = { .kind = MS_RM_EXIT, .proc = op.out };

		ms_rm_apply(d->m, &undo);
		return 1;
	}
	t0 = ms_now_ns();
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fill_holes(d, op.out);
		child_loop(d, op.out);
	}
	if (pid < 0) {
		set_verdict(d, CV_ERROR, "fork: %s", strerror(errno));
		return -EIO;
	}
	ms_sample(d->ctx, d->st->m_fork, ms_now_ns() - t0);
	d->pid[op.out] = pid;
	d->base[op.out] = d->base[parent];
	return 0;
}

static int act_exit(struct gp_drv *d, unsigned p)
{
	struct ms_rm_op op = { .kind = MS_RM_EXIT, .proc = (uint8_t)p };
	struct gp_cmd c = { .what = C_EXIT };
	int status;

	if (p == d->self || !ms_rm_alive(d->m, p))
		return 1;
	ms_rm_apply(d->m, &op);
	if (d->tproc == (int)p)
		d->tproc = -1;
	if (!d->pid[p])
		return 0;
	if (ms_write_all(d->cmd[p][1], &c, sizeof(c)))
		kill(d->pid[p], SIGKILL);
	while (waitpid(d->pid[p], &status, 0) < 0 && errno == EINTR)
		;
	d->pid[p] = 0;
	if (WIFSIGNALED(status))
		report(d, "child exits cleanly", "process %u died of signal %d (%s)", p,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	return 0;
}

/* A pin the model expects to work was refused by the kernel. */
static int pin_refused(struct gp_drv *d, const struct ms_rm_op *op, int ret)
{
	char err[96], txt[96];

	op_text(op, txt, sizeof(txt));
	err_str(ret, err, sizeof(err));
	if (ret == -E2BIG) {
		set_verdict(d, CV_SKIP, "a pipe cannot hold %zu bytes (fs.pipe-max-size, no "
			    "CAP_SYS_RESOURCE)", (size_t)op->n * d->mpsz);
		return -EAGAIN;
	}
	if (d->mk->file) {
		/* Longterm pins of file pages differ by version and filesystem. */
		set_verdict(d, CV_SKIP, "the kernel refused %s on %s memory: %s", d->k->name,
			    d->mk->name, err);
		return -EAGAIN;
	}
	report(d, "pin taken", "%s: %s", txt, err);
	return -EIO;
}

/* Persistent kinds: model pin and real pin in the owner. Returns the pin id or < 0. */
static int pin_persistent(struct gp_drv *d, unsigned p, uint32_t first, uint32_t n)
{
	struct ms_rm_op op = { .kind = MS_RM_PIN, .proc = (uint8_t)p, .first = first, .n = n,
			       .flags = (uint8_t)d->k->flags };
	int mret = ms_rm_apply(d->m, &op), rret;

	if (mret && mret != -EOPNOTSUPP)
		return -ENOENT;
	rret = run_op(d, C_PIN, &op, 0);
	if (mret) {
		refusal(d, &op, mret, rret);
		if (!rret) {
			struct gp_cmd c = { .what = C_UNPIN, .op = op };

			run_in(d, p, &c);
		}
		return -ENOENT;
	}
	if (rret) {
		struct ms_rm_op undo = { .kind = MS_RM_UNPIN, .pin = op.out };

		ms_rm_apply(d->m, &undo);
		/* An injected failure: an expected result; the model has no pin, like the kernel. */
		return rret == GP_INJECTED ? -ENOENT : pin_refused(d, &op, rret);
	}
	if (!(d->k->flags & MS_RM_PF_GET))
		d->pinned_pages += count_mapped(d, p, first, n);
	record_pfns(d, p, first, n);
	return op.out;
}

/* Process p's pages [slot, +n) read through a transient kind into the mailbox. */
static int access_remote(struct gp_drv *d, unsigned p, uint32_t slot, uint32_t n, bool write,
			 const struct ms_rm_op *wop)
{
	size_t len = (size_t)n * d->mpsz;
	uintptr_t addr = (uintptr_t)slot_addr(d, slot);
	struct iovec local = { d->data, len }, remote = { (void *)addr, len };
	uint64_t t0 = ms_now_ns();
	char path[64];
	ssize_t got;
	int fd, ret = 0;

	if (write)
		fill_pages(d, d->data, wop, n);
	if (d->kind == PK_PROCESS_VM) {
		got = write ? process_vm_writev(pid_of(d, p), &local, 1, &remote, 1, 0) :
			      process_vm_readv(pid_of(d, p), &local, 1, &remote, 1, 0);
		ret = got < 0 ? -errno : (size_t)got == len ? 0 : -EIO;
	} else {
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid_of(d, p));
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ret = write ? write_at(fd, d->data, len, (off_t)addr) :
			      read_all(fd, d->data, len, (off_t)addr, true);
		close(fd);
	}
	ms_sample(d->ctx, d->st->m_access, ms_now_ns() - t0);
	return ret;
}

/* Read p's view of [slot, +n) through the transient kind; the model knows what it must be. */
static int transient_read(struct gp_drv *d, unsigned p, uint32_t slot, uint32_t n)
{
	struct ms_rm_op op = { .proc = (uint8_t)p, .first = slot, .n = n };
	bool readable = true;
	char err[96];
	int ret;

	for (uint32_t i = 0; i < n; i++) {
		struct ms_rm_want w;

		want_at(d, -1, p, slot, i, &w);
		readable &= w.view == MS_RM_V_DATA;
	}
	if (d->kind == PK_ODIRECT) {
		struct gp_cmd c = { .what = C_ACCESS_READ, .op = op };

		ret = run_in(d, p, &c);
	} else {
		ret = access_remote(d, p, slot, n, false, NULL);
	}
	if (!readable) {
		ms_check(d->ctx, ret != 0, "access to unmapped memory fails",
			 "%s: %s read of slots %u+%u of process %u succeeded", d->label,
			 d->k->name, slot, n, p);
		if (!ret)
			set_verdict(d, CV_FAIL, "%s read unmapped memory", d->k->name);
		return 0;
	}
	if (ret) {
		report(d, "transient access works", "%s read of process %u slots %u+%u: %s",
		       d->k->name, p, slot, n, err_str(ret, err, sizeof(err)));
		return -EIO;
	}
	if (d->kind == PK_PROCESS_VM)
		d->pinned_pages += count_mapped(d, p, slot, n);
	record_pfns(d, p, slot, n);
	compare_data(d, "read through the transient pin matches the view", -1, p, slot, n);
	return 0;
}

static bool some_writable(struct gp_drv *d, unsigned p, uint32_t slot, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct ms_rm_want w;

		ms_rm_expect(d->m, p, slot + i, &w);
		if (w.writable)
			return true;
	}
	return false;
}

/* Write p's [slot, +n) through the transient kind: a write by p (FOLL_FORCE for procmem). */
static int transient_write(struct gp_drv *d, unsigned p, uint32_t slot, uint32_t n)
{
	struct ms_rm_op op = { .kind = d->k->force ? MS_RM_FORCE_WRITE : MS_RM_WRITE,
			       .proc = (uint8_t)p, .first = slot, .n = n, .flags = MS_RM_W_GUP };
	int mret, rret;
	char err[96];

	mret = ms_rm_apply(d->m, &op);
	if (mret == -EFAULT || mret == -EINVAL)
		return 1;
	/* A refused write over a partly writable range writes part of it: no model for that. */
	if (mret && some_writable(d, p, slot, n))
		return 1;
	if (d->kind == PK_ODIRECT) {
		struct gp_cmd c = { .what = C_ACCESS_WRITE, .op = op };

		rret = run_in(d, p, &c);
	} else {
		rret = access_remote(d, p, slot, n, true, &op);
	}
	if (mret) {
		refusal(d, &op, mret, rret);
		return 0;
	}
	if (rret) {
		report(d, "transient write works", "%s write of process %u slots %u+%u: %s",
		       d->k->name, p, slot, n, err_str(rret, err, sizeof(err)));
		return -EIO;
	}
	if (d->kind == PK_PROCESS_VM)
		d->pinned_pages += count_mapped(d, p, slot, n);
	return 0;
}

/* Does p map the shared zero page somewhere in [slot, +n) (anonymous, read, never written)? */
static bool zero_pages(const struct gp_drv *d, unsigned p, uint32_t slot, uint32_t n)
{
	if (d->mk->file || d->mk->huge)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		struct ms_rm_want w;

		ms_rm_expect(d->m, p, slot + i, &w);
		if (w.view == MS_RM_V_DATA && !ms_rm_mapcount(d->m, p, slot + i))
			return true;
	}
	return false;
}

/*
 * gup-bench: each benchmark ioctl pins and unpins at once. In the model a PIN + UNPIN of
 * the same flags: R/O FOLL_PIN unshares, FOLL_WRITE breaks COW, contents stay.
 */
static int bench(struct gp_drv *d, unsigned p, uint32_t slot, uint32_t n)
{
	static const unsigned pf[3] = { MS_RM_PF_GET, 0, MS_RM_PF_LONGTERM };
	int ret;

	for (unsigned w = 0; w < 2; w++)
		for (unsigned i = 0; i < 3; i++) {
			struct ms_rm_op op = { .kind = MS_RM_PIN, .proc = (uint8_t)p,
					       .first = slot, .n = n };
			int mret;

			/*
			 * pin_user_pages() leaves the shared zero page unpinned (6.5+), and
			 * gup_test's verify_dma_pinned() WARNs about it: not over zero pages.
			 */
			if (i == 1 && !w && zero_pages(d, p, slot, n)) {
				d->zero_skips++;
				continue;
			}
			op.flags = (uint8_t)(pf[i] | (w ? MS_RM_PF_WRITE : 0));
			mret = ms_rm_apply(d->m, &op);
			if (mret && mret != -EOPNOTSUPP)
				return 1;
			ret = run_op(d, C_BENCH, &op, i | (w ? 0x100 : 0));
			if (!mret) {
				struct ms_rm_op un = { .kind = MS_RM_UNPIN, .pin = op.out };

				ms_rm_apply(d->m, &un);
			}
			if (mret) {
				refusal(d, &op, mret, ret);
				continue;
			}
			if (ret) {
				char txt[96], err[96];

				op_text(&op, txt, sizeof(txt));
				report(d, "gup_test benchmark pins every page", "%s: %s", txt,
				       err_str(ret, err, sizeof(err)));
				return -EIO;
			}
			if (i)
				d->pinned_pages += count_mapped(d, p, slot, n);
		}
	/* DUMP_USER_PAGES_TEST: dump_page() of the first page, pinned, to the kernel log. */
	{
		struct ms_rm_op op = { .kind = MS_RM_PIN, .proc = (uint8_t)p, .first = slot,
				       .n = n };
		char err[96];

		if (ms_rm_apply(d->m, &op))
			return 1;
		ret = run_op(d, C_BENCH, &op, 3);
		op = (struct ms_rm_op){ .kind = MS_RM_UNPIN, .pin = op.out };
		ms_rm_apply(d->m, &op);
		ms_check(d->ctx, !ret, "gup_test DUMP_USER_PAGES_TEST",
			 "%s: %s", d->label, err_str(ret, err, sizeof(err)));
		if (ret)
			set_verdict(d, CV_FAIL, "DUMP_USER_PAGES_TEST: %s", err);
		else
			d->pinned_pages += count_mapped(d, p, slot, n);
	}
	record_pfns(d, p, slot, n);
	return 0;
}

/* ---- pins as scenarios and sequences use them ---- */

/* Take a pin on p's region [off, +n). Persistent: the pin id; transient: 0. < 0: none. */
static int do_pin(struct gp_drv *d, unsigned p, uint32_t off, uint32_t n)
{
	uint32_t slot = d->base[p] + off;

	if (d->k->persistent)
		return pin_persistent(d, p, slot, n);
	d->tproc = (int)p;
	d->toff = off;
	d->tn = n;
	if (d->kind == PK_BENCH)
		return bench(d, p, slot, n) < 0 ? -EIO : 0;
	return transient_read(d, p, slot, n) < 0 ? -EIO : 0;
}

static int do_unpin(struct gp_drv *d, int pin)
{
	struct ms_rm_op op = { .kind = MS_RM_UNPIN, .pin = (uint8_t)pin };
	unsigned owner;
	char err[96];
	int ret;

	if (!d->k->persistent || pin < 0 || ms_rm_pin_info(d->m, (unsigned)pin, &owner, NULL,
							   NULL, NULL))
		return 1;
	ms_rm_apply(d->m, &op);
	op.proc = (uint8_t)owner;
	ret = run_op(d, C_UNPIN, &op, 0);
	if (ret) {
		report(d, "unpin", "pin #%d of process %u: %s", pin, owner,
		       err_str(ret, err, sizeof(err)));
		return -EIO;
	}
	return 0;
}

/* Read back through the pin and compare with the model (transient: p's view now). */
static int do_pread(struct gp_drv *d, int pin)
{
	struct ms_rm_op op = { .pin = (uint8_t)pin };
	unsigned owner;
	uint32_t first, n;
	char err[96];
	int ret;

	if (!d->k->persistent) {
		if (d->tproc < 0 || !ms_rm_alive(d->m, (unsigned)d->tproc))
			return 1;
		first = d->base[d->tproc] + d->toff;
		if (d->kind == PK_BENCH)
			return bench(d, (unsigned)d->tproc, first, d->tn) < 0 ? -EIO : 0;
		return transient_read(d, (unsigned)d->tproc, first, d->tn);
	}
	if (pin < 0 || ms_rm_pin_info(d->m, (unsigned)pin, &owner, &first, &n, NULL))
		return 1;
	op.proc = (uint8_t)owner;
	ret = run_op(d, C_PREAD, &op, 0);
	if (ret) {
		report(d, "read through the pin", "pin #%d of process %u: %s", pin, owner,
		       err_str(ret, err, sizeof(err)));
		return -EIO;
	}
	compare_data(d, "the pin holds the model's contents", pin, owner, first, n);
	if (d->k->read_destroys)
		return do_unpin(d, pin) < 0 ? -EIO : 0;
	return 0;
}

static int do_pwrite(struct gp_drv *d, int pin)
{
	struct ms_rm_op op = { .kind = MS_RM_PIN_WRITE, .pin = (uint8_t)pin };
	unsigned owner;
	uint32_t n;
	char err[96];
	int ret;

	if (!d->k->can_write)
		return 1;
	if (!d->k->persistent) {
		if (d->tproc < 0 || !ms_rm_alive(d->m, (unsigned)d->tproc))
			return 1;
		return transient_write(d, (unsigned)d->tproc, d->base[d->tproc] + d->toff, d->tn);
	}
	if (pin < 0 || ms_rm_pin_info(d->m, (unsigned)pin, &owner, NULL, &n, NULL))
		return 1;
	op.first = 0;
	op.n = n;
	if (ms_rm_apply(d->m, &op))
		return 1;
	op.proc = (uint8_t)owner;
	ret = run_op(d, C_PWRITE, &op, 0);
	if (ret) {
		report(d, "write through the pin", "pin #%d of process %u: %s", pin, owner,
		       err_str(ret, err, sizeof(err)));
		return -EIO;
	}
	return 0;
}


/* Is p's page at slot held by a FOLL_GET reference (get) or a FOLL_PIN pin (!get)? */
static bool slot_pinned(const struct gp_drv *d, unsigned p, uint32_t slot, bool get)
{
	for (unsigned k = 0; k < MS_RM_MAX_PINS; k++) {
		unsigned flags;
		uint32_t n;

		if (ms_rm_pin_info(d->m, k, NULL, NULL, &n, &flags) ||
		    !(flags & MS_RM_PF_GET) != !get)
			continue;
		for (uint32_t i = 0; i < n; i++)
			if (ms_rm_same_page(d->m, p, slot, k, i))
				return true;
	}
	return false;
}

/*
 * Some page of slot's folio (an aligned block of folio pages) is pinned or referenced: reclaim
 * cannot split such a large folio to swap it, so none of its pages need go.
 */
static bool folio_held(const struct gp_drv *d, unsigned p, uint32_t slot)
{
	uint32_t fp = (uint32_t)(mem_folio(d->cfg, d->mk) / d->mpsz), first = slot / fp * fp;

	for (uint32_t s = first; s < first + fp && s < d->nslots; s++)
		if (slot_pinned(d, p, s, false) || slot_pinned(d, p, s, true))
			return true;
	return false;
}

/*
 * After a MADV_PAGEOUT with swap on, pagemap says what reclaim did: a FOLL_PIN-pinned page
 * must still be present (reclaim cannot unmap it: the anon-exclusive bit cannot be cleared
 * while pinned), and in the fixed scenarios every page mapped once, not lazyfree, without a
 * FOLL_GET reference and not in a large folio with a pinned or referenced page must be a swap
 * entry (bit 62). Random sequences
 * leave partial THPs and shared folios, where reclaim may rightly skip: only the first rule.
 */
static void check_swapped(struct gp_drv *d, unsigned p, uint32_t first, uint32_t n)
{
	bool strict = d->cfg->mode == MODE_MATRIX;
	pid_t pid = pid_of(d, p);

	for (uint32_t s = first; s < first + n; s++) {
		uintptr_t addr = (uintptr_t)slot_addr(d, s);
		struct ms_rm_want w;
		uint64_t e;

		ms_rm_expect(d->m, p, s, &w);
		if (w.view != MS_RM_V_DATA || w.has_alt || ms_rm_mapcount(d->m, p, s) != 1 ||
		    read_pagemap_entry(pid, addr, &e))
			continue;
		if (slot_pinned(d, p, s, false)) {
			if ((e & GP_PM_SWAP) || !(e & GP_PM_PRESENT))
				report(d, "a pinned page stays mapped through MADV_PAGEOUT",
				       "process %u slot %u: pagemap %#llx (%s)", p, s,
				       (unsigned long long)e, e & GP_PM_SWAP ? "swapped out" :
				       "not present");
			continue;
		}
		if (!strict || (e & GP_PM_SWAP) || slot_pinned(d, p, s, true) ||
		    (d->mk->thp && folio_held(d, p, s)))
			continue;
		/* Faulted on another CPU, a page may still sit in that CPU's LRU batch. */
		if (p == d->self && !madvise((void *)addr, d->mpsz, MADV_PAGEOUT) &&
		    !read_pagemap_entry(pid, addr, &e) && (e & GP_PM_SWAP))
			continue;
		report(d, "MADV_PAGEOUT swaps out unpinned exclusive pages", "process %u slot %u: "
		       "pagemap %#llx, not a swap entry (swap is on)", p, s,
		       (unsigned long long)e);
		return;
	}
	if (!d->swap_checked)
		ms_check(d->ctx, true, "pagemap after MADV_PAGEOUT", "%s: pinned pages present, "
			 "the rest swapped out", d->label);
	d->swap_checked = true;
}
static int do_model_op(struct gp_drv *d, unsigned kind, unsigned p, uint32_t first, uint32_t n,
		       unsigned flags)
{
	struct ms_rm_op op = { .kind = (uint8_t)kind, .proc = (uint8_t)p, .first = first,
			       .n = n, .flags = (uint8_t)flags };
	int ret;

	if (kind == MS_RM_SPLIT) {
		struct ms_rm_want w;

		ms_rm_expect(d->m, p, first, &w);
		op.flags = w.writable ? RW : RO;
	}
	ret = act(d, &op);
	if (!ret && kind == MS_RM_PAGEOUT && d->cfg->swap_on && d->mk->swappable)
		check_swapped(d, p, first, n);
	return ret;
}

/* Fill the region (or, for the zero kinds, read-fault it); then check what backs it. */
static int populate(struct gp_drv *d, unsigned p, uint32_t first, uint32_t n)
{
	int ret = d->mk->zero ? populate_zero(d, p, first, n) :
		  do_model_op(d, MS_RM_POPULATE, p, first, n, 0);

	return ret ? ret : prepare_thp(d);
}

/* Is [addr, +len) inside one VMA of process pid? */
static bool one_vma(pid_t pid, uintptr_t addr, size_t len)
{
	unsigned long lo, hi;
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= addr && addr + len <= hi;
	fclose(f);
	return found;
}

static int do_mremap_region(struct gp_drv *d, unsigned p)
{
	uint32_t to = d->base[p] ? 0 : d->npages;
	struct ms_rm_op op = { .kind = MS_RM_MREMAP, .proc = (uint8_t)p, .first = d->base[p],
			       .n = d->npages, .to = to, .n2 = d->npages };
	int ret;

	/*
	 * mremap() needs the range in one VMA; the model has no VMAs. Whether adjacent anon
	 * VMAs merged again after mprotect, mremap or fork differs between kernels.
	 */
	if (!one_vma(pid_of(d, p), (uintptr_t)slot_addr(d, op.first),
		     (size_t)op.n * d->mpsz))
		return 1;
	ret = act(d, &op);

	if (!ret)
		d->base[p] = to;
	return ret;
}

/* ---- the end of every combination ---- */

static bool pfn_recorded(const struct gp_drv *d, uint64_t pfn)
{
	for (unsigned i = 0; i < d->npfns; i++)
		if (d->pfns[i] == pfn)
			return true;
	return false;
}

/*
 * With the pins gone and only the driver left, each page that was pinned and is still mapped
 * here is mapped once: /proc/kpagecount (the map count) is back to 1.
 */
static void check_kpagecount(struct gp_drv *d)
{
	unsigned checked = 0;

	if (!d->cfg->have_kpage || !d->npfns)
		return;
	for (uint32_t s = 0; s < d->nslots; s++) {
		uint64_t pfn, count;
		unsigned want = ms_rm_mapcount(d->m, 0, s);

		if (!want || read_pagemap(getpid(), (uintptr_t)slot_addr(d, s), &pfn) || !pfn ||
		    !pfn_recorded(d, pfn) || read_kpage("/proc/kpagecount", pfn, &count))
			continue;
		checked++;
		if (count == want)
			continue;
		report(d, "kpagecount of pinned pages back to baseline", "pfn %#llx at slot %u: "
		       "kpagecount %llu, expected %u (pins released, children gone)",
		       (unsigned long long)pfn, s, (unsigned long long)count, want);
		return;
	}
	if (checked)
		ms_check(d->ctx, true, "kpagecount", "%s", "");
}

static void finish(struct gp_drv *d)
{
	for (unsigned k = 0; k < MS_RM_MAX_PINS; k++) {
		if (ms_rm_pin_info(d->m, k, NULL, NULL, NULL, NULL))
			continue;
		/* A pipe's contents are checked once, at the end, if not already. */
		if (d->k->read_destroys)
			do_pread(d, (int)k);
		else
			do_unpin(d, (int)k);
	}
	for (unsigned p = 1; p < GP_MAX_PROCS; p++)
		if (ms_rm_alive(d->m, p))
			act_exit(d, p);
	check_all(d);
	check_kpagecount(d);
}

/* ---- scenarios ---- */

static bool used_later(const struct gp_scen *sc, unsigned i)
{
	for (unsigned j = i + 1; sc->steps[j].op != S_END; j++)
		if (sc->steps[j].op == S_PREAD || sc->steps[j].op == S_PWRITE)
			return true;
	return false;
}

static int run_step(struct gp_drv *d, const struct gp_scen *sc, unsigned i, int *pin)
{
	const struct gp_step *s = &sc->steps[i];
	unsigned p = s->proc;
	uint32_t off = s->range == R_REST ? d->pin_n : 0;
	uint32_t n = s->range == R_ALL ? d->npages : s->range == R_PIN ? d->pin_n :
		     d->npages - d->pin_n;
	int ret = 0;

	if (!ms_rm_alive(d->m, p)) {
		set_verdict(d, CV_ERROR, "scenario step %u: process %u is gone", i, p);
		return -EIO;
	}
	switch (s->op) {
	case S_POP:
	case S_W:
		ret = s->op == S_POP ? populate(d, p, d->base[p] + off, n) :
		      do_model_op(d, MS_RM_WRITE, p, d->base[p] + off, n, 0);
		break;
	case S_PIN:
		ret = do_pin(d, p, off, n);
		if (d->k->persistent && ret >= 0)
			*pin = ret;
		ret = ret == -ENOENT ? 0 : ret < 0 ? ret : 0;
		break;
	case S_PREAD:
		if (!(d->k->read_destroys && used_later(sc, i)))
			ret = do_pread(d, *pin);
		break;
	case S_PWRITE:
		ret = do_pwrite(d, *pin);
		break;
	case S_UNPIN:
		ret = do_unpin(d, *pin);
		break;
	case S_FORK:
		ret = act_fork(d, p);
		break;
	case S_EXIT:
		ret = act_exit(d, p);
		break;
	case S_MPROT:
		ret = do_model_op(d, MS_RM_MPROTECT, p, d->base[p] + off, n, s->arg);
		break;
	case S_MADV:
		ret = do_model_op(d, s->arg, p, d->base[p] + off, n, 0);
		break;
	case S_MREMAP:
		ret = do_mremap_region(d, p);
		break;
	case S_MUNMAP:
		ret = do_model_op(d, MS_RM_MUNMAP, p, d->base[p] + off, n, 0);
		break;
	}
	if (ret == 1 && s->op != S_PREAD && s->op != S_PWRITE && s->op != S_UNPIN) {
		char ops[160];

		history(d, ops, sizeof(ops));
		set_verdict(d, CV_ERROR, "scenario step %u not applicable (model refused); ops: %s",
			    i, ops);
		return -EIO;
	}
	return ret < 0 ? ret : 0;
}

static int run_scenario(struct gp_drv *d, const struct gp_scen *sc)
{
	int pin = -1, ret;

	for (unsigned i = 0; sc->steps[i].op != S_END; i++) {
		if ((ret = run_step(d, sc, i, &pin)))
			return ret;
		check_all(d);
	}
	return 0;
}

/* ---- random sequences ---- */

static unsigned live_procs(const struct gp_drv *d, unsigned *list)
{
	unsigned n = 0;

	for (unsigned p = 0; p < GP_MAX_PROCS; p++)
		if (ms_rm_alive(d->m, p))
			list[n++] = p;
	return n;
}

static int active_pins(const struct gp_drv *d, int *list)
{
	int n = 0;

	for (unsigned k = 0; k < MS_RM_MAX_PINS; k++)
		if (!ms_rm_pin_info(d->m, k, NULL, NULL, NULL, NULL))
			list[n++] = (int)k;
	return n;
}

/* One random op; 1 when it did not apply (pick another). */
static int random_op(struct gp_drv *d)
{
	static const unsigned madv[] = { MS_RM_DONTNEED, MS_RM_FREE, MS_RM_COLD, MS_RM_PAGEOUT,
					 MS_RM_MIGRATE, MS_RM_SPLIT, MS_RM_COLLAPSE,
					 MS_RM_DONTFORK };
	unsigned procs[GP_MAX_PROCS], np = live_procs(d, procs), p;
	int pins[MS_RM_MAX_PINS], npins = active_pins(d, pins), pin;
	unsigned cap = d->k->gup_test ? 1 : 2, r = (unsigned)(gp_rand(&d->rng) % 100);
	uint32_t off = (uint32_t)(gp_rand(&d->rng) % d->npages), n;

	p = procs[gp_rand(&d->rng) % np];
	n = 1 + (uint32_t)(gp_rand(&d->rng) % (d->npages - off));
	pin = npins ? pins[gp_rand(&d->rng) % (unsigned)npins] : -1;
	if (r < 25)
		return do_model_op(d, MS_RM_WRITE, p, d->base[p] + off, n, 0);
	if (r < 33)
		return np < GP_MAX_PROCS ? act_fork(d, 0) : 1;
	if (r < 38)
		return np > 1 ? act_exit(d, procs[1 + gp_rand(&d->rng) % (np - 1)]) : 1;
	if (r < 50) {
		if (d->k->persistent && (unsigned)npins >= cap)
			return 1;
		return do_pin(d, p, off, n) < 0 && d->verdict >= CV_FAIL ? -EIO : 0;
	}
	if (r < 58)
		return do_pread(d, pin);
	if (r < 64)
		return do_pwrite(d, pin);
	if (r < 70)
		return do_unpin(d, pin);
	if (r < 85) {
		unsigned kind = madv[gp_rand(&d->rng) % MS_ARRAY_SIZE(madv)];

		if (kind == MS_RM_MIGRATE && d->cfg->numa_nodes < 2 && !d->cfg->in_guest)
			return 1;
		return do_model_op(d, kind, p, d->base[p] + off, n, 0);
	}
	if (r < 93)
		return do_model_op(d, MS_RM_MPROTECT, p, d->base[p] + off, n,
				   gp_rand(&d->rng) & 1 ? RO : RW);
	return do_mremap_region(d, p);
}

static int run_random(struct gp_drv *d, uint64_t seed)
{
	int ret;

	d->rng = seed;
	if ((ret = populate(d, 0, 0, d->npages)))
		return ret < 0 ? ret : -EIO;
	check_all(d);
	for (uint32_t step = 0; step < d->cfg->steps && d->verdict < CV_FAIL; step++) {
		for (int tries = 0; tries < 20; tries++)
			if ((ret = random_op(d)) != 1)
				break;
		if (ret < 0)
			return ret;
		check_all(d);
	}
	return 0;
}

/* ---- driver setup ---- */

struct gp_job {
	int kind, mem;
	int scen;			/* index in gp_scens, or -1 for a random sequence */
	uint64_t seed;
};

static size_t align_up_sz(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static int reserve_window(struct gp_drv *d, size_t align)
{
	size_t len = d->win_bytes + align;
	char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		       0), *at;

	if (p == MAP_FAILED)
		return -errno;
	at = (char *)align_up_sz((uintptr_t)p, align);
	if (at > p)
		munmap(p, (size_t)(at - p));
	if (at + d->win_bytes < p + len)
		munmap(at + d->win_bytes, (size_t)(p + len - (at + d->win_bytes)));
	d->win = at;
	return 0;
}

static int make_file(struct gp_drv *d)
{
	char path[PATH_MAX];
	size_t bytes = (size_t)d->nslots * d->mpsz;
	int ret;

	if (d->mk->regular) {
		snprintf(path, sizeof(path), "%s/gup-file-XXXXXX", d->cfg->tmpdir);
		d->fd = mkostemp(path, O_CLOEXEC);
		if (d->fd >= 0)
			unlink(path);
	} else {
		d->fd = memfd_create("mmstorm-gup", MFD_CLOEXEC);
	}
	if (d->fd < 0)
		return -errno;
	if (ftruncate(d->fd, (off_t)bytes))
		return -errno;
	for (uint32_t i = 0; i < d->nslots; i++) {
		ms_page_fill(d->scratch, d->mpsz, ms_rm_file_fill(d->m, i));
		if ((ret = write_at(d->fd, (char *)d->scratch, d->mpsz, (off_t)i * d->mpsz)))
			return ret;
	}
	return 0;
}

static int make_box(struct gp_drv *d)
{
	size_t head = align_up_sz(sizeof(struct gp_bad), 64);
	size_t wants = align_up_sz((size_t)d->nslots * sizeof(struct ms_rm_want), 64);
	size_t codes = align_up_sz(d->nslots, d->cfg->psz);

	/* Data is page aligned: O_DIRECT reads into it. */
	head = align_up_sz(head + wants + codes, d->cfg->psz);
	d->box_bytes = head + (size_t)d->npages * d->mpsz;
	d->box = mmap(NULL, d->box_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (d->box == MAP_FAILED) {
		d->box = NULL;
		return -errno;
	}
	d->bad = (struct gp_bad *)d->box;
	d->want = (struct ms_rm_want *)(d->box + align_up_sz(sizeof(struct gp_bad), 64));
	d->code = (uint8_t *)d->want + wants;
	d->data = d->box + head;
	return 0;
}

static int make_model(struct gp_drv *d, uint64_t seed)
{
	const struct gp_cfg *cfg = d->cfg;
	struct ms_rm_cfg mc = {
		.nslots = d->nslots, .npages = d->npages,
		.folio_pages = d->mk->thp ? (uint32_t)(mem_folio(cfg, d->mk) / cfg->psz) : 1,
		.file_pages = d->mk->file ? d->nslots : 0,
		.shared = d->mk->shared, .huge = d->mk->huge,
		/* io_uring never; GUP since 6.5 (writable_file_mapping_allowed) */
		.longterm_rw_refused = d->mk->regular &&
				       (d->kind == PK_IO_URING || cfg->kver >= 6005),
		.ro_longterm_unshares_file = cfg->kver >= 6002,
		.huge_force_write = cfg->huge_force_write,
		.seed = seed,
	};

	return ms_rm_new(&d->m, &mc);
}

static void sizes(struct gp_drv *d)
{
	const struct gp_cfg *cfg = d->cfg;

	d->mpsz = mem_page(cfg, d->mk);
	d->npages = d->mk->gig ? 1 : d->mk->huge ? cfg->huge_pages : cfg->pages;
	if (d->mk->thp || d->mk->zero == 2)
		d->npages = (uint32_t)align_up_sz(cfg->pages, mem_folio(cfg, d->mk) / cfg->psz);
	d->pin_n = cfg->pin_pages < d->npages ? cfg->pin_pages : d->npages - 1;
	if (d->mk->huge)
		d->pin_n = 1;
	d->nslots = 2 * d->npages;
	d->win_bytes = (size_t)d->nslots * d->mpsz;
}

static int drv_setup(struct gp_drv *d, uint64_t seed)
{
	const struct gp_cfg *cfg = d->cfg;
	size_t align = mem_folio(cfg, d->mk);
	char path[PATH_MAX];
	int ret;

	sizes(d);
	d->fd = d->scratch_fd = d->odirect_fd = d->reply[0] = d->reply[1] = -1;
	d->tproc = -1;
	for (unsigned p = 0; p < GP_MAX_PROCS; p++)
		d->cmd[p][0] = d->cmd[p][1] = -1;
	d->scratch = malloc(d->mpsz);
	if (!d->scratch)
		return -ENOMEM;
	if ((ret = make_model(d, seed)) || (ret = make_box(d)) ||
	    (ret = reserve_window(d, align)))
		return ret;
	if (d->mk->file && (ret = make_file(d)))
		return ret;
	if ((ret = map_region(d, 0, d->npages, 0)))
		return ret;
	if (d->kind == PK_IO_URING) {
		snprintf(path, sizeof(path), "%s/gup-scratch-XXXXXX", cfg->tmpdir);
		d->scratch_fd = mkostemp(path, O_CLOEXEC);
		if (d->scratch_fd < 0)
			return -errno;
		unlink(path);
	}
	if (d->kind == PK_ODIRECT) {
		d->odirect_fd = open(cfg->odirect_path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (d->odirect_fd < 0)
			return -errno;
	}
	for (unsigned p = 0; p < GP_MAX_PROCS; p++)
		if (pipe2(d->cmd[p], O_CLOEXEC))
			return -errno;
	if (pipe2(d->reply, O_CLOEXEC))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void drv_teardown(struct gp_drv *d)
{
	for (unsigned p = 1; p < GP_MAX_PROCS; p++) {
		if (!d->pid[p])
			continue;
		kill(d->pid[p], SIGKILL);
		waitpid(d->pid[p], NULL, 0);
	}
	for (unsigned k = 0; k < MS_RM_MAX_PINS; k++)
		drop_handle(d, &d->pin[k], true);
	for (unsigned p = 0; p < GP_MAX_PROCS; p++) {
		close_fd(&d->cmd[p][0]);
		close_fd(&d->cmd[p][1]);
	}
	close_fd(&d->reply[0]);
	close_fd(&d->reply[1]);
	close_fd(&d->fd);
	close_fd(&d->scratch_fd);
	close_fd(&d->odirect_fd);
	if (d->win)
		munmap(d->win, d->win_bytes);
	if (d->box)
		munmap(d->box, d->box_bytes);
	free(d->scratch);
	ms_rm_free(d->m);
}

/*
 * MADV_PAGEOUT drains only this CPU's LRU batches: pages faulted on another CPU may not be
 * on the LRU yet, so reclaim would skip them. The driver and its children stay on one CPU.
 */
static void stay_on_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return;		/* best effort: check_swapped() retries a page once */
}

static int driver_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	const struct gp_job *job = arg;
	bool ready;
	struct gp_state *st = ms_priv(ctx);
	struct gp_drv d = { .ctx = ctx, .st = st, .cfg = &st->cfg, .kind = job->kind,
			    .mem = job->mem, .k = &gp_kinds[job->kind], .mk = &gp_mems[job->mem] };
	char err[96];
	int ret;

	(void)idx;
	snprintf(d.label, sizeof(d.label), "%s x %s x %s", d.k->name, d.mk->name,
		 job->scen >= 0 ? gp_scens[job->scen].name : "random");
	if (st->cfg.swap_on && d.mk->swappable)
		stay_on_cpu();
	ret = drv_setup(&d, job->seed);
	ready = !ret;
	if (ret == -ENOMEM && d.mk->huge)
		set_verdict(&d, CV_SKIP, "hugetlb pages ran out at mmap (shared pool: another "
			    "process took them?)");
	else if (ret)
		set_verdict(&d, CV_ERROR, "setup: %s", err_str(ret, err, sizeof(err)));
	if (!ret)
		ret = job->scen >= 0 ? run_scenario(&d, &gp_scens[job->scen]) :
				       run_random(&d, job->seed);
	if (ready && ret != -EAGAIN)
		finish(&d);
	st->res->verdict = d.verdict;
	st->res->pinned_pages = d.pinned_pages;
	st->res->zero_skips = d.zero_skips;
	ms_strlcpy(st->res->reason, d.reason, sizeof(st->res->reason));
	drv_teardown(&d);
	return 0;
}

/* ---- case process: configuration and probing ---- */

static int parse_list(struct ms_ctx *ctx, const char *param, const char *const *names,
		      size_t n, bool *on)
{
	char buf[MS_PARAM_STR_MAX], *save = NULL, *tok;

	ms_strlcpy(buf, ms_param_s(ctx, param), sizeof(buf));
	if (!strcmp(buf, "all")) {
		for (size_t i = 0; i < n; i++)
			on[i] = true;
		return 0;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < n && strcmp(tok, names[i]); i++)
			;
		if (i == n)
			return ms_error(ctx, EINVAL, "%s: unknown name '%s'", param, tok);
		on[i] = true;
	}
	return 0;
}

static unsigned kernel_version(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return 0;
	return major * 1000 + minor;
}

static int numa_nodes(void)
{
	char buf[64];
	int lo = 0, hi = 0;

	if (ms_read_file("/sys/devices/system/node/online", buf, sizeof(buf)) <= 0)
		return 1;
	if (sscanf(buf, "%d-%d", &lo, &hi) == 2)
		return hi - lo + 1;
	return 1;
}

static int cfg_load(struct ms_ctx *ctx, struct gp_cfg *cfg)
{
	const char *kn[PK_NR], *mn[MK_NR], *sn[GP_NSCEN];
	uint64_t pmd = 0;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	for (int i = 0; i < PK_NR; i++)
		kn[i] = gp_kinds[i].name;
	for (int i = 0; i < MK_NR; i++)
		mn[i] = gp_mems[i].name;
	for (size_t i = 0; i < GP_NSCEN; i++)
		sn[i] = gp_scens[i].name;
	if ((ret = parse_list(ctx, "pins", kn, PK_NR, cfg->kind_on)) ||
	    (ret = parse_list(ctx, "mems", mn, MK_NR, cfg->mem_on)) ||
	    (ret = parse_list(ctx, "scenarios", sn, GP_NSCEN, cfg->scen_on)))
		return ret;
	/* 1 GiB pages are named, not implied: each combination moves GiBs (minutes in TCG). */
	if (!strcmp(ms_param_s(ctx, "mems"), "all"))
		cfg->mem_on[MK_HUGETLB_1G] = false;
	cfg->mode = (int)ms_param_i(ctx, "mode");
	cfg->pages = (uint32_t)ms_param_i(ctx, "pages");
	cfg->pin_pages = (uint32_t)ms_param_i(ctx, "pin_pages");
	cfg->huge_pages = (uint32_t)ms_param_i(ctx, "huge_pages");
	cfg->sequences = (uint32_t)ms_param_i(ctx, "sequences");
	cfg->steps = (uint32_t)ms_param_i(ctx, "steps");
	cfg->forks = (uint32_t)ms_param_i(ctx, "forks");
	cfg->size = (uint64_t)ms_param_i(ctx, "size");
	cfg->seed = ms_seed(ctx);
	cfg->psz = (size_t)sysconf(_SC_PAGESIZE);
	if (ms_read_u64("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", &pmd) || !pmd)
		pmd = 2 << 20;
	cfg->pmd = pmd;
	cfg->hpage = 2 << 20;
	cfg->mthp = (size_t)ms_param_i(ctx, "mthp_kb") << 10;
	cfg->root = geteuid() == 0;
	cfg->in_guest = ms_in_guest(ctx);
	cfg->numa_nodes = numa_nodes();
	cfg->kver = kernel_version();
	ms_strlcpy(cfg->tmpdir, ms_tmpdir(ctx), sizeof(cfg->tmpdir));
	return 0;
}

/* A pin or memory kind's SKIP reason (cfg->kind_skip[k], cfg->mem_skip[m]). */
static void skip_reason(char dst[GP_REASON], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void skip_reason(char dst[GP_REASON], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, GP_REASON, fmt, ap);
	va_end(ap);
}

static bool dir_empty(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!dir)
		return true;
	while (empty && (e = readdir(dir)))
		empty = e->d_name[0] == '.';
	closedir(dir);
	return empty;
}

/* Is the directory on a block device (so O_DIRECT reaches a driver through GUP)? */
static bool block_backed(const char *dir, bool *tmpfs)
{
	struct statfs sf;
	struct stat sb;
	char path[64];

	*tmpfs = !statfs(dir, &sf) && sf.f_type == TMPFS_MAGIC;
	if (stat(dir, &sb))
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(sb.st_dev), minor(sb.st_dev));
	return !access(path, F_OK);
}

static void probe_kinds(struct gp_cfg *cfg)
{
	struct io_uring ring;
	char byte = 0, got;
	struct iovec l = { &got, 1 }, r = { &byte, 1 };
	int fd;

	if (io_uring_queue_init(1, &ring, 0) == 0)
		io_uring_queue_exit(&ring);
	else
		skip_reason(cfg->kind_skip[PK_IO_URING], "io_uring_queue_init failed (kernel.io_uring_disabled, "
			  "or no CONFIG_IO_URING)");
	fd = open(GP_GUP_TEST, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
	} else {
		const char *why = dir_empty("/sys/kernel/debug") ? "debugfs is not mounted at "
				  "/sys/kernel/debug" : errno == ENOENT ?
				  "no " GP_GUP_TEST " (CONFIG_GUP_TEST not set)" : strerror(errno);

		for (int k = 0; k < PK_NR; k++)
			if (gp_kinds[k].gup_test)
				skip_reason(cfg->kind_skip[k], "%s", why);
	}
	if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != 1)
		skip_reason(cfg->kind_skip[PK_PROCESS_VM], "process_vm_readv: %s", strerror(errno));
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		skip_reason(cfg->kind_skip[PK_PROCMEM], "/proc/self/mem: %s", strerror(errno));
	else
		close(fd);
	if (!block_backed(cfg->tmpdir, &cfg->tmp_is_tmpfs) &&
	    access("/dev/loop-control", R_OK | W_OK))
		skip_reason(cfg->kind_skip[PK_ODIRECT], "no block device for O_DIRECT (%s is not on a block "
			  "device, no /dev/loop-control)", cfg->tmpdir);
}

static int hugetlb_avail(unsigned kb, uint64_t *nr, uint64_t *avail)
{
	uint64_t free_pages, resv;
	char dir[64], path[128];
	int ret;

	snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%ukB", kb);
	snprintf(path, sizeof(path), "%s/nr_hugepages", dir);
	if ((ret = ms_read_u64(path, nr)))
		return ret;
	snprintf(path, sizeof(path), "%s/free_hugepages", dir);
	if ((ret = ms_read_u64(path, &free_pages)))
		return ret;
	snprintf(path, sizeof(path), "%s/resv_hugepages", dir);
	if ((ret = ms_read_u64(path, &resv)))
		return ret;
	*avail = free_pages > resv ? free_pages - resv : 0;
	return 0;
}

/* Huge pages one driver can hold at once. */
static uint64_t hugetlb_need(const struct gp_cfg *cfg, bool gig)
{
	if (cfg->mode == MODE_FORK_CURVE)
		return gig ? 0 : 2 * (cfg->size / cfg->hpage) + 2;
	/*
	 * 1 GiB: the region is one page; a scenario holds at most two (a pinned page and its
	 * copy for a child, or the page a pin keeps after DONTNEED and the new one). Random
	 * sequences can have every process and two pins hold one each.
	 */
	if (gig)
		return cfg->mode == MODE_RANDOM ? GP_MAX_PROCS + 2 : 2;
	/* each process maps at most the region; pins keep at most two more regions alive */
	return (uint64_t)cfg->huge_pages * (GP_MAX_PROCS + 2) + 4;
}

/* Raise nr_hugepages of the kb pool (journaled) until need pages are free, if memory allows. */
static void probe_hugetlb(struct ms_ctx *ctx, struct gp_cfg *cfg, int mem, unsigned kb)
{
	bool gig = gp_mems[mem].gig;
	uint64_t nr, avail, need = hugetlb_need(cfg, gig), mem_kb = 0, from;
	const char *sz = gig ? "1G" : "2M";
	char val[32], knob[96];

	if (hugetlb_avail(kb, &nr, &avail)) {
		skip_reason(cfg->mem_skip[mem], "no %s hugetlb pages on this kernel (no hugepages-%ukB pool)",
			 sz, kb);
		return;
	}
	if (!need) {
		skip_reason(cfg->mem_skip[mem], "fork-curve does not use 1 GiB pages");
		return;
	}
	/* Leave the machine at least as much again as the pages take (4x for 2M: cheap). */
	if (avail >= need || ms_meminfo_kb("MemAvailable", &mem_kb) ||
	    (need - avail) * kb * (gig ? 2 : 4) >= mem_kb)
		goto out;
	from = nr;
	snprintf(knob, sizeof(knob), "/sys/kernel/mm/hugepages/hugepages-%ukB/nr_hugepages", kb);
	/* A fragmented guest gives a few pages per try; compaction between tries helps. */
	for (int tries = 0; tries < 4 && avail < need; tries++) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)(nr + need - avail));
		if (ms_knob_write(ctx, knob, val))
			break;
		if (hugetlb_avail(kb, &nr, &avail))
			break;
		if (avail < need && (cfg->in_guest || gig))
			ms_write_file("/proc/sys/vm/compact_memory", "1");
	}
	if (nr != from)
		ms_note(ctx, "set %s nr_hugepages from %llu to %llu (journaled, restored)", sz,
			(unsigned long long)from, (unsigned long long)nr);
	if (gig && avail < need) {
		skip_reason(cfg->mem_skip[mem], "could not allocate a 1 GiB page (fragmented): needs %llu free, "
			 "nr_hugepages went from %llu to %llu", (unsigned long long)need,
			 (unsigned long long)from, (unsigned long long)nr);
		return;
	}
out:
	if (avail < need)
		skip_reason(cfg->mem_skip[mem], "needs %llu free %s hugetlb pages, has %llu "
			 "(nr_hugepages=%llu%s)",
			 (unsigned long long)need, sz, (unsigned long long)avail,
			 (unsigned long long)nr, gig && cfg->in_guest ? "; a suite can boot the "
			 "guest with vm_append=hugepagesz=1G hugepages=N and a larger vm_mem" : "");
}

/* mthp: the size must exist (anon mTHP: 6.8+) and be allowed for MADV_HUGEPAGE regions. */
static void probe_mthp(struct ms_ctx *ctx, struct gp_cfg *cfg)
{
	unsigned kb = (unsigned)(cfg->mthp >> 10);
	char knob[96], cur[64];

	snprintf(knob, sizeof(knob), "/sys/kernel/mm/transparent_hugepage/hugepages-%ukB/enabled",
		 kb);
	if (cfg->mthp < 2 * cfg->psz || cfg->mthp >= cfg->pmd || (cfg->mthp & (cfg->mthp - 1))) {
		skip_reason(cfg->mem_skip[MK_MTHP], "mthp_kb=%u is no mTHP size here (a power of two above "
			 "the base page, below the PMD)", kb);
		return;
	}
	if (ms_knob_read(knob, cur, sizeof(cur))) {
		skip_reason(cfg->mem_skip[MK_MTHP], "no %s (anonymous mTHP needs 6.8+)", knob);
		return;
	}
	if (!strcmp(cur, "always") || !strcmp(cur, "madvise"))
		return;
	if (ms_knob_write(ctx, knob, "madvise")) {
		skip_reason(cfg->mem_skip[MK_MTHP], "%s is %s and not writable", knob, cur);
		return;
	}
	ms_note(ctx, "mTHP %ukB was %s; set madvise (journaled, restored)", kb, cur);
}

/* huge-zero: a read fault of a MADV_HUGEPAGE region maps the huge zero page if allowed. */
static void probe_huge_zero(struct ms_ctx *ctx, struct gp_cfg *cfg)
{
	const char *knob = "/sys/kernel/mm/transparent_hugepage/use_zero_page";
	char cur[16];

	if (cfg->mem_skip[MK_THP][0]) {
		memcpy(cfg->mem_skip[MK_HUGE_ZERO], cfg->mem_skip[MK_THP], GP_REASON);
		return;
	}
	if (ms_knob_read(knob, cur, sizeof(cur))) {
		skip_reason(cfg->mem_skip[MK_HUGE_ZERO], "no %s", knob);
		return;
	}
	if (!strcmp(cur, "1"))
		return;
	if (ms_knob_write(ctx, knob, "1"))
		skip_reason(cfg->mem_skip[MK_HUGE_ZERO], "%s is %s and not writable", knob, cur);
	else
		ms_note(ctx, "THP use_zero_page was %s; set 1 (journaled, restored)", cur);
}

static void probe_mems(struct ms_ctx *ctx, struct gp_cfg *cfg)
{
	const char *thp = "/sys/kernel/mm/transparent_hugepage/enabled";
	char cur[64];

	if (ms_knob_read(thp, cur, sizeof(cur))) {
		skip_reason(cfg->mem_skip[MK_THP], "no THP (no %s)", thp);
	} else if (!strcmp(cur, "never") && (cfg->mem_on[MK_THP] || cfg->mem_on[MK_THP_PTE] ||
					     cfg->mem_on[MK_HUGE_ZERO])) {
		if (!ms_knob_write(ctx, thp, "madvise"))
			ms_note(ctx, "THP was never; set madvise (journaled, restored)");
		else
			skip_reason(cfg->mem_skip[MK_THP], "THP is never and %s is not writable", thp);
	}
	memcpy(cfg->mem_skip[MK_THP_PTE], cfg->mem_skip[MK_THP], GP_REASON);
	memcpy(cfg->mem_skip[MK_MTHP], cfg->mem_skip[MK_THP], GP_REASON);
	if (cfg->mem_on[MK_MTHP] && !cfg->mem_skip[MK_MTHP][0])
		probe_mthp(ctx, cfg);
	if (cfg->mem_on[MK_HUGE_ZERO])
		probe_huge_zero(ctx, cfg);
	if (cfg->mem_on[MK_HUGETLB])
		probe_hugetlb(ctx, cfg, MK_HUGETLB, 2048);
	if (cfg->mem_on[MK_HUGETLB_1G])
		probe_hugetlb(ctx, cfg, MK_HUGETLB_1G, 1048576);
	if (cfg->tmp_is_tmpfs) {
		skip_reason(cfg->mem_skip[MK_FILE], "%s is tmpfs: file-backed memory needs a disk filesystem "
			 "(tmpfs is what shmem covers)", cfg->tmpdir);
		memcpy(cfg->mem_skip[MK_FILE_PRIVATE], cfg->mem_skip[MK_FILE], GP_REASON);
	}
}

static int gup_pin_probe(struct ms_ctx *ctx)
{
	struct gp_cfg cfg;
	char why[2 * GP_REASON + 8] = "";
	int ret;

	if ((ret = cfg_load(ctx, &cfg)))
		return ret;
	probe_kinds(&cfg);
	probe_mems(ctx, &cfg);
	for (int k = 0; k < PK_NR; k++)
		for (int m = 0; m < MK_NR; m++) {
			if (!cfg.kind_on[k] || !cfg.mem_on[m])
				continue;
			if (!cfg.kind_skip[k][0] && !cfg.mem_skip[m][0])
				return 0;
			if (!why[0])
				snprintf(why, sizeof(why), "%s", cfg.kind_skip[k][0] ?
					 cfg.kind_skip[k] : cfg.mem_skip[m]);
		}
	return ms_skip(ctx, "no pin kind x memory kind can run here: %s", why[0] ? why :
		       "nothing selected");
}

/* ---- case process: setup ---- */

static int register_metrics(struct ms_ctx *ctx, struct gp_state *st)
{
	static const char *const curve[GP_FORK_POINTS] = {
		"fork_ns_pinned_0pct", "fork_ns_pinned_25pct", "fork_ns_pinned_50pct",
		"fork_ns_pinned_75pct", "fork_ns_pinned_100pct" };
	struct {
		int *id;
		const char *name;
		enum ms_metric_kind kind;
		const char *unit;
		bool curve;
	} m[] = {
		{ &st->m_pin, "pin_ns", MS_M_HIST, "ns", true },
		{ &st->m_unpin, "unpin_ns", MS_M_HIST, "ns", true },
		{ &st->m_access, "access_ns", MS_M_HIST, "ns", false },
		{ &st->m_fork, "fork_ns", MS_M_HIST, "ns", false },
		{ &st->m_run, "combos_run", MS_M_COUNTER, "combos", false },
		{ &st->m_pass, "combos_passed", MS_M_COUNTER, "combos", false },
		{ &st->m_fail, "combos_failed", MS_M_COUNTER, "combos", false },
		{ &st->m_known, "combos_known_issue", MS_M_COUNTER, "combos", false },
		{ &st->m_skip, "combos_skipped", MS_M_COUNTER, "combos", false },
		{ &st->m_pages, "checked_pages", MS_M_COUNTER, "pages", true },
		{ &st->m_forks, "forks", MS_M_COUNTER, "processes", true },
	};
	bool fc = st->cfg.mode == MODE_FORK_CURVE;

	for (size_t i = 0; i < MS_ARRAY_SIZE(m); i++) {
		*m[i].id = -1;
		if (fc && !m[i].curve)
			continue;
		*m[i].id = ms_metric(ctx, m[i].name, m[i].kind, m[i].unit);
		if (*m[i].id < 0)
			return ms_error(ctx, -*m[i].id, "metric %s: %s", m[i].name,
					strerror(-*m[i].id));
	}
	for (int i = 0; fc && i < GP_FORK_POINTS; i++) {
		st->m_curve[i] = ms_metric(ctx, curve[i], MS_M_HIST, "ns");
		if (st->m_curve[i] < 0)
			return ms_error(ctx, -st->m_curve[i], "metric %s", curve[i]);
	}
	return 0;
}

/* A loop device over backing, detached by the kernel when its last opener closes it. */
static int loop_attach(const char *backing, char *dev, size_t len, int *fdp)
{
	struct loop_config lc = { 0 };
	int ctl, n, fd = -1, bfd, ret = 0;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -errno;
	snprintf(dev, len, "/dev/loop%d", n);
	bfd = open(backing, O_RDWR | O_CLOEXEC);
	if (bfd < 0)
		return -errno;
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	lc.fd = (uint32_t)bfd;
	lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
	if (ioctl(fd, LOOP_CONFIGURE, &lc)) {
		ret = -errno;
		close(fd);
		goto out;
	}
	*fdp = fd;
out:
	close(bfd);
	return ret;
}

/* O_DIRECT through a loop device over a file in tmpdir (autoclear: gone with the case). */
static int setup_loop(struct ms_ctx *ctx, struct gp_state *st, const char *backing)
{
	char dev[32];
	int ret = loop_attach(backing, dev, sizeof(dev), &st->loop_fd);

	if (ret)
		return ret;
	ms_strlcpy(st->cfg.odirect_path, dev, sizeof(st->cfg.odirect_path));
	snprintf(st->cfg.odirect_what, sizeof(st->cfg.odirect_what),
		 "loop device %s over a file in %s (autoclear)", dev, st->cfg.tmpdir);
	ms_note(ctx, "odirect: %s", st->cfg.odirect_what);
	return 0;
}


/* ---- swap: the host's own, or in a throw-away guest one on a loop device ---- */

#define GP_SWAP_BYTES (64 << 20)

static bool swap_active(void)
{
	char buf[512];
	ssize_t n = ms_read_file("/proc/swaps", buf, sizeof(buf));

	/* A header line, then one line per active swap area. */
	return n > 0 && strchr(buf, '\n') && strchr(buf, '\n')[1] != '\0';
}

/* Does MADV_PAGEOUT of one written anonymous page leave a swap entry (pagemap bit 62)? */
static bool pageout_swaps(const struct gp_cfg *cfg)
{
	char *p = mmap(NULL, cfg->psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	uint64_t e = 0;
	bool ok = false;

	if (p == MAP_FAILED)
		return false;
	for (int tries = 0; tries < 3 && !ok; tries++) {
		memset(p, 0x5a, cfg->psz);
		ok = !madvise(p, cfg->psz, MADV_PAGEOUT) &&
		     !read_pagemap_entry(getpid(), (uintptr_t)p, &e) && (e & GP_PM_SWAP) &&
		     p[cfg->psz - 1] == 0x5a;
	}
	munmap(p, cfg->psz);
	return ok;
}

/* mkswap's work: a version 1 swap header in the file's first page. */
static int write_swap_header(int fd, size_t psz, size_t bytes)
{
	unsigned char *page = calloc(1, psz);
	uint32_t version = 1, last = (uint32_t)(bytes / psz - 1);
	int ret;

	if (!page)
		return -ENOMEM;
	memcpy(page + 1024, &version, 4);
	memcpy(page + 1028, &last, 4);
	memcpy(page + psz - 10, "SWAPSPACE2", 10);
	ret = write_at(fd, (char *)page, psz, 0);
	free(page);
	return ret;
}

/* In a guest (PID 1, thrown away after the run): swap on a loop device over a tmpdir file. */
static int setup_guest_swap(struct ms_ctx *ctx, struct gp_state *st)
{
	struct gp_cfg *cfg = &st->cfg;
	char path[PATH_MAX];
	int fd, ret;

	if (access("/dev/loop-control", R_OK | W_OK))
		return -ENODEV;
	snprintf(path, sizeof(path), "%s/gup-swap", cfg->tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = ftruncate(fd, GP_SWAP_BYTES) ? -errno : write_swap_header(fd, cfg->psz,
									 GP_SWAP_BYTES);
	close(fd);
	if (ret || (ret = loop_attach(path, cfg->swap_dev, sizeof(cfg->swap_dev), &fd)))
		return ret;
	ret = swapon(cfg->swap_dev, 0) ? -errno : 0;
	/* Autoclear: the device goes when swapoff releases it and this fd is closed. */
	close(fd);
	if (ret) {
		cfg->swap_dev[0] = '\0';
		return ret;
	}
	ms_note(ctx, "swap: %d MiB on %s over a file in %s (swapoff at teardown)",
		GP_SWAP_BYTES >> 20, cfg->swap_dev, cfg->tmpdir);
	return 0;
}

static bool want_swap(const struct gp_cfg *cfg)
{
	bool mem = false, scen = cfg->mode == MODE_RANDOM;

	for (int m = 0; m < MK_NR; m++)
		mem |= cfg->mem_on[m] && gp_mems[m].swappable && !cfg->mem_skip[m][0];
	for (size_t s = 0; s < GP_NSCEN && cfg->mode == MODE_MATRIX; s++)
		scen |= cfg->scen_on[s] && (gp_scens[s].needs & NEED_SWAP);
	return mem && scen;
}

static void probe_swap(struct ms_ctx *ctx, struct gp_state *st)
{
	struct gp_cfg *cfg = &st->cfg;
	int ret;

	snprintf(cfg->swap_skip, GP_REASON, "no swap configured (none active in /proc/swaps; "
		 "mmstorm adds swap only in a guest)");
	if (!want_swap(cfg))
		return;
	if (!swap_active() && cfg->in_guest && (ret = setup_guest_swap(ctx, st))) {
		if (ret == -ENODEV)
			snprintf(cfg->swap_skip, GP_REASON, "no swap: the guest has no loop device "
				 "(/dev/loop-control; Debian kernels build loop as a module, "
				 "the initramfs has no modules)");
		else
			snprintf(cfg->swap_skip, GP_REASON, "no swap: setting up a loop device "
				 "swap failed: %s", strerror(-ret));
		return;
	}
	if (!swap_active())
		return;
	if (!cfg->have_kpage) {
		snprintf(cfg->swap_skip, GP_REASON, "swap is on, but pagemap cannot be read "
			 "(not root?): swap entries cannot be verified");
		return;
	}
	cfg->swap_on = pageout_swaps(cfg);
	if (!cfg->swap_on)
		snprintf(cfg->swap_skip, GP_REASON, "swap is on, but MADV_PAGEOUT did not swap a "
			 "test page out (full, or the cgroup's memory.swap.max is 0?)");
}
#define GP_ODIRECT_BYTES (16 << 20)

static int setup_odirect(struct ms_ctx *ctx, struct gp_state *st)
{
	struct gp_cfg *cfg = &st->cfg;
	char path[PATH_MAX];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/gup-odirect", cfg->tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = ftruncate(fd, GP_ODIRECT_BYTES) ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	if (!block_backed(cfg->tmpdir, &cfg->tmp_is_tmpfs))
		return setup_loop(ctx, st, path);
	ms_strlcpy(cfg->odirect_path, path, sizeof(cfg->odirect_path));
	fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	snprintf(cfg->odirect_what, sizeof(cfg->odirect_what), "a file in %s (block-backed)",
		 cfg->tmpdir);
	ms_note(ctx, "odirect: %s", cfg->odirect_what);
	return 0;
}

/* PFNs in pagemap and /proc/kpagecount readable: root with CAP_SYS_ADMIN. */
static bool kpage_usable(void)
{
	uint64_t pfn = 0, count;

	/* This function's own stack page is present. */
	return !read_pagemap(getpid(), (uintptr_t)&pfn, &pfn) && pfn &&
	       !read_kpage("/proc/kpagecount", pfn, &count);
}

/*
 * Whether FOLL_FORCE writes into a R/O private hugetlb mapping (ptrace, /proc/PID/mem) are
 * supported: refused with EFAULT by older kernels, supported by newer ones. Asked of the
 * kernel once, on one huge page, so the model expects what this kernel implements.
 */
static bool probe_huge_force(const struct gp_cfg *cfg)
{
	char *p = mmap(NULL, cfg->hpage, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	uint64_t v = 1;
	bool ok = false;
	int fd;

	if (p == MAP_FAILED)
		return false;
	p[0] = 0;
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd >= 0 && !mprotect(p, cfg->hpage, PROT_READ))
		ok = pwrite(fd, &v, sizeof(v), (off_t)(uintptr_t)p) == sizeof(v) && p[0] == 1;
	if (fd >= 0)
		close(fd);
	munmap(p, cfg->hpage);
	return ok;
}

/*
 * vmsplice pins a whole region (2 huge pages, a PMD of THP): the pipe must hold it. Root
 * without CAP_SYS_RESOURCE (containers) is held to fs.pipe-max-size, so raise it.
 */
static void raise_pipe_max(struct ms_ctx *ctx, const struct gp_cfg *cfg)
{
	const char *knob = "/proc/sys/fs/pipe-max-size";
	uint64_t cur, need = 2 * (cfg->hpage > cfg->pmd ? cfg->hpage : cfg->pmd);
	char val[32];

	if (!cfg->kind_on[PK_VMSPLICE] || cfg->kind_skip[PK_VMSPLICE][0] ||
	    ms_read_u64(knob, &cur) || cur >= need)
		return;
	snprintf(val, sizeof(val), "%llu", (unsigned long long)need);
	if (!ms_knob_write(ctx, knob, val))
		ms_note(ctx, "set fs.pipe-max-size from %llu to %s for vmsplice of whole regions "
			"(journaled, restored)", (unsigned long long)cur, val);
}

static int curve_setup(struct ms_ctx *ctx, struct gp_state *st);

static int gup_pin_setup(struct ms_ctx *ctx)
{
	struct gp_state *st = calloc(1, sizeof(*st));
	struct gp_cfg *cfg;
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	st->loop_fd = -1;
	ms_set_priv(ctx, st);
	cfg = &st->cfg;
	if ((ret = cfg_load(ctx, cfg)) || (ret = register_metrics(ctx, st)))
		return ret;
	probe_kinds(cfg);
	probe_mems(ctx, cfg);
	st->res = mmap(NULL, sizeof(*st->res), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st->res == MAP_FAILED) {
		st->res = NULL;
		return ms_error(ctx, errno, "mmap: %s", strerror(errno));
	}
	cfg->have_kpage = cfg->root && kpage_usable();
	cfg->have_split_debugfs = !access("/sys/kernel/debug/split_huge_pages", W_OK);
	if (!cfg->have_kpage)
		ms_note(ctx, "no PFNs in pagemap or no /proc/kpagecount (not root?): the "
			"kpagecount check is off");
	if (cfg->mode == MODE_FORK_CURVE)
		return curve_setup(ctx, st);
	probe_swap(ctx, st);
	if (cfg->kind_on[PK_ODIRECT] && !cfg->kind_skip[PK_ODIRECT][0] &&
	    (ret = setup_odirect(ctx, st)))
		skip_reason(cfg->kind_skip[PK_ODIRECT], "no block device for O_DIRECT: %s", strerror(-ret));
	raise_pipe_max(ctx, cfg);
	if (cfg->kind_on[PK_PROCMEM] && cfg->mem_on[MK_HUGETLB] && !cfg->mem_skip[MK_HUGETLB][0]) {
		cfg->huge_force_write = probe_huge_force(cfg);
		ms_note(ctx, "FOLL_FORCE writes to R/O private hugetlb: %s on this kernel",
			cfg->huge_force_write ? "supported" : "refused");
	}
	return 0;
}

/* ---- case process: running combinations ---- */

static int read_pins(uint64_t *acq, uint64_t *rel)
{
	/* Per-CPU deltas are folded lazily; stat_refresh folds them now (root only). */
	ms_write_file("/proc/sys/vm/stat_refresh", "1");
	if (ms_vmstat("nr_foll_pin_acquired", acq) || ms_vmstat("nr_foll_pin_released", rel))
		return -ENOENT;
	return 0;
}

/*
 * nr_foll_pin_acquired/released are system-wide: a delta that does not balance may be
 * another process pinning meanwhile. Wait for it to settle; if it does not, look at a quiet
 * window: counters that still move mean someone else pins, and nothing can be concluded.
 */
static bool pin_balance(struct ms_ctx *ctx, const char *label,
			uint64_t acq0, uint64_t rel0, uint64_t min_pins)
{
	uint64_t acq = 0, rel = 0, a1, r1;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	for (int i = 0; i < 100; i++) {
		if (read_pins(&acq, &rel))
			return true;
		if (acq - acq0 == rel - rel0)
			break;
		nanosleep(&ts, NULL);
	}
	if (acq - acq0 != rel - rel0) {
		ts.tv_nsec = 200 * 1000 * 1000;
		read_pins(&a1, &r1);
		nanosleep(&ts, NULL);
		read_pins(&acq, &rel);
		if (a1 != acq || r1 != rel)
			return false;
	}
	ms_check(ctx, acq - acq0 == rel - rel0, "nr_foll_pin_acquired/released balance",
		 "%s: acquired +%llu, released +%llu (system-wide counters, 2 s after the "
		 "combination ended)", label, (unsigned long long)(acq - acq0),
		 (unsigned long long)(rel - rel0));
	ms_check(ctx, acq - acq0 >= min_pins, "FOLL_PIN pins are counted",
		 "%s: nr_foll_pin_acquired grew by %llu, the combination pinned %llu pages",
		 label, (unsigned long long)(acq - acq0), (unsigned long long)min_pins);
	return true;
}

static void tally_skip(struct gp_state *st, const char *reason, unsigned n)
{
	unsigned i;

	st->skip += n;
	for (i = 0; i < st->nskips && strcmp(st->skips[i], reason); i++)
		;
	if (i == st->nskips && st->nskips < MS_ARRAY_SIZE(st->skips))
		ms_strlcpy(st->skips[st->nskips++], reason, GP_REASON);
	if (i < st->nskips)
		st->skip_counts[i] += n;
}

static void tally(struct ms_ctx *ctx, struct gp_state *st, const char *label, int verdict,
		  const char *reason)
{
	char full[GP_REASON + 100];

	switch (verdict) {
	case CV_PASS:
		st->run++;
		st->pass++;
		ms_count(ctx, st->m_pass, 1);
		break;
	case CV_KNOWN:
		st->run++;
		st->known++;
		ms_count(ctx, st->m_known, 1);
		if (st->known == 1)
			snprintf(st->known_list, sizeof(st->known_list), "%s; in: ", reason);
		snprintf(full, sizeof(full), "%s%s", st->known > 1 ? ", " : "", label);
		if (strlen(st->known_list) + strlen(full) < sizeof(st->known_list))
			strcat(st->known_list, full);
		break;
	case CV_SKIP:
		tally_skip(st, reason, 1);
		ms_count(ctx, st->m_skip, 1);
		return;
	default:
		st->run++;
		st->fail++;
		ms_count(ctx, st->m_fail, 1);
		if (strlen(st->failed) + strlen(label) + 3 < sizeof(st->failed))
			snprintf(st->failed + strlen(st->failed), sizeof(st->failed) -
				 strlen(st->failed), "%s%s", st->failed[0] ? "; " : "", label);
		if (verdict == CV_ERROR)
			ms_error(ctx, EIO, "%s: %s", label, reason);
		break;
	}
	ms_count(ctx, st->m_run, 1);
}

static uint64_t job_seed(const struct gp_cfg *cfg, int kind, int mem, int scen, uint64_t iter)
{
	return ms_stamp(cfg->seed, (uint64_t)(kind * 64 + mem) << 16 | (uint64_t)(scen + 1),
			iter);
}

static void run_combo(struct ms_ctx *ctx, struct gp_state *st, struct gp_job *job)
{
	const struct gp_kind *k = &gp_kinds[job->kind];
	uint64_t acq0 = 0, rel0 = 0;
	bool counted = !read_pins(&acq0, &rel0);
	char label[96];
	pid_t pid;
	int ret;

	snprintf(label, sizeof(label), "%s x %s x %s", k->name, gp_mems[job->mem].name,
		 job->scen >= 0 ? gp_scens[job->scen].name : "random");
	memset(st->res, 0, sizeof(*st->res));
	pid = ms_spawn(ctx, driver_main, job, 0);
	if (pid < 0) {
		tally(ctx, st, label, CV_ERROR, "cannot fork the driver");
		return;
	}
	ret = ms_wait(ctx, pid);
	if (ret) {
		ms_check(ctx, false, label, "the driver %s", ret == -EINTR ? "was killed by a "
			 "signal (kernel log may say why)" : "exited non-zero");
		tally(ctx, st, label, CV_FAIL, "driver died");
		return;
	}
	if (counted && st->res->verdict != CV_SKIP)
		st->unjudged += !pin_balance(ctx, label, acq0, rel0,
					     k->counts ? st->res->pinned_pages : 0);
	st->zero_skips += st->res->zero_skips;
	tally(ctx, st, label, st->res->verdict, st->res->reason);
}

static bool uses_rest(const struct gp_scen *sc)
{
	for (unsigned i = 0; sc->steps[i].op != S_END; i++)
		if (sc->steps[i].range == R_REST)
			return true;
	return false;
}

/* Why scenario sc cannot run for this kind and memory, or NULL. */
static const char *scen_unmet(const struct gp_cfg *cfg, const struct gp_scen *sc, int kind,
			      int mem)
{
	const struct gp_mem *mk = &gp_mems[mem];

	if ((sc->needs & NEED_WRITE) && !gp_kinds[kind].can_write)
		return "the pin kind cannot write through the pin";
	if ((sc->needs & NEED_THP) && !mk->thp)
		return "THP split/collapse needs THP memory";
	if ((sc->needs & NEED_ANON_PRIVATE) && (mk->file || mk->huge || mk->shared))
		return "MADV_FREE needs private anonymous memory";
	if ((sc->needs & NEED_MIGRATE) && cfg->numa_nodes < 2 && !cfg->in_guest)
		return "migration needs 2 NUMA nodes (or a guest, where compaction is cheap)";
	if ((sc->needs & NEED_SWAP) && !mk->swappable)
		return "swap-out needs private anonymous memory";
	if ((sc->needs & NEED_SWAP) && !cfg->swap_on)
		return cfg->swap_skip;
	if (mk->gig && uses_rest(sc))
		return "the region is one 1 GiB page: no unpinned rest";
	if (mk->gig && kind == PK_VMSPLICE)
		return "vmsplice of a 1 GiB page needs a 1 GiB pipe";
	if (mk->gig && kind == PK_ODIRECT)
		return "the O_DIRECT file (16 MiB) is smaller than a 1 GiB page";
	return NULL;
}

static void run_pair(struct ms_ctx *ctx, struct gp_state *st, int kind, int mem, uint64_t iter)
{
	const struct gp_cfg *cfg = &st->cfg;
	const char *why = cfg->kind_skip[kind][0] ? cfg->kind_skip[kind] : cfg->mem_skip[mem];
	unsigned n = cfg->mode == MODE_RANDOM ? cfg->sequences : 0;
	struct gp_job job = { .kind = kind, .mem = mem };

	if (cfg->mode == MODE_MATRIX)
		for (size_t s = 0; s < GP_NSCEN; s++)
			n += cfg->scen_on[s];
	if (why[0]) {
		tally_skip(st, why, n);
		ms_count(ctx, st->m_skip, n);
		return;
	}
	if (cfg->mode == MODE_RANDOM) {
		if (gp_mems[mem].zero == 2) {
			tally_skip(st, "random sequences: the model does not follow a write that "
				   "replaces the whole huge zero PMD by a THP (6.13+)", n);
			ms_count(ctx, st->m_skip, n);
			return;
		}
		for (unsigned i = 0; i < cfg->sequences && !ms_should_stop(ctx); i++) {
			job.scen = -1;
			job.seed = job_seed(cfg, kind, mem, (int)i + 1000, iter);
			run_combo(ctx, st, &job);
		}
		return;
	}
	for (size_t s = 0; s < GP_NSCEN; s++) {
		const char *unmet;

		if (!cfg->scen_on[s])
			continue;
		unmet = scen_unmet(cfg, &gp_scens[s], kind, mem);
		if (unmet) {
			tally_skip(st, unmet, 1);
			ms_count(ctx, st->m_skip, 1);
			continue;
		}
		job.scen = (int)s;
		job.seed = job_seed(cfg, kind, mem, (int)s, iter);
		run_combo(ctx, st, &job);
	}
}

static int curve_run(struct ms_ctx *ctx, struct gp_state *st);

static int gup_pin_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct gp_state *st = ms_priv(ctx);

	if (st->cfg.mode == MODE_FORK_CURVE)
		return curve_run(ctx, st);
	for (int k = 0; k < PK_NR; k++)
		for (int m = 0; m < MK_NR; m++)
			if (st->cfg.kind_on[k] && st->cfg.mem_on[m])
				run_pair(ctx, st, k, m, iter);
	return 0;
}

/* ---- fork latency against the pinned share of a region ---- */

struct gp_curve_pin {
	struct io_uring ring;
	int fd;
};

static int curve_mem(const struct gp_cfg *cfg)
{
	static const int order[] = { MK_ANON, MK_THP, MK_HUGETLB };

	for (size_t i = 0; i < MS_ARRAY_SIZE(order); i++)
		if (cfg->mem_on[order[i]] && !cfg->mem_skip[order[i]][0])
			return order[i];
	return -1;
}

static int curve_kind(const struct gp_cfg *cfg)
{
	if (cfg->kind_on[PK_IO_URING] && !cfg->kind_skip[PK_IO_URING][0])
		return PK_IO_URING;
	if (cfg->kind_on[PK_LT_RW] && !cfg->kind_skip[PK_LT_RW][0])
		return PK_LT_RW;
	return -1;
}

static int curve_setup(struct ms_ctx *ctx, struct gp_state *st)
{
	struct gp_cfg *cfg = &st->cfg;
	int mem = curve_mem(cfg), flags = MAP_PRIVATE | MAP_ANONYMOUS;
	size_t align;
	char *p;

	if (mem < 0)
		return ms_skip(ctx, "fork-curve needs anon, thp or hugetlb memory (mems=)");
	if (curve_kind(cfg) < 0)
		return ms_skip(ctx, "fork-curve pins with io_uring or gup-lt-rw: neither can run "
			       "(%s; %s)", cfg->kind_skip[PK_IO_URING], cfg->kind_skip[PK_LT_RW]);
	align = mem == MK_HUGETLB ? cfg->hpage : mem == MK_THP ? cfg->pmd : cfg->psz;
	st->curve_bytes = align_up_sz(cfg->size, align);
	if (mem == MK_HUGETLB)
		flags |= MAP_HUGETLB;
	p = mmap(NULL, st->curve_bytes + align, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED)
		return ms_error(ctx, errno, "mmap %zu bytes: %s", st->curve_bytes, strerror(errno));
	st->curve_region = p;
	st->curve_bytes += align;
	p = (char *)align_up_sz((uintptr_t)p, align);
	if (mem == MK_THP && madvise(p, cfg->size, MADV_HUGEPAGE))
		return ms_error(ctx, errno, "MADV_HUGEPAGE: %s", strerror(errno));
	for (size_t off = 0; off + cfg->psz <= align_up_sz(cfg->size, align); off += cfg->psz)
		ms_page_fill(p + off, cfg->psz, ms_stamp(cfg->seed, off / cfg->psz, 0));
	ms_note(ctx, "fork-curve: %s memory, %llu bytes, pinned with %s; fork_ns_pinned_Npct "
		"per pinned share", gp_mems[mem].name, (unsigned long long)cfg->size,
		gp_kinds[curve_kind(cfg)].name);
	return 0;
}

static int curve_pin(struct gp_state *st, struct gp_curve_pin *cp, char *base, size_t len)
{
	struct gp_pin_longterm_test a = { .addr = (uintptr_t)base, .size = len,
					  .flags = GP_LT_FLAG_WRITE };
	struct iovec iov = { base, len };
	int ret;

	cp->fd = -1;
	if (curve_kind(&st->cfg) == PK_IO_URING) {
		if ((ret = io_uring_queue_init(1, &cp->ring, 0)))
			return ret;
		ret = io_uring_register_buffers(&cp->ring, &iov, 1);
		if (ret)
			io_uring_queue_exit(&cp->ring);
		return ret;
	}
	cp->fd = open(GP_GUP_TEST, O_RDWR | O_CLOEXEC);
	if (cp->fd < 0)
		return -errno;
	if (ioctl(cp->fd, GP_PIN_LONGTERM_TEST_START, &a)) {
		ret = -errno;
		close(cp->fd);
		return ret;
	}
	return 0;
}

static void curve_unpin(struct gp_state *st, struct gp_curve_pin *cp)
{
	if (curve_kind(&st->cfg) == PK_IO_URING) {
		io_uring_unregister_buffers(&cp->ring);
		io_uring_queue_exit(&cp->ring);
		return;
	}
	ioctl(cp->fd, GP_PIN_LONGTERM_TEST_STOP);
	close(cp->fd);
}

/* The child sees the region as it was at fork: first, middle and last page. */
static int curve_child(const struct gp_cfg *cfg, const char *base)
{
	size_t pages = cfg->size / cfg->psz, pick[3] = { 0, pages / 2, pages - 1 };

	for (int i = 0; i < 3; i++)
		if (ms_page_check(base + pick[i] * cfg->psz, cfg->psz,
				  ms_stamp(cfg->seed, pick[i], 0), 0) != MS_PAGE_MATCH)
			return 1;
	return 0;
}

static int curve_run(struct ms_ctx *ctx, struct gp_state *st)
{
	const struct gp_cfg *cfg = &st->cfg;
	int mem = curve_mem(cfg);
	size_t align = mem == MK_HUGETLB ? cfg->hpage : cfg->psz;
	char *base = (char *)align_up_sz((uintptr_t)st->curve_region,
					 mem == MK_HUGETLB ? cfg->hpage :
					 mem == MK_THP ? cfg->pmd : cfg->psz);

	for (int f = 0; f < GP_FORK_POINTS; f++) {
		size_t len = cfg->size * (size_t)f / (GP_FORK_POINTS - 1) / align * align;
		struct gp_curve_pin cp;
		uint64_t t0 = ms_now_ns();
		int ret;

		if (len && (ret = curve_pin(st, &cp, base, len)))
			return ms_error(ctx, -ret, "pinning %zu bytes: %s", len, strerror(-ret));
		if (len)
			ms_sample(ctx, st->m_pin, ms_now_ns() - t0);
		for (uint32_t i = 0; i < cfg->forks; i++) {
			int status;
			pid_t pid;

			t0 = ms_now_ns();
			pid = fork();
			if (pid == 0)
				_exit(curve_child(cfg, base));
			if (pid < 0) {
				ret = errno;
				if (len)
					curve_unpin(st, &cp);
				return ms_error(ctx, ret, "fork: %s", strerror(ret));
			}
			ms_sample(ctx, st->m_curve[f], ms_now_ns() - t0);
			ms_count(ctx, st->m_forks, 1);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			ms_check(ctx, WIFEXITED(status) && !WEXITSTATUS(status),
				 "fork-curve child sees the region as at fork",
				 "%d%% pinned: child status %#x", f * 25, status);
			ms_count(ctx, st->m_pages, 3);
		}
		if (len) {
			t0 = ms_now_ns();
			curve_unpin(st, &cp);
			ms_sample(ctx, st->m_unpin, ms_now_ns() - t0);
		}
	}
	return 0;
}

/* ---- teardown and the ops table ---- */

/* Skip reasons with their counts, packed into as few notes as fit. */
static void skip_notes(struct ms_ctx *ctx, const struct gp_state *st)
{
	char buf[256] = "";

	for (unsigned i = 0; i < st->nskips; i++) {
		char one[GP_REASON + 16];

		snprintf(one, sizeof(one), "%s%u: %s", buf[0] ? "; " : "skipped ",
			 st->skip_counts[i], st->skips[i]);
		if (strlen(buf) + strlen(one) >= sizeof(buf) - 1) {
			ms_note(ctx, "%s", buf);
			snprintf(one, sizeof(one), "skipped %u: %s", st->skip_counts[i],
				 st->skips[i]);
			buf[0] = '\0';
		}
		strcat(buf, one);
	}
	if (buf[0])
		ms_note(ctx, "%s", buf);
}

static void summary_notes(struct ms_ctx *ctx, struct gp_state *st)
{
	if (st->cfg.mode == MODE_FORK_CURVE)
		return;
	ms_note(ctx, "combinations (pin x memory x scenario): %u ran, %u passed, %u failed, "
		"%u known issue, %u skipped", st->run, st->pass, st->fail, st->known, st->skip);
	if (st->fail)
		ms_note(ctx, "failed: %s%s", st->failed, st->fail > 1 ? " (first ones)" : "");
	if (st->known)
		ms_note(ctx, "known issue (not failures): %s", st->known_list);
	if (st->zero_skips)
		ms_note(ctx, "gup-bench: %u R/O PIN_FAST_BENCHMARK calls left out over the shared "
			"zero page (not pinned since 6.5; gup_test's verify_dma_pinned() WARNs)",
			st->zero_skips);
	if (st->unjudged)
		ms_note(ctx, "pin balance not judged for %u combinations: other processes "
			"pinned meanwhile (the counters are system-wide)", st->unjudged);
	skip_notes(ctx, st);
}

static void gup_pin_teardown(struct ms_ctx *ctx)
{
	struct gp_state *st = ms_priv(ctx);

	if (!st)
		return;
	summary_notes(ctx, st);
	if (st->loop_fd >= 0)
		close(st->loop_fd);
	if (st->cfg.swap_dev[0] && swapoff(st->cfg.swap_dev))
		ms_note(ctx, "swapoff %s: %s", st->cfg.swap_dev, strerror(errno));
	if (st->res)
		munmap(st->res, sizeof(*st->res));
	if (st->curve_region)
		munmap(st->curve_region, st->curve_bytes);
	free(st);
	ms_set_priv(ctx, NULL);
}

const struct ms_workload ms_wl_gup_pin = {
	.name = "gup-pin",
	.summary = "GUP pins (io_uring, vmsplice, gup_test, O_DIRECT, process_vm, /proc/PID/mem) "
		   "x anon/THP/mTHP/hugetlb 2M+1G/shmem/file/zero-page memory "
		   "x fork/COW/madvise/mremap/swap/migration, "
		   "checked against the reference model; pin balance, kpagecount",
	.params = gup_pin_params,
	.probe = gup_pin_probe,
	.setup = gup_pin_setup,
	.run = gup_pin_run,
	.teardown = gup_pin_teardown,
};

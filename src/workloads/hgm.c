/* hgm: HugeTLB high-granularity mapping (MADV_SPLIT, 4K UFFDIO_CONTINUE), where a kernel has it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/inject.h"
#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"
#include "workloads/hugetlb_hwpoison.h"
#include "workloads/uffd_common.h"

/* The HGM series' madvise (James Houghton, 2023; not merged): 26 is unused in mainline. */
#define HG_MADV_SPLIT 26
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HG_HP_FMT "/sys/kernel/mm/hugepages/hugepages-%llukB/%s"
#define HG_FILL_ROLE 0x68676d21ULL	/* "hgm!": xor the seed */
#define HG_EAGAIN_TRIES 100
#define HG_WAIT_NS (30ULL * 1000000000ULL)	/* workers or the fork event, at most */

enum { S_CONTINUE, S_FORK, S_UNMAP, S_MAPCOUNT, S_EXIT, S_HWPOISON };

static const char *const hg_scenarios[] = { "continue", "fork", "unmap", "mapcount", "exit",
					    "hwpoison", NULL };

static const struct ms_param hgm_params[] = {
	{ "scenario", MS_P_ENUM, "continue", "", 1, 0, hg_scenarios,
	  "continue: 4K UFFDIO_CONTINUE in random order, then MADV_COLLAPSE; fork: fork of a "
	  "range mapped at 4K; unmap: mprotect and munmap of whole huge pages of it; mapcount: "
	  "processes each map one huge page at 4K, /proc/kpagecount must return to baseline; "
	  "exit: as mapcount, the processes are killed mid-way; hwpoison (destructive: VM or "
	  "--allow-destructive): after the 4K faults a child maps the range and another "
	  "MADV_HWPOISONs one seeded 4K piece: only that piece may be lost (SIGBUS lsb 12), the "
	  "other pieces keep the model's data in every mapper; see hugetlb-minor "
	  "scenario=hwpoison for the mainline baseline" },
	{ "size", MS_P_SIZE, "4M", "bytes", 4096, 64LL << 30, NULL,
	  "region, rounded up to the huge page size (unmap needs 3 huge pages)" },
	{ "hugepage_size", MS_P_SIZE, "2M", "bytes", 64 << 10, 16LL << 30, NULL,
	  "hugetlb page size (2M; 1G allowed)" },
	{ "processes", MS_P_INT, "8", "", 1, 4096, NULL,
	  "mapcount, exit: processes mapping the first huge page at 4K at once" },
	{ NULL }
};

struct hg_cfg {
	int scenario;
	unsigned procs;
	size_t psz;
	uint64_t hpage_bytes, asked_bytes, size_bytes, npieces, nhuge, per_huge;
	uint64_t seed;
};

struct hg_handler {
	struct ms_uffd_thread t;	/* first: on_msg casts it back */
	struct ms_ctx *ctx;
	const struct hg_cfg *cfg;
	int m_ioctl;
	uint64_t expect;		/* the piece the main thread is touching (atomic) */
	uint64_t msgs, resolved, eexist, coarse, forks, other_events;
	uint64_t first_coarse;		/* the first fault address not at the touched piece */
};

/* Shared with the mapcount/exit workers (MAP_SHARED). */
struct hg_ctl {
	uint32_t ready;			/* futex: workers that mapped (mapcount) or half-mapped */
	uint32_t release;		/* futex: workers may exit */
	uint64_t pieces;		/* 4K mappings made by all workers */
	uint64_t bad;			/* pieces a worker read wrong data through */
	int32_t err;			/* first worker errno */
};

struct hg_state {
	struct hg_cfg cfg;
	int m_fault, m_ioctl, m_collapse, m_fork, m_pte, m_peak, m_maps, m_faults, m_checked;
	int memfd;
	char *alias, *guest;
	struct hg_handler h;
	struct ms_hwp hwp;		/* scenario=hwpoison */
	struct hg_ctl *ctl;
	pid_t *pids;
	uint64_t gen;
};

/* ---- small helpers ---- */

static void inc(uint64_t *c, int64_t d)
{
	__atomic_fetch_add(c, (uint64_t)d, __ATOMIC_SEQ_CST);
}

static uint64_t fill_of(const struct hg_cfg *cfg, uint64_t page, uint64_t gen)
{
	return ms_stamp(cfg->seed ^ HG_FILL_ROLE, page, gen);
}

/* Piece i of a seeded permutation of n (golden-ratio stride, coprime with n). */
static uint64_t perm(uint64_t seed, uint64_t n, uint64_t i)
{
	uint64_t stride = ((uint64_t)((double)n * 0.6180339887498949)) | 1;

	while (ms_gcd_u64(stride, n) != 1)
		stride++;
	return (seed % n + i * stride) % n;
}

/* PTE tables that map size bytes at 4K: one per 512 entries (2 MiB with 4K pages). */
static uint64_t pte_tables_bytes(const struct hg_cfg *cfg, uint64_t bytes)
{
	uint64_t span = cfg->psz / 8 * cfg->psz;

	return ms_align_up(bytes, span) / span * cfg->psz;
}

/* VmPTE without stdio: it is read around page-table changes of a few KiB. */
static int read_vmpte(uint64_t *bytes)
{
	char buf[4096], *p;
	ssize_t n = ms_read_file("/proc/self/status", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	p = strstr(buf, "\nVmPTE:");
	if (!p)
		return -ENOENT;
	*bytes = strtoull(p + 7, NULL, 10) * 1024;
	return 0;
}

/* /proc/kpagecount of the page mapped at addr in this process (needs CAP_SYS_ADMIN). */
static int kpagecount_at(const void *addr, size_t psz, uint64_t *count)
{
	uint64_t ent, pfn;
	int fd, ret = 0;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, &ent, 8, (off_t)((uintptr_t)addr / psz * 8)) != 8)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (ret)
		return ret;
	pfn = ent & ((1ULL << 55) - 1);
	if (!(ent >> 63) || !pfn)
		return -EPERM;	/* not present, or PFNs hidden from us */
	fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, count, 8, (off_t)(pfn * 8)) != 8)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

/* ---- userfaultfd ---- */

/*
 * fork only copies a shared hugetlb range's page tables when the child inherits a uffd-wp
 * registration (vma_needs_copy()), as the HGM selftest does: WP plus EVENT_FORK.
 */
static uint64_t wanted_features(const struct hg_cfg *cfg)
{
	uint64_t f = UFFD_FEATURE_MINOR_HUGETLBFS;

	if (cfg->scenario == S_FORK)
		f |= UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	return f;
}

static int uffd_api(int fd, uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	return ioctl(fd, UFFDIO_API, &api) ? -errno : 0;
}

static int uffd_register(int fd, void *start, uint64_t len, bool wp)
{
	struct uffdio_register reg = {
		.range = { (uintptr_t)start, len },
		.mode = UFFDIO_REGISTER_MODE_MINOR | (wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};

	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return -errno;
	return reg.ioctls & (1ULL << _UFFDIO_CONTINUE) ? 0 : -EOPNOTSUPP;
}

static int uffd_continue(int fd, uintptr_t start, uint64_t len)
{
	struct uffdio_continue c = { .range = { start, len } };
	int tries = 0;

	while (ioctl(fd, UFFDIO_CONTINUE, &c)) {
		if (errno != EAGAIN || ++tries >= HG_EAGAIN_TRIES)
			return -errno;
	}
	return c.mapped == (int64_t)len ? 0 : -EIO;
}

/* ---- the handler thread: every fault gets exactly its 4K piece ---- */

/*
 * After MADV_SPLIT the fault address is rounded to PAGE_SIZE, not to the huge page; a fault
 * reported elsewhere than the touched piece is counted (coarse) and still resolved at 4K.
 */
static void handle_fault(struct hg_handler *h, const struct uffd_msg *m)
{
	const struct hg_cfg *cfg = h->cfg;
	uint64_t addr = m->arg.pagefault.address;
	uintptr_t piece = addr & ~(uintptr_t)(cfg->psz - 1);
	uintptr_t base = __atomic_load_n(&h->t.base, __ATOMIC_SEQ_CST);
	struct uffdio_range r = { piece, cfg->psz };
	uint64_t t0;
	int ret;

	inc(&h->msgs, 1);
	if (addr < base || addr >= base + cfg->size_bytes) {
		ms_uffd_fail(&h->t, ERANGE, "a fault outside the registered range");
		return;
	}
	if (piece != __atomic_load_n(&h->expect, __ATOMIC_SEQ_CST)) {
		if (!__atomic_load_n(&h->coarse, __ATOMIC_SEQ_CST))
			h->first_coarse = addr;
		inc(&h->coarse, 1);
	}
	inc(&h->resolved, 1);
	t0 = ms_now_ns();
	ms_inject_point(h->ctx, "ioctl:UFFDIO_CONTINUE");
	ret = uffd_continue(h->t.uffd, piece, cfg->psz);
	/* One 4K piece maps whole or not at all: after an injected failure, the retry maps it. */
	if (ms_inject_done(h->ctx, "ioctl:UFFDIO_CONTINUE", ret ? -1 : 0, -ret)) {
		/* Random injectors (failslab, fail_function) stay armed: their ENOMEM passes. */
		for (int k = 0; k < HG_EAGAIN_TRIES && (k == 0 || ret == -ENOMEM); k++)
			ret = uffd_continue(h->t.uffd, piece, cfg->psz);
	}
	if (!ret) {
		ms_sample(h->ctx, h->m_ioctl, ms_now_ns() - t0);
		return;
	}
	inc(&h->resolved, -1);
	if (ret != -EEXIST) {
		ms_uffd_fail(&h->t, -ret, "UFFDIO_CONTINUE(PAGE_SIZE)");
		return;
	}
	inc(&h->eexist, 1);
	if (ioctl(h->t.uffd, UFFDIO_WAKE, &r))
		ms_uffd_fail(&h->t, errno, "UFFDIO_WAKE");
}

/* The child's uffd: closing it unregisters the child, whose range is checked without faults. */
static void handle_event(struct hg_handler *h, const struct uffd_msg *m)
{
	if (m->event == UFFD_EVENT_PAGEFAULT) {
		handle_fault(h, m);
	} else if (m->event == UFFD_EVENT_FORK) {
		close((int)m->arg.fork.ufd);
		inc(&h->forks, 1);
	} else {
		inc(&h->other_events, 1);
	}
}

static void on_msg(struct ms_uffd_thread *t, const struct uffd_msg *m)
{
	handle_event((struct hg_handler *)t, m);
}

/* ---- mappings ---- */

static int open_memfd(const struct hg_cfg *cfg, uint64_t len)
{
	unsigned flags = MFD_CLOEXEC | MFD_HUGETLB |
			 ((unsigned)ms_log2_u64(cfg->hpage_bytes) << MAP_HUGE_SHIFT);
	int fd = memfd_create("mmstorm-hgm", flags), err;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len)) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

/* A MAP_SHARED view of the file at 4K granularity: MADV_SPLIT, then registered for MINOR. */
static int guest_map(struct ms_ctx *ctx, struct hg_state *st)
{
	const struct hg_cfg *cfg = &st->cfg;
	int ret;

	st->guest = ms_mmap_aligned(cfg->size_bytes, cfg->hpage_bytes, MAP_SHARED, st->memfd);
	if (st->guest == MAP_FAILED) {
		st->guest = NULL;
		return ms_error(ctx, errno, "mmap(hugetlb memfd): %s", strerror(errno));
	}
	ms_inject_point(ctx, "madvise:MADV_SPLIT");
	ret = madvise(st->guest, cfg->size_bytes, HG_MADV_SPLIT);
	/* An injected failure: the mapping must still take the split when asked again. */
	if (ms_inject_done(ctx, "madvise:MADV_SPLIT", ret, ret ? errno : 0))
		ret = madvise(st->guest, cfg->size_bytes, HG_MADV_SPLIT);
	if (ret)
		return ms_error(ctx, errno, "madvise(MADV_SPLIT): %s", strerror(errno));
	ret = uffd_register(st->h.t.uffd, st->guest, cfg->size_bytes, cfg->scenario == S_FORK);
	if (ret)
		return ms_error(ctx, -ret, "UFFDIO_REGISTER(MINOR%s): %s",
				cfg->scenario == S_FORK ? "|WP" : "", strerror(-ret));
	__atomic_store_n(&st->h.t.base, (uintptr_t)st->guest, __ATOMIC_SEQ_CST);
	return 0;
}

static int guest_unmap(struct ms_ctx *ctx, struct hg_state *st, uint64_t len)
{
	char *g = st->guest;

	st->guest = NULL;
	if (g && munmap(g, len))
		return ms_error(ctx, errno, "munmap(registered range): %s", strerror(errno));
	return 0;
}

static void fill_alias(struct hg_state *st)
{
	const struct hg_cfg *cfg = &st->cfg;

	for (uint64_t p = 0; p < cfg->npieces; p++)
		ms_page_fill(st->alias + p * cfg->psz, cfg->psz, fill_of(cfg, p, st->gen));
}

/* Pages [first, first + n) of base against the model; one check, the first bad page named. */
static void verify(struct ms_ctx *ctx, struct hg_state *st, const char *what, const char *base,
		   uint64_t first, uint64_t n)
{
	const struct hg_cfg *cfg = &st->cfg;
	uint64_t bad = 0, bad_page = 0;
	size_t off, bad_off = 0;

	for (uint64_t p = first; p < first + n; p++) {
		off = ms_page_check(base + p * cfg->psz, cfg->psz, fill_of(cfg, p, st->gen), 0);
		if (off != MS_PAGE_MATCH && !bad++) {
			bad_page = p;
			bad_off = off;
		}
	}
	ms_count(ctx, st->m_checked, n);
	ms_check(ctx, !bad, what, "%llu of %llu pieces differ from the model; first: piece %llu "
		 "(address 0x%lx), byte %zu", (unsigned long long)bad, (unsigned long long)n,
		 (unsigned long long)bad_page,
		 (unsigned long)(uintptr_t)(base + bad_page * cfg->psz), bad_off);
}

/* ---- the scenarios ---- */

struct hg_counts {
	uint64_t msgs, resolved, eexist, coarse;
};

static void counts_read(struct hg_handler *h, struct hg_counts *c)
{
	c->msgs = __atomic_load_n(&h->msgs, __ATOMIC_SEQ_CST);
	c->resolved = __atomic_load_n(&h->resolved, __ATOMIC_SEQ_CST);
	c->eexist = __atomic_load_n(&h->eexist, __ATOMIC_SEQ_CST);
	c->coarse = __atomic_load_n(&h->coarse, __ATOMIC_SEQ_CST);
}

/* Touch every 4K piece once in a seeded order; each must fault and be resolved alone. */
static int touch_all(struct ms_ctx *ctx, struct hg_state *st)
{
	const struct hg_cfg *cfg = &st->cfg;
	struct hg_counts b, a;

	counts_read(&st->h, &b);
	for (uint64_t i = 0; i < cfg->npieces; i++) {
		char *piece = st->guest + perm(cfg->seed ^ st->gen, cfg->npieces, i) * cfg->psz;
		uint64_t t0;

		if (__atomic_load_n(&st->h.t.dead, __ATOMIC_SEQ_CST))
			break;
		__atomic_store_n(&st->h.expect, (uintptr_t)piece, __ATOMIC_SEQ_CST);
		t0 = ms_now_ns();
		(void)*(volatile uint64_t *)piece;
		ms_sample(ctx, st->m_fault, ms_now_ns() - t0);
	}
	if (__atomic_load_n(&st->h.t.dead, __ATOMIC_SEQ_CST))
		return ms_error(ctx, st->h.t.err, "uffd handler: %s: %s", st->h.t.err_what,
				strerror(st->h.t.err));
	counts_read(&st->h, &a);
	ms_count(ctx, st->m_faults, a.msgs - b.msgs);
	ms_check(ctx, a.resolved - b.resolved == cfg->npieces, "every 4 KiB piece faulted and "
		 "was resolved alone", "%llu UFFDIO_CONTINUE(4 KiB) for %llu pieces (%llu "
		 "messages, %llu EEXIST): a fault that maps more than its piece shows as fewer",
		 (unsigned long long)(a.resolved - b.resolved), (unsigned long long)cfg->npieces,
		 (unsigned long long)(a.msgs - b.msgs), (unsigned long long)(a.eexist - b.eexist));
	ms_check(ctx, a.coarse == b.coarse, "fault addresses at 4 KiB granularity",
		 "%llu faults reported away from the touched piece; first at 0x%llx",
		 (unsigned long long)(a.coarse - b.coarse), (unsigned long long)st->h.first_coarse);
	return 0;
}

static int check_pte(struct ms_ctx *ctx, const char *what, uint64_t base, int64_t want)
{
	uint64_t now;
	int ret = read_vmpte(&now);

	if (ret)
		return ms_error(ctx, -ret, "VmPTE: %s", strerror(-ret));
	ms_check(ctx, (int64_t)(now - base) == want, what, "VmPTE %+lld bytes over the baseline, "
		 "expected %+lld", (long long)(now - base), (long long)want);
	return 0;
}

/* MADV_COLLAPSE puts huge mappings back: the 4K tables go, the data stays, nothing faults. */
static int sc_continue(struct ms_ctx *ctx, struct hg_state *st, uint64_t base)
{
	const struct hg_cfg *cfg = &st->cfg;
	struct hg_counts b, a;
	uint64_t t0 = ms_now_ns();
	int ret;

	if (madvise(st->guest, cfg->size_bytes, MADV_COLLAPSE))
		return ms_error(ctx, errno, "madvise(MADV_COLLAPSE) on the HGM range: %s",
				strerror(errno));
	ms_sample(ctx, st->m_collapse, ms_now_ns() - t0);
	if ((ret = check_pte(ctx, "VmPTE after MADV_COLLAPSE: the 4K tables are freed", base, 0)))
		return ret;
	counts_read(&st->h, &b);
	verify(ctx, st, "data after MADV_COLLAPSE", st->guest, 0, cfg->npieces);
	counts_read(&st->h, &a);
	ms_check(ctx, a.msgs == b.msgs, "no faults after MADV_COLLAPSE", "%llu faults",
		 (unsigned long long)(a.msgs - b.msgs));
	return 0;
}

/* The child measures what it inherited before it touches anything. */
static int fork_child(struct ms_ctx *ctx, struct hg_state *st, int go)
{
	const struct hg_cfg *cfg = &st->cfg;
	uint64_t with = 0, without = 0;
	char c;

	if (read(go, &c, 1) != 1 || read_vmpte(&with))
		return 3;
	verify(ctx, st, "fork: the child sees every 4 KiB piece", st->guest, 0, cfg->npieces);
	if (munmap(st->guest, cfg->size_bytes) || read_vmpte(&without))
		return 3;
	ms_check(ctx, with - without == pte_tables_bytes(cfg, cfg->size_bytes),
		 "fork copied the high-granularity page tables (copy_hugetlb_page_range)",
		 "the child's range held %llu bytes of PTE tables, the parent's %llu",
		 (unsigned long long)(with - without),
		 (unsigned long long)pte_tables_bytes(cfg, cfg->size_bytes));
	return 0;
}

static bool wait_forks(struct hg_handler *h, uint64_t want)
{
	uint64_t t0 = ms_now_ns();

	while (__atomic_load_n(&h->forks, __ATOMIC_SEQ_CST) < want) {
		if (ms_now_ns() - t0 > HG_WAIT_NS)
			return false;
		sched_yield();
	}
	return true;
}

static int sc_fork(struct ms_ctx *ctx, struct hg_state *st, uint64_t base)
{
	uint64_t forks = __atomic_load_n(&st->h.forks, __ATOMIC_SEQ_CST), t0;
	int go[2], status, ret = 0;
	pid_t pid;

	if (pipe2(go, O_CLOEXEC))
		return ms_error(ctx, errno, "pipe2: %s", strerror(errno));
	t0 = ms_now_ns();
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		_exit(fork_child(ctx, st, go[0]));
	}
	ms_sample(ctx, st->m_fork, ms_now_ns() - t0);
	close(go[0]);
	if (pid < 0) {
		close(go[1]);
		return ms_error(ctx, errno, "fork: %s", strerror(errno));
	}
	/* Go only once the handler closed the child's uffd: the child must never block. */
	if (!wait_forks(&st->h, forks + 1) || write(go[1], "g", 1) != 1)
		ret = ms_error(ctx, ETIMEDOUT, "no UFFD_EVENT_FORK within %llu s, or the pipe broke",
			       (unsigned long long)(HG_WAIT_NS / 1000000000ULL));
	close(go[1]);
	if (ret && kill(pid, SIGKILL))
		ms_note(ctx, "kill(fork child): %s", strerror(errno));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return ms_error(ctx, errno, "waitpid: %s", strerror(errno));
	if (ret)
		return ret;
	ms_check(ctx, WIFEXITED(status) && !WEXITSTATUS(status), "fork child exits cleanly",
		 "status 0x%x", status);
	verify(ctx, st, "fork: the parent's data after the child", st->guest, 0,
	       st->cfg.npieces);
	return check_pte(ctx, "fork: the parent's VmPTE unchanged by the child",
			 base, (int64_t)pte_tables_bytes(&st->cfg, st->cfg.size_bytes));
}

/* mprotect of the second huge page, munmap of the third and later ones, at 4K mappings. */
static int sc_unmap(struct ms_ctx *ctx, struct hg_state *st, uint64_t base)
{
	const struct hg_cfg *cfg = &st->cfg;
	uint64_t hp = cfg->hpage_bytes, keep = 2 * hp;
	int ret;

	if (mprotect(st->guest + hp, hp, PROT_READ))
		return ms_error(ctx, errno, "mprotect(PROT_READ, one HGM-mapped huge page): %s",
				strerror(errno));
	if ((ret = check_pte(ctx, "VmPTE after mprotect of a 4K-mapped huge page", base,
			     (int64_t)pte_tables_bytes(cfg, cfg->size_bytes))))
		return ret;
	verify(ctx, st, "data after mprotect of one huge page", st->guest, 0, cfg->npieces);
	if (munmap(st->guest + keep, cfg->size_bytes - keep))
		return ms_error(ctx, errno, "munmap(the huge pages past the second): %s",
				strerror(errno));
	if ((ret = check_pte(ctx, "VmPTE after munmap of 4K-mapped huge pages", base,
			     (int64_t)pte_tables_bytes(cfg, keep))))
		return ret;
	verify(ctx, st, "data after munmap of the other huge pages", st->guest, 0,
	       keep / cfg->psz);
	/* What a sub-huge-page mprotect does under HGM is not settled: reported, not judged. */
	if (mprotect(st->guest, cfg->psz, PROT_READ))
		ms_note(ctx, "mprotect of one 4K piece: %s", strerror(errno));
	else
		ms_note(ctx, "mprotect of one 4K piece was accepted");
	return guest_unmap(ctx, st, keep);
}

/* ---- mapcount / exit: processes each map the first huge page at 4K ---- */

static int worker_map(struct hg_state *st, unsigned idx, bool slow)
{
	const struct hg_cfg *cfg = &st->cfg;
	struct hg_ctl *ctl = st->ctl;
	uint64_t mapped = 0, bad = 0;
	char *g;
	int fd, ret;

	g = ms_mmap_aligned(cfg->hpage_bytes, cfg->hpage_bytes, MAP_SHARED, st->memfd);
	if (g == MAP_FAILED || madvise(g, cfg->hpage_bytes, HG_MADV_SPLIT))
		return errno;
	if ((fd = ms_uffd_open()) < 0)
		return -fd;
	if ((ret = uffd_api(fd, UFFD_FEATURE_MINOR_HUGETLBFS)) ||
	    (ret = uffd_register(fd, g, cfg->hpage_bytes, false)))
		return -ret;
	for (uint64_t i = 0; i < cfg->per_huge; i++) {
		uint64_t p = perm(cfg->seed ^ idx, cfg->per_huge, i);

		if ((ret = uffd_continue(fd, (uintptr_t)g + p * cfg->psz, cfg->psz)))
			return -ret;
		mapped++;
		bad += ms_page_check(g + p * cfg->psz, cfg->psz, fill_of(cfg, p, st->gen), 0) !=
		       MS_PAGE_MATCH;
		if (slow && i == cfg->per_huge / 2) {
			inc(&ctl->pieces, (int64_t)mapped);
			mapped = 0;
			__atomic_add_fetch(&ctl->ready, 1, __ATOMIC_SEQ_CST);
			ms_futex_wake(&ctl->ready);
		}
	}
	inc(&ctl->pieces, (int64_t)mapped);
	inc(&ctl->bad, (int64_t)bad);
	return 0;
}

/* exit: keep mapping until killed. mapcount: hold the mappings until released, then exit. */
static int mc_worker(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct hg_state *st = arg;
	struct hg_ctl *ctl = st->ctl;
	bool slow = st->cfg.scenario == S_EXIT;
	int ret;

	(void)ctx;
	ret = worker_map(st, idx, slow);
	if (ret) {
		int32_t expect = 0;

		__atomic_compare_exchange_n(&ctl->err, &expect, ret, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
	}
	if (!slow || ret) {
		__atomic_add_fetch(&ctl->ready, 1, __ATOMIC_SEQ_CST);
		ms_futex_wake(&ctl->ready);
	}
	while (!__atomic_load_n(&ctl->release, __ATOMIC_SEQ_CST))
		ms_futex_wait(&ctl->release, 0, 100 * 1000 * 1000);
	return ret ? 1 : 0;
}

static int wait_ready(struct ms_ctx *ctx, struct hg_ctl *ctl, unsigned n)
{
	uint64_t t0 = ms_now_ns();
	uint32_t r;

	while ((r = __atomic_load_n(&ctl->ready, __ATOMIC_SEQ_CST)) < n) {
		if (ms_now_ns() - t0 > HG_WAIT_NS)
			return ms_error(ctx, ETIMEDOUT, "only %u of %u processes mapped their "
					"pieces within %llu s", r, n,
					(unsigned long long)(HG_WAIT_NS / 1000000000ULL));
		ms_futex_wait(&ctl->ready, r, 10 * 1000 * 1000);
	}
	return 0;
}

static int read_counts(struct ms_ctx *ctx, struct hg_state *st, uint64_t *head, uint64_t *tail)
{
	int ret = kpagecount_at(st->alias, st->cfg.psz, head);

	if (!ret)
		ret = kpagecount_at(st->alias + st->cfg.psz * (st->cfg.per_huge - 1), st->cfg.psz,
				    tail);
	if (ret)
		return ms_error(ctx, -ret, "/proc/kpagecount of the huge page: %s", strerror(-ret));
	return 0;
}

static int spawn_workers(struct ms_ctx *ctx, struct hg_state *st, unsigned *n)
{
	memset(st->ctl, 0, sizeof(*st->ctl));
	for (*n = 0; *n < st->cfg.procs; (*n)++) {
		pid_t pid = ms_spawn(ctx, mc_worker, st, *n);

		if (pid < 0)
			return ms_error(ctx, -pid, "spawning process %u: %s", *n, strerror(-pid));
		st->pids[*n] = pid;
	}
	return 0;
}

/* Release (mapcount) or kill (exit) the workers, and reap them. */
static int end_workers(struct ms_ctx *ctx, struct hg_state *st, unsigned n, bool kill9)
{
	int ret = 0;

	__atomic_store_n(&st->ctl->release, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&st->ctl->release);
	for (unsigned i = 0; i < n; i++) {
		if (kill9 && kill(st->pids[i], SIGKILL) && errno != ESRCH && !ret)
			ret = ms_error(ctx, errno, "kill: %s", strerror(errno));
		if (ms_wait(ctx, st->pids[i]) > 0 && !ret)
			ret = ms_error(ctx, EIO, "process %u failed: %s", i,
				       strerror(st->ctl->err ? st->ctl->err : EIO));
	}
	return ret;
}

static int sc_mapcount(struct ms_ctx *ctx, struct hg_state *st)
{
	const struct hg_cfg *cfg = &st->cfg;
	bool kill9 = cfg->scenario == S_EXIT;
	uint64_t h0, t0, h1, t1, h2, t2;
	unsigned n = 0;
	int ret;

	if ((ret = read_counts(ctx, st, &h0, &t0)) || (ret = spawn_workers(ctx, st, &n)) ||
	    (ret = wait_ready(ctx, st->ctl, n)) || (ret = read_counts(ctx, st, &h1, &t1))) {
		end_workers(ctx, st, n, true);
		return ret;
	}
	if ((ret = end_workers(ctx, st, n, kill9)) || (ret = read_counts(ctx, st, &h2, &t2)))
		return ret;
	ms_gauge(ctx, st->m_peak, (int64_t)h1);
	ms_count(ctx, st->m_maps, st->ctl->pieces);
	if (!kill9)
		ms_check(ctx, st->ctl->pieces == (uint64_t)n * cfg->per_huge, "every process "
			 "mapped every piece", "%llu 4K mappings by %u processes, expected %llu",
			 (unsigned long long)st->ctl->pieces, n,
			 (unsigned long long)n * cfg->per_huge);
	ms_check(ctx, !st->ctl->bad, "processes read the model through their 4K mappings",
		 "%llu pieces differ", (unsigned long long)st->ctl->bad);
	/* exit: killed half-way, a process may not have mapped the head or last page yet. */
	ms_check(ctx, kill9 || (h1 >= h0 + n && t1 >= t0 + n), "4K mappings are counted",
		 "kpagecount of the head page %llu -> %llu, of the last page %llu -> %llu, with "
		 "%u processes mapping at 4K", (unsigned long long)h0, (unsigned long long)h1,
		 (unsigned long long)t0, (unsigned long long)t1, n);
	ms_check(ctx, h2 == h0 && t2 == t0, kill9 ? "kpagecount back to baseline after kill -9" :
		 "kpagecount back to baseline after exit", "head page %llu -> peak %llu -> %llu, "
		 "last page %llu -> %llu -> %llu", (unsigned long long)h0, (unsigned long long)h1,
		 (unsigned long long)h2, (unsigned long long)t0, (unsigned long long)t1,
		 (unsigned long long)t2);
	verify(ctx, st, "page cache intact after the processes", st->alias, 0, cfg->npieces);
	return 0;
}

/* ---- hwpoison: one 4K piece of a 4K-mapped huge page ---- */

static uint64_t hwp_fill(const void *arg, uint64_t page)
{
	const struct hg_state *st = arg;

	return fill_of(&st->cfg, page, st->gen);
}

/* The file and its page cache views: made in setup, and again after a poisoned one went. */
static int file_open(struct ms_ctx *ctx, struct hg_state *st)
{
	const struct hg_cfg *cfg = &st->cfg;

	st->memfd = open_memfd(cfg, cfg->size_bytes);
	if (st->memfd < 0)
		return ms_error(ctx, -st->memfd, "hugetlb memfd: %s", strerror(-st->memfd));
	st->alias = ms_mmap_aligned(cfg->size_bytes, cfg->hpage_bytes, MAP_SHARED, st->memfd);
	if (st->alias == MAP_FAILED) {
		st->alias = NULL;
		return ms_error(ctx, errno, "mmap(hugetlb memfd): %s", strerror(errno));
	}
	return 0;
}

/* Whatever maps the poisoned file goes, and the file: the next iteration starts afresh. */
static int hwp_release(struct ms_ctx *ctx, void *arg)
{
	struct hg_state *st = arg;
	int ret = guest_unmap(ctx, st, st->cfg.size_bytes);

	if (!ret && (munmap(st->alias, st->cfg.size_bytes) || close(st->memfd)))
		ret = ms_error(ctx, errno, "releasing the poisoned file: %s", strerror(errno));
	st->alias = NULL;
	st->memfd = -1;
	return ret;
}

/*
 * With HGM a memory failure is meant to be handled at PAGE_SIZE (the series' hugetlb-hgm.c
 * selftest: only the raw page SIGBUSes, with lsb 12). What lsb the poisoner's own signal
 * carries there is not stated: reported, not judged.
 */
static int sc_hwpoison(struct ms_ctx *ctx, struct hg_state *st)
{
	const struct hg_cfg *cfg = &st->cfg;
	struct ms_hwp *h = &st->hwp;

	h->map = st->guest;
	h->alias = st->alias;
	h->len = cfg->size_bytes;
	h->hpage_bytes = cfg->hpage_bytes;
	h->psz = cfg->psz;
	h->lost_bytes = cfg->psz;
	h->judge_poisoner_lsb = false;
	h->seed = cfg->seed ^ st->gen;
	h->fill = hwp_fill;
	h->release = hwp_release;
	h->arg = st;
	return ms_hwp_run(ctx, h);
}

/* ---- the iteration ---- */

static int hgm_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct hg_state *st = ms_priv(ctx);
	const struct hg_cfg *cfg = &st->cfg;
	uint64_t base;
	int ret;

	st->gen = iter + 1;
	if (!st->alias && (ret = file_open(ctx, st)))
		return ret;
	fill_alias(st);
	if (cfg->scenario == S_MAPCOUNT || cfg->scenario == S_EXIT)
		return sc_mapcount(ctx, st);
	if ((ret = read_vmpte(&base)))
		return ms_error(ctx, -ret, "VmPTE: %s", strerror(-ret));
	if ((ret = guest_map(ctx, st)) || (ret = touch_all(ctx, st)))
		goto out_unmap;
	verify(ctx, st, "data through the 4K mappings", st->guest, 0, cfg->npieces);
	ret = check_pte(ctx, "VmPTE: one PTE table per 2 MiB mapped at 4K", base,
			(int64_t)pte_tables_bytes(cfg, cfg->size_bytes));
	if (ret)
		goto out_unmap;
	ms_gauge(ctx, st->m_pte, (int64_t)pte_tables_bytes(cfg, cfg->size_bytes));
	if (cfg->scenario == S_CONTINUE)
		ret = sc_continue(ctx, st, base);
	else if (cfg->scenario == S_FORK)
		ret = sc_fork(ctx, st, base);
	else if (cfg->scenario == S_HWPOISON)
		ret = sc_hwpoison(ctx, st);
	else
		ret = sc_unmap(ctx, st, base);
	if (ret)
		goto out_unmap;
	if ((ret = guest_unmap(ctx, st, cfg->size_bytes)))
		return ret;
	return check_pte(ctx, "page tables freed after munmap", base, 0);
out_unmap:
	guest_unmap(ctx, st, cfg->size_bytes);
	return ret;
}

/* ---- probe, setup, teardown ---- */

static int cfg_load(struct ms_ctx *ctx, struct hg_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->scenario = (int)ms_param_i(ctx, "scenario");
	cfg->procs = (unsigned)ms_param_i(ctx, "processes");
	cfg->asked_bytes = (uint64_t)ms_param_i(ctx, "size");
	cfg->hpage_bytes = (uint64_t)ms_param_i(ctx, "hugepage_size");
	cfg->seed = ms_seed(ctx);
	cfg->psz = (size_t)sysconf(_SC_PAGESIZE);
	if (cfg->hpage_bytes & (cfg->hpage_bytes - 1))
		return ms_error(ctx, EINVAL, "hugepage_size %llu is not a power of two",
				(unsigned long long)cfg->hpage_bytes);
	cfg->size_bytes = ms_align_up(cfg->asked_bytes, cfg->hpage_bytes);
	if (cfg->scenario == S_UNMAP && cfg->size_bytes < 3 * cfg->hpage_bytes)
		cfg->size_bytes = 3 * cfg->hpage_bytes;
	cfg->nhuge = cfg->size_bytes / cfg->hpage_bytes;
	cfg->npieces = cfg->size_bytes / cfg->psz;
	cfg->per_huge = cfg->hpage_bytes / cfg->psz;
	return 0;
}

/*
 * MADV_SPLIT is tried where HGM would accept it: a MAP_SHARED hugetlb mapping (MAP_NORESERVE,
 * so no pool page is needed just to ask).
 */
static int probe_split(struct ms_ctx *ctx, const struct hg_cfg *cfg)
{
	int fd = open_memfd(cfg, cfg->hpage_bytes), err = 0;
	void *p;

	if (fd < 0)
		return ms_skip(ctx, "no %llu kB hugetlb memfd: %s", (unsigned long long)
			       cfg->hpage_bytes >> 10, strerror(-fd));
	p = mmap(NULL, cfg->hpage_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		 0);
	if (p == MAP_FAILED) {
		err = errno;
		close(fd);
		return ms_skip(ctx, "mmap of a hugetlb memfd: %s", strerror(err));
	}
	if (madvise(p, cfg->hpage_bytes, HG_MADV_SPLIT))
		err = errno;
	munmap(p, cfg->hpage_bytes);
	close(fd);
	if (err == EINVAL && cfg->scenario == S_HWPOISON)
		return ms_skip(ctx, "MADV_SPLIT not supported (kernel without the HGM series): a 4K "
			       "piece cannot be poisoned alone; hugetlb-minor scenario=hwpoison is "
			       "the mainline baseline (the whole huge page is lost)");
	if (err == EINVAL)
		return ms_skip(ctx, "MADV_SPLIT not supported (kernel without the HGM series)");
	if (err)
		return ms_skip(ctx, "madvise(MADV_SPLIT): %s", strerror(err));
	return 0;
}

static int probe_uffd(struct ms_ctx *ctx, const struct hg_cfg *cfg)
{
	struct uffdio_api api = { .api = UFFD_API };
	uint64_t want = wanted_features(cfg);
	int fd = ms_uffd_open();

	if (fd < 0)
		return ms_skip(ctx, "userfaultfd: %s", strerror(-fd));
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return ms_skip(ctx, "UFFDIO_API: %s", strerror(errno));
	}
	close(fd);
	if ((api.features & want) != want)
		return ms_skip(ctx, "userfaultfd lacks features 0x%llx (MINOR_HUGETLBFS%s); has "
			       "0x%llx", (unsigned long long)(want & ~api.features),
			       cfg->scenario == S_FORK ? ", EVENT_FORK, WP_HUGETLBFS_SHMEM" : "",
			       (unsigned long long)api.features);
	return 0;
}

static int probe_pool(struct ms_ctx *ctx, const struct hg_cfg *cfg)
{
	uint64_t kb = cfg->hpage_bytes >> 10, nr, fr, rs;
	char path[160], val[32];
	int ret;

	snprintf(path, sizeof(path), HG_HP_FMT, (unsigned long long)kb, "free_hugepages");
	if (ms_read_u64(path, &fr))
		return ms_skip(ctx, "no %llu kB hugetlb pool", (unsigned long long)kb);
	snprintf(path, sizeof(path), HG_HP_FMT, (unsigned long long)kb, "resv_hugepages");
	if (ms_read_u64(path, &rs))
		rs = 0;
	if (fr >= rs + cfg->nhuge)
		return 0;
	snprintf(path, sizeof(path), HG_HP_FMT, (unsigned long long)kb, "nr_hugepages");
	if (ms_read_u64(path, &nr))
		return ms_skip(ctx, "cannot read %s", path);
	snprintf(val, sizeof(val), "%llu", (unsigned long long)(nr + rs + cfg->nhuge - fr));
	ret = ms_knob_write(ctx, path, val);
	snprintf(path, sizeof(path), HG_HP_FMT, (unsigned long long)kb, "free_hugepages");
	if (ret || ms_read_u64(path, &fr) || fr < rs + cfg->nhuge)
		return ms_skip(ctx, "needs %llu free %llu kB hugetlb pages, the pool has %llu "
			       "free (raising it: %s)", (unsigned long long)cfg->nhuge,
			       (unsigned long long)kb, (unsigned long long)fr,
			       ret ? strerror(-ret) : "not enough memory");
	ms_note(ctx, "nr_hugepages (%llu kB) raised to %s (journaled, restored after the case)",
		(unsigned long long)kb, val);
	return 0;
}

static int hgm_probe(struct ms_ctx *ctx)
{
	struct hg_cfg cfg;
	uint64_t probe_word = 1, c;
	int ret;

	if ((ret = cfg_load(ctx, &cfg)) || (ret = probe_split(ctx, &cfg)) ||
	    (cfg.scenario == S_HWPOISON && (ret = ms_hwp_probe(ctx))) ||
	    (ret = probe_uffd(ctx, &cfg)) || (ret = probe_pool(ctx, &cfg)))
		return ret;
	if ((cfg.scenario == S_MAPCOUNT || cfg.scenario == S_EXIT) &&
	    kpagecount_at(&probe_word, cfg.psz, &c))
		return ms_skip(ctx, "/proc/self/pagemap PFNs or /proc/kpagecount unreadable "
			       "(needs CAP_SYS_ADMIN)");
	return 0;
}

static int register_metrics(struct ms_ctx *ctx, struct hg_state *st)
{
	const struct ms_metric_spec m[] = {
		{ &st->m_fault, "fault_resolve_4k_ns", MS_M_HIST, "ns" },
		{ &st->m_ioctl, "continue_4k_ioctl_ns", MS_M_HIST, "ns" },
		{ &st->m_collapse, "collapse_ns", MS_M_HIST, "ns" },
		{ &st->m_fork, "fork_ns", MS_M_HIST, "ns" },
		{ &st->m_pte, "vmpte_hgm_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_peak, "kpagecount_head_peak", MS_M_GAUGE, "mappings" },
		{ &st->m_maps, "mappings_4k", MS_M_COUNTER, "mappings" },
		{ &st->m_faults, "fault_messages", MS_M_COUNTER, "faults" },
		{ &st->m_checked, "checked_pages", MS_M_COUNTER, "pages" },
	};

	return ms_metrics(ctx, m, MS_ARRAY_SIZE(m));
}

static int start_handler(struct ms_ctx *ctx, struct hg_state *st)
{
	struct hg_handler *h = &st->h;
	int fd = ms_uffd_open(), ret;

	if (fd < 0)
		return ms_error(ctx, -fd, "userfaultfd: %s", strerror(-fd));
	h->t.uffd = fd;
	if ((ret = uffd_api(fd, wanted_features(&st->cfg))))
		return ms_error(ctx, -ret, "UFFDIO_API: %s", strerror(-ret));
	h->ctx = ctx;
	h->cfg = &st->cfg;
	h->m_ioctl = st->m_ioctl;
	h->t.len = st->cfg.size_bytes;
	h->t.on_msg = on_msg;
	return ms_uffd_start(ctx, &h->t);
}

static int hgm_setup(struct ms_ctx *ctx)
{
	struct hg_state *st = calloc(1, sizeof(*st));
	const struct hg_cfg *cfg;
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	st->memfd = st->h.t.uffd = st->h.t.stop_fd = -1;
	ms_set_priv(ctx, st);
	if ((ret = cfg_load(ctx, &st->cfg)) || (ret = register_metrics(ctx, st)))
		return ret;
	cfg = &st->cfg;
	if (cfg->scenario == S_HWPOISON && (ret = ms_hwp_metrics(ctx, &st->hwp)))
		return ret;
	if ((ret = file_open(ctx, st)))
		return ret;
	st->ctl = mmap(NULL, sizeof(*st->ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	st->pids = calloc(cfg->procs, sizeof(*st->pids));
	if (st->ctl == MAP_FAILED || !st->pids) {
		st->ctl = st->ctl == MAP_FAILED ? NULL : st->ctl;
		return ms_error(ctx, ENOMEM, "out of memory");
	}
	return start_handler(ctx, st);
}

static void hgm_teardown(struct ms_ctx *ctx)
{
	struct hg_state *st = ms_priv(ctx);

	if (!st)
		return;
	ms_uffd_stop(ctx, &st->h.t);
	if (st->guest)
		ms_uffd_release(ctx, munmap(st->guest, st->cfg.size_bytes),
				"munmap(registered range)");
	ms_uffd_close(ctx, &st->h.t);
	if (st->alias)
		ms_uffd_release(ctx, munmap(st->alias, st->cfg.size_bytes), "munmap(alias)");
	if (st->memfd >= 0)
		ms_uffd_release(ctx, close(st->memfd), "close(memfd)");
	if (st->ctl)
		ms_uffd_release(ctx, munmap(st->ctl, sizeof(*st->ctl)), "munmap(control)");
	free(st->pids);
	free(st);
	ms_set_priv(ctx, NULL);
}

const struct ms_workload ms_wl_hgm = {
	.name = "hgm",
	.summary = "HugeTLB high-granularity mapping (HGM series): MADV_SPLIT, 4K UFFDIO_CONTINUE, "
		   "MADV_COLLAPSE, fork, partial unmap, many 4K mappers and kpagecount; SKIPs "
		   "without MADV_SPLIT",
	.params = hgm_params,
	.probe = hgm_probe,
	.setup = hgm_setup,
	.run = hgm_run,
	.teardown = hgm_teardown,
};

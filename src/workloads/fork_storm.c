/* fork-storm: fork/vfork/clone storms over anon, THP, hugetlb or shmem regions, COW-checked. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/inject.h"
#include "mmstorm/journal.h"
#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"

enum { RG_ANON, RG_THP, RG_HUGETLB, RG_SHMEM };
enum { ACT_EXIT, ACT_TOUCH, ACT_WRITE_ALL };
enum { FK_FORK, FK_VFORK, FK_CLONE };
enum { PAT_STAMP, PAT_ZERO, PAT_RANDOM };
enum { MP_PRIVATE, MP_SHARED };
enum { VER_MARKS, VER_FULL };

static const char *const fs_regions[] = { "anon", "thp", "hugetlb", "shmem", NULL };
static const char *const fs_actions[] = { "exit", "touch", "write-all", NULL };
static const char *const fs_fork_modes[] = { "fork", "vfork", "clone", NULL };
static const char *const fs_patterns[] = { "stamp", "zero", "random", NULL };
static const char *const fs_mappings[] = { "private", "shared", NULL };
static const char *const fs_verifies[] = { "marks", "full", NULL };

static const struct ms_param fork_storm_params[] = {
	{ "region", MS_P_ENUM, "anon", "", 1, 0, fs_regions,
	  "memory each worker maps and forks with: anon, thp (PMD-aligned + MADV_HUGEPAGE), "
	  "hugetlb (MAP_HUGETLB), shmem (memfd)" },
	{ "size", MS_P_SIZE, "64M", "bytes", 4096, 64LL << 30, NULL,
	  "region per worker (rounded up to the PMD size for thp, to the huge page size for "
	  "hugetlb)" },
	{ "workers", MS_P_INT, "2", "", 1, 1024, NULL,
	  "worker processes, each with its own region and its own children" },
	{ "children", MS_P_INT, "8", "", 1, 100000, NULL,
	  "children each worker forks per iteration, all alive at once, then reaped" },
	{ "action", MS_P_ENUM, "touch", "", 1, 0, fs_actions,
	  "what a child does after checking the fork-time data: exit at once, touch "
	  "touch_pages pages, or write every page (its slot pages with mapping=shared)" },
	{ "touch_pages", MS_P_INT, "16", "pages", 0, 1LL << 30, NULL,
	  "pages a child writes with action=touch (the first ones are the sampled pages)" },
	{ "fork_mode", MS_P_ENUM, "fork", "", 1, 0, fs_fork_modes,
	  "fork() (glibc), vfork() (child only _exits: latency only), or clone = raw "
	  "clone(SIGCHLD) syscall without glibc's atfork handlers" },
	{ "pattern", MS_P_ENUM, "stamp", "", 1, 0, fs_patterns,
	  "initial page contents: stamp (header/trailer records per page), zero, or random "
	  "(every word derived from the case seed)" },
	{ "sample_pages", MS_P_INT, "64", "pages", 0, 1LL << 30, NULL,
	  "pages checked per child and per parent, spread over the region from the seed" },
	{ "hugepage_size", MS_P_SIZE, "2M", "bytes", 64 << 10, 16LL << 30, NULL,
	  "hugetlb page size for region=hugetlb (2M; 1G allowed)" },
	{ "mapping", MS_P_ENUM, "private", "", 1, 0, fs_mappings,
	  "private: COW isolation is checked; shared: writes must be visible across processes" },
	{ "verify", MS_P_ENUM, "marks", "", 1, 0, fs_verifies,
	  "marks: checks compare the page records only; full: the whole page, body included" },
	{ "lock_threads", MS_P_INT, "0", "", 0, 64, NULL,
	  "threads per worker contending for its mmap_lock while it forks: odd ones flip a "
	  "page of their own between read-only and writable (mmap_lock writers), even ones keep "
	  "writing pages of their own, which fault after every fork (readers)" },
	{ NULL }
};

#define FS_BATCH 64			/* children forked between stop polls */
#define FS_FILL_ROLE 0x66696c6cULL	/* "fill": role of the random pattern, xor the seed */
#define FS_CHILD_BROKEN 3		/* a child's own plumbing (pipe, /proc) failed */

struct fs_cfg {
	int region, action, fork_mode, pattern, mapping, verify;
	unsigned workers, children;
	unsigned lock_threads;		/* mmap_lock contenders per worker */
	size_t psz;			/* base page: the unit of stamps and checks */
	uint64_t size_bytes;		/* rounded up to granule_bytes */
	uint64_t asked_bytes;
	uint64_t granule_bytes;		/* mapping granule: base page, PMD or huge page */
	uint64_t hpage_bytes;		/* hugepage_size */
	uint64_t pmd_bytes;		/* THP PMD size (alignment and split accounting) */
	uint64_t npages;		/* base pages in the region */
	uint64_t sample;		/* sampled pages */
	uint64_t touch;			/* private: pages a child touches */
	uint64_t slot;			/* shared: pages each child owns */
	uint64_t off, stride;		/* page_at(): a seeded permutation of the region */
	uint64_t seed;
	bool thp_built;
	bool thp_always;		/* THP unasked: khugepaged may collapse the region */
};

/*
 * Shared between the case process and its workers (MAP_SHARED). The case posts iterations;
 * each worker runs them in order at its own pace, at most FS_SLACK ahead of the slowest, so
 * workers do not wait for each other after every iteration (a bare fork loop does not).
 */
#define FS_SLACK 2

struct fs_wctl {
	uint32_t ready;			/* setup finished */
	uint32_t done;			/* iterations finished */
	int32_t status;			/* first non-zero: MS_SKIP or -errno */
};

struct fs_ctl {
	uint32_t posted;		/* futex: iterations 0 .. posted - 1 may run */
	uint32_t progress;		/* futex: bumped whenever a worker publishes */
	uint32_t quit;			/* nothing more will be posted */
	int32_t hurry;			/* the case should stop: fork no more children */
	struct fs_wctl w[];
};

struct fs_state {
	struct fs_cfg cfg;
	int m_fork, m_wait, m_cow, m_cpte, m_ppte, m_forks, m_checked;
	struct fs_ctl *ctl;
	size_t ctl_bytes;
	pid_t *wpid;
	unsigned nspawned;
};

/* The first page that did not hold what it should, out of all checked in one check. */
struct fs_bad {
	uint64_t checked, bad;
	uint64_t page, fill, mark;
	bool full;
};

struct fs_iter {
	uint64_t gen;			/* on the sampled pages at fork; parent writes gen + 1 */
	unsigned n;			/* children forked */
	int fork_err;
	unsigned bad_exit, bad_sig, first_bad;
	int first_status, exit_status;	/* first signal death, first non-zero exit */
	uint64_t pte_before, pte_after, pmd_before, pmd_after;	/* bytes */
	struct fs_bad parent, slots;
};

/* One worker: lives in the worker process; its children inherit a copy. */
struct fs_worker {
	struct ms_ctx *ctx;
	const struct fs_state *st;
	const struct fs_cfg *cfg;
	unsigned idx;
	char *region;
	int memfd;
	pid_t *pids;
	uint64_t *fork_ns, *wait_ns;
	size_t arr_bytes;
	unsigned char *scratch;		/* one base page: the expected image for ms_check_mem */
	int barrier[2];
	uint64_t gen;			/* generation of the parent's stamps on the sampled pages */
	bool track_pmd;			/* THP may be involved: follow PMD splits, collapses */
	int pagemap_fd;			/* for PAGEMAP_SCAN, -1 if the kernel has none */
	struct fs_lockers *lk;		/* lock_threads, NULL without */
};

/* ---- small helpers ---- */

/* Page i of a seeded permutation: sample, touch and slot sets are prefixes/ranges of it. */
static uint64_t page_at(const struct fs_cfg *cfg, uint64_t i)
{
	return (cfg->off + (i % cfg->npages) * cfg->stride) % cfg->npages;
}

static uint64_t parent_role(unsigned w)
{
	return (uint64_t)(w + 1) << 32;
}

static uint64_t child_role(unsigned w, unsigned c)
{
	return parent_role(w) | (c + 1);
}

static uint64_t fill_of(const struct fs_cfg *cfg, uint64_t page)
{
	return cfg->pattern == PAT_RANDOM ? ms_stamp(cfg->seed ^ FS_FILL_ROLE, page, 0) : 0;
}

static void *page_ptr(const struct fs_worker *w, uint64_t page)
{
	return w->region + page * w->cfg->psz;
}

/*
 * VmPTE of this process in bytes. Not ms_status_kb(): this runs between the parent's
 * page-table baseline and its re-read, where a malloc (stdio) could itself grow page tables.
 */
static int read_vmpte(uint64_t *bytes)
{
	char buf[4096], *p;
	size_t have = 0;
	ssize_t n;
	int fd, ret = -ENOENT;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (have < sizeof(buf) - 1) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out_close;
		}
		if (n == 0)
			break;
		have += n;
	}
	buf[have] = '\0';
	p = strstr(buf, "\nVmPTE:");
	if (p) {
		*bytes = strtoull(p + 7, NULL, 10) * 1024;
		ret = 0;
	}
out_close:
	close(fd);
	return ret;
}

static bool smaps_is_header(const char *line)
{
	return (*line >= '0' && *line <= '9') || (*line >= 'a' && *line <= 'f');
}

/* Sum the PMD-mapped THP keys of the VMAs overlapping [start, end) on one smaps line. */
static bool smaps_line(const char *line, uintptr_t start, uintptr_t end, bool *in, uint64_t *sum)
{
	static const char *const keys[] = { "AnonHugePages:", "ShmemPmdMapped:",
					    "FilePmdMapped:" };
	unsigned long lo, hi;

	if (smaps_is_header(line)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			return false;
		*in = lo < end && hi > start;
		return lo >= end;
	}
	if (!*in)
		return false;
	for (size_t k = 0; k < MS_ARRAY_SIZE(keys); k++)
		if (!strncmp(line, keys[k], strlen(keys[k])))
			*sum += strtoull(line + strlen(keys[k]), NULL, 10) * 1024;
	return false;
}

/*
 * Bytes of [start, start + len) mapped by PMDs (THP), from /proc/self/smaps: a stack buffer,
 * and reading stops after the region, so the VMAs past it are not walked.
 */
static int smaps_pmd_bytes(uintptr_t start, size_t len, uint64_t *bytes)
{
	char buf[8192];
	size_t have = 0;
	bool in = false, done = false;
	int fd, ret = 0;

	*bytes = 0;
	fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (!done) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		char *line = buf, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		have += n;
		buf[have] = '\0';
		while (!done && (nl = memchr(line, '\n', buf + have - line))) {
			*nl = '\0';
			done = smaps_line(line, start, start + len, &in, bytes);
			line = nl + 1;
		}
		have = buf + have - line;
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1) {
			ret = -EFBIG;
			break;
		}
	}
	close(fd);
	return ret;
}

/*
 * PAGEMAP_SCAN (Linux 6.7) walks only the region's page tables, ~4 ns a PTE against smaps'
 * ~100. Older libc headers lack it; the ABI is fixed, so it is spelled out here.
 */
struct fs_page_region {
	uint64_t start, end, categories;
};

struct fs_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define FS_PAGEMAP_SCAN _IOWR('f', 16, struct fs_pm_scan_arg)
#define FS_PAGE_IS_HUGE (1 << 6)

static int scan_pmd_bytes(int fd, uintptr_t start, size_t len, uint64_t *bytes)
{
	struct fs_page_region v[64];
	uint64_t at = start, end = start + len;

	*bytes = 0;
	while (at < end) {
		struct fs_pm_scan_arg a = {
			.size = sizeof(a), .start = at, .end = end, .vec = (uintptr_t)v,
			.vec_len = MS_ARRAY_SIZE(v), .category_mask = FS_PAGE_IS_HUGE,
			.return_mask = FS_PAGE_IS_HUGE,
		};
		long n = ioctl(fd, FS_PAGEMAP_SCAN, &a);

		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++)
			*bytes += v[i].end - v[i].start;
		if (a.walk_end <= at)
			return -EIO;
		at = a.walk_end;
	}
	return 0;
}

/* Bytes of the worker's region mapped by PMDs (THP), without allocating anything. */
static int region_pmd_bytes(const struct fs_worker *w, uint64_t *bytes)
{
	if (w->pagemap_fd >= 0)
		return scan_pmd_bytes(w->pagemap_fd, (uintptr_t)w->region, w->cfg->size_bytes,
				      bytes);
	return smaps_pmd_bytes((uintptr_t)w->region, w->cfg->size_bytes, bytes);
}

/* ---- configuration, shared by probe and setup ---- */

static int knob_u64(const char *fmt, uint64_t arg, const char *file, uint64_t *v)
{
	char path[160];

	snprintf(path, sizeof(path), fmt, (unsigned long long)arg, file);
	return ms_read_u64(path, v);
}

static void cfg_spread(struct fs_cfg *cfg)
{
	uint64_t n = cfg->npages;

	cfg->off = cfg->seed % n;
	/* A golden-ratio stride spreads consecutive picks far apart, coprime so none repeat. */
	cfg->stride = ((uint64_t)((double)n * 0.6180339887498949)) | 1;
	while (ms_gcd_u64(cfg->stride, n) != 1)
		cfg->stride++;
}

/* Is the THP mode that governs this region one that gives THPs without being asked? */
static bool thp_mode_always(const struct fs_cfg *cfg)
{
	static const char *const anon[] = { "always", NULL };
	static const char *const shmem[] = { "always", "within_size", "force", NULL };
	bool file = cfg->region == RG_SHMEM || cfg->mapping == MP_SHARED;
	const char *knob = file ? "shmem_enabled" : "enabled";
	const char *const *modes = file ? shmem : anon;
	char path[160], cur[64];

	for (int per_size = 0; per_size < 2; per_size++) {
		if (per_size)
			snprintf(path, sizeof(path), "/sys/kernel/mm/transparent_hugepage/"
				 "hugepages-%llukB/%s", (unsigned long long)(cfg->pmd_bytes >> 10),
				 knob);
		else
			snprintf(path, sizeof(path), "/sys/kernel/mm/transparent_hugepage/%s",
				 knob);
		if (ms_knob_read(path, cur, sizeof(cur)))
			continue;
		for (const char *const *m = modes; *m; m++)
			if (!strcmp(cur, *m))
				return true;
	}
	return false;
}

static int cfg_load(struct ms_ctx *ctx, struct fs_cfg *cfg)
{
	uint64_t pmd = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->region = (int)ms_param_i(ctx, "region");
	cfg->action = (int)ms_param_i(ctx, "action");
	cfg->fork_mode = (int)ms_param_i(ctx, "fork_mode");
	cfg->pattern = (int)ms_param_i(ctx, "pattern");
	cfg->mapping = (int)ms_param_i(ctx, "mapping");
	cfg->verify = (int)ms_param_i(ctx, "verify");
	cfg->workers = (unsigned)ms_param_i(ctx, "workers");
	cfg->children = (unsigned)ms_param_i(ctx, "children");
	cfg->lock_threads = (unsigned)ms_param_i(ctx, "lock_threads");
	cfg->hpage_bytes = (uint64_t)ms_param_i(ctx, "hugepage_size");
	cfg->asked_bytes = (uint64_t)ms_param_i(ctx, "size");
	cfg->seed = ms_seed(ctx);
	cfg->psz = (size_t)sysconf(_SC_PAGESIZE);
	cfg->thp_built = !access("/sys/kernel/mm/transparent_hugepage", F_OK);
	if (ms_read_u64("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", &pmd) || !pmd)
		pmd = 2 << 20;
	cfg->pmd_bytes = pmd;
	cfg->thp_always = cfg->thp_built && thp_mode_always(cfg);
	if (cfg->hpage_bytes & (cfg->hpage_bytes - 1))
		return ms_error(ctx, EINVAL, "hugepage_size %llu is not a power of two",
				(unsigned long long)cfg->hpage_bytes);
	cfg->granule_bytes = cfg->region == RG_HUGETLB ? cfg->hpage_bytes :
			     cfg->region == RG_THP ? cfg->pmd_bytes : cfg->psz;
	cfg->size_bytes = ms_align_up(cfg->asked_bytes, cfg->granule_bytes);
	cfg->npages = cfg->size_bytes / cfg->psz;
	cfg->sample = (uint64_t)ms_param_i(ctx, "sample_pages");
	if (cfg->sample > cfg->npages)
		cfg->sample = cfg->npages;
	cfg->touch = (uint64_t)ms_param_i(ctx, "touch_pages");
	if (cfg->touch > cfg->npages)
		cfg->touch = cfg->npages;
	cfg_spread(cfg);
	if (cfg->mapping == MP_SHARED && cfg->action != ACT_EXIT) {
		/* Shared memory: each child writes only pages of its own, never a sampled one. */
		cfg->slot = (cfg->npages - cfg->sample) / cfg->children;
		if (cfg->action == ACT_TOUCH && cfg->slot > cfg->touch)
			cfg->slot = cfg->touch;
		if (!cfg->slot && (cfg->action == ACT_WRITE_ALL || cfg->touch))
			return ms_error(ctx, EINVAL, "mapping=shared gives each child its own "
					"pages: needs sample_pages + children = %llu pages, the "
					"region has %llu",
					(unsigned long long)(cfg->sample + cfg->children),
					(unsigned long long)cfg->npages);
	}
	return 0;
}

/* ---- probe: can this kernel and machine run the case? ---- */

static int probe_procs(struct ms_ctx *ctx, const struct fs_cfg *cfg)
{
	uint64_t need = (uint64_t)cfg->workers * (cfg->children + 1) + 64, v;
	struct rlimit rl;

	if (!ms_read_u64("/proc/sys/kernel/pid_max", &v) && v < need)
		return ms_skip(ctx, "needs %llu processes at once, kernel.pid_max is %llu",
			       (unsigned long long)need, (unsigned long long)v);
	if (!ms_read_u64("/proc/sys/kernel/threads-max", &v) && v < need)
		return ms_skip(ctx, "needs %llu processes at once, kernel.threads-max is %llu",
			       (unsigned long long)need, (unsigned long long)v);
	if (!getrlimit(RLIMIT_NPROC, &rl) && rl.rlim_cur != RLIM_INFINITY && geteuid() &&
	    rl.rlim_cur < need)
		return ms_skip(ctx, "needs %llu processes at once, RLIMIT_NPROC is %llu",
			       (unsigned long long)need, (unsigned long long)rl.rlim_cur);
	return 0;
}

/*
 * A rough upper bound of what the case allocates outside hugetlb pools: regions, the
 * copies COW makes, and each child's page tables and kernel overhead.
 */
static uint64_t mem_estimate(const struct fs_cfg *cfg)
{
	bool huge = cfg->region == RG_HUGETLB, priv = cfg->mapping == MP_PRIVATE;
	uint64_t region = huge ? 0 : cfg->size_bytes;
	uint64_t child = cfg->size_bytes / 512 + (512 << 10), parent = region;

	if (priv && !huge && cfg->fork_mode != FK_VFORK) {
		parent += cfg->sample * cfg->psz;
		if (cfg->action == ACT_TOUCH)
			child += cfg->touch * cfg->psz;
		else if (cfg->action == ACT_WRITE_ALL)
			child += cfg->size_bytes;
	}
	return (uint64_t)cfg->workers * (parent + (uint64_t)cfg->children * child);
}

static int probe_memory(struct ms_ctx *ctx, const struct fs_cfg *cfg)
{
	uint64_t need = mem_estimate(cfg), avail_kb;

	if (ms_meminfo_kb("MemAvailable", &avail_kb))
		return 0;
	if (need / 1024 > avail_kb / 10 * 9)
		return ms_skip(ctx, "needs about %llu MiB (workers x (region + COW copies + "
			       "children's page tables)), MemAvailable is %llu MiB",
			       (unsigned long long)(need >> 20),
			       (unsigned long long)(avail_kb >> 10));
	return 0;
}

/* Make a THP mode knob allow MADV_HUGEPAGE: journaled, restored at case end. */
static int thp_allow(struct ms_ctx *ctx, const char *path, const char *const *off,
		     const char *want)
{
	char cur[64];
	int ret;

	if (ms_knob_read(path, cur, sizeof(cur)))
		return 0;	/* per-size knobs are missing on older kernels */
	for (; *off; off++) {
		if (strcmp(cur, *off))
			continue;
		ret = ms_knob_write(ctx, path, want);
		if (ret)
			return ms_skip(ctx, "THP disabled (%s is '%s') and setting '%s' failed: %s",
				       path, cur, want, strerror(-ret));
		ms_note(ctx, "%s was '%s'; set '%s' (journaled, restored after the case)", path,
			cur, want);
		return 0;
	}
	return 0;
}

static int probe_thp(struct ms_ctx *ctx, const struct fs_cfg *cfg)
{
	static const char *const never[] = { "never", NULL };
	static const char *const shmem_off[] = { "never", "deny", NULL };
	static const char *const size_off[] = { "never", NULL };
	const char *top = "/sys/kernel/mm/transparent_hugepage";
	bool shared = cfg->mapping == MP_SHARED;
	char path[160];
	int ret;

	if (!cfg->thp_built)
		return ms_skip(ctx, "THP not built in (no /sys/kernel/mm/transparent_hugepage)");
	snprintf(path, sizeof(path), "%s/%s", top, shared ? "shmem_enabled" : "enabled");
	ret = thp_allow(ctx, path, shared ? shmem_off : never, shared ? "advise" : "madvise");
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/hugepages-%llukB/%s", top,
		 (unsigned long long)(cfg->pmd_bytes >> 10),
		 shared ? "shmem_enabled" : "enabled");
	return thp_allow(ctx, path, size_off, "inherit");
}

/* Distinct huge pages holding the pages page_at(first .. first + count - 1). */
static uint64_t distinct_hpages(const struct fs_cfg *cfg, uint64_t first, uint64_t count)
{
	uint64_t nh = cfg->size_bytes / cfg->hpage_bytes, per = cfg->hpage_bytes / cfg->psz, n = 0;
	unsigned char *seen;

	if (count >= cfg->npages)
		return nh;
	seen = calloc((nh + 7) / 8, 1);
	if (!seen)
		return count < nh ? count : nh;	/* the bound without the dedup */
	for (uint64_t i = first; i < first + count; i++) {
		uint64_t h = page_at(cfg, i) / per;

		if (!(seen[h / 8] & (1u << (h % 8)))) {
			seen[h / 8] |= 1u << (h % 8);
			n++;
		}
	}
	free(seen);
	return n;
}

/*
 * Huge pages the case holds at its peak: each worker's region, plus for private mappings
 * one copy per huge page the parent writes after fork and per huge page each child writes
 * (hugetlb COW copies whole huge pages; a child that runs out gets SIGBUS).
 */
static uint64_t hugetlb_need(const struct fs_cfg *cfg)
{
	uint64_t region = cfg->size_bytes / cfg->hpage_bytes, copies = 0, child = 0;

	if (cfg->mapping == MP_PRIVATE && cfg->fork_mode != FK_VFORK) {
		copies = distinct_hpages(cfg, 0, cfg->sample);
		if (cfg->action == ACT_TOUCH)
			child = distinct_hpages(cfg, 0, cfg->touch);
		else if (cfg->action == ACT_WRITE_ALL)
			child = region;
		copies += (uint64_t)cfg->children * child;
	}
	return (uint64_t)cfg->workers * (region + copies);
}

/* "2M", "1G", "64K": how sizes are written in suites and kernel docs. */
static const char *size_label(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	unsigned u = 0;

	bytes >>= 10;
	while (u < sizeof(units) - 2 && bytes >= 1024 && !(bytes % 1024)) {
		bytes >>= 10;
		u++;
	}
	snprintf(buf, len, "%llu%c", (unsigned long long)bytes, units[u]);
	return buf;
}

static int hugetlb_avail(const char *fmt, uint64_t kb, uint64_t *nr, uint64_t *avail)
{
	uint64_t free_pages, resv;
	int ret;

	if ((ret = knob_u64(fmt, kb, "nr_hugepages", nr)) ||
	    (ret = knob_u64(fmt, kb, "free_hugepages", &free_pages)) ||
	    (ret = knob_u64(fmt, kb, "resv_hugepages", &resv)))
		return ret;
	*avail = free_pages > resv ? free_pages - resv : 0;
	return 0;
}

static int probe_hugetlb(struct ms_ctx *ctx, const struct fs_cfg *cfg)
{
	const char *fmt = "/sys/kernel/mm/hugepages/hugepages-%llukB/%s";
	uint64_t kb = cfg->hpage_bytes >> 10, need = hugetlb_need(cfg), nr, avail, mem_kb, total_kb;
	uint64_t margin_kb, extra;
	char path[160], val[32], label[32];
	int ret;

	if (hugetlb_avail(fmt, kb, &nr, &avail))
		return ms_skip(ctx, "no %llu kB hugetlb pages on this kernel (no "
			       "/sys/kernel/mm/hugepages/hugepages-%llukB)",
			       (unsigned long long)kb, (unsigned long long)kb);
	if (avail >= need)
		return 0;
	extra = need - avail;
	if (ms_meminfo_kb("MemAvailable", &mem_kb) || ms_meminfo_kb("MemTotal", &total_kb))
		mem_kb = total_kb = 0;
	/* Leave the rest of the system (and the case's own page tables) room to breathe. */
	margin_kb = total_kb / 8 > (512 << 10) ? total_kb / 8 : (512 << 10);
	if (mem_kb > margin_kb && extra * kb <= mem_kb - margin_kb) {
		snprintf(path, sizeof(path), fmt, (unsigned long long)kb, "nr_hugepages");
		snprintf(val, sizeof(val), "%llu", (unsigned long long)(nr + extra));
		ret = ms_knob_write(ctx, path, val);
		if (!ret)
			ms_note(ctx, "set nr_hugepages (%llu kB) from %llu to %llu: the case needs "
				"%llu free (journaled, restored after the case)",
				(unsigned long long)kb, (unsigned long long)nr,
				(unsigned long long)(nr + extra), (unsigned long long)need);
		else
			ms_note(ctx, "writing %s failed: %s", path, strerror(-ret));
		if (hugetlb_avail(fmt, kb, &nr, &avail))
			avail = 0;
	}
	if (avail < need)
		return ms_skip(ctx, "needs %llu x %s hugetlb pages, could get %llu "
			       "(nr_hugepages=%llu)",
			       (unsigned long long)need,
			       size_label(cfg->hpage_bytes, label, sizeof(label)),
			       (unsigned long long)avail, (unsigned long long)nr);
	return 0;
}

static int fork_storm_probe(struct ms_ctx *ctx)
{
	struct fs_cfg cfg;
	int ret;

	if ((ret = cfg_load(ctx, &cfg)))
		return ret;
	if ((ret = probe_procs(ctx, &cfg)) || (ret = probe_memory(ctx, &cfg)))
		return ret;
	if (cfg.region == RG_THP)
		return probe_thp(ctx, &cfg);
	if (cfg.region == RG_HUGETLB)
		return probe_hugetlb(ctx, &cfg);
	return 0;
}

/* ---- worker: region ---- */

/*
 * Initial contents, generation 0: stamp marks every page, zero and random write whole pages
 * and then mark the sampled ones, which is what the first children must see.
 */
static void fill_region(const struct fs_cfg *cfg, unsigned w, char *base)
{
	for (uint64_t p = 0; p < cfg->npages; p++) {
		char *pg = base + p * cfg->psz;

		if (cfg->pattern == PAT_STAMP)
			ms_page_mark(pg, cfg->psz, ms_stamp(parent_role(w), p, 0));
		else
			ms_page_fill(pg, cfg->psz, fill_of(cfg, p));
	}
	if (cfg->pattern == PAT_STAMP)
		return;
	for (uint64_t i = 0; i < cfg->sample; i++) {
		uint64_t p = page_at(cfg, i);

		ms_page_mark(base + p * cfg->psz, cfg->psz, ms_stamp(parent_role(w), p, 0));
	}
}

/* A private view of a memfd: fill the file through a shared mapping, then map it private. */
static int map_shmem(struct fs_worker *w, int flags)
{
	const struct fs_cfg *cfg = w->cfg;
	char *tmp;

	w->memfd = memfd_create("mmstorm-fork-storm", MFD_CLOEXEC);
	if (w->memfd < 0)
		return ms_error(w->ctx, errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(w->memfd, (off_t)cfg->size_bytes))
		return ms_error(w->ctx, errno, "ftruncate(memfd, %llu): %s",
				(unsigned long long)cfg->size_bytes, strerror(errno));
	if (cfg->mapping == MP_PRIVATE) {
		tmp = ms_mmap_aligned(cfg->size_bytes, cfg->pmd_bytes, MAP_SHARED, w->memfd);
		if (tmp == MAP_FAILED)
			return ms_error(w->ctx, errno, "mmap(memfd, shared): %s", strerror(errno));
		fill_region(cfg, w->idx, tmp);
		if (munmap(tmp, cfg->size_bytes))
			return ms_error(w->ctx, errno, "munmap(memfd, shared): %s",
					strerror(errno));
	}
	w->region = ms_mmap_aligned(cfg->size_bytes, cfg->pmd_bytes, flags, w->memfd);
	if (w->region == MAP_FAILED) {
		w->region = NULL;
		return ms_error(w->ctx, errno, "mmap(memfd, %s): %s",
				fs_mappings[cfg->mapping], strerror(errno));
	}
	if (cfg->mapping == MP_SHARED) {
		fill_region(cfg, w->idx, w->region);
		return 0;
	}
	/* Map the file pages in the parent, as a populated anon region would be. */
	for (uint64_t p = 0; p < cfg->npages; p++)
		(void)*(volatile char *)page_ptr(w, p);
	return 0;
}

static int map_region(struct fs_worker *w)
{
	const struct fs_cfg *cfg = w->cfg;
	int flags = (cfg->mapping == MP_SHARED ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
	size_t align = cfg->pmd_bytes;

	if (cfg->region == RG_SHMEM)
		return map_shmem(w, flags & ~MAP_ANONYMOUS);
	if (cfg->region == RG_HUGETLB) {
		flags |= MAP_HUGETLB | (ms_log2_u64(cfg->hpage_bytes) << MAP_HUGE_SHIFT);
		align = cfg->hpage_bytes;
	}
	w->region = ms_mmap_aligned(cfg->size_bytes, align, flags, -1);
	if (w->region == MAP_FAILED) {
		w->region = NULL;
		/* The pool was there at probe time: someone else took it since. */
		if (cfg->region == RG_HUGETLB && errno == ENOMEM)
			return ms_skip(w->ctx, "hugetlb pages for worker %u were gone at mmap time "
				       "(another user of the pool since the probe)", w->idx);
		return ms_error(w->ctx, errno, "mmap(%llu bytes, %s %s): %s",
				(unsigned long long)cfg->size_bytes, fs_mappings[cfg->mapping],
				fs_regions[cfg->region], strerror(errno));
	}
	if (cfg->region == RG_THP && madvise(w->region, cfg->size_bytes, MADV_HUGEPAGE))
		return ms_error(w->ctx, errno, "madvise(MADV_HUGEPAGE): %s", strerror(errno));
	fill_region(cfg, w->idx, w->region);
	return 0;
}

/*
 * The THP region must really hold THPs, or the case measures 4K pages under a THP name.
 * PMD splits and collapses are followed wherever THP may be involved, so the VmPTE check
 * can allow for them; elsewhere they cannot happen and the check allows nothing.
 */
static int check_thp(struct fs_worker *w)
{
	const struct fs_cfg *cfg = w->cfg;
	uint64_t pmd = 0;
	int ret;

	if (!cfg->thp_built || cfg->region == RG_HUGETLB)
		return 0;
	w->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (w->pagemap_fd >= 0 && scan_pmd_bytes(w->pagemap_fd, (uintptr_t)w->region,
						 cfg->psz, &pmd)) {
		close(w->pagemap_fd);
		w->pagemap_fd = -1;
	}
	ret = region_pmd_bytes(w, &pmd);
	if (ret)
		return ms_error(w->ctx, -ret, "reading the region's PMD mappings: %s",
				strerror(-ret));
	w->track_pmd = cfg->region == RG_THP || pmd || cfg->thp_always;
	if (cfg->region != RG_THP || pmd)
		return 0;
	if (cfg->mapping == MP_SHARED)
		return ms_skip(w->ctx, "no THP could be allocated (ShmemPmdMapped 0 after "
			       "MADV_HUGEPAGE populate)");
	return ms_skip(w->ctx, "no THP could be allocated (AnonHugePages 0 after MADV_HUGEPAGE "
		       "populate)");
}

static void *map_populated(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Touch what the parent's measured window touches, so first use does not grow page tables. */
static void __attribute__((noinline)) prefault_stack(void)
{
	volatile char buf[64 << 10];

	for (size_t i = 0; i < sizeof(buf); i += 1024)
		buf[i] = 0;
}

static pid_t spawn_child(struct fs_worker *w, const struct fs_iter *it, unsigned c);

static int warm_up(struct fs_worker *w)
{
	struct fs_iter it = { 0 };
	uint64_t v;
	int status, err;
	pid_t pid;

	prefault_stack();
	(void)ms_should_stop(w->ctx);
	(void)ms_now_ns();
	if (read_vmpte(&v) || (w->track_pmd && region_pmd_bytes(w, &v)))
		return ms_error(w->ctx, EIO, "cannot read VmPTE or the region's PMD mappings");
	if (pipe2(w->barrier, O_CLOEXEC))
		return ms_error(w->ctx, errno, "pipe2: %s", strerror(errno));
	/* A child with no work: it leaves at the barrier (see child_main). */
	pid = spawn_child(w, &it, UINT_MAX);
	err = errno;
	close(w->barrier[1]);
	close(w->barrier[0]);
	if (pid < 0)
		return ms_error(w->ctx, err, "%s: %s", fs_fork_modes[w->cfg->fork_mode],
				strerror(err));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return ms_error(w->ctx, errno, "waitpid: %s", strerror(errno));
	return 0;
}

static int worker_setup(struct fs_worker *w)
{
	const struct fs_cfg *cfg = w->cfg;
	int ret;

	if ((ret = map_region(w)) || (ret = check_thp(w)))
		return ret;
	w->arr_bytes = ms_align_up((size_t)cfg->children * sizeof(uint64_t), cfg->psz);
	w->pids = map_populated(w->arr_bytes);
	w->fork_ns = map_populated(w->arr_bytes);
	w->wait_ns = map_populated(w->arr_bytes);
	w->scratch = map_populated(cfg->psz);
	if (!w->pids || !w->fork_ns || !w->wait_ns || !w->scratch)
		return ms_error(w->ctx, ENOMEM, "worker arrays for %u children: %s",
				cfg->children, strerror(errno));
	/*
	 * Store to every slot once: MAP_POPULATE mapped the pages, but a sanitizer's shadow of
	 * them is only mapped by the first checked access, which must not be in the window.
	 */
	for (unsigned c = 0; c < cfg->children; c++) {
		w->pids[c] = 0;
		w->fork_ns[c] = 0;
		w->wait_ns[c] = 0;
	}
	return warm_up(w);
}

/* Cleanup failures would be bugs here (EINVAL, EBADF): make them an ERROR, not silence. */
static void release(struct fs_worker *w, int ret, const char *what)
{
	if (ret)
		ms_error(w->ctx, errno, "worker %u: %s: %s", w->idx, what, strerror(errno));
}

static void worker_cleanup(struct fs_worker *w)
{
	const struct fs_cfg *cfg = w->cfg;

	if (w->region)
		release(w, munmap(w->region, cfg->size_bytes), "munmap(region)");
	if (w->memfd >= 0)
		release(w, close(w->memfd), "close(memfd)");
	if (w->pagemap_fd >= 0)
		release(w, close(w->pagemap_fd), "close(pagemap)");
	if (w->pids)
		release(w, munmap(w->pids, w->arr_bytes), "munmap(pids)");
	if (w->fork_ns)
		release(w, munmap(w->fork_ns, w->arr_bytes), "munmap(fork_ns)");
	if (w->wait_ns)
		release(w, munmap(w->wait_ns, w->arr_bytes), "munmap(wait_ns)");
	if (w->scratch)
		release(w, munmap(w->scratch, cfg->psz), "munmap(scratch)");
}

/* ---- checks ---- */

static void verify_page(const struct fs_worker *w, uint64_t p, uint64_t fill, uint64_t mark,
			bool full, struct fs_bad *b)
{
	const void *pg = page_ptr(w, p);
	size_t off;

	off = full ? ms_page_check(pg, w->cfg->psz, fill, mark) :
		     ms_page_mark_check(pg, w->cfg->psz, mark);
	b->checked++;
	if (off == MS_PAGE_MATCH || b->bad++)
		return;
	b->page = p;
	b->fill = fill;
	b->mark = mark;
	b->full = full;
}

/* One check per call: passes, or reports the first bad page's first differing byte. */
static void report_bad(const struct fs_worker *w, const char *what, const char *who,
		       const struct fs_bad *b)
{
	const struct fs_cfg *cfg = w->cfg;
	const unsigned char *pg;
	char label[128];

	if (!b->checked)
		return;
	if (!b->bad) {
		ms_check(w->ctx, true, what, "%s", "");
		return;
	}
	pg = page_ptr(w, b->page);
	if (b->full) {
		ms_page_expect(w->scratch, cfg->psz, b->fill, b->mark);
	} else {
		memcpy(w->scratch, pg, cfg->psz);
		ms_page_mark(w->scratch, cfg->psz, b->mark);
	}
	snprintf(label, sizeof(label), "%s [%s: %llu of %llu pages bad, first is region page %llu]",
		 what, who, (unsigned long long)b->bad, (unsigned long long)b->checked,
		 (unsigned long long)b->page);
	if (ms_check_mem(w->ctx, label, w->scratch, pg, cfg->psz, (uintptr_t)pg, cfg->psz))
		ms_check(w->ctx, false, label, "region page %llu was wrong when checked but right "
			 "when re-read for this report: it changed in between",
			 (unsigned long long)b->page);
}

/* ---- children ---- */

/* The parent closing its write end is the signal: EOF, nothing else, is expected. */
static int wait_barrier(struct fs_worker *w)
{
	ssize_t n;
	char c;

	if (close(w->barrier[1]))
		return -1;
	while ((n = read(w->barrier[0], &c, 1)) < 0 && errno == EINTR)
		;
	return n ? -1 : 0;
}

/* The first store to a page the child shares: the COW (or shared-page) write fault. */
static uint64_t timed_first_write(void *pg, uint64_t v)
{
	uint64_t t0, t1;

	t0 = ms_now_ns();
	__asm__ __volatile__("" ::: "memory");
	*(volatile uint64_t *)pg = v;
	__asm__ __volatile__("" ::: "memory");
	t1 = ms_now_ns();
	return t1 - t0;
}

/* Page j of what child c writes: touch set (private), or its own slot (shared). */
static uint64_t child_page(const struct fs_cfg *cfg, unsigned c, uint64_t j)
{
	if (cfg->mapping == MP_SHARED)
		return page_at(cfg, cfg->sample + (uint64_t)c * cfg->slot + j);
	if (cfg->action == ACT_WRITE_ALL)
		return j;
	return page_at(cfg, j);
}

static uint64_t child_npages(const struct fs_cfg *cfg)
{
	if (cfg->mapping == MP_SHARED)
		return cfg->slot;
	return cfg->action == ACT_WRITE_ALL ? cfg->npages : cfg->touch;
}

/* Write the child's own stamps (marks for touch, whole pages for write-all), read back. */
static void child_write(struct fs_worker *w, const struct fs_iter *it, unsigned c)
{
	const struct fs_cfg *cfg = w->cfg;
	uint64_t n = child_npages(cfg), role = child_role(w->idx, c), v;
	bool all = cfg->action == ACT_WRITE_ALL;
	struct fs_bad bad = { 0 };
	char who[48];

	if (!n)
		return;
	v = ms_stamp(role, child_page(cfg, c, 0), it->gen);
	ms_sample(w->ctx, w->st->m_cow, timed_first_write(page_ptr(w, child_page(cfg, c, 0)), v));
	for (uint64_t j = 0; j < n; j++) {
		uint64_t p = child_page(cfg, c, j);

		v = ms_stamp(role, p, it->gen);
		if (all)
			ms_page_fill(page_ptr(w, p), cfg->psz, v);
		else
			ms_page_mark(page_ptr(w, p), cfg->psz, v);
	}
	for (uint64_t j = 0; j < n; j++) {
		uint64_t p = child_page(cfg, c, j);

		v = ms_stamp(role, p, it->gen);
		if (all)
			verify_page(w, p, v, 0, true, &bad);
		else
			verify_page(w, p, fill_of(cfg, p), v, cfg->verify == VER_FULL, &bad);
	}
	snprintf(who, sizeof(who), "worker %u child %u", w->idx, c);
	report_bad(w, "child reads back its own writes", who, &bad);
	ms_count(w->ctx, w->st->m_checked, bad.checked);
}

/* The action, then what it cost in page tables. 0, or -1 if /proc could not be read. */
static int child_act(struct fs_worker *w, const struct fs_iter *it, unsigned c)
{
	uint64_t pte;

	child_write(w, it, c);
	if (read_vmpte(&pte))
		return -1;
	ms_sample(w->ctx, w->st->m_cpte, pte);
	return 0;
}

/*
 * A child: waits until all its siblings exist and the parent has written generation + 1,
 * checks what it sees on the sampled pages, does its action and _exit()s. Never returns,
 * never prints, never calls exit(): the parent's stdio and atexit state are not its own.
 */
static void __attribute__((noreturn)) child_main(struct fs_worker *w, const struct fs_iter *it,
						 unsigned c)
{
	const struct fs_cfg *cfg = w->cfg;
	bool shared = cfg->mapping == MP_SHARED, full = cfg->verify == VER_FULL;
	uint64_t gen = shared ? it->gen + 1 : it->gen, role = parent_role(w->idx);
	struct fs_bad bad = { 0 };
	char who[48];

	if (wait_barrier(w))
		_exit(FS_CHILD_BROKEN);
	if (c == UINT_MAX)
		_exit(0);
	for (uint64_t i = 0; i < cfg->sample; i++) {
		uint64_t p = page_at(cfg, i);

		verify_page(w, p, fill_of(cfg, p), ms_stamp(role, p, gen), full, &bad);
	}
	snprintf(who, sizeof(who), "worker %u child %u", w->idx, c);
	report_bad(w, shared ? "child sees the parent's post-fork writes (shared)" :
		   "child sees the fork-time data (COW isolation)", who, &bad);
	ms_count(w->ctx, w->st->m_checked, bad.checked);
	if (cfg->action != ACT_EXIT && child_act(w, it, c))
		_exit(FS_CHILD_BROKEN);
	_exit(0);
}

static pid_t __attribute__((noinline)) vfork_exit(void)
{
	pid_t pid = vfork();

	if (pid == 0)
		_exit(0);
	return pid;
}

/* clone(SIGCHLD) straight to the kernel: no glibc atfork handlers, no fork-time locking. */
static pid_t raw_clone(void)
{
#if defined(__s390__) || defined(__CRIS__)
	return (pid_t)syscall(SYS_clone, 0, SIGCHLD, NULL, NULL, 0);
#else
	return (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
#endif
}

static pid_t spawn_child(struct fs_worker *w, const struct fs_iter *it, unsigned c)
{
	pid_t pid;

	switch (w->cfg->fork_mode) {
	case FK_VFORK:
		return vfork_exit();
	case FK_CLONE:
		pid = raw_clone();
		break;
	default:
		pid = fork();
		break;
	}
	if (pid == 0)
		child_main(w, it, c);
	return pid;
}

/* ---- the parent's iteration ---- */

static void mark_samples(struct fs_worker *w, uint64_t gen)
{
	const struct fs_cfg *cfg = w->cfg;

	for (uint64_t i = 0; i < cfg->sample; i++) {
		uint64_t p = page_at(cfg, i);

		ms_page_mark(page_ptr(w, p), cfg->psz, ms_stamp(parent_role(w->idx), p, gen));
	}
}

static bool stop_forking(const struct fs_worker *w)
{
	return __atomic_load_n(&w->st->ctl->hurry, __ATOMIC_RELAXED) || ms_should_stop(w->ctx);
}

static void fork_children(struct fs_worker *w, struct fs_iter *it)
{
	const struct fs_cfg *cfg = w->cfg;
	uint64_t t0, t1;
	pid_t pid;

	for (unsigned c = 0; c < cfg->children; c++) {
		if (c && c % FS_BATCH == 0 && stop_forking(w))
			break;
		ms_inject_point(w->ctx, "fork");
		t0 = ms_now_ns();
		pid = spawn_child(w, it, c);
		t1 = ms_now_ns();
		if (pid < 0) {
			int err = errno;	/* the vDSO clock leaves errno alone */

			/* An injected failure is a result: the iteration checks what it forked. */
			if (!ms_inject_done(w->ctx, "fork", pid, err))
				it->fork_err = err;
			break;
		}
		ms_inject_done(w->ctx, "fork", pid, 0);
		w->pids[c] = pid;
		w->fork_ns[c] = t1 - t0;
		it->n++;
	}
}

static void reap_children(struct fs_worker *w, struct fs_iter *it)
{
	uint64_t t0, t1;
	int status;
	pid_t r;

	for (unsigned c = 0; c < it->n; c++) {
		t0 = ms_now_ns();
		while ((r = waitpid(w->pids[c], &status, 0)) < 0 && errno == EINTR)
			;
		t1 = ms_now_ns();
		w->wait_ns[c] = t1 - t0;
		if (r < 0)
			status = 0x7f00;	/* as if it exited with 127: reported below */
		if (!WIFSIGNALED(status) && !(WIFEXITED(status) && WEXITSTATUS(status)))
			continue;
		/* A child an injector killed (sigkill, OOM, SIGBUS on a dry pool) is a result. */
		if (WIFSIGNALED(status) && ms_inject_killed(w->ctx, w->pids[c], status))
			continue;
		if (WIFSIGNALED(status) && !it->bad_sig) {
			it->first_bad = c;
			it->first_status = status;
		}
		if (WIFSIGNALED(status))
			it->bad_sig++;
		else if (!it->bad_exit++)
			it->exit_status = WEXITSTATUS(status);
	}
}

/* After the children are gone: the parent's pages and, if shared, the children's pages. */
static void parent_verify(struct fs_worker *w, struct fs_iter *it)
{
	const struct fs_cfg *cfg = w->cfg;
	bool full = cfg->verify == VER_FULL, all = cfg->action == ACT_WRITE_ALL;
	uint64_t gen = cfg->fork_mode == FK_VFORK ? it->gen : it->gen + 1, v;

	for (uint64_t i = 0; i < cfg->sample; i++) {
		uint64_t p = page_at(cfg, i);

		verify_page(w, p, fill_of(cfg, p), ms_stamp(parent_role(w->idx), p, gen), full,
			    &it->parent);
	}
	if (cfg->mapping != MP_SHARED || cfg->fork_mode == FK_VFORK)
		return;
	for (unsigned c = 0; c < it->n; c++) {
		for (uint64_t j = 0; j < cfg->slot; j++) {
			uint64_t p = child_page(cfg, c, j);

			v = ms_stamp(child_role(w->idx, c), p, it->gen);
			if (all)
				verify_page(w, p, v, 0, true, &it->slots);
			else
				verify_page(w, p, fill_of(cfg, p), v, full, &it->slots);
		}
	}
}

/*
 * Everything between the two VmPTE reads must not grow this process's page tables by
 * itself: no malloc, no first touch of the metrics area (samples are kept in arrays that
 * setup populated and recorded afterwards), stack and vDSO warmed up in setup.
 */
static int measured_window(struct fs_worker *w, struct fs_iter *it)
{
	const struct fs_cfg *cfg = w->cfg;
	int ret;

	if ((ret = read_vmpte(&it->pte_before)) ||
	    (w->track_pmd && (ret = region_pmd_bytes(w, &it->pmd_before))))
		return ret;
	if (pipe2(w->barrier, O_CLOEXEC))
		return -errno;
	fork_children(w, it);
	if (cfg->fork_mode != FK_VFORK)
		mark_samples(w, it->gen + 1);
	if (close(w->barrier[1]))
		ret = -errno;
	reap_children(w, it);
	if (close(w->barrier[0]) && !ret)
		ret = -errno;
	parent_verify(w, it);
	if (ret)
		return ret;
	if ((ret = read_vmpte(&it->pte_after)) ||
	    (w->track_pmd && (ret = region_pmd_bytes(w, &it->pmd_after))))
		return ret;
	return 0;
}

/*
 * The parent's page tables after its children are gone: exactly the baseline, except one
 * PTE table per PMD its own post-fork writes split (a file THP split needs a new one; an
 * anon THP split uses the table deposited at fault time) and minus one per PMD khugepaged
 * collapsed meanwhile. Anything else is page-table memory fork/exit leaked or misaccounted.
 */
static void check_vmpte(struct fs_worker *w, const struct fs_iter *it)
{
	const struct fs_cfg *cfg = w->cfg;
	int64_t delta = (int64_t)(it->pte_after - it->pte_before), hi = 0, lo = 0;

	if (it->pmd_before > it->pmd_after)
		hi = (int64_t)((it->pmd_before - it->pmd_after) / cfg->pmd_bytes * cfg->psz);
	else
		lo = -(int64_t)((it->pmd_after - it->pmd_before) / cfg->pmd_bytes * cfg->psz);
	ms_check(w->ctx, delta >= lo && delta <= hi, "parent VmPTE back to its pre-fork value",
		 "worker %u, %u children: VmPTE %llu -> %llu bytes (%+lld); allowed %+lld..%+lld "
		 "for THP PMDs split/collapsed (PMD-mapped %llu -> %llu bytes)", w->idx, it->n,
		 (unsigned long long)it->pte_before, (unsigned long long)it->pte_after,
		 (long long)delta, (long long)lo, (long long)hi,
		 (unsigned long long)it->pmd_before, (unsigned long long)it->pmd_after);
}

static void check_children(struct fs_worker *w, const struct fs_iter *it)
{
	int sig = WTERMSIG(it->first_status);

	if (!it->n)
		return;
	ms_check(w->ctx, !it->bad_sig, "children exit cleanly",
		 "worker %u: %u of %u children died of a signal; first: child %u, signal %d (%s)",
		 w->idx, it->bad_sig, it->n, it->first_bad, sig, it->bad_sig ? strsignal(sig) : "");
}

static void record_iter(struct fs_worker *w, const struct fs_iter *it)
{
	const struct fs_state *st = w->st;
	bool shared = w->cfg->mapping == MP_SHARED;
	char who[32];

	snprintf(who, sizeof(who), "worker %u", w->idx);
	report_bad(w, w->cfg->fork_mode == FK_VFORK ? "parent data intact after vfork children" :
		   shared ? "parent keeps its post-fork writes (shared)" :
		   "parent keeps its post-fork writes (COW isolation)", who, &it->parent);
	report_bad(w, "parent sees the children's writes (shared)", who, &it->slots);
	check_children(w, it);
	check_vmpte(w, it);
	for (unsigned c = 0; c < it->n; c++) {
		ms_sample(w->ctx, st->m_fork, w->fork_ns[c]);
		ms_sample(w->ctx, st->m_wait, w->wait_ns[c]);
	}
	ms_count(w->ctx, st->m_forks, it->n);
	ms_count(w->ctx, st->m_checked, it->parent.checked + it->slots.checked);
	ms_gauge(w->ctx, st->m_ppte, (int64_t)it->pte_after);
}

static int worker_iter(struct fs_worker *w)
{
	struct fs_iter it = { .gen = w->gen };
	int ret;

	ret = measured_window(w, &it);
	if (w->cfg->fork_mode != FK_VFORK)
		w->gen = it.gen + 1;
	if (ret)
		return ms_error(w->ctx, -ret, "worker %u: VmPTE, PMD mappings or barrier pipe: %s",
				w->idx, strerror(-ret));
	record_iter(w, &it);
	/* Children exit non-zero only when their own plumbing broke: checks are recorded. */
	if (it.bad_exit)
		return ms_error(w->ctx, EIO, "worker %u: %u children exited with status %d (%s)",
				w->idx, it.bad_exit, it.exit_status,
				it.exit_status == FS_CHILD_BROKEN ?
				"barrier pipe or /proc/self/status failed in the child" :
				"waitpid failed");
	if (it.fork_err)
		return ms_error(w->ctx, it.fork_err, "worker %u: %s() of child %u failed: %s",
				w->idx, fs_fork_modes[w->cfg->fork_mode], it.n,
				strerror(it.fork_err));
	return 0;
}

/* ---- worker process and its control by the case process ---- */

static void publish(struct fs_ctl *ctl, uint32_t *field, uint32_t v)
{
	__atomic_store_n(field, v, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&ctl->progress, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&ctl->progress);
}

/* Wait until iteration k is posted; false means quit (teardown waited for what was). */
static bool wait_posted(struct fs_ctl *ctl, uint32_t k)
{
	uint32_t posted;

	for (;;) {
		if (__atomic_load_n(&ctl->quit, __ATOMIC_SEQ_CST))
			return false;
		posted = __atomic_load_n(&ctl->posted, __ATOMIC_SEQ_CST);
		if (posted > k)
			return true;
		ms_futex_wait(&ctl->posted, posted, -1);
	}
}

/* ---- mmap_lock contenders (lock_threads) ---- */

#define FS_LK_PAGES 16
#define FS_LK_STACK (64u << 10)

struct fs_locker {
	pthread_t th;
	char *pages;			/* FS_LK_PAGES of its own */
	size_t psz;
	bool writer;
	const int *stop;
	int err;
};

struct fs_lockers {
	char *mem;			/* every locker's pages and stack */
	size_t bytes;
	unsigned n;
	int stop;
	struct fs_locker t[];
};

/*
 * Writers take the mmap_lock for write (mprotect), readers fault: after each fork their pages
 * are write-protected, and a fault that finds the VMA write-locked by fork falls back to the
 * mmap_lock. Neither allocates page tables, so the VmPTE check still holds.
 */
static void *locker_main(void *arg)
{
	struct fs_locker *l = arg;
	volatile char *p = (volatile char *)l->pages;

	while (!__atomic_load_n(l->stop, __ATOMIC_RELAXED)) {
		if (l->writer) {
			if (mprotect(l->pages, l->psz, PROT_READ) ||
			    mprotect(l->pages, l->psz, PROT_READ | PROT_WRITE)) {
				l->err = errno;
				break;
			}
		} else {
			for (unsigned i = 0; i < FS_LK_PAGES; i++)
				p[i * l->psz]++;
		}
		sched_yield();
	}
	return NULL;
}

static int lockers_stop(struct fs_worker *w)
{
	struct fs_lockers *lk = w->lk;
	int err = 0;

	if (!lk)
		return 0;
	__atomic_store_n(&lk->stop, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < lk->n; i++) {
		pthread_join(lk->t[i].th, NULL);
		if (lk->t[i].err && !err)
			err = lk->t[i].err;
	}
	munmap(lk->mem, lk->bytes);
	free(lk);
	w->lk = NULL;
	return err ? ms_error(w->ctx, err, "worker %u: lock_threads mprotect: %s", w->idx,
			      strerror(err)) : 0;
}

/* Pages and stacks populated (no THP: a COW split would change VmPTE) before any fork. */
static int lockers_start(struct fs_worker *w)
{
	unsigned n = w->cfg->lock_threads;
	size_t psz = w->cfg->psz, per = FS_LK_PAGES * psz + FS_LK_STACK;
	struct fs_lockers *lk;
	pthread_attr_t attr;
	int ret = 0;

	if (!n)
		return 0;
	lk = calloc(1, sizeof(*lk) + n * sizeof(lk->t[0]));
	if (!lk)
		return ms_error(w->ctx, ENOMEM, "lock_threads: %s", strerror(ENOMEM));
	w->lk = lk;
	lk->bytes = n * per;
	lk->mem = mmap(NULL, lk->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lk->mem == MAP_FAILED) {
		ret = ms_error(w->ctx, errno, "lock_threads: mmap: %s", strerror(errno));
		free(lk);
		w->lk = NULL;
		return ret;
	}
	madvise(lk->mem, lk->bytes, MADV_NOHUGEPAGE);	/* EINVAL without THP: fine */
	memset(lk->mem, 0, lk->bytes);
	if ((ret = pthread_attr_init(&attr)))
		return ms_error(w->ctx, ret, "pthread_attr_init: %s", strerror(ret));
	for (; lk->n < n && !ret; lk->n++) {
		struct fs_locker *l = &lk->t[lk->n];
		char *base = lk->mem + lk->n * per;

		*l = (struct fs_locker){ .pages = base, .psz = psz, .writer = lk->n % 2,
					 .stop = &lk->stop };
		ret = pthread_attr_setstack(&attr, base + FS_LK_PAGES * psz, FS_LK_STACK);
		if (!ret)
			ret = pthread_create(&l->th, &attr, locker_main, l);
		if (ret)
			break;
	}
	pthread_attr_destroy(&attr);
	if (ret)
		return ms_error(w->ctx, ret, "worker %u: lock thread %u: %s", w->idx, lk->n,
				strerror(ret));
	return 0;
}

static int worker_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct fs_state *st = arg;
	struct fs_worker w = { .ctx = ctx, .st = st, .cfg = &st->cfg, .idx = idx, .memfd = -1,
			     .pagemap_fd = -1 };
	struct fs_wctl *me = &st->ctl->w[idx];
	int ret;

	ret = worker_setup(&w);
	if (!ret)
		ret = lockers_start(&w);
	me->status = ret;
	publish(st->ctl, &me->ready, 1);
	for (uint32_t k = 0; wait_posted(st->ctl, k); k++) {
		/* After a failure the worker only counts iterations off: the case is ending. */
		if (!ret && (ret = worker_iter(&w)))
			me->status = ret;
		publish(st->ctl, &me->done, k + 1);
	}
	if (lockers_stop(&w) && !me->status)
		me->status = -EIO;
	worker_cleanup(&w);
	return 0;
}

/* A worker that is gone (found without reaping it: teardown's ms_wait() does that). */
static int check_alive(struct ms_ctx *ctx, const struct fs_state *st)
{
	for (unsigned i = 0; i < st->nspawned; i++) {
		siginfo_t si = { 0 };

		if (waitid(P_PID, (id_t)st->wpid[i], &si, WEXITED | WNOHANG | WNOWAIT))
			return ms_error(ctx, errno, "waitid(worker %u): %s", i, strerror(errno));
		if (!si.si_pid)
			continue;
		if (si.si_code == CLD_EXITED)
			return ms_error(ctx, EIO, "worker %u (pid %d) exited with status %d before "
					"its work was done", i, (int)si.si_pid, si.si_status);
		/* si_status is the signal: as a wait status it reads as a death by it. */
		if (ms_inject_killed(ctx, si.si_pid, si.si_status)) {
			ms_note(ctx, "worker %u (pid %d) killed by signal %d (%s), an injector's "
				"doing: the case ends", i, (int)si.si_pid, si.si_status,
				strsignal(si.si_status));
			return MS_SKIP;
		}
		return ms_error(ctx, EIO, "worker %u (pid %d) killed by signal %d (%s)", i,
				(int)si.si_pid, si.si_status, strsignal(si.si_status));
	}
	return 0;
}

/* Errors outrank skips; the worker itself recorded the reason in the case. */
static int worst_status(const struct fs_state *st)
{
	int ret = 0;

	for (unsigned i = 0; i < st->nspawned; i++) {
		int s = __atomic_load_n(&st->ctl->w[i].status, __ATOMIC_SEQ_CST);

		if (s < 0 || (s > 0 && !ret))
			ret = s;
	}
	return ret;
}

/* Smallest value of a per-worker counter (ready or done). */
static uint32_t min_of(const struct fs_state *st, bool ready)
{
	uint32_t m = UINT32_MAX;

	for (unsigned i = 0; i < st->nspawned; i++) {
		const struct fs_wctl *w = &st->ctl->w[i];
		uint32_t v = __atomic_load_n(ready ? &w->ready : &w->done, __ATOMIC_SEQ_CST);

		if (v < m)
			m = v;
	}
	return m;
}

/*
 * Wait until every worker's counter reached want, or a worker failed (stop_on_status).
 * Meanwhile pass a stop request on to the workers and watch for dead ones.
 */
static int wait_workers(struct ms_ctx *ctx, struct fs_state *st, bool ready, uint32_t want,
			bool stop_on_status)
{
	struct fs_ctl *ctl = st->ctl;
	uint64_t last = ms_now_ns();
	uint32_t p;
	int ret;

	for (;;) {
		p = __atomic_load_n(&ctl->progress, __ATOMIC_SEQ_CST);
		if (min_of(st, ready) >= want)
			return worst_status(st);
		if (stop_on_status && (ret = worst_status(st)))
			return ret;
		ms_futex_wait(&ctl->progress, p, 10 * 1000 * 1000);
		if (!ctl->hurry && ms_should_stop(ctx))
			__atomic_store_n(&ctl->hurry, 1, __ATOMIC_RELAXED);
		if (ms_now_ns() - last < 1000000000ULL)
			continue;
		last = ms_now_ns();
		if ((ret = check_alive(ctx, st)))
			return ret;
	}
}

static void post(struct fs_ctl *ctl, uint32_t n)
{
	__atomic_store_n(&ctl->posted, n, __ATOMIC_SEQ_CST);
	ms_futex_wake(&ctl->posted);
}

/* Workers sleep on posted: bump it too, or one that just saw quit == 0 would sleep on. */
static void post_quit(struct fs_ctl *ctl)
{
	__atomic_store_n(&ctl->quit, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&ctl->posted, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&ctl->posted);
}

/* ---- the ops ---- */

static int register_metrics(struct ms_ctx *ctx, struct fs_state *st)
{
	const struct ms_metric_spec m[] = {
		{ &st->m_fork, "fork_ns", MS_M_HIST, "ns" },
		{ &st->m_wait, "wait_ns", MS_M_HIST, "ns" },
		{ &st->m_cow, "cow_fault_ns", MS_M_HIST, "ns" },
		{ &st->m_cpte, "child_vmpte_bytes", MS_M_HIST, "bytes" },
		{ &st->m_ppte, "parent_vmpte_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_forks, "forks", MS_M_COUNTER, "processes" },
		{ &st->m_checked, "checked_pages", MS_M_COUNTER, "pages" },
	};

	return ms_metrics(ctx, m, MS_ARRAY_SIZE(m));
}

static void setup_notes(struct ms_ctx *ctx, const struct fs_cfg *cfg)
{
	if (cfg->size_bytes != cfg->asked_bytes)
		ms_note(ctx, "size %llu rounded up to %llu bytes (the region's page size)",
			(unsigned long long)cfg->asked_bytes, (unsigned long long)cfg->size_bytes);
	if (cfg->fork_mode == FK_VFORK)
		ms_note(ctx, "fork_mode=vfork: children can only _exit (they borrow the parent's "
			"memory), so the COW checks do not apply; fork_ns is vfork() up to the "
			"child's _exit");
	else if (cfg->mapping == MP_SHARED && cfg->action != ACT_EXIT)
		ms_note(ctx, "mapping=shared: cow_fault_ns is a child's first write fault on "
			"shared memory (there is no copy)");
}

static int fork_storm_setup(struct ms_ctx *ctx)
{
	struct fs_state *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	ms_set_priv(ctx, st);
	if ((ret = cfg_load(ctx, &st->cfg)) || (ret = register_metrics(ctx, st)))
		return ret;
	setup_notes(ctx, &st->cfg);
	st->wpid = calloc(st->cfg.workers, sizeof(*st->wpid));
	st->ctl_bytes = sizeof(*st->ctl) + st->cfg.workers * sizeof(st->ctl->w[0]);
	st->ctl = mmap(NULL, st->ctl_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (st->ctl == MAP_FAILED)
		st->ctl = NULL;
	if (!st->wpid || !st->ctl)
		return ms_error(ctx, ENOMEM, "out of memory for %u workers", st->cfg.workers);
	for (unsigned i = 0; i < st->cfg.workers; i++) {
		pid_t pid = ms_spawn(ctx, worker_main, st, i);

		if (pid < 0)
			return ms_error(ctx, -pid, "spawning worker %u: %s", i, strerror(-pid));
		st->wpid[st->nspawned++] = pid;
	}
	/* Each worker maps and populates its region, then says it is ready. */
	return wait_workers(ctx, st, true, 1, false);
}

static int fork_storm_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct fs_state *st = ms_priv(ctx);
	uint32_t n = (uint32_t)iter + 1;

	post(st->ctl, n);
	return wait_workers(ctx, st, false, n > FS_SLACK ? n - FS_SLACK : 0, true);
}

static void fork_storm_teardown(struct ms_ctx *ctx)
{
	struct fs_state *st = ms_priv(ctx);

	if (!st)
		return;
	if (st->ctl && st->nspawned) {
		/* Let posted iterations finish: their checks belong to the case. */
		if (!worst_status(st))
			wait_workers(ctx, st, false, st->ctl->posted, true);
		post_quit(st->ctl);
	}
	for (unsigned i = 0; i < st->nspawned; i++)
		ms_wait(ctx, st->wpid[i]);
	if (st->ctl)
		munmap(st->ctl, st->ctl_bytes);
	free(st->wpid);
	free(st);
	ms_set_priv(ctx, NULL);
}

const struct ms_workload ms_wl_fork_storm = {
	.name = "fork-storm",
	.summary = "fork/vfork/clone storms over large anon, THP, hugetlb or shmem regions: "
		   "fork/exit/COW-fault latency, page-table cost, COW isolation checked",
	.params = fork_storm_params,
	.probe = fork_storm_probe,
	.setup = fork_storm_setup,
	.run = fork_storm_run,
	.teardown = fork_storm_teardown,
};

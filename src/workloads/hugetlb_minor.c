/* hugetlb-minor: userfaultfd MINOR + UFFDIO_CONTINUE and UFFDIO_COPY on hugetlb and shmem. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mmstorm/inject.h"
#include "mmstorm/journal.h"
#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"
#include "workloads/hugetlb_hwpoison.h"
#include "workloads/uffd_common.h"

#define HM_THP_DIR "/sys/kernel/mm/transparent_hugepage"
#define HM_HP_FMT "/sys/kernel/mm/hugepages/hugepages-%llukB/%s"
#define HM_FILL_ROLE 0x686d696eULL	/* "hmin": xor the seed */
#define HM_PUD_BYTES (1ULL << 30)
#define HM_EAGAIN_TRIES 100		/* the mapping changed under an ioctl: try again */

enum { B_HUGETLB, B_SHMEM_THP, B_SHMEM };
enum { M_MINOR, M_COPY };
enum { MP_SHARED, MP_PRIVATE };
enum { SC_FAULT, SC_HWPOISON };

static const char *const hm_backings[] = { "hugetlb", "shmem-thp", "shmem", NULL };
static const char *const hm_modes[] = { "minor", "copy", NULL };
static const char *const hm_mappings[] = { "shared", "private", NULL };
static const char *const hm_scenarios[] = { "fault", "hwpoison", NULL };
static const char *const hm_lost[] = { "huge", "4k", NULL };

static const struct ms_param hugetlb_minor_params[] = {
	{ "backing", MS_P_ENUM, "hugetlb", "", 1, 0, hm_backings,
	  "hugetlb: a hugetlbfs memfd, resolved per huge page; shmem-thp: a memfd whose page "
	  "cache holds PMD-sized THPs, resolved per PMD; shmem: a memfd resolved per 4K page" },
	{ "mode", MS_P_ENUM, "minor", "", 1, 0, hm_modes,
	  "minor: the page cache is filled through a second mapping and faults are resolved "
	  "with UFFDIO_CONTINUE; copy: missing faults are resolved with UFFDIO_COPY" },
	{ "mapping", MS_P_ENUM, "shared", "", 1, 0, hm_mappings,
	  "mode=copy: shared (memfd, emptied with a hole punch) or private (anonymous "
	  "MAP_HUGETLB, emptied with MADV_DONTNEED; backing=hugetlb only)" },
	{ "size", MS_P_SIZE, "32M", "bytes", 4096, 64LL << 30, NULL,
	  "region, rounded up to the granule (huge page or PMD)" },
	{ "hugepage_size", MS_P_SIZE, "2M", "bytes", 64 << 10, 16LL << 30, NULL,
	  "hugetlb page size for backing=hugetlb (2M; 1G allowed)" },
	{ "scenario", MS_P_ENUM, "fault", "", 1, 0, hm_scenarios,
	  "fault: every iteration faults the range and resolves it; hwpoison (backing=hugetlb, "
	  "shared; destructive: VM or --allow-destructive): after the faults a child maps the "
	  "range and another MADV_HWPOISONs one seeded 4K piece: the whole huge page must be "
	  "lost to every mapper (SIGBUS BUS_MCEERR_AR, lsb = huge page shift), the rest intact, "
	  "HardwareCorrupted and the pool counters as mm/memory-failure.c says; unpoisoned after "
	  "where debugfs has hwpoison/unpoison-pfn. A fresh memfd every iteration" },
	{ "hwpoison_lost", MS_P_ENUM, "huge", "", 1, 0, hm_lost,
	  "scenario=hwpoison: what one bad 4K piece is expected to cost. huge: the huge page "
	  "(mainline); 4k: the piece alone, as HGM promises (mainline FAILs it, showing how much "
	  "more it loses)" },
	{ "remap", MS_P_BOOL, "0", "", 1, 0, NULL,
	  "map and register the range afresh every iteration, so page tables are allocated "
	  "again (shmem: by the first ioctl; hugetlb: by the faulting access, before the uffd "
	  "message); with size = one granule, every ioctl runs under fresh tables" },
	{ NULL }
};

struct hm_cfg {
	int backing, mode, mapping, scenario, lost;
	bool remap;
	size_t psz;
	uint64_t granule;		/* what one fault resolves: huge page, PMD or base page */
	uint64_t hpage_bytes, pmd_bytes;
	uint64_t asked_bytes, size_bytes, npages, ngran;
	uint64_t seed;
};

/* The handler thread's view; counters are written by it and read after the fault loop. */
struct hm_handler {
	struct ms_uffd_thread t;	/* first: on_msg casts it back */
	struct ms_ctx *ctx;
	const struct hm_cfg *cfg;
	int m_ioctl;
	char *src;			/* copy: the staging buffer, one granule */
	uint64_t gen;			/* copy: the generation to write (atomic) */
	uint64_t msgs, wrong_flag, out_of_range, other_events, resolved, eexist;
	uint64_t first_addr, first_flags;	/* of the first wrong or out-of-range message */
	uint64_t injected;		/* ioctls an injector made fail (then retried) */
	uint64_t half, half_addr;	/* failed ioctls that left more mapped than they said */
	int64_t half_said, half_seen;	/* of the first: bytes reported, bytes present */
};

struct hm_state {
	struct hm_cfg cfg;
	int m_fault, m_ioctl, m_gran, m_faults, m_checked, m_injected;
	int memfd;
	char *alias;			/* minor, copy shared: the file through a plain mapping */
	char *guest;			/* the registered mapping the faults happen in */
	unsigned char *scratch;
	struct hm_handler h;
	struct ms_hwp hwp;		/* scenario=hwpoison */
	uint64_t gen;
};

/* ---- small helpers ---- */

static uint64_t fill_of(const struct hm_cfg *cfg, uint64_t page, uint64_t gen)
{
	return ms_stamp(cfg->seed ^ HM_FILL_ROLE, page, gen);
}

static bool is_hugetlb(const struct hm_cfg *cfg)
{
	return cfg->backing == B_HUGETLB;
}

static bool private_copy(const struct hm_cfg *cfg)
{
	return cfg->mode == M_COPY && cfg->mapping == MP_PRIVATE;
}

static bool has_alias(const struct hm_cfg *cfg)
{
	return !private_copy(cfg);
}

/* Sum of "Key: N kB" lines over the smaps VMAs overlapping [start, start + len). */
static int smaps_sum(uintptr_t start, size_t len, const char *key, uint64_t *bytes)
{
	size_t klen = strlen(key);
	unsigned long lo, hi;
	bool in = false;
	char line[512];
	FILE *f;

	*bytes = 0;
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = lo < start + len && hi > start;
			continue;
		}
		if (in && !strncmp(line, key, klen) && line[klen] == ':')
			*bytes += strtoull(line + klen + 1, NULL, 10) * 1024;
	}
	fclose(f);
	return 0;
}

/* ---- userfaultfd ---- */

static uint64_t wanted_features(const struct hm_cfg *cfg)
{
	if (cfg->mode == M_MINOR)
		return is_hugetlb(cfg) ? UFFD_FEATURE_MINOR_HUGETLBFS : UFFD_FEATURE_MINOR_SHMEM;
	if (!is_hugetlb(cfg))
		return UFFD_FEATURE_MISSING_SHMEM;
	return cfg->mapping == MP_SHARED ? UFFD_FEATURE_MISSING_HUGETLBFS : 0;
}

static const char *feature_name(uint64_t f)
{
	return f == UFFD_FEATURE_MINOR_HUGETLBFS ? "UFFD_FEATURE_MINOR_HUGETLBFS" :
	       f == UFFD_FEATURE_MINOR_SHMEM ? "UFFD_FEATURE_MINOR_SHMEM" :
	       f == UFFD_FEATURE_MISSING_SHMEM ? "UFFD_FEATURE_MISSING_SHMEM" :
	       "UFFD_FEATURE_MISSING_HUGETLBFS";
}

/* UFFDIO_API works once per uffd: the probe asks on a throw-away one what the kernel has. */
static int probe_uffd(struct ms_ctx *ctx, const struct hm_cfg *cfg)
{
	struct uffdio_api api = { .api = UFFD_API };
	uint64_t want = wanted_features(cfg);
	int fd = ms_uffd_open();

	if (fd < 0)
		return ms_skip(ctx, "userfaultfd: %s%s", strerror(-fd),
			       fd == -ENOSYS ? " (CONFIG_USERFAULTFD off)" : "");
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return ms_skip(ctx, "UFFDIO_API: %s", strerror(errno));
	}
	close(fd);
	if ((api.features & want) != want)
		return ms_skip(ctx, "userfaultfd lacks %s (features 0x%llx): %s", feature_name(want),
			       (unsigned long long)api.features, cfg->mode == M_MINOR ?
			       "minor faults need Linux 5.13 (hugetlbfs) or 5.14 (shmem)" :
			       "missing-fault support for this memory is not built in");
	return 0;
}

static int uffd_register(struct ms_ctx *ctx, struct hm_state *st);

static int uffd_setup(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	struct uffdio_api api = { .api = UFFD_API, .features = wanted_features(cfg) };
	int fd = ms_uffd_open();

	if (fd < 0)
		return ms_error(ctx, -fd, "userfaultfd: %s", strerror(-fd));
	st->h.t.uffd = fd;
	if (ioctl(fd, UFFDIO_API, &api))
		return ms_error(ctx, errno, "UFFDIO_API(features 0x%llx): %s",
				(unsigned long long)api.features, strerror(errno));
	return uffd_register(ctx, st);
}

static int uffd_register(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	struct uffdio_register reg = {
		.range = { (uintptr_t)st->guest, cfg->size_bytes },
		.mode = cfg->mode == M_MINOR ? UFFDIO_REGISTER_MODE_MINOR :
		       UFFDIO_REGISTER_MODE_MISSING,
	};
	uint64_t need = 1ULL << (cfg->mode == M_MINOR ? _UFFDIO_CONTINUE : _UFFDIO_COPY);

	if (ioctl(st->h.t.uffd, UFFDIO_REGISTER, &reg))
		return ms_error(ctx, errno, "UFFDIO_REGISTER(%s, %llu bytes): %s",
				hm_modes[cfg->mode], (unsigned long long)cfg->size_bytes,
				strerror(errno));
	if (!(reg.ioctls & need))
		return ms_skip(ctx, "UFFDIO_REGISTER offers no %s on this memory (ioctls 0x%llx)",
			       cfg->mode == M_MINOR ? "UFFDIO_CONTINUE" : "UFFDIO_COPY",
			       (unsigned long long)reg.ioctls);
	return 0;
}

/* ---- the handler thread ---- */

static void stage_copy(struct hm_handler *h, uintptr_t start)
{
	const struct hm_cfg *cfg = h->cfg;
	uint64_t gen = __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
	uint64_t first = (start - h->t.base) / cfg->psz;

	for (uint64_t k = 0; k < cfg->granule / cfg->psz; k++)
		ms_page_fill(h->src + k * cfg->psz, cfg->psz, fill_of(cfg, first + k, gen));
}

/* One ioctl over [start + off, start + len); *done: the bytes it mapped (or -errno). */
static int mfill(struct hm_handler *h, uintptr_t start, uint64_t off, uint64_t len,
		 int64_t *done)
{
	const struct hm_cfg *cfg = h->cfg;
	struct uffdio_continue c = { .range = { start + off, len - off } };
	struct uffdio_copy cp = { .dst = start + off, .src = (uintptr_t)h->src + off,
				  .len = len - off };
	int r;

	r = ioctl(h->t.uffd, cfg->mode == M_MINOR ? UFFDIO_CONTINUE : UFFDIO_COPY,
		  cfg->mode == M_MINOR ? (void *)&c : (void *)&cp);
	*done = cfg->mode == M_MINOR ? c.mapped : cp.copy;
	return r ? -errno : 0;
}

/* Bytes of the granule at start that /proc/self/pagemap says are present, or -errno. */
static int64_t present_bytes(const struct hm_cfg *cfg, uintptr_t start)
{
	uint64_t ent[512], n = cfg->granule / cfg->psz;
	int64_t bytes = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (uint64_t i = 0; i < n;) {
		uint64_t want = n - i < 512 ? n - i : 512;
		ssize_t r = pread(fd, ent, want * 8, (off_t)((start / cfg->psz + i) * 8));

		if (r <= 0 || r % 8) {
			bytes = r < 0 ? -errno : -EIO;
			break;
		}
		for (uint64_t k = 0; k < (uint64_t)r / 8; k++)
			bytes += (int64_t)(ent[k] >> 63) * (int64_t)cfg->psz;
		i += (uint64_t)r / 8;
	}
	close(fd);
	return bytes;
}

static void inc(uint64_t *c, int64_t d)
{
	__atomic_fetch_add(c, (uint64_t)d, __ATOMIC_SEQ_CST);
}

/*
 * An injector made the ioctl fail after it had mapped done bytes (partial progress is
 * reported, then EAGAIN). Nothing more may be mapped than it said: a page table entry or a
 * page cache entry left behind by the error path shows as pages present beyond done, or as
 * EEXIST when the rest is retried. The retry (not an injection point) must then map the rest,
 * so the data checks see what the model says.
 */
static int recover(struct hm_handler *h, uintptr_t start, int64_t done)
{
	const struct hm_cfg *cfg = h->cfg;
	uint64_t off = done > 0 ? (uint64_t)done : 0;
	int64_t seen = present_bytes(cfg, start), n;
	int r = 0, tries = 0;

	inc(&h->injected, 1);
	if (seen < 0)
		return (int)seen;
	if ((uint64_t)seen != off && !__atomic_fetch_add(&h->half, 1, __ATOMIC_SEQ_CST)) {
		h->half_said = (int64_t)off;
		h->half_seen = seen;
		__atomic_store_n(&h->half_addr, start, __ATOMIC_SEQ_CST);
	}
	while (off < cfg->granule) {
		r = mfill(h, start, off, cfg->granule, &n);
		if (n > 0)
			off += (uint64_t)n;
		/* Random injectors (failslab, fail_function) stay armed: their ENOMEM passes. */
		if (!r || ((r == -EAGAIN || r == -ENOMEM) && ++tries < HM_EAGAIN_TRIES))
			continue;
		/* A retry finding it installed: the failed call had left it there, unreported. */
		if (r == -EEXIST && !__atomic_fetch_add(&h->half, 1, __ATOMIC_SEQ_CST)) {
			h->half_said = (int64_t)off;
			h->half_seen = seen;
			__atomic_store_n(&h->half_addr, start + off, __ATOMIC_SEQ_CST);
		}
		return r;
	}
	return 0;
}

/* One ioctl resolving [start, start + granule): 0, or -errno (EEXIST: already there). */
static int resolve(struct hm_handler *h, uintptr_t start)
{
	const struct hm_cfg *cfg = h->cfg;
	const char *point = cfg->mode == M_MINOR ? "ioctl:UFFDIO_CONTINUE" : "ioctl:UFFDIO_COPY";
	int tries = 0, r;
	int64_t done;
	uint64_t t0;

	if (cfg->mode == M_COPY)
		stage_copy(h, start);
	t0 = ms_now_ns();
	ms_inject_point(h->ctx, point);
	r = mfill(h, start, 0, cfg->granule, &done);
	if (ms_inject_done(h->ctx, point, r ? -1 : 0, -r))
		return recover(h, start, done);
	while (r == -EAGAIN && ++tries < HM_EAGAIN_TRIES)
		r = mfill(h, start, 0, cfg->granule, &done);
	if (r)
		return r;
	ms_sample(h->ctx, h->m_ioctl, ms_now_ns() - t0);
	if (done != (int64_t)cfg->granule)
		return -EIO;
	return 0;
}

/*
 * Counters move before the ioctl that wakes the faulting thread, so once its access is done
 * they already count it: the fault loop reads them without waiting for this thread.
 */
static void handle_fault(struct hm_handler *h, const struct uffd_msg *m)
{
	const struct hm_cfg *cfg = h->cfg;
	uint64_t addr = m->arg.pagefault.address, flags = m->arg.pagefault.flags;
	bool minor = flags & UFFD_PAGEFAULT_FLAG_MINOR;
	bool outside = addr < h->t.base || addr >= h->t.base + cfg->size_bytes;
	uintptr_t start = addr & ~(uintptr_t)(cfg->granule - 1);
	struct uffdio_range r = { start, cfg->granule };
	int ret;

	inc(&h->msgs, 1);
	if ((outside || minor != (cfg->mode == M_MINOR)) &&
	    !__atomic_load_n(&h->first_addr, __ATOMIC_SEQ_CST)) {
		h->first_flags = flags;
		__atomic_store_n(&h->first_addr, addr, __ATOMIC_SEQ_CST);
	}
	if (outside) {
		inc(&h->out_of_range, 1);
		ms_uffd_fail(&h->t, ERANGE, "a fault outside the registered range");
		return;
	}
	if (minor != (cfg->mode == M_MINOR))
		inc(&h->wrong_flag, 1);
	inc(&h->resolved, 1);
	ret = resolve(h, start);
	if (!ret)
		return;
	inc(&h->resolved, -1);
	if (ret != -EEXIST) {
		ms_uffd_fail(&h->t, -ret, cfg->mode == M_MINOR ? "UFFDIO_CONTINUE" : "UFFDIO_COPY");
		return;
	}
	/* Mapped by an earlier message for the same fault: only the wake is missing. */
	inc(&h->eexist, 1);
	if (ioctl(h->t.uffd, UFFDIO_WAKE, &r))
		ms_uffd_fail(&h->t, errno, "UFFDIO_WAKE");
}

static void on_msg(struct ms_uffd_thread *t, const struct uffd_msg *m)
{
	struct hm_handler *h = (struct hm_handler *)t;

	if (m->event == UFFD_EVENT_PAGEFAULT)
		handle_fault(h, m);
	else
		inc(&h->other_events, 1);
}

/* ---- mappings ---- */

static int open_memfd(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	unsigned flags = MFD_CLOEXEC;

	if (is_hugetlb(cfg))
		flags |= MFD_HUGETLB | ((unsigned)ms_log2_u64(cfg->hpage_bytes) << MAP_HUGE_SHIFT);
	st->memfd = memfd_create("mmstorm-hugetlb-minor", flags);
	if (st->memfd < 0)
		return ms_error(ctx, errno, "memfd_create(%s): %s", hm_backings[cfg->backing],
				strerror(errno));
	if (ftruncate(st->memfd, (off_t)cfg->size_bytes))
		return ms_error(ctx, errno, "ftruncate(memfd, %llu): %s",
				(unsigned long long)cfg->size_bytes, strerror(errno));
	return 0;
}

/* The registered range (not yet registered): the memfd shared, or private anonymous hugetlb. */
static int map_guest(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	size_t align = is_hugetlb(cfg) ? cfg->hpage_bytes : cfg->pmd_bytes;
	int gflags = MAP_SHARED, fd = st->memfd;

	/*
	 * remap: a hugetlb range's entries live in a PMD table (1 GiB of address space), which
	 * munmap frees only when nothing else is mapped in that GiB: give the range its own.
	 */
	if (cfg->remap && is_hugetlb(cfg) && align < HM_PUD_BYTES)
		align = HM_PUD_BYTES;

	if (private_copy(cfg)) {
		gflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 (ms_log2_u64(cfg->hpage_bytes) << MAP_HUGE_SHIFT);
		fd = -1;
	}
	st->guest = ms_mmap_aligned(cfg->size_bytes, align, gflags, fd);
	if (st->guest == MAP_FAILED) {
		st->guest = NULL;
		if (errno == ENOMEM && is_hugetlb(cfg))
			return ms_skip(ctx, "hugetlb pages were gone at mmap time (another user of "
				       "the pool since the probe)");
		return ms_error(ctx, errno, "mmap(registered range): %s", strerror(errno));
	}
	return 0;
}

static int map_all(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	size_t align = is_hugetlb(cfg) ? cfg->hpage_bytes : cfg->pmd_bytes;
	int ret;

	if (!private_copy(cfg) && (ret = open_memfd(ctx, st)))
		return ret;
	if (has_alias(cfg)) {
		st->alias = ms_mmap_aligned(cfg->size_bytes, align, MAP_SHARED, st->memfd);
		if (st->alias == MAP_FAILED) {
			st->alias = NULL;
			return ms_error(ctx, errno, "mmap(alias): %s", strerror(errno));
		}
		if (cfg->backing == B_SHMEM_THP &&
		    madvise(st->alias, cfg->size_bytes, MADV_HUGEPAGE))
			return ms_error(ctx, errno, "madvise(MADV_HUGEPAGE): %s", strerror(errno));
	}
	return map_guest(ctx, st);
}

/*
 * remap: a fresh VMA with no page tables under it. munmap frees the tables (no other mapping
 * shares them: the range starts a PMD of its own, or a GiB for hugetlb), so the next
 * iteration's first ioctl allocates them again.
 */
static int remap_guest(struct ms_ctx *ctx, struct hm_state *st)
{
	int ret;

	if (munmap(st->guest, st->cfg.size_bytes))
		return ms_error(ctx, errno, "munmap(registered range): %s", strerror(errno));
	st->guest = NULL;
	if ((ret = map_guest(ctx, st)) || (ret = uffd_register(ctx, st)))
		return ret;
	__atomic_store_n(&st->h.t.base, (uintptr_t)st->guest, __ATOMIC_SEQ_CST);
	return 0;
}

/* ---- one iteration ---- */

/* minor: the page cache gets this generation through the alias (not the registered range). */
static void fill_alias(struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;

	for (uint64_t p = 0; p < cfg->npages; p++)
		ms_page_fill(st->alias + p * cfg->psz, cfg->psz, fill_of(cfg, p, st->gen));
}

static int check_thp_cache(struct ms_ctx *ctx, struct hm_state *st)
{
	uint64_t pmd = 0;
	int ret = smaps_sum((uintptr_t)st->alias, st->cfg.size_bytes, "ShmemPmdMapped", &pmd);

	if (ret)
		return ms_error(ctx, -ret, "/proc/self/smaps: %s", strerror(-ret));
	if (pmd < st->cfg.size_bytes)
		return ms_skip(ctx, "the shmem page cache is not all THPs: ShmemPmdMapped %llu of "
			       "%llu kB after a MADV_HUGEPAGE fill (fragmented memory?)",
			       (unsigned long long)pmd >> 10,
			       (unsigned long long)st->cfg.size_bytes >> 10);
	return 0;
}

/* Fault every granule once, in a seeded order, timing each access from the faulting side. */
static void fault_all(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	uint64_t n = cfg->ngran, off = ms_stamp(cfg->seed, st->gen, 0) % n;
	uint64_t stride = ((uint64_t)((double)n * 0.6180339887498949)) | 1;
	uint64_t per = cfg->granule / cfg->psz;

	while (ms_gcd_u64(stride, n) != 1)
		stride++;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t g = (off + i * stride) % n, t0;
		uint64_t page = g * per + ms_stamp(cfg->seed, g, st->gen) % per;

		if (__atomic_load_n(&st->h.t.dead, __ATOMIC_SEQ_CST))
			break;
		t0 = ms_now_ns();
		(void)*(volatile uint64_t *)(st->guest + page * cfg->psz);
		ms_sample(ctx, st->m_fault, ms_now_ns() - t0);
	}
}

static void verify(struct ms_ctx *ctx, struct hm_state *st, const char *view, const char *base)
{
	const struct hm_cfg *cfg = &st->cfg;
	uint64_t bad = 0, first = 0;
	size_t off = 0, first_off = 0;
	char what[96];

	for (uint64_t p = 0; p < cfg->npages; p++) {
		off = ms_page_check(base + p * cfg->psz, cfg->psz, fill_of(cfg, p, st->gen), 0);
		if (off != MS_PAGE_MATCH && !bad++) {
			first = p;
			first_off = off;
		}
	}
	ms_count(ctx, st->m_checked, cfg->npages);
	snprintf(what, sizeof(what), "%s %s: %s data", hm_backings[cfg->backing],
		 hm_modes[cfg->mode], view);
	if (!bad) {
		ms_check(ctx, true, what, "%s", "");
		return;
	}
	ms_page_expect(st->scratch, cfg->psz, fill_of(cfg, first, st->gen), 0);
	ms_check(ctx, false, what, "%llu of %llu pages differ; first: page %llu, address 0x%lx: "
		 "expected 0x%02x, observed 0x%02x", (unsigned long long)bad,
		 (unsigned long long)cfg->npages, (unsigned long long)first,
		 (unsigned long)(uintptr_t)(base + first * cfg->psz + first_off),
		 st->scratch[first_off],
		 ((const unsigned char *)base)[first * cfg->psz + first_off]);
}

/* What smaps must say of the registered range: all mapped after the faults, nothing after. */
static int check_mapped(struct ms_ctx *ctx, struct hm_state *st, uint64_t want, const char *when)
{
	const struct hm_cfg *cfg = &st->cfg;
	uintptr_t g = (uintptr_t)st->guest;
	uint64_t got = 0, priv = 0;
	char what[96];
	int ret;

	/* A hugetlb page counts as shared or private by its mapcount: take both. */
	if (is_hugetlb(cfg)) {
		ret = smaps_sum(g, cfg->size_bytes, "Shared_Hugetlb", &got);
		if (!ret)
			ret = smaps_sum(g, cfg->size_bytes, "Private_Hugetlb", &priv);
	} else {
		ret = smaps_sum(g, cfg->size_bytes, "Rss", &got);
	}
	if (ret)
		return ms_error(ctx, -ret, "/proc/self/smaps: %s", strerror(-ret));
	got += priv;
	snprintf(what, sizeof(what), "registered range mapped %s", when);
	ms_check(ctx, got == want, what, "smaps %s over the range: %llu kB, expected %llu kB",
		 is_hugetlb(cfg) ? "Shared_Hugetlb + Private_Hugetlb" : "Rss",
		 (unsigned long long)got >> 10, (unsigned long long)want >> 10);
	return 0;
}

static int check_blocks(struct ms_ctx *ctx, struct hm_state *st, uint64_t want, const char *when)
{
	struct stat sb;
	char what[96];

	if (private_copy(&st->cfg))
		return 0;
	if (fstat(st->memfd, &sb))
		return ms_error(ctx, errno, "fstat(memfd): %s", strerror(errno));
	snprintf(what, sizeof(what), "memfd blocks %s", when);
	ms_check(ctx, (uint64_t)sb.st_blocks * 512 == want, what, "st_blocks %llu (%llu kB), "
		 "expected %llu kB", (unsigned long long)sb.st_blocks,
		 (unsigned long long)sb.st_blocks / 2, (unsigned long long)want >> 10);
	return 0;
}

struct hm_counts {
	uint64_t msgs, resolved, eexist, wrong_flag, other_events, injected, half;
};

static void counts_read(struct hm_handler *h, struct hm_counts *c)
{
	c->msgs = __atomic_load_n(&h->msgs, __ATOMIC_SEQ_CST);
	c->resolved = __atomic_load_n(&h->resolved, __ATOMIC_SEQ_CST);
	c->eexist = __atomic_load_n(&h->eexist, __ATOMIC_SEQ_CST);
	c->wrong_flag = __atomic_load_n(&h->wrong_flag, __ATOMIC_SEQ_CST);
	c->other_events = __atomic_load_n(&h->other_events, __ATOMIC_SEQ_CST);
	c->injected = __atomic_load_n(&h->injected, __ATOMIC_SEQ_CST);
	c->half = __atomic_load_n(&h->half, __ATOMIC_SEQ_CST);
}

static void check_handler(struct ms_ctx *ctx, struct hm_state *st, const struct hm_counts *b)
{
	const struct hm_cfg *cfg = &st->cfg;
	struct hm_counts a;

	counts_read(&st->h, &a);
	ms_count(ctx, st->m_faults, a.msgs - b->msgs);
	ms_check(ctx, a.resolved - b->resolved == cfg->ngran, "every granule faulted and resolved "
		 "once", "%llu %s ioctls mapped a granule for %llu granules touched (%llu fault "
		 "messages, %llu EEXIST)", (unsigned long long)(a.resolved - b->resolved),
		 cfg->mode == M_MINOR ? "UFFDIO_CONTINUE" : "UFFDIO_COPY",
		 (unsigned long long)cfg->ngran, (unsigned long long)(a.msgs - b->msgs),
		 (unsigned long long)(a.eexist - b->eexist));
	ms_check(ctx, a.wrong_flag == b->wrong_flag, "fault messages carry the registered kind",
		 "%llu messages %s UFFD_PAGEFAULT_FLAG_MINOR; first: address 0x%llx, flags 0x%llx",
		 (unsigned long long)(a.wrong_flag - b->wrong_flag),
		 cfg->mode == M_MINOR ? "without" : "with",
		 (unsigned long long)st->h.first_addr, (unsigned long long)st->h.first_flags);
	ms_check(ctx, a.other_events == b->other_events, "no uffd events other than page faults",
		 "%llu other events", (unsigned long long)(a.other_events - b->other_events));
	if (a.injected == b->injected)
		return;
	ms_count(ctx, st->m_injected, a.injected - b->injected);
	ms_check(ctx, a.half == b->half, "a failed ioctl mapped no more than it reported",
		 "%llu of %llu injected %s failures left pages behind; first: granule at 0x%llx: "
		 "%lld bytes reported mapped, %lld present in pagemap (or the retry found EEXIST)",
		 (unsigned long long)(a.half - b->half), (unsigned long long)(a.injected -
		 b->injected), cfg->mode == M_MINOR ? "UFFDIO_CONTINUE" : "UFFDIO_COPY",
		 (unsigned long long)st->h.half_addr, (long long)st->h.half_said,
		 (long long)st->h.half_seen);
}

/* Empty the registered range again, so the next iteration faults every granule anew. */
static int zap(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;

	if (cfg->mode == M_COPY && cfg->mapping == MP_SHARED) {
		if (fallocate(st->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			      (off_t)cfg->size_bytes))
			return ms_error(ctx, errno, "fallocate(PUNCH_HOLE): %s", strerror(errno));
		return 0;
	}
	/* minor: the page cache stays; private copy: the anonymous huge pages go. */
	if (madvise(st->guest, cfg->size_bytes, MADV_DONTNEED))
		return ms_error(ctx, errno, "madvise(MADV_DONTNEED, registered range): %s",
				strerror(errno));
	return 0;
}

/* ---- scenario=hwpoison ---- */

static uint64_t hwp_fill(const void *arg, uint64_t page)
{
	const struct hm_state *st = arg;

	return fill_of(&st->cfg, page, st->gen);
}

/* Whatever maps the poisoned file goes, and the file: the next iteration starts afresh. */
static int hwp_release(struct ms_ctx *ctx, void *arg)
{
	struct hm_state *st = arg;
	int ret = 0;

	if (munmap(st->guest, st->cfg.size_bytes) || munmap(st->alias, st->cfg.size_bytes) ||
	    close(st->memfd))
		ret = ms_error(ctx, errno, "releasing the poisoned file: %s", strerror(errno));
	st->guest = st->alias = NULL;
	st->memfd = -1;
	return ret;
}

static int hwp_rebuild(struct ms_ctx *ctx, struct hm_state *st)
{
	int ret;

	if ((ret = map_all(ctx, st)) || (ret = uffd_register(ctx, st)))
		return ret;
	__atomic_store_n(&st->h.t.base, (uintptr_t)st->guest, __ATOMIC_SEQ_CST);
	return 0;
}

/* Mainline loses the whole huge page (hwpoison entries are huge); hwpoison_lost=4k asks less. */
static int sc_hwpoison(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	struct ms_hwp *h = &st->hwp;

	h->map = st->guest;
	h->alias = st->alias;
	h->len = cfg->size_bytes;
	h->hpage_bytes = cfg->hpage_bytes;
	h->psz = cfg->psz;
	h->lost_bytes = cfg->lost ? cfg->psz : cfg->hpage_bytes;
	h->judge_poisoner_lsb = !cfg->lost;
	h->seed = cfg->seed ^ st->gen;
	h->fill = hwp_fill;
	h->release = hwp_release;
	h->arg = st;
	return ms_hwp_run(ctx, h);
}

static int handler_error(struct ms_ctx *ctx, struct hm_state *st)
{
	return ms_error(ctx, st->h.t.err, "uffd handler: %s: %s (the range was unregistered so "
			"the faulting thread could go on)", st->h.t.err_what,
			strerror(st->h.t.err));
}

static int hugetlb_minor_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct hm_state *st = ms_priv(ctx);
	const struct hm_cfg *cfg = &st->cfg;
	struct hm_counts before;
	int ret;

	st->gen = iter + 1;
	__atomic_store_n(&st->h.gen, st->gen, __ATOMIC_RELEASE);
	/* hwpoison maps a fresh file every iteration: remap has nothing left to do. */
	if (cfg->scenario == SC_HWPOISON && !st->guest && (ret = hwp_rebuild(ctx, st)))
		return ret;
	if (cfg->remap && iter && cfg->scenario != SC_HWPOISON && (ret = remap_guest(ctx, st)))
		return ret;
	counts_read(&st->h, &before);
	if (cfg->mode == M_MINOR) {
		fill_alias(st);
		if (cfg->backing == B_SHMEM_THP && (ret = check_thp_cache(ctx, st)))
			return ret;
	}
	fault_all(ctx, st);
	if (__atomic_load_n(&st->h.t.dead, __ATOMIC_SEQ_CST))
		return handler_error(ctx, st);
	verify(ctx, st, "registered range", st->guest);
	if (cfg->mode == M_COPY && has_alias(cfg))
		verify(ctx, st, "page cache (second mapping)", st->alias);
	check_handler(ctx, st, &before);
	if (cfg->scenario == SC_HWPOISON) {
		if ((ret = check_mapped(ctx, st, cfg->size_bytes, "after the faults")))
			return ret;
		return sc_hwpoison(ctx, st);
	}
	if ((ret = check_mapped(ctx, st, cfg->size_bytes, "after the faults")) ||
	    (ret = check_blocks(ctx, st, cfg->size_bytes, "after the faults")) ||
	    (ret = zap(ctx, st)) || (ret = check_mapped(ctx, st, 0, "after the zap")))
		return ret;
	/* minor: the zap must not drop the page cache; copy: the hole punch must empty it. */
	return check_blocks(ctx, st, cfg->mode == M_MINOR ? cfg->size_bytes : 0,
			    cfg->mode == M_MINOR ? "kept across MADV_DONTNEED" :
			    "after the hole punch");
}

/* ---- probe ---- */

static int cfg_load(struct ms_ctx *ctx, struct hm_cfg *cfg)
{
	uint64_t pmd = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->backing = (int)ms_param_i(ctx, "backing");
	cfg->mode = (int)ms_param_i(ctx, "mode");
	cfg->mapping = (int)ms_param_i(ctx, "mapping");
	cfg->scenario = (int)ms_param_i(ctx, "scenario");
	cfg->lost = (int)ms_param_i(ctx, "hwpoison_lost");
	cfg->remap = ms_param_i(ctx, "remap");
	cfg->asked_bytes = (uint64_t)ms_param_i(ctx, "size");
	cfg->hpage_bytes = (uint64_t)ms_param_i(ctx, "hugepage_size");
	cfg->seed = ms_seed(ctx);
	cfg->psz = (size_t)sysconf(_SC_PAGESIZE);
	if (ms_read_u64(HM_THP_DIR "/hpage_pmd_size", &pmd) || !pmd)
		pmd = 2 << 20;
	cfg->pmd_bytes = pmd;
	if (cfg->mode == M_MINOR)
		cfg->mapping = MP_SHARED;	/* minor faults need the shared page cache */
	if (cfg->hpage_bytes & (cfg->hpage_bytes - 1))
		return ms_error(ctx, EINVAL, "hugepage_size %llu is not a power of two",
				(unsigned long long)cfg->hpage_bytes);
	if (cfg->scenario == SC_HWPOISON && (!is_hugetlb(cfg) || private_copy(cfg)))
		return ms_error(ctx, EINVAL, "scenario=hwpoison is for backing=hugetlb, "
				"mapping=shared (a MAP_SHARED hugetlb file)");
	if (private_copy(cfg) && !is_hugetlb(cfg))
		return ms_error(ctx, EINVAL, "mapping=private is for backing=hugetlb (private "
				"shmem would be anonymous memory)");
	cfg->granule = is_hugetlb(cfg) ? cfg->hpage_bytes :
		       cfg->backing == B_SHMEM_THP ? cfg->pmd_bytes : cfg->psz;
	cfg->size_bytes = ms_align_up(cfg->asked_bytes, cfg->granule);
	cfg->npages = cfg->size_bytes / cfg->psz;
	cfg->ngran = cfg->size_bytes / cfg->granule;
	return 0;
}

static int hugetlb_avail(uint64_t kb, uint64_t *nr, uint64_t *avail)
{
	uint64_t free_pages, resv;
	char path[160];
	int ret;

	snprintf(path, sizeof(path), HM_HP_FMT, (unsigned long long)kb, "nr_hugepages");
	if ((ret = ms_read_u64(path, nr)))
		return ret;
	snprintf(path, sizeof(path), HM_HP_FMT, (unsigned long long)kb, "free_hugepages");
	if ((ret = ms_read_u64(path, &free_pages)))
		return ret;
	snprintf(path, sizeof(path), HM_HP_FMT, (unsigned long long)kb, "resv_hugepages");
	if ((ret = ms_read_u64(path, &resv)))
		return ret;
	*avail = free_pages > resv ? free_pages - resv : 0;
	return 0;
}

/* Raise the pool (journaled) when it is short and the memory is there; else SKIP. */
static int probe_pool(struct ms_ctx *ctx, const struct hm_cfg *cfg)
{
	uint64_t kb = cfg->hpage_bytes >> 10, need = cfg->size_bytes / cfg->hpage_bytes;
	uint64_t nr, avail, mem_kb = 0, total_kb = 0, margin_kb;
	bool tried = false;
	char path[160], val[32];
	int ret;

	if (hugetlb_avail(kb, &nr, &avail))
		return ms_skip(ctx, "no %llu kB hugetlb pages on this kernel (no "
			       "/sys/kernel/mm/hugepages/hugepages-%llukB)",
			       (unsigned long long)kb, (unsigned long long)kb);
	if (avail >= need)
		return 0;
	if (ms_meminfo_kb("MemAvailable", &mem_kb) || ms_meminfo_kb("MemTotal", &total_kb))
		mem_kb = total_kb = 0;
	margin_kb = total_kb / 8 > (512 << 10) ? total_kb / 8 : (512 << 10);
	if (mem_kb > margin_kb && (need - avail) * kb <= mem_kb - margin_kb) {
		tried = true;
		snprintf(path, sizeof(path), HM_HP_FMT, (unsigned long long)kb, "nr_hugepages");
		snprintf(val, sizeof(val), "%llu", (unsigned long long)(nr + need - avail));
		ret = ms_knob_write(ctx, path, val);
		if (ret)
			ms_note(ctx, "writing %s failed: %s", path, strerror(-ret));
		else
			ms_note(ctx, "nr_hugepages (%llu kB) %llu -> %s for %llu free pages "
				"(journaled, restored after the case)", (unsigned long long)kb,
				(unsigned long long)nr, val, (unsigned long long)need);
		if (hugetlb_avail(kb, &nr, &avail))
			avail = 0;
	}
	/* Runtime 1 GiB allocations need 1 GiB of free contiguous memory: say so. */
	if (avail < need && kb == (1 << 20) && tried)
		return ms_skip(ctx, "could not allocate a 1 GiB page (fragmented): needs %llu free, "
			       "has %llu (nr_hugepages=%llu)", (unsigned long long)need,
			       (unsigned long long)avail, (unsigned long long)nr);
	if (avail < need)
		return ms_skip(ctx, "needs %llu free %llu kB hugetlb pages, could get %llu "
			       "(nr_hugepages=%llu)", (unsigned long long)need,
			       (unsigned long long)kb, (unsigned long long)avail,
			       (unsigned long long)nr);
	return 0;
}

/* shmem THPs need shmem_enabled to honour MADV_HUGEPAGE: journaled, restored at case end. */
static int shmem_thp_allow(struct ms_ctx *ctx, const char *path, const char *const *off,
			   const char *want)
{
	char cur[64];
	int ret;

	if (ms_knob_read(path, cur, sizeof(cur)))
		return 0;	/* the per-size knob is missing before Linux 6.11 */
	for (; *off; off++) {
		if (strcmp(cur, *off))
			continue;
		ret = ms_knob_write(ctx, path, want);
		if (ret)
			return ms_skip(ctx, "shmem THP disabled (%s is '%s') and setting '%s' "
				       "failed: %s", path, cur, want, strerror(-ret));
		ms_note(ctx, "%s was '%s'; set '%s' (journaled, restored after the case)", path,
			cur, want);
		return 0;
	}
	return 0;
}

static int probe_shmem_thp(struct ms_ctx *ctx, const struct hm_cfg *cfg)
{
	static const char *const top_off[] = { "never", "deny", NULL };
	static const char *const size_off[] = { "never", NULL };
	char path[160];
	int ret;

	if (access(HM_THP_DIR "/shmem_enabled", F_OK))
		return ms_skip(ctx, "no " HM_THP_DIR "/shmem_enabled: shmem THP not built in");
	if ((ret = shmem_thp_allow(ctx, HM_THP_DIR "/shmem_enabled", top_off, "advise")))
		return ret;
	snprintf(path, sizeof(path), HM_THP_DIR "/hugepages-%llukB/shmem_enabled",
		 (unsigned long long)cfg->pmd_bytes >> 10);
	return shmem_thp_allow(ctx, path, size_off, "inherit");
}

static int hugetlb_minor_probe(struct ms_ctx *ctx)
{
	struct hm_cfg cfg;
	uint64_t avail_kb;
	int ret;

	if ((ret = cfg_load(ctx, &cfg)))
		return ret;
	if (cfg.scenario == SC_HWPOISON && (ret = ms_hwp_probe(ctx)))
		return ret;
	if ((ret = probe_uffd(ctx, &cfg)))
		return ret;
	if (is_hugetlb(&cfg))
		return probe_pool(ctx, &cfg);
	if (!ms_meminfo_kb("MemAvailable", &avail_kb) &&
	    cfg.size_bytes / 1024 + (64 << 10) > avail_kb / 10 * 9)
		return ms_skip(ctx, "needs about %llu MiB of shmem, MemAvailable is %llu MiB",
			       (unsigned long long)cfg.size_bytes >> 20,
			       (unsigned long long)avail_kb >> 10);
	if (cfg.backing == B_SHMEM_THP)
		return probe_shmem_thp(ctx, &cfg);
	return 0;
}

/* ---- setup, teardown ---- */

static int register_metrics(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct ms_metric_spec m[] = {
		{ &st->m_fault, "fault_resolve_ns", MS_M_HIST, "ns" },
		{ &st->m_ioctl, st->cfg.mode == M_MINOR ? "continue_ioctl_ns" : "copy_ioctl_ns",
		  MS_M_HIST, "ns" },
		{ &st->m_gran, "granule_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_faults, "fault_messages", MS_M_COUNTER, "faults" },
		{ &st->m_checked, "checked_pages", MS_M_COUNTER, "pages" },
		{ &st->m_injected, "injected_ioctl_failures", MS_M_COUNTER, "ioctls" },
	};

	for (size_t i = 0; i < MS_ARRAY_SIZE(m); i++) {
		*m[i].id = ms_metric(ctx, m[i].name, m[i].kind, m[i].unit);
		if (*m[i].id < 0)
			return ms_error(ctx, -*m[i].id, "registering metric %s: %s", m[i].name,
					strerror(-*m[i].id));
	}
	ms_gauge(ctx, st->m_gran, (int64_t)st->cfg.granule);
	return 0;
}

static int start_handler(struct ms_ctx *ctx, struct hm_state *st)
{
	const struct hm_cfg *cfg = &st->cfg;
	struct hm_handler *h = &st->h;

	h->ctx = ctx;
	h->cfg = cfg;
	h->m_ioctl = st->m_ioctl;
	h->t.base = (uintptr_t)st->guest;
	if (cfg->mode == M_COPY) {
		h->src = mmap(NULL, cfg->granule, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (h->src == MAP_FAILED) {
			h->src = NULL;
			return ms_error(ctx, errno, "mmap(copy staging buffer): %s",
					strerror(errno));
		}
	}
	h->t.len = cfg->size_bytes;
	h->t.on_msg = on_msg;
	return ms_uffd_start(ctx, &h->t);
}

static int hugetlb_minor_setup(struct ms_ctx *ctx)
{
	struct hm_state *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	st->memfd = st->h.t.uffd = st->h.t.stop_fd = -1;
	ms_set_priv(ctx, st);
	if ((ret = cfg_load(ctx, &st->cfg)) || (ret = register_metrics(ctx, st)))
		return ret;
	if (st->cfg.scenario == SC_HWPOISON && (ret = ms_hwp_metrics(ctx, &st->hwp)))
		return ret;
	if (st->cfg.size_bytes != st->cfg.asked_bytes)
		ms_note(ctx, "size %llu rounded up to %llu bytes (the granule)",
			(unsigned long long)st->cfg.asked_bytes,
			(unsigned long long)st->cfg.size_bytes);
	if (st->cfg.backing == B_SHMEM_THP)
		ms_note(ctx, "shmem UFFDIO_CONTINUE maps a THP's pages with PTEs: one ioctl maps "
			"the PMD range, but not with a PMD");
	st->scratch = calloc(1, st->cfg.psz);
	if (!st->scratch)
		return ms_error(ctx, ENOMEM, "out of memory");
	if ((ret = map_all(ctx, st)) || (ret = uffd_setup(ctx, st)))
		return ret;
	return start_handler(ctx, st);
}

static void hugetlb_minor_teardown(struct ms_ctx *ctx)
{
	struct hm_state *st = ms_priv(ctx);

	if (!st)
		return;
	ms_uffd_stop(ctx, &st->h.t);
	ms_uffd_close(ctx, &st->h.t);
	if (st->h.src)
		ms_uffd_release(ctx, munmap(st->h.src, st->cfg.granule), "munmap(staging buffer)");
	if (st->guest)
		ms_uffd_release(ctx, munmap(st->guest, st->cfg.size_bytes),
				"munmap(registered range)");
	if (st->alias)
		ms_uffd_release(ctx, munmap(st->alias, st->cfg.size_bytes), "munmap(alias)");
	if (st->memfd >= 0)
		ms_uffd_release(ctx, close(st->memfd), "close(memfd)");
	free(st->scratch);
	free(st);
	ms_set_priv(ctx, NULL);
}

const struct ms_workload ms_wl_hugetlb_minor = {
	.name = "hugetlb-minor",
	.summary = "userfaultfd on hugetlb and shmem: MINOR faults resolved with UFFDIO_CONTINUE "
		   "(huge page, PMD or 4K granule) or missing faults with UFFDIO_COPY, from a "
		   "handler thread; latency, data and mappings checked",
	.params = hugetlb_minor_params,
	.probe = hugetlb_minor_probe,
	.setup = hugetlb_minor_setup,
	.run = hugetlb_minor_run,
	.teardown = hugetlb_minor_teardown,
};

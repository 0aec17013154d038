/* mshare: N processes attach one msharefs region (page tables shared once), vs the model. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/inject.h"
#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/ptcost.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"
#include "workloads/msharefs_uapi.h"
#include "workloads/share_common.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

enum { IF_NONE, IF_2025, IF_2024 };
enum { OP_READ, OP_WRITE, OP_FORK, OP_NR };
/* Process 0 creates the region and leaves first; the others end one of these ways. */
enum { END_MUNMAP, END_EXIT, END_KILL, END_NR };
enum { PH_NONE, PH_CREATE, PH_FIRST, PH_ATTACH, PH_CHECK, PH_OPS, PH_VERIFY, PH_EXPECT, PH_UNMAP,
       PH_CREATOR_EXIT, PH_AFTER_CREATOR, PH_END };

static const char *const ms_if_names[] = { "none", "2025 (v2/v3: ftruncate, CREATE_MAPPING "
					   "'x' 0, UNMAP 'x' 1)", "2024 (RFC v3: GET/SET_SIZE "
					   "'x' 0/1, CREATE_MAPPING 'x' 2)" };
static const char *const mh_op_names[] = { "read", "write", "fork", NULL };

static const struct ms_param mshare_params[] = {
	{ "procs", MS_P_INT, "8", "", 1, 1024, NULL,
	  "processes attaching the region: process 0 creates it, the others open it by name" },
	{ "size", MS_P_SIZE, "1G", "bytes", 4096, 64LL << 30, NULL,
	  "shared anonymous memory mapped into the region (MSHAREFS_CREATE_MAPPING)" },
	{ "populate", MS_P_SIZE, "0", "bytes", 0, 64LL << 30, NULL,
	  "bytes from the start that every process faults in; 0 = all of size" },
	{ "rounds", MS_P_INT, "4", "", 0, 100000, NULL,
	  "rounds of read/write/fork ops, each followed by a data check in every process" },
	{ "sample_pages", MS_P_INT, "256", "pages", 2, 1 << 20, NULL,
	  "4 KiB pages stamped and checked, spread over the populated part" },
	{ "pt_tolerance", MS_P_SIZE, "0", "bytes", 0, 1LL << 40, NULL,
	  "allowed difference between PageTables and the model; 0 = auto, as pmd-share" },
	{ NULL }
};

#define MH_SLOT_ADDR (32ULL << 40)	/* 512 GiB-aligned, nothing else of a process there */
#define MH_STACK_WARM (64 << 10)
#define MH_ROLE(w) ((uint64_t)(w) + 1)

struct mh_cfg {
	unsigned procs, rounds;
	uint64_t size, pop, npop, nsample, align, tol_param, seed;
	bool in_guest;
	struct ms_ptcost model;
	char release[65];
};

struct mh_slot {
	struct ms_share_slot h;
	uint32_t gen;
	uint32_t pad;
	uint64_t vmpte_base, vmpte_mapped;
};

struct mh_ctl {
	struct ms_share_ctl h;
	uint32_t nkeep;			/* tracked pages still mapped (after the UNMAP ioctl) */
	uint32_t pad;
	struct mh_slot w[];
};

struct mh_state {
	struct mh_cfg cfg;
	int m_fault, m_attach, m_detach, m_fork;
	int m_procs, m_vmpte_sum, m_growth, m_model_pt, m_leak, m_tol, m_ops, m_checked;
	struct ms_share_procs pr;
	struct mh_ctl *ctl;		/* pr.ctl with this workload's slots */
	int iface;
	char mnt[PATH_MAX / 2];		/* leaves room for file names under it */
	bool mounted_here;
	char path[PATH_MAX];		/* the region's file in this iteration */
	uintptr_t start;		/* where processes attach it */
	struct ms_share_noise noise;
};

struct mh_bad {
	uint64_t checked, bad, first_page, first_off;
};

struct mh_worker {
	struct ms_ctx *ctx;
	struct mh_state *st;
	const struct mh_cfg *cfg;
	struct mh_slot *me;
	unsigned idx;
	int fd;
	char *base;
	uint64_t attach_ns, *fault_ns;
};

/* ---- msharefs: registered, mounted, which interface ---- */

static bool fs_registered(void)
{
	char buf[8192];

	if (ms_read_file("/proc/filesystems", buf, sizeof(buf)) < 0)
		return false;
	return strstr(buf, "\tmsharefs\n") != NULL;
}

/* Mount point of a msharefs from /proc/self/mountinfo ("... - msharefs ..."). */
static bool find_mount(char *mnt, size_t len)
{
	char line[1024], point[PATH_MAX];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - msharefs ");

		if (sep && sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1) {
			ms_strlcpy(mnt, point, len);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static int read_align(struct ms_ctx *ctx, const char *mnt, uint64_t *align)
{
	char path[PATH_MAX], buf[64];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/" MS_MSHAREFS_INFO, mnt);
	n = ms_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return ms_skip(ctx, "msharefs mounted at %s but %s unreadable: %s", mnt, path,
			       strerror((int)-n));
	*align = strtoull(buf, NULL, 10);
	if (*align < (1ULL << 30) || (*align & (*align - 1)))
		return ms_skip(ctx, "%s says %s: not a power-of-two alignment of at least 1 GiB",
			       path, buf);
	return 0;
}

/*
 * Which revision: GET_SIZE answers only in the 2024 one (the 2025 one says ENOTTY, or EINVAL
 * for an unsized file in v2); ftruncate() to the alignment sizes a 2025 region.
 */
static int detect_iface(struct ms_ctx *ctx, struct mh_state *st)
{
	struct ms_mshare_info_2024 info = { 0 };
	char path[PATH_MAX];
	int fd, ret = 0, e1;

	snprintf(path, sizeof(path), "%s/mmstorm-probe-%d", st->mnt, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return ms_skip(ctx, "creating %s: %s", path, strerror(errno));
	if (!ioctl(fd, MS_MSHAREFS_GET_SIZE_2024, &info)) {
		st->iface = IF_2024;
		goto out;
	}
	e1 = errno;
	if (!ftruncate(fd, (off_t)st->cfg.align)) {
		st->iface = IF_2025;
		goto out;
	}
	ret = ms_skip(ctx, "msharefs speaks neither known interface: GET_SIZE (2024) %s, "
		      "ftruncate to %llu (2025) %s", strerror(e1),
		      (unsigned long long)st->cfg.align, strerror(errno));
out:
	close(fd);
	unlink(path);
	return ret;
}

static int mount_msharefs(struct ms_ctx *ctx, struct mh_state *st)
{
	if (find_mount(st->mnt, sizeof(st->mnt)))
		return 0;
	/* Not mounted (the guest agent mounts it at /sys/fs/mshare): a private mount. */
	snprintf(st->mnt, sizeof(st->mnt), "%s/msharefs", ms_tmpdir(ctx));
	if (mkdir(st->mnt, 0700) && errno != EEXIST)
		return ms_error(ctx, errno, "mkdir %s: %s", st->mnt, strerror(errno));
	if (mount("msharefs", st->mnt, "msharefs", 0, NULL))
		return ms_skip(ctx, "msharefs registered but mounting it at %s failed: %s",
			       st->mnt, strerror(errno));
	st->mounted_here = true;
	return 0;
}

/* ---- config ---- */

static int cfg_load(struct ms_ctx *ctx, struct mh_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->procs = (unsigned)ms_param_i(ctx, "procs");
	cfg->rounds = (unsigned)ms_param_i(ctx, "rounds");
	cfg->size = ((uint64_t)ms_param_i(ctx, "size") + 4095) / 4096 * 4096;
	cfg->pop = (uint64_t)ms_param_i(ctx, "populate");
	cfg->pop = cfg->pop ? (cfg->pop + 4095) / 4096 * 4096 : cfg->size;
	if (cfg->pop > cfg->size)
		cfg->pop = cfg->size;
	cfg->npop = cfg->pop / 4096;
	cfg->nsample = (uint64_t)ms_param_i(ctx, "sample_pages");
	if (cfg->nsample > cfg->npop)
		cfg->nsample = cfg->npop;
	cfg->tol_param = (uint64_t)ms_param_i(ctx, "pt_tolerance");
	cfg->seed = ms_seed(ctx);
	cfg->in_guest = ms_in_guest(ctx);
	return 0;
}

static int cfg_model(struct ms_ctx *ctx, struct mh_cfg *cfg, uintptr_t start)
{
	struct ms_ptcost_in in = {
		.start = start, .len = cfg->align, .pop_len = cfg->pop, .page_bytes = 4096,
		.nproc = cfg->procs,
		/* the region's tables, from its PUD table down, live in its own mm, once */
		.share = MS_PT_SHARE_PUD, .charge_shared = false,
	};
	struct utsname u;
	int ret;

	if (uname(&u))
		return ms_error(ctx, errno, "uname: %s", strerror(errno));
	ms_strlcpy(cfg->release, u.release, sizeof(cfg->release));
	if (strcmp(u.machine, "x86_64"))
		return ms_skip(ctx, "the page-table model is x86-64's (this machine is %s)",
			       u.machine);
	in.pt_levels = ms_ptcost_levels_for_release(u.release);
	if (cfg->size > cfg->align)
		return ms_error(ctx, EINVAL, "size %llu is larger than the region (mshare_info "
				"%llu)", (unsigned long long)cfg->size,
				(unsigned long long)cfg->align);
	ret = ms_ptcost(&in, &cfg->model);
	return ret ? ms_error(ctx, -ret, "the page-table model does not describe this region") :
		     0;
}

static int mshare_probe(struct ms_ctx *ctx)
{
	if (!fs_registered())
		return ms_skip(ctx, "msharefs not in /proc/filesystems (kernel without the mshare "
			       "series)");
	return 0;
}

/* ---- the model of the contents ---- */

static uint64_t tracked_page(const struct mh_cfg *cfg, uint64_t i)
{
	return i * cfg->npop / cfg->nsample;
}

static unsigned owner_of(const struct mh_cfg *cfg, uint64_t i)
{
	return (unsigned)(i % cfg->procs);
}

static unsigned op_of(const struct mh_cfg *cfg, unsigned w, unsigned round)
{
	return (unsigned)(ms_stamp(cfg->seed, w, round + 1) % OP_NR);
}

static void check_tracked(struct mh_worker *w, unsigned round, bool ops_phase,
			  struct mh_bad *bad)
{
	const struct mh_cfg *cfg = w->cfg;
	uint64_t nkeep = __atomic_load_n(&w->st->ctl->nkeep, __ATOMIC_ACQUIRE);

	for (uint64_t i = 0; i < nkeep; i++) {
		unsigned o = owner_of(cfg, i);
		uint64_t p = tracked_page(cfg, i), gen, off;

		if (ops_phase && op_of(cfg, o, round) == OP_WRITE)
			continue;
		gen = __atomic_load_n(&w->st->ctl->w[o].gen, __ATOMIC_ACQUIRE);
		off = ms_page_mark_check(w->base + p * 4096, 4096, ms_stamp(MH_ROLE(o), p, gen));
		bad->checked++;
		if (off != MS_PAGE_MATCH && !bad->bad++) {
			bad->first_page = p;
			bad->first_off = off;
		}
	}
}

static void report_bad(struct mh_worker *w, const char *what, const struct mh_bad *bad)
{
	ms_count(w->ctx, w->st->m_checked, bad->checked);
	ms_check(w->ctx, !bad->bad, what, "process %u: %llu of %llu pages differ from the model; "
		 "first: page %llu (address %#llx, byte %llu)", w->idx,
		 (unsigned long long)bad->bad, (unsigned long long)bad->checked,
		 (unsigned long long)bad->first_page,
		 (unsigned long long)(uintptr_t)(w->base + bad->first_page * 4096),
		 (unsigned long long)bad->first_off);
}

static void write_owned(struct mh_worker *w, uint32_t gen, bool all)
{
	const struct mh_cfg *cfg = w->cfg;

	for (uint64_t i = 0; i < cfg->nsample; i++) {
		unsigned o = owner_of(cfg, i);
		uint64_t p = tracked_page(cfg, i);

		if (all || o == w->idx)
			ms_page_mark(w->base + p * 4096, 4096, ms_stamp(MH_ROLE(o), p, gen));
	}
}

/* ---- a worker: create, attach, populate ---- */

#define MH_PROT (PROT_READ | PROT_WRITE)
#define MH_FLAGS (MAP_ANONYMOUS | MAP_SHARED | MAP_FIXED)

/* 2024: the region has an absolute address; anonymous shared memory is mapped there. */
static int create_2024(struct mh_worker *w)
{
	struct ms_mshare_info_2024 info = { .start = w->st->start, .size = w->cfg->align };
	struct ms_mshare_create_2024 c = { .addr = w->st->start, .size = w->cfg->size,
					   .prot = MH_PROT, .flags = MH_FLAGS, .fd = (__u32)-1 };

	if (ioctl(w->fd, MS_MSHAREFS_SET_SIZE_2024, &info) ||
	    ioctl(w->fd, MS_MSHAREFS_CREATE_MAPPING_2024, &c))
		return -errno;
	return 0;
}

/* 2025: sized like a file, objects mapped at offsets into it. */
static int create_2025(struct mh_worker *w)
{
	struct ms_mshare_create c = { .region_offset = 0, .size = w->cfg->size, .offset = 0,
				      .prot = MH_PROT, .flags = MH_FLAGS, .fd = (__u32)-1 };

	if (ftruncate(w->fd, (off_t)w->cfg->align) ||
	    ioctl(w->fd, MS_MSHAREFS_CREATE_MAPPING, &c))
		return -errno;
	return 0;
}

static int create_region(struct mh_worker *w)
{
	w->fd = open(w->st->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0)
		return -errno;
	return w->st->iface == IF_2024 ? create_2024(w) : create_2025(w);
}

static int attach(struct mh_worker *w)
{
	struct mh_state *st = w->st;
	uint64_t t0 = ms_now_ns();
	void *p;

	if (w->fd < 0) {
		w->fd = open(st->path, O_RDWR | O_CLOEXEC);
		if (w->fd < 0)
			return -errno;
	}
	ms_inject_point(w->ctx, "mmap");
	p = mmap((void *)st->start, w->cfg->align, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, w->fd, 0);
	/* An injected failure must leave nothing there: the retry gets EEXIST if it did. */
	if (ms_inject_done(w->ctx, "mmap", p == MAP_FAILED ? -1 : 0, p == MAP_FAILED ? errno : 0)) {
		/* Random injectors (failslab) stay armed: their ENOMEM is tried past. */
		for (int k = 0; k < 100 && (k == 0 || (p == MAP_FAILED && errno == ENOMEM)); k++)
			p = mmap((void *)st->start, w->cfg->align, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED_NOREPLACE, w->fd, 0);
	}
	if (p == MAP_FAILED)
		return -errno;
	if ((uintptr_t)p != st->start) {
		munmap(p, w->cfg->align);
		return -EEXIST;
	}
	w->base = p;
	w->attach_ns = ms_now_ns() - t0;
	return 0;
}

/*
 * One access that faults a page in. Not instrumented: under AddressSanitizer the check of
 * the shadow byte would fault in shadow pages too, and VmPTE would count their tables.
 */
__attribute__((no_sanitize_address)) static void touch(char *page, bool write)
{
	volatile uint64_t *v = (volatile uint64_t *)page;

	if (write)
		*v = 0;
	else
		(void)*v;
}

static void populate(struct mh_worker *w, bool write)
{
	for (uint64_t p = 0, c = 0; p < w->cfg->npop; p += 512, c++) {
		uint64_t t0 = ms_now_ns(), end = p + 512 < w->cfg->npop ? p + 512 : w->cfg->npop;

		for (uint64_t q = p; q < end; q++)
			touch(w->base + q * 4096, write);
		w->fault_ns[c] = ms_now_ns() - t0;
	}
}

static int phase_attach(struct mh_worker *w, bool creator)
{
	int ret;

	if ((ret = attach(w)))
		return ret;
	populate(w, creator);
	if ((ret = ms_share_read_vmpte(&w->me->vmpte_mapped)))
		return ret;
	if (creator)
		write_owned(w, 0, true);
	return 0;
}

static void phase_check(struct mh_worker *w)
{
	struct mh_bad bad = { 0 };
	int64_t delta = (int64_t)(w->me->vmpte_mapped - w->me->vmpte_base);

	ms_sample(w->ctx, w->st->m_attach, w->attach_ns);
	for (uint64_t c = 0; c * 512 < w->cfg->npop; c++)
		ms_sample(w->ctx, w->st->m_fault, w->fault_ns[c]);
	check_tracked(w, 0, false, &bad);
	report_bad(w, "every attacher reads the creator's stamps", &bad);
	ms_check(w->ctx, delta == (int64_t)w->cfg->model.vmpte_bytes,
		 "attacher VmPTE growth is the model's (the region's tables are in its own mm)",
		 "process %u: VmPTE %+lld bytes, model %llu", w->idx, (long long)delta,
		 (unsigned long long)w->cfg->model.vmpte_bytes);
}

/* ---- ops ---- */

static int op_fork(struct mh_worker *w, unsigned round)
{
	uint64_t t0 = ms_now_ns();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct mh_bad bad = { 0 };

		check_tracked(w, round, true, &bad);
		report_bad(w, "a forked attacher sees the region's pages", &bad);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	ms_sample(w->ctx, w->st->m_fork, ms_now_ns() - t0);
	ms_check(w->ctx, WIFEXITED(status) && !WEXITSTATUS(status), "forked attacher exits "
		 "cleanly", "process %u: child status %#x", w->idx, status);
	return 0;
}

static int run_op(struct mh_worker *w, unsigned round)
{
	struct mh_bad bad = { 0 };
	unsigned op = op_of(w->cfg, w->idx, round);
	int ret = 0;

	if (op == OP_WRITE) {
		write_owned(w, w->me->gen + 1, false);
		__atomic_store_n(&w->me->gen, w->me->gen + 1, __ATOMIC_RELEASE);
	} else if (op == OP_FORK) {
		ret = op_fork(w, round);
	}
	if (ret)
		return ms_error(w->ctx, -ret, "process %u, round %u: %s: %s", w->idx, round,
				mh_op_names[op], strerror(-ret));
	if (op != OP_WRITE) {
		check_tracked(w, round, true, &bad);
		report_bad(w, "pages hold what the model says while others write and fork", &bad);
	}
	ms_count(w->ctx, w->st->m_ops, 1);
	return 0;
}

/*
 * What the series documents for an attached region (v3, "mm/mshare: add ways to set the
 * size..."/msharefs_vm_ops): mprotect() and any split (partial munmap) fail with EINVAL.
 * MADV_DONTNEED is not documented: its result is recorded, and the data checked after.
 */
static int phase_expect(struct mh_worker *w)
{
	char *p = w->base + 4096;
	int r, e;

	r = mprotect(p, 4096, PROT_READ);
	e = errno;
	ms_check(w->ctx, r < 0 && e == EINVAL, "mprotect on part of an mshare region fails with "
		 "EINVAL (msharefs_vm_ops.mprotect)", "mprotect returned %d (%s)", r,
		 r ? strerror(e) : "success");
	if (!r && mprotect(p, 4096, PROT_READ | PROT_WRITE))
		return -errno;
	r = munmap(p, 4096);
	e = errno;
	ms_check(w->ctx, r < 0 && e == EINVAL, "partial munmap of an mshare region fails with "
		 "EINVAL (msharefs_vm_ops.may_split)", "munmap returned %d (%s)", r,
		 r ? strerror(e) : "success");
	/* A hole where the model expects pages: the checks after it would only crash. */
	if (!r)
		return ms_error(w->ctx, EIO, "partial munmap of the region succeeded; stopping");
	r = madvise(w->base, w->cfg->pop, MADV_DONTNEED);
	ms_note(w->ctx, "MADV_DONTNEED over the attached region: %s (not documented by the series; "
		"data checked after)", r ? strerror(errno) : "success");
	return 0;
}

/* The creator unmaps the second half from the region while the others read the first. */
static int phase_unmap(struct mh_worker *w)
{
	const struct mh_cfg *cfg = w->cfg;
	uint64_t keep = cfg->nsample / 2, off = tracked_page(cfg, keep) * 4096, t0 = ms_now_ns();
	struct mh_bad bad = { 0 };
	int r;

	if (w->idx) {
		check_tracked(w, 0, false, &bad);
		report_bad(w, "the kept part reads right while the creator unmaps the rest", &bad);
		return 0;
	}
	if (w->st->iface == IF_2024) {
		struct ms_mshare_unmap_2024 u = { .addr = w->st->start + off,
						  .size = cfg->size - off };

		r = ioctl(w->fd, MS_MSHAREFS_UNMAP_2024, &u);
	} else {
		struct ms_mshare_unmap u = { .region_offset = off, .size = cfg->size - off };

		r = ioctl(w->fd, MS_MSHAREFS_UNMAP, &u);
	}
	if (r && errno == ENOTTY && w->st->iface == IF_2024) {
		ms_note(w->ctx, "this 2024-interface kernel has no MSHAREFS_UNMAP (RFC v3 had "
			"none)");
		return 0;
	}
	ms_check(w->ctx, !r, "MSHAREFS_UNMAP of the second half succeeds while others read",
		 "ioctl: %s", r ? strerror(errno) : "");
	ms_sample(w->ctx, w->st->m_detach, ms_now_ns() - t0);
	return 0;
}

static int do_phase(struct mh_worker *w, unsigned what, unsigned round)
{
	struct mh_bad bad = { 0 };

	switch (what) {
	case PH_CREATE:
		return w->idx ? 0 : create_region(w);
	case PH_FIRST:
		return w->idx ? 0 : phase_attach(w, true);
	case PH_ATTACH:
		return w->idx ? phase_attach(w, false) : 0;
	case PH_CHECK:
		phase_check(w);
		return 0;
	case PH_OPS:
		return run_op(w, round);
	case PH_VERIFY:
	case PH_AFTER_CREATOR:
		if (what == PH_AFTER_CREATOR && !w->idx)
			return 0;
		check_tracked(w, round, false, &bad);
		report_bad(w, what == PH_VERIFY ? "every attacher reads what the model says after "
			   "the round" : "attachers read the region after its creator exited",
			   &bad);
		return 0;
	case PH_EXPECT:
		return w->idx ? 0 : phase_expect(w);
	case PH_UNMAP:
		return phase_unmap(w);
	case PH_END:
		if (w->idx % END_NR == END_MUNMAP && w->base) {
			uint64_t t0 = ms_now_ns();

			if (munmap(w->base, w->cfg->align))
				return -errno;
			ms_sample(w->ctx, w->st->m_detach, ms_now_ns() - t0);
			w->base = NULL;
		}
		return 0;
	default:
		return 0;
	}
}

static int worker_phase(void *w, unsigned what, unsigned round)
{
	return do_phase(w, what, round);
}

/* Who leaves after a phase: the creator after PH_CREATOR_EXIT, the rest after PH_END. */
static bool leaves_after(unsigned idx, unsigned what)
{
	if (!idx)
		return what == PH_CREATOR_EXIT;
	return what == PH_END && idx % END_NR != END_KILL;
}

static int mshare_worker(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct mh_state *st = arg;
	struct mh_worker w = { .ctx = ctx, .st = st, .cfg = &st->cfg, .me = &st->ctl->w[idx],
			       .idx = idx, .fd = -1 };
	volatile char stack[MH_STACK_WARM];
	long psz = sysconf(_SC_PAGESIZE);
	int ret = 0;

	memset((char *)stack, 0, sizeof(stack));
	w.fault_ns = calloc(st->cfg.npop / 512 + 1, sizeof(*w.fault_ns));
	if (!w.fault_ns)
		ret = -ENOMEM;
	for (size_t off = 0; off < st->pr.ctl_bytes; off += psz)
		(void)((volatile char *)st->ctl)[off];
	if (!ret)
		ret = ms_share_read_vmpte(&w.me->vmpte_base);
	ms_share_worker_loop(ctx, &st->pr, idx, ret, worker_phase, leaves_after, &w);
	free(w.fault_ns);
	return 0;
}

/* ---- the case process ---- */

static int register_metrics(struct ms_ctx *ctx, struct mh_state *st)
{
	const struct ms_metric_spec m[] = {
		{ &st->m_fault, "fault_2m_ns", MS_M_HIST, "ns" },
		{ &st->m_attach, "attach_ns", MS_M_HIST, "ns" },
		{ &st->m_detach, "detach_ns", MS_M_HIST, "ns" },
		{ &st->m_fork, "fork_ns", MS_M_HIST, "ns" },
		{ &st->m_procs, "procs", MS_M_GAUGE, "processes" },
		{ &st->m_vmpte_sum, "vmpte_sum_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_growth, "pagetables_growth_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_model_pt, "model_pagetables_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_leak, "pagetables_leak_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_tol, "pt_tolerance_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_ops, "ops", MS_M_COUNTER, "ops" },
		{ &st->m_checked, "checked_pages", MS_M_COUNTER, "pages" },
	};

	return ms_metrics(ctx, m, MS_ARRAY_SIZE(m));
}

/* Process 0, the creator, has left before; of the others every END_NR-th is killed. */
static bool ends_killed(unsigned idx)
{
	return idx && idx % END_NR == END_KILL;
}

static void reap_all(struct ms_ctx *ctx, struct mh_state *st, bool planned)
{
	struct ms_share_reaped r;

	ms_share_reap(&st->pr, planned, ends_killed, &r);
	if (planned)
		ms_check(ctx, !r.bad, "attachers end as planned (creator first; munmap, exit, "
			 "SIGKILL)", "%u did not; first: process %u, status %#x", r.bad, r.first,
			 r.first_status);
}

static uint64_t tolerance(const struct mh_state *st, uint64_t window_ns)
{
	return ms_share_tolerance(&st->noise, st->cfg.tol_param, st->cfg.in_guest, window_ns);
}

static void check_growth(struct ms_ctx *ctx, struct mh_state *st, uint64_t pt0, uint64_t pt1,
			 uint64_t tol)
{
	const struct ms_ptcost *m = &st->cfg.model;
	uint64_t sum = 0;

	for (unsigned i = 0; i < st->cfg.procs; i++)
		sum += st->ctl->w[i].vmpte_mapped - st->ctl->w[i].vmpte_base;
	ms_gauge(ctx, st->m_procs, st->cfg.procs);
	ms_gauge(ctx, st->m_vmpte_sum, (int64_t)sum);
	ms_gauge(ctx, st->m_growth, (int64_t)pt1 - (int64_t)pt0);
	ms_gauge(ctx, st->m_model_pt, (int64_t)m->system_bytes);
	ms_gauge(ctx, st->m_tol, (int64_t)tol);
	/* Signed: on a busy host other processes may free more than these allocate. */
	ms_check(ctx, (pt0 + m->system_bytes > pt1 ? pt0 + m->system_bytes - pt1 :
		       pt1 - pt0 - m->system_bytes) <= tol,
		 "system PageTables growth is the model's (the region's tables once)",
		 "%u attachers: PageTables %+lld bytes, model %llu (tolerance %llu); sum of VmPTE "
		 "growth %llu", st->cfg.procs, (long long)(pt1 - pt0),
		 (unsigned long long)m->system_bytes, (unsigned long long)tol,
		 (unsigned long long)sum);
}

static int spawn_all(struct ms_ctx *ctx, struct mh_state *st)
{
	memset(st->ctl, 0, st->pr.ctl_bytes);
	st->ctl->nkeep = (uint32_t)st->cfg.nsample;
	return ms_share_spawn(ctx, &st->pr, st->cfg.procs, mshare_worker, st);
}

static int measured_attach(struct ms_ctx *ctx, struct mh_state *st, bool note)
{
	uint64_t pt0, pt1, t0 = ms_now_ns();
	unsigned n = st->pr.nspawned;
	int ret;

	/* Creating the region allocates its mm (and PGD) outside the window: tables only. */
	if ((ret = ms_share_run_phase(ctx, &st->pr, PH_CREATE, 0, n)) ||
	    (ret = ms_share_read_pagetables(&st->noise, &pt0)) ||
	    (ret = ms_share_run_phase(ctx, &st->pr, PH_FIRST, 0, n)) ||
	    (ret = ms_share_run_phase(ctx, &st->pr, PH_ATTACH, 0, n)) ||
	    (ret = ms_share_read_pagetables(&st->noise, &pt1)))
		return ret;
	if (note)
		ms_note(ctx, "msharefs at %s, interface %s, mshare_info %llu; model: %llu bytes "
			"of tables once, %llu per attacher", st->mnt, ms_if_names[st->iface],
			(unsigned long long)st->cfg.align,
			(unsigned long long)st->cfg.model.shared_bytes,
			(unsigned long long)st->cfg.model.private_bytes);
	check_growth(ctx, st, pt0, pt1, tolerance(st, ms_now_ns() - t0));
	return ms_share_run_phase(ctx, &st->pr, PH_CHECK, 0, n);
}

static int run_iteration(struct ms_ctx *ctx, struct mh_state *st, bool note)
{
	unsigned n = st->cfg.procs;
	int ret;

	if ((ret = spawn_all(ctx, st)) || (ret = measured_attach(ctx, st, note)))
		return ret;
	for (unsigned r = 0; r < st->cfg.rounds && !ms_should_stop(ctx); r++)
		if ((ret = ms_share_run_phase(ctx, &st->pr, PH_OPS, r, n)) ||
		    (ret = ms_share_run_phase(ctx, &st->pr, PH_VERIFY, r, n)))
			return ret;
	if ((ret = ms_share_run_phase(ctx, &st->pr, PH_EXPECT, 0, n)) ||
	    (ret = ms_share_run_phase(ctx, &st->pr, PH_VERIFY, 0, n)))
		return ret;
	/* Readers must not touch what goes: the smaller set is published before the phase. */
	__atomic_store_n(&st->ctl->nkeep, (uint32_t)(st->cfg.nsample / 2), __ATOMIC_SEQ_CST);
	if ((ret = ms_share_run_phase(ctx, &st->pr, PH_UNMAP, 0, n)) ||
	    (ret = ms_share_run_phase(ctx, &st->pr, PH_CREATOR_EXIT, 0, n)))
		return ret;
	/* The creator is gone: n - 1 workers answer from here on. */
	if ((ret = ms_share_run_phase(ctx, &st->pr, PH_AFTER_CREATOR, 0, n - 1)))
		return ret;
	return ms_share_run_phase(ctx, &st->pr, PH_END, 0, n - 1);
}

static int mshare_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct mh_state *st = ms_priv(ctx);
	uint64_t pt_pre = 0, pt_post = 0, t_pre;
	int ret;

	snprintf(st->path, sizeof(st->path), "%s/mmstorm-%d-%llu", st->mnt, (int)getpid(),
		 (unsigned long long)iter);
	ms_share_measure_noise(&st->noise);
	t_pre = ms_now_ns();
	if ((ret = ms_share_read_pagetables(&st->noise, &pt_pre)))
		return ms_error(ctx, -ret, "reading PageTables: %s", strerror(-ret));
	ret = run_iteration(ctx, st, !iter);
	reap_all(ctx, st, !ret);
	/* Deleting the file drops the region's mm and with it the shared tables. */
	if (unlink(st->path) && errno != ENOENT && !ret)
		ret = ms_error(ctx, errno, "unlink %s: %s", st->path, strerror(errno));
	if (ret)
		return ret;
	for (int i = 0; i < 40; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		if (!ms_share_read_pagetables(&st->noise, &pt_post) &&
		    pt_post <= pt_pre + tolerance(st, ms_now_ns() - t_pre))
			break;
		nanosleep(&ts, NULL);
	}
	ms_gauge(ctx, st->m_leak, (int64_t)pt_post - (int64_t)pt_pre);
	ms_check(ctx, pt_post <= pt_pre + tolerance(st, ms_now_ns() - t_pre),
		 "PageTables back to its baseline after every attacher ended and the region was "
		 "deleted", "PageTables %llu -> %llu bytes", (unsigned long long)pt_pre,
		 (unsigned long long)pt_post);
	return 0;
}

static int mshare_setup(struct ms_ctx *ctx)
{
	struct mh_state *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	ms_set_priv(ctx, st);
	cfg_load(ctx, &st->cfg);
	if ((ret = mshare_probe(ctx)) || (ret = mount_msharefs(ctx, st)) ||
	    (ret = read_align(ctx, st->mnt, &st->cfg.align)) || (ret = detect_iface(ctx, st)))
		return ret;
	st->start = MH_SLOT_ADDR / st->cfg.align * st->cfg.align;
	if (!st->start)
		st->start = st->cfg.align;
	if ((ret = cfg_model(ctx, &st->cfg, st->start)) || (ret = register_metrics(ctx, st)))
		return ret;
	st->noise.stat_refresh = !ms_write_file("/proc/sys/vm/stat_refresh", "1");
	if (ms_share_procs_init(&st->pr, st->cfg.procs, sizeof(*st->ctl), sizeof(st->ctl->w[0])))
		return ms_error(ctx, ENOMEM, "out of memory for %u processes", st->cfg.procs);
	st->ctl = (struct mh_ctl *)st->pr.ctl;
	return 0;
}

static void mshare_teardown(struct ms_ctx *ctx)
{
	struct mh_state *st = ms_priv(ctx);

	if (!st)
		return;
	if (st->ctl && st->pr.nspawned)
		reap_all(ctx, st, false);
	if (st->path[0])
		unlink(st->path);
	if (st->mounted_here && umount(st->mnt))
		ms_note(ctx, "umount %s: %s", st->mnt, strerror(errno));
	ms_share_procs_free(&st->pr);
	free(st);
	ms_set_priv(ctx, NULL);
}

const struct ms_workload ms_wl_mshare = {
	.name = "mshare",
	.summary = "N processes attach one msharefs region (mshare series, 2024 or 2025 ioctls): "
		   "page tables shared once vs the model, data through fork, UNMAP, creator "
		   "exit and kill -9; SKIPs on kernels without msharefs",
	.params = mshare_params,
	.probe = mshare_probe,
	.setup = mshare_setup,
	.run = mshare_run,
	.teardown = mshare_teardown,
};

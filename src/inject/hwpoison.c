/* hwpoison: MADV_HWPOISON / MADV_SOFT_OFFLINE on chosen pages of COW-shared memory, checked. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif

#define HW_MAX_PAGES 64
#define HW_UNPOISON INJ_DEBUGFS "/hwpoison/unpoison-pfn"
#define HW_ROLE 0x68777000ULL		/* "hwp": fill role, xor the seed */

const struct ms_injector ms_inj_hwpoison;

static const char *const hw_modes[] = { "soft", "hard", NULL };
enum { HW_SOFT, HW_HARD };

static const struct ms_param hwpoison_params[] = {
	{ "hw_mode", MS_P_ENUM, "soft", "", 1, 0, hw_modes,
	  "soft: MADV_SOFT_OFFLINE (data migrated, must stay intact); hard: MADV_HWPOISON "
	  "(the page is lost: touching it must raise SIGBUS)" },
	{ "hw_pages", MS_P_INT, "2", "pages", 1, HW_MAX_PAGES, NULL,
	  "pages poisoned per round, chosen from the case seed" },
	{ "hw_bytes", MS_P_SIZE, "2M", "bytes", 1 << 16, 1LL << 32, NULL,
	  "the region of each round, filled with a pattern and shared with a forked child" },
	{ "hw_thp", MS_P_BOOL, "0", "", 1, 0, NULL,
	  "ask for THP on the region (MADV_HUGEPAGE): poisoning splits it" },
	{ "hw_interval", MS_P_TIME, "300ms", "ns", 0, 3600LL * 1000000000, NULL,
	  "pause between rounds" },
	{ "hw_rounds", MS_P_INT, "3", "", 1, 100000, NULL, "rounds per case repeat" },
	{ "hw_unpoison", MS_P_BOOL, "1", "", 1, 0, NULL,
	  "give the pages back afterwards through " HW_UNPOISON " (when present)" },
	MS_INV_PARAMS,
	{ NULL }
};

struct hw_state {
	int32_t helper;
	uint64_t rounds, poisoned, refused, unpoisoned, sigbus_seen;
	struct inj_errstat errs;
	uint64_t pfn[HW_MAX_PAGES];	/* this round's pages */
	uint64_t page[HW_MAX_PAGES];
	uint32_t ok[HW_MAX_PAGES];	/* madvise succeeded on page[i] */
	unsigned n;
};

_Static_assert(sizeof(struct hw_state) <= MS_INJECT_STATE_BYTES, "hw_state too big");

static int hwpoison_probe(struct ms_ctx *ctx)
{
	if (access("/proc/sys/vm/memory_failure_recovery", F_OK))
		return ms_skip(ctx, "no /proc/sys/vm/memory_failure_recovery (kernel without "
			       "CONFIG_MEMORY_FAILURE)");
	return 0;
}

struct hw_round {
	struct ms_ctx *ctx;
	struct hw_state *st;
	char *region;
	size_t len, psz, npages;
	uint64_t seed;
};

static uint64_t fill_of(const struct hw_round *r, uint64_t page)
{
	return ms_stamp(r->seed ^ HW_ROLE, page, r->st->rounds);
}

static uint64_t pagemap_pfn(int fd, const void *addr, size_t psz)
{
	uint64_t e = 0;
	off_t off = (off_t)((uintptr_t)addr / psz * sizeof(e));

	if (fd < 0 || pread(fd, &e, sizeof(e), off) != sizeof(e) || !(e & (1ULL << 63)))
		return 0;
	return e & ((1ULL << 55) - 1);
}

/* Distinct pages from the seed. */
static void choose(struct hw_round *r)
{
	struct hw_state *st = r->st;
	uint64_t rng = r->seed ^ (st->rounds << 32);
	unsigned want = (unsigned)ms_param_i(r->ctx, "hw_pages");

	st->n = 0;
	while (st->n < want && st->n < r->npages) {
		uint64_t p = inj_rand(&rng) % r->npages;
		bool dup = false;

		for (unsigned i = 0; i < st->n; i++)
			dup |= st->page[i] == p;
		if (!dup) {
			st->ok[st->n] = 0;
			st->pfn[st->n] = 0;
			st->page[st->n++] = p;
		}
	}
}

/*
 * Poison page i from a child of the victim, the region COW-shared between them. A hard poison
 * kills the caller at once (SIGBUS, action required), so success is recorded before madvise
 * and taken back if it returns an error.
 */
static int poison_one(struct hw_round *r, unsigned i)
{
	struct hw_state *st = r->st;
	int advice = ms_param_i(r->ctx, "hw_mode") == HW_HARD ? MADV_HWPOISON : MADV_SOFT_OFFLINE;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	char *pg = r->region + st->page[i] * r->psz;

	st->pfn[i] = pagemap_pfn(fd, pg, r->psz);
	__atomic_store_n(&st->ok[i], 1, __ATOMIC_SEQ_CST);
	if (madvise(pg, r->psz, advice)) {
		__atomic_store_n(&st->ok[i], 0, __ATOMIC_SEQ_CST);
		inj_errstat_add(&st->errs, errno);
		return 1;
	}
	return 0;
}

static int poison(struct hw_round *r)
{
	struct hw_state *st = r->st;
	int status;
	pid_t pid;

	for (unsigned i = 0; i < st->n; i++) {
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0)
			_exit(poison_one(r, i));
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
			st->sigbus_seen++;
		if (!st->ok[i]) {
			st->refused++;
			continue;
		}
		st->poisoned++;
		ms_inject_count(r->ctx, &ms_inj_hwpoison, 1);
	}
	return 0;
}

static int poisoned_idx(const struct hw_state *st, uint64_t page)
{
	for (unsigned i = 0; i < st->n; i++)
		if (st->page[i] == page && st->ok[i])
			return (int)i;
	return -1;
}

/* A child touches the page: after a hard poison it must die of SIGBUS. */
static int probe_sigbus(struct hw_round *r, uint64_t page)
{
	volatile char *p = r->region + page * r->psz;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		(void)*p;
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS;
}

static void verify(struct hw_round *r)
{
	bool hard = ms_param_i(r->ctx, "hw_mode") == HW_HARD;
	uint64_t bad = 0, first = 0;
	size_t off = MS_PAGE_MATCH;

	for (uint64_t p = 0; p < r->npages; p++) {
		int i = poisoned_idx(r->st, p);
		size_t o;

		if (hard && i >= 0) {
			int s = probe_sigbus(r, p);

			ms_check(r->ctx, s == 1, "hwpoison: touching a hard-poisoned page raises "
				 "SIGBUS", "page %" PRIu64 " (pfn %#" PRIx64 "): %s", p,
				 r->st->pfn[i], s < 0 ? strerror(-s) : "no SIGBUS");
			r->st->sigbus_seen += s == 1;
			continue;
		}
		o = ms_page_check(r->region + p * r->psz, r->psz, fill_of(r, p), 0);
		if (o != MS_PAGE_MATCH && !bad++) {
			first = p;
			off = o;
		}
	}
	ms_check(r->ctx, !bad, hard ? "hwpoison: pages not poisoned keep their data" :
		 "hwpoison: soft-offlined and other pages keep their data",
		 "%" PRIu64 " of %zu pages differ; first: page %" PRIu64 ", byte %zu; rerun: %s",
		 bad, r->npages, first, off, ms_inject_rerun(r->ctx));
}

static void unpoison(struct hw_round *r)
{
	struct hw_state *st = r->st;
	char v[32];

	if (!ms_param_i(r->ctx, "hw_unpoison") || access(HW_UNPOISON, W_OK))
		return;
	for (unsigned i = 0; i < st->n; i++) {
		if (!st->ok[i] || !st->pfn[i])
			continue;
		snprintf(v, sizeof(v), "%#" PRIx64, st->pfn[i]);
		/* A pfn, not a knob: there is no old value to restore. */
		if (!ms_write_file(HW_UNPOISON, v))
			st->unpoisoned++;
	}
}

static int victim(struct ms_ctx *ctx, struct hw_state *st)
{
	struct hw_round r = { .ctx = ctx, .st = st, .psz = (size_t)getpagesize(),
			      .seed = ms_seed(ctx) };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	r.len = (size_t)ms_param_i(ctx, "hw_bytes") / r.psz * r.psz;
	r.npages = r.len / r.psz;
	r.region = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r.region == MAP_FAILED)
		return 2;
	if (ms_param_i(ctx, "hw_thp"))
		madvise(r.region, r.len, MADV_HUGEPAGE);
	for (uint64_t p = 0; p < r.npages; p++)
		ms_page_fill(r.region + p * r.psz, r.psz, fill_of(&r, p));
	choose(&r);
	if (poison(&r))
		return 3;
	verify(&r);
	munmap(r.region, r.len);
	return 0;
}

static int helper_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct hw_state *st = arg;
	int64_t rounds = ms_param_i(ctx, "hw_rounds");
	int status;
	pid_t pid;

	(void)idx;
	inj_helper_name("hwpoison");
	for (int64_t i = 0; i < rounds; i++) {
		if (!inj_sleep(ctx, (uint64_t)ms_param_i(ctx, "hw_interval")))
			break;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(victim(ctx, st));
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		/* Unpoison once nothing maps the pages any more. */
		unpoison(&(struct hw_round){ .ctx = ctx, .st = st });
		st->rounds++;
	}
	return 0;
}

static int hwpoison_arm(struct ms_ctx *ctx)
{
	struct hw_state *st = ms_inject_state(ctx, &ms_inj_hwpoison);
	pid_t pid = ms_spawn(ctx, helper_main, st, 0);

	if (pid < 0)
		return ms_error(ctx, -pid, "hwpoison: spawning the helper: %s", strerror(-pid));
	st->helper = pid;
	return 0;
}

static void hwpoison_disarm(struct ms_ctx *ctx)
{
	struct hw_state *st = ms_inject_state(ctx, &ms_inj_hwpoison);
	char errs[160];

	inj_kill_helper(ctx, st->helper);
	inj_errstat_text(&st->errs, errs, sizeof(errs));
	ms_note(ctx, "hwpoison (%s): %" PRIu64 " rounds, %" PRIu64 " pages poisoned, %" PRIu64
		" refused (%s), %" PRIu64 " SIGBUS seen, %" PRIu64 " unpoisoned",
		ms_param_s(ctx, "hw_mode"), st->rounds, st->poisoned, st->refused, errs,
		st->sigbus_seen, st->unpoisoned);
}

const struct ms_injector ms_inj_hwpoison = {
	.name = "hwpoison",
	.summary = "beside the workload, MADV_HWPOISON or MADV_SOFT_OFFLINE on seeded pages of a "
		   "COW-shared region; data and SIGBUS checked, pages unpoisoned after",
	.params = hwpoison_params,
	.probe = hwpoison_probe,
	.arm = hwpoison_arm,
	.disarm = hwpoison_disarm,
	.destructive = true,
};

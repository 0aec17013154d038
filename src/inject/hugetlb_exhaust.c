/* hugetlb-exhaust: mid-run, the hugetlb pool shrinks to what is in use and reserved. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/util.h"

#define HX_DIR "/sys/kernel/mm/hugepages/hugepages-%llukB/%s"

const struct ms_injector ms_inj_hugetlb_exhaust;

static const struct ms_param hugetlb_exhaust_params[] = {
	{ "hx_page_size", MS_P_SIZE, "2M", "bytes", 64 << 10, 16LL << 30, NULL,
	  "the hugetlb pool (page size) that runs dry" },
	{ "hx_delay", MS_P_TIME, "300ms", "ns", 0, 3600LL * 1000000000, NULL,
	  "time from arming (before the workload's setup) to the shrink" },
	{ "hx_leave", MS_P_INT, "0", "pages", 0, 1 << 30, NULL,
	  "free, unreserved pages left in the pool" },
	MS_INV_PARAMS,
	{ NULL }
};

struct hx_state {
	int32_t helper;
	uint32_t shrunk;
	uint64_t nr_before, nr_after, free_before, resv_before;
	int err;
	struct inj_pidset sigbus;	/* processes that died of SIGBUS once dry */
};

_Static_assert(sizeof(struct hx_state) <= MS_INJECT_STATE_BYTES, "hx_state too big");

static unsigned long long hx_kb(const struct ms_ctx *ctx)
{
	return (unsigned long long)ms_param_i(ctx, "hx_page_size") >> 10;
}

static int hx_read(const struct ms_ctx *ctx, const char *file, uint64_t *v)
{
	char path[160];

	snprintf(path, sizeof(path), HX_DIR, hx_kb(ctx), file);
	return ms_read_u64(path, v);
}

static int hugetlb_exhaust_probe(struct ms_ctx *ctx)
{
	char path[160];

	snprintf(path, sizeof(path), HX_DIR, hx_kb(ctx), "nr_hugepages");
	if (access(path, W_OK))
		return ms_skip(ctx, "%s: %s (no hugetlb pool of %llu kB)", path, strerror(errno),
			       hx_kb(ctx));
	return 0;
}

/*
 * The kernel never shrinks a pool below its pages in use plus reserved ones: asking for that
 * takes exactly the free, unreserved pages away. Surplus pages could refill it: overcommit 0.
 */
static int shrink(struct ms_ctx *ctx, struct hx_state *st)
{
	uint64_t leave = (uint64_t)ms_param_i(ctx, "hx_leave"), want;
	char path[160], v[32];
	int ret;

	if ((ret = hx_read(ctx, "nr_hugepages", &st->nr_before)) ||
	    (ret = hx_read(ctx, "free_hugepages", &st->free_before)) ||
	    (ret = hx_read(ctx, "resv_hugepages", &st->resv_before)))
		return ret;
	want = st->nr_before - (st->free_before - st->resv_before) + leave;
	if (want > st->nr_before)
		want = st->nr_before;
	snprintf(path, sizeof(path), HX_DIR, hx_kb(ctx), "nr_overcommit_hugepages");
	if ((ret = ms_knob_write(ctx, path, "0")))
		return ret;
	snprintf(path, sizeof(path), HX_DIR, hx_kb(ctx), "nr_hugepages");
	snprintf(v, sizeof(v), "%" PRIu64, want);
	/*
	 * Pages go while the write runs: a child that faults then dies of SIGBUS and may be
	 * reaped before the write returns. Its death is this injector's doing from the start.
	 */
	__atomic_store_n(&st->shrunk, 1, __ATOMIC_RELEASE);
	if ((ret = ms_knob_write(ctx, path, v))) {
		__atomic_store_n(&st->shrunk, 0, __ATOMIC_RELEASE);
		return ret;
	}
	if ((ret = hx_read(ctx, "nr_hugepages", &st->nr_after)))
		return ret;
	ms_inject_count(ctx, &ms_inj_hugetlb_exhaust,
			st->nr_before > st->nr_after ? st->nr_before - st->nr_after : 0);
	return 0;
}

static int helper_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct hx_state *st = arg;

	(void)idx;
	inj_helper_name("hugetlb");
	if (!inj_sleep(ctx, (uint64_t)ms_param_i(ctx, "hx_delay")))
		return 0;
	st->err = shrink(ctx, st);
	return 0;
}

static int hugetlb_exhaust_arm(struct ms_ctx *ctx)
{
	struct hx_state *st = ms_inject_state(ctx, &ms_inj_hugetlb_exhaust);
	pid_t pid = ms_spawn(ctx, helper_main, st, 0);

	if (pid < 0)
		return ms_error(ctx, -pid, "hugetlb-exhaust: spawning the helper: %s",
				strerror(-pid));
	st->helper = pid;
	return 0;
}

static void hugetlb_exhaust_disarm(struct ms_ctx *ctx)
{
	struct hx_state *st = ms_inject_state(ctx, &ms_inj_hugetlb_exhaust);

	inj_kill_helper(ctx, st->helper);
	if (st->err)
		ms_note(ctx, "hugetlb-exhaust: shrinking the %llu kB pool failed: %s", hx_kb(ctx),
			strerror(-st->err));
	else if (!st->shrunk)
		ms_note(ctx, "hugetlb-exhaust: the case ended before hx_delay: pool untouched");
	else
		ms_note(ctx, "hugetlb-exhaust: %llu kB pool %" PRIu64 " -> %" PRIu64 " pages "
			"(%" PRIu64 " free, %" PRIu64 " reserved before), restored at case end; %u "
			"processes died of SIGBUS after", hx_kb(ctx), st->nr_before, st->nr_after,
			st->free_before, st->resv_before, st->sigbus.n);
}

/* A hugetlb fault with no page to be had is a SIGBUS: expected once the pool is dry. */
static bool hugetlb_exhaust_killed(struct ms_ctx *ctx, pid_t pid, int status)
{
	struct hx_state *st = ms_inject_state(ctx, &ms_inj_hugetlb_exhaust);

	if (!__atomic_load_n(&st->shrunk, __ATOMIC_ACQUIRE) || !WIFSIGNALED(status) ||
	    WTERMSIG(status) != SIGBUS)
		return false;
	inj_pidset_add(&st->sigbus, pid);
	return true;
}

/* Failed calls once the pool is dry are the point of the exercise. */
static bool hugetlb_exhaust_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	struct hx_state *st = ms_inject_state(ctx, &ms_inj_hugetlb_exhaust);

	if (ret >= 0 || !__atomic_load_n(&st->shrunk, __ATOMIC_ACQUIRE) || err != ENOMEM)
		return false;
	inj_check_failure(ctx, "hugetlb-exhaust", point, point, ret, err);
	return true;
}

const struct ms_injector ms_inj_hugetlb_exhaust = {
	.name = "hugetlb-exhaust",
	.summary = "mid-run the hugetlb pool shrinks to its pages in use and reserved (no "
		   "overcommit): new huge pages fail, COW in children finds none",
	.params = hugetlb_exhaust_params,
	.probe = hugetlb_exhaust_probe,
	.arm = hugetlb_exhaust_arm,
	.disarm = hugetlb_exhaust_disarm,
	.after = hugetlb_exhaust_after,
	.killed = hugetlb_exhaust_killed,
};

/* fail-nth: the n-th fault site of one call fails, for n = 1, 2, ... until the call runs clean. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inject/inject_int.h"

#define NTH_FILE "/proc/thread-self/fail-nth"
#define NTH_MAX 4000

/* What became of the call that ran with fail-nth = n. */
enum { NTH_NONE, NTH_FAILED, NTH_ABSORBED, NTH_CLEAN, NTH_LOST };

const struct ms_injector ms_inj_fail_nth;

static const char *const nth_sites_names[] = { "all", "slab", "page", NULL };
enum { SITES_ALL, SITES_SLAB, SITES_PAGE };

static const struct ms_param fail_nth_params[] = {
	{ "nth_point", MS_P_STRING, "fork", "", 1, 0, NULL,
	  "the injection point whose call is swept (fork, mmap, mremap, madvise, ioctl, "
	  "io_uring_register; ioctl:UFFDIO_COPY names one request): the k-th call there runs "
	  "with fail-nth = nth_start + k - 1" },
	{ "nth_start", MS_P_INT, "1", "", 1, NTH_MAX, NULL, "first n of the sweep" },
	{ "nth_max", MS_P_INT, "2000", "", 1, NTH_MAX, NULL,
	  "last n of the sweep if the call never runs clean before it" },
	{ "nth_sites", MS_P_ENUM, "all", "", 1, 0, nth_sites_names,
	  "which allocations count as fault sites besides the atomic ones: all (slab and page "
	  "allocations that may sleep), slab, or page (order 0 included)" },
	{ "nth_verbose", MS_P_INT, "1", "", 0, 2, NULL,
	  "failslab/fail_page_alloc verbose: 1 logs each injected failure, 2 with a stack dump" },
	MS_INV_PARAMS,
	{ NULL }
};

struct nth_state {
	uint32_t next;			/* next n to hand out */
	uint32_t done;			/* the sweep is over */
	uint32_t clean_n;		/* n whose call ran without an injected fault */
	uint32_t capped;		/* nth_max reached without a clean call */
	uint64_t failed, absorbed;
	struct inj_errstat errs;
	struct inj_slot slots[INJ_SLOTS];
	uint8_t outcome[NTH_MAX + 1];
	uint8_t err[NTH_MAX + 1];
};

_Static_assert(sizeof(struct nth_state) <= MS_INJECT_STATE_BYTES, "nth_state too big");

static int fail_nth_probe(struct ms_ctx *ctx)
{
	int sites = (int)ms_param_i(ctx, "nth_sites");

	if (access("/proc/self/fail-nth", W_OK))
		return ms_skip(ctx, "/proc/self/fail-nth: %s (kernel without "
			       "CONFIG_FAULT_INJECTION)", strerror(errno));
	if (!inj_debugfs_mounted())
		return ms_skip(ctx, "debugfs is not mounted on " INJ_DEBUGFS ": fail-nth reaches "
			       "sleeping allocations only through failslab/fail_page_alloc's "
			       "ignore-gfp-wait there");
	if (sites != SITES_PAGE && access(INJ_DEBUGFS "/failslab/ignore-gfp-wait", W_OK))
		return ms_skip(ctx, INJ_DEBUGFS "/failslab: %s (kernel without CONFIG_FAILSLAB)",
			       strerror(errno));
	if (sites != SITES_SLAB && access(INJ_DEBUGFS "/fail_page_alloc/ignore-gfp-wait", W_OK))
		return ms_skip(ctx, INJ_DEBUGFS "/fail_page_alloc: %s (kernel without "
			       "CONFIG_FAIL_PAGE_ALLOC)", strerror(errno));
	return 0;
}

static int knob(struct ms_ctx *ctx, const char *path, const char *value)
{
	int ret = ms_knob_write(ctx, path, value);

	if (ret)
		return ms_error(ctx, -ret, "%s <- %s: %s", path, value, strerror(-ret));
	return 0;
}

/*
 * fail-nth counts every site should_fail() is asked about, but failslab and fail_page_alloc
 * skip sleeping allocations (and fail_page_alloc order 0) before asking: open those up.
 * probability stays 0, so nothing fails but the n-th site of the swept call.
 */
static int fail_nth_arm(struct ms_ctx *ctx)
{
	struct nth_state *st = ms_inject_state(ctx, &ms_inj_fail_nth);
	int sites = (int)ms_param_i(ctx, "nth_sites");
	char v[16];
	int ret;

	st->next = (uint32_t)ms_param_i(ctx, "nth_start");
	snprintf(v, sizeof(v), "%d", (int)ms_param_i(ctx, "nth_verbose"));
	if (sites != SITES_PAGE &&
	    ((ret = knob(ctx, INJ_DEBUGFS "/failslab/ignore-gfp-wait", "N")) ||
	     (ret = knob(ctx, INJ_DEBUGFS "/failslab/verbose", v))))
		return ret;
	if (sites != SITES_SLAB &&
	    ((ret = knob(ctx, INJ_DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N")) ||
	     (ret = knob(ctx, INJ_DEBUGFS "/fail_page_alloc/min-order", "0")) ||
	     (ret = knob(ctx, INJ_DEBUGFS "/fail_page_alloc/verbose", v))))
		return ret;
	/*
	 * Copies from user space are fault sites too (a 2M UFFDIO_COPY has 512), and
	 * fail_usercopy dumps a stack per failure by default: on a serial console that is most
	 * of a sweep's time.
	 */
	if (!access(INJ_DEBUGFS "/fail_usercopy/verbose", W_OK) &&
	    (ret = knob(ctx, INJ_DEBUGFS "/fail_usercopy/verbose", v)))
		return ret;
	return 0;
}

static void finish(struct ms_ctx *ctx, struct nth_state *st)
{
	__atomic_store_n(&st->done, 1, __ATOMIC_RELAXED);
	ms_inject_stop(ctx);
}

static void fail_nth_before(struct ms_ctx *ctx, const char *point)
{
	struct nth_state *st = ms_inject_state(ctx, &ms_inj_fail_nth);
	uint32_t n, max = (uint32_t)ms_param_i(ctx, "nth_max");
	struct inj_slot *slot;
	char buf[16];
	int fd, len;

	if (!inj_point_match(ms_param_s(ctx, "nth_point"), point) ||
	    __atomic_load_n(&st->done, __ATOMIC_RELAXED))
		return;
	n = __atomic_fetch_add(&st->next, 1, __ATOMIC_RELAXED);
	if (n > max) {
		__atomic_store_n(&st->capped, 1, __ATOMIC_RELAXED);
		finish(ctx, st);
		return;
	}
	slot = inj_slot(st->slots, true);
	if (!slot)
		return;
	/* Opened before and closed after the call: nothing between the write and it. */
	fd = open(NTH_FILE, O_RDWR | O_CLOEXEC);
	len = snprintf(buf, sizeof(buf), "%u", n);
	if (fd < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		if (fd >= 0)
			close(fd);
		st->outcome[n] = NTH_LOST;
		__atomic_store_n(&slot->tid, 0, __ATOMIC_RELEASE);
		return;
	}
	slot->fd = fd;
	slot->value = n;
}

/*
 * Read the counter back: 0 means the n-th site was reached and failed; reset it if not. The
 * read is a fault site itself (its copy to user space, with fail_usercopy): when it takes the
 * last count and fails, the call had left it above 0.
 */
static int nth_left(int fd)
{
	char buf[16];
	ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
	int left;

	if (r < 0 && (errno == EFAULT || errno == ENOMEM))
		return 1;
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	left = atoi(buf);
	/*
	 * The reset is a fault site too (its copy from user space): failing there means the
	 * counter ran out on it and is 0 now, which is all the reset is for.
	 */
	if (left && pwrite(fd, "0", 1, 0) != 1 && errno != EFAULT && errno != ENOMEM)
		return -1;
	return left;
}

static bool fail_nth_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	struct nth_state *st = ms_inject_state(ctx, &ms_inj_fail_nth);
	struct inj_slot *slot = inj_slot(st->slots, false);
	uint32_t n;
	char what[64];
	int left;

	if (!slot)
		return false;
	n = (uint32_t)slot->value;
	left = nth_left(slot->fd);
	close(slot->fd);
	__atomic_store_n(&slot->tid, 0, __ATOMIC_RELEASE);
	if (left < 0) {
		st->outcome[n] = NTH_LOST;
		return false;
	}
	if (left > 0) {
		/* Fewer than n fault sites: the call has no error path left to try. */
		st->outcome[n] = NTH_CLEAN;
		__atomic_store_n(&st->clean_n, n, __ATOMIC_RELAXED);
		finish(ctx, st);
		return false;
	}
	ms_inject_count(ctx, &ms_inj_fail_nth, 1);
	if (ret >= 0) {
		st->outcome[n] = NTH_ABSORBED;
		__atomic_fetch_add(&st->absorbed, 1, __ATOMIC_RELAXED);
		return false;
	}
	st->outcome[n] = NTH_FAILED;
	st->err[n] = (uint8_t)(err < 256 ? err : 255);
	__atomic_fetch_add(&st->failed, 1, __ATOMIC_RELAXED);
	inj_errstat_add(&st->errs, err);
	snprintf(what, sizeof(what), "%s with fail-nth=%u", point, n);
	inj_check_failure(ctx, "fail-nth", point, what, ret, err);
	return true;
}

/* An error the call does not document for a shortage is marked: KTAP makes it "not ok". */
static void outcome_name(const struct nth_state *st, const char *point, uint32_t n, char *buf,
			 size_t len)
{
	switch (st->outcome[n]) {
	case NTH_FAILED:
		snprintf(buf, len, "%s%s", strerrorname_np(st->err[n]) ?: "E?",
			 inj_errno_documented(point, st->err[n]) ? "" : "(undocumented)");
		break;
	case NTH_ABSORBED:
		snprintf(buf, len, "ok");
		break;
	case NTH_CLEAN:
		snprintf(buf, len, "clean");
		break;
	case NTH_LOST:
		snprintf(buf, len, "lost");
		break;
	default:
		snprintf(buf, len, "-");
	}
}

/* "1-12 ENOMEM, 13 ok, 14-37 ENOMEM, 38 clean": each n's sub-result, runs merged. */
static void sweep_text(const struct nth_state *st, const char *point, uint32_t first,
		       uint32_t last, char *buf, size_t len)
{
	char cur[48], next[48];
	size_t at = 0;
	uint32_t run = first;

	buf[0] = '\0';
	for (uint32_t n = first; n <= last && at < len; n++) {
		outcome_name(st, point, n, cur, sizeof(cur));
		if (n < last)
			outcome_name(st, point, n + 1, next, sizeof(next));
		if (n < last && !strcmp(cur, next))
			continue;
		if (run == n)
			at += (size_t)snprintf(buf + at, len - at, "%s%u %s", at ? ", " : "", n,
					       cur);
		else
			at += (size_t)snprintf(buf + at, len - at, "%s%u-%u %s", at ? ", " : "",
					       run, n, cur);
		run = n + 1;
	}
	if (at >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

static void fail_nth_disarm(struct ms_ctx *ctx)
{
	struct nth_state *st = ms_inject_state(ctx, &ms_inj_fail_nth);
	uint32_t first = (uint32_t)ms_param_i(ctx, "nth_start"), last = st->next - 1;
	const char *point = ms_param_s(ctx, "nth_point");
	char errs[160], sweep[MS_INJECT_DETAIL_MAX];

	/* The call that found nth_max passed ran without fail-nth: it is no sub-result. */
	if (last > (uint32_t)ms_param_i(ctx, "nth_max"))
		last = (uint32_t)ms_param_i(ctx, "nth_max");
	if (last > NTH_MAX)
		last = NTH_MAX;
	if (st->next == first) {
		ms_note(ctx, "fail-nth: the workload never reached injection point '%s': nothing "
			"was swept", point);
		return;
	}
	inj_errstat_text(&st->errs, errs, sizeof(errs));
	if (st->clean_n)
		ms_note(ctx, "fail-nth %s: swept n=%u..%u, complete: the call ran clean at n=%u; "
			"%" PRIu64 " injected failures (%s), %" PRIu64 " absorbed", point, first,
			st->clean_n, st->clean_n, st->failed, errs, st->absorbed);
	else
		ms_note(ctx, "fail-nth %s: swept n=%u..%u, INCOMPLETE (%s): %" PRIu64 " injected "
			"failures (%s), %" PRIu64 " absorbed", point, first, last, st->capped ?
			"nth_max reached" : "the case ended first: raise duration or iterations",
			st->failed, errs, st->absorbed);
	sweep_text(st, point, first, last, sweep, sizeof(sweep));
	ms_inject_detail(ctx, &ms_inj_fail_nth, sweep);
	ms_note(ctx, "fail-nth %s per n (all in inject.detail): %.190s%s", point, sweep,
		strlen(sweep) > 190 ? "..." : "");
}

const struct ms_injector ms_inj_fail_nth = {
	.name = "fail-nth",
	.summary = "sweeps /proc/thread-self/fail-nth over one call of the workload (fork, mmap, "
		   "...): n = 1, 2, ... until the call runs without an injected failure",
	.params = fail_nth_params,
	.probe = fail_nth_probe,
	.arm = fail_nth_arm,
	.disarm = fail_nth_disarm,
	.before = fail_nth_before,
	.after = fail_nth_after,
};

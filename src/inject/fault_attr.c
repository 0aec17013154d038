/* The debugfs fault attributes failslab, fail_page_alloc and fail_function have in common. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/util.h"

/* Shared by the case process, its workers and the runner: the first bytes of the state. */
struct fa_state {
	int64_t times0;			/* times written at arm; -1 = uncounted */
	uint32_t live;			/* probability written (point mode: at the first call) */
	uint64_t calls;			/* calls at the point */
	uint64_t failed;		/* ... that failed with a fault injected meanwhile */
	uint64_t absorbed;		/* ... that succeeded although a fault was injected */
	struct inj_errstat errs;
	struct inj_slot slots[INJ_SLOTS];
};

_Static_assert(sizeof(struct fa_state) <= MS_INJECT_STATE_BYTES, "fa_state too big");

static int64_t fa_i(const struct ms_ctx *ctx, const struct inj_fa *fa, const char *what)
{
	char name[64];

	snprintf(name, sizeof(name), "%s_%s", fa->prefix, what);
	return ms_param_i(ctx, name);
}

static const char *fa_s(const struct ms_ctx *ctx, const struct inj_fa *fa, const char *what)
{
	char name[64];

	snprintf(name, sizeof(name), "%s_%s", fa->prefix, what);
	return ms_param_s(ctx, name);
}

static void fa_path(const struct inj_fa *fa, const char *attr, char *buf, size_t len)
{
	snprintf(buf, len, INJ_DEBUGFS "/%s/%s", fa->dir, attr);
}

static bool task_filter(const struct ms_ctx *ctx, const struct inj_fa *fa)
{
	return !fa->task_filter_param || fa_i(ctx, fa, "task_filter");
}

static bool fa_point_any(const struct ms_ctx *ctx, const struct inj_fa *fa)
{
	return !strcmp(fa_s(ctx, fa, "point"), "any");
}

int inj_fa_probe(struct ms_ctx *ctx, const struct inj_fa *fa)
{
	const char *req = fa_s(ctx, fa, "require");
	char path[256];
	uint64_t s, e;
	int ret;

	fa_path(fa, "probability", path, sizeof(path));
	if (access(path, W_OK)) {
		int e = errno;

		if (!inj_debugfs_mounted())
			return ms_skip(ctx, "debugfs is not mounted on " INJ_DEBUGFS " (%s lives "
				       "there)", fa->dir);
		return ms_skip(ctx, "%s: %s (kernel without %s)", path, strerror(e),
			       fa->config);
	}
	if (access("/proc/self/make-it-fail", W_OK))
		return ms_skip(ctx, "/proc/self/make-it-fail: %s (CONFIG_FAULT_INJECTION off?)",
			       strerror(errno));
	if (!strcmp(req, "none"))
		return 0;
	fa_path(fa, "require-start", path, sizeof(path));
	if (access(path, W_OK))
		return ms_skip(ctx, "%s_require=%s needs %s: %s (CONFIG_FAULT_INJECTION_"
			       "STACKTRACE_FILTER off?)", fa->prefix, req, path, strerror(errno));
	ret = inj_kallsyms_range(req, &s, &e);
	if (ret == -ENOENT)
		return ms_skip(ctx, "%s_require=%s: no such text symbol in /proc/kallsyms "
			       "(inlined in this build?)", fa->prefix, req);
	if (ret == -EPERM)
		return ms_skip(ctx, "%s_require=%s: /proc/kallsyms hides addresses "
			       "(kernel.kptr_restrict)", fa->prefix, req);
	if (ret)
		return ms_error(ctx, -ret, "/proc/kallsyms: %s", strerror(-ret));
	return 0;
}

static int fa_write(struct ms_ctx *ctx, const struct inj_fa *fa, const char *attr,
		    const char *value)
{
	char path[256];
	int ret;

	fa_path(fa, attr, path, sizeof(path));
	ret = ms_knob_write(ctx, path, value);
	if (ret)
		return ms_error(ctx, -ret, "%s <- %s: %s", path, value, strerror(-ret));
	return 0;
}

static int fa_write_i(struct ms_ctx *ctx, const struct inj_fa *fa, const char *attr, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return fa_write(ctx, fa, attr, buf);
}

static int fa_require(struct ms_ctx *ctx, const struct inj_fa *fa)
{
	const char *req = fa_s(ctx, fa, "require");
	uint64_t s = 0, e = 0;
	char buf[32];
	int ret;

	if (!strcmp(req, "none"))
		return 0;
	if ((ret = inj_kallsyms_range(req, &s, &e)))
		return ms_error(ctx, -ret, "%s_require=%s: %s", fa->prefix, req, strerror(-ret));
	snprintf(buf, sizeof(buf), "%#" PRIx64, s);
	if ((ret = fa_write(ctx, fa, "require-start", buf)))
		return ret;
	snprintf(buf, sizeof(buf), "%#" PRIx64, e);
	return fa_write(ctx, fa, "require-end", buf);
}

int inj_fa_arm(struct ms_ctx *ctx, const struct inj_fa *fa)
{
	struct fa_state *st = ms_inject_state(ctx, fa->inj);
	int ret;

	st->times0 = fa_i(ctx, fa, "times");
	/* Only marked processes fail; probability goes last, once the rest is in place. */
	if ((ret = fa_write(ctx, fa, "task-filter", task_filter(ctx, fa) ? "Y" : "N")) ||
	    (ret = fa_write_i(ctx, fa, "interval", fa_i(ctx, fa, "interval"))) ||
	    (ret = fa_write_i(ctx, fa, "times", st->times0)) ||
	    (ret = fa_write_i(ctx, fa, "space", fa_i(ctx, fa, "space"))) ||
	    (ret = fa_write_i(ctx, fa, "verbose", fa_i(ctx, fa, "verbose"))) ||
	    (ret = fa_require(ctx, fa)))
		return ret;
	if (fa->gfp && (ret = fa_write(ctx, fa, "ignore-gfp-wait",
				       fa_i(ctx, fa, "ignore_gfp_wait") ? "Y" : "N")))
		return ret;
	if (fa->page && (ret = fa_write_i(ctx, fa, "min-order", fa_i(ctx, fa, "min_order"))))
		return ret;
	/*
	 * With a point named, failures start at its first call, so that the workload's setup (its
	 * own forks, when no task filter spares them) runs clean.
	 */
	if ((ret = fa_write_i(ctx, fa, "probability", fa_point_any(ctx, fa) ?
			      fa_i(ctx, fa, "probability") : 0)))
		return ret;
	st->live = fa_point_any(ctx, fa);
	/* The case process's own forks (workers) are eligible only when every point is. */
	if (fa_point_any(ctx, fa) && (ret = inj_make_it_fail(1)))
		return ms_error(ctx, -ret, "/proc/self/make-it-fail: %s", strerror(-ret));
	return 0;
}

static int64_t fa_times(const struct inj_fa *fa)
{
	char path[256];
	int64_t v;

	fa_path(fa, "times", path, sizeof(path));
	return inj_read_s64(path, &v) ? -1 : v;
}

static void go_live(struct ms_ctx *ctx, const struct inj_fa *fa, struct fa_state *st)
{
	uint32_t no = 0;
	char path[256], v[32];

	if (__atomic_load_n(&st->live, __ATOMIC_ACQUIRE) ||
	    !__atomic_compare_exchange_n(&st->live, &no, 1, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	fa_path(fa, "probability", path, sizeof(path));
	snprintf(v, sizeof(v), "%" PRId64, fa_i(ctx, fa, "probability"));
	ms_knob_write(ctx, path, v);
}

void inj_fa_before(struct ms_ctx *ctx, const struct inj_fa *fa, const char *point)
{
	struct fa_state *st = ms_inject_state(ctx, fa->inj);
	const char *want = fa_s(ctx, fa, "point");
	struct inj_slot *slot;

	if (strcmp(want, "any") && !inj_point_match(want, point))
		return;
	go_live(ctx, fa, st);
	slot = inj_slot(st->slots, true);
	if (!slot)
		return;
	/* From now on this process (and what it forks) may fail: its earlier setup could not. */
	if (strcmp(want, "any"))
		inj_make_it_fail(1);
	slot->value = fa_times(fa);
}

bool inj_fa_after(struct ms_ctx *ctx, const struct inj_fa *fa, const char *point, long ret,
		  int err)
{
	struct fa_state *st = ms_inject_state(ctx, fa->inj);
	struct inj_slot *slot = inj_slot(st->slots, false);
	int64_t before, now;
	char what[96];
	bool hit;

	if (!slot)
		return false;
	before = slot->value;
	__atomic_store_n(&slot->tid, 0, __ATOMIC_RELEASE);
	now = fa_times(fa);
	/* times counts down per injected fault; another worker's fault may land here too. */
	hit = before > 0 && now >= 0 && now < before;
	__atomic_fetch_add(&st->calls, 1, __ATOMIC_RELAXED);
	if (!hit)
		return false;
	if (ret >= 0) {
		__atomic_fetch_add(&st->absorbed, 1, __ATOMIC_RELAXED);
		return false;
	}
	__atomic_fetch_add(&st->failed, 1, __ATOMIC_RELAXED);
	inj_errstat_add(&st->errs, err);
	snprintf(what, sizeof(what), "%s with %" PRId64 " %s fault(s) injected", point,
		 before - now, fa->dir);
	inj_check_failure(ctx, fa->inj->name, point, what, ret, err);
	return true;
}

void inj_fa_disarm(struct ms_ctx *ctx, const struct inj_fa *fa)
{
	struct fa_state *st = ms_inject_state(ctx, fa->inj);
	int64_t now;
	char errs[160];

	inj_make_it_fail(0);
	now = fa_times(fa);
	inj_errstat_text(&st->errs, errs, sizeof(errs));
	if (st->times0 < 0 || now < 0) {
		ms_note(ctx, "%s: faults not counted (%s_times=-1); at %s points: %" PRIu64
			" calls, %" PRIu64 " failed (%s), %" PRIu64 " absorbed", fa->dir,
			fa->prefix, fa_s(ctx, fa, "point"), st->calls, st->failed, errs,
			st->absorbed);
		return;
	}
	ms_inject_count(ctx, fa->inj, (uint64_t)(st->times0 - now));
	ms_note(ctx, "%s: %" PRId64 " faults injected (probability %" PRId64 "%%, interval %"
		PRId64 ", require %s); at %s points: %" PRIu64 " calls, %" PRIu64 " failed by "
		"injection (%s), %" PRIu64 " absorbed", fa->dir, st->times0 - now,
		fa_i(ctx, fa, "probability"), fa_i(ctx, fa, "interval"), fa_s(ctx, fa, "require"),
		fa_s(ctx, fa, "point"), st->calls, st->failed, errs, st->absorbed);
}

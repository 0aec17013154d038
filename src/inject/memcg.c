/* memcg: the case runs in its own cgroup v2 with memory.max/high/swap.max from the suite. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/journal.h"
#include "mmstorm/util.h"

const struct ms_injector ms_inj_memcg;

static const struct ms_param memcg_params[] = {
	{ "memcg_max", MS_P_SIZE, "0", "bytes", 0, 1LL << 50, NULL,
	  "memory.max of the case's cgroup: past it the OOM killer acts (0 = max, no limit)" },
	{ "memcg_high", MS_P_SIZE, "0", "bytes", 0, 1LL << 50, NULL,
	  "memory.high: past it the case is throttled and reclaimed (0 = max)" },
	{ "memcg_swap_max", MS_P_STRING, "keep", "", 1, 0, NULL,
	  "memory.swap.max: keep (not written), max, or a size such as 0 or 64M" },
	{ "memcg_oom_group", MS_P_BOOL, "0", "", 1, 0, NULL,
	  "memory.oom.group: an OOM kill takes every process of the case (the case process too)" },
	MS_INV_PARAMS,
	{ NULL }
};

struct memcg_state {
	char mnt[PATH_MAX];
	char path[PATH_MAX];		/* the case's cgroup, once made */
	struct inj_pidset killed;	/* processes whose death an OOM kill explained */
	uint64_t counted;		/* OOM kills already added to the fault count */
};

_Static_assert(sizeof(struct memcg_state) <= MS_INJECT_STATE_BYTES, "memcg_state too big");

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
		if ((p == list || p[-1] == ' ') && (!p[n] || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

static int read_list(const char *mnt, const char *file, char *buf, size_t len)
{
	char path[PATH_MAX + 64];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", mnt, file);
	n = ms_read_file(path, buf, len);
	return n < 0 ? (int)n : 0;
}

static int memcg_probe(struct ms_ctx *ctx)
{
	char mnt[PATH_MAX], ctl[512] = "", sub[512] = "";
	const char *swap = ms_param_s(ctx, "memcg_swap_max");
	int64_t dummy;

	if (strcmp(swap, "keep") && strcmp(swap, "max") && ms_parse_size(swap, &dummy))
		return ms_error(ctx, EINVAL, "memcg_swap_max=%s: expected keep, max or a size",
				swap);
	if (ms_cgroup2_mount(mnt, sizeof(mnt)))
		return ms_skip(ctx, "no cgroup v2 hierarchy mounted");
	if (read_list(mnt, "cgroup.controllers", ctl, sizeof(ctl)) || !word_in(ctl, "memory"))
		return ms_skip(ctx, "the cgroup v2 hierarchy at %s has no memory controller "
			       "(controllers: %s); it is bound to a v1 hierarchy here", mnt,
			       ctl[0] ? strtok(ctl, "\n") : "none");
	read_list(mnt, "cgroup.subtree_control", sub, sizeof(sub));
	/* Turning a controller on for a whole machine is not ours to do; in a guest it is. */
	if (!word_in(sub, "memory") && !ms_in_guest(ctx))
		return ms_skip(ctx, "memory is not enabled in %s/cgroup.subtree_control, and "
			       "mmstorm changes that only inside a VM guest", mnt);
	return 0;
}

static int limit(struct ms_ctx *ctx, const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX + 64];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	ret = ms_knob_write(ctx, path, value);
	if (ret)
		return ms_error(ctx, -ret, "%s <- %s: %s", path, value, strerror(-ret));
	return 0;
}

static int limit_size(struct ms_ctx *ctx, const char *dir, const char *file, int64_t bytes)
{
	char v[32];

	if (!bytes)
		return 0;
	snprintf(v, sizeof(v), "%" PRId64, bytes);
	return limit(ctx, dir, file, v);
}

static int set_limits(struct ms_ctx *ctx, const char *dir)
{
	const char *swap = ms_param_s(ctx, "memcg_swap_max");
	char path[PATH_MAX + 64], v[32];
	int64_t bytes;
	int ret;

	if ((ret = limit_size(ctx, dir, "memory.high", ms_param_i(ctx, "memcg_high"))) ||
	    (ret = limit_size(ctx, dir, "memory.max", ms_param_i(ctx, "memcg_max"))))
		return ret;
	if (ms_param_i(ctx, "memcg_oom_group") && (ret = limit(ctx, dir, "memory.oom.group", "1")))
		return ret;
	if (!strcmp(swap, "keep"))
		return 0;
	snprintf(path, sizeof(path), "%s/memory.swap.max", dir);
	if (access(path, F_OK)) {
		ms_note(ctx, "memcg_swap_max=%s not applied: no memory.swap.max (kernel without "
			"swap accounting)", swap);
		return 0;
	}
	if (strcmp(swap, "max") && !ms_parse_size(swap, &bytes)) {
		snprintf(v, sizeof(v), "%" PRId64, bytes);
		swap = v;
	}
	return limit(ctx, dir, "memory.swap.max", swap);
}

static int memcg_arm(struct ms_ctx *ctx)
{
	struct memcg_state *st = ms_inject_state(ctx, &ms_inj_memcg);
	char sub[512] = "", path[PATH_MAX + 64], pid[32];
	int ret;

	if ((ret = ms_cgroup2_mount(st->mnt, sizeof(st->mnt))))
		return ms_error(ctx, -ret, "cgroup v2 mount: %s", strerror(-ret));
	read_list(st->mnt, "cgroup.subtree_control", sub, sizeof(sub));
	if (!word_in(sub, "memory")) {
		/*
		 * Guest only (see probe). Not journaled: writing the old list back cannot turn a
		 * controller off, and the guest is thrown away after the run.
		 */
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", st->mnt);
		if ((ret = ms_write_file(path, "+memory")))
			return ms_error(ctx, -ret, "%s <- +memory: %s", path, strerror(-ret));
		ms_note(ctx, "memcg: enabled the memory controller in %s", path);
	}
	snprintf(path, sizeof(path), "%s/mmstorm-case-%d", st->mnt, (int)getpid());
	if ((ret = ms_inject_mkdir(ctx, path, 0755)))
		return ms_error(ctx, -ret, "mkdir %s: %s", path, strerror(-ret));
	ms_strlcpy(st->path, path, sizeof(st->path));
	if ((ret = set_limits(ctx, st->path)))
		return ret;
	/* Workers forked from now on start in the cgroup; the journal removes it when empty. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", st->path);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if ((ret = ms_write_file(path, pid)))
		return ms_error(ctx, -ret, "%s <- %s: %s", path, pid, strerror(-ret));
	return 0;
}

static uint64_t events_key(const char *dir, const char *file, const char *key)
{
	char path[PATH_MAX + 64], buf[1024], *p;
	size_t n = strlen(key);

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (ms_read_file(path, buf, sizeof(buf)) < 0)
		return 0;
	for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtoull(p + n + 1, NULL, 10);
	return 0;
}

static uint64_t file_u64(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];
	uint64_t v = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	ms_read_u64(path, &v);
	return v;
}

/* The count may be taken by disarm or, when the case process itself was killed, the runner. */
static uint64_t count_kills(struct ms_ctx *ctx, struct memcg_state *st)
{
	uint64_t kills = events_key(st->path, "memory.events", "oom_kill");
	uint64_t seen = __atomic_load_n(&st->counted, __ATOMIC_ACQUIRE);

	while (kills > seen && !__atomic_compare_exchange_n(&st->counted, &seen, kills, false,
							   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	if (kills > seen)
		ms_inject_count(ctx, &ms_inj_memcg, kills - seen);
	return kills;
}

static void memcg_disarm(struct ms_ctx *ctx)
{
	struct memcg_state *st = ms_inject_state(ctx, &ms_inj_memcg);
	uint64_t kills;

	if (!st->path[0])
		return;
	kills = count_kills(ctx, st);
	ms_note(ctx, "memcg %s: %" PRIu64 " OOM kills (%u deaths the workload saw), %" PRIu64
		" OOM events, memory.max hit %" PRIu64 "x, memory.high hit %" PRIu64 "x; peak %"
		PRIu64 " bytes", st->path, kills, st->killed.n,
		events_key(st->path, "memory.events", "oom"),
		events_key(st->path, "memory.events", "max"),
		events_key(st->path, "memory.events", "high"), file_u64(st->path, "memory.peak"));
}

/*
 * A call that failed with ENOMEM once the cgroup has hit memory.max is the limit's doing (a
 * charge that reclaim and the OOM killer could not satisfy, e.g. because the charging task
 * was the one killed): an expected result, judged like any injected failure.
 */
static bool memcg_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	struct memcg_state *st = ms_inject_state(ctx, &ms_inj_memcg);
	char what[96];

	if (ret >= 0 || err != ENOMEM || !st->path[0] ||
	    !events_key(st->path, "memory.events", "max"))
		return false;
	ms_inject_count(ctx, &ms_inj_memcg, 1);
	snprintf(what, sizeof(what), "%s at memory.max", point);
	inj_check_failure(ctx, "memcg", point, what, ret, err);
	return true;
}

/* An OOM kill in the case's cgroup is an expected result, whichever process it took. */
static bool memcg_killed(struct ms_ctx *ctx, pid_t pid, int status)
{
	struct memcg_state *st = ms_inject_state(ctx, &ms_inj_memcg);

	if (!st->path[0] || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL ||
	    !count_kills(ctx, st))
		return false;
	inj_pidset_add(&st->killed, pid);
	return true;
}

const struct ms_injector ms_inj_memcg = {
	.name = "memcg",
	.summary = "the case runs in its own cgroup v2 with memory.max, memory.high, "
		   "memory.swap.max from the suite; OOM kills there are expected results",
	.params = memcg_params,
	.probe = memcg_probe,
	.arm = memcg_arm,
	.disarm = memcg_disarm,
	.after = memcg_after,
	.killed = memcg_killed,
};

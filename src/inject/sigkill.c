/* sigkill: SIGKILL a process of the case at a chosen injection point or at seeded random times. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/util.h"

#define SK_MAX_PIDS 512

const struct ms_injector ms_inj_sigkill;

static const char *const sk_targets[] = { "worker", "child", "case", NULL };
enum { T_WORKER, T_CHILD, T_CASE };

static const struct ms_param sigkill_params[] = {
	{ "sigkill_point", MS_P_STRING, "random", "", 1, 0, NULL,
	  "random: a killer process strikes at seeded random times; or an injection point "
	  "(fork, mremap, pinned, ...): the kill follows the call there" },
	{ "sigkill_target", MS_P_ENUM, "worker", "", 1, 0, sk_targets,
	  "worker: the process at the point (random: a process the case process forked); "
	  "child: the child the call just forked (random: a process a worker forked); case: "
	  "the whole case, case process included" },
	{ "sigkill_nth", MS_P_INT, "1", "", 1, 1000000000, NULL,
	  "point mode: kill after every Nth call at the point" },
	{ "sigkill_count", MS_P_INT, "1", "", 1, SK_MAX_PIDS, NULL, "kills at most" },
	{ "sigkill_delay", MS_P_TIME, "500ms", "ns", 1000000, 3600LL * 1000000000, NULL,
	  "random mode: mean time between kills (uniform in 0..2x, from the case seed)" },
	MS_INV_PARAMS,
	{ NULL }
};

struct sk_state {
	uint64_t seen;			/* calls at the point */
	uint32_t kills;
	uint32_t case_killed;
	int32_t killer;			/* random mode's killer process */
	int32_t pids[SK_MAX_PIDS];
};

_Static_assert(sizeof(struct sk_state) <= MS_INJECT_STATE_BYTES, "sk_state too big");

static bool random_mode(const struct ms_ctx *ctx)
{
	return !strcmp(ms_param_s(ctx, "sigkill_point"), "random");
}

static int sigkill_probe(struct ms_ctx *ctx)
{
	if (!random_mode(ctx) && ms_param_i(ctx, "sigkill_target") == T_CHILD &&
	    strcmp(ms_param_s(ctx, "sigkill_point"), "fork"))
		return ms_error(ctx, EINVAL, "sigkill_target=child needs sigkill_point=fork or "
				"random");
	return 0;
}

/* Claim a kill; false when sigkill_count is used up. The pid is recorded before it dies. */
static bool claim(struct ms_ctx *ctx, struct sk_state *st, pid_t pid)
{
	uint32_t k = __atomic_fetch_add(&st->kills, 1, __ATOMIC_RELAXED);

	if (k >= (uint32_t)ms_param_i(ctx, "sigkill_count")) {
		__atomic_fetch_sub(&st->kills, 1, __ATOMIC_RELAXED);
		return false;
	}
	__atomic_store_n(&st->pids[k], pid, __ATOMIC_RELEASE);
	ms_inject_count(ctx, &ms_inj_sigkill, 1);
	return true;
}

static void kill_case(struct ms_ctx *ctx, struct sk_state *st)
{
	if (!claim(ctx, st, 0))
		return;
	__atomic_store_n(&st->case_killed, 1, __ATOMIC_RELEASE);
	kill(0, SIGKILL);	/* the case's process group, this process included */
}

/* ---- random mode: the killer ---- */

struct proc_ent {
	pid_t pid, ppid, pgrp;
	char comm[32];
};

static int read_stat(pid_t pid, struct proc_ent *e)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (ms_read_file(path, buf, sizeof(buf)) < 0)
		return -ENOENT;
	/* "pid (comm) S ppid pgrp ...": comm may hold anything, the last ')' ends it. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d %d", &e->ppid, &e->pgrp) != 2)
		return -EINVAL;
	*p = '\0';
	snprintf(e->comm, sizeof(e->comm), "%s", strchr(buf, '(') ? strchr(buf, '(') + 1 : "");
	e->pid = pid;
	return 0;
}

/* Injectors' helpers and the load they run are not the workload's processes. */
static bool is_helper(const char *comm)
{
	return !strncmp(comm, INJ_HELPER_COMM, strlen(INJ_HELPER_COMM)) ||
	       !strncmp(comm, "stress-ng", 9);
}

/* A random process of the case that is not the case process or the killer. */
static pid_t pick_victim(pid_t case_pid, int target, uint64_t *rng)
{
	pid_t cand[256], me = getpid();
	struct proc_ent e;
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < MS_ARRAY_SIZE(cand)) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (read_stat((pid_t)atoi(de->d_name), &e) || e.pgrp != case_pid ||
		    e.pid == case_pid || e.pid == me || is_helper(e.comm))
			continue;
		if ((target == T_WORKER) == (e.ppid == case_pid))
			cand[n++] = e.pid;
	}
	closedir(d);
	return n ? cand[inj_rand(rng) % n] : 0;
}

static int killer_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct sk_state *st = arg;
	uint64_t rng = ms_seed(ctx) ^ 0x6b696c6cULL;
	uint64_t mean = (uint64_t)ms_param_i(ctx, "sigkill_delay");
	int target = (int)ms_param_i(ctx, "sigkill_target");
	pid_t case_pid = getppid(), victim;

	(void)idx;
	inj_helper_name("sigkill");
	while (__atomic_load_n(&st->kills, __ATOMIC_RELAXED) <
	       (uint32_t)ms_param_i(ctx, "sigkill_count")) {
		if (!inj_sleep(ctx, inj_rand(&rng) % (2 * mean + 1)))
			break;
		if (target == T_CASE) {
			kill_case(ctx, st);
			break;
		}
		victim = pick_victim(case_pid, target, &rng);
		if (victim > 0 && claim(ctx, st, victim))
			kill(victim, SIGKILL);
	}
	return 0;
}

static int sigkill_arm(struct ms_ctx *ctx)
{
	struct sk_state *st = ms_inject_state(ctx, &ms_inj_sigkill);
	pid_t pid;

	if (!random_mode(ctx))
		return 0;
	pid = ms_spawn(ctx, killer_main, st, 0);
	if (pid < 0)
		return ms_error(ctx, -pid, "sigkill: spawning the killer: %s", strerror(-pid));
	st->killer = pid;
	return 0;
}

static void sigkill_disarm(struct ms_ctx *ctx)
{
	struct sk_state *st = ms_inject_state(ctx, &ms_inj_sigkill);

	inj_kill_helper(ctx, st->killer);
	ms_note(ctx, "sigkill: %u process(es) killed (target %s, %s)", st->kills,
		ms_param_s(ctx, "sigkill_target"), ms_param_s(ctx, "sigkill_point"));
}

/* ---- point mode ---- */

static bool sigkill_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	struct sk_state *st = ms_inject_state(ctx, &ms_inj_sigkill);
	int target = (int)ms_param_i(ctx, "sigkill_target");
	uint64_t k;

	(void)err;
	if (random_mode(ctx) || !inj_point_match(ms_param_s(ctx, "sigkill_point"), point))
		return false;
	k = __atomic_add_fetch(&st->seen, 1, __ATOMIC_RELAXED);
	if (k % (uint64_t)ms_param_i(ctx, "sigkill_nth"))
		return false;
	if (target == T_CASE) {
		kill_case(ctx, st);
	} else if (target == T_CHILD) {
		if (ret > 0 && claim(ctx, st, (pid_t)ret))
			kill((pid_t)ret, SIGKILL);
	} else if (claim(ctx, st, getpid())) {
		kill(getpid(), SIGKILL);
	}
	return false;
}

static bool sigkill_killed(struct ms_ctx *ctx, pid_t pid, int status)
{
	struct sk_state *st = ms_inject_state(ctx, &ms_inj_sigkill);
	uint32_t n = __atomic_load_n(&st->kills, __ATOMIC_ACQUIRE);

	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return false;
	if (__atomic_load_n(&st->case_killed, __ATOMIC_ACQUIRE))
		return true;
	for (uint32_t i = 0; i < n && i < SK_MAX_PIDS; i++)
		if (__atomic_load_n(&st->pids[i], __ATOMIC_ACQUIRE) == pid)
			return true;
	return false;
}

const struct ms_injector ms_inj_sigkill = {
	.name = "sigkill",
	.summary = "SIGKILL a worker, a freshly forked child or the whole case, right after a "
		   "chosen injection point or at seeded random times",
	.params = sigkill_params,
	.probe = sigkill_probe,
	.arm = sigkill_arm,
	.disarm = sigkill_disarm,
	.after = sigkill_after,
	.killed = sigkill_killed,
};

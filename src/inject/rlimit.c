/* rlimit: the case's processes run under RLIMIT_AS, _DATA, _MEMLOCK, _NPROC or _STACK. */
#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inject/inject_int.h"

const struct ms_injector ms_inj_rlimit;

static const char *const rl_names[] = { "as", "data", "memlock", "nproc", "stack", NULL };
static const char *const rl_upper[] = { "AS", "DATA", "MEMLOCK", "NPROC", "STACK" };
static const int rl_res[] = { RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK, RLIMIT_NPROC,
			      RLIMIT_STACK };
enum { RL_AS, RL_DATA, RL_MEMLOCK, RL_NPROC, RL_STACK };

static const struct ms_param rlimit_params[] = {
	{ "rl_resource", MS_P_ENUM, "as", "", 1, 0, rl_names,
	  "the limit: as (address space), data, memlock (mlock, pins, io_uring buffers), "
	  "nproc (processes of the user), stack" },
	{ "rl_limit", MS_P_SIZE, "1G", "bytes", 0, 1LL << 50, NULL,
	  "soft limit, in bytes (nproc: a count)" },
	{ "rl_drop_caps", MS_P_BOOL, "1", "", 1, 0, NULL,
	  "memlock: drop CAP_IPC_LOCK from the case's processes, which root needs for the "
	  "limit to apply at all" },
	MS_INV_PARAMS,
	{ NULL }
};

struct rl_state {
	uint64_t old_cur, old_max;
	uint64_t calls, failed;
	struct inj_errstat errs;
};

_Static_assert(sizeof(struct rl_state) <= MS_INJECT_STATE_BYTES, "rl_state too big");

static int rlimit_probe(struct ms_ctx *ctx)
{
	/* copy_process() checks the real uid: the root user is never held to RLIMIT_NPROC. */
	if (ms_param_i(ctx, "rl_resource") == RL_NPROC && getuid() == 0)
		return ms_skip(ctx, "rl_resource=nproc: uid 0 is exempt from RLIMIT_NPROC, and "
			       "mmstorm runs as root");
	return 0;
}

/* Effective and permitted, for this process and all it forks from now on. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

static int rlimit_arm(struct ms_ctx *ctx)
{
	struct rl_state *st = ms_inject_state(ctx, &ms_inj_rlimit);
	int which = (int)ms_param_i(ctx, "rl_resource"), ret;
	rlim_t want = (rlim_t)ms_param_i(ctx, "rl_limit");
	struct rlimit rl;

	if (getrlimit(rl_res[which], &rl))
		return ms_error(ctx, errno, "getrlimit(%s): %s", rl_names[which], strerror(errno));
	st->old_cur = rl.rlim_cur;
	st->old_max = rl.rlim_max;
	/* The soft limit only: a process limit, gone with the case, no knob to journal. */
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(rl_res[which], &rl))
		return ms_error(ctx, errno, "setrlimit(%s, %llu): %s", rl_names[which],
				(unsigned long long)want, strerror(errno));
	if (which == RL_MEMLOCK && ms_param_i(ctx, "rl_drop_caps") && (ret = drop_ipc_lock()))
		return ms_error(ctx, -ret, "dropping CAP_IPC_LOCK: %s", strerror(-ret));
	return 0;
}

/* A call that fails while the limit holds is put down to it: ENOMEM, EAGAIN, EPERM. */
static bool rlimit_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	struct rl_state *st = ms_inject_state(ctx, &ms_inj_rlimit);

	__atomic_fetch_add(&st->calls, 1, __ATOMIC_RELAXED);
	if (ret >= 0 || (err != ENOMEM && err != EAGAIN && err != EPERM))
		return false;
	__atomic_fetch_add(&st->failed, 1, __ATOMIC_RELAXED);
	inj_errstat_add(&st->errs, err);
	ms_inject_count(ctx, &ms_inj_rlimit, 1);
	inj_check_failure(ctx, "rlimit", point, point, ret, err);
	return true;
}

static void rlimit_disarm(struct ms_ctx *ctx)
{
	struct rl_state *st = ms_inject_state(ctx, &ms_inj_rlimit);
	char errs[160];

	inj_errstat_text(&st->errs, errs, sizeof(errs));
	ms_note(ctx, "rlimit: RLIMIT_%s soft limit %" PRId64 " (was %s%" PRIu64 "); %" PRIu64
		" calls at injection points, %" PRIu64 " failed under it (%s)",
		rl_upper[ms_param_i(ctx, "rl_resource")], ms_param_i(ctx, "rl_limit"),
		st->old_cur == RLIM_INFINITY ? "unlimited, " : "", st->old_cur, st->calls,
		st->failed, errs);
}

const struct ms_injector ms_inj_rlimit = {
	.name = "rlimit",
	.summary = "the case's processes run under a lowered RLIMIT_AS, _DATA, _MEMLOCK "
		   "(CAP_IPC_LOCK dropped), _NPROC or _STACK",
	.params = rlimit_params,
	.probe = rlimit_probe,
	.arm = rlimit_arm,
	.disarm = rlimit_disarm,
	.after = rlimit_after,
};

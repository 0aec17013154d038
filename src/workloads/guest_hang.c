/* Test-only workload: halts the whole guest (CPUs stopped, QEMU alive), to test hang handling. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/reboot.h>

#include "mmstorm/workload.h"

static const struct ms_param guest_hang_params[] = {
	{ "delay", MS_P_TIME, "0", "ns", 0, 60000000000LL, NULL,
	  "time to wait before halting" },
	{ NULL }
};

static int guest_hang_probe(struct ms_ctx *ctx)
{
	if (!ms_in_guest(ctx))
		return ms_skip(ctx, "guest-hang halts the machine: VM guests only");
	return 0;
}

/*
 * The kernel's halt stops every CPU without powering off: QEMU (even with -no-reboot) stays
 * up and silent, which is what a deadlocked guest looks like from the host.
 */
static int guest_hang_run(struct ms_ctx *ctx, uint64_t iter)
{
	int64_t delay_ns = ms_param_i(ctx, "delay");
	struct timespec ts = { delay_ns / 1000000000, delay_ns % 1000000000 };

	(void)iter;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	sync();
	if (reboot(RB_HALT_SYSTEM) < 0)
		return ms_error(ctx, errno, "reboot(RB_HALT_SYSTEM): %s", strerror(errno));
	return ms_error(ctx, EIO, "the guest did not halt");
}

const struct ms_workload ms_wl_guest_hang = {
	.name = "guest-hang",
	.summary = "halts the guest's CPUs without powering off (tests VM hang handling)",
	.params = guest_hang_params,
	.probe = guest_hang_probe,
	.run = guest_hang_run,
	.guest_only = true,
};

/* Test-only workload: crashes the guest kernel (sysrq-c), to test `mmstorm vm` crash handling. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/workload.h"

static const struct ms_param guest_crash_params[] = {
	{ "delay", MS_P_TIME, "0", "ns", 0, 60000000000LL, NULL,
	  "time to wait before crashing" },
	{ NULL }
};

static int guest_crash_probe(struct ms_ctx *ctx)
{
	if (!ms_in_guest(ctx))
		return ms_skip(ctx, "guest-crash panics the kernel: VM guests only");
	if (access("/proc/sysrq-trigger", W_OK) < 0)
		return ms_skip(ctx, "/proc/sysrq-trigger: %s (CONFIG_MAGIC_SYSRQ?)",
			       strerror(errno));
	return 0;
}

static int guest_crash_run(struct ms_ctx *ctx, uint64_t iter)
{
	int64_t delay_ns = ms_param_i(ctx, "delay");
	struct timespec ts = { delay_ns / 1000000000, delay_ns % 1000000000 };
	int fd, ret;

	(void)iter;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	/* sysrq may be restricted to a mask without crash dumps; 1 allows every function. */
	ret = ms_knob_write(ctx, "/proc/sys/kernel/sysrq", "1");
	if (ret)
		return ms_error(ctx, -ret, "enabling /proc/sys/kernel/sysrq: %s", strerror(-ret));
	fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ms_error(ctx, errno, "/proc/sysrq-trigger: %s", strerror(errno));
	if (write(fd, "c", 1) != 1) {
		ret = errno;
		close(fd);
		return ms_error(ctx, ret, "writing c to /proc/sysrq-trigger: %s", strerror(ret));
	}
	close(fd);
	return ms_error(ctx, EIO, "the kernel survived sysrq-c");
}

const struct ms_workload ms_wl_guest_crash = {
	.name = "guest-crash",
	.summary = "panics the guest kernel with sysrq-c (tests VM crash handling)",
	.params = guest_crash_params,
	.probe = guest_crash_probe,
	.run = guest_crash_run,
	.guest_only = true,
};

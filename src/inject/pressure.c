/* pressure: background memory load beside the workload: stress-ng, or a built-in page churner. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/metrics.h"
#include "mmstorm/util.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PR_MAX_PROCS 64
#define PR_STOP_NS (10ULL * 1000000000)

const struct ms_injector ms_inj_pressure;

static const char *const pr_tools[] = { "auto", "stress-ng", "builtin", NULL };
enum { PT_AUTO, PT_STRESS_NG, PT_BUILTIN };

static const struct ms_param pressure_params[] = {
	{ "press_tool", MS_P_ENUM, "auto", "", 1, 0, pr_tools,
	  "stress-ng (started and reaped by mmstorm, its output kept in the notes), builtin "
	  "(map, touch, page out, unmap loops), or auto: stress-ng when installed" },
	{ "press_vm", MS_P_INT, "1", "", 0, 32, NULL,
	  "processes that map, touch and free press_bytes over and over (stress-ng --vm)" },
	{ "press_mmap", MS_P_INT, "1", "", 0, 32, NULL,
	  "processes that map, split, remap and unmap regions (stress-ng --mmap)" },
	{ "press_bytes", MS_P_SIZE, "64M", "bytes", 1 << 20, 64LL << 30, NULL,
	  "memory each of those processes works on" },
	{ "press_page_in", MS_P_BOOL, "1", "", 1, 0, NULL,
	  "stress-ng --page-in: touch pages that were swapped or paged out" },
	{ "press_args", MS_P_STRING, "", "", 1, 0, NULL,
	  "more stress-ng arguments, blank-separated" },
	MS_INV_PARAMS,
	{ NULL }
};

struct pr_state {
	int tool;			/* PT_STRESS_NG or PT_BUILTIN once armed */
	int32_t pids[PR_MAX_PROCS];
	unsigned npids;
	uint64_t rounds;		/* builtin loops done */
	char exe[256];
	char log[512];
	char cmd[512];
};

_Static_assert(sizeof(struct pr_state) <= MS_INJECT_STATE_BYTES, "pr_state too big");

static bool find_stress_ng(char *out, size_t len)
{
	const char *path = getenv("PATH");
	char buf[1024], *save, *dir;

	snprintf(buf, sizeof(buf), "%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/stress-ng", dir);
		if (!access(out, X_OK))
			return true;
	}
	return false;
}

static int pressure_probe(struct ms_ctx *ctx)
{
	char exe[256];

	if (ms_param_i(ctx, "press_tool") == PT_STRESS_NG && !find_stress_ng(exe, sizeof(exe)))
		return ms_skip(ctx, "press_tool=stress-ng: no stress-ng in PATH");
	return 0;
}

/* ---- stress-ng ---- */

static int stress_ng_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct pr_state *st = arg;
	char *argv[64], vm[16], mm[16], bytes[32], extra[MS_PARAM_STR_MAX], *save, *tok;
	int argc = 0, fd;

	(void)idx;
	snprintf(vm, sizeof(vm), "%" PRId64, ms_param_i(ctx, "press_vm"));
	snprintf(mm, sizeof(mm), "%" PRId64, ms_param_i(ctx, "press_mmap"));
	snprintf(bytes, sizeof(bytes), "%" PRId64, ms_param_i(ctx, "press_bytes"));
	snprintf(extra, sizeof(extra), "%s", ms_param_s(ctx, "press_args"));
	argv[argc++] = "stress-ng";
	argv[argc++] = "--vm";
	argv[argc++] = vm;
	argv[argc++] = "--vm-bytes";
	argv[argc++] = bytes;
	argv[argc++] = "--mmap";
	argv[argc++] = mm;
	argv[argc++] = "--mmap-bytes";
	argv[argc++] = bytes;
	argv[argc++] = "--timeout";
	argv[argc++] = "1h";
	argv[argc++] = "--metrics-brief";
	if (ms_param_i(ctx, "press_page_in"))
		argv[argc++] = "--page-in";
	for (tok = strtok_r(extra, " ", &save); tok && argc < 62; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	fd = open(st->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		return 126;
	execv(st->exe, argv);
	return 127;
}

/* The last lines of stress-ng's output, for a note. */
static void log_tail(const char *path, char *out, size_t len)
{
	char buf[8192], *p;
	ssize_t n = ms_read_file(path, buf, sizeof(buf));
	int lines = 0;

	out[0] = '\0';
	if (n <= 0)
		return;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (p = buf + n; p > buf && lines < 3; p--)
		if (p[-1] == '\n')
			lines++;
	snprintf(out, len, "%s", p == buf ? buf : p + 1);
	for (p = out; *p; p++)
		if (*p == '\n')
			*p = '|';
}

static void stop_stress_ng(struct pr_state *st)
{
	uint64_t end = ms_now_ns() + PR_STOP_NS;
	pid_t pid = st->pids[0];
	int status;

	/* SIGINT: stress-ng stops its stressors and prints its metrics. */
	kill(pid, SIGINT);
	while (ms_now_ns() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- builtin ---- */
/* Map, touch every page, ask for it to be paged out, unmap: reclaim and the allocator busy. */
static void vm_round(size_t bytes, size_t psz)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	for (size_t off = 0; off < bytes; off += psz)
		p[off] = (char)off;
	madvise(p, bytes, MADV_PAGEOUT);
	munmap(p, bytes);
}

/* Map, split with mprotect, grow with mremap, unmap piecewise: VMA and page-table churn. */
static void mmap_round(size_t bytes, size_t psz)
{
	size_t half = bytes / 2;
	char *p = mmap(NULL, half, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *q;

	if (p == MAP_FAILED)
		return;
	for (size_t off = 0; off < half; off += 16 * psz)
		p[off] = 1;
	mprotect(p + psz, psz, PROT_READ);
	q = mremap(p, half, bytes, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		q = p;
	else
		half = bytes;
	munmap(q, psz);
	munmap(q + psz, half - psz);
}

/* Processes 0 .. press_vm - 1 run vm rounds, the rest mmap rounds. */
static int builtin_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct pr_state *st = arg;
	size_t bytes = (size_t)ms_param_i(ctx, "press_bytes"), psz = (size_t)getpagesize();
	bool vm = idx < (unsigned)ms_param_i(ctx, "press_vm");

	inj_helper_name("press");
	for (;;) {
		if (vm)
			vm_round(bytes, psz);
		else
			mmap_round(bytes, psz);
		__atomic_fetch_add(&st->rounds, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

static int spawn(struct ms_ctx *ctx, struct pr_state *st, int (*fn)(struct ms_ctx *, void *,
								    unsigned), void *arg)
{
	pid_t pid;

	if (st->npids >= PR_MAX_PROCS)
		return 0;
	pid = ms_spawn(ctx, fn, arg, st->npids);
	if (pid < 0)
		return ms_error(ctx, -pid, "pressure: spawning a load process: %s", strerror(-pid));
	st->pids[st->npids++] = pid;
	return 0;
}

static int pressure_arm(struct ms_ctx *ctx)
{
	struct pr_state *st = ms_inject_state(ctx, &ms_inj_pressure);
	int tool = (int)ms_param_i(ctx, "press_tool"), ret;

	if (tool != PT_BUILTIN && find_stress_ng(st->exe, sizeof(st->exe)))
		tool = PT_STRESS_NG;
	else
		tool = PT_BUILTIN;
	st->tool = tool;
	if (tool == PT_STRESS_NG) {
		snprintf(st->log, sizeof(st->log), "%s/pressure-stress-ng.log", ms_tmpdir(ctx));
		return spawn(ctx, st, stress_ng_main, st);
	}
	for (int64_t i = 0; i < ms_param_i(ctx, "press_vm") + ms_param_i(ctx, "press_mmap"); i++)
		if ((ret = spawn(ctx, st, builtin_main, st)))
			return ret;
	return 0;
}

static void pressure_disarm(struct ms_ctx *ctx)
{
	struct pr_state *st = ms_inject_state(ctx, &ms_inj_pressure);
	char tail[240];

	if (st->tool == PT_STRESS_NG && st->npids) {
		stop_stress_ng(st);
		log_tail(st->log, tail, sizeof(tail));
		ms_note(ctx, "pressure: stress-ng --vm %" PRId64 " --mmap %" PRId64 " (%" PRId64
			" bytes each): %s", ms_param_i(ctx, "press_vm"),
			ms_param_i(ctx, "press_mmap"), ms_param_i(ctx, "press_bytes"),
			tail[0] ? tail : "no output");
		return;
	}
	for (unsigned i = 0; i < st->npids; i++)
		inj_kill_helper(ctx, st->pids[i]);
	ms_note(ctx, "pressure: builtin, %" PRId64 " vm + %" PRId64 " mmap processes of %"
		PRId64 " bytes: %" PRIu64 " rounds", ms_param_i(ctx, "press_vm"),
		ms_param_i(ctx, "press_mmap"), ms_param_i(ctx, "press_bytes"), st->rounds);
}

const struct ms_injector ms_inj_pressure = {
	.name = "pressure",
	.summary = "memory pressure beside the workload: stress-ng --vm/--mmap/--page-in "
		   "(started and reaped by mmstorm) or a built-in map/touch/page-out churner",
	.params = pressure_params,
	.probe = pressure_probe,
	.arm = pressure_arm,
	.disarm = pressure_disarm,
};

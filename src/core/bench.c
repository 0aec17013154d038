/* `mmstorm bench`: what mmstorm's own measuring costs, against bare loops and stress-ng. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "core/perf_lockwait.h"
#include "mmstorm/journal.h"
#include "mmstorm/perf.h"
#include "mmstorm/report.h"
#include "mmstorm/util.h"
#include "mmstorm/vm.h"

struct capture_sink {
	struct ms_sink base;
	json_t *case_end;	/* the last case_end seen */
};

static int capture_event(struct ms_sink *s, json_t *ev)
{
	struct capture_sink *c = (struct capture_sink *)s;

	if (!strcmp(json_string_value(json_object_get(ev, "ev")) ?: "", "case_end")) {
		json_decref(c->case_end);
		c->case_end = ev;
		return 0;
	}
	json_decref(ev);
	return 0;
}

static double bench_sample_cost_ns(void)
{
	const uint64_t n = 20000000;
	struct ms_hist *h = malloc(sizeof(*h));
	uint64_t t0, t1, x = 88172645463325252ULL;

	if (!h)
		return -1;
	ms_hist_init(h);
	t0 = ms_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		/* xorshift: spread values over the whole range so the buckets vary like real data */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ms_hist_record(h, (x & 0xfffffff) + 1);
	}
	t1 = ms_now_ns();
	free(h);
	return (double)(t1 - t0) / (double)n;
}

/* CPU time of the waited-for descendants (the case, its workers and their children). */
static double ru_ns(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e9 +
	       (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1e3;
}

/*
 * mmap-lock-wait in a case_end: sampled (with how many waits), or why not. A bench of the
 * default set on a host without tracefs measures the counters alone: it must say so.
 */
static void lw_status(json_t *case_end, char *buf, size_t len)
{
	json_t *perf = json_object_get(case_end, "perf"), *e;
	json_t *lw = json_object_get(perf, "mmap_lock_wait");
	size_t i;

	if (lw) {
		snprintf(buf, len, "sampled, %lld waits in the last round",
			 (long long)json_integer_value(json_object_get(lw, "pairs")));
		return;
	}
	snprintf(buf, len, "not sampled");
	json_array_foreach(json_object_get(perf, "skipped"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "event")) ?: "", "mmap-lock-wait"))
			snprintf(buf, len, "not sampled: %s",
				 json_string_value(json_object_get(e, "reason")) ?: "?");
}

/*
 * fork-storm through the full harness: forks per second from its own counters; CPU time per
 * fork of the case's processes and of this one (the runner, where the sampler drains).
 */
static int run_fork_storm(struct ms_journal *j, const char *region, const char *size,
			  unsigned workers, unsigned children, double secs, const char *perf,
			  const char *mode, double *rate, double *cpu_ns, char *lw, size_t lwlen)
{
	struct rusage ru0, ru1, self0, self1;
	char text[2048], err[512];
	struct capture_sink sink = { .base.event = capture_event };
	struct ms_run_opts ro = { .run_id = "bench", .only_repeat = -1 };
	struct ms_suite s = { 0 };
	json_t *m;
	int ret, sig = 0;
	double ns;

	snprintf(text, sizeof(text),
		 "[global]\nname=bench\n[fork-storm]\nworkload=fork-storm\nregion=%s\nsize=%s\n"
		 "workers=%u\nchildren=%u\naction=exit\nduration=%lldms\ntimeout=%.0fs\nperf=%s\n"
		 "perf_mode=%s\n", region, size, workers, children, (long long)(secs * 1000),
		 secs * 4 + 30, perf, mode);
	if ((ret = ms_suite_load_mem(&s, "bench", text, strlen(text), err, sizeof(err)))) {
		fprintf(stderr, "bench: %s\n", err);
		return ret;
	}
	ro.suite_path = "bench";
	getrusage(RUSAGE_CHILDREN, &ru0);
	getrusage(RUSAGE_SELF, &self0);
	ret = ms_run_suite(&s, &ro, j, &sink.base, &sig);
	getrusage(RUSAGE_SELF, &self1);
	getrusage(RUSAGE_CHILDREN, &ru1);
	ms_suite_free(&s);
	if (ret < 0 || !sink.case_end)
		return ret < 0 ? ret : -EIO;
	if (strcmp(json_string_value(json_object_get(sink.case_end, "verdict")) ?: "", "PASS")) {
		fprintf(stderr, "bench: fork-storm did not pass: %s\n",
			json_string_value(json_object_get(sink.case_end, "reason")));
		json_decref(sink.case_end);
		return -EIO;
	}
	m = json_object_get(json_object_get(json_object_get(sink.case_end, "metrics"), "forks"),
			    "value");
	ns = (double)json_integer_value(json_object_get(sink.case_end, "duration_ns"));
	*rate = ns > 0 ? (double)json_integer_value(m) / (ns / 1e9) : 0;
	if (cpu_ns)
		*cpu_ns = json_integer_value(m) > 0 ? (ru_ns(&ru1) - ru_ns(&ru0) +
			  ru_ns(&self1) - ru_ns(&self0)) / (double)json_integer_value(m) : 0;
	if (lw)
		lw_status(sink.case_end, lw, lwlen);
	json_decref(sink.case_end);
	return 0;
}

/* The same storm with nothing measured: each worker maps the region, then fork/_exit/wait. */
static int bare_worker(size_t size, unsigned children, double secs, uint64_t *forks)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t end = ms_now_ns() + (uint64_t)(secs * 1e9), n = 0;
	pid_t *pids = calloc(children, sizeof(*pids));

	if (p == MAP_FAILED || !pids)
		return -ENOMEM;
	memset(p, 0x5a, size);
	while (ms_now_ns() < end) {
		for (unsigned c = 0; c < children; c++) {
			pids[c] = fork();
			if (pids[c] == 0)
				_exit(0);
		}
		for (unsigned c = 0; c < children; c++)
			if (pids[c] > 0 && waitpid(pids[c], NULL, 0) == pids[c])
				n++;
	}
	*forks = n;
	return 0;
}

static int run_bare(size_t size, unsigned workers, unsigned children, double secs, double *rate)
{
	uint64_t *counts = mmap(NULL, workers * sizeof(uint64_t), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t t0, total = 0;

	if (counts == MAP_FAILED)
		return -errno;
	t0 = ms_now_ns();
	for (unsigned w = 0; w < workers; w++) {
		if (fork() == 0)
			_exit(bare_worker(size, children, secs, &counts[w]) ? 1 : 0);
	}
	for (unsigned w = 0; w < workers; w++)
		wait(NULL);
	for (unsigned w = 0; w < workers; w++)
		total += counts[w];
	*rate = (double)total / ((double)(ms_now_ns() - t0) / 1e9);
	munmap(counts, workers * sizeof(uint64_t));
	return 0;
}

/* stress-ng --fork N --metrics-brief: "bogo ops/s (real time)" of the fork stressor. */
static int run_stress_ng(unsigned workers, double secs, double *rate)
{
	char cmd[256], line[512];
	FILE *f;
	int ret = -ENOENT;

	snprintf(cmd, sizeof(cmd), "stress-ng --fork %u --metrics-brief -t %.0fs 2>&1", workers,
		 secs < 1 ? 1 : secs);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "fork ");
		double ops, real, usr, sys, rt;

		/* stress-ng: fork  <bogo ops> <real s> <usr s> <sys s> <ops/s real> <ops/s cpu> */
		if (p && sscanf(p, "fork %lf %lf %lf %lf %lf", &ops, &real, &usr, &sys, &rt) == 5) {
			*rate = rt;
			ret = 0;
		}
	}
	pclose(f);
	return ret;
}

#define MAX_ROUNDS 15

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/*
 * What counting costs: fork-storm with perf=default (the counters) per cgroup and per task, and
 * the default set plus the mmap_lock sampler, against perf=none. Each round runs the four; the
 * order rotates so load from elsewhere hits all alike. Overheads are medians of the per-round
 * ratios to that round's perf=none, both of the op rate (wall clock: what a user sees, but
 * every other process on the machine moves it) and of the CPU time per fork (what counting
 * adds to each fork): of the case's processes and of the runner (this process), where the
 * sampler drains its ring buffers.
 */
static const char *const perf_sides[][3] = {
	{ "none", "auto", "perf=none" },
	{ "default,mmap-lock-wait", "cgroup", "perf=default,mmap-lock-wait, cgroup" },
	{ "default", "cgroup", "perf=default, perf_mode=cgroup" },
	{ "default", "task", "perf=default, perf_mode=task (inherited)" },
};

#define NSIDES 4
#define BARE_SIDES 4

struct perf_round {
	double rate[NSIDES], cpu[NSIDES];
};

static void print_overhead(const char *what, unsigned side, const struct perf_round *pr,
			   unsigned rounds, bool cpu)
{
	double col[MAX_ROUNDS];
	char label[96];

	for (unsigned r = 0; r < rounds; r++)
		col[r] = cpu ? (pr[r].cpu[0] > 0 ? pr[r].cpu[side] / pr[r].cpu[0] - 1 : 0) :
			 (pr[r].rate[0] > 0 ? 1 - pr[r].rate[side] / pr[r].rate[0] : 0);
	snprintf(label, sizeof(label), "overhead, %s%s, %s", side == 1 ? "with the sampler, " :
		 "perf=default, perf_mode=", perf_sides[side][1], what);
	/* The 2 % target is counting's (issue 12); the sampler is opt-in and priced apart. */
	printf("%-52s %9.2f%%     (%sper round:", label, 100.0 * median(col, rounds),
	       side == 1 ? "" : "target <= 2%; ");
	for (unsigned r = 0; r < rounds; r++)
		printf(" %+.1f", 100.0 * col[r]);
	printf(")\n");
}

/* The six software counters of the default set: what a host without PMU or tracefs counts. */
#define SW_SIX "task-clock,context-switches,cpu-migrations,page-faults,minor-faults,major-faults"
#define BARE_FORKS 2000

static double rusage_ns(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru_ns(&ru);
}

/*
 * In a child of the bench: count it (or not), then fork/_exit/wait; CPU ns per fork or < 0.
 * gate >= 0: wait for the parent to attach the mmap_lock sampler first.
 */
static double bare_counted_child(struct ms_journal *j, unsigned side, int gate)
{
	struct ms_perf *p = NULL;
	json_t *skipped = NULL;
	double t0;
	char why[512], go;
	int fd = -1, ret = 0;

	if (side == 1 && !(ret = ms_perf_cgroup_enter(j, &fd, why, sizeof(why))))
		ret = ms_perf_open_cgroup(&p, SW_SIX, fd, &skipped);
	else if (side == 2)
		ret = ms_perf_open(&p, SW_SIX, &skipped);
	if (ret || (side && side < 3 && (!p || json_array_size(skipped))) || ms_perf_enable(p))
		return -1;
	if (gate >= 0 && read(gate, &go, 1) != 1)
		return -1;
	t0 = rusage_ns(RUSAGE_SELF) + rusage_ns(RUSAGE_CHILDREN);
	for (unsigned i = 0; i < BARE_FORKS; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid < 0 || waitpid(pid, NULL, 0) != pid)
			return -1;
	}
	t0 = rusage_ns(RUSAGE_SELF) + rusage_ns(RUSAGE_CHILDREN) - t0;
	ms_perf_close(p);
	json_decref(skipped);
	if (fd >= 0)
		close(fd);
	return t0 / BARE_FORKS;
}

/*
 * Side 3: the child sampled from here as the runner samples a case (inherited mmap_lock
 * tracepoints, buffers drained every 20 ms); our own CPU time for draining is added.
 */
static int bare_sampled_wait(pid_t pid, int res, int gate, double *self_ns, char *why,
			     size_t len)
{
	struct ms_lw_sampler *s;
	uint64_t win[2] = { 0, 0 };
	struct pollfd pf = { .fd = res, .events = POLLIN };
	double t0 = rusage_ns(RUSAGE_SELF);
	int ret = ms_perf_lockwait_open(&s, pid, why, len);

	win[0] = ms_now_ns();
	if (write(gate, "g", 1) != 1 && !ret)
		ret = -EIO;
	while (!ret && poll(&pf, 1, 20) == 0)
		ms_lw_sampler_drain(s, &win[0], &win[1]);
	ms_lw_sampler_stop(s, &win[0], &win[1]);
	ms_lw_sampler_close(s);
	*self_ns = rusage_ns(RUSAGE_SELF) - t0;
	return ret;
}

static int bare_counted(struct ms_journal *j, unsigned side, double *cpu_ns, char *why,
			size_t len)
{
	long mark = ms_journal_mark(j);
	int pfd[2], gate[2] = { -1, -1 }, status, ret = 0;
	double self_ns = 0;
	pid_t pid;

	if (mark < 0 || pipe(pfd) || (side == 3 && pipe(gate)))
		return mark < 0 ? (int)mark : -errno;
	pid = fork();
	if (pid == 0) {
		double v = bare_counted_child(j, side, gate[0]);

		_exit(write(pfd[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}
	close(pfd[1]);
	if (pid > 0 && side == 3)
		ret = bare_sampled_wait(pid, pfd[0], gate[1], &self_ns, why, len);
	if (gate[0] >= 0) {
		close(gate[0]);
		close(gate[1]);
	}
	if (pid < 0 || read(pfd[0], cpu_ns, sizeof(*cpu_ns)) != sizeof(*cpu_ns))
		*cpu_ns = -1;
	else
		*cpu_ns += self_ns / BARE_FORKS;
	close(pfd[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	/* The cgroup goes once its only process is gone. */
	ms_journal_restore_to(j, mark, NULL);
	return ret ? ret : *cpu_ns < 0 ? -EIO : 0;
}

/*
 * Where the cost is, without the harness: a bare fork/_exit/wait loop of a small process in
 * a process counted per cgroup, per task (inherited), sampled for mmap_lock waits from its
 * parent (where tracefs is mounted), or not at all; CPU time per fork.
 */
static int bench_perf_bare(struct ms_journal *j, unsigned rounds)
{
	static const char *const names[] = { "none", "6 software counters, perf_mode=cgroup",
		"6 software counters, perf_mode=task", "mmap-lock-wait sampler" };
	double v[BARE_SIDES][MAX_ROUNDS], med[BARE_SIDES];
	unsigned nsides = BARE_SIDES;
	struct ms_lw_sampler *probe;
	char why[1024] = "";
	int ret = 0;

	/* Without tracefs (or the tracepoints) the other three still tell. */
	if (ms_perf_lockwait_open(&probe, getpid(), why, sizeof(why)))
		nsides = 3;
	ms_lw_sampler_close(probe);
	for (unsigned r = 0; r < rounds && !ret; r++)
		for (unsigned k = 0; k < nsides && !ret; k++)
			ret = bare_counted(j, (r + k) % nsides, &v[(r + k) % nsides][r], why,
					   sizeof(why));
	if (ret) {
		printf("%-52s %10s     (could not count: cgroup or counters unavailable)\n",
		       "bare fork loop with 6 software counters", "SKIP");
		return 0;
	}
	for (unsigned s = 0; s < nsides; s++)
		med[s] = median(v[s], rounds);
	printf("%-52s %10.0f ns CPU/fork\n", "bare fork/_exit/wait, nothing counted", med[0]);
	for (unsigned s = 1; s < nsides; s++) {
		char label[96];

		snprintf(label, sizeof(label), "  ... %s", names[s]);
		printf("%-52s %+10.0f ns CPU/fork (%+.1f%%)\n", label, med[s] - med[0],
		       100.0 * (med[s] / med[0] - 1));
	}
	if (nsides == 3)
		printf("%-52s %10s     (%s)\n", "  ... mmap-lock-wait sampler", "SKIP", why);
	return 0;
}

static int bench_perf(struct ms_journal *j, const char *size, unsigned workers,
		      unsigned children, double secs, unsigned rounds)
{
	struct perf_round pr[MAX_ROUNDS];
	double col[MAX_ROUNDS], cpu[MAX_ROUNDS];
	char label[96], lw[512] = "not run";
	int ret = 0;

	if (ms_perf_unavailable()) {
		printf("%-52s %10s     (%s)\n", "overhead of perf counting", "SKIP",
		       ms_perf_unavailable());
		return 0;
	}
	for (unsigned r = 0; r < rounds && !ret; r++) {
		for (unsigned k = 0; k < NSIDES && !ret; k++) {
			unsigned s = (r + k) % NSIDES;

			ret = run_fork_storm(j, "anon", size, workers, children, secs,
					     perf_sides[s][0], perf_sides[s][1], &pr[r].rate[s],
					     &pr[r].cpu[s], s == 1 ? lw : NULL, sizeof(lw));
		}
	}
	if (ret)
		return ret;
	printf("%-52s %s\n", "mmap-lock-wait in perf=default,mmap-lock-wait:", lw);
	for (unsigned s = 0; s < NSIDES; s++) {
		for (unsigned r = 0; r < rounds; r++) {
			col[r] = pr[r].rate[s];
			cpu[r] = pr[r].cpu[s];
		}
		snprintf(label, sizeof(label), "fork-storm, %s", perf_sides[s][2]);
		printf("%-52s %10.0f forks/s  %8.0f ns CPU/fork\n", label, median(col, rounds),
		       median(cpu, rounds));
	}
	for (unsigned s = 1; s < NSIDES; s++) {
		print_overhead("op rate", s, pr, rounds, false);
		print_overhead("CPU/fork", s, pr, rounds, true);
	}
	return bench_perf_bare(j, rounds);
}

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: mmstorm bench [--seconds S] [--rounds N] [--workers N] [--children N] [--size SIZE]"
		   " [--perf] [--vm ...]\n"
		   "  Prints the cost of recording one sample, the fork-storm op rate with full\n"
		   "  instrumentation vs a bare fork/exit/wait loop in C, and vs stress-ng --fork\n"
		   "  (when installed), and the overhead of perf counting (perf=default per\n"
		   "  cgroup and per task, and with the mmap_lock sampler added, vs perf=none;\n"
		   "  --perf: only that).\n"		   "  `mmstorm bench --vm ...` measures the VM runner instead.\n");
}

int ms_cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' },
		{ "children", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'z' },
		{ "rounds", required_argument, NULL, 'n' },
		{ "perf", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	double secs = 5, cost, full[MAX_ROUNDS], bare[MAX_ROUNDS], ratio[MAX_ROUNDS], small = 0,
	       sng = 0;
	unsigned workers = 2, children = 8, rounds = 3;
	const char *size = "16M";
	struct ms_journal *j;
	int64_t size_bytes;
	bool perf_only = false;
	int c, ret = 0;

	if (argc > 1 && !strcmp(argv[1], "--stats"))
		return ms_bench_stats(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "--vm"))
		return ms_bench_vm(argc - 1, argv + 1);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': secs = atof(optarg); break;
		case 'w': workers = (unsigned)atoi(optarg); break;
		case 'c': children = (unsigned)atoi(optarg); break;
		case 'z': size = optarg; break;
		case 'n': rounds = (unsigned)atoi(optarg); break;
		case 'p': perf_only = true; break;
		case 'h': bench_usage(stdout); return 0;
		default: bench_usage(stderr); return MS_EXIT_USAGE;
		}
	}
	if (secs <= 0 || !workers || !children || !rounds || rounds > MAX_ROUNDS ||
	    ms_parse_size(size, &size_bytes)) {
		bench_usage(stderr);
		return MS_EXIT_USAGE;
	}
	if ((ret = ms_state_open(&j, stderr))) {
		fprintf(stderr, "bench: journal: %s\n", strerror(-ret));
		return MS_EXIT_INFRA;
	}
	if (perf_only) {
		ret = bench_perf(j, size, workers, children, secs, rounds);
		goto out;
	}
	cost = bench_sample_cost_ns();
	printf("# mmstorm bench (%u workers, %u children/worker, %.1f s per measurement, "
	       "%u rounds, medians; rounds alternate which side runs first)\n",
	       workers, children, secs, rounds);
	printf("%-52s %10.2f ns   (target <= 30)\n", "cost of recording one sample", cost);
	for (unsigned r = 0; r < rounds && !ret; r++) {
		/* ABAB, then BABA: drift on a shared machine must not favour one side. */
		if (r % 2 == 0) {
			ret = run_fork_storm(j, "anon", size, workers, children, secs, "default",
					     "auto", &full[r], NULL, NULL, 0);
			if (!ret)
				ret = run_bare((size_t)size_bytes, workers, children, secs, &bare[r]);
		} else {
			ret = run_bare((size_t)size_bytes, workers, children, secs, &bare[r]);
			if (!ret)
				ret = run_fork_storm(j, "anon", size, workers, children, secs,
						     "default", "auto", &full[r], NULL, NULL, 0);
		}
		ratio[r] = bare[r] > 0 ? full[r] / bare[r] : 0;
	}
	if (ret) {
		fprintf(stderr, "bench: fork-storm failed: %s\n", strerror(-ret));
		goto out;
	}
	printf("%-52s %10.0f forks/s\n", "fork-storm, full instrumentation (anon)",
	       median(full, rounds));
	printf("%-52s %10.0f forks/s\n", "bare fork/_exit/wait loop, same region",
	       median(bare, rounds));
	printf("%-52s %10.3f     (target >= 0.95; per round:", "ratio instrumented / bare",
	       median(ratio, rounds));
	for (unsigned r = 0; r < rounds; r++)
		printf(" %.3f", ratio[r]);
	printf(")\n");
	if (run_stress_ng(workers, secs, &sng)) {
		printf("%-52s %10s     (stress-ng not installed or no fork metrics)\n",
		       "stress-ng --fork", "SKIP");
	} else if (!run_fork_storm(j, "anon", "64K", workers, children, secs, "default",
				     "auto", &small, NULL, NULL, 0)) {
		printf("%-52s %10.0f forks/s\n", "fork-storm, full instrumentation, 64K region", small);
		printf("%-52s %10.0f forks/s\n", "stress-ng --fork (bogo ops/s, real time)", sng);
		printf("%-52s %10.3f     (target >= 1.0)\n", "ratio fork-storm / stress-ng",
		       small / sng);
	}
	ret = bench_perf(j, size, workers, children, secs, rounds);
out:
	ms_journal_restore_to(j, 0, stderr);
	ms_journal_close(j);
	return ret ? MS_EXIT_INFRA : 0;
}

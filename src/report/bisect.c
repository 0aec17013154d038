/* `mmstorm bisect-run`: build or take a kernel, run one case in QEMU, judge it for git bisect. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/report.h"
#include "mmstorm/suite.h"
#include "mmstorm/util.h"

#define GOOD 0
#define BAD 1
#define UNTESTABLE 125
#define ABORT 128	/* git bisect run stops on 128..255: the setup is wrong, not the commit */

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/*
 * Run argv (in dir when not NULL) with stdout and stderr appended to log (inherited when
 * NULL). Returns the exit status, 128 + signal, or -errno when it could not be started.
 */
static int run_cmd(const char *const *argv, const char *dir, const char *log)
{
	int status, fd;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (dir && chdir(dir))
			_exit(126);
		if (log) {
			fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
				_exit(126);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static bool in_path(const char *bin)
{
	const char *path = getenv("PATH") ?: "/usr/bin:/bin";
	char buf[PATH_MAX];

	while (*path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, bin);
		if (!access(buf, X_OK))
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

/* ---- the step's name and record ---- */

/* The first line argv prints on stdout (nothing on any failure), without a shell. */
static void first_line(const char *const *argv, char *line, size_t len)
{
	int fds[2], status = -1, null;
	ssize_t n = 0, r;
	pid_t pid;

	line[0] = '\0';
	if (pipe2(fds, O_CLOEXEC))
		return;
	pid = fork();
	if (pid == 0) {
		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (dup2(fds[1], 1) < 0 || null < 0 || dup2(null, 2) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	while (pid > 0 && (size_t)n + 1 < len) {
		r = read(fds[0], line + n, len - 1 - (size_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
	}
	close(fds[0]);
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		line[0] = '\0';
}

static void step_id(const struct ms_bisect_opts *b, char *id, size_t len)
{
	const char *dir = b->kernel ? NULL : b->kernel_build ?: ".";
	const char *git[] = { "git", "-C", dir, "rev-parse", "--short=12", "HEAD", NULL };
	char line[64] = "";
	time_t now = time(NULL);
	struct tm tm;

	if (dir)
		first_line(git, line, sizeof(line));
	gmtime_r(&now, &tm);
	if (line[0] && !strpbrk(line, "/ '"))
		snprintf(id, len, "%s", line);
	else
		strftime(id, len, "%Y%m%d-%H%M%S", &tm);
}

static void record(const struct ms_bisect_opts *b, const char *id, int rc, const char *why)
{
	char path[PATH_MAX];
	FILE *f;

	printf("bisect-run: %s: %s: %s\n", id, rc == GOOD ? "good" : rc == BAD ? "bad" :
	       rc == UNTESTABLE ? "skip (cannot test)" : "abort", why);
	snprintf(path, sizeof(path), "%s/bisect.log", b->work);
	f = fopen(path, "ae");
	if (f) {
		fprintf(f, "%s %d %s\n", id, rc, why);
		fclose(f);
	}
}

/* ---- the kernel ---- */

static int build_kernel(const struct ms_bisect_opts *b, const char *log, char *why, size_t len)
{
	const char *dir = b->kernel_build ?: ".";
	char path[PATH_MAX], jobs[32];
	const char *olddef[] = { "make", "-C", dir, "olddefconfig", NULL };
	const char *image[] = { "make", "-C", dir, jobs, "bzImage", NULL };
	int ret;

	snprintf(path, sizeof(path), "%s/Kconfig", dir);
	if (access(path, R_OK)) {
		snprintf(why, len, "%s is not a kernel tree (no Kconfig)", dir);
		return ABORT;
	}
	if (b->config) {
		const char *cp[] = { "cp", b->config, path, NULL };

		snprintf(path, sizeof(path), "%s/.config", dir);
		if (run_cmd(cp, NULL, log)) {
			snprintf(why, len, "cannot copy %s to %s", b->config, path);
			return ABORT;
		}
	}
	snprintf(path, sizeof(path), "%s/.config", dir);
	if (access(path, R_OK)) {
		snprintf(why, len, "%s has no .config: give --config", dir);
		return ABORT;
	}
	fprintf(stderr, "# bisect-run: building the kernel in %s (log: %s)\n", dir, log);
	snprintf(jobs, sizeof(jobs), "-j%s", b->make_jobs ?: "0");
	if (!b->make_jobs)
		snprintf(jobs, sizeof(jobs), "-j%ld", sysconf(_SC_NPROCESSORS_ONLN));
	ret = run_cmd(olddef, NULL, log);
	if (!ret)
		ret = run_cmd(image, NULL, log);
	if (ret) {
		snprintf(why, len, "kernel build failed (make exit %d, see %s)", ret, log);
		return ret < 0 ? ABORT : UNTESTABLE;
	}
	return GOOD;
}

/* ---- the suite, cut down to the one case ---- */

/* The case's section name on an INI header line, or NULL. */
static bool section_of(const char *line, char *name, size_t len)
{
	const char *p = line + strspn(line, " \t"), *end;

	if (*p != '[' || !(end = strchr(p, ']')))
		return false;
	snprintf(name, len, "%.*s", (int)(end - p - 1), p + 1);
	return true;
}

/* [global] and [case] of the suite, as the suite spells them (so errors keep their sense). */
static int one_case_suite(const struct ms_bisect_opts *b, const char *out, char *why, size_t len)
{
	FILE *in = fopen(b->suite, "re"), *o;
	char line[4096], name[256];
	bool keep = true, found = false;
	int ret = 0;

	if (!in) {
		snprintf(why, len, "%s: %s", b->suite, strerror(errno));
		return -errno;
	}
	o = fopen(out, "we");
	if (!o) {
		ret = -errno;
		snprintf(why, len, "%s: %s", out, strerror(errno));
		fclose(in);
		return ret;
	}
	while (fgets(line, sizeof(line), in)) {
		if (section_of(line, name, sizeof(name))) {
			keep = !strcmp(name, "global") || !strcmp(name, b->case_name);
			found |= !strcmp(name, b->case_name);
		}
		if (keep)
			fputs(line, o);
	}
	if (ferror(in) || fclose(o))
		ret = -EIO;
	fclose(in);
	if (!ret && !found) {
		snprintf(why, len, "%s has no case [%s]", b->suite, b->case_name);
		ret = -ENOENT;
	}
	return ret;
}

/* ---- judging ---- */

static json_t *find_case(const json_t *run, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(run, "cases"), i, c)
		if (!strcmp(str(c, "name") ?: "", name))
			return c;
	return NULL;
}

static bool bad_verdict(const char *v)
{
	return v && (!strcmp(v, "FAIL") || !strcmp(v, "TIMEOUT") || !strcmp(v, "CRASH"));
}

/* Metrics, when the verdict does not decide: regressed is bad, unknown cannot be told. */
static int judge_metrics(const struct ms_bisect_opts *b, const json_t *good, const json_t *run,
			 char *why, size_t len)
{
	struct ms_compare_opts o = b->o;
	const char *labels[2] = { "good", "this" };
	json_t *runs[2] = { (json_t *)good, (json_t *)run }, *cmp, *row;
	const char *worst = NULL;
	size_t i;
	int rc = GOOD;

	o.cases = b->case_name;
	cmp = ms_compare(&o, labels, runs, 2);
	if (!cmp) {
		snprintf(why, len, "comparison failed (out of memory)");
		return UNTESTABLE;
	}
	snprintf(why, len, "PASS, metrics same as the good run");
	json_array_foreach(json_object_get(json_array_get(json_object_get(cmp, "comparisons"), 0),
					   "metrics"), i, row) {
		const char *v = str(row, "verdict");

		if (!strcmp(v, "regressed")) {
			snprintf(why, len, "%s regressed: %s", str(row, "metric"), str(row, "why"));
			rc = BAD;
			break;
		}
		if ((!strcmp(v, "insufficient") || !strcmp(v, "no data")) && !worst) {
			worst = str(row, "metric");
			snprintf(why, len, "%s: %s (choose what decides with --metric, or raise "
				 "repeat=)", worst, str(row, "why"));
			rc = UNTESTABLE;
		}
	}
	json_decref(cmp);
	return rc;
}

int ms_bisect_judge(const struct ms_bisect_opts *b, const json_t *good, const json_t *run,
		    char *why, size_t len)
{
	json_t *gc = find_case(good, b->case_name), *c = find_case(run, b->case_name);
	const char *gv = str(gc, "verdict"), *v = str(c, "verdict");

	if (!c || !v) {
		snprintf(why, len, "no result for case %s (status %s)", b->case_name,
			 str(run, "status") ?: "?");
		return UNTESTABLE;
	}
	if (bad_verdict(v) && !bad_verdict(gv)) {
		snprintf(why, len, "%s: %s", v, str(c, "reason") ?: "");
		return BAD;
	}
	if (strcmp(v, "PASS") && !bad_verdict(v)) {
		snprintf(why, len, "%s: %s", v, str(c, "reason") ?: "");
		return UNTESTABLE;
	}
	if (bad_verdict(v)) {
		/* Failing in the good run too: only the metrics can tell this commit apart. */
		if (b->correctness_only) {
			snprintf(why, len, "%s here and in the good run: the verdict cannot decide",
				 v);
			return UNTESTABLE;
		}
	} else if (b->correctness_only) {
		snprintf(why, len, "PASS");
		return GOOD;
	}
	return judge_metrics(b, good, run, why, len);
}

/* ---- the step ---- */

static int run_vm(const struct ms_bisect_opts *b, const char *kernel, const char *suite,
		  const char *id)
{
	const char **argv = calloc(b->nvm_args + 16, sizeof(*argv));
	char self[PATH_MAX], run_id[128];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	unsigned k = 0;
	int ret;

	if (!argv || n <= 0) {
		free(argv);
		return -ENOMEM;
	}
	self[n] = '\0';
	snprintf(run_id, sizeof(run_id), "step-%s", id);
	argv[k++] = self;
	argv[k++] = "vm";
	argv[k++] = "--kernel";
	argv[k++] = kernel;
	argv[k++] = "--results";
	argv[k++] = b->work;
	argv[k++] = "--run-id";
	argv[k++] = run_id;
	for (unsigned i = 0; i < b->nvm_args; i++)
		argv[k++] = b->vm_args[i];
	argv[k++] = suite;
	ret = run_cmd(argv, NULL, NULL);
	free(argv);
	return ret;
}

/* The run.json `mmstorm vm` wrote for the step: WORK/step-ID/LABEL/run.json. */
static json_t *step_run(const struct ms_bisect_opts *b, const char *id, char *why, size_t len)
{
	char dir[PATH_MAX], err[512];
	json_t *runs = NULL, *run = NULL;

	snprintf(dir, sizeof(dir), "%s/step-%s", b->work, id);
	runs = ms_report_find_runs(dir, err, sizeof(err));
	if (!runs || json_array_size(runs) != 1) {
		snprintf(why, len, "%s", runs ? "several run.json files for one step" : err);
		json_decref(runs);
		return NULL;
	}
	run = json_incref(json_array_get(runs, 0));
	json_decref(runs);
	return run;
}

static int step(const struct ms_bisect_opts *b, const json_t *good, const char *id,
		char *why, size_t len)
{
	char suite[PATH_MAX], log[PATH_MAX], kernel[PATH_MAX];
	json_t *run;
	int ret;

	snprintf(suite, sizeof(suite), "%s/suite-%s.ini", b->work, id);
	if (one_case_suite(b, suite, why, len))
		return ABORT;
	if (b->kernel) {
		snprintf(kernel, sizeof(kernel), "%s", b->kernel);
	} else {
		snprintf(log, sizeof(log), "%s/build-%s.log", b->work, id);
		ret = build_kernel(b, log, why, len);
		if (ret)
			return ret;
		snprintf(kernel, sizeof(kernel), "%s", b->kernel_build ?: ".");
	}
	ret = run_vm(b, kernel, suite, id);
	if (ret < 0 || ret == 2 || ret == 126 || ret == 127) {
		snprintf(why, len, "mmstorm vm could not run (exit %d)", ret);
		return ABORT;
	}
	run = step_run(b, id, why, len);
	if (!run)
		return UNTESTABLE;
	if (ret == 3 && !find_case(run, b->case_name)) {
		snprintf(why, len, "the kernel did not boot or the run broke off (%s)",
			 str(run, "status") ?: "?");
		json_decref(run);
		return UNTESTABLE;
	}
	ret = ms_bisect_judge(b, good, run, why, len);
	json_decref(run);
	return ret;
}

int ms_bisect_run(const struct ms_bisect_opts *b)
{
	char why[1024], err[1024], id[64], buf[PATH_MAX];
	struct ms_suite s = { 0 };
	json_t *good;
	int rc;

	step_id(b, id, sizeof(id));
	if ((rc = ms_mkdir_p(b->work, 0755))) {
		snprintf(why, sizeof(why), "%s: %s", b->work, strerror(-rc));
		rc = ABORT;
		goto out_record;
	}
	if (ms_suite_load(&s, b->suite, err, sizeof(err))) {
		snprintf(why, sizeof(why), "%s", err);
		rc = ABORT;
		goto out_record;
	}
	ms_suite_free(&s);
	good = ms_run_load(b->good_run, err, sizeof(err));
	if (!good || !find_case(good, b->case_name)) {
		snprintf(why, sizeof(why), "--good-run: %s", good ? "it has no such case" : err);
		json_decref(good);
		rc = ABORT;
		goto out_record;
	}
	if (!in_path("qemu-system-x86_64")) {
		snprintf(why, sizeof(why), "qemu-system-x86_64 not found");
		json_decref(good);
		rc = ABORT;
		goto out_record;
	}
	if (!b->kernel && !realpath(b->kernel_build ?: ".", buf)) {
		snprintf(why, sizeof(why), "%s: %s", b->kernel_build ?: ".", strerror(errno));
		json_decref(good);
		rc = ABORT;
		goto out_record;
	}
	rc = step(b, good, id, why, sizeof(why));
	json_decref(good);
out_record:
	record(b, id, rc, why);
	return rc;
}

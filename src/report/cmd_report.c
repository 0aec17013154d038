/* The command lines of `mmstorm compare`, `report`, `bisect-run` and `bench --stats`. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/report.h"
#include "mmstorm/stats.h"
#include "mmstorm/util.h"

/* ---- shared option parsing ---- */

/* "5%" or "0.05" (a bare number of 1 or more is taken as percent). */
static int parse_fraction(const char *text, double *v)
{
	char *end;
	double x = strtod(text, &end);

	if (end == text || !isfinite(x) || x < 0)
		return -EINVAL;
	if (*end == '%' && !end[1])
		x /= 100;
	else if (*end)
		return -EINVAL;
	else if (x >= 1)
		x /= 100;
	if (!(x > 0 && x < 1))
		return -EINVAL;
	*v = x;
	return 0;
}

static bool valid_stat(const char *s)
{
	static const char *const ok[] = { "p50", "p90", "p99", "p999", "mean", "min", "max" };

	for (size_t i = 0; i < MS_ARRAY_SIZE(ok); i++)
		if (!strcmp(s, ok[i]))
			return true;
	return false;
}

static int stat_opt(struct ms_compare_opts *o, int c, const char *arg)
{
	char *end;

	switch (c) {
	case 'T':
		return parse_fraction(arg, &o->threshold);
	case 'a':
		return parse_fraction(arg, &o->alpha);
	case 'W':
		return parse_fraction(arg, &o->power);
	case 'L':
		return parse_fraction(arg, &o->level);
	case 'S':
		if (!valid_stat(arg))
			return -EINVAL;
		o->stat = arg;
		return 0;
	case 'R':
		o->resamples = (unsigned)strtoul(arg, &end, 10);
		return *end || o->resamples < 100 || o->resamples > 1000000 ? -EINVAL : 0;
	case 'E':
		o->seed = strtoull(arg, &end, 0);
		return *end ? -EINVAL : 0;
	case 'C':
		o->cases = arg;
		return 0;
	case 'M':
		o->metrics = arg;
		return 0;
	}
	return -ENOENT;
}

static int load_runs(char **specs, unsigned n, json_t **runs, char (*labels)[64])
{
	char err[1024];

	for (unsigned i = 0; i < n; i++) {
		char *spec = specs[i], *eq = strchr(spec, '=');
		const char *path = spec;

		if (eq && !memchr(spec, '/', (size_t)(eq - spec)) && !memchr(spec, ',',
									     (size_t)(eq - spec)))
			path = eq + 1;
		runs[i] = ms_run_load(path, err, sizeof(err));
		if (!runs[i]) {
			fprintf(stderr, "mmstorm: %s\n", err);
			while (i--)
				json_decref(runs[i]);
			return -EINVAL;
		}
		if (path != spec)
			snprintf(labels[i], 64, "%.*s", (int)(eq - spec), spec);
		else
			snprintf(labels[i], 64, "%s", ms_run_label(runs[i]));
		/* Two runs under one name would make the tables ambiguous. */
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(labels[k], labels[i])) {
				size_t len = strnlen(labels[i], 56);

				snprintf(labels[i] + len, 64 - len, "#%u", i + 1);
				break;
			}
	}
	return 0;
}

/* ---- compare ---- */

static void compare_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm compare [options] RUN_A RUN_B [RUN_C ...]\n"
		"       mmstorm compare --aa RUN [options]\n"
		"  Per case and metric: the median over repeats in A and B, B/A with a\n"
		"  bootstrap interval, the Mann-Whitney p-value and a verdict (regressed,\n"
		"  improved, same, insufficient repeats: need N). Verdict changes (FAIL, CRASH,\n"
		"  TIMEOUT in B only) come first and are always regressions. Later runs are each\n"
		"  compared with A.\n\n"
		"  RUN: a run.json or its directory; LABEL=RUN names it; RUN1,RUN2,... pools the\n"
		"  repeats of several runs (CI shards, interleaved runs) into one side.\n\n"
		"options:\n"
		"  --threshold PCT       smallest change that counts (default 5%%)\n"
		"  --alpha A             significance level (default 0.01)\n"
		"  --power P             power asked for \"need N\" (default 0.99)\n"
		"  --level L             bootstrap interval (default 95%%)\n"
		"  --stat S              histogram statistic per repeat: p50 p90 p99 p999\n"
		"                        mean min max (default p50)\n"
		"  --resamples N         bootstrap resamples (default 2000)\n"
		"  --seed N              bootstrap seed (default 1)\n"
		"  --case GLOB           only the cases matching GLOB (fnmatch)\n"
		"  --metric GLOB         only the metrics matching GLOB\n"
		"  --aa RUN              A/A calibration: alone, split RUN's repeats and report\n"
		"                        the false alarms and noise; with runs, no verdict is\n"
		"                        called for a change within RUN's noise\n"
		"  --fail-on WHAT        exit 1 on: regression (default; includes correctness),\n"
		"                        correctness, none\n"
		"  --json FILE           the comparison as JSON (- for stdout)\n"
		"  --md FILE             as Markdown\n"
		"  --junit FILE          as JUnit XML (one testcase per case and metric)\n"
		"  --quiet, -q           no table on stdout\n\n"
		"exit status: 0 no regression, 1 regression (see --fail-on), 2 usage or unreadable "
		"run\n");
}

static const struct option stat_opts[] = {
	{ "threshold", required_argument, NULL, 'T' },
	{ "alpha", required_argument, NULL, 'a' },
	{ "power", required_argument, NULL, 'W' },
	{ "level", required_argument, NULL, 'L' },
	{ "stat", required_argument, NULL, 'S' },
	{ "resamples", required_argument, NULL, 'R' },
	{ "seed", required_argument, NULL, 'E' },
	{ "case", required_argument, NULL, 'C' },
	{ "metric", required_argument, NULL, 'M' },
};

/* Append the shared statistics options after a command's own (the table has room). */
static void add_stat_opts(struct option *opts)
{
	size_t n = 0;

	while (opts[n].name)
		n++;
	memcpy(opts + n, stat_opts, sizeof(stat_opts));
}

struct compare_args {
	struct ms_compare_opts o;
	const char *aa, *json, *md, *junit, *fail_on;
	bool quiet;
};

static int compare_parse(struct compare_args *a, int argc, char **argv)
{
	struct option opts[MS_ARRAY_SIZE(stat_opts) + 8] = {
		{ "aa", required_argument, NULL, 'A' },
		{ "fail-on", required_argument, NULL, 'F' },
		{ "json", required_argument, NULL, 'j' },
		{ "md", required_argument, NULL, 'm' },
		{ "junit", required_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
	};
	int c;

	add_stat_opts(opts);
	ms_compare_opts_init(&a->o);
	a->fail_on = "regression";
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'A': a->aa = optarg; break;
		case 'F': a->fail_on = optarg; break;
		case 'j': a->json = optarg; break;
		case 'm': a->md = optarg; break;
		case 'u': a->junit = optarg; break;
		case 'q': a->quiet = true; break;
		case 'h': compare_usage(stdout); return 1;
		default:
			if (c == '?' || stat_opt(&a->o, c, optarg)) {
				if (c != '?')
					fprintf(stderr, "compare: bad value '%s'\n", optarg);
				compare_usage(stderr);
				return -EINVAL;
			}
		}
	}
	if (strcmp(a->fail_on, "regression") && strcmp(a->fail_on, "correctness") &&
	    strcmp(a->fail_on, "none")) {
		fprintf(stderr, "compare: --fail-on %s: expected regression, correctness or none\n",
			a->fail_on);
		return -EINVAL;
	}
	if (argc - optind < (a->aa ? 0 : 2) || (a->aa && argc - optind == 1)) {
		compare_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

typedef void (*writer_fn)(const json_t *cmp, FILE *f);

static int write_out(const char *path, writer_fn fn, const json_t *cmp)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "we") : stdout;
	int ret = 0;

	if (!f) {
		fprintf(stderr, "mmstorm: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fn(cmp, f);
	if (fflush(f) || ferror(f))
		ret = -EIO;
	if (f != stdout && fclose(f) && !ret)
		ret = -errno;
	if (ret)
		fprintf(stderr, "mmstorm: writing %s: %s\n", path, strerror(-ret));
	return ret;
}

static int compare_outputs(const struct compare_args *a, const json_t *cmp)
{
	bool to_stdout = (a->json && !strcmp(a->json, "-")) || (a->md && !strcmp(a->md, "-")) ||
			 (a->junit && !strcmp(a->junit, "-"));
	int ret = 0;

	if (!a->quiet && !to_stdout)
		ms_compare_print(cmp, stdout);
	if (a->json)
		ret |= write_out(a->json, ms_compare_write_json, cmp);
	if (a->md)
		ret |= write_out(a->md, ms_compare_write_md, cmp);
	if (a->junit)
		ret |= write_out(a->junit, ms_compare_write_junit, cmp);
	return ret;
}

static int compare_exit(const struct compare_args *a, const json_t *cmp)
{
	unsigned corr, reg;

	ms_compare_counts(cmp, &corr, &reg);
	if (!strcmp(a->fail_on, "none"))
		return MS_EXIT_OK;
	if (!strcmp(a->fail_on, "correctness"))
		return corr ? MS_EXIT_FAIL : MS_EXIT_OK;
	return corr || reg ? MS_EXIT_FAIL : MS_EXIT_OK;
}

int ms_cmd_compare(int argc, char **argv)
{
	struct compare_args a = { 0 };
	unsigned n;
	json_t **runs = NULL, *aa_run = NULL, *aa = NULL, *cmp = NULL;
	char (*labels)[64] = NULL, aa_label[1][64];
	const char **lp = NULL;
	char *aa_spec[1];
	int ret, rc = MS_EXIT_USAGE;

	ret = compare_parse(&a, argc, argv);
	if (ret)
		return ret > 0 ? MS_EXIT_OK : MS_EXIT_USAGE;
	n = (unsigned)(argc - optind);
	if (a.aa) {
		aa_spec[0] = (char *)a.aa;
		if (load_runs(aa_spec, 1, &aa_run, aa_label))
			return MS_EXIT_USAGE;
		aa = ms_compare_aa(&a.o, aa_label[0], aa_run);
		json_decref(aa_run);
		if (!aa)
			return MS_EXIT_INFRA;
		if (!n) {
			rc = compare_outputs(&a, aa) ? MS_EXIT_INFRA : MS_EXIT_OK;
			goto out;
		}
		a.o.aa = aa;
	}
	runs = calloc(n, sizeof(*runs));
	labels = calloc(n, sizeof(*labels));
	lp = calloc(n, sizeof(*lp));
	if (!runs || !labels || !lp) {
		rc = MS_EXIT_INFRA;
		goto out;
	}
	if (load_runs(argv + optind, n, runs, labels))
		goto out;
	for (unsigned i = 0; i < n; i++)
		lp[i] = labels[i];
	cmp = ms_compare(&a.o, lp, runs, n);
	if (!cmp) {
		rc = MS_EXIT_INFRA;
		goto out_runs;
	}
	rc = compare_outputs(&a, cmp) ? MS_EXIT_INFRA : compare_exit(&a, cmp);
	json_decref(cmp);
out_runs:
	for (unsigned i = 0; i < n; i++)
		json_decref(runs[i]);
out:
	free(runs);
	free(labels);
	free(lp);
	json_decref(aa);
	return rc;
}

/* ---- report ---- */

static void report_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm report [options] RUN... [--trend DIR]\n"
		"       mmstorm report --trend DIR [options]\n"
		"  Writes OUT/report.html (self-contained, charts as inline SVG) and\n"
		"  OUT/report.md: verdicts, the A/B comparison of every RUN against the first\n"
		"  (ratio bars with intervals), latency CDFs per case, page-table bytes against\n"
		"  processes, and with --trend the history of every run.json under DIR. Each\n"
		"  chart's gnuplot script (.gp) and data (.dat) are kept in OUT for restyling.\n\n"
		"  RUN: as for compare; a `mmstorm vm` result directory with several kernels\n"
		"  stands for all of them (reference first).\n\n"
		"options:\n"
		"  --out DIR             output directory (default: report)\n"
		"  --trend DIR           nightly history: every run.json under DIR, by start time\n"
		"  --threshold, --alpha, --power, --level, --stat, --resamples, --seed, --case,\n"
		"  --metric:\n"
		"                        as for compare\n");
}

/* A `mmstorm vm` results dir with several kernels: LABEL/run.json each, order from compare.json. */
static unsigned expand_vm_dir(const char *dir, char ***out)
{
	char path[4096];
	json_t *cmp, *k;
	size_t i;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/run.json", dir);
	if (!access(path, R_OK))
		return 0;
	snprintf(path, sizeof(path), "%s/compare.json", dir);
	cmp = json_load_file(path, 0, NULL);
	*out = calloc(json_array_size(json_object_get(cmp, "kernels")) + 1, sizeof(**out));
	json_array_foreach(json_object_get(cmp, "kernels"), i, k) {
		const char *label = json_string_value(json_object_get(k, "label"));

		if (!*out || !label || strchr(label, '/') || strchr(label, ','))
			continue;
		if (asprintf(&(*out)[n], "%s=%s/%s", label, dir, label) >= 0)
			n++;
	}
	json_decref(cmp);
	return n;
}

/* The RUN arguments with vm result dirs expanded; free with free_specs. */
static char **report_specs(char **argv, unsigned argc, unsigned *n)
{
	char **specs = NULL, **sub = NULL;
	unsigned cap = 0;

	*n = 0;
	for (unsigned i = 0; i < argc; i++) {
		unsigned m = expand_vm_dir(argv[i], &sub);
		char **grown = realloc(specs, (cap += (m ? m : 1)) * sizeof(*specs));

		if (!grown) {
			free(sub);
			break;
		}
		specs = grown;
		if (!m)
			specs[(*n)++] = strdup(argv[i]);
		for (unsigned k = 0; k < m; k++)
			specs[(*n)++] = sub[k];
		free(sub);
		sub = NULL;
	}
	return specs;
}

static void free_specs(char **specs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(specs[i]);
	free(specs);
}

static int report_parse(struct ms_compare_opts *o, const char **out, const char **trend,
			int argc, char **argv)
{
	struct option opts[MS_ARRAY_SIZE(stat_opts) + 4] = {
		{ "out", required_argument, NULL, 'o' },
		{ "trend", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
	};
	int c;

	add_stat_opts(opts);
	ms_compare_opts_init(o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': *out = optarg; break;
		case 't': *trend = optarg; break;
		case 'h': report_usage(stdout); return 1;
		default:
			if (c == '?' || stat_opt(o, c, optarg)) {
				report_usage(stderr);
				return -EINVAL;
			}
		}
	}
	if (optind == argc && !*trend) {
		report_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int ms_cmd_report(int argc, char **argv)
{
	struct ms_compare_opts o;
	struct ms_report r = { 0 };
	const char *out = "report", *trend = NULL, **lp = NULL;
	char **specs, err[1024], (*labels)[64] = NULL;
	json_t **runs = NULL;
	unsigned n = 0;
	int ret, rc = MS_EXIT_USAGE;

	ret = report_parse(&o, &out, &trend, argc, argv);
	if (ret)
		return ret > 0 ? MS_EXIT_OK : MS_EXIT_USAGE;
	specs = report_specs(argv + optind, (unsigned)(argc - optind), &n);
	runs = calloc(n + 1, sizeof(*runs));
	labels = calloc(n + 1, sizeof(*labels));
	lp = calloc(n + 1, sizeof(*lp));
	if (!runs || !labels || !lp || (n && !specs)) {
		rc = MS_EXIT_INFRA;
		goto out_free;
	}
	if (n && load_runs(specs, n, runs, labels))
		goto out_free;
	for (unsigned i = 0; i < n; i++)
		lp[i] = labels[i];
	if (trend && !(r.trend = ms_report_find_runs(trend, err, sizeof(err)))) {
		fprintf(stderr, "report: --trend %s\n", err);
		goto out_runs;
	}
	rc = MS_EXIT_INFRA;
	if ((ret = ms_mkdir_p(out, 0755))) {
		fprintf(stderr, "report: %s: %s\n", out, strerror(-ret));
		goto out_runs;
	}
	r.dir = out;
	r.labels = lp;
	r.runs = runs;
	r.n = n;
	r.o = &o;
	r.cmp = n >= 2 ? ms_compare(&o, lp, runs, n) : NULL;
	ret = ms_report_charts(&r);
	if (!ret)
		ret = ms_report_write(&r);
	if (ret) {
		fprintf(stderr, "report: writing %s: %s\n", out, strerror(-ret));
	} else {
		json_t *c;
		size_t i;

		json_array_foreach(r.charts, i, c)
			if (json_object_get(c, "error"))
				fprintf(stderr, "report: chart %s: %s\n",
					json_string_value(json_object_get(c, "name")),
					json_string_value(json_object_get(c, "error")));
		printf("%s/report.html\n%s/report.md\n", out, out);
		rc = MS_EXIT_OK;
	}
	json_decref(r.cmp);
	json_decref(r.charts);
	json_decref(r.trend);
out_runs:
	for (unsigned i = 0; i < n; i++)
		json_decref(runs[i]);
out_free:
	free_specs(specs, n);
	free(runs);
	free(labels);
	free(lp);
	return rc;
}

/* ---- bisect-run ---- */

static void bisect_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm bisect-run --suite S --case C --good-run R [options]\n"
		"  For `git bisect run` in a kernel tree: builds the kernel (or takes a built\n"
		"  one), boots it with `mmstorm vm`, runs case C of suite S and judges it\n"
		"  against the good run R: a verdict FAIL/CRASH/TIMEOUT that R does not have is\n"
		"  bad; with --metric, so is a regression of those metrics (as `mmstorm compare`\n"
		"  says).\n"
		"  R may pool several runs of the good kernel (R1,R2,...): made at different\n"
		"  times, they show the run-to-run noise a single run hides.\n\n"
		"options:\n"
		"  --kernel-build DIR    kernel tree to build (default: the current directory):\n"
		"                        make olddefconfig, make -jN bzImage\n"
		"  --kernel IMG          a built kernel instead (bzImage, .deb, build dir)\n"
		"  --config FILE         .config to build with (copied into the tree first)\n"
		"  --jobs N              make -j (default: online CPUs)\n"
		"  --work DIR            step results, build logs, bisect.log (default\n"
		"                        $TMPDIR/mmstorm-bisect; keep it out of the kernel tree)\n"
		"  --vm-arg ARG          one more `mmstorm vm` option (repeatable), e.g.\n"
		"                        --vm-arg=--accel=tcg\n"
		"  --metric GLOB         these metrics decide too (default: only the verdict)\n"
		"  --threshold, --alpha, --power, --stat: as for compare\n\n"
		"exit status: 0 good, 1 bad, 125 cannot test this commit (build failed, no\n"
		"boot, SKIP, ERROR, too few repeats to tell), 128 stop bisecting (bad options,\n"
		"no QEMU)\n");
}

#define BISECT_MAX_VM_ARGS 32

int ms_cmd_bisect_run(int argc, char **argv)
{
	struct option opts[MS_ARRAY_SIZE(stat_opts) + 13] = {
		{ "suite", required_argument, NULL, 's' },
		{ "case", required_argument, NULL, 'c' },
		{ "good-run", required_argument, NULL, 'g' },
		{ "kernel-build", required_argument, NULL, 'b' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "config", required_argument, NULL, 'f' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "work", required_argument, NULL, 'w' },
		{ "vm-arg", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
	};
	const char *vm_args[BISECT_MAX_VM_ARGS];
	struct ms_bisect_opts b = { 0 };
	char work[4096];
	int c;

	add_stat_opts(opts);
	/* --case here names the one case to run (compare's --case glob is not needed). */
	ms_compare_opts_init(&b.o);
	snprintf(work, sizeof(work), "%s/mmstorm-bisect", getenv("TMPDIR") ?: "/tmp");
	b.work = work;
	b.vm_args = vm_args;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': b.suite = optarg; break;
		case 'c': b.case_name = optarg; break;
		case 'g': b.good_run = optarg; break;
		case 'b': b.kernel_build = optarg; break;
		case 'k': b.kernel = optarg; break;
		case 'f': b.config = optarg; break;
		case 'j': b.make_jobs = optarg; break;
		case 'w': b.work = optarg; break;
		case 'v':
			if (b.nvm_args == BISECT_MAX_VM_ARGS)
				goto out_usage;
			vm_args[b.nvm_args++] = optarg;
			break;
		case 'h': bisect_usage(stdout); return MS_EXIT_OK;
		default:
			if (c == '?' || c == 'C' || stat_opt(&b.o, c, optarg))
				goto out_usage;
		}
	}
	if (optind != argc || !b.suite || !b.case_name || !b.good_run ||
	    (b.kernel && (b.kernel_build || b.config)))
		goto out_usage;
	/* Metrics of separate runs differ by more than their repeats show (other load, another
	 * boot): they only decide when asked for by name. */
	b.correctness_only = !b.o.metrics;
	return ms_bisect_run(&b);
out_usage:
	bisect_usage(stderr);
	/* Not 2: git bisect run would take that for a bad commit. */
	return 128;
}

/* ---- bench --stats ---- */

enum synth { SY_NORMAL, SY_LOGNORMAL, SY_OUTLIERS, SY__COUNT };
static const char *const synth_names[] = { "normal", "lognormal", "10% outliers" };

/* One per-repeat value around 1 with relative spread cv. */
static double synth_draw(struct ms_rng *r, enum synth d, double cv)
{
	double z = ms_rng_normal(r);

	switch (d) {
	case SY_LOGNORMAL:
		return exp(cv * z);
	case SY_OUTLIERS:
		/* A repeat disturbed by something else on the machine: 5 sigma slower. */
		return 1 + cv * z + (ms_rng_uniform(r) < 0.1 ? 5 * cv : 0);
	default:
		return 1 + cv * z;
	}
}

struct stats_row {
	unsigned aa_sig, aa_alarm, sig[4], reg[4];
};

static const double slowdowns[4] = { 0.02, 0.05, 0.10, 0.20 };

static int stats_row(const struct ms_compare_opts *o, enum synth d, double cv, size_t n,
		     unsigned trials, uint64_t seed, struct stats_row *row)
{
	double a[256], b[256];
	struct ms_ab_result r;
	struct ms_rng rng;
	int ret;

	memset(row, 0, sizeof(*row));
	ms_rng_seed(&rng, seed);
	for (unsigned t = 0; t < trials; t++)
		for (int s = -1; s < 4; s++) {
			double slow = s < 0 ? 0 : slowdowns[s];

			for (size_t i = 0; i < n; i++)
				a[i] = synth_draw(&rng, d, cv);
			for (size_t i = 0; i < n; i++)
				b[i] = (1 + slow) * synth_draw(&rng, d, cv);
			ret = ms_ab_test(o, a, n, b, n, -1, 0, ms_rng_next(&rng), &r);
			if (ret)
				return ret;
			if (s < 0) {
				row->aa_sig += r.p < o->alpha;
				row->aa_alarm += r.verdict == MS_AB_REGRESSED ||
						 r.verdict == MS_AB_IMPROVED;
			} else {
				row->sig[s] += r.p < o->alpha && r.ratio > 1;
				row->reg[s] += r.verdict == MS_AB_REGRESSED;
			}
		}
	return 0;
}

static int parse_list(const char *text, double *v, unsigned max, unsigned *n)
{
	char *copy = strdup(text), *save = NULL, *w, *end;

	*n = 0;
	if (!copy)
		return -ENOMEM;
	for (w = strtok_r(copy, ",", &save); w && *n < max; w = strtok_r(NULL, ",", &save)) {
		v[*n] = strtod(w, &end);
		if (end == w || (*end && strcmp(end, "%")) || !(v[*n] > 0))
			break;
		if (*end == '%')
			v[*n] /= 100;
		(*n)++;
	}
	free(copy);
	return w ? -EINVAL : 0;
}

static void stats_header(const struct ms_compare_opts *o, unsigned trials)
{
	printf("# mmstorm bench --stats: `mmstorm compare`'s test and verdict on synthetic "
	       "per-repeat values\n# %u trials per cell; alpha %.3g, threshold %.3g%%, %.0f%% "
	       "bootstrap interval, power %.0f%%\n# B = A slowed down by s. MW: p < alpha with B "
	       "found slower. regr: the verdict is \"regressed\".\n# A/A: both sides from one "
	       "distribution; sig: p < alpha, alarm: verdict regressed or improved.\n\n",
	       trials, o->alpha, 100 * o->threshold, 100 * o->level, 100 * o->power);
	printf("%-13s %5s %4s | %-14s |", "distribution", "cv", "n", "A/A sig/alarm");
	for (int s = 0; s < 4; s++)
		printf(" %3.0f%% MW/regr  |", 100 * slowdowns[s]);
	printf(" need(10%%)\n");
}

static int stats_grid(const struct ms_compare_opts *o, const double *cvs, unsigned ncv,
		      const double *ns, unsigned nn, unsigned trials, uint64_t seed)
{
	struct stats_row row;
	int ret;

	stats_header(o, trials);
	for (int d = 0; d < SY__COUNT; d++)
		for (unsigned c = 0; c < ncv; c++)
			for (unsigned k = 0; k < nn; k++) {
				size_t n = (size_t)ns[k];

				/* Other shapes once, at the middle size: the shape matters less. */
				if (d != SY_NORMAL && k != nn / 2)
					continue;
				ret = stats_row(o, (enum synth)d, cvs[c], n, trials,
						seed + d * 1000 + c * 100 + k, &row);
				if (ret)
					return ret;
				printf("%-13s %4.1f%% %4zu | %5.1f%% %5.1f%%  |", synth_names[d],
				       100 * cvs[c], n, 100.0 * row.aa_sig / trials,
				       100.0 * row.aa_alarm / trials);
				for (int s = 0; s < 4; s++)
					printf(" %5.1f%% %5.1f%% |", 100.0 * row.sig[s] / trials,
					       100.0 * row.reg[s] / trials);
				printf(" %zu\n", ms_mw_repeats_needed(0.10, cvs[c], o->alpha,
									 o->power));
				fflush(stdout);
			}
	return 0;
}

/* Measured noise: per case and metric of a real run, the repeats 10% detection needs. */
static int stats_noise(const struct ms_compare_opts *o, const char *spec)
{
	char err[1024];
	json_t *run = ms_run_load(spec, err, sizeof(err)), *c, *rep, *m, *seen;
	const char *metric;
	size_t i, k;

	if (!run) {
		fprintf(stderr, "bench: %s\n", err);
		return -EINVAL;
	}
	printf("\n# noise measured in %s (%s, %s%s%s): robust cv of the per-repeat values\n"
	       "%-24s %-22s %4s %7s %10s %10s %9s %9s\n", spec, ms_run_label(run),
	       json_string_value(json_object_get(json_object_get(run, "env"), "where")) ?: "?",
	       json_object_get(json_object_get(run, "env"), "accel") ? " " : "",
	       json_string_value(json_object_get(json_object_get(run, "env"), "accel")) ?: "",
	       "case", "metric", "n", "cv", "power@n 10%", "need 10%", "need 5%", "need 2%");
	json_array_foreach(json_object_get(run, "cases"), i, c) {
		seen = json_object();
		json_array_foreach(json_object_get(c, "repeats"), k, rep)
			json_object_foreach(json_object_get(rep, "metrics"), metric, m) {
				double *v = NULL, cv;
				const char *what;
				int better, n;

				if (json_object_get(seen, metric))
					continue;
				json_object_set_new(seen, metric, json_true());
				n = ms_case_values(c, metric, o->stat, &v, &better, &what);
				cv = n > 1 ? ms_robust_cv(v, (size_t)n) : NAN;
				free(v);
				if (n < 2 || !isfinite(cv))
					continue;
				printf("%-24s %-22s %4d %6.2f%% %10.3f %10zu %9zu %9zu\n",
				       json_string_value(json_object_get(c, "name")), metric, n,
				       100 * cv,
				       ms_mw_power((size_t)n, 0.10, cv, o->alpha, 2000, 1),
				       ms_mw_repeats_needed(0.10, cv, o->alpha, o->power),
				       ms_mw_repeats_needed(0.05, cv, o->alpha, o->power),
				       ms_mw_repeats_needed(0.02, cv, o->alpha, o->power));
			}
		json_decref(seen);
	}
	json_decref(run);
	return 0;
}

static void stats_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm bench --stats [--trials N] [--cv LIST] [--repeats LIST]\n"
		"                             [--noise-from RUN]... [--threshold PCT] [--alpha A]\n"
		"  Detection rate of `mmstorm compare` for slowdowns of 2, 5, 10 and 20%% and its\n"
		"  A/A false-alarm rate on synthetic per-repeat values (normal, lognormal, with\n"
		"  outliers), and with --noise-from the repeats a real run's noise calls for.\n"
		"  Defaults: --trials 1000 --cv 1%%,2%%,5%% --repeats 5,10,20\n");
}

int ms_bench_stats(int argc, char **argv)
{
	struct option opts[MS_ARRAY_SIZE(stat_opts) + 6] = {
		{ "trials", required_argument, NULL, 't' },
		{ "cv", required_argument, NULL, 'v' },
		{ "repeats", required_argument, NULL, 'n' },
		{ "noise-from", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
	};
	double cvs[16] = { 0.01, 0.02, 0.05 }, ns[16] = { 5, 10, 20 };
	unsigned ncv = 3, nn = 3, trials = 1000, nfrom = 0;
	const char *from[16];
	struct ms_compare_opts o;
	struct ms_need_cache cache = { 0 };
	int c, ret = 0;

	add_stat_opts(opts);
	ms_compare_opts_init(&o);
	o.cache = &cache;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': trials = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'v': ret = parse_list(optarg, cvs, 16, &ncv); break;
		case 'n': ret = parse_list(optarg, ns, 16, &nn); break;
		case 'f':
			if (nfrom < 16)
				from[nfrom++] = optarg;
			break;
		case 'h': stats_usage(stdout); return MS_EXIT_OK;
		default:
			if (c == '?' || stat_opt(&o, c, optarg))
				ret = -EINVAL;
		}
		if (ret)
			break;
	}
	for (unsigned k = 0; !ret && k < nn; k++)
		if (ns[k] < 2 || ns[k] > 256)
			ret = -EINVAL;
	if (ret || !trials || !ncv || !nn || optind != argc) {
		stats_usage(stderr);
		return MS_EXIT_USAGE;
	}
	ret = stats_grid(&o, cvs, ncv, ns, nn, trials, o.seed);
	for (unsigned i = 0; !ret && i < nfrom; i++)
		ret = stats_noise(&o, from[i]);
	return ret ? MS_EXIT_INFRA : MS_EXIT_OK;
}

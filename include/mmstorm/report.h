/* `mmstorm compare`, `report` and `bisect-run`: A/B verdicts, charts, `git bisect run` support. */
#ifndef MMSTORM_REPORT_H
#define MMSTORM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* argv[0] is the command name; each returns the process exit status (docs/compare.md). */
int ms_cmd_compare(int argc, char **argv);
int ms_cmd_report(int argc, char **argv);
int ms_cmd_bisect_run(int argc, char **argv);
/* `mmstorm bench --stats`: argv[0] is "--stats". */
int ms_bench_stats(int argc, char **argv);

#define MS_COMPARE_SCHEMA "mmstorm-compare/1"
#define MS_AA_SCHEMA "mmstorm-aa/1"

/* Repeats needed depend only on (threshold, spread): compare memoizes them per call. */
struct ms_need_cache {
	unsigned n;
	struct {
		double effect, cv;
		size_t need;
	} e[128];
};

struct ms_compare_opts {
	double threshold;	/* relative change worth a verdict (0.05) */
	double alpha;		/* Mann-Whitney significance level (0.01) */
	double power;		/* asked of the repeats for a threshold-sized change (0.99) */
	double level;		/* bootstrap interval (0.95) */
	unsigned resamples;	/* bootstrap resamples (2000) */
	uint64_t seed;		/* bootstrap seed (1): the same input gives the same output */
	const char *stat;	/* histogram statistic per repeat: p50 (default), p90, p99, ... */
	const json_t *aa;	/* ms_compare_aa() of a calibration run, or NULL */
	const char *cases;	/* fnmatch pattern of the cases compared (NULL: all) */
	const char *metrics;	/* of the metrics (NULL: all) */
	struct ms_need_cache *cache;	/* memo of repeats-needed results (NULL: none) */
};

void ms_compare_opts_init(struct ms_compare_opts *o);

/*
 * Load a run.json (or a directory holding one). "P1,P2,..." pools runs of one suite, e.g.
 * CI shards or runs made at different times: a case's repeats are concatenated in that
 * order. NULL with a message in err on failure (unreadable, not JSON, unknown schema).
 */
json_t *ms_run_load(const char *spec, char *err, size_t errlen);
/* The run's name in reports: env.kernel_input.label (`mmstorm vm`), else run_id. */
const char *ms_run_label(const json_t *run);

/* ---- one metric, A against B ---- */

enum ms_ab {
	MS_AB_SAME,		/* no change beyond the threshold, with enough repeats to tell */
	MS_AB_REGRESSED,
	MS_AB_IMPROVED,
	MS_AB_INSUFFICIENT,	/* cannot tell: more repeats are needed */
	MS_AB_NODATA,		/* a side has no completed repeat with this metric */
};
const char *ms_ab_name(enum ms_ab v);

struct ms_ab_result {
	size_t na, nb;
	double med_a, med_b;
	double ratio, ci_lo, ci_hi;	/* median(B) / median(A) and its bootstrap interval */
	double p, u;			/* Mann-Whitney, two-sided */
	bool exact;
	double cv;			/* pooled robust relative spread of the repeats */
	double noise;			/* A/A noise floor that applied (0: none) */
	size_t need;			/* repeats per side to see the threshold, or SIZE_MAX */
	enum ms_ab verdict;
	char why[192];
};

/*
 * The verdict on per-repeat values a (reference) and b: better is -1 when lower values are
 * better (latencies, bytes), +1 when higher ones are (rates); noise is the A/A noise floor
 * (relative, 0 for none). 0 or -errno.
 */
int ms_ab_test(const struct ms_compare_opts *o, const double *a, size_t na, const double *b,
	       size_t nb, int better, double noise, uint64_t seed, struct ms_ab_result *r);

/*
 * Per-repeat values of a metric of a case (repeats that completed: PASS or FAIL): histograms
 * by stat, counters as a rate per second of the repeat, gauges by peak. Returns the count
 * (0 if none) and a malloc'd array in *vals; *better as for ms_ab_test; *kind_stat names
 * what was taken ("p50", "rate", "peak"). -ENOMEM.
 */
int ms_case_values(const json_t *c, const char *metric, const char *stat, double **vals,
		   int *better, const char **kind_stat);

/* ---- whole runs ---- */

/* runs[1..n-1] each against runs[0]: the mmstorm-compare/1 model (docs/compare.md). */
json_t *ms_compare(const struct ms_compare_opts *o, const char *const *labels,
		   json_t *const *runs, unsigned n);
/* A/A calibration of one run: its repeats split alternately and into halves. */
json_t *ms_compare_aa(const struct ms_compare_opts *o, const char *label, const json_t *run);

void ms_compare_print(const json_t *cmp, FILE *f);	/* terminal table (also A/A models) */
void ms_compare_write_md(const json_t *cmp, FILE *f);
/* JSON, keys sorted, numbers to 10 significant digits (what --json writes). */
void ms_compare_write_json(const json_t *cmp, FILE *f);
void ms_compare_write_junit(const json_t *cmp, FILE *f);
/* Counts over a compare model: correctness regressions, metric regressions. */
void ms_compare_counts(const json_t *cmp, unsigned *correctness, unsigned *regressed);

/* ---- `mmstorm report`: gnuplot.c draws, html.c writes ---- */

struct ms_report {
	const char *dir;			/* output directory (exists) */
	const char *const *labels;
	json_t *const *runs;
	unsigned n;
	const struct ms_compare_opts *o;
	json_t *cmp;		/* ms_compare() of the runs when n >= 2, else NULL */
	json_t *trend;		/* --trend: runs oldest first, each with "sources", or NULL */
	json_t *charts;		/* ms_report_charts(): [{section, name, title, svg/error}] */
};

/*
 * Every chart as DIR/NAME.dat (data), DIR/NAME.gp (gnuplot script, restyle and rerun with
 * `gnuplot NAME.gp`) and DIR/NAME.svg (from gnuplot's svg terminal). A chart gnuplot could
 * not draw gets an "error" instead of "svg". 0 or -errno (files not writable).
 */
int ms_report_charts(struct ms_report *r);
/* DIR/report.html (self-contained: CSS and the SVGs inline) and DIR/report.md. 0 or -errno. */
int ms_report_write(const struct ms_report *r);
/* Every run.json under dir (4 levels deep at most), sorted by start time. NULL: err says. */
json_t *ms_report_find_runs(const char *dir, char *err, size_t errlen);

/* ---- `mmstorm bisect-run` ---- */

struct ms_bisect_opts {
	const char *suite;		/* suite file holding the case */
	const char *case_name;
	const char *good_run;		/* run.json (or its dir) of a known-good kernel */
	const char *kernel_build;	/* kernel tree to build (default: "." if no image) */
	const char *kernel;		/* an already built image instead */
	const char *config;		/* .config to build with (olddefconfig applied) */
	const char *make_jobs;		/* make -j value (default: online CPUs) */
	const char *work;		/* results of the bisect steps, logs, bisect.log */
	const char *const *vm_args;	/* more `mmstorm vm` options */
	unsigned nvm_args;
	struct ms_compare_opts o;	/* how B is judged against the good run */
	bool correctness_only;		/* only the verdict decides, not the metrics */
};

/* 0 good, 1 bad, 125 cannot test this commit, 128 bisection must stop (bad setup). */
int ms_bisect_run(const struct ms_bisect_opts *b);
/* The verdict on one step's run against the good run: 0, 1 or 125, with the reason. */
int ms_bisect_judge(const struct ms_bisect_opts *b, const json_t *good, const json_t *run,
		    char *why, size_t len);

/*
 * For `mmstorm vm` with several kernels: ms_compare() with default options, written to
 * DIR/compare-stats.json and DIR/compare-stats.md. Returns correctness + metric regressions,
 * or -errno.
 */
int ms_compare_write_dir(const char *dir, const char *const *labels, json_t *const *runs,
			 unsigned n);

#endif

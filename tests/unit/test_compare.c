/* Unit tests for `mmstorm compare` and `report` on synthetic run.json files: verdicts, goldens. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mmstorm/report.h"
#include "mmstorm/result.h"

static char base[256];
static char cwd[PATH_MAX];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Every test works in a fresh directory and names runs relatively ("a", "b"), so the
 * "sources" in the outputs are the same on every machine. */
static void setup(void)
{
	const char *t = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	snprintf(base, sizeof(base), "%s/test_compare.XXXXXX", t);
	ck_assert_ptr_nonnull(mkdtemp(base));
	ck_assert_int_eq(chdir(base), 0);
}

static void teardown(void)
{
	ck_assert_int_eq(chdir(cwd), 0);
	nftw(base, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- synthetic runs ---- */

static json_t *hist(double p50)
{
	return json_pack("{s:s, s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:[[i,i],[i,i]]}",
			 "kind", "hist", "unit", "ns", "count", 100, "min", p50 / 2, "max",
			 p50 * 3, "mean", p50 * 1.1, "p50", p50, "p90", p50 * 1.5, "p99", p50 * 2,
			 "p999", p50 * 3, "buckets", (int)p50, 60, (int)(p50 * 2), 40);
}

static json_t *repeat(int i, const char *verdict, json_t *metrics)
{
	return json_pack("{s:s, s:i, s:s, s:s, s:I, s:i, s:o, s:{s:i, s:i, s:[]}, s:[],"
			 " s:{s:I, s:I}}",
			 "case", "x", "repeat", i, "verdict", verdict, "reason",
			 strcmp(verdict, "PASS") ? "check failed: page 3 changed" : "",
			 "duration_ns", (json_int_t)1000000000, "iterations", 10,
			 "metrics", metrics,
			 "checks", "run", 10, "failed", strcmp(verdict, "FAIL") ? 0 : 1,
			 "failures", "notes", "pgtables", "pagetables_before_bytes",
			 (json_int_t)40960, "pagetables_peak_bytes", (json_int_t)409600 + 4096 * i);
}

static json_t *a_case(int index, const char *name, const char *size, json_t *repeats)
{
	const char *worst = "PASS";
	json_t *r;
	size_t i;

	json_array_foreach(repeats, i, r) {
		const char *v = json_string_value(json_object_get(r, "verdict"));

		if (ms_verdict_parse(v) > ms_verdict_parse(worst))
			worst = v;
	}
	return json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:o}", "index", index,
			 "name", name, "workload", "fork-storm", "params", "size", size, "workers",
			 "2", "children", "4", "verdict", worst, "reason",
			 strcmp(worst, "PASS") ? "check failed: page 3 changed" : "", "repeats",
			 repeats);
}

static json_t *hists(const double *p50, int n, const char *verdict)
{
	json_t *reps = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(reps, repeat(i, verdict, json_pack("{s:o}", "fork_ns",
									  hist(p50[i]))));
	return reps;
}

static json_t *counters(const double *v, int n)
{
	json_t *reps = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(reps, repeat(i, "PASS", json_pack("{s:{s:s, s:s, s:f},"
			" s:{s:s, s:s, s:i, s:i}}", "forks", "kind", "counter", "unit", "processes",
			"value", v[i], "parent_vmpte_bytes", "kind", "gauge", "unit", "bytes",
			"last", 8192, "peak", 16384)));
	return reps;
}

static json_t *run_of(const char *id, const char *release, const char *accel, json_t *cases)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s}, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:{s:s, s:i},"
			 " s:{s:I}, s:{s:s, s:s}, s:s, s:o}",
			 "schema", MS_RESULTS_SCHEMA, "status", "complete", "run_id", id,
			 "mmstorm", "version", "0.1.0", "suite", "name", "t", "path", "t.ini",
			 "kernel", "release", release, "version", "#1", "cmdline",
			 "console=ttyS0 mmstorm.resume=0 quiet", "cpu", "model", "test cpu",
			 "count", 2, "memory", "total_bytes", (json_int_t)1 << 31, "env", "where",
			 "vm", "accel", accel, "started", "2025-01-31T12:00:00Z", "cases", cases);
}

/*
 * A, the reference, and B:
 * - lat-slower: B's latencies are A's times 1.2 exactly; all 7 of B above all 7 of A, so
 *   U = 0 and p = 2 / C(14, 7) = 0.00058: regressed by +20%.
 * - lat-same: the same seven values on both sides: U = 24.5, p = 1, ratio 1: same.
 * - rate-faster: 5 repeats of 1 s, B forks 30% more: a higher rate is better, U = 0,
 *   p = 2 / C(10, 5) = 0.0079 < 0.01: improved by +30%. The gauge is constant: same.
 * - few: 3 repeats: p can never be below 2 / C(6, 3) = 0.1: insufficient repeats.
 * - broken: B FAILs (a correctness regression, listed first); its metrics still count.
 * - crashy: B CRASHes: its repeats measured nothing comparable: no data.
 * - gone: only in A.
 * - sized: the parameters differ: a warning.
 */
static const double lat_a[] = { 1000, 1010, 990, 1005, 995, 1002, 998 };
static const double lat_b[] = { 1200, 1212, 1188, 1206, 1194, 1202.4, 1197.6 };
static const double rate_a[] = { 1000, 1010, 990, 1005, 995 };
static const double rate_b[] = { 1300, 1313, 1287, 1306.5, 1293.5 };
static const double few_a[] = { 1000, 1100, 900 };
static const double few_b[] = { 1050, 950, 1150 };

static void write_runs(void)
{
	json_t *ca = json_array(), *cb = json_array(), *ra, *rb;

	json_array_append_new(ca, a_case(0, "lat-slower", "16M", hists(lat_a, 7, "PASS")));
	json_array_append_new(cb, a_case(0, "lat-slower", "16M", hists(lat_b, 7, "PASS")));
	json_array_append_new(ca, a_case(1, "lat-same", "16M", hists(lat_a, 7, "PASS")));
	json_array_append_new(cb, a_case(1, "lat-same", "16M", hists(lat_a, 7, "PASS")));
	json_array_append_new(ca, a_case(2, "rate-faster", "16M", counters(rate_a, 5)));
	json_array_append_new(cb, a_case(2, "rate-faster", "16M", counters(rate_b, 5)));
	json_array_append_new(ca, a_case(3, "few", "16M", hists(few_a, 3, "PASS")));
	json_array_append_new(cb, a_case(3, "few", "16M", hists(few_b, 3, "PASS")));
	json_array_append_new(ca, a_case(4, "broken", "16M", hists(lat_a, 5, "PASS")));
	json_array_append_new(cb, a_case(4, "broken", "16M", hists(lat_a, 5, "FAIL")));
	json_array_append_new(ca, a_case(5, "crashy", "16M", hists(lat_a, 5, "PASS")));
	json_array_append_new(cb, a_case(5, "crashy", "16M", hists(lat_a, 2, "CRASH")));
	json_array_append_new(ca, a_case(6, "gone", "16M", hists(lat_a, 5, "PASS")));
	json_array_append_new(ca, a_case(7, "sized", "16M", hists(lat_a, 5, "PASS")));
	json_array_append_new(cb, a_case(7, "sized", "64M", hists(lat_a, 5, "PASS")));
	ck_assert_int_eq(mkdir("a", 0755), 0);
	ck_assert_int_eq(mkdir("b", 0755), 0);
	ra = run_of("run-a", "6.1.0", "kvm", ca);
	rb = run_of("run-b", "6.12.0", "tcg", cb);
	ck_assert_int_eq(ms_json_write_atomic(ra, "a/run.json"), 0);
	ck_assert_int_eq(ms_json_write_atomic(rb, "b/run.json"), 0);
	json_decref(ra);
	json_decref(rb);
}

static json_t *load(const char *spec)
{
	char err[512];
	json_t *run = ms_run_load(spec, err, sizeof(err));

	ck_assert_msg(run != NULL, "%s", err);
	return run;
}

static json_t *compare_ab(struct ms_compare_opts *o)
{
	const char *labels[2] = { "A", "B" };
	json_t *runs[2] = { load("a"), load("b") }, *cmp;

	cmp = ms_compare(o, labels, runs, 2);
	json_decref(runs[0]);
	json_decref(runs[1]);
	ck_assert_ptr_nonnull(cmp);
	return cmp;
}

static const json_t *row_of(const json_t *cmp, const char *cname, const char *metric)
{
	json_t *c = json_array_get(json_object_get(cmp, "comparisons"), 0), *row;
	size_t i;

	json_array_foreach(json_object_get(c, "metrics"), i, row)
		if (!strcmp(json_string_value(json_object_get(row, "case")), cname) &&
		    !strcmp(json_string_value(json_object_get(row, "metric")), metric))
			return row;
	ck_abort_msg("no row %s %s", cname, metric);
	return NULL;
}

static const char *verdict_of(const json_t *cmp, const char *cname, const char *metric)
{
	return json_string_value(json_object_get(row_of(cmp, cname, metric), "verdict"));
}

static double num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* ---- tests ---- */

START_TEST(test_values)
{
	json_t *run, *c;
	double *v = NULL;
	const char *what;
	int better, n;

	write_runs();
	run = load("a");
	c = json_array_get(json_object_get(run, "cases"), 2);
	n = ms_case_values(c, "forks", "p50", &v, &better, &what);
	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(what, "rate");
	ck_assert_int_eq(better, 1);
	/* value per second of duration_ns (1 s) */
	ck_assert_double_eq_tol(v[1], 1010, 1e-9);
	free(v);
	n = ms_case_values(c, "parent_vmpte_bytes", "p50", &v, &better, &what);
	ck_assert_str_eq(what, "peak");
	ck_assert_int_eq(better, -1);
	ck_assert_double_eq(v[0], 16384);
	free(v);
	c = json_array_get(json_object_get(run, "cases"), 0);
	n = ms_case_values(c, "fork_ns", "p99", &v, &better, &what);
	ck_assert_int_eq(n, 7);
	ck_assert_str_eq(what, "p99");
	ck_assert_double_eq_tol(v[2], 1980, 1e-9);
	free(v);
	json_decref(run);
	run = load("b");
	/* CRASHed repeats measured nothing comparable */
	c = json_array_get(json_object_get(run, "cases"), 5);
	ck_assert_int_eq(ms_case_values(c, "fork_ns", "p50", &v, &better, &what), 0);
	free(v);
	json_decref(run);
}
END_TEST

START_TEST(test_verdicts)
{
	struct ms_compare_opts o;
	json_t *cmp, *c, *corr, *s;
	const json_t *row;
	char *warn_text;
	unsigned nc, nr;

	write_runs();
	ms_compare_opts_init(&o);
	cmp = compare_ab(&o);
	c = json_array_get(json_object_get(cmp, "comparisons"), 0);

	row = row_of(cmp, "lat-slower", "fork_ns");
	ck_assert_str_eq(json_string_value(json_object_get(row, "verdict")), "regressed");
	ck_assert_double_eq_tol(num(row, "ratio"), 1.2, 1e-9);
	ck_assert_double_eq_tol(num(row, "p"), 2.0 / 3432, 1e-6);
	ck_assert(json_number_value(json_array_get(json_object_get(row, "ci"), 0)) > 1.15);
	ck_assert_double_eq_tol(num(json_object_get(row, "a"), "p99"), 2000, 1e-9);

	row = row_of(cmp, "lat-same", "fork_ns");
	ck_assert_str_eq(json_string_value(json_object_get(row, "verdict")), "same");
	ck_assert_double_eq(num(row, "ratio"), 1);
	ck_assert_double_eq(num(row, "p"), 1);

	row = row_of(cmp, "rate-faster", "forks");
	ck_assert_str_eq(json_string_value(json_object_get(row, "verdict")), "improved");
	ck_assert_str_eq(json_string_value(json_object_get(row, "statistic")), "rate");
	ck_assert_str_eq(json_string_value(json_object_get(row, "better")), "higher");
	ck_assert_double_eq_tol(num(row, "ratio"), 1.3, 1e-9);
	ck_assert_double_eq_tol(num(row, "p"), 2.0 / 252, 1e-6);
	ck_assert_str_eq(verdict_of(cmp, "rate-faster", "parent_vmpte_bytes"), "same");

	row = row_of(cmp, "few", "fork_ns");
	ck_assert_str_eq(json_string_value(json_object_get(row, "verdict")), "insufficient");
	ck_assert_msg(strstr(json_string_value(json_object_get(row, "why")),
			     "insufficient repeats: need "), "%s",
		      json_string_value(json_object_get(row, "why")));
	ck_assert_int_gt(json_integer_value(json_object_get(row, "need")), 5);

	ck_assert_str_eq(verdict_of(cmp, "crashy", "fork_ns"), "no data");
	/* FAIL repeats still measured: the metric is compared (same values) */
	ck_assert_str_eq(verdict_of(cmp, "broken", "fork_ns"), "same");

	/* correctness first, in case order: broken regressed, crashy regressed, gone absent */
	corr = json_object_get(c, "correctness");
	ck_assert_uint_eq(json_array_size(corr), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(corr, 0), "case")),
			 "broken");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(corr, 0), "change")),
			 "regressed");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(corr, 1), "b")),
			 "CRASH");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(corr, 2), "b")),
			 "absent");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(corr, 2), "change")),
			 "changed");

	warn_text = json_dumps(json_object_get(c, "warnings"), 0);
	ck_assert_msg(strstr(warn_text, "accelerator differs: A kvm, B tcg"), "%s", warn_text);
	ck_assert(strstr(warn_text, "case sized: parameters differ (size: A 16M, B 64M)"));
	/* mmstorm.resume= is mmstorm's own, not a difference of the kernel command line */
	ck_assert(!strstr(warn_text, "command line"));
	free(warn_text);

	s = json_object_get(c, "summary");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "regressed")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "improved")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "correctness_regressions")), 2);
	ms_compare_counts(cmp, &nc, &nr);
	ck_assert_uint_eq(nc, 2);
	ck_assert_uint_eq(nr, 1);
	ck_assert_str_eq(json_string_value(json_object_get(cmp, "result")), "regressed");
	json_decref(cmp);
}
END_TEST

START_TEST(test_threshold_and_filters)
{
	struct ms_compare_opts o;
	json_t *cmp, *c;

	write_runs();
	ms_compare_opts_init(&o);
	/* A 25% threshold: +20% is significant but below it, so "same" */
	o.threshold = 0.25;
	o.cases = "lat-*";
	o.metrics = "fork_ns";
	cmp = compare_ab(&o);
	c = json_array_get(json_object_get(cmp, "comparisons"), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(c, "metrics")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(c, "correctness")), 0);
	ck_assert_str_eq(verdict_of(cmp, "lat-slower", "fork_ns"), "same");
	ck_assert(strstr(json_string_value(json_object_get(row_of(cmp, "lat-slower", "fork_ns"),
							   "why")), "below the 25% threshold"));
	json_decref(cmp);
	/* --stat p99: the tails are 1.2x apart as well */
	ms_compare_opts_init(&o);
	o.stat = "p99";
	o.metrics = "fork_ns";
	cmp = compare_ab(&o);
	ck_assert_str_eq(json_string_value(json_object_get(row_of(cmp, "lat-slower", "fork_ns"),
							   "statistic")), "p99");
	ck_assert_str_eq(verdict_of(cmp, "lat-slower", "fork_ns"), "regressed");
	json_decref(cmp);
}
END_TEST

/* A/A noise floor: a change inside the noise of the same kernel is not called. */
START_TEST(test_noise_floor)
{
	struct ms_compare_opts o;
	struct ms_ab_result r;
	double a[7], b[7];

	ms_compare_opts_init(&o);
	for (int i = 0; i < 7; i++) {
		a[i] = 1000 + i;
		b[i] = 1100 + i;
	}
	ck_assert_int_eq(ms_ab_test(&o, a, 7, b, 7, -1, 0, 1, &r), 0);
	ck_assert_int_eq(r.verdict, MS_AB_REGRESSED);
	ck_assert_int_eq(ms_ab_test(&o, a, 7, b, 7, -1, 0.15, 1, &r), 0);
	ck_assert_int_eq(r.verdict, MS_AB_INSUFFICIENT);
	ck_assert_msg(strstr(r.why, "insufficient repeats: need") && strstr(r.why, "A/A noise"),
		      "%s", r.why);
	ck_assert_int_eq(ms_ab_test(&o, a, 7, b, 7, 1, 0, 1, &r), 0);
	ck_assert_int_eq(r.verdict, MS_AB_IMPROVED);
	ck_assert_int_eq(ms_ab_test(&o, a, 0, b, 7, 1, 0, 1, &r), 0);
	ck_assert_int_eq(r.verdict, MS_AB_NODATA);
}
END_TEST

START_TEST(test_pool)
{
	json_t *run, *c;

	write_runs();
	run = load("a,b");
	c = json_array_get(json_object_get(run, "cases"), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(c, "repeats")), 14);
	/* the worst verdict of both: broken is FAIL in b */
	c = json_array_get(json_object_get(run, "cases"), 4);
	ck_assert_str_eq(json_string_value(json_object_get(c, "verdict")), "FAIL");
	ck_assert_uint_eq(json_array_size(json_object_get(run, "sources")), 2);
	json_decref(run);
	{
		char err[512];

		ck_assert_ptr_null(ms_run_load("a,nonexistent", err, sizeof(err)));
		ck_assert(strstr(err, "nonexistent"));
	}
}
END_TEST

START_TEST(test_aa)
{
	struct ms_compare_opts o;
	double v[10];
	json_t *cases = json_array(), *run, *aa, *noise;

	for (int i = 0; i < 10; i++)
		v[i] = 1000 + 10 * (i % 3);
	json_array_append_new(cases, a_case(0, "steady", "16M", hists(v, 10, "PASS")));
	run = run_of("aa", "6.1.0", "kvm", cases);
	ms_compare_opts_init(&o);
	aa = ms_compare_aa(&o, "aa", run);
	ck_assert_str_eq(json_string_value(json_object_get(aa, "schema")), MS_AA_SCHEMA);
	ck_assert_uint_eq(json_array_size(json_object_get(aa, "splits")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(aa, "tests")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(aa, "false_alarms")), 0);
	/* 10 repeats: halves of 5, enough for the test to work: no warning note */
	ck_assert_uint_eq(json_array_size(json_object_get(aa, "notes")), 0);
	/* even repeats 1000 1020 1010 1000 1020 (median 1010), odd 1010 1000 1020 1010 1000
	 * (1010); first half median 1010, second 1010: no noise on the medians */
	noise = json_object_get(json_object_get(aa, "noise"), "steady");
	ck_assert_double_eq(num(noise, "fork_ns"), 0);
	json_decref(aa);
	json_decref(run);
	cases = json_array();
	json_array_append_new(cases, a_case(0, "short", "16M", hists(v, 6, "PASS")));
	run = run_of("aa", "6.1.0", "kvm", cases);
	aa = ms_compare_aa(&o, "aa", run);
	ck_assert(strstr(json_string_value(json_array_get(json_object_get(aa, "notes"), 0)),
			 "calibrate with repeat >= 10"));
	json_decref(aa);
	json_decref(run);
}
END_TEST

START_TEST(test_junit)
{
	struct ms_compare_opts o;
	json_t *cmp;
	char *buf = NULL;
	size_t len = 0, n = 0;
	FILE *f;

	write_runs();
	ms_compare_opts_init(&o);
	cmp = compare_ab(&o);
	f = open_memstream(&buf, &len);
	ms_compare_write_junit(cmp, f);
	fclose(f);
	for (char *p = buf; (p = strstr(p, "<testcase ")); p++)
		n++;
	/* one per case x metric (9 rows) and per correctness difference (3) */
	ck_assert_uint_eq(n, 12);
	ck_assert(strstr(buf, "tests=\"12\" failures=\"3\""));
	ck_assert(strstr(buf, "<failure type=\"performance\" message=\"regressed: +20.0%"));
	ck_assert(strstr(buf, "<failure type=\"correctness\" message=\"PASS -&gt; FAIL"));
	ck_assert(strstr(buf, "<skipped message=\"insufficient repeats: need"));
	free(buf);
	json_decref(cmp);
}
END_TEST

START_TEST(test_bisect_judge)
{
	struct ms_bisect_opts b = { 0 };
	json_t *good, *bad;
	char why[512];

	write_runs();
	good = load("a");
	bad = load("b");
	ms_compare_opts_init(&b.o);
	b.case_name = "broken";
	ck_assert_int_eq(ms_bisect_judge(&b, good, bad, why, sizeof(why)), 1);
	ck_assert(strstr(why, "FAIL"));
	b.case_name = "crashy";
	ck_assert_int_eq(ms_bisect_judge(&b, good, bad, why, sizeof(why)), 1);
	b.case_name = "lat-slower";
	ck_assert_int_eq(ms_bisect_judge(&b, good, bad, why, sizeof(why)), 1);
	ck_assert_msg(strstr(why, "fork_ns regressed"), "%s", why);
	b.correctness_only = true;
	ck_assert_int_eq(ms_bisect_judge(&b, good, bad, why, sizeof(why)), 0);
	b.correctness_only = false;
	b.case_name = "lat-same";
	ck_assert_int_eq(ms_bisect_judge(&b, good, bad, why, sizeof(why)), 0);
	b.case_name = "few";
	ck_assert_int_eq(ms_bisect_judge(&b, good, bad, why, sizeof(why)), 125);
	ck_assert(strstr(why, "insufficient repeats"));
	b.case_name = "gone";
	ck_assert_int_eq(ms_bisect_judge(&b, good, bad, why, sizeof(why)), 125);
	json_decref(good);
	json_decref(bad);
}
END_TEST

/* ---- goldens ---- */

/* MMSTORM_GOLDEN_OUT=DIR writes what was produced, for review when the format changes. */
static void golden(const char *name, const char *got, const char *want)
{
	const char *dir = getenv("MMSTORM_GOLDEN_OUT");

	if (dir) {
		char path[PATH_MAX];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(got, f);
		fclose(f);
	}
	ck_assert_msg(!strcmp(got, want), "%s differs from the golden text:\n%s", name, got);
}

static char *out_of(const json_t *cmp, void (*fn)(const json_t *, FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fn(cmp, f);
	fclose(f);
	return buf;
}

/*
 * The goldens: the synthetic A and B above through compare's Markdown and JSON writers. Every
 * number in them is worked out in the comment on the runs or in test_verdicts; the
 * bootstrap ends come from the seeded generator (seed 1 and the case/metric name).
 */
static const char golden_md[] =
	"# mmstorm compare\n"
	"\n"
	"## B against A\n"
	"\n"
	"| | label | kernel | where | run | status |\n"
	"|---|---|---|---|---|---|\n"
	"| A | A | 6.1.0 | vm kvm | run-a | complete |\n"
	"| B | B | 6.12.0 | vm tcg | run-b | complete |\n"
	"\n"
	"Threshold 5%, alpha 0.01 (Mann-Whitney U, two-sided), 95% bootstrap interval of "
	"the ratio of medians, power 99% for the repeats needed.\n"
	"\n"
	"- **warning**: accelerator differs: A kvm, B tcg: KVM and TCG timings are not co"
	"mparable\n"
	"- **warning**: case sized: parameters differ (size: A 16M, B 64M): its metrics m"
	"easure different things\n"
	"\n"
	"### Correctness\n"
	"\n"
	"| case | A | B | change | reason in B |\n"
	"|---|---|---|---|---|\n"
	"| broken | PASS | FAIL | **regressed** | check failed: page 3 changed |\n"
	"| crashy | PASS | CRASH | **regressed** | check failed: page 3 changed |\n"
	"| gone | PASS | absent | **changed** |  |\n"
	"\n"
	"### Metrics\n"
	"\n"
	"| case | metric | A | B | B/A | interval | p | A p99 | B p99 | n A/B | verdict |\n"
	"|---|---|---:|---:|---:|---|---:|---:|---:|---|---|\n"
	"| lat-slower | fork_ns (p50) | 1us | 1.2us | 1.200 | 1.190-1.210 | 0.00058 | 2us"
	" | 2.4us | 7/7 | **regressed**: +20.0%, p = 0.00058 |\n"
	"| lat-same | fork_ns (p50) | 1us | 1us | 1.000 | 0.990-1.007 | 1 | 2us | 2us | 7"
	"/7 | same: interval within +-5% |\n"
	"| rate-faster | forks (rate) | 1000/s | 1300/s | 1.300 | 1.281-1.320 | 0.0079 | "
	"- | - | 5/5 | **improved**: +30.0%, p = 0.0079 |\n"
	"| rate-faster | parent_vmpte_bytes (peak) | 16KiB | 16KiB | 1.000 | 1.000-1.000 "
	"| 1 | - | - | 5/5 | same: interval within +-5% |\n"
	"| few | fork_ns (p50) | 1us | 1.05us | 1.050 | 0.864-1.278 | 0.7 | 2us | 2.1us |"
	" 3/3 | insufficient repeats: need 415 |\n"
	"| broken | fork_ns (p50) | 1us | 1us | 1.000 | 0.985-1.015 | 1 | 2us | 2us | 5/5"
	" | same: interval within +-5% |\n"
	"| crashy | fork_ns (p50) | 1us | - | - | - | - | 2us | - | 5/0 | no data: no com"
	"pleted repeat with this metric in B |\n"
	"| gone | fork_ns (p50) | 1us | - | - | - | - | 2us | - | 5/0 | no data: no compl"
	"eted repeat with this metric in B |\n"
	"| sized | fork_ns (p50) | 1us | 1us | 1.000 | 0.990-1.015 | 1 | 2us | 2us | 5/5 "
	"| same: interval within +-5% |\n"
	"\n"
	;

static const char golden_json[] =
	"{\n"
	"  \"comparisons\": [\n"
	"    {\n"
	"      \"a\": \"A\",\n"
	"      \"b\": \"B\",\n"
	"      \"correctness\": [],\n"
	"      \"metrics\": [\n"
	"        {\n"
	"          \"a\": {\n"
	"            \"cv\": 0.007413,\n"
	"            \"median\": 1000.0,\n"
	"            \"n\": 7,\n"
	"            \"p99\": 2000.0,\n"
	"            \"values\": [\n"
	"              1000.0,\n"
	"              1010.0,\n"
	"              990.0,\n"
	"              1005.0,\n"
	"              995.0,\n"
	"              1002.0,\n"
	"              998.0\n"
	"            ]\n"
	"          },\n"
	"          \"b\": {\n"
	"            \"cv\": 0.007413,\n"
	"            \"median\": 1200.0,\n"
	"            \"n\": 7,\n"
	"            \"p99\": 2400.0,\n"
	"            \"values\": [\n"
	"              1200.0,\n"
	"              1212.0,\n"
	"              1188.0,\n"
	"              1206.0,\n"
	"              1194.0,\n"
	"              1202.4,\n"
	"              1197.6\n"
	"            ]\n"
	"          },\n"
	"          \"better\": \"lower\",\n"
	"          \"case\": \"lat-slower\",\n"
	"          \"ci\": [\n"
	"            1.1905,\n"
	"            1.20958\n"
	"          ],\n"
	"          \"exact\": true,\n"
	"          \"metric\": \"fork_ns\",\n"
	"          \"need\": 5,\n"
	"          \"noise\": 0.0,\n"
	"          \"p\": 0.000582751,\n"
	"          \"ratio\": 1.2,\n"
	"          \"statistic\": \"p50\",\n"
	"          \"u\": 0.0,\n"
	"          \"unit\": \"ns\",\n"
	"          \"verdict\": \"regressed\",\n"
	"          \"why\": \"+20.0%, p = 0.00058\"\n"
	"        }\n"
	"      ],\n"
	"      \"notes\": [],\n"
	"      \"summary\": {\n"
	"        \"correctness_fixed\": 0,\n"
	"        \"correctness_regressions\": 0,\n"
	"        \"improved\": 0,\n"
	"        \"insufficient\": 0,\n"
	"        \"no data\": 0,\n"
	"        \"regressed\": 1,\n"
	"        \"same\": 0\n"
	"      },\n"
	"      \"warnings\": [\n"
	"        \"accelerator differs: A kvm, B tcg: KVM and TCG timings are not comparab"
	"le\"\n"
	"      ]\n"
	"    }\n"
	"  ],\n"
	"  \"options\": {\n"
	"    \"aa\": null,\n"
	"    \"alpha\": 0.01,\n"
	"    \"ci_level\": 0.95,\n"
	"    \"power\": 0.99,\n"
	"    \"resamples\": 2000,\n"
	"    \"seed\": 1,\n"
	"    \"statistic\": \"p50\",\n"
	"    \"threshold\": 0.05\n"
	"  },\n"
	"  \"reference\": \"A\",\n"
	"  \"result\": \"regressed\",\n"
	"  \"runs\": [\n"
	"    {\n"
	"      \"accel\": \"kvm\",\n"
	"      \"kernel\": \"6.1.0\",\n"
	"      \"label\": \"A\",\n"
	"      \"run_id\": \"run-a\",\n"
	"      \"sources\": [\n"
	"        \"a/run.json\"\n"
	"      ],\n"
	"      \"status\": \"complete\",\n"
	"      \"where\": \"vm\"\n"
	"    },\n"
	"    {\n"
	"      \"accel\": \"tcg\",\n"
	"      \"kernel\": \"6.12.0\",\n"
	"      \"label\": \"B\",\n"
	"      \"run_id\": \"run-b\",\n"
	"      \"sources\": [\n"
	"        \"b/run.json\"\n"
	"      ],\n"
	"      \"status\": \"complete\",\n"
	"      \"where\": \"vm\"\n"
	"    }\n"
	"  ],\n"
	"  \"schema\": \"mmstorm-compare/1\"\n"
	"}\n"
	;

START_TEST(test_golden_md)
{
	struct ms_compare_opts o;
	json_t *cmp;
	char *md;

	write_runs();
	ms_compare_opts_init(&o);
	cmp = compare_ab(&o);
	md = out_of(cmp, ms_compare_write_md);
	golden("compare.md", md, golden_md);
	free(md);
	json_decref(cmp);
}
END_TEST

START_TEST(test_golden_json)
{
	struct ms_compare_opts o;
	json_t *cmp;
	char *js;

	write_runs();
	ms_compare_opts_init(&o);
	o.cases = "lat-slower";
	cmp = compare_ab(&o);
	js = out_of(cmp, ms_compare_write_json);
	golden("compare.json", js, golden_json);
	free(js);
	json_decref(cmp);
}
END_TEST

/* ---- report pages, with the real gnuplot when it is installed ---- */

START_TEST(test_report_pages)
{
	struct ms_compare_opts o;
	struct ms_report r = { 0 };
	const char *labels[2] = { "A", "B" };
	json_t *runs[2];
	char err[256];
	FILE *f;
	char *html = NULL;
	size_t len = 0, nsvg = 0;

	write_runs();
	runs[0] = load("a");
	runs[1] = load("b");
	ms_compare_opts_init(&o);
	ck_assert_int_eq(mkdir("out", 0755), 0);
	r.dir = "out";
	r.labels = labels;
	r.runs = runs;
	r.n = 2;
	r.o = &o;
	r.cmp = ms_compare(&o, labels, runs, 2);
	r.trend = ms_report_find_runs(".", err, sizeof(err));
	ck_assert_msg(r.trend != NULL, "%s", err);
	ck_assert_uint_eq(json_array_size(r.trend), 2);
	ck_assert_int_eq(ms_report_charts(&r), 0);
	ck_assert_int_eq(ms_report_write(&r), 0);
	/* every chart leaves its script and data; the svg if gnuplot ran */
	ck_assert_int_eq(access("out/ratio-1.gp", R_OK), 0);
	ck_assert_int_eq(access("out/ratio-1.dat", R_OK), 0);
	ck_assert_int_eq(access("out/cdf-lat-slower-fork_ns.gp", R_OK), 0);
	ck_assert_int_eq(access("out/pgtables.dat", R_OK), 0);
	ck_assert_int_eq(access("out/trend-lat-slower.gp", R_OK), 0);
	f = fopen("out/report.html", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(getdelim(&html, &len, '\0', f) > 0, 1);
	fclose(f);
	ck_assert(strstr(html, "<!DOCTYPE html>"));
	ck_assert(strstr(html, "accelerator differs"));
	if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
		for (char *p = html; (p = strstr(p, "<svg")); p++)
			nsvg++;
		ck_assert_uint_ge(nsvg, 5);
		/* inline: no XML prolog, ids made unique per chart, nothing fetched from outside */
		ck_assert(!strstr(html, "<?xml"));
		ck_assert(strstr(html, "id='c0_gpPt0'") || strstr(html, "id=\"c0_"));
		ck_assert(!strstr(html, "http://www.w3.org/1999/xlink\" href") &&
			  !strstr(html, "src=\"http"));
	}
	ck_assert_int_eq(access("out/report.md", R_OK), 0);
	free(html);
	json_decref(r.cmp);
	json_decref(r.trend);
	json_decref(r.charts);
	json_decref(runs[0]);
	json_decref(runs[1]);
}
END_TEST

static Suite *compare_suite(void)
{
	Suite *s = suite_create("compare");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_verdicts);
	tcase_add_test(tc, test_threshold_and_filters);
	tcase_add_test(tc, test_noise_floor);
	tcase_add_test(tc, test_pool);
	tcase_add_test(tc, test_aa);
	tcase_add_test(tc, test_junit);
	tcase_add_test(tc, test_bisect_judge);
	tcase_add_test(tc, test_golden_md);
	tcase_add_test(tc, test_golden_json);
	tcase_add_test(tc, test_report_pages);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(compare_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

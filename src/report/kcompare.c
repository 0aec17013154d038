/* Kernels side by side (`mmstorm vm` with several kernels): verdict differences, metric medians. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/result.h"
#include "mmstorm/vm.h"

#define KC_SCHEMA "mmstorm-kcompare/1"

/* The one number per repeat a metric is compared by: p50 of a histogram, a counter's value,
 * a gauge's peak. */
static bool metric_value(const json_t *m, double *v, const char **stat)
{
	const char *kind = json_string_value(json_object_get(m, "kind"));
	const char *key = "p50";
	json_t *x;

	if (kind && !strcmp(kind, "counter"))
		key = "value";
	else if (kind && !strcmp(kind, "gauge"))
		key = "peak";
	x = json_object_get(m, key);
	if (!json_is_number(x))
		return false;
	*v = json_number_value(x);
	*stat = key;
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static json_t *find_case(const json_t *run, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(run, "cases"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "name")) ?: "", name))
			return c;
	return NULL;
}

/* Case names in order of first appearance over all runs. */
static json_t *case_names(json_t *const *runs, unsigned n)
{
	json_t *names = json_array(), *seen = json_object(), *c;
	size_t i;

	for (unsigned r = 0; names && seen && r < n; r++) {
		json_array_foreach(json_object_get(runs[r], "cases"), i, c) {
			const char *name = json_string_value(json_object_get(c, "name"));

			if (!name || json_object_get(seen, name))
				continue;
			json_object_set_new(seen, name, json_true());
			json_array_append_new(names, json_string(name));
		}
	}
	json_decref(seen);
	return names;
}

static const char *verdict_of(const json_t *c)
{
	const char *v = json_string_value(json_object_get(c, "verdict"));

	return c ? (v ? v : "none") : "absent";
}

static json_t *verdict_diff(const char *name, const char *const *labels, json_t *const *runs,
			    unsigned n)
{
	json_t *verdicts = json_object(), *reasons = json_object();
	bool differ = false;

	for (unsigned r = 0; r < n; r++) {
		json_t *c = find_case(runs[r], name);
		const char *reason = json_string_value(json_object_get(c, "reason"));

		json_object_set_new(verdicts, labels[r], json_string(verdict_of(c)));
		json_object_set_new(reasons, labels[r], json_string(reason ? reason : ""));
		differ |= strcmp(verdict_of(c), verdict_of(find_case(runs[0], name))) != 0;
	}
	if (!differ) {
		json_decref(verdicts);
		json_decref(reasons);
		return NULL;
	}
	return json_pack("{s:s, s:o, s:o}", "case", name, "verdicts", verdicts, "reasons",
			 reasons);
}

/* Metric names of a case over all runs and repeats, with their unit. */
static json_t *metric_names(const char *name, json_t *const *runs, unsigned n)
{
	json_t *names = json_object(), *rep, *m;
	const char *mname;
	size_t i;

	for (unsigned r = 0; names && r < n; r++) {
		json_array_foreach(json_object_get(find_case(runs[r], name), "repeats"), i, rep) {
			json_object_foreach(json_object_get(rep, "metrics"), mname, m) {
				if (!json_object_get(names, mname))
					json_object_set(names, mname, m);
			}
		}
	}
	return names;
}

static bool run_median(const json_t *c, const char *metric, double *med, size_t *count,
		       const char **stat)
{
	json_t *reps = json_object_get(c, "repeats"), *rep;
	double *vals = calloc(json_array_size(reps) + 1, sizeof(*vals));
	size_t i, k = 0;

	if (!vals)
		return false;
	json_array_foreach(reps, i, rep) {
		const char *v = json_string_value(json_object_get(rep, "verdict"));
		json_t *m = json_object_get(json_object_get(rep, "metrics"), metric);

		/* A repeat that did not complete measured something else: leave it out. */
		if (m && v && (!strcmp(v, "PASS") || !strcmp(v, "FAIL")) &&
		    metric_value(m, &vals[k], stat))
			k++;
	}
	*count = k;
	if (k)
		*med = median(vals, k);
	free(vals);
	return k > 0;
}

static json_t *metric_row(const char *name, const char *metric, const json_t *proto,
			  const char *const *labels, json_t *const *runs, unsigned n)
{
	json_t *medians = json_object(), *counts = json_object(), *ratios = json_object();
	const char *stat = "p50";
	double ref = NAN;
	const char *unit = json_string_value(json_object_get(proto, "unit"));

	for (unsigned r = 0; r < n; r++) {
		size_t count = 0;
		double med;

		if (!run_median(find_case(runs[r], name), metric, &med, &count, &stat)) {
			json_object_set_new(medians, labels[r], json_null());
			json_object_set_new(ratios, labels[r], json_null());
		} else {
			if (r == 0)
				ref = med;
			json_object_set_new(medians, labels[r], json_real(med));
			json_object_set_new(ratios, labels[r], isnan(ref) || ref == 0 ?
					    json_null() : json_real(med / ref));
		}
		json_object_set_new(counts, labels[r], json_integer((json_int_t)count));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "metric", metric, "unit",
			 unit ? unit : "", "statistic", stat, "median", medians, "repeats",
			 counts, "ratio", ratios);
}

static json_t *case_entry(const char *name, const char *const *labels, json_t *const *runs,
			  unsigned n)
{
	json_t *verdicts = json_object(), *rows = json_array(), *names, *proto;
	const char *metric;

	for (unsigned r = 0; r < n; r++)
		json_object_set_new(verdicts, labels[r],
				    json_string(verdict_of(find_case(runs[r], name))));
	names = metric_names(name, runs, n);
	json_object_foreach(names, metric, proto)
		json_array_append_new(rows, metric_row(name, metric, proto, labels, runs, n));
	json_decref(names);
	return json_pack("{s:s, s:o, s:o}", "case", name, "verdicts", verdicts, "metrics", rows);
}

static json_t *kcompare_json(const char *const *labels, json_t *const *runs, unsigned n)
{
	json_t *out, *names = case_names(runs, n), *diffs = json_array(), *cases = json_array();
	json_t *kernels = json_array(), *name;
	size_t i;

	for (unsigned r = 0; r < n; r++)
		json_array_append_new(kernels, json_pack("{s:s, s:s?, s:s?, s:s?}", "label",
			labels[r], "release", json_string_value(json_object_get(
			json_object_get(runs[r], "kernel"), "release")), "status",
			json_string_value(json_object_get(runs[r], "status")), "run_id",
			json_string_value(json_object_get(runs[r], "run_id"))));
	json_array_foreach(names, i, name) {
		json_t *d = verdict_diff(json_string_value(name), labels, runs, n);

		if (d)
			json_array_append_new(diffs, d);
		json_array_append_new(cases, case_entry(json_string_value(name), labels, runs, n));
	}
	json_decref(names);
	out = json_pack("{s:s, s:o, s:s, s:o, s:o}", "schema", KC_SCHEMA, "kernels", kernels,
			"reference", labels[0], "verdict_differences", diffs, "cases", cases);
	return out;
}

/* ---- Markdown ---- */

static void md_value(FILE *f, const json_t *v)
{
	if (!json_is_number(v))
		fprintf(f, " - |");
	else if (fabs(json_number_value(v)) >= 1e6 || json_number_value(v) ==
		 floor(json_number_value(v)))
		fprintf(f, " %.0f |", json_number_value(v));
	else
		fprintf(f, " %.3f |", json_number_value(v));
}

static void md_diffs(FILE *f, const json_t *cmp, const char *const *labels, unsigned n)
{
	json_t *diffs = json_object_get(cmp, "verdict_differences"), *d;
	size_t i;

	fprintf(f, "## Verdict differences (%zu)\n\n", json_array_size(diffs));
	if (!json_array_size(diffs)) {
		fprintf(f, "None: every case has the same verdict on every kernel.\n\n");
		return;
	}
	fprintf(f, "| case |");
	for (unsigned r = 0; r < n; r++)
		fprintf(f, " %s |", labels[r]);
	fprintf(f, "\n|---|");
	for (unsigned r = 0; r < n; r++)
		fprintf(f, "---|");
	fprintf(f, "\n");
	json_array_foreach(diffs, i, d) {
		fprintf(f, "| %s |", json_string_value(json_object_get(d, "case")));
		for (unsigned r = 0; r < n; r++)
			fprintf(f, " %s |", json_string_value(json_object_get(
				json_object_get(d, "verdicts"), labels[r])));
		fprintf(f, "\n");
	}
	fprintf(f, "\nReasons:\n\n");
	json_array_foreach(diffs, i, d) {
		for (unsigned r = 0; r < n; r++) {
			const char *why = json_string_value(json_object_get(
				json_object_get(d, "reasons"), labels[r]));

			if (why && *why)
				fprintf(f, "- %s on %s: %s\n", json_string_value(
					json_object_get(d, "case")), labels[r], why);
		}
	}
	fprintf(f, "\n");
}

static void md_metric_row(FILE *f, const json_t *c, const json_t *m, const char *const *labels,
			  unsigned n)
{
	json_t *medians = json_object_get(m, "median"), *ratios = json_object_get(m, "ratio");

	fprintf(f, "| %s | %s | %s |", json_string_value(json_object_get(c, "case")),
		json_string_value(json_object_get(m, "metric")),
		json_string_value(json_object_get(m, "unit")));
	for (unsigned r = 0; r < n; r++)
		md_value(f, json_object_get(medians, labels[r]));
	for (unsigned r = 1; r < n; r++) {
		json_t *ratio = json_object_get(ratios, labels[r]);

		if (json_is_number(ratio))
			fprintf(f, " %.3f |", json_number_value(ratio));
		else
			fprintf(f, " - |");
	}
	fprintf(f, "\n");
}

static void md_metrics(FILE *f, const json_t *cmp, const char *const *labels, unsigned n)
{
	json_t *c, *m;
	size_t i, k;

	fprintf(f, "## Metrics\n\nMedian over the completed repeats (histograms: p50; "
		"counters: value; gauges: peak), and the ratio to %s.\n\n"
		"| case | metric | unit |", labels[0]);
	for (unsigned r = 0; r < n; r++)
		fprintf(f, " %s |", labels[r]);
	for (unsigned r = 1; r < n; r++)
		fprintf(f, " %s/%s |", labels[r], labels[0]);
	fprintf(f, "\n|---|---|---|");
	for (unsigned r = 1; r < 2 * n; r++)
		fprintf(f, "---:|");
	fprintf(f, "\n");
	json_array_foreach(json_object_get(cmp, "cases"), i, c) {
		json_array_foreach(json_object_get(c, "metrics"), k, m)
			md_metric_row(f, c, m, labels, n);
	}
}

static int write_md(const char *path, const json_t *cmp, const char *const *labels,
		    unsigned n)
{
	FILE *f = fopen(path, "we");
	json_t *k;
	size_t i;
	int ret = 0;

	if (!f)
		return -errno;
	fprintf(f, "# Kernel comparison\n\nReference: %s.\n\n| kernel | release | run status |\n"
		"|---|---|---|\n", labels[0]);
	json_array_foreach(json_object_get(cmp, "kernels"), i, k)
		fprintf(f, "| %s | %s | %s |\n", json_string_value(json_object_get(k, "label")),
			json_string_value(json_object_get(k, "release")) ?: "?",
			json_string_value(json_object_get(k, "status")) ?: "?");
	fprintf(f, "\n");
	md_diffs(f, cmp, labels, n);
	md_metrics(f, cmp, labels, n);
	if (fflush(f) || ferror(f))
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

int ms_kcompare_write(const char *dir, const char *const *labels, json_t *const *runs,
		      unsigned n)
{
	char path[4096];
	json_t *cmp;
	int ret;

	if (n < 2)
		return -EINVAL;
	cmp = kcompare_json(labels, runs, n);
	if (!cmp)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/compare.json", dir);
	ret = ms_json_write_atomic(cmp, path);
	if (!ret) {
		snprintf(path, sizeof(path), "%s/compare.md", dir);
		ret = write_md(path, cmp, labels, n);
	}
	if (!ret)
		ret = (int)json_array_size(json_object_get(cmp, "verdict_differences"));
	json_decref(cmp);
	return ret;
}

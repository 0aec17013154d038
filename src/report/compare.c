/* `mmstorm compare`: per case and metric, B against A with a test, an interval and a verdict. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>

#include "mmstorm/report.h"
#include "mmstorm/result.h"
#include "mmstorm/stats.h"
#include "report/report_int.h"

void ms_compare_opts_init(struct ms_compare_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threshold = 0.05;
	o->alpha = 0.01;
	o->power = 0.99;
	o->level = 0.95;
	o->resamples = 2000;
	o->seed = 1;
	o->stat = "p50";
}

static const char *const ab_names[] = {
	[MS_AB_SAME] = "same",
	[MS_AB_REGRESSED] = "regressed",
	[MS_AB_IMPROVED] = "improved",
	[MS_AB_INSUFFICIENT] = "insufficient",
	[MS_AB_NODATA] = "no data",
};

const char *ms_ab_name(enum ms_ab v)
{
	return (unsigned)v < sizeof(ab_names) / sizeof(ab_names[0]) ? ab_names[v] : "?";
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Six significant digits: plenty for timings, and stable text for golden files. */
static json_t *jnum(double v)
{
	char buf[32];

	if (!isfinite(v))
		return json_null();
	snprintf(buf, sizeof(buf), "%.6g", v);
	return json_real(strtod(buf, NULL));
}

/* ---- loading runs ---- */

static json_t *load_one(const char *path, char *err, size_t errlen)
{
	char file[4096];
	struct stat st;
	json_error_t je;
	json_t *run;
	const char *schema;
	bool dir = !stat(path, &st) && S_ISDIR(st.st_mode);

	if (dir)
		snprintf(file, sizeof(file), "%s/run.json", path);
	else
		snprintf(file, sizeof(file), "%s", path);
	run = json_load_file(file, 0, &je);
	if (!run && dir) {
		snprintf(err, errlen, "%s: no run.json (a `mmstorm vm` run of several kernels has "
			 "one per kernel: %s/LABEL)", path, path);
		return NULL;
	}
	if (!run) {
		snprintf(err, errlen, "%s: %s", file, je.text);
		return NULL;
	}
	schema = str(run, "schema");
	if (!json_is_object(run) || !schema || strcmp(schema, MS_RESULTS_SCHEMA)) {
		snprintf(err, errlen, "%s: not a run.json of schema %s (found %s)", file,
			 MS_RESULTS_SCHEMA, schema ? schema : "none");
		json_decref(run);
		return NULL;
	}
	if (!json_is_array(json_object_get(run, "cases")))
		json_object_set_new(run, "cases", json_array());
	json_object_set_new(run, "sources", json_pack("[s]", file));
	return run;
}

static json_t *find_case(const json_t *run, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(run, "cases"), i, c)
		if (!strcmp(str(c, "name") ?: "", name))
			return c;
	return NULL;
}

static int verdict_rank(const char *v)
{
	return ms_verdict_parse(v);
}

/* Fold the cases of more into base: repeats appended, the verdict the worst of both. */
static void pool_into(json_t *base, const json_t *more)
{
	json_t *c, *rep;
	size_t i, k;

	json_array_foreach(json_object_get(more, "cases"), i, c) {
		json_t *b = find_case(base, str(c, "name") ?: "");

		if (!b) {
			json_array_append(json_object_get(base, "cases"), c);
			continue;
		}
		json_array_foreach(json_object_get(c, "repeats"), k, rep)
			json_array_append(json_object_get(b, "repeats"), rep);
		if (verdict_rank(str(c, "verdict")) > verdict_rank(str(b, "verdict"))) {
			json_object_set(b, "verdict", json_object_get(c, "verdict"));
			json_object_set(b, "reason", json_object_get(c, "reason"));
		}
	}
	json_array_extend(json_object_get(base, "sources"), json_object_get(more, "sources"));
}

json_t *ms_run_load(const char *spec, char *err, size_t errlen)
{
	char *copy = strdup(spec), *save = NULL, *path;
	json_t *base = NULL;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (path = strtok_r(copy, ",", &save); path; path = strtok_r(NULL, ",", &save)) {
		json_t *run = load_one(path, err, errlen);

		if (!run) {
			json_decref(base);
			base = NULL;
			break;
		}
		if (!base) {
			base = run;
			continue;
		}
		pool_into(base, run);
		json_decref(run);
	}
	if (!base && !path)
		snprintf(err, errlen, "'%s': no run given", spec);
	free(copy);
	return base;
}

const char *ms_run_label(const json_t *run)
{
	const char *l = str(json_object_get(json_object_get(run, "env"), "kernel_input"),
			    "label");

	return l ? l : str(run, "run_id") ?: "run";
}

/* ---- per-repeat values ---- */

/* Counters that count bad things: more of them is worse, whatever the rate. */
static bool counts_bad_things(const char *metric)
{
	return strstr(metric, "leak") || strstr(metric, "fail") || strstr(metric, "err");
}

static bool completed(const json_t *rep)
{
	const char *v = str(rep, "verdict");

	/* A repeat cut short (ERROR, TIMEOUT, CRASH) measured something else: leave it out. */
	return v && (!strcmp(v, "PASS") || !strcmp(v, "FAIL"));
}

static bool repeat_value(const json_t *rep, const char *metric, const char *stat, double *v,
			 int *better, const char **what)
{
	json_t *m = json_object_get(json_object_get(rep, "metrics"), metric), *x;
	const char *kind = str(m, "kind");
	double dur;

	if (!kind)
		return false;
	if (!strcmp(kind, "counter")) {
		x = json_object_get(m, "value");
		dur = (double)json_integer_value(json_object_get(rep, "duration_ns")) / 1e9;
		if (!json_is_number(x) || !(dur > 0))
			return false;
		*v = json_number_value(x) / dur;
		*better = counts_bad_things(metric) ? -1 : 1;
		*what = "rate";
		return true;
	}
	*what = strcmp(kind, "gauge") ? stat : "peak";
	x = json_object_get(m, *what);
	if (!json_is_number(x))
		return false;
	*v = json_number_value(x);
	*better = -1;
	return true;
}

int ms_case_values(const json_t *c, const char *metric, const char *stat, double **vals,
		   int *better, const char **kind_stat)
{
	json_t *reps = json_object_get(c, "repeats"), *rep;
	size_t i, n = 0;
	double *v = malloc((json_array_size(reps) + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	*better = -1;
	*kind_stat = stat;
	json_array_foreach(reps, i, rep)
		if (completed(rep) && repeat_value(rep, metric, stat, &v[n], better, kind_stat))
			n++;
	*vals = v;
	return (int)n;
}

/* ---- one metric ---- */

static void set_why(struct ms_ab_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_why(struct ms_ab_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

static double pooled_cv(const double *a, size_t na, const double *b, size_t nb)
{
	double ca = ms_robust_cv(a, na), cb = ms_robust_cv(b, nb);

	if (isnan(ca))
		return cb;
	if (isnan(cb))
		return ca;
	return sqrt((ca * ca + cb * cb) / 2);
}

/* The spread rounded to 2 significant digits: the answer hardly moves, and the memo hits. */
static size_t needed(const struct ms_compare_opts *o, double effect, double cv)
{
	struct ms_need_cache *c = o->cache;
	const unsigned cap = sizeof(c->e) / sizeof(c->e[0]);
	char buf[32];
	size_t n;

	if (isfinite(cv) && cv > 0) {
		snprintf(buf, sizeof(buf), "%.2g", cv);
		cv = strtod(buf, NULL);
	}
	for (unsigned i = 0; c && i < c->n && i < cap; i++)
		if (c->e[i].effect == effect && c->e[i].cv == cv)
			return c->e[i].need;
	n = ms_mw_repeats_needed(effect, cv, o->alpha, o->power);
	if (c) {
		/* a ring: when full, the oldest answer goes */
		c->e[c->n % cap].effect = effect;
		c->e[c->n % cap].cv = cv;
		c->e[c->n++ % cap].need = n;
	}
	return n;
}

static void need_text(char *buf, size_t len, size_t need)
{
	if (need == SIZE_MAX)
		snprintf(buf, len, "need more (the noise cannot be measured)");
	else
		snprintf(buf, len, "need %zu", need);
}

/*
 * The decision, in order: a significant change (p < alpha, interval clear of 1) at least the
 * threshold and above the A/A noise is a regression or an improvement; a significant change
 * below the threshold is "same"; an interval inside +-threshold is "same"; with enough
 * repeats to have seen a threshold-sized change at the asked power, "same"; else the
 * repeats cannot tell, and the verdict says how many are needed.
 */
static void decide(const struct ms_compare_opts *o, int better, struct ms_ab_result *r)
{
	double change = r->ratio - 1, mag = fabs(change);
	bool sig = r->p < o->alpha && (r->ci_lo > 1 || r->ci_hi < 1);
	size_t nmin = r->na < r->nb ? r->na : r->nb;
	char need[64];

	need_text(need, sizeof(need), r->need);
	if (sig && mag >= o->threshold && mag > r->noise) {
		r->verdict = (change > 0) == (better < 0) ? MS_AB_REGRESSED : MS_AB_IMPROVED;
		set_why(r, "%+.1f%%, p = %.2g", 100 * change, r->p);
	} else if (sig && mag >= o->threshold) {
		r->verdict = MS_AB_INSUFFICIENT;
		need_text(need, sizeof(need), needed(o, mag, fmax(r->cv, r->noise)));
		set_why(r, "insufficient repeats: %s (%+.1f%% is within the A/A noise of %.1f%%)",
			need, 100 * change, 100 * r->noise);
	} else if (sig) {
		r->verdict = MS_AB_SAME;
		set_why(r, "%+.1f%% is significant but below the %.3g%% threshold",
			100 * change, 100 * o->threshold);
	} else if (r->ci_lo >= 1 - o->threshold && r->ci_hi <= 1 + o->threshold) {
		r->verdict = MS_AB_SAME;
		set_why(r, "interval within +-%.3g%%", 100 * o->threshold);
	} else if (r->need != SIZE_MAX && nmin >= r->need) {
		r->verdict = MS_AB_SAME;
		set_why(r, "no significant change; %zu repeats see +-%.3g%% at %.0f%% power", nmin,
			100 * o->threshold, 100 * o->power);
	} else {
		r->verdict = MS_AB_INSUFFICIENT;
		set_why(r, "insufficient repeats: %s", need);
	}
}

int ms_ab_test(const struct ms_compare_opts *o, const double *a, size_t na, const double *b,
	       size_t nb, int better, double noise, uint64_t seed, struct ms_ab_result *r)
{
	struct ms_mw mw;
	struct ms_ci ci;
	int ret;

	memset(r, 0, sizeof(*r));
	r->na = na;
	r->nb = nb;
	r->med_a = na ? ms_median(a, na) : NAN;
	r->med_b = nb ? ms_median(b, nb) : NAN;
	r->ratio = r->ci_lo = r->ci_hi = r->p = r->u = r->cv = NAN;
	r->noise = noise > 0 ? noise : 0;
	r->need = SIZE_MAX;
	if (!na || !nb) {
		r->verdict = MS_AB_NODATA;
		set_why(r, "no completed repeat with this metric in %s", na ? "B" : "A");
		return 0;
	}
	if ((ret = ms_mann_whitney(a, na, b, nb, &mw)))
		return ret;
	if ((ret = ms_bootstrap_median_ratio(a, na, b, nb, o->level, o->resamples, seed, &ci)))
		return ret;
	r->p = mw.p;
	r->u = mw.u;
	r->exact = mw.exact;
	r->ratio = ci.est;
	r->ci_lo = ci.lo;
	r->ci_hi = ci.hi;
	r->cv = pooled_cv(a, na, b, nb);
	if (na >= 2 || nb >= 2)
		r->need = needed(o, o->threshold, fmax(r->cv, r->noise));
	else
		r->need = ms_mw_min_repeats(o->alpha);
	if (!isfinite(r->ratio)) {
		r->verdict = MS_AB_INSUFFICIENT;
		set_why(r, "the reference median is 0: no ratio");
		return 0;
	}
	decide(o, better, r);
	return 0;
}

/* ---- the model ---- */

static const char *dig(const json_t *run, const char *a, const char *b)
{
	return str(json_object_get(run, a), b);
}

/* The command line minus what mmstorm itself varies between boots (mmstorm.resume=...). */
static void clean_cmdline(const char *in, char *out, size_t len)
{
	char *copy = strdup(in ? in : ""), *save = NULL, *w;
	size_t n = 0;

	out[0] = '\0';
	if (!copy)
		return;
	for (w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (!strncmp(w, "mmstorm.", 8) || !strncmp(w, "BOOT_IMAGE=", 11) ||
		    !strncmp(w, "initrd=", 7))
			continue;
		n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s", n ? " " : "", w);
	}
	free(copy);
}

static void warn_differ(json_t *warn, const char *what, const char *a, const char *b,
			const char *why)
{
	if (!a && !b)
		return;
	if (a && b && !strcmp(a, b))
		return;
	json_array_append_new(warn, json_sprintf("%s differs: A %s, B %s%s%s", what,
		a ? a : "(unknown)", b ? b : "(unknown)", why ? ": " : "", why ? why : ""));
}

static const char *int_text(const json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return json_string_value(v);
	snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	return buf;
}

/* ", KEY A/B" to list, as far as it fits. */
static size_t append(char *list, size_t size, size_t len, const char *key, const char *x,
		     const char *y)
{
	int n;

	if (len >= size)
		return len;
	n = snprintf(list + len, size - len, "%s%s %s/%s", len ? ", " : "", key, x ? x : "unset",
		     y ? y : "unset");
	return n < 0 ? len : len + (size_t)n;
}

static void config_notes(json_t *notes, const json_t *a, const json_t *b)
{
	json_t *ca = json_object_get(json_object_get(a, "kernel"), "config");
	json_t *cb = json_object_get(json_object_get(b, "kernel"), "config"), *v;
	char list[512] = "";
	const char *key;
	unsigned n = 0;
	size_t len = 0;

	if (!json_is_object(ca) || !json_is_object(cb))
		return;
	json_object_foreach(ca, key, v) {
		const char *x = json_string_value(v), *y = str(cb, key);

		if (!strcmp(key, "CONFIG_LOCALVERSION") || (x && y && !strcmp(x, y)))
			continue;
		if (n++ < 8)
			len = append(list, sizeof(list), len, key, x, y);
	}
	json_object_foreach(cb, key, v)
		if (!json_object_get(ca, key) && n++ < 8)
			len = append(list, sizeof(list), len, key, NULL, json_string_value(v));
	if (n)
		json_array_append_new(notes, json_sprintf("kernel config (A/B): %u MM-relevant "
			"option%s differ: %s%s", n, n == 1 ? "" : "s", list, n > 8 ? ", ..." : ""));
}

/* MemTotal moves with the kernel's own reservations: only a real difference in RAM counts. */
static void memory_warning(json_t *warn, const json_t *a, const json_t *b)
{
	json_t *ma = json_object_get(json_object_get(a, "memory"), "total_bytes");
	json_t *mb = json_object_get(json_object_get(b, "memory"), "total_bytes");
	double x = (double)json_integer_value(ma), y = (double)json_integer_value(mb);

	if (json_is_integer(ma) && json_is_integer(mb) && fabs(x - y) > 0.05 * fmax(x, y))
		json_array_append_new(warn, json_sprintf("memory differs: A %.0f MiB, B %.0f MiB",
							 x / 1048576, y / 1048576));
}

/* What makes timings of A and B incomparable, said before any number is read. */
static void comparability(const json_t *a, const json_t *b, json_t *warn, json_t *notes)
{
	char ca[4096], cb[4096], ba[32], bb[32];
	const char *sa = str(a, "status"), *sb = str(b, "status");

	warn_differ(warn, "accelerator", dig(a, "env", "accel"), dig(b, "env", "accel"),
		    "KVM and TCG timings are not comparable");
	warn_differ(warn, "where it ran", dig(a, "env", "where"), dig(b, "env", "where"),
		    "bare metal and guest timings are not comparable");
	warn_differ(warn, "CPU model", dig(a, "cpu", "model"), dig(b, "cpu", "model"), NULL);
	warn_differ(warn, "CPU count", int_text(json_object_get(json_object_get(a, "cpu"),
		    "count"), ba, sizeof(ba)), int_text(json_object_get(json_object_get(b, "cpu"),
		    "count"), bb, sizeof(bb)), NULL);
	memory_warning(warn, a, b);
	warn_differ(warn, "mmstorm version", dig(a, "mmstorm", "version"),
		    dig(b, "mmstorm", "version"), "the harness itself changed");
	clean_cmdline(dig(a, "kernel", "cmdline"), ca, sizeof(ca));
	clean_cmdline(dig(b, "kernel", "cmdline"), cb, sizeof(cb));
	warn_differ(warn, "kernel command line", ca, cb, NULL);
	warn_differ(warn, "suite", dig(a, "suite", "name"), dig(b, "suite", "name"), NULL);
	if (sa && strcmp(sa, "complete"))
		json_array_append_new(warn, json_sprintf("run A did not complete: %s", sa));
	if (sb && strcmp(sb, "complete"))
		json_array_append_new(warn, json_sprintf("run B did not complete: %s", sb));
	config_notes(notes, a, b);
}

static json_t *case_names(json_t *const *runs, unsigned n)
{
	json_t *names = json_array(), *c;
	size_t i;

	for (unsigned r = 0; r < n; r++)
		json_array_foreach(json_object_get(runs[r], "cases"), i, c) {
			const char *name = str(c, "name");
			json_t *x;
			size_t k;
			bool seen = false;

			json_array_foreach(names, k, x)
				seen |= name && !strcmp(json_string_value(x), name);
			if (name && !seen)
				json_array_append_new(names, json_string(name));
		}
	return names;
}

static bool bad_verdict(const char *v)
{
	return v && (!strcmp(v, "FAIL") || !strcmp(v, "TIMEOUT") || !strcmp(v, "CRASH"));
}

static json_t *correctness_row(const char *name, const json_t *ca, const json_t *cb)
{
	const char *va = ca ? str(ca, "verdict") ?: "none" : "absent";
	const char *vb = cb ? str(cb, "verdict") ?: "none" : "absent";
	const char *change;

	if (bad_verdict(vb) && !bad_verdict(va))
		change = "regressed";
	else if (bad_verdict(va) && !bad_verdict(vb))
		change = "fixed";
	else if (bad_verdict(va))
		change = "failing in both";
	else if (strcmp(va, vb))
		change = "changed";
	else
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "case", name, "a", va, "b", vb,
			 "change", change, "reason_a", ca ? str(ca, "reason") ?: "" : "",
			 "reason_b", cb ? str(cb, "reason") ?: "" : "");
}

static void params_warning(json_t *warn, const char *name, const json_t *ca, const json_t *cb)
{
	json_t *pa = json_object_get(ca, "params"), *pb = json_object_get(cb, "params"), *v;
	const char *key;

	if (!json_object_size(pa) || !json_object_size(pb) || json_equal(pa, pb))
		return;
	json_object_foreach(pa, key, v) {
		const char *x = json_string_value(v), *y = str(pb, key);

		if (!y || !x || strcmp(x, y)) {
			json_array_append_new(warn, json_sprintf("case %s: parameters differ "
				"(%s: A %s, B %s): its metrics measure different things", name,
				key, x ? x : "?", y ? y : "unset"));
			return;
		}
	}
	json_array_append_new(warn, json_sprintf("case %s: parameters differ", name));
}

/* Metric names of a case on either side, in the order they first appear. */
static json_t *metric_names(const json_t *ca, const json_t *cb)
{
	const json_t *cs[2] = { ca, cb };
	json_t *names = json_array(), *rep, *m;
	const char *key;
	size_t i;

	for (int s = 0; s < 2; s++)
		json_array_foreach(json_object_get(cs[s], "repeats"), i, rep)
			json_object_foreach(json_object_get(rep, "metrics"), key, m) {
				json_t *x;
				size_t k;
				bool seen = false;

				json_array_foreach(names, k, x)
					seen |= !strcmp(json_string_value(x), key);
				if (!seen)
					json_array_append_new(names, json_string(key));
			}
	return names;
}

static const char *metric_unit(const json_t *ca, const json_t *cb, const char *metric)
{
	const json_t *cs[2] = { ca, cb };
	json_t *rep;
	size_t i;

	for (int s = 0; s < 2; s++)
		json_array_foreach(json_object_get(cs[s], "repeats"), i, rep) {
			json_t *m = json_object_get(json_object_get(rep, "metrics"), metric);

			if (m)
				return str(m, "unit") ?: "";
		}
	return "";
}

static json_t *values_json(const double *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jnum(v[i]));
	return a;
}

/* Median over completed repeats of the repeat's p99: the tail next to the compared median. */
static double median_p99(const json_t *c, const char *metric)
{
	double *v = NULL, r = NAN;
	const char *what;
	int better, n = ms_case_values(c, metric, "p99", &v, &better, &what);

	if (n > 0 && !strcmp(what, "p99"))
		r = ms_median(v, (size_t)n);
	free(v);
	return r;
}

static json_t *side_json(const json_t *c, const char *metric, const double *v, size_t n,
			 bool hist)
{
	json_t *s = json_pack("{s:I, s:o, s:o, s:o}", "n", (json_int_t)n, "median",
			      jnum(n ? ms_median(v, n) : NAN), "cv", jnum(ms_robust_cv(v, n)),
			      "values", values_json(v, n));

	if (hist)
		json_object_set_new(s, "p99", jnum(median_p99(c, metric)));
	return s;
}

static double aa_noise(const struct ms_compare_opts *o, const char *cname, const char *metric)
{
	json_t *n = json_object_get(json_object_get(json_object_get(o->aa, "noise"), cname),
				    metric);

	return json_is_number(n) ? json_number_value(n) : 0;
}

static json_t *metric_row(const struct ms_compare_opts *o, const char *cname, const char *metric,
			  const json_t *ca, const json_t *cb)
{
	double *a = NULL, *b = NULL;
	const char *what_a = o->stat, *what_b = o->stat;
	int ba = -1, bb = -1, na, nb, ret;
	char seed_text[512];
	struct ms_ab_result r;
	json_t *row = NULL;
	bool hist;

	na = ca ? ms_case_values(ca, metric, o->stat, &a, &ba, &what_a) : 0;
	nb = cb ? ms_case_values(cb, metric, o->stat, &b, &bb, &what_b) : 0;
	if (na < 0 || nb < 0)
		goto out_free;
	if (!na)
		what_a = what_b;
	snprintf(seed_text, sizeof(seed_text), "%s/%s", cname, metric);
	ret = ms_ab_test(o, a, (size_t)na, b, (size_t)nb, na ? ba : bb, aa_noise(o, cname, metric),
			 ms_seed_from(o->seed, seed_text), &r);
	if (ret)
		goto out_free;
	hist = strcmp(what_a, "rate") && strcmp(what_a, "peak");
	row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:[o, o], s:o, s:o, s:b, s:o,"
			" s:o, s:s, s:s}",
			"case", cname, "metric", metric, "unit", metric_unit(ca, cb, metric),
			"statistic", what_a, "better", (na ? ba : bb) < 0 ? "lower" : "higher",
			"a", side_json(ca, metric, a, (size_t)na, hist),
			"b", side_json(cb, metric, b, (size_t)nb, hist),
			"ratio", jnum(r.ratio), "ci", jnum(r.ci_lo), jnum(r.ci_hi),
			"p", jnum(r.p), "u", jnum(r.u), "exact", r.exact,
			"need", r.need == SIZE_MAX ? json_null() : json_integer((json_int_t)r.need),
			"noise", jnum(r.noise), "verdict", ms_ab_name(r.verdict), "why", r.why);
out_free:
	free(a);
	free(b);
	return row;
}

static void count_verdict(json_t *summary, const char *key)
{
	json_object_set_new(summary, key, json_integer(json_integer_value(
		json_object_get(summary, key)) + 1));
}

static json_t *comparison(const struct ms_compare_opts *o, const char *la, const json_t *a,
			  const char *lb, const json_t *b)
{
	json_t *warn = json_array(), *notes = json_array(), *corr = json_array();
	json_t *rows = json_array(), *names, *name, *summary;
	json_t *both[2] = { (json_t *)a, (json_t *)b };
	size_t i, k;

	summary = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "correctness_regressions", 0,
			    "correctness_fixed", 0, "regressed", 0, "improved", 0, "same", 0,
			    "insufficient", 0, "no data", 0);
	comparability(a, b, warn, notes);
	names = case_names(both, 2);
	json_array_foreach(names, i, name) {
		const char *cname = json_string_value(name);
		json_t *ca = find_case(a, cname), *cb = find_case(b, cname), *row, *metrics, *m;

		if (o->cases && fnmatch(o->cases, cname, 0))
			continue;
		row = correctness_row(cname, ca, cb);
		if (row) {
			const char *ch = str(row, "change");

			if (!strcmp(ch, "regressed"))
				count_verdict(summary, "correctness_regressions");
			else if (!strcmp(ch, "fixed"))
				count_verdict(summary, "correctness_fixed");
			json_array_append_new(corr, row);
		}
		if (ca && cb)
			params_warning(warn, cname, ca, cb);
		metrics = metric_names(ca, cb);
		json_array_foreach(metrics, k, m) {
			if (o->metrics && fnmatch(o->metrics, json_string_value(m), 0))
				continue;
			row = metric_row(o, cname, json_string_value(m), ca, cb);
			if (!row)
				continue;
			count_verdict(summary, str(row, "verdict"));
			json_array_append_new(rows, row);
		}
		json_decref(metrics);
	}
	json_decref(names);
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "a", la, "b", lb, "warnings", warn,
			 "notes", notes, "correctness", corr, "metrics", rows, "summary", summary);
}

static json_t *run_info(const char *label, const json_t *run)
{
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:O?}", "label", label,
			 "run_id", str(run, "run_id"), "kernel", dig(run, "kernel", "release"),
			 "status", str(run, "status"), "where", dig(run, "env", "where"),
			 "accel", dig(run, "env", "accel"), "sources",
			 json_object_get(run, "sources"));
}

static json_t *options_json(const struct ms_compare_opts *o)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:i, s:I, s:s, s:s?}", "threshold",
			 jnum(o->threshold), "alpha", jnum(o->alpha), "power", jnum(o->power),
			 "ci_level", jnum(o->level), "resamples", (int)o->resamples, "seed",
			 (json_int_t)o->seed, "statistic", o->stat, "aa",
			 o->aa ? str(o->aa, "label") : NULL);
}

json_t *ms_compare(const struct ms_compare_opts *o, const char *const *labels,
		   json_t *const *runs, unsigned n)
{
	struct ms_compare_opts local = *o;
	struct ms_need_cache cache = { 0 };
	json_t *info = json_array(), *cmps = json_array();
	unsigned corr = 0, reg = 0;
	json_t *out;

	for (unsigned r = 0; r < n; r++)
		json_array_append_new(info, run_info(labels[r], runs[r]));
	if (!local.cache)
		local.cache = &cache;
	for (unsigned r = 1; r < n; r++)
		json_array_append_new(cmps, comparison(&local, labels[0], runs[0], labels[r],
						       runs[r]));
	out = json_pack("{s:s, s:o, s:o, s:s, s:o}", "schema", MS_COMPARE_SCHEMA, "options",
			options_json(o), "runs", info, "reference", labels[0], "comparisons", cmps);
	ms_compare_counts(out, &corr, &reg);
	json_object_set_new(out, "result", json_string(corr || reg ? "regressed" : "ok"));
	return out;
}

void ms_compare_counts(const json_t *cmp, unsigned *correctness, unsigned *regressed)
{
	json_t *c;
	size_t i;

	*correctness = *regressed = 0;
	json_array_foreach(json_object_get(cmp, "comparisons"), i, c) {
		json_t *s = json_object_get(c, "summary");

		*correctness += (unsigned)json_integer_value(json_object_get(s,
							"correctness_regressions"));
		*regressed += (unsigned)json_integer_value(json_object_get(s, "regressed"));
	}
}

/* ---- A/A ---- */

/* A copy of run whose cases keep only the repeats with keep(position, count). */
static json_t *split_run(const json_t *run, int half, bool alternate)
{
	json_t *copy = json_deep_copy(run), *c, *reps, *kept;
	size_t i, k;

	json_array_foreach(json_object_get(copy, "cases"), i, c) {
		reps = json_object_get(c, "repeats");
		kept = json_array();
		for (k = 0; k < json_array_size(reps); k++) {
			size_t nr = json_array_size(reps);
			bool first = alternate ? k % 2 == 0 : k < nr / 2;

			if (first == (half == 0))
				json_array_append(kept, json_array_get(reps, k));
		}
		json_object_set_new(c, "repeats", kept);
	}
	return copy;
}

static json_t *aa_split(const struct ms_compare_opts *o, const json_t *run, bool alternate)
{
	const char *labels[2];
	json_t *runs[2], *out;

	labels[0] = alternate ? "even repeats" : "first half";
	labels[1] = alternate ? "odd repeats" : "second half";
	runs[0] = split_run(run, 0, alternate);
	runs[1] = split_run(run, 1, alternate);
	out = ms_compare(o, labels, runs, 2);
	json_decref(runs[0]);
	json_decref(runs[1]);
	return out;
}

/* The A/A noise floor of a metric: the largest |ratio - 1| any split of the same run shows. */
static void aa_noise_into(json_t *noise, const json_t *split)
{
	json_t *cmp = json_array_get(json_object_get(split, "comparisons"), 0), *row;
	size_t i;

	json_array_foreach(json_object_get(cmp, "metrics"), i, row) {
		const char *cname = str(row, "case"), *metric = str(row, "metric");
		json_t *r = json_object_get(row, "ratio"), *per = json_object_get(noise, cname);
		double prev, d;

		if (!json_is_number(r))
			continue;
		if (!per) {
			per = json_object();
			json_object_set_new(noise, cname, per);
		}
		d = fabs(json_number_value(r) - 1);
		prev = json_number_value(json_object_get(per, metric));
		if (d > prev || !json_object_get(per, metric))
			json_object_set_new(per, metric, jnum(d));
	}
}

static size_t fewest_repeats(const json_t *run)
{
	size_t fewest = SIZE_MAX;
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(run, "cases"), i, c) {
		json_t *rep;
		size_t k, n = 0;

		if (str(c, "verdict") && !strcmp(str(c, "verdict"), "SKIP"))
			continue;
		json_array_foreach(json_object_get(c, "repeats"), k, rep)
			n += completed(rep);
		if (n < fewest)
			fewest = n;
	}
	return fewest == SIZE_MAX ? 0 : fewest;
}

json_t *ms_compare_aa(const struct ms_compare_opts *o, const char *label, const json_t *run)
{
	struct ms_compare_opts plain = *o;
	json_t *splits = json_array(), *noise = json_object();
	size_t fewest = fewest_repeats(run), nmin = ms_mw_min_repeats(o->alpha);
	json_t *notes = json_array();
	unsigned alarms = 0, tests = 0;
	json_t *s;
	size_t i;

	plain.aa = NULL;
	json_array_append_new(splits, aa_split(&plain, run, true));
	json_array_append_new(splits, aa_split(&plain, run, false));
	json_array_foreach(splits, i, s) {
		json_t *sum = json_object_get(json_array_get(json_object_get(s, "comparisons"), 0),
					      "summary");
		const char *keys[] = { "regressed", "improved", "same", "insufficient" };

		for (int k = 0; k < 4; k++) {
			unsigned v = (unsigned)json_integer_value(json_object_get(sum, keys[k]));

			tests += v;
			alarms += k < 2 ? v : 0;
		}
		aa_noise_into(noise, s);
	}
	if (fewest / 2 < nmin)
		json_array_append_new(notes, json_sprintf("a case has %zu completed repeats, so a "
			"half has %zu: the test needs %zu per side to reach alpha %g, so no alarm "
			"could be raised and the rate says little; calibrate with repeat >= %zu",
			fewest, fewest / 2, nmin, o->alpha, 2 * nmin));
	return json_pack("{s:s, s:s, s:o, s:i, s:i, s:o, s:o, s:o, s:o}", "schema", MS_AA_SCHEMA,
			 "label", label, "options", options_json(o), "false_alarms", (int)alarms,
			 "tests", (int)tests, "false_alarm_rate", jnum(tests ? (double)alarms /
			 tests : NAN), "noise", noise, "notes", notes, "splits", splits);
}

/* ---- text ---- */

static void fmt_value(char *buf, size_t len, const char *unit, const char *stat, const json_t *v)
{
	static const char *const bin[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double x = json_number_value(v);
	int k = 0;

	if (!json_is_number(v)) {
		snprintf(buf, len, "-");
	} else if (stat && !strcmp(stat, "rate")) {
		if (x >= 1e6)
			snprintf(buf, len, "%.4gM/s", x / 1e6);
		else if (x >= 1e4)
			snprintf(buf, len, "%.4gk/s", x / 1e3);
		else
			snprintf(buf, len, "%.4g/s", x);
	} else if (unit && !strcmp(unit, "ns")) {
		if (x < 1e3)
			snprintf(buf, len, "%.4gns", x);
		else if (x < 1e6)
			snprintf(buf, len, "%.4gus", x / 1e3);
		else if (x < 1e9)
			snprintf(buf, len, "%.4gms", x / 1e6);
		else
			snprintf(buf, len, "%.4gs", x / 1e9);
	} else if (unit && !strcmp(unit, "bytes")) {
		while (fabs(x) >= 1024 && k < 4) {
			x /= 1024;
			k++;
		}
		snprintf(buf, len, "%.4g%s", x, bin[k]);
	} else {
		snprintf(buf, len, "%.4g", x);
	}
}

static void fmt_ci(char *buf, size_t len, const json_t *row)
{
	json_t *ci = json_object_get(row, "ci");

	if (!json_is_number(json_array_get(ci, 0)) || !json_is_number(json_array_get(ci, 1)))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.3f-%.3f", json_number_value(json_array_get(ci, 0)),
			 json_number_value(json_array_get(ci, 1)));
}

static void fmt_num(char *buf, size_t len, const char *fmt, const json_t *v)
{
	if (json_is_number(v))
		snprintf(buf, len, fmt, json_number_value(v));
	else
		snprintf(buf, len, "-");
}

/* The cells of one metric row, shared by the terminal table and Markdown. */
struct row_text {
	char metric[96], a[32], b[32], ratio[16], ci[32], p[16], n[24], pa[32], pb[32];
	char verdict[256];	/* "improved: -9.1%, p = 0.0006", "insufficient repeats: ..." */
};

static void row_text(const json_t *row, struct row_text *t)
{
	const char *unit = str(row, "unit"), *stat = str(row, "statistic");
	const char *v = str(row, "verdict"), *why = str(row, "why");
	json_t *a = json_object_get(row, "a"), *b = json_object_get(row, "b");

	snprintf(t->metric, sizeof(t->metric), "%s (%s)", str(row, "metric"), stat);
	fmt_value(t->a, sizeof(t->a), unit, stat, json_object_get(a, "median"));
	fmt_value(t->b, sizeof(t->b), unit, stat, json_object_get(b, "median"));
	fmt_value(t->pa, sizeof(t->pa), unit, stat, json_object_get(a, "p99"));
	fmt_value(t->pb, sizeof(t->pb), unit, stat, json_object_get(b, "p99"));
	fmt_num(t->ratio, sizeof(t->ratio), "%.3f", json_object_get(row, "ratio"));
	fmt_ci(t->ci, sizeof(t->ci), row);
	fmt_num(t->p, sizeof(t->p), "%.2g", json_object_get(row, "p"));
	snprintf(t->n, sizeof(t->n), "%lld/%lld",
		 (long long)json_integer_value(json_object_get(a, "n")),
		 (long long)json_integer_value(json_object_get(b, "n")));
	/* "insufficient repeats: ..." says its verdict already. */
	if (!strncmp(why, v, strlen(v)))
		snprintf(t->verdict, sizeof(t->verdict), "%s", why);
	else
		snprintf(t->verdict, sizeof(t->verdict), "%s: %s", v, why);
}

static void print_header(const json_t *cmp, const json_t *c, FILE *f)
{
	json_t *o = json_object_get(cmp, "options"), *r;
	size_t i;

	fprintf(f, "mmstorm compare: %s against %s\n", str(c, "b"), str(c, "a"));
	json_array_foreach(json_object_get(cmp, "runs"), i, r) {
		const char *l = str(r, "label");

		if (strcmp(l, str(c, "a")) && strcmp(l, str(c, "b")))
			continue;
		fprintf(f, "  %s %-20s kernel %s, %s%s%s, run %s (%s)\n", strcmp(l, str(c, "a")) ?
			"B" : "A", l, str(r, "kernel") ?: "?", str(r, "where") ?: "?",
			str(r, "accel") ? " " : "", str(r, "accel") ?: "", str(r, "run_id") ?: "?",
			str(r, "status") ?: "?");
	}
	fprintf(f, "  threshold %.3g%%, alpha %.3g, %.0f%% bootstrap interval of the median ratio, "
		"power %.0f%%%s%s\n", 100 * json_number_value(json_object_get(o, "threshold")),
		json_number_value(json_object_get(o, "alpha")),
		100 * json_number_value(json_object_get(o, "ci_level")),
		100 * json_number_value(json_object_get(o, "power")),
		str(o, "aa") ? ", A/A noise from " : "", str(o, "aa") ?: "");
}

static void print_comparison(const json_t *cmp, const json_t *c, FILE *f)
{
	json_t *row, *s = json_object_get(c, "summary");
	int wc = 4, wm = 6;
	size_t i;

	print_header(cmp, c, f);
	json_array_foreach(json_object_get(c, "warnings"), i, row)
		fprintf(f, "warning: %s\n", json_string_value(row));
	json_array_foreach(json_object_get(c, "notes"), i, row)
		fprintf(f, "note: %s\n", json_string_value(row));
	fprintf(f, "\ncorrectness:%s\n", json_array_size(json_object_get(c, "correctness")) ?
		"" : " same verdicts");
	json_array_foreach(json_object_get(c, "correctness"), i, row)
		fprintf(f, "  %-24s %s -> %s  %s%s%s\n", str(row, "case"), str(row, "a"),
			str(row, "b"), str(row, "change"), *str(row, "reason_b") ? ": " : "",
			str(row, "reason_b"));
	json_array_foreach(json_object_get(c, "metrics"), i, row) {
		struct row_text t;

		row_text(row, &t);
		wc = (int)strlen(str(row, "case")) > wc ? (int)strlen(str(row, "case")) : wc;
		wm = (int)strlen(t.metric) > wm ? (int)strlen(t.metric) : wm;
	}
	fprintf(f, "\n%-*s  %-*s  %10s  %10s  %7s  %-13s  %7s  %5s  %s\n", wc, "case", wm,
		"metric", "A", "B", "B/A", "interval", "p", "n", "verdict");
	json_array_foreach(json_object_get(c, "metrics"), i, row) {
		struct row_text t;

		row_text(row, &t);
		fprintf(f, "%-*s  %-*s  %10s  %10s  %7s  %-13s  %7s  %5s  %s\n", wc,
			str(row, "case"), wm, t.metric, t.a, t.b, t.ratio, t.ci, t.p, t.n,
			t.verdict);
	}
	fprintf(f, "\nsummary: %lld regressed, %lld improved, %lld same, %lld insufficient, "
		"%lld without data; correctness: %lld regressed, %lld fixed\n",
		(long long)json_integer_value(json_object_get(s, "regressed")),
		(long long)json_integer_value(json_object_get(s, "improved")),
		(long long)json_integer_value(json_object_get(s, "same")),
		(long long)json_integer_value(json_object_get(s, "insufficient")),
		(long long)json_integer_value(json_object_get(s, "no data")),
		(long long)json_integer_value(json_object_get(s, "correctness_regressions")),
		(long long)json_integer_value(json_object_get(s, "correctness_fixed")));
}

static void print_aa(const json_t *aa, FILE *f)
{
	json_t *split, *per, *v;
	const char *cname, *metric;
	size_t i;

	json_array_foreach(json_object_get(aa, "splits"), i, split) {
		json_t *c = json_array_get(json_object_get(split, "comparisons"), 0);

		print_comparison(split, c, f);
		fprintf(f, "\n");
	}
	fprintf(f, "A/A calibration of %s: %lld false alarm%s in %lld tests (%.1f%%; alpha %.3g)\n",
		str(aa, "label"), (long long)json_integer_value(json_object_get(aa,
		"false_alarms")), json_integer_value(json_object_get(aa, "false_alarms")) == 1 ?
		"" : "s", (long long)json_integer_value(json_object_get(aa, "tests")),
		100 * json_number_value(json_object_get(aa, "false_alarm_rate")),
		json_number_value(json_object_get(json_object_get(aa, "options"), "alpha")));
	json_array_foreach(json_object_get(aa, "notes"), i, v)
		fprintf(f, "note: %s\n", json_string_value(v));
	fprintf(f, "noise floor (largest |ratio - 1| between parts of the run):\n");
	json_object_foreach(json_object_get(aa, "noise"), cname, per)
		json_object_foreach(per, metric, v)
			fprintf(f, "  %-24s %-24s %6.2f%%\n", cname, metric,
				100 * json_number_value(v));
}

void ms_compare_print(const json_t *cmp, FILE *f)
{
	json_t *c;
	size_t i;

	if (!strcmp(str(cmp, "schema") ?: "", MS_AA_SCHEMA)) {
		print_aa(cmp, f);
		return;
	}
	json_array_foreach(json_object_get(cmp, "comparisons"), i, c) {
		if (i)
			fprintf(f, "\n");
		print_comparison(cmp, c, f);
	}
}

/* ---- Markdown ---- */

/* Table cells: a '|' or a line break would end the cell or the row. */
static void md_cell(FILE *f, const char *s)
{
	fputc(' ', f);
	ms_md_put(f, s, true);
	fputs(" |", f);
}

static void md_comparison(const json_t *cmp, const json_t *c, FILE *f)
{
	json_t *row, *r, *o = json_object_get(cmp, "options");
	size_t i;

	fputs("## ", f);
	ms_md_put(f, str(c, "b"), false);
	fputs(" against ", f);
	ms_md_put(f, str(c, "a"), false);
	fputs("\n\n| | label | kernel | where | run | status |\n|---|---|---|---|---|---|\n", f);
	json_array_foreach(json_object_get(cmp, "runs"), i, r) {
		const char *l = str(r, "label");
		char where[64];

		if (strcmp(l, str(c, "a")) && strcmp(l, str(c, "b")))
			continue;
		snprintf(where, sizeof(where), "%s%s%s", str(r, "where") ?: "?",
			 str(r, "accel") ? " " : "", str(r, "accel") ?: "");
		fprintf(f, "| %s |", strcmp(l, str(c, "a")) ? "B" : "A");
		md_cell(f, l);
		md_cell(f, str(r, "kernel") ?: "?");
		md_cell(f, where);
		md_cell(f, str(r, "run_id") ?: "?");
		md_cell(f, str(r, "status") ?: "?");
		fprintf(f, "\n");
	}
	fprintf(f, "\nThreshold %.3g%%, alpha %.3g (Mann-Whitney U, two-sided), %.0f%% bootstrap "
		"interval of the ratio of medians, power %.0f%% for the repeats needed.\n\n",
		100 * json_number_value(json_object_get(o, "threshold")),
		json_number_value(json_object_get(o, "alpha")),
		100 * json_number_value(json_object_get(o, "ci_level")),
		100 * json_number_value(json_object_get(o, "power")));
	json_array_foreach(json_object_get(c, "warnings"), i, row) {
		fputs("- **warning**: ", f);
		ms_md_put(f, json_string_value(row), false);
		fputc('\n', f);
	}
	json_array_foreach(json_object_get(c, "notes"), i, row) {
		fputs("- note: ", f);
		ms_md_put(f, json_string_value(row), false);
		fputc('\n', f);
	}
	fprintf(f, "%s### Correctness\n\n", json_array_size(json_object_get(c, "warnings")) +
		json_array_size(json_object_get(c, "notes")) ? "\n" : "");
	if (!json_array_size(json_object_get(c, "correctness")))
		fprintf(f, "Every case has the same verdict in A and B.\n\n");
	else
		fprintf(f, "| case | A | B | change | reason in B |\n|---|---|---|---|---|\n");
	json_array_foreach(json_object_get(c, "correctness"), i, row) {
		fprintf(f, "|");
		md_cell(f, str(row, "case"));
		md_cell(f, str(row, "a"));
		md_cell(f, str(row, "b"));
		fprintf(f, " **%s** |", str(row, "change"));
		md_cell(f, str(row, "reason_b"));
		fprintf(f, "\n");
	}
	if (json_array_size(json_object_get(c, "correctness")))
		fprintf(f, "\n");
	fprintf(f, "### Metrics\n\n| case | metric | A | B | B/A | interval | p | A p99 | B p99 | "
		"n A/B | verdict |\n|---|---|---:|---:|---:|---|---:|---:|---:|---|---|\n");
	json_array_foreach(json_object_get(c, "metrics"), i, row) {
		struct row_text t;
		const char *v = str(row, "verdict");
		bool loud = !strcmp(v, "regressed") || !strcmp(v, "improved");

		row_text(row, &t);
		fprintf(f, "|");
		md_cell(f, str(row, "case"));
		md_cell(f, t.metric);
		md_cell(f, t.a);
		md_cell(f, t.b);
		md_cell(f, t.ratio);
		md_cell(f, t.ci);
		md_cell(f, t.p);
		md_cell(f, t.pa);
		md_cell(f, t.pb);
		md_cell(f, t.n);
		if (loud)
			fprintf(f, " **%s**: %s |", v, str(row, "why"));
		else
			md_cell(f, t.verdict);
		fprintf(f, "\n");
	}
	fprintf(f, "\n");
}

void ms_compare_write_md(const json_t *cmp, FILE *f)
{
	json_t *c;
	size_t i;

	if (!strcmp(str(cmp, "schema") ?: "", MS_AA_SCHEMA)) {
		fprintf(f, "# mmstorm A/A calibration: %s\n\n%lld false alarms in %lld tests.\n\n",
			str(cmp, "label"), (long long)json_integer_value(json_object_get(cmp,
			"false_alarms")), (long long)json_integer_value(json_object_get(cmp,
			"tests")));
		json_array_foreach(json_object_get(cmp, "splits"), i, c)
			md_comparison(c, json_array_get(json_object_get(c, "comparisons"), 0), f);
		return;
	}
	fprintf(f, "# mmstorm compare\n\n");
	json_array_foreach(json_object_get(cmp, "comparisons"), i, c)
		md_comparison(cmp, c, f);
}

/* ---- JSON ---- */

#define JSON_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10))

void ms_compare_write_json(const json_t *cmp, FILE *f)
{
	json_dumpf(cmp, f, JSON_FLAGS);
	fputc('\n', f);
}

/* ---- JUnit ---- */

static void junit_case(FILE *f, const char *cname, const char *name, const char *tag,
		       const char *type, const char *msg)
{
	fputs("    <testcase classname=\"mmstorm.compare.", f);
	ms_xml_put(f, cname, false);
	fputs("\" name=\"", f);
	ms_xml_put(f, name, false);
	if (!tag) {
		fputs("\"/>\n", f);
		return;
	}
	fprintf(f, "\">\n      <%s", tag);
	if (type)
		fprintf(f, " type=\"%s\"", type);
	fputs(" message=\"", f);
	ms_xml_put(f, msg, false);
	fprintf(f, "\"/>\n    </testcase>\n");
}

static void junit_comparison(const json_t *c, FILE *f)
{
	json_t *row, *s = json_object_get(c, "summary");
	size_t i, tests = json_array_size(json_object_get(c, "metrics"));
	long long failures = json_integer_value(json_object_get(s, "regressed")) +
			     json_integer_value(json_object_get(s, "correctness_regressions"));
	long long skipped = json_integer_value(json_object_get(s, "insufficient")) +
			    json_integer_value(json_object_get(s, "no data"));
	char msg[512];

	json_array_foreach(json_object_get(c, "correctness"), i, row)
		tests++;
	fputs("  <testsuite name=\"", f);
	ms_xml_put(f, str(c, "b"), false);
	fputs(" against ", f);
	ms_xml_put(f, str(c, "a"), false);
	fprintf(f, "\" tests=\"%zu\" failures=\"%lld\" errors=\"0\" skipped=\"%lld\">\n", tests,
		failures, skipped);
	json_array_foreach(json_object_get(c, "correctness"), i, row) {
		bool reg = !strcmp(str(row, "change"), "regressed");

		snprintf(msg, sizeof(msg), "%s -> %s: %s%s%s", str(row, "a"), str(row, "b"),
			 str(row, "change"), *str(row, "reason_b") ? ": " : "",
			 str(row, "reason_b"));
		junit_case(f, str(row, "case"), "verdict", reg ? "failure" : NULL, "correctness",
			   msg);
	}
	json_array_foreach(json_object_get(c, "metrics"), i, row) {
		const char *v = str(row, "verdict");
		struct row_text t;

		row_text(row, &t);
		snprintf(msg, sizeof(msg), "%s (A %s, B %s, B/A %s, interval %s, p %s)", t.verdict,
			 t.a, t.b, t.ratio, t.ci, t.p);
		junit_case(f, str(row, "case"), t.metric, !strcmp(v, "regressed") ? "failure" :
			   !strcmp(v, "insufficient") || !strcmp(v, "no data") ? "skipped" : NULL,
			   !strcmp(v, "regressed") ? "performance" : NULL, msg);
	}
	fputs("  </testsuite>\n", f);
}

void ms_compare_write_junit(const json_t *cmp, FILE *f)
{
	json_t *c;
	size_t i;

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"mmstorm compare\">\n",
	      f);
	json_array_foreach(json_object_get(cmp, "comparisons"), i, c)
		junit_comparison(c, f);
	fputs("</testsuites>\n", f);
}

/* ---- for `mmstorm vm` ---- */

/* Atomically, as run.json is: a reader never sees half a file. */
static int write_file(const char *path, const json_t *cmp, void (*fn)(const json_t *, FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f)
		return -errno;
	fn(cmp, f);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	ret = ms_report_write_atomic(path, buf, len);
	free(buf);
	return ret;
}

int ms_compare_write_dir(const char *dir, const char *const *labels, json_t *const *runs,
			 unsigned n)
{
	struct ms_compare_opts o;
	unsigned corr, reg;
	char path[4096];
	json_t *cmp;
	int ret;

	if (n < 2)
		return -EINVAL;
	ms_compare_opts_init(&o);
	cmp = ms_compare(&o, labels, runs, n);
	if (!cmp)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/compare-stats.json", dir);
	ret = write_file(path, cmp, ms_compare_write_json);
	if (!ret) {
		snprintf(path, sizeof(path), "%s/compare-stats.md", dir);
		ret = write_file(path, cmp, ms_compare_write_md);
	}
	ms_compare_counts(cmp, &corr, &reg);
	json_decref(cmp);
	return ret ? ret : (int)(corr + reg);
}

/* Charts for `mmstorm report`: gnuplot data and scripts kept beside the output, SVG drawn. */
#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/report.h"
#include "mmstorm/stats.h"

#define COLORS 8
static const char *const palette[COLORS] = {
	"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
};

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Text that goes inside a gnuplot string or a quoted data column: no quotes, no escapes. */
static void label_of(char *out, size_t len, const char *in)
{
	size_t n = 0;

	for (const char *p = in ? in : ""; *p && n + 1 < len; p++)
		out[n++] = (*p >= 0x20 && *p < 0x7f && !strchr("'\"\\`", *p)) ? *p : '_';
	out[n] = '\0';
}

/* A file name part: ASCII letters, digits, '-' and '_' only. */
static void name_of(char *out, size_t len, const char *in)
{
	size_t n = 0;

	for (const char *p = in ? in : ""; *p && n + 1 < len; p++)
		out[n++] = isalnum((unsigned char)*p) || *p == '-' ? *p : '_';
	out[n] = '\0';
}

/* A growing text buffer; after a failed allocation everything appended is dropped. */
struct buf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!b->s || b->len + (size_t)n >= b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *s = realloc(b->s, cap);

		if (!s) {
			b->failed = true;
			return;
		}
		b->s = s;
		b->cap = cap;
		va_start(ap, fmt);
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static int write_text(const char *dir, const char *name, const char *ext, const struct buf *b)
{
	char path[4096];
	FILE *f;
	int ret = 0;

	if (b->failed)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	if (b->len && fwrite(b->s, 1, b->len, f) != b->len)
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

/* gnuplot NAME.gp in dir, its messages appended to dir/gnuplot.log. */
static int run_gnuplot(const char *dir, const char *name, char *err, size_t errlen)
{
	char script[300];
	int status, fd;
	pid_t pid;

	snprintf(script, sizeof(script), "%s.gp", name);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		if (chdir(dir))
			_exit(126);
		fd = open("gnuplot.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0 && (dup2(fd, 1) < 0 || dup2(fd, 2) < 0))
			_exit(126);
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			return -errno;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		snprintf(err, errlen, "gnuplot is not installed (Debian: gnuplot-nox)");
	else
		snprintf(err, errlen, "gnuplot failed on %s.gp (see gnuplot.log)", name);
	return -EIO;
}

static void preamble(struct buf *gp, const char *name, int width, int height, const char *title)
{
	char t[256];

	label_of(t, sizeof(t), title);
	bprintf(gp, "# %s: rerun with `gnuplot %s.gp` after restyling; data in %s.dat\n"
		"set terminal svg size %d,%d dynamic font 'sans,11' background 'white'\n"
		"set termoption noenhanced\nset output '%s.svg'\nset title '%s'\n"
		"set grid lc rgb '#dddddd'\nset key outside bottom center horizontal\n", t, name,
		name, width, height, name, t);
}

/* Write NAME.dat and NAME.gp, run gnuplot, and list the chart (or why it is missing). */
static int add_chart(struct ms_report *r, const char *section, const char *name,
		     const char *title, struct buf *gp, struct buf *dat)
{
	char err[256] = "";
	char svg[300];
	json_t *chart;
	int ret;

	ret = write_text(r->dir, name, "dat", dat);
	if (!ret)
		ret = write_text(r->dir, name, "gp", gp);
	free(gp->s);
	free(dat->s);
	if (ret)
		return ret;
	snprintf(svg, sizeof(svg), "%s.svg", name);
	chart = json_pack("{s:s, s:s, s:s}", "section", section, "name", name, "title", title);
	if (run_gnuplot(r->dir, name, err, sizeof(err)))
		json_object_set_new(chart, "error", json_string(err));
	else
		json_object_set_new(chart, "svg", json_string(svg));
	json_array_append_new(r->charts, chart);
	return 0;
}

/* ---- latency CDFs ---- */

struct bucket {
	double value, count;
};

static int cmp_bucket(const void *a, const void *b)
{
	double x = ((const struct bucket *)a)->value, y = ((const struct bucket *)b)->value;

	return (x > y) - (x < y);
}

static bool completed(const json_t *rep)
{
	const char *v = str(rep, "verdict");

	return v && (!strcmp(v, "PASS") || !strcmp(v, "FAIL"));
}

/* The buckets of every completed repeat, merged and sorted. */
static size_t merged_buckets(const json_t *c, const char *metric, struct bucket **out)
{
	json_t *rep, *pair;
	size_t i, k, n = 0, cap = 0, m = 0;
	struct bucket *b = NULL;

	json_array_foreach(json_object_get(c, "repeats"), i, rep) {
		json_t *bk = json_object_get(json_object_get(json_object_get(rep, "metrics"),
							     metric), "buckets");

		if (!completed(rep))
			continue;
		json_array_foreach(bk, k, pair) {
			if (n == cap) {
				struct bucket *nb = realloc(b, (cap = cap ? 2 * cap : 256) *
							    sizeof(*b));

				if (!nb)
					break;
				b = nb;
			}
			b[n++] = (struct bucket){ json_number_value(json_array_get(pair, 0)),
						  json_number_value(json_array_get(pair, 1)) };
		}
	}
	if (!n) {
		free(b);
		return 0;
	}
	qsort(b, n, sizeof(*b), cmp_bucket);
	for (i = 0; i < n; i++) {
		if (m && b[m - 1].value == b[i].value)
			b[m - 1].count += b[i].count;
		else
			b[m++] = b[i];
	}
	*out = b;
	return m;
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

static bool is_ns_hist(const json_t *run, const char *cname, const char *metric)
{
	json_t *rep;
	size_t i;

	json_array_foreach(json_object_get(find_case(run, cname), "repeats"), i, rep) {
		json_t *m = json_object_get(json_object_get(rep, "metrics"), metric);

		if (m)
			return !strcmp(str(m, "kind") ?: "", "hist") &&
			       !strcmp(str(m, "unit") ?: "", "ns");
	}
	return false;
}

static int cdf_chart(struct ms_report *r, const char *cname, const char *metric)
{
	struct buf gp = { 0 }, dat = { 0 };
	char name[200], title[300], lab[80], cn[80], mn[80];
	unsigned blocks = 0;

	name_of(cn, sizeof(cn), cname);
	name_of(mn, sizeof(mn), metric);
	snprintf(name, sizeof(name), "cdf-%s-%s", cn, mn);
	snprintf(title, sizeof(title), "%s: %s, all completed repeats", cname, metric);
	preamble(&gp, name, 560, 360, title);
	bprintf(&gp, "set logscale x\nset xlabel 'latency (us)'\nset ylabel 'fraction <= x'\n"
		"set yrange [0:1]\nset ytics 0.1\nset arrow from graph 0, first 0.99 to graph 1, "
		"first 0.99 nohead dt 2 lc rgb '#888888'\nplot ");
	for (unsigned k = 0; k < r->n; k++) {
		struct bucket *b = NULL;
		size_t nb = merged_buckets(find_case(r->runs[k], cname), metric, &b);
		double total = 0, acc = 0;

		if (!nb)
			continue;
		for (size_t i = 0; i < nb; i++)
			total += b[i].count;
		bprintf(&dat, "# %s: latency_us fraction\n", r->labels[k]);
		for (size_t i = 0; i < nb; i++) {
			acc += b[i].count;
			bprintf(&dat, "%.6g %.6g\n", b[i].value / 1e3, acc / total);
		}
		bprintf(&dat, "\n\n");
		free(b);
		label_of(lab, sizeof(lab), r->labels[k]);
		bprintf(&gp, "%s'%s.dat' index %u using 1:2 with steps lw 2 lc rgb '%s' title '%s'",
			blocks ? ", \\\n     " : "", name, blocks, palette[k % COLORS], lab);
		blocks++;
	}
	bprintf(&gp, "\n");
	if (!blocks) {
		free(gp.s);
		free(dat.s);
		return 0;
	}
	return add_chart(r, "cdf", name, title, &gp, &dat);
}

/* One chart per case and latency histogram, over all runs, in the order cases appear. */
static int cdf_charts(struct ms_report *r)
{
	json_t *done = json_object(), *c, *rep, *m;
	const char *metric;
	size_t i, k;
	int ret = 0;

	for (unsigned x = 0; x < r->n && !ret; x++)
		json_array_foreach(json_object_get(r->runs[x], "cases"), i, c) {
			const char *cname = str(c, "name");

			json_array_foreach(json_object_get(c, "repeats"), k, rep)
				json_object_foreach(json_object_get(rep, "metrics"), metric, m) {
					char key[300];

					snprintf(key, sizeof(key), "%s\x1f%s", cname ?: "", metric);
					if (!cname || json_object_get(done, key) ||
					    !is_ns_hist(r->runs[x], cname, metric))
						continue;
					json_object_set_new(done, key, json_true());
					if ((ret = cdf_chart(r, cname, metric)))
						goto out;
				}
		}
out:
	json_decref(done);
	return ret;
}

/* ---- A/B ratio bars ---- */

static const char *verdict_color(const char *v)
{
	if (!strcmp(v, "regressed"))
		return "14034728";	/* 0xd62728: gnuplot reads rgb variable as a number */
	if (!strcmp(v, "improved"))
		return "2924588";	/* 0x2ca02c */
	if (!strcmp(v, "insufficient"))
		return "16760576";	/* 0xffbf00 */
	return "10066329";	/* 0x999999 */
}

static int ratio_chart(struct ms_report *r, const json_t *c, unsigned idx)
{
	struct buf gp = { 0 }, dat = { 0 };
	char name[64], title[300], lab[200], both[200];
	double lo = 1 - 2 * r->o->threshold, hi = 1 + 2 * r->o->threshold;
	json_t *row, *rows = json_object_get(c, "metrics");
	size_t i, nrows = 0;

	snprintf(name, sizeof(name), "ratio-%u", idx);
	snprintf(both, sizeof(both), "%s / %s", str(c, "b"), str(c, "a"));
	snprintf(title, sizeof(title), "%s: median ratio, %.0f%% interval", both,
		 100 * r->o->level);
	json_array_foreach(rows, i, row)
		nrows += json_is_number(json_object_get(row, "ratio"));
	if (!nrows)
		return 0;
	bprintf(&dat, "# y ratio low high color label\n");
	json_array_foreach(rows, i, row) {
		json_t *ci = json_object_get(row, "ci");
		double x = json_number_value(json_object_get(row, "ratio"));
		double l = json_is_number(json_array_get(ci, 0)) ?
			   json_number_value(json_array_get(ci, 0)) : x;
		double h = json_is_number(json_array_get(ci, 1)) ?
			   json_number_value(json_array_get(ci, 1)) : x;
		char text[200];

		if (!json_is_number(json_object_get(row, "ratio")) || !(x > 0) || !isfinite(h))
			continue;
		lo = fmin(lo, fmax(l, 1e-3));
		hi = fmax(hi, fmin(h, 1e3));
		snprintf(text, sizeof(text), "%s %s (%s)", str(row, "case"), str(row, "metric"),
			 str(row, "statistic"));
		label_of(lab, sizeof(lab), text);
		bprintf(&dat, "%zu %.6g %.6g %.6g %s \"%s\"\n", nrows--, x, fmax(l, 1e-3),
			fmin(h, 1e3), verdict_color(str(row, "verdict")), lab);
	}
	preamble(&gp, name, 900, 90 + 18 * (int)json_array_size(rows), title);
	/* Linear near 1, where ratios usually are; a log scale keeps 0.5 and 2 symmetric. */
	if (hi / lo > 4)
		bprintf(&gp, "set logscale x 2\n");
	bprintf(&gp, "set xrange [%.6g:%.6g]\nset yrange [0.3:%zu.7]\n"
		"set xlabel 'B / A (grey: same, red: regressed, green: improved, amber: "
		"insufficient repeats)'\nunset key\nset ytics scale 0 font 'sans,9'\n"
		"set arrow from 1, graph 0 to 1, graph 1 nohead lc rgb '#000000'\n"
		"set arrow from %.6g, graph 0 to %.6g, graph 1 nohead dt 2 lc rgb '#888888'\n"
		"set arrow from %.6g, graph 0 to %.6g, graph 1 nohead dt 2 lc rgb '#888888'\n"
		"set style fill solid 0.6 noborder\n"
		"plot '%s.dat' using 2:1:($2 < 1 ? $2 : 1):"
		"($2 > 1 ? $2 : 1):($1 - 0.35):($1 + 0.35):5:ytic(6) with boxxyerror "
		"lc rgb variable, \\\n     '' using 2:1:3:4 with xerrorbars lc rgb '#000000' "
		"pt 7 ps 0.5\n", lo * 0.95, hi * 1.05, json_array_size(rows),
		1 - r->o->threshold, 1 - r->o->threshold, 1 + r->o->threshold,
		1 + r->o->threshold, name);
	return add_chart(r, "ratio", name, title, &gp, &dat);
}

static int ratio_charts(struct ms_report *r)
{
	json_t *c;
	size_t i;
	int ret = 0;

	json_array_foreach(json_object_get(r->cmp, "comparisons"), i, c)
		if ((ret = ratio_chart(r, c, (unsigned)i + 1)))
			break;
	return ret;
}

/* ---- page tables ---- */

static double param_num(const json_t *c, const char *key)
{
	const char *s = str(json_object_get(c, "params"), key);
	char *end;
	double v;

	if (!s)
		return NAN;
	v = strtod(s, &end);
	return end == s || *end ? NAN : v;
}

/* Median over completed repeats of pgtables[key] - pgtables[base] (base NULL: 0), in KiB. */
static double pgt_median(const json_t *c, const char *key, const char *base)
{
	json_t *reps = json_object_get(c, "repeats"), *rep;
	double *v = calloc(json_array_size(reps) + 1, sizeof(*v)), med;
	size_t i, n = 0;

	if (!v)
		return NAN;
	json_array_foreach(reps, i, rep) {
		json_t *pt = json_object_get(rep, "pgtables"), *x = json_object_get(pt, key);
		json_t *b = base ? json_object_get(pt, base) : NULL;

		if (completed(rep) && json_is_integer(x) && (!base || json_is_integer(b)))
			v[n++] = (double)(json_integer_value(x) - (b ? json_integer_value(b) : 0)) /
				 1024;
	}
	med = n ? ms_median(v, n) : NAN;
	free(v);
	return med;
}

/* A model's expectation, where a workload or the core reports one in pgtables. */
static const char *model_key(const json_t *c)
{
	json_t *rep = json_array_get(json_object_get(c, "repeats"), 0), *v;
	const char *key;

	json_object_foreach(json_object_get(rep, "pgtables"), key, v)
		if (strstr(key, "expected") || strstr(key, "model"))
			return key;
	return NULL;
}

/* One data block per run and series; only blocks with points, so "index" counts them. */
static unsigned pgt_block(struct ms_report *r, unsigned k, struct buf *dat, bool model)
{
	struct buf b = { 0 };
	unsigned points = 0;
	json_t *c;
	size_t i;

	bprintf(&b, "# %s %s: processes KiB case\n", r->labels[k], model ? "model" :
		"measured peak - before");
	json_array_foreach(json_object_get(r->runs[k], "cases"), i, c) {
		double procs = param_num(c, "workers") * (param_num(c, "children") + 1);
		const char *mk = model_key(c);
		double y = model ? (mk ? pgt_median(c, mk, NULL) : NAN) :
			   pgt_median(c, "pagetables_peak_bytes", "pagetables_before_bytes");
		char lab[80];

		if (!isfinite(procs) || !isfinite(y))
			continue;
		label_of(lab, sizeof(lab), str(c, "name"));
		bprintf(&b, "%.6g %.6g \"%s\"\n", procs, y, lab);
		points++;
	}
	if (points && !b.failed)
		bprintf(dat, "%s\n\n", b.s);
	free(b.s);
	return points;
}

static int pgtables_chart(struct ms_report *r)
{
	struct buf gp = { 0 }, dat = { 0 };
	const char *name = "pgtables";
	unsigned block = 0;
	char lab[80];

	preamble(&gp, name, 600, 400, "page-table bytes vs processes");
	bprintf(&gp, "set xlabel 'processes (workers x (children + 1))'\n"
		"set ylabel 'PageTables peak - before (KiB)'\nset offsets 0.5, 0.5, 0, 0\nplot ");
	for (unsigned k = 0; k < r->n; k++)
		for (int model = 0; model < 2; model++) {
			if (!pgt_block(r, k, &dat, model))
				continue;
			label_of(lab, sizeof(lab), r->labels[k]);
			bprintf(&gp, "%s'%s.dat' index %u using 1:2 with points pt %d ps 1.2 "
				"lc rgb '%s' title '%s%s', '' index %u using 1:2:3 with labels "
				"left offset 1,0 font 'sans,8' notitle", block ? ", \\\n     " : "",
				name, block, model ? 6 : 7, palette[k % COLORS], lab,
				model ? " (model)" : "", block);
			block++;
		}
	bprintf(&gp, "\n");
	if (!block) {
		free(gp.s);
		free(dat.s);
		return 0;
	}
	return add_chart(r, "pgtables", name, "page-table bytes vs processes", &gp, &dat);
}

/* ---- trend ---- */

static double run_median(const json_t *c, const char *metric, const char *stat)
{
	double *v = NULL, med = NAN;
	const char *what;
	int better, n = c ? ms_case_values(c, metric, stat, &v, &better, &what) : 0;

	if (n > 0)
		med = ms_median(v, (size_t)n);
	free(v);
	return med;
}

static void trend_xtics(struct buf *gp, const json_t *trend)
{
	json_t *run;
	size_t i;

	bprintf(gp, "set xtics rotate by 30 right font 'sans,8' (");
	json_array_foreach(trend, i, run) {
		char lab[80], text[160];

		snprintf(text, sizeof(text), "%.10s %s", str(run, "started") ?: "?",
			 ms_run_label(run));
		label_of(lab, sizeof(lab), text);
		bprintf(gp, "%s'%s' %zu", i ? ", " : "", lab, i);
	}
	bprintf(gp, ")\n");
}

static int trend_chart(struct ms_report *r, const char *cname, const json_t *metrics)
{
	struct buf gp = { 0 }, dat = { 0 };
	char name[200], cn[120], title[200], lab[80];
	json_t *m, *run;
	size_t i, k;
	unsigned blocks = 0;

	name_of(cn, sizeof(cn), cname);
	snprintf(name, sizeof(name), "trend-%s", cn);
	snprintf(title, sizeof(title), "%s: median per run, relative to the first", cname);
	preamble(&gp, name, 600, 400, title);
	trend_xtics(&gp, r->trend);
	bprintf(&gp, "set ylabel 'ratio to the first run'\nset logscale y 2\nplot ");
	json_array_foreach(metrics, i, m) {
		const char *metric = json_string_value(m);
		struct buf b = { 0 };
		double base = NAN;
		unsigned pts = 0;

		bprintf(&b, "# %s: run ratio\n", metric);
		json_array_foreach(r->trend, k, run) {
			double v = run_median(find_case(run, cname), metric, r->o->stat);

			if (isnan(base) && v > 0)
				base = v;
			if (v > 0 && base > 0) {
				bprintf(&b, "%zu %.6g\n", k, v / base);
				pts++;
			}
		}
		if (pts && !b.failed)
			bprintf(&dat, "%s\n\n", b.s);
		free(b.s);
		if (!pts)
			continue;
		label_of(lab, sizeof(lab), metric);
		bprintf(&gp, "%s'%s.dat' index %u using 1:2 with linespoints lw 2 pt 7 lc rgb '%s' "
			"title '%s'", blocks ? ", \\\n     " : "", name, blocks,
			palette[i % COLORS], lab);
		blocks++;
	}
	bprintf(&gp, "\n");
	if (!blocks) {
		free(gp.s);
		free(dat.s);
		return 0;
	}
	return add_chart(r, "trend", name, title, &gp, &dat);
}

static void add_unique(json_t *names, const char *name)
{
	json_t *x;
	size_t i;

	json_array_foreach(names, i, x)
		if (!strcmp(json_string_value(x), name))
			return;
	json_array_append_new(names, json_string(name));
}

static int trend_charts(struct ms_report *r)
{
	json_t *cases = json_array(), *run, *c, *rep, *m, *metrics;
	const char *metric;
	size_t i, k, j;
	int ret = 0;

	json_array_foreach(r->trend, i, run)
		json_array_foreach(json_object_get(run, "cases"), k, c)
			add_unique(cases, str(c, "name") ?: "");
	json_array_foreach(cases, i, c) {
		const char *cname = json_string_value(c);

		metrics = json_array();
		json_array_foreach(r->trend, k, run) {
			json_t *reps = json_object_get(find_case(run, cname), "repeats");

			json_array_foreach(reps, j, rep)
				json_object_foreach(json_object_get(rep, "metrics"), metric, m)
					add_unique(metrics, metric);
		}
		ret = trend_chart(r, cname, metrics);
		json_decref(metrics);
		if (ret)
			break;
	}
	json_decref(cases);
	return ret;
}

int ms_report_charts(struct ms_report *r)
{
	int ret;

	json_decref(r->charts);
	r->charts = json_array();
	if (!r->charts)
		return -ENOMEM;
	ret = r->cmp ? ratio_charts(r) : 0;
	if (!ret)
		ret = cdf_charts(r);
	if (!ret)
		ret = pgtables_chart(r);
	if (!ret && r->trend && json_array_size(r->trend) > 1)
		ret = trend_charts(r);
	return ret;
}

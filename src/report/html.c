/* `mmstorm report` pages: self-contained HTML (inline SVG) and Markdown, plus --trend input. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmstorm/report.h"
#include "mmstorm/result.h"
#include "report/report_int.h"

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* open, the text escaped, close. */
static void tagged(FILE *f, const char *open, const char *text, const char *close)
{
	fputs(open, f);
	ms_xml_put(f, text, false);
	fputs(close, f);
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

static json_t *case_names(json_t *const *runs, size_t n)
{
	json_t *names = json_array(), *c, *x;
	size_t i, k;

	for (size_t r = 0; r < n; r++)
		json_array_foreach(json_object_get(runs[r], "cases"), i, c) {
			bool seen = false;

			json_array_foreach(names, k, x)
				seen |= !strcmp(json_string_value(x), str(c, "name") ?: "");
			if (str(c, "name") && !seen)
				json_array_append_new(names, json_string(str(c, "name")));
		}
	return names;
}

/* ---- --trend input ---- */

static void scan(const char *dir, int depth, json_t *found)
{
	DIR *d;
	struct dirent *e;
	char path[4096];
	struct stat st;

	if (depth > 4 || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			scan(path, depth + 1, found);
		else if (S_ISREG(st.st_mode) && !strcmp(e->d_name, "run.json") &&
			 !strchr(path, ','))
			json_array_append_new(found, json_string(path));
	}
	closedir(d);
}

static int cmp_runs(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(str(x, "started") ?: "", str(y, "started") ?: "");

	return c ? c : strcmp(str(x, "run_id") ?: "", str(y, "run_id") ?: "");
}

json_t *ms_report_find_runs(const char *dir, char *err, size_t errlen)
{
	json_t *paths = json_array(), *out = json_array(), *p, **v;
	size_t i, n = 0;

	if (!paths || !out)
		goto out_nomem;
	scan(dir, 0, paths);
	v = calloc(json_array_size(paths) + 1, sizeof(*v));
	if (!v)
		goto out_nomem;
	json_array_foreach(paths, i, p) {
		char e[512];

		/* A file that is no run (or one mmstorm cannot read) is not part of the history. */
		v[n] = ms_run_load(json_string_value(p), e, sizeof(e));
		if (v[n])
			n++;
	}
	qsort(v, n, sizeof(*v), cmp_runs);
	for (i = 0; i < n; i++)
		json_array_append_new(out, v[i]);
	free(v);
	json_decref(paths);
	if (!n) {
		snprintf(err, errlen, "%s: no run.json found", dir);
		json_decref(out);
		return NULL;
	}
	return out;
out_nomem:
	json_decref(paths);
	json_decref(out);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

/* ---- HTML ---- */

static const char *css =
	"body{font-family:sans-serif;margin:1.5em;max-width:1400px;color:#222}"
	"table{border-collapse:collapse;margin:.5em 0 1em}"
	"td,th{border:1px solid #ccc;padding:2px 7px;font-size:13px;text-align:left}"
	"th{background:#f0f0f0}td.num{text-align:right;font-family:monospace}"
	".PASS{background:#d8f0d8}.SKIP{background:#eeeeee}.FAIL{background:#f7c6c6}"
	".ERROR{background:#fbe0b8}.TIMEOUT{background:#e2d0f0}.CRASH{background:#e08080}"
	".regressed{background:#f7c6c6}.improved{background:#d8f0d8}"
	".insufficient{background:#fff0c0}.warn{color:#a00000}"
	".charts{display:flex;flex-wrap:wrap;gap:10px}.chart{flex:0 1 560px}"
	".chart svg{width:100%;height:auto}.wide svg{width:100%;height:auto}"
	"figcaption{font-size:12px;color:#555}";

/* Read path whole; NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto out_close;
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
out_close:
	fclose(f);
	return buf;
}

/*
 * gnuplot's SVG, made fit to sit inline among others: from "<svg" on (no XML prolog), and
 * every id and reference to one prefixed, since each chart defines the same ids.
 */
static void inline_svg(FILE *f, const char *dir, const char *svg, unsigned idx)
{
	static const char *const refs[] = { "id='", "id=\"", "href='#", "href=\"#", "url(#" };
	char path[4096], prefix[16];
	size_t len;
	char *text, *p;

	snprintf(path, sizeof(path), "%s/%s", dir, svg);
	text = slurp(path, &len);
	p = text ? strstr(text, "<svg") : NULL;
	if (!p) {
		fprintf(f, "<p class=\"warn\">%s: cannot read the SVG</p>\n", svg);
		free(text);
		return;
	}
	snprintf(prefix, sizeof(prefix), "c%u_", idx);
	while (*p) {
		size_t best = 0, at = SIZE_MAX;

		for (size_t k = 0; k < sizeof(refs) / sizeof(refs[0]); k++) {
			char *hit = strstr(p, refs[k]);

			if (hit && (size_t)(hit - p) < at) {
				at = (size_t)(hit - p);
				best = k;
			}
		}
		if (at == SIZE_MAX) {
			fputs(p, f);
			break;
		}
		fwrite(p, 1, at + strlen(refs[best]), f);
		fputs(prefix, f);
		p += at + strlen(refs[best]);
	}
	free(text);
}

static void html_charts(FILE *f, const struct ms_report *r, const char *section, bool wide)
{
	json_t *c;
	size_t i;
	bool any = false;

	json_array_foreach(r->charts, i, c) {
		if (strcmp(str(c, "section"), section))
			continue;
		if (!any)
			fprintf(f, "<div class=\"%s\">\n", wide ? "wide" : "charts");
		any = true;
		fprintf(f, "<figure class=\"chart\">");
		if (str(c, "svg"))
			inline_svg(f, r->dir, str(c, "svg"), (unsigned)i);
		else
			tagged(f, "<p class=\"warn\">no chart: ", str(c, "error"), "</p>");
		fprintf(f, "<figcaption>");
		ms_xml_put(f, str(c, "title"), false);
		fprintf(f, " (<code>");
		ms_xml_put(f, str(c, "name"), false);
		fprintf(f, ".gp</code>)</figcaption></figure>\n");
	}
	if (any)
		fprintf(f, "</div>\n");
}

static void html_runs(FILE *f, const struct ms_report *r)
{
	fprintf(f, "<h2>Runs</h2>\n<table><tr><th>run</th><th>kernel</th><th>where</th>"
		"<th>suite</th><th>status</th><th>started</th><th>cases</th><th>file</th></tr>\n");
	for (unsigned k = 0; k < r->n; k++) {
		const json_t *run = r->runs[k], *env = json_object_get(run, "env");
		const json_t *sum = json_object_get(run, "summary");

		fprintf(f, "<tr><td>");
		ms_xml_put(f, r->labels[k], false);
		fprintf(f, "</td><td>");
		ms_xml_put(f, str(json_object_get(run, "kernel"), "release"), false);
		fprintf(f, "</td><td>");
		ms_xml_put(f, str(env, "where"), false);
		if (str(env, "accel"))
			tagged(f, " (", str(env, "accel"), ")");
		fprintf(f, "</td><td>");
		ms_xml_put(f, str(json_object_get(run, "suite"), "name"), false);
		fprintf(f, "</td><td>");
		ms_xml_put(f, str(run, "status"), false);
		fprintf(f, "</td><td>");
		ms_xml_put(f, str(run, "started"), false);
		fprintf(f, "</td><td class=\"num\">%lld pass, %lld fail</td><td>",
			(long long)json_integer_value(json_object_get(sum, "PASS")),
			(long long)(json_integer_value(json_object_get(sum, "FAIL")) +
				    json_integer_value(json_object_get(sum, "CRASH")) +
				    json_integer_value(json_object_get(sum, "TIMEOUT"))));
		ms_xml_put(f, json_string_value(json_array_get(json_object_get(run, "sources"), 0)), false);
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n");
}

/* Cases down, runs across, each cell the verdict (reason on hover). */
static void html_verdicts(FILE *f, const char *title, const char *const *labels,
			  json_t *const *runs, size_t n)
{
	json_t *names = case_names(runs, n), *name;
	size_t i;

	fprintf(f, "<h2>%s</h2>\n<table><tr><th>case</th>", title);
	for (size_t k = 0; k < n; k++) {
		fprintf(f, "<th>");
		ms_xml_put(f, labels ? labels[k] : ms_run_label(runs[k]), false);
		fprintf(f, "</th>");
	}
	fprintf(f, "</tr>\n");
	json_array_foreach(names, i, name) {
		fprintf(f, "<tr><td>");
		ms_xml_put(f, json_string_value(name), false);
		fprintf(f, "</td>");
		for (size_t k = 0; k < n; k++) {
			json_t *c = find_case(runs[k], json_string_value(name));
			const char *v = c ? str(c, "verdict") ?: "none" : "-";

			fprintf(f, "<td class=\"%s\" title=\"", v);
			ms_xml_put(f, c ? str(c, "reason") : "", false);
			fprintf(f, "\">%s</td>", v);
		}
		fprintf(f, "</tr>\n");
	}
	fprintf(f, "</table>\n");
	json_decref(names);
}

static void html_cell(FILE *f, const char *cls, const char *fmt, const json_t *v)
{
	fprintf(f, "<td class=\"%s\">", cls);
	if (json_is_number(v))
		fprintf(f, fmt, json_number_value(v));
	else
		fprintf(f, "-");
	fprintf(f, "</td>");
}

static void html_metric_row(FILE *f, const json_t *row)
{
	json_t *ci = json_object_get(row, "ci");
	const char *v = str(row, "verdict");

	fprintf(f, "<tr><td>");
	ms_xml_put(f, str(row, "case"), false);
	fprintf(f, "</td><td>");
	ms_xml_put(f, str(row, "metric"), false);
	fprintf(f, " (%s, %s)</td>", str(row, "statistic"), str(row, "unit"));
	html_cell(f, "num", "%.6g", json_object_get(json_object_get(row, "a"), "median"));
	html_cell(f, "num", "%.6g", json_object_get(json_object_get(row, "b"), "median"));
	html_cell(f, "num", "%.3f", json_object_get(row, "ratio"));
	html_cell(f, "num", "%.3f", json_array_get(ci, 0));
	html_cell(f, "num", "%.3f", json_array_get(ci, 1));
	html_cell(f, "num", "%.2g", json_object_get(row, "p"));
	fprintf(f, "<td class=\"num\">%lld/%lld</td><td class=\"%s\">",
		(long long)json_integer_value(json_object_get(json_object_get(row, "a"), "n")),
		(long long)json_integer_value(json_object_get(json_object_get(row, "b"), "n")), v);
	/* "insufficient repeats: need N" says its verdict already */
	if (strncmp(str(row, "why") ?: "", v, strlen(v)))
		fprintf(f, "%s: ", v);
	ms_xml_put(f, str(row, "why"), false);
	fprintf(f, "</td></tr>\n");
}

static void html_comparison(FILE *f, const struct ms_report *r, const json_t *c, size_t idx)
{
	json_t *row;
	size_t i;
	char section[32];

	fprintf(f, "<h3>");
	ms_xml_put(f, str(c, "b"), false);
	fprintf(f, " against ");
	ms_xml_put(f, str(c, "a"), false);
	fprintf(f, "</h3>\n<ul>\n");
	json_array_foreach(json_object_get(c, "warnings"), i, row)
		tagged(f, "<li class=\"warn\">", json_string_value(row), "</li>\n");
	json_array_foreach(json_object_get(c, "notes"), i, row)
		tagged(f, "<li>", json_string_value(row), "</li>\n");
	fprintf(f, "</ul>\n<p>Correctness: %s</p>\n",
		json_array_size(json_object_get(c, "correctness")) ? "" :
		"every case has the same verdict.");
	if (json_array_size(json_object_get(c, "correctness")))
		fprintf(f, "<table><tr><th>case</th><th>A</th><th>B</th><th>change</th>"
			"<th>reason in B</th></tr>\n");
	json_array_foreach(json_object_get(c, "correctness"), i, row) {
		fprintf(f, "<tr><td>");
		ms_xml_put(f, str(row, "case"), false);
		fprintf(f, "</td><td class=\"%s\">%s</td><td class=\"%s\">%s</td><td>",
			str(row, "a"), str(row, "a"), str(row, "b"), str(row, "b"));
		ms_xml_put(f, str(row, "change"), false);
		fprintf(f, "</td><td>");
		ms_xml_put(f, str(row, "reason_b"), false);
		fprintf(f, "</td></tr>\n");
	}
	if (json_array_size(json_object_get(c, "correctness")))
		fprintf(f, "</table>\n");
	snprintf(section, sizeof(section), "ratio-%zu", idx + 1);
	for (i = 0; i < json_array_size(r->charts); i++) {
		json_t *ch = json_array_get(r->charts, i);

		if (strcmp(str(ch, "name"), section))
			continue;
		fprintf(f, "<figure class=\"wide\">");
		if (str(ch, "svg"))
			inline_svg(f, r->dir, str(ch, "svg"), (unsigned)i);
		else
			tagged(f, "<p class=\"warn\">no chart: ", str(ch, "error"), "</p>");
		fprintf(f, "<figcaption>");
		ms_xml_put(f, str(ch, "title"), false);
		fprintf(f, "</figcaption></figure>\n");
	}
	fprintf(f, "<table><tr><th>case</th><th>metric</th><th>A median</th><th>B median</th>"
		"<th>B/A</th><th>low</th><th>high</th><th>p</th><th>n A/B</th><th>verdict</th>"
		"</tr>\n");
	json_array_foreach(json_object_get(c, "metrics"), i, row)
		html_metric_row(f, row);
	fprintf(f, "</table>\n");
}

static void html_compare(FILE *f, const struct ms_report *r)
{
	json_t *o = json_object_get(r->cmp, "options"), *c;
	size_t i;

	fprintf(f, "<h2>A/B comparison</h2>\n<p>Each run against %s. Per repeat the %s of a "
		"histogram, a counter's rate, a gauge's peak; medians over repeats; B/A with its "
		"%.0f%% bootstrap interval; Mann-Whitney U p-value; threshold %.3g%%, alpha %.3g. "
		"\"insufficient\" says how many repeats per side would see a threshold-sized "
		"change with %.0f%% power.</p>\n", r->labels[0], str(o, "statistic"),
		100 * json_number_value(json_object_get(o, "ci_level")),
		100 * json_number_value(json_object_get(o, "threshold")),
		json_number_value(json_object_get(o, "alpha")),
		100 * json_number_value(json_object_get(o, "power")));
	json_array_foreach(json_object_get(r->cmp, "comparisons"), i, c)
		html_comparison(f, r, c, i);
}

static void html_trend(FILE *f, const struct ms_report *r)
{
	size_t n = json_array_size(r->trend);
	json_t **runs = calloc(n + 1, sizeof(*runs));

	if (!runs)
		return;
	for (size_t i = 0; i < n; i++)
		runs[i] = json_array_get(r->trend, i);
	html_verdicts(f, "History", NULL, runs, n);
	free(runs);
	html_charts(f, r, "trend", false);
}

static void html_page(FILE *f, const struct ms_report *r)
{
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<title>mmstorm report</title><style>%s</style></head><body>\n"
		"<h1>mmstorm report</h1>\n<p>mmstorm %s. The charts are gnuplot SVG; each "
		"one's script (<code>.gp</code>) and data (<code>.dat</code>) are next to this "
		"file.</p>\n",
		css, MMSTORM_VERSION);
	if (r->n) {
		html_runs(f, r);
		html_verdicts(f, "Verdicts", r->labels, r->runs, r->n);
	}
	if (r->cmp)
		html_compare(f, r);
	if (r->n) {
		fprintf(f, "<h2>Latency distributions</h2>\n");
		html_charts(f, r, "cdf", false);
		fprintf(f, "<h2>Page tables</h2>\n");
		html_charts(f, r, "pgtables", false);
	}
	if (r->trend)
		html_trend(f, r);
	fprintf(f, "</body></html>\n");
}

/* ---- Markdown ---- */

static void md_verdicts(FILE *f, const char *title, json_t *const *runs, const char *const *labels,
			size_t n)
{
	json_t *names = case_names(runs, n), *name;
	size_t i;

	fprintf(f, "## %s\n\n| case |", title);
	for (size_t k = 0; k < n; k++) {
		fputc(' ', f);
		ms_md_put(f, labels ? labels[k] : ms_run_label(runs[k]), true);
		fputs(" |", f);
	}
	fprintf(f, "\n|---|");
	for (size_t k = 0; k < n; k++)
		fprintf(f, "---|");
	fprintf(f, "\n");
	json_array_foreach(names, i, name) {
		fprintf(f, "| ");
		ms_md_put(f, json_string_value(name), true);
		fprintf(f, " |");
		for (size_t k = 0; k < n; k++) {
			json_t *c = find_case(runs[k], json_string_value(name));

			fprintf(f, " %s |", c ? str(c, "verdict") ?: "none" : "-");
		}
		fprintf(f, "\n");
	}
	fprintf(f, "\n");
	json_decref(names);
}

static void md_charts(FILE *f, const struct ms_report *r, const char *section)
{
	json_t *c;
	size_t i;

	json_array_foreach(r->charts, i, c) {
		if (strcmp(str(c, "section"), section))
			continue;
		if (str(c, "svg"))
			fprintf(f, "![%s](%s)\n\n", str(c, "title"), str(c, "svg"));
		else
			fprintf(f, "- no chart %s: %s\n\n", str(c, "name"), str(c, "error"));
	}
}

static void md_page(FILE *f, const struct ms_report *r)
{
	fprintf(f, "# mmstorm report\n\nmmstorm %s. Charts: gnuplot scripts (`.gp`) and data "
		"(`.dat`) beside this file.\n\n", MMSTORM_VERSION);
	if (r->n)
		md_verdicts(f, "Verdicts", r->runs, r->labels, r->n);
	if (r->cmp) {
		ms_compare_write_md(r->cmp, f);
		md_charts(f, r, "ratio");
	}
	if (r->n) {
		fprintf(f, "## Latency distributions\n\n");
		md_charts(f, r, "cdf");
		fprintf(f, "## Page tables\n\n");
		md_charts(f, r, "pgtables");
	}
	if (r->trend) {
		size_t n = json_array_size(r->trend);
		json_t **runs = calloc(n + 1, sizeof(*runs));

		for (size_t i = 0; runs && i < n; i++)
			runs[i] = json_array_get(r->trend, i);
		if (runs)
			md_verdicts(f, "History", runs, NULL, n);
		free(runs);
		md_charts(f, r, "trend");
	}
}

static int write_page(const struct ms_report *r, const char *name,
		      void (*page)(FILE *, const struct ms_report *))
{
	char path[4096], *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f)
		return -errno;
	page(f, r);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	ret = ms_report_write_atomic(path, buf, len);
	free(buf);
	return ret;
}

int ms_report_write(const struct ms_report *r)
{
	int ret = write_page(r, "report.html", html_page);

	return ret ? ret : write_page(r, "report.md", md_page);
}

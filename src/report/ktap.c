/* KTAP version 1 on stdout, as kselftest prints it, so kernel CI parsers read mmstorm as-is. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mmstorm/result.h"
#include "report/report_int.h"

#define KTAP_MAX_FAILURES	3	/* check failures shown before "not ok" */
#define KTAP_MAX_LINE		1000	/* bytes of text in one line */
#define KTAP_MAX_LINES		20	/* lines of one multi-line diagnostic */

/*
 * Text from events goes into a line-oriented format: control characters become spaces, and
 * in a test name '#' becomes '_', since it would start a directive.
 */
static void put_clean(FILE *f, const char *s, size_t len, bool name)
{
	unsigned char c;
	size_t n;

	for (n = 0; n < len && s[n]; n++) {
		c = (unsigned char)s[n];
		if (c < 0x20 || c == 0x7f || (name && c == '#'))
			c = name ? '_' : ' ';
		fputc(c, f);
	}
}

/* At most max bytes of s, and "..." when there was more. */
static void put_capped(FILE *f, const char *s, size_t max, bool name)
{
	size_t n = strnlen(s, max + 1);

	put_clean(f, s, n > max ? max : n, name);
	if (n > max)
		fputs("...", f);
}

/* "# <prefix>text", one KTAP diagnostic line per line of text. */
static void diag(FILE *f, const char *prefix, const char *text)
{
	const char *nl;
	unsigned lines = 0;
	size_t len;

	do {
		nl = strchr(text, '\n');
		len = nl ? (size_t)(nl - text) : strlen(text);
		if (len > KTAP_MAX_LINE)
			len = KTAP_MAX_LINE;
		fprintf(f, "# %s", lines ? "  " : prefix);
		put_clean(f, text, len, false);
		if (len < (nl ? (size_t)(nl - text) : strlen(text)))
			fputs("...", f);
		fputc('\n', f);
		text = nl ? nl + 1 : NULL;
	} while (text && *text && ++lines < KTAP_MAX_LINES);
}

static void header(struct ms_out *o)
{
	if (o->ktap_header)
		return;
	o->ktap_header = true;
	fputs("KTAP version 1\n", o->ktap);
}

void ms_ktap_run_start(struct ms_out *o)
{
	const json_t *run = o->run;
	const json_t *suite = json_object_get(run, "suite");
	const json_t *kernel = json_object_get(run, "kernel");
	const json_t *env = json_object_get(run, "env");
	char buf[512];

	if (!o->ktap || o->ktap_header)
		return;
	header(o);
	fprintf(o->ktap, "1..%lld\n", (long long)ms_report_int(suite, "ncases", 0));
	o->ktap_planned = true;
	snprintf(buf, sizeof(buf), "mmstorm %s run %s",
		 ms_report_str(json_object_get(run, "mmstorm"), "version", "?"),
		 ms_report_str(run, "run_id", "?"));
	diag(o->ktap, "", buf);
	snprintf(buf, sizeof(buf), "kernel: %s %s", ms_report_str(kernel, "release", "?"),
		 ms_report_str(kernel, "version", ""));
	diag(o->ktap, "", buf);
	snprintf(buf, sizeof(buf), "suite: %s (%s), seed %lld", ms_report_str(suite, "name", "?"),
		 ms_report_str(suite, "path", "?"), (long long)ms_report_int(suite, "seed", 0));
	diag(o->ktap, "", buf);
	snprintf(buf, sizeof(buf), "env: %s%s%s", ms_report_str(env, "where", "?"),
		 json_object_get(env, "accel") ? ", accel " : "", ms_report_str(env, "accel", ""));
	diag(o->ktap, "", buf);
	fflush(o->ktap);
}

/* 12345 ns -> "12.3us", 1536 bytes -> "1.5KiB"; other units get the bare number. */
static const char *human(char *buf, size_t len, double v, const char *unit)
{
	static const char *const ns_units[] = { "ns", "us", "ms", "s" };
	static const char *const byte_units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	const char *const *units = NULL;
	unsigned n = 0, i = 0;
	double step = 1;

	if (!strcmp(unit, "ns")) {
		units = ns_units;
		n = 4;
		step = 1000;
	} else if (!strcmp(unit, "bytes") || !strcmp(unit, "B")) {
		units = byte_units;
		n = 6;
		step = 1024;
	}
	if (!units) {
		if (v == floor(v) && fabs(v) < 1e15)
			snprintf(buf, len, "%.0f", v);
		else
			snprintf(buf, len, "%.4g", v);
		return buf;
	}
	while (i + 1 < n && fabs(v) >= step) {
		v /= step;
		i++;
	}
	if (i)
		snprintf(buf, len, "%.1f%s", v, units[i]);
	else
		snprintf(buf, len, "%.0f%s", v, units[i]);
	return buf;
}

static bool unit_is_known(const char *unit)
{
	return !strcmp(unit, "ns") || !strcmp(unit, "bytes") || !strcmp(unit, "B") ||
	       !strcmp(unit, "") || !strcmp(unit, "count");
}

static double num(const json_t *m, const char *key)
{
	return json_number_value(json_object_get(m, key));
}

static void metric_line(FILE *f, const char *name, const json_t *m)
{
	const char *kind = ms_report_str(m, "kind", "");
	const char *unit = ms_report_str(m, "unit", "");
	char a[32], b[32], c[32], line[256];

	if (!strcmp(kind, "hist"))
		snprintf(line, sizeof(line), "%s: p50=%s p99=%s max=%s n=%lld", name,
			 human(a, sizeof(a), num(m, "p50"), unit),
			 human(b, sizeof(b), num(m, "p99"), unit),
			 human(c, sizeof(c), num(m, "max"), unit),
			 (long long)ms_report_int(m, "count", 0));
	else if (!strcmp(kind, "counter"))
		snprintf(line, sizeof(line), "%s: %s", name,
			 human(a, sizeof(a), num(m, "value"), unit));
	else if (!strcmp(kind, "gauge"))
		snprintf(line, sizeof(line), "%s: last=%s peak=%s", name,
			 human(a, sizeof(a), num(m, "last"), unit),
			 human(b, sizeof(b), num(m, "peak"), unit));
	else
		return;
	fputs("# ", f);
	put_capped(f, line, KTAP_MAX_LINE, false);
	if (!unit_is_known(unit)) {
		fputc(' ', f);
		put_capped(f, unit, 64, false);
	}
	fputc('\n', f);
}

static void print_metrics(struct ms_out *o, const struct ms_case_st *cs)
{
	const json_t *repeats = json_object_get(cs->obj, "repeats");
	const char *name;
	json_t *r, *m;
	char buf[128];
	size_t i;

	json_array_foreach(repeats, i, r) {
		if (cs->repeats > 1 || json_array_size(repeats) > 1) {
			snprintf(buf, sizeof(buf), "repeat %lld: %s in %.3fs",
				 (long long)ms_report_int(r, "repeat", 0) + 1,
				 ms_report_str(r, "verdict", "?"),
				 ms_report_int(r, "duration_ns", 0) / 1e9);
			diag(o->ktap, "", buf);
		}
		json_object_foreach(json_object_get(r, "metrics"), name, m)
			metric_line(o->ktap, name, m);
	}
}

static void print_failure(struct ms_out *o, const struct ms_case_st *cs)
{
	const json_t *w = ms_report_worst_repeat(cs->obj);
	const json_t *checks = json_object_get(w, "checks");
	const json_t *kmsg = json_object_get(w, "kmsg");
	const json_t *failures = json_object_get(checks, "failures");
	const char *cls = ms_report_str(kmsg, "class", "none");
	long long failed = ms_report_int(checks, "failed", 0);
	char prefix[64];
	json_t *f;
	size_t i;

	if (cs->repeats > 1)
		snprintf(prefix, sizeof(prefix), "%s in repeat %lld/%d: ",
			 ms_verdict_name(cs->worst), (long long)ms_report_int(w, "repeat", 0) + 1,
			 cs->repeats);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", ms_verdict_name(cs->worst));
	diag(o->ktap, prefix, ms_report_str(w, "reason", ""));
	json_array_foreach(failures, i, f) {
		if (i == KTAP_MAX_FAILURES)
			break;
		fprintf(o->ktap, "# check failed: ");
		put_capped(o->ktap, ms_report_str(f, "what", "?"), 200, false);
		fputs(": ", o->ktap);
		put_capped(o->ktap, ms_report_str(f, "detail", ""), KTAP_MAX_LINE, false);
		fputc('\n', o->ktap);
	}
	if (failed > (long long)i && failed > 0)
		fprintf(o->ktap, "# ... %lld failed checks in all\n", failed);
	if (strcmp(cls, "none")) {
		snprintf(prefix, sizeof(prefix), "kmsg %s: ", cls);
		diag(o->ktap, prefix, ms_report_str(kmsg, "first", ""));
	}
}

/*
 * fail-nth's sweep as nested KTAP, one subtest per n (kselftest/KUnit style, indented
 * four spaces), so a CI parser sees which n failed how. The text (inject.detail) merges runs:
 * "1-71 ENOMEM, 72 ok, 73 EINVAL(undocumented), 74 clean"; a truncated text ends the plan
 * where it was cut.
 */
static void print_sweep(struct ms_out *o, const struct ms_case_st *cs, const char *name)
{
	const char *t = ms_report_sweep(cs->obj);
	unsigned a, b, total = 0, k = 0;
	char word[64];
	size_t n;

	for (const char *p = t; (n = ms_report_sweep_item(p, &a, &b, word, sizeof(word)));
	     p += n)
		total += b - a + 1;
	if (!total)
		return;
	fputs("    KTAP version 1\n    # Subtest: ", o->ktap);
	put_capped(o->ktap, name, 256, false);
	fprintf(o->ktap, "\n    1..%u\n", total);
	for (const char *p = t; (n = ms_report_sweep_item(p, &a, &b, word, sizeof(word)));
	     p += n) {
		bool bad = strstr(word, "undocumented") != NULL;
		const char *why = word;

		if (!strcmp(word, "ok"))
			why = "fault absorbed, the call succeeded";
		else if (!strcmp(word, "clean"))
			why = "clean: fewer fault sites than n";
		else if (!strcmp(word, "lost"))
			why = "SKIP the fail-nth counter was unreadable";

		for (unsigned v = a; v <= b; v++)
			fprintf(o->ktap, "    %s %u fail-nth n=%u # %s\n", bad ? "not ok" : "ok",
				++k, v, why);
	}
}

static void print_case(struct ms_out *o, struct ms_case_st *cs)
{
	const char *name = ms_report_str(cs->obj, "name", "unnamed");

	header(o);
	if (o->ktap_verbose)
		print_metrics(o, cs);
	print_sweep(o, cs, name);
	if (cs->worst != MS_V_PASS && cs->worst != MS_V_SKIP)
		print_failure(o, cs);
	fprintf(o->ktap, "%s %d ", cs->worst <= MS_V_SKIP ? "ok" : "not ok", cs->index + 1);
	put_capped(o->ktap, name, 256, true);
	if (cs->worst == MS_V_SKIP) {
		fputs(" # SKIP ", o->ktap);
		put_capped(o->ktap, ms_report_str(cs->obj, "reason", ""), KTAP_MAX_LINE, false);
	}
	fputc('\n', o->ktap);
	cs->printed = true;
	fflush(o->ktap);
}

/* A case is over when a later one starts, even if it ran fewer repeats than planned. */
void ms_ktap_case_start(struct ms_out *o, int index)
{
	size_t i;

	for (i = 0; o->ktap && i < o->ncs; i++)
		if (!o->cs[i].printed && o->cs[i].worst >= 0 && o->cs[i].index != index)
			print_case(o, &o->cs[i]);
}

void ms_ktap_case_end(struct ms_out *o, struct ms_case_st *cs, int repeat)
{
	if (!o->ktap || cs->printed)
		return;
	if (cs->repeats <= 0 || repeat >= cs->repeats - 1)
		print_case(o, cs);
}

void ms_ktap_log(struct ms_out *o, const char *msg)
{
	if (!o->ktap || !msg)
		return;
	header(o);
	diag(o->ktap, "", msg);
	fflush(o->ktap);
}

void ms_ktap_run_end(struct ms_out *o)
{
	unsigned n[MS_V__COUNT] = { 0 };
	size_t i;

	if (!o->ktap || o->ktap_totals)
		return;
	header(o);
	for (i = 0; i < o->ncs; i++) {
		if (o->cs[i].worst < 0)
			continue;
		if (!o->cs[i].printed)
			print_case(o, &o->cs[i]);
		n[o->cs[i].worst]++;
	}
	if (!o->ktap_planned)
		fprintf(o->ktap, "1..%zu\n", o->ncs);
	o->ktap_planned = true;
	fprintf(o->ktap, "# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:%u error:%u\n",
		n[MS_V_PASS], n[MS_V_FAIL] + n[MS_V_TIMEOUT] + n[MS_V_CRASH], n[MS_V_SKIP],
		n[MS_V_ERROR]);
	o->ktap_totals = true;
	fflush(o->ktap);
}

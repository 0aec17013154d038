/* JUnit XML for CI dashboards (Jenkins, GitLab, LAVA): one testcase per mmstorm case. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/result.h"
#include "report/report_int.h"

#define JUNIT_MAX_FAILURES	20	/* check failures listed per repeat */

static void attr(FILE *f, const char *name, const char *value)
{
	fprintf(f, " %s=\"", name);
	ms_xml_put(f, value, true);
	fputc('"', f);
}

struct counts {
	unsigned tests, failures, errors, skipped;
	double time_s;
};

/* What a sweep outcome is in JUnit: 0 passed, 1 failure (undocumented errno), 2 skipped. */
static int sweep_kind(const char *word)
{
	if (strstr(word, "undocumented"))
		return 1;
	return !strcmp(word, "lost") ? 2 : 0;
}

/* fail-nth's sub-results: one testcase per n, like the KTAP subtests. */
static void count_sweep(const json_t *c, struct counts *n)
{
	const char *t = ms_report_sweep(c);
	unsigned a, b;
	char word[64];
	size_t k;

	for (; (k = ms_report_sweep_item(t, &a, &b, word, sizeof(word))); t += k) {
		n->tests += b - a + 1;
		if (sweep_kind(word) == 1)
			n->failures += b - a + 1;
		else if (sweep_kind(word) == 2)
			n->skipped += b - a + 1;
	}
}

static void count_cases(const json_t *cases, struct counts *n)
{
	const json_t *c;
	size_t i;

	memset(n, 0, sizeof(*n));
	json_array_foreach(cases, i, c) {
		int v = ms_verdict_parse(ms_report_str(c, "verdict", NULL));

		count_sweep(c, n);
		n->tests++;
		n->time_s += ms_report_case_duration_ns(c) / 1e9;
		if (v == MS_V_FAIL)
			n->failures++;
		else if (v == MS_V_SKIP)
			n->skipped++;
		else if (v != MS_V_PASS)
			n->errors++;
	}
}

static void counts_attrs(FILE *f, const struct counts *n)
{
	fprintf(f, " tests=\"%u\" failures=\"%u\" errors=\"%u\" skipped=\"%u\" time=\"%.3f\"",
		n->tests, n->failures, n->errors, n->skipped, n->time_s);
}

static void put_line(FILE *f, const char *a, const char *b, const char *c, const char *d)
{
	ms_xml_put(f, a, false);
	ms_xml_put(f, b, false);
	ms_xml_put(f, c, false);
	ms_xml_put(f, d, false);
	fputc('\n', f);
}

/* What went wrong in one repeat: reason, failed checks, the kernel's words, notes. */
static void repeat_body(FILE *f, const json_t *r, bool several)
{
	const json_t *checks = json_object_get(r, "checks");
	const json_t *kmsg = json_object_get(r, "kmsg");
	const char *cls = ms_report_str(kmsg, "class", "none");
	const json_t *x;
	char head[64];
	size_t i;

	if (several)
		snprintf(head, sizeof(head), "repeat %lld: %s: ",
			 (long long)ms_report_int(r, "repeat", 0) + 1,
			 ms_report_str(r, "verdict", "?"));
	else
		snprintf(head, sizeof(head), "%s: ", ms_report_str(r, "verdict", "?"));
	put_line(f, head, ms_report_str(r, "reason", ""), NULL, NULL);
	json_array_foreach(json_object_get(checks, "failures"), i, x) {
		if (i == JUNIT_MAX_FAILURES) {
			fprintf(f, "... %lld failed checks in all\n",
				(long long)ms_report_int(checks, "failed", 0));
			break;
		}
		put_line(f, "check failed: ", ms_report_str(x, "what", "?"), ": ",
			 ms_report_str(x, "detail", ""));
	}
	if (strcmp(cls, "none")) {
		put_line(f, "kmsg ", cls, ": ", ms_report_str(kmsg, "first", ""));
		fputs("kernel log excerpt:\n", f);
		json_array_foreach(json_object_get(kmsg, "excerpt"), i, x)
			put_line(f, "  ", json_string_value(x), NULL, NULL);
	}
	json_array_foreach(json_object_get(r, "notes"), i, x)
		put_line(f, "note: ", json_string_value(x), NULL, NULL);
}

static void case_result(FILE *f, const json_t *c, int v)
{
	const json_t *repeats = json_object_get(c, "repeats");
	bool several = json_array_size(repeats) > 1;
	const char *tag = v == MS_V_FAIL ? "failure" : "error";
	const json_t *r;
	size_t i;

	if (v < 0) {
		/* Started, never ended: a dashboard must not show it as passed. */
		fputs("      <error type=\"NORESULT\" message=\"the case started but no result was "
		      "recorded\"/>\n", f);
		return;
	}
	if (v == MS_V_PASS)
		return;
	if (v == MS_V_SKIP) {
		fputs("      <skipped", f);
		attr(f, "message", ms_report_str(c, "reason", ""));
		fputs("/>\n", f);
		return;
	}
	fprintf(f, "      <%s", tag);
	attr(f, "message", ms_report_str(c, "reason", ""));
	attr(f, "type", ms_verdict_name(v));
	fputs(">", f);
	json_array_foreach(repeats, i, r) {
		int rv = ms_verdict_parse(ms_report_str(r, "verdict", NULL));

		if (rv != MS_V_PASS && rv != MS_V_SKIP)
			repeat_body(f, r, several);
	}
	fprintf(f, "</%s>\n", tag);
}

/* "CASE/fail-nth n=K" per n of the case's sweep, in the class of the case. */
static void sweep_cases(FILE *f, const json_t *c, const char *classname)
{
	const char *t = ms_report_sweep(c);
	char word[64], name[320];
	unsigned a, b;
	size_t k;

	for (; (k = ms_report_sweep_item(t, &a, &b, word, sizeof(word))); t += k) {
		for (unsigned v = a; v <= b; v++) {
			snprintf(name, sizeof(name), "%s/fail-nth n=%u",
				 ms_report_str(c, "name", "unnamed"), v);
			fputs("    <testcase", f);
			attr(f, "name", name);
			attr(f, "classname", classname);
			fputs(" time=\"0.000\">", f);
			if (sweep_kind(word) == 1) {
				fputs("<failure type=\"FAIL\"", f);
				attr(f, "message", word);
				fputs("/>", f);
			} else if (sweep_kind(word) == 2) {
				fputs("<skipped message=\"the fail-nth counter was "
				      "unreadable\"/>", f);
			} else {
				fputs("<system-out>", f);
				ms_xml_put(f, word, false);
				fputs("</system-out>", f);
			}
			fputs("</testcase>\n", f);
		}
	}
}

static void testcase(FILE *f, const json_t *c)
{
	const char *wl = ms_report_str(c, "workload", NULL);
	char classname[256];

	snprintf(classname, sizeof(classname), "mmstorm.%s", wl ? wl : "unknown");
	fputs("    <testcase", f);
	attr(f, "name", ms_report_str(c, "name", "unnamed"));
	attr(f, "classname", classname);
	fprintf(f, " time=\"%.3f\">\n", ms_report_case_duration_ns(c) / 1e9);
	case_result(f, c, ms_verdict_parse(ms_report_str(c, "verdict", NULL)));
	fputs("    </testcase>\n", f);
	sweep_cases(f, c, classname);
}

static void property(FILE *f, const char *name, const char *value)
{
	if (!value)
		return;
	fputs("      <property", f);
	attr(f, "name", name);
	attr(f, "value", value);
	fputs("/>\n", f);
}

static void junit(FILE *f, const json_t *run)
{
	const json_t *cases = json_object_get(run, "cases");
	const json_t *kernel = json_object_get(run, "kernel");
	const char *suite = ms_report_str(json_object_get(run, "suite"), "name", "mmstorm");
	struct counts n;
	const json_t *c;
	size_t i;

	count_cases(cases, &n);
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"mmstorm\"", f);
	counts_attrs(f, &n);
	fputs(">\n  <testsuite", f);
	attr(f, "name", suite);
	counts_attrs(f, &n);
	if (ms_report_str(run, "started", NULL))
		attr(f, "timestamp", ms_report_str(run, "started", NULL));
	fputs(">\n    <properties>\n", f);
	property(f, "run_id", ms_report_str(run, "run_id", NULL));
	property(f, "status", ms_report_str(run, "status", NULL));
	property(f, "mmstorm", ms_report_str(json_object_get(run, "mmstorm"), "version", NULL));
	property(f, "kernel.release", ms_report_str(kernel, "release", NULL));
	property(f, "kernel.version", ms_report_str(kernel, "version", NULL));
	property(f, "env.where", ms_report_str(json_object_get(run, "env"), "where", NULL));
	property(f, "env.accel", ms_report_str(json_object_get(run, "env"), "accel", NULL));
	fputs("    </properties>\n", f);
	json_array_foreach(cases, i, c)
		testcase(f, c);
	fputs("  </testsuite>\n</testsuites>\n", f);
}

int ms_out_write_junit(struct ms_out *o, const char *path)
{
	char *buf = NULL, *dflt = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (!o)
		return -EINVAL;
	if (!path) {
		if (asprintf(&dflt, "%s/junit.xml", o->dir) < 0)
			return -ENOMEM;
		path = dflt;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		ret = -errno;
		goto out_free;
	}
	junit(f, o->run);
	if (ferror(f)) {
		fclose(f);
		ret = -ENOMEM;
		goto out_free;
	}
	if (fclose(f)) {
		ret = -errno;
		goto out_free;
	}
	ret = ms_report_write_atomic(path, buf, len);
out_free:
	free(buf);
	free(dflt);
	return ret;
}

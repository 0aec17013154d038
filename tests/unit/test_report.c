/* Unit tests for the event stream and its outputs: validation, events.jsonl, run.json, JUnit. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "mmstorm/result.h"

/* One directory for the whole run, removed by the parent even when a test fails. */
static char base[256];
static char tmp[300];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void base_setup(void)
{
	const char *t = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(base, sizeof(base), "%s/test_report.XXXXXX", t);
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void base_teardown(void)
{
	nftw(base, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void make_tmp(void)
{
	snprintf(tmp, sizeof(tmp), "%s/t.XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void rm_tmp(void)
{
	nftw(tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static char *path_in(const char *dir, const char *name)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

/* ---- events as the runner makes them ---- */

static json_t *ev_run_start(int ncases)
{
	return json_pack("{s:s, s:I, s:s, s:s, s:{s:s}, s:[s,s], s:{s:s, s:s, s:I, s:I},"
			 " s:{s:s, s:s, s:s}, s:{s:s}, s:{s:I}, s:{s:s}}",
			 "ev", "run_start", "t_ns", (json_int_t)0, "run_id", "r-test",
			 "schema", MS_EVENTS_SCHEMA, "mmstorm", "version", "0.1.0",
			 "command", "mmstorm", "run", "suite", "path", "configs/t.ini", "name", "t",
			 "seed", (json_int_t)7, "ncases", (json_int_t)ncases,
			 "kernel", "release", "6.18.0", "version", "#1 SMP", "cmdline", "quiet",
			 "cpu", "model", "test cpu", "memory", "total_bytes", (json_int_t)1 << 30,
			 "env", "where", "host");
}

static json_t *ev_case_start(const char *name, int index, int repeat, int repeats)
{
	return json_pack("{s:s, s:I, s:s, s:i, s:i, s:i, s:s, s:{s:s}, s:I, s:I}",
			 "ev", "case_start", "t_ns", (json_int_t)1000 * (index + 1), "case", name,
			 "index", index, "repeat", repeat, "repeats", repeats,
			 "workload", "fork-storm", "params", "size", "64M",
			 "timeout_ns", (json_int_t)60000000000LL, "seed", (json_int_t)7 + repeat);
}

static json_t *ev_case_end(const char *name, int index, int repeat, const char *verdict,
			   const char *reason)
{
	json_t *failures = json_array();

	if (!strcmp(verdict, "FAIL"))
		json_array_append_new(failures, json_pack("{s:s, s:s}", "what",
							  "child sees parent page",
							  "detail", "page 3: want 0xaa got 0x00"));
	return json_pack("{s:s, s:I, s:s, s:i, s:i, s:s, s:s, s:I, s:I,"
			 " s:{s:{s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:[[I,I]]}},"
			 " s:{s:I, s:I, s:o}, s:[], s:{s:I}, s:{s:s, s:s, s:[]}}",
			 "ev", "case_end", "t_ns", (json_int_t)2000 * (index + 1), "case", name,
			 "index", index, "repeat", repeat, "verdict", verdict, "reason", reason,
			 "duration_ns", (json_int_t)1500000000, "iterations", (json_int_t)10,
			 "metrics", "fork_lat", "kind", "hist", "unit", "ns",
			 "count", (json_int_t)3,
			 "min", (json_int_t)100, "max", (json_int_t)300, "mean", 200.0,
			 "p50", (json_int_t)200, "p90", (json_int_t)300, "p99", (json_int_t)300,
			 "p999", (json_int_t)300, "buckets", (json_int_t)300, (json_int_t)3,
			 "checks", "run", (json_int_t)10,
			 "failed", (json_int_t)json_array_size(failures),
			 "failures", failures, "notes", "pgtables", "pagetables_peak_bytes",
			 (json_int_t)4096, "kmsg", "class", "none", "first", "", "excerpt");
}

static json_t *ev_run_end(const char *status)
{
	return json_pack("{s:s, s:I, s:s}", "ev", "run_end", "t_ns", (json_int_t)99999,
			 "status", status);
}

static struct ms_out *open_out(const char *dir)
{
	struct ms_out_opts opts = { .dir = dir };
	struct ms_out *o = NULL;

	ck_assert_int_eq(ms_out_open(&o, &opts), 0);
	ck_assert_ptr_nonnull(o);
	return o;
}

/* Two cases: "anon" with 2 repeats of which the second FAILs, "huge" SKIPped. */
static void feed_sequence(struct ms_out *o)
{
	ck_assert_int_eq(ms_out_event(o, ev_run_start(2)), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_start("anon", 0, 0, 2)), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_end("anon", 0, 0, "PASS", "")), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_start("anon", 0, 1, 2)), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_end("anon", 0, 1, "FAIL",
						     "child sees parent page")), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_start("huge", 1, 0, 1)), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_end("huge", 1, 0, "SKIP",
						     "no hugetlb pages")), 0);
	ck_assert_int_eq(ms_out_event(o, ev_run_end("complete")), 0);
}

static json_t *load(const char *path)
{
	json_error_t jerr;
	json_t *v = json_load_file(path, 0, &jerr);

	ck_assert_msg(v != NULL, "%s: %s", path, jerr.text);
	return v;
}

/* Every line of events.jsonl, parsed; fails the test on a partial or invalid line. */
static json_t *load_lines(const char *path)
{
	json_t *lines = json_array();
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f = fopen(path, "r");

	ck_assert_ptr_nonnull(f);
	while ((n = getline(&buf, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *v;

		ck_assert_msg(buf[n - 1] == '\n', "line %zu not complete",
			      json_array_size(lines) + 1);
		v = json_loadb(buf, n - 1, 0, &jerr);
		ck_assert_msg(json_is_object(v), "line %zu: %s", json_array_size(lines) + 1,
			      jerr.text);
		json_array_append_new(lines, v);
	}
	free(buf);
	fclose(f);
	return lines;
}

static const char *sget(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	ck_assert_msg(s != NULL, "member %s is not a string", key);
	return s;
}

static long long iget(const json_t *o, const char *key)
{
	ck_assert_msg(json_is_integer(json_object_get(o, key)), "member %s is not an integer", key);
	return json_integer_value(json_object_get(o, key));
}

static bool iso_utc(const char *s)
{
	int y, mo, d, h, mi, se;
	char z;

	return strlen(s) == 20 && sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se,
					 &z) == 7 && z == 'Z' && y >= 2000;
}

START_TEST(test_verdict_names)
{
	int v;

	for (v = 0; v < MS_V__COUNT; v++)
		ck_assert_int_eq(ms_verdict_parse(ms_verdict_name(v)), v);
	ck_assert_str_eq(ms_verdict_name(MS_V_TIMEOUT), "TIMEOUT");
	ck_assert_int_eq(ms_verdict_parse("CRASH"), MS_V_CRASH);
	ck_assert_int_eq(ms_verdict_parse("pass"), -1);
	ck_assert_int_eq(ms_verdict_parse(""), -1);
	ck_assert_int_eq(ms_verdict_parse(NULL), -1);
	ck_assert_str_eq(ms_verdict_name(MS_V__COUNT), "?");
	ck_assert_int_lt(MS_V_PASS, MS_V_SKIP);
	ck_assert_int_lt(MS_V_SKIP, MS_V_FAIL);
	ck_assert_int_lt(MS_V_FAIL, MS_V_CRASH);
}
END_TEST

START_TEST(test_valid_events)
{
	char err[256];
	json_t *ev[] = {
		ev_run_start(2), ev_case_start("a", 0, 0, 1), ev_case_end("a", 0, 0, "FAIL", "x"),
		ev_run_end("complete"),
		json_pack("{s:s, s:I, s:s, s:b}", "ev", "log", "t_ns", (json_int_t)5, "msg", "hi",
			  "problem", 0),
	};
	size_t i;

	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		ck_assert_ptr_nonnull(ev[i]);
		ck_assert_msg(ms_event_validate(ev[i], err, sizeof(err)) == 0, "event %zu: %s", i,
			      err);
		json_decref(ev[i]);
	}
}
END_TEST

START_TEST(test_run_json)
{
	struct ms_out *o;
	json_t *run, *cases, *c, *r, *sum, *lines;
	const char *kinds[] = { "run_start", "case_start", "case_end", "case_start", "case_end",
				"case_start", "case_end", "run_end" };
	size_t i;

	make_tmp();
	o = open_out(path_in(tmp, "sub/dir"));
	ck_assert_str_eq(ms_out_dir(o), path_in(tmp, "sub/dir"));
	feed_sequence(o);
	ck_assert_int_eq(ms_out_worst(o), MS_V_FAIL);
	ck_assert_int_eq(ms_out_open_case(o, NULL), -1);
	ck_assert_int_eq(ms_out_write(o, NULL), 0);
	ms_out_close(o);

	run = load(path_in(tmp, "sub/dir/run.json"));
	ck_assert_str_eq(sget(run, "schema"), MS_RESULTS_SCHEMA);
	ck_assert_str_eq(sget(run, "status"), "complete");
	ck_assert_str_eq(sget(run, "run_id"), "r-test");
	ck_assert_str_eq(sget(json_object_get(run, "kernel"), "release"), "6.18.0");
	ck_assert_str_eq(sget(json_object_get(run, "suite"), "name"), "t");
	ck_assert_str_eq(sget(json_object_get(run, "env"), "where"), "host");
	ck_assert(json_is_array(json_object_get(run, "command")));
	ck_assert(iso_utc(sget(run, "started")));
	ck_assert(iso_utc(sget(run, "finished")));
	ck_assert_int_eq(json_array_size(json_object_get(run, "problems")), 0);

	cases = json_object_get(run, "cases");
	ck_assert_int_eq(json_array_size(cases), 2);
	c = json_array_get(cases, 0);
	ck_assert_int_eq(iget(c, "index"), 0);
	ck_assert_str_eq(sget(c, "name"), "anon");
	ck_assert_str_eq(sget(c, "workload"), "fork-storm");
	ck_assert_str_eq(sget(json_object_get(c, "params"), "size"), "64M");
	ck_assert_str_eq(sget(c, "verdict"), "FAIL");
	ck_assert_str_eq(sget(c, "reason"), "child sees parent page");
	ck_assert_int_eq(json_array_size(json_object_get(c, "repeats")), 2);
	r = json_array_get(json_object_get(c, "repeats"), 0);
	ck_assert_str_eq(sget(r, "verdict"), "PASS");
	ck_assert_int_eq(iget(r, "repeat"), 0);
	ck_assert_ptr_null(json_object_get(r, "ev"));
	r = json_array_get(json_object_get(c, "repeats"), 1);
	ck_assert_str_eq(sget(r, "verdict"), "FAIL");
	ck_assert_int_eq(iget(r, "repeat"), 1);
	ck_assert_int_eq(iget(json_object_get(r, "checks"), "failed"), 1);
	ck_assert_int_eq(iget(json_object_get(json_object_get(r, "metrics"), "fork_lat"), "p99"),
			 300);
	c = json_array_get(cases, 1);
	ck_assert_str_eq(sget(c, "name"), "huge");
	ck_assert_str_eq(sget(c, "verdict"), "SKIP");
	ck_assert_str_eq(sget(c, "reason"), "no hugetlb pages");

	sum = json_object_get(run, "summary");
	ck_assert_int_eq(iget(sum, "PASS"), 0);
	ck_assert_int_eq(iget(sum, "FAIL"), 1);
	ck_assert_int_eq(iget(sum, "SKIP"), 1);
	ck_assert_int_eq(iget(sum, "ERROR"), 0);
	ck_assert_int_eq(iget(sum, "TIMEOUT"), 0);
	ck_assert_int_eq(iget(sum, "CRASH"), 0);
	ck_assert_int_eq(iget(sum, "total"), 2);

	lines = load_lines(path_in(tmp, "sub/dir/events.jsonl"));
	ck_assert_int_eq(json_array_size(lines), sizeof(kinds) / sizeof(kinds[0]));
	for (i = 0; i < json_array_size(lines); i++)
		ck_assert_str_eq(sget(json_array_get(lines, i), "ev"), kinds[i]);
	json_decref(lines);
	json_decref(run);
	rm_tmp();
}
END_TEST

/* events.jsonl alone is enough: replaying it gives the same cases and summary. */
START_TEST(test_replay)
{
	struct ms_out *a, *b;
	json_t *lines;
	size_t i;

	make_tmp();
	a = open_out(path_in(tmp, "a"));
	feed_sequence(a);
	ck_assert_int_eq(ms_out_event(a, json_pack("{s:s}", "ev", "bogus")), -EINVAL);
	lines = load_lines(path_in(tmp, "a/events.jsonl"));
	b = open_out(path_in(tmp, "b"));
	for (i = 0; i < json_array_size(lines); i++)
		ck_assert_int_eq(ms_out_event(b, json_incref(json_array_get(lines, i))), 0);
	ck_assert(json_equal(json_object_get(ms_out_run(a), "cases"),
			     json_object_get(ms_out_run(b), "cases")));
	ck_assert(json_equal(json_object_get(ms_out_run(a), "summary"),
			     json_object_get(ms_out_run(b), "summary")));
	ck_assert_int_eq(json_array_size(json_object_get(ms_out_run(b), "problems")), 1);
	ck_assert(json_equal(json_object_get(ms_out_run(a), "problems"),
			     json_object_get(ms_out_run(b), "problems")));
	json_decref(lines);
	ms_out_close(a);
	ms_out_close(b);
	rm_tmp();
}
END_TEST

START_TEST(test_orphan_end_and_open_case)
{
	struct ms_out *o;
	json_t *c;
	int rep = -1;

	make_tmp();
	o = open_out(tmp);
	ck_assert_int_eq(ms_out_open_case(o, &rep), -1);
	ck_assert_int_eq(ms_out_event(o, ev_case_start("a", 2, 1, 3)), 0);
	ck_assert_int_eq(ms_out_open_case(o, &rep), 2);
	ck_assert_int_eq(rep, 1);
	/* The started case is in the model already, with no verdict yet. */
	c = json_array_get(json_object_get(ms_out_run(o), "cases"), 0);
	ck_assert(json_is_null(json_object_get(c, "verdict")));
	ck_assert_int_eq(ms_out_worst(o), MS_V_PASS);

	/* A case_end without case_start (e.g. from a host marking a crash) still lands. */
	ck_assert_int_eq(ms_out_event(o, ev_case_end("orphan", 0, 0, "CRASH", "oops")), 0);
	ck_assert_int_eq(ms_out_open_case(o, &rep), 2);
	c = json_array_get(json_object_get(ms_out_run(o), "cases"), 0);
	ck_assert_str_eq(sget(c, "name"), "orphan");
	ck_assert_str_eq(sget(c, "verdict"), "CRASH");
	ck_assert(json_is_null(json_object_get(c, "workload")));
	ck_assert_int_eq(ms_out_worst(o), MS_V_CRASH);

	ck_assert_int_eq(ms_out_event(o, ev_case_end("a", 2, 1, "TIMEOUT", "hung")), 0);
	ck_assert_int_eq(ms_out_open_case(o, &rep), -1);

	/* The same repeat twice: the later one wins, and run.json says so. */
	ck_assert_int_eq(ms_out_event(o, ev_case_end("a", 2, 1, "PASS", "")), 0);
	c = json_array_get(json_object_get(ms_out_run(o), "cases"), 1);
	ck_assert_int_eq(iget(c, "index"), 2);
	ck_assert_int_eq(json_array_size(json_object_get(c, "repeats")), 1);
	ck_assert_str_eq(sget(c, "verdict"), "PASS");
	ck_assert_int_eq(json_array_size(json_object_get(ms_out_run(o), "problems")), 1);
	ck_assert_int_eq(iget(json_object_get(ms_out_run(o), "summary"), "total"), 2);
	ck_assert_int_eq(iget(json_object_get(ms_out_run(o), "summary"), "CRASH"), 1);

	ck_assert_int_eq(ms_out_write(o, "interrupted: SIGINT"), 0);
	ms_out_close(o);
	c = load(path_in(tmp, "run.json"));
	ck_assert_str_eq(sget(c, "status"), "interrupted: SIGINT");
	ck_assert(iso_utc(sget(c, "finished")));
	json_decref(c);
	rm_tmp();
}
END_TEST

/* The worst repeat decides, by severity order; among equals the first one gives the reason. */
START_TEST(test_worst_of_repeats)
{
	static const struct {
		const char *verdict, *reason;
	} reps[] = {
		{ "FAIL", "first failure" }, { "PASS", "" }, { "FAIL", "second failure" },
		{ "SKIP", "n/a" },
	};
	struct ms_out *o;
	json_t *c;
	size_t i;

	make_tmp();
	o = open_out(tmp);
	for (i = 0; i < sizeof(reps) / sizeof(reps[0]); i++)
		ck_assert_int_eq(ms_out_event(o, ev_case_end("r", 0, i, reps[i].verdict,
							     reps[i].reason)), 0);
	c = json_array_get(json_object_get(ms_out_run(o), "cases"), 0);
	ck_assert_str_eq(sget(c, "verdict"), "FAIL");
	ck_assert_str_eq(sget(c, "reason"), "first failure");
	ck_assert_int_eq(json_array_size(json_object_get(c, "repeats")), 4);
	ck_assert_int_eq(ms_out_event(o, ev_case_end("r", 0, 4, "ERROR", "harness")), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_end("r", 0, 5, "TIMEOUT", "hung")), 0);
	ck_assert_str_eq(sget(c, "verdict"), "TIMEOUT");
	ck_assert_str_eq(sget(c, "reason"), "hung");
	ck_assert_int_eq(ms_out_worst(o), MS_V_TIMEOUT);
	ck_assert_int_eq(iget(json_object_get(ms_out_run(o), "summary"), "TIMEOUT"), 1);
	ck_assert_int_eq(iget(json_object_get(ms_out_run(o), "summary"), "total"), 1);
	ms_out_close(o);
	rm_tmp();
}
END_TEST

struct bad {
	const char *json;	/* the event, or NULL for one built in code */
	const char *want;	/* in the error message */
};

static const struct bad bad_events[] = {
	{ "[1,2]", "not a JSON object" },
	{ "{\"t_ns\":1,\"msg\":\"x\"}", "\"ev\"" },
	{ "{\"ev\":7,\"t_ns\":1}", "\"ev\"" },
	{ "{\"ev\":\"explode\",\"t_ns\":1}", "unknown event kind" },
	{ "{\"ev\":\"log\",\"msg\":\"x\"}", "t_ns" },
	{ "{\"ev\":\"log\",\"t_ns\":-1,\"msg\":\"x\"}", "t_ns" },
	{ "{\"ev\":\"log\",\"t_ns\":1.5,\"msg\":\"x\"}", "t_ns" },
	{ "{\"ev\":\"log\",\"t_ns\":1}", "\"msg\"" },
	{ "{\"ev\":\"log\",\"t_ns\":1,\"msg\":null}", "\"msg\"" },
	{ "{\"ev\":\"log\",\"t_ns\":1,\"msg\":\"x\",\"problem\":\"yes\"}", "\"problem\"" },
	{ "{\"ev\":\"run_end\",\"t_ns\":1,\"status\":[]}", "\"status\"" },
	{ "{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"a\",\"index\":\"0\",\"repeat\":0,"
	  "\"repeats\":1,\"workload\":\"w\",\"params\":{},\"timeout_ns\":1,\"seed\":1}",
	  "\"index\"" },
	{ "{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"a\",\"index\":-3,\"repeat\":0,"
	  "\"repeats\":1,\"workload\":\"w\",\"params\":{},\"timeout_ns\":1,\"seed\":1}",
	  "\"index\"" },
	{ "{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"a\",\"index\":4000000000,\"repeat\":0,"
	  "\"repeats\":1,\"workload\":\"w\",\"params\":{},\"timeout_ns\":1,\"seed\":1}",
	  "\"index\"" },
	{ "{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"a\",\"index\":0,\"repeat\":2,"
	  "\"repeats\":2,\"workload\":\"w\",\"params\":{},\"timeout_ns\":1,\"seed\":1}",
	  "\"repeat\"" },
	{ "{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"a\",\"index\":0,\"repeat\":0,"
	  "\"repeats\":0,\"workload\":\"w\",\"params\":{},\"timeout_ns\":1,\"seed\":1}",
	  "\"repeats\"" },
	{ "{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"a\",\"index\":0,\"repeat\":0,"
	  "\"repeats\":1,\"workload\":\"w\",\"params\":[],\"timeout_ns\":1,\"seed\":1}",
	  "\"params\"" },
	{ "{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"a\",\"index\":0,\"repeat\":0,"
	  "\"repeats\":1,\"workload\":\"w\",\"params\":{},\"seed\":1}", "\"timeout_ns\"" },
	{ "{\"ev\":\"run_start\",\"t_ns\":0,\"run_id\":\"r\",\"schema\":\"mmstorm-events/2\","
	  "\"mmstorm\":{\"version\":\"1\"},\"command\":[],\"suite\":{\"path\":\"p\",\"name\":\"n\","
	  "\"seed\":1,\"ncases\":1},\"kernel\":{\"release\":\"r\",\"version\":\"v\","
	  "\"cmdline\":\"c\"},\"cpu\":{},\"memory\":{},\"env\":{\"where\":\"host\"}}", "schema" },
	{ "{\"ev\":\"run_start\",\"t_ns\":0,\"run_id\":\"r\",\"schema\":\"mmstorm-events/1\","
	  "\"mmstorm\":{\"version\":\"1\"},\"command\":[3],"
	  "\"suite\":{\"path\":\"p\",\"name\":\"n\","
	  "\"seed\":1,\"ncases\":1},\"kernel\":{\"release\":\"r\",\"version\":\"v\","
	  "\"cmdline\":\"c\"},\"cpu\":{},\"memory\":{},\"env\":{\"where\":\"host\"}}",
	  "\"command\"" },
	{ "{\"ev\":\"run_start\",\"t_ns\":0,\"run_id\":\"r\",\"schema\":\"mmstorm-events/1\","
	  "\"mmstorm\":{\"version\":\"1\"},\"command\":[],\"suite\":{\"path\":\"p\",\"name\":\"n\","
	  "\"seed\":1},\"kernel\":{\"release\":\"r\",\"version\":\"v\","
	  "\"cmdline\":\"c\"},\"cpu\":{},\"memory\":{},\"env\":{\"where\":\"host\"}}",
	  "\"suite.ncases\"" },
	{ NULL, NULL },		/* case_end members replaced in code from here on */
};

/* A valid case_end with one member replaced (or removed when value is NULL). */
static json_t *case_end_with(const char *member, json_t *value)
{
	json_t *ev = ev_case_end("a", 0, 0, "PASS", "");
	json_t *parent = ev;
	char key[64];
	const char *dot;

	while ((dot = strchr(member, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - member), member);
		parent = json_object_get(parent, key);
		member = dot + 1;
	}
	if (value)
		json_object_set_new(parent, member, value);
	else
		json_object_del(parent, member);
	return ev;
}

static json_t *deep(int levels)
{
	json_t *v = json_string("bottom");

	while (levels--)
		v = json_pack("[o]", v);
	return v;
}

static json_t *huge_string(size_t n)
{
	char *s = malloc(n + 1);
	json_t *v;

	ck_assert_ptr_nonnull(s);
	memset(s, 'x', n);
	s[n] = '\0';
	v = json_string(s);
	free(s);
	return v;
}

struct coded_bad {
	json_t *ev;
	const char *want;
};

static size_t coded_bad_events(struct coded_bad *out)
{
	size_t n = 0;

	out[n++] = (struct coded_bad){ case_end_with("verdict", json_string("MAYBE")), "verdict" };
	out[n++] = (struct coded_bad){ case_end_with("verdict", NULL), "\"verdict\"" };
	out[n++] = (struct coded_bad){ case_end_with("reason", json_integer(3)), "\"reason\"" };
	out[n++] = (struct coded_bad){ case_end_with("checks.failed", json_string("1")),
				       "\"checks.failed\"" };
	out[n++] = (struct coded_bad){ case_end_with("checks.failures",
						     json_pack("[i]", 1)), "checks.failures[0]" };
	out[n++] = (struct coded_bad){ case_end_with("checks.failures",
						     json_pack("[{s:s}]", "what", "w")),
				       "checks.failures[0].detail" };
	out[n++] = (struct coded_bad){ case_end_with("kmsg.class", json_string("PANIC")),
				       "kmsg.class" };
	out[n++] = (struct coded_bad){ case_end_with("kmsg.excerpt", json_pack("[s,n]", "a")),
				       "kmsg.excerpt" };
	out[n++] = (struct coded_bad){ case_end_with("notes", json_string("x")), "\"notes\"" };
	out[n++] = (struct coded_bad){ case_end_with("metrics.fork_lat.kind", json_string("pie")),
				       "metrics.fork_lat.kind" };
	out[n++] = (struct coded_bad){ case_end_with("metrics.fork_lat.p99", json_string("1")),
				       "metrics.fork_lat.p99" };
	out[n++] = (struct coded_bad){ case_end_with("metrics.fork_lat.buckets",
						     json_pack("[[i]]", 1)), "buckets[0]" };
	out[n++] = (struct coded_bad){ case_end_with("metrics.c", json_pack("{s:s, s:s}", "kind",
							     "counter", "unit", "ops")),
				       "metrics.c.value" };
	out[n++] = (struct coded_bad){ case_end_with("duration_ns", json_integer(-5)),
				       "\"duration_ns\"" };
	out[n++] = (struct coded_bad){ case_end_with("reason", huge_string(70000)), "70000 bytes" };
	out[n++] = (struct coded_bad){ case_end_with("pgtables", deep(40)), "deeper" };
	out[n++] = (struct coded_bad){ case_end_with("reason", json_stringn("a\0b", 3)), "NUL" };
	out[n++] = (struct coded_bad){ json_integer(5), "not a JSON object" };
	out[n++] = (struct coded_bad){ NULL, "not a JSON object" };
	return n;
}

START_TEST(test_invalid_events)
{
	struct coded_bad coded[32];
	char err[256], small[8];
	size_t i, n, total = 0;
	struct ms_out *o;
	json_t *ev, *lines, *problems;

	make_tmp();
	o = open_out(tmp);
	for (i = 0; bad_events[i].json; i++, total++) {
		ev = json_loads(bad_events[i].json, 0, NULL);
		ck_assert_msg(ev != NULL, "test event %zu does not parse", i);
		ck_assert_int_eq(ms_event_validate(ev, err, sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, bad_events[i].want), "event %zu: \"%s\" lacks \"%s\"", i,
			      err, bad_events[i].want);
		ck_assert_int_eq(ms_event_validate(ev, small, sizeof(small)), -EINVAL);
		ck_assert_int_lt(strlen(small), sizeof(small));
		ck_assert_int_eq(ms_event_validate(ev, NULL, 0), -EINVAL);
		ck_assert_int_eq(ms_out_event(o, ev), -EINVAL);
	}
	n = coded_bad_events(coded);
	for (i = 0; i < n; i++, total++) {
		ck_assert_int_eq(ms_event_validate(coded[i].ev, err, sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, coded[i].want), "coded %zu: \"%s\" lacks \"%s\"", i, err,
			      coded[i].want);
		ck_assert_int_eq(ms_out_event(o, coded[i].ev), -EINVAL);
	}
	/* Nothing bad was applied, everything bad was reported, and a good event still works. */
	ck_assert_int_eq(json_array_size(json_object_get(ms_out_run(o), "cases")), 0);
	problems = json_object_get(ms_out_run(o), "problems");
	ck_assert_int_eq(json_array_size(problems), total);
	for (i = 0; i < total; i++) {
		ev = json_array_get(problems, i);
		ck_assert_str_eq(sget(ev, "ev"), "log");
		ck_assert(json_is_true(json_object_get(ev, "problem")));
		ck_assert_msg(!strncmp(sget(ev, "msg"), "bad event skipped: ", 19), "%s",
			      sget(ev, "msg"));
		ck_assert_int_le(strlen(sget(ev, "event")), 520);
	}
	ck_assert_int_eq(ms_out_event(o, ev_case_end("a", 0, 0, "PASS", "")), 0);
	ck_assert_int_eq(json_array_size(json_object_get(ms_out_run(o), "cases")), 1);
	ck_assert_int_eq(ms_out_write(o, "complete"), 0);
	ms_out_close(o);

	lines = load_lines(path_in(tmp, "events.jsonl"));
	ck_assert_int_eq(json_array_size(lines), total + 1);
	for (i = 0; i < json_array_size(lines); i++)
		ck_assert_int_eq(ms_event_validate(json_array_get(lines, i), err, sizeof(err)), 0);
	json_decref(lines);
	ev = load(path_in(tmp, "run.json"));
	ck_assert_int_eq(json_array_size(json_object_get(ev, "problems")), total);
	json_decref(ev);
	rm_tmp();
}
END_TEST

/* Excerpts of rejected events around the cut-off, and a flood of bad events. */
START_TEST(test_problem_limits)
{
	const char *prefix = "{\"ev\":\"x\",\"pad\":\"";	/* as json_dumps writes it */
	struct ms_out *o;
	json_t *problems, *ev;
	const char *excerpt;
	char pad[600];
	size_t len, i;

	make_tmp();
	o = open_out(tmp);
	/* Dumps of 508..520 bytes: kept whole up to 512, cut to 512 + "..." above. */
	for (len = 508; len <= 520; len++) {
		memset(pad, 'p', sizeof(pad));
		pad[len - strlen(prefix) - 2] = '\0';
		ev = json_pack("{s:s, s:s}", "ev", "x", "pad", pad);
		ck_assert_int_eq(ms_out_event(o, ev), -EINVAL);
		problems = json_object_get(ms_out_run(o), "problems");
		excerpt = sget(json_array_get(problems, json_array_size(problems) - 1), "event");
		if (len <= 512) {
			ck_assert_uint_eq(strlen(excerpt), len);
		} else {
			ck_assert_uint_eq(strlen(excerpt), 515);
			ck_assert_str_eq(excerpt + 512, "...");
		}
		ck_assert(!strncmp(excerpt, prefix, strlen(prefix)));
	}
	for (i = 0; i < 1200; i++)
		ck_assert_int_eq(ms_out_event(o, json_pack("{s:s}", "ev", "x")), -EINVAL);
	problems = json_object_get(ms_out_run(o), "problems");
	ck_assert_uint_eq(json_array_size(problems), 1001);
	ck_assert_str_eq(sget(json_array_get(problems, 1000), "msg"),
			 "more problems: only in events.jsonl");
	ms_out_close(o);
	problems = load_lines(path_in(tmp, "events.jsonl"));
	ck_assert_uint_eq(json_array_size(problems), 13 + 1200);
	json_decref(problems);
	rm_tmp();
}
END_TEST

static unsigned count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

START_TEST(test_atomic_write)
{
	json_t *v = json_pack("{s:s, s:[i,i]}", "a", "b\n\"c\"", "n", 1, 2), *back;
	struct stat st;

	make_tmp();
	ck_assert_int_eq(ms_json_write_atomic(v, path_in(tmp, "x.json")), 0);
	json_object_set_new(v, "second", json_true());
	ck_assert_int_eq(ms_json_write_atomic(v, path_in(tmp, "x.json")), 0);
	back = load(path_in(tmp, "x.json"));
	ck_assert(json_equal(v, back));
	ck_assert_int_eq(count_entries(tmp), 1);
	ck_assert_int_eq(stat(path_in(tmp, "x.json"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	/* Failing half-way (the target is a directory) leaves the old state and no temp file. */
	ck_assert_int_eq(mkdir(path_in(tmp, "d"), 0755), 0);
	ck_assert_int_lt(ms_json_write_atomic(v, path_in(tmp, "d")), 0);
	ck_assert_int_eq(count_entries(tmp), 2);
	ck_assert_int_eq(ms_json_write_atomic(v, path_in(tmp, "nodir/x.json")), -ENOENT);
	ck_assert_int_eq(count_entries(tmp), 2);
	json_decref(back);
	json_decref(v);
	rm_tmp();
}
END_TEST

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static unsigned count_str(const char *hay, const char *needle)
{
	unsigned n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

START_TEST(test_junit)
{
	const char *nasty = "a<b>&\"c'\x01\x1b" "d\xef\xbf\xbe" "e";
	struct ms_out *o;
	json_t *ev;
	char *x;
	size_t i;

	make_tmp();
	o = open_out(tmp);
	feed_sequence(o);
	ck_assert_int_eq(ms_out_event(o, ev_case_start(nasty, 2, 0, 1)), 0);
	ev = ev_case_end(nasty, 2, 0, "CRASH", "kernel: BUG: <oops> & \"more\"");
	json_object_set_new(ev, "kmsg", json_pack("{s:s, s:s, s:[s,s]}", "class", "CRASH",
						  "first", "BUG: unable to handle page fault",
						  "excerpt", "line one", "RIP: 0010:<zap_pte>"));
	ck_assert_int_eq(ms_out_event(o, ev), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_start("never-ends", 3, 0, 1)), 0);
	ck_assert_int_eq(ms_out_write_junit(o, path_in(tmp, "junit.xml")), 0);
	ck_assert_int_eq(ms_out_write_junit(o, NULL), 0);
	ms_out_close(o);

	x = slurp(path_in(tmp, "junit.xml"));
	ck_assert_int_eq(count_str(x, "<testsuite "), 1);
	ck_assert_int_eq(count_str(x, "<testcase "), 4);
	ck_assert_int_eq(count_str(x, "<failure "), 1);
	ck_assert_int_eq(count_str(x, "<skipped "), 1);
	ck_assert_int_eq(count_str(x, "<error "), 2);
	ck_assert_int_eq(count_str(x, "type=\"CRASH\""), 1);
	ck_assert_int_eq(count_str(x, "type=\"NORESULT\""), 1);
	ck_assert_ptr_nonnull(strstr(x, "<testsuite name=\"t\" tests=\"4\" failures=\"1\" "
					"errors=\"2\" skipped=\"1\""));
	ck_assert_ptr_nonnull(strstr(x, "classname=\"mmstorm.fork-storm\""));
	ck_assert_ptr_nonnull(strstr(x, "name=\"a&lt;b&gt;&amp;&quot;c&apos;de\""));
	ck_assert_ptr_nonnull(strstr(x, "message=\"kernel: BUG: &lt;oops&gt; &amp; "
					"&quot;more&quot;\""));
	ck_assert_ptr_nonnull(strstr(x, "RIP: 0010:&lt;zap_pte&gt;"));
	ck_assert_ptr_nonnull(strstr(x, "<skipped message=\"no hugetlb pages\"/>"));
	ck_assert_ptr_nonnull(strstr(x, "time=\"3.000\""));
	ck_assert_ptr_nonnull(strstr(x, "check failed: child sees parent page"));
	ck_assert_ptr_null(strstr(x, "\xef\xbf\xbe"));
	for (i = 0; x[i]; i++)
		ck_assert_msg((unsigned char)x[i] >= 0x20 || x[i] == '\n' || x[i] == '\t',
			      "control byte 0x%02x at %zu", x[i], i);
	free(x);
	ck_assert_int_eq(count_entries(tmp), 2);	/* events.jsonl, junit.xml: no temp files */
	rm_tmp();
}
END_TEST

/* A fail-nth sweep: one testcase per n, an undocumented errno a failure, a lost n skipped. */
START_TEST(test_junit_sweep)
{
	struct ms_out *o;
	json_t *ev;
	char *x;

	make_tmp();
	o = open_out(tmp);
	ck_assert_int_eq(ms_out_event(o, ev_run_start(1)), 0);
	ck_assert_int_eq(ms_out_event(o, ev_case_start("nth", 0, 0, 1)), 0);
	ev = ev_case_end("nth", 0, 0, "PASS", "");
	json_object_set_new(ev, "inject", json_pack("{s:s, s:s, s:{s:I}, s:{s:s}}", "settings",
						    "fail-nth()", "rerun", "r", "faults",
						    "fail-nth", (json_int_t)3, "detail", "fail-nth",
						    "1-2 ENOMEM, 3 EINVAL(undocumented), 4 lost, "
						    "5 clean"));
	ck_assert_int_eq(ms_out_event(o, ev), 0);
	ck_assert_int_eq(ms_out_write_junit(o, path_in(tmp, "junit.xml")), 0);
	ms_out_close(o);

	x = slurp(path_in(tmp, "junit.xml"));
	ck_assert_int_eq(count_str(x, "<testcase "), 6);
	ck_assert_ptr_nonnull(strstr(x, "<testsuite name=\"t\" tests=\"6\" failures=\"1\" "
					"errors=\"0\" skipped=\"1\""));
	ck_assert_ptr_nonnull(strstr(x, "name=\"nth/fail-nth n=1\""));
	ck_assert_ptr_nonnull(strstr(x, "name=\"nth/fail-nth n=5\""));
	ck_assert_ptr_nonnull(strstr(x, "<failure type=\"FAIL\" message=\"EINVAL(undocumented)\""));
	ck_assert_ptr_nonnull(strstr(x, "<system-out>ENOMEM</system-out>"));
	free(x);
	rm_tmp();
}
END_TEST

START_TEST(test_sink)
{
	struct ms_out *o;
	struct ms_sink *s;

	make_tmp();
	o = open_out(tmp);
	s = ms_out_sink(o);
	ck_assert_ptr_nonnull(s);
	/* The sink takes the reference: no decref here (ASan would catch a leak or double free). */
	ck_assert_int_eq(s->event(s, ev_case_start("a", 0, 0, 1)), 0);
	ck_assert_int_eq(s->event(s, ev_case_end("a", 0, 0, "ERROR", "no memory")), 0);
	ck_assert_int_eq(s->event(s, json_pack("{s:s}", "ev", "case_end")), -EINVAL);
	ck_assert_int_eq(ms_out_worst(o), MS_V_ERROR);
	ms_out_close(o);
	rm_tmp();
}
END_TEST

#define KILL_CASES 50
#define KILL_AT 31	/* the child dies after case_start of this case */

static void kill_child(const char *dir)
{
	struct ms_out_opts opts = { .dir = dir };
	struct ms_out *o;
	int i;

	if (ms_out_open(&o, &opts))
		_exit(2);
	if (ms_out_event(o, ev_run_start(KILL_CASES)))
		_exit(3);
	for (i = 0; i < KILL_CASES; i++) {
		if (ms_out_event(o, ev_case_start("k", i, 0, 1)))
			_exit(4);
		if (i == KILL_AT)
			raise(SIGKILL);
		if (ms_out_event(o, ev_case_end("k", i, 0, "PASS", "")))
			_exit(5);
	}
	_exit(6);
}

START_TEST(test_kill9)
{
	json_t *lines, *ev;
	int status, i;
	pid_t pid;

	make_tmp();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		kill_child(tmp);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x",
		      status);
	lines = load_lines(path_in(tmp, "events.jsonl"));
	ck_assert_int_eq(json_array_size(lines), 1 + 2 * KILL_AT + 1);
	ck_assert_str_eq(sget(json_array_get(lines, 0), "ev"), "run_start");
	for (i = 0; i < KILL_AT; i++) {
		ev = json_array_get(lines, 1 + 2 * i);
		ck_assert_str_eq(sget(ev, "ev"), "case_start");
		ck_assert_int_eq(iget(ev, "index"), i);
		ev = json_array_get(lines, 2 + 2 * i);
		ck_assert_str_eq(sget(ev, "ev"), "case_end");
		ck_assert_int_eq(iget(ev, "index"), i);
	}
	ev = json_array_get(lines, 2 * KILL_AT + 1);
	ck_assert_str_eq(sget(ev, "ev"), "case_start");
	ck_assert_int_eq(iget(ev, "index"), KILL_AT);
	json_decref(lines);
	rm_tmp();
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);

	tcase_add_test(tc, test_verdict_names);
	tcase_add_test(tc, test_valid_events);
	tcase_add_test(tc, test_run_json);
	tcase_add_test(tc, test_replay);
	tcase_add_test(tc, test_orphan_end_and_open_case);
	tcase_add_test(tc, test_worst_of_repeats);
	tcase_add_test(tc, test_invalid_events);
	tcase_add_test(tc, test_problem_limits);
	tcase_add_test(tc, test_atomic_write);
	tcase_add_test(tc, test_junit);
	tcase_add_test(tc, test_junit_sweep);
	tcase_add_test(tc, test_sink);
	tcase_add_test(tc, test_kill9);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(report_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

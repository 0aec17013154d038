/* Unit tests for LAVA support: shard sets, the console protocol, LAVA log lines, collect. */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mmstorm/lava.h"

static char tmp[64];

static void tmp_setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test-lava-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void tmp_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *src_dir(void)
{
	const char *s = getenv("MMSTORM_SOURCE_DIR");

	return s && *s ? s : MMSTORM_SOURCE_DIR;
}

START_TEST(test_case_set)
{
	ck_assert(ms_case_set_has("0-3,7,9-12", 0));
	ck_assert(ms_case_set_has("0-3,7,9-12", 3));
	ck_assert(!ms_case_set_has("0-3,7,9-12", 4));
	ck_assert(ms_case_set_has("0-3,7,9-12", 7));
	ck_assert(!ms_case_set_has("0-3,7,9-12", 8));
	ck_assert(ms_case_set_has("0-3,7,9-12", 12));
	ck_assert(!ms_case_set_has("0-3,7,9-12", 13));
	ck_assert(ms_case_set_has("5", 5));
	ck_assert(!ms_case_set_has("", 0));
	ck_assert(!ms_case_set_has("x", 0));
	ck_assert(!ms_case_set_has("1;2", 2));
}
END_TEST

/* Everything the agent wrote to fd, as lines. */
static char **read_lines(FILE *f, size_t *n)
{
	char **lines = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t len;

	*n = 0;
	rewind(f);
	while ((len = getline(&line, &cap, f)) > 0) {
		line[strcspn(line, "\n")] = '\0';
		lines = realloc(lines, (*n + 1) * sizeof(*lines));
		ck_assert_ptr_nonnull(lines);
		lines[(*n)++] = strdup(line);
	}
	free(line);
	return lines;
}

static void free_lines(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/* An event whose deflated text needs several chunks: incompressible digits. */
static json_t *big_event(unsigned seed)
{
	char *s = malloc(40001);

	srand(seed);
	for (int i = 0; i < 40000; i++)
		s[i] = (char)('0' + rand() % 10);
	s[40000] = '\0';
	json_t *ev = json_pack("{s:s, s:I, s:s, s:s%}", "ev", "log", "t_ns", (json_int_t)1, "msg",
			       "quote \" backslash \\ tab \t", "blob", s, (size_t)40000);

	free(s);
	return ev;
}

static json_t *decode_one(struct ms_lava_dec *d, char **lines, size_t n, int *bad)
{
	json_t *got = NULL;
	char why[256], *text;

	*bad = 0;
	for (size_t i = 0; i < n; i++) {
		int r = ms_lava_dec_line(d, lines[i], &text, why, sizeof(why));

		if (r < 0)
			(*bad)++;
		if (r > 0) {
			ck_assert_ptr_null(got);
			got = json_loads(text, 0, NULL);
			free(text);
		}
	}
	return got;
}

START_TEST(test_event_roundtrip)
{
	json_t *small = json_pack("{s:s, s:I, s:s}", "ev", "log", "t_ns", (json_int_t)7, "msg",
				  "h\xc3\xa9llo \"w\"\n");
	json_t *big = big_event(1), *got;
	struct ms_lava_dec d = { 0 };
	FILE *f = tmpfile();
	char **lines;
	size_t n;
	int bad;

	ck_assert_int_eq(ms_lava_put_event(fileno(f), 0, small), 0);
	/* A kernel message between two chunks is no chunk: it must not disturb the event. */
	ck_assert_int_eq(ms_lava_put_event(fileno(f), 1, big), 0);
	lines = read_lines(f, &n);
	ck_assert_uint_gt(n, 3);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_le(strlen(lines[i]), MS_LAVA_CHUNK + 80);
		ck_assert(!strncmp(lines[i], MS_LAVA_EV " ", sizeof(MS_LAVA_EV)));
		ck_assert(!strchr(lines[i], '"') && !strchr(lines[i], '\\'));
	}
	free(lines[2]);
	lines[2] = strdup("[   12.345678] random: crng init done");
	got = decode_one(&d, lines, 2, &bad);
	ck_assert(json_equal(got, small));
	ck_assert_int_eq(bad, 0);
	json_decref(got);
	/* lines[2] was a chunk: the big event lost one and must be dropped, not mangled. */
	got = decode_one(&d, lines + 2, n - 2, &bad);
	ck_assert_ptr_null(got);
	ck_assert_int_gt(bad, 0);
	free_lines(lines, n);
	fclose(f);

	f = tmpfile();
	ck_assert_int_eq(ms_lava_put_event(fileno(f), 2, big), 0);
	lines = read_lines(f, &n);
	got = decode_one(&d, lines, n, &bad);
	ck_assert(json_equal(got, big));
	ck_assert_int_eq(bad, 0);
	json_decref(got);
	/* One character changed in the middle of a chunk: the CRC or zlib must say so. */
	lines[1][strlen(lines[1]) / 2] ^= 1;
	got = decode_one(&d, lines, n, &bad);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(bad, 1);
	free_lines(lines, n);
	fclose(f);
	ms_lava_dec_free(&d);
	json_decref(small);
	json_decref(big);
}
END_TEST

/* The monitor pattern is Python's; as a POSIX ERE it is the same without the group names. */
static void pattern_ere(regex_t *re)
{
	char ere[1024], *o = ere;

	for (const char *p = MS_LAVA_PATTERN; *p; p++) {
		if (!strncmp(p, "?P<", 3)) {
			p = strchr(p, '>');
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	ck_assert_int_eq(regcomp(re, ere, REG_EXTENDED), 0);
}

START_TEST(test_result_lines)
{
	json_t *ev = json_loads("{\"ev\":\"case_end\",\"t_ns\":1,\"case\":\"fork anon\","
		"\"index\":0,"
		"\"repeat\":1,\"verdict\":\"CRASH\",\"duration_ns\":1500000000,\"metrics\":{"
		"\"fork_ns\":{\"kind\":\"hist\",\"unit\":\"ns\",\"p50\":1234,\"count\":3},"
		"\"forks\":{\"kind\":\"counter\",\"unit\":\"processes\",\"value\":40},"
		"\"vmpte\":{\"kind\":\"gauge\",\"unit\":\"bytes per proc\",\"peak\":77824},"
		"\"odd\":{\"kind\":\"hist\",\"unit\":\"ns\"}}}", 0, NULL);
	regex_t re;
	regmatch_t m[6];
	FILE *f = tmpfile();
	char **lines;
	size_t n;

	ck_assert_ptr_nonnull(ev);
	pattern_ere(&re);
	ck_assert_int_eq(ms_lava_put_result(fileno(f), ev), 0);
	lines = read_lines(f, &n);
	/* the case itself, and three metrics ("odd" has no p50 to show) */
	ck_assert_uint_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(!regexec(&re, lines[i], 6, m, 0), "no match: %s", lines[i]);
	ck_assert_str_eq(lines[0], MS_LAVA_RESULT " case=fork_anon.r1 result=fail "
			 "measurement=1.5 units=s");
	ck_assert_str_eq(lines[1], MS_LAVA_RESULT " case=fork_anon.r1.fork_ns result=fail "
			 "measurement=1234 units=ns");
	ck_assert_str_eq(lines[2], MS_LAVA_RESULT " case=fork_anon.r1.forks result=fail "
			 "measurement=40 units=processes");
	ck_assert_str_eq(lines[3], MS_LAVA_RESULT " case=fork_anon.r1.vmpte result=fail "
			 "measurement=77824 units=bytes_per_proc");
	free_lines(lines, n);
	fclose(f);
	json_object_set_new(ev, "verdict", json_string("SKIP"));
	json_object_set_new(ev, "repeat", json_integer(0));
	json_object_set_new(ev, "metrics", json_object());
	f = tmpfile();
	ck_assert_int_eq(ms_lava_put_result(fileno(f), ev), 0);
	lines = read_lines(f, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(lines[0], MS_LAVA_RESULT " case=fork_anon result=skip measurement=1.5 "
			 "units=s");
	free_lines(lines, n);
	fclose(f);
	regfree(&re);
	json_decref(ev);
}
END_TEST

static void log_line_is(const char *line, const char *lvl, const char *msg, const char *dt)
{
	char l[32], *m, *d;

	ck_assert_msg(ms_lava_log_line(line, l, sizeof(l), &m, &d) == 1, "not read: %s", line);
	ck_assert_str_eq(l, lvl);
	ck_assert_str_eq(m, msg);
	if (dt)
		ck_assert_str_eq(d, dt);
	else
		ck_assert_ptr_null(d);
	free(m);
	free(d);
}

START_TEST(test_log_lines)
{
	char l[32], *m, *d;

	/* lava-run's output */
	log_line_is("{\"dt\": \"2026-11-24T01:08:52.052738\", \"lvl\": \"target\", \"msg\": "
		    "\"ok 1 fork-anon\"}", "target", "ok 1 fork-anon",
		    "2026-11-24T01:08:52.052738");
	/* a server's YAML log, and YAML escapes (PyYAML writes \e, \x, \u for what it must) */
	log_line_is("- {\"dt\": \"2026-11-24T01:08:48\", \"lvl\": \"target\", \"msg\": "
		    "\"\\e[0mSeaBIOS \\\\ \\\"q\\\" \\xe9\\u2028\\ttab\"}", "target",
		    "\x1b[0mSeaBIOS \\ \"q\" \xc3\xa9\xe2\x80\xa8\ttab", "2026-11-24T01:08:48");
	/* plain and single-quoted scalars, as other YAML dumpers write them */
	log_line_is("- {dt: 2026-11-24T01:08:48.1, lvl: target, msg: 'it''s, {x}: y'}",
		    "target", "it's, {x}: y", "2026-11-24T01:08:48.1");
	log_line_is("- {lvl: info, msg: plain text here}", "info", "plain text here", NULL);
	/* a nested msg is no console line; a tag before a nested value is skipped */
	ck_assert_int_eq(ms_lava_log_line("{\"dt\": \"x\", \"lvl\": \"results\", "
		"\"msg\": {\"case\":"
		" \"job\", \"extra\": {\"size\": ! \"1\", \"s\": \"}\"}, \"result\": \"pass\"}}", l,
		sizeof(l), &m, &d), 0);
	ck_assert_int_eq(ms_lava_log_line("not a log line", l, sizeof(l), &m, &d), 0);
	ck_assert_int_eq(ms_lava_log_line("", l, sizeof(l), &m, &d), 0);
	ck_assert_int_eq(ms_lava_log_line("- {\"lvl\": \"target\", \"msg\": \"unterminated", l,
					  sizeof(l), &m, &d), 1);
	ck_assert_str_eq(m, "unterminated");
	free(m);
	free(d);
}
END_TEST

/* ---- collect on logs lava-run wrote here (tests/data/lava) ---- */

static json_t *collect(const char *const *logs, unsigned n, int want_rc, const char *label)
{
	char *argv[16], res[128], path[256];
	json_t *run;
	unsigned argc = 0;

	snprintf(res, sizeof(res), "%s/results", tmp);
	argv[argc++] = "lava";
	argv[argc++] = "collect";
	argv[argc++] = "--results";
	argv[argc++] = res;
	argv[argc++] = "--run-id";
	argv[argc++] = "t";
	for (unsigned i = 0; i < n; i++)
		argv[argc++] = (char *)logs[i];
	argv[argc] = NULL;
	ck_assert_int_eq(ms_cmd_lava((int)argc, argv), want_rc);
	snprintf(path, sizeof(path), "%s/t/%s/run.json", res, label);
	run = json_load_file(path, 0, NULL);
	ck_assert_msg(run != NULL, "no %s", path);
	return run;
}

static const json_t *run_case(const json_t *run, const char *name)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(run, "cases"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "name")) ?: "", name))
			return c;
	ck_abort_msg("no case %s", name);
	return NULL;
}

static const char *verdict(const json_t *run, const char *name)
{
	return json_string_value(json_object_get(run_case(run, name), "verdict"));
}

static const char *reason(const json_t *run, const char *name)
{
	return json_string_value(json_object_get(run_case(run, name), "reason")) ?: "";
}

static void fixture(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/tests/data/lava/%s", src_dir(), name);
	ck_assert_msg(!access(buf, R_OK), "missing fixture %s", buf);
}

static void check_crash_run(const json_t *run)
{
	const json_t *c = run_case(run, "panic");
	json_t *rep = json_array_get(json_object_get(c, "repeats"), 0);

	ck_assert_str_eq(json_string_value(json_object_get(run, "schema")), "mmstorm-run/1");
	ck_assert_str_eq(verdict(run, "fork-before"), "PASS");
	ck_assert_str_eq(verdict(run, "panic"), "CRASH");
	ck_assert_msg(strstr(reason(run, "panic"), "Kernel panic"), "%s", reason(run, "panic"));
	ck_assert_uint_gt(json_array_size(json_object_get(rep, "console")), 5);
	ck_assert_str_eq(verdict(run, "fork-after"), "ERROR");
	ck_assert_msg(strstr(reason(run, "fork-after"), "not run"), "%s",
		      reason(run, "fork-after"));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(run, "env"), "where")),
			 "lava");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(run, "summary"),
							    "total")), 3);
}

START_TEST(test_collect_crash)
{
	char log[512];
	const char *logs[] = { log };
	json_t *run;

	fixture(log, sizeof(log), "crash-lava-run.log");
	run = collect(logs, 1, 1, "bzImage");
	check_crash_run(run);
	json_decref(run);
}
END_TEST

/* A LAVA server keeps the same entries as a YAML list: "- " before each. */
START_TEST(test_collect_server_log)
{
	char log[512], yaml[256], *line = NULL;
	const char *logs[] = { yaml };
	size_t cap = 0;
	FILE *in, *out;
	json_t *run;

	fixture(log, sizeof(log), "crash-lava-run.log");
	snprintf(yaml, sizeof(yaml), "%s/output.yaml", tmp);
	in = fopen(log, "r");
	out = fopen(yaml, "w");
	ck_assert(in && out);
	while (getline(&line, &cap, in) > 0)
		fprintf(out, "- %s", line);
	free(line);
	fclose(in);
	fclose(out);
	run = collect(logs, 1, 1, "bzImage");
	check_crash_run(run);
	json_decref(run);
}
END_TEST

START_TEST(test_collect_hang)
{
	char log[512];
	const char *logs[] = { log };
	json_t *run;

	fixture(log, sizeof(log), "hang-lava-run.log");
	run = collect(logs, 1, 1, "bzImage");
	ck_assert_str_eq(verdict(run, "fork-before"), "PASS");
	ck_assert_str_eq(verdict(run, "hang"), "TIMEOUT");
	ck_assert_str_eq(verdict(run, "fork-after"), "ERROR");
	json_decref(run);
}
END_TEST

/*
 * A guest (no x86 "Command line:" print) whose agent said START and died at once, one shard
 * of three: its cases are not run, the other shards' cases have no log, names from --suite.
 */
START_TEST(test_collect_start_only)
{
	char log[256], res[128], suite[512], path[256];
	char *argv[] = { "lava", "collect", "--results", res, "--run-id", "t", "--suite", suite,
			 log, NULL };
	json_t *run;
	FILE *f;

	snprintf(log, sizeof(log), "%s/arm.log", tmp);
	snprintf(res, sizeof(res), "%s/results", tmp);
	fixture(suite, sizeof(suite), "crash.ini");
	f = fopen(log, "w");
	fprintf(f, "{\"dt\": \"2026-11-24T01:00:00.5\", \"lvl\": \"target\", \"msg\": \"[    0.0] "
		"Kernel command line: console=ttyAMA0\"}\n"
		"{\"dt\": \"2026-11-24T01:00:01.5\", \"lvl\": \"target\", \"msg\": \""
		MS_LAVA_START " shard=2/3 label=armbox cases=1\"}\n"
		"{\"dt\": \"2026-11-24T01:00:02\", \"lvl\": \"error\", \"msg\": \"board gone\"}\n");
	fclose(f);
	ck_assert_int_eq(ms_cmd_lava(9, argv), 1);
	snprintf(path, sizeof(path), "%s/t/armbox/run.json", res);
	run = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(run);
	ck_assert_str_eq(verdict(run, "panic"), "ERROR");
	ck_assert_msg(strstr(reason(run, "panic"), "shard 2/3") &&
		      strstr(reason(run, "panic"), "board gone"), "%s", reason(run, "panic"));
	ck_assert_str_eq(verdict(run, "fork-before"), "ERROR");
	ck_assert_msg(strstr(reason(run, "fork-before"), "no LAVA log"), "%s",
		      reason(run, "fork-before"));
	ck_assert_str_eq(verdict(run, "fork-after"), "ERROR");
	ck_assert(strstr(json_string_value(json_object_get(run, "status")), "incomplete"));
	json_decref(run);
}
END_TEST

/* Logs that are no mmstorm job are refused, not turned into an empty run. */
START_TEST(test_collect_refuses)
{
	char path[256], *argv[] = { "lava", "collect", "--results", tmp, path, NULL };
	FILE *f;

	snprintf(path, sizeof(path), "%s/other.log", tmp);
	f = fopen(path, "w");
	fprintf(f, "{\"dt\": \"2026-11-24T01:08:48\", \"lvl\": \"target\", \"msg\": \"hello\"}\n");
	fclose(f);
	ck_assert_int_eq(ms_cmd_lava(5, argv), 2);
	argv[4] = "/nonexistent/log";
	ck_assert_int_eq(ms_cmd_lava(5, argv), 3);
}
END_TEST

static Suite *lava_suite(void)
{
	Suite *s = suite_create("lava");
	TCase *tc = tcase_create("protocol");
	TCase *tcc = tcase_create("collect");

	tcase_add_test(tc, test_case_set);
	tcase_add_test(tc, test_event_roundtrip);
	tcase_add_test(tc, test_result_lines);
	tcase_add_test(tc, test_log_lines);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tcc, tmp_setup, tmp_teardown);
	tcase_add_test(tcc, test_collect_crash);
	tcase_add_test(tcc, test_collect_server_log);
	tcase_add_test(tcc, test_collect_hang);
	tcase_add_test(tcc, test_collect_start_only);
	tcase_add_test(tcc, test_collect_refuses);
	suite_add_tcase(s, tcc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lava_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for KTAP output: golden text for known event sequences, compared line by line. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

	snprintf(base, sizeof(base), "%s/test_ktap.XXXXXX", t);
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void base_teardown(void)
{
	nftw(base, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* An ms_out in a fresh temp dir writing KTAP into a memory buffer. */
struct ktap_run {
	struct ms_out *o;
	FILE *f;
	char *buf;
	size_t len;
};

static void ktap_open(struct ktap_run *k, bool verbose)
{
	struct ms_out_opts opts = { .dir = tmp, .ktap_verbose = verbose };

	snprintf(tmp, sizeof(tmp), "%s/t.XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	memset(k, 0, sizeof(*k));
	k->f = open_memstream(&k->buf, &k->len);
	ck_assert_ptr_nonnull(k->f);
	opts.ktap = k->f;
	ck_assert_int_eq(ms_out_open(&k->o, &opts), 0);
}

static void ktap_close(struct ktap_run *k)
{
	ms_out_close(k->o);
	ck_assert_int_eq(fclose(k->f), 0);
	free(k->buf);
	nftw(tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void feed(struct ktap_run *k, const char *json)
{
	json_error_t jerr;
	json_t *ev = json_loads(json, 0, &jerr);

	ck_assert_msg(ev != NULL, "test event does not parse: %s", jerr.text);
	ck_assert_int_eq(ms_out_event(k->o, ev), 0);
}

static void expect_lines(const char *got, const char *const *want, size_t n)
{
	const char *p = got, *nl;
	char line[1024];
	size_t i;

	for (i = 0; i < n; i++) {
		nl = strchr(p, '\n');
		ck_assert_msg(nl != NULL, "output ends before line %zu \"%s\"", i + 1, want[i]);
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		ck_assert_msg(!strcmp(line, want[i]), "line %zu: got \"%s\", want \"%s\"", i + 1,
			      line, want[i]);
		p = nl + 1;
	}
	ck_assert_msg(*p == '\0', "extra output after line %zu: \"%s\"", n, p);
}

#define RUN_START \
	"{\"ev\":\"run_start\",\"t_ns\":0,\"run_id\":\"r1\",\"schema\":\"mmstorm-events/1\"," \
	"\"mmstorm\":{\"version\":\"0.1.0\"},\"command\":[\"mmstorm\",\"run\"]," \
	"\"suite\":{\"path\":\"configs/quick.ini\",\"name\":\"quick\",\"seed\":42,\"ncases\":4}," \
	"\"kernel\":{\"release\":\"6.18.0\",\"version\":\"#1 SMP\",\"cmdline\":\"quiet\"}," \
	"\"cpu\":{},\"memory\":{},\"env\":{\"where\":\"guest\",\"accel\":\"kvm\"}}"

#define CASE_START(name, index, repeat, repeats) \
	"{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"" name "\",\"index\":" #index "," \
	"\"repeat\":" #repeat ",\"repeats\":" #repeats ",\"workload\":\"w\",\"params\":{}," \
	"\"timeout_ns\":1000,\"seed\":1}"

/* The members every case_end has, after verdict and reason. */
#define CASE_END(name, index, repeat, verdict, reason, duration_ns, metrics, checks, kmsg) \
	"{\"ev\":\"case_end\",\"t_ns\":2,\"case\":\"" name "\",\"index\":" #index "," \
	"\"repeat\":" #repeat ",\"verdict\":\"" verdict "\",\"reason\":\"" reason "\"," \
	"\"duration_ns\":" #duration_ns ",\"iterations\":1,\"metrics\":{" metrics "}," \
	"\"checks\":" checks ",\"notes\":[],\"pgtables\":{},\"kmsg\":" kmsg "}"

#define NO_CHECKS "{\"run\":1,\"failed\":0,\"failures\":[]}"
#define NO_KMSG "{\"class\":\"none\",\"first\":\"\",\"excerpt\":[]}"

#define FAILURE(n) "{\"what\":\"page " #n "\",\"detail\":\"expected 0xaa,\\nobserved 0x00\"}"
#define FOUR_FAILURES \
	"{\"run\":9,\"failed\":4,\"failures\":[" FAILURE(0) "," FAILURE(1) "," FAILURE(2) "," \
	FAILURE(3) "]}"
#define WARN_KMSG \
	"{\"class\":\"FAIL\",\"first\":\"WARNING: CPU: 0 PID: 1 at mm/gup.c:123\"," \
	"\"excerpt\":[\"x\"]}"

#define FORK_METRICS \
	"\"fork_lat\":{\"kind\":\"hist\",\"unit\":\"ns\",\"count\":1000,\"min\":1," \
	"\"max\":1200000,\"mean\":20000.5,\"p50\":12300,\"p90\":30000," \
	"\"p99\":45600,\"p999\":900000}," \
	"\"rss\":{\"kind\":\"counter\",\"unit\":\"bytes\",\"value\":1572864}," \
	"\"procs\":{\"kind\":\"gauge\",\"unit\":\"processes\",\"last\":3,\"peak\":8}," \
	"\"small\":{\"kind\":\"hist\",\"unit\":\"ns\",\"count\":2,\"min\":1,\"max\":999," \
	"\"mean\":500,\"p50\":1,\"p90\":999,\"p99\":999,\"p999\":999}"

/*
 * fork-anon passes; gup-pin passes then fails with 4 failed checks and a WARNING; mshare is
 * cut short after 1 of 3 repeats (finished when the next case starts); hugetlb#1 skips.
 */
static void feed_golden(struct ktap_run *k)
{
	feed(k, RUN_START);
	feed(k, CASE_START("fork-anon", 0, 0, 1));
	feed(k, CASE_END("fork-anon", 0, 0, "PASS", "", 500000000, FORK_METRICS, NO_CHECKS,
			 NO_KMSG));
	feed(k, CASE_START("gup-pin", 1, 0, 2));
	feed(k, CASE_END("gup-pin", 1, 0, "PASS", "", 100000000, "", NO_CHECKS, NO_KMSG));
	feed(k, CASE_START("gup-pin", 1, 1, 2));
	feed(k, CASE_END("gup-pin", 1, 1, "FAIL", "pinned page changed", 1250000000,
			 "\"pins\":{\"kind\":\"counter\",\"unit\":\"count\",\"value\":4096}",
			 FOUR_FAILURES, WARN_KMSG));
	feed(k, CASE_START("mshare", 2, 0, 3));
	feed(k, CASE_END("mshare", 2, 0, "PASS", "", 100000000, "", NO_CHECKS, NO_KMSG));
	feed(k, CASE_START("hugetlb#1", 3, 0, 1));
	feed(k, CASE_END("hugetlb#1", 3, 0, "SKIP", "no hugetlb pages\\nreserve some", 0, "",
			 NO_CHECKS, NO_KMSG));
	feed(k, "{\"ev\":\"log\",\"t_ns\":3,\"msg\":\"stopping early\"}");
	feed(k, "{\"ev\":\"run_end\",\"t_ns\":4,\"status\":\"complete\"}");
}

START_TEST(test_golden_verbose)
{
	static const char *const want[] = {
		"KTAP version 1",
		"1..4",
		"# mmstorm 0.1.0 run r1",
		"# kernel: 6.18.0 #1 SMP",
		"# suite: quick (configs/quick.ini), seed 42",
		"# env: guest, accel kvm",
		"# fork_lat: p50=12.3us p99=45.6us max=1.2ms n=1000",
		"# rss: 1.5MiB",
		"# procs: last=3 peak=8 processes",
		"# small: p50=1ns p99=999ns max=999ns n=2",
		"ok 1 fork-anon",
		"# repeat 1: PASS in 0.100s",
		"# repeat 2: FAIL in 1.250s",
		"# pins: 4096",
		"# FAIL in repeat 2/2: pinned page changed",
		"# check failed: page 0: expected 0xaa, observed 0x00",
		"# check failed: page 1: expected 0xaa, observed 0x00",
		"# check failed: page 2: expected 0xaa, observed 0x00",
		"# ... 4 failed checks in all",
		"# kmsg FAIL: WARNING: CPU: 0 PID: 1 at mm/gup.c:123",
		"not ok 2 gup-pin",
		"# repeat 1: PASS in 0.100s",
		"ok 3 mshare",
		"ok 4 hugetlb_1 # SKIP no hugetlb pages reserve some",
		"# stopping early",
		"# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0",
	};
	struct ktap_run k;

	ktap_open(&k, true);
	feed_golden(&k);
	ck_assert_int_eq(fflush(k.f), 0);
	expect_lines(k.buf, want, sizeof(want) / sizeof(want[0]));
	ktap_close(&k);
}
END_TEST

START_TEST(test_golden_quiet)
{
	static const char *const want[] = {
		"KTAP version 1",
		"1..4",
		"# mmstorm 0.1.0 run r1",
		"# kernel: 6.18.0 #1 SMP",
		"# suite: quick (configs/quick.ini), seed 42",
		"# env: guest, accel kvm",
		"ok 1 fork-anon",
		"# FAIL in repeat 2/2: pinned page changed",
		"# check failed: page 0: expected 0xaa, observed 0x00",
		"# check failed: page 1: expected 0xaa, observed 0x00",
		"# check failed: page 2: expected 0xaa, observed 0x00",
		"# ... 4 failed checks in all",
		"# kmsg FAIL: WARNING: CPU: 0 PID: 1 at mm/gup.c:123",
		"not ok 2 gup-pin",
		"ok 3 mshare",
		"ok 4 hugetlb_1 # SKIP no hugetlb pages reserve some",
		"# stopping early",
		"# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0",
	};
	struct ktap_run k;

	ktap_open(&k, false);
	feed_golden(&k);
	ck_assert_int_eq(fflush(k.f), 0);
	expect_lines(k.buf, want, sizeof(want) / sizeof(want[0]));
	ktap_close(&k);
}
END_TEST

/* Each result is flushed as soon as the case is over, before the next event comes. */
START_TEST(test_flush_per_case)
{
	struct ktap_run k;

	ktap_open(&k, false);
	feed(&k, RUN_START);
	feed(&k, CASE_START("a", 0, 0, 2));
	feed(&k, CASE_END("a", 0, 0, "PASS", "", 1, "", NO_CHECKS, NO_KMSG));
	ck_assert_ptr_null(strstr(k.buf, "ok 1 a"));
	feed(&k, CASE_START("a", 0, 1, 2));
	feed(&k, CASE_END("a", 0, 1, "TIMEOUT", "no progress for 60 s", 1, "", NO_CHECKS,
			  NO_KMSG));
	ck_assert_ptr_nonnull(strstr(k.buf, "# TIMEOUT in repeat 2/2: no progress for 60 s\n"
					    "not ok 1 a\n"));
	ktap_close(&k);
}
END_TEST


/* The case_end of a fail-nth case: "inject.detail" merges the sweep's outcomes into runs. */
#define NTH_END(name, index, detail) \
	"{\"ev\":\"case_end\",\"t_ns\":2,\"case\":\"" name "\",\"index\":" #index "," \
	"\"repeat\":0,\"verdict\":\"PASS\",\"reason\":\"\",\"duration_ns\":1," \
	"\"iterations\":1,\"metrics\":{},\"checks\":" NO_CHECKS ",\"notes\":[]," \
	"\"pgtables\":{},\"kmsg\":" NO_KMSG ",\"inject\":{\"settings\":\"fail-nth()\"," \
	"\"rerun\":\"r\",\"faults\":{\"fail-nth\":4},\"detail\":{\"fail-nth\":\"" detail \
	"\"}}}"

/*
 * Each n of a sweep is a nested KTAP subtest under its case; an errno the call does not
 * document is "not ok"; a text cut short ("...") ends the plan where it was cut.
 */
START_TEST(test_fail_nth_subtests)
{
	static const char *const want[] = {
		"    KTAP version 1",
		"    # Subtest: copy-nth",
		"    1..6",
		"    ok 1 fail-nth n=1 # ENOMEM",
		"    ok 2 fail-nth n=2 # ENOMEM",
		"    ok 3 fail-nth n=3 # fault absorbed, the call succeeded",
		"    not ok 4 fail-nth n=4 # EINVAL(undocumented)",
		"    ok 5 fail-nth n=5 # SKIP the fail-nth counter was unreadable",
		"    ok 6 fail-nth n=6 # clean: fewer fault sites than n",
		"ok 1 copy-nth",
		"    KTAP version 1",
		"    # Subtest: cut",
		"    1..2",
		"    ok 1 fail-nth n=7 # ENOMEM",
		"    ok 2 fail-nth n=8 # ENOMEM",
		"ok 2 cut",
	};
	struct ktap_run k;
	const char *p;

	ktap_open(&k, false);
	feed(&k, RUN_START);
	p = k.buf + strlen(k.buf);
	feed(&k, CASE_START("copy-nth", 0, 0, 1));
	feed(&k, NTH_END("copy-nth", 0, "1-2 ENOMEM, 3 ok, 4 EINVAL(undocumented), 5 lost, "
			 "6 clean"));
	feed(&k, CASE_START("cut", 1, 0, 1));
	feed(&k, NTH_END("cut", 1, "7-8 ENOMEM, 9-1..."));
	ck_assert_int_eq(fflush(k.f), 0);
	expect_lines(k.buf + (p - k.buf), want, sizeof(want) / sizeof(want[0]));
	ktap_close(&k);
}
END_TEST

/*
 * No run_start (rejected here for a bad schema): KTAP still starts with its version line, the
 * plan comes at the end, and a run that never says run_end gets its totals when closed.
 */
START_TEST(test_no_run_start)
{
	static const char *const want[] = {
		"KTAP version 1",
		"# bad event skipped: run_start: \"schema\" is \"mmstorm-events/9\", this mmstorm "
		"reads mmstorm-events/1",
		"# CRASH: kernel: BUG: unable to handle page fault",
		"# kmsg CRASH: BUG: unable to handle page fault",
		"not ok 1 x",
		"ok 2 y",
		"1..2",
		"# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0",
	};
	struct ktap_run k;
	json_t *ev;

	ktap_open(&k, false);
	ev = json_loads(RUN_START, 0, NULL);
	ck_assert_ptr_nonnull(ev);
	json_object_set_new(ev, "schema", json_string("mmstorm-events/9"));
	ck_assert_int_eq(ms_out_event(k.o, ev), -EINVAL);
	feed(&k, CASE_END("x", 0, 0, "CRASH", "kernel: BUG: unable to handle page fault", 1, "",
			  NO_CHECKS, "{\"class\":\"CRASH\",\"first\":\"BUG: unable to handle page "
			  "fault\",\"excerpt\":[]}"));
	feed(&k, CASE_START("y", 1, 0, 1));
	feed(&k, CASE_END("y", 1, 0, "PASS", "", 1, "", NO_CHECKS, NO_KMSG));
	ms_out_close(k.o);
	k.o = NULL;
	ck_assert_int_eq(fflush(k.f), 0);
	expect_lines(k.buf, want, sizeof(want) / sizeof(want[0]));
	ktap_close(&k);
}
END_TEST

static Suite *ktap_suite(void)
{
	Suite *s = suite_create("ktap");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);

	tcase_add_test(tc, test_golden_verbose);
	tcase_add_test(tc, test_golden_quiet);
	tcase_add_test(tc, test_flush_per_case);
	tcase_add_test(tc, test_no_run_start);
	tcase_add_test(tc, test_fail_nth_subtests);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ktap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

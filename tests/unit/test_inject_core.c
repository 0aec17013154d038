/* Unit tests of injection points, shared injector state and the "nothing lost" invariants. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/inject.h"
#include "mmstorm/invariants.h"
#include "mmstorm/journal.h"
#include "mmstorm/util.h"

/* ---- a test injector: counts what reaches it, in its shared state ---- */

struct t_state {
	int before, after, killed_asked;
	pid_t last_pid;
	char point[32];
};

const struct ms_injector t_inj;

static const struct ms_param t_params[] = {
	{ "tx_level", MS_P_INT, "3", "", 0, 10, NULL, "test" },
	{ "tx_point", MS_P_STRING, "fork", "", 1, 0, NULL, "test" },
	MS_INV_PARAMS,
	{ NULL }
};

static void t_before(struct ms_ctx *ctx, const char *point)
{
	struct t_state *st = ms_inject_state(ctx, &t_inj);

	__atomic_fetch_add(&st->before, 1, __ATOMIC_SEQ_CST);
	snprintf(st->point, sizeof(st->point), "%s", point);
}

/* "Injects" into calls at tx_point that failed with ENOMEM. */
static bool t_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	struct t_state *st = ms_inject_state(ctx, &t_inj);

	__atomic_fetch_add(&st->after, 1, __ATOMIC_SEQ_CST);
	if (strcmp(point, ms_param_s(ctx, "tx_point")) || ret >= 0 || err != ENOMEM)
		return false;
	ms_inject_count(ctx, &t_inj, 1);
	return true;
}

static bool t_killed(struct ms_ctx *ctx, pid_t pid, int status)
{
	struct t_state *st = ms_inject_state(ctx, &t_inj);

	st->killed_asked++;
	return pid == st->last_pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1;
}

const struct ms_injector t_inj = {
	.name = "t-inj",
	.params = t_params,
	.before = t_before,
	.after = t_after,
	.killed = t_killed,
};

static const struct ms_param no_params[] = { { NULL } };
static const struct ms_workload t_wl = { .name = "t-wl", .params = no_params };

/* ---- a case with the test injector, built as the suite parser would ---- */

static struct ms_case tcase;
static struct ms_ctx ctx;
static struct ms_journal *journal;
static char tmpdir[PATH_MAX];

static struct ms_pval *defaults(const struct ms_param *tab)
{
	size_t n = ms_param_count(tab);
	struct ms_pval *v = calloc(n + 1, sizeof(*v));
	char err[256];

	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(!ms_param_parse(&tab[i], tab[i].def, &v[i], err, sizeof(err)),
			      "%s: %s", tab[i].name, err);
	return v;
}

static int rm_entry(const char *p, const struct stat *s, int f, struct FTW *w)
{
	(void)s;
	(void)f;
	(void)w;
	return remove(p);
}

static void setup(void)
{
	memset(&tcase, 0, sizeof(tcase));
	snprintf(tcase.name, sizeof(tcase.name), "c1");
	tcase.wl = &t_wl;
	tcase.vals = defaults(no_params);
	tcase.inj[0] = &t_inj;
	tcase.inj_vals[0] = defaults(t_params);
	tcase.ninj = 1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_inject_core.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(ms_journal_open(&journal, tmpdir), 0);
	memset(&ctx, 0, sizeof(ctx));
	ctx.c = &tcase;
	ctx.shm = ms_shm_new();
	ctx.journal = journal;
	ctx.seed = 42;
	ck_assert_ptr_nonnull(ctx.shm);
}

static void teardown(void)
{
	ms_inject_case_free(&ctx);
	ms_shm_free(ctx.shm);
	ms_journal_close(journal);
	free(tcase.vals);
	free(tcase.inj_vals[0]);
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

START_TEST(points_reach_the_injector_in_every_process)
{
	struct t_state *st;
	pid_t pid;
	int status;

	ck_assert_int_eq(ms_inject_case_begin(&ctx, "suite.ini"), 0);
	st = ms_inject_state(&ctx, &t_inj);
	ck_assert_ptr_nonnull(st);
	ms_inject_point(&ctx, "fork");
	ck_assert(!ms_inject_done(&ctx, "fork", 123, 0));
	ck_assert(ms_inject_done(&ctx, "fork", -1, ENOMEM));
	ck_assert(!ms_inject_done(&ctx, "mmap", -1, ENOMEM));
	/* A worker's hook lands in the same state: the case process and runner read it. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		ms_inject_point(&ctx, "mremap");
		_exit(ms_inject_done(&ctx, "fork", -1, ENOMEM) ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(st->before, 2);
	ck_assert_int_eq(st->after, 4);
	ck_assert_str_eq(st->point, "mremap");
	/* killed(): only what the injector owns up to. */
	st->last_pid = 777;
	ck_assert(ms_inject_killed(&ctx, 777, SIGUSR1));
	ck_assert(!ms_inject_killed(&ctx, 778, SIGUSR1));
	ck_assert(!ms_inject_killed(&ctx, 777, SIGKILL));
}
END_TEST

START_TEST(no_injectors_no_calls)
{
	tcase.ninj = 0;
	ck_assert_int_eq(ms_inject_case_begin(&ctx, "suite.ini"), 0);
	ck_assert_ptr_null(ms_inject_state(&ctx, &t_inj));
	ms_inject_point(&ctx, "fork");
	ck_assert(!ms_inject_done(&ctx, "fork", -1, ENOMEM));
	ck_assert(!ms_inject_killed(&ctx, 1, SIGKILL));
	ck_assert_ptr_null(ms_inject_case_end(&ctx));
	ck_assert_str_eq(ms_inject_rerun(&ctx), "");
}
END_TEST

START_TEST(describe_names_settings_seed_and_rerun)
{
	char buf[512];

	ck_assert_int_eq(ms_inject_case_begin(&ctx, "configs/inject.ini"), 0);
	tcase.inj_vals[0][0].i = 7;
	ms_inject_describe(&ctx, buf, sizeof(buf));
	ck_assert_str_eq(buf, "t-inj(tx_level=7 tx_point=fork) seed 42");
	ck_assert_str_eq(ms_inject_rerun(&ctx), "mmstorm run --case c1 configs/inject.ini");
	/* Cut short, never overrun. */
	ms_inject_describe(&ctx, buf, 10);
	ck_assert_uint_eq(strlen(buf), 9);
}
END_TEST

START_TEST(case_end_counts_faults_and_checks_invariants)
{
	json_t *o, *inv;
	uint64_t checks_before;

	ck_assert_int_eq(ms_inject_case_begin(&ctx, "s.ini"), 0);
	ms_inject_count(&ctx, &t_inj, 5);
	ms_inject_detail(&ctx, &t_inj, "1-4 ENOMEM, 5 clean");
	checks_before = ctx.shm->checks_run;
	o = ms_inject_case_end(&ctx);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "faults"),
							      "t-inj")), 5);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "detail"), "t-inj")),
			 "1-4 ENOMEM, 5 clean");
	ck_assert_str_eq(json_string_value(json_object_get(o, "rerun")),
			 "mmstorm run --case c1 s.ini");
	inv = json_object_get(o, "invariants");
	ck_assert_ptr_nonnull(inv);
	/* Every judged invariant is one check of the case. */
	ck_assert_int_ge(json_integer_value(json_object_get(inv, "checked")), 1);
	ck_assert_uint_eq(ctx.shm->checks_run - checks_before,
			  (uint64_t)json_integer_value(json_object_get(inv, "checked")));
	ck_assert(json_is_array(json_object_get(inv, "results")));
	json_decref(o);
	/* And the counts are metrics of the case too. */
	ck_assert_uint_ge(ctx.shm->nmetrics, 2);
	ck_assert_str_eq(ctx.shm->defs[0].name, "injected_faults");
	ck_assert_uint_eq(ctx.shm->counters[0], 5);
}
END_TEST

START_TEST(stop_and_mkdir)
{
	char dir[PATH_MAX + 8];
	struct stat sb;
	long mark = ms_journal_mark(journal);

	ck_assert(!ms_should_stop(&ctx));
	ms_inject_stop(&ctx);
	ck_assert(ms_should_stop(&ctx));
	snprintf(dir, sizeof(dir), "%s/cg", tmpdir);
	ck_assert_int_eq(ms_inject_mkdir(&ctx, dir, 0755), 0);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(ms_journal_restore_to(journal, mark, NULL), 0);
	ck_assert_int_eq(stat(dir, &sb), -1);
}
END_TEST

/* ---- invariants ---- */

static struct ms_inv_snap snap(void)
{
	struct ms_inv_snap s = { 0 };

	s.have = (1u << MS_INV_PAGETABLES) | (1u << MS_INV_MEMFREE) | (1u << MS_INV_HUGETLB) |
		 (1u << MS_INV_FOLL_PIN);
	s.pagetables_kb = 1000;
	s.memfree_kb = 1 << 20;
	s.pin_acquired = 50;
	s.pin_released = 40;
	s.nhstates = 1;
	s.hs[0] = (struct ms_inv_hstate){ .size_kb = 2048, .nr = 8, .free = 8 };
	return s;
}

static const struct ms_inv_result *find(const struct ms_inv_result *r, size_t n,
					const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(r[i].name, name))
			return &r[i];
	ck_abort_msg("no result %s", name);
	return NULL;
}

START_TEST(compare_judges_each_counter)
{
	struct ms_inv_limits lim = { .pagetables_slack_bytes = 8192,
				     .memfree_slack_bytes = 4 << 20 };
	struct ms_inv_result r[MS_INV_MAX_RESULTS];
	struct ms_inv_snap a = snap(), b = snap();
	size_t n;

	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert_uint_eq(n, 1 + 4 + 1 + 1);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(r[i].ok, "%s", r[i].name);
	/* Within slack, then past it; less page-table memory is always fine. */
	b.pagetables_kb = 1008;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(find(r, n, "PageTables")->ok);
	b.pagetables_kb = 1012;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(!find(r, n, "PageTables")->ok);
	ck_assert(find(r, n, "PageTables")->global);
	b.pagetables_kb = 10;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(find(r, n, "PageTables")->ok);
	/* Free pages may only grow (others freed theirs); surplus ones are a leak. */
	b.hs[0].free = 9;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(find(r, n, "HugePages_Free (2048kB)")->ok);
	b.hs[0].free = 7;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(!find(r, n, "HugePages_Free (2048kB)")->ok);
	b.hs[0].free = 8;
	b.hs[0].nr = 9;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(!find(r, n, "HugePages_Total (2048kB)")->ok);
	b.hs[0].nr = 8;
	b.hs[0].surplus = 1;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(!find(r, n, "HugePages_Surp (2048kB)")->ok);
	ck_assert(!find(r, n, "HugePages_Surp (2048kB)")->global);
	ck_assert(find(r, n, "HugePages_Free (2048kB)")->ok);
	/* A pin acquired and never released; released pins of others are fine. */
	b = snap();
	b.pin_acquired = 51;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(!find(r, n, "FOLL_PIN pins outstanding")->ok);
	b.pin_released = 45;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(find(r, n, "FOLL_PIN pins outstanding")->ok);
	/* MemFree may drop by the slack, not more. */
	b = snap();
	b.memfree_kb = (1 << 20) - 4096;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(find(r, n, "MemFree")->ok);
	b.memfree_kb = (1 << 20) - 4097;
	n = ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS);
	ck_assert(!find(r, n, "MemFree")->ok);
	/* What one side could not read is not compared. */
	b.have &= ~(1u << MS_INV_MEMFREE);
	ck_assert_uint_eq(ms_inv_compare(&a, &b, &lim, r, MS_INV_MAX_RESULTS), 6);
	/* The output array bounds the results. */
	ck_assert_uint_eq(ms_inv_compare(&a, &a, &lim, r, 2), 2);
}
END_TEST

START_TEST(parse_meminfo_and_vmstat)
{
	struct ms_inv_snap s = { 0 };

	ms_inv_parse_meminfo(&s, "MemTotal:  100 kB\nMemFree:   50 kB\nPageTables:  12 kB\n"
			     "SecPageTables:   4 kB\nHardwareCorrupted:  8 kB\n");
	ck_assert_uint_eq(s.pagetables_kb, 16);
	ck_assert_uint_eq(s.memfree_kb, 50);
	ck_assert_uint_eq(s.hwcorrupt_kb, 8);
	ck_assert(s.have & (1u << MS_INV_PAGETABLES));
	/* A key is the whole name: "PageTablesX" is not PageTables. */
	memset(&s, 0, sizeof(s));
	ms_inv_parse_meminfo(&s, "PageTablesX: 99 kB\n");
	ck_assert(!(s.have & (1u << MS_INV_PAGETABLES)));
	ms_inv_parse_vmstat(&s, "nr_foll_pin_acquired 10\nnr_foll_pin_released 7\n");
	ck_assert(s.have & (1u << MS_INV_FOLL_PIN));
	ck_assert_uint_eq(s.pin_acquired - s.pin_released, 3);
}
END_TEST

START_TEST(snapshot_reads_this_kernel)
{
	struct ms_inv_snap s;
	uint64_t kb;
	json_t *j;

	ck_assert_int_eq(ms_inv_snapshot(&s), 0);
	ck_assert(s.have & (1u << MS_INV_PAGETABLES));
	ck_assert(s.have & (1u << MS_INV_MEMFREE));
	ck_assert_uint_gt(s.pagetables_kb, 0);
	ck_assert_int_eq(ms_meminfo_kb("MemTotal", &kb), 0);
	ck_assert_uint_le(s.memfree_kb, kb);
	/* Every hstate the kernel has, as sysfs lists them. */
	if (!access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK))
		ck_assert_uint_ge(s.nhstates, 1);
	j = ms_inv_snap_json(&s);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "memfree_bytes")),
			 (json_int_t)s.memfree_kb * 1024);
	json_decref(j);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inject_core");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, points_reach_the_injector_in_every_process);
	tcase_add_test(tc, no_injectors_no_calls);
	tcase_add_test(tc, describe_names_settings_seed_and_rerun);
	tcase_add_test(tc, case_end_counts_faults_and_checks_invariants);
	tcase_add_test(tc, stop_and_mkdir);
	tcase_add_test(tc, compare_judges_each_counter);
	tcase_add_test(tc, parse_meminfo_and_vmstat);
	tcase_add_test(tc, snapshot_reads_this_kernel);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

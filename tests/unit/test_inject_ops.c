/* Unit tests of the injectors' shared helpers and of the injectors that run on any kernel. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "inject/inject_int.h"
#include "mmstorm/inject.h"
#include "mmstorm/invariants.h"
#include "mmstorm/journal.h"

extern const struct ms_injector ms_inj_rlimit, ms_inj_sigkill, ms_inj_pressure, ms_inj_memcg,
	ms_inj_fail_nth, ms_inj_failslab, ms_inj_hugetlb_exhaust, ms_inj_uffd_stall;

static const struct ms_param no_params[] = { { NULL } };
static const struct ms_workload t_wl = { .name = "t-wl", .params = no_params };

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

/* The case runs inj, with its defaults; set() changes one parameter as a suite key would. */
static void use(const struct ms_injector *inj)
{
	tcase.inj[0] = inj;
	tcase.inj_vals[0] = defaults(inj->params);
	tcase.ninj = 1;
	ck_assert_int_eq(ms_inject_case_begin(&ctx, "t.ini"), 0);
}

static void set(const char *name, const char *text)
{
	const struct ms_param *p = ms_param_find(tcase.inj[0]->params, name);
	char err[256];

	ck_assert_ptr_nonnull(p);
	ck_assert_msg(!ms_param_parse(p, text, &tcase.inj_vals[0][p - tcase.inj[0]->params],
				      err, sizeof(err)), "%s", err);
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
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_inject_ops.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(ms_journal_open(&journal, tmpdir), 0);
	memset(&ctx, 0, sizeof(ctx));
	ctx.c = &tcase;
	ctx.shm = ms_shm_new();
	ctx.journal = journal;
	ctx.seed = 99;
	snprintf(ctx.tmpdir, sizeof(ctx.tmpdir), "%s", tmpdir);
	ck_assert_ptr_nonnull(ctx.shm);
}

static void teardown(void)
{
	ms_inject_case_free(&ctx);
	ms_shm_free(ctx.shm);
	ms_journal_close(journal);
	free(tcase.inj_vals[0]);
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Runs fn as a case process would (its own process: limits and kills stay there). */
static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

static bool has_note(const char *text)
{
	for (unsigned i = 0; i < ctx.shm->nnotes && i < MS_MAX_NOTES; i++)
		if (strstr(ctx.shm->notes[i], text))
			return true;
	return false;
}

/* ---- helpers ---- */

START_TEST(documented_errors)
{
	ck_assert(inj_errno_documented("fork", ENOMEM));
	ck_assert(inj_errno_documented("fork", EAGAIN));
	ck_assert(!inj_errno_documented("fork", EFAULT));
	ck_assert(!inj_errno_documented("mmap", EINVAL));
	ck_assert(inj_errno_documented("madvise", EHWPOISON));
	ck_assert(inj_errno_documented("pinned", EBADF));
	ck_assert_str_eq(inj_errno_list("fork"), "ENOMEM EAGAIN");
	ck_assert_str_eq(inj_errno_list("pinned"), "any");
	/* A point naming its request is judged as its call. */
	ck_assert(inj_errno_documented("ioctl:UFFDIO_COPY", ENOMEM));
	ck_assert(!inj_errno_documented("ioctl:UFFDIO_COPY", EINVAL));
	ck_assert(!inj_errno_documented("mremap:x", EINVAL));
	ck_assert_str_eq(inj_errno_list("madvise:MADV_COLLAPSE"), inj_errno_list("madvise"));
	ck_assert_str_eq(inj_errno_list("forkx"), "any");
}
END_TEST

START_TEST(point_names_match)
{
	ck_assert(inj_point_match("mremap", "mremap"));
	ck_assert(inj_point_match("ioctl", "ioctl:UFFDIO_COPY"));
	ck_assert(inj_point_match("ioctl:UFFDIO_COPY", "ioctl:UFFDIO_COPY"));
	ck_assert(!inj_point_match("ioctl:UFFDIO_COPY", "ioctl:UFFDIO_CONTINUE"));
	ck_assert(!inj_point_match("ioctl:UFFDIO_COPY", "ioctl"));
	ck_assert(!inj_point_match("io", "ioctl:UFFDIO_COPY"));
	ck_assert(!inj_point_match("madvise", "mremap"));
}
END_TEST

START_TEST(failure_checks_name_the_rerun)
{
	tcase.wl = &t_wl;
	use(&ms_inj_rlimit);
	inj_check_failure(&ctx, "rlimit", "fork", "fork", -1, ENOMEM);
	inj_check_failure(&ctx, "rlimit", "fork", "fork", 0, 0);
	ck_assert_uint_eq(ctx.shm->checks_run, 2);
	ck_assert_uint_eq(ctx.shm->checks_failed, 0);
	inj_check_failure(&ctx, "rlimit", "fork", "fork n=3", -1, EFAULT);
	ck_assert_uint_eq(ctx.shm->checks_failed, 1);
	ck_assert_ptr_nonnull(strstr(ctx.shm->failures[0].detail, "fork n=3 returned -1"));
	ck_assert_ptr_nonnull(strstr(ctx.shm->failures[0].detail, "EFAULT"));
	ck_assert_ptr_nonnull(strstr(ctx.shm->failures[0].detail, "mmstorm run --case c1 t.ini"));
	ck_assert_ptr_nonnull(strstr(ctx.shm->failures[0].detail, "rlimit(rl_resource=as"));
	ck_assert_ptr_nonnull(strstr(ctx.shm->failures[0].detail, "seed 99"));
}
END_TEST

static struct inj_errstat *shared_stat;

START_TEST(errstat_across_processes)
{
	char text[128];
	int status;

	shared_stat = mmap(NULL, sizeof(*shared_stat), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(shared_stat, MAP_FAILED);
	for (int i = 0; i < 4; i++) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			inj_errstat_add(shared_stat, i == 3 ? EAGAIN : ENOMEM);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	}
	inj_errstat_text(shared_stat, text, sizeof(text));
	ck_assert_str_eq(text, "ENOMEM x3, EAGAIN x1");
	munmap(shared_stat, sizeof(*shared_stat));
}
END_TEST

static struct inj_slot slots[INJ_SLOTS];

static void *other_thread(void *arg)
{
	(void)arg;
	return inj_slot(slots, false);
}

START_TEST(slots_belong_to_threads)
{
	struct inj_slot *mine;
	pthread_t th;
	void *theirs = (void *)1;

	memset(slots, 0, sizeof(slots));
	ck_assert_ptr_null(inj_slot(slots, false));
	mine = inj_slot(slots, true);
	ck_assert_ptr_nonnull(mine);
	ck_assert_int_eq(mine->fd, -1);
	ck_assert_ptr_eq(inj_slot(slots, false), mine);
	ck_assert_int_eq(pthread_create(&th, NULL, other_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(th, &theirs), 0);
	ck_assert_ptr_null(theirs);
	mine->tid = 0;
	ck_assert_ptr_null(inj_slot(slots, false));
}
END_TEST

START_TEST(kallsyms_ranges)
{
	uint64_t s = 0, e = 0;
	int ret = inj_kallsyms_range("copy_process", &s, &e);

	/* Hidden addresses are a reason to skip the stack filter, not a crash. */
	if (ret == -EPERM)
		return;
	ck_assert_int_eq(ret, 0);
	ck_assert_uint_gt(s, 0);
	ck_assert_uint_gt(e, s);
	ck_assert_int_eq(inj_kallsyms_range("no_such_symbol_mmstorm", &s, &e), -ENOENT);
}
END_TEST

START_TEST(rand_is_seeded)
{
	uint64_t a = 5, b = 5, c = 6, x;

	x = inj_rand(&a);
	ck_assert_uint_eq(x, inj_rand(&b));
	ck_assert_uint_ne(x, inj_rand(&c));
	ck_assert_uint_ne(inj_rand(&a), x);
}
END_TEST

START_TEST(pidset_counts_distinct)
{
	struct inj_pidset s = { 0 };

	inj_pidset_add(&s, 10);
	inj_pidset_add(&s, 11);
	inj_pidset_add(&s, 10);
	ck_assert_uint_eq(s.n, 2);
}
END_TEST

/* ---- injectors ---- */

static int rlimit_case(void)
{
	struct rlimit rl;

	if (ms_inj_rlimit.probe(&ctx) || ms_inj_rlimit.arm(&ctx))
		return 10;
	if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur != 3ULL << 30)
		return 11;
	/* Failures under the limit are its doing; other errors are not. */
	if (!ms_inject_done(&ctx, "mmap", -1, ENOMEM) || ms_inject_done(&ctx, "mmap", -1, EINVAL))
		return 12;
	ms_inj_rlimit.disarm(&ctx);
	return 0;
}

START_TEST(rlimit_sets_the_limit_in_the_case_only)
{
	struct rlimit before, after;

	use(&ms_inj_rlimit);
	set("rl_limit", "3G");
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &before), 0);
	ck_assert_int_eq(in_child(rlimit_case), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &after), 0);
	ck_assert_uint_eq(before.rlim_cur, after.rlim_cur);
	ck_assert(has_note("RLIMIT_AS soft limit 3221225472"));
	ck_assert(has_note("1 failed under it (ENOMEM x1)"));
	/* root is exempt from RLIMIT_NPROC: a SKIP that says so. */
	set("rl_resource", "nproc");
	if (getuid() == 0) {
		ck_assert_int_eq(ms_inj_rlimit.probe(&ctx), MS_SKIP);
		ck_assert_ptr_nonnull(strstr(ctx.shm->reason, "exempt"));
	}
}
END_TEST

START_TEST(sigkill_kills_the_child_of_a_fork_point)
{
	pid_t pid;
	int status;

	use(&ms_inj_sigkill);
	set("sigkill_point", "fork");
	set("sigkill_target", "child");
	set("sigkill_nth", "2");
	ck_assert_int_eq(ms_inj_sigkill.probe(&ctx), 0);
	ck_assert_int_eq(ms_inj_sigkill.arm(&ctx), 0);
	for (int k = 1; k <= 2; k++) {
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			sleep(30);
			_exit(0);
		}
		ms_inject_point(&ctx, "fork");
		ck_assert(!ms_inject_done(&ctx, "fork", pid, 0));
		if (k == 1)
			kill(pid, SIGUSR1);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status));
		/* Only the second fork's child was the injector's. */
		ck_assert_int_eq(WTERMSIG(status), k == 2 ? SIGKILL : SIGUSR1);
		ck_assert(ms_inject_killed(&ctx, pid, status) == (k == 2));
	}
	ms_inj_sigkill.disarm(&ctx);
	ck_assert(has_note("1 process(es) killed (target child, fork)"));
	set("sigkill_point", "mremap");
	ck_assert_int_lt(ms_inj_sigkill.probe(&ctx), 0);
}
END_TEST

static int pressure_case(void)
{
	if (ms_inj_pressure.arm(&ctx))
		return 10;
	usleep(300000);
	ms_inj_pressure.disarm(&ctx);
	return 0;
}

START_TEST(pressure_builtin_runs_and_is_reaped)
{
	use(&ms_inj_pressure);
	set("press_tool", "builtin");
	set("press_bytes", "2M");
	ck_assert_int_eq(ms_inj_pressure.probe(&ctx), 0);
	ck_assert_int_eq(in_child(pressure_case), 0);
	ck_assert(has_note("pressure: builtin, 1 vm + 1 mmap processes of 2097152 bytes"));
	ck_assert(!has_note(": 0 rounds"));
}
END_TEST

START_TEST(kernel_features_skip_with_a_reason)
{
	int ret;

	/* On any kernel: either the feature is there, or a SKIP that names what is missing. */
	use(&ms_inj_fail_nth);
	ret = ms_inj_fail_nth.probe(&ctx);
	if (access("/proc/self/fail-nth", W_OK)) {
		ck_assert_int_eq(ret, MS_SKIP);
		ck_assert_ptr_nonnull(strstr(ctx.shm->reason, "CONFIG_FAULT_INJECTION"));
	}
	ck_assert(ret == 0 || ret == MS_SKIP);
	ctx.shm->status = 0;
	free(tcase.inj_vals[0]);
	ms_inject_case_free(&ctx);
	use(&ms_inj_hugetlb_exhaust);
	set("hx_page_size", "64K");
	ck_assert_int_eq(ms_inj_hugetlb_exhaust.probe(&ctx), MS_SKIP);
	ck_assert_ptr_nonnull(strstr(ctx.shm->reason, "no hugetlb pool of 64 kB"));
	ctx.shm->status = 0;
	free(tcase.inj_vals[0]);
	ms_inject_case_free(&ctx);
	use(&ms_inj_memcg);
	ret = ms_inj_memcg.probe(&ctx);
	ck_assert(ret == 0 || ret == MS_SKIP);
	if (ret == MS_SKIP)
		ck_assert_uint_gt(strlen(ctx.shm->reason), 10);
	set("memcg_swap_max", "lots");
	ck_assert_int_lt(ms_inj_memcg.probe(&ctx), 0);
}
END_TEST

static int uffd_case(void)
{
	if (ms_inj_uffd_stall.arm(&ctx))
		return 10;
	usleep(700000);
	ms_inj_uffd_stall.disarm(&ctx);
	return 0;
}

START_TEST(uffd_stall_kills_stalled_processes)
{
	use(&ms_inj_uffd_stall);
	set("uffd_mode", "never");
	set("uffd_hold", "200ms");
	if (ms_inj_uffd_stall.probe(&ctx) == MS_SKIP)
		return;
	ck_assert_int_eq(in_child(uffd_case), 0);
	ck_assert(has_note("uffd-stall (never): "));
	ck_assert(!has_note(": 0 processes killed while stalled"));
	ck_assert(!has_note("could not set up"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inject_ops");
	TCase *tc = tcase_create("ops");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, documented_errors);
	tcase_add_test(tc, point_names_match);
	tcase_add_test(tc, failure_checks_name_the_rerun);
	tcase_add_test(tc, errstat_across_processes);
	tcase_add_test(tc, slots_belong_to_threads);
	tcase_add_test(tc, kallsyms_ranges);
	tcase_add_test(tc, rand_is_seeded);
	tcase_add_test(tc, pidset_counts_distinct);
	tcase_add_test(tc, rlimit_sets_the_limit_in_the_case_only);
	tcase_add_test(tc, sigkill_kills_the_child_of_a_fork_point);
	tcase_add_test(tc, pressure_builtin_runs_and_is_reaped);
	tcase_add_test(tc, kernel_features_skip_with_a_reason);
	tcase_add_test(tc, uffd_stall_kills_stalled_processes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

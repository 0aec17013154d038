/* Unit tests of the knob journal: regular files as knobs, plus harmless real sysfs/procfs ones. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/journal.h"

static char tmpdir[PATH_MAX];
static char statedir[PATH_MAX + 16];

static void tmp_path(char *buf, size_t len, const char *name)
{
	ck_assert_int_lt(snprintf(buf, len, "%s/%s", tmpdir, name), (int)len);
}

static void write_raw(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static void write_str(const char *path, const char *s)
{
	write_raw(path, s, strlen(s));
}

/* Raw bytes of a file, NUL-terminated; returns the length. */
static size_t read_raw(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, len - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
	return n;
}

static char *read_knob(const char *path)
{
	static char buf[4096];

	ck_assert_int_eq(ms_knob_read(path, buf, sizeof(buf)), 0);
	return buf;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mmstorm-tj-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void teardown(void)
{
	ck_assert_int_eq(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static struct ms_journal *open_journal(void)
{
	struct ms_journal *j = NULL;

	ck_assert_int_eq(ms_journal_open(&j, statedir), 0);
	ck_assert_ptr_nonnull(j);
	return j;
}

START_TEST(test_write_restore)
{
	char knob[PATH_MAX], raw[64], *log = NULL;
	struct ms_journal *j = open_journal();
	size_t loglen = 0;
	FILE *f;

	tmp_path(knob, sizeof(knob), "knob");
	write_str(knob, "10\n");
	ck_assert_int_eq(ms_journal_pending(j), 0);
	ck_assert_int_eq(ms_journal_write(j, knob, "20"), 0);
	read_raw(knob, raw, sizeof(raw));
	ck_assert_str_eq(raw, "20");
	ck_assert_int_eq(ms_journal_pending(j), 1);
	ck_assert_int_gt(ms_journal_mark(j), 0);

	f = open_memstream(&log, &loglen);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, f), 0);
	fclose(f);
	ck_assert_str_eq(read_knob(knob), "10");
	ck_assert_int_eq(ms_journal_pending(j), 0);
	ck_assert_int_eq(ms_journal_mark(j), 0);
	ck_assert_ptr_nonnull(strstr(log, "# journal: restored "));
	ck_assert_ptr_nonnull(strstr(log, "knob to '10'"));
	free(log);
	ms_journal_close(j);
}
END_TEST

START_TEST(test_same_knob_twice_keeps_oldest)
{
	struct ms_journal *j = open_journal();
	char knob[PATH_MAX];

	tmp_path(knob, sizeof(knob), "knob");
	write_str(knob, "1");
	ck_assert_int_eq(ms_journal_write(j, knob, "2"), 0);
	ck_assert_int_eq(ms_journal_write(j, knob, "3"), 0);
	ck_assert_str_eq(read_knob(knob), "3");
	ck_assert_int_eq(ms_journal_pending(j), 2);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, NULL), 0);
	ck_assert_str_eq(read_knob(knob), "1");
	ms_journal_close(j);
}
END_TEST

START_TEST(test_odd_values_and_paths)
{
	/* Tabs, newlines and backslashes in the value and in the path itself. */
	static const char odd[] = "a\tb\\n\\\\c\nsecond line\t\\";
	struct ms_journal *j = open_journal();
	char knob[PATH_MAX], raw[128];

	tmp_path(knob, sizeof(knob), "odd\tname\\with\nnewline");
	write_str(knob, odd);
	ck_assert_int_eq(ms_journal_write(j, knob, "plain"), 0);
	read_raw(knob, raw, sizeof(raw));
	ck_assert_str_eq(raw, "plain");
	/* An odd new value goes in verbatim as well. */
	ck_assert_int_eq(ms_journal_write(j, knob, "x\ty\n"), 0);
	read_raw(knob, raw, sizeof(raw));
	ck_assert_str_eq(raw, "x\ty\n");
	ck_assert_int_eq(ms_journal_pending(j), 2);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, NULL), 0);
	read_raw(knob, raw, sizeof(raw));
	ck_assert_str_eq(raw, odd);
	ms_journal_close(j);
}
END_TEST

START_TEST(test_bracket_read)
{
	struct ms_journal *j = open_journal();
	char knob[PATH_MAX], raw[128], small[4];

	tmp_path(knob, sizeof(knob), "enabled");
	write_str(knob, "always [madvise] never\n");
	ck_assert_str_eq(read_knob(knob), "madvise");
	write_str(knob, "[none] mq-deadline\n");
	ck_assert_str_eq(read_knob(knob), "none");
	write_str(knob, "always defer defer+madvise madvise [never]");
	ck_assert_str_eq(read_knob(knob), "never");
	/* Not a choice list: left as it is. */
	write_str(knob, "a [b] [c]\n");
	ck_assert_str_eq(read_knob(knob), "a [b] [c]");
	write_str(knob, "x[1] y\n");
	ck_assert_str_eq(read_knob(knob), "x[1] y");
	write_str(knob, "4\t4\t1\t7\n");
	ck_assert_str_eq(read_knob(knob), "4\t4\t1\t7");
	write_str(knob, "");
	ck_assert_str_eq(read_knob(knob), "");
	write_str(knob, "12345");
	ck_assert_int_eq(ms_knob_read(knob, small, sizeof(small)), -EOVERFLOW);
	write_raw(knob, "a\0b", 3);
	ck_assert_int_eq(ms_knob_read(knob, raw, sizeof(raw)), -EINVAL);

	/* The bracketed word is what gets saved and written back. */
	write_str(knob, "always [madvise] never\n");
	ck_assert_int_eq(ms_journal_write(j, knob, "never"), 0);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, NULL), 0);
	read_raw(knob, raw, sizeof(raw));
	ck_assert_str_eq(raw, "madvise");
	ms_journal_close(j);
}
END_TEST

START_TEST(test_mkdir_records)
{
	struct ms_journal *j = open_journal();
	char dir[PATH_MAX], sub[PATH_MAX + 8], *log = NULL;
	size_t loglen = 0;
	struct stat st;
	FILE *f;

	tmp_path(dir, sizeof(dir), "cg");
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	ck_assert_int_eq(ms_journal_mkdir(j, dir, 0755), 0);
	ck_assert_int_eq(ms_journal_mkdir(j, sub, 0755), 0);
	ck_assert_int_eq(stat(sub, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	/* Someone else's directory is never journaled (restore would remove it). */
	ck_assert_int_eq(ms_journal_mkdir(j, dir, 0755), -EEXIST);
	ck_assert_int_eq(ms_journal_pending(j), 2);

	f = open_memstream(&log, &loglen);
	ck_assert_ptr_nonnull(f);
	/* Newest first: the child goes before its parent, or rmdir would fail. */
	ck_assert_int_eq(ms_journal_restore_to(j, 0, f), 0);
	fclose(f);
	ck_assert_int_eq(stat(dir, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(log, "# journal: removed directory "));
	free(log);
	ms_journal_close(j);
}
END_TEST

START_TEST(test_mark_partial)
{
	struct ms_journal *j = open_journal();
	char k1[PATH_MAX], k2[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	long mark;

	tmp_path(k1, sizeof(k1), "k1");
	tmp_path(k2, sizeof(k2), "k2");
	tmp_path(dir, sizeof(dir), "d");
	write_str(k1, "k1-orig\n");
	write_str(k2, "k2-orig\n");
	ck_assert_int_eq(ms_journal_write(j, k1, "k1-run"), 0);
	mark = ms_journal_mark(j);
	ck_assert_int_gt(mark, 0);
	ck_assert_int_eq(ms_journal_write(j, k2, "k2-case"), 0);
	ck_assert_int_eq(ms_journal_write(j, k1, "k1-case"), 0);
	ck_assert_int_eq(ms_journal_mkdir(j, dir, 0700), 0);
	ck_assert_int_eq(ms_journal_pending(j), 4);

	ck_assert_int_eq(ms_journal_restore_to(j, mark, NULL), 0);
	ck_assert_str_eq(read_knob(k1), "k1-run");
	ck_assert_str_eq(read_knob(k2), "k2-orig");
	ck_assert_int_eq(stat(dir, &st), -1);
	ck_assert_int_eq(ms_journal_pending(j), 1);
	ck_assert_int_eq(ms_journal_mark(j), mark);

	ck_assert_int_eq(ms_journal_restore_to(j, 0, NULL), 0);
	ck_assert_str_eq(read_knob(k1), "k1-orig");
	ck_assert_int_eq(ms_journal_restore_to(j, 1, NULL), -EINVAL);
	ms_journal_close(j);
}
END_TEST

START_TEST(test_errors_leave_knob_alone)
{
	struct ms_journal *j = open_journal();
	char knob[PATH_MAX], missing[PATH_MAX];

	tmp_path(knob, sizeof(knob), "knob");
	tmp_path(missing, sizeof(missing), "missing");
	ck_assert_int_eq(ms_journal_write(j, missing, "1"), -ENOENT);
	ck_assert_int_eq(ms_journal_write(j, tmpdir, "1"), -EISDIR);
	ck_assert_int_eq(ms_journal_write(j, "relative/knob", "1"), -EINVAL);
	ck_assert_int_eq(ms_journal_mkdir(j, "relative", 0700), -EINVAL);
	ck_assert_int_eq(ms_journal_pending(j), 0);
	write_str(knob, "v");
	ck_assert_int_eq(ms_journal_write(j, knob, "w"), 0);
	ck_assert_int_eq(ms_journal_pending(j), 1);
	ms_journal_close(j);
}
END_TEST

START_TEST(test_restore_failures_counted)
{
	struct ms_journal *j = open_journal();
	char knob[PATH_MAX], ok[PATH_MAX], *log = NULL;
	size_t loglen = 0;
	FILE *f;
	int fd;

	tmp_path(knob, sizeof(knob), "knob");
	tmp_path(ok, sizeof(ok), "ok");
	write_str(knob, "old");
	write_str(ok, "ok-old");
	ck_assert_int_eq(ms_journal_write(j, ok, "ok-new"), 0);
	ck_assert_int_eq(ms_journal_write(j, knob, "new"), 0);
	/* The knob turns into something that cannot take the old value back. */
	ck_assert_int_eq(unlink(knob), 0);
	ck_assert_int_eq(mkdir(knob, 0700), 0);
	/* A record that is not one, and a torn tail that is ignored. */
	fd = open(ms_journal_path(j), O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "Z\tjunk\n", 7), 7);
	ck_assert_int_eq(write(fd, "W\t/torn", 7), 7);
	close(fd);
	ck_assert_int_eq(ms_journal_pending(j), 3);

	f = open_memstream(&log, &loglen);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, f), 2);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(log, "bad record at offset"));
	ck_assert_ptr_nonnull(strstr(log, "# journal: cannot restore "));
	ck_assert_ptr_nonnull(strstr(log, "Is a directory"));
	ck_assert_str_eq(read_knob(ok), "ok-old");
	/* Failed or not, the records are done with: the file is cut back to the mark. */
	ck_assert_int_eq(ms_journal_pending(j), 0);
	ck_assert_int_eq(ms_journal_mark(j), 0);
	free(log);
	ms_journal_close(j);
}
END_TEST

START_TEST(test_crash_replay)
{
	char knob[PATH_MAX], dir[PATH_MAX], c;
	struct ms_journal *j;
	struct stat st;
	int pfd[2], status;
	pid_t pid;

	tmp_path(knob, sizeof(knob), "knob");
	tmp_path(dir, sizeof(dir), "cgroup-ish");
	write_str(knob, "before-crash\n");
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ms_journal *cj;

		close(pfd[0]);
		if (ms_journal_open(&cj, statedir) || ms_journal_write(cj, knob, "during-crash") ||
		    ms_journal_mkdir(cj, dir, 0700))
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	ck_assert_str_eq(read_knob(knob), "during-crash");
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* What mmstorm does at start-up. */
	j = open_journal();
	ck_assert_int_eq(ms_journal_pending(j), 2);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, NULL), 0);
	ck_assert_str_eq(read_knob(knob), "before-crash");
	ck_assert_int_eq(stat(dir, &st), -1);
	ck_assert_int_eq(ms_journal_pending(j), 0);
	ms_journal_close(j);
}
END_TEST

/* Exit status of a child that tries to open the journal: 0 opened, 1 -EBUSY, 2 other. */
static int try_open_in_child(void)
{
	struct ms_journal *j;
	int status, ret;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		ret = ms_journal_open(&j, statedir);
		if (!ret)
			ms_journal_close(j);
		_exit(ret == 0 ? 0 : ret == -EBUSY ? 1 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_lock_contention)
{
	struct ms_journal *j = open_journal(), *j2;
	char knob[PATH_MAX];
	int status;
	pid_t pid;

	ck_assert_int_eq(try_open_in_child(), 1);
	/* A forked worker journals through the runner's journal and its exit keeps the lock. */
	tmp_path(knob, sizeof(knob), "knob");
	write_str(knob, "0");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int ret = ms_journal_write(j, knob, "worker");

		ms_journal_close(j);
		_exit(ret ? 1 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(try_open_in_child(), 1);
	ck_assert_int_eq(ms_journal_open(&j2, statedir), -EBUSY);
	ck_assert_int_eq(ms_journal_pending(j), 1);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, NULL), 0);
	ck_assert_str_eq(read_knob(knob), "0");
	ms_journal_close(j);
	ck_assert_int_eq(try_open_in_child(), 0);
}
END_TEST

START_TEST(test_state_dir_from_env)
{
	struct ms_journal *j;
	char want[PATH_MAX + 32];

	ck_assert_int_eq(setenv("MMSTORM_STATE_DIR", statedir, 1), 0);
	ck_assert_int_eq(ms_journal_open(&j, NULL), 0);
	snprintf(want, sizeof(want), "%s/journal", statedir);
	ck_assert_str_eq(ms_journal_path(j), want);
	ms_journal_close(j);
	unsetenv("MMSTORM_STATE_DIR");
}
END_TEST

/*
 * Real kernel files, without changing anything: a sysfs store error must come back from
 * ms_journal_write, and a procfs knob rewritten with its own value must round-trip.
 */
START_TEST(test_real_knobs)
{
	static const char thp[] = "/sys/kernel/mm/transparent_hugepage/enabled";
	static const char sysctl[] = "/proc/sys/vm/stat_interval";
	char before[64], after[64];
	struct ms_journal *j;

	if (geteuid() != 0 || access(thp, W_OK) || access(sysctl, W_OK)) {
		printf("# SKIP test_real_knobs: needs root and %s, %s\n", thp, sysctl);
		return;
	}
	j = open_journal();
	ck_assert_int_eq(ms_knob_read(thp, before, sizeof(before)), 0);
	ck_assert_int_eq(ms_journal_write(j, thp, "not-a-thp-mode"), -EINVAL);
	ck_assert_int_eq(ms_knob_read(thp, after, sizeof(after)), 0);
	ck_assert_str_eq(after, before);

	ck_assert_int_eq(ms_knob_read(sysctl, before, sizeof(before)), 0);
	ck_assert_int_eq(ms_journal_write(j, sysctl, before), 0);
	ck_assert_int_eq(ms_journal_pending(j), 2);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, NULL), 0);
	ck_assert_int_eq(ms_knob_read(sysctl, after, sizeof(after)), 0);
	ck_assert_str_eq(after, before);
	ms_journal_close(j);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_write_restore);
	tcase_add_test(tc, test_same_knob_twice_keeps_oldest);
	tcase_add_test(tc, test_odd_values_and_paths);
	tcase_add_test(tc, test_bracket_read);
	tcase_add_test(tc, test_mkdir_records);
	tcase_add_test(tc, test_mark_partial);
	tcase_add_test(tc, test_errors_leave_knob_alone);
	tcase_add_test(tc, test_restore_failures_counted);
	tcase_add_test(tc, test_crash_replay);
	tcase_add_test(tc, test_lock_contention);
	tcase_add_test(tc, test_state_dir_from_env);
	tcase_add_test(tc, test_real_knobs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(journal_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

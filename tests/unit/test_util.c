/* Unit tests for the /proc, /sys and file helpers, against the real files of this machine. */
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
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mmstorm/util.h>

static char tmpdir[256];

static void tmp_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ms_test_util.XXXXXX", base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmp_teardown(void)
{
	ck_assert_int_eq(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* An independent reading of "key: value" from path, with stdio and sscanf. */
static int scan_key(const char *path, const char *key, unsigned long long *v)
{
	char line[512], k[128];
	int found = 0;
	FILE *f = fopen(path, "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127[^:]: %llu", k, v) == 2 && !strcmp(k, key)) {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

START_TEST(test_meminfo)
{
	unsigned long long want;
	uint64_t kb;

	ck_assert_int_eq(ms_meminfo_kb("MemTotal", &kb), 0);
	ck_assert_int_eq(scan_key("/proc/meminfo", "MemTotal", &want), 1);
	ck_assert_uint_eq(kb, want);
	ck_assert_int_eq(ms_meminfo_kb("PageTables", &kb), 0);
	ck_assert_uint_gt(kb, 0);
	if (scan_key("/proc/meminfo", "SecPageTables", &want)) {
		ck_assert_int_eq(ms_meminfo_kb("SecPageTables", &kb), 0);
		/* A suffix of a real key is not that key. */
		ck_assert_int_eq(ms_meminfo_kb("ecPageTables", &kb), -ENOENT);
	}
	ck_assert_int_eq(ms_meminfo_kb("PageTable", &kb), -ENOENT);
	ck_assert_int_eq(ms_meminfo_kb("Tables", &kb), -ENOENT);
	ck_assert_int_eq(ms_meminfo_kb("NoSuchKey", &kb), -ENOENT);
	ck_assert_int_eq(ms_meminfo_kb("", &kb), -EINVAL);
	/* A unitless line still parses. */
	ck_assert_int_eq(ms_meminfo_kb("HugePages_Total", &kb), 0);
}
END_TEST

START_TEST(test_status)
{
	uint64_t v, pte;
	pid_t child;
	int status;

	ck_assert_int_eq(ms_status_kb(0, "VmPTE", &pte), 0);
	ck_assert_uint_gt(pte, 0);
	ck_assert_int_eq(ms_status_kb(getpid(), "VmPTE", &v), 0);
	ck_assert_uint_gt(v, 0);
	ck_assert_int_eq(ms_status_kb(0, "VmRSS", &v), 0);
	ck_assert_uint_gt(v, 0);
	/* "Pid" must not match "PPid" or "TracerPid", nor "PPid" match "Pid". */
	ck_assert_int_eq(ms_status_kb(0, "Pid", &v), 0);
	ck_assert_uint_eq(v, getpid());
	ck_assert_int_eq(ms_status_kb(0, "PPid", &v), 0);
	ck_assert_uint_eq(v, getppid());
	ck_assert_int_eq(ms_status_kb(0, "VmPT", &v), -ENOENT);
	ck_assert_int_eq(ms_status_kb(-1, "Pid", &v), -EINVAL);

	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		alarm(60);	/* never outlive a failed test */
		pause();
		_exit(0);
	}
	ck_assert_int_eq(ms_status_kb(child, "Pid", &v), 0);
	ck_assert_uint_eq(v, child);
	ck_assert_int_eq(kill(child, SIGKILL), 0);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	/* Reaped: its /proc directory is gone. */
	ck_assert_int_eq(ms_status_kb(child, "Pid", &v), -ENOENT);
}
END_TEST

START_TEST(test_vmstat)
{
	uint64_t v, before, after;
	volatile char *p;
	size_t i;

	ck_assert_int_eq(ms_vmstat("nr_free_pages", &v), 0);
	ck_assert_uint_gt(v, 0);
	ck_assert_int_eq(ms_vmstat("nr_free", &v), -ENOENT);
	ck_assert_int_eq(ms_vmstat("free_pages", &v), -ENOENT);
	ck_assert_int_eq(ms_vmstat("no_such_counter", &v), -ENOENT);
	/* The event counter moves when we fault in fresh pages. */
	ck_assert_int_eq(ms_vmstat("pgfault", &before), 0);
	p = malloc(64 << 20);
	ck_assert_ptr_nonnull((void *)p);
	for (i = 0; i < (64 << 20); i += 4096)
		p[i] = 1;
	ck_assert_int_eq(ms_vmstat("pgfault", &after), 0);
	ck_assert_uint_gt(after, before);
	free((void *)p);
}
END_TEST

START_TEST(test_hugetlb)
{
	struct stat st;
	uint64_t v;

	if (!stat("/sys/kernel/mm/hugepages/hugepages-2048kB", &st))
		ck_assert_int_eq(ms_hugetlb_free(2048, &v), 0);
	else
		ck_assert_int_eq(ms_hugetlb_free(2048, &v), -ENOENT);
	ck_assert_int_eq(ms_hugetlb_free(3, &v), -ENOENT);
}
END_TEST

START_TEST(test_files)
{
	char path[PATH_MAX], buf[64], big[4096];
	uint64_t v;

	tmp_path(path, sizeof(path), "f");
	ck_assert_int_eq(ms_write_file(path, "12345\n"), 0);
	ck_assert_int_eq(ms_read_file(path, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "12345\n");
	ck_assert_int_eq(ms_read_u64(path, &v), 0);
	ck_assert_uint_eq(v, 12345);
	/* Exactly fitting (with its NUL) is fine, one byte less is refused, not truncated. */
	ck_assert_int_eq(ms_read_file(path, buf, 7), 6);
	ck_assert_int_eq(ms_read_file(path, buf, 6), -EFBIG);
	ck_assert_int_eq(ms_read_file(path, buf, 0), -EINVAL);
	/* Rewriting truncates. */
	ck_assert_int_eq(ms_write_file(path, "7"), 0);
	ck_assert_int_eq(ms_read_file(path, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "7");
	ck_assert_int_eq(ms_write_file(path, ""), 0);
	ck_assert_int_eq(ms_read_file(path, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(ms_read_u64(path, &v), -EINVAL);

	ck_assert_int_eq(ms_write_file(path, " \t42 trailing text\n"), 0);
	ck_assert_int_eq(ms_read_u64(path, &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(ms_write_file(path, "18446744073709551615\n"), 0);
	ck_assert_int_eq(ms_read_u64(path, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(ms_write_file(path, "18446744073709551616\n"), 0);
	ck_assert_int_eq(ms_read_u64(path, &v), -ERANGE);
	ck_assert_int_eq(ms_write_file(path, "-5\n"), 0);
	ck_assert_int_eq(ms_read_u64(path, &v), -EINVAL);
	ck_assert_int_eq(ms_write_file(path, "abc 5\n"), 0);
	ck_assert_int_eq(ms_read_u64(path, &v), -EINVAL);
	/* Only the start of the file is read: a number cut there must not pass for another. */
	memset(big, '0', 100);
	strcpy(big + 100, "5\n");
	ck_assert_int_eq(ms_write_file(path, big), 0);
	ck_assert_int_eq(ms_read_u64(path, &v), -ERANGE);
	memcpy(big, "12 ", 3);
	ck_assert_int_eq(ms_write_file(path, big), 0);
	ck_assert_int_eq(ms_read_u64(path, &v), 0);
	ck_assert_uint_eq(v, 12);

	tmp_path(path, sizeof(path), "missing");
	ck_assert_int_eq(ms_read_file(path, buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(ms_read_u64(path, &v), -ENOENT);
	tmp_path(path, sizeof(path), "no/such/dir/f");
	ck_assert_int_eq(ms_write_file(path, "x"), -ENOENT);
	/* A real /proc file, read in one go. */
	ck_assert_int_gt(ms_read_file("/proc/self/stat", big, sizeof(big)), 0);
	ck_assert_int_eq(strtol(big, NULL, 10), getpid());
	ck_assert_int_eq(ms_read_u64("/proc/self/stat", &v), 0);
	ck_assert_uint_eq(v, getpid());
}
END_TEST

START_TEST(test_read_large)
{
	char path[PATH_MAX], *big, *buf;
	size_t n = 300000, i;

	/* Bigger than any single read(), so the loop must stitch the pieces together. */
	big = malloc(n + 1);
	buf = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < n; i++)
		big[i] = 'a' + i % 26;
	big[n] = '\0';
	tmp_path(path, sizeof(path), "big");
	ck_assert_int_eq(ms_write_file(path, big), 0);
	ck_assert_int_eq(ms_read_file(path, buf, n + 1), n);
	ck_assert_mem_eq(buf, big, n + 1);
	free(big);
	free(buf);
}
END_TEST

START_TEST(test_mkdir_p)
{
	char path[PATH_MAX], file[PATH_MAX], longp[PATH_MAX + 16];
	struct stat st;

	umask(022);
	tmp_path(path, sizeof(path), "a/b//c/d/");
	ck_assert_int_eq(ms_mkdir_p(path, 0755), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0755);
	/* Idempotent, as mkdir -p. */
	ck_assert_int_eq(ms_mkdir_p(path, 0755), 0);
	tmp_path(path, sizeof(path), "a/b");
	ck_assert_int_eq(ms_mkdir_p(path, 0755), 0);

	tmp_path(file, sizeof(file), "a/file");
	ck_assert_int_eq(ms_write_file(file, "x"), 0);
	ck_assert_int_eq(ms_mkdir_p(file, 0755), -ENOTDIR);
	tmp_path(path, sizeof(path), "a/file/sub");
	ck_assert_int_eq(ms_mkdir_p(path, 0755), -ENOTDIR);
	ck_assert_int_eq(ms_mkdir_p("", 0755), -EINVAL);
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(ms_mkdir_p(longp, 0755), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_strlcpy)
{
	char dst[8];

	memset(dst, 'z', sizeof(dst));
	ck_assert_uint_eq(ms_strlcpy(dst, "hello world", sizeof(dst)), 11);
	ck_assert_str_eq(dst, "hello w");
	ck_assert_uint_eq(ms_strlcpy(dst, "1234567", sizeof(dst)), 7);
	ck_assert_str_eq(dst, "1234567");
	ck_assert_uint_eq(ms_strlcpy(dst, "", sizeof(dst)), 0);
	ck_assert_str_eq(dst, "");
	memset(dst, 'z', sizeof(dst));
	ck_assert_uint_eq(ms_strlcpy(dst, "abc", 0), 3);
	ck_assert_int_eq(dst[0], 'z');
	ck_assert_uint_eq(ms_strlcpy(dst, "abc", 1), 3);
	ck_assert_str_eq(dst, "");
}
END_TEST

static void on_alarm(int sig)
{
	(void)sig;
}

#define PIPE_BYTES (4 << 20)

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 131 + (i >> 12));
}

/* Reads slowly and in small pieces, so the writer sees short writes; exits 0 if data match. */
static void slow_reader(int fd)
{
	unsigned char buf[3000];
	size_t off = 0, i;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n; i++)
			if (buf[i] != pattern(off + i))
				_exit(2);
		off += n;
		usleep(20);
	}
	_exit(n == 0 && off == PIPE_BYTES ? 0 : 1);
}

START_TEST(test_write_all)
{
	struct itimerval it = { { 0, 500 }, { 0, 500 } }, off = { 0 };
	struct sigaction sa = { .sa_handler = on_alarm };
	unsigned char *data;
	int fds[2], status;
	pid_t child;
	size_t i;

	data = malloc(PIPE_BYTES);
	ck_assert_ptr_nonnull(data);
	for (i = 0; i < PIPE_BYTES; i++)
		data[i] = pattern(i);
	ck_assert_int_eq(pipe(fds), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		close(fds[1]);
		slow_reader(fds[0]);
	}
	ck_assert_int_eq(close(fds[0]), 0);
	/* No SA_RESTART: the timer makes blocked writes return early or fail with EINTR. */
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	ck_assert_int_eq(ms_write_all(fds[1], data, PIPE_BYTES), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
	ck_assert_int_eq(close(fds[1]), 0);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	/* Errors come back as -errno. */
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(close(fds[0]), 0);
	ck_assert_ptr_ne(signal(SIGPIPE, SIG_IGN), SIG_ERR);
	ck_assert_int_eq(ms_write_all(fds[1], data, 10), -EPIPE);
	ck_assert_int_eq(close(fds[1]), 0);
	ck_assert_int_eq(ms_write_all(fds[1], data, 10), -EBADF);
	ck_assert_int_eq(ms_write_all(fds[1], data, 0), 0);
	free(data);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *proc = tcase_create("proc");
	TCase *files = tcase_create("files");

	tcase_add_test(proc, test_meminfo);
	tcase_add_test(proc, test_status);
	tcase_add_test(proc, test_vmstat);
	tcase_add_test(proc, test_hugetlb);
	suite_add_tcase(s, proc);

	/* Unchecked: the runner removes the directory even when a test in it failed. */
	tcase_add_unchecked_fixture(files, tmp_setup, tmp_teardown);
	tcase_add_test(files, test_files);
	tcase_add_test(files, test_read_large);
	tcase_add_test(files, test_mkdir_p);
	tcase_add_test(files, test_strlcpy);
	tcase_add_test(files, test_write_all);
	suite_add_tcase(s, files);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(util_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

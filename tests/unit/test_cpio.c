/* Unit tests for the initramfs writer: archives read back with an independent newc reader. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "vm/vm.h"

#define MAX_ENTRIES 32

struct entry {
	char name[256];
	unsigned ino, mode, nlink, rmajor, rminor;
	size_t size;
	char *data;
};

struct archive {
	struct entry e[MAX_ENTRIES];
	unsigned n;
	bool trailer;
	size_t bytes;
};

static char tmpdir[256];

static void tmp_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ms_test_cpio.XXXXXX", base ? base : "/tmp");
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

/* The whole file, decompressed if it is gzip (zlib reads plain files through unchanged). */
static char *slurp(const char *path, size_t *len, bool *was_gzip)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	gzFile gz = gzopen(path, "rb");
	int r;

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(gz);
	while ((r = gzread(gz, buf + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	ck_assert_int_eq(r, 0);
	*was_gzip = !gzdirect(gz);
	gzclose(gz);
	*len = n;
	return buf;
}

static unsigned hex8(const char *p)
{
	char tmp[9];

	memcpy(tmp, p, 8);
	tmp[8] = '\0';
	ck_assert_uint_eq(strspn(tmp, "0123456789ABCDEF"), 8);
	return (unsigned)strtoul(tmp, NULL, 16);
}

static size_t pad4(size_t x)
{
	return (x + 3) & ~(size_t)3;
}

/* newc as the kernel's init/initramfs.c reads it: 110-byte header, name, data, 4-byte padding. */
static void parse(const char *path, struct archive *a, bool *was_gzip)
{
	size_t len, off = 0;
	char *buf = slurp(path, &len, was_gzip);

	memset(a, 0, sizeof(*a));
	a->bytes = len;
	while (off + 110 <= len) {
		struct entry *e = &a->e[a->n];
		const char *h = buf + off;
		unsigned namesize;

		ck_assert_int_eq(memcmp(h, "070701", 6), 0);
		e->ino = hex8(h + 6);
		e->mode = hex8(h + 14);
		ck_assert_uint_eq(hex8(h + 22), 0);	/* uid */
		ck_assert_uint_eq(hex8(h + 30), 0);	/* gid */
		e->nlink = hex8(h + 38);
		e->size = hex8(h + 54);
		e->rmajor = hex8(h + 78);
		e->rminor = hex8(h + 86);
		namesize = hex8(h + 94);
		ck_assert_uint_eq(hex8(h + 102), 0);	/* check */
		ck_assert_uint_ge(namesize, 2);
		ck_assert_uint_le(off + 110 + namesize, len);
		ck_assert_int_eq(h[110 + namesize - 1], '\0');
		ck_assert_uint_lt(namesize, sizeof(e->name));
		memcpy(e->name, h + 110, namesize);
		off = pad4(off + 110 + namesize);
		if (!strcmp(e->name, "TRAILER!!!")) {
			a->trailer = true;
			ck_assert_uint_eq(off, pad4(len));
			break;
		}
		ck_assert_uint_le(off + e->size, len);
		e->data = malloc(e->size + 1);
		ck_assert_ptr_nonnull(e->data);
		memcpy(e->data, buf + off, e->size);
		e->data[e->size] = '\0';
		off = pad4(off + e->size);
		ck_assert_uint_lt(++a->n, MAX_ENTRIES);
	}
	ck_assert(a->trailer);
	free(buf);
}

static void archive_free(struct archive *a)
{
	for (unsigned i = 0; i < a->n; i++)
		free(a->e[i].data);
}

static const struct entry *find(const struct archive *a, const char *name)
{
	for (unsigned i = 0; i < a->n; i++)
		if (!strcmp(a->e[i].name, name))
			return &a->e[i];
	return NULL;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static void check_entries(bool gzip)
{
	char path[512], src[512], big[5000];
	struct ms_cpio *c;
	struct archive a;
	bool was_gzip;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3);
	tmp_path(src, sizeof(src), "big.bin");
	write_file(src, big, sizeof(big));
	tmp_path(path, sizeof(path), gzip ? "a.cpio.gz" : "a.cpio");
	ck_assert_int_eq(ms_cpio_open(&c, path, gzip), 0);
	ck_assert_int_eq(ms_cpio_dir(c, "/dev", 0755), 0);
	ck_assert_int_eq(ms_cpio_node(c, "dev/console", S_IFCHR | 0600, 5, 1), 0);
	ck_assert_int_eq(ms_cpio_file(c, "empty", 0644, "", 0), 0);
	ck_assert_int_eq(ms_cpio_file(c, "odd", 0600, "abcde", 5), 0);
	ck_assert_int_eq(ms_cpio_file_from(c, "dev/big", 0755, src), 0);
	ck_assert_int_eq(ms_cpio_close(c), 0);

	parse(path, &a, &was_gzip);
	ck_assert(was_gzip == gzip);
	ck_assert_uint_eq(a.n, 5);
	ck_assert_str_eq(a.e[0].name, "dev");	/* leading slash dropped */
	ck_assert_uint_eq(a.e[0].mode, S_IFDIR | 0755);
	ck_assert_uint_eq(a.e[0].nlink, 2);
	ck_assert_uint_eq(a.e[1].mode, S_IFCHR | 0600);
	ck_assert_uint_eq(a.e[1].rmajor, 5);
	ck_assert_uint_eq(a.e[1].rminor, 1);
	ck_assert_uint_eq(find(&a, "empty")->size, 0);
	ck_assert_str_eq(find(&a, "odd")->data, "abcde");
	ck_assert_uint_eq(find(&a, "odd")->mode, S_IFREG | 0600);
	ck_assert_uint_eq(find(&a, "dev/big")->size, sizeof(big));
	ck_assert_int_eq(memcmp(find(&a, "dev/big")->data, big, sizeof(big)), 0);
	for (unsigned i = 1; i < a.n; i++)
		ck_assert_uint_ne(a.e[i].ino, a.e[i - 1].ino);
	archive_free(&a);
}

START_TEST(test_entries_plain)
{
	check_entries(false);
}
END_TEST

START_TEST(test_entries_gzip)
{
	check_entries(true);
}
END_TEST

START_TEST(test_errors)
{
	char path[512], missing[512];
	struct ms_cpio *c;
	struct archive a;
	bool was_gzip;

	tmp_path(missing, sizeof(missing), "no/such/dir/x.cpio");
	ck_assert_int_eq(ms_cpio_open(&c, missing, true), -ENOENT);
	tmp_path(path, sizeof(path), "e.cpio");
	ck_assert_int_eq(ms_cpio_open(&c, path, false), 0);
	ck_assert_int_eq(ms_cpio_node(c, "dev/x", S_IFREG | 0644, 1, 1), -EINVAL);
	tmp_path(missing, sizeof(missing), "absent");
	ck_assert_int_eq(ms_cpio_file_from(c, "x", 0644, missing), -ENOENT);
	ck_assert_int_eq(ms_cpio_file_from(c, "x", 0644, tmpdir), -EINVAL);	/* a directory */
	ck_assert_int_eq(ms_cpio_close(c), 0);
	/* failed additions leave nothing behind: an empty, valid archive */
	parse(path, &a, &was_gzip);
	ck_assert_uint_eq(a.n, 0);
	archive_free(&a);
}
END_TEST

START_TEST(test_initramfs_layout)
{
	static const char *const dirs[] = { "dev", "proc", "sys", "tmp", "run", "mnt" };
	char path[512], suite[512], agent[4096];
	const struct entry *e;
	json_error_t jerr;
	struct archive a;
	bool was_gzip;
	json_t *m, *back;
	ssize_t n;

	/* any real executable stands in for the agent: its bytes must arrive unchanged */
	n = readlink("/proc/self/exe", agent, sizeof(agent) - 1);
	ck_assert_int_gt(n, 0);
	agent[n] = '\0';
	tmp_path(suite, sizeof(suite), "s.ini");
	write_file(suite, "[global]\nname=x\n", 16);
	tmp_path(path, sizeof(path), "initramfs.cpio.gz");
	m = json_pack("{s:s, s:I, s:s}", "run_id", "r-1", "seed", (json_int_t)42, "kernel_label",
		      "6.1");
	ck_assert_int_eq(ms_vm_initramfs(path, agent, suite, m, true), 0);

	parse(path, &a, &was_gzip);
	ck_assert(was_gzip);
	for (unsigned i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		e = find(&a, dirs[i]);
		ck_assert_msg(e != NULL, "no /%s", dirs[i]);
		ck_assert(S_ISDIR(e->mode));
	}
	ck_assert_uint_eq(find(&a, "tmp")->mode & 07777, 01777);
	e = find(&a, "dev/console");
	ck_assert_ptr_nonnull(e);
	ck_assert(S_ISCHR(e->mode));
	ck_assert_uint_eq(e->rmajor, 5);
	ck_assert_uint_eq(e->rminor, 1);
	e = find(&a, "init");
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->mode, S_IFREG | 0755);
	{
		struct stat st;
		char *want;
		int fd = open(agent, O_RDONLY);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_uint_eq(e->size, (size_t)st.st_size);
		want = malloc(e->size);
		ck_assert_ptr_nonnull(want);
		ck_assert_int_eq(pread(fd, want, e->size, 0), (ssize_t)e->size);
		ck_assert_int_eq(memcmp(want, e->data, e->size), 0);
		free(want);
		close(fd);
	}
	ck_assert_str_eq(find(&a, "suite.ini")->data, "[global]\nname=x\n");
	back = json_loads(find(&a, "manifest.json")->data, 0, &jerr);
	ck_assert_ptr_nonnull(back);
	ck_assert(json_equal(m, back));
	/* the dev directory comes before the node in it */
	for (unsigned i = 0; i < a.n; i++) {
		if (!strcmp(a.e[i].name, "dev"))
			break;
		ck_assert_str_ne(a.e[i].name, "dev/console");
	}
	json_decref(back);
	json_decref(m);
	archive_free(&a);
}
END_TEST

static Suite *cpio_suite(void)
{
	Suite *s = suite_create("cpio");
	TCase *t = tcase_create("cpio");

	tcase_add_checked_fixture(t, tmp_setup, tmp_teardown);
	tcase_add_test(t, test_entries_plain);
	tcase_add_test(t, test_entries_gzip);
	tcase_add_test(t, test_errors);
	tcase_add_test(t, test_initramfs_layout);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cpio_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

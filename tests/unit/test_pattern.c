/* Unit tests for the page stamps and fill/mark/check helpers (src/model/pattern.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/model.h"

#define NROLE 16
#define NPAGE 256
#define NGEN 16

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

START_TEST(test_stamp_distinct)
{
	size_t n = (size_t)NROLE * NPAGE * NGEN, k = 0;
	uint64_t *s = malloc(n * sizeof(*s));

	ck_assert_ptr_nonnull(s);
	for (uint64_t r = 0; r < NROLE; r++)
		for (uint64_t p = 0; p < NPAGE; p++)
			for (uint64_t g = 0; g < NGEN; g++) {
				s[k] = ms_stamp(r, p, g);
				ck_assert_uint_ne(s[k], 0);
				ck_assert_uint_eq(s[k], ms_stamp(r, p, g));
				k++;
			}
	qsort(s, n, sizeof(*s), cmp_u64);
	for (k = 1; k < n; k++)
		ck_assert_msg(s[k] != s[k - 1], "two (role, page, gen) share stamp %#llx",
			      (unsigned long long)s[k]);
	free(s);
}
END_TEST

/* Swapping coordinates must not give the same stamp (no symmetric mixing). */
START_TEST(test_stamp_not_symmetric)
{
	for (uint64_t a = 0; a < 64; a++)
		for (uint64_t b = 0; b < 64; b++) {
			if (a == b)
				continue;
			ck_assert_uint_ne(ms_stamp(a, b, 0), ms_stamp(b, a, 0));
			ck_assert_uint_ne(ms_stamp(0, a, b), ms_stamp(0, b, a));
			ck_assert_uint_ne(ms_stamp(a, 0, b), ms_stamp(b, 0, a));
		}
}
END_TEST

static const size_t lens[] = { 32, 64, 4096, 8192, 65536, 2 << 20 };

START_TEST(test_fill_round_trip)
{
	size_t len = lens[_i];
	uint64_t *p = aligned_alloc(16, len);
	uint64_t fill = ms_stamp(1, 2, 3), mark = ms_stamp(4, 5, 6);

	ck_assert_ptr_nonnull(p);
	ms_page_fill(p, len, fill);
	ck_assert_uint_eq(ms_page_check(p, len, fill, 0), MS_PAGE_MATCH);
	ck_assert_uint_ne(ms_page_check(p, len, ms_stamp(1, 2, 4), 0), MS_PAGE_MATCH);
	/* Another page's stamp must already differ in the very first word. */
	ck_assert_uint_lt(ms_page_check(p, len, ms_stamp(1, 3, 3), 0), 8);

	ms_page_mark(p, len, mark);
	ck_assert_uint_eq(ms_page_mark_check(p, len, mark), MS_PAGE_MATCH);
	ck_assert_uint_eq(ms_page_check(p, len, fill, mark), MS_PAGE_MATCH);
	ck_assert_uint_eq(ms_page_check(p, len, fill, 0), 0);
	ck_assert_uint_eq(ms_page_mark_check(p, len, ms_stamp(4, 5, 7)), 0);

	ms_page_fill(p, len, 0);
	for (size_t i = 0; i < len / 8; i++)
		ck_assert_uint_eq(p[i], 0);
	ck_assert_uint_eq(ms_page_check(p, len, 0, 0), MS_PAGE_MATCH);
	ms_page_mark(p, len, mark);
	ck_assert_uint_eq(ms_page_check(p, len, 0, mark), MS_PAGE_MATCH);
	free(p);
}
END_TEST

/* A mark touches only its two records: the body stays what it was. */
START_TEST(test_mark_only_records)
{
	const size_t len = 4096;
	unsigned char *a = aligned_alloc(16, len), *b = aligned_alloc(16, len);
	uint64_t fill = ms_stamp(7, 7, 7);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ms_page_fill(a, len, fill);
	memcpy(b, a, len);
	ms_page_mark(a, len, ms_stamp(8, 8, 8));
	ck_assert_int_ne(memcmp(a, b, MS_MARK_BYTES), 0);
	ck_assert_int_ne(memcmp(a + len - MS_MARK_BYTES, b + len - MS_MARK_BYTES, MS_MARK_BYTES),
			 0);
	ck_assert_int_eq(memcmp(a + MS_MARK_BYTES, b + MS_MARK_BYTES, len - 2 * MS_MARK_BYTES),
			 0);
	/* Body damage is not a mark mismatch, but a full check sees it. */
	a[len / 2] ^= 0x10;
	ck_assert_uint_eq(ms_page_mark_check(a, len, ms_stamp(8, 8, 8)), MS_PAGE_MATCH);
	ck_assert_uint_eq(ms_page_check(a, len, fill, ms_stamp(8, 8, 8)), len / 2);
	free(a);
	free(b);
}
END_TEST

/* Every single-byte corruption, at every offset, is reported at exactly that offset. */
static void flip_everywhere(uint64_t fill, uint64_t mark)
{
	const size_t len = 4096;
	unsigned char *p = aligned_alloc(16, len);
	static const unsigned char bits[] = { 0x01, 0x80, 0xff };

	ck_assert_ptr_nonnull(p);
	ms_page_expect(p, len, fill, mark);
	ck_assert_uint_eq(ms_page_check(p, len, fill, mark), MS_PAGE_MATCH);
	for (size_t off = 0; off < len; off++)
		for (size_t b = 0; b < sizeof(bits); b++) {
			p[off] ^= bits[b];
			ck_assert_uint_eq(ms_page_check(p, len, fill, mark), off);
			if (mark && (off < MS_MARK_BYTES || off >= len - MS_MARK_BYTES))
				ck_assert_uint_eq(ms_page_mark_check(p, len, mark), off);
			p[off] ^= bits[b];
		}
	ck_assert_uint_eq(ms_page_check(p, len, fill, mark), MS_PAGE_MATCH);
	free(p);
}

START_TEST(test_flip_filled)
{
	flip_everywhere(ms_stamp(11, 12, 13), 0);
}
END_TEST

START_TEST(test_flip_zero)
{
	flip_everywhere(0, 0);
}
END_TEST

START_TEST(test_flip_filled_marked)
{
	flip_everywhere(ms_stamp(11, 12, 13), ms_stamp(1, 12, 14));
}
END_TEST

/* The first of two corruptions is the one reported. */
START_TEST(test_first_of_two)
{
	const size_t len = 8192;
	unsigned char *p = aligned_alloc(16, len);
	uint64_t fill = ms_stamp(3, 1, 4);

	ck_assert_ptr_nonnull(p);
	ms_page_fill(p, len, fill);
	p[5000] ^= 1;
	p[123] ^= 1;
	ck_assert_uint_eq(ms_page_check(p, len, fill, 0), 123);
	free(p);
}
END_TEST

/* ms_page_expect builds what check compares against, so memcmp finds the same byte. */
START_TEST(test_expect_matches_check)
{
	const size_t len = 4096;
	unsigned char *p = aligned_alloc(16, len), *e = aligned_alloc(16, len);
	uint64_t fill = ms_stamp(9, 9, 1), mark = ms_stamp(9, 9, 2);
	size_t off;

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(e);
	ms_page_fill(p, len, fill);
	ms_page_mark(p, len, mark);
	ms_page_expect(e, len, fill, mark);
	ck_assert_int_eq(memcmp(p, e, len), 0);
	p[len - 3] ^= 0x40;
	for (off = 0; off < len && p[off] == e[off]; off++)
		;
	ck_assert_uint_eq(off, len - 3);
	ck_assert_uint_eq(ms_page_check(p, len, fill, mark), off);
	free(p);
	free(e);
}
END_TEST

/*
 * On real memory across a real fork: the child keeps the fork-time generation while the
 * parent writes the next one, and each side's checks tell the two apart.
 */
START_TEST(test_cow_fork)
{
	const size_t len = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t g1 = ms_stamp(0, 0, 1), g2 = ms_stamp(0, 0, 2);
	int fds[2], status;
	char c;
	pid_t pid;
	void *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	ck_assert_int_eq(pipe(fds), 0);
	ms_page_expect(p, len, ms_stamp(5, 0, 0), g1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[1]);
		if (read(fds[0], &c, 1) != 0)
			_exit(2);
		if (ms_page_check(p, len, ms_stamp(5, 0, 0), g1) != MS_PAGE_MATCH)
			_exit(3);
		if (ms_page_mark_check(p, len, g2) == MS_PAGE_MATCH)
			_exit(4);
		_exit(0);
	}
	close(fds[0]);
	ms_page_mark(p, len, g2);
	close(fds[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(ms_page_check(p, len, ms_stamp(5, 0, 0), g2), MS_PAGE_MATCH);
	ck_assert_uint_eq(ms_page_mark_check(p, len, g1), 0);
	munmap(p, len);
}
END_TEST

static Suite *pattern_suite(void)
{
	Suite *s = suite_create("pattern");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_stamp_distinct);
	tcase_add_test(tc, test_stamp_not_symmetric);
	tcase_add_loop_test(tc, test_fill_round_trip, 0, sizeof(lens) / sizeof(lens[0]));
	tcase_add_test(tc, test_mark_only_records);
	tcase_add_test(tc, test_flip_filled);
	tcase_add_test(tc, test_flip_zero);
	tcase_add_test(tc, test_flip_filled_marked);
	tcase_add_test(tc, test_first_of_two);
	tcase_add_test(tc, test_expect_matches_check);
	tcase_add_test(tc, test_cow_fork);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pattern_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

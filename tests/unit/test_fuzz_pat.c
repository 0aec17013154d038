/* Unit tests for the fuzzer's model of per-VMA (pre-rework) x86 PAT pfnmap tracking. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/fuzz.h"

#define K 0x1000ULL

static struct ms_fz_pat pt;

static void predict(const char *text, const struct ms_fz_pat_range *n0, unsigned nn0)
{
	static struct ms_fz_seq s;
	char err[200] = "";

	ck_assert_msg(ms_fz_seq_parse(&s, text, err, sizeof(err)) == 0, "%s: %s", text, err);
	ck_assert_int_eq(ms_fz_pat_predict(&pt, n0, nn0, &s, NULL, NULL), 0);
	ck_assert(!pt.unsure);
}

static void want(const struct ms_fz_pat_range *node, unsigned n,
		 const struct ms_fz_pat_range *failed, unsigned nf)
{
	char a[200], b[200];

	ms_fz_pat_str(pt.node, pt.nnode, a, sizeof(a));
	ms_fz_pat_str(node, n, b, sizeof(b));
	ck_assert_msg(ms_fz_pat_same(pt.node, pt.nnode, node, n), "entries %s, want %s", a, b);
	ms_fz_pat_str(pt.failed, pt.nfailed, a, sizeof(a));
	ms_fz_pat_str(failed, nf, b, sizeof(b));
	ck_assert_msg(ms_fz_pat_same(pt.failed, pt.nfailed, failed, nf), "failed frees %s, want %s",
		      a, b);
}

/* Whole unmaps, tail unmaps and in-place shrinks free everything: nothing left, nothing said. */
START_TEST(test_frees_that_work)
{
	predict("window 8 4; pfn-map p0 0+3; pfn-munmap p0 2+1", NULL, 0);
	want(NULL, 0, NULL, 0);
	predict("window 8 4; pfn-map p0 0+4; pfn-mremap p0 0+4 -> 0+2; pfn-mremap p0 0+2 -> 0+1",
		NULL, 0);
	want(NULL, 0, NULL, 0);
	/* Each fork copy reserves its own entry and frees it with an exact match. */
	predict("window 8 4; pfn-map p0 0+2; fork p0; fork p1; exit p1", NULL, 0);
	want(NULL, 0, NULL, 0);
	/* A whole-VMA move takes VM_PAT along; the old VMA frees nothing. */
	predict("window 8 4; pfn-map p0 0+2; pfn-mremap p0 0+2 -> 2+2", NULL, 0);
	want(NULL, 0, NULL, 0);
	/* An mprotect that changes nothing splits nothing. */
	predict("window 8 4; pfn-map p0 0+3; pfn-mprotect p0 1+1 r", NULL, 0);
	want(NULL, 0, NULL, 0);
}
END_TEST

/* A head unmap: neither an exact nor an end match. The tail later cuts the entry to the head. */
START_TEST(test_head_unmap_leaks)
{
	const struct ms_fz_pat_range left[] = { { 0, K } }, failed[] = { { 0, K } };

	predict("window 8 4; pfn-map p0 0+3; pfn-munmap p0 0+1", NULL, 0);
	want(left, 1, failed, 1);
}
END_TEST

/* mprotect splits into three: head and middle fail, the tail cuts the entry to two pages. */
START_TEST(test_mprotect_split)
{
	const struct ms_fz_pat_range left[] = { { 0, 2 * K } },
				     failed[] = { { 0, K }, { K, 2 * K } };

	predict("window 8 4; pfn-map p0 0+3; pfn-mprotect p0 1+1 none", NULL, 0);
	want(left, 1, failed, 2);
}
END_TEST

/*
 * move_vma() clears VM_PAT on the whole old VMA: moving its tail out leaves the head with
 * nothing to free, the moved page cuts the entry: a silent leak of the head.
 */
START_TEST(test_partial_move)
{
	const struct ms_fz_pat_range left[] = { { 0, 2 * K } }, all[] = { { 0, 3 * K } },
				     head[] = { { 0, K } };

	predict("window 8 4; pfn-map p0 0+3; pfn-mremap p0 2+1 -> 3+1", NULL, 0);
	want(left, 1, NULL, 0);
	/* Moving the head instead: its free is no end match, and the rest frees nothing. */
	predict("window 8 4; pfn-map p0 0+3; pfn-mremap p0 0+1 -> 3+1", NULL, 0);
	want(all, 1, head, 1);
}
END_TEST

/* A fork after the split copies each VM_PAT piece as its own entry, freed exactly. */
START_TEST(test_fork_after_split)
{
	const struct ms_fz_pat_range left[] = { { 0, K } }, failed[] = { { 0, K } };

	predict("window 8 4; pfn-map p0 0+2; pfn-munmap p0 0+1; fork p0", NULL, 0);
	/* p0 failed to free [0, 1 page) when unmapping it; p1's copy of [1, 2) is exact. */
	want(left, 1, failed, 1);
}
END_TEST

/* Entries left by an earlier sequence take part in the matching. */
START_TEST(test_leftovers_match)
{
	const struct ms_fz_pat_range old[] = { { 0, 2 * K } }, none[] = { { 0, 2 * K } };

	/* The old [0, 2) is an exact match for this sequence's map; one of the two goes. */
	predict("window 8 4; pfn-map p0 0+2", old, 1);
	want(none, 1, NULL, 0);
	/* The head unmap fails; the tail cuts the lowest-starting entry that ends there. */
	predict("window 8 4; pfn-map p0 0+2; pfn-munmap p0 0+1", old, 1);
	{
		const struct ms_fz_pat_range l[] = { { 0, K }, { 0, 2 * K } }, f[] = { { 0, K } };

		want(l, 2, f, 1);
	}
}
END_TEST

START_TEST(test_text_parsers)
{
	const char *list = "PAT: [mem 0x0000000000000000-0x0000000000002000] uncached-minus\n"
			   "PAT: [mem 0x00000000000a0000-0x00000000000c0000] uncached-minus\n"
			   "PAT: [mem 0x0000000000001000-0x0000000000002000] uncached-minus\n"
			   "PAT: [mem 0x00000000fd000000-0x00000000fe000000] write-combining\n";
	struct ms_fz_pat_range r[4], x;
	const struct ms_fz_pat_range w[] = { { K, 2 * K }, { 0, 2 * K } };

	ck_assert_int_eq(ms_fz_pat_read(list, r, 4), 2);
	ck_assert(ms_fz_pat_same(r, 2, w, 2));
	ck_assert_int_eq(ms_fz_pat_read(list, r, 1), -E2BIG);
	ck_assert(ms_fz_pat_log_range("x86/PAT: fzw:123 freeing invalid memtype [mem "
				      "0x00000000-0x00000fff]", &x));
	ck_assert(x.start == 0 && x.end == K);
	ck_assert(!ms_fz_pat_log_range("x86/PAT: freeing memtype [mem 0x0-0xfff]", &x));
	ck_assert(!ms_fz_pat_same(w, 2, w, 1));
	ck_assert(!ms_fz_pat_same(w, 1, w + 1, 1));
	{
		const struct ms_fz_pat_range a[] = { { 0, K }, { 0, 2 * K }, { 0, 2 * K } },
					     b[] = { { 0, 2 * K }, { K, 2 * K } };
		char d[200];

		ms_fz_pat_diff(a, 3, b, 2, d, sizeof(d));
		ck_assert_str_eq(d, "expected but missing: [0-0x1000) [0-0x2000), present but not "
				 "expected: [0x1000-0x2000)");
	}
}
END_TEST

/* The reproducer expects the model's leftovers on per-VMA kernels. */
START_TEST(test_emit_pat_left)
{
	static struct ms_fz_seq s;
	const char *seqs[] = { "window 8 4; pfn-map p0 0+3; pfn-munmap p0 0+1",
			       "window 8 4; pfn-map p0 0+3; pfn-munmap p0 2+1" };
	const char *want[] = { "#define PAT_LEFT 1L\n", "#define PAT_LEFT 0L\n" };
	char err[200], *buf;
	size_t len;

	for (unsigned i = 0; i < 2; i++) {
		FILE *f = open_memstream(&buf, &len);

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(ms_fz_seq_parse(&s, seqs[i], err, sizeof(err)), 0);
		ck_assert_int_eq(ms_fz_emit_c(f, &s, &(struct ms_fz_emit_opts){ 0 }, NULL, NULL), 0);
		fclose(f);
		ck_assert_msg(strstr(buf, want[i]), "%s: no %s", seqs[i], want[i]);
		free(buf);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fuzz_pat");
	TCase *t = tcase_create("core");
	SRunner *r;
	int failed;

	tcase_add_test(t, test_frees_that_work);
	tcase_add_test(t, test_head_unmap_leaks);
	tcase_add_test(t, test_mprotect_split);
	tcase_add_test(t, test_partial_move);
	tcase_add_test(t, test_fork_after_split);
	tcase_add_test(t, test_leftovers_match);
	tcase_add_test(t, test_text_parsers);
	tcase_add_test(t, test_emit_pat_left);
	suite_add_tcase(s, t);
	r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

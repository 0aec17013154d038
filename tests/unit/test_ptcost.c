/* Unit tests for the page-table cost model (src/model/ptcost.c), against hand-computed cases. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "mmstorm/ptcost.h"

#define K 1024ULL
#define M (1024 * K)
#define G (1024 * M)
#define T (1024 * G)
#define PG 4096ULL
/* A 512 GiB slot of its own, as the pmd-share workload maps (PGD index 64). */
#define SLOT (32 * T)

static struct ms_ptcost_in layout(uint64_t start, uint64_t len, uint64_t page, uint64_t n,
				  enum ms_pt_share share)
{
	return (struct ms_ptcost_in){ .start = start, .len = len, .pop_len = len,
				      .page_bytes = page, .nproc = n, .share = share,
				      .charge_shared = share == MS_PT_SHARE_PMD,
				      .pt_levels = MS_PT_LEVELS_ALL };
}

static struct ms_ptcost run(const struct ms_ptcost_in *in)
{
	struct ms_ptcost c;

	ck_assert_int_eq(ms_ptcost(in, &c), 0);
	return c;
}

static void tables_eq(const struct ms_ptcost *c, uint64_t pte, uint64_t pmd, uint64_t pud)
{
	ck_assert_uint_eq(c->tables[MS_PT_PTE], pte);
	ck_assert_uint_eq(c->tables[MS_PT_PMD], pmd);
	ck_assert_uint_eq(c->tables[MS_PT_PUD], pud);
}

static void shared_eq(const struct ms_ptcost *c, uint64_t pte, uint64_t pmd, uint64_t pud)
{
	ck_assert_uint_eq(c->shared[MS_PT_PTE], pte);
	ck_assert_uint_eq(c->shared[MS_PT_PMD], pmd);
	ck_assert_uint_eq(c->shared[MS_PT_PUD], pud);
}

START_TEST(test_spans)
{
	ck_assert_uint_eq(ms_ptcost_spans(0, 0, MS_PT_PTE), 0);
	ck_assert_uint_eq(ms_ptcost_spans(0, PG, MS_PT_PTE), 1);
	ck_assert_uint_eq(ms_ptcost_spans(0, 2 * M, MS_PT_PTE), 1);
	ck_assert_uint_eq(ms_ptcost_spans(0, 2 * M + PG, MS_PT_PTE), 2);
	/* 4 KiB straddling a 2 MiB boundary needs both tables. */
	ck_assert_uint_eq(ms_ptcost_spans(2 * M - PG, 2 * PG, MS_PT_PTE), 2);
	ck_assert_uint_eq(ms_ptcost_spans(SLOT, G, MS_PT_PTE), 512);
	ck_assert_uint_eq(ms_ptcost_spans(SLOT + PG, G, MS_PT_PTE), 513);
	ck_assert_uint_eq(ms_ptcost_spans(SLOT + 2 * M, G, MS_PT_PMD), 2);
	ck_assert_uint_eq(ms_ptcost_spans(512 * G - G, 2 * G, MS_PT_PUD), 2);
}
END_TEST

/* 1 GiB of 4 KiB pages, own tables: 512 PTE + 1 PMD + 1 PUD = 514 pages = 2,105,344 bytes. */
START_TEST(test_private_4k_1g)
{
	struct ms_ptcost_in in = layout(SLOT, G, PG, 1, MS_PT_SHARE_NONE);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 512, 1, 1);
	shared_eq(&c, 0, 0, 0);
	ck_assert_uint_eq(c.private_bytes, 2105344);
	ck_assert_uint_eq(c.shared_bytes, 0);
	ck_assert_uint_eq(c.vmpte_bytes, 2105344);
	ck_assert_uint_eq(c.system_bytes, 2105344);
	in.nproc = 64;
	c = run(&in);
	ck_assert_uint_eq(c.system_bytes, 134742016);
	ck_assert_uint_eq(c.vmpte_sum_bytes, 134742016);
	ck_assert_uint_eq(c.unshared_bytes, 134742016);
}
END_TEST

/*
 * 64 processes x 1 GiB of 2 MiB hugetlb, 1 GiB-aligned: each has its PUD table (4 KiB) and
 * the one PMD table is shared. PageTables: 64 * 4096 + 4096 = 266,240; every VmPTE counts
 * the shared PMD: 8192 each, 524,288 in all, which is also the cost without sharing.
 */
START_TEST(test_hugetlb_shared_1g)
{
	struct ms_ptcost_in in = layout(SLOT, G, 2 * M, 64, MS_PT_SHARE_PMD);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 0, 1, 1);
	shared_eq(&c, 0, 1, 0);
	ck_assert_uint_eq(c.private_bytes, 4096);
	ck_assert_uint_eq(c.shared_bytes, 4096);
	ck_assert_uint_eq(c.vmpte_bytes, 8192);
	ck_assert_uint_eq(c.vmpte_sum_bytes, 524288);
	ck_assert_uint_eq(c.system_bytes, 266240);
	ck_assert_uint_eq(c.unshared_bytes, 524288);
	/* Without the charge (what the uapi note questions), VmPTE would be the PUD only. */
	in.charge_shared = false;
	c = run(&in);
	ck_assert_uint_eq(c.vmpte_bytes, 4096);
	ck_assert_uint_eq(c.system_bytes, 266240);
}
END_TEST

/* Sharing disabled (uffd-wp): 8 KiB per process, 64 processes = 524,288 bytes. */
START_TEST(test_hugetlb_unshared_1g)
{
	struct ms_ptcost_in in = layout(SLOT, G, 2 * M, 64, MS_PT_SHARE_NONE);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 0, 1, 1);
	shared_eq(&c, 0, 0, 0);
	ck_assert_uint_eq(c.system_bytes, 524288);
	ck_assert_uint_eq(c.vmpte_bytes, 8192);
}
END_TEST

/*
 * Start 2 MiB past the 1 GiB boundary: the mapping touches two 1 GiB spans and covers
 * neither whole, so nothing is shared: 2 PMD + 1 PUD = 12 KiB in each of the 8 processes.
 */
START_TEST(test_hugetlb_misaligned)
{
	struct ms_ptcost_in in = layout(SLOT + 2 * M, G, 2 * M, 8, MS_PT_SHARE_PMD);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 0, 2, 1);
	shared_eq(&c, 0, 0, 0);
	ck_assert_uint_eq(c.vmpte_bytes, 12288);
	ck_assert_uint_eq(c.system_bytes, 8 * 12288);
}
END_TEST

/* 1 GiB + 2 MiB from an aligned start: the first span is shared, the 2 MiB tail is not. */
START_TEST(test_hugetlb_partial_tail)
{
	struct ms_ptcost_in in = layout(SLOT, G + 2 * M, 2 * M, 4, MS_PT_SHARE_PMD);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 0, 2, 1);
	shared_eq(&c, 0, 1, 0);
	/* per process PUD + tail PMD = 8192; shared 4096 once: 4 * 8192 + 4096 = 36864 */
	ck_assert_uint_eq(c.private_bytes, 8192);
	ck_assert_uint_eq(c.system_bytes, 36864);
	ck_assert_uint_eq(c.vmpte_bytes, 12288);
}
END_TEST

/* 2 GiB aligned, and only the first 32 MiB populated: one PMD table is all that exists. */
START_TEST(test_hugetlb_populated_part)
{
	struct ms_ptcost_in in = layout(SLOT, 2 * G, 2 * M, 8, MS_PT_SHARE_PMD);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 0, 2, 1);
	shared_eq(&c, 0, 2, 0);
	ck_assert_uint_eq(c.system_bytes, 8 * 4096 + 2 * 4096);
	in.pop_len = 32 * M;
	c = run(&in);
	tables_eq(&c, 0, 1, 1);
	shared_eq(&c, 0, 1, 0);
	ck_assert_uint_eq(c.system_bytes, 8 * 4096 + 4096);
	ck_assert_uint_eq(c.vmpte_bytes, 8192);
	in.pop_len = 0;
	c = run(&in);
	tables_eq(&c, 0, 0, 0);
	ck_assert_uint_eq(c.system_bytes, 0);
}
END_TEST

/* 4 KiB pages with 16 MiB populated of a 1 GiB mapping: 8 PTE tables, 1 PMD, 1 PUD. */
START_TEST(test_private_4k_sparse)
{
	struct ms_ptcost_in in = layout(SLOT, G, PG, 8, MS_PT_SHARE_NONE);
	struct ms_ptcost c;

	in.pop_len = 16 * M;
	c = run(&in);
	tables_eq(&c, 8, 1, 1);
	ck_assert_uint_eq(c.system_bytes, 8 * 10 * 4096);
}
END_TEST

/* Shared PTE tables (4 KiB pages, fully covered 2 MiB spans): PMD and PUD stay private. */
START_TEST(test_share_pte)
{
	struct ms_ptcost_in in = layout(SLOT + PG, 4 * M, PG, 10, MS_PT_SHARE_PTE);
	struct ms_ptcost c = run(&in);

	/* [SLOT+4K, SLOT+4M+4K): 3 PTE tables, only the middle one's span is whole. */
	tables_eq(&c, 3, 1, 1);
	shared_eq(&c, 1, 0, 0);
	ck_assert_uint_eq(c.private_bytes, 4 * 4096);
	ck_assert_uint_eq(c.system_bytes, 10 * 4 * 4096 + 4096);
}
END_TEST

/*
 * mshare (2025): a 512 GiB region with 1 GiB of 4 KiB pages populated: the PUD, PMD and 512
 * PTE tables live in the region's own mm, once; an attacher has only its PGD entry.
 */
START_TEST(test_mshare_pud)
{
	struct ms_ptcost_in in = layout(SLOT, 512 * G, PG, 1000, MS_PT_SHARE_PUD);
	struct ms_ptcost c;

	in.pop_len = G;
	c = run(&in);
	tables_eq(&c, 512, 1, 1);
	shared_eq(&c, 512, 1, 1);
	ck_assert_uint_eq(c.private_bytes, 0);
	ck_assert_uint_eq(c.shared_bytes, 514 * 4096);
	ck_assert_uint_eq(c.vmpte_bytes, 0);
	ck_assert_uint_eq(c.system_bytes, 514 * 4096);
	ck_assert_uint_eq(c.unshared_bytes, 1000ULL * 514 * 4096);
}
END_TEST

/* 1 GiB pages: leaves in the PUD table, nothing below it. */
START_TEST(test_1g_pages)
{
	struct ms_ptcost_in in = layout(SLOT, 4 * G, G, 3, MS_PT_SHARE_NONE);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 0, 0, 1);
	ck_assert_uint_eq(c.system_bytes, 3 * 4096);
	/* PMD sharing has nothing to share with 1 GiB pages. */
	in.share = MS_PT_SHARE_PMD;
	c = run(&in);
	shared_eq(&c, 0, 0, 0);
	ck_assert_uint_eq(c.system_bytes, 3 * 4096);
}
END_TEST

/* Crossing a 512 GiB boundary costs a second PUD table. */
START_TEST(test_pud_boundary)
{
	struct ms_ptcost_in in = layout(512 * G - G, 2 * G, 2 * M, 2, MS_PT_SHARE_PMD);
	struct ms_ptcost c = run(&in);

	tables_eq(&c, 0, 2, 2);
	shared_eq(&c, 0, 2, 0);
	ck_assert_uint_eq(c.system_bytes, 2 * 2 * 4096 + 2 * 4096);
}
END_TEST

/* Kernels before 6.7 leave PUD tables out of PageTables; VmPTE has them all along. */
START_TEST(test_levels_counted)
{
	struct ms_ptcost_in in = layout(SLOT, G, 2 * M, 64, MS_PT_SHARE_PMD);
	struct ms_ptcost c;
	unsigned no_pud = MS_PT_LEVELS_ALL & ~(1u << MS_PT_PUD);

	ck_assert_uint_eq(ms_ptcost_levels_for_release("6.1.0-56-amd64"), no_pud);
	ck_assert_uint_eq(ms_ptcost_levels_for_release("6.6.119"), no_pud);
	ck_assert_uint_eq(ms_ptcost_levels_for_release("5.10.0"), no_pud);
	ck_assert_uint_eq(ms_ptcost_levels_for_release("6.7.0"), MS_PT_LEVELS_ALL);
	ck_assert_uint_eq(ms_ptcost_levels_for_release("6.12.117+deb12-amd64"),
			  MS_PT_LEVELS_ALL);
	ck_assert_uint_eq(ms_ptcost_levels_for_release("7.0"), MS_PT_LEVELS_ALL);
	ck_assert_uint_eq(ms_ptcost_levels_for_release("garbage"), MS_PT_LEVELS_ALL);
	ck_assert_uint_eq(ms_ptcost_levels_for_release(NULL), MS_PT_LEVELS_ALL);
	in.pt_levels = no_pud;
	c = run(&in);
	ck_assert_uint_eq(c.system_bytes, 4096);
	ck_assert_uint_eq(c.vmpte_bytes, 8192);
}
END_TEST

START_TEST(test_invalid)
{
	struct ms_ptcost_in ok = layout(SLOT, G, 2 * M, 1, MS_PT_SHARE_PMD), in;
	struct ms_ptcost c;

	in = ok;
	in.page_bytes = 64 * K;
	ck_assert_int_eq(ms_ptcost(&in, &c), -EINVAL);
	in = ok;
	in.start += PG;
	ck_assert_int_eq(ms_ptcost(&in, &c), -EINVAL);
	in = ok;
	in.len = 0;
	ck_assert_int_eq(ms_ptcost(&in, &c), -EINVAL);
	in = ok;
	in.pop_len = 2 * G;
	ck_assert_int_eq(ms_ptcost(&in, &c), -EINVAL);
	in = ok;
	in.nproc = 0;
	ck_assert_int_eq(ms_ptcost(&in, &c), -EINVAL);
	in = ok;
	in.start = UINT64_MAX - 2 * M + 1;	/* aligned, but start + len wraps */
	ck_assert_int_eq(ms_ptcost(&in, &c), -EINVAL);
	in = ok;
	in.share = (enum ms_pt_share)42;
	ck_assert_int_eq(ms_ptcost(&in, &c), -EINVAL);
	ck_assert_uint_eq(c.system_bytes, 0);
}
END_TEST

static Suite *ptcost_suite(void)
{
	Suite *s = suite_create("ptcost");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, test_spans);
	tcase_add_test(tc, test_private_4k_1g);
	tcase_add_test(tc, test_hugetlb_shared_1g);
	tcase_add_test(tc, test_hugetlb_unshared_1g);
	tcase_add_test(tc, test_hugetlb_misaligned);
	tcase_add_test(tc, test_hugetlb_partial_tail);
	tcase_add_test(tc, test_hugetlb_populated_part);
	tcase_add_test(tc, test_private_4k_sparse);
	tcase_add_test(tc, test_share_pte);
	tcase_add_test(tc, test_mshare_pud);
	tcase_add_test(tc, test_1g_pages);
	tcase_add_test(tc, test_pud_boundary);
	tcase_add_test(tc, test_levels_counted);
	tcase_add_test(tc, test_invalid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ptcost_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

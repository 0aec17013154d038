/* Unit tests: the msharefs uAPI mmstorm carries matches the mshare series' definitions. */
#include <check.h>
#include <stddef.h>
#include <stdlib.h>

#include "workloads/msharefs_uapi.h"

/*
 * Expected numbers worked out by hand from the series' headers and the asm-generic _IOC
 * layout (dir << 30 | size << 16 | type << 8 | nr; write = 1, read = 2; 'x' = 0x78):
 *   2025 CREATE_MAPPING _IOW('x', 0, 40 bytes)  = 0x40000000 | 0x280000 | 0x7800
 *   2025 UNMAP          _IOW('x', 1, 16 bytes)  = 0x40000000 | 0x100000 | 0x7801
 *   2024 GET_SIZE       _IOR('x', 0, 16 bytes)  = 0x80000000 | 0x100000 | 0x7800
 *   2024 SET_SIZE       _IOW('x', 1, 16 bytes)  = 0x40107801 (the 2025 UNMAP's number)
 *   2024 CREATE_MAPPING _IOW('x', 2, 40 bytes)  = 0x40287802
 *   2025-v1 UNMAP       _IOW('x', 3, 16 bytes)  = 0x40107803
 * struct mshare_create is three __u64 and three __u32: 36 bytes padded to 40.
 */
START_TEST(test_sizes)
{
	ck_assert_uint_eq(sizeof(struct ms_mshare_create), 40);
	ck_assert_uint_eq(sizeof(struct ms_mshare_unmap), 16);
	ck_assert_uint_eq(sizeof(struct ms_mshare_info_2024), 16);
	ck_assert_uint_eq(sizeof(struct ms_mshare_create_2024), 40);
	ck_assert_uint_eq(sizeof(struct ms_mshare_unmap_2024), 16);
}
END_TEST

START_TEST(test_offsets)
{
	ck_assert_uint_eq(offsetof(struct ms_mshare_create, region_offset), 0);
	ck_assert_uint_eq(offsetof(struct ms_mshare_create, size), 8);
	ck_assert_uint_eq(offsetof(struct ms_mshare_create, offset), 16);
	ck_assert_uint_eq(offsetof(struct ms_mshare_create, prot), 24);
	ck_assert_uint_eq(offsetof(struct ms_mshare_create, flags), 28);
	ck_assert_uint_eq(offsetof(struct ms_mshare_create, fd), 32);
	ck_assert_uint_eq(offsetof(struct ms_mshare_unmap, region_offset), 0);
	ck_assert_uint_eq(offsetof(struct ms_mshare_unmap, size), 8);
	ck_assert_uint_eq(offsetof(struct ms_mshare_create_2024, addr), 0);
	ck_assert_uint_eq(offsetof(struct ms_mshare_create_2024, fd), 32);
	ck_assert_uint_eq(offsetof(struct ms_mshare_info_2024, start), 0);
	ck_assert_uint_eq(offsetof(struct ms_mshare_info_2024, size), 8);
	ck_assert_uint_eq(offsetof(struct ms_mshare_unmap_2024, addr), 0);
}
END_TEST

START_TEST(test_ioctl_numbers)
{
	ck_assert_uint_eq(MS_MSHAREFS_CREATE_MAPPING, 0x40287800u);
	ck_assert_uint_eq(MS_MSHAREFS_UNMAP, 0x40107801u);
	ck_assert_uint_eq(MS_MSHAREFS_GET_SIZE_2024, 0x80107800u);
	ck_assert_uint_eq(MS_MSHAREFS_SET_SIZE_2024, 0x40107801u);
	ck_assert_uint_eq(MS_MSHAREFS_CREATE_MAPPING_2024, 0x40287802u);
	ck_assert_uint_eq(MS_MSHAREFS_UNMAP_2024, 0x40107803u);
}
END_TEST

/* The fields the kernel decodes: direction, type, number, size. */
START_TEST(test_ioctl_fields)
{
	ck_assert_uint_eq(_IOC_DIR(MS_MSHAREFS_CREATE_MAPPING), _IOC_WRITE);
	ck_assert_uint_eq(_IOC_TYPE(MS_MSHAREFS_CREATE_MAPPING), 'x');
	ck_assert_uint_eq(_IOC_NR(MS_MSHAREFS_CREATE_MAPPING), 0);
	ck_assert_uint_eq(_IOC_SIZE(MS_MSHAREFS_CREATE_MAPPING), 40);
	ck_assert_uint_eq(_IOC_NR(MS_MSHAREFS_UNMAP), 1);
	ck_assert_uint_eq(_IOC_DIR(MS_MSHAREFS_GET_SIZE_2024), _IOC_READ);
	ck_assert_uint_eq(_IOC_NR(MS_MSHAREFS_CREATE_MAPPING_2024), 2);
	ck_assert_uint_eq(_IOC_NR(MS_MSHAREFS_UNMAP_2024), 3);
}
END_TEST

/*
 * Interface detection rests on GET_SIZE: it must differ from every 2025 number (SET_SIZE
 * does not: it is the 2025 UNMAP, so it must never be used to probe).
 */
START_TEST(test_detection_numbers)
{
	ck_assert_uint_ne(MS_MSHAREFS_GET_SIZE_2024, MS_MSHAREFS_CREATE_MAPPING);
	ck_assert_uint_ne(MS_MSHAREFS_GET_SIZE_2024, MS_MSHAREFS_UNMAP);
	ck_assert_uint_eq(MS_MSHAREFS_SET_SIZE_2024, MS_MSHAREFS_UNMAP);
}
END_TEST

static Suite *uapi_suite(void)
{
	Suite *s = suite_create("mshare_uapi");
	TCase *tc = tcase_create("abi");

	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_offsets);
	tcase_add_test(tc, test_ioctl_numbers);
	tcase_add_test(tc, test_ioctl_fields);
	tcase_add_test(tc, test_detection_numbers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(uapi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

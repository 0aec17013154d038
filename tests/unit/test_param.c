/* Unit tests for typed parameter values: INT/SIZE/TIME/BOOL parsing, range errors, formatting. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/param.h"
#include "mmstorm/suite.h"

#define KiB 1024LL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)
#define SEC 1000000000LL

static const char *const regions[] = { "anon", "thp", "hugetlb", "shmem", NULL };

static const struct ms_param tab[] = {
	{ .name = "size", .type = MS_P_SIZE, .def = "64M", .unit = "bytes",
	  .min = 4 * KiB, .max = 64 * GiB },
	{ .name = "workers", .type = MS_P_INT, .def = "2", .unit = "", .min = 1, .max = 1024 },
	{ .name = "hold", .type = MS_P_TIME, .def = "10ms", .unit = "ns", .min = 1000000,
	  .max = 7 * 86400 * SEC },
	{ .name = "verify", .type = MS_P_BOOL, .def = "yes", .min = 1, .max = 0 },
	{ .name = "region", .type = MS_P_ENUM, .def = "anon", .min = 1, .max = 0,
	  .choices = regions },
	{ .name = "label", .type = MS_P_STRING, .def = "", .min = 1, .max = 0 },
	{ .name = "offset", .type = MS_P_INT, .def = "0", .unit = "pages", .min = 1, .max = 0 },
	{ .name = NULL },
};

static const struct ms_param *P(const char *name)
{
	const struct ms_param *p = ms_param_find(tab, name);

	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(test_int)
{
	static const struct {
		const char *text;
		int64_t want;
	} ok[] = {
		{ "0", 0 }, { "42", 42 }, { "-5", -5 }, { "+7", 7 }, { "007", 7 },
		{ "0x1f", 31 }, { "0X1F", 31 }, { "-0x10", -16 },
		{ "9223372036854775807", INT64_MAX },
		{ "-9223372036854775808", INT64_MIN },
		{ "0x7fffffffffffffff", INT64_MAX },
	};
	static const char *const bad[] = {
		"", "-", "+", "0x", "1k", "12a", " 1", "1 ", "1.5", "--1", "0x1g", "1e3",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		ck_assert_msg(ms_parse_int(ok[i].text, &v) == 0, "'%s' rejected", ok[i].text);
		ck_assert_msg(v == ok[i].want, "'%s' -> %" PRId64, ok[i].text, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ms_parse_int(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_int_overflow)
{
	static const char *const big[] = {
		"9223372036854775808", "-9223372036854775809", "0x8000000000000000",
		"18446744073709551616", "99999999999999999999999", "0x10000000000000000",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		ck_assert_msg(ms_parse_int(big[i], &v) == -ERANGE, "'%s' not ERANGE", big[i]);
	/* A syntax error after an overflowing number is still a syntax error. */
	ck_assert_int_eq(ms_parse_int("99999999999999999999999x", &v), -EINVAL);
}
END_TEST

START_TEST(test_size)
{
	static const struct {
		const char *text;
		int64_t want;
	} ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "4K", 4 * KiB }, { "4k", 4 * KiB },
		{ "64M", 64 * MiB }, { "64m", 64 * MiB }, { "64MiB", 64 * MiB },
		{ "64MB", 64 * MiB }, { "64mib", 64 * MiB }, { "2G", 2 * GiB }, { "2GiB", 2 * GiB },
		{ "1T", TiB }, { "3t", 3 * TiB }, { "512B", 512 }, { "512b", 512 },
		{ "8388607T", 8388607 * TiB },
		{ "9223372036854775807", INT64_MAX },
	};
	static const char *const bad[] = {
		"", "K", "M", "-1", "1.5G", "64Q", "64 M", " 64M", "64M ", "0x10", "64KiBB",
		"64Ki", "64iB", "64MBB", "64KM", "1e3", "64 ", "G64",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -1;
		ck_assert_msg(ms_parse_size(ok[i].text, &v) == 0, "'%s' rejected", ok[i].text);
		ck_assert_msg(v == ok[i].want, "'%s' -> %" PRId64, ok[i].text, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ms_parse_size(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_size_overflow)
{
	static const char *const big[] = {
		"99999999999T", "8388608T", "8589934592G", "9007199254740992K",
		"9223372036854775808", "99999999999999999999999999M",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		ck_assert_msg(ms_parse_size(big[i], &v) == -ERANGE, "'%s' not ERANGE", big[i]);
}
END_TEST

START_TEST(test_time)
{
	static const struct {
		const char *text;
		int64_t want;
	} ok[] = {
		{ "0", 0 }, { "30", 30 * SEC }, { "30s", 30 * SEC }, { "500ms", 500000000 },
		{ "500MS", 500000000 }, { "1us", 1000 }, { "7ns", 7 }, { "2m", 120 * SEC },
		{ "1h", 3600 * SEC }, { "7d", 7 * 86400 * SEC }, { "0ms", 0 },
		{ "9223372036854775807ns", INT64_MAX }, { "106751d", 106751LL * 86400 * SEC },
	};
	static const char *const bad[] = {
		"", "s", "5x", "1e3", "1.5s", "-1s", "5 s", " 5s", "5sec", "5mss", "0x10s", "5min",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -1;
		ck_assert_msg(ms_parse_time(ok[i].text, &v) == 0, "'%s' rejected", ok[i].text);
		ck_assert_msg(v == ok[i].want, "'%s' -> %" PRId64, ok[i].text, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ms_parse_time(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_time_overflow)
{
	static const char *const big[] = {
		"106752d", "9223372036854775808ns", "9223372037s", "9223372037", "2562048h",
		"99999999999999999999999ms",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		ck_assert_msg(ms_parse_time(big[i], &v) == -ERANGE, "'%s' not ERANGE", big[i]);
}
END_TEST

START_TEST(test_bool)
{
	static const char *const yes[] = { "1", "true", "TRUE", "yes", "Yes", "on", "ON" };
	static const char *const no[] = { "0", "false", "False", "no", "NO", "off", "Off" };
	static const char *const bad[] = { "", "2", "y", "n", "truee", "enable", " 1", "-1" };
	int64_t v;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = 7;
		ck_assert_int_eq(ms_parse_bool(yes[i], &v), 0);
		ck_assert_int_eq(v, 1);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = 7;
		ck_assert_int_eq(ms_parse_bool(no[i], &v), 0);
		ck_assert_int_eq(v, 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ms_parse_bool(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_param_range)
{
	struct ms_pval v;
	char err[256];

	ck_assert_int_eq(ms_param_parse(P("size"), "4K", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(v.i, 4096);
	ck_assert_int_eq(ms_param_parse(P("size"), "64G", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_param_parse(P("size"), "4095", &v, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "expected size (bytes, 4K..64G), found '4095'");
	ck_assert_int_eq(ms_param_parse(P("size"), "99999999999T", &v, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "expected size (bytes, 4K..64G), found '99999999999T'");
	ck_assert_int_eq(ms_param_parse(P("workers"), "0", &v, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "expected integer (1..1024), found '0'");
	ck_assert_int_eq(ms_param_parse(P("workers"), "1025", &v, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(ms_param_parse(P("workers"), "1024", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(v.i, 1024);
	ck_assert_int_eq(ms_param_parse(P("hold"), "999us", &v, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "expected time (ns, 1ms..7d), found '999us'");
	ck_assert_int_eq(ms_param_parse(P("hold"), "8d", &v, err, sizeof(err)), -EINVAL);
	/* min > max: no range, any integer goes. */
	ck_assert_int_eq(ms_param_parse(P("offset"), "-3", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(v.i, -3);
	ck_assert_int_eq(ms_param_parse(P("offset"), "x", &v, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "expected integer (pages), found 'x'");
}
END_TEST

START_TEST(test_param_enum_bool_string)
{
	struct ms_pval v;
	char err[256], big[400];

	ck_assert_int_eq(ms_param_parse(P("region"), "hugetlb", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(v.i, 2);
	ck_assert_str_eq(v.s, "hugetlb");
	ck_assert_int_eq(ms_param_parse(P("region"), "THP", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(v.i, 1);
	ck_assert_str_eq(v.s, "thp");
	ck_assert_int_eq(ms_param_parse(P("region"), "anonx", &v, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "expected one of (anon|thp|hugetlb|shmem), found 'anonx'");
	ck_assert_int_eq(ms_param_parse(P("verify"), "off", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(v.i, 0);
	ck_assert_int_eq(ms_param_parse(P("verify"), "maybe", &v, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "expected bool ("));
	ck_assert_int_eq(ms_param_parse(P("label"), "hello world", &v, err, sizeof(err)), 0);
	ck_assert_str_eq(v.s, "hello world");
	memset(big, 'a', sizeof(big));
	big[MS_PARAM_STR_MAX - 1] = '\0';
	ck_assert_int_eq(ms_param_parse(P("label"), big, &v, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(v.s), MS_PARAM_STR_MAX - 1);
	big[MS_PARAM_STR_MAX - 1] = 'a';
	big[MS_PARAM_STR_MAX] = '\0';
	ck_assert_int_eq(ms_param_parse(P("label"), big, &v, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(ms_param_parse(P("label"), "tab\there", &v, err, sizeof(err)), -EINVAL);
}
END_TEST

/* What an error quotes back is one safe line: escaped, cut short, even from binary input. */
START_TEST(test_found_is_safe)
{
	struct ms_pval v;
	char err[256], text[300];

	ck_assert_int_eq(ms_param_parse(P("size"), "1\n2\x01\xff\\", &v, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "expected size (bytes, 4K..64G), found '1\\x0a2\\x01\\xff\\\\'");
	memset(text, '9', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	ck_assert_int_eq(ms_param_parse(P("workers"), text, &v, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "..."));
	ck_assert_uint_lt(strlen(err), 120);
	ck_assert_ptr_null(strchr(err, '\n'));
	/* A short err buffer truncates, never overflows. */
	ck_assert_int_eq(ms_param_parse(P("workers"), text, &v, err, 8), -EINVAL);
	ck_assert_uint_eq(strlen(err), 7);
	ck_assert_int_eq(ms_param_parse(P("workers"), text, &v, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_format)
{
	static const struct {
		const char *param;
		int64_t v;
		const char *want;
	} cases[] = {
		{ "size", 64 * MiB, "64M" }, { "size", 4096, "4K" }, { "size", 1536, "1536" },
		{ "size", 3 * TiB, "3T" }, { "size", 1025 * MiB, "1025M" }, { "size", 0, "0" },
		{ "hold", 30 * SEC, "30s" }, { "hold", 1500000000, "1500ms" },
		{ "hold", 90 * SEC, "90s" }, { "hold", 3600 * SEC, "1h" }, { "hold", 7, "7ns" },
		{ "hold", 0, "0" }, { "hold", 86400 * SEC, "1d" }, { "workers", -12, "-12" },
		{ "verify", 1, "true" }, { "verify", 0, "false" }, { "region", 3, "shmem" },
	};
	struct ms_pval v = { 0 };
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v.i = cases[i].v;
		ms_param_format(P(cases[i].param), &v, buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].want);
	}
	strcpy(v.s, "free text");
	ms_param_format(P("label"), &v, buf, sizeof(buf));
	ck_assert_str_eq(buf, "free text");
	v.i = 64 * MiB;
	ms_param_format(P("size"), &v, buf, 3);
	ck_assert_str_eq(buf, "64");
}
END_TEST

/* format(parse(x)) parses back to the same value, for values all over the range. */
START_TEST(test_roundtrip)
{
	static const char *const params[] = { "size", "hold", "workers", "verify", "region" };
	struct ms_param wide[] = {
		{ .name = "size", .type = MS_P_SIZE, .min = 1, .max = 0 },
		{ .name = "hold", .type = MS_P_TIME, .min = 1, .max = 0 },
		{ .name = "workers", .type = MS_P_INT, .min = 1, .max = 0 },
		{ .name = "verify", .type = MS_P_BOOL, .min = 1, .max = 0 },
		{ .name = "region", .type = MS_P_ENUM, .min = 1, .max = 0, .choices = regions },
		{ .name = NULL },
	};
	uint64_t x = 0x243f6a8885a308d3ULL;
	char buf[64], err[256];

	for (int n = 0; n < 20000; n++) {
		const struct ms_param *p = ms_param_find(wide, params[n % 5]);
		struct ms_pval a = { 0 }, b;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Mostly "round" values with a random shift, so suffixes get used. */
		a.i = (int64_t)((x >> 40) << ((x & 0x1f) + (n & 1) * 10)) & INT64_MAX;
		if (p->type == MS_P_BOOL)
			a.i &= 1;
		if (p->type == MS_P_ENUM)
			a.i %= 4;
		ms_param_format(p, &a, buf, sizeof(buf));
		ck_assert_msg(ms_param_parse(p, buf, &b, err, sizeof(err)) == 0, "%s: '%s': %s",
			      p->name, buf, err);
		ck_assert_msg(a.i == b.i, "%s: %" PRId64 " -> '%s' -> %" PRId64, p->name, a.i, buf,
			      b.i);
	}
}
END_TEST

START_TEST(test_count_find)
{
	ck_assert_uint_eq(ms_param_count(tab), 7);
	ck_assert_uint_eq(ms_param_count(NULL), 0);
	ck_assert_ptr_eq(ms_param_find(tab, "hold"), &tab[2]);
	ck_assert_ptr_null(ms_param_find(tab, "hol"));
	ck_assert_ptr_null(ms_param_find(NULL, "hold"));
}
END_TEST

/* Every default of the case keys parses with its own definition (the parser relies on it). */
START_TEST(test_case_param_defaults)
{
	struct ms_pval v;
	char err[256];
	size_t n = ms_param_count(ms_case_params);

	ck_assert_uint_ge(n, 7);
	for (size_t i = 0; i < n; i++) {
		const struct ms_param *p = &ms_case_params[i];

		if (!p->def) {
			ck_assert_str_eq(p->name, "workload");
			continue;
		}
		ck_assert_msg(ms_param_parse(p, p->def, &v, err, sizeof(err)) == 0, "%s: %s",
			      p->name, err);
	}
	ck_assert_int_eq(ms_param_parse(ms_param_find(ms_case_params, "timeout"), "60s", &v, err,
					sizeof(err)), 0);
	ck_assert_int_eq(ms_param_parse(ms_param_find(ms_case_params, "repeat"), "10001", &v,
					err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "expected integer (1..10000), found '10001'");
}
END_TEST

static Suite *param_suite(void)
{
	Suite *s = suite_create("param");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_int);
	tcase_add_test(tc, test_int_overflow);
	tcase_add_test(tc, test_size);
	tcase_add_test(tc, test_size_overflow);
	tcase_add_test(tc, test_time);
	tcase_add_test(tc, test_time_overflow);
	tcase_add_test(tc, test_bool);
	tcase_add_test(tc, test_param_range);
	tcase_add_test(tc, test_param_enum_bool_string);
	tcase_add_test(tc, test_found_is_safe);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_count_find);
	tcase_add_test(tc, test_case_param_defaults);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(param_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

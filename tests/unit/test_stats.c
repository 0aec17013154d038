/* Unit tests for the statistics behind `mmstorm compare`, against tables and hand-worked values. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "mmstorm/stats.h"

/* ---- quantiles ---- */

START_TEST(test_quantile_type7)
{
	/* R: quantile(1:4, c(0, .25, .5, .9, 1)) -> 1.00 1.75 2.50 3.70 4.00 */
	double v[] = { 4, 1, 3, 2 };

	ck_assert_double_eq_tol(ms_quantile(v, 4, 0), 1, 1e-12);
	ck_assert_double_eq_tol(ms_quantile(v, 4, 0.25), 1.75, 1e-12);
	ck_assert_double_eq_tol(ms_quantile(v, 4, 0.5), 2.5, 1e-12);
	ck_assert_double_eq_tol(ms_quantile(v, 4, 0.9), 3.7, 1e-12);
	ck_assert_double_eq_tol(ms_quantile(v, 4, 1), 4, 1e-12);
	/* unsorted input is left alone */
	ck_assert_double_eq(v[0], 4);
	ck_assert(isnan(ms_quantile(v, 0, 0.5)));
	ck_assert_double_eq(ms_median((double[]){ 3, 1, 2 }, 3), 2);
}
END_TEST

START_TEST(test_robust_cv)
{
	/* median 3; |deviations| 2 1 0 1 97 -> MAD 1; one wild value does not matter */
	double v[] = { 1, 2, 3, 4, 100 }, flat[] = { 5, 5, 5 }, most[] = { 5, 5, 6 };

	ck_assert_double_eq_tol(ms_robust_cv(v, 5), 1.4826 / 3, 1e-12);
	ck_assert_double_eq(ms_robust_cv(flat, 3), 0);
	ck_assert(isnan(ms_robust_cv(v, 1)));
	/* two of three equal: the MAD is 0 though 6 differs; the mean absolute deviation from the
	 * median (1/3) x 1.2533, over the median 5, stands in */
	ck_assert_double_eq_tol(ms_robust_cv(most, 3), 1.2533 / 3 / 5, 1e-12);
	ck_assert(isinf(ms_robust_cv((double[]){ 0, 0, 1 }, 3)));
	ck_assert(isinf(ms_robust_cv((double[]){ -1, 0, 1 }, 3)));
}
END_TEST

/* ---- Mann-Whitney ---- */

/*
 * Hollander & Wolfe (1973), p. 110, the two-sample example of R's ?wilcox.test:
 *   wilcox.test(x, y, alternative = "g")  ->  W = 35, p-value = 0.1272
 */
START_TEST(test_mw_r_example)
{
	double x[] = { 0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46 };
	double y[] = { 1.15, 0.88, 0.90, 0.74, 1.21 };
	struct ms_mw r;

	ck_assert_int_eq(ms_mann_whitney(x, 10, y, 5, &r), 0);
	ck_assert(r.exact);
	ck_assert_uint_eq(r.tie_groups, 0);
	ck_assert_double_eq(r.u, 35);
	ck_assert_double_eq_tol(r.p_greater, 0.1272, 0.00005);
	ck_assert_double_eq_tol(r.p, 2 * r.p_greater, 1e-12);
	/* P(U <= 35) and P(U >= 35) overlap in P(U = 35) > 0 */
	ck_assert(r.p_less + r.p_greater > 1);
}
END_TEST

/*
 * Data whose U (pairs x > y) is u, without any ties: y = 0..n-1, and the x values sit
 * between them (x_i - 0.5 + i/1000 has exactly k y's below it).
 */
static void data_with_u(unsigned u, unsigned m, unsigned n, double *x, double *y)
{
	unsigned rem = u;

	for (unsigned j = 0; j < n; j++)
		y[j] = j;
	for (unsigned i = 0; i < m; i++) {
		unsigned k = rem > n ? n : rem;

		rem -= k;
		x[i] = k - 0.5 + i * 1e-3;
	}
}

/*
 * Critical values of U from the standard two-tailed tables (e.g. Siegel & Castellan,
 * Nonparametric Statistics, Table J; reprinted in most textbooks): the largest U with
 * p <= alpha. U = crit is significant, U = crit + 1 is not.
 */
START_TEST(test_mw_critical_values)
{
	static const struct { unsigned m, n; double alpha; unsigned crit; } table[] = {
		{ 5, 5, 0.05, 2 }, { 5, 5, 0.01, 0 },
		{ 10, 10, 0.05, 23 }, { 10, 10, 0.01, 16 },
		{ 20, 20, 0.05, 127 }, { 20, 20, 0.01, 105 },
		{ 8, 12, 0.05, 22 }, { 8, 12, 0.01, 15 },
		{ 6, 9, 0.05, 10 }, { 6, 9, 0.01, 5 },
	};
	double x[32], y[32];
	struct ms_mw r;

	for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
		data_with_u(table[t].crit, table[t].m, table[t].n, x, y);
		ck_assert_int_eq(ms_mann_whitney(x, table[t].m, y, table[t].n, &r), 0);
		ck_assert_double_eq(r.u, table[t].crit);
		ck_assert_msg(r.p <= table[t].alpha, "m=%u n=%u U=%u: p %g > %g", table[t].m,
			      table[t].n, table[t].crit, r.p, table[t].alpha);
		data_with_u(table[t].crit + 1, table[t].m, table[t].n, x, y);
		ck_assert_int_eq(ms_mann_whitney(x, table[t].m, y, table[t].n, &r), 0);
		ck_assert_msg(r.p > table[t].alpha, "m=%u n=%u U=%u: p %g <= %g", table[t].m,
			      table[t].n, table[t].crit + 1, r.p, table[t].alpha);
	}
}
END_TEST

/*
 * By hand: x = {1, 2, 3}, y = {4, 5, 6}: U = 0, and only 1 of the C(6, 3) = 20 equally
 * likely arrangements has U <= 0: one-sided 1/20, two-sided 0.1. Swapped, U = 9.
 */
START_TEST(test_mw_hand_exact)
{
	double x[] = { 1, 2, 3 }, y[] = { 4, 5, 6 };
	struct ms_mw r;

	ck_assert_int_eq(ms_mann_whitney(x, 3, y, 3, &r), 0);
	ck_assert_double_eq(r.u, 0);
	ck_assert_double_eq_tol(r.p_less, 0.05, 1e-12);
	ck_assert_double_eq_tol(r.p_greater, 1, 1e-12);
	ck_assert_double_eq_tol(r.p, 0.1, 1e-12);
	ck_assert_int_eq(ms_mann_whitney(y, 3, x, 3, &r), 0);
	ck_assert_double_eq(r.u, 9);
	ck_assert_double_eq_tol(r.p_greater, 0.05, 1e-12);
	ck_assert_double_eq_tol(r.p, 0.1, 1e-12);
	/* n = 1 each: two arrangements, p = 1 whatever the data */
	ck_assert_int_eq(ms_mann_whitney((double[]){ 1 }, 1, (double[]){ 2 }, 1, &r), 0);
	ck_assert_double_eq_tol(r.p, 1, 1e-12);
	ck_assert_int_eq(ms_mann_whitney(x, 0, y, 3, &r), -EINVAL);
	ck_assert_int_eq(ms_mann_whitney((double[]){ NAN }, 1, y, 3, &r), -EINVAL);
}
END_TEST

/*
 * Exact with ties, by hand. x = {1, 2, 2}, y = {2, 3, 4}. Sorted: 1 2 2 2 3 4, mid-ranks
 * 1 3 3 3 5 6, doubled 2 6 6 6 10 12. x's doubled rank sum: 2 + 6 + 6 = 14 (U = 7 - 6 = 1).
 * The 20 ways to pick 3 of the 6 doubled ranks, by how many 6s they take:
 *   none: {2,10,12} = 24 (1 way); one 6 (3 ways each): 6+2+10 = 18, 6+2+12 = 20, 6+10+12 = 28;
 *   two 6s (3 ways each): 12+2 = 14, 12+10 = 22, 12+12 = 24; three: 18 (1 way).
 * So S = 14: 3, 18: 4, 20: 3, 22: 3, 24: 4, 28: 3. P(S <= 14) = 3/20, two-sided 0.3.
 */
START_TEST(test_mw_hand_ties)
{
	double x[] = { 1, 2, 2 }, y[] = { 2, 3, 4 };
	struct ms_mw r;

	ck_assert_int_eq(ms_mann_whitney(x, 3, y, 3, &r), 0);
	ck_assert(r.exact);
	ck_assert_uint_eq(r.tie_groups, 1);
	ck_assert_double_eq(r.u, 1);
	ck_assert_double_eq_tol(r.p_less, 0.15, 1e-12);
	ck_assert_double_eq_tol(r.p_greater, 1, 1e-12);
	ck_assert_double_eq_tol(r.p, 0.3, 1e-12);
}
END_TEST

/*
 * Normal approximation with ties, by hand (n = 50 each, beyond the exact range):
 * x = 0..9 five times each, y = 1..10 five times each. Ties: 0 (5 values), 1..9 (10 each),
 * 10 (5). Mid-ranks: 0 -> 3, v -> 10 v + 0.5, 10 -> 98. R_x = 5*3 + 5 * sum(10 v + 0.5,
 * v = 1..9) = 15 + 5 * 454.5 = 2287.5; U = R_x - 50*51/2 = 1012.5, mean 1250.
 * Tie term T = 2 (5^3 - 5) + 9 (10^3 - 10) = 9150; var = 50*50/12 ((101) - T / (100*99)).
 * z = (1012.5 - 1250 + 0.5) / sqrt(var) = -237 / 144.39 = -1.6414, p = 2 Phi(z) = 0.1007
 * (R: wilcox.test(x, y) -> W = 1012.5, p-value = 0.1007).
 */
START_TEST(test_mw_normal_ties)
{
	double x[50], y[50], var, z;
	struct ms_mw r;

	for (int i = 0; i < 50; i++) {
		x[i] = i % 10;
		y[i] = i % 10 + 1;
	}
	ck_assert_int_eq(ms_mann_whitney(x, 50, y, 50, &r), 0);
	ck_assert(!r.exact);
	ck_assert_uint_eq(r.tie_groups, 11);
	ck_assert_double_eq(r.u, 1012.5);
	var = 2500.0 / 12 * (101 - 9150.0 / 9900);
	z = (1012.5 - 1250 + 0.5) / sqrt(var);
	ck_assert_double_eq_tol(z, -1.6414, 1e-4);
	ck_assert_double_eq_tol(r.z, z, 1e-9);
	ck_assert_double_eq_tol(r.p, erfc(-z / sqrt(2)), 1e-9);
	ck_assert_double_eq_tol(r.p, 0.1007, 0.00005);
}
END_TEST

/* At the exact limit the exact p and the normal score agree closely; above it, normal. */
START_TEST(test_mw_exact_vs_normal)
{
	double x[60], y[60];
	struct ms_mw e, n;
	struct ms_rng rng;

	ms_rng_seed(&rng, 5);
	for (int i = 0; i < 60; i++) {
		x[i] = ms_rng_normal(&rng);
		y[i] = ms_rng_normal(&rng) + 0.5;
	}
	ck_assert_int_eq(ms_mann_whitney(x, 49, y, 49, &e), 0);
	ck_assert_int_eq(ms_mann_whitney(x, 49, y, 50, &n), 0);
	ck_assert(e.exact && !n.exact);
	ck_assert(e.p < 0.2);
	ck_assert_double_eq_tol(e.p, erfc(fabs(e.z) / sqrt(2)), 0.005);
}
END_TEST

START_TEST(test_mw_min_p)
{
	/* 2 / C(10, 5) = 2 / 252; 2 / C(8, 4) = 2 / 70 */
	ck_assert_double_eq_tol(ms_mw_min_p(5, 5), 2.0 / 252, 1e-15);
	ck_assert_double_eq_tol(ms_mw_min_p(4, 4), 2.0 / 70, 1e-15);
	ck_assert_uint_eq(ms_mw_min_repeats(0.01), 5);
	ck_assert_uint_eq(ms_mw_min_repeats(0.05), 4);
	ck_assert_uint_eq(ms_mw_min_repeats(0.001), 7);	/* 2 / C(14, 7) = 2 / 3432 */
}
END_TEST

/* ---- random numbers ---- */

START_TEST(test_rng)
{
	struct ms_rng a, b;
	double sum = 0, sq = 0;
	uint64_t x;

	/* The first splitmix64 output for seed 0 is the well-known 0xe220a8397b1dcdaf. */
	ms_rng_seed(&a, 0);
	ck_assert_uint_eq(a.s[0], 0xe220a8397b1dcdafULL);
	ms_rng_seed(&a, 42);
	ms_rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(ms_rng_next(&a), ms_rng_next(&b));
	for (int i = 0; i < 100000; i++) {
		double z = ms_rng_normal(&a);

		sum += z;
		sq += z * z;
		x = ms_rng_below(&b, 7);
		ck_assert_uint_lt(x, 7);
		ck_assert(ms_rng_uniform(&b) < 1);
	}
	ck_assert_double_eq_tol(sum / 100000, 0, 0.02);
	ck_assert_double_eq_tol(sq / 100000, 1, 0.02);
	ck_assert_uint_ne(ms_seed_from(1, "a/b"), ms_seed_from(1, "a/c"));
	ck_assert_uint_eq(ms_seed_from(1, "a/b"), ms_seed_from(1, "a/b"));
}
END_TEST

/* ---- bootstrap ---- */

START_TEST(test_bootstrap_fixed_seed)
{
	double x[40], y[40];
	struct ms_ci c1, c2, c3;
	struct ms_rng rng;

	ms_rng_seed(&rng, 9);
	for (int i = 0; i < 40; i++) {
		x[i] = 100 * exp(0.05 * ms_rng_normal(&rng));
		y[i] = 110 * exp(0.05 * ms_rng_normal(&rng));
	}
	ck_assert_int_eq(ms_bootstrap_median_ratio(x, 40, y, 40, 0.95, 2000, 7, &c1), 0);
	ck_assert_int_eq(ms_bootstrap_median_ratio(x, 40, y, 40, 0.95, 2000, 7, &c2), 0);
	/* same seed: the same interval to the bit */
	ck_assert_double_eq(c1.lo, c2.lo);
	ck_assert_double_eq(c1.hi, c2.hi);
	ck_assert_double_eq(c1.est, ms_median(y, 40) / ms_median(x, 40));
	/* another seed moves the ends only a little: the interval is a property of the data */
	ck_assert_int_eq(ms_bootstrap_median_ratio(x, 40, y, 40, 0.95, 2000, 8, &c3), 0);
	ck_assert_double_eq_tol(c1.lo, c3.lo, 0.01);
	ck_assert_double_eq_tol(c1.hi, c3.hi, 0.01);
	ck_assert(c1.lo < c1.est && c1.est < c1.hi);
	/* the true ratio 1.1 is inside, 1 is not */
	ck_assert(c1.lo < 1.1 && 1.1 < c1.hi);
	ck_assert(c1.lo > 1);
}
END_TEST

START_TEST(test_bootstrap_edges)
{
	double x[] = { 3, 3, 3, 3, 3 }, z[] = { 0, 0, 0 }, w[] = { 0, 0, 1 };
	struct ms_ci c;

	ck_assert_int_eq(ms_bootstrap_median_ratio(x, 5, x, 5, 0.95, 500, 1, &c), 0);
	ck_assert_double_eq(c.est, 1);
	ck_assert_double_eq(c.lo, 1);
	ck_assert_double_eq(c.hi, 1);
	ck_assert_int_eq(ms_bootstrap_median_ratio(z, 3, z, 3, 0.95, 500, 1, &c), 0);
	ck_assert_double_eq(c.est, 1);
	ck_assert_int_eq(ms_bootstrap_median_ratio(z, 3, x, 5, 0.95, 500, 1, &c), 0);
	ck_assert(isinf(c.est));
	ck_assert_int_eq(ms_bootstrap_median_ratio(w, 3, x, 5, 0.95, 500, 1, &c), 0);
	ck_assert(isinf(c.est) && isinf(c.hi));
	ck_assert_int_eq(ms_bootstrap_median_ratio(x, 0, x, 5, 0.95, 500, 1, &c), -EINVAL);
	ck_assert_int_eq(ms_bootstrap_median_ratio(x, 5, x, 5, 1.5, 500, 1, &c), -EINVAL);
}
END_TEST

/* ---- normal distribution and power ---- */

START_TEST(test_normal)
{
	ck_assert_double_eq_tol(ms_norm_cdf(0), 0.5, 1e-15);
	ck_assert_double_eq_tol(ms_norm_quantile(0.975), 1.959964, 1e-6);
	ck_assert_double_eq_tol(ms_norm_quantile(0.995), 2.575829, 1e-6);
	ck_assert_double_eq_tol(ms_norm_quantile(0.01), -2.326348, 1e-6);
	ck_assert_double_eq_tol(ms_norm_cdf(ms_norm_quantile(1e-9)), 1e-9, 1e-15);
}
END_TEST

START_TEST(test_power)
{
	size_t n;

	/* no effect: found "B larger" at most half of alpha of the time (one tail) */
	ck_assert(ms_mw_power(10, 0, 0.05, 0.01, 4000, 3) <= 0.01);
	ck_assert_double_eq(ms_mw_power(10, 0.5, 0.01, 0.01, 500, 3), 1);
	/* small noise: the fewest repeats that can reach alpha at all decide */
	ck_assert_uint_eq(ms_mw_repeats_needed(0.10, 0.02, 0.01, 0.99), 5);
	ck_assert_uint_eq(ms_mw_repeats_needed(0.10, 0, 0.01, 0.99), 5);
	ck_assert_uint_eq(ms_mw_repeats_needed(0.10, INFINITY, 0.01, 0.99), SIZE_MAX);
	/* simulated range: power at n is enough, at n - 1 it is not (each n its own seed) */
	n = ms_mw_repeats_needed(0.10, 0.05, 0.01, 0.99);
	ck_assert_uint_gt(n, 5);
	ck_assert_uint_lt(n, 60);
	ck_assert(ms_mw_power(n, 0.10, 0.05, 0.01, 2000, n) >= 0.99);
	ck_assert(ms_mw_power(n - 1, 0.10, 0.05, 0.01, 2000, n - 1) < 0.99);
	/* more noise, more repeats; the large-sample answer agrees with a simulation */
	ck_assert_uint_gt(ms_mw_repeats_needed(0.10, 0.10, 0.01, 0.99), n);
	n = ms_mw_repeats_needed(0.05, 0.08, 0.01, 0.99);
	ck_assert_uint_gt(n, 60);
	ck_assert_double_eq_tol(ms_mw_power(n, 0.05, 0.08, 0.01, 2000, 11), 0.99, 0.01);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_quantile_type7);
	tcase_add_test(tc, test_robust_cv);
	tcase_add_test(tc, test_mw_r_example);
	tcase_add_test(tc, test_mw_critical_values);
	tcase_add_test(tc, test_mw_hand_exact);
	tcase_add_test(tc, test_mw_hand_ties);
	tcase_add_test(tc, test_mw_normal_ties);
	tcase_add_test(tc, test_mw_exact_vs_normal);
	tcase_add_test(tc, test_mw_min_p);
	tcase_add_test(tc, test_rng);
	tcase_add_test(tc, test_bootstrap_fixed_seed);
	tcase_add_test(tc, test_bootstrap_edges);
	tcase_add_test(tc, test_normal);
	tcase_add_test(tc, test_power);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stats_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

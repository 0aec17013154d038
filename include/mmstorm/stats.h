/* Statistics for A/B comparison: quantiles, Mann-Whitney U, bootstrap intervals, test power. */
#ifndef MMSTORM_STATS_H
#define MMSTORM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- order statistics ---- */

void ms_sort_doubles(double *v, size_t n);
/* Quantile q (0..1) of sorted v, R's type 7 (linear between order statistics); NAN if n is 0. */
double ms_quantile_sorted(const double *v, size_t n, double q);
/* Same on unsorted v (copied; v is left alone). NAN if n is 0 or out of memory. */
double ms_quantile(const double *v, size_t n, double q);
double ms_median(const double *v, size_t n);
/* 1.4826 * MAD / |median|: a relative spread that one wild repeat does not inflate (when over
 * half the values are equal, 1.2533 * mean absolute deviation instead of the MAD). NAN for
 * n < 2; INFINITY when the median is 0 but the values are not all 0. */
double ms_robust_cv(const double *v, size_t n);

/* ---- Mann-Whitney U (Wilcoxon rank-sum), two-sided ---- */

/*
 * Exact when both samples are smaller than MS_MW_EXACT_MAX: without ties, the null
 * distribution of U (R's pwilcox); with ties, the exact permutation distribution of the
 * mid-rank sum given the ties (coin's exact wilcox_test). Otherwise the normal approximation
 * with tie and continuity correction (R's wilcox.test(exact = FALSE, correct = TRUE)).
 * The two-sided p is min(1, 2 * min(P(U <= u), P(U >= u))).
 */
#define MS_MW_EXACT_MAX 50

struct ms_mw {
	double u;		/* pairs (x_i, y_j) with x_i > y_j, ties counted 1/2 (R's W) */
	double z;		/* corrected normal score (also given when exact) */
	double p;		/* two-sided */
	double p_less;		/* one-sided: x tends to be smaller than y */
	double p_greater;	/* one-sided: x tends to be larger than y */
	bool exact;
	unsigned tie_groups;	/* groups of equal values across both samples */
};

/* 0, -EINVAL (an empty sample or a NaN), -ENOMEM. */
int ms_mann_whitney(const double *x, size_t nx, const double *y, size_t ny, struct ms_mw *r);
/* The smallest two-sided p the exact test can reach: 2 / C(nx + ny, nx). */
double ms_mw_min_p(size_t nx, size_t ny);
/* Smallest n with ms_mw_min_p(n, n) <= alpha: below it nothing can ever be significant. */
size_t ms_mw_min_repeats(double alpha);

/* ---- random numbers (xoshiro256**, seeded through splitmix64) ---- */

struct ms_rng {
	uint64_t s[4];
};

void ms_rng_seed(struct ms_rng *r, uint64_t seed);
uint64_t ms_rng_next(struct ms_rng *r);
double ms_rng_uniform(struct ms_rng *r);		/* [0, 1) */
double ms_rng_normal(struct ms_rng *r);		/* standard normal */
uint64_t ms_rng_below(struct ms_rng *r, uint64_t n);	/* uniform in [0, n), n > 0 */
/* A seed from text (FNV-1a), so a case/metric gets the same bootstrap draws every time. */
uint64_t ms_seed_from(uint64_t seed, const char *text);

/* ---- bootstrap ---- */

struct ms_ci {
	double est;	/* median(y) / median(x) of the data */
	double lo, hi;	/* percentile interval of the resampled ratios */
};

/*
 * Percentile bootstrap interval at level (e.g. 0.95) of median(y) / median(x): resamples
 * draws of each sample with replacement from a generator seeded with seed. A ratio with a
 * median(x) of 0 is 1 when median(y) is 0 too, else +INFINITY. 0, -EINVAL, -ENOMEM.
 */
int ms_bootstrap_median_ratio(const double *x, size_t nx, const double *y, size_t ny,
			      double level, unsigned resamples, uint64_t seed, struct ms_ci *ci);

/* ---- normal distribution, power ---- */

double ms_norm_cdf(double z);
double ms_norm_quantile(double p);	/* inverse of ms_norm_cdf, p in (0, 1) */

/*
 * Power of the two-sided Mann-Whitney test at alpha to see y = (1 + effect) * x when each
 * sample is 1 + cv * N(0, 1), n per side, by simulation (trials, seed): the share of trials
 * with p < alpha and y found larger.
 */
double ms_mw_power(size_t n, double effect, double cv, double alpha, unsigned trials,
		   uint64_t seed);
/*
 * Repeats per side needed for that power (e.g. 0.99): simulated up to 200 repeats, beyond
 * that the normal-theory estimate 2 (z_{1-alpha/2} + z_power)^2 (cv / effect)^2 / (3 / pi).
 * Never below ms_mw_min_repeats(alpha). SIZE_MAX for a cv that is not finite.
 */
size_t ms_mw_repeats_needed(double effect, double cv, double alpha, double power);

#endif

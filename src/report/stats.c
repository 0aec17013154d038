/* Statistics for A/B comparison: quantiles, Mann-Whitney U, bootstrap intervals, test power. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/stats.h"

/* ---- order statistics ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void ms_sort_doubles(double *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_double);
}

double ms_quantile_sorted(const double *v, size_t n, double q)
{
	double h, lo;
	size_t i;

	if (!n)
		return NAN;
	if (q <= 0)
		return v[0];
	if (q >= 1)
		return v[n - 1];
	h = (double)(n - 1) * q;
	lo = floor(h);
	i = (size_t)lo;
	if (i + 1 >= n || h == lo || v[i + 1] == v[i])
		return v[i];
	/* Infinite ratios (a reference median of 0) must not turn into inf - inf = NaN. */
	if (isinf(v[i]) || isinf(v[i + 1]))
		return v[i + 1];
	return v[i] + (h - lo) * (v[i + 1] - v[i]);
}

double ms_quantile(const double *v, size_t n, double q)
{
	double *s, r;

	if (!n)
		return NAN;
	s = malloc(n * sizeof(*s));
	if (!s)
		return NAN;
	memcpy(s, v, n * sizeof(*s));
	ms_sort_doubles(s, n);
	r = ms_quantile_sorted(s, n, q);
	free(s);
	return r;
}

double ms_median(const double *v, size_t n)
{
	return ms_quantile(v, n, 0.5);
}

double ms_robust_cv(const double *v, size_t n)
{
	double med, mad, *dev;

	if (n < 2)
		return NAN;
	med = ms_median(v, n);
	dev = malloc(n * sizeof(*dev));
	if (!dev || isnan(med)) {
		free(dev);
		return NAN;
	}
	for (size_t i = 0; i < n; i++)
		dev[i] = fabs(v[i] - med);
	mad = ms_median(dev, n);
	if (mad == 0) {
		/* More than half the values are equal: the MAD says 0 even when the rest vary,
		 * so take the mean absolute deviation (x 1.2533 for a normal sd) instead. */
		for (size_t i = 0; i < n; i++)
			mad += dev[i] / (double)n;
		mad *= 1.2533 / 1.4826;
	}
	free(dev);
	if (mad == 0)
		return 0;
	if (med == 0)
		return INFINITY;
	return 1.4826 * mad / fabs(med);
}

/* k-th smallest (0-based) of v[0..n), reordering v: Hoare's selection. */
static double select_kth(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		double pivot = v[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;

		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				double t = v[i];

				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return v[k];
	}
	return v[k];
}

/* Median of v[0..n), n > 0, reordering v (type 7 at q = 0.5: the mean of the middle two). */
static double median_inplace(double *v, size_t n)
{
	double hi = select_kth(v, n, n / 2), lo;

	if (n % 2)
		return hi;
	/* After selection everything below n/2 is <= hi: the other middle value is their max. */
	lo = v[0];
	for (size_t i = 1; i < n / 2; i++)
		if (v[i] > lo)
			lo = v[i];
	return (lo + hi) / 2;
}

/* ---- normal distribution ---- */

double ms_norm_cdf(double z)
{
	return 0.5 * erfc(-z / M_SQRT2);
}

double ms_norm_quantile(double p)
{
	double lo = -40, hi = 40;

	if (!(p > 0))
		return -INFINITY;
	if (!(p < 1))
		return INFINITY;
	/* Bisection on erfc: slow only by the standards of a hot loop, exact to the last bit. */
	for (int i = 0; i < 200 && hi - lo > 1e-15; i++) {
		double mid = (lo + hi) / 2;

		if (ms_norm_cdf(mid) < p)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

/* ---- Mann-Whitney U ---- */

struct ranked {
	double v;
	int group;	/* 0: x, 1: y */
};

static int cmp_ranked(const void *a, const void *b)
{
	return cmp_double(&((const struct ranked *)a)->v, &((const struct ranked *)b)->v);
}

/*
 * Doubled mid-ranks (integers: the mid-rank of positions a..b is (a + b) / 2) of the combined
 * sample, in sorted order; returns the doubled rank sum of x, counts tie groups and sums
 * t^3 - t over them.
 */
static long long rank2(struct ranked *all, size_t n, long long *r2, unsigned *groups,
		       double *tie_sum)
{
	long long sum_x = 0;
	size_t i = 0;

	qsort(all, n, sizeof(*all), cmp_ranked);
	*groups = 0;
	*tie_sum = 0;
	while (i < n) {
		size_t j = i;

		while (j + 1 < n && all[j + 1].v == all[i].v)
			j++;
		for (size_t k = i; k <= j; k++) {
			r2[k] = (long long)(i + 1) + (long long)(j + 1);
			if (!all[k].group)
				sum_x += r2[k];
		}
		if (j > i) {
			double t = (double)(j - i + 1);

			(*groups)++;
			*tie_sum += t * t * t - t;
		}
		i = j + 1;
	}
	return sum_x;
}

/*
 * Counts of U = 0..nx*ny over the C(nx+ny, nx) equally likely arrangements without ties:
 * the coefficients of the Gaussian binomial [nx+ny choose nx]_q, built as
 * prod_{i=1..nx} (1 - q^(ny+i)) / (1 - q^i). 128-bit integers keep them exact up to
 * C(98, 49) ~ 2.5e28; the caller turns them into a cumulative distribution.
 */
static double *u_null_cdf(size_t nx, size_t ny)
{
	size_t deg = nx * ny + nx + ny + 1;
	__int128 *c = calloc(deg + 1, sizeof(*c)), total = 0, run = 0;
	double *cdf = malloc((nx * ny + 1) * sizeof(*cdf));

	if (!c || !cdf) {
		free(c);
		free(cdf);
		return NULL;
	}
	c[0] = 1;
	for (size_t i = 1; i <= nx; i++) {
		size_t a = ny + i;

		for (size_t k = deg; k >= a; k--)
			c[k] -= c[k - a];
		for (size_t k = i; k <= deg; k++)
			c[k] += c[k - i];
	}
	for (size_t u = 0; u <= nx * ny; u++)
		total += c[u];
	for (size_t u = 0; u <= nx * ny; u++) {
		run += c[u];
		cdf[u] = (double)run / (double)total;
	}
	free(c);
	return cdf;
}

/*
 * P(U <= u) and P(U >= u) from a null cdf over 0..m (u an integer in range). Without ties U is
 * symmetric about m / 2, so the upper tail is a lower one: no 1 - cdf cancellation.
 */
static void tails_from_cdf(const double *cdf, size_t m, double u, double *le, double *ge)
{
	size_t k = (size_t)u;

	*le = cdf[k];
	*ge = cdf[m - k];
}

/*
 * Exact tails of the doubled rank sum of x with ties: dp[k][s] counts the subsets of k of the
 * N elements whose doubled ranks add up to s. Only additions, so doubles stay accurate.
 */
static int exact_ties(const long long *r2, size_t n, size_t nx, long long s_obs, double *le,
		      double *ge)
{
	size_t k_max = nx, width;
	long long s_max = 0;
	double *dp, below = 0, above = 0, total = 0;

	for (size_t i = n - k_max; i < n; i++)
		s_max += r2[i];
	width = (size_t)s_max + 1;
	dp = calloc((k_max + 1) * width, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp[0] = 1;
	for (size_t i = 0; i < n; i++) {
		size_t top = i + 1 < k_max ? i + 1 : k_max;

		for (size_t k = top; k >= 1; k--) {
			double *dst = dp + k * width, *src = dp + (k - 1) * width;

			for (long long s = s_max; s >= r2[i]; s--)
				dst[s] += src[s - r2[i]];
		}
	}
	for (long long s = 0; s <= s_max; s++) {
		double c = dp[k_max * width + (size_t)s];

		total += c;
		if (s <= s_obs)
			below += c;
		if (s >= s_obs)
			above += c;
	}
	free(dp);
	*le = below / total;
	*ge = above / total;
	return 0;
}

static void mw_normal(struct ms_mw *r, double nx, double ny, double tie_sum)
{
	double n = nx + ny, mu = nx * ny / 2, d = r->u - mu;
	double var = nx * ny / 12 * ((n + 1) - tie_sum / (n * (n - 1)));
	double sd = var > 0 ? sqrt(var) : 0, corr = d > 0 ? 0.5 : d < 0 ? -0.5 : 0;

	if (sd == 0) {
		r->z = 0;
		r->p = r->p_less = r->p_greater = 1;
		return;
	}
	r->z = (d - corr) / sd;
	r->p_less = ms_norm_cdf((d + 0.5) / sd);
	r->p_greater = 1 - ms_norm_cdf((d - 0.5) / sd);
	r->p = 2 * fmin(ms_norm_cdf(r->z), 1 - ms_norm_cdf(r->z));
}

int ms_mann_whitney(const double *x, size_t nx, const double *y, size_t ny, struct ms_mw *r)
{
	size_t n = nx + ny;
	struct ranked *all;
	long long *r2, s2;
	double tie_sum, le, ge;
	int ret = 0;

	if (!nx || !ny)
		return -EINVAL;
	for (size_t i = 0; i < nx; i++)
		if (isnan(x[i]))
			return -EINVAL;
	for (size_t i = 0; i < ny; i++)
		if (isnan(y[i]))
			return -EINVAL;
	all = malloc(n * sizeof(*all));
	r2 = malloc(n * sizeof(*r2));
	if (!all || !r2) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < nx; i++)
		all[i] = (struct ranked){ x[i], 0 };
	for (size_t i = 0; i < ny; i++)
		all[nx + i] = (struct ranked){ y[i], 1 };
	memset(r, 0, sizeof(*r));
	s2 = rank2(all, n, r2, &r->tie_groups, &tie_sum);
	r->u = (double)s2 / 2 - (double)nx * (double)(nx + 1) / 2;
	mw_normal(r, (double)nx, (double)ny, tie_sum);
	if (nx >= MS_MW_EXACT_MAX || ny >= MS_MW_EXACT_MAX)
		goto out_free;
	if (!r->tie_groups) {
		double *cdf = u_null_cdf(nx, ny);

		if (!cdf) {
			ret = -ENOMEM;
			goto out_free;
		}
		tails_from_cdf(cdf, nx * ny, r->u, &le, &ge);
		free(cdf);
	} else if ((ret = exact_ties(r2, n, nx, s2, &le, &ge))) {
		goto out_free;
	}
	r->exact = true;
	r->p_less = le;
	r->p_greater = ge;
	r->p = fmin(1, 2 * fmin(le, ge));
out_free:
	free(all);
	free(r2);
	return ret;
}

double ms_mw_min_p(size_t nx, size_t ny)
{
	double c = 1;

	/* C(nx + ny, nx) as a running product: exact enough, and no overflow for huge n. */
	for (size_t i = 1; i <= nx; i++)
		c = c * (double)(ny + i) / (double)i;
	return fmin(1, 2 / c);
}

size_t ms_mw_min_repeats(double alpha)
{
	size_t n = 1;

	while (ms_mw_min_p(n, n) > alpha && n < 1000)
		n++;
	return n;
}

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void ms_rng_seed(struct ms_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t ms_rng_next(struct ms_rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double ms_rng_uniform(struct ms_rng *r)
{
	return (double)(ms_rng_next(r) >> 11) * 0x1.0p-53;
}

double ms_rng_normal(struct ms_rng *r)
{
	double u, v, s;

	/* Marsaglia's polar method; the second value is dropped so draws stay independent of
	 * how many the caller asked for before. */
	do {
		u = 2 * ms_rng_uniform(r) - 1;
		v = 2 * ms_rng_uniform(r) - 1;
		s = u * u + v * v;
	} while (s >= 1 || s == 0);
	return u * sqrt(-2 * log(s) / s);
}

uint64_t ms_rng_below(struct ms_rng *r, uint64_t n)
{
	uint64_t limit = -n % n, x;

	/* Reject the few values that would make low results likelier than high ones. */
	do {
		x = ms_rng_next(r);
	} while (x < limit);
	return x % n;
}

uint64_t ms_seed_from(uint64_t seed, const char *text)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- bootstrap ---- */

static double ratio_of(double num, double den)
{
	if (den == 0)
		return num == 0 ? 1 : INFINITY;
	return num / den;
}

int ms_bootstrap_median_ratio(const double *x, size_t nx, const double *y, size_t ny,
			      double level, unsigned resamples, uint64_t seed, struct ms_ci *ci)
{
	double *sx, *sy, *ratios;
	struct ms_rng rng;
	int ret = 0;

	if (!nx || !ny || !resamples || !(level > 0 && level < 1))
		return -EINVAL;
	sx = malloc(nx * sizeof(*sx));
	sy = malloc(ny * sizeof(*sy));
	ratios = malloc(resamples * sizeof(*ratios));
	if (!sx || !sy || !ratios) {
		ret = -ENOMEM;
		goto out_free;
	}
	memcpy(sx, x, nx * sizeof(*sx));
	memcpy(sy, y, ny * sizeof(*sy));
	ci->est = ratio_of(median_inplace(sy, ny), median_inplace(sx, nx));
	ms_rng_seed(&rng, seed);
	for (unsigned b = 0; b < resamples; b++) {
		for (size_t i = 0; i < nx; i++)
			sx[i] = x[ms_rng_below(&rng, nx)];
		for (size_t i = 0; i < ny; i++)
			sy[i] = y[ms_rng_below(&rng, ny)];
		ratios[b] = ratio_of(median_inplace(sy, ny), median_inplace(sx, nx));
	}
	ms_sort_doubles(ratios, resamples);
	ci->lo = ms_quantile_sorted(ratios, resamples, (1 - level) / 2);
	ci->hi = ms_quantile_sorted(ratios, resamples, 1 - (1 - level) / 2);
out_free:
	free(sx);
	free(sy);
	free(ratios);
	return ret;
}

/* ---- power ---- */

/* U of x against y, both without ties (continuous draws), by ranks. */
static double u_noties(struct ranked *all, const double *x, const double *y, size_t n)
{
	double sum = 0;

	for (size_t i = 0; i < n; i++) {
		all[i] = (struct ranked){ x[i], 0 };
		all[n + i] = (struct ranked){ y[i], 1 };
	}
	qsort(all, 2 * n, sizeof(*all), cmp_ranked);
	for (size_t i = 0; i < 2 * n; i++)
		if (!all[i].group)
			sum += (double)(i + 1);
	return sum - (double)n * (double)(n + 1) / 2;
}

double ms_mw_power(size_t n, double effect, double cv, double alpha, unsigned trials,
		   uint64_t seed)
{
	double *x = malloc(n * sizeof(*x)), *y = malloc(n * sizeof(*y)), *cdf = NULL;
	struct ranked *all = malloc(2 * n * sizeof(*all));
	double nn = (double)n, mu = nn * nn / 2, sd = sqrt(nn * nn * (2 * nn + 1) / 12);
	struct ms_rng rng;
	unsigned hits = 0;
	double power = NAN;

	if (!n || !trials || !x || !y || !all)
		goto out_free;
	if (n < MS_MW_EXACT_MAX && !(cdf = u_null_cdf(n, n)))
		goto out_free;
	ms_rng_seed(&rng, seed);
	for (unsigned t = 0; t < trials; t++) {
		double u, le, ge;

		for (size_t i = 0; i < n; i++)
			x[i] = 1 + cv * ms_rng_normal(&rng);
		for (size_t i = 0; i < n; i++)
			y[i] = (1 + effect) * (1 + cv * ms_rng_normal(&rng));
		u = u_noties(all, x, y, n);
		if (cdf) {
			tails_from_cdf(cdf, n * n, u, &le, &ge);
		} else {
			double d = u - mu, corr = d > 0 ? 0.5 : d < 0 ? -0.5 : 0;

			le = ms_norm_cdf((d - corr) / sd);
			ge = 1 - le;
		}
		/* Found: significant, and y the larger (x's U small). */
		if (fmin(1, 2 * fmin(le, ge)) < alpha && u < mu)
			hits++;
	}
	power = (double)hits / trials;
out_free:
	free(x);
	free(y);
	free(all);
	free(cdf);
	return power;
}

/*
 * Large samples: U is close to normal under the alternative too, with the exact mean and
 * variance (Lehmann): for X ~ N(0, 1) and Y ~ N(d, s^2), with q = P(X < Y),
 * qx = P(X < Y, X < Y') and qy = P(X < Y, X' < Y), the count of pairs x < y has mean
 * n^2 q and variance n^2 (q (1 - q) + (n - 1) (qx - q^2) + (n - 1) (qy - q^2)).
 * qx and qy are one-dimensional integrals: Simpson's rule is plenty.
 */
static void lehmann(double d, double s, double *q, double *qx, double *qy)
{
	const int steps = 4000;
	double lo = fmin(-9, d - 9 * s), hi = fmax(9, d + 9 * s), h = (hi - lo) / steps;
	double sx = 0, sy = 0;

	for (int i = 0; i <= steps; i++) {
		double t = lo + i * h, w = i == 0 || i == steps ? 1 : i % 2 ? 4 : 2;
		double above = 1 - ms_norm_cdf((t - d) / s), below = ms_norm_cdf(t);

		sx += w * exp(-t * t / 2) / sqrt(2 * M_PI) * above * above;
		sy += w * exp(-(t - d) * (t - d) / (2 * s * s)) / (s * sqrt(2 * M_PI)) * below *
		      below;
	}
	*q = ms_norm_cdf(d / sqrt(1 + s * s));
	*qx = sx * h / 3;
	*qy = sy * h / 3;
}

static double power_normal(size_t n, double alpha, double q, double qx, double qy)
{
	double nn = (double)n, mu0 = nn * nn / 2, sd0 = sqrt(nn * nn * (2 * nn + 1) / 12);
	double var = nn * nn * (q * (1 - q) + (nn - 1) * (qx - q * q) + (nn - 1) * (qy - q * q));
	double crit = mu0 + ms_norm_quantile(1 - alpha / 2) * sd0 + 0.5;

	if (var <= 0)
		return nn * nn * q >= crit ? 1 : 0;
	return 1 - ms_norm_cdf((crit - nn * nn * q) / sqrt(var));
}

#define POWER_TRIALS 2000
#define POWER_SIM_MAX 60

static bool enough(size_t n, double effect, double cv, double alpha, double power)
{
	return ms_mw_power(n, effect, cv, alpha, POWER_TRIALS, n) >= power;
}

/* Bisect on simulated power between lo (not enough) and hi (enough, or the search bound). */
static size_t needed_sim(size_t lo, size_t hi, double effect, double cv, double alpha,
			 double power)
{
	while (hi - lo > 1) {
		size_t n = lo + (hi - lo) / 2;

		if (enough(n, effect, cv, alpha, power))
			hi = n;
		else
			lo = n;
	}
	return hi;
}

size_t ms_mw_repeats_needed(double effect, double cv, double alpha, double power)
{
	size_t n_min = ms_mw_min_repeats(alpha), lo, hi;
	double q, qx, qy;

	if (!isfinite(cv) || !(effect > 0) || cv < 0)
		return SIZE_MAX;
	if (cv == 0 || enough(n_min, effect, cv, alpha, power))
		return n_min;
	lehmann(effect / cv, 1 + effect, &q, &qx, &qy);
	/* The normal theory is a little optimistic for small n (ranks are discrete): it gives
	 * where to start, and the simulation with the exact test decides below POWER_SIM_MAX. */
	for (hi = n_min; hi < POWER_SIM_MAX && power_normal(hi, alpha, q, qx, qy) < power; hi++)
		;
	if (hi >= POWER_SIM_MAX) {
		while (power_normal(hi, alpha, q, qx, qy) < power && hi < 100000000)
			hi += hi / 64 + 1;
		lo = hi - hi / 64 - 1;
		while (hi - lo > 1) {
			size_t n = lo + (hi - lo) / 2;

			if (power_normal(n, alpha, q, qx, qy) >= power)
				hi = n;
			else
				lo = n;
		}
		return hi;
	}
	lo = hi > n_min ? hi - 1 : n_min;
	while (lo > n_min && enough(lo, effect, cv, alpha, power))
		lo--;
	while (hi < POWER_SIM_MAX && !enough(hi, effect, cv, alpha, power)) {
		lo = hi;
		hi = hi + hi / 4 + 1 < POWER_SIM_MAX ? hi + hi / 4 + 1 : POWER_SIM_MAX;
	}
	return needed_sim(lo, hi, effect, cv, alpha, power);
}

/* Log-linear latency histogram shared by forked case processes (see metrics.h). */
#include <string.h>
#include <time.h>

#include <mmstorm/metrics.h>

/*
 * HdrHistogram's layout with a unit of 1 ns: bucket b holds values of magnitude 2^(b+10) ..
 * 2^(b+11) - 1 in steps of 2^b. Bucket 0 also covers 0 .. 1023 (its lower half), every later
 * bucket only its upper half, so index = b * HALF + (v >> b).
 */
#define HALF_BITS (MS_HIST_SUB_BITS - 1)
#define HALF (MS_HIST_SUB / 2)

_Static_assert(MS_HIST_LEN == (MS_HIST_BUCKETS + 1) * HALF, "histogram length");
_Static_assert((uint64_t)MS_HIST_SUB << (MS_HIST_BUCKETS - 1) > MS_HIST_MAX,
	       "buckets must reach MS_HIST_MAX");

static inline size_t hist_index(uint64_t v)
{
	/* OR-ing in the sub-bucket mask keeps everything below MS_HIST_SUB in bucket 0. */
	unsigned int bucket = 64 - __builtin_clzll(v | (MS_HIST_SUB - 1)) - MS_HIST_SUB_BITS;

	return ((size_t)bucket << HALF_BITS) + (size_t)(v >> bucket);
}

size_t ms_hist_index(uint64_t v)
{
	return hist_index(v > MS_HIST_MAX ? MS_HIST_MAX : v);
}

uint64_t ms_hist_lowest_equiv(size_t idx)
{
	size_t bucket = idx >> HALF_BITS;
	uint64_t sub = idx & (HALF - 1);

	if (bucket == 0)
		return sub;
	/* Bucket b's sub-buckets HALF .. SUB-1 are stored at (b + 1) * HALF + (sub - HALF). */
	bucket--;
	return (sub + HALF) << bucket;
}

uint64_t ms_hist_highest_equiv(size_t idx)
{
	size_t bucket = idx >> HALF_BITS;

	return ms_hist_lowest_equiv(idx) + ((1ULL << (bucket ? bucket - 1 : 0)) - 1);
}

void ms_hist_init(struct ms_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static inline void atomic_min(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	/* Only the first samples of a run ever write: later ones fail the compare. */
	while (v < cur && !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

static inline void atomic_max(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (v > cur && !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

/* Relaxed is enough: readers only look at the totals after the recorders are done. */
static inline void hist_record_n(struct ms_hist *h, uint64_t v, uint64_t n)
{
	if (__builtin_expect(v == 0, 0)) {
		v = 1;
	} else if (__builtin_expect(v > MS_HIST_MAX, 0)) {
		v = MS_HIST_MAX;
		__atomic_fetch_add(&h->saturated, n, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&h->counts[hist_index(v)], n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum, v * n, __ATOMIC_RELAXED);
	atomic_min(&h->min, v);
	atomic_max(&h->max, v);
}

void ms_hist_record(struct ms_hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

void ms_hist_record_n(struct ms_hist *h, uint64_t v, uint64_t n)
{
	if (n)
		hist_record_n(h, v, n);
}

void ms_hist_merge(struct ms_hist *dst, const struct ms_hist *src)
{
	size_t i;

	for (i = 0; i < MS_HIST_LEN; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	dst->saturated += src->saturated;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/*
 * Rank (1-based) of the sample at percentile q: ceil(q / 100 * count). q is a decimal the user
 * wrote (99.9) that a double cannot hold exactly, so a product within rounding error of an
 * integer is taken as that integer; otherwise p99.9 of 1000 samples would be rank 1000.
 */
static uint64_t percentile_rank(double q, uint64_t count)
{
	double x;
	uint64_t r;

	if (!(q > 0))	/* also NaN */
		return 1;
	if (q >= 100)
		return count;
	x = q * (double)count / 100.0;
	r = (uint64_t)x;
	if (x - (double)r > x * 1e-12)
		r++;
	if (r < 1)
		return 1;
	return r < count ? r : count;
}

/* Values for the ascending ranks[0..n-1], in one pass over the counts. */
static void values_at_ranks(const struct ms_hist *h, const uint64_t *ranks, uint64_t *vals,
			    size_t n)
{
	uint64_t seen = 0;
	size_t i, k = 0;

	for (i = 0; i < MS_HIST_LEN && k < n; i++) {
		seen += h->counts[i];
		while (k < n && seen >= ranks[k]) {
			vals[k] = ms_hist_highest_equiv(i);
			if (vals[k] > h->max)
				vals[k] = h->max;
			k++;
		}
	}
	/* Only reached if .count ran ahead of .counts[] while someone was still recording. */
	for (; k < n; k++)
		vals[k] = h->max;
}

uint64_t ms_hist_percentile(const struct ms_hist *h, double q)
{
	uint64_t rank, val;

	if (!h->count)
		return 0;
	rank = percentile_rank(q, h->count);
	values_at_ranks(h, &rank, &val, 1);
	return val;
}

double ms_hist_mean(const struct ms_hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

void ms_hist_summarize(const struct ms_hist *h, struct ms_hist_summary *s)
{
	static const double qs[] = { 50, 90, 99, 99.9 };
	uint64_t ranks[4], vals[4];
	size_t i;

	memset(s, 0, sizeof(*s));
	if (!h->count)
		return;
	for (i = 0; i < 4; i++)
		ranks[i] = percentile_rank(qs[i], h->count);
	values_at_ranks(h, ranks, vals, 4);
	s->count = h->count;
	s->min = h->min;
	s->max = h->max;
	s->p50 = vals[0];
	s->p90 = vals[1];
	s->p99 = vals[2];
	s->p999 = vals[3];
	s->mean = ms_hist_mean(h);
}

uint64_t ms_now_ns(void)
{
	struct timespec ts;

	/* Cannot fail for CLOCK_MONOTONIC with a valid pointer; 0 makes a broken clock obvious. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

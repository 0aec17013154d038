/* Latency histograms (log-linear, HdrHistogram-like), counters and gauges for case processes. */
#ifndef MMSTORM_METRICS_H
#define MMSTORM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Log-linear histogram covering 1 ns .. 100 s with 3 significant decimal digits: values are
 * grouped in power-of-two buckets, each split into MS_HIST_SUB linear sub-buckets, so the
 * relative error of any reported value is below 1/1000 (HdrHistogram's scheme). Memory is
 * fixed and the struct contains no pointers, so it can live in MAP_SHARED memory and be
 * recorded into from many forked processes at once with relaxed atomic adds (no locks, no
 * syscalls). Values below 1 are recorded as 1 and above MS_HIST_MAX as MS_HIST_MAX (counted
 * in .saturated).
 */
#define MS_HIST_SUB_BITS 11			/* 2048 sub-buckets: 3 significant digits */
#define MS_HIST_SUB (1u << MS_HIST_SUB_BITS)
#define MS_HIST_MAX 100000000000ULL		/* 100 s in ns */
#define MS_HIST_BUCKETS 27			/* enough half-buckets to reach 2^37 > 1e11 */
#define MS_HIST_LEN ((MS_HIST_BUCKETS + 1) * (MS_HIST_SUB / 2))

struct ms_hist {
	uint64_t count;
	uint64_t sum;		/* for the mean; wraps only after ~5.8e8 samples of 100 s */
	uint64_t min;		/* UINT64_MAX when empty */
	uint64_t max;
	uint64_t saturated;
	uint64_t counts[MS_HIST_LEN];
};

void ms_hist_init(struct ms_hist *h);
/* Lock-free, safe from many processes sharing h. */
void ms_hist_record(struct ms_hist *h, uint64_t v);
void ms_hist_record_n(struct ms_hist *h, uint64_t v, uint64_t n);
/* dst += src (same layout). Not atomic with respect to concurrent recorders of dst. */
void ms_hist_merge(struct ms_hist *dst, const struct ms_hist *src);
/* Value at percentile q (0..100): the highest value equivalent to the bucket holding rank q. */
uint64_t ms_hist_percentile(const struct ms_hist *h, double q);
double ms_hist_mean(const struct ms_hist *h);

/* Index <-> value mapping, exposed for serialisation (sparse bucket lists) and tests. */
size_t ms_hist_index(uint64_t v);
uint64_t ms_hist_lowest_equiv(size_t idx);
uint64_t ms_hist_highest_equiv(size_t idx);

struct ms_hist_summary {
	uint64_t count, min, max, p50, p90, p99, p999;
	double mean;
};
void ms_hist_summarize(const struct ms_hist *h, struct ms_hist_summary *s);

/* Monotonic clock in ns (vDSO, no syscall on x86-64). */
uint64_t ms_now_ns(void);

#endif

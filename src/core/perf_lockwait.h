/* mmap_lock wait times from perf samples: pairing per thread, and the sampler (core-private). */
#ifndef MMSTORM_PERF_LOCKWAIT_H
#define MMSTORM_PERF_LOCKWAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mmstorm/metrics.h"

/*
 * One sample of mmap_lock:mmap_lock_start_locking (acquire false) or
 * mmap_lock:mmap_lock_acquire_returned (acquire true), with its CLOCK_MONOTONIC time.
 */
struct ms_lw_sample {
	uint64_t time_ns;
	uint32_t tid;
	bool acquire;
};

struct ms_lw_stats {
	uint64_t pairs;		/* waits recorded into the histogram */
	uint64_t unpaired_starts;	/* a start whose acquire was lost or came after the end */
	/*
	 * An acquire with no start pending: mmap_write_downgrade() (munmap, mremap, brk) reports
	 * the read lock it turns into as acquired without starting to wait; or the start was lost.
	 */
	uint64_t acquires_without_start;
	uint64_t lost;		/* samples the kernel dropped (ring buffer full) */
	uint64_t dropped;	/* samples we had no room to hold for ordering */
};

/*
 * Samples come from per-CPU ring buffers read one after another, so a thread that starts
 * waiting on one CPU and acquires on another can show up out of order. Fed samples are held
 * and sorted; ms_lw_flush(upto) pairs those with time <= upto: the reader passes the time it
 * started its previous round, by which every earlier sample was in some buffer. Each thread
 * waits for one mmap_lock at a time, so a start pairs with the next acquire of its thread.
 */
struct ms_lw;

struct ms_lw *ms_lw_new(struct ms_hist *h);
void ms_lw_free(struct ms_lw *lw);
void ms_lw_feed(struct ms_lw *lw, const struct ms_lw_sample *s);
void ms_lw_flush(struct ms_lw *lw, uint64_t upto);
void ms_lw_lost(struct ms_lw *lw, uint64_t n);
/* Counts so far; starts still waiting for their acquire count as unpaired_starts. */
void ms_lw_get_stats(const struct ms_lw *lw, struct ms_lw_stats *st);

/*
 * The sampler: both tracepoints (ids from tracefs) opened with libperf in sampling mode on the
 * calling process, inherited, one ring buffer per CPU (the kernel refuses to mmap an inherited
 * counter of one task on every CPU, cpu == -1: every child would write to one buffer). A thread
 * of the calling process drains the buffers while sampling runs. 0, or -errno with why.
 */
struct ms_lw_sampler;

int ms_lw_sampler_open(struct ms_lw_sampler **sp, uint64_t start_id, uint64_t acquire_id,
		       char *why, size_t len);
/* Start sampling into h (not NULL). 0 or -errno. */
int ms_lw_sampler_start(struct ms_lw_sampler *s, struct ms_hist *h);
/* Stop, read what is left, pair everything. Safe if never started. */
void ms_lw_sampler_stop(struct ms_lw_sampler *s);
/* {"pairs", "unpaired_starts", "acquires_without_start", "lost", "dropped"}, or NULL. */
json_t *ms_lw_sampler_json(const struct ms_lw_sampler *s);
void ms_lw_sampler_close(struct ms_lw_sampler *s);

#endif

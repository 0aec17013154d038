/* mmap_lock wait times from perf samples: pairing per thread, and the sampler (core-private). */
#ifndef MMSTORM_PERF_LOCKWAIT_H
#define MMSTORM_PERF_LOCKWAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
	uint64_t outside_run;	/* waits that began before the window or ended after it */
};

/*
 * Samples come from per-CPU ring buffers read one after another, so a thread that starts
 * waiting on one CPU and acquires on another can show up out of order. Fed samples are held
 * and sorted; ms_lw_flush(upto) pairs those with time <= upto: the reader passes the time it
 * started its previous round, by which every earlier sample was in some buffer. Each thread
 * waits for one mmap_lock at a time, so a start pairs with the next acquire of its thread.
 * Only waits inside the window [lo, hi] (ms_lw_window(), default everything) are recorded and
 * counted; pairing still follows every sample, so a wait straddling lo is not an acquire
 * without start.
 */
struct ms_lw;

struct ms_lw *ms_lw_new(struct ms_hist *h);
void ms_lw_free(struct ms_lw *lw);
void ms_lw_window(struct ms_lw *lw, uint64_t lo, uint64_t hi);
void ms_lw_feed(struct ms_lw *lw, const struct ms_lw_sample *s);
void ms_lw_flush(struct ms_lw *lw, uint64_t upto);
void ms_lw_lost(struct ms_lw *lw, uint64_t n);
/* Counts so far; starts still waiting for their acquire count as unpaired_starts. */
void ms_lw_get_stats(const struct ms_lw *lw, struct ms_lw_stats *st);

/*
 * The sampler, in the runner: both tracepoints opened with libperf in sampling mode on another
 * process (the case, still waiting at its gate), inherited, one ring buffer per CPU (the kernel
 * refuses to mmap an inherited counter of one task on every CPU, cpu == -1: every child would
 * write to one buffer), enabled at once. Every thread and child the process makes from then on
 * is followed; the buffers are mapped and read in the caller, nothing lives in the sampled
 * process. 0, or -errno with why.
 */
struct ms_lw_sampler;

int ms_lw_sampler_open(struct ms_lw_sampler **sp, pid_t pid, uint64_t start_id,
		       uint64_t acquire_id, char *why, size_t len);
/*
 * Read the buffers and pair what is ordered. start_ns / end_ns point at the sampled process's
 * run window, read here after the round's clock: 0 = not reached yet, 1 = being taken (the
 * process stores 1, then reads the clock, then stores the time; so seeing 0 after our clock
 * read means the time will be later than it), else CLOCK_MONOTONIC ns. Call it often enough
 * that a buffer (512 KiB per CPU) does not fill: every 20-50 ms.
 */
void ms_lw_sampler_drain(struct ms_lw_sampler *s, const uint64_t *start_ns,
			 const uint64_t *end_ns);
/* Disable, read what is left, pair everything in the final window. Idempotent. */
void ms_lw_sampler_stop(struct ms_lw_sampler *s, const uint64_t *start_ns,
			const uint64_t *end_ns);
/* The waits recorded (ns). */
const struct ms_hist *ms_lw_sampler_hist(const struct ms_lw_sampler *s);
/* {"pairs", "unpaired_starts", "acquires_without_start", "lost", "dropped", "outside_run"}. */
json_t *ms_lw_sampler_json(const struct ms_lw_sampler *s);
void ms_lw_sampler_close(struct ms_lw_sampler *s);

/*
 * What the runner calls: does spec (perf=) ask for mmap-lock-wait, and open the sampler on pid
 * (tracefs lookup of the tracepoint ids included). -errno with why when it cannot: the reason
 * for the case's "skipped" list.
 */
bool ms_perf_lockwait_wanted(const char *spec);
int ms_perf_lockwait_open(struct ms_lw_sampler **sp, pid_t pid, char *why, size_t len);

#define MS_PERF_LOCKWAIT "mmap-lock-wait"

#endif

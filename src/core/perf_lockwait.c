/* mmap_lock wait-time distribution from sampled mmap_lock tracepoints (libperf ring buffers). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "core/perf_lockwait.h"

#define LW_SLOTS (1u << 16)		/* threads waiting at once, direct-mapped by tid */
#define LW_MAX_PENDING (1u << 20)	/* samples held for ordering: 16 MiB */

struct lw_slot {
	uint64_t time_ns;
	uint32_t tid;
	bool used;
};

struct ms_lw {
	struct ms_hist *h;
	struct ms_lw_sample *pend;
	size_t npend, cap;
	uint64_t lo, hi;
	struct ms_lw_stats st;
	struct lw_slot slot[LW_SLOTS];
};

struct ms_lw *ms_lw_new(struct ms_hist *h)
{
	struct ms_lw *lw = calloc(1, sizeof(*lw));

	if (lw) {
		lw->h = h;
		lw->hi = UINT64_MAX;
	}
	return lw;
}

void ms_lw_free(struct ms_lw *lw)
{
	if (lw)
		free(lw->pend);
	free(lw);
}

void ms_lw_window(struct ms_lw *lw, uint64_t lo, uint64_t hi)
{
	lw->lo = lo;
	lw->hi = hi;
}

void ms_lw_lost(struct ms_lw *lw, uint64_t n)
{
	lw->st.lost += n;
}

void ms_lw_feed(struct ms_lw *lw, const struct ms_lw_sample *s)
{
	if (lw->npend == lw->cap) {
		size_t cap = lw->cap ? lw->cap * 2 : 4096;
		struct ms_lw_sample *p = cap <= LW_MAX_PENDING ?
					 realloc(lw->pend, cap * sizeof(*p)) : NULL;

		if (!p) {
			lw->st.dropped++;
			return;
		}
		lw->pend = p;
		lw->cap = cap;
	}
	lw->pend[lw->npend++] = *s;
}

/* Time order; at the same time a start goes before an acquire (a zero wait). */
static int sample_cmp(const void *a, const void *b)
{
	const struct ms_lw_sample *x = a, *y = b;

	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return (int)x->acquire - (int)y->acquire;
}

static bool in_window(const struct ms_lw *lw, uint64_t t)
{
	return t >= lw->lo && t <= lw->hi;
}

static void pair_one(struct ms_lw *lw, const struct ms_lw_sample *s)
{
	struct lw_slot *sl = &lw->slot[s->tid & (LW_SLOTS - 1)];

	if (!s->acquire) {
		/* A start still pending: its acquire was lost, or another tid shares the slot. */
		if (sl->used && in_window(lw, sl->time_ns))
			lw->st.unpaired_starts++;
		*sl = (struct lw_slot){ .time_ns = s->time_ns, .tid = s->tid, .used = true };
		return;
	}
	if (!sl->used || sl->tid != s->tid) {
		lw->st.acquires_without_start += in_window(lw, s->time_ns);
		return;
	}
	sl->used = false;
	if (!in_window(lw, sl->time_ns) || !in_window(lw, s->time_ns)) {
		lw->st.outside_run++;
		return;
	}
	ms_hist_record(lw->h, s->time_ns - sl->time_ns);
	lw->st.pairs++;
}

void ms_lw_flush(struct ms_lw *lw, uint64_t upto)
{
	size_t n = 0;

	if (!lw->npend)
		return;
	qsort(lw->pend, lw->npend, sizeof(*lw->pend), sample_cmp);
	while (n < lw->npend && lw->pend[n].time_ns <= upto)
		pair_one(lw, &lw->pend[n++]);
	memmove(lw->pend, lw->pend + n, (lw->npend - n) * sizeof(*lw->pend));
	lw->npend -= n;
}

void ms_lw_get_stats(const struct ms_lw *lw, struct ms_lw_stats *st)
{
	*st = lw->st;
	for (size_t i = 0; i < LW_SLOTS; i++)
		st->unpaired_starts += lw->slot[i].used && in_window(lw, lw->slot[i].time_ns);
	for (size_t i = 0; i < lw->npend; i++) {
		if (!in_window(lw, lw->pend[i].time_ns))
			continue;
		if (lw->pend[i].acquire)
			st->acquires_without_start++;
		else
			st->unpaired_starts++;
	}
}

#ifdef MMSTORM_HAVE_LIBPERF

#include <linux/perf_event.h>
#include <perf/cpumap.h>
#include <perf/event.h>
#include <perf/evlist.h>
#include <perf/evsel.h>
#include <perf/mmap.h>
#include <perf/threadmap.h>

#define LW_PAGES 128			/* ring buffer per CPU: 512 KiB with 4 KiB pages */

struct ms_lw_sampler {
	struct perf_evlist *evlist;
	uint64_t start_id, acquire_id;
	struct ms_lw *lw;
	struct ms_hist hist;
	uint64_t prev;			/* clock at the start of the previous drain */
	bool mapped, enabled;
};

static int add_tp(struct ms_lw_sampler *s, uint64_t id)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_TRACEPOINT,
		.size = sizeof(attr),
		.config = id,
		.sample_period = 1,
		.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW,
		.disabled = 1,
		.inherit = 1,
		/* Times comparable with ms_now_ns(), which the window and the rounds use. */
		.use_clockid = 1,
		.clockid = CLOCK_MONOTONIC,
	};
	struct perf_evsel *evsel = perf_evsel__new(&attr);

	if (!evsel)
		return -ENOMEM;
	perf_evlist__add(s->evlist, evsel);
	return 0;
}

void ms_lw_sampler_close(struct ms_lw_sampler *s)
{
	if (!s)
		return;
	if (s->enabled)
		perf_evlist__disable(s->evlist);
	if (s->mapped)
		perf_evlist__munmap(s->evlist);
	perf_evlist__close(s->evlist);
	perf_evlist__delete(s->evlist);
	ms_lw_free(s->lw);
	free(s);
}

/*
 * libperf 6.12's perf_evsel__delete() does not drop the references to the maps an evlist
 * gives each of its evsels, so maps handed to an evlist are never freed: one pair is made
 * per process and kept, and the thread map is pointed at each sampled pid in turn (the
 * runner samples one case at a time).
 */
static struct perf_cpu_map *lw_cpus;
static struct perf_thread_map *lw_threads;

static bool maps(pid_t pid)
{
	if (!lw_cpus)
		lw_cpus = perf_cpu_map__new_online_cpus();
	if (!lw_threads)
		lw_threads = perf_thread_map__new_array(1, &pid);
	if (lw_threads)
		perf_thread_map__set_pid(lw_threads, 0, pid);
	return lw_cpus && lw_threads;
}

int ms_lw_sampler_open(struct ms_lw_sampler **sp, pid_t pid, uint64_t start_id,
		       uint64_t acquire_id, char *why, size_t len)
{
	struct ms_lw_sampler *s = calloc(1, sizeof(*s));
	int ret = -ENOMEM;

	*sp = NULL;
	snprintf(why, len, "out of memory");
	if (!s)
		return -ENOMEM;
	ms_hist_init(&s->hist);
	s->start_id = start_id;
	s->acquire_id = acquire_id;
	s->evlist = perf_evlist__new();
	s->lw = ms_lw_new(&s->hist);
	if (!s->evlist || !s->lw || !maps(pid) || add_tp(s, start_id) || add_tp(s, acquire_id))
		goto out_close;
	perf_evlist__set_maps(s->evlist, lw_cpus, lw_threads);
	if ((ret = perf_evlist__open(s->evlist))) {
		snprintf(why, len, "sampling the mmap_lock tracepoints: perf_event_open: %s",
			 strerror(-ret));
		goto out_close;
	}
	if (perf_evlist__mmap(s->evlist, LW_PAGES)) {
		ret = errno ? -errno : -ENOMEM;
		snprintf(why, len, "mmap of the per-CPU sample buffers: %s", strerror(-ret));
		goto out_close;
	}
	s->mapped = true;
	/* Before the process is let go: from its first instruction on, all is followed. */
	perf_evlist__enable(s->evlist);
	s->enabled = true;
	s->prev = ms_now_ns();
	*sp = s;
	return 0;
out_close:
	ms_lw_sampler_close(s);
	return ret;
}

static void handle(struct ms_lw_sampler *s, const union perf_event *ev)
{
	const __u64 *a = ev->sample.array;
	struct ms_lw_sample smp;
	uint32_t raw_size;
	uint16_t type;

	switch (ev->header.type) {
	case PERF_RECORD_LOST:
		ms_lw_lost(s->lw, ev->lost.lost);
		return;
	case PERF_RECORD_LOST_SAMPLES:
		ms_lw_lost(s->lw, ev->lost_samples.lost);
		return;
	case PERF_RECORD_SAMPLE:
		break;
	default:
		return;
	}
	/* TID (pid, tid), TIME, RAW (u32 size, then the trace entry: u16 common_type first). */
	if (ev->header.size < sizeof(ev->header) + 2 * sizeof(uint64_t) + sizeof(uint32_t) + 2)
		return;
	smp.tid = (uint32_t)(a[0] >> 32);
	smp.time_ns = a[1];
	memcpy(&raw_size, &a[2], sizeof(raw_size));
	memcpy(&type, (const char *)&a[2] + sizeof(raw_size), sizeof(type));
	if (raw_size < sizeof(type))
		return;
	if (type == s->start_id || type == s->acquire_id) {
		smp.acquire = type == s->acquire_id;
		ms_lw_feed(s->lw, &smp);
	}
}

static void read_buffers(struct ms_lw_sampler *s)
{
	union perf_event *ev;
	struct perf_mmap *map;

	perf_evlist__for_each_mmap(s->evlist, map, false) {
		if (perf_mmap__read_init(map) < 0)
			continue;
		while ((ev = perf_mmap__read_event(map))) {
			handle(s, ev);
			perf_mmap__consume(map);
		}
		perf_mmap__read_done(map);
	}
}

/* 0: not yet, 1: being taken: nothing before `now` can be judged; else the time. */
static bool window(struct ms_lw_sampler *s, const uint64_t *start_ns, const uint64_t *end_ns)
{
	uint64_t lo = __atomic_load_n(start_ns, __ATOMIC_SEQ_CST);
	uint64_t hi = __atomic_load_n(end_ns, __ATOMIC_SEQ_CST);

	if (lo == 1 || hi == 1)
		return false;
	/* Not started when we looked, after our clock read: every sample so far is before. */
	ms_lw_window(s->lw, lo ? lo : UINT64_MAX, hi ? hi : UINT64_MAX);
	return true;
}

void ms_lw_sampler_drain(struct ms_lw_sampler *s, const uint64_t *start_ns,
			 const uint64_t *end_ns)
{
	uint64_t now;

	if (!s || !s->enabled)
		return;
	now = ms_now_ns();
	read_buffers(s);
	if (window(s, start_ns, end_ns))
		ms_lw_flush(s->lw, s->prev);
	s->prev = now;
}

void ms_lw_sampler_stop(struct ms_lw_sampler *s, const uint64_t *start_ns,
			const uint64_t *end_ns)
{
	uint64_t lo, hi;

	if (!s || !s->enabled)
		return;
	perf_evlist__disable(s->evlist);
	s->enabled = false;
	read_buffers(s);
	/* The process is gone: a time it never stored (still 1) was never reached. */
	lo = *start_ns > 1 ? *start_ns : UINT64_MAX;
	hi = *end_ns > 1 ? *end_ns : UINT64_MAX;
	ms_lw_window(s->lw, lo, hi);
	ms_lw_flush(s->lw, UINT64_MAX);
}

const struct ms_hist *ms_lw_sampler_hist(const struct ms_lw_sampler *s)
{
	return &s->hist;
}

json_t *ms_lw_sampler_json(const struct ms_lw_sampler *s)
{
	struct ms_lw_stats st;

	if (!s)
		return NULL;
	ms_lw_get_stats(s->lw, &st);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "pairs", (json_int_t)st.pairs,
			 "unpaired_starts", (json_int_t)st.unpaired_starts,
			 "acquires_without_start", (json_int_t)st.acquires_without_start,
			 "lost", (json_int_t)st.lost, "dropped", (json_int_t)st.dropped,
			 "outside_run", (json_int_t)st.outside_run);
}

#endif /* MMSTORM_HAVE_LIBPERF */

#ifndef MMSTORM_HAVE_LIBPERF

int ms_lw_sampler_open(struct ms_lw_sampler **sp, pid_t pid, uint64_t start_id,
		       uint64_t acquire_id, char *why, size_t len)
{
	(void)pid;
	(void)start_id;
	(void)acquire_id;
	*sp = NULL;
	snprintf(why, len, "libperf not built");
	return -ENOTSUP;
}

void ms_lw_sampler_drain(struct ms_lw_sampler *s, const uint64_t *start_ns,
			 const uint64_t *end_ns)
{
	(void)s;
	(void)start_ns;
	(void)end_ns;
}

void ms_lw_sampler_stop(struct ms_lw_sampler *s, const uint64_t *start_ns,
			const uint64_t *end_ns)
{
	ms_lw_sampler_drain(s, start_ns, end_ns);
}

const struct ms_hist *ms_lw_sampler_hist(const struct ms_lw_sampler *s)
{
	(void)s;
	return NULL;
}

json_t *ms_lw_sampler_json(const struct ms_lw_sampler *s)
{
	(void)s;
	return NULL;
}

void ms_lw_sampler_close(struct ms_lw_sampler *s)
{
	(void)s;
}

#endif

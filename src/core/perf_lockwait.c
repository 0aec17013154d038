/* mmap_lock wait-time distribution from sampled mmap_lock tracepoints (libperf ring buffers). */
#include <errno.h>
#include <pthread.h>
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
	struct ms_lw_stats st;
	struct lw_slot slot[LW_SLOTS];
};

struct ms_lw *ms_lw_new(struct ms_hist *h)
{
	struct ms_lw *lw = calloc(1, sizeof(*lw));

	if (lw)
		lw->h = h;
	return lw;
}

void ms_lw_free(struct ms_lw *lw)
{
	if (lw)
		free(lw->pend);
	free(lw);
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

static void pair_one(struct ms_lw *lw, const struct ms_lw_sample *s)
{
	struct lw_slot *sl = &lw->slot[s->tid & (LW_SLOTS - 1)];

	if (!s->acquire) {
		/* A start still pending: its acquire was lost, or another tid shares the slot. */
		if (sl->used)
			lw->st.unpaired_starts++;
		*sl = (struct lw_slot){ .time_ns = s->time_ns, .tid = s->tid, .used = true };
		return;
	}
	if (!sl->used || sl->tid != s->tid) {
		lw->st.acquires_without_start++;
		return;
	}
	ms_hist_record(lw->h, s->time_ns - sl->time_ns);
	lw->st.pairs++;
	sl->used = false;
}

void ms_lw_flush(struct ms_lw *lw, uint64_t upto)
{
	size_t n = 0;

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
		st->unpaired_starts += lw->slot[i].used;
	for (size_t i = 0; i < lw->npend; i++)
		if (lw->pend[i].acquire)
			st->acquires_without_start++;
		else
			st->unpaired_starts++;
}

#ifdef MMSTORM_HAVE_LIBPERF

#include <linux/perf_event.h>
#include <perf/cpumap.h>
#include <perf/event.h>
#include <perf/evlist.h>
#include <perf/evsel.h>
#include <perf/mmap.h>
#include <perf/threadmap.h>

#include "mmstorm/metrics.h"

#define LW_PAGES 128			/* ring buffer per CPU: 512 KiB with 4 KiB pages */
#define LW_POLL_MS 50

struct ms_lw_sampler {
	struct perf_evlist *evlist;
	uint64_t start_id, acquire_id;
	struct ms_lw *lw;
	pthread_t reader;
	bool running;
	int stop;
	bool mapped;
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
		/* Times comparable with ms_now_ns(), which the reader orders samples by. */
		.use_clockid = 1,
		.clockid = CLOCK_MONOTONIC,
		.watermark = 1,
		.wakeup_watermark = LW_PAGES * 4096 / 2,
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
	ms_lw_sampler_stop(s);
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
 * per process and kept (each case runs in a process of its own).
 */
static struct perf_cpu_map *lw_cpus;
static struct perf_thread_map *lw_threads;

static bool maps(void)
{
	pid_t self = 0;

	if (!lw_cpus)
		lw_cpus = perf_cpu_map__new_online_cpus();
	if (!lw_threads)
		lw_threads = perf_thread_map__new_array(1, &self);
	return lw_cpus && lw_threads;
}

int ms_lw_sampler_open(struct ms_lw_sampler **sp, uint64_t start_id, uint64_t acquire_id,
		       char *why, size_t len)
{
	struct ms_lw_sampler *s = calloc(1, sizeof(*s));
	int ret = -ENOMEM;

	*sp = NULL;
	snprintf(why, len, "out of memory");
	if (!s)
		return -ENOMEM;
	s->start_id = start_id;
	s->acquire_id = acquire_id;
	s->evlist = perf_evlist__new();
	if (!s->evlist || !maps() || add_tp(s, start_id) || add_tp(s, acquire_id))
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

static void drain(struct ms_lw_sampler *s)
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

static void *reader_main(void *arg)
{
	struct ms_lw_sampler *s = arg;
	uint64_t prev = 0, now;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		perf_evlist__poll(s->evlist, LW_POLL_MS);
		now = ms_now_ns();
		drain(s);
		ms_lw_flush(s->lw, prev);
		prev = now;
	}
	return NULL;
}

int ms_lw_sampler_start(struct ms_lw_sampler *s, struct ms_hist *h)
{
	int ret;

	if (!s || s->running)
		return 0;
	if (!(s->lw = ms_lw_new(h)))
		return -ENOMEM;
	perf_evlist__enable(s->evlist);
	if ((ret = pthread_create(&s->reader, NULL, reader_main, s))) {
		perf_evlist__disable(s->evlist);
		return -ret;
	}
	s->running = true;
	return 0;
}

void ms_lw_sampler_stop(struct ms_lw_sampler *s)
{
	if (!s || !s->running)
		return;
	perf_evlist__disable(s->evlist);
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->reader, NULL);
	drain(s);
	ms_lw_flush(s->lw, UINT64_MAX);
	s->running = false;
}

json_t *ms_lw_sampler_json(const struct ms_lw_sampler *s)
{
	struct ms_lw_stats st;

	if (!s || !s->lw)
		return NULL;
	ms_lw_get_stats(s->lw, &st);
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "pairs", (json_int_t)st.pairs,
			 "unpaired_starts", (json_int_t)st.unpaired_starts,
			 "acquires_without_start", (json_int_t)st.acquires_without_start,
			 "lost", (json_int_t)st.lost, "dropped", (json_int_t)st.dropped);
}

#endif /* MMSTORM_HAVE_LIBPERF */

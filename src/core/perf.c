/* Per-case perf counters and tracepoint counts through libperf: counting mode, inherited. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmstorm/perf.h"
#include "mmstorm/util.h"

#ifdef MMSTORM_HAVE_LIBPERF
#include <linux/perf_event.h>
#include <perf/core.h>
#include <perf/evlist.h>
#include <perf/evsel.h>
#include <perf/threadmap.h>
#endif

#define EV_NAME_MAX 96

/* perf(1)'s names, so a counter here and in `perf stat` output mean the same thing. */
struct builtin_event {
	const char *name;
	uint32_t type;
	uint64_t config;
};

/* The uapi values, spelled out so the table compiles without libperf's headers too. */
#define T_HW 0		/* PERF_TYPE_HARDWARE */
#define T_SW 1		/* PERF_TYPE_SOFTWARE */
#define T_TP 2		/* PERF_TYPE_TRACEPOINT */
#define T_CACHE 3	/* PERF_TYPE_HW_CACHE */
#define CACHE_READ_MISS(c) ((c) | (0ULL << 8) | (1ULL << 16))	/* OP_READ, RESULT_MISS */

static const struct builtin_event builtins[] = {
	{ "task-clock", T_SW, 1 },		/* ns on CPU */
	{ "context-switches", T_SW, 3 },
	{ "cpu-migrations", T_SW, 4 },
	{ "page-faults", T_SW, 2 },
	{ "minor-faults", T_SW, 5 },
	{ "major-faults", T_SW, 6 },
	{ "instructions", T_HW, 1 },
	{ "cycles", T_HW, 0 },
	{ "cache-misses", T_HW, 3 },
	{ "dTLB-load-misses", T_CACHE, CACHE_READ_MISS(3) },
	{ "iTLB-load-misses", T_CACHE, CACHE_READ_MISS(4) },
};

/* What MM work costs in the kernel; globs take whatever this kernel has of a family. */
static const char *const default_tracepoints[] = {
	"tlb:tlb_flush",
	"kmem:mm_page_alloc",
	"kmem:mm_page_free",
	"kmem:rss_stat",
	"migrate:mm_migrate_pages",
	"huge_memory:*split*",
	"huge_memory:*collapse*",
	"mmap_lock:mmap_lock_start_locking",
	"mmap_lock:mmap_lock_acquire_returned",
};

static const struct builtin_event *builtin_find(const char *name)
{
	for (size_t i = 0; i < MS_ARRAY_SIZE(builtins); i++)
		if (!strcmp(builtins[i].name, name))
			return &builtins[i];
	return NULL;
}

/* "system:name", both parts from tracefs' alphabet; the name part may hold * and ? globs. */
static bool tracepoint_name_ok(const char *name)
{
	const char *colon = strchr(name, ':');

	if (!colon || colon == name || !colon[1])
		return false;
	for (const char *s = name; *s; s++) {
		if (s == colon)
			continue;
		if (!isalnum((unsigned char)*s) && *s != '_' &&
		    !(s > colon && (*s == '*' || *s == '?')))
			return false;
	}
	return true;
}

typedef int (*spec_fn)(void *arg, const char *name);

static int spec_item(const char *item, spec_fn fn, void *arg, char *err, size_t errlen)
{
	int ret = 0;

	if (!strcmp(item, "default")) {
		for (size_t i = 0; i < MS_ARRAY_SIZE(builtins) && !ret; i++)
			ret = fn ? fn(arg, builtins[i].name) : 0;
		for (size_t i = 0; i < MS_ARRAY_SIZE(default_tracepoints) && !ret; i++)
			ret = fn ? fn(arg, default_tracepoints[i]) : 0;
		return ret;
	}
	if (!builtin_find(item) && !tracepoint_name_ok(item)) {
		snprintf(err, errlen, "perf: unknown event '%s' (expected default, none, a perf "
			 "event name such as page-faults, or a tracepoint system:name)", item);
		return -EINVAL;
	}
	return fn ? fn(arg, item) : 0;
}

/* Walk the names of a spec, "default" expanded; fn NULL only validates. */
static int spec_walk(const char *spec, spec_fn fn, void *arg, char *err, size_t errlen)
{
	const char *s = spec && *spec ? spec : "default";
	char item[EV_NAME_MAX];
	int ret = 0;

	if (!strcmp(s, "none"))
		return 0;
	while (!ret) {
		size_t n = strcspn(s, ",");
		const char *b = s, *e = s + n;

		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (e == b || (size_t)(e - b) >= sizeof(item)) {
			snprintf(err, errlen, "perf: %s event name in '%s'",
				 e == b ? "empty" : "too long an", spec);
			return -EINVAL;
		}
		memcpy(item, b, (size_t)(e - b));
		item[e - b] = '\0';
		if (!strcmp(item, "none")) {
			snprintf(err, errlen, "perf: 'none' cannot be part of a list ('%s')", spec);
			return -EINVAL;
		}
		ret = spec_item(item, fn, arg, err, errlen);
		if (!s[n])
			break;
		s += n + 1;
	}
	return ret;
}

int ms_perf_spec_check(const char *spec, char *err, size_t errlen)
{
	return spec_walk(spec, NULL, NULL, err, errlen);
}

static int skip_add(json_t *skipped, const char *event, const char *reason)
{
	return json_array_append_new(skipped, json_pack("{s:s, s:s}", "event", event, "reason",
							 reason)) ? -ENOMEM : 0;
}

#ifndef MMSTORM_HAVE_LIBPERF

const char *ms_perf_unavailable(void)
{
	return "libperf not built (install linux-source-6.12)";
}

int ms_perf_open(struct ms_perf **pp, const char *spec, json_t **skipped)
{
	char err[256];
	int ret;

	*pp = NULL;
	*skipped = NULL;
	if ((ret = ms_perf_spec_check(spec, err, sizeof(err))))
		return ret;
	*skipped = json_array();
	if (!*skipped)
		return -ENOMEM;
	if (spec && !strcmp(spec, "none"))
		return 0;
	if ((ret = skip_add(*skipped, "*", ms_perf_unavailable()))) {
		json_decref(*skipped);
		*skipped = NULL;
	}
	return ret;
}

int ms_perf_enable(struct ms_perf *p)
{
	(void)p;
	return 0;
}

int ms_perf_disable(struct ms_perf *p)
{
	(void)p;
	return 0;
}

json_t *ms_perf_read(struct ms_perf *p)
{
	(void)p;
	return json_object();
}

void ms_perf_close(struct ms_perf *p)
{
	(void)p;
}

#else /* MMSTORM_HAVE_LIBPERF */

struct perf_ev {
	char name[EV_NAME_MAX];
	struct perf_evsel *evsel;
};

struct ms_perf {
	struct perf_evlist *evlist;
	struct perf_thread_map *threads;	/* just pid 0: the calling process */
	json_t *skipped;			/* borrowed while opening */
	char tracefs[256];			/* "" when not mounted */
	unsigned n;
	struct perf_ev ev[MS_PERF_MAX_EVENTS];
};

const char *ms_perf_unavailable(void)
{
	return NULL;
}

/* libperf reports on stderr by default: its messages would land in the KTAP stream. */
static int libperf_quiet(enum libperf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

static const char *paranoid_level(char *buf, size_t len)
{
	/* Negative values are legal, so text rather than ms_read_u64(). */
	if (ms_read_file("/proc/sys/kernel/perf_event_paranoid", buf, len) <= 0)
		return "?";
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static void open_reason(int err, uint32_t type, char *buf, size_t len)
{
	char par[32];
	bool hw = type == T_HW || type == T_CACHE;

	switch (err) {
	case ENOENT:
	case EOPNOTSUPP:
	case ENODEV:
		snprintf(buf, len, "%s (perf_event_open: %s)",
			 hw ? "the CPU's PMU does not offer it (none in a VM without a virtual "
			      "PMU)" : "the kernel does not offer it", strerror(err));
		break;
	case EACCES:
	case EPERM:
		snprintf(buf, len, "not permitted with kernel.perf_event_paranoid=%s as uid %d "
			 "(perf_event_open: %s)", paranoid_level(par, sizeof(par)), (int)geteuid(),
			 strerror(err));
		break;
	case ENOSYS:
		snprintf(buf, len, "no perf_event_open in this kernel (CONFIG_PERF_EVENTS=n)");
		break;
	default:
		snprintf(buf, len, "perf_event_open: %s", strerror(err));
		break;
	}
}

static bool have_event(const struct ms_perf *p, const char *name)
{
	for (unsigned i = 0; i < p->n; i++)
		if (!strcmp(p->ev[i].name, name))
			return true;
	return false;
}

static int add_event(struct ms_perf *p, const char *name, uint32_t type, uint64_t config)
{
	struct perf_event_attr attr = {
		.type = type,
		.size = sizeof(attr),
		.config = config,
		.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING,
		.disabled = 1,
		.inherit = 1,
	};
	struct perf_evsel *evsel;
	char reason[256];
	int ret;

	if (have_event(p, name))
		return 0;
	if (p->n >= MS_PERF_MAX_EVENTS)
		return skip_add(p->skipped, name, "too many events (at most 32 per case)");
	evsel = perf_evsel__new(&attr);
	if (!evsel)
		return -ENOMEM;
	ret = perf_evsel__open(evsel, NULL, p->threads);
	if (ret) {
		perf_evsel__delete(evsel);
		if (ret == -ENOMEM)
			return ret;
		open_reason(-ret, type, reason, sizeof(reason));
		return skip_add(p->skipped, name, reason);
	}
	perf_evlist__add(p->evlist, evsel);
	ms_strlcpy(p->ev[p->n].name, name, sizeof(p->ev[0].name));
	p->ev[p->n++].evsel = evsel;
	return 0;
}

/*
 * Where tracefs is mounted, from mountinfo only: looking at /sys/kernel/debug/tracing would
 * make the kernel automount it, and mmstorm does not mount things on a host by itself.
 */
static void find_tracefs(char *dir, size_t len)
{
	char line[1024], mnt[512], fstype[64];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	dir[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		/* Octal escapes mean an odd path (spaces): not worth decoding for this. */
		if (!strcmp(fstype, "tracefs") && !strchr(mnt, '\\') && strlen(mnt) < len) {
			ms_strlcpy(dir, mnt, len);
			break;
		}
	}
	fclose(f);
}

static int add_tracepoint(struct ms_perf *p, const char *sys, const char *name)
{
	char path[512], dir[300], buf[32], reason[900], full[EV_NAME_MAX];
	uint64_t id;
	int ret;

	snprintf(full, sizeof(full), "%s:%s", sys, name);
	snprintf(dir, sizeof(dir), "%s/events/%s", p->tracefs, sys);
	snprintf(path, sizeof(path), "%s/%s/id", dir, name);
	if ((ret = (int)ms_read_file(path, buf, sizeof(buf))) < 0) {
		if (ret == -ENOENT && access(dir, F_OK))
			snprintf(reason, sizeof(reason), "no tracepoint system %s on this kernel "
				 "(%s)", sys, dir);
		else if (ret == -ENOENT)
			snprintf(reason, sizeof(reason), "no such tracepoint on this kernel "
				 "(%s/%s)", dir, name);
		else
			snprintf(reason, sizeof(reason), "cannot read %s: %s", path,
				 strerror(-ret));
		return skip_add(p->skipped, full, reason);
	}
	id = strtoull(buf, NULL, 10);
	return add_event(p, full, T_TP, id);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every tracepoint of sys matching the glob, in name order (readdir order is arbitrary). */
static int add_tracepoint_glob(struct ms_perf *p, const char *sys, const char *glob,
			       const char *spec_name)
{
	char path[512], reason[600], *names[64];
	unsigned n = 0;
	struct dirent *d;
	DIR *dir;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/events/%s", p->tracefs, sys);
	dir = opendir(path);
	if (!dir) {
		snprintf(reason, sizeof(reason), "no tracepoint system %s on this kernel (%s: %s)",
			 sys, path, strerror(errno));
		return skip_add(p->skipped, spec_name, reason);
	}
	while ((d = readdir(dir)) && n < MS_ARRAY_SIZE(names)) {
		/* Event directories only: "enable" and "filter" are files of the system. */
		if (d->d_type != DT_DIR || d->d_name[0] == '.' || fnmatch(glob, d->d_name, 0))
			continue;
		if (!(names[n] = strdup(d->d_name))) {
			ret = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(dir);
	if (!ret && !n) {
		snprintf(reason, sizeof(reason), "no tracepoint of %s matches '%s' on this kernel",
			 path, glob);
		ret = skip_add(p->skipped, spec_name, reason);
	}
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (unsigned i = 0; i < n; i++) {
		if (!ret)
			ret = add_tracepoint(p, sys, names[i]);
		free(names[i]);
	}
	return ret;
}

static int open_one(void *arg, const char *name)
{
	struct ms_perf *p = arg;
	const struct builtin_event *b = builtin_find(name);
	char sys[EV_NAME_MAX];
	const char *tp;

	if (b)
		return add_event(p, b->name, b->type, b->config);
	if (!p->tracefs[0])
		return skip_add(p->skipped, name, "tracefs is not mounted (mmstorm does not mount "
				"it on a host: mount -t tracefs nodev /sys/kernel/tracing)");
	tp = strchr(name, ':') + 1;
	ms_strlcpy(sys, name, (size_t)(tp - name));
	if (strpbrk(tp, "*?"))
		return add_tracepoint_glob(p, sys, tp, name);
	return add_tracepoint(p, sys, tp);
}

int ms_perf_open(struct ms_perf **pp, const char *spec, json_t **skipped)
{
	pid_t self = 0;
	struct ms_perf *p;
	char err[256];
	int ret;

	*pp = NULL;
	*skipped = NULL;
	if ((ret = ms_perf_spec_check(spec, err, sizeof(err))))
		return ret;
	if (!(*skipped = json_array()))
		return -ENOMEM;
	if (spec && !strcmp(spec, "none"))
		return 0;
	p = calloc(1, sizeof(*p));
	if (p) {
		libperf_init(libperf_quiet);
		p->evlist = perf_evlist__new();
		p->threads = perf_thread_map__new_array(1, &self);
	}
	if (!p || !p->evlist || !p->threads) {
		ret = -ENOMEM;
		goto out_close;
	}
	p->skipped = *skipped;
	find_tracefs(p->tracefs, sizeof(p->tracefs));
	if ((ret = spec_walk(spec, open_one, p, err, sizeof(err))))
		goto out_close;
	p->skipped = NULL;
	if (!p->n)
		goto out_close;
	*pp = p;
	return 0;
out_close:
	ms_perf_close(p);
	if (ret) {
		json_decref(*skipped);
		*skipped = NULL;
	}
	return ret;
}

static int for_each_ioctl(struct ms_perf *p, int (*op)(struct perf_evsel *))
{
	int ret = 0;

	for (unsigned i = 0; p && i < p->n; i++)
		if (op(p->ev[i].evsel) && !ret)
			ret = errno ? -errno : -EIO;
	return ret;
}

int ms_perf_enable(struct ms_perf *p)
{
	return for_each_ioctl(p, perf_evsel__enable);
}

int ms_perf_disable(struct ms_perf *p)
{
	return for_each_ioctl(p, perf_evsel__disable);
}

static json_t *read_one(struct perf_evsel *evsel)
{
	struct perf_counts_values c;
	uint64_t ena, run;
	__s8 scaled = 0;
	int ret;

	errno = 0;
	ret = perf_evsel__read(evsel, 0, 0, &c);
	if (ret)
		return json_pack("{s:n, s:s}", "value", "error", strerror(-ret));
	ena = c.ena;
	run = c.run;
	/* Never on the PMU but enabled: the count is unknown, not zero. */
	if (ena && !run)
		return json_pack("{s:n, s:I, s:I, s:b}", "value", "enabled_ns", (json_int_t)ena,
				 "running_ns", (json_int_t)run, "scaled", 1);
	perf_counts_values__scale(&c, true, &scaled);
	return json_pack("{s:I, s:I, s:I, s:b}", "value", (json_int_t)c.val, "enabled_ns",
			 (json_int_t)ena, "running_ns", (json_int_t)run, "scaled", scaled > 0);
}

json_t *ms_perf_read(struct ms_perf *p)
{
	json_t *o = json_object();

	for (unsigned i = 0; o && p && i < p->n; i++)
		json_object_set_new(o, p->ev[i].name, read_one(p->ev[i].evsel));
	return o;
}

void ms_perf_close(struct ms_perf *p)
{
	if (!p)
		return;
	/* Deleting the evlist closes every counter and deletes its evsels. */
	perf_evlist__delete(p->evlist);
	perf_thread_map__put(p->threads);
	free(p);
}

#endif /* MMSTORM_HAVE_LIBPERF */

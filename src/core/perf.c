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

#include "core/perf_lockwait.h"
#include "mmstorm/perf.h"
#include "mmstorm/util.h"

#ifdef MMSTORM_HAVE_LIBPERF
#include <linux/perf_event.h>
#include <perf/core.h>
#include <perf/evlist.h>
#include <perf/evsel.h>
#include <perf/cpumap.h>
#include <perf/threadmap.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
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

/*
 * Not a counter: the distribution of mmap_lock wait times, from sampling the two mmap_lock
 * tracepoints. The runner samples it from outside the case (perf_lockwait.h); the case skips it.
 */
#define LOCKWAIT MS_PERF_LOCKWAIT

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
		/*
		 * Not LOCKWAIT: sampling costs every fork of the case a quarter to a third of its
		 * CPU time (inherited sampling events are copied into each child), which would
		 * skew the very latencies the default set is there to explain (docs/perf.md).
		 */
		return ret;
	}
	if (!builtin_find(item) && !tracepoint_name_ok(item) && strcmp(item, LOCKWAIT)) {
		snprintf(err, errlen, "perf: unknown event '%s' (expected default, none, a perf "
			 "event name such as page-faults, a tracepoint system:name, or "
			 LOCKWAIT ")", item);
		return -EINVAL;
	}
	return fn ? fn(arg, item) : 0;
}

/*
 * Item i (0-based) of a comma list, trimmed, into buf (i must exist: *more of item i - 1).
 * *more: another item follows. -E2BIG when it does not fit.
 */
static int spec_token(const char *s, unsigned i, char *buf, size_t len, bool *more)
{
	const char *b, *e;

	for (; i; i--)
		s = strchr(s, ',') + 1;
	b = s;
	e = s + strcspn(s, ",");
	*more = *e == ',';
	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if ((size_t)(e - b) >= len)
		return -E2BIG;
	memcpy(buf, b, (size_t)(e - b));
	buf[e - b] = '\0';
	return 0;
}

/* "-NAME" in the list takes NAME out of what the rest names (e.g. default,-mmap-lock-wait). */
static bool spec_removes(const char *spec, const char *name)
{
	char item[EV_NAME_MAX];
	bool more = true;

	for (unsigned i = 0; more && !spec_token(spec, i, item, sizeof(item), &more); i++)
		if (item[0] == '-' && !strcmp(item + 1, name))
			return true;
	return false;
}

struct spec_filter {
	spec_fn fn;
	void *arg;
	const char *spec;
};

static int spec_filtered(void *arg, const char *name)
{
	struct spec_filter *f = arg;

	return spec_removes(f->spec, name) ? 0 : f->fn(f->arg, name);
}

/* Walk the names of a spec, "default" expanded, "-NAME" left out; fn NULL only validates. */
static int spec_walk(const char *spec, spec_fn fn, void *arg, char *err, size_t errlen)
{
	const char *s = spec && *spec ? spec : "default";
	struct spec_filter f = { .fn = fn, .arg = arg, .spec = s };
	char item[EV_NAME_MAX];
	bool more = true;
	int ret = 0;

	if (!strcmp(s, "none"))
		return 0;
	for (unsigned i = 0; more && !ret; i++) {
		int t = spec_token(s, i, item, sizeof(item), &more);

		if (t || !item[0] || !strcmp(item, "-")) {
			snprintf(err, errlen, "perf: %s event name in '%s'",
				 t ? "too long an" : "empty", spec);
			return -EINVAL;
		}
		if (!strcmp(item, "none") || !strcmp(item, "-default") ||
		    !strcmp(item, "-none")) {
			snprintf(err, errlen, "perf: '%s' cannot be part of a list ('%s')", item,
				 spec);
			return -EINVAL;
		}
		if (item[0] == '-')
			ret = spec_item(item + 1, NULL, NULL, err, errlen);
		else
			ret = spec_item(item, fn ? spec_filtered : NULL, &f, err, errlen);
	}
	return ret;
}

int ms_perf_spec_check(const char *spec, char *err, size_t errlen)
{
	return spec_walk(spec, NULL, NULL, err, errlen);
}

static int find_lockwait(void *arg, const char *name)
{
	if (!strcmp(name, LOCKWAIT))
		*(bool *)arg = true;
	return 0;
}

bool ms_perf_lockwait_wanted(const char *spec)
{
	bool found = false;
	char err[256];

	return !spec_walk(spec, find_lockwait, &found, err, sizeof(err)) && found;
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

int ms_perf_open_cgroup(struct ms_perf **pp, const char *spec, int cgroup_fd, json_t **skipped)
{
	(void)cgroup_fd;
	return ms_perf_open(pp, spec, skipped);
}

int ms_perf_lockwait_open(struct ms_lw_sampler **sp, pid_t pid, char *why, size_t len)
{
	(void)pid;
	*sp = NULL;
	snprintf(why, len, "%s", ms_perf_unavailable());
	return -ENOTSUP;
}

const char *ms_perf_mode(const struct ms_perf *p)
{
	(void)p;
	return "none";
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
	struct perf_evsel *evsel;	/* task mode */
	int *fds;			/* cgroup mode: one per CPU of ms_perf.cpus */
};

struct ms_perf {
	struct perf_evlist *evlist;
	struct perf_thread_map *threads;	/* just pid 0: the calling process */
	struct perf_cpu_map *cpus;		/* cgroup mode: the online CPUs */
	int cgroup_fd;				/* -1: task mode */
	struct perf_ev dummy;			/* cgroup mode: see open_dummy() */
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

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

/*
 * libperf's perf_evsel__open() passes no flags to perf_event_open(), so it cannot open a
 * cgroup counter (PERF_FLAG_PID_CGROUP): these are opened with the raw syscall, one per CPU.
 */
static int open_cgroup_fds(struct ms_perf *p, struct perf_event_attr *attr, int **out)
{
	int n = perf_cpu_map__nr(p->cpus), *fds = malloc((size_t)n * sizeof(int)), ret = 0;

	if (!fds)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		fds[i] = -1;
	for (int i = 0; i < n && !ret; i++) {
		fds[i] = (int)syscall(SYS_perf_event_open, attr, p->cgroup_fd,
				      perf_cpu_map__cpu(p->cpus, i).cpu, -1,
				      PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC);
		if (fds[i] < 0)
			ret = -errno;
	}
	if (ret) {
		close_fds(fds, n);
		return ret;
	}
	*out = fds;
	return 0;
}

static int add_event(struct ms_perf *p, const char *name, uint32_t type, uint64_t config)
{
	struct perf_event_attr attr = {
		.type = type,
		.size = sizeof(attr),
		.config = config,
		.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING,
		.disabled = 1,
		.inherit = p->cgroup_fd < 0,
	};
	struct perf_evsel *evsel = NULL;
	char reason[256];
	int ret, *fds = NULL;

	if (have_event(p, name))
		return 0;
	if (p->n >= MS_PERF_MAX_EVENTS)
		return skip_add(p->skipped, name, "too many events (at most 32 per case)");
	if (p->cgroup_fd >= 0) {
		ret = open_cgroup_fds(p, &attr, &fds);
	} else {
		evsel = perf_evsel__new(&attr);
		if (!evsel)
			return -ENOMEM;
		ret = perf_evsel__open(evsel, NULL, p->threads);
		if (ret)
			perf_evsel__delete(evsel);
	}
	if (ret) {
		if (ret == -ENOMEM)
			return ret;
		open_reason(-ret, type, reason, sizeof(reason));
		return skip_add(p->skipped, name, reason);
	}
	if (evsel)
		perf_evlist__add(p->evlist, evsel);
	ms_strlcpy(p->ev[p->n].name, name, sizeof(p->ev[0].name));
	p->ev[p->n].fds = fds;
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

static int tracepoint_id(const char *tracefs, const char *name, uint64_t *id, char *why,
			 size_t len)
{
	char path[512], buf[32];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/events/mmap_lock/%s/id", tracefs, name);
	if ((n = ms_read_file(path, buf, sizeof(buf))) < 0) {
		snprintf(why, len, "no tracepoint mmap_lock:%s on this kernel (%s: %s)", name,
			 path, strerror((int)-n));
		return (int)n;
	}
	*id = strtoull(buf, NULL, 10);
	return 0;
}

#define NO_TRACEFS "tracefs is not mounted (mmstorm does not mount it on a host: mount -t " \
		   "tracefs nodev /sys/kernel/tracing)"

int ms_perf_lockwait_open(struct ms_lw_sampler **sp, pid_t pid, char *why, size_t len)
{
	char tracefs[256];
	uint64_t start, acq;
	int ret;

	*sp = NULL;
	find_tracefs(tracefs, sizeof(tracefs));
	if (!tracefs[0]) {
		snprintf(why, len, NO_TRACEFS);
		return -ENOENT;
	}
	libperf_init(libperf_quiet);
	if ((ret = tracepoint_id(tracefs, "mmap_lock_start_locking", &start, why, len)) ||
	    (ret = tracepoint_id(tracefs, "mmap_lock_acquire_returned", &acq, why, len)))
		return ret;
	return ms_lw_sampler_open(sp, pid, start, acq, why, len);
}

static int open_one(void *arg, const char *name)
{
	struct ms_perf *p = arg;
	const struct builtin_event *b = builtin_find(name);
	char sys[EV_NAME_MAX];
	const char *tp;

	if (b)
		return add_event(p, b->name, b->type, b->config);
	/* The runner samples it on the case from outside (ms_perf_lockwait_open()). */
	if (!strcmp(name, LOCKWAIT))
		return 0;
	if (!p->tracefs[0])
		return skip_add(p->skipped, name, NO_TRACEFS);
	tp = strchr(name, ':') + 1;
	ms_strlcpy(sys, name, (size_t)(tp - name));
	if (strpbrk(tp, "*?"))
		return add_tracepoint_glob(p, sys, tp, name);
	return add_tracepoint(p, sys, tp);
}

/*
 * The first counter enabled on a CPU for a new cgroup gets enabled_ns and running_ns from a
 * wrong base (seen on 6.18: about the uptime; its count is right). A dummy event, opened and
 * enabled first, takes that, so every reported counter has its real times. It is also the probe:
 * if it cannot be opened, no cgroup counter can (the error is returned).
 */
static int open_dummy(struct ms_perf *p)
{
	struct perf_event_attr attr = {
		.type = T_SW,
		.size = sizeof(attr),
		.config = 9,	/* PERF_COUNT_SW_DUMMY */
		.disabled = 1,
	};
	return open_cgroup_fds(p, &attr, &p->dummy.fds);
}

static int perf_open(struct ms_perf **pp, const char *spec, int cgroup_fd, json_t **skipped)
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
		p->cgroup_fd = cgroup_fd;
		if (cgroup_fd >= 0)
			p->cpus = perf_cpu_map__new_online_cpus();
	}
	if (!p || !p->evlist || !p->threads || (cgroup_fd >= 0 && !p->cpus)) {
		ret = -ENOMEM;
		goto out_close;
	}
	p->skipped = *skipped;
	find_tracefs(p->tracefs, sizeof(p->tracefs));
	if (cgroup_fd >= 0 && (ret = open_dummy(p)))
		goto out_close;
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

int ms_perf_open(struct ms_perf **pp, const char *spec, json_t **skipped)
{
	return perf_open(pp, spec, -1, skipped);
}

int ms_perf_open_cgroup(struct ms_perf **pp, const char *spec, int cgroup_fd, json_t **skipped)
{
	if (cgroup_fd < 0) {
		*pp = NULL;
		*skipped = NULL;
		return -EBADF;
	}
	return perf_open(pp, spec, cgroup_fd, skipped);
}

const char *ms_perf_mode(const struct ms_perf *p)
{
	return !p ? "none" : p->cgroup_fd >= 0 ? "cgroup" : "task";
}

static int cgroup_ioctl(struct ms_perf *p, const struct perf_ev *ev, unsigned long req)
{
	int ret = 0;

	for (int i = 0; i < perf_cpu_map__nr(p->cpus); i++)
		if (ioctl(ev->fds[i], req, 0) < 0 && !ret)
			ret = -errno;
	return ret;
}

static int for_each_ioctl(struct ms_perf *p, int (*op)(struct perf_evsel *), unsigned long req)
{
	int ret = 0, r;

	if (p && p->dummy.fds)
		cgroup_ioctl(p, &p->dummy, req);
	for (unsigned i = 0; p && i < p->n; i++) {
		if (p->ev[i].fds) {
			r = cgroup_ioctl(p, &p->ev[i], req);
		} else {
			errno = 0;
			r = op(p->ev[i].evsel) ? (errno ? -errno : -EIO) : 0;
		}
		if (r && !ret)
			ret = r;
	}
	return ret;
}

int ms_perf_enable(struct ms_perf *p)
{
	return for_each_ioctl(p, perf_evsel__enable, PERF_EVENT_IOC_ENABLE);
}

int ms_perf_disable(struct ms_perf *p)
{
	return for_each_ioctl(p, perf_evsel__disable, PERF_EVENT_IOC_DISABLE);
}

/* The sum over the CPUs, as perf_evsel__read() gives it for one task counter. */
static int read_cgroup(struct ms_perf *p, const struct perf_ev *ev, struct perf_counts_values *c)
{
	uint64_t v[3];

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < perf_cpu_map__nr(p->cpus); i++) {
		ssize_t n = read(ev->fds[i], v, sizeof(v));

		if (n != (ssize_t)sizeof(v))
			return n < 0 ? -errno : -EIO;
		c->val += v[0];
		c->ena += v[1];
		c->run += v[2];
	}
	return 0;
}

static json_t *read_one(struct ms_perf *p, const struct perf_ev *ev)
{
	struct perf_counts_values c;
	uint64_t ena, run;
	__s8 scaled = 0;
	int ret;

	errno = 0;
	ret = ev->fds ? read_cgroup(p, ev, &c) : perf_evsel__read(ev->evsel, 0, 0, &c);
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
		json_object_set_new(o, p->ev[i].name, read_one(p, &p->ev[i]));
	return o;
}

void ms_perf_close(struct ms_perf *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		if (p->ev[i].fds)
			close_fds(p->ev[i].fds, perf_cpu_map__nr(p->cpus));
	if (p->dummy.fds)
		close_fds(p->dummy.fds, perf_cpu_map__nr(p->cpus));
	/* Deleting the evlist closes every task counter and deletes its evsels. */
	perf_evlist__delete(p->evlist);
	perf_cpu_map__put(p->cpus);
	perf_thread_map__put(p->threads);
	free(p);
}

#endif /* MMSTORM_HAVE_LIBPERF */

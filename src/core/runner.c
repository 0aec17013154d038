/* The runner: each case repeat in its own process group, watched, measured and judged. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/perf_lockwait.h"
#include "mmstorm/inject.h"
#include "mmstorm/invariants.h"
#include "mmstorm/journal.h"
#include "mmstorm/kmsg.h"
#include "mmstorm/lava.h"
#include "mmstorm/perf.h"
#include "mmstorm/probe.h"
#include "mmstorm/util.h"

static volatile sig_atomic_t ms_interrupt_sig;

static void on_interrupt(int sig)
{
	ms_interrupt_sig = sig;
}

static uint64_t run_t0_ns;

static json_t *event_new(const char *kind)
{
	return json_pack("{s:s, s:I}", "ev", kind, "t_ns", (json_int_t)(ms_now_ns() - run_t0_ns));
}

/* Kernel text and error strings may hold any bytes: keep JSON valid, never drop the line. */
static json_t *json_text(const char *s)
{
	char buf[1024];
	size_t n = 0;

	for (; *s && n < sizeof(buf) - 1; s++)
		buf[n++] = ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) ? *s : '?';
	buf[n] = '\0';
	return json_string(buf);
}

static int emit(struct ms_sink *sink, json_t *ev)
{
	int ret;

	if (!ev)
		return -ENOMEM;
	ret = sink->event(sink, ev);
	/* A rejected event is recorded as a problem by the sink; the run goes on. */
	return ret == -EINVAL ? 0 : ret;
}

static json_t *params_json(const struct ms_case *c)
{
	json_t *p = json_object();
	char buf[MS_PARAM_STR_MAX];

	for (size_t i = 0; c->wl->params && c->wl->params[i].name; i++) {
		ms_param_format(&c->wl->params[i], &c->vals[i], buf, sizeof(buf));
		json_object_set_new(p, c->wl->params[i].name, json_text(buf));
	}
	return p;
}

static json_t *inject_json(const struct ms_case *c)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < c->ninj; i++)
		json_array_append_new(a, json_string(c->inj[i]->name));
	return a;
}

static int emit_run_start(struct ms_sink *sink, const struct ms_suite *s,
			  const struct ms_run_opts *o)
{
	json_t *ev = event_new("run_start"), *cmd = json_array(), *env;

	for (int i = 0; i < o->argc; i++)
		json_array_append_new(cmd, json_text(o->argv[i]));
	env = json_pack("{s:s}", "where", o->in_guest ? "guest" : "host");
	if (o->env)
		json_object_update(env, o->env);
	json_object_set_new(ev, "run_id", json_text(o->run_id));
	json_object_set_new(ev, "schema", json_string(MS_EVENTS_SCHEMA));
	json_object_set_new(ev, "mmstorm", json_pack("{s:s}", "version", MMSTORM_VERSION));
	json_object_set_new(ev, "command", cmd);
	json_object_set_new(ev, "suite",
			    json_pack("{s:o, s:o, s:I, s:I, s:I}", "path", json_text(s->path),
				      "name", json_text(s->name), "seed", (json_int_t)s->seed,
				      "ncases", (json_int_t)s->ncases, "first_case",
				      (json_int_t)o->first_case));
	json_object_set_new(ev, "kernel", ms_probe_kernel(o->config_path));
	json_object_set_new(ev, "cpu", ms_probe_cpu());
	json_object_set_new(ev, "memory", ms_probe_memory());
	json_object_set_new(ev, "env", env);
	return emit(sink, ev);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? 0 : 0;
	unlink(path);
	return 0;
}

/*
 * What a case hands back beyond checks and notes (the fuzzer's shrunk sequence and C
 * reproducer): a JSON object it left in its tmpdir as artifacts.json. In a guest the event
 * stream is the only way out, so it travels in case_end.
 */
static json_t *read_artifacts(const char *tmpdir)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/artifacts.json", tmpdir);
	if (access(path, R_OK))
		return NULL;
	return json_load_file(path, 0, NULL);
}

/* Remove a case's tmpdir without crossing into anything a workload left mounted there. */
static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* ---- inside the case process ---- */

/*
 * Counters of the case as JSON text in the shm, read by the runner after the case is gone.
 * After teardown: every worker has exited, so its counts are folded into ours.
 */
static void perf_store(struct ms_ctx *ctx, struct ms_perf *perf, json_t *skipped)
{
	json_t *o = json_pack("{s:s, s:o, s:O}", "mode", ms_perf_mode(perf), "counters",
			      ms_perf_read(perf), "skipped", skipped);
	size_t n = o ? json_dumpb(o, ctx->shm->perf, sizeof(ctx->shm->perf) - 1, JSON_COMPACT) : 0;

	if (!n || n >= sizeof(ctx->shm->perf))
		snprintf(ctx->shm->perf, sizeof(ctx->shm->perf), "{\"error\": \"perf counters "
			 "do not fit in %zu bytes\"}", sizeof(ctx->shm->perf));
	else
		ctx->shm->perf[n] = '\0';
	json_decref(o);
}

/*
 * perf_mode=auto counts per cgroup where the case can have one of its own: inherited per-task
 * counters cost every fork and exit a copy and a fold of each counter, cgroup counters nothing.
 */
static int perf_open_case(struct ms_ctx *ctx, struct ms_perf **perf, json_t **skipped)
{
	const struct ms_case *c = ctx->c;
	char why[1024] = "no journal";
	int ret = -ENOTSUP, fd = -1;

	if (c->perf_mode != MS_PERF_TASK && strcmp(c->perf, "none") && !ms_perf_unavailable()) {
		if (ctx->journal)
			ret = ms_perf_cgroup_enter(ctx->journal, &fd, why, sizeof(why));
		if (ret && c->perf_mode == MS_PERF_CGROUP)
			return ms_error(ctx, -ret, "perf_mode=cgroup: %s", why);
		if (ret)
			ms_note(ctx, "perf: counting per task (no cgroup of the case's own: %s)",
				why);
	}
	if (fd >= 0) {
		ret = ms_perf_open_cgroup(perf, c->perf, fd, skipped);
		close(fd);
		/*
		 * ENOENT where nothing ever wrote the v2 root's subtree_control (or rebound a v1
		 * controller): the kernel never computed the root's subtree_ss_mask, so its children
		 * get no implicit perf_event css (the guest agent writes +pids for that). Per task
		 * still counts.
		 */
		if (ret && ret != -ENOMEM && c->perf_mode == MS_PERF_CGROUP)
			return ms_error(ctx, -ret, "perf_mode=cgroup: cgroup counters: %s",
					strerror(-ret));
		if (ret && ret != -ENOMEM) {
			ms_note(ctx, "perf: counting per task (cgroup counters: perf_event_open: "
				"%s)", strerror(-ret));
			fd = -1;
		}
	}
	if (fd < 0)
		ret = ms_perf_open(perf, c->perf, skipped);
	if (ret)
		return ms_error(ctx, -ret, "perf=%s: %s", c->perf, strerror(-ret));
	return 0;
}

/* The runner samples from outside with this window (ms_lw_sampler_drain()). */
static uint64_t mark_time(uint64_t *slot)
{
	uint64_t t;

	__atomic_store_n(slot, 1, __ATOMIC_SEQ_CST);
	t = ms_now_ns();
	__atomic_store_n(slot, t, __ATOMIC_SEQ_CST);
	return t;
}

static int case_main(struct ms_ctx *ctx, const struct ms_run_opts *o)
{
	const struct ms_case *c = ctx->c;
	const struct ms_workload *wl = c->wl;
	struct ms_perf *perf = NULL;
	json_t *perf_skipped = NULL;
	unsigned armed = 0;
	int ret = 0;

	ctx->shm->phase = MS_PH_PROBE;
	if (wl->guest_only && !o->in_guest)
		return ms_skip(ctx, "test-only workload %s runs only inside a VM guest "
			       "(`mmstorm vm`)", wl->name);
	for (unsigned i = 0; i < c->ninj; i++) {
		if (c->inj[i]->destructive && !o->in_guest && !o->allow_destructive)
			return ms_skip(ctx, "injector %s is destructive: refused on bare metal "
				       "without --allow-destructive", c->inj[i]->name);
		if (c->inj[i]->probe && (ret = c->inj[i]->probe(ctx)))
			return ret;
	}
	if (wl->probe && (ret = wl->probe(ctx)))
		return ret;
	ctx->shm->phase = MS_PH_SETUP;
	for (; armed < c->ninj; armed++)
		if (c->inj[armed]->arm && (ret = c->inj[armed]->arm(ctx)))
			goto out_disarm;
	/*
	 * After arming (memcg moves us to its cgroup; helpers the injectors spawn are not the
	 * case's), before setup: workers spawned there must be counted (counters start disabled).
	 */
	if ((ret = perf_open_case(ctx, &perf, &perf_skipped)))
		goto out_disarm;
	if (wl->setup && (ret = wl->setup(ctx)))
		goto out_teardown;
	ctx->shm->phase = MS_PH_RUN;
	ctx->start_ns = mark_time(&ctx->shm->run_start_ns);
	ctx->deadline_ns = c->duration_ns ? ctx->start_ns + (uint64_t)c->duration_ns : 0;
	ms_perf_enable(perf);
	for (uint64_t it = 0; !c->iterations || it < c->iterations; it++) {
		if (it && ms_should_stop(ctx))
			break;
		ret = wl->run(ctx, it);
		__atomic_store_n(&ctx->shm->iterations, it + 1, __ATOMIC_RELAXED);
		if (ret)
			break;
	}
out_teardown:
	ctx->shm->phase = MS_PH_TEARDOWN;
	if (wl->teardown)
		wl->teardown(ctx);
out_disarm:
	while (armed--)
		if (c->inj[armed]->disarm)
			c->inj[armed]->disarm(ctx);
	mark_time(&ctx->shm->run_end_ns);
	ms_perf_disable(perf);
	if (perf_skipped)
		perf_store(ctx, perf, perf_skipped);
	ms_perf_close(perf);
	json_decref(perf_skipped);
	ctx->shm->phase = MS_PH_DONE;
	return ret;
}

static void case_child(struct ms_ctx *ctx, const struct ms_run_opts *o, pid_t runner,
		       int gate[2])
{
	char go;
	int ret;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != runner)
		_exit(125);
	/* --perf-record: wait until perf follows us, or our workers would escape it. */
	if (gate[0] >= 0) {
		close(gate[1]);
		if (read(gate[0], &go, 1) != 1)
			_exit(125);
		close(gate[0]);
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	ret = case_main(ctx, o);
	if (ret < 0 && !ctx->shm->status) {
		int expect = 0;

		/* A negative return without ms_error(): still an ERROR, with errno text. */
		if (__atomic_compare_exchange_n(&ctx->shm->status, &expect, MS_V_ERROR, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			snprintf(ctx->shm->reason, sizeof(ctx->shm->reason), "%s failed: %s",
				 ctx->c->wl->name, strerror(-ret));
	}
	_exit(0);
}

/* ---- in the runner ---- */

struct case_watch {
	uint64_t pt_before_kb, pt_peak_kb, spt_before_kb, spt_peak_kb;
	bool timed_out;
	int status;
	int64_t duration_ns;
};

static void sample_pagetables(struct case_watch *w)
{
	uint64_t kb;

	if (!ms_meminfo_kb("PageTables", &kb) && kb > w->pt_peak_kb)
		w->pt_peak_kb = kb;
	if (!ms_meminfo_kb("SecPageTables", &kb) && kb > w->spt_peak_kb)
		w->spt_peak_kb = kb;
}

/* Reap every process of the case: the group leader is gone, workers may linger. */
static void reap_group(pid_t pgid)
{
	kill(-pgid, SIGKILL);
	/* We are a child subreaper: orphans of the case come back to us. */
	for (int tries = 0; tries < 200; tries++) {
		pid_t p = waitpid(-1, NULL, WNOHANG);

		if (p > 0)
			continue;
		if (p < 0 && errno == ECHILD)
			break;
		if (kill(-pgid, 0) < 0 && errno == ESRCH)
			break;
		usleep(10000);
	}
}

/* Every 20 ms: page tables sampled, and the mmap_lock sample buffers (if any) drained. */
static int wait_case(pid_t pid, int64_t timeout_ns, struct case_watch *w,
		     struct ms_lw_sampler *lw, struct ms_shm *shm)
{
	uint64_t start = ms_now_ns(), deadline = start + (uint64_t)timeout_ns;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	for (;;) {
		pid_t r = waitpid(pid, &w->status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			w->status = 0;
			break;
		}
		sample_pagetables(w);
		ms_lw_sampler_drain(lw, &shm->run_start_ns, &shm->run_end_ns);
		if (ms_interrupt_sig || ms_now_ns() >= deadline) {
			w->timed_out = !ms_interrupt_sig;
			kill(-pid, SIGKILL);
			waitpid(pid, &w->status, 0);
			break;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, 20);
		} else {
			usleep(20000);
		}
	}
	w->duration_ns = (int64_t)(ms_now_ns() - start);
	if (pfd >= 0)
		close(pfd);
	reap_group(pid);
	return 0;
}

static enum ms_verdict judge(const struct ms_shm *shm, const struct case_watch *w,
			     const struct ms_kmsg_watch *k, bool kill_expected, char *reason,
			     size_t len)
{
	static const char *const phases[] = { "start", "probe", "setup", "run", "teardown", "" };
	enum ms_verdict v = MS_V_PASS;

	reason[0] = '\0';
	if (ms_interrupt_sig) {
		snprintf(reason, len, "interrupted by signal %d during %s", (int)ms_interrupt_sig,
			 phases[shm->phase]);
		v = MS_V_ERROR;
	} else if (w->timed_out) {
		snprintf(reason, len, "no result within the timeout of %.3f s (stuck in %s after "
			 "%llu iterations)", w->duration_ns / 1e9, phases[shm->phase],
			 (unsigned long long)shm->iterations);
		v = MS_V_TIMEOUT;
	} else if (WIFSIGNALED(w->status) && kill_expected) {
		/* An injector's kill (sigkill, a memcg OOM kill): judged by the checks. */
		snprintf(reason, len, "case process killed by signal %d (%s) during %s: an "
			 "injector's doing", WTERMSIG(w->status), strsignal(WTERMSIG(w->status)),
			 phases[shm->phase]);
	} else if (WIFSIGNALED(w->status)) {
		snprintf(reason, len, "case process killed by signal %d (%s) during %s",
			 WTERMSIG(w->status), strsignal(WTERMSIG(w->status)), phases[shm->phase]);
		v = MS_V_ERROR;
	} else if (WIFEXITED(w->status) && WEXITSTATUS(w->status)) {
		snprintf(reason, len, "case process exited with status %d during %s",
			 WEXITSTATUS(w->status), phases[shm->phase]);
		v = MS_V_ERROR;
	} else if (shm->status == MS_V_SKIP || shm->status == MS_V_ERROR) {
		snprintf(reason, len, "%s", shm->reason);
		v = shm->status;
	}
	if (v <= MS_V_SKIP && shm->checks_failed) {
		snprintf(reason, len, "%llu of %llu checks failed; first: %s: %s",
			 (unsigned long long)shm->checks_failed,
			 (unsigned long long)shm->checks_run,
			 shm->nfail ? shm->failures[0].what : "?",
			 shm->nfail ? shm->failures[0].detail : "?");
		v = MS_V_FAIL;
	}
	/* The kernel's word outranks ours: a WARN or BUG while the case ran is the finding. */
	if (k->worst == MS_KMSG_CRASH && v < MS_V_CRASH) {
		snprintf(reason, len, "kernel: %s", k->first);
		v = MS_V_CRASH;
	} else if (k->worst == MS_KMSG_FAIL && v < MS_V_FAIL) {
		snprintf(reason, len, "kernel: %s", k->first);
		v = MS_V_FAIL;
	}
	return v;
}

static json_t *kmsg_json(const struct ms_kmsg_watch *k)
{
	json_t *ex = json_array();
	const char *cls = k->worst == MS_KMSG_CRASH ? "CRASH" :
			  k->worst == MS_KMSG_FAIL ? "FAIL" : "none";

	if (k->worst != MS_KMSG_NONE)
		for (unsigned i = 0; i < k->nlines && i < MS_KMSG_EXCERPT_LINES; i++)
			json_array_append_new(ex, json_text(k->excerpt[i]));
	return json_pack("{s:s, s:o, s:o, s:b, s:I}", "class", cls, "first", json_text(k->first),
			 "excerpt", ex, "watched", k->fd >= 0, "lines", (json_int_t)k->total);
}

/* Per-op counts: the counters over the workload's first counter metric (its op count). */
static json_t *perf_json(const struct ms_shm *shm)
{
	json_t *p, *per_op, *v;
	const char *name;
	uint64_t ops = 0;
	const char *op = NULL;

	if (!shm->perf[0])
		return NULL;
	p = json_loads(shm->perf, 0, NULL);
	if (!p)
		return json_pack("{s:s}", "error", "unreadable perf counters");
	for (unsigned i = 0; i < shm->nmetrics && i < MS_MAX_METRICS && !op; i++)
		if (shm->defs[i].kind == MS_M_COUNTER) {
			op = shm->defs[i].name;
			ops = shm->counters[i];
		}
	if (!op || !ops)
		return p;
	per_op = json_object();
	json_object_foreach(json_object_get(p, "counters"), name, v)
		if (json_is_integer(json_object_get(v, "value")))
			json_object_set_new(per_op, name, json_real((double)json_integer_value(
				json_object_get(v, "value")) / (double)ops));
	json_object_set_new(p, "per_op", json_pack("{s:s, s:I, s:o}", "op", op, "ops",
						 (json_int_t)ops, "counters", per_op));
	return p;
}

/*
 * Counter values also appear among the metrics as "perf.<event>" counters, so compare and
 * report treat them like any other metric (A/B ratio, CI, verdict) without knowing perf.
 */
static void perf_as_metrics(json_t *metrics, const json_t *perf)
{
	const char *name;
	json_t *v, *val;
	char key[96];

	json_object_foreach(json_object_get(perf, "counters"), name, v) {
		val = json_object_get(v, "value");
		if (!json_is_integer(val))
			continue;
		snprintf(key, sizeof(key), "perf.%s", name);
		json_object_set_new(metrics, key, json_pack("{s:s, s:s, s:I}", "kind", "counter",
							     "unit", "events", "value",
							     json_integer_value(val)));
	}
}

/*
 * mmap-lock-wait, sampled on the case from here: a sampler inside the case (a reader thread,
 * its stack, buffers and ring-buffer mappings) would change the page tables the workloads
 * measure (thp-split's exact VmPTE checks failed with it).
 */
struct case_lw {
	bool wanted;
	struct ms_lw_sampler *s;
	char why[1024];			/* why not sampled, for the case's "skipped" list */
};

/* After the case's processes are gone; the metric comes after the workload's own. */
static void lw_finish(struct ms_ctx *ctx, struct case_lw *lw)
{
	int id;

	if (!lw->s)
		return;
	ms_lw_sampler_stop(lw->s, &ctx->shm->run_start_ns, &ctx->shm->run_end_ns);
	if (ctx->shm->run_start_ns <= 1)
		return;
	id = ms_metric(ctx, "perf.mmap_lock_wait_ns", MS_M_HIST, "ns");
	if (id < 0) {
		ms_note(ctx, "perf: no metric slot left for perf.mmap_lock_wait_ns");
		return;
	}
	ms_hist_merge(&ctx->shm->hists[ctx->shm->defs[id].slot], ms_lw_sampler_hist(lw->s));
}

static void lw_into_perf(json_t *pj, const struct ms_shm *shm, const struct case_lw *lw)
{
	json_t *skipped = json_object_get(pj, "skipped");

	if (!lw->wanted || !json_is_array(skipped))
		return;
	if (!lw->s)
		json_array_append_new(skipped, json_pack("{s:s, s:o}", "event", MS_PERF_LOCKWAIT,
							 "reason", json_text(lw->why)));
	else if (shm->run_start_ns > 1)
		json_object_set_new(pj, "mmap_lock_wait", ms_lw_sampler_json(lw->s));
}

static int run_repeat(const struct ms_suite *s, const struct ms_run_opts *o,
		      struct ms_journal *j, struct ms_sink *sink, unsigned idx, unsigned rep,
		      enum ms_verdict *out)
{
	const struct ms_case *c = &s->cases[idx];
	struct case_watch w = { 0 };
	struct case_lw lw = { .wanted = false };
	json_t *pj, *perf_rec = NULL;
	json_t *metrics;
	int gate[2] = { -1, -1 };
	pid_t perf_pid = -1;
	char prdir[4096];
	struct ms_kmsg_watch k;
	struct ms_ctx ctx = { 0 };
	json_t *inj = NULL;
	json_t *artifacts;
	bool kill_expected;
	int restore_failed = 0;
	char reason[1024];
	enum ms_verdict v;
	uint64_t kb = 0;
	long mark;
	pid_t pid;
	json_t *ev;
	int ret;

	ev = event_new("case_start");
	json_object_set_new(ev, "case", json_string(c->name));
	json_object_set_new(ev, "index", json_integer(idx));
	json_object_set_new(ev, "repeat", json_integer(rep));
	json_object_set_new(ev, "repeats", json_integer(c->repeat));
	json_object_set_new(ev, "workload", json_string(c->wl->name));
	json_object_set_new(ev, "params", params_json(c));
	json_object_set_new(ev, "inject", inject_json(c));
	json_object_set_new(ev, "timeout_ns", json_integer(c->timeout_ns));
	json_object_set_new(ev, "seed", json_integer((json_int_t)(c->seed + rep)));
	if ((ret = emit(sink, ev)))
		return ret;

	ctx.c = c;
	ctx.journal = j;
	ctx.in_guest = o->in_guest;
	ctx.allow_destructive = o->in_guest || o->allow_destructive;
	ctx.seed = c->seed + rep;
	ctx.shm = ms_shm_new();
	if (!ctx.shm)
		return -ENOMEM;
	snprintf(ctx.tmpdir, sizeof(ctx.tmpdir), "%s/mmstorm-case-%d-%u-%u",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(), idx, rep);
	if (mkdir(ctx.tmpdir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		goto out_shm;
	}
	mark = ms_journal_mark(j);
	ms_kmsg_start(&k);
	if (!ms_meminfo_kb("PageTables", &kb))
		w.pt_before_kb = w.pt_peak_kb = kb;
	if (!ms_meminfo_kb("SecPageTables", &kb))
		w.spt_before_kb = w.spt_peak_kb = kb;
	/* Injectors' shared state and the "nothing lost" baseline, before the case exists. */
	if ((ret = ms_inject_case_begin(&ctx, o->suite_path)))
		goto out_journal;

	lw.wanted = !ms_perf_unavailable() && ms_perf_lockwait_wanted(c->perf);
	/* The case waits at a gate until perf record or the mmap_lock sampler follows it. */
	if ((o->perf_record_dir || lw.wanted) && pipe2(gate, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out_journal;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out_journal;
	}
	if (pid == 0)
		case_child(&ctx, o, getppid(), gate);
	setpgid(pid, pid);	/* also in the child: whichever runs first */
	if (lw.wanted)
		ms_perf_lockwait_open(&lw.s, pid, lw.why, sizeof(lw.why));
	if (o->perf_record_dir) {
		char why[256];
		int pr;

		snprintf(prdir, sizeof(prdir), "%s/perf-%s-%u", o->perf_record_dir, c->name, rep);
		pr = ms_mkdir_p(prdir, 0755);
		if (!pr)
			pr = ms_perf_record_start(prdir, pid, &perf_pid);
		if (pr == MS_SKIP) {
			ms_perf_record_check(why, sizeof(why));
			perf_rec = json_pack("{s:s}", "skipped", why);
		} else if (pr) {
			perf_rec = json_pack("{s:s}", "error", strerror(-pr));
		}
	}
	if (gate[1] >= 0) {
		close(gate[0]);
		if (write(gate[1], "g", 1) != 1)
			perror("case gate");
		close(gate[1]);
	}
	wait_case(pid, c->timeout_ns, &w, lw.s, ctx.shm);
	lw_finish(&ctx, &lw);
	if (perf_pid > 0) {
		json_t *top = NULL;
		int pr = ms_perf_record_stop(prdir, perf_pid, &top);

		perf_rec = pr ? json_pack("{s:s}", "error", strerror(-pr)) :
			   json_pack("{s:s, s:o}", "dir", prdir, "top", top);
	}

	kill_expected = WIFSIGNALED(w.status) && ms_inject_killed(&ctx, pid, w.status);
	/* Knobs back and files gone first: the invariants compare with the pre-case state. */
	restore_failed = ms_journal_restore_to(j, mark, stderr);
	artifacts = read_artifacts(ctx.tmpdir);
	rm_tree(ctx.tmpdir);
	inj = ms_inject_case_end(&ctx);
	ms_kmsg_poll(&k);
	ms_kmsg_discount(&k, ctx.shm->kmsg_explained, ctx.shm->kmsg_explained_n);
	v = judge(ctx.shm, &w, &k, kill_expected, reason, sizeof(reason));
	*out = v;
	ev = event_new("case_end");
	json_object_set_new(ev, "case", json_string(c->name));
	json_object_set_new(ev, "index", json_integer(idx));
	json_object_set_new(ev, "repeat", json_integer(rep));
	json_object_set_new(ev, "verdict", json_string(ms_verdict_name(v)));
	json_object_set_new(ev, "reason", json_text(reason));
	json_object_set_new(ev, "duration_ns", json_integer(w.duration_ns));
	json_object_set_new(ev, "iterations", json_integer((json_int_t)ctx.shm->iterations));
	metrics = ms_shm_metrics_json(ctx.shm);
	json_object_set_new(ev, "metrics", metrics);
	json_object_set_new(ev, "checks", ms_shm_checks_json(ctx.shm));
	json_object_set_new(ev, "notes", ms_shm_notes_json(ctx.shm));
	if (artifacts)
		json_object_set_new(ev, "artifacts", artifacts);
	if ((pj = perf_json(ctx.shm))) {
		lw_into_perf(pj, ctx.shm, &lw);
		perf_as_metrics(metrics, pj);
		json_object_set_new(ev, "perf", pj);
	}
	if (perf_rec)
		json_object_set_new(ev, "perf_record", perf_rec);
	sample_pagetables(&w);
	kb = 0;
	ms_meminfo_kb("PageTables", &kb);
	json_object_set_new(ev, "pgtables",
			    json_pack("{s:I, s:I, s:I, s:I, s:I}",
				      "pagetables_before_bytes", (json_int_t)w.pt_before_kb * 1024,
				      "pagetables_after_bytes", (json_int_t)kb * 1024,
				      "pagetables_peak_bytes", (json_int_t)w.pt_peak_kb * 1024,
				      "secpagetables_before_bytes", (json_int_t)w.spt_before_kb * 1024,
				      "secpagetables_peak_bytes", (json_int_t)w.spt_peak_kb * 1024));
	json_object_set_new(ev, "kmsg", kmsg_json(&k));
	if (inj)
		json_object_set_new(ev, "inject", inj);
	ret = 0;
out_journal:
	/* Knobs the case changed go back before the next case starts, even after a timeout. */
	if ((ms_journal_restore_to(j, mark, stderr) > 0 || restore_failed > 0) && ret == 0)
		json_object_set_new(ev, "journal", json_string("some knobs could not be restored; "
							      "see stderr"));
	ms_kmsg_stop(&k);
	rm_tree(ctx.tmpdir);
	if (ret == 0)
		ret = emit(sink, ev);
	ms_lw_sampler_close(lw.s);
out_shm:
	ms_inject_case_free(&ctx);
	ms_shm_free(ctx.shm);
	return ret;
}

static void emit_not_selected(struct ms_sink *sink, const struct ms_case *c, unsigned idx,
			      const char *filter)
{
	char reason[160];
	json_t *ev = event_new("case_end");

	snprintf(reason, sizeof(reason), "not selected (--case %s)", filter);
	json_object_set_new(ev, "case", json_string(c->name));
	json_object_set_new(ev, "index", json_integer(idx));
	json_object_set_new(ev, "repeat", json_integer(0));
	json_object_set_new(ev, "verdict", json_string("SKIP"));
	json_object_set_new(ev, "reason", json_text(reason));
	json_object_set_new(ev, "duration_ns", json_integer(0));
	json_object_set_new(ev, "iterations", json_integer(0));
	json_object_set_new(ev, "metrics", json_object());
	json_object_set_new(ev, "checks", json_pack("{s:i, s:i, s:[]}", "run", 0, "failed", 0,
						  "failures"));
	json_object_set_new(ev, "notes", json_array());
	json_object_set_new(ev, "pgtables", json_object());
	json_object_set_new(ev, "kmsg", json_pack("{s:s, s:s, s:[]}", "class", "none", "first",
						 "", "excerpt"));
	emit(sink, ev);
}

int ms_run_suite(const struct ms_suite *s, const struct ms_run_opts *o, struct ms_journal *j,
		 struct ms_sink *sink, int *interrupted)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	enum ms_verdict worst = MS_V_PASS, v;
	int ret;

	run_t0_ns = ms_now_ns();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Orphaned workers of a case are re-parented to us, so we can reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	if ((ret = emit_run_start(sink, s, o)))
		return ret;
	for (unsigned i = o->first_case; i < s->ncases && !ms_interrupt_sig; i++) {
		/* Another shard runs it, and reports it: nothing here. */
		if (o->case_set && !ms_case_set_has(o->case_set, i))
			continue;
		if (o->case_filter && strcmp(o->case_filter, s->cases[i].name)) {
			/* Reported, so KTAP numbering and the plan stay those of the whole suite. */
			emit_not_selected(sink, &s->cases[i], i, o->case_filter);
			continue;
		}
		for (unsigned r = 0; r < s->cases[i].repeat && !ms_interrupt_sig; r++) {
			if (o->only_repeat >= 0 && (unsigned)o->only_repeat != r)
				continue;
			ret = run_repeat(s, o, j, sink, i, r, &v);
			if (ret)
				return ret;
			if (v > worst)
				worst = v;
		}
	}
	*interrupted = ms_interrupt_sig;
	return worst;
}

/* Case dirs of an mmstorm that was killed (its pid gone) are removed at the next start. */
static void remove_stale_case_dirs(FILE *f)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[4096];
	struct dirent *d;
	DIR *dir = opendir(tmp);
	int pid;

	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (sscanf(d->d_name, "mmstorm-case-%d-", &pid) != 1 || pid <= 0 ||
		    kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp, d->d_name);
		fprintf(f, "# mmstorm: removing %s left by a killed run\n", path);
		rm_tree(path);
	}
	closedir(dir);
}

int ms_state_open(struct ms_journal **jp, FILE *f)
{
	const char *dir = getenv("MMSTORM_STATE_DIR");
	long pending;
	int ret;

	if (!dir || !*dir)
		dir = "/run/mmstorm";
	if ((ret = ms_mkdir_p(dir, 0700)))
		return ret;
	/* A killed mmstorm's case processes die with it, but may take a moment to go. */
	for (int tries = 0; tries < 50; tries++) {
		ret = ms_journal_open(jp, dir);
		if (ret != -EBUSY)
			break;
		usleep(100000);
	}
	if (ret)
		return ret;
	pending = ms_journal_pending(*jp);
	if (pending > 0) {
		fprintf(f, "# mmstorm: an earlier run did not finish; restoring %ld knob change(s) "
			"from %s\n", pending, ms_journal_path(*jp));
		ms_journal_restore_to(*jp, 0, f);
	}
	remove_stale_case_dirs(f);
	return 0;
}

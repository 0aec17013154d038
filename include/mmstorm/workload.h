/* The workload contract: an ops table per workload, and the calls a workload makes on its case. */
#ifndef MMSTORM_WORKLOAD_H
#define MMSTORM_WORKLOAD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mmstorm/param.h"

struct ms_ctx;	/* one case repeat, owned by the core; passed to every op */

/*
 * A workload never prints, times or forks workers by itself: it records samples, checks and
 * counters through ms_ctx and lets the core handle processes, watchdogs and output.
 *
 * probe:    may this kernel run it? Return 0, or MS_SKIP after ms_skip(ctx, reason), or a
 *           negative errno after ms_error().
 * setup:    map regions, raise pools (through ms_knob_write only), register metrics.
 * run:      one iteration; returns 0, MS_SKIP, or -errno. Checks failing do not stop the run.
 * teardown: release everything setup made (always called if setup was called).
 */
#define MS_SKIP 1

struct ms_workload {
	const char *name;
	const char *summary;
	const struct ms_param *params;	/* terminated by an entry with .name == NULL */
	int (*probe)(struct ms_ctx *ctx);
	int (*setup)(struct ms_ctx *ctx);
	int (*run)(struct ms_ctx *ctx, uint64_t iter);
	void (*teardown)(struct ms_ctx *ctx);
	bool guest_only;		/* destructive test-only workloads: refuse outside a VM guest */
};

/* ---- parameters ---- */
int64_t ms_param_i(const struct ms_ctx *ctx, const char *name);	/* INT/SIZE/TIME/BOOL/ENUM */
const char *ms_param_s(const struct ms_ctx *ctx, const char *name);	/* STRING, ENUM choice name */

/* ---- private state of the workload (lives in the case process) ---- */
void *ms_priv(const struct ms_ctx *ctx);
void ms_set_priv(struct ms_ctx *ctx, void *priv);

/* ---- metrics (shared memory: callable from ms_spawn()ed workers without syscalls) ---- */
enum ms_metric_kind { MS_M_HIST, MS_M_COUNTER, MS_M_GAUGE };
/* Register in setup(); returns a metric id >= 0 or -ENOSPC. Names are snake_case with unit. */
int ms_metric(struct ms_ctx *ctx, const char *name, enum ms_metric_kind kind, const char *unit);
void ms_sample(struct ms_ctx *ctx, int id, uint64_t value);	/* histogram */
void ms_count(struct ms_ctx *ctx, int id, uint64_t delta);		/* counter */
void ms_gauge(struct ms_ctx *ctx, int id, int64_t value);		/* last value and peak */

/* A workload's metrics as a table: each registered into *id; a failure is an ERROR naming it. */
struct ms_metric_spec {
	int *id;
	const char *name;
	enum ms_metric_kind kind;
	const char *unit;
};
int ms_metrics(struct ms_ctx *ctx, const struct ms_metric_spec *m, size_t n);

/* ---- checks: correctness assertions, recorded with expected vs observed ---- */
bool ms_check(struct ms_ctx *ctx, bool ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
bool ms_check_eq(struct ms_ctx *ctx, const char *what, uint64_t want, uint64_t got);
/*
 * Compare len bytes: on mismatch, record the first differing byte's offset, address
 * (base + offset), page index (offset / page_size), expected and observed values.
 */
bool ms_check_mem(struct ms_ctx *ctx, const char *what, const void *want, const void *got,
		  size_t len, uintptr_t base, size_t page_size);

/* ---- verdict modifiers ---- */
int ms_skip(struct ms_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ms_error(struct ms_ctx *ctx, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));	/* returns -err (err > 0) for `return ms_error()` */
/* Informational note attached to the case result (e.g. "THP mode was never; set madvise"). */
void ms_note(struct ms_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The case's own model predicted n more kernel log lines containing substr (one substr a
 * case; the first one set wins): the runner does not hold them against the case, as long as
 * the kernel said no more such lines than predicted (ms_kmsg_discount()).
 */
void ms_kmsg_explained(struct ms_ctx *ctx, const char *substr, uint64_t n);

/* ---- processes ---- */
/*
 * Fork a worker in the case's process group; it runs fn(ctx, arg, idx) and _exit()s with its
 * return value (0 = ok). Dies with the case (PR_SET_PDEATHSIG). Returns pid or -errno.
 */
pid_t ms_spawn(struct ms_ctx *ctx, int (*fn)(struct ms_ctx *, void *, unsigned), void *arg,
	       unsigned idx);
/* Wait for a spawned worker; returns its exit code, or -errno; a signal death is an error. */
int ms_wait(struct ms_ctx *ctx, pid_t pid);
/* True when the case should stop iterating (duration reached or watchdog warned). */
bool ms_should_stop(const struct ms_ctx *ctx);
/* Seed for this case repeat (suite seed ^ case ^ repeat): workloads derive all randomness. */
uint64_t ms_seed(const struct ms_ctx *ctx);

/* ---- machine state: every knob write goes through the journal ---- */
/* Writes value to path after journaling the old value; restored at case end. 0 or -errno. */
int ms_knob_write(struct ms_ctx *ctx, const char *path, const char *value);
/* Where a workload keeps temporary files and mounts (created per case, removed after). */
const char *ms_tmpdir(const struct ms_ctx *ctx);
/* True when mmstorm runs as the agent inside a throw-away VM guest. */
bool ms_in_guest(const struct ms_ctx *ctx);
/* True in a guest or under --allow-destructive: a workload may then poison memory (hwpoison). */
bool ms_destructive_ok(const struct ms_ctx *ctx);

#endif

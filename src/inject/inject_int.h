/* Private to src/inject: helpers the injectors share (debugfs fault attributes, errnos). */
#ifndef MMSTORM_INJECT_INT_H
#define MMSTORM_INJECT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mmstorm/inject.h"
#include "mmstorm/invariants.h"
#include "mmstorm/workload.h"

#define INJ_DEBUGFS "/sys/kernel/debug"

/* ---- documented errors of the calls at injection points ---- */

/*
 * True when err is an error the call's man page documents for a resource shortage, i.e. what
 * a failed allocation inside it may return. Points with no list (phases) accept any error.
 */
bool inj_errno_documented(const char *point, int err);
/*
 * Does a suite's point name (want) select the point a workload reached? Points may carry the
 * request after a colon ("ioctl:UFFDIO_COPY", "madvise:MADV_COLLAPSE"): the bare call name
 * selects all of them, the full name one.
 */
bool inj_point_match(const char *want, const char *point);
/* "ENOMEM EAGAIN" for messages; "any" for points without a list. */
const char *inj_errno_list(const char *point);

/* Per-errno tallies kept in shared state, for the notes. */
#define INJ_ERRNO_SLOTS 8

struct inj_errstat {
	uint32_t err[INJ_ERRNO_SLOTS];
	uint64_t count[INJ_ERRNO_SLOTS];
};

void inj_errstat_add(struct inj_errstat *st, int err);
/* "ENOMEM x12, EAGAIN x1" */
void inj_errstat_text(const struct inj_errstat *st, char *buf, size_t len);

/*
 * Judge one call at the point an injector targeted: a failure must carry a documented error.
 * Records one check; name is the injector, what the call ("fork n=3").
 */
void inj_check_failure(struct ms_ctx *ctx, const char *name, const char *point,
		       const char *what, long ret, int err);

/* ---- per-thread marks: what before() set up, for after() in the same thread ---- */

#define INJ_SLOTS 64

struct inj_slot {
	int32_t tid;		/* 0 = free */
	int32_t fd;		/* an fd the thread keeps open across calls (fail-nth), or -1 */
	int64_t value;		/* what before() recorded */
};

/* The slot of the calling thread, claimed when claim is set; NULL if none (or all taken). */
struct inj_slot *inj_slot(struct inj_slot *slots, bool claim);

/* ---- debugfs fault attributes (failslab, fail_page_alloc, fail_function) ---- */

/*
 * The parameters of one fault attribute directory, named PREFIX_probability and so on, so the
 * same suite can set failslab and fail_page_alloc apart.
 */
struct inj_fa {
	const struct ms_injector *inj;
	const char *dir;		/* "failslab" under debugfs */
	const char *prefix;		/* "slab" */
	const char *config;		/* "CONFIG_FAILSLAB", for SKIP reasons */
	bool gfp;			/* has ignore-gfp-wait (PREFIX_ignore_gfp_wait) */
	bool page;			/* has min-order (PREFIX_min_order) */
	bool task_filter_param;		/* PREFIX_task_filter chooses task-filter (else always on) */
};

#define INJ_FA_PARAMS(pfx, what) \
	{ pfx "_probability", MS_P_INT, "10", "%", 0, 100, NULL, \
	  "chance that a " what " allocation of a case process fails" }, \
	{ pfx "_interval", MS_P_INT, "1", "", 1, 1000000, NULL, \
	  "only every Nth eligible " what " allocation may fail" }, \
	{ pfx "_times", MS_P_INT, "10000", "", -1, 1000000000, NULL, \
	  "at most this many failures (counted down by the kernel: the injected-fault count); " \
	  "-1 = unlimited, uncounted" }, \
	{ pfx "_space", MS_P_SIZE, "0", "bytes", 0, 1LL << 40, NULL, \
	  "let this many bytes of " what " allocations through before any fails" }, \
	{ pfx "_verbose", MS_P_INT, "1", "", 0, 2, NULL, \
	  "0 quiet, 1 one log line per failure, 2 with a stack dump" }, \
	{ pfx "_require", MS_P_STRING, "none", "", 1, 0, NULL, \
	  "fail only allocations made below this kernel function (stack-trace filter, e.g. " \
	  "copy_process, dup_mmap, copy_page_range), or none" }, \
	{ pfx "_point", MS_P_STRING, "any", "", 1, 0, NULL, \
	  "any: every process of the case may fail from setup on; a point name (fork, mmap, " \
	  "...): a process may fail from its first call there on, and failed calls there are " \
	  "expected results the workload carries on from" }

#define INJ_FA_GFP_PARAM(pfx) \
	{ pfx "_ignore_gfp_wait", MS_P_BOOL, "0", "", 1, 0, NULL, \
	  "spare allocations that may sleep (GFP_KERNEL): 0 fails them too, as fork needs" }

/* Probe the directory (and the stack-trace filter when PREFIX_require is set). */
int inj_fa_probe(struct ms_ctx *ctx, const struct inj_fa *fa);
/* Journal-write the attributes and mark the case process (task-filter). */
int inj_fa_arm(struct ms_ctx *ctx, const struct inj_fa *fa);
/* Unmark, count faults (times went down), notes. */
void inj_fa_disarm(struct ms_ctx *ctx, const struct inj_fa *fa);
void inj_fa_before(struct ms_ctx *ctx, const struct inj_fa *fa, const char *point);
bool inj_fa_after(struct ms_ctx *ctx, const struct inj_fa *fa, const char *point, long ret,
		  int err);

/* Is debugfs mounted on INJ_DEBUGFS? */
bool inj_debugfs_mounted(void);

/* Write the calling thread's make-it-fail (0/1): the kernel copies it into its children. */
int inj_make_it_fail(int on);

/* [start, end) of a kernel text symbol from /proc/kallsyms. 0, -ENOENT, -EPERM (hidden). */
int inj_kallsyms_range(const char *sym, uint64_t *start, uint64_t *end);

/* Distinct pids an injector accounted for (killed() may be asked about one pid twice). */
#define INJ_PIDSET 256

struct inj_pidset {
	uint32_t n;
	int32_t pid[INJ_PIDSET];
};

/* Adds pid unless present; the number of distinct pids is s->n (capped at INJ_PIDSET). */
void inj_pidset_add(struct inj_pidset *s, pid_t pid);

/* ---- small things ---- */

/* splitmix64 step: all injector randomness derives from the case seed through it. */
uint64_t inj_rand(uint64_t *state);
/* A signed integer from a file (debugfs "times" may be -1). */
int inj_read_s64(const char *path, int64_t *v);
/*
 * Helper processes of injectors name themselves INJ_HELPER_COMM "NAME" (prctl PR_SET_NAME), so
 * sigkill's random killer never takes them for workload processes.
 */
#define INJ_HELPER_COMM "ms-inj-"
void inj_helper_name(const char *name);
/* Stop a helper process the injector spawned: SIGKILL, then reap. */
void inj_kill_helper(struct ms_ctx *ctx, pid_t pid);
/* Sleep ns, waking early when the case should stop; false when it should. */
bool inj_sleep(const struct ms_ctx *ctx, uint64_t ns);

#endif

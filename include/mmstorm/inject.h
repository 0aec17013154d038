/* The injector contract: probe / arm / disarm, with every knob change journaled. */
#ifndef MMSTORM_INJECT_H
#define MMSTORM_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mmstorm/param.h"

struct ms_ctx;

struct ms_injector {
	const char *name;
	const char *summary;
	const struct ms_param *params;
	int (*probe)(struct ms_ctx *ctx);	/* 0, MS_SKIP (after ms_skip), -errno */
	int (*arm)(struct ms_ctx *ctx);
	void (*disarm)(struct ms_ctx *ctx);
	bool destructive;			/* refused on bare metal without --allow-destructive */
	/*
	 * Optional hooks at a workload's injection points, run in whichever process of the case
	 * reaches the point: before() right before the named call, after() right after it with
	 * the call's result and errno. after() returns true when this injector made it fail.
	 */
	void (*before)(struct ms_ctx *ctx, const char *point);
	bool (*after)(struct ms_ctx *ctx, const char *point, long ret, int err);
	/* Optional: true when the death of pid (a waitpid status) is this injector's doing. */
	bool (*killed)(struct ms_ctx *ctx, pid_t pid, int status);
};

/* ---- for workloads ---- */

/*
 * Injection points. Right before a call injectors may target, a workload calls
 * ms_inject_point() with the call's name ("fork", "mmap", "mremap", "madvise", "munmap",
 * "mprotect", "ioctl", "io_uring_register") or a phase ("pinned"); right after it, in the same
 * thread (after fork: in the parent), ms_inject_done() with the result and errno. A true
 * return means an armed injector made the call fail: an expected result, so the workload goes
 * on (checking its data against the model) instead of calling ms_error(). Without injectors
 * both return at once; neither allocates memory, so they fit measured windows and workers.
 */
void ms_inject_point(struct ms_ctx *ctx, const char *point);
bool ms_inject_done(struct ms_ctx *ctx, const char *point, long ret, int err);

/*
 * A worker or child of the case died (status as from waitpid). True when an armed injector
 * accounts for it (memcg OOM kill, sigkill, SIGBUS after hugetlb-exhaust or hwpoison): the
 * workload counts it as an injected result, not as a failure.
 */
bool ms_inject_killed(struct ms_ctx *ctx, pid_t pid, int status);

/* ---- for injectors ---- */

/*
 * Per-case state of an injector: MS_INJECT_STATE_BYTES of zeroed memory shared by the case
 * process, its workers and the runner (which reads it after the case). NULL if inj is not
 * armed in this case.
 */
#define MS_INJECT_STATE_BYTES 16384
void *ms_inject_state(const struct ms_ctx *ctx, const struct ms_injector *inj);
/* Faults the injector caused (shown per injector in case_end "inject", summed per kernel). */
void ms_inject_count(struct ms_ctx *ctx, const struct ms_injector *inj, uint64_t faults);
/*
 * Detail too long for a note (a fail-nth sweep's outcome per n): printable text, at most
 * MS_INJECT_DETAIL_MAX - 1 bytes, kept in case_end "inject.detail.NAME". Replaces earlier text.
 */
#define MS_INJECT_DETAIL_MAX 4096
void ms_inject_detail(struct ms_ctx *ctx, const struct ms_injector *inj, const char *text);
/* The injector has done its work (a fail-nth sweep ran clean): end the case's iterations. */
void ms_inject_stop(struct ms_ctx *ctx);
/* A journaled mkdir (a cgroup): the journal removes it at case end. 0 or -errno. */
int ms_inject_mkdir(struct ms_ctx *ctx, const char *path, unsigned mode);
/*
 * For messages that must let a reader reproduce a result: every injector of the case with its
 * exact settings and the seed ("fail-nth(nth_point=fork ...) seed 42"), and the command that
 * reruns just this case ("mmstorm run --case NAME SUITE").
 */
void ms_inject_describe(const struct ms_ctx *ctx, char *buf, size_t len);
const char *ms_inject_rerun(const struct ms_ctx *ctx);

#endif

/* perf counters and tracepoint counts for a case (libperf), and `perf record` around one case. */
#ifndef MMSTORM_PERF_H
#define MMSTORM_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/*
 * Counting mode, one counter per event, opened on the calling process with inherit=1: every
 * process it forks after ms_perf_open() (children, grandchildren, ...) counts into the same
 * counter, and the kernel folds an exited child's count into it. Processes forked before
 * open are not counted, so open before spawning workers; the counters start disabled and
 * enabling (or disabling) them reaches the inherited copies too.
 *
 * spec: "default" (or "" / NULL), "none", or a comma list of event names; "default" may
 * appear in the list. Names: task-clock context-switches cpu-migrations page-faults
 * minor-faults major-faults instructions cycles cache-misses dTLB-load-misses
 * iTLB-load-misses, and tracepoints "system:name" (the name may be a glob, e.g.
 * "huge_memory:*split*").
 *
 * Events that cannot be counted here (no PMU, no tracefs, no such tracepoint, not permitted,
 * libperf not built) are not errors: each is listed in *skipped (a new array of
 * {"event", "reason"}; never NULL on return 0). *pp is NULL when nothing can be counted; every
 * other call accepts NULL. Returns 0, -EINVAL for a bad spec, or -ENOMEM.
 */
struct ms_perf;

int ms_perf_open(struct ms_perf **pp, const char *spec, json_t **skipped);
/*
 * The same events counted for every task of the cgroup v2 directory cgroup_fd instead: one
 * counter per event and online CPU (perf_event_open with PERF_FLAG_PID_CGROUP) that counts
 * while a task of the cgroup runs there. Nothing is copied at fork or folded back at exit, so
 * a fork storm pays nothing per fork; the cost moves to context switches into and out of the
 * cgroup. Needs CAP_PERFMON (or perf_event_paranoid <= 0).
 * cgroup_fd stays the caller's. Same returns as ms_perf_open(), and -errno of perf_event_open()
 * when this kernel cannot count the cgroup at all (nothing is listed as skipped then).
 */
int ms_perf_open_cgroup(struct ms_perf **pp, const char *spec, int cgroup_fd, json_t **skipped);
/*
 * "mmap-lock-wait" (in the default set) is not counted here: the runner samples it from outside
 * the case process (src/core/perf_lockwait.h); ms_perf_open() accepts the name and ignores it.
 */

/* perf_mode= of a case, in the suite's order of choices. */
enum ms_perf_mode { MS_PERF_AUTO, MS_PERF_CGROUP, MS_PERF_TASK };
/* "task" or "cgroup" (NULL p: "none"). */
const char *ms_perf_mode(const struct ms_perf *p);

struct ms_journal;
/*
 * Make a child of the caller's cgroup v2 (journaled: restore removes it) named
 * mmstorm-perf-PID and move the caller into it, so it and everything it forks from now on can
 * be counted with ms_perf_open_cgroup(). *fd: the directory, O_RDONLY. 0, or -errno with why.
 */
int ms_perf_cgroup_enter(struct ms_journal *j, int *fd, char *why, size_t len);
/* Counting this process and all it forks after open. 0 or -errno. */
int ms_perf_enable(struct ms_perf *p);
int ms_perf_disable(struct ms_perf *p);
/*
 * {event: {"value", "enabled_ns", "running_ns", "scaled"}}: value is scaled by
 * enabled/running when the PMU multiplexed the counter (scaled true), null when it never ran;
 * the times are summed over every process that counted. Children that have exited are
 * included; so are live ones. A new object (empty for NULL p); at most about 2 KiB of JSON
 * text for the default set (4 KiB for MS_PERF_MAX_EVENTS events).
 */
json_t *ms_perf_read(struct ms_perf *p);
void ms_perf_close(struct ms_perf *p);

#define MS_PERF_MAX_EVENTS 32

/* Check a spec without opening anything (suite parsing). 0, or -EINVAL with a message. */
int ms_perf_spec_check(const char *spec, char *err, size_t errlen);
/* NULL when counting is compiled in, else why not ("libperf not built (...)"). */
const char *ms_perf_unavailable(void);

/*
 * `perf record -g` around one case (--perf-record). ms_perf_record_check() says whether it
 * can run: 0, or MS_SKIP with the reason (perf not installed, perf_event_paranoid forbids
 * it). ms_perf_record_start() attaches `perf record -g -p pid -o DIR/perf.data` to pid and
 * returns once perf is sampling (processes pid forks from then on are followed): 0, MS_SKIP
 * (see check), or -errno. ms_perf_record_stop() ends it (SIGINT), writes the top 20 symbols
 * of `perf report --stdio --no-children` to DIR/perf-top.txt and, if top is not NULL,
 * returns them as [{"overhead_pct", "command", "object", "symbol"}]. 0 or -errno.
 */
int ms_perf_record_check(char *reason, size_t len);
int ms_perf_record_start(const char *dir, pid_t pid, pid_t *perf_pid);
int ms_perf_record_stop(const char *dir, pid_t perf_pid, json_t **top);

#define MS_PERF_TOP 20

#endif

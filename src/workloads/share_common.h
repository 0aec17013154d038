/* Shared by pmd-share and mshare: N worker processes stepped through phases, PageTables noise. */
#ifndef MMSTORM_WORKLOADS_SHARE_COMMON_H
#define MMSTORM_WORKLOADS_SHARE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mmstorm/workload.h"

/* Head of the shared control area; the workload's own fields and its slots follow it. */
struct ms_share_ctl {
	uint32_t phase;			/* futex: bumped to start a phase */
	uint32_t done;			/* futex: workers finished with the current phase */
	uint32_t what;			/* the workload's phase number */
	uint32_t round;
	int32_t quit;
	uint32_t pad;
};

/* First member of every worker's slot. */
struct ms_share_slot {
	int32_t status;			/* first failure: MS_SKIP or -errno */
	uint32_t ended;			/* left on its own: no death to report */
};

/* The case process's view of its workers. */
struct ms_share_procs {
	struct ms_share_ctl *ctl;	/* MAP_SHARED, ctl_bytes long */
	size_t ctl_bytes;
	char *slots;			/* slot i at slots + i * slot_bytes */
	size_t slot_bytes;
	pid_t *pid;
	unsigned nspawned;
};

/* What PageTables does by itself, and whether vm/stat_refresh can fold it first. */
struct ms_share_noise {
	bool stat_refresh;
	uint64_t spread;
	double per_s;
};

/* What did not end as planned in ms_share_reap(). */
struct ms_share_reaped {
	unsigned bad, first;
	int first_status;
};

typedef int (*ms_share_phase_fn)(void *w, unsigned what, unsigned round);
typedef bool (*ms_share_leaves_fn)(unsigned idx, unsigned what);
typedef bool (*ms_share_killed_fn)(unsigned idx);

int ms_share_read_vmpte(uint64_t *bytes);
int ms_share_read_pagetables(const struct ms_share_noise *n, uint64_t *bytes);
void ms_share_measure_noise(struct ms_share_noise *n);
uint64_t ms_share_tolerance(const struct ms_share_noise *n, uint64_t tol_param, bool in_guest,
			    uint64_t window_ns);

int ms_share_procs_init(struct ms_share_procs *pr, unsigned nprocs, size_t head_bytes,
			size_t slot_bytes);
void ms_share_procs_free(struct ms_share_procs *pr);
struct ms_share_slot *ms_share_slot(const struct ms_share_procs *pr, unsigned i);

void ms_share_publish_done(struct ms_share_ctl *ctl);
int ms_share_worker_loop(struct ms_ctx *ctx, struct ms_share_procs *pr, unsigned idx, int ret,
			 ms_share_phase_fn phase, ms_share_leaves_fn leaves, void *w);

int ms_share_first_status(const struct ms_share_procs *pr);
int ms_share_wait_done(struct ms_ctx *ctx, struct ms_share_procs *pr, uint32_t want);
int ms_share_run_phase(struct ms_ctx *ctx, struct ms_share_procs *pr, unsigned what,
		       unsigned round, unsigned nworkers);
int ms_share_spawn(struct ms_ctx *ctx, struct ms_share_procs *pr, unsigned nprocs,
		   int (*fn)(struct ms_ctx *, void *, unsigned), void *arg);
void ms_share_reap(struct ms_share_procs *pr, bool planned, ms_share_killed_fn killed,
		   struct ms_share_reaped *out);

#endif

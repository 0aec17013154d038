/* Private to src/core: the case context, its shared-memory area, and the runner. */
#ifndef MMSTORM_CORE_H
#define MMSTORM_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "mmstorm/metrics.h"
#include "mmstorm/result.h"
#include "mmstorm/suite.h"
#include "mmstorm/workload.h"

#define MS_MAX_METRICS 16
#define MS_MAX_HISTS 8
#define MS_MAX_FAILURES 8
#define MS_MAX_NOTES 16		/* gup-pin: setup notes, a tally, up to 16 skip reasons */
#define MS_PERF_JSON_MAX 16384

struct ms_metric_def {
	char name[64];
	char unit[16];
	int kind;		/* enum ms_metric_kind */
	int slot;		/* histogram index for MS_M_HIST */
};

struct ms_failure {
	char what[128];
	char detail[512];
};

/*
 * Everything a case process and its workers report lives here, in one MAP_SHARED mapping
 * made by the runner before the fork: the runner reads it after the case's processes are
 * gone, so results survive a worker killed at any point. Workers update it with atomics only.
 */
struct ms_shm {
	unsigned nmetrics;
	struct ms_metric_def defs[MS_MAX_METRICS];
	unsigned nhists;
	uint64_t counters[MS_MAX_METRICS];
	int64_t gauge_last[MS_MAX_METRICS];
	int64_t gauge_peak[MS_MAX_METRICS];
	uint64_t checks_run;
	uint64_t checks_failed;
	unsigned nfail;			/* slots claimed (may exceed MS_MAX_FAILURES) */
	struct ms_failure failures[MS_MAX_FAILURES];
	unsigned nnotes;
	char notes[MS_MAX_NOTES][256];
	int status;			/* 0, or MS_V_SKIP / MS_V_ERROR requested by the case */
	char reason[512];
	char kmsg_explained[64];	/* ms_kmsg_explained(): lines with this text ... */
	uint64_t kmsg_explained_n;	/* ... this many of them, predicted by the case */
	uint64_t iterations;
	int phase;			/* enum ms_phase reached */
	int stop;			/* set by the runner: stop iterating */
	/*
	 * The run window of perf samples taken from outside (mmap-lock-wait): 0 = not reached, 1 =
	 * the clock is being read, else ms_now_ns(). Stored 1 first, so a reader that sees 0 after
	 * its own clock read knows the time will be later than its read.
	 */
	uint64_t run_start_ns;
	uint64_t run_end_ns;
	char perf[MS_PERF_JSON_MAX];	/* {"counters": {...}, "skipped": [...]} as JSON text */
	struct ms_hist hists[MS_MAX_HISTS];
};

enum ms_phase { MS_PH_START, MS_PH_PROBE, MS_PH_SETUP, MS_PH_RUN, MS_PH_TEARDOWN, MS_PH_DONE };

struct ms_journal;

struct ms_ctx {
	const struct ms_case *c;
	struct ms_shm *shm;
	void *priv;
	struct ms_journal *journal;
	char tmpdir[256];
	uint64_t seed;
	bool in_guest;
	bool allow_destructive;	/* --allow-destructive, or in a guest */
	uint64_t start_ns;
	uint64_t deadline_ns;		/* 0 = none (iterations only) */
};

/* ---- runner ---- */
struct ms_run_opts {
	const char *suite_path;
	const char *run_id;
	const char *const *argv;	/* the exact command, for run.json */
	int argc;
	bool in_guest;
	bool allow_destructive;
	unsigned first_case;		/* resume point (VM agent) */
	int only_repeat;		/* -1 = all repeats, else run only this repeat index */
	const char *case_filter;	/* run only this case name (NULL = all) */
	const char *case_set;		/* "0-3,7": run only these indexes (NULL = all), a LAVA shard */
	const char *config_path;	/* kernel config to record (NULL = auto) */
	json_t *env;			/* extra members for run_start "env" (borrowed) */
	const char *perf_record_dir;	/* --perf-record: perf.data per repeat under it */
};

/*
 * Run a parsed suite on the running kernel, emitting events into sink. Returns the worst
 * verdict, or -errno for an infrastructure problem before any case ran. Sets *interrupted
 * to the signal number if SIGINT/SIGTERM stopped the run.
 */
int ms_run_suite(const struct ms_suite *s, const struct ms_run_opts *o, struct ms_journal *j,
		 struct ms_sink *sink, int *interrupted);

/* Journal opened in the state dir, replaying what a killed run left (message on f). */
int ms_state_open(struct ms_journal **jp, FILE *f);

/* The shared-memory area and ctx plumbing used by the runner (ctx.c). */
struct ms_shm *ms_shm_new(void);
void ms_shm_free(struct ms_shm *shm);
json_t *ms_shm_metrics_json(const struct ms_shm *shm);
json_t *ms_shm_checks_json(const struct ms_shm *shm);
json_t *ms_shm_notes_json(const struct ms_shm *shm);

/* Registry-wide: every workload param lookup. */
int ms_ctx_param_index(const struct ms_ctx *ctx, const char *name);

/* ---- commands ---- */
int ms_cmd_bench(int argc, char **argv);
int ms_cmd_repro(int argc, char **argv);
int ms_agent_main(int argc, char **argv);
/* Locate a shipped suite (configs/NAME): cwd, then next to the binary, then the source dir. */
int ms_find_config(const char *name, char *out, size_t len);

/* Exit codes (DESIGN.md). */
enum { MS_EXIT_OK = 0, MS_EXIT_FAIL = 1, MS_EXIT_USAGE = 2, MS_EXIT_INFRA = 3,
       MS_EXIT_UNTESTABLE = 125 };

#endif

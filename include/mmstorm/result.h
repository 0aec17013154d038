/* Verdicts, the event stream, and the outputs made from it (events.jsonl, run.json, KTAP, JUnit). */
#ifndef MMSTORM_RESULT_H
#define MMSTORM_RESULT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

/* Ordered by severity: the verdict of a case is the worst of its repeats. */
enum ms_verdict {
	MS_V_PASS = 0,
	MS_V_SKIP,
	MS_V_FAIL,
	MS_V_ERROR,
	MS_V_TIMEOUT,
	MS_V_CRASH,
	MS_V__COUNT
};
const char *ms_verdict_name(enum ms_verdict v);	/* "PASS", ... */
int ms_verdict_parse(const char *name);		/* enum value or -1 */

#define MS_RESULTS_SCHEMA "mmstorm-run/1"
#define MS_EVENTS_SCHEMA "mmstorm-events/1"

/*
 * Events are JSON objects with "ev" (string) and "t_ns" (integer, ns since run start).
 * Kinds and their required members (docs/results-schema.md is the full reference):
 *   run_start  run_id, schema, mmstorm{version}, command[], suite{path,name,seed,ncases},
 *              kernel{release,version,cmdline,...}, cpu{...}, memory{...}, env{where,accel}
 *   case_start case, index, repeat, repeats, workload, params{}, timeout_ns, seed
 *   case_end   case, index, repeat, verdict, reason, duration_ns, iterations, metrics{},
 *              checks{run,failed,failures[]}, notes[], pgtables{}, kmsg{}
 *   log        msg
 *   run_end    status
 * ms_event_validate() checks a received event against this (types included); a host reading
 * a guest's stream uses it to report and skip bad events instead of trusting them.
 */
int ms_event_validate(const json_t *ev, char *err, size_t errlen);

/* Where events go: the host's outputs, or (in a guest) the serial line to the host. */
struct ms_sink {
	int (*event)(struct ms_sink *s, json_t *ev);	/* takes a reference; 0 or -errno */
};

/*
 * The host's outputs for one run, fed by events: each is appended to events.jsonl at once
 * (fsync'd after every case_end, so the file survives kill -9), folded into the run.json
 * model, and turned into KTAP lines on ktap (may be NULL).
 */
struct ms_out;

struct ms_out_opts {
	const char *dir;	/* results/<run-id> (created) */
	FILE *ktap;		/* usually stdout; NULL for none */
	bool ktap_verbose;	/* metric lines as KTAP diagnostics */
};

int ms_out_open(struct ms_out **op, const struct ms_out_opts *opts);
struct ms_sink *ms_out_sink(struct ms_out *o);
int ms_out_event(struct ms_out *o, json_t *ev);	/* steals the reference */
/* The run.json object so far (borrowed). */
json_t *ms_out_run(struct ms_out *o);
/* Index of the last case that started and has not ended (-1 if none): for crash handling. */
int ms_out_open_case(struct ms_out *o, int *repeat);
/* Write run.json (temp file + fsync + rename) with "status"; may be called more than once. */
int ms_out_write(struct ms_out *o, const char *status);
int ms_out_write_junit(struct ms_out *o, const char *path);
/* Worst verdict over all cases (MS_V_PASS if none). */
enum ms_verdict ms_out_worst(struct ms_out *o);
const char *ms_out_dir(struct ms_out *o);
void ms_out_close(struct ms_out *o);

/* Write a JSON value to path atomically (temp file in the same dir, fsync, rename). */
int ms_json_write_atomic(const json_t *v, const char *path);

#endif

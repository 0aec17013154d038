/* Private to src/report/: the run model behind struct ms_out, shared by out.c, ktap.c, junit.c. */
#ifndef MS_REPORT_INT_H
#define MS_REPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "mmstorm/result.h"

/* Limits on what an event from an untrusted guest may contain. */
#define MS_EV_MAX_STR		(64 * 1024)	/* bytes in any one string or key */
#define MS_EV_MAX_STR_TOTAL	(16 << 20)	/* bytes in all strings of one event */
#define MS_EV_MAX_DEPTH		32		/* nesting of objects and arrays */
#define MS_EV_MAX_NODES		(1 << 20)	/* values in one event */
#define MS_EV_MAX_INDEX		(1 << 20)	/* index, repeat, repeats, ncases */

/* Bytes of a rejected event kept in the "problems" entry that replaces it. */
#define MS_PROBLEM_EXCERPT	512
/* Entries in run.json "problems"; events.jsonl keeps them all. */
#define MS_MAX_PROBLEMS		1000

struct ms_case_st {
	int index;
	int repeats;		/* planned, from case_start; 0 when never seen */
	int worst;		/* enum ms_verdict of the repeats so far, -1 when none */
	bool printed;		/* KTAP result line written */
	json_t *obj;		/* element of run.json "cases" (borrowed from it) */
};

struct ms_out {
	struct ms_sink sink;
	char *dir;
	char *run_path;
	int fd;			/* events.jsonl */
	json_t *run;		/* the run.json model */
	json_t *cases;		/* borrowed from run */
	json_t *problems;	/* borrowed from run */
	struct ms_case_st *cs;	/* sorted by index, parallel to "cases" */
	size_t ncs;
	size_t cs_cap;
	int open_index;
	int open_repeat;
	json_int_t last_t_ns;
	bool started;		/* a run_start was applied */
	bool ended;		/* a run_end was applied */
	bool write_failed;	/* events.jsonl could not be written: said once */

	FILE *ktap;
	bool ktap_verbose;
	bool ktap_header;	/* "KTAP version 1" written */
	bool ktap_planned;	/* "1..N" written */
	bool ktap_totals;	/* "# Totals" written */
};

/*
 * XML 1.0 element text (attr false) or attribute value (attr true): markup escaped, bytes XML
 * cannot carry (invalid UTF-8, most C0 controls) dropped. HTML uses it too.
 */
void ms_xml_put(FILE *f, const char *s, bool attr);
/* Markdown: no markup or HTML from run text; cell: also escape the "|" that ends a cell. */
void ms_md_put(FILE *f, const char *s, bool cell);

/* ISO 8601 UTC of the wall clock now ("2025-01-31T12:34:56Z"). 0 or -errno. */
int ms_report_utc_now(char *buf, size_t len);
/* Write len bytes to path atomically: temp file in the same dir, fsync, rename, fsync dir. */
int ms_report_write_atomic(const char *path, const char *buf, size_t len);

/* Lookups on validated events and the model; they tolerate anything. */
const char *ms_report_str(const json_t *obj, const char *key, const char *dflt);
json_int_t ms_report_int(const json_t *obj, const char *key, json_int_t dflt);
/* The repeat entry of a case whose verdict is the case's (worst, first of equals), or NULL. */
json_t *ms_report_worst_repeat(const json_t *c);
/*
 * fail-nth's sweep of a case (its worst repeat's inject.detail, "" if none): runs of n with
 * one outcome, "1-71 ENOMEM, 72 ok, 73 EINVAL(undocumented), ..., 140 clean". sweep_item
 * parses one run at t ("A-B WORD" or "A WORD"): the bytes it took, 0 at the end or at text
 * it cannot read (a cut-short "...").
 */
const char *ms_report_sweep(const json_t *c);
size_t ms_report_sweep_item(const char *t, unsigned *a, unsigned *b, char *word, size_t len);
/* Sum of the repeats' duration_ns. */
json_int_t ms_report_case_duration_ns(const json_t *c);

/* KTAP: each is called by out.c after the event has been folded into the model. */
void ms_ktap_run_start(struct ms_out *o);
void ms_ktap_case_start(struct ms_out *o, int index);
void ms_ktap_case_end(struct ms_out *o, struct ms_case_st *cs, int repeat);
void ms_ktap_log(struct ms_out *o, const char *msg);
void ms_ktap_run_end(struct ms_out *o);

#endif

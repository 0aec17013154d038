/* Suite files: INI, fio style ([global] defaults, one section per case). */
#ifndef MMSTORM_SUITE_H
#define MMSTORM_SUITE_H

#include <stdint.h>
#include <stdio.h>

#include "mmstorm/param.h"

struct ms_workload;
struct ms_injector;

#define MS_NAME_MAX 64
#define MS_MAX_INJECT 8

/* Prefix of case metadata keys; a key given on several lines is joined with spaces. */
#define MS_META_PREFIX "bug."

struct ms_case_meta {
	char *key;		/* with its prefix: "bug.id" */
	char *val;
};

struct ms_case {
	char name[MS_NAME_MAX];
	const struct ms_workload *wl;
	struct ms_pval *vals;		/* one per wl->params entry, defaults filled in */
	const struct ms_injector *inj[MS_MAX_INJECT];
	struct ms_pval *inj_vals[MS_MAX_INJECT];	/* one per inj[i]->params entry */
	unsigned ninj;
	unsigned repeat;		/* >= 1 */
	uint64_t iterations;		/* 0 = bounded by duration only */
	int64_t duration_ns;		/* 0 = bounded by iterations only */
	int64_t timeout_ns;		/* watchdog per repeat */
	uint64_t seed;
	char perf[MS_PARAM_STR_MAX];	/* perf= counter spec (mmstorm/perf.h) */
	int perf_mode;			/* enum ms_perf_mode: perf_mode= */
	int line;			/* line of the section header */
	/*
	 * Metadata: keys under the "bug." prefix (the known-bug catalog's id, title, fix, ...),
	 * kept as text and never interpreted by the parser or the runner.
	 */
	struct ms_case_meta *meta;
	unsigned nmeta;
};

struct ms_suite {
	char path[4096];
	char name[MS_NAME_MAX];		/* [global] name= or the file's base name */
	uint64_t seed;			/* [global] seed= */
	struct ms_case *cases;
	unsigned ncases;
	/* guest setup declared by the suite ([global] keys) */
	char vm_append[512];		/* extra kernel command line */
	int64_t vm_mem_bytes;		/* 0 = default */
	int vm_smp;			/* 0 = default */
};

/*
 * Parse a suite. On error returns -EINVAL and writes "FILE:LINE: key 'K': expected ..., found
 * '...'" (or a section/syntax message) into err. Nothing is run on error.
 */
int ms_suite_load(struct ms_suite *s, const char *path, char *err, size_t errlen);
/* Same from a memory buffer; name is what error messages call the file. */
int ms_suite_load_mem(struct ms_suite *s, const char *name, const char *buf, size_t len,
		      char *err, size_t errlen);
void ms_suite_free(struct ms_suite *s);

/* A metadata value of the case (key with its prefix, e.g. "bug.title"), or NULL. */
const char *ms_case_meta(const struct ms_case *c, const char *key);

/* The case-level keys every section accepts besides the workload's params (for `list`). */
extern const struct ms_param ms_case_params[];

#endif

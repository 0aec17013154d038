/* "Nothing lost": MM counters before a case against after it; the runner side of injection. */
#ifndef MMSTORM_INVARIANTS_H
#define MMSTORM_INVARIANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct ms_ctx;

/*
 * System-wide counters that must come back to their baseline once a case's processes are gone
 * and its knobs are restored: page-table memory, every hugetlb pool, outstanding FOLL_PIN pins,
 * the x86 PAT memtype list, free memory. A field that could not be read is not compared.
 */
#define MS_INV_HSTATES 4

struct ms_inv_hstate {
	uint64_t size_kb;
	uint64_t nr, free, resv, surplus;
};

enum ms_inv_field {
	MS_INV_PAGETABLES,	/* PageTables + SecPageTables, kB */
	MS_INV_MEMFREE,		/* MemFree, kB */
	MS_INV_HUGETLB,		/* the hstates */
	MS_INV_FOLL_PIN,	/* nr_foll_pin_acquired / _released */
	MS_INV_PAT,		/* entries of /sys/kernel/debug/x86/pat_memtype_list */
	MS_INV_HWCORRUPT,	/* HardwareCorrupted, kB: reported, never compared */
	MS_INV__COUNT
};

struct ms_inv_snap {
	unsigned have;				/* 1 << enum ms_inv_field read */
	uint64_t pagetables_kb, memfree_kb, hwcorrupt_kb;
	uint64_t pin_acquired, pin_released;
	uint64_t pat_entries;
	unsigned nhstates;
	struct ms_inv_hstate hs[MS_INV_HSTATES];
};

struct ms_inv_limits {
	uint64_t pagetables_slack_bytes;	/* PageTables may end this much above baseline */
	uint64_t memfree_slack_bytes;		/* MemFree may end this much below baseline */
};

/* One compared value: ok when lo <= after - before <= hi. */
struct ms_inv_result {
	char name[48];
	int64_t before, after;
	int64_t lo, hi;			/* allowed change */
	const char *unit;
	bool global;			/* moved by every process (PageTables, MemFree) */
	bool ok;
};

#define MS_INV_MAX_RESULTS (4 + 4 * MS_INV_HSTATES)

/* Read every field it can; 0, or -ENOENT when not even /proc/meminfo was readable. */
int ms_inv_snapshot(struct ms_inv_snap *s);
/* Parse the texts of /proc/meminfo and /proc/vmstat into s (the testable half of snapshot). */
void ms_inv_parse_meminfo(struct ms_inv_snap *s, const char *meminfo);
void ms_inv_parse_vmstat(struct ms_inv_snap *s, const char *vmstat);
/* Compare; returns how many results it wrote (at most max). */
size_t ms_inv_compare(const struct ms_inv_snap *base, const struct ms_inv_snap *now,
		      const struct ms_inv_limits *lim, struct ms_inv_result *out, size_t max);
json_t *ms_inv_snap_json(const struct ms_inv_snap *s);
/*
 * Compare now against base in the case ctx (limits from the inv_* parameters), waiting up to
 * inv_settle for the counters to come back; one ms_check per value. Returns the JSON record.
 */
json_t *ms_inv_check(struct ms_ctx *ctx, const struct ms_inv_snap *base);

/*
 * The invariant parameters, declared by every injector (one suite key sets them all):
 * inv_pagetables_slack, inv_memfree_slack, inv_settle, inv_global.
 */
extern const char *const ms_inv_global_modes[];

#define MS_INV_PARAMS \
	{ "inv_pagetables_slack", MS_P_SIZE, "256K", "bytes", 0, 1LL << 40, NULL, \
	  "invariant: PageTables+SecPageTables may end this much above the pre-case value " \
	  "(other processes, the runner's own heap)" }, \
	{ "inv_memfree_slack", MS_P_SIZE, "64M", "bytes", 0, 1LL << 40, NULL, \
	  "invariant: MemFree may end this much below the pre-case value (per-CPU lists, " \
	  "slab and page cache growth)" }, \
	{ "inv_settle", MS_P_TIME, "3s", "ns", 0, 600LL * 1000000000, NULL, \
	  "invariant: how long the counters may take to come back (RCU-freed page tables, " \
	  "deferred frees) before a difference is a FAIL" }, \
	{ "inv_global", MS_P_ENUM, "auto", "", 1, 0, ms_inv_global_modes, \
	  "PageTables and MemFree, which every process of the machine moves: judge (a " \
	  "difference past the slack FAILs), report (recorded only), or auto: judge in a VM " \
	  "guest, report on the host" }

/* ---- the runner's side (src/core/runner.c), for cases with injectors ---- */

/*
 * Before the case process is forked: the shared injector area and the invariant baseline.
 * suite_path is what the rerun command names. 0 or -errno.
 */
int ms_inject_case_begin(struct ms_ctx *ctx, const char *suite_path);
/*
 * After the case's processes are gone and the journal restored: compare the invariants (each
 * one an ms_check, a failure naming the injectors, their settings, the seed and the rerun
 * command), publish the injected-fault counts. Returns the case_end "inject" object.
 */
json_t *ms_inject_case_end(struct ms_ctx *ctx);
void ms_inject_case_free(struct ms_ctx *ctx);

#endif

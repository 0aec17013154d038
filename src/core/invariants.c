/* "Nothing lost": MM counters snapshotted before a case with injectors, compared after it. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/inject.h"
#include "mmstorm/invariants.h"
#include "mmstorm/metrics.h"
#include "mmstorm/util.h"

#define HSTATE_DIR "/sys/kernel/mm/hugepages"
#define PAT_LIST "/sys/kernel/debug/x86/pat_memtype_list"
#define SETTLE_POLL_US 50000

static bool key_value(const char *text, const char *key, uint64_t *v)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) && (p[klen] == ':' || p[klen] == ' ')) {
			p += klen + (p[klen] == ':');
			*v = strtoull(p, NULL, 10);
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

void ms_inv_parse_meminfo(struct ms_inv_snap *s, const char *meminfo)
{
	uint64_t pt, spt = 0;

	if (key_value(meminfo, "PageTables", &pt)) {
		/* KVM's stage-2 tables leak the same way; older kernels have no SecPageTables. */
		key_value(meminfo, "SecPageTables", &spt);
		s->pagetables_kb = pt + spt;
		s->have |= 1u << MS_INV_PAGETABLES;
	}
	if (key_value(meminfo, "MemFree", &s->memfree_kb))
		s->have |= 1u << MS_INV_MEMFREE;
	if (key_value(meminfo, "HardwareCorrupted", &s->hwcorrupt_kb))
		s->have |= 1u << MS_INV_HWCORRUPT;
}

void ms_inv_parse_vmstat(struct ms_inv_snap *s, const char *vmstat)
{
	if (key_value(vmstat, "nr_foll_pin_acquired", &s->pin_acquired) &&
	    key_value(vmstat, "nr_foll_pin_released", &s->pin_released))
		s->have |= 1u << MS_INV_FOLL_PIN;
}

static int hstate_read(struct ms_inv_hstate *h, const char *dir)
{
	static const char *const files[] = { "nr_hugepages", "free_hugepages", "resv_hugepages",
					     "surplus_hugepages" };
	uint64_t *dst[] = { &h->nr, &h->free, &h->resv, &h->surplus };
	char path[512];
	int ret;

	for (size_t i = 0; i < MS_ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", HSTATE_DIR, dir, files[i]);
		if ((ret = ms_read_u64(path, dst[i])))
			return ret;
	}
	return 0;
}

static void snap_hstates(struct ms_inv_snap *s)
{
	struct dirent *de;
	DIR *d = opendir(HSTATE_DIR);

	if (!d)
		return;
	while ((de = readdir(d)) && s->nhstates < MS_INV_HSTATES) {
		struct ms_inv_hstate *h = &s->hs[s->nhstates];
		unsigned long kb;

		if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		h->size_kb = kb;
		if (!hstate_read(h, de->d_name))
			s->nhstates++;
	}
	closedir(d);
	if (s->nhstates)
		s->have |= 1u << MS_INV_HUGETLB;
}

/* Entries of the PAT memtype list; readable only with debugfs mounted (x86, PAT on). */
static void snap_pat(struct ms_inv_snap *s)
{
	char line[256];
	FILE *f = fopen(PAT_LIST, "re");

	if (!f)
		return;
	s->pat_entries = 0;
	while (fgets(line, sizeof(line), f))
		s->pat_entries += !strncmp(line, "PAT:", 4);
	fclose(f);
	s->have |= 1u << MS_INV_PAT;
}

int ms_inv_snapshot(struct ms_inv_snap *s)
{
	char buf[16384];

	memset(s, 0, sizeof(*s));
	if (ms_read_file("/proc/meminfo", buf, sizeof(buf)) < 0)
		return -ENOENT;
	ms_inv_parse_meminfo(s, buf);
	if (ms_read_file("/proc/vmstat", buf, sizeof(buf)) >= 0)
		ms_inv_parse_vmstat(s, buf);
	snap_hstates(s);
	snap_pat(s);
	return 0;
}

static bool has(const struct ms_inv_snap *a, const struct ms_inv_snap *b, enum ms_inv_field f)
{
	return (a->have & b->have) & (1u << f);
}

static size_t put(struct ms_inv_result *out, size_t n, size_t max, const char *name,
		  int64_t before, int64_t after, int64_t lo, int64_t hi, const char *unit,
		  bool global)
{
	struct ms_inv_result *r;

	if (n >= max)
		return n;
	r = &out[n];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->before = before;
	r->after = after;
	r->lo = lo;
	r->hi = hi;
	r->unit = unit;
	r->global = global;
	r->ok = after - before >= lo && after - before <= hi;
	return n + 1;
}

static const struct ms_inv_hstate *hstate_find(const struct ms_inv_snap *s, uint64_t kb)
{
	for (unsigned i = 0; i < s->nhstates; i++)
		if (s->hs[i].size_kb == kb)
			return &s->hs[i];
	return NULL;
}

static size_t compare_hstates(const struct ms_inv_snap *a, const struct ms_inv_snap *b,
			      struct ms_inv_result *out, size_t n, size_t max)
{
	static const char *const what[] = { "Total", "Free", "Rsvd", "Surp" };
	/*
	 * The pool size is a knob the journal restores: exact. Pages others free or stop
	 * reserving meanwhile are fine; fewer free, more reserved or surplus pages are a leak.
	 */
	static const int64_t lo[] = { 0, 0, INT64_MIN / 2, INT64_MIN / 2 };
	static const int64_t hi[] = { 0, INT64_MAX / 2, 0, 0 };
	char name[48];

	for (unsigned i = 0; i < a->nhstates; i++) {
		const struct ms_inv_hstate *x = &a->hs[i], *y = hstate_find(b, x->size_kb);
		uint64_t xv[4], yv[4];

		if (!y)
			continue;
		xv[0] = x->nr, xv[1] = x->free, xv[2] = x->resv, xv[3] = x->surplus;
		yv[0] = y->nr, yv[1] = y->free, yv[2] = y->resv, yv[3] = y->surplus;
		for (unsigned j = 0; j < MS_ARRAY_SIZE(what); j++) {
			snprintf(name, sizeof(name), "HugePages_%s (%" PRIu64 "kB)", what[j],
				 x->size_kb);
			n = put(out, n, max, name, (int64_t)xv[j], (int64_t)yv[j], lo[j], hi[j],
				"pages", false);
		}
	}
	return n;
}

size_t ms_inv_compare(const struct ms_inv_snap *a, const struct ms_inv_snap *b,
		      const struct ms_inv_limits *lim, struct ms_inv_result *out, size_t max)
{
	size_t n = 0;

	if (has(a, b, MS_INV_PAGETABLES))
		n = put(out, n, max, "PageTables", (int64_t)a->pagetables_kb * 1024,
			(int64_t)b->pagetables_kb * 1024, INT64_MIN / 2,
			(int64_t)lim->pagetables_slack_bytes, "bytes", true);
	if (has(a, b, MS_INV_HUGETLB))
		n = compare_hstates(a, b, out, n, max);
	/* Pins held now: what others released meanwhile is fine, more pins are ours. */
	if (has(a, b, MS_INV_FOLL_PIN))
		n = put(out, n, max, "FOLL_PIN pins outstanding",
			(int64_t)(a->pin_acquired - a->pin_released),
			(int64_t)(b->pin_acquired - b->pin_released), INT64_MIN / 2, 0, "pins",
			false);
	if (has(a, b, MS_INV_PAT))
		n = put(out, n, max, "PAT memtype entries", (int64_t)a->pat_entries,
			(int64_t)b->pat_entries, INT64_MIN / 2, 0, "entries", false);
	if (has(a, b, MS_INV_MEMFREE))
		n = put(out, n, max, "MemFree", (int64_t)a->memfree_kb * 1024,
			(int64_t)b->memfree_kb * 1024, -(int64_t)lim->memfree_slack_bytes,
			INT64_MAX / 2, "bytes", true);
	return n;
}

json_t *ms_inv_snap_json(const struct ms_inv_snap *s)
{
	json_t *o = json_object(), *hs = json_array();

	if (s->have & (1u << MS_INV_PAGETABLES))
		json_object_set_new(o, "pagetables_bytes", json_integer(s->pagetables_kb * 1024));
	if (s->have & (1u << MS_INV_MEMFREE))
		json_object_set_new(o, "memfree_bytes", json_integer(s->memfree_kb * 1024));
	if (s->have & (1u << MS_INV_HWCORRUPT))
		json_object_set_new(o, "hardware_corrupted_bytes",
				    json_integer(s->hwcorrupt_kb * 1024));
	if (s->have & (1u << MS_INV_FOLL_PIN)) {
		json_object_set_new(o, "nr_foll_pin_acquired", json_integer(s->pin_acquired));
		json_object_set_new(o, "nr_foll_pin_released", json_integer(s->pin_released));
	}
	if (s->have & (1u << MS_INV_PAT))
		json_object_set_new(o, "pat_memtype_entries", json_integer(s->pat_entries));
	for (unsigned i = 0; i < s->nhstates; i++)
		json_array_append_new(hs, json_pack("{s:I, s:I, s:I, s:I, s:I}", "size_kb",
						    (json_int_t)s->hs[i].size_kb, "total",
						    (json_int_t)s->hs[i].nr, "free",
						    (json_int_t)s->hs[i].free, "rsvd",
						    (json_int_t)s->hs[i].resv, "surp",
						    (json_int_t)s->hs[i].surplus));
	json_object_set_new(o, "hugetlb", hs);
	return o;
}

static json_t *result_json(const struct ms_inv_result *r)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:b}", "name", r->name, "before",
			      (json_int_t)r->before, "after", (json_int_t)r->after, "unit", r->unit,
			      "ok", r->ok);

	/* Open ends of the allowed range are left out rather than printed as huge numbers. */
	if (o && r->lo > INT64_MIN / 2)
		json_object_set_new(o, "allowed_min_change", json_integer(r->lo));
	if (o && r->hi < INT64_MAX / 2)
		json_object_set_new(o, "allowed_max_change", json_integer(r->hi));
	return o;
}

static void range_text(const struct ms_inv_result *r, char *buf, size_t len)
{
	if (r->lo == r->hi)
		snprintf(buf, len, "allowed %+" PRId64, r->lo);
	else if (r->lo <= INT64_MIN / 2)
		snprintf(buf, len, "allowed at most %+" PRId64, r->hi);
	else
		snprintf(buf, len, "allowed at least %+" PRId64, r->lo);
}

static void check_one(struct ms_ctx *ctx, const struct ms_inv_result *r, uint64_t waited_ns,
		      const char *desc)
{
	char what[128], range[64];

	snprintf(what, sizeof(what), "invariant: %s back to its pre-case value", r->name);
	range_text(r, range, sizeof(range));
	ms_check(ctx, r->ok, what, "%" PRId64 " -> %" PRId64 " %s (%+" PRId64 ", %s) %.1f s "
		 "after the case; rerun: %s; injected by %s", r->before, r->after, r->unit,
		 r->after - r->before, range, waited_ns / 1e9, ms_inject_rerun(ctx), desc);
}

const char *const ms_inv_global_modes[] = { "auto", "judge", "report", NULL };
enum { GLOBAL_AUTO, GLOBAL_JUDGE, GLOBAL_REPORT };

/* Machine-wide counters are a fair measure only where nothing else runs: a VM guest. */
static bool judged(const struct ms_ctx *ctx, const struct ms_inv_result *r)
{
	int mode = (int)ms_param_i(ctx, "inv_global");

	if (!r->global || mode == GLOBAL_JUDGE)
		return true;
	return mode == GLOBAL_AUTO && ms_in_guest(ctx);
}

static size_t compare_now(struct ms_ctx *ctx, const struct ms_inv_snap *base,
			  const struct ms_inv_limits *lim, struct ms_inv_snap *now,
			  struct ms_inv_result *res, size_t *bad)
{
	size_t n = 0;

	*bad = 0;
	if (!ms_inv_snapshot(now))
		n = ms_inv_compare(base, now, lim, res, MS_INV_MAX_RESULTS);
	for (size_t i = 0; i < n; i++)
		*bad += judged(ctx, &res[i]) && !res[i].ok;
	return n;
}

/* Out of range but not judged: said in a note, so nobody reads it as clean. */
static void note_unjudged(struct ms_ctx *ctx, const struct ms_inv_result *res, size_t n)
{
	char buf[240];
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && at < sizeof(buf); i++) {
		if (judged(ctx, &res[i]) || res[i].ok)
			continue;
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s %+" PRId64 " %s",
				       at ? ", " : "", res[i].name, res[i].after - res[i].before,
				       res[i].unit);
	}
	if (buf[0])
		ms_note(ctx, "invariants not judged on the host (inv_global=%s; other processes "
			"move them): %s", ms_param_s(ctx, "inv_global"), buf);
}

json_t *ms_inv_check(struct ms_ctx *ctx, const struct ms_inv_snap *base)
{
	struct ms_inv_limits lim = {
		.pagetables_slack_bytes = (uint64_t)ms_param_i(ctx, "inv_pagetables_slack"),
		.memfree_slack_bytes = (uint64_t)ms_param_i(ctx, "inv_memfree_slack"),
	};
	uint64_t settle = (uint64_t)ms_param_i(ctx, "inv_settle"), t0 = ms_now_ns(), waited;
	struct ms_inv_result res[MS_INV_MAX_RESULTS];
	struct ms_inv_snap now;
	size_t n, bad, checked = 0;
	json_t *o, *arr;
	char desc[1024];

	/* Page tables are freed after an RCU grace period, pages via per-CPU lists: wait. */
	for (;;) {
		n = compare_now(ctx, base, &lim, &now, res, &bad);
		if (!bad || ms_now_ns() - t0 >= settle)
			break;
		usleep(SETTLE_POLL_US);
	}
	waited = ms_now_ns() - t0;
	ms_inject_describe(ctx, desc, sizeof(desc));
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *r = result_json(&res[i]);

		if (judged(ctx, &res[i])) {
			check_one(ctx, &res[i], waited, desc);
			checked++;
		}
		json_object_set_new(r, "judged", json_boolean(judged(ctx, &res[i])));
		json_array_append_new(arr, r);
	}
	note_unjudged(ctx, res, n);
	o = json_pack("{s:I, s:I, s:I, s:{s:I, s:I, s:I, s:s}, s:o, s:o, s:o}", "checked",
		      (json_int_t)checked, "failed", (json_int_t)bad, "settled_ns",
		      (json_int_t)waited, "limits", "pagetables_slack_bytes",
		      (json_int_t)lim.pagetables_slack_bytes, "memfree_slack_bytes",
		      (json_int_t)lim.memfree_slack_bytes, "settle_ns", (json_int_t)settle,
		      "global", ms_param_s(ctx, "inv_global"), "before", ms_inv_snap_json(base),
		      "after", ms_inv_snap_json(&now), "results", arr);
	return o;
}

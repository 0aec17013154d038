/* Page-table cost model (ptcost.h): tables per level, shared and private, for N processes. */
#include <errno.h>
#include <stdio.h>

#include "mmstorm/ptcost.h"

/* 5-level paging's user half ends at 2^56; nothing the model is asked about lies above. */
#define PT_VA_LIMIT (1ULL << 57)

static const uint64_t span_of[MS_PT_NLEVELS] = { MS_PT_PTE_SPAN, MS_PT_PMD_SPAN,
						 MS_PT_PUD_SPAN };

uint64_t ms_ptcost_spans(uint64_t start, uint64_t len, enum ms_pt_level level)
{
	uint64_t span = span_of[level];

	if (!len)
		return 0;
	return (start + len - 1) / span - start / span + 1;
}

/* The lowest level holding tables: where the leaf entries of page_bytes pages live. */
static int leaf_level(uint64_t page_bytes)
{
	switch (page_bytes) {
	case 4096:
		return MS_PT_PTE;
	case MS_PT_PTE_SPAN:
		return MS_PT_PMD;
	case MS_PT_PMD_SPAN:
		return MS_PT_PUD;
	default:
		return -1;
	}
}

static int share_level(enum ms_pt_share share)
{
	switch (share) {
	case MS_PT_SHARE_PTE:
		return MS_PT_PTE;
	case MS_PT_SHARE_PMD:
		return MS_PT_PMD;
	case MS_PT_SHARE_PUD:
		return MS_PT_PUD;
	default:
		return -1;
	}
}

static int check_in(const struct ms_ptcost_in *in)
{
	uint64_t end = in->start + in->len;

	if (leaf_level(in->page_bytes) < 0 || !in->len || !in->nproc)
		return -EINVAL;
	if (in->start % in->page_bytes || in->len % in->page_bytes ||
	    in->pop_len % in->page_bytes || in->pop_len > in->len)
		return -EINVAL;
	if (end < in->start || end > PT_VA_LIMIT)
		return -EINVAL;
	if (in->share != MS_PT_SHARE_NONE && share_level(in->share) < 0)
		return -EINVAL;
	return 0;
}

/*
 * Level-l tables under share-level spans that the mapping covers whole: those spans form
 * one run [lo, hi) of the mapping, and level-l spans nest inside them exactly.
 */
static uint64_t shared_tables(const struct ms_ptcost_in *in, int l, int s)
{
	uint64_t span = span_of[s], end = in->start + in->len, pop_end = in->start + in->pop_len;
	uint64_t lo = (in->start + span - 1) / span * span, hi = end / span * span;

	if (lo < in->start || lo >= hi)
		return 0;	/* no whole span (or the round-up wrapped) */
	if (hi > pop_end)
		hi = pop_end;
	return hi > lo ? ms_ptcost_spans(lo, hi - lo, l) : 0;
}

int ms_ptcost(const struct ms_ptcost_in *in, struct ms_ptcost *out)
{
	int leaf, s, ret;
	uint64_t all = 0, counted_priv = 0, counted_shared = 0;

	*out = (struct ms_ptcost){ 0 };
	if ((ret = check_in(in)))
		return ret;
	leaf = leaf_level(in->page_bytes);
	s = share_level(in->share);
	for (int l = leaf; l < MS_PT_NLEVELS; l++) {
		uint64_t priv;

		out->tables[l] = ms_ptcost_spans(in->start, in->pop_len, l);
		if (l <= s)
			out->shared[l] = shared_tables(in, l, s);
		priv = out->tables[l] - out->shared[l];
		out->private_bytes += priv * MS_PT_TABLE_BYTES;
		out->shared_bytes += out->shared[l] * MS_PT_TABLE_BYTES;
		all += out->tables[l] * MS_PT_TABLE_BYTES;
		if (in->pt_levels & (1u << l)) {
			counted_priv += priv * MS_PT_TABLE_BYTES;
			counted_shared += out->shared[l] * MS_PT_TABLE_BYTES;
		}
	}
	out->vmpte_bytes = out->private_bytes + (in->charge_shared ? out->shared_bytes : 0);
	out->vmpte_sum_bytes = in->nproc * out->vmpte_bytes;
	out->system_bytes = in->nproc * counted_priv + counted_shared;
	out->unshared_bytes = in->nproc * all;
	return 0;
}

unsigned ms_ptcost_levels_for_release(const char *release)
{
	unsigned major = 0, minor = 0;

	if (!release || sscanf(release, "%u.%u", &major, &minor) != 2)
		return MS_PT_LEVELS_ALL;
	if (major < 6 || (major == 6 && minor < 7))
		return MS_PT_LEVELS_ALL & ~(1u << MS_PT_PUD);
	return MS_PT_LEVELS_ALL;
}

/* The fuzzer's model of x86 PAT memtype tracking of its /dev/mem window (see fuzz.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/fuzz.h"
#include "mmstorm/refmodel.h"

#define PG 4096ULL

static void reserve(struct ms_fz_pat *pt, uint64_t start, uint64_t end)
{
	if (pt->nnode == MS_FZ_PAT_MAX) {
		pt->unsure = true;
		return;
	}
	pt->node[pt->nnode++] = (struct ms_fz_pat_range){ start, end };
}

/*
 * memtype_erase(): an exact match goes; else an entry that starts below and ends at end is
 * cut to end at start (the first in the interval tree's order, lowest start); else the free
 * fails and memtype_free() says "freeing invalid memtype".
 */
static void erase(struct ms_fz_pat *pt, uint64_t start, uint64_t end)
{
	int cut = -1;

	for (unsigned i = 0; i < pt->nnode; i++) {
		if (pt->node[i].start == start && pt->node[i].end == end) {
			pt->node[i] = pt->node[--pt->nnode];
			return;
		}
		if (pt->node[i].start < start && pt->node[i].end == end &&
		    (cut < 0 || pt->node[i].start < pt->node[cut].start))
			cut = (int)i;
	}
	if (cut >= 0) {
		pt->node[cut].end = start;
		return;
	}
	if (pt->nfailed == MS_FZ_PAT_MAX) {
		pt->unsure = true;
		return;
	}
	pt->failed[pt->nfailed++] = (struct ms_fz_pat_range){ start, end };
}

static void untrack(struct ms_fz_pat *pt, const struct ms_fz_pat_vma *v)
{
	if (v->pat)
		erase(pt, v->phys * PG, (v->phys + (uint64_t)(v->end - v->start)) * PG);
}

static void insert_vma(struct ms_fz_pat *pt, unsigned p, struct ms_fz_pat_vma v)
{
	unsigned i = pt->nvma[p];

	if (i == MS_FZ_PFN_SLOTS) {
		pt->unsure = true;
		return;
	}
	for (; i > 0 && pt->vma[p][i - 1].start > v.start; i--)
		pt->vma[p][i] = pt->vma[p][i - 1];
	pt->vma[p][i] = v;
	pt->nvma[p]++;
}

/* __split_vma(): both pieces keep the flags (VM_PAT too, since e9f180d7cfde). */
static void split_at(struct ms_fz_pat *pt, unsigned p, unsigned at)
{
	for (unsigned i = 0; i < pt->nvma[p]; i++) {
		struct ms_fz_pat_vma *v = &pt->vma[p][i], hi;

		if (v->start >= at || v->end <= at)
			continue;
		hi = *v;
		hi.start = (uint8_t)at;
		hi.phys = (uint8_t)(v->phys + (at - v->start));
		v->end = (uint8_t)at;
		insert_vma(pt, p, hi);
		return;
	}
}

/* do_vmi_munmap(): split at both ends, unmap the pieces inside in address order. */
static void unmap(struct ms_fz_pat *pt, unsigned p, unsigned from, unsigned to)
{
	unsigned n = 0;

	split_at(pt, p, from);
	split_at(pt, p, to);
	for (unsigned i = 0; i < pt->nvma[p]; i++) {
		const struct ms_fz_pat_vma *v = &pt->vma[p][i];

		if (v->start >= from && v->end <= to)
			untrack(pt, v);
		else
			pt->vma[p][n++] = *v;
	}
	pt->nvma[p] = (uint8_t)n;
}

/* mprotect_fixup() splits only a VMA whose protection changes. */
static void protect(struct ms_fz_pat *pt, unsigned p, unsigned from, unsigned to, uint8_t prot)
{
	bool cut_from = false, cut_to = false;

	for (unsigned i = 0; i < pt->nvma[p]; i++) {
		const struct ms_fz_pat_vma *v = &pt->vma[p][i];

		if (v->end <= from || v->start >= to || v->prot == prot)
			continue;
		cut_from |= v->start < from;
		cut_to |= v->end > to;
	}
	if (cut_from)
		split_at(pt, p, from);
	if (cut_to)
		split_at(pt, p, to);
	for (unsigned i = 0; i < pt->nvma[p]; i++)
		if (pt->vma[p][i].start >= from && pt->vma[p][i].end <= to)
			pt->vma[p][i].prot = prot;
}

/*
 * move_vma(): copy_vma() dups the VMA (VM_PAT and all) for the new place, then
 * untrack_pfn_clear() clears VM_PAT on the whole old VMA before do_vmi_munmap() of the moved
 * range, so neither the moved-out range nor what stays of the old VMA frees anything.
 */
static void move(struct ms_fz_pat *pt, unsigned p, const struct ms_fz_op *op)
{
	struct ms_fz_pat_vma *v = NULL, nv;

	for (unsigned i = 0; i < pt->nvma[p]; i++)
		if (pt->vma[p][i].start <= op->first && pt->vma[p][i].end >= op->first + op->n)
			v = &pt->vma[p][i];
	if (!v) {
		pt->unsure = true;	/* the runtime skips a move that spans VMAs */
		return;
	}
	nv = *v;
	nv.start = (uint8_t)op->to;
	nv.end = (uint8_t)(op->to + op->n);
	nv.phys = (uint8_t)(v->phys + (op->first - v->start));
	v->pat = false;
	unmap(pt, p, op->first, op->first + op->n);
	insert_vma(pt, p, nv);
}

/* dup_mmap() + copy_page_range(): a VM_PAT VMA reserves its range again for the child. */
static void fork_copy(struct ms_fz_pat *pt, unsigned p, unsigned child)
{
	if (child >= MS_FZ_MAX_PROCS) {
		pt->unsure = true;
		return;
	}
	pt->nvma[child] = 0;
	for (unsigned i = 0; i < pt->nvma[p]; i++) {
		const struct ms_fz_pat_vma *v = &pt->vma[p][i];

		if (v->pat)
			reserve(pt, v->phys * PG, (v->phys + (uint64_t)(v->end - v->start)) * PG);
		insert_vma(pt, child, *v);
	}
}

static void see(void *arg, const struct ms_fz_model *m, const struct ms_fz_op *op,
		unsigned child, bool ok)
{
	struct ms_fz_pat *pt = arg;
	unsigned p = op->proc;

	(void)m;
	if (!ok) {
		/*
		 * A fork that fails unwinds: the child's copies are untracked by exact match
		 * (untrack_pfn_copy(), exit_mmap() of the half-built mm). A pfn op that fails may
		 * have split VMAs first; which splits is not known.
		 */
		if (op->kind >= MS_FZ_PFN_MUNMAP && op->kind <= MS_FZ_PFN_MPROTECT)
			pt->unsure = true;
		return;
	}
	switch (op->kind) {
	case MS_FZ_PFN_MAP:
		/* track_pfn_remap() of the whole VMA: /dev/mem from offset 0 */
		reserve(pt, 0, op->n * PG);
		insert_vma(pt, p, (struct ms_fz_pat_vma){ (uint8_t)op->first,
				  (uint8_t)(op->first + op->n), 0, MS_FZ_F_READ, true });
		break;
	case MS_FZ_PFN_MUNMAP:
		unmap(pt, p, op->first, op->first + op->n);
		break;
	case MS_FZ_PFN_MPROTECT:
		protect(pt, p, op->first, op->first + op->n, op->flags & MS_FZ_F_READ);
		break;
	case MS_FZ_PFN_MREMAP:
		if (op->to == op->first)	/* a shrink in place unmaps the tail */
			unmap(pt, p, op->first + op->n2, op->first + op->n);
		else
			move(pt, p, op);
		break;
	case MS_FZ_FORK:
		fork_copy(pt, p, child);
		break;
	case MS_FZ_EXIT:
		unmap(pt, p, 0, MS_FZ_PFN_SLOTS);
		break;
	}
}

int ms_fz_pat_predict(struct ms_fz_pat *pt, const struct ms_fz_pat_range *nodes, unsigned n,
		      const struct ms_fz_seq *s, const int8_t *ran, const uint64_t *part)
{
	struct ms_fz_model m;
	int ret;

	memset(pt, 0, sizeof(*pt));
	for (unsigned i = 0; i < n; i++)
		reserve(pt, nodes[i].start, nodes[i].end);
	ret = ms_fz_model_walk(&m, s, s->nops, ran, part, see, pt);
	/* ms_fzrt_fini(): processes 1.. killed one by one, then process 0 unmaps its windows. */
	for (unsigned p = 1; !ret && p <= MS_FZ_MAX_PROCS; p++) {
		unsigned q = p % MS_FZ_MAX_PROCS;

		if (!q || ms_rm_alive(m.rm, q))
			unmap(pt, q, 0, MS_FZ_PFN_SLOTS);
	}
	ms_fz_model_fini(&m);
	return ret;
}

static int cmp_range(const void *a, const void *b)
{
	const struct ms_fz_pat_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* Up to MS_FZ_PAT_MAX of src (NULL when n is 0) into dst, sorted; how many. */
static unsigned sorted(struct ms_fz_pat_range *dst, const struct ms_fz_pat_range *src,
		       unsigned n)
{
	n = n > MS_FZ_PAT_MAX ? MS_FZ_PAT_MAX : n;
	if (n)
		memcpy(dst, src, n * sizeof(*src));
	qsort(dst, n, sizeof(*dst), cmp_range);
	return n;
}

bool ms_fz_pat_same(const struct ms_fz_pat_range *a, unsigned na,
		    const struct ms_fz_pat_range *b, unsigned nb)
{
	struct ms_fz_pat_range x[MS_FZ_PAT_MAX], y[MS_FZ_PAT_MAX];

	if (na != nb || na > MS_FZ_PAT_MAX)
		return false;
	sorted(x, a, na);
	sorted(y, b, nb);
	return !na || !memcmp(x, y, na * sizeof(*x));
}

void ms_fz_pat_str(const struct ms_fz_pat_range *r, unsigned n, char *buf, size_t len)
{
	struct ms_fz_pat_range x[MS_FZ_PAT_MAX];
	size_t off = 0;

	n = sorted(x, r, n);
	snprintf(buf, len, "%s", n ? "" : "none");
	for (unsigned i = 0; i < n && off < len; i++) {
		int k = snprintf(buf + off, len - off, "%s[%#" PRIx64 "-%#" PRIx64 ")", i ? " " : "",
				 x[i].start, x[i].end);

		if (k < 0)
			break;
		off += (size_t)k;
	}
}

/* memtype_seq_show(): "PAT: [mem 0x%016Lx-0x%016Lx] type", end exclusive. */
static int parse_list(FILE *f, struct ms_fz_pat_range *r, unsigned max)
{
	unsigned long long a, b;
	char line[256];
	unsigned n = 0;

	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "PAT: [mem %llx-%llx]", &a, &b) != 2 || a >= MS_FZ_PAT_WINDOW)
			continue;
		if (n == max)
			return -E2BIG;
		r[n++] = (struct ms_fz_pat_range){ a, b };
	}
	return (int)n;
}

int ms_fz_pat_read(const char *text, struct ms_fz_pat_range *r, unsigned max)
{
	FILE *f = text ? fmemopen((void *)text, strlen(text), "r") :
			 fopen("/sys/kernel/debug/x86/pat_memtype_list", "re");
	int ret;

	if (!f)
		return -errno;
	ret = parse_list(f, r, max);
	fclose(f);
	return ret;
}

/* memtype_free(): "x86/PAT: comm:pid freeing invalid memtype [mem %#010Lx-%#010Lx]", end - 1. */
bool ms_fz_pat_log_range(const char *line, struct ms_fz_pat_range *r)
{
	const char *p = strstr(line, "freeing invalid memtype [mem ");
	unsigned long long a, b;

	if (!p || sscanf(p, "freeing invalid memtype [mem %llx-%llx]", &a, &b) != 2)
		return false;
	*r = (struct ms_fz_pat_range){ a, b + 1 };
	return true;
}

/* Ranges of a (sorted, na) not matched one for one in b (sorted, nb), into out. */
static unsigned only_in(const struct ms_fz_pat_range *a, unsigned na,
			const struct ms_fz_pat_range *b, unsigned nb, struct ms_fz_pat_range *out)
{
	unsigned i = 0, j = 0, n = 0;

	while (i < na) {
		int c = j < nb ? cmp_range(&a[i], &b[j]) : -1;

		if (c < 0)
			out[n++] = a[i++];
		else if (c > 0)
			j++;
		else
			i++, j++;
	}
	return n;
}

void ms_fz_pat_diff(const struct ms_fz_pat_range *want, unsigned nw,
		    const struct ms_fz_pat_range *got, unsigned ng, char *buf, size_t len)
{
	struct ms_fz_pat_range x[MS_FZ_PAT_MAX], y[MS_FZ_PAT_MAX], d[MS_FZ_PAT_MAX];
	char a[160], b[160];
	unsigned n;

	nw = sorted(x, want, nw);
	ng = sorted(y, got, ng);
	n = only_in(x, nw, y, ng, d);
	ms_fz_pat_str(d, n, a, sizeof(a));
	n = only_in(y, ng, x, nw, d);
	ms_fz_pat_str(d, n, b, sizeof(b));
	snprintf(buf, len, "expected but missing: %s, present but not expected: %s", a, b);
}

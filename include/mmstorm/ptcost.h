/* Page-table cost model: x86-64 4-level page tables N processes need to map one range. */
#ifndef MMSTORM_PTCOST_H
#define MMSTORM_PTCOST_H

#include <stdbool.h>
#include <stdint.h>

/*
 * x86-64 with 4-level paging: every table is one 4 KiB page of 512 8-byte entries. A PTE
 * table maps 2 MiB, a PMD table 1 GiB, a PUD table 512 GiB; the PGD maps everything and
 * exists once per process whatever it maps, so it is no part of a range's cost (with 5-level
 * paging the P4D table of the user half exists already as well).
 */
#define MS_PT_TABLE_BYTES 4096ULL
#define MS_PT_PTE_SPAN (2ULL << 20)
#define MS_PT_PMD_SPAN (1ULL << 30)
#define MS_PT_PUD_SPAN (512ULL << 30)

enum ms_pt_level { MS_PT_PTE, MS_PT_PMD, MS_PT_PUD, MS_PT_NLEVELS };

#define MS_PT_LEVELS_ALL ((1u << MS_PT_PTE) | (1u << MS_PT_PMD) | (1u << MS_PT_PUD))

/*
 * Which tables processes mapping the same object at the same address can share. A table at
 * the share level is shared only when the mapping covers all of the span it maps (hugetlb:
 * range_in_vma() of the PUD-aligned 1 GiB), and the tables below a shared table are shared
 * with it. Tables above the share level, and partly covered ones, are each process's own.
 */
enum ms_pt_share {
	MS_PT_SHARE_NONE,	/* each process its own tables (shmem, memfd, uffd-registered) */
	MS_PT_SHARE_PTE,	/* PTE tables of fully covered 2 MiB spans */
	MS_PT_SHARE_PMD,	/* hugetlb PMD sharing: PMD tables of fully covered 1 GiB spans */
	MS_PT_SHARE_PUD,	/* mshare (2025 series): PUD tables of the 512 GiB region */
};

struct ms_ptcost_in {
	uint64_t start;		/* mapping start, a multiple of page_bytes */
	uint64_t len;		/* mapping length, a multiple of page_bytes, > 0 */
	uint64_t pop_len;	/* bytes every process populated from start, <= len */
	uint64_t page_bytes;	/* 4K (PTE leaves), 2M (PMD leaves) or 1G (PUD leaves) */
	uint64_t nproc;		/* processes mapping it, >= 1 */
	enum ms_pt_share share;
	bool charge_shared;	/* a sharer's VmPTE counts the shared tables too */
	unsigned pt_levels;	/* 1 << level for each level /proc/meminfo PageTables counts */
};

struct ms_ptcost {
	uint64_t tables[MS_PT_NLEVELS];		/* tables one process's walk goes through */
	uint64_t shared[MS_PT_NLEVELS];		/* of which shared by all (allocated once) */
	uint64_t private_bytes;			/* per process: tables only it has */
	uint64_t shared_bytes;			/* the shared tables, once */
	uint64_t vmpte_bytes;			/* per process: VmPTE growth */
	uint64_t vmpte_sum_bytes;		/* nproc * vmpte_bytes */
	uint64_t system_bytes;			/* PageTables growth for all nproc processes */
	uint64_t unshared_bytes;		/* the same without any sharing (all levels) */
};

/* Fill out from in. 0, or -EINVAL for a layout the model does not describe. */
int ms_ptcost(const struct ms_ptcost_in *in, struct ms_ptcost *out);

/*
 * Levels that PageTables counts on a kernel release ("6.1.0-56-amd64"): PTE and PMD tables
 * always, PUD tables since 6.7 (55d2a0bd5ead "mm: add statistics for PUD level pagetable";
 * measured: 6.1 leaves them out, 6.12 and 6.18 count them). An unparsable release is taken
 * as a current kernel.
 */
unsigned ms_ptcost_levels_for_release(const char *release);

/* Tables at level needed for [start, start + len): spans of that level's size it touches. */
uint64_t ms_ptcost_spans(uint64_t start, uint64_t len, enum ms_pt_level level);

#endif

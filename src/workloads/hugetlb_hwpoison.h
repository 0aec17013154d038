/* Shared by hugetlb-minor and hgm: MADV_HWPOISON of one 4K piece of a shared hugetlb range. */
#ifndef MMSTORM_WORKLOADS_HUGETLB_HWPOISON_H
#define MMSTORM_WORKLOADS_HUGETLB_HWPOISON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmstorm/workload.h"

/*
 * One poisoning, described by the workload that populated the range. lost_bytes is what the
 * kernel under test is expected to take out of service for one bad 4K piece: the whole huge
 * page on mainline (hwpoison entries are installed at huge page size), the piece alone with
 * HGM. Everything else of the range must keep the model's data in every mapper.
 */
struct ms_hwp {
	char *map;			/* MAP_SHARED hugetlb range, every piece populated */
	char *alias;			/* optional: a second mapping of the same file */
	uint64_t len, hpage_bytes;
	size_t psz;
	uint64_t lost_bytes;
	bool judge_poisoner_lsb;	/* the poisoner's own signal: judged, or only reported */
	uint64_t seed;
	uint64_t (*fill)(const void *arg, uint64_t page);	/* the model's stamp of a piece */
	/* Drop every mapping of the file and the file itself (the range is gone after). */
	int (*release)(struct ms_ctx *ctx, void *arg);
	void *arg;
	int m_lat, m_lsb, m_told;	/* from ms_hwp_metrics() */
};

/* Destructive gate, CONFIG_MEMORY_FAILURE, early kill off (journaled): 0, MS_SKIP or -errno. */
int ms_hwp_probe(struct ms_ctx *ctx);
/* Registers hwpoison_ns and sigbus_lsb into h (call in setup). */
int ms_hwp_metrics(struct ms_ctx *ctx, struct ms_hwp *h);
/*
 * Poison one seeded piece from a child while the caller and a second child map the range;
 * check signals, data and counters; release the range through h->release; unpoison where
 * debugfs allows and check the counters come back. 0, MS_SKIP or -errno.
 */
int ms_hwp_run(struct ms_ctx *ctx, const struct ms_hwp *h);

#endif

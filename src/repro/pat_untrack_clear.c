/* Trigger for e9f180d7cfde: PAT reservations of split /dev/mem VMAs never freed. */
/*
 * Map two pages of /dev/mem (VM_PFNMAP, PAT-tracked), split the VMA three ways (munmap of one
 * page, mremap shrink, mprotect of one page), unmap everything; 20 rounds. On a kernel that
 * calls untrack_pfn_clear() on every duplicated VMA (not only for fork), the split-off VMA
 * loses its PAT tracking and its reservation stays in the memtype list for good.
 * Evidence: /sys/kernel/debug/x86/pat_memtype_list ends with at least one more entry per round
 * than it started with. Fewer extra entries (a one-off) and "freeing invalid memtype" lines are
 * reported per split kind but are not this bug.
 */
#include <sys/mman.h>

#include "repro_lib.h"

#define ROUNDS 20

enum { SPLIT_MUNMAP, SPLIT_MREMAP, SPLIT_MPROTECT, NSPLITS };
static const char *const split_names[] = { "munmap", "mremap-shrink", "mprotect" };

static int split_and_unmap(int fd, long psz, int kind)
{
	size_t one = (size_t)psz, two = 2 * one;
	char *p = mmap(NULL, two, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -1;
	switch (kind) {
	case SPLIT_MUNMAP:
		return munmap(p + psz, one) || munmap(p, one) ? -1 : 0;
	case SPLIT_MREMAP:
		return mremap(p, two, one, 0) != p || munmap(p, one) ? -1 : 0;
	default:
		return mprotect(p + psz, one, PROT_READ) || munmap(p, two) ? -1 : 0;
	}
}

int main(void)
{
	static const char *const pats[] = { "freeing invalid memtype", NULL };
	long psz = sysconf(_SC_PAGESIZE), before, after, grew[NSPLITS] = { 0 };
	int fd, kfd, ret = 0, warned[NSPLITS] = { 0 };
	char log[512], what[512] = "";

	before = repro_memtype_count();
	if (before < 0)
		return repro_skip("%s: %s (needs x86 PAT and debugfs mounted)", REPRO_MEMTYPE_LIST,
				  strerror(errno));
	fd = open("/dev/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return repro_skip("/dev/mem: %s (needs CONFIG_DEVMEM)", strerror(errno));
	kfd = repro_kmsg_open();
	for (int i = 0; i < ROUNDS * NSPLITS && !ret; i++) {
		long n0 = repro_memtype_count();

		ret = split_and_unmap(fd, psz, i % NSPLITS);
		grew[i % NSPLITS] += repro_memtype_count() - n0;
		warned[i % NSPLITS] += repro_kmsg_find(kfd, pats, log, sizeof(log)) > 0;
	}
	if (ret) {
		ret = repro_skip("mapping /dev/mem at offset 0: %s (STRICT_DEVMEM or no PAT "
				 "tracking for it)", strerror(errno));
		goto out;
	}
	after = repro_memtype_count();
	for (int k = 0; k < NSPLITS; k++)
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
			 "%s%s +%ld entries, %d invalid-memtype warnings", k ? "; " : "",
			 split_names[k], grew[k], warned[k]);
	if (after - before >= ROUNDS)
		ret = repro_found("PAT memtype list grew from %ld to %ld entries in %d rounds of "
				  "split-and-unmap of /dev/mem (%s)", before, after, ROUNDS, what);
	else
		ret = repro_not("PAT memtype list %ld -> %ld entries after %d rounds (%s)", before,
				after, ROUNDS, what);
out:
	close(fd);
	if (kfd >= 0)
		close(kfd);
	return ret;
}

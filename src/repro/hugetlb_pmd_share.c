/* Trigger for hugetlb PMD sharing: sharers fork, split and exit while GUP-fast runs. */
/*
 * A 1 GiB, PUD-aligned MAP_SHARED hugetlb range lets processes share its PMD page table
 * (x86-64 huge_pmd_share). Rounds of three children map it through the shared table, split
 * their VMA at a 2 MiB boundary (mprotect, which must unshare the table), unmap half and exit,
 * while a thread of the parent keeps taking GUP-fast references into the range (vmsplice)
 * and, with debugfs, split_huge_pages walks all pages taking transient references (the
 * misjudged-share case of CVE-2024-57883). Evidence: a child reading another page's stamp,
 * or Bad page state / non-zero pgtables_bytes / a WARNING or BUG in the kernel log.
 * The change of PageTables is printed but is no evidence (other processes move it too).
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "repro_lib.h"

#define GIB		(1UL << 30)
#define HPAGE		(2UL << 20)
#define NHPAGES		(GIB / HPAGE)
#define ROUNDS		8
#define CHILDREN	3
#define STAMP(i)	(0x6d6d73746f726dULL ^ ((uint64_t)(i) << 48))

struct gupper {
	char *base;
	volatile int stop;
};

static void *gup_fast(void *arg)
{
	struct gupper *g = arg;
	char sink[4096];
	int p[2];

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC))
		return NULL;
	for (unsigned long i = 0; !g->stop; i++) {
		struct iovec iov = { g->base + (i % NHPAGES) * HPAGE, 4096 };

		if (vmsplice(p[1], &iov, 1, SPLICE_F_NONBLOCK) > 0)
			while (read(p[0], sink, sizeof(sink)) > 0)
				;
	}
	close(p[0]);
	close(p[1]);
	return NULL;
}

/* 0, or 1 + the first page whose stamp is wrong. */
static unsigned long check_stamps(const char *base, unsigned long from, unsigned long to)
{
	for (unsigned long i = from; i < to; i++)
		if (*(const volatile uint64_t *)(base + i * HPAGE) != STAMP(i))
			return i + 1;
	return 0;
}

static int child(char *base, int k)
{
	unsigned long bad = check_stamps(base, 0, NHPAGES);

	if (!bad && mprotect(base + (1 + k) * HPAGE, HPAGE, PROT_READ))
		return 3;
	if (!bad)
		bad = check_stamps(base, 0, NHPAGES);
	if (!bad && munmap(base + GIB / 2, GIB / 2))
		return 3;
	if (!bad)
		bad = check_stamps(base, 0, NHPAGES / 2);
	return bad ? 1 : 0;
}

static char *map_shared_gib(int fd)
{
	char *r = mmap(NULL, 2 * GIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0), *a;

	if (r == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)r + GIB - 1) & ~(GIB - 1));
	if (mmap(a, GIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != a)
		return NULL;
	return a;
}

static void poke_split_huge_pages(void)
{
	int fd = open("/sys/kernel/debug/split_huge_pages", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			errno = 0;	/* best effort: only the transient references matter */
		close(fd);
	}
}

int main(void)
{
	static const char *const pats[] = { "Bad page", "pgtables_bytes", "WARNING:", "BUG:",
					    "refcount_t", NULL };
	struct gupper g = { 0 };
	long pt0, pt1;
	int fd, kfd, ret = 0, bad = 0;
	char log[512];
	pthread_t t;

	fd = memfd_create("mmstorm-pmd-share", MFD_HUGETLB | MFD_CLOEXEC);
	if (fd < 0)
		return repro_skip("memfd_create(MFD_HUGETLB): %s", strerror(errno));
	if (ftruncate(fd, (off_t)GIB) || !(g.base = map_shared_gib(fd))) {
		close(fd);
		return repro_skip("a 1 GiB shared hugetlb mapping: %s (needs 512 free 2 MiB huge "
				  "pages)", strerror(errno));
	}
	for (unsigned long i = 0; i < NHPAGES; i++)
		*(volatile uint64_t *)(g.base + i * HPAGE) = STAMP(i);
	kfd = repro_kmsg_open();
	pt0 = repro_meminfo_kb("PageTables");
	if (pthread_create(&t, NULL, gup_fast, &g))
		return repro_error("pthread_create failed");
	for (int r = 0; r < ROUNDS && !bad && !ret; r++) {
		pid_t pids[CHILDREN];
		int st;

		for (int k = 0; k < CHILDREN; k++) {
			pids[k] = fork();
			if (pids[k] == 0)
				_exit(child(g.base, k));
			if (pids[k] < 0)
				ret = repro_error("fork: %s", strerror(errno));
		}
		poke_split_huge_pages();
		for (int k = 0; k < CHILDREN; k++) {
			if (pids[k] <= 0 || waitpid(pids[k], &st, 0) != pids[k])
				continue;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
				bad = r + 1;
			else if (!WIFEXITED(st) || WEXITSTATUS(st))
				ret = repro_error("sharer exited with status 0x%x", st);
		}
	}
	g.stop = 1;
	pthread_join(t, NULL);
	if (ret)
		return ret;
	munmap(g.base, GIB);
	close(fd);
	usleep(300000);	/* page tables are freed through RCU */
	pt1 = repro_meminfo_kb("PageTables");
	if (repro_kmsg_find(kfd, pats, log, sizeof(log)) > 0)
		return repro_found("%s", log);
	if (bad)
		return repro_found("a sharer of the PMD table read a wrong stamp in round %d", bad);
	return repro_not("%d rounds of %d PMD-table sharers splitting and unmapping under "
			 "GUP-fast: data intact, no kernel complaint (PageTables %ld -> %ld kB)",
			 ROUNDS, CHILDREN, pt0, pt1);
}

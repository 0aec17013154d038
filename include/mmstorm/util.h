/* Small helpers for reading /proc and /sys, shared by the core, probe and workloads. */
#ifndef MMSTORM_UTIL_H
#define MMSTORM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Read a whole (small) file into buf, NUL-terminated. Returns bytes read or -errno. */
ssize_t ms_read_file(const char *path, char *buf, size_t len);
/* Write a string to a file (no journal: only for files mmstorm owns). 0 or -errno. */
int ms_write_file(const char *path, const char *s);
/* First unsigned integer in a file. 0 or -errno. */
int ms_read_u64(const char *path, uint64_t *v);
/* "Key:   123 kB" lines of /proc/meminfo and /proc/PID/status (pid 0 = self). In kB. */
int ms_meminfo_kb(const char *key, uint64_t *kb);
int ms_status_kb(pid_t pid, const char *key, uint64_t *kb);
/* /proc/vmstat counter. */
int ms_vmstat(const char *key, uint64_t *v);
/* strlcpy semantics; returns strlen(src). */
size_t ms_strlcpy(char *dst, const char *src, size_t len);
/* mkdir -p. 0 or -errno. */
int ms_mkdir_p(const char *path, unsigned mode);
/* Pages of the given size that hugetlb can have now (free) for size_kb (2048, 1048576). */
int ms_hugetlb_free(unsigned long size_kb, uint64_t *free_pages);
/* Write/read all, retrying on EINTR and short counts. 0 or -errno. */
int ms_write_all(int fd, const void *buf, size_t len);
/*
 * mmap len bytes (PROT_READ|PROT_WRITE, flags, fd at offset 0) at an address aligned to align,
 * so THP and hugetlb can map it with PMDs: reserve a larger PROT_NONE range, map over its
 * aligned part, give the ends back. MAP_FAILED with errno set on failure.
 */
void *ms_mmap_aligned(size_t len, size_t align, int flags, int fd);
/* Where cgroup v2 is mounted here (hybrid hosts: /sys/fs/cgroup/unified). 0 or -errno. */
int ms_cgroup2_mount(char *mnt, size_t len);

/* Arithmetic the workloads share (sizes are not always powers of two: align by division). */
static inline uint64_t ms_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static inline int ms_log2_u64(uint64_t v)
{
	return 63 - __builtin_clzll(v);
}

static inline uint64_t ms_gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * Futex wait on a word of shared memory (timeout_ns < 0: no timeout). Callers re-check their
 * condition after any return: a wake, a timeout, EAGAIN or EINTR.
 */
static inline int ms_futex_wait(uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
	struct timespec ts = { timeout_ns / 1000000000, timeout_ns % 1000000000 };

	return (int)syscall(SYS_futex, addr, FUTEX_WAIT, val, timeout_ns >= 0 ? &ts : NULL,
			    NULL, 0);
}

/* Cannot fail on a valid, aligned word of our own mapping. */
static inline void ms_futex_wake(uint32_t *addr)
{
	(void)syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

#endif

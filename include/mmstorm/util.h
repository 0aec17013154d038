/* Small helpers for reading /proc and /sys, shared by the core, probe and workloads. */
#ifndef MMSTORM_UTIL_H
#define MMSTORM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

#endif

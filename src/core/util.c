/* Small helpers for reading /proc and /sys and for files mmstorm owns (see util.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mmstorm/util.h>

ssize_t ms_read_file(const char *path, char *buf, size_t len)
{
	size_t off = 0;
	ssize_t ret;
	char extra;
	int fd;

	if (!len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* /proc and /sys hand out their text in pieces: read until EOF. */
	while (off < len - 1) {
		ret = read(fd, buf + off, len - 1 - off);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			ret = -errno;
			goto out_close;
		}
		if (ret == 0)
			break;
		off += ret;
	}
	buf[off] = '\0';
	ret = off;
	/* A silently cut file would be parsed as if keys were missing: refuse instead. */
	if (off == len - 1) {
		do {
			ret = read(fd, &extra, 1);
		} while (ret < 0 && errno == EINTR);
		if (ret < 0)
			ret = -errno;
		else
			ret = ret ? -EFBIG : (ssize_t)off;
	}
out_close:
	if (close(fd) && ret >= 0)
		ret = -errno;
	return ret;
}

int ms_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t ret;

	while (len) {
		ret = write(fd, p, len);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		/* write() never returns 0 for len > 0 on files that can progress; do not spin. */
		if (ret == 0)
			return -EIO;
		p += ret;
		len -= ret;
	}
	return 0;
}

int ms_write_file(const char *path, const char *s)
{
	int fd, ret;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ret = ms_write_all(fd, s, strlen(s));
	/* close() is where NFS and some sysfs attributes report the write error. */
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* Leading blanks, then decimal digits; sign, hex or nothing at all are errors. */
static int parse_u64(const char *s, uint64_t *v, char **end)
{
	unsigned long long x;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	x = strtoull(s, end, 10);
	if (errno)
		return -errno;
	*v = x;
	return 0;
}

int ms_read_u64(const char *path, uint64_t *v)
{
	char buf[64], *end;
	ssize_t ret;
	int fd, err;
	uint64_t x;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Only the start matters, so one read of a small buffer, whatever the file's size. */
	do {
		ret = read(fd, buf, sizeof(buf) - 1);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		err = -errno;
		goto out_close;
	}
	buf[ret] = '\0';
	err = parse_u64(buf, &x, &end);
	/* A number running to the end of the buffer may continue beyond it. */
	if (!err && ret == sizeof(buf) - 1 && end == buf + ret)
		err = -ERANGE;
	if (!err)
		*v = x;
out_close:
	if (close(fd) && !err)
		err = -errno;
	return err;
}

/* Find "key<sep>value" at the start of a line of path; the key must match exactly. */
static int read_keyed(const char *path, const char *key, char sep, uint64_t *v)
{
	size_t klen = strlen(key), cap = 0;
	char *line = NULL, *end;
	int err = -ENOENT;
	FILE *f;

	if (!klen)
		return -EINVAL;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	errno = 0;
	while (getline(&line, &cap, f) >= 0) {
		if (strncmp(line, key, klen) || line[klen] != sep)
			continue;
		err = parse_u64(line + klen + 1, v, &end);
		break;
	}
	if (err == -ENOENT && ferror(f))
		err = errno ? -errno : -EIO;
	free(line);
	if (fclose(f) && err == -ENOENT)
		err = -errno;
	return err;
}

/* Lines without a unit (HugePages_Total:  0) are returned as they are. */
int ms_meminfo_kb(const char *key, uint64_t *kb)
{
	return read_keyed("/proc/meminfo", key, ':', kb);
}

int ms_status_kb(pid_t pid, const char *key, uint64_t *kb)
{
	char path[64];

	if (pid < 0)
		return -EINVAL;
	if (pid == 0)
		return read_keyed("/proc/self/status", key, ':', kb);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return read_keyed(path, key, ':', kb);
}

int ms_vmstat(const char *key, uint64_t *v)
{
	return read_keyed("/proc/vmstat", key, ' ', v);
}

size_t ms_strlcpy(char *dst, const char *src, size_t len)
{
	size_t n = strlen(src);

	if (len) {
		size_t c = n < len - 1 ? n : len - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

/* EEXIST is fine as long as what exists is a directory (someone may race us creating it). */
static int mkdir_one(const char *path, unsigned mode)
{
	struct stat st;

	if (!mkdir(path, mode))
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int ms_mkdir_p(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	char *p;
	int ret;

	if (!*path)
		return -EINVAL;
	if (ms_strlcpy(buf, path, sizeof(buf)) >= sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		ret = mkdir_one(buf, mode);
		*p = '/';
		if (ret)
			return ret;
	}
	return mkdir_one(buf, mode);
}

int ms_hugetlb_free(unsigned long size_kb, uint64_t *free_pages)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/free_hugepages",
		 size_kb);
	return ms_read_u64(path, free_pages);
}

void *ms_mmap_aligned(size_t len, size_t align, int flags, int fd)
{
	size_t res_len = len + align;
	char *res, *at, *end, *p;
	int err;

	res = mmap(NULL, res_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	at = (char *)(((uintptr_t)res + align - 1) / align * align);
	end = res + res_len;
	p = mmap(at, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		goto out_unmap;
	if ((at > res && munmap(res, (size_t)(at - res))) ||
	    (end > at + len && munmap(at + len, (size_t)(end - at - len))))
		goto out_unmap;
	return p;
out_unmap:
	err = errno;
	munmap(res, res_len);	/* whatever is left of it: the error to report is err */
	errno = err;
	return MAP_FAILED;
}

int ms_cgroup2_mount(char *mnt, size_t len)
{
	char line[4096], path[PATH_MAX];
	const char *sep;
	int ret = -ENOENT;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* "36 25 0:30 / /sys/fs/cgroup rw,... - cgroup2 cgroup2 rw"; octal escapes: skip */
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", path) != 1 || strchr(path, '\\'))
			continue;
		ms_strlcpy(mnt, path, len);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

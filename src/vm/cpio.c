/* Initramfs writer: cpio "newc" archives, gzip-compressed through zlib or stored plain. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "vm/vm.h"

struct ms_cpio {
	gzFile gz;
	unsigned ino;
	int err;		/* first error, sticky: later calls are no-ops */
};

static const char zeros[4];

static int cpio_put(struct ms_cpio *c, const void *buf, size_t len)
{
	const char *p = buf;

	if (c->err)
		return c->err;
	while (len) {
		unsigned chunk = len > (1u << 30) ? 1u << 30 : (unsigned)len;
		int n = gzwrite(c->gz, p, chunk);

		if (n <= 0) {
			int zerr;

			gzerror(c->gz, &zerr);
			c->err = zerr == Z_ERRNO && errno ? -errno : -EIO;
			return c->err;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cpio_pad(struct ms_cpio *c, size_t len)
{
	return cpio_put(c, zeros, (4 - (len & 3)) & 3);
}

/* One header plus the name; the kernel's unpacker wants names without a leading slash. */
static int cpio_header(struct ms_cpio *c, const char *name, unsigned mode, size_t size,
		       unsigned rmajor, unsigned rminor)
{
	char hdr[111];
	size_t namesize;
	int ret;

	while (*name == '/')
		name++;
	namesize = strlen(name) + 1;
	if (size > 0xffffffffu || namesize > 4096)
		return c->err ? c->err : -EFBIG;
	snprintf(hdr, sizeof(hdr),
		 "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 ++c->ino, mode, 0u, 0u, S_ISDIR(mode) ? 2u : 1u, 0u, (unsigned)size,
		 0u, 0u, rmajor, rminor, (unsigned)namesize, 0u);
	ret = cpio_put(c, hdr, 110);
	if (!ret)
		ret = cpio_put(c, name, namesize);
	if (!ret)
		ret = cpio_pad(c, 110 + namesize);
	return ret;
}

int ms_cpio_open(struct ms_cpio **cp, const char *path, bool gzip)
{
	struct ms_cpio *c;
	int fd;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(c);
		return -errno;
	}
	/* "T" makes zlib write the bytes through unchanged: a plain cpio the kernel takes too. */
	c->gz = gzdopen(fd, gzip ? "wb6" : "wbT");
	if (!c->gz) {
		close(fd);
		free(c);
		return -ENOMEM;
	}
	*cp = c;
	return 0;
}

int ms_cpio_dir(struct ms_cpio *c, const char *name, unsigned perm)
{
	return cpio_header(c, name, S_IFDIR | (perm & 07777), 0, 0, 0);
}

int ms_cpio_node(struct ms_cpio *c, const char *name, unsigned mode, unsigned major,
		 unsigned minor)
{
	if (!S_ISCHR(mode) && !S_ISBLK(mode))
		return -EINVAL;
	return cpio_header(c, name, mode, 0, major, minor);
}

int ms_cpio_file(struct ms_cpio *c, const char *name, unsigned perm, const void *data,
		 size_t len)
{
	int ret = cpio_header(c, name, S_IFREG | (perm & 07777), len, 0, 0);

	if (!ret)
		ret = cpio_put(c, data, len);
	if (!ret)
		ret = cpio_pad(c, len);
	return ret;
}

/* Copies a host file in; its size is taken once, so a file changing meanwhile is an error. */
int ms_cpio_file_from(struct ms_cpio *c, const char *name, unsigned perm, const char *src)
{
	char buf[65536];
	struct stat st;
	size_t left;
	int fd, ret;

	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out_close;
	}
	ret = cpio_header(c, name, S_IFREG | (perm & 07777), (size_t)st.st_size, 0, 0);
	for (left = (size_t)st.st_size; !ret && left; ) {
		ssize_t n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		ret = cpio_put(c, buf, (size_t)n);
		left -= (size_t)n;
	}
	if (!ret)
		ret = cpio_pad(c, (size_t)st.st_size);
	else if (!c->err)
		c->err = ret;	/* a header without its data: the archive is unusable */
out_close:
	close(fd);
	return ret;
}

int ms_cpio_close(struct ms_cpio *c)
{
	int ret = cpio_header(c, "TRAILER!!!", 0, 0, 0, 0);
	int zret = gzclose(c->gz);

	if (!ret && zret != Z_OK)
		ret = -EIO;
	free(c);
	return ret;
}

static int initramfs_fill(struct ms_cpio *c, const char *agent, const char *suite,
			  const json_t *manifest)
{
	static const char *const dirs[] = { "dev", "proc", "sys", "tmp", "run", "mnt", NULL };
	char *text;
	int ret = 0;

	for (unsigned i = 0; dirs[i] && !ret; i++)
		ret = ms_cpio_dir(c, dirs[i], strcmp(dirs[i], "tmp") ? 0755 : 01777);
	if (!ret)
		ret = ms_cpio_node(c, "dev/console", S_IFCHR | 0600, 5, 1);
	if (!ret)
		ret = ms_cpio_file_from(c, "init", 0755, agent);
	if (!ret)
		ret = ms_cpio_file_from(c, "suite.ini", 0644, suite);
	if (ret)
		return ret;
	text = json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	ret = ms_cpio_file(c, "manifest.json", 0644, text, strlen(text));
	free(text);
	return ret;
}

int ms_vm_initramfs(const char *path, const char *agent, const char *suite,
		    const json_t *manifest, bool gzip)
{
	struct ms_cpio *c = NULL;
	int ret, cret;

	ret = ms_cpio_open(&c, path, gzip);
	if (ret)
		return ret;
	ret = initramfs_fill(c, agent, suite, manifest);
	cret = ms_cpio_close(c);
	return ret ? ret : cret;
}

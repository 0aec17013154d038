/* Kernel inputs for `mmstorm vm`: a bzImage, a Debian linux-image .deb, or a build directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/util.h"
#include "vm/vm.h"

static int rmtree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) : unlink(path))
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

int ms_vm_rmtree(const char *path)
{
	int ret = nftw(path, rmtree_one, 16, FTW_DEPTH | FTW_PHYS);

	if (ret < 0 && errno == ENOENT)
		return 0;
	return ret > 0 ? -EIO : ret < 0 ? (errno ? -errno : ret) : 0;
}

static bool file_has(const char *path, off_t off, const char *magic)
{
	char buf[32];
	size_t len = strlen(magic);
	bool ok = false;
	int fd;

	if (len > sizeof(buf))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (pread(fd, buf, len, off) == (ssize_t)len)
		ok = !memcmp(buf, magic, len);
	close(fd);
	return ok;
}

static bool is_regular(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode);
}

/* File names carry the label; keep it to characters that need no quoting anywhere. */
static void set_label(struct ms_vm_kernel *k, const char *name)
{
	size_t o = 0;

	for (; *name && o < sizeof(k->label) - 1; name++) {
		char ch = *name;

		k->label[o++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
				(ch >= '0' && ch <= '9') || strchr("._+-", ch) ? ch : '_';
	}
	k->label[o] = '\0';
	if (!o)
		ms_strlcpy(k->label, "kernel", sizeof(k->label));
}

/* /x/vmlinuz-V -> /x/config-V; /x/IMG -> /x/IMG.config (how the shared test kernels ship). */
static void bzimage_config(struct ms_vm_kernel *k)
{
	const char *base = strrchr(k->image, '/');
	size_t dirlen = base ? (size_t)(base - k->image) + 1 : 0;
	char path[sizeof(k->config) + 16];

	base = base ? base + 1 : k->image;
	if (!strncmp(base, "vmlinuz-", 8)) {
		snprintf(path, sizeof(path), "%.*sconfig-%s", (int)dirlen, k->image, base + 8);
		if (is_regular(path))
			goto found;
	}
	snprintf(path, sizeof(path), "%s.config", k->image);
	if (is_regular(path))
		goto found;
	ms_strlcpy(k->config_source, "guest", sizeof(k->config_source));
	return;
found:
	ms_strlcpy(k->config, path, sizeof(k->config));
	ms_strlcpy(k->config_source, "file", sizeof(k->config_source));
}

static int resolve_builddir(struct ms_vm_kernel *k, const char *dir, char *err, size_t errlen)
{
	char real[PATH_MAX];
	const char *base;

	snprintf(k->image, sizeof(k->image), "%s/arch/x86/boot/bzImage", dir);
	if (!is_regular(k->image)) {
		snprintf(err, errlen, "%s: a kernel build directory without arch/x86/boot/bzImage",
			 dir);
		return -ENOENT;
	}
	ms_strlcpy(k->kind, "builddir", sizeof(k->kind));
	snprintf(k->config, sizeof(k->config), "%s/.config", dir);
	if (is_regular(k->config)) {
		ms_strlcpy(k->config_source, "builddir", sizeof(k->config_source));
	} else {
		k->config[0] = '\0';
		ms_strlcpy(k->config_source, "guest", sizeof(k->config_source));
	}
	if (!realpath(dir, real))
		ms_strlcpy(real, dir, sizeof(real));
	base = strrchr(real, '/');
	set_label(k, base && base[1] ? base + 1 : real);
	return 0;
}

static int run_dpkg_deb(const char *deb, const char *dest)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0)
			dup2(fd, STDOUT_FILENO);
		execlp("dpkg-deb", "dpkg-deb", "-x", deb, dest, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/* The one boot/vmlinuz-V of the package, and boot/config-V next to it. */
static int deb_find(struct ms_vm_kernel *k, char *err, size_t errlen)
{
	char boot[sizeof(k->tmpdir) + 8], ver[256] = "";
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(boot, sizeof(boot), "%s/boot", k->tmpdir);
	d = opendir(boot);
	if (!d) {
		snprintf(err, errlen, "%s: no /boot in the package", k->input);
		return -ENOENT;
	}
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, "vmlinuz-", 8)) {
			ms_strlcpy(ver, de->d_name + 8, sizeof(ver));
			n++;
		}
	}
	closedir(d);
	if (n != 1) {
		snprintf(err, errlen, "%s: %d boot/vmlinuz-* files in the package, expected one",
			 k->input, n);
		return -ENOENT;
	}
	if (snprintf(k->image, sizeof(k->image), "%s/vmlinuz-%s", boot, ver) >=
	    (int)sizeof(k->image) ||
	    snprintf(k->config, sizeof(k->config), "%s/config-%s", boot, ver) >=
	    (int)sizeof(k->config)) {
		snprintf(err, errlen, "%s: path too long", boot);
		return -ENAMETOOLONG;
	}
	if (is_regular(k->config)) {
		ms_strlcpy(k->config_source, "deb", sizeof(k->config_source));
	} else {
		k->config[0] = '\0';
		ms_strlcpy(k->config_source, "guest", sizeof(k->config_source));
	}
	set_label(k, ver);
	return 0;
}

static int resolve_deb(struct ms_vm_kernel *k, const char *workdir, char *err, size_t errlen)
{
	int ret;

	ms_strlcpy(k->kind, "deb", sizeof(k->kind));
	snprintf(k->tmpdir, sizeof(k->tmpdir), "%s/deb-XXXXXX", workdir);
	if (!mkdtemp(k->tmpdir)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", k->tmpdir, strerror(-ret));
		k->tmpdir[0] = '\0';
		return ret;
	}
	ret = run_dpkg_deb(k->input, k->tmpdir);
	if (ret) {
		snprintf(err, errlen, "dpkg-deb -x %s: %s", k->input,
			 ret == -ENOENT ? "dpkg-deb not found" : "failed");
		return ret;
	}
	return deb_find(k, err, errlen);
}

int ms_vm_kernel_resolve(struct ms_vm_kernel *k, const char *input, const char *workdir,
			 char *err, size_t errlen)
{
	const char *base;
	struct stat st;

	memset(k, 0, sizeof(*k));
	ms_strlcpy(k->input, input, sizeof(k->input));
	ms_strlcpy(k->config_source, "none", sizeof(k->config_source));
	if (stat(input, &st) < 0) {
		int ret = -errno;

		snprintf(err, errlen, "%s: %s", input, strerror(-ret));
		return ret;
	}
	if (S_ISDIR(st.st_mode))
		return resolve_builddir(k, input, err, errlen);
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a file or directory", input);
		return -EINVAL;
	}
	if (file_has(input, 0, "!<arch>\ndebian-binary"))
		return resolve_deb(k, workdir, err, errlen);
	/* The x86 boot protocol header: "HdrS" at 0x202. */
	if (!file_has(input, 0x202, "HdrS")) {
		snprintf(err, errlen, "%s: neither a bzImage, a .deb nor a kernel build directory",
			 input);
		return -EINVAL;
	}
	ms_strlcpy(k->kind, "bzimage", sizeof(k->kind));
	ms_strlcpy(k->image, input, sizeof(k->image));
	bzimage_config(k);
	base = strrchr(input, '/') ? strrchr(input, '/') + 1 : input;
	/* /boot/vmlinuz-6.1.0-56-amd64 is best known as 6.1.0-56-amd64 */
	set_label(k, !strncmp(base, "vmlinuz-", 8) && base[8] ? base + 8 : base);
	return 0;
}

void ms_vm_kernel_cleanup(struct ms_vm_kernel *k)
{
	if (!k->tmpdir[0])
		return;
	ms_vm_rmtree(k->tmpdir);
	k->tmpdir[0] = '\0';
}

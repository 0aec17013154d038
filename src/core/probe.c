/* What the running kernel offers (`mmstorm probe`), and the kernel/cpu/memory identity blocks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <liburing.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include "mmstorm/journal.h"
#include "mmstorm/probe.h"

/*
 * Rules for every probe here: read, never change. Nothing is mounted, no knob written, no
 * module loaded; what is tried (a uffd, an io_uring, a perf counter, a hugetlb mapping) is
 * torn down before the probe returns.
 */

#define DEBUGFS		"/sys/kernel/debug"
#define THP_DIR		"/sys/kernel/mm/transparent_hugepage"
#define HUGETLB_DIR	"/sys/kernel/mm/hugepages"
#define PCI_DIR		"/sys/bus/pci/devices"

/* The HGM series' MADV_SPLIT; not in any released uapi header. */
#define MS_MADV_SPLIT	26

#define IORESOURCE_MEM_FLAG	0x00000200
#define IORESOURCE_PREFETCH_FLAG 0x00002000

#define MAX_HUGE_SIZES	8

#if defined(__x86_64__) || defined(__i386__)
#define MS_X86 1
#else
#define MS_X86 0
#endif

/*
 * Newer uffd features, for headers older than the kernel (Debian 12 ships 6.1 headers). The
 * values are uapi ABI and cannot change.
 */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON		(1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE		(1 << 16)
#endif

struct uffd_feature_name {
	const char *name;
	unsigned long long bit;
};

static const struct uffd_feature_name uffd_features[] = {
#ifdef UFFD_FEATURE_PAGEFAULT_FLAG_WP
	{ "PAGEFAULT_FLAG_WP",	UFFD_FEATURE_PAGEFAULT_FLAG_WP },
#endif
#ifdef UFFD_FEATURE_EVENT_FORK
	{ "EVENT_FORK",		UFFD_FEATURE_EVENT_FORK },
#endif
#ifdef UFFD_FEATURE_EVENT_REMAP
	{ "EVENT_REMAP",	UFFD_FEATURE_EVENT_REMAP },
#endif
#ifdef UFFD_FEATURE_EVENT_REMOVE
	{ "EVENT_REMOVE",	UFFD_FEATURE_EVENT_REMOVE },
#endif
#ifdef UFFD_FEATURE_MISSING_HUGETLBFS
	{ "MISSING_HUGETLBFS",	UFFD_FEATURE_MISSING_HUGETLBFS },
#endif
#ifdef UFFD_FEATURE_MISSING_SHMEM
	{ "MISSING_SHMEM",	UFFD_FEATURE_MISSING_SHMEM },
#endif
#ifdef UFFD_FEATURE_EVENT_UNMAP
	{ "EVENT_UNMAP",	UFFD_FEATURE_EVENT_UNMAP },
#endif
#ifdef UFFD_FEATURE_SIGBUS
	{ "SIGBUS",		UFFD_FEATURE_SIGBUS },
#endif
#ifdef UFFD_FEATURE_THREAD_ID
	{ "THREAD_ID",		UFFD_FEATURE_THREAD_ID },
#endif
#ifdef UFFD_FEATURE_MINOR_HUGETLBFS
	{ "MINOR_HUGETLBFS",	UFFD_FEATURE_MINOR_HUGETLBFS },
#endif
#ifdef UFFD_FEATURE_MINOR_SHMEM
	{ "MINOR_SHMEM",	UFFD_FEATURE_MINOR_SHMEM },
#endif
#ifdef UFFD_FEATURE_EXACT_ADDRESS
	{ "EXACT_ADDRESS",	UFFD_FEATURE_EXACT_ADDRESS },
#endif
#ifdef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
	{ "WP_HUGETLBFS_SHMEM",	UFFD_FEATURE_WP_HUGETLBFS_SHMEM },
#endif
	{ "WP_UNPOPULATED",	UFFD_FEATURE_WP_UNPOPULATED },
	{ "POISON",		UFFD_FEATURE_POISON },
	{ "WP_ASYNC",		UFFD_FEATURE_WP_ASYNC },
	{ "MOVE",		UFFD_FEATURE_MOVE },
};

/* Substrings of CONFIG_ keys worth keeping in run.json. */
static const char *const kconfig_filter[] = {
	"HUGE", "THP", "TRANSPARENT", "USERFAULTFD", "GUP", "FAULT_INJECTION", "FAIL",
	"FAILSLAB", "PAGE_TABLE_CHECK", "DEBUG_VM", "MEMCG", "MEMORY_FAILURE", "HWPOISON", "PAT",
	"DEVMEM", "IO_URING", "KSM", "MIGRATION", "NUMA", "PERF_EVENTS", "KASAN", "MSHARE", "HGM",
	"PGTABLE", "SHMEM", "SWAP", "COMPACTION", "PREEMPT", "LOCALVERSION", "KVM_GUEST", "HZ",
	"PGTABLE_LEVELS", "ZONE_DEVICE", "CMA", "MMU_NOTIFIER",
};

struct hp_size {
	unsigned long size_kb;
	uint64_t nr, free, resv, surplus;
};

/* What several probes want to know: the kernel config (if found) and where debugfs is. */
struct probe_env {
	json_t *kconfig;
	const char *kconfig_path;
	bool debugfs_mounted;
};

/* ---- small readers (util.c is not ours to depend on here) ---- */

static ssize_t read_text(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return ret ? ret : (ssize_t)got;
}

static int read_trim(const char *path, char *buf, size_t len)
{
	ssize_t n = read_text(path, buf, len);

	if (n < 0)
		return n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static int read_u64(const char *path, uint64_t *v)
{
	char buf[64], *end;
	int ret = read_trim(path, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*v = strtoull(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

static int read_long(const char *path, long *v)
{
	char buf[64], *end;
	int ret = read_trim(path, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*v = strtol(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return !stat(path, &st);
}

static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used >= len - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static bool fs_registered(const char *name)
{
	char line[128], *fs;
	bool found = false;
	FILE *f;

	f = fopen("/proc/filesystems", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		fs = strchr(line, '\t');
		found = fs && !strcmp(fs + 1, name);
	}
	fclose(f);
	return found;
}

/* First mount point of a filesystem type in /proc/self/mounts. */
static bool mounted(const char *type, char *dir, size_t len)
{
	struct mntent ent, *m;
	char buf[4096];
	bool found = false;
	FILE *f;

	f = setmntent("/proc/self/mounts", "re");
	if (!f)
		return false;
	while ((m = getmntent_r(f, &ent, buf, sizeof(buf)))) {
		if (strcmp(m->mnt_type, type))
			continue;
		if (dir)
			snprintf(dir, len, "%s", m->mnt_dir);
		found = true;
		break;
	}
	endmntent(f);
	return found;
}

/* "Key:   123 kB" of /proc/meminfo, in kB. */
static int meminfo_kb(const char *key, uint64_t *kb)
{
	char line[256];
	size_t klen = strlen(key);
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		*kb = strtoull(line + klen + 1, NULL, 10);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static const char *human_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && bytes && !(bytes & 1023)) {
		bytes >>= 10;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)bytes, units[u]);
	return buf;
}

/* ---- feature objects ---- */

static json_t *feature(bool available, const char *detail)
{
	return json_pack("{s:b, s:s}", "available", available, "detail",
			 detail && *detail ? detail : "(no detail)");
}

/* "CONFIG_X=y", "CONFIG_X off" or "CONFIG_X unknown" from the loaded config. */
static void config_state(const struct probe_env *env, const char *key, char *buf, size_t len)
{
	const char *v = NULL;

	if (env->kconfig)
		v = json_string_value(json_object_get(env->kconfig, key));
	if (!env->kconfig)
		snprintf(buf, len, "%s unknown", key);
	else if (!v || !strcmp(v, "n"))
		snprintf(buf, len, "%s off", key);
	else
		snprintf(buf, len, "%s=%s", key, v);
}

/* Why a debugfs file is missing, as far as we can tell without mounting anything. */
static void debugfs_missing(const struct probe_env *env, const char *path, const char *key,
			    char *buf, size_t len)
{
	struct stat st;
	char cfg[128];

	config_state(env, key, cfg, sizeof(cfg));
	/* Mounted debugfs is root-only: EACCES says nothing about the kernel. */
	if (stat(path, &st) && errno != ENOENT)
		snprintf(buf, len, "%s: %s", path, strerror(errno));
	else if (!env->debugfs_mounted && !env->kconfig)
		snprintf(buf, len, "no such file: %s (%s off or debugfs not mounted)", path, key);
	else if (!env->debugfs_mounted)
		snprintf(buf, len, "no such file: %s (debugfs not mounted; %s)", path, cfg);
	else
		snprintf(buf, len, "no such file: %s (%s)", path, cfg);
}

static int ulong_cmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return (x > y) - (x < y);
}

/* Multi-size THP (6.8+): hugepages-<size>kB/enabled next to the PMD-size knobs. */
static void thp_mthp(json_t *f)
{
	unsigned long sizes[32];
	char path[PATH_MAX], mode[64], key[32];
	json_t *arr = json_array(), *modes = json_object();
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(THP_DIR);
	while (d && n < 32 && (de = readdir(d))) {
		if (sscanf(de->d_name, "hugepages-%lukB", &sizes[n]) == 1)
			n++;
	}
	if (d)
		closedir(d);
	qsort(sizes, n, sizeof(sizes[0]), ulong_cmp);
	for (int i = 0; i < n; i++) {
		json_array_append_new(arr, json_integer(sizes[i]));
		snprintf(path, sizeof(path), THP_DIR "/hugepages-%lukB/enabled", sizes[i]);
		snprintf(key, sizeof(key), "%lu", sizes[i]);
		if (!ms_knob_read(path, mode, sizeof(mode)))
			json_object_set_new(modes, key, json_string(mode));
	}
	json_object_set_new(f, "mthp_sizes_kb", arr ? arr : json_null());
	json_object_set_new(f, "mthp_enabled", modes ? modes : json_null());
}

static json_t *probe_thp(const struct probe_env *env)
{
	char enabled[64] = "?", defrag[64] = "?", shmem[64] = "?", detail[512];
	uint64_t pmd = 0;
	json_t *f;

	(void)env;
	if (!exists(THP_DIR))
		return feature(false, "no such directory: " THP_DIR
			       " (CONFIG_TRANSPARENT_HUGEPAGE off)");
	ms_knob_read(THP_DIR "/enabled", enabled, sizeof(enabled));
	ms_knob_read(THP_DIR "/defrag", defrag, sizeof(defrag));
	ms_knob_read(THP_DIR "/shmem_enabled", shmem, sizeof(shmem));
	read_u64(THP_DIR "/hpage_pmd_size", &pmd);
	snprintf(detail, sizeof(detail), "enabled=%s defrag=%s shmem_enabled=%s pmd=%llukB",
		 enabled, defrag, shmem, (unsigned long long)pmd >> 10);
	f = feature(true, detail);
	json_object_set_new(f, "enabled", json_string(enabled));
	json_object_set_new(f, "defrag", json_string(defrag));
	json_object_set_new(f, "shmem_enabled", json_string(shmem));
	json_object_set_new(f, "pmd_size_bytes", json_integer(pmd));
	thp_mthp(f);
	return f;
}

static int hp_cmp(const void *a, const void *b)
{
	const struct hp_size *x = a, *y = b;

	return (x->size_kb > y->size_kb) - (x->size_kb < y->size_kb);
}

static void hp_read(struct hp_size *s)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), HUGETLB_DIR "/hugepages-%lukB/nr_hugepages", s->size_kb);
	read_u64(path, &s->nr);
	snprintf(path, sizeof(path), HUGETLB_DIR "/hugepages-%lukB/free_hugepages", s->size_kb);
	read_u64(path, &s->free);
	snprintf(path, sizeof(path), HUGETLB_DIR "/hugepages-%lukB/resv_hugepages", s->size_kb);
	read_u64(path, &s->resv);
	snprintf(path, sizeof(path), HUGETLB_DIR "/hugepages-%lukB/surplus_hugepages",
		 s->size_kb);
	read_u64(path, &s->surplus);
}

/* The hugetlb pools, smallest page size first. Returns how many (0 without hugetlb). */
static int hp_sizes(struct hp_size *sizes, int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(HUGETLB_DIR);
	if (!d)
		return 0;
	while (n < max && (de = readdir(d))) {
		unsigned long kb;

		if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		memset(&sizes[n], 0, sizeof(sizes[n]));
		sizes[n].size_kb = kb;
		hp_read(&sizes[n]);
		n++;
	}
	closedir(d);
	qsort(sizes, n, sizeof(*sizes), hp_cmp);
	return n;
}

static json_t *probe_hugetlb(const struct probe_env *env)
{
	struct hp_size sizes[MAX_HUGE_SIZES];
	char detail[512] = "", mnt[PATH_MAX];
	bool fs = fs_registered("hugetlbfs");
	bool is_mounted = mounted("hugetlbfs", mnt, sizeof(mnt));
	int n = hp_sizes(sizes, MAX_HUGE_SIZES);
	uint64_t def_kb = 0;
	json_t *f, *arr;

	(void)env;
	arr = json_array();
	for (int i = 0; i < n && arr; i++) {
		json_array_append_new(arr, json_pack("{s:I, s:I, s:I, s:I, s:I}",
			"size_kb", (json_int_t)sizes[i].size_kb, "nr", (json_int_t)sizes[i].nr,
			"free", (json_int_t)sizes[i].free, "resv", (json_int_t)sizes[i].resv,
			"surplus", (json_int_t)sizes[i].surplus));
		appendf(detail, sizeof(detail), "%s%lukB: %llu pages (%llu free)", i ? ", " : "",
			sizes[i].size_kb, (unsigned long long)sizes[i].nr,
			(unsigned long long)sizes[i].free);
	}
	if (!n)
		snprintf(detail, sizeof(detail), "no %s (CONFIG_HUGETLBFS off)", HUGETLB_DIR);
	else if (!fs)
		appendf(detail, sizeof(detail), "; hugetlbfs not in /proc/filesystems");
	meminfo_kb("Hugepagesize", &def_kb);
	f = feature(n > 0 && fs, detail);
	json_object_set_new(f, "sizes", arr ? arr : json_null());
	json_object_set_new(f, "default_size_kb", json_integer(def_kb));
	json_object_set_new(f, "hugetlbfs", json_boolean(fs));
	json_object_set_new(f, "hugetlbfs_mount", is_mounted ? json_string(mnt) : json_null());
	return f;
}

static int uffd_open(int flags)
{
#ifdef __NR_userfaultfd
	return syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);
#else
	(void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

/* /dev/userfaultfd hands out uffds to whoever may open it, whatever the sysctl says. */
static int uffd_open_dev(void)
{
#ifdef USERFAULTFD_IOC_NEW
	int dev, fd;

	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -1;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd;
#else
	errno = ENOSYS;
	return -1;
#endif
}

static json_t *uffd_feature_list(unsigned long long mask, char *detail, size_t len)
{
	json_t *arr = json_array();
	unsigned long long known = 0;
	char name[32];

	for (size_t i = 0; arr && i < sizeof(uffd_features) / sizeof(uffd_features[0]); i++) {
		known |= uffd_features[i].bit;
		if (!(mask & uffd_features[i].bit))
			continue;
		json_array_append_new(arr, json_string(uffd_features[i].name));
		appendf(detail, len, " %s", uffd_features[i].name);
	}
	for (int b = 0; arr && b < 64; b++) {
		if (!(mask & ~known & (1ULL << b)))
			continue;
		snprintf(name, sizeof(name), "bit%d", b);
		json_array_append_new(arr, json_string(name));
		appendf(detail, len, " %s", name);
	}
	return arr;
}

static json_t *probe_userfaultfd(const struct probe_env *env)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	char detail[768] = "", cfg[128], hex[32];
	int fd_user, fd_all, fd_dev = -1, err_user, err_all, fd;
	bool dev = exists("/dev/userfaultfd"), ok = false;
	long unpriv = -1;
	json_t *f, *feats = NULL;

	fd_user = uffd_open(UFFD_USER_MODE_ONLY);
	err_user = errno;
	fd_all = uffd_open(0);
	err_all = errno;
	if (fd_user < 0 && fd_all < 0 && dev)
		fd_dev = uffd_open_dev();
	fd = fd_all >= 0 ? fd_all : fd_user >= 0 ? fd_user : fd_dev;
	read_long("/proc/sys/vm/unprivileged_userfaultfd", &unpriv);
	if (fd >= 0 && !ioctl(fd, UFFDIO_API, &api)) {
		ok = true;
		snprintf(detail, sizeof(detail), "userfaultfd() %s%s; features:",
			 fd_all >= 0 ? "ok" : "user-mode-only", fd_dev >= 0 ? " via /dev" : "");
		feats = uffd_feature_list(api.features, detail, sizeof(detail));
	} else if (fd >= 0) {
		snprintf(detail, sizeof(detail), "UFFDIO_API: %s", strerror(errno));
	} else if (err_all == ENOSYS) {
		config_state(env, "CONFIG_USERFAULTFD", cfg, sizeof(cfg));
		snprintf(detail, sizeof(detail), "userfaultfd(): %s (%s)", strerror(err_all), cfg);
	} else {
		snprintf(detail, sizeof(detail), "userfaultfd(): %s; with UFFD_USER_MODE_ONLY: %s "
			 "(vm.unprivileged_userfaultfd=%ld)", strerror(err_all), strerror(err_user),
			 unpriv);
	}
	if (fd_user >= 0)
		close(fd_user);
	if (fd_all >= 0)
		close(fd_all);
	if (fd_dev >= 0)
		close(fd_dev);
	f = feature(ok, detail);
	json_object_set_new(f, "syscall", json_boolean(fd_all >= 0));
	json_object_set_new(f, "user_mode_only", json_boolean(fd_user >= 0));
	json_object_set_new(f, "dev_userfaultfd", json_boolean(dev));
	json_object_set_new(f, "unprivileged_userfaultfd",
			    unpriv >= 0 ? json_integer(unpriv) : json_null());
	json_object_set_new(f, "features_mask", json_integer(ok ? (json_int_t)api.features : 0));
	/* Bit 63 is set (UFFDIO_API): hex text, not a JSON integer. */
	snprintf(hex, sizeof(hex), "0x%llx", ok ? (unsigned long long)api.ioctls : 0ULL);
	json_object_set_new(f, "ioctls_mask", json_string(hex));
	json_object_set_new(f, "features", feats ? feats : json_array());
	return f;
}

static json_t *probe_io_uring(const struct probe_env *env)
{
	struct io_uring ring;
	char detail[256], cfg[128];
	long disabled = -1;
	json_t *f;
	int ret;

	read_long("/proc/sys/kernel/io_uring_disabled", &disabled);
	ret = io_uring_queue_init(4, &ring, 0);
	if (!ret) {
		io_uring_queue_exit(&ring);
		snprintf(detail, sizeof(detail), "ring setup ok (kernel.io_uring_disabled=%ld)",
			 disabled);
	} else if (ret == -ENOSYS) {
		config_state(env, "CONFIG_IO_URING", cfg, sizeof(cfg));
		snprintf(detail, sizeof(detail), "io_uring_setup: %s (%s)", strerror(-ret), cfg);
	} else {
		snprintf(detail, sizeof(detail), "io_uring_setup: %s "
			 "(kernel.io_uring_disabled=%ld)", strerror(-ret), disabled);
	}
	f = feature(!ret, detail);
	json_object_set_new(f, "io_uring_disabled", disabled >= 0 ? json_integer(disabled) :
			    json_null());
	return f;
}

static json_t *probe_msharefs(const struct probe_env *env)
{
	char mnt[PATH_MAX] = "", path[PATH_MAX + 16], info[256] = "", detail[PATH_MAX + 320];
	bool fs = fs_registered("msharefs");
	bool is_mounted = mounted("msharefs", mnt, sizeof(mnt));
	bool has_info;
	json_t *f;

	(void)env;
	snprintf(path, sizeof(path), "%s/mshare_info", is_mounted ? mnt : "/sys/fs/mshare");
	has_info = !read_trim(path, info, sizeof(info));
	if (!fs)
		snprintf(detail, sizeof(detail), "msharefs not in /proc/filesystems "
			 "(kernel without the mshare series)");
	else if (!is_mounted)
		snprintf(detail, sizeof(detail), "registered, not mounted (/sys/fs/mshare %s)",
			 exists("/sys/fs/mshare") ? "exists" : "missing");
	else
		snprintf(detail, sizeof(detail), "mounted at %s; mshare_info: %s", mnt,
			 has_info ? info : "unreadable");
	f = feature(fs, detail);
	json_object_set_new(f, "mount", is_mounted ? json_string(mnt) : json_null());
	json_object_set_new(f, "mshare_info", has_info ? json_string(info) : json_null());
	return f;
}

/* Page size flag of mmap for a hugetlb size (log2 of bytes at MAP_HUGE_SHIFT). */
static int huge_flag(unsigned long size_kb)
{
	int shift = 10;

	while ((1UL << (shift - 10)) < size_kb)
		shift++;
	return shift << MAP_HUGE_SHIFT;
}

static json_t *probe_madv_split(const struct probe_env *env)
{
	struct hp_size sizes[MAX_HUGE_SIZES];
	int n = hp_sizes(sizes, MAX_HUGE_SIZES), i;
	const char *state = "unknown";
	char detail[256];
	size_t len;
	json_t *f;
	void *p;

	(void)env;
	for (i = 0; i < n; i++) {
		if (sizes[i].free > sizes[i].resv)
			break;
	}
	if (i == n) {
		f = feature(false, "unknown: no free hugetlb page to try it on");
		json_object_set_new(f, "state", json_string(state));
		return f;
	}
	len = sizes[i].size_kb << 10;
	/* MAP_SHARED reserves the page at mmap time but faults nothing in; munmap gives it back. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | huge_flag(sizes[i].size_kb), -1, 0);
	if (p == MAP_FAILED) {
		snprintf(detail, sizeof(detail), "unknown: mmap of a %lukB hugetlb page: %s",
			 sizes[i].size_kb, strerror(errno));
	} else if (!madvise(p, len, MS_MADV_SPLIT)) {
		state = "present";
		snprintf(detail, sizeof(detail), "madvise(%d) accepted on a %lukB hugetlb mapping",
			 MS_MADV_SPLIT, sizes[i].size_kb);
	} else if (errno == EINVAL) {
		state = "absent";
		snprintf(detail, sizeof(detail), "madvise(%d) on a %lukB hugetlb mapping: EINVAL",
			 MS_MADV_SPLIT, sizes[i].size_kb);
	} else {
		snprintf(detail, sizeof(detail), "unknown: madvise(%d): %s", MS_MADV_SPLIT,
			 strerror(errno));
	}
	if (p != MAP_FAILED && munmap(p, len))
		appendf(detail, sizeof(detail), " (munmap: %s)", strerror(errno));
	f = feature(!strcmp(state, "present"), detail);
	json_object_set_new(f, "state", json_string(state));
	return f;
}

static json_t *probe_gup_test(const struct probe_env *env)
{
	char detail[256];

	if (exists(DEBUGFS "/gup_test"))
		return feature(true, DEBUGFS "/gup_test");
	debugfs_missing(env, DEBUGFS "/gup_test", "CONFIG_GUP_TEST", detail, sizeof(detail));
	return feature(false, detail);
}

static json_t *probe_fault_injection(const struct probe_env *env)
{
	static const char *const names[] = { "failslab", "fail_page_alloc", "fail_function" };
	char path[128], detail[512] = "", cfg[128];
	bool any = false, make_it_fail = exists("/proc/self/make-it-fail");
	json_t *f, *have = json_object();

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		bool ok;

		snprintf(path, sizeof(path), DEBUGFS "/%s", names[i]);
		ok = exists(path);
		json_object_set_new(have, names[i], json_boolean(ok));
		if (ok)
			appendf(detail, sizeof(detail), "%s%s", any ? " " : "", names[i]);
		any |= ok;
	}
	if (!any) {
		config_state(env, "CONFIG_FAULT_INJECTION", cfg, sizeof(cfg));
		if (env->debugfs_mounted && access(DEBUGFS, X_OK))
			snprintf(detail, sizeof(detail), "%s: %s", DEBUGFS, strerror(errno));
		else
			snprintf(detail, sizeof(detail), "none of failslab, fail_page_alloc, "
				 "fail_function in " DEBUGFS " (%s; %s)", env->debugfs_mounted ?
				 "debugfs mounted" : "debugfs not mounted",
				 make_it_fail ? "CONFIG_FAULT_INJECTION=y" : cfg);
	}
	f = feature(any, detail);
	json_object_set_new(f, "debugfs", have ? have : json_null());
	json_object_set_new(f, "make_it_fail", json_boolean(make_it_fail));
	return f;
}

static json_t *probe_fail_nth(const struct probe_env *env)
{
	char detail[256], a[64], b[64];

	if (access("/proc/self/fail-nth", R_OK | W_OK)) {
		config_state(env, "CONFIG_FAULT_INJECTION", a, sizeof(a));
		snprintf(detail, sizeof(detail), "/proc/self/fail-nth: %s (%s)", strerror(errno),
			 a);
		return feature(false, detail);
	}
	/* fail-nth only fails the sites that are built in. */
	config_state(env, "CONFIG_FAILSLAB", a, sizeof(a));
	config_state(env, "CONFIG_FAIL_PAGE_ALLOC", b, sizeof(b));
	snprintf(detail, sizeof(detail), "/proc/self/fail-nth (%s, %s)", a, b);
	return feature(true, detail);
}

static json_t *probe_hwpoison(const struct probe_env *env)
{
	long early = -1, recovery = -1;
	bool mf, inject = exists(DEBUGFS "/hwpoison");
	char detail[512], why[256] = "";
	json_t *f;

	mf = !read_long("/proc/sys/vm/memory_failure_recovery", &recovery);
	read_long("/proc/sys/vm/memory_failure_early_kill", &early);
	if (!inject)
		debugfs_missing(env, DEBUGFS "/hwpoison", "CONFIG_HWPOISON_INJECT", why,
				sizeof(why));
	if (mf)
		snprintf(detail, sizeof(detail), "CONFIG_MEMORY_FAILURE on (vm.memory_failure_"
			 "recovery=%ld, early_kill=%ld); debugfs injector: %s", recovery, early,
			 inject ? DEBUGFS "/hwpoison" : why);
	else
		snprintf(detail, sizeof(detail), "no /proc/sys/vm/memory_failure_recovery "
			 "(CONFIG_MEMORY_FAILURE off)");
	f = feature(mf, detail);
	json_object_set_new(f, "memory_failure", json_boolean(mf));
	json_object_set_new(f, "debugfs_inject", json_boolean(inject));
	json_object_set_new(f, "early_kill", early >= 0 ? json_integer(early) : json_null());
	json_object_set_new(f, "recovery", recovery >= 0 ? json_integer(recovery) : json_null());
	return f;
}

static json_t *probe_pat_memtype_list(const struct probe_env *env)
{
	static const char path[] = DEBUGFS "/x86/pat_memtype_list";
	char detail[256], line[256];
	long entries = 0;
	json_t *f;
	FILE *fp;

	if (!MS_X86)
		return feature(false, "not x86");
	fp = fopen(path, "re");
	if (!fp && errno == ENOENT) {
		debugfs_missing(env, path, "CONFIG_X86_PAT", detail, sizeof(detail));
		if (env->debugfs_mounted)
			appendf(detail, sizeof(detail), "; or PAT disabled at boot");
		return feature(false, detail);
	}
	if (!fp) {
		snprintf(detail, sizeof(detail), "%s: %s", path, strerror(errno));
		return feature(false, detail);
	}
	while (fgets(line, sizeof(line), fp))
		entries += !strncmp(line, "PAT:", 4);
	fclose(fp);
	snprintf(detail, sizeof(detail), "%s readable, %ld entries", path, entries);
	f = feature(true, detail);
	json_object_set_new(f, "entries", json_integer(entries));
	return f;
}

static json_t *probe_cgroup2(const struct probe_env *env)
{
	char mnt[PATH_MAX], path[PATH_MAX + 32], ctl[512] = "", detail[PATH_MAX + 600];
	json_t *f, *arr;
	char *tok, *save;
	bool memory = false;

	(void)env;
	if (!mounted("cgroup2", mnt, sizeof(mnt)))
		return feature(false, fs_registered("cgroup2") ? "not mounted" :
			       "cgroup2 not in /proc/filesystems");
	snprintf(path, sizeof(path), "%s/cgroup.controllers", mnt);
	read_trim(path, ctl, sizeof(ctl));
	snprintf(detail, sizeof(detail), "mounted at %s; controllers: %s", mnt,
		 *ctl ? ctl : "none");
	arr = json_array();
	for (tok = strtok_r(ctl, " ", &save); tok && arr; tok = strtok_r(NULL, " ", &save)) {
		json_array_append_new(arr, json_string(tok));
		memory |= !strcmp(tok, "memory");
	}
	f = feature(true, detail);
	json_object_set_new(f, "mount", json_string(mnt));
	json_object_set_new(f, "controllers", arr ? arr : json_null());
	json_object_set_new(f, "memory_controller", json_boolean(memory));
	return f;
}

static json_t *probe_dev_mem(const struct probe_env *env)
{
	char detail[256], cfg[128];
	int fd;

	fd = open("/dev/mem", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		config_state(env, "CONFIG_STRICT_DEVMEM", cfg, sizeof(cfg));
		snprintf(detail, sizeof(detail), "/dev/mem opens read-only (%s)", cfg);
		return feature(true, detail);
	}
	if (errno == ENOENT) {
		config_state(env, "CONFIG_DEVMEM", cfg, sizeof(cfg));
		snprintf(detail, sizeof(detail), "no /dev/mem (%s or no device node)", cfg);
	} else {
		snprintf(detail, sizeof(detail), "/dev/mem: %s", strerror(errno));
	}
	return feature(false, detail);
}

struct pci_scan {
	json_t *bars;
	char list[448];
	int devices, mappable, unmappable;
};

/* Memory BARs of one device that can be mmap'ed through sysfs (resourceN exists). */
static void scan_pci_dev(const char *dev, struct pci_scan *s)
{
	char path[PATH_MAX], line[128], size[32];
	unsigned long long start, end, flags;
	FILE *f;

	snprintf(path, sizeof(path), PCI_DIR "/%s/resource", dev);
	f = fopen(path, "re");
	if (!f)
		return;
	s->devices++;
	for (int idx = 0; fgets(line, sizeof(line), f); idx++) {
		if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
			continue;
		if (!(flags & IORESOURCE_MEM_FLAG) || end <= start)
			continue;
		snprintf(path, sizeof(path), PCI_DIR "/%s/resource%d", dev, idx);
		if (!exists(path)) {
			s->unmappable++;
			continue;
		}
		human_size(size, sizeof(size), end - start + 1);
		json_array_append_new(s->bars, json_pack("{s:s, s:i, s:s, s:I, s:b}", "device",
			dev, "index", idx, "path", path,
			"size_bytes", (json_int_t)(end - start + 1),
			"prefetchable", !!(flags & IORESOURCE_PREFETCH_FLAG)));
		if (++s->mappable <= 4)
			appendf(s->list, sizeof(s->list), "%s%s/resource%d %s",
				s->mappable > 1 ? ", " : "", dev, idx, size);
	}
	fclose(f);
}

static json_t *probe_pci_bars(const struct probe_env *env)
{
	struct pci_scan s = { .bars = json_array() };
	struct dirent **names;
	char detail[640];
	json_t *f;
	int n;

	(void)env;
	n = scandir(PCI_DIR, &names, NULL, alphasort);
	if (n < 0) {
		json_decref(s.bars);
		return feature(false, "no " PCI_DIR);
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' && s.bars)
			scan_pci_dev(names[i]->d_name, &s);
		free(names[i]);
	}
	free(names);
	if (s.mappable)
		snprintf(detail, sizeof(detail), "%d mappable memory BARs: %s%s", s.mappable,
			 s.list, s.mappable > 4 ? ", ..." : "");
	else
		snprintf(detail, sizeof(detail), "no memory BAR with a resourceN file (%d devices, "
			 "%d memory BARs without one)", s.devices, s.unmappable);
	f = feature(s.mappable > 0, detail);
	json_object_set_new(f, "bars", s.bars ? s.bars : json_null());
	return f;
}

static json_t *probe_pseudo_fs(const char *type)
{
	char mnt[PATH_MAX], detail[PATH_MAX + 64];
	json_t *f;

	if (mounted(type, mnt, sizeof(mnt))) {
		snprintf(detail, sizeof(detail), "mounted at %s", mnt);
		f = feature(true, detail);
		json_object_set_new(f, "mount", json_string(mnt));
		return f;
	}
	snprintf(detail, sizeof(detail), "not mounted (%s %s /proc/filesystems)", type,
		 fs_registered(type) ? "in" : "not in");
	f = feature(false, detail);
	json_object_set_new(f, "mount", json_null());
	return f;
}

static json_t *probe_perf_events(const struct probe_env *env)
{
	struct perf_event_attr attr;
	char detail[256], cfg[128];
	long paranoid = -99;
	json_t *f;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.disabled = 1;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	if (read_long("/proc/sys/kernel/perf_event_paranoid", &paranoid)) {
		config_state(env, "CONFIG_PERF_EVENTS", cfg, sizeof(cfg));
		snprintf(detail, sizeof(detail), "no kernel.perf_event_paranoid (%s)", cfg);
		return feature(false, detail);
	}
	fd = syscall(__NR_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		snprintf(detail, sizeof(detail), "task-clock counter opens "
			 "(kernel.perf_event_paranoid=%ld)", paranoid);
	} else {
		snprintf(detail, sizeof(detail), "perf_event_open: %s "
			 "(kernel.perf_event_paranoid=%ld)", strerror(errno), paranoid);
	}
	f = feature(fd >= 0, detail);
	json_object_set_new(f, "paranoid", json_integer(paranoid));
	return f;
}

static json_t *probe_kernel_config(const struct probe_env *env)
{
	char detail[PATH_MAX + 64];
	json_t *f;

	if (!env->kconfig)
		return feature(false, "neither /proc/config.gz (CONFIG_IKCONFIG_PROC) nor "
			       "/boot/config-$(uname -r) is readable");
	snprintf(detail, sizeof(detail), "%s (%zu options)", env->kconfig_path,
		 json_object_size(env->kconfig));
	f = feature(true, detail);
	json_object_set_new(f, "path", json_string(env->kconfig_path));
	return f;
}

/* /proc/config.gz, else /boot/config-RELEASE; NULL when neither is readable. */
static const char *default_config_path(char *buf, size_t len)
{
	struct utsname u;

	if (!access("/proc/config.gz", R_OK))
		return "/proc/config.gz";
	if (uname(&u))
		return NULL;
	snprintf(buf, len, "/boot/config-%s", u.release);
	return access(buf, R_OK) ? NULL : buf;
}

static void add(json_t *o, const char *name, json_t *f)
{
	if (!f)
		f = feature(false, "probe failed: out of memory");
	json_object_set_new(o, name, f);
}

json_t *ms_probe(void)
{
	struct probe_env env = { 0 };
	char cfg_buf[PATH_MAX];
	json_t *o = json_object();

	if (!o)
		return NULL;
	env.kconfig_path = default_config_path(cfg_buf, sizeof(cfg_buf));
	env.kconfig = env.kconfig_path ? ms_kconfig_load(env.kconfig_path, 0) : NULL;
	env.debugfs_mounted = mounted("debugfs", NULL, 0);
	add(o, "thp", probe_thp(&env));
	add(o, "hugetlb", probe_hugetlb(&env));
	add(o, "userfaultfd", probe_userfaultfd(&env));
	add(o, "io_uring", probe_io_uring(&env));
	add(o, "msharefs", probe_msharefs(&env));
	add(o, "madv_split", probe_madv_split(&env));
	add(o, "gup_test", probe_gup_test(&env));
	add(o, "fault_injection", probe_fault_injection(&env));
	add(o, "fail_nth", probe_fail_nth(&env));
	add(o, "hwpoison", probe_hwpoison(&env));
	add(o, "pat_memtype_list", probe_pat_memtype_list(&env));
	add(o, "cgroup2", probe_cgroup2(&env));
	add(o, "dev_mem", probe_dev_mem(&env));
	add(o, "pci_bars", probe_pci_bars(&env));
	add(o, "debugfs", probe_pseudo_fs("debugfs"));
	add(o, "tracefs", probe_pseudo_fs("tracefs"));
	add(o, "perf_events", probe_perf_events(&env));
	add(o, "kernel_config", probe_kernel_config(&env));
	json_decref(env.kconfig);
	return o;
}

void ms_probe_print(const json_t *probe, FILE *f)
{
	const char *name;
	json_t *v;
	int width = 7;

	json_object_foreach((json_t *)probe, name, v) {
		if ((int)strlen(name) > width)
			width = strlen(name);
	}
	fprintf(f, "%-*s  %-5s  %s\n", width, "feature", "avail", "detail");
	json_object_foreach((json_t *)probe, name, v) {
		const char *detail = json_string_value(json_object_get(v, "detail"));

		fprintf(f, "%-*s  %-5s  %s\n", width, name,
			json_is_true(json_object_get(v, "available")) ? "yes" : "no",
			detail ? detail : "");
	}
}

json_t *ms_probe_kernel(const char *config_path)
{
	char cmdline[4096] = "", buf[PATH_MAX];
	struct utsname u;
	json_t *k, *cfg = NULL;
	long tainted = -1;

	if (uname(&u))
		return NULL;
	read_trim("/proc/cmdline", cmdline, sizeof(cmdline));
	read_long("/proc/sys/kernel/tainted", &tainted);
	if (!config_path)
		config_path = default_config_path(buf, sizeof(buf));
	if (config_path)
		cfg = ms_kconfig_load(config_path, 1);
	k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "release", u.release, "version",
		      u.version, "machine", u.machine, "sysname", u.sysname, "hostname",
		      u.nodename, "cmdline", cmdline);
	if (!k) {
		json_decref(cfg);
		return NULL;
	}
	json_object_set_new(k, "tainted", tainted >= 0 ? json_integer(tainted) : json_null());
	json_object_set_new(k, "config_path", cfg ? json_string(config_path) : json_null());
	json_object_set_new(k, "config", cfg ? cfg : json_null());
	return k;
}

json_t *ms_probe_cpu(void)
{
	char *line = NULL, model[256] = "unknown";
	struct utsname u;
	size_t cap = 0;
	long count = 0;
	FILE *f;

	if (uname(&u))
		return NULL;
	f = fopen("/proc/cpuinfo", "re");
	while (f && getline(&line, &cap, f) > 0) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "processor", 9))
			count++;
		if (!colon || strncmp(line, "model name", 10) || strcmp(model, "unknown"))
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(model, sizeof(model), "%s", colon);
	}
	free(line);
	if (f)
		fclose(f);
	return json_pack("{s:s, s:s, s:i, s:i}", "arch", u.machine, "model", model, "count",
			 (int)count, "online", (int)sysconf(_SC_NPROCESSORS_ONLN));
}

json_t *ms_probe_memory(void)
{
	uint64_t total_kb = 0, huge_kb = 0, pmd = 0;
	struct dirent *de;
	int nodes = 0;
	DIR *d;

	meminfo_kb("MemTotal", &total_kb);
	meminfo_kb("Hugepagesize", &huge_kb);
	read_u64(THP_DIR "/hpage_pmd_size", &pmd);
	d = opendir("/sys/devices/system/node");
	while (d && (de = readdir(d))) {
		unsigned n;

		nodes += sscanf(de->d_name, "node%u", &n) == 1;
	}
	if (d)
		closedir(d);
	return json_pack("{s:I, s:I, s:I, s:I, s:i}", "total_bytes", (json_int_t)total_kb << 10,
			 "page_size_bytes", (json_int_t)sysconf(_SC_PAGESIZE),
			 "hugepage_size_bytes", (json_int_t)huge_kb << 10,
			 "thp_pmd_size_bytes", (json_int_t)pmd, "numa_nodes", nodes);
}

static bool kconfig_wanted(const char *key)
{
	for (size_t i = 0; i < sizeof(kconfig_filter) / sizeof(kconfig_filter[0]); i++) {
		if (strstr(key, kconfig_filter[i]))
			return true;
	}
	return false;
}

/* One .config line into o: CONFIG_X=v (string quotes dropped), "# CONFIG_X is not set" = n. */
static void kconfig_line(json_t *o, char *line, int filter)
{
	char *eq, *val;
	size_t n;

	line[strcspn(line, "\r\n")] = '\0';
	if (!strncmp(line, "# CONFIG_", 9)) {
		n = strlen(line);
		if (n < 12 || strcmp(line + n - 11, " is not set"))
			return;
		line[n - 11] = '\0';
		line += 2;
		val = "n";
	} else if (!strncmp(line, "CONFIG_", 7) && (eq = strchr(line, '='))) {
		*eq = '\0';
		val = eq + 1;
		n = strlen(val);
		if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
			val[n - 1] = '\0';
			val++;
		}
	} else {
		return;
	}
	if (filter && !kconfig_wanted(line))
		return;
	json_object_set_new(o, line, json_string(val));
}

json_t *ms_kconfig_load(const char *path, int filter)
{
	char line[4096];
	bool partial = false;
	json_t *o;
	gzFile gz;
	int err;

	gz = gzopen(path, "rb");
	if (!gz)
		return NULL;
	o = json_object();
	while (o && gzgets(gz, line, sizeof(line))) {
		/* The tail of an over-long line is not a line of its own. */
		bool skip = partial;

		partial = !strchr(line, '\n') && !gzeof(gz);
		if (!skip && !partial)
			kconfig_line(o, line, filter);
	}
	gzerror(gz, &err);
	if (err != Z_OK && err != Z_STREAM_END) {
		json_decref(o);
		o = NULL;
	}
	gzclose(gz);
	return o;
}

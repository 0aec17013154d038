/* A journaled cgroup v2 of the case's own, to count perf events per cgroup instead of per task. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mmstorm/journal.h"
#include "mmstorm/perf.h"
#include "mmstorm/util.h"

/* The caller's cgroup v2 path ("0::/a/b" in /proc/self/cgroup), "/" for the root. */
static int own_cgroup(char *path, size_t len)
{
	char line[PATH_MAX + 16];
	int ret = -ENOENT;
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		ms_strlcpy(path, line + 3, len);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

int ms_perf_cgroup_enter(struct ms_journal *j, int *fd, char *why, size_t len)
{
	char mnt[PATH_MAX], own[PATH_MAX], dir[2 * PATH_MAX + 64], procs[sizeof(dir) + 16];
	char pid[24];
	int ret;

	*fd = -1;
	if ((ret = ms_cgroup2_mount(mnt, sizeof(mnt)))) {
		snprintf(why, len, "no cgroup v2 hierarchy mounted");
		return ret;
	}
	if ((ret = own_cgroup(own, sizeof(own)))) {
		snprintf(why, len, "no cgroup v2 line in /proc/self/cgroup");
		return ret;
	}
	/* A child of our own cgroup: whatever limits the runner runs under still apply. */
	snprintf(dir, sizeof(dir), "%s%s/mmstorm-perf-%d", mnt,
		 strcmp(own, "/") ? own : "", (int)getpid());
	if ((ret = ms_journal_mkdir(j, dir, 0755))) {
		snprintf(why, len, "mkdir %s: %s", dir, strerror(-ret));
		return ret;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if ((ret = ms_write_file(procs, pid))) {
		snprintf(why, len, "%s <- %s: %s", procs, pid, strerror(-ret));
		return ret;
	}
	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		ret = -errno;
		snprintf(why, len, "open %s: %s", dir, strerror(errno));
		return ret;
	}
	return 0;
}

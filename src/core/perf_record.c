/* `perf record -g` around one case on the host (--perf-record): perf.data and its top symbols. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/perf.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"

#define ATTACH_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 60000

static int find_perf(char *path, size_t len)
{
	const char *env = getenv("PATH");
	char dirs[4096], *save = NULL;

	ms_strlcpy(dirs, env && *env ? env : "/usr/local/bin:/usr/bin:/bin", sizeof(dirs));
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, len, "%s/perf", d);
		if (!access(path, X_OK))
			return 0;
	}
	return -ENOENT;
}

int ms_perf_record_check(char *reason, size_t len)
{
	char perf[4096], buf[32];
	int paranoid;

	if (find_perf(perf, sizeof(perf))) {
		snprintf(reason, len, "perf is not installed (Debian package linux-perf)");
		return MS_SKIP;
	}
	if (ms_read_file("/proc/sys/kernel/perf_event_paranoid", buf, sizeof(buf)) <= 0) {
		snprintf(reason, len, "no /proc/sys/kernel/perf_event_paranoid: kernel without "
			 "perf events");
		return MS_SKIP;
	}
	paranoid = atoi(buf);
	/* Kernel call chains are the point here: above 1 only root may sample the kernel. */
	if (geteuid() != 0 && paranoid > 1) {
		snprintf(reason, len, "kernel.perf_event_paranoid=%d forbids profiling the kernel "
			 "as uid %d (needs <= 1, or root)", paranoid, (int)geteuid());
		return MS_SKIP;
	}
	return 0;
}

static void path_in(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void fifo_paths(const char *dir, char *ctl, char *ack, size_t len)
{
	path_in(ctl, len, dir, ".perf-ctl");
	path_in(ack, len, dir, ".perf-ack");
}

/* In the forked child: becomes perf, or _exits with 127. */
static void exec_perf(const char *dir, pid_t pid, const char *ctl, const char *ack)
{
	char perf[4096], data[4096], log[4096], control[8300], target[32];
	int fd;

	/* Our own group: a ^C to the runner must not cut the recording short. */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGINT);
	path_in(data, sizeof(data), dir, "perf.data");
	path_in(log, sizeof(log), dir, "perf-record.log");
	snprintf(control, sizeof(control), "fifo:%s,%s", ctl, ack);
	snprintf(target, sizeof(target), "%d", (int)pid);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || find_perf(perf, sizeof(perf)))
		_exit(127);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(127);
	/*
	 * -D -1: start with events disabled, so the "enable" sent over the control fifo and its
	 * ack tell us sampling is on. -N: no copies of binaries in ~/.debug (machine state).
	 */
	execl(perf, "perf", "record", "-g", "-N", "-D", "-1", "--control", control, "-p", target,
	      "-o", data, (char *)NULL);
	_exit(127);
}

/* Wait for perf's "ack" to our "enable", or for perf to give up. */
static int wait_ack(int ackfd, pid_t perf_pid)
{
	char buf[16];
	int status;

	for (int waited = 0; waited < ATTACH_TIMEOUT_MS; waited += 100) {
		struct pollfd p = { .fd = ackfd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) > 0) {
			n = read(ackfd, buf, sizeof(buf) - 1);
			if (n > 0) {
				buf[n] = '\0';
				if (strstr(buf, "ack"))
					return 0;
			}
		}
		if (waitpid(perf_pid, &status, WNOHANG) == perf_pid)
			return -ECHILD;
	}
	return -ETIMEDOUT;
}

int ms_perf_record_start(const char *dir, pid_t pid, pid_t *perf_pid)
{
	char ctl[4096], ack[4096], reason[256];
	int ctlfd = -1, ackfd = -1, ret;
	pid_t child;

	*perf_pid = -1;
	if (ms_perf_record_check(reason, sizeof(reason)))
		return MS_SKIP;
	fifo_paths(dir, ctl, ack, sizeof(ctl));
	unlink(ctl);
	unlink(ack);
	if (mkfifo(ctl, 0600) < 0 || mkfifo(ack, 0600) < 0) {
		ret = -errno;
		goto out_unlink;
	}
	/* Read-write opens never block on the other end and keep the fifos usable. */
	ctlfd = open(ctl, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ackfd = open(ack, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (ctlfd < 0 || ackfd < 0) {
		ret = -errno;
		goto out_close;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		ret = -errno;
		goto out_close;
	}
	if (child == 0)
		exec_perf(dir, pid, ctl, ack);
	/* perf reads this once its events exist (disabled), then enables and acks. */
	if ((ret = ms_write_all(ctlfd, "enable\n", 7)) || (ret = wait_ack(ackfd, child))) {
		if (ret != -ECHILD) {
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
		}
		ret = ret == -ECHILD ? -EIO : ret;	/* perf-record.log says why */
		goto out_close;
	}
	*perf_pid = child;
out_close:
	if (ctlfd >= 0)
		close(ctlfd);
	if (ackfd >= 0)
		close(ackfd);
out_unlink:
	unlink(ctl);
	unlink(ack);
	return ret;
}

/* SIGINT makes perf write its data and exit; it may already have (target gone, reaped). */
static int stop_perf(pid_t perf_pid)
{
	int status;

	if (kill(perf_pid, SIGINT) < 0 && errno != ESRCH)
		return -errno;
	for (int waited = 0; waited < STOP_TIMEOUT_MS; waited += 10) {
		pid_t r = waitpid(perf_pid, &status, WNOHANG);

		if (r == perf_pid || (r < 0 && errno == ECHILD))
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		usleep(10000);
	}
	kill(perf_pid, SIGKILL);
	waitpid(perf_pid, &status, 0);
	return -ETIMEDOUT;
}

static char *trim(char *s)
{
	char *e = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* " 25.14% \tsh \tlibc.so.6 \t[.] __strcmp_evex": overhead, command, object, symbol. */
static json_t *parse_report_line(char *line)
{
	char *f[4], *save = NULL, *end;
	double pct;
	int n = 0;

	if (line[0] == '#' || !strchr(line, '%'))
		return NULL;
	for (char *t = strtok_r(line, "\t", &save); t && n < 4; t = strtok_r(NULL, "\t", &save))
		f[n++] = trim(t);
	if (n < 4)
		return NULL;
	pct = strtod(f[0], &end);
	if (end == f[0] || *end != '%')
		return NULL;
	/* "[k] " kernel, "[.] " user: the object column says as much. */
	if (f[3][0] == '[' && f[3][1] && f[3][2] == ']' && f[3][3] == ' ')
		f[3] += 4;
	return json_pack("{s:f, s:s, s:s, s:s}", "overhead_pct", pct, "command", f[1], "object",
			 f[2], "symbol", f[3]);
}

static int write_top(const char *path, json_t *top)
{
	FILE *f = fopen(path, "w");
	size_t i;
	json_t *e;
	int ret = 0;

	if (!f)
		return -errno;
	fprintf(f, "# perf report --stdio --no-children -g none: top %d symbols by self "
		"overhead\n# %8s  %-16s %-28s %s\n", MS_PERF_TOP, "overhead", "command", "object",
		"symbol");
	json_array_foreach(top, i, e)
		fprintf(f, "  %8.2f%%  %-16s %-28s %s\n",
			json_real_value(json_object_get(e, "overhead_pct")),
			json_string_value(json_object_get(e, "command")),
			json_string_value(json_object_get(e, "object")),
			json_string_value(json_object_get(e, "symbol")));
	if (fclose(f))
		ret = -errno;
	return ret;
}

/* Run perf report on DIR/perf.data and keep the first MS_PERF_TOP entries. */
static int report_top(const char *dir, json_t *top)
{
	char perf[4096], data[4096], log[4096], line[4096];
	int pfd[2], status, fd;
	pid_t child;
	FILE *f;

	if (find_perf(perf, sizeof(perf)))
		return -ENOENT;
	path_in(data, sizeof(data), dir, "perf.data");
	path_in(log, sizeof(log), dir, "perf-report.log");
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	child = fork();
	if (child < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (child == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(pfd[1], 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl(perf, "perf", "report", "--stdio", "--no-children", "-g", "none", "-t", "\t",
		      "-i", data, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (!f) {
		close(pfd[0]);
		kill(child, SIGKILL);
	}
	/* Read to the end even past the top entries, so perf never blocks on a full pipe. */
	while (f && fgets(line, sizeof(line), f)) {
		json_t *e = json_array_size(top) < MS_PERF_TOP ? parse_report_line(line) : NULL;

		if (e)
			json_array_append_new(top, e);
	}
	if (f)
		fclose(f);
	if (waitpid(child, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

int ms_perf_record_stop(const char *dir, pid_t perf_pid, json_t **top)
{
	char path[4096];
	json_t *t;
	int ret;

	if (top)
		*top = NULL;
	if (perf_pid <= 0)
		return -EINVAL;
	if ((ret = stop_perf(perf_pid)))
		return ret;
	t = json_array();
	if (!t)
		return -ENOMEM;
	ret = report_top(dir, t);
	path_in(path, sizeof(path), dir, "perf-top.txt");
	if (!ret)
		ret = write_top(path, t);
	if (!ret && top)
		*top = json_incref(t);
	json_decref(t);
	return ret;
}

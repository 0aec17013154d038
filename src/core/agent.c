/* The guest agent: mmstorm as PID 1 in a guest; events on ttyS1 or, for LAVA, the console. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/journal.h"
#include "mmstorm/lava.h"
#include "mmstorm/util.h"

struct agent_sink {
	struct ms_sink base;
	int fd;			/* events: ttyS1 in a guest, a file or stdout; -1 none */
	bool is_tty;
	bool lava;		/* mmstorm.console=lava: events and results on the console */
	unsigned long seq;	/* events put on the console */
	struct ms_out *out;	/* KTAP on the console, and a local copy of the results */
};

/* Whole lines on the console, never inside a KTAP line stdout still buffers. */
static int agent_console_event(struct agent_sink *a, const json_t *ev, const char *kind)
{
	int ret;

	fflush(stdout);
	ret = ms_lava_put_event(STDOUT_FILENO, a->seq++, ev);
	if (!ret && kind && !strcmp(kind, "case_end"))
		ret = ms_lava_put_result(STDOUT_FILENO, ev);
	return ret;
}

static int agent_event(struct ms_sink *s, json_t *ev)
{
	struct agent_sink *a = (struct agent_sink *)s;
	const char *kind = json_string_value(json_object_get(ev, "ev"));
	char *line = a->fd >= 0 ? json_dumps(ev, JSON_COMPACT) : NULL;
	bool result = kind && (!strcmp(kind, "case_end") || !strcmp(kind, "run_end"));
	int ret = 0;

	if (a->lava)
		ret = agent_console_event(a, ev, kind);
	if (line) {
		size_t n = strlen(line);

		line[n] = '\n';	/* json_dumps leaves room: replace the NUL, write n+1 bytes */
		ret = ms_write_all(a->fd, line, n + 1);
		free(line);
	}
	/* A case result must have left the guest before the next case can crash it. */
	if (result && a->lava)
		tcdrain(STDOUT_FILENO);
	if (result && a->fd >= 0) {
		if (a->is_tty)
			tcdrain(a->fd);
		else
			fsync(a->fd);
	}
	if (a->out) {
		ms_out_event(a->out, ev);
		fflush(stdout);
	} else {
		json_decref(ev);
	}
	return ret;
}

static void mount_one(const char *src, const char *dir, const char *type, const char *data)
{
	ms_mkdir_p(dir, 0755);
	if (mount(src, dir, type, MS_NOSUID, data) < 0 && errno != EBUSY)
		fprintf(stderr, "# agent: mount %s on %s: %s\n", type, dir, strerror(errno));
}

static bool fs_available(const char *type)
{
	char buf[8192], pat[64];

	snprintf(pat, sizeof(pat), "\t%s\n", type);
	return ms_read_file("/proc/filesystems", buf, sizeof(buf)) > 0 && strstr(buf, pat);
}

static void guest_mounts(void)
{
	mount_one("proc", "/proc", "proc", NULL);
	mount_one("sysfs", "/sys", "sysfs", NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", NULL);
	mount_one("tmpfs", "/tmp", "tmpfs", "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", "mode=755");
	mount_one("debugfs", "/sys/kernel/debug", "debugfs", NULL);
	if (fs_available("tracefs"))
		mount_one("tracefs", "/sys/kernel/tracing", "tracefs", NULL);
	if (fs_available("hugetlbfs"))
		mount_one("hugetlbfs", "/dev/hugepages", "hugetlbfs", NULL);
	if (fs_available("cgroup2")) {
		mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2", NULL);
		/*
		 * Until something writes the root's subtree_control the kernel never computes its
		 * subtree mask, so a child cgroup gets no implicit perf_event css and per-cgroup
		 * counting (perf_mode=auto) falls back to inherited per-task counters, which cost
		 * every fork. pids is the cheapest controller to turn on; the guest is thrown away.
		 */
		ms_write_file("/sys/fs/cgroup/cgroup.subtree_control", "+pids");
	}
	if (fs_available("msharefs"))
		mount_one("msharefs", "/sys/fs/mshare", "msharefs", NULL);
}

static int open_event_tty(const char *path)
{
	struct termios t;
	int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (!tcgetattr(fd, &t)) {
		cfmakeraw(&t);
		cfsetospeed(&t, B115200);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

/* "mmstorm.resume=3 mmstorm.repeat=1" from the kernel command line. */
static const char *cmdline_find(const char *cmdline, const char *key)
{
	const char *p = cmdline;
	size_t klen = strlen(key);

	while ((p = strstr(p, key))) {
		if ((p == cmdline || p[-1] == ' ') && p[klen] == '=')
			return p + klen + 1;
		p += klen;
	}
	return NULL;
}

static long cmdline_long(const char *cmdline, const char *key, long def)
{
	const char *v = cmdline_find(cmdline, key);

	return v ? strtol(v, NULL, 10) : def;
}

/* The word after key=, "" if absent. */
static void cmdline_word(const char *cmdline, const char *key, char *buf, size_t len)
{
	const char *v = cmdline_find(cmdline, key);
	size_t n = v ? strcspn(v, " \n") : 0;

	snprintf(buf, len, "%.*s", (int)n, v ? v : "");
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Not reached in a guest; PID 1 must never return (the kernel would panic). */
	for (;;)
		pause();
}

/* What a LAVA job asked for on the kernel command line (docs/lava.md). */
struct agent_lava {
	bool on;		/* mmstorm.console=lava */
	char cases[1024];	/* mmstorm.cases=0-3,7: this shard's cases ("" = all) */
	char shard[32];		/* mmstorm.shard=1/4 */
	char label[64];		/* mmstorm.label=: the kernel's name in the results */
};

/* The case names travel in run_start, so collect can name the cases a dead shard never ran. */
static void lava_env(json_t *env, const struct agent_lava *l, const struct ms_suite *s)
{
	json_t *names = json_array();

	for (unsigned i = 0; names && i < s->ncases; i++)
		json_array_append_new(names, json_string(s->cases[i].name));
	json_object_set_new(env, "lava", json_pack("{s:s, s:s, s:s, s:o*}", "shard", l->shard,
						   "cases", l->cases, "label", l->label,
						   "case_names", names));
}

static int agent_run(const char *suite_path, int event_fd, bool is_tty, bool in_guest,
		     long first, long repeat, const char *run_id, json_t *env,
		     const struct agent_lava *lava)
{
	struct agent_sink sink = { .base.event = agent_event, .fd = event_fd, .is_tty = is_tty,
				   .lava = lava && lava->on };
	struct ms_out_opts oo = { .dir = "/run/mmstorm-results", .ktap = stdout };
	struct ms_run_opts ro = { 0 };
	struct ms_journal *j = NULL;
	struct ms_suite s = { 0 };
	const char *argv[] = { "mmstorm", "agent", suite_path };
	char err[1024];
	int ret, sig = 0;

	char local_dir[96];

	if (!in_guest) {
		/* On a host the local copy is scratch: the caller reads the event stream. */
		snprintf(local_dir, sizeof(local_dir), "/tmp/mmstorm-agent-%d", (int)getpid());
		oo.dir = local_dir;
		oo.ktap = stderr;
	}
	if (ms_out_open(&sink.out, &oo))
		sink.out = NULL;
	if (ms_suite_load(&s, suite_path, err, sizeof(err))) {
		agent_event(&sink.base, json_pack("{s:s, s:I, s:s}", "ev", "log", "t_ns",
						  (json_int_t)0, "msg", err));
		agent_event(&sink.base, json_pack("{s:s, s:I, s:s}", "ev", "run_end", "t_ns",
						  (json_int_t)0, "status", "error: bad suite"));
		ret = MS_EXIT_USAGE;
		goto out;
	}
	if ((ret = ms_state_open(&j, stderr))) {
		fprintf(stderr, "# agent: journal: %s\n", strerror(-ret));
		ret = MS_EXIT_INFRA;
		goto out_suite;
	}
	if (sink.lava && env)
		lava_env(env, lava, &s);
	ro.suite_path = suite_path;
	ro.run_id = run_id;
	ro.argv = argv;
	ro.argc = 3;
	ro.in_guest = in_guest;
	ro.first_case = first > 0 ? (unsigned)first : 0;
	ro.only_repeat = (int)repeat;
	ro.case_set = sink.lava && lava->cases[0] ? lava->cases : NULL;
	ro.env = env;
	ret = ms_run_suite(&s, &ro, j, &sink.base, &sig);
	agent_event(&sink.base, json_pack("{s:s, s:I, s:s}", "ev", "run_end", "t_ns",
					  (json_int_t)0, "status",
					  ret < 0 ? "error" : sig ? "interrupted" : "complete"));
	ret = ret < 0 ? MS_EXIT_INFRA : ret > MS_V_SKIP ? MS_EXIT_FAIL : MS_EXIT_OK;
	ms_journal_restore_to(j, 0, stderr);
	ms_journal_close(j);
out_suite:
	ms_suite_free(&s);
out:
	if (sink.out) {
		ms_out_write(sink.out, "complete");
		ms_out_close(sink.out);
	}
	return ret;
}

static void lava_marker(const char *word, const struct agent_lava *l, int status)
{
	char line[1400];
	int n;

	if (status < 0)
		n = snprintf(line, sizeof(line), "%s shard=%s label=%s cases=%s\n", word,
			     l->shard, l->label, l->cases[0] ? l->cases : "all");
	else
		n = snprintf(line, sizeof(line), "%s shard=%s exit=%d\n", word, l->shard, status);
	fflush(stdout);
	if (n > 0 && ms_write_all(STDOUT_FILENO, line, (size_t)n) == 0)
		tcdrain(STDOUT_FILENO);
}

static int guest_main(void)
{
	char cmdline[4096] = "", run_id[128] = "guest", console[16];
	struct agent_lava lava = { 0 };
	json_t *manifest, *env;
	json_error_t jerr;
	long first, repeat;
	int fd = -1, ret;

	guest_mounts();
	setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin", 0);
	setenv("TMPDIR", "/tmp", 1);
	ms_read_file("/proc/cmdline", cmdline, sizeof(cmdline));
	first = cmdline_long(cmdline, "mmstorm.resume", 0);
	repeat = cmdline_long(cmdline, "mmstorm.repeat", -1);
	cmdline_word(cmdline, "mmstorm.console", console, sizeof(console));
	lava.on = !strcmp(console, "lava");
	cmdline_word(cmdline, "mmstorm.cases", lava.cases, sizeof(lava.cases));
	cmdline_word(cmdline, "mmstorm.shard", lava.shard, sizeof(lava.shard));
	cmdline_word(cmdline, "mmstorm.label", lava.label, sizeof(lava.label));
	manifest = json_load_file("/manifest.json", 0, &jerr);
	if (manifest && json_is_string(json_object_get(manifest, "run_id")))
		ms_strlcpy(run_id, json_string_value(json_object_get(manifest, "run_id")),
			   sizeof(run_id));
	/* Under LAVA the console is the only line to the host: ttyS1 may not even exist. */
	if (!lava.on) {
		fd = open_event_tty("/dev/ttyS1");
		if (fd < 0) {
			fprintf(stderr, "# agent: cannot open /dev/ttyS1 for events: %s\n",
				strerror(-fd));
			power_off();
		}
	} else {
		lava_marker(MS_LAVA_START, &lava, -1);
	}
	env = json_pack("{s:I, s:I}", "resume", (json_int_t)first, "repeat", (json_int_t)repeat);
	ret = agent_run("/suite.ini", fd, true, true, first, repeat, run_id, env, &lava);
	if (lava.on)
		lava_marker(MS_LAVA_END, &lava, ret);
	json_decref(env);
	json_decref(manifest);
	if (fd >= 0)
		close(fd);
	power_off();
	return 0;
}

/*
 * Outside a guest (`mmstorm agent SUITE [EVENTS]`) the same agent writes its event stream to
 * a file or stdout: the serial protocol can be exercised on the host.
 */
int ms_agent_main(int argc, char **argv)
{
	int fd = STDOUT_FILENO, ret;

	if (getpid() == 1)
		return guest_main();
	if (argc < 2 || argc > 3 || !strcmp(argv[1], "--help")) {
		fprintf(argc >= 2 ? stdout : stderr,
			"usage: mmstorm agent SUITE [EVENTS_FILE]\n"
			"  Runs SUITE as the guest agent would, writing the JSONL event stream to\n"
			"  EVENTS_FILE (default stdout) and KTAP to stderr. In a VM guest mmstorm\n"
			"  runs as /init and does this by itself.\n");
		return argc >= 2 ? 0 : MS_EXIT_USAGE;
	}
	if (argc == 3) {
		fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "mmstorm: %s: %s\n", argv[2], strerror(errno));
			return MS_EXIT_USAGE;
		}
	}
	ret = agent_run(argv[1], fd, false, false, 0, -1, "agent", NULL, NULL);
	if (fd != STDOUT_FILENO)
		close(fd);
	return ret;
}

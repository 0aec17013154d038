/* Helpers shared by the injectors: documented errnos, thread marks, debugfs fault attributes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/metrics.h"
#include "mmstorm/util.h"

/* ---- documented errors ---- */

struct documented {
	const char *point;
	int errs[6];
	const char *text;
};

/*
 * From the man pages: the errors a call documents for running out of something, which is what
 * a failed allocation inside it may turn into. Anything else (EFAULT from fork, EINVAL, a
 * success with a half-done result) is an error path the kernel got wrong.
 */
static const struct documented documented[] = {
	{ "fork", { ENOMEM, EAGAIN }, "ENOMEM EAGAIN" },
	{ "vfork", { ENOMEM, EAGAIN }, "ENOMEM EAGAIN" },
	{ "clone", { ENOMEM, EAGAIN }, "ENOMEM EAGAIN" },
	{ "mmap", { ENOMEM, EAGAIN }, "ENOMEM EAGAIN" },
	{ "munmap", { ENOMEM }, "ENOMEM" },
	{ "mremap", { ENOMEM, EAGAIN, EFAULT }, "ENOMEM EAGAIN EFAULT" },
	{ "mprotect", { ENOMEM, EAGAIN }, "ENOMEM EAGAIN" },
	{ "madvise", { ENOMEM, EAGAIN, EINTR, EFAULT, EHWPOISON }, "ENOMEM EAGAIN EINTR EFAULT "
	  "EHWPOISON" },
	{ "mlock", { ENOMEM, EAGAIN }, "ENOMEM EAGAIN" },
	{ "ioctl", { ENOMEM, EAGAIN, EINTR, EFAULT }, "ENOMEM EAGAIN EINTR EFAULT" },
	{ "io_uring_register", { ENOMEM, EAGAIN, EINTR, EFAULT }, "ENOMEM EAGAIN EINTR EFAULT" },
};

/* "ioctl:UFFDIO_COPY" is an ioctl(): the call before the colon says what is documented. */
static const struct documented *documented_find(const char *point)
{
	size_t len = strcspn(point, ":");

	for (size_t i = 0; i < MS_ARRAY_SIZE(documented); i++)
		if (!strncmp(documented[i].point, point, len) && !documented[i].point[len])
			return &documented[i];
	return NULL;
}

bool inj_errno_documented(const char *point, int err)
{
	const struct documented *d = documented_find(point);

	if (!d)
		return true;
	for (size_t i = 0; i < MS_ARRAY_SIZE(d->errs) && d->errs[i]; i++)
		if (d->errs[i] == err)
			return true;
	return false;
}

const char *inj_errno_list(const char *point)
{
	const struct documented *d = documented_find(point);

	return d ? d->text : "any";
}

void inj_errstat_add(struct inj_errstat *st, int err)
{
	for (unsigned i = 0; i < INJ_ERRNO_SLOTS; i++) {
		uint32_t cur = __atomic_load_n(&st->err[i], __ATOMIC_RELAXED);

		/* An empty slot is claimed for a new errno; a lost race leaves the winner's. */
		if (!cur && __atomic_compare_exchange_n(&st->err[i], &cur, (uint32_t)err, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			cur = (uint32_t)err;
		if (cur != (uint32_t)err)
			continue;
		__atomic_fetch_add(&st->count[i], 1, __ATOMIC_RELAXED);
		return;
	}
}

void inj_errstat_text(const struct inj_errstat *st, char *buf, size_t len)
{
	size_t at = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (unsigned i = 0; i < INJ_ERRNO_SLOTS && st->err[i] && at < len; i++) {
		int n = snprintf(buf + at, len - at, "%s%s x%" PRIu64, at ? ", " : "",
				 strerrorname_np((int)st->err[i]) ?: "?", st->count[i]);

		if (n < 0)
			break;
		at += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

void inj_check_failure(struct ms_ctx *ctx, const char *name, const char *point,
		       const char *what, long ret, int err)
{
	char desc[512];

	if (ret >= 0 || inj_errno_documented(point, err)) {
		ms_check(ctx, true, "injected failure returns a documented error", "%s", "");
		return;
	}
	ms_inject_describe(ctx, desc, sizeof(desc));
	ms_check(ctx, false, "injected failure returns a documented error",
		 "%s: %s returned %ld, errno %d (%s); documented: %s; rerun: %s; %s", name, what,
		 ret, err, strerrorname_np(err) ?: "?", inj_errno_list(point),
		 ms_inject_rerun(ctx), desc);
}

bool inj_point_match(const char *want, const char *point)
{
	size_t len = strlen(want);

	if (!strcmp(want, point))
		return true;
	/* "ioctl" names every ioctl point; "ioctl:UFFDIO_COPY" only that one. */
	return !strchr(want, ':') && !strncmp(want, point, len) && point[len] == ':';
}

/* ---- thread marks ---- */

struct inj_slot *inj_slot(struct inj_slot *slots, bool claim)
{
	int32_t tid = (int32_t)gettid();

	for (unsigned i = 0; i < INJ_SLOTS; i++)
		if (__atomic_load_n(&slots[i].tid, __ATOMIC_ACQUIRE) == tid)
			return &slots[i];
	if (!claim)
		return NULL;
	for (unsigned i = 0; i < INJ_SLOTS; i++) {
		int32_t free_tid = 0;

		if (__atomic_compare_exchange_n(&slots[i].tid, &free_tid, tid, false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			slots[i].fd = -1;
			slots[i].value = 0;
			return &slots[i];
		}
	}
	return NULL;
}

/* ---- small things ---- */

uint64_t inj_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int inj_read_s64(const char *path, int64_t *v)
{
	char buf[64], *end;
	ssize_t n = ms_read_file(path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	errno = 0;
	*v = strtoll(buf, &end, 0);
	if (end == buf || errno)
		return -EINVAL;
	return 0;
}

void inj_kill_helper(struct ms_ctx *ctx, pid_t pid)
{
	(void)ctx;
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	/* ECHILD: a workload that reaps any child got it first; it is gone either way. */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

bool inj_sleep(const struct ms_ctx *ctx, uint64_t ns)
{
	uint64_t end = ms_now_ns() + ns;

	while (!ms_should_stop(ctx)) {
		uint64_t now = ms_now_ns(), step = 10 * 1000 * 1000;
		struct timespec ts;

		if (now >= end)
			return true;
		if (end - now < step)
			step = end - now;
		ts.tv_sec = (time_t)(step / 1000000000);
		ts.tv_nsec = (long)(step % 1000000000);
		nanosleep(&ts, NULL);
	}
	return false;
}

int inj_make_it_fail(int on)
{
	/*
	 * The calling thread's own flag: /proc/self is the thread group leader's, which left a
	 * uffd handler thread that reaches the point first unmarked (hugetlb-minor).
	 */
	return ms_write_file("/proc/thread-self/make-it-fail", on ? "1" : "0");
}

/* ---- kernel symbols ---- */

static bool text_type(char t)
{
	return t == 't' || t == 'T' || t == 'W' || t == 'w';
}

int inj_kallsyms_range(const char *sym, uint64_t *start, uint64_t *end)
{
	char line[512], name[256], type;
	unsigned long long addr;
	bool found = false;
	int ret = -ENOENT;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (!found) {
			if (strcmp(name, sym) || !text_type(type))
				continue;
			if (!addr) {
				ret = -EPERM;	/* kernel.kptr_restrict hides addresses */
				break;
			}
			*start = addr;
			found = true;
			continue;
		}
		/* The next symbol above it ends it (aliases share the address). */
		if (addr > *start) {
			*end = addr;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

bool inj_debugfs_mounted(void)
{
	struct statfs sf;

	return !statfs(INJ_DEBUGFS, &sf) && sf.f_type == DEBUGFS_MAGIC;
}

void inj_helper_name(const char *name)
{
	char comm[16];

	snprintf(comm, sizeof(comm), INJ_HELPER_COMM "%s", name);
	prctl(PR_SET_NAME, comm);
}

void inj_pidset_add(struct inj_pidset *s, pid_t pid)
{
	uint32_t n = __atomic_load_n(&s->n, __ATOMIC_ACQUIRE), slot;

	for (uint32_t i = 0; i < n && i < INJ_PIDSET; i++)
		if (__atomic_load_n(&s->pid[i], __ATOMIC_RELAXED) == pid)
			return;
	slot = __atomic_fetch_add(&s->n, 1, __ATOMIC_ACQ_REL);
	if (slot < INJ_PIDSET)
		__atomic_store_n(&s->pid[slot], pid, __ATOMIC_RELEASE);
}

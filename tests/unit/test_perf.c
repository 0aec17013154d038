/* Unit tests for perf counting (real perf_event_open, real page faults) and perf record. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mmstorm/journal.h>
#include <mmstorm/metrics.h>
#include <mmstorm/perf.h>
#include <mmstorm/workload.h>

#include "core/perf_lockwait.h"

#define PAGE 4096UL
#define TOUCH_PAGES 2048UL	/* touched by a grandchild while counting */
#define EARLY_PAGES 16384UL	/* touched before counting is enabled: must not count */

/* Anonymous pages, each written once: one fault per page (no THP, no mTHP to merge them). */
static void touch_pages(unsigned long n)
{
	volatile char *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || madvise((void *)p, n * PAGE, MADV_NOHUGEPAGE))
		_exit(3);
	for (unsigned long i = 0; i < n; i++)
		p[i * PAGE] = 1;
	munmap((void *)p, n * PAGE);
}

static void wait_ok(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
}

static json_t *counter(json_t *counts, const char *name)
{
	json_t *c = json_object_get(counts, name);

	ck_assert_msg(c != NULL, "no counter %s in %s", name, json_dumps(counts, JSON_COMPACT));
	return c;
}

static long long value(json_t *counts, const char *name)
{
	json_t *v = json_object_get(counter(counts, name), "value");

	ck_assert_msg(json_is_integer(v), "%s has no integer value", name);
	return json_integer_value(v);
}

static bool skipped_has(json_t *skipped, const char *event, const char *reason_part)
{
	size_t i;
	json_t *e;

	json_array_foreach(skipped, i, e) {
		const char *ev = json_string_value(json_object_get(e, "event"));
		const char *why = json_string_value(json_object_get(e, "reason"));

		ck_assert_ptr_nonnull(ev);
		ck_assert_msg(why && *why, "skip of %s without a reason", ev);
		if (!strcmp(ev, event) && (!reason_part || strstr(why, reason_part)))
			return true;
	}
	return false;
}

/* Prints JSON on a diagnostic line (the text is freed: the sanitizer build checks leaks). */
static void diag(const char *what, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);

	printf("# %s: %s\n", what, text ? text : "?");
	free(text);
}

static struct ms_perf *open_ok(const char *spec, json_t **skipped)
{
	struct ms_perf *p = NULL;

	ck_assert_int_eq(ms_perf_open(&p, spec, skipped), 0);
	ck_assert_ptr_nonnull(*skipped);
	ck_assert(json_is_array(*skipped));
	return p;
}

START_TEST(test_spec_check)
{
	static const char *const good[] = {
		"default", "none", "", "page-faults", "page-faults, task-clock",
		"default,kmem:kmalloc", "tlb:tlb_flush", "huge_memory:*split*", "cycles",
		"dTLB-load-misses,iTLB-load-misses", "default,-mmap-lock-wait", "mmap-lock-wait",
		"default,-tlb:tlb_flush,-cycles",
	};
	static const char *const bad[] = {
		"pagefaults", "page-faults,,task-clock", "none,page-faults", "tlb:", ":x",
		"../../etc:passwd", "tlb:tlb/flush", "sys*:x", ",", "-default", "default,-",
		"default,-nosuch-event", "default,-none",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(ms_perf_spec_check(good[i], err, sizeof(err)) == 0, "'%s': %s",
			      good[i], err);
	ck_assert_int_eq(ms_perf_spec_check(NULL, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(ms_perf_spec_check(bad[i], err, sizeof(err)) == -EINVAL,
			      "'%s' accepted", bad[i]);
		ck_assert_msg(strncmp(err, "perf: ", 6) == 0, "'%s': message '%s'", bad[i], err);
	}
	ck_assert_int_eq(ms_perf_spec_check("page-faults,bogus-event", err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "'bogus-event'"));
	/* The runner samples mmap_lock waits only when the list names it: not for the default set. */
	ck_assert(!ms_perf_lockwait_wanted("default"));
	ck_assert(!ms_perf_lockwait_wanted(NULL));
	ck_assert(ms_perf_lockwait_wanted("default,mmap-lock-wait"));
	ck_assert(!ms_perf_lockwait_wanted("default,mmap-lock-wait,-mmap-lock-wait"));
	ck_assert(ms_perf_lockwait_wanted("page-faults,mmap-lock-wait"));
	ck_assert(!ms_perf_lockwait_wanted("default,-mmap-lock-wait"));
	ck_assert(!ms_perf_lockwait_wanted("none"));
	ck_assert(!ms_perf_lockwait_wanted("page-faults"));
}
END_TEST

/* "-NAME" takes an event out of the default set: neither counted nor listed as skipped. */
START_TEST(test_spec_remove)
{
	json_t *skipped, *counts;
	struct ms_perf *p;

	if (ms_perf_unavailable())
		return;
	p = open_ok("default,-page-faults,-tlb:tlb_flush,-cycles", &skipped);
	ck_assert_ptr_nonnull(p);
	counts = ms_perf_read(p);
	ck_assert_ptr_null(json_object_get(counts, "page-faults"));
	ck_assert_ptr_nonnull(json_object_get(counts, "minor-faults"));
	ck_assert(!skipped_has(skipped, "tlb:tlb_flush", NULL));
	ck_assert(!skipped_has(skipped, "cycles", NULL));
	ck_assert_ptr_null(json_object_get(counts, "tlb:tlb_flush"));
	ck_assert_ptr_null(json_object_get(counts, "cycles"));
	json_decref(counts);
	json_decref(skipped);
	ms_perf_close(p);
}
END_TEST


START_TEST(test_open_none)
{
	struct ms_perf *p = (struct ms_perf *)1;
	json_t *skipped = NULL, *counts;

	ck_assert_int_eq(ms_perf_open(&p, "none", &skipped), 0);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(json_array_size(skipped), 0);
	/* Every call takes the NULL a case without counters has. */
	ck_assert_int_eq(ms_perf_enable(p), 0);
	ck_assert_int_eq(ms_perf_disable(p), 0);
	counts = ms_perf_read(p);
	ck_assert_int_eq(json_object_size(counts), 0);
	ms_perf_close(p);
	json_decref(counts);
	json_decref(skipped);
	ck_assert_int_eq(ms_perf_open(&p, "page-faults,nope", &skipped), -EINVAL);
	ck_assert_ptr_null(p);
}
END_TEST

/* Without libperf, a case still runs: one SKIP naming the reason, nothing counted. */
START_TEST(test_compiled_out)
{
	struct ms_perf *p = NULL;
	json_t *skipped;

	if (!ms_perf_unavailable())
		return;
	p = open_ok("default", &skipped);
	ck_assert_ptr_null(p);
	ck_assert(skipped_has(skipped, "*", "libperf not built"));
	json_decref(skipped);
}
END_TEST

/*
 * The case process opens counters before spawning workers (as fork-storm does in setup), a
 * worker touches EARLY_PAGES before counting is enabled, then forks a grandchild that touches
 * TOUCH_PAGES while counting. Inheritance must reach the grandchild and fold its faults into
 * the case's counter when it exits; the early faults must not count.
 */
START_TEST(test_inherit_grandchild)
{
	int go[2], ready[2];
	struct ms_perf *p;
	json_t *skipped, *counts, *pf;
	long long faults, minor;
	char c = 0;
	pid_t child;

	if (ms_perf_unavailable())
		return;
	p = open_ok("page-faults,minor-faults,task-clock,context-switches", &skipped);
	ck_assert_msg(p != NULL, "software counters skipped: %s",
		      json_dumps(skipped, JSON_COMPACT));
	ck_assert_msg(json_array_size(skipped) == 0, "%s", json_dumps(skipped, JSON_COMPACT));
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(ready), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pid_t gc;

		touch_pages(EARLY_PAGES);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(4);
		gc = fork();
		if (gc == 0) {
			touch_pages(TOUCH_PAGES);
			_exit(0);
		}
		if (gc < 0 || waitpid(gc, NULL, 0) != gc)
			_exit(5);
		_exit(0);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(ms_perf_enable(p), 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	wait_ok(child);
	ck_assert_int_eq(ms_perf_disable(p), 0);
	counts = ms_perf_read(p);
	faults = value(counts, "page-faults");
	minor = value(counts, "minor-faults");
	ck_assert_msg(faults >= (long long)TOUCH_PAGES, "page-faults %lld < %lu pages touched",
		      faults, TOUCH_PAGES);
	ck_assert_msg(minor >= (long long)TOUCH_PAGES, "minor-faults %lld", minor);
	ck_assert_msg(faults < (long long)EARLY_PAGES, "page-faults %lld: faults before enable "
		      "were counted", faults);
	ck_assert_int_gt(value(counts, "task-clock"), 0);
	/* The child and grandchild ran and blocked: at least their switches away. */
	ck_assert_int_gt(value(counts, "context-switches"), 0);
	pf = counter(counts, "page-faults");
	ck_assert(json_is_false(json_object_get(pf, "scaled")));
	ck_assert_int_ge(json_integer_value(json_object_get(pf, "enabled_ns")),
			 json_integer_value(json_object_get(pf, "running_ns")));
	ck_assert_int_gt(json_integer_value(json_object_get(pf, "running_ns")), 0);
	json_decref(counts);
	json_decref(skipped);
	ms_perf_close(p);
}
END_TEST

/* Counters start disabled and stop moving when disabled. */
START_TEST(test_enable_disable)
{
	struct ms_perf *p;
	json_t *skipped, *counts;
	long long before, during, after;

	if (ms_perf_unavailable())
		return;
	p = open_ok("page-faults", &skipped);
	ck_assert_ptr_nonnull(p);
	touch_pages(TOUCH_PAGES);
	counts = ms_perf_read(p);
	before = value(counts, "page-faults");
	json_decref(counts);
	ck_assert_int_eq(before, 0);
	ck_assert_int_eq(ms_perf_enable(p), 0);
	touch_pages(TOUCH_PAGES);
	ck_assert_int_eq(ms_perf_disable(p), 0);
	counts = ms_perf_read(p);
	during = value(counts, "page-faults");
	json_decref(counts);
	ck_assert_msg(during >= (long long)TOUCH_PAGES, "page-faults %lld", during);
	touch_pages(TOUCH_PAGES);
	counts = ms_perf_read(p);
	after = value(counts, "page-faults");
	json_decref(counts);
	ck_assert_int_eq(after, during);
	json_decref(skipped);
	ms_perf_close(p);
}
END_TEST

/* Every event of the default set is either counted or skipped with a reason; fits the shm. */
START_TEST(test_default_accounted)
{
	static const char *const builtins[] = {
		"task-clock", "context-switches", "cpu-migrations", "page-faults",
		"minor-faults", "major-faults", "instructions", "cycles", "cache-misses",
		"dTLB-load-misses", "iTLB-load-misses",
	};
	struct ms_perf *p;
	json_t *skipped, *counts;
	char *text;

	if (ms_perf_unavailable())
		return;
	p = open_ok("default", &skipped);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(ms_perf_enable(p), 0);
	touch_pages(64);
	ck_assert_int_eq(ms_perf_disable(p), 0);
	counts = ms_perf_read(p);
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		bool counted = json_object_get(counts, builtins[i]) != NULL;
		bool skip = skipped_has(skipped, builtins[i], NULL);

		ck_assert_msg(counted != skip, "%s: counted %d, skipped %d", builtins[i], counted,
			      skip);
	}
	ck_assert_int_ge(value(counts, "page-faults"), 64);
	text = json_dumps(counts, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strlen(text) < 4096, "%zu bytes of counters", strlen(text));
	diag("default set here", counts);
	diag("skipped", skipped);
	free(text);
	json_decref(counts);
	json_decref(skipped);
	ms_perf_close(p);
}
END_TEST

/*
 * Cgroup counting: a child moves into a journaled cgroup of its own, counts it per CPU and
 * forks a grandchild that touches TOUCH_PAGES; meanwhile this process, outside the cgroup,
 * touches EARLY_PAGES. The grandchild's faults count, ours do not; the journal then removes
 * the cgroup. Exit codes of the child say which step failed.
 */
static int cgroup_child(struct ms_journal *j, int go, int done)
{
	char why[1024], c;
	struct ms_perf *p;
	json_t *skipped, *counts;
	uint64_t t0 = ms_now_ns(), span;
	const char *name;
	json_t *v;
	long long faults;
	pid_t gc;
	int fd, ret;

	if ((ret = ms_perf_cgroup_enter(j, &fd, why, sizeof(why)))) {
		printf("# cgroup mode: SKIP: %s\n", why);
		return ret == -ENOENT || ret == -EACCES || ret == -EPERM || ret == -EROFS ? 9 : 2;
	}
	ret = ms_perf_open_cgroup(&p, "page-faults,minor-faults,task-clock", fd, &skipped);
	if (ret == -ENOENT || ret == -EINVAL || ret == -EACCES || ret == -EPERM) {
		/* The kernel cannot count this cgroup (see docs/perf.md: a fresh guest). */
		printf("# cgroup mode: SKIP: perf_event_open: %s\n", strerror(-ret));
		return 9;
	}
	if (ret || !p || json_array_size(skipped) || strcmp(ms_perf_mode(p), "cgroup"))
		return 3;
	close(fd);
	if (ms_perf_enable(p) || write(done, "e", 1) != 1 || read(go, &c, 1) != 1)
		return 4;
	gc = fork();
	if (gc == 0) {
		touch_pages(TOUCH_PAGES);
		_exit(0);
	}
	if (gc < 0 || waitpid(gc, NULL, 0) != gc || ms_perf_disable(p))
		return 5;
	counts = ms_perf_read(p);
	diag("cgroup mode", counts);
	/* No counter can have been enabled longer than it existed, on every CPU at once. */
	span = (ms_now_ns() - t0) * (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);
	json_object_foreach(counts, name, v)
		if ((uint64_t)json_integer_value(json_object_get(v, "enabled_ns")) > span)
			return 7;
	faults = json_integer_value(json_object_get(json_object_get(counts, "page-faults"),
						    "value"));
	ret = faults >= (long long)TOUCH_PAGES &&
	      faults < (long long)(TOUCH_PAGES + EARLY_PAGES / 2) &&
	      json_integer_value(json_object_get(json_object_get(counts, "task-clock"),
						     "value")) > 0 ? 0 : 6;
	json_decref(counts);
	json_decref(skipped);
	ms_perf_close(p);
	return ret;
}

START_TEST(test_cgroup_grandchild)
{
	char dir[] = "/tmp/ms_test_cg.XXXXXX", c;
	struct ms_journal *j;
	int go[2], done[2], status;
	pid_t child;

	if (ms_perf_unavailable())
		return;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(ms_journal_open(&j, dir), 0);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int rc = cgroup_child(j, go[0], done[1]);

		fflush(stdout);	/* _exit() would drop what diag() printed */
		_exit(rc);
	}
	close(done[1]);
	if (read(done[0], &c, 1) == 1) {
		/* Counting is on in the child's cgroup: these faults are outside it. */
		touch_pages(EARLY_PAGES);
		ck_assert_int_eq(write(go[1], "g", 1), 1);
	}
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_int_eq(ms_journal_restore_to(j, 0, stdout), 0);
	ms_journal_close(j);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 9)
		return;
	ck_assert_msg(WEXITSTATUS(status) == 0, "cgroup child failed at step %d",
		      WEXITSTATUS(status));
}
END_TEST

static bool tracefs_mounted(void)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " - tracefs "))
			found = true;
	fclose(f);
	return found;
}

/*
 * A tracepoint that does not exist is a SKIP with its reason, not an error, and the other
 * events are still counted. Without tracefs every tracepoint is skipped for that reason.
 */
START_TEST(test_missing_tracepoint)
{
	struct ms_perf *p;
	json_t *skipped, *counts;
	bool tfs = tracefs_mounted();

	if (ms_perf_unavailable())
		return;
	p = open_ok("page-faults,nosuchsys:nosuchevent,tlb:no_such_event,tlb:*no_such*",
		    &skipped);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(json_array_size(skipped), 3);
	if (tfs) {
		ck_assert(skipped_has(skipped, "nosuchsys:nosuchevent", "no tracepoint system"));
		ck_assert(skipped_has(skipped, "tlb:no_such_event", "no such tracepoint"));
		ck_assert(skipped_has(skipped, "tlb:*no_such*", "matches"));
	} else {
		ck_assert(skipped_has(skipped, "nosuchsys:nosuchevent", "tracefs is not mounted"));
		ck_assert(skipped_has(skipped, "tlb:no_such_event", "tracefs is not mounted"));
	}
	counts = ms_perf_read(p);
	ck_assert_int_eq(json_object_size(counts), 1);
	ck_assert_ptr_null(json_object_get(counts, "tlb:no_such_event"));
	json_decref(counts);
	json_decref(skipped);
	ms_perf_close(p);
}
END_TEST

/*
 * Real tracepoint counts need tracefs. The host has none mounted and mmstorm never mounts it
 * there; this test mounts it only inside a private mount namespace of its own process (gone
 * when the process exits), where the same checks as above then run against real tracepoints.
 */
START_TEST(test_tracepoints_private_ns)
{
	struct ms_perf *p;
	json_t *skipped, *counts;
	long long allocs;
	pid_t child;

	if (ms_perf_unavailable())
		return;
	if (unshare(CLONE_NEWNS) < 0) {
		printf("# tracepoints: no private mount namespace (%s): not tested\n",
		       strerror(errno));
		ck_assert(errno == EPERM || errno == EINVAL || errno == ENOSYS);
		return;
	}
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	if (!tracefs_mounted() && mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0) {
		printf("# tracepoints: cannot mount tracefs privately (%s): not tested\n",
		       strerror(errno));
		return;
	}
	ck_assert(tracefs_mounted());
	p = open_ok("page-faults,kmem:mm_page_alloc,tlb:tlb_flush,huge_memory:*collapse*,"
		    "nosuchsys:nosuchevent,tlb:no_such_event", &skipped);
	ck_assert_ptr_nonnull(p);
	ck_assert(skipped_has(skipped, "nosuchsys:nosuchevent", "no tracepoint system"));
	ck_assert(skipped_has(skipped, "tlb:no_such_event", "no such tracepoint"));
	ck_assert_int_eq(ms_perf_enable(p), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		touch_pages(TOUCH_PAGES);
		_exit(0);
	}
	wait_ok(child);
	ck_assert_int_eq(ms_perf_disable(p), 0);
	counts = ms_perf_read(p);
	diag("tracepoints in a private tracefs", counts);
	diag("skipped", skipped);
	/* Every touched page was allocated in the child, which counts into our counter. */
	allocs = value(counts, "kmem:mm_page_alloc");
	ck_assert_msg(allocs >= (long long)TOUCH_PAGES, "mm_page_alloc %lld", allocs);
	ck_assert_ptr_nonnull(json_object_get(counts, "tlb:tlb_flush"));
	json_decref(counts);
	json_decref(skipped);
	ms_perf_close(p);
}
END_TEST

/* mmap_lock contention: writers map and unmap, readers fault pages in again and again. */
static void *lock_writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3000; i++) {
		void *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		if (m == MAP_FAILED || munmap(m, PAGE))
			return (void *)1;
	}
	return NULL;
}

static void *lock_reader(void *arg)
{
	volatile char *p = arg;

	for (int i = 0; i < 300; i++) {
		for (unsigned long k = 0; k < 64; k++)
			p[k * PAGE] = 1;
		if (madvise((void *)p, 64 * PAGE, MADV_DONTNEED))
			return (void *)1;
	}
	return NULL;
}

static bool private_tracefs(void)
{
	if (unshare(CLONE_NEWNS) < 0) {
		printf("# no private mount namespace (%s): not tested\n", strerror(errno));
		return false;
	}
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	if (!tracefs_mounted() && mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0) {
		printf("# cannot mount tracefs privately (%s): not tested\n", strerror(errno));
		return false;
	}
	return true;
}

/* Threads contending for the process's mmap_lock; 1 if any of them failed. */
static int contend(char *region)
{
	pthread_t th[4];
	void *rv;
	int bad = 0;

	for (int i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, i % 2 ? lock_reader : lock_writer,
				   region + (i / 2) * 64 * PAGE))
			return 1;
	for (int i = 0; i < 4; i++)
		bad |= pthread_join(th[i], &rv) || rv;
	return bad;
}

/* The window a case stores for the runner: 1 first, then the time (see ms_lw_sampler_drain). */
static void mark(uint64_t *slot)
{
	__atomic_store_n(slot, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(slot, ms_now_ns(), __ATOMIC_SEQ_CST);
}

/*
 * Real samples, taken as the runner takes them: from outside, on a child opened while it waits
 * at a gate (tracefs mounted in a private mount namespace only). The child's threads, made
 * after the open, contend for its mmap_lock before and inside its run window; only the waits
 * inside are recorded, the others are counted as outside_run.
 */
START_TEST(test_lockwait_private_ns)
{
	uint64_t *win = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct ms_lw_sampler *s = NULL;
	const struct ms_hist *h;
	char why[1024], go = 'g';
	int gate[2], status;
	json_t *st;
	pid_t pid;

	ck_assert_ptr_ne(win, MAP_FAILED);
	if (ms_perf_unavailable() || !private_tracefs())
		return;
	ck_assert_int_eq(pipe(gate), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *region = mmap(NULL, 2 * 64 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (region == MAP_FAILED || read(gate[0], &go, 1) != 1 || contend(region))
			_exit(1);
		mark(&win[0]);
		if (contend(region))
			_exit(1);
		mark(&win[1]);
		_exit(0);
	}
	if (ms_perf_lockwait_open(&s, pid, why, sizeof(why))) {
		printf("# mmap-lock-wait: %s\n", why);
		/* Only a kernel without the tracepoints may refuse, and then says so. */
		ck_assert_msg(strstr(why, "mmap_lock"), "%s", why);
		ck_assert_int_eq(write(gate[1], &go, 1), 1);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		return;
	}
	ck_assert_int_eq(write(gate[1], &go, 1), 1);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		ms_lw_sampler_drain(s, &win[0], &win[1]);
		usleep(20000);
	}
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ms_lw_sampler_stop(s, &win[0], &win[1]);
	h = ms_lw_sampler_hist(s);
	st = ms_lw_sampler_json(s);
	diag("mmap-lock-wait", st);
	printf("# waits: %llu, p50 %llu ns, max %llu ns\n", (unsigned long long)h->count,
	       (unsigned long long)ms_hist_percentile(h, 50), (unsigned long long)h->max);
	ck_assert_int_gt(json_integer_value(json_object_get(st, "pairs")), 1000);
	ck_assert_uint_eq(h->count, (uint64_t)json_integer_value(json_object_get(st, "pairs")));
	/* The first round of contention, before the window, is seen and not recorded. */
	ck_assert_int_gt(json_integer_value(json_object_get(st, "outside_run")), 1000);
	ck_assert(json_is_integer(json_object_get(st, "lost")));
	ck_assert(json_is_integer(json_object_get(st, "unpaired_starts")));
	ck_assert(json_is_integer(json_object_get(st, "acquires_without_start")));
	json_decref(st);
	ms_lw_sampler_close(s);
	munmap(win, PAGE);
}
END_TEST

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A child that forks a grandchild burning CPU in a known function, under perf record. */
static __attribute__((noinline)) unsigned long ms_test_spin(unsigned long n)
{
	volatile unsigned long x = 0;

	for (unsigned long i = 0; i < n; i++)
		x += i * i;
	return x;
}

START_TEST(test_perf_record)
{
	char dir[] = "/tmp/ms_test_perf.XXXXXX", reason[256], path[512];
	int go[2], ret;
	pid_t child, perf_pid = -1;
	struct stat st;
	json_t *top = NULL, *e;
	char c = 0;
	size_t i;

	ret = ms_perf_record_check(reason, sizeof(reason));
	if (ret == MS_SKIP) {
		ck_assert(reason[0]);
		printf("# perf record: SKIP: %s\n", reason);
		ck_assert_int_eq(ms_perf_record_start("/tmp", getpid(), &perf_pid), MS_SKIP);
		return;
	}
	ck_assert_int_eq(ret, 0);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(pipe(go), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pid_t gc;

		if (read(go[0], &c, 1) != 1)
			_exit(4);
		gc = fork();
		if (gc == 0) {
			ms_test_spin(400000000UL);
			_exit(0);
		}
		_exit(gc > 0 && waitpid(gc, NULL, 0) == gc ? 0 : 5);
	}
	ret = ms_perf_record_start(dir, child, &perf_pid);
	ck_assert_int_eq(ret, 0);
	ck_assert_int_gt(perf_pid, 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	wait_ok(child);
	ck_assert_int_eq(ms_perf_record_stop(dir, perf_pid, &top), 0);
	snprintf(path, sizeof(path), "%s/perf.data", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 0);
	snprintf(path, sizeof(path), "%s/perf-top.txt", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_ptr_nonnull(top);
	ck_assert_int_gt(json_array_size(top), 0);
	ck_assert_int_le(json_array_size(top), MS_PERF_TOP);
	/* The grandchild, forked after perf attached, was followed: its spin loop is on top. */
	bool seen = false;

	json_array_foreach(top, i, e) {
		ck_assert(json_real_value(json_object_get(e, "overhead_pct")) > 0);
		if (strstr(json_string_value(json_object_get(e, "symbol")), "ms_test_spin"))
			seen = true;
	}
	diag("perf record top", top);
	ck_assert_msg(seen, "ms_test_spin not among the top symbols");
	json_decref(top);
	ck_assert_int_eq(nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("perf");
	TCase *tc = tcase_create("perf");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_spec_check);
	tcase_add_test(tc, test_spec_remove);
	tcase_add_test(tc, test_open_none);
	tcase_add_test(tc, test_compiled_out);
	tcase_add_test(tc, test_inherit_grandchild);
	tcase_add_test(tc, test_cgroup_grandchild);
	tcase_add_test(tc, test_enable_disable);
	tcase_add_test(tc, test_default_accounted);
	tcase_add_test(tc, test_missing_tracepoint);
	tcase_add_test(tc, test_tracepoints_private_ns);
	tcase_add_test(tc, test_lockwait_private_ns);
	tcase_add_test(tc, test_perf_record);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/* uffd-stall: userfaultfd faults held by a slow or absent handler, then the process is killed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject/inject_int.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"

#define UF_MAX_THREADS 16

const struct ms_injector ms_inj_uffd_stall;

static const char *const uf_modes[] = { "delay", "never", NULL };
enum { UF_DELAY, UF_NEVER };

static const struct ms_param uffd_stall_params[] = {
	{ "uffd_mode", MS_P_ENUM, "delay", "", 1, 0, uf_modes,
	  "delay: the handler resolves each fault after uffd_delay; never: faults stay "
	  "unresolved until the kill" },
	{ "uffd_delay", MS_P_TIME, "50ms", "ns", 0, 60LL * 1000000000, NULL,
	  "how long the handler sits on each fault (uffd_mode=delay)" },
	{ "uffd_bytes", MS_P_SIZE, "4M", "bytes", 1 << 16, 1LL << 34, NULL,
	  "the registered region of each stalled process" },
	{ "uffd_threads", MS_P_INT, "2", "", 1, UF_MAX_THREADS, NULL,
	  "threads faulting on the region at once" },
	{ "uffd_hold", MS_P_TIME, "500ms", "ns", 1000000, 600LL * 1000000000, NULL,
	  "how long a stalled process lives before its SIGKILL" },
	{ "uffd_fork", MS_P_BOOL, "1", "", 1, 0, NULL,
	  "the stalled process forks while its threads wait in faults (UFFD_FEATURE_EVENT_FORK: "
	  "dup_mmap of registered VMAs)" },
	MS_INV_PARAMS,
	{ NULL }
};

struct uf_state {
	int32_t helper;
	uint64_t rounds, faults, resolved, forks, kills;
	int err;
	int copy_err;			/* first UFFDIO_COPY failure */
	char why[160];
};

_Static_assert(sizeof(struct uf_state) <= MS_INJECT_STATE_BYTES, "uf_state too big");

static int uffd_open(void)
{
	return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
}

static int uffd_stall_probe(struct ms_ctx *ctx)
{
	int fd = uffd_open();

	if (fd < 0)
		return ms_skip(ctx, "userfaultfd(): %s (CONFIG_USERFAULTFD off, or "
			       "vm.unprivileged_userfaultfd)", strerror(errno));
	close(fd);
	return 0;
}

/* ---- the stalled process ---- */

struct uf_proc {
	struct ms_ctx *ctx;
	struct uf_state *st;
	int uffd;
	char *region;
	size_t len, psz;
	unsigned char *page;		/* what UFFDIO_COPY puts in */
};

struct uf_toucher {
	struct uf_proc *p;
	unsigned idx, nthreads;
};

/* Each thread touches its own share of the pages: every touch is a missing fault. */
static void *toucher(void *arg)
{
	struct uf_toucher *t = arg;
	volatile char *r = t->p->region;
	size_t pages = t->p->len / t->p->psz;

	for (size_t i = t->idx; i < pages; i += t->nthreads)
		(void)r[i * t->p->psz];
	return NULL;
}

/* False when the copy must wait: a fork event is pending (EAGAIN), so read that first. */
static bool resolve(struct uf_proc *p, uint64_t addr)
{
	struct uffdio_copy c = {
		.dst = addr & ~((uint64_t)p->psz - 1), .src = (uintptr_t)p->page, .len = p->psz,
	};

	if (!ioctl(p->uffd, UFFDIO_COPY, &c)) {
		__atomic_fetch_add(&p->st->resolved, 1, __ATOMIC_RELAXED);
		return true;
	}
	if (errno == EAGAIN)
		return false;
	if (!p->st->copy_err)
		p->st->copy_err = errno;
	return true;
}

/* Faults waiting for their copy, oldest first. */
struct uf_queue {
	uint64_t addr[64];
	unsigned n;
};

static void retry_queued(struct uf_proc *p, struct uf_queue *q)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < q->n; i++)
		if (!resolve(p, q->addr[i]))
			q->addr[kept++] = q->addr[i];
	q->n = kept;
}

static void *handler(void *arg)
{
	struct uf_proc *p = arg;
	uint64_t delay = (uint64_t)ms_param_i(p->ctx, "uffd_delay");
	bool never = ms_param_i(p->ctx, "uffd_mode") == UF_NEVER;
	struct uf_queue q = { .n = 0 };
	struct uffd_msg msg;

	for (;;) {
		struct pollfd pfd = { .fd = p->uffd, .events = POLLIN };

		if (poll(&pfd, 1, q.n ? 1 : -1) < 0 && errno != EINTR)
			return NULL;
		if (read(p->uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			retry_queued(p, &q);
			continue;
		}
		if (msg.event == UFFD_EVENT_FORK) {
			/* The child's copy of the context: not watched, closed at once. */
			close((int)msg.arg.fork.ufd);
		} else if (msg.event == UFFD_EVENT_PAGEFAULT) {
			__atomic_fetch_add(&p->st->faults, 1, __ATOMIC_RELAXED);
			if (!never && delay)
				usleep((useconds_t)(delay / 1000));
			if (!never && q.n < MS_ARRAY_SIZE(q.addr))
				q.addr[q.n++] = msg.arg.pagefault.address;
		}
		retry_queued(p, &q);
	}
}

static int uf_register(struct uf_proc *p, bool fork_ev)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = fork_ev ? UFFD_FEATURE_EVENT_FORK : 0 };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p->region, .len = p->len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (ioctl(p->uffd, UFFDIO_API, &api) || ioctl(p->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	return 0;
}

/* Runs until its SIGKILL: threads wait in faults, the main thread forks meanwhile. */
static int stalled_main(struct ms_ctx *ctx, struct uf_state *st)
{
	struct uf_toucher t[UF_MAX_THREADS];
	unsigned n = (unsigned)ms_param_i(ctx, "uffd_threads");
	bool fork_ev = ms_param_i(ctx, "uffd_fork");
	struct uf_proc p = { .ctx = ctx, .st = st, .psz = (size_t)getpagesize() };
	pthread_t th;
	pid_t child;

	inj_helper_name("uffd-stall");
	/* Its helper is its parent: if the helper goes, so does it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	p.len = (size_t)ms_param_i(ctx, "uffd_bytes") / p.psz * p.psz;
	p.uffd = uffd_open();
	p.region = mmap(NULL, p.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p.page = mmap(NULL, p.psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p.uffd < 0 || p.region == MAP_FAILED || p.page == MAP_FAILED)
		return 2;
	ms_page_fill(p.page, p.psz, ms_seed(ctx) | 1);
	if (uf_register(&p, fork_ev) || pthread_create(&th, NULL, handler, &p))
		return 3;
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct uf_toucher){ .p = &p, .idx = i, .nthreads = n };
		if (pthread_create(&th, NULL, toucher, &t[i]))
			return 4;
	}
	if (fork_ev) {
		usleep(10000);
		child = fork();
		if (child == 0)
			_exit(0);
		if (child > 0) {
			__atomic_fetch_add(&st->forks, 1, __ATOMIC_RELAXED);
			waitpid(child, NULL, 0);
		}
	}
	for (;;)
		pause();
}

static int helper_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct uf_state *st = arg;
	uint64_t hold = (uint64_t)ms_param_i(ctx, "uffd_hold");
	pid_t pid;
	int status;

	(void)idx;
	inj_helper_name("uffd");
	for (;;) {
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(stalled_main(ctx, st));
		inj_sleep(ctx, hold);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status)) {
			st->err = WEXITSTATUS(status);
			return 0;
		}
		__atomic_fetch_add(&st->kills, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&st->rounds, 1, __ATOMIC_RELAXED);
		if (ms_should_stop(ctx))
			return 0;
	}
}

static int uffd_stall_arm(struct ms_ctx *ctx)
{
	struct uf_state *st = ms_inject_state(ctx, &ms_inj_uffd_stall);
	pid_t pid = ms_spawn(ctx, helper_main, st, 0);

	if (pid < 0)
		return ms_error(ctx, -pid, "uffd-stall: spawning the helper: %s", strerror(-pid));
	st->helper = pid;
	return 0;
}

static void uffd_stall_disarm(struct ms_ctx *ctx)
{
	struct uf_state *st = ms_inject_state(ctx, &ms_inj_uffd_stall);

	inj_kill_helper(ctx, st->helper);
	ms_inject_count(ctx, &ms_inj_uffd_stall, st->faults);
	if (st->err)
		ms_note(ctx, "uffd-stall: the stalled process could not set up (step %d: mmap, "
			"UFFDIO_API/REGISTER or threads)", st->err);
	if (st->copy_err)
		ms_note(ctx, "uffd-stall: UFFDIO_COPY failed: %s", strerror(st->copy_err));
	ms_note(ctx, "uffd-stall (%s): %" PRIu64 " processes killed while stalled, %" PRIu64
		" faults seen, %" PRIu64 " resolved, %" PRIu64 " forks with faults pending",
		ms_param_s(ctx, "uffd_mode"), st->kills, st->faults, st->resolved, st->forks);
}

const struct ms_injector ms_inj_uffd_stall = {
	.name = "uffd-stall",
	.summary = "beside the workload, processes whose userfaultfd faults a handler delays or "
		   "never resolves fork and are SIGKILLed while their threads wait",
	.params = uffd_stall_params,
	.probe = uffd_stall_probe,
	.arm = uffd_stall_arm,
	.disarm = uffd_stall_disarm,
};

/* pmd-share and mshare: phase-stepped worker processes and PageTables noise, one copy. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/metrics.h"
#include "mmstorm/util.h"
#include "workloads/share_common.h"

/*
 * "VmPTE:   123 kB" through a stack buffer: these reads sit inside page-table measuring
 * windows, where a stdio buffer (malloc) could grow this process's page tables.
 */
int ms_share_read_vmpte(uint64_t *bytes)
{
	uint64_t kb;
	int ret = ms_status_kb(0, "VmPTE", &kb);

	if (!ret)
		*bytes = kb * 1024;
	return ret;
}

/*
 * PageTables in bytes. The counter is per-CPU with a fold threshold (tens to hundreds of
 * pages per CPU), so /proc/meminfo can lag by more than a whole test's worth of tables:
 * writing vm/stat_refresh folds every CPU's delta first. It is an action, not a setting
 * (nothing to restore), hence no journal.
 */
int ms_share_read_pagetables(const struct ms_share_noise *n, uint64_t *bytes)
{
	uint64_t kb;
	int ret;

	if (n->stat_refresh)
		(void)ms_write_file("/proc/sys/vm/stat_refresh", "1");
	ret = ms_meminfo_kb("PageTables", &kb);
	if (!ret)
		*bytes = kb * 1024;
	return ret;
}

/*
 * What the rest of the system does to PageTables meanwhile: the spread of reads 20 ms apart
 * over 200 ms, and how fast it moved. In a guest nothing else runs and both are 0; on a
 * shared host other processes come and go, and a check of a window of d ns can be no
 * tighter than what they do in d (measured before, so only an estimate: see the docs).
 */
#define SHARE_NOISE_READS 11
#define SHARE_NOISE_GAP_NS (20 * 1000 * 1000)

void ms_share_measure_noise(struct ms_share_noise *n)
{
	struct timespec ts = { 0, SHARE_NOISE_GAP_NS };
	uint64_t lo = UINT64_MAX, hi = 0, v;

	for (int i = 0; i < SHARE_NOISE_READS; i++) {
		if (i)
			nanosleep(&ts, NULL);
		if (ms_share_read_pagetables(n, &v))
			continue;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	n->spread = hi > lo ? hi - lo : 0;
	n->per_s = (double)n->spread * 1e9 /
		   ((SHARE_NOISE_READS - 1) * (double)SHARE_NOISE_GAP_NS);
}

uint64_t ms_share_tolerance(const struct ms_share_noise *n, uint64_t tol_param, bool in_guest,
			    uint64_t window_ns)
{
	if (tol_param)
		return tol_param;
	return (in_guest ? 8 << 10 : 64 << 10) + 4 * n->spread +
	       (uint64_t)(2 * n->per_s * (double)window_ns / 1e9);
}

/* head_bytes: the workload's control struct up to its slots (sizeof, with the flexible array). */
int ms_share_procs_init(struct ms_share_procs *pr, unsigned nprocs, size_t head_bytes,
			size_t slot_bytes)
{
	void *ctl;

	pr->pid = calloc(nprocs, sizeof(*pr->pid));
	if (!pr->pid)
		return -ENOMEM;
	pr->ctl_bytes = head_bytes + nprocs * slot_bytes;
	ctl = mmap(NULL, pr->ctl_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		return -ENOMEM;
	pr->ctl = ctl;
	pr->slots = (char *)ctl + head_bytes;
	pr->slot_bytes = slot_bytes;
	return 0;
}

void ms_share_procs_free(struct ms_share_procs *pr)
{
	if (pr->ctl)
		munmap(pr->ctl, pr->ctl_bytes);
	pr->ctl = NULL;
	free(pr->pid);
	pr->pid = NULL;
}

struct ms_share_slot *ms_share_slot(const struct ms_share_procs *pr, unsigned i)
{
	return (struct ms_share_slot *)(pr->slots + (size_t)i * pr->slot_bytes);
}

void ms_share_publish_done(struct ms_share_ctl *ctl)
{
	__atomic_add_fetch(&ctl->done, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&ctl->done);
}

/* Wait for phase k; false when the case is ending. */
static bool wait_phase(struct ms_share_ctl *ctl, uint32_t k)
{
	for (;;) {
		uint32_t ph = __atomic_load_n(&ctl->phase, __ATOMIC_SEQ_CST);

		if (__atomic_load_n(&ctl->quit, __ATOMIC_SEQ_CST))
			return false;
		if (ph >= k)
			return true;
		ms_futex_wait(&ctl->phase, ph, -1);
	}
}

/*
 * A worker after its own setup (ret): reports it, then runs each phase it is told until
 * leaves() says it is done. After a failure it only counts phases off: the case is ending.
 */
int ms_share_worker_loop(struct ms_ctx *ctx, struct ms_share_procs *pr, unsigned idx, int ret,
			 ms_share_phase_fn phase, ms_share_leaves_fn leaves, void *w)
{
	struct ms_share_ctl *ctl = pr->ctl;
	struct ms_share_slot *me = ms_share_slot(pr, idx);
	bool failed = ret != 0;

	me->status = ret;
	ms_share_publish_done(ctl);
	for (uint32_t k = 1; wait_phase(ctl, k); k++) {
		unsigned what = __atomic_load_n(&ctl->what, __ATOMIC_SEQ_CST);
		unsigned round = __atomic_load_n(&ctl->round, __ATOMIC_SEQ_CST);

		if (!failed && (ret = phase(w, what, round))) {
			if (ret < 0)
				ms_error(ctx, -ret, "process %u, phase %u: %s", idx, what,
					 strerror(-ret));
			me->status = ret;
			failed = true;
		}
		/* Leaving now is no death to report (check_alive). */
		if (leaves(idx, what))
			__atomic_store_n(&me->ended, 1, __ATOMIC_SEQ_CST);
		ms_share_publish_done(ctl);
		if (leaves(idx, what))
			break;
	}
	return 0;
}

/* A failure (-errno) wins over a SKIP (> 0). */
int ms_share_first_status(const struct ms_share_procs *pr)
{
	int ret = 0;

	for (unsigned i = 0; i < pr->nspawned; i++) {
		int s = __atomic_load_n(&ms_share_slot(pr, i)->status, __ATOMIC_SEQ_CST);

		if (s < 0 || (s > 0 && !ret))
			ret = s;
	}
	return ret;
}

/* A worker that died before its phase was done (found without reaping it). */
static int check_alive(struct ms_ctx *ctx, const struct ms_share_procs *pr)
{
	for (unsigned i = 0; i < pr->nspawned; i++) {
		siginfo_t si = { 0 };

		if (!pr->pid[i] || __atomic_load_n(&ms_share_slot(pr, i)->ended, __ATOMIC_SEQ_CST))
			continue;
		if (waitid(P_PID, (id_t)pr->pid[i], &si, WEXITED | WNOHANG | WNOWAIT))
			return ms_error(ctx, errno, "waitid(process %u): %s", i, strerror(errno));
		if (!si.si_pid)
			continue;
		if (si.si_code == CLD_EXITED)
			return ms_error(ctx, EIO, "process %u (pid %d) exited with status %d "
					"before the phase was done", i, (int)si.si_pid,
					si.si_status);
		return ms_error(ctx, EIO, "process %u (pid %d) was killed by signal %d (%s) before "
				"the phase was done", i, (int)si.si_pid, si.si_status,
				strsignal(si.si_status));
	}
	return 0;
}

int ms_share_wait_done(struct ms_ctx *ctx, struct ms_share_procs *pr, uint32_t want)
{
	uint64_t last = ms_now_ns();
	int ret;

	for (;;) {
		uint32_t d = __atomic_load_n(&pr->ctl->done, __ATOMIC_SEQ_CST);

		if (d >= want)
			return 0;
		ms_futex_wait(&pr->ctl->done, d, 20 * 1000 * 1000);
		if (ms_now_ns() - last < 500000000ULL)
			continue;
		last = ms_now_ns();
		if ((ret = check_alive(ctx, pr)))
			return ret;
	}
}

/* Start phase what (round) in every worker and wait until nworkers have done it. */
int ms_share_run_phase(struct ms_ctx *ctx, struct ms_share_procs *pr, unsigned what,
		       unsigned round, unsigned nworkers)
{
	struct ms_share_ctl *ctl = pr->ctl;
	int ret;

	__atomic_store_n(&ctl->done, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->what, what, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->round, round, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&ctl->phase, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&ctl->phase);
	if ((ret = ms_share_wait_done(ctx, pr, nworkers)))
		return ret;
	return ms_share_first_status(pr);
}

/* The control area is cleared (and any workload field set) by the caller first. */
int ms_share_spawn(struct ms_ctx *ctx, struct ms_share_procs *pr, unsigned nprocs,
		   int (*fn)(struct ms_ctx *, void *, unsigned), void *arg)
{
	for (unsigned i = 0; i < nprocs; i++) {
		pid_t pid = ms_spawn(ctx, fn, arg, i);

		if (pid < 0)
			return ms_error(ctx, -pid, "spawning process %u: %s", i, strerror(-pid));
		pr->pid[i] = pid;
		pr->nspawned++;
	}
	return ms_share_wait_done(ctx, pr, pr->nspawned) ?: ms_share_first_status(pr);
}

/*
 * End every process. After a clean run (planned), the killed() ones are blocked waiting for
 * a phase that never comes and die of SIGKILL, the others have left on their own; after a
 * failure everybody is killed. out says who did not end that way, for the caller's check.
 */
void ms_share_reap(struct ms_share_procs *pr, bool planned, ms_share_killed_fn killed,
		   struct ms_share_reaped *out)
{
	*out = (struct ms_share_reaped){ 0 };
	for (unsigned i = 0; i < pr->nspawned; i++)
		if (pr->pid[i] && (!planned || killed(i)))
			kill(pr->pid[i], SIGKILL);
	__atomic_store_n(&pr->ctl->quit, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&pr->ctl->phase, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&pr->ctl->phase);
	for (unsigned i = 0; i < pr->nspawned; i++) {
		int status = 0;

		if (!pr->pid[i])
			continue;
		while (waitpid(pr->pid[i], &status, 0) < 0 && errno == EINTR)
			;
		pr->pid[i] = 0;
		if (killed(i) ? WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL :
		    WIFEXITED(status) && !WEXITSTATUS(status))
			continue;
		if (!out->bad++) {
			out->first = i;
			out->first_status = status;
		}
	}
	pr->nspawned = 0;
}

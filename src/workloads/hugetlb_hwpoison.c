/* hugetlb-minor and hgm: one MADV_HWPOISON of a 4K piece of shared hugetlb memory, checked. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"
#include "workloads/hugetlb_hwpoison.h"

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR 4
#endif

#define HWP_HP_FMT "/sys/kernel/mm/hugepages/hugepages-%llukB/%s"
#define HWP_RECOVERY "/proc/sys/vm/memory_failure_recovery"
#define HWP_EARLY_KILL "/proc/sys/vm/memory_failure_early_kill"
#define HWP_UNPOISON "/sys/kernel/debug/hwpoison/unpoison-pfn"
#define HWP_ROLE 0x68777021ULL		/* "hwp!": the seeded choices */
#define HWP_MAX_PROBES 512		/* pieces of the poisoned huge page read after */
#define HWP_WAIT_NS (30ULL * 1000000000ULL)

/* What one read of a piece saw: a signal, or a value. */
struct hwp_seen {
	int32_t signo, code, lsb;
	uint64_t addr, val;
};

/* Shared with the two children (MAP_SHARED). */
struct hwp_ctl {
	uint32_t ready, go;		/* futexes: the mapper child mapped; it may look now */
	int32_t madv_err;		/* 0, an errno, or -1: the call ended in the signal */
	uint64_t lat_ns, pfn;
	struct hwp_seen sig;		/* what the poisoner got at once */
};

struct hwp_counts {
	uint64_t hc_kb, nr, fr, rs, sp;
};

/*
 * The signal handler needs somewhere to jump to and to leave what it saw: per thread, since
 * the faulting thread is the one signalled (the uffd handler threads never touch the range).
 */
static __thread sigjmp_buf *hwp_jmp;
static __thread struct hwp_seen hwp_got;
static __thread uint64_t hwp_sig_ns;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* Not from read_catch(): die of it as if no handler were there (the access repeats). */
	if (!hwp_jmp) {
		signal(sig, SIG_DFL);
		return;
	}
	hwp_sig_ns = ms_now_ns();
	hwp_got.signo = sig;
	hwp_got.code = si->si_code;
	hwp_got.addr = (uintptr_t)si->si_addr;
	hwp_got.lsb = si->si_addr_lsb;
	siglongjmp(*hwp_jmp, 1);
}

static int catch_sigbus(struct sigaction *old)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, old) ? -errno : 0;
}

/* One 8-byte read: 0 and *seen->val, or 1 with the signal in *seen. */
static int read_catch(const volatile uint64_t *p, struct hwp_seen *seen)
{
	sigjmp_buf jb;

	memset(seen, 0, sizeof(*seen));
	hwp_jmp = &jb;
	if (sigsetjmp(jb, 1)) {
		hwp_jmp = NULL;
		*seen = hwp_got;
		return 1;
	}
	seen->val = *p;
	hwp_jmp = NULL;
	return 0;
}

/* ---- counters ---- */

static int hp_read(const struct ms_hwp *h, const char *name, uint64_t *v)
{
	char path[160];

	snprintf(path, sizeof(path), HWP_HP_FMT, (unsigned long long)h->hpage_bytes >> 10, name);
	return ms_read_u64(path, v);
}

static int counts_read(struct ms_ctx *ctx, const struct ms_hwp *h, struct hwp_counts *c)
{
	int ret;

	if ((ret = ms_meminfo_kb("HardwareCorrupted", &c->hc_kb)) ||
	    (ret = hp_read(h, "nr_hugepages", &c->nr)) ||
	    (ret = hp_read(h, "free_hugepages", &c->fr)) ||
	    (ret = hp_read(h, "resv_hugepages", &c->rs)) ||
	    (ret = hp_read(h, "surplus_hugepages", &c->sp)))
		return ms_error(ctx, -ret, "reading HardwareCorrupted and the hugetlb counters: %s",
				strerror(-ret));
	return 0;
}

static void counts_check(struct ms_ctx *ctx, const char *what, const struct hwp_counts *got,
			 const struct hwp_counts *want)
{
	ms_check(ctx, !memcmp(got, want, sizeof(*got)), what, "HardwareCorrupted %" PRIu64 " kB "
		 "(expected %" PRIu64 "), HugePages_Total %" PRIu64 " (%" PRIu64 "), Free %" PRIu64
		 " (%" PRIu64 "), Rsvd %" PRIu64 " (%" PRIu64 "), Surp %" PRIu64 " (%" PRIu64 ")",
		 got->hc_kb, want->hc_kb, got->nr, want->nr, got->fr, want->fr, got->rs, want->rs,
		 got->sp, want->sp);
}

/* ---- the seeded choices ---- */

static uint64_t piece_of(const struct ms_hwp *h)
{
	return ms_stamp(h->seed ^ HWP_ROLE, 0, 0) % (h->len / h->psz);
}

/* Probe k of the poisoned huge page: all pieces, or the ends, the piece and seeded others. */
static uint64_t probe_piece(const struct ms_hwp *h, uint64_t first, uint64_t k)
{
	uint64_t per = h->hpage_bytes / h->psz;

	if (per <= HWP_MAX_PROBES)
		return first + k;
	if (k < 3)
		return k == 0 ? first : k == 1 ? first + per - 1 : piece_of(h);
	return first + ms_stamp(h->seed ^ HWP_ROLE, k, 1) % per;
}

static uint64_t nprobes(const struct ms_hwp *h)
{
	uint64_t per = h->hpage_bytes / h->psz;

	return per < HWP_MAX_PROBES ? per : HWP_MAX_PROBES;
}

/* ---- what a mapper sees after the poison ---- */

/* One kind of unexpected outcome: how many, and the first one. */
struct hwp_bad {
	uint64_t n, piece;
	struct hwp_seen seen;
};

struct hwp_tally {
	uint64_t probes, lost, sigbus;
	struct hwp_bad sig;		/* a lost piece read without the expected signal */
	struct hwp_bad data;		/* a piece meant to survive that SIGBUSed or differs */
	int32_t lsb;			/* of the first poisoned read */
};

static void bad_add(struct hwp_bad *b, uint64_t p, const struct hwp_seen *s)
{
	if (!b->n++) {
		b->piece = p;
		b->seen = *s;
	}
}

static void probe_one(const struct ms_hwp *h, const char *base, uint64_t p, uint64_t lo,
		      uint64_t hi, struct hwp_tally *t)
{
	uint64_t off = ms_stamp(h->seed ^ HWP_ROLE, p, 2) % (h->psz / 8) * 8;
	uint64_t want_addr = (uintptr_t)base + p * h->psz + off;
	bool lost = p * h->psz >= lo && p * h->psz < hi;
	struct hwp_seen s;
	int sig = read_catch((const volatile uint64_t *)(base + p * h->psz + off), &s);

	t->probes++;
	t->lost += lost;
	t->sigbus += sig;
	if (lost && sig && !t->lsb)
		t->lsb = s.lsb;
	if (lost && (!sig || s.code != BUS_MCEERR_AR || s.addr != want_addr ||
		     s.lsb != ms_log2_u64(h->lost_bytes)))
		bad_add(&t->sig, p, &s);
	else if (!lost && (sig || ms_page_check(base + p * h->psz, h->psz, h->fill(h->arg, p),
						0) != MS_PAGE_MATCH))
		bad_add(&t->data, p, &s);
}

/* The huge page holding the piece: every probe of the lost range must raise SIGBUS. */
static void check_after(struct ms_ctx *ctx, const struct ms_hwp *h, const char *who,
			const char *base)
{
	uint64_t piece = piece_of(h), per = h->hpage_bytes / h->psz;
	uint64_t first = piece / per * per, lo, hi, bad = 0, bad_page = 0;
	struct hwp_tally t = { 0 };
	char what[128];

	lo = piece * h->psz / h->lost_bytes * h->lost_bytes;
	hi = lo + h->lost_bytes;
	for (uint64_t k = 0; k < nprobes(h); k++)
		probe_one(h, base, probe_piece(h, first, k), lo, hi, &t);
	snprintf(what, sizeof(what), "%s: a read of a lost piece raises SIGBUS BUS_MCEERR_AR "
		 "with si_addr_lsb %d at the faulting address", who, ms_log2_u64(h->lost_bytes));
	ms_check(ctx, !t.sig.n, what, "%" PRIu64 " of %" PRIu64 " lost pieces read wrong; first: "
		 "piece %" PRIu64 ": signal %d code %d addr %#" PRIx64 " lsb %d", t.sig.n, t.lost,
		 t.sig.piece, t.sig.seen.signo, t.sig.seen.code, t.sig.seen.addr, t.sig.seen.lsb);
	snprintf(what, sizeof(what), "%s: the rest of the poisoned huge page keeps its data", who);
	ms_check(ctx, !t.data.n, what, "%" PRIu64 " of %" PRIu64 " pieces read were lost or "
		 "differ from the model (%" PRIu64 " SIGBUS in all); first: piece %" PRIu64 ": "
		 "signal %d code %d lsb %d", t.data.n, t.probes - t.lost, t.sigbus, t.data.piece,
		 t.data.seen.signo, t.data.seen.code, t.data.seen.lsb);
	if (t.lsb)
		ms_gauge(ctx, h->m_lsb, t.lsb);
	for (uint64_t p = 0; p < h->len / h->psz; p++) {
		struct hwp_seen s;

		if (p >= first && p < first + per)
			continue;
		/* A 4K page that reads once is mapped whole: the rest of it cannot SIGBUS. */
		if ((read_catch((const volatile uint64_t *)(base + p * h->psz), &s) ||
		     ms_page_check(base + p * h->psz, h->psz, h->fill(h->arg, p), 0) !=
		     MS_PAGE_MATCH) && !bad++)
			bad_page = p;
	}
	snprintf(what, sizeof(what), "%s: the other huge pages keep their data", who);
	ms_check(ctx, !bad, what, "%" PRIu64 " pieces lost or differ from the model; first: piece %"
		 PRIu64 " (address %p)", bad, bad_page, (void *)(base + bad_page * h->psz));
}

/* ---- the children ---- */

struct hwp_job {
	const struct ms_hwp *h;
	struct hwp_ctl *ctl;
};

static int wait_flag(uint32_t *f)
{
	uint64_t t0 = ms_now_ns();

	while (!__atomic_load_n(f, __ATOMIC_SEQ_CST)) {
		if (ms_now_ns() - t0 > HWP_WAIT_NS)
			return -ETIMEDOUT;
		ms_futex_wait(f, 0, 100 * 1000 * 1000);
	}
	return 0;
}

static void set_flag(uint32_t *f)
{
	__atomic_store_n(f, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(f);
}

/* A second mapper: maps every piece before the poison, then looks at what it has left. */
static int mapper_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct hwp_job *job = arg;
	const struct ms_hwp *h = job->h;
	uint64_t bad = 0;

	(void)idx;
	for (uint64_t p = 0; p < h->len / h->psz; p++)
		bad += ms_page_check(h->map + p * h->psz, h->psz, h->fill(h->arg, p), 0) !=
		       MS_PAGE_MATCH;
	ms_check(ctx, !bad, "child mapper: the range before the poison", "%" PRIu64 " pieces "
		 "differ from the model", bad);
	set_flag(&job->ctl->ready);
	if (wait_flag(&job->ctl->go) || catch_sigbus(NULL))
		return 2;
	check_after(ctx, h, "child mapper", h->map);
	return 0;
}

static uint64_t pfn_of(const void *addr, size_t psz)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (off_t)((uintptr_t)addr / psz * 8)) != 8 || !(e >> 63))
		e = 0;
	close(fd);
	return e & ((1ULL << 55) - 1);
}

/*
 * The poisoner maps the piece (GUP does), so MF_ACTION_REQUIRED sends it BUS_MCEERR_AR at
 * once: caught here, so the child reports instead of dying.
 */
static int poisoner_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct hwp_job *job = arg;
	const struct ms_hwp *h = job->h;
	struct hwp_ctl *ctl = job->ctl;
	char *piece = h->map + piece_of(h) * h->psz;
	sigjmp_buf jb;
	uint64_t t0;

	(void)ctx;
	(void)idx;
	if (catch_sigbus(NULL))
		return 2;
	(void)*(volatile char *)piece;
	ctl->pfn = pfn_of(piece, h->psz);
	hwp_jmp = &jb;
	t0 = ms_now_ns();
	if (sigsetjmp(jb, 1)) {
		ctl->lat_ns = hwp_sig_ns - t0;
		ctl->sig = hwp_got;
		ctl->madv_err = -1;
		return 0;
	}
	ctl->madv_err = madvise(piece, h->psz, MADV_HWPOISON) ? errno : 0;
	ctl->lat_ns = ms_now_ns() - t0;
	return 0;
}

/* ---- the steps ---- */

static int spawn(struct ms_ctx *ctx, int (*fn)(struct ms_ctx *, void *, unsigned),
		 struct hwp_job *job, pid_t *pid, const char *who)
{
	*pid = ms_spawn(ctx, fn, job, 0);
	if (*pid < 0)
		return ms_error(ctx, -*pid, "spawning the %s: %s", who, strerror(-*pid));
	return 0;
}

static int reap(struct ms_ctx *ctx, pid_t pid, const char *who)
{
	int ret = ms_wait(ctx, pid);

	if (ret)
		return ms_error(ctx, ret < 0 ? -ret : EIO, "the %s %s", who, ret == -EINTR ?
				"was killed by a signal" : "failed");
	return 0;
}

/* What the poisoning call said; a refusal the kernel documents is a SKIP. */
static int check_poisoner(struct ms_ctx *ctx, const struct ms_hwp *h, const struct hwp_ctl *c)
{
	uintptr_t off = piece_of(h) * h->psz, piece = (uintptr_t)h->map + off;
	uintptr_t in_alias = h->alias ? (uintptr_t)h->alias + off : piece;
	int shift = ms_log2_u64(h->judge_poisoner_lsb ? h->lost_bytes : h->hpage_bytes);

	if (c->madv_err == EPERM)
		return ms_skip(ctx, "MADV_HWPOISON: EPERM (needs CAP_SYS_ADMIN)");
	if (c->madv_err == EINVAL)
		return ms_skip(ctx, "MADV_HWPOISON: EINVAL (kernel without CONFIG_MEMORY_FAILURE)");
	if (c->madv_err > 0)
		return ms_error(ctx, c->madv_err, "madvise(MADV_HWPOISON) of piece %" PRIu64 ": %s",
				piece_of(h), strerror(c->madv_err));
	ms_sample(ctx, h->m_lat, c->lat_ns);
	ms_gauge(ctx, h->m_told, c->madv_err == -1);
	if (c->madv_err == 0) {
		/* Seen on Debian 6.1 (cause not traced): later readers are still signalled. */
		ms_note(ctx, "poisoned piece %" PRIu64 " (pfn %#" PRIx64 ") in %" PRIu64 " ns; "
			"madvise returned 0 and the poisoner was not signalled (6.12 sends it "
			"BUS_MCEERR_AR at once)", piece_of(h), c->pfn, c->lat_ns);
		return 0;
	}
	ms_note(ctx, "poisoned piece %" PRIu64 " (pfn %#" PRIx64 ") in %" PRIu64 " ns; the "
		"poisoner got signal %d code %d addr %#" PRIx64 " lsb %d", piece_of(h), c->pfn,
		c->lat_ns, c->sig.signo, c->sig.code, c->sig.addr, c->sig.lsb);
	/*
	 * kill_proc(): current gets BUS_MCEERR_AR with the lsb of the compound page, once per VMA
	 * of its mm that maps the file (collect_procs_file()); SIGBUS does not queue, so the
	 * address is the piece in whichever of its mappings came first.
	 */
	ms_check(ctx, c->sig.code == BUS_MCEERR_AR && (c->sig.addr == piece ||
		 c->sig.addr == in_alias) && (!h->judge_poisoner_lsb || c->sig.lsb == shift),
		 "the poisoner's own signal is BUS_MCEERR_AR for the piece", "signal %d code %d "
		 "addr %#" PRIx64 " (piece %#" PRIxPTR " or %#" PRIxPTR ") lsb %d (expected %d%s)",
		 c->sig.signo, c->sig.code, c->sig.addr, piece, in_alias, c->sig.lsb, shift,
		 h->judge_poisoner_lsb ? "" : ", not judged");
	return 0;
}

/* Poison with both mappers in place, then let each of them look. */
static int poison_and_look(struct ms_ctx *ctx, const struct ms_hwp *h, struct hwp_ctl *ctl,
			   const struct hwp_counts *c0)
{
	struct hwp_job job = { h, ctl };
	struct hwp_counts c1, want = *c0;
	pid_t mapper, poisoner;
	int ret;

	if ((ret = spawn(ctx, mapper_main, &job, &mapper, "child mapper")))
		return ret;
	if (wait_flag(&ctl->ready)) {
		ret = ms_error(ctx, ETIMEDOUT, "the child mapper did not map the range in time");
		goto out_mapper;
	}
	if ((ret = spawn(ctx, poisoner_main, &job, &poisoner, "poisoner")) ||
	    (ret = reap(ctx, poisoner, "poisoner")) || (ret = check_poisoner(ctx, h, ctl)) ||
	    (ret = counts_read(ctx, h, &c1)))
		goto out_mapper;
	/* action_result() counts one raw page; the file still holds the huge page. */
	want.hc_kb += h->psz >> 10;
	counts_check(ctx, "after the poison: HardwareCorrupted +4 kB, hugetlb counters unchanged",
		     &c1, &want);
	check_after(ctx, h, "parent", h->map);
	if (h->alias)
		check_after(ctx, h, "parent's second mapping", h->alias);
out_mapper:
	set_flag(&ctl->go);
	if (reap(ctx, mapper, "child mapper") && !ret)
		ret = -EIO;
	return ret;
}

/*
 * Without unpoison the held huge page is gone for good: one more in the pool (journaled) so a
 * next iteration finds as many free pages as its file needs.
 */
static void replace_lost(struct ms_ctx *ctx, const struct ms_hwp *h, const struct hwp_counts *c2)
{
	char path[160], v[32];
	int ret;

	snprintf(path, sizeof(path), HWP_HP_FMT, (unsigned long long)h->hpage_bytes >> 10,
		 "nr_hugepages");
	snprintf(v, sizeof(v), "%" PRIu64, c2->nr + 1);
	ret = ms_knob_write(ctx, path, v);
	ms_note(ctx, "nr_hugepages %" PRIu64 " -> %s to replace the lost page (journaled): %s",
		c2->nr, v, ret ? strerror(-ret) : "ok");
}

static int unpoison(struct ms_ctx *ctx, const struct ms_hwp *h, const struct hwp_ctl *ctl,
		    const struct hwp_counts *c0, const struct hwp_counts *c2)
{
	uint64_t per = h->hpage_bytes / h->psz, head = ctl->pfn / per * per;
	struct hwp_counts c3, want = *c2;
	char v[32];
	int ret;

	if (!ctl->pfn || access(HWP_UNPOISON, W_OK)) {
		ms_note(ctx, "no unpoison (%s): huge page at pfn %#" PRIx64 " stays poisoned and held "
			"by memory_failure() until reboot: in HugePages_Total, not in Free",
			ctl->pfn ? "no " HWP_UNPOISON ": CONFIG_HWPOISON_INJECT off or debugfs not "
			"mounted" : "the pfn was hidden", head);
		replace_lost(ctx, h, c2);
		return 0;
	}
	/* unpoison_memory() wants the pfn that carries PG_hwpoison: the head of a hugetlb folio. */
	snprintf(v, sizeof(v), "%#" PRIx64, head);
	ret = ms_write_file(HWP_UNPOISON, v);
	ms_check(ctx, !ret, "unpoison-pfn of the free huge page's head", "write %s: %s", v,
		 ret ? strerror(-ret) : "ok");
	if (ret) {
		replace_lost(ctx, h, c2);
		return 0;
	}
	if ((ret = counts_read(ctx, h, &c3)))
		return ret;
	/* unpoison_memory() drops the kept reference: free_huge_folio() enqueues the page. */
	want.hc_kb = c0->hc_kb;
	want.fr++;
	counts_check(ctx, "after unpoison: HardwareCorrupted back, the huge page free again",
		     &c3, &want);
	return 0;
}

int ms_hwp_run(struct ms_ctx *ctx, const struct ms_hwp *h)
{
	struct hwp_counts c0, c2, want;
	struct sigaction old;
	struct hwp_ctl *ctl;
	int ret;

	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		return ms_error(ctx, errno, "mmap(control): %s", strerror(errno));
	if ((ret = catch_sigbus(&old))) {
		ret = ms_error(ctx, -ret, "sigaction(SIGBUS): %s", strerror(-ret));
		goto out_unmap;
	}
	if ((ret = counts_read(ctx, h, &c0)) || (ret = poison_and_look(ctx, h, ctl, &c0)))
		goto out_sig;
	if ((ret = h->release(ctx, h->arg)) || (ret = counts_read(ctx, h, &c2)))
		goto out_sig;
	/*
	 * memory_failure() keeps the reference madvise's GUP took (MF_COUNT_INCREASED; me_huge_page()
	 * does not drop it for a page cache folio): the poisoned huge page is never freed, so it
	 * stays counted in HugePages_Total but not in Free until unpoison drops that reference.
	 */
	want = c0;
	want.hc_kb += h->psz >> 10;
	want.fr += h->len / h->hpage_bytes - 1;
	counts_check(ctx, "after release: every huge page back on the free list but the poisoned "
		     "one", &c2, &want);
	ret = unpoison(ctx, h, ctl, &c0, &c2);
out_sig:
	if (sigaction(SIGBUS, &old, NULL) && !ret)
		ret = ms_error(ctx, errno, "sigaction(SIGBUS): %s", strerror(errno));
out_unmap:
	if (munmap(ctl, sizeof(*ctl)) && !ret)
		ret = ms_error(ctx, errno, "munmap(control): %s", strerror(errno));
	return ret;
}

/* ---- probe, metrics ---- */

int ms_hwp_probe(struct ms_ctx *ctx)
{
	uint64_t kb, early = 0;
	int ret;

	if (!ms_destructive_ok(ctx))
		return ms_skip(ctx, "scenario=hwpoison is destructive (MADV_HWPOISON takes memory "
			       "out of service until unpoison or reboot): refused on bare metal "
			       "without --allow-destructive; it runs under `mmstorm vm`");
	if (access(HWP_RECOVERY, F_OK) || ms_meminfo_kb("HardwareCorrupted", &kb))
		return ms_skip(ctx, "no " HWP_RECOVERY " or HardwareCorrupted (kernel without "
			       "CONFIG_MEMORY_FAILURE)");
	/* Early kill would signal every mapper at poison time: the checks expect late kills. */
	if (ms_read_u64(HWP_EARLY_KILL, &early) || !early)
		return 0;
	if ((ret = ms_knob_write(ctx, HWP_EARLY_KILL, "0")))
		return ms_skip(ctx, HWP_EARLY_KILL " is 1 and writing 0 failed: %s",
			       strerror(-ret));
	ms_note(ctx, HWP_EARLY_KILL " was 1; set 0 (journaled, restored after the case)");
	return 0;
}

int ms_hwp_metrics(struct ms_ctx *ctx, struct ms_hwp *h)
{
	const struct ms_metric_spec m[] = {
		{ &h->m_lat, "hwpoison_ns", MS_M_HIST, "ns" },
		{ &h->m_lsb, "sigbus_lsb", MS_M_GAUGE, "bits" },
		{ &h->m_told, "poisoner_signalled", MS_M_GAUGE, "bool" },
	};

	return ms_metrics(ctx, m, MS_ARRAY_SIZE(m));
}

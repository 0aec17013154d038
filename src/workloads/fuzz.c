/* fuzz: model-based random op sequences, checked after every op, shrunk to a C reproducer. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>

#include "model/fzrt.h"
#include "mmstorm/fuzz.h"
#include "mmstorm/kmsg.h"
#include "mmstorm/refmodel.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"

#define FZ_REPLAY_PARAMS 8
#define FZ_CORPUS_MAX 64
#define FZ_SEQ_TIMEOUT_MS 60000
#define FZ_THP_STATS 6

_Static_assert((int)MS_FZRT_UNPIN == (int)MS_FZ_UNPIN &&
	       (int)MS_FZRT_COLLAPSE == (int)MS_FZ_COLLAPSE &&
	       (int)MS_FZRT_PIN_WRITE == (int)MS_FZ_PIN_WRITE &&
	       (int)MS_FZRT_PIN_GUP == (int)MS_FZ_PIN_GUP &&
	       (int)MS_FZRT_UFFD_REG == (int)MS_FZ_UFFD_REG &&
	       (int)MS_FZRT_FILE_WRITE == (int)MS_FZ_FILE_WRITE &&
	       (int)MS_FZRT_CONTINUE == (int)MS_FZ_CONTINUE &&
	       (int)MS_FZRT_FILE_HUGETLB == (int)MS_FZ_FILE_HUGETLB,
	       "the runtime's op kinds are fuzz.h's");
_Static_assert(MS_FZRT_PROCS == MS_FZ_MAX_PROCS && MS_FZRT_MAX_N == MS_FZ_MAX_SLOTS &&
	       MS_FZRT_FILE_SLOTS == MS_FZ_FILE_SLOTS,
	       "the runtime's limits are fuzz.h's");

/* How a sequence went; the order is the shrinker's: a candidate must fail the same way. */
enum {
	FZ_OK, FZ_DATA, FZ_STRAY_WP, FZ_WP, FZ_OP, FZ_PAT, FZ_KMSG, FZ_DIED, FZ_HANG, FZ_ERROR,
	FZ_PTE, FZ_CONT, FZ_NKINDS
};

/* Distinct failures one run may report (max_failures). */
#define FZ_MAX_DISTINCT 16
/*
 * Shrinking costs hundreds of runs; a run that keeps hitting one failure would spend its
 * time shrinking the same thing. After this many shrinks of one kind, further failures of
 * that kind are only counted.
 */
#define FZ_SHRINKS_PER_KIND 3		/* the max_failures help text says 3 */

static const char *const fz_kind_names[FZ_NKINDS] = {
	[FZ_OK] = "pass", [FZ_DATA] = "contents differ from the model",
	[FZ_STRAY_WP] = "uffd-wp bit outside a uffd-wp VMA",
	[FZ_WP] = "uffd-wp bit differs from the model", [FZ_OP] = "op failed unexpectedly",
	[FZ_PAT] = "PAT memtype list not as the model expects", [FZ_KMSG] = "kernel log",
	[FZ_DIED] = "a process died", [FZ_HANG] = "sequence hung", [FZ_ERROR] = "harness error",
	[FZ_PTE] = "file-window PTE presence differs from the model",
	[FZ_CONT] = "UFFDIO_CONTINUE result differs from the model",
};

/* What a worker writes back (MAP_SHARED). */
struct fz_res {
	int32_t kind, step;
	char msg[400];
	int8_t ran[MS_FZ_MAX_OPS];
	uint64_t part[MS_FZ_MAX_OPS];	/* what ms_fzrt_partial() saw of a failed injected op */
	uint32_t counts[MS_FZ_KIND_COUNT];
	uint32_t injected[MS_FZ_KIND_COUNT];	/* ops that failed as fail-nth made them */
	uint8_t trans[MS_FZ_KIND_COUNT][MS_FZ_STATES];
	uint32_t minor_faults;		/* resolved by the runtime's monitor (CONTINUE) */
};

struct fz {
	struct ms_ctx *ctx;
	struct ms_fz_gen_cfg g;
	uint64_t seeds[16];
	unsigned nseeds;
	int64_t budget_ns, shrink_ns;
	unsigned max_shrink, max_failures;
	/* dedup of failures: how often each kind was shrunk; each distinct failure's text */
	unsigned kind_shrinks[FZ_NKINDS];
	uint64_t unshrunk[FZ_NKINDS];
	uint64_t sig[FZ_MAX_DISTINCT];
	int32_t sig_kind[FZ_MAX_DISTINCT];
	bool judge_kmsg, have_pat;
	bool log_on;			/* the kmsg watch runs: judge_kmsg, or PAT's failed frees */
	bool pat_legacy;		/* judge PAT by the model of pre-rework tracking */
	uint64_t pat_known, pat_unjudged;	/* sequences: the kernel's own leaks; no verdict */
	/* What the kernel logged during the sequence running now (the kmsg watch's hook). */
	struct fz_log {
		unsigned nbad;		/* classified lines the PAT model does not explain */
		char first[256];
		struct ms_fz_pat_range freed[MS_FZ_PAT_MAX];	/* failed frees in the window */
		unsigned nfreed;
	} log;
	char no_uffd[160], no_pfn[160], no_nth[160], no_uring[160], no_gup[160], no_thp[160];
	char no_file[200];
	struct fz_res *res;
	struct ms_kmsg_watch kw;
	/* totals */
	uint64_t nseq, counts[MS_FZ_KIND_COUNT], injected[MS_FZ_KIND_COUNT], minor_faults;
	uint64_t thp0[FZ_THP_STATS];	/* /proc/vmstat when the first sequence began */
	uint8_t trans[MS_FZ_KIND_COUNT][MS_FZ_STATES];
	unsigned ntrans;
	json_t *corpus, *failures;
	int m_seq, m_trans, m_fail;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- one sequence, in a worker process ---- */

static void to_rt(const struct ms_fz_op *op, unsigned child, struct ms_fzrt_op *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = op->kind;
	r->proc = op->proc;
	r->flags = op->flags;
	r->nth = op->nth;
	r->first = op->first;
	r->n = op->n;
	r->to = op->to;
	r->n2 = op->n2;
	r->pin = op->pin;
	r->child = (int)child;
}

static unsigned wants(const struct ms_fz_model *m, struct ms_fzrt_want *w, char *wp0)
{
	struct ms_rm_want x;
	unsigned n = 0;

	for (unsigned p = 0; p < MS_FZ_MAX_PROCS; p++)
		for (unsigned s = 0; ms_rm_alive(m->rm, p) && s < m->nslots; s++) {
			if (ms_rm_expect(m->rm, p, s, &x) || x.view != MS_RM_V_DATA)
				continue;
			w[n++] = (struct ms_fzrt_want){ .proc = (int)p, .slot = (int)s,
							.has_alt = x.has_alt, .fill = x.fill,
							.alt = x.alt };
		}
	for (unsigned s = 0; s < m->nslots; s++)
		wp0[s] = (char)('0' + m->wp[s]);
	wp0[m->nslots] = 0;
	return n;
}

static void bad(struct fz_res *r, int kind, int step, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void bad(struct fz_res *r, int kind, int step, const char *fmt, ...)
{
	va_list ap;

	r->kind = kind;
	r->step = step;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

static const int check_kind[] = {
	[MS_FZRT_BAD_DATA] = FZ_DATA, [MS_FZRT_BAD_STRAY_WP] = FZ_STRAY_WP,
	[MS_FZRT_BAD_WP] = FZ_WP, [MS_FZRT_BAD_IO] = FZ_DIED, [MS_FZRT_BAD_PTE] = FZ_PTE,
};

/*
 * Where the model allowed two contents (a lazy-free page), tell it which one is there, so that
 * later ops (a pin of a discarded page) expect what follows from it.
 */
static void observe(struct ms_fz_model *m, struct ms_fzrt *rt, const struct ms_fzrt_want *w,
		    unsigned nw)
{
	static uint64_t page[MS_FZRT_PAGE / 8];

	for (unsigned i = 0; i < nw; i++)
		if (w[i].has_alt &&
		    !ms_fzrt_read(rt, (unsigned)w[i].proc, (unsigned)w[i].slot, page) &&
		    ms_fzrt_diff(page, w[i].fill) >= 0)
			ms_rm_observe(m->rm, (unsigned)w[i].proc, (uint32_t)w[i].slot, w[i].alt);
}

/* Model first where the model may refuse (then the op is skipped, not run). */
static bool model_first(const struct ms_fz_op *op)
{
	if (op->nth)
		return false;	/* the model follows what the kernel did */
	if (ms_fz_is_pin(op->kind) || op->kind == MS_FZ_UNPIN || op->kind == MS_FZ_PIN_WRITE)
		return true;
	return op->kind <= MS_FZ_MIGRATE;
}

/*
 * An injected op: would the model take it now, which pin id would it get, and which fills
 * would a PIN_WRITE write (those the model gives it should it succeed)?
 */
static int trial(const struct ms_fz_seq *s, unsigned i, const struct fz_res *r,
		 struct ms_fzrt_op *rop)
{
	static struct ms_fz_model t;
	struct ms_rm_op rm;
	int ret = ms_fz_model_replay(&t, s, i, r->ran, r->part);

	if (!ret && !(ret = ms_fz_model_check(&t, &s->ops[i], NULL)))
		ret = ms_fz_model_apply(&t, &s->ops[i], &rm);
	if (!ret && ms_fz_is_pin(s->ops[i].kind))
		rop->pin = rm.out;
	for (unsigned k = 0; !ret && s->ops[i].kind == MS_FZ_PIN_WRITE && k < s->ops[i].n; k++)
		rop->fill[k] = ms_rm_fill(t.rm, &rm, k);
	ms_fz_model_fini(&t);
	return ret;
}

/* A file op's inputs from the model before it runs: its fills, CONTINUE's expected result. */
static void file_inputs(const struct ms_fz_model *m, const struct ms_fz_op *op,
			struct ms_fzrt_op *rop)
{
	if (op->kind == MS_FZ_CONTINUE)
		ms_fz_model_continue(m, op, &rop->want_ret, &rop->want_mapped);
	for (unsigned k = 0; k < op->n && (op->kind == MS_FZ_FILE_WRITE ||
					  op->kind == MS_FZ_FILE_FILL); k++)
		rop->fill[k] = ms_fz_model_file_fill(m, op, k);
}

/* The file window against the model: page cache, process 0's PTEs, what each process reads. */
static int check_file(const struct ms_fz_model *m, struct ms_fzrt *rt, char *msg, size_t len)
{
	char pte0[MS_FZ_FILE_SLOTS + 1];

	if (!m->file)
		return MS_FZRT_OK;
	for (unsigned s = 0; s < MS_FZ_FILE_SLOTS; s++)
		pte0[s] = (char)('0' + m->fpte[s]);
	pte0[MS_FZ_FILE_SLOTS] = 0;
	return ms_fzrt_check_file(rt, m->fcache, pte0, msg, len);
}

/* Run op i of s; false when the sequence stops here (a failure was recorded). */
static bool step(struct ms_fz_model *m, struct ms_fzrt *rt, const struct ms_fz_seq *s, unsigned i,
		 struct fz_res *r)
{
	const struct ms_fz_op *op = &s->ops[i];
	static struct ms_fzrt_want w[MS_FZ_MAX_PROCS * MS_FZ_MAX_SLOTS];
	char wp0[MS_FZ_MAX_SLOTS + 1], text[96], msg[400];
	struct ms_fzrt_op rop;
	struct ms_rm_op rm;
	unsigned child = 0, st, nw;
	int ret;

	r->ran[i] = -1;
	if (ms_fz_model_check(m, op, &child))
		return true;
	st = ms_fz_model_state(m, op);
	to_rt(op, child, &rop);
	ms_fz_op_str(op, text, sizeof(text));
	/* mremap needs one VMA: the layout is the kernel's business, not the model's. */
	rop.dry = 1;
	if (ms_fzrt_run(rt, &rop) == MS_FZRT_SKIP)
		return true;
	rop.dry = 0;
	/* UNPIN: what the pin must hold, taken before the model lets it go. */
	if (op->kind == MS_FZ_UNPIN)
		rop.n = (int)ms_fz_model_pin_wants(m, op->pin, rop.fill, rop.alt, &rop.alt_mask);
	if (model_first(op)) {
		if (ms_fz_model_apply(m, op, &rm))
			return true;
		rop.pin = ms_fz_is_pin(op->kind) ? rm.out : op->pin;
		for (unsigned k = 0; k < op->n && (op->kind == MS_FZ_WRITE ||
						  op->kind == MS_FZ_PIN_WRITE); k++)
			rop.fill[k] = ms_rm_fill(m->rm, &rm, k);
	}
	if (op->nth && op->kind != MS_FZ_FORK && trial(s, i, r, &rop))
		return true;
	if (ms_fz_is_file(op->kind))
		file_inputs(m, op, &rop);
	ret = ms_fzrt_run(rt, &rop);
	if (ret == MS_FZRT_CONT_DIFF) {
		bad(r, FZ_CONT, (int)i, "%s: UFFDIO_CONTINUE returned %ld, mapped %ld, the model "
		    "says %ld, mapped %ld", text, rt->cont_ret, rt->cont_mapped, rop.want_ret,
		    rop.want_mapped);
		return false;
	}
	if (ret == MS_FZRT_PIN_DIFF) {
		bad(r, FZ_DATA, (int)i, "%s: the reference holds other bytes: page %d, first "
		    "differing byte at offset %ld: want 0x%02x, got 0x%02x", text, rt->bad->page,
		    rt->bad->off, rt->bad->want, rt->bad->got);
		return false;
	}
	if (ret < 0 && op->nth) {
		/* The injected fault made it fail: the model takes what the failure left. */
		r->part[i] = op->kind == MS_FZ_FORK ? 0 : ms_fzrt_partial(rt, &rop);
		if (ms_fz_model_fail(m, op, r->part[i])) {
			bad(r, FZ_OP, (int)i, "%s failed (%s) and left a state its failure "
			    "does not allow: slot mask %#llx of the range shows its effect", text,
			    strerror(-ret), (unsigned long long)r->part[i]);
			return false;
		}
		r->injected[op->kind]++;
		r->ran[i] = 0;
	} else if (ret) {
		bad(r, ret == -EPIPE ? FZ_DIED : FZ_OP, (int)i, "%s: %s", text,
		    ret == MS_FZRT_SKIP ? "VMA layout changed" : strerror(-ret));
		return false;
	} else {
		r->ran[i] = 1;
		if (!model_first(op) && (ret = ms_fz_model_apply(m, op, NULL))) {
			bad(r, FZ_ERROR, (int)i, "%s ran but the model refuses it: %s", text,
			    strerror(-ret));
			return false;
		}
	}
	r->counts[op->kind]++;
	r->trans[op->kind][st % MS_FZ_STATES] = 1;
	nw = wants(m, w, wp0);
	ret = ms_fzrt_check(rt, w, nw, wp0, msg, sizeof(msg));
	if (!ret)
		ret = check_file(m, rt, msg, sizeof(msg));
	if (ret) {
		bad(r, check_kind[ret], (int)i, "after %s: %s", text, msg);
		return false;
	}
	observe(m, rt, w, nw);
	return true;
}

static int worker(const struct ms_fz_seq *s, struct fz_res *r)
{
	static struct ms_fzrt rt;
	struct ms_fz_model m;
	int ret;

	if ((ret = ms_fz_model_init(&m, s))) {
		bad(r, FZ_ERROR, -1, "model: %s", strerror(-ret));
		return 0;
	}
	if ((ret = ms_fzrt_init(&rt, s->nslots, s->npages, s->thp))) {
		bad(r, FZ_ERROR, -1, "window: %s", strerror(-ret));
		goto out;
	}
	if (s->file && (ret = ms_fzrt_file_init(&rt, s->file))) {
		bad(r, FZ_ERROR, -1, "file window (%s): %s", s->file == MS_FZ_FILE_HUGETLB ?
		    "hugetlb" : "shmem", strerror(-ret));
		goto out;
	}
	for (uint32_t i = 0; i < s->nops; i++)
		if (!step(&m, &rt, s, i, r))
			break;
out:
	r->minor_faults = __atomic_load_n(&rt.minor_faults, __ATOMIC_RELAXED);
	ms_fzrt_fini(&rt);
	ms_fz_model_fini(&m);
	return 0;
}

static int wait_worker(pid_t pid, int *status)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), ret = 0;
	struct pollfd pfd = { fd, POLLIN, 0 };

	if (fd >= 0) {
		ret = poll(&pfd, 1, FZ_SEQ_TIMEOUT_MS);
		close(fd);
	}
	if (fd >= 0 && ret == 0) {
		kill(-pid, SIGKILL);
		ret = -ETIMEDOUT;
	}
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	/* Stragglers of its group (a process the worker could not reap). */
	kill(-pid, SIGKILL);
	return ret < 0 ? ret : 0;
}

/* The kmsg watch's hook: what the kernel says while a sequence runs. */
static void log_hit(void *arg, const char *line, enum ms_kmsg_class cls)
{
	struct fz *f = arg;
	struct fz_log *l = &f->log;
	struct ms_fz_pat_range r;

	if (f->pat_legacy && cls == MS_KMSG_FAIL && ms_fz_pat_log_range(line, &r) &&
	    r.end <= MS_FZ_PAT_WINDOW && l->nfreed < MS_FZ_PAT_MAX) {
		l->freed[l->nfreed++] = r;
		return;
	}
	if (!l->nbad++)
		snprintf(l->first, sizeof(l->first), "%s", line);
}

/*
 * Pre-rework PAT tracking: the list's entries over the window and the failed frees the kernel
 * logged must be what the model of its tracking predicts from the entries before the
 * sequence. Predicted failed frees are the kernel's own limit (counted, not failures).
 */
static void judge_pat(struct fz *f, const struct ms_fz_seq *s, const struct ms_fz_pat_range *n0,
		      int nn0)
{
	static struct ms_fz_pat pt;
	struct ms_fz_pat_range now[MS_FZ_PAT_MAX];
	char diff[360];
	struct fz_res *r = f->res;
	int n = ms_fz_pat_read(NULL, now, MS_FZ_PAT_MAX);

	if (n < 0 || ms_fz_pat_predict(&pt, n0, (unsigned)nn0, s, r->ran, r->part) ||
	    pt.unsure) {
		f->pat_unjudged++;
		return;
	}
	if (!ms_fz_pat_same(pt.node, pt.nnode, now, (unsigned)n)) {
		ms_fz_pat_diff(pt.node, pt.nnode, now, (unsigned)n, diff, sizeof(diff));
		bad(r, FZ_PAT, -1, "entries over /dev/mem's first pages against the model of "
		    "per-VMA pfnmap tracking: %s", diff);
		return;
	}
	if (f->log_on && !ms_fz_pat_same(pt.failed, pt.nfailed, f->log.freed,
					     f->log.nfreed)) {
		ms_fz_pat_diff(pt.failed, pt.nfailed, f->log.freed, f->log.nfreed, diff,
			       sizeof(diff));
		bad(r, FZ_PAT, -1, "\"freeing invalid memtype\" lines against the model of "
		    "per-VMA pfnmap tracking: %s", diff);
		return;
	}
	f->pat_known += pt.nfailed > 0;
	/* The runner judges the case's whole log: these lines were predicted. */
	if (f->log_on && f->log.nfreed)
		ms_kmsg_explained(f->ctx, "freeing invalid memtype", f->log.nfreed);
}

/* Run one sequence in a fresh worker; fills f->res. */
static void run_seq(struct fz *f, const struct ms_fz_seq *s)
{
	struct ms_fz_pat_range n0[MS_FZ_PAT_MAX];
	struct fz_res *r = f->res;
	long pat0 = -1, pat1;
	int nn0 = -1, status = 0, ret;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->step = -1;
	if (f->have_pat && f->pat_legacy)
		nn0 = ms_fz_pat_read(NULL, n0, MS_FZ_PAT_MAX);
	else if (f->have_pat)
		pat0 = ms_fzrt_pat_entries();
	if (f->log_on)
		ms_kmsg_poll(&f->kw);
	memset(&f->log, 0, sizeof(f->log));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		bad(r, FZ_ERROR, -1, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		setpgid(0, 0);
		_exit(worker(s, r));
	}
	setpgid(pid, pid);
	ret = wait_worker(pid, &status);
	if (ret == -ETIMEDOUT && r->kind == FZ_OK)
		bad(r, FZ_HANG, r->step, "no progress in %d s", FZ_SEQ_TIMEOUT_MS / 1000);
	else if (r->kind == FZ_OK && !(WIFEXITED(status) && !WEXITSTATUS(status)))
		bad(r, FZ_DIED, -1, "worker: status %#x", status);
	if (f->log_on)
		ms_kmsg_poll(&f->kw);
	pat1 = pat0 >= 0 ? ms_fzrt_pat_entries() : -1;
	if (r->kind == FZ_OK && nn0 >= 0)
		judge_pat(f, s, n0, nn0);
	else if (r->kind == FZ_OK && pat0 >= 0 && pat1 != pat0)
		bad(r, FZ_PAT, -1, "%ld entries in pat_memtype_list before the sequence, %ld after",
		    pat0, pat1);
	if (f->judge_kmsg && r->kind == FZ_OK && f->log.nbad)
		bad(r, FZ_KMSG, -1, "%s", f->log.first);
}

/* ---- the loop: generate, run, keep what is new, shrink what fails ---- */

static bool same_failure(const struct ms_fz_seq *s, void *arg)
{
	struct fz *f = arg;
	int want = f->res->kind;
	struct fz_res keep = *f->res;
	bool ok;

	run_seq(f, s);
	/* A WARN_ON_ONCE says its line once a boot: a log-only failure takes any failure. */
	ok = want == FZ_KMSG ? f->res->kind != FZ_OK && f->res->kind != FZ_ERROR :
			      f->res->kind == want;
	*f->res = keep;
	return ok;
}

static void note_coverage(struct fz *f, const struct ms_fz_seq *s)
{
	bool news = false;
	char *text;

	f->minor_faults += f->res->minor_faults;
	for (unsigned k = 0; k < MS_FZ_KIND_COUNT; k++) {
		f->counts[k] += f->res->counts[k];
		f->injected[k] += f->res->injected[k];
		for (unsigned st = 0; st < MS_FZ_STATES; st++) {
			if (!f->res->trans[k][st] || f->trans[k][st])
				continue;
			f->trans[k][st] = 1;
			f->ntrans++;
			news = true;
		}
	}
	if (!news || json_array_size(f->corpus) >= FZ_CORPUS_MAX)
		return;
	if ((text = ms_fz_seq_text(s, "\n"))) {
		json_array_append_new(f->corpus, json_string(text));
		free(text);
	}
}

/* Ops that did not run in the shrunk sequence's final run are noise: leave them out. */
static void drop_unrun(struct fz *f, struct ms_fz_seq *s)
{
	static struct ms_fz_seq t;
	uint32_t n = 0;

	run_seq(f, s);
	t = *s;
	for (uint32_t i = 0; i < s->nops; i++)
		if (f->res->ran[i] >= 0)
			t.ops[n++] = s->ops[i];
	t.nops = n;
	if (n < s->nops && same_failure(&t, f))
		*s = t;
	run_seq(f, s);
}

static char *emit(const struct ms_fz_seq *s, const struct fz_res *r, const char *what)
{
	struct ms_fz_emit_opts o = { .title = "mmstorm fuzz reproducer", .failure = what };
	char *buf = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&buf, &len);

	if (!mf)
		return NULL;
	if (ms_fz_emit_c(mf, s, &o, r->ran, r->part)) {
		fclose(mf);
		free(buf);
		return NULL;
	}
	fclose(mf);
	return buf;
}

static json_t *seq_json(const struct ms_fz_seq *s)
{
	char *text = ms_fz_seq_text(s, "\n");
	json_t *j = json_string(text ? text : "");

	free(text);
	return j;
}

/*
 * Which failure a shrunk sequence shows: its kind and its text (FNV-1a). Shrinking moves ops
 * to the first slots and cuts ranges to one page, so one bug found twice mostly shrinks to
 * one text; the op kinds alone are too coarse (unmapping the head and the tail of a PAT
 * range need the same two ops and are different bugs).
 */
static uint64_t seq_sig(const struct ms_fz_seq *s)
{
	char *text = ms_fz_seq_text(s, "\n");
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *p = text; p && *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	free(text);
	return h;
}

/* The index of an earlier failure the shrunk s repeats, or -1. */
static int seen_before(const struct fz *f, int kind, uint64_t sig)
{
	size_t n = json_array_size(f->failures);

	for (size_t i = 0; i < n && i < FZ_MAX_DISTINCT; i++)
		if (f->sig_kind[i] == kind && f->sig[i] == sig)
			return (int)i;
	return -1;
}

/* A failing sequence: shrink it; a new failure is reported, a repeat counted. */
static void found(struct fz *f, struct ms_fz_seq *s, uint64_t seed, uint64_t idx, int64_t t0)
{
	static struct ms_fz_seq orig;
	static struct fz_res first, last;
	int64_t t1 = now_ns(), t2;
	unsigned tests;
	char what[600];
	size_t nfail;
	char *c;
	json_t *j;
	int dup;

	first = *f->res;
	orig = *s;
	f->kind_shrinks[first.kind]++;
	tests = ms_fz_shrink(s, same_failure, f, f->max_shrink);
	drop_unrun(f, s);
	t2 = now_ns();
	f->shrink_ns += t2 - t1;
	/*
	 * The last run of the shrunk sequence says which of its ops ran; if it passed (a flaky
	 * failure: fail-nth sites move), the original's failure is what the reproducer names.
	 */
	last = *f->res;
	if (last.kind == FZ_OK) {
		last.kind = first.kind;
		snprintf(last.msg, sizeof(last.msg), "%s (the shrunk sequence passed its last run)",
			 first.msg);
	}
	dup = seen_before(f, first.kind, seq_sig(s));
	if (dup >= 0) {
		j = json_array_get(f->failures, (size_t)dup);
		json_object_set_new(j, "repeats", json_integer(json_integer_value(
				    json_object_get(j, "repeats")) + 1));
		ms_note(f->ctx, "fuzz: sequence %" PRIu64 " (seed %" PRIu64 ") shrank to failure %d "
			"again", idx, seed, dup + 1);
		return;
	}
	snprintf(what, sizeof(what), "%s: %s", fz_kind_names[last.kind], last.msg);
	c = emit(s, &last, what);
	j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:i, s:o, s:i, s:i, s:I, s:s?, "
		      "s:i}",
		      "kind", fz_kind_names[first.kind], "message", first.msg,
		      "shrunk_message", last.msg, "seed", (json_int_t)seed,
		      "sequence_index", (json_int_t)idx, "found_after_sequences",
		      (json_int_t)f->nseq, "found_after_ns", (json_int_t)(t1 - t0),
		      "original", seq_json(&orig), "original_ops", (int)orig.nops,
		      "shrunk", seq_json(s), "shrunk_ops", (int)s->nops, "shrink_tests", (int)tests,
		      "shrink_ns", (json_int_t)(t2 - t1), "reproducer_c", c, "repeats", 0);
	if (f->kw.nlines) {
		json_t *lines = json_array();

		for (unsigned i = 0; i < f->kw.nlines; i++)
			json_array_append_new(lines, json_string(f->kw.excerpt[i]));
		json_object_set_new(j, "kmsg", lines);
	}
	free(c);
	nfail = json_array_size(f->failures);
	if (nfail < FZ_MAX_DISTINCT) {
		f->sig[nfail] = seq_sig(s);
		f->sig_kind[nfail] = first.kind;
	}
	json_array_append_new(f->failures, j);
	ms_check(f->ctx, false, "fuzz: sequence fails", "%s after %" PRIu64 " sequences (seed %"
		 PRIu64 "); shrunk from %u to %u ops: %s", fz_kind_names[first.kind], f->nseq,
		 seed, orig.nops, s->nops, last.msg);
}

static uint64_t mix(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ULL + i;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * Until the budget is spent (shrinking not counted) or max_failures distinct failures were
 * found: a run that stopped at its first failure would report only the commonest bug of a
 * kernel and hide any other behind it.
 */
static void fuzz_loop(struct fz *f)
{
	static struct ms_fz_seq s;
	int64_t t0 = now_ns();

	for (uint64_t idx = 0; now_ns() - t0 - f->shrink_ns < f->budget_ns &&
	     !ms_should_stop(f->ctx); idx++) {
		uint64_t seed = f->seeds[idx % f->nseeds], rng = mix(seed, idx / f->nseeds);
		int kind;

		ms_fz_generate(&s, &f->g, &rng);
		run_seq(f, &s);
		f->nseq++;
		ms_count(f->ctx, f->m_seq, 1);
		note_coverage(f, &s);
		kind = f->res->kind;
		if (kind == FZ_ERROR) {
			ms_error(f->ctx, EIO, "fuzz: %s", f->res->msg);
			return;
		}
		if (kind == FZ_OK)
			continue;
		ms_count(f->ctx, f->m_fail, 1);
		if (f->kind_shrinks[kind] >= FZ_SHRINKS_PER_KIND) {
			f->unshrunk[kind]++;
			continue;
		}
		found(f, &s, seed, idx / f->nseeds, t0);
		if (json_array_size(f->failures) >= f->max_failures)
			return;
	}
}

/* ---- the workload ---- */

static const char *const kmsg_modes[] = { "auto", "judge", "report", NULL };

static const struct ms_param fuzz_params[] = {
	{ "seeds", MS_P_STRING, "1", "", 1, 0, NULL,
	  "comma-separated seeds; sequences are drawn from each in turn" },
	{ "budget", MS_P_TIME, "20s", "ns", 1, 24LL * 3600 * 1000000000, NULL,
	  "how long to generate and run sequences (shrinking comes on top)" },
	{ "max_ops", MS_P_INT, "40", "", 4, MS_FZ_MAX_OPS, NULL, "ops per sequence, at most" },
	{ "slots", MS_P_INT, "16", "pages", 4, MS_FZ_MAX_SLOTS, NULL, "the window, in pages" },
	{ "max_shrink", MS_P_INT, "400", "", 0, 100000, NULL,
	  "candidate sequences the shrinker may run" },
	{ "max_failures", MS_P_INT, "1", "", 1, FZ_MAX_DISTINCT, NULL,
	  "distinct failures to find before stopping: failures that shrink to the same "
	  "sequence failing the same check are one; after 3 shrinks of one kind its repeats are "
	  "only counted" },
	{ "ops", MS_P_STRING, "all", "", 1, 0, NULL,
	  "all, or a comma list of groups to leave out: -uffd, -pfn, -nth, -pinfoll, -thp, "
	  "-file (the shared-file window: shmem/hugetlb, uffd MINOR, UFFDIO_CONTINUE)" },
	{ "kmsg", MS_P_ENUM, "auto", "", 1, 0, kmsg_modes,
	  "kernel log lines: judge (a WARNING fails the sequence), report, or auto: judge in a "
	  "VM guest, report on the host (other processes write there too)" },
#define R(n) { "replay" #n, MS_P_STRING, "", "", 1, 0, NULL, \
	       "replay mode: part " #n " of a sequence's text, ops joined with '|'" }
	R(1), R(2), R(3), R(4), R(5), R(6), R(7), R(8),
#undef R
	{ NULL }
};

static bool devmem_mappable(char *why, size_t len)
{
	int fd = open("/dev/mem", O_RDONLY | O_CLOEXEC);
	void *p;

	if (fd < 0) {
		snprintf(why, len, "/dev/mem: %s", strerror(errno));
		return false;
	}
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		snprintf(why, len, "mmap of /dev/mem page 0: %s", strerror(errno));
	else
		munmap(p, 4096);
	close(fd);
	return p != MAP_FAILED;
}

static bool uffd_usable(char *why, size_t len)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, len, "userfaultfd: %s", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* major * 1000 + minor of the running kernel, 0 if unknown */
static unsigned kernel_version(char *rel, size_t len)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return 0;
	snprintf(rel, len, "%s", u.release);
	return major * 1000 + minor;
}

/*
 * Debian 6.1 fails a FOLL_WRITE buffer registration over a uffd-wp page with EFAULT instead
 * of waiting for the monitor (its io_uring pins with mmap_lock held); 6.12 waits, as the model
 * says. Between the two is not known here: with uffd ops on, pin-uring needs 6.12.
 */
static bool uring_usable(bool uffd, char *why, size_t len)
{
	struct io_uring_params p;
	char rel[65] = "?";
	int fd;

	if (uffd && kernel_version(rel, sizeof(rel)) < 6012) {
		snprintf(why, len, "kernel %s: before 6.12 a pin of a uffd-wp page may fail with "
			 "EFAULT (6.1 does); --ops -uffd brings pin-uring back", rel);
		return false;
	}

	memset(&p, 0, sizeof(p));
	fd = (int)syscall(SYS_io_uring_setup, 1, &p);
	if (fd < 0) {
		snprintf(why, len, "io_uring_setup: %s%s", strerror(errno),
			 errno == EPERM ? " (kernel.io_uring_disabled?)" : "");
		return false;
	}
	close(fd);
	return true;
}

static bool gup_test_usable(bool uffd, char *why, size_t len)
{
	char rel[65] = "?";
	unsigned kver = kernel_version(rel, sizeof(rel));

	/* The model says what 6.2 on does: a R/O long-term pin unshares the shared zero page. */
	if (kver < 6002) {
		snprintf(why, len, "kernel %s: before 6.2 a R/O long-term pin may hold the shared "
			 "zero page, which the model does not cover", rel);
		return false;
	}
	if (uffd && kver < 6012) {
		snprintf(why, len, "kernel %s: before 6.12 a pin of a uffd-wp page may fail with "
			 "EFAULT; --ops -uffd brings pin-gup back", rel);
		return false;
	}
	if (!access("/sys/kernel/debug/gup_test", R_OK | W_OK))
		return true;
	snprintf(why, len, "/sys/kernel/debug/gup_test: %s (needs CONFIG_GUP_TEST and debugfs)",
		 strerror(errno));
	return false;
}

/* fail-nth counts only sleeping allocations where ignore-gfp-wait is off: as fail_nth.c does. */
static bool nth_usable(struct ms_ctx *ctx, char *why, size_t len)
{
	static const char *const knobs[][2] = {
		{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/failslab/verbose", "1" },
		{ "/sys/kernel/debug/fail_page_alloc/verbose", "1" },
	};
	int ret;

	if (access("/proc/self/fail-nth", W_OK)) {
		snprintf(why, len, "/proc/self/fail-nth: %s (no CONFIG_FAULT_INJECTION)",
			 strerror(errno));
		return false;
	}
	for (size_t i = 0; i < MS_ARRAY_SIZE(knobs); i++) {
		if (access(knobs[i][0], W_OK)) {
			snprintf(why, len, "%s: %s", knobs[i][0], strerror(errno));
			return false;
		}
		if ((ret = ms_knob_write(ctx, knobs[i][0], knobs[i][1]))) {
			snprintf(why, len, "%s: %s", knobs[i][0], strerror(-ret));
			return false;
		}
	}
	return true;
}

static int parse_seeds(struct fz *f, const char *list)
{
	char *copy = strdup(list), *save = NULL, *w, *end;

	if (!copy)
		return -ENOMEM;
	for (w = strtok_r(copy, ", ", &save); w && f->nseeds < MS_ARRAY_SIZE(f->seeds);
	     w = strtok_r(NULL, ", ", &save)) {
		f->seeds[f->nseeds++] = strtoull(w, &end, 0);
		if (*end) {
			free(copy);
			return -EINVAL;
		}
	}
	free(copy);
	return f->nseeds ? 0 : -EINVAL;
}

static char *replay_text(struct ms_ctx *ctx)
{
	size_t cap = FZ_REPLAY_PARAMS * MS_PARAM_STR_MAX + 1, n = 0;
	char *text = calloc(1, cap), name[16];

	for (int i = 1; text && i <= FZ_REPLAY_PARAMS; i++) {
		snprintf(name, sizeof(name), "replay%d", i);
		n += (size_t)snprintf(text + n, cap - n, "%s", ms_param_s(ctx, name));
	}
	return text;
}

static int fuzz_probe(struct ms_ctx *ctx)
{
	(void)ctx;
	if (geteuid())
		return ms_skip(ctx, "needs root (/proc/PID/mem of other processes, pagemap bits, "
			       "compaction)");
	return 0;
}

/* THP counters of /proc/vmstat, system-wide: what the THP window's ops did (and others). */
static const char *const thp_stats[FZ_THP_STATS] = {
	"thp_fault_alloc", "thp_fault_fallback", "thp_split_pmd", "thp_split_page",
	"thp_collapse_alloc", "thp_collapse_alloc_failed",
};

static void read_thp_stats(uint64_t *v)
{
	FILE *f = fopen("/proc/vmstat", "re");
	char key[64];
	unsigned long long n;

	memset(v, 0, FZ_THP_STATS * sizeof(*v));
	if (!f)
		return;
	while (fscanf(f, "%63s %llu", key, &n) == 2)
		for (unsigned i = 0; i < FZ_THP_STATS; i++)
			if (!strcmp(key, thp_stats[i]))
				v[i] = n;
	fclose(f);
}

/* Of the op counts, those that failed as fail-nth made them (their failure state checked). */
static json_t *injected_json(const struct fz *f)
{
	json_t *o = json_object();

	for (unsigned k = 0; k < MS_FZ_KIND_COUNT; k++)
		json_object_set_new(o, ms_fz_kind_name(k),
				    json_integer((json_int_t)f->injected[k]));
	return o;
}

/* How the /proc/vmstat THP counters moved while the sequences ran (system-wide). */
static json_t *thp_json(const struct fz *f)
{
	uint64_t now[FZ_THP_STATS];
	json_t *o = json_object();

	read_thp_stats(now);
	for (unsigned i = 0; i < FZ_THP_STATS; i++)
		json_object_set_new(o, thp_stats[i],
				    json_integer((json_int_t)(now[i] - f->thp0[i])));
	return o;
}

/*
 * THP windows need THP for madvise (journalled if it was "never") and MADV_COLLAPSE (6.1+):
 * tried on a scratch PMD, where EINVAL means the kernel has no MADV_COLLAPSE.
 */
static bool thp_usable(struct ms_ctx *ctx, char *why, size_t len)
{
	const char *knob = "/sys/kernel/mm/transparent_hugepage/enabled";
	char buf[128] = "", *p, *win;
	int fd = open(knob, O_RDONLY | O_CLOEXEC), ret = 0;
	ssize_t n;

	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) < 0) {
		snprintf(why, len, "%s: %s", knob, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	if (strstr(buf, "[never]") && (ret = ms_knob_write(ctx, knob, "madvise"))) {
		snprintf(why, len, "%s is never and cannot be changed: %s", knob, strerror(-ret));
		return false;
	}
	p = mmap(NULL, 2 * MS_FZRT_PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	if (p == MAP_FAILED) {
		snprintf(why, len, "mmap: %s", strerror(errno));
		return false;
	}
	win = (char *)(((uintptr_t)p + MS_FZRT_PMD - 1) & ~(MS_FZRT_PMD - 1));
	if (madvise(win, MS_FZRT_PMD, MADV_HUGEPAGE))
		ret = -errno;
	win[0] = 1;
	if (!ret && madvise(win, MS_FZRT_PMD, 25 /* MADV_COLLAPSE */) && errno == EINVAL)
		ret = -EINVAL;
	munmap(p, 2 * MS_FZRT_PMD);
	if (ret)
		snprintf(why, len, "MADV_HUGEPAGE/MADV_COLLAPSE: %s (MADV_COLLAPSE is 6.1+)",
			 strerror(-ret));
	return !ret;
}

/* The UFFDIO_API features this kernel offers (0 when userfaultfd is not there). */
static uint64_t uffd_features(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	uint64_t feat = 0;

	if (fd < 0)
		return 0;
	if (!ioctl(fd, UFFDIO_API, &api))
		feat = api.features;
	close(fd);
	return feat;
}

#define FZ_HP_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

/*
 * A hugetlb file window takes MS_FZ_FILE_SLOTS 2 MiB pages, one sequence at a time: raise the
 * pool that far (journaled: restored at case end) if it has fewer free. 0 or the reason.
 */
static bool hugetlb_pool(struct fz *f, char *why, size_t len)
{
	uint64_t nr, free_pages, resv, avail;
	char val[32];
	int ret;

	if (ms_read_u64(FZ_HP_DIR "nr_hugepages", &nr) ||
	    ms_read_u64(FZ_HP_DIR "free_hugepages", &free_pages) ||
	    ms_read_u64(FZ_HP_DIR "resv_hugepages", &resv)) {
		snprintf(why, len, "no 2 MiB hugetlb pool (" FZ_HP_DIR ")");
		return false;
	}
	avail = free_pages > resv ? free_pages - resv : 0;
	if (avail >= MS_FZ_FILE_SLOTS)
		return true;
	snprintf(val, sizeof(val), "%llu",
		 (unsigned long long)(nr + MS_FZ_FILE_SLOTS - avail));
	if ((ret = ms_knob_write(f->ctx, FZ_HP_DIR "nr_hugepages", val))) {
		snprintf(why, len, "cannot raise nr_hugepages to %s: %s", val, strerror(-ret));
		return false;
	}
	if (ms_read_u64(FZ_HP_DIR "free_hugepages", &free_pages) ||
	    ms_read_u64(FZ_HP_DIR "resv_hugepages", &resv))
		free_pages = resv = 0;
	avail = free_pages > resv ? free_pages - resv : 0;
	if (avail >= MS_FZ_FILE_SLOTS) {
		ms_note(f->ctx, "nr_hugepages (2048 kB) %llu -> %s for the hugetlb file window "
			"(journaled, restored after the case)", (unsigned long long)nr, val);
		return true;
	}
	snprintf(why, len, "needs %d free 2 MiB pages, got %llu after nr_hugepages=%s",
		 MS_FZ_FILE_SLOTS, (unsigned long long)avail, val);
	return false;
}

/*
 * The file window: shmem always (memfd), hugetlb with a pool; MINOR faults where UFFDIO_API
 * offers them (UFFD_FEATURE_MINOR_SHMEM is 5.14+, _HUGETLBFS 5.13+). Without them the window
 * still runs, without uffd-minor and continue. The pool is raised only when the sequences
 * can have a hugetlb window (a replay only for "file hugetlb").
 */
static void load_file(struct fz *f, const char *ops, bool need_hugetlb)
{
	uint64_t feat = f->g.uffd ? uffd_features() : 0;
	char why[200] = "";
	int fd;

	if (strstr(ops, "-file"))
		return;
	fd = (int)syscall(SYS_memfd_create, "mmstorm-probe", MFD_CLOEXEC);
	if (fd < 0) {
		snprintf(f->no_file, sizeof(f->no_file), "memfd_create: %s", strerror(errno));
		return;
	}
	close(fd);
	f->g.file_shmem = true;
	f->g.file_hugetlb = need_hugetlb && hugetlb_pool(f, why, sizeof(why));
	f->g.minor_shmem = !!(feat & UFFD_FEATURE_MINOR_SHMEM);
	f->g.minor_hugetlb = !!(feat & UFFD_FEATURE_MINOR_HUGETLBFS);
	if (need_hugetlb && !f->g.file_hugetlb)
		ms_note(f->ctx, "no hugetlb file windows: %s", why);
	if (!f->g.minor_shmem || !f->g.minor_hugetlb)
		ms_note(f->ctx, "no uffd-minor/continue on %s%s%s: %s", f->g.minor_shmem ? "" :
			"shmem", f->g.minor_shmem || f->g.minor_hugetlb ? "" : " and ",
			f->g.minor_hugetlb ? "" : "hugetlb", !f->g.uffd ? "uffd ops are off" :
			"UFFDIO_API does not offer UFFD_FEATURE_MINOR_SHMEM/_HUGETLBFS");
}

static void load_ops(struct fz *f)
{
	const char *ops = ms_param_s(f->ctx, "ops");
	char *text;

	f->g.uffd = !strstr(ops, "-uffd") && uffd_usable(f->no_uffd, sizeof(f->no_uffd));
	f->g.pfn = !strstr(ops, "-pfn") && devmem_mappable(f->no_pfn, sizeof(f->no_pfn));
	f->g.nth = !strstr(ops, "-nth") && nth_usable(f->ctx, f->no_nth, sizeof(f->no_nth));
	f->g.uring = !strstr(ops, "-pinfoll") &&
		     uring_usable(f->g.uffd, f->no_uring, sizeof(f->no_uring));
	f->g.gup = !strstr(ops, "-pinfoll") &&
		   gup_test_usable(f->g.uffd, f->no_gup, sizeof(f->no_gup));
	f->g.migrate = !access("/proc/sys/vm/compact_memory", W_OK);
	f->g.thp = !strstr(ops, "-thp") && thp_usable(f->ctx, f->no_thp, sizeof(f->no_thp));
	text = replay_text(f->ctx);
	load_file(f, ops, !text || !*text || strstr(text, "file hugetlb"));
	free(text);
	if (!f->g.uffd)
		ms_note(f->ctx, "no uffd ops: %s", *f->no_uffd ? f->no_uffd : "left out");
	if (!f->g.pfn)
		ms_note(f->ctx, "no pfnmap ops: %s", *f->no_pfn ? f->no_pfn : "left out");
	if (!f->g.nth)
		ms_note(f->ctx, "no fail-nth ops: %s", *f->no_nth ? f->no_nth : "left out");
	if (!f->g.uring)
		ms_note(f->ctx, "no pin-uring ops: %s", *f->no_uring ? f->no_uring : "left out");
	if (!f->g.gup)
		ms_note(f->ctx, "no pin-gup ops: %s", *f->no_gup ? f->no_gup : "left out");
	if (!f->g.thp)
		ms_note(f->ctx, "no THP windows: %s", *f->no_thp ? f->no_thp : "left out");
	if (!f->g.file_shmem)
		ms_note(f->ctx, "no file windows: %s", *f->no_file ? f->no_file : "left out");
}

static int fuzz_setup(struct ms_ctx *ctx)
{
	const struct ms_metric_spec m[] = {
		{ NULL, "sequences", MS_M_COUNTER, "" },
		{ NULL, "transitions", MS_M_GAUGE, "" },
		{ NULL, "failures", MS_M_COUNTER, "" },
	};
	struct ms_metric_spec ms[3];
	struct fz *f = calloc(1, sizeof(*f));
	int kmode, ret;

	if (!f)
		return ms_error(ctx, ENOMEM, "fuzz state");
	ms_set_priv(ctx, f);
	f->ctx = ctx;
	memcpy(ms, m, sizeof(m));
	ms[0].id = &f->m_seq;
	ms[1].id = &f->m_trans;
	ms[2].id = &f->m_fail;
	if ((ret = ms_metrics(ctx, ms, MS_ARRAY_SIZE(ms))))
		return ret;
	if (parse_seeds(f, ms_param_s(ctx, "seeds")))
		return ms_error(ctx, EINVAL, "seeds: '%s' is not a list of numbers",
				ms_param_s(ctx, "seeds"));
	f->budget_ns = ms_param_i(ctx, "budget");
	f->max_shrink = (unsigned)ms_param_i(ctx, "max_shrink");
	f->max_failures = (unsigned)ms_param_i(ctx, "max_failures");
	f->g.max_ops = (uint32_t)ms_param_i(ctx, "max_ops");
	f->g.nslots = (uint16_t)ms_param_i(ctx, "slots");
	f->g.npages = f->g.nslots / 2;
	kmode = (int)ms_param_i(ctx, "kmsg");
	f->judge_kmsg = kmode == 1 || (kmode == 0 && ms_in_guest(ctx));
	f->have_pat = ms_fzrt_pat_entries() >= 0;
	f->pat_legacy = f->have_pat && ms_fzrt_pat_legacy();
	/* On the host too when PAT is judged: its failed frees are part of the verdict. */
	f->log_on = f->judge_kmsg || f->pat_legacy;
	if (f->log_on && ms_kmsg_start(&f->kw))
		f->log_on = f->judge_kmsg = false;
	f->kw.hit = log_hit;
	f->kw.hit_arg = f;
	f->res = mmap(NULL, sizeof(*f->res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (f->res == MAP_FAILED) {
		f->res = NULL;
		return ms_error(ctx, errno, "mmap: %s", strerror(errno));
	}
	f->corpus = json_array();
	f->failures = json_array();
	load_ops(f);
	read_thp_stats(f->thp0);
	if (!f->have_pat)
		ms_note(ctx, "PAT memtype list not readable: no PAT baseline check");
	else
		ms_note(ctx, "PAT memtype list: judged %s", f->pat_legacy ?
			"by the model of per-VMA (pre-rework) pfnmap tracking" :
			"by its size, back at its baseline after each sequence");
	return 0;
}

static json_t *counts_json(const struct fz *f)
{
	json_t *o = json_object();

	for (unsigned k = 0; k < MS_FZ_KIND_COUNT; k++)
		json_object_set_new(o, ms_fz_kind_name(k), json_integer((json_int_t)f->counts[k]));
	return o;
}

/* Failing sequences of a kind already shrunk FZ_SHRINKS_PER_KIND times, per kind. */
static json_t *unshrunk_json(const struct fz *f)
{
	json_t *u = json_object();

	for (unsigned k = 1; k < FZ_NKINDS; k++)
		if (f->unshrunk[k])
			json_object_set_new(u, fz_kind_names[k],
					    json_integer((json_int_t)f->unshrunk[k]));
	return u;
}


static void write_artifacts(struct fz *f, json_t *replay)
{
	char path[4200];
	json_t *a;

	a = json_pack("{s:{s:I, s:i, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:b}}", "fuzz",
		      "sequences", (json_int_t)f->nseq, "transitions", (int)f->ntrans,
		      "op_counts", counts_json(f), "corpus", json_incref(f->corpus),
		      "failures", json_incref(f->failures), "unshrunk_failures",
		      unshrunk_json(f), "uffd", f->g.uffd, "pfn", f->g.pfn,
		      "nth", f->g.nth, "pat_checked", f->have_pat);
	if (!a)
		return;
	json_object_set_new(json_object_get(a, "fuzz"), "pin_uring", json_boolean(f->g.uring));
	json_object_set_new(json_object_get(a, "fuzz"), "pin_gup", json_boolean(f->g.gup));
	json_object_set_new(json_object_get(a, "fuzz"), "thp", json_boolean(f->g.thp));
	json_object_set_new(json_object_get(a, "fuzz"), "file_shmem",
			    json_boolean(f->g.file_shmem));
	json_object_set_new(json_object_get(a, "fuzz"), "file_hugetlb",
			    json_boolean(f->g.file_hugetlb));
	json_object_set_new(json_object_get(a, "fuzz"), "minor",
			    json_boolean(f->g.minor_shmem || f->g.minor_hugetlb));
	/* Writes by process 0 to MINOR-registered pages without a PTE: minor faults. */
	json_object_set_new(json_object_get(a, "fuzz"), "minor_faults",
			    json_integer((json_int_t)f->minor_faults));
	json_object_set_new(json_object_get(a, "fuzz"), "injected_failures", injected_json(f));
	json_object_set_new(json_object_get(a, "fuzz"), "thp_vmstat", thp_json(f));
	json_object_set_new(json_object_get(a, "fuzz"), "pat", json_pack("{s:s, s:I, s:I}",
			    "judged_by", !f->have_pat ? "none" : f->pat_legacy ? "model" : "size",
			    "kernel_limit_sequences", (json_int_t)f->pat_known,
			    "unjudged_sequences", (json_int_t)f->pat_unjudged));
	if (replay)
		json_object_set_new(json_object_get(a, "fuzz"), "replay", replay);
	snprintf(path, sizeof(path), "%s/artifacts.json", ms_tmpdir(f->ctx));
	if (json_dump_file(a, path, JSON_COMPACT))
		ms_note(f->ctx, "cannot write %s", path);
	json_decref(a);
}

static int replay(struct fz *f, const char *text)
{
	static struct ms_fz_seq s;
	char err[200], *c;
	json_t *j;

	if (ms_fz_seq_parse(&s, text, err, sizeof(err)))
		return ms_error(f->ctx, EINVAL, "replay: %s", err);
	run_seq(f, &s);
	f->nseq = 1;
	note_coverage(f, &s);
	c = f->res->kind == FZ_OK ? NULL : emit(&s, f->res, f->res->msg);
	j = json_pack("{s:s, s:s, s:i, s:s?}", "kind", fz_kind_names[f->res->kind],
		      "message", f->res->msg, "step", f->res->step, "reproducer_c", c);
	free(c);
	ms_check(f->ctx, f->res->kind == FZ_OK, "fuzz: replayed sequence passes", "%s%s%s",
		 fz_kind_names[f->res->kind], *f->res->msg ? ": " : "", f->res->msg);
	write_artifacts(f, j);
	return f->res->kind == FZ_ERROR ? ms_error(f->ctx, EIO, "%s", f->res->msg) : 0;
}

static int fuzz_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct fz *f = ms_priv(ctx);
	char *text;
	int ret;

	if (iter)
		return 0;
	text = replay_text(ctx);
	if (!text)
		return ms_error(ctx, ENOMEM, "replay text");
	if (*text) {
		ret = replay(f, text);
		free(text);
		return ret;
	}
	free(text);
	fuzz_loop(f);
	ms_gauge(ctx, f->m_trans, f->ntrans);
	ms_note(ctx, "%" PRIu64 " sequences, %u distinct (op, state) transitions, %zu failing",
		f->nseq, f->ntrans, json_array_size(f->failures));
	write_artifacts(f, NULL);
	return 0;
}

static void fuzz_teardown(struct ms_ctx *ctx)
{
	struct fz *f = ms_priv(ctx);

	if (!f)
		return;
	if (f->log_on)
		ms_kmsg_stop(&f->kw);
	if (f->res)
		munmap(f->res, sizeof(*f->res));
	json_decref(f->corpus);
	json_decref(f->failures);
	free(f);
}

const struct ms_workload ms_wl_fuzz = {
	.name = "fuzz",
	.summary = "model-based fuzzing: random fork/write/madvise/mremap/mprotect/uffd-wp/pfnmap/"
		   "fail-nth sequences checked against the reference model after every op; a "
		   "failure is shrunk and written as a C reproducer",
	.params = fuzz_params,
	.probe = fuzz_probe,
	.setup = fuzz_setup,
	.run = fuzz_run,
	.teardown = fuzz_teardown,
};

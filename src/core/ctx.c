/* The calls a workload makes on its case (workload.h), backed by the case's shared memory. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/inject.h"
#include "mmstorm/journal.h"
#include "mmstorm/util.h"

struct ms_shm *ms_shm_new(void)
{
	struct ms_shm *shm;

	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		return NULL;
	/* Fresh anonymous memory is zero; only the histograms need their min sentinel. */
	for (unsigned i = 0; i < MS_MAX_HISTS; i++)
		ms_hist_init(&shm->hists[i]);
	return shm;
}

void ms_shm_free(struct ms_shm *shm)
{
	if (shm)
		munmap(shm, sizeof(*shm));
}

int ms_ctx_param_index(const struct ms_ctx *ctx, const char *name)
{
	const struct ms_param *tab = ctx->c->wl->params;

	for (int i = 0; tab && tab[i].name; i++)
		if (!strcmp(tab[i].name, name))
			return i;
	return -1;
}

/*
 * A case's parameters: the workload's, then those of its injectors (a suite key sets every
 * parameter of that name in the case, so one name means one value whoever asks).
 */
static const struct ms_pval *param_lookup(const struct ms_ctx *ctx, const char *name,
					  const struct ms_param **pp)
{
	const struct ms_case *c = ctx->c;
	int i = ms_ctx_param_index(ctx, name);

	if (i >= 0) {
		*pp = &c->wl->params[i];
		return &c->vals[i];
	}
	for (unsigned k = 0; k < c->ninj; k++)
		for (int n = 0; c->inj[k]->params && c->inj[k]->params[n].name; n++)
			if (!strcmp(c->inj[k]->params[n].name, name)) {
				*pp = &c->inj[k]->params[n];
				return &c->inj_vals[k][n];
			}
	/* Asking for a parameter nobody in the case declares is a programming error. */
	fprintf(stderr, "mmstorm: case %s (%s) has no parameter '%s'\n", c->name, c->wl->name,
		name);
	abort();
}

int64_t ms_param_i(const struct ms_ctx *ctx, const char *name)
{
	const struct ms_param *p;

	return param_lookup(ctx, name, &p)->i;
}

const char *ms_param_s(const struct ms_ctx *ctx, const char *name)
{
	const struct ms_param *p;
	const struct ms_pval *v = param_lookup(ctx, name, &p);

	return p->type == MS_P_ENUM ? p->choices[v->i] : v->s;
}

void *ms_priv(const struct ms_ctx *ctx)
{
	return ctx->priv;
}

void ms_set_priv(struct ms_ctx *ctx, void *priv)
{
	ctx->priv = priv;
}

int ms_metric(struct ms_ctx *ctx, const char *name, enum ms_metric_kind kind, const char *unit)
{
	struct ms_shm *shm = ctx->shm;
	struct ms_metric_def *d;

	for (unsigned i = 0; i < shm->nmetrics; i++)
		if (!strcmp(shm->defs[i].name, name))
			return (int)i;
	if (shm->nmetrics >= MS_MAX_METRICS)
		return -ENOSPC;
	if (kind == MS_M_HIST && shm->nhists >= MS_MAX_HISTS)
		return -ENOSPC;
	d = &shm->defs[shm->nmetrics];
	ms_strlcpy(d->name, name, sizeof(d->name));
	ms_strlcpy(d->unit, unit ? unit : "", sizeof(d->unit));
	d->kind = kind;
	d->slot = kind == MS_M_HIST ? (int)shm->nhists++ : -1;
	return (int)shm->nmetrics++;
}

void ms_sample(struct ms_ctx *ctx, int id, uint64_t value)
{
	ms_hist_record(&ctx->shm->hists[ctx->shm->defs[id].slot], value);
}

void ms_count(struct ms_ctx *ctx, int id, uint64_t delta)
{
	__atomic_fetch_add(&ctx->shm->counters[id], delta, __ATOMIC_RELAXED);
}

void ms_gauge(struct ms_ctx *ctx, int id, int64_t value)
{
	int64_t peak = __atomic_load_n(&ctx->shm->gauge_peak[id], __ATOMIC_RELAXED);

	__atomic_store_n(&ctx->shm->gauge_last[id], value, __ATOMIC_RELAXED);
	while (value > peak &&
	       !__atomic_compare_exchange_n(&ctx->shm->gauge_peak[id], &peak, value, true,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static void record_failure(struct ms_ctx *ctx, const char *what, const char *detail)
{
	unsigned slot = __atomic_fetch_add(&ctx->shm->nfail, 1, __ATOMIC_RELAXED);

	if (slot < MS_MAX_FAILURES) {
		ms_strlcpy(ctx->shm->failures[slot].what, what, sizeof(ctx->shm->failures[0].what));
		ms_strlcpy(ctx->shm->failures[slot].detail, detail,
			   sizeof(ctx->shm->failures[0].detail));
	}
}

bool ms_check(struct ms_ctx *ctx, bool ok, const char *what, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	__atomic_fetch_add(&ctx->shm->checks_run, 1, __ATOMIC_RELAXED);
	if (ok)
		return true;
	__atomic_fetch_add(&ctx->shm->checks_failed, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	record_failure(ctx, what, detail);
	return false;
}

bool ms_check_eq(struct ms_ctx *ctx, const char *what, uint64_t want, uint64_t got)
{
	return ms_check(ctx, want == got, what, "expected %llu (0x%llx), observed %llu (0x%llx)",
			(unsigned long long)want, (unsigned long long)want,
			(unsigned long long)got, (unsigned long long)got);
}

bool ms_check_mem(struct ms_ctx *ctx, const char *what, const void *want, const void *got,
		  size_t len, uintptr_t base, size_t page_size)
{
	const unsigned char *w = want, *g = got;
	size_t off;

	if (!memcmp(want, got, len))
		return ms_check(ctx, true, what, "%s", "");
	for (off = 0; off < len && w[off] == g[off]; off++)
		;
	return ms_check(ctx, false, what,
			"first difference at offset %zu (address 0x%llx, page %zu, byte %zu of "
			"the page): expected 0x%02x, observed 0x%02x",
			off, (unsigned long long)(base + off), page_size ? off / page_size : 0,
			page_size ? off % page_size : off, w[off], g[off]);
}

static void set_status(struct ms_ctx *ctx, int status, const char *fmt, va_list ap)
{
	int expect = 0;

	/* The first SKIP/ERROR wins; later ones are usually consequences. */
	if (!__atomic_compare_exchange_n(&ctx->shm->status, &expect, status, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return;
	vsnprintf(ctx->shm->reason, sizeof(ctx->shm->reason), fmt, ap);
}

int ms_skip(struct ms_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_status(ctx, MS_V_SKIP, fmt, ap);
	va_end(ap);
	return MS_SKIP;
}

int ms_error(struct ms_ctx *ctx, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_status(ctx, MS_V_ERROR, fmt, ap);
	va_end(ap);
	return err > 0 ? -err : (err < 0 ? err : -EIO);
}

void ms_note(struct ms_ctx *ctx, const char *fmt, ...)
{
	unsigned slot = __atomic_fetch_add(&ctx->shm->nnotes, 1, __ATOMIC_RELAXED);
	va_list ap;

	if (slot >= MS_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(ctx->shm->notes[slot], sizeof(ctx->shm->notes[0]), fmt, ap);
	va_end(ap);
}

pid_t ms_spawn(struct ms_ctx *ctx, int (*fn)(struct ms_ctx *, void *, unsigned), void *arg,
	       unsigned idx)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* A worker must not outlive its case, whatever kills the case process. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(125);
		_exit(fn(ctx, arg, idx) & 0xff);
	}
	return pid;
}

int ms_wait(struct ms_ctx *ctx, pid_t pid)
{
	int status;

	(void)ctx;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFSIGNALED(status))
		return -EINTR;
	return WEXITSTATUS(status);
}

bool ms_should_stop(const struct ms_ctx *ctx)
{
	if (__atomic_load_n(&ctx->shm->stop, __ATOMIC_RELAXED))
		return true;
	return ctx->deadline_ns && ms_now_ns() >= ctx->deadline_ns;
}

uint64_t ms_seed(const struct ms_ctx *ctx)
{
	return ctx->seed;
}

int ms_knob_write(struct ms_ctx *ctx, const char *path, const char *value)
{
	if (!ctx->journal)
		return -ENOTSUP;
	return ms_journal_write(ctx->journal, path, value);
}

const char *ms_tmpdir(const struct ms_ctx *ctx)
{
	return ctx->tmpdir;
}

bool ms_in_guest(const struct ms_ctx *ctx)
{
	return ctx->in_guest;
}

bool ms_destructive_ok(const struct ms_ctx *ctx)
{
	return ctx->allow_destructive;
}

/* ---- turning the shared area into JSON for case_end ---- */

static json_t *hist_json(const struct ms_hist *h, const char *unit)
{
	struct ms_hist_summary s;
	json_t *o, *b;

	ms_hist_summarize(h, &s);
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I}", "kind", "hist",
		      "unit", unit, "count", (json_int_t)s.count,
		      "min", (json_int_t)(s.count ? s.min : 0), "max", (json_int_t)s.max,
		      "mean", s.mean, "p50", (json_int_t)s.p50, "p90", (json_int_t)s.p90,
		      "p99", (json_int_t)s.p99, "p999", (json_int_t)s.p999);
	if (!o)
		return NULL;
	/* Sparse buckets keep the full distribution mergeable for compare and CDF charts. */
	b = json_array();
	for (size_t i = 0; i < MS_HIST_LEN && b; i++) {
		if (!h->counts[i])
			continue;
		json_array_append_new(b, json_pack("[I,I]", (json_int_t)ms_hist_highest_equiv(i),
						   (json_int_t)h->counts[i]));
	}
	json_object_set_new(o, "buckets", b ? b : json_array());
	if (h->saturated)
		json_object_set_new(o, "saturated", json_integer((json_int_t)h->saturated));
	return o;
}

json_t *ms_shm_metrics_json(const struct ms_shm *shm)
{
	json_t *m = json_object();

	for (unsigned i = 0; i < shm->nmetrics && i < MS_MAX_METRICS; i++) {
		const struct ms_metric_def *d = &shm->defs[i];
		json_t *v = NULL;

		switch (d->kind) {
		case MS_M_HIST:
			if (d->slot >= 0 && d->slot < MS_MAX_HISTS)
				v = hist_json(&shm->hists[d->slot], d->unit);
			break;
		case MS_M_COUNTER:
			v = json_pack("{s:s, s:s, s:I}", "kind", "counter", "unit", d->unit, "value",
				      (json_int_t)shm->counters[i]);
			break;
		case MS_M_GAUGE:
			v = json_pack("{s:s, s:s, s:I, s:I}", "kind", "gauge", "unit", d->unit,
				      "last", (json_int_t)shm->gauge_last[i], "peak",
				      (json_int_t)shm->gauge_peak[i]);
			break;
		}
		if (v)
			json_object_set_new(m, d->name, v);
	}
	return m;
}

json_t *ms_shm_checks_json(const struct ms_shm *shm)
{
	json_t *f = json_array();
	unsigned n = shm->nfail < MS_MAX_FAILURES ? shm->nfail : MS_MAX_FAILURES;

	for (unsigned i = 0; i < n; i++)
		json_array_append_new(f, json_pack("{s:s, s:s}", "what", shm->failures[i].what,
						   "detail", shm->failures[i].detail));
	return json_pack("{s:I, s:I, s:o}", "run", (json_int_t)shm->checks_run, "failed",
			 (json_int_t)shm->checks_failed, "failures", f);
}

json_t *ms_shm_notes_json(const struct ms_shm *shm)
{
	json_t *a = json_array();
	unsigned n = shm->nnotes < MS_MAX_NOTES ? shm->nnotes : MS_MAX_NOTES;

	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_string(shm->notes[i]));
	return a;
}

int ms_metrics(struct ms_ctx *ctx, const struct ms_metric_spec *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		*m[i].id = ms_metric(ctx, m[i].name, m[i].kind, m[i].unit);
		if (*m[i].id < 0)
			return ms_error(ctx, -*m[i].id, "registering metric %s: %s", m[i].name,
					strerror(-*m[i].id));
	}
	return 0;
}

void ms_kmsg_explained(struct ms_ctx *ctx, const char *substr, uint64_t n)
{
	struct ms_shm *shm = ctx->shm;

	if (!shm->kmsg_explained[0])
		snprintf(shm->kmsg_explained, sizeof(shm->kmsg_explained), "%s", substr);
	if (!strcmp(shm->kmsg_explained, substr))
		__atomic_fetch_add(&shm->kmsg_explained_n, n, __ATOMIC_RELAXED);
}

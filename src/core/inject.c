/* The case side of injection: shared injector state, injection points, and the runner's calls. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/inject.h"
#include "mmstorm/invariants.h"
#include "mmstorm/journal.h"
#include "mmstorm/util.h"

#define RERUN_MAX 1280

/*
 * Made by the runner before it forks the case process, so the case, its workers (forked from
 * it) and the runner (after the case is gone) all see the same pages. Injector state is kept
 * here, not in malloc()ed memory, because a worker's hook must update what the case process
 * reads at disarm and the runner reads when the case process was killed.
 */
struct inj_area {
	char rerun[RERUN_MAX];
	struct ms_inv_snap base;
	int have_base;
	uint64_t faults[MS_MAX_INJECT];
	char detail[MS_MAX_INJECT][MS_INJECT_DETAIL_MAX];
	unsigned char state[MS_MAX_INJECT][MS_INJECT_STATE_BYTES] __attribute__((aligned(64)));
};

/*
 * One case runs at a time, and the case process is a fresh fork of the runner for every
 * repeat: this pointer is set before that fork and cleared after the case, so each case sees
 * only its own area. Hooks reach it from a workload's ctx without a field in struct ms_ctx.
 */
static struct inj_area *inj_area;

static int inj_index(const struct ms_ctx *ctx, const struct ms_injector *inj)
{
	for (unsigned k = 0; k < ctx->c->ninj; k++)
		if (ctx->c->inj[k] == inj)
			return (int)k;
	return -1;
}

static struct inj_area *area_new(void)
{
	struct inj_area *a = mmap(NULL, sizeof(*a), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return a == MAP_FAILED ? NULL : a;
}

static void touch_area(void);

void *ms_inject_state(const struct ms_ctx *ctx, const struct ms_injector *inj)
{
	static pid_t touched;
	int k = inj_index(ctx, inj);

	if (k < 0)
		return NULL;
	/*
	 * Made in the case process at its first arm when the runner made none: the case and
	 * its workers still share it; only the runner's side (invariants) is missing then.
	 */
	if (!inj_area && !(inj_area = area_new()))
		return NULL;
	/* The case process's first call (an arm): see touch_area(). */
	if (touched != getpid() && getpid() == getpgrp()) {
		touched = getpid();
		touch_area();
	}
	return inj_area->state[k];
}

void ms_inject_count(struct ms_ctx *ctx, const struct ms_injector *inj, uint64_t faults)
{
	int k = inj_index(ctx, inj);

	if (k >= 0 && inj_area)
		__atomic_fetch_add(&inj_area->faults[k], faults, __ATOMIC_RELAXED);
}

void ms_inject_detail(struct ms_ctx *ctx, const struct ms_injector *inj, const char *text)
{
	int k = inj_index(ctx, inj);

	if (k >= 0 && inj_area)
		ms_strlcpy(inj_area->detail[k], text, sizeof(inj_area->detail[k]));
}

void ms_inject_stop(struct ms_ctx *ctx)
{
	__atomic_store_n(&ctx->shm->stop, 1, __ATOMIC_RELAXED);
}

int ms_inject_mkdir(struct ms_ctx *ctx, const char *path, unsigned mode)
{
	if (!ctx->journal)
		return -ENOTSUP;
	return ms_journal_mkdir(ctx->journal, path, mode);
}

void ms_inject_point(struct ms_ctx *ctx, const char *point)
{
	const struct ms_case *c = ctx->c;

	if (!c->ninj || !inj_area)
		return;
	for (unsigned k = 0; k < c->ninj; k++)
		if (c->inj[k]->before)
			c->inj[k]->before(ctx, point);
}

bool ms_inject_done(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	const struct ms_case *c = ctx->c;
	bool hit = false;

	if (!c->ninj || !inj_area)
		return false;
	/* Every injector sees the result: each one resets what its before() set up. */
	for (unsigned k = 0; k < c->ninj; k++)
		if (c->inj[k]->after && c->inj[k]->after(ctx, point, ret, err))
			hit = true;
	return hit;
}

bool ms_inject_killed(struct ms_ctx *ctx, pid_t pid, int status)
{
	const struct ms_case *c = ctx->c;

	if (!c->ninj || !inj_area)
		return false;
	for (unsigned k = 0; k < c->ninj; k++)
		if (c->inj[k]->killed && c->inj[k]->killed(ctx, pid, status))
			return true;
	return false;
}

static size_t append(char *buf, size_t len, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t len, size_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (at >= len)
		return at;
	va_start(ap, fmt);
	n = vsnprintf(buf + at, len - at, fmt, ap);
	va_end(ap);
	return n < 0 ? at : at + (size_t)n;
}

void ms_inject_describe(const struct ms_ctx *ctx, char *buf, size_t len)
{
	const struct ms_case *c = ctx->c;
	char v[MS_PARAM_STR_MAX];
	size_t at = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (unsigned k = 0; k < c->ninj; k++) {
		const struct ms_param *p = c->inj[k]->params;

		at = append(buf, len, at, "%s%s(", k ? " + " : "", c->inj[k]->name);
		for (int n = 0; p && p[n].name; n++) {
			/* The invariant limits are the same for all; they are in the message. */
			if (!strncmp(p[n].name, "inv_", 4))
				continue;
			ms_param_format(&p[n], &c->inj_vals[k][n], v, sizeof(v));
			at = append(buf, len, at, "%s%s=%s", at && buf[at - 1] == '(' ? "" : " ",
				    p[n].name, v);
		}
		at = append(buf, len, at, ")");
	}
	append(buf, len, at, " seed %llu", (unsigned long long)ctx->seed);
}

const char *ms_inject_rerun(const struct ms_ctx *ctx)
{
	(void)ctx;
	return inj_area ? inj_area->rerun : "";
}

/* ---- the runner's side ---- */

/*
 * A shared mapping's page tables are not copied by fork: a worker's first hook would fault
 * them in, inside whatever window the workload measures (fork-storm reads VmPTE around its
 * forks, thp-split around its ops in the case process). Workers (children of the case
 * process, the group leader) touch the area up front, the case process at its first arm.
 */
static void touch_area(void)
{
	volatile const char *p = (const char *)inj_area;

	if (!p || (getppid() != getpgrp() && getpid() != getpgrp()))
		return;
	for (size_t off = 0; off < sizeof(*inj_area); off += 4096)
		(void)p[off];
}

int ms_inject_case_begin(struct ms_ctx *ctx, const char *suite_path)
{
	static bool atfork_registered;
	struct inj_area *a;

	if (!ctx->c->ninj)
		return 0;
	if (!atfork_registered && pthread_atfork(NULL, NULL, touch_area))
		return -ENOMEM;
	atfork_registered = true;
	a = area_new();
	if (!a)
		return -errno;
	snprintf(a->rerun, sizeof(a->rerun), "mmstorm run --case %s %s", ctx->c->name,
		 suite_path ? suite_path : "SUITE");
	a->have_base = !ms_inv_snapshot(&a->base);
	inj_area = a;
	return 0;
}

/* Counters of the case, so compare and reports count faults and checks like any metric. */
static void publish(struct ms_ctx *ctx, json_int_t checked)
{
	uint64_t total = 0;
	int id;

	for (unsigned k = 0; k < ctx->c->ninj; k++)
		total += inj_area->faults[k];
	if ((id = ms_metric(ctx, "injected_faults", MS_M_COUNTER, "faults")) >= 0)
		ms_count(ctx, id, total);
	if ((id = ms_metric(ctx, "invariant_checks", MS_M_COUNTER, "checks")) >= 0)
		ms_count(ctx, id, (uint64_t)checked);
}

json_t *ms_inject_case_end(struct ms_ctx *ctx)
{
	const struct ms_case *c = ctx->c;
	json_t *o, *faults, *detail, *inv;
	char desc[1024];

	if (!c->ninj || !inj_area)
		return NULL;
	faults = json_object();
	detail = json_object();
	for (unsigned k = 0; k < c->ninj; k++) {
		json_object_set_new(faults, c->inj[k]->name,
				    json_integer((json_int_t)inj_area->faults[k]));
		if (inj_area->detail[k][0])
			json_object_set_new(detail, c->inj[k]->name,
					    json_string(inj_area->detail[k]));
	}
	ms_inject_describe(ctx, desc, sizeof(desc));
	o = json_pack("{s:s, s:s, s:o, s:o}", "settings", desc, "rerun", inj_area->rerun,
		      "faults", faults, "detail", detail);
	if (!o)
		return NULL;
	if (inj_area->have_base)
		inv = ms_inv_check(ctx, &inj_area->base);
	else
		inv = json_pack("{s:s, s:I}", "skipped", "/proc/meminfo unreadable", "checked", 0);
	publish(ctx, json_integer_value(json_object_get(inv, "checked")));
	json_object_set_new(o, "invariants", inv);
	return o;
}

void ms_inject_case_free(struct ms_ctx *ctx)
{
	(void)ctx;
	if (!inj_area)
		return;
	munmap(inj_area, sizeof(*inj_area));
	inj_area = NULL;
}

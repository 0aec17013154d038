/* Fuzz sequences: names, the text form and its parser, the generator and the shrinker. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/fuzz.h"

static const char *const kind_names[MS_FZ_KIND_COUNT] = {
	[MS_FZ_WRITE] = "write", [MS_FZ_FORK] = "fork", [MS_FZ_EXIT] = "exit",
	[MS_FZ_DONTNEED] = "dontneed", [MS_FZ_FREE] = "free", [MS_FZ_COLD] = "cold",
	[MS_FZ_PAGEOUT] = "pageout", [MS_FZ_MREMAP] = "mremap", [MS_FZ_MUNMAP] = "munmap",
	[MS_FZ_MPROTECT] = "mprotect", [MS_FZ_MIGRATE] = "migrate",
	[MS_FZ_UFFD_REG] = "uffd-reg", [MS_FZ_UFFD_WP] = "uffd-wp",
	[MS_FZ_PFN_MAP] = "pfn-map", [MS_FZ_PFN_MUNMAP] = "pfn-munmap",
	[MS_FZ_PFN_MREMAP] = "pfn-mremap", [MS_FZ_PFN_MPROTECT] = "pfn-mprotect",
	[MS_FZ_PIN] = "pin", [MS_FZ_UNPIN] = "unpin", [MS_FZ_PIN_URING] = "pin-uring",
	[MS_FZ_PIN_GUP] = "pin-gup", [MS_FZ_COLLAPSE] = "collapse",
	[MS_FZ_PIN_WRITE] = "pin-write",
	[MS_FZ_FILE_WRITE] = "file-write", [MS_FZ_FILE_FILL] = "file-fill",
	[MS_FZ_FILE_ZAP] = "file-zap", [MS_FZ_FILE_PUNCH] = "file-punch",
	[MS_FZ_UFFD_MINOR] = "uffd-minor", [MS_FZ_CONTINUE] = "continue",
};

static const char *const file_names[] = {
	[MS_FZ_FILE_NONE] = "none", [MS_FZ_FILE_SHMEM] = "shmem", [MS_FZ_FILE_HUGETLB] = "hugetlb",
};

const char *ms_fz_kind_name(unsigned kind)
{
	return kind < MS_FZ_KIND_COUNT ? kind_names[kind] : "?";
}

static bool has_range(unsigned kind)
{
	return kind != MS_FZ_FORK && kind != MS_FZ_EXIT && kind != MS_FZ_UNPIN &&
	       kind != MS_FZ_COLLAPSE;
}

static bool has_to(unsigned kind)
{
	return kind == MS_FZ_MREMAP || kind == MS_FZ_PFN_MREMAP;
}

static bool has_prot(unsigned kind)
{
	return kind == MS_FZ_MPROTECT || kind == MS_FZ_PFN_MPROTECT || kind == MS_FZ_PIN_GUP;
}

static const char *prot_str(unsigned f)
{
	static const char *const s[] = { "none", "r", "w", "rw" };

	return s[f & 3];
}

size_t ms_fz_op_str(const struct ms_fz_op *op, char *buf, size_t len)
{
	size_t n = 0;

#define OUT(...) (n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__))
	OUT("%s p%u", ms_fz_kind_name(op->kind), op->proc);
	if (has_range(op->kind))
		OUT(" %u+%u", op->first, op->n);
	if (has_to(op->kind))
		OUT(" -> %u+%u", op->to, op->n2);
	if (has_prot(op->kind))
		OUT(" %s", prot_str(op->flags));
	if (op->kind == MS_FZ_UFFD_REG && (op->flags & MS_FZ_F_REMAP))
		OUT(" remap");
	if (op->kind == MS_FZ_UFFD_WP)
		OUT(" %s", op->flags & MS_FZ_F_ON ? "on" : "off");
	if (op->kind == MS_FZ_UNPIN || op->kind == MS_FZ_PIN_WRITE)
		OUT(" pin=%u", op->pin);
	if (op->nth)
		OUT(" nth=%u", op->nth);
#undef OUT
	return n;
}

char *ms_fz_seq_text(const struct ms_fz_seq *s, const char *sep)
{
	size_t cap = 64 + (size_t)s->nops * 64, n;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	n = (size_t)snprintf(buf, cap, "window %u %u%s", s->nslots, s->npages,
			     s->thp ? " thp" : "");
	if (s->file && n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "%sfile %s", sep, file_names[s->file % 3]);
	for (uint32_t i = 0; i < s->nops && n < cap; i++) {
		n += (size_t)snprintf(buf + n, cap - n, "%s", sep);
		if (n < cap)
			n += ms_fz_op_str(&s->ops[i], buf + n, cap - n);
	}
	return buf;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_word(struct ms_fz_op *op, const char *w)
{
	unsigned a, b;

	if (sscanf(w, "%u+%u", &a, &b) == 2 && a < 65536 && b < 65536) {
		if (op->n) {
			op->to = (uint16_t)a;
			op->n2 = (uint16_t)b;
		} else {
			op->first = (uint16_t)a;
			op->n = (uint16_t)b;
		}
		return 0;
	}
	if (sscanf(w, "pin=%u", &a) == 1 && a < 16) {
		op->pin = (uint8_t)a;
		return 0;
	}
	if (sscanf(w, "nth=%u", &a) == 1 && a > 0 && a < 65536) {
		op->nth = (uint16_t)a;
		return 0;
	}
	if (!strcmp(w, "->"))
		return 0;
	if (!strcmp(w, "remap") || !strcmp(w, "on")) {
		op->flags |= 1;
		return 0;
	}
	if (!strcmp(w, "off") || !strcmp(w, "none"))
		return 0;
	if (!strcmp(w, "r") || !strcmp(w, "rw") || !strcmp(w, "w")) {
		op->flags = (uint8_t)((strchr(w, 'r') ? MS_FZ_F_READ : 0) |
				      (strchr(w, 'w') ? MS_FZ_F_WRITE : 0));
		return 0;
	}
	return -EINVAL;
}

static int parse_op(struct ms_fz_op *op, char *line, char *err, size_t errlen)
{
	char *save = NULL, *w = strtok_r(line, " \t", &save);
	unsigned k, p;

	memset(op, 0, sizeof(*op));
	for (k = 0; k < MS_FZ_KIND_COUNT && strcmp(w, kind_names[k]); k++)
		;
	if (k == MS_FZ_KIND_COUNT)
		return fail(err, errlen, "unknown op '%s'", w);
	op->kind = (uint8_t)k;
	w = strtok_r(NULL, " \t", &save);
	if (!w || sscanf(w, "p%u", &p) != 1 || p >= MS_FZ_MAX_PROCS)
		return fail(err, errlen, "%s: expected a process p0..p%d", kind_names[k],
			    MS_FZ_MAX_PROCS - 1);
	op->proc = (uint8_t)p;
	while ((w = strtok_r(NULL, " \t", &save)))
		if (parse_word(op, w))
			return fail(err, errlen, "%s: cannot parse '%s'", kind_names[k], w);
	if (has_range(k) && !op->n)
		return fail(err, errlen, "%s: expected a range FIRST+N", kind_names[k]);
	if (has_to(k) && !op->n2)
		return fail(err, errlen, "%s: expected '-> TO+N2'", kind_names[k]);
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	if ((e = strchr(s, '#')))
		*e = 0;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

static int parse_line(struct ms_fz_seq *s, char *line, unsigned lineno, char *err, size_t errlen)
{
	unsigned a, b;
	char why[160], mode[8] = "";

	line = trim(line);
	if (!*line)
		return 0;
	if (!strncmp(line, "window ", 7)) {
		if (sscanf(line + 7, "%u %u %7s", &a, &b, mode) < 2 || !a || a > MS_FZ_MAX_SLOTS ||
		    b > a || (*mode && strcmp(mode, "thp")))
			return fail(err, errlen, "line %u: window NSLOTS NPAGES [thp] (1..%d)",
				    lineno, MS_FZ_MAX_SLOTS);
		s->nslots = (uint16_t)a;
		s->npages = (uint16_t)b;
		s->thp = *mode != 0;
		return 0;
	}
	if (!strncmp(line, "file ", 5)) {
		for (a = MS_FZ_FILE_SHMEM; a <= MS_FZ_FILE_HUGETLB &&
		     strcmp(line + 5, file_names[a]); a++)
			;
		if (a > MS_FZ_FILE_HUGETLB)
			return fail(err, errlen, "line %u: file shmem|hugetlb", lineno);
		s->file = (uint8_t)a;
		return 0;
	}
	if (s->nops == MS_FZ_MAX_OPS)
		return fail(err, errlen, "more than %d ops", MS_FZ_MAX_OPS);
	if (parse_op(&s->ops[s->nops], line, why, sizeof(why)))
		return fail(err, errlen, "line %u: %s", lineno, why);
	s->nops++;
	return 0;
}

int ms_fz_seq_parse(struct ms_fz_seq *s, const char *text, char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL, *line;
	unsigned lineno = 0;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	/* A comment runs to the end of its line: failure messages in headers hold ';' too. */
	for (char *c = strchr(copy, '#'); c; c = strchr(c, '#'))
		while (*c && *c != '\n')
			*c++ = ' ';
	for (line = strtok_r(copy, "\n;|", &save); line && !ret;
	     line = strtok_r(NULL, "\n;|", &save))
		ret = parse_line(s, line, ++lineno, err, errlen);
	if (!ret && !s->nslots)
		ret = fail(err, errlen, "no 'window NSLOTS NPAGES' line");
	free(copy);
	return ret;
}

/* ---- generator ---- */

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned below(uint64_t *s, unsigned n)
{
	return n ? (unsigned)(rnd(s) % n) : 0;
}

/* Weights: the ops that change VMAs and uffd state come often enough to meet each other. */
static const uint8_t weights[MS_FZ_KIND_COUNT] = {
	[MS_FZ_WRITE] = 14, [MS_FZ_FORK] = 3, [MS_FZ_EXIT] = 2, [MS_FZ_DONTNEED] = 4,
	[MS_FZ_FREE] = 3, [MS_FZ_COLD] = 2, [MS_FZ_PAGEOUT] = 3, [MS_FZ_MREMAP] = 8,
	[MS_FZ_MUNMAP] = 2, [MS_FZ_MPROTECT] = 6, [MS_FZ_MIGRATE] = 1,
	[MS_FZ_UFFD_REG] = 6, [MS_FZ_UFFD_WP] = 10,
	[MS_FZ_PFN_MAP] = 4, [MS_FZ_PFN_MUNMAP] = 3, [MS_FZ_PFN_MREMAP] = 3,
	[MS_FZ_PFN_MPROTECT] = 3, [MS_FZ_PIN] = 4, [MS_FZ_UNPIN] = 4, [MS_FZ_PIN_URING] = 4,
	[MS_FZ_PIN_GUP] = 3, [MS_FZ_COLLAPSE] = 4, [MS_FZ_PIN_WRITE] = 4,
	[MS_FZ_FILE_WRITE] = 4, [MS_FZ_FILE_FILL] = 6, [MS_FZ_FILE_ZAP] = 4, [MS_FZ_FILE_PUNCH] = 2,
	[MS_FZ_UFFD_MINOR] = 4, [MS_FZ_CONTINUE] = 8,
};

static bool allowed(const struct ms_fz_gen_cfg *g, unsigned k, const struct ms_fz_seq *s)
{
	bool thp = s->thp;

	/* MINOR registration needs UFFD_FEATURE_MINOR_SHMEM / _HUGETLBFS (the probe's). */
	if (k == MS_FZ_UFFD_MINOR || k == MS_FZ_CONTINUE)
		return s->file == MS_FZ_FILE_SHMEM ? g->minor_shmem :
		       s->file == MS_FZ_FILE_HUGETLB && g->minor_hugetlb;
	if (ms_fz_is_file(k))
		return s->file != MS_FZ_FILE_NONE;
	/*
	 * In a THP window a fork copies a whole pinned THP for the child where the model (one
	 * page a folio) copies the pinned page only: nothing tells them apart but a FOLL_GET
	 * reference (vmsplice), which follows the owner's writes only to an exclusive page.
	 */
	if (k == MS_FZ_COLLAPSE || k == MS_FZ_PIN)
		return k == MS_FZ_COLLAPSE ? thp : !thp;
	if (k == MS_FZ_UFFD_REG || k == MS_FZ_UFFD_WP)
		return g->uffd;
	if (k >= MS_FZ_PFN_MAP && k <= MS_FZ_PFN_MPROTECT)
		return g->pfn;
	if (k == MS_FZ_PIN_URING || k == MS_FZ_PIN_WRITE)
		return g->uring;
	if (k == MS_FZ_PIN_GUP)
		return g->gup;
	return k != MS_FZ_MIGRATE || g->migrate;
}

static unsigned pick_kind(const struct ms_fz_gen_cfg *g, const struct ms_fz_seq *s,
			  uint64_t *rng)
{
	unsigned total = 0, r, k;

	for (k = 0; k < MS_FZ_KIND_COUNT; k++)
		total += allowed(g, k, s) ? weights[k] : 0;
	r = below(rng, total);
	for (k = 0; k < MS_FZ_KIND_COUNT; k++) {
		unsigned w = allowed(g, k, s) ? weights[k] : 0;

		if (r < w)
			break;
		r -= w;
	}
	return k;
}

static void gen_range(struct ms_fz_op *op, unsigned nslots, uint64_t *rng)
{
	unsigned max = nslots < 6 ? nslots : 6;

	op->n = (uint16_t)(1 + below(rng, max));
	op->first = (uint16_t)below(rng, nslots - op->n + 1);
}

/*
 * How far into an op fail-nth reaches. An unpin's release has one allocation (the rsrc node
 * of an io_uring quiesce), a pin-write's io_uring_enter() a request and the read's async
 * state, a compaction write the sysctl buffer and its copy; the rest a dozen or so.
 */
static unsigned nth_max(unsigned k)
{
	if (k == MS_FZ_UNPIN || k == MS_FZ_MIGRATE)
		return 3;
	return k == MS_FZ_PIN_WRITE ? 4 : 12;
}

static void gen_op(struct ms_fz_op *op, const struct ms_fz_gen_cfg *g, const struct ms_fz_seq *s,
		   unsigned procs, const struct ms_fz_op *prev, uint64_t *rng)
{
	unsigned k = pick_kind(g, s, rng);
	bool pfn = k >= MS_FZ_PFN_MAP && k <= MS_FZ_PFN_MPROTECT;
	unsigned slots = pfn ? MS_FZ_PFN_SLOTS : ms_fz_is_file(k) ? MS_FZ_FILE_SLOTS : g->nslots;

	memset(op, 0, sizeof(*op));
	op->kind = (uint8_t)k;
	/* Process 0 most of the time: it is the one with userfaultfds and most pages. */
	op->proc = (uint8_t)(below(rng, 3) ? 0 : below(rng, procs));
	if (has_range(k))
		gen_range(op, slots, rng);
	/*
	 * Half the time the range of an earlier op: registering, protecting and then moving
	 * the same pages is what finds bugs, and independent ranges rarely line up.
	 */
	if (has_range(k) && prev && has_range(prev->kind) && below(rng, 2) &&
	    prev->first + prev->n <= slots) {
		op->first = prev->first;
		op->n = prev->n;
	}
	if (k == MS_FZ_MREMAP || k == MS_FZ_PFN_MREMAP) {
		bool in_place = below(rng, 3) == 0;

		op->n2 = (uint16_t)(in_place ? 1 + below(rng, op->n + 1) : op->n);
		if (op->first + op->n2 > slots)
			op->n2 = op->n;
		op->to = in_place ? op->first : (uint16_t)below(rng, slots - op->n2 + 1);
	}
	if (k == MS_FZ_MPROTECT || k == MS_FZ_PFN_MPROTECT) {
		static const uint8_t prots[] = { 0, MS_FZ_F_READ, MS_FZ_F_READ | MS_FZ_F_WRITE };

		op->flags = prots[below(rng, k == MS_FZ_PFN_MPROTECT ? 2 : 3)];
	}
	if (k == MS_FZ_UFFD_REG || k == MS_FZ_UFFD_WP)
		op->flags = (uint8_t)below(rng, 2);
	if (k == MS_FZ_UFFD_WP && below(rng, 4))
		op->flags = MS_FZ_F_ON;
	if (k == MS_FZ_UNPIN || k == MS_FZ_PIN_WRITE)
		op->pin = (uint8_t)below(rng, 4);
	/* Pages inside the pin: most pins are short. */
	if (k == MS_FZ_PIN_WRITE) {
		op->first = (uint16_t)below(rng, 2);
		op->n = (uint16_t)(1 + below(rng, 2));
	}
	/* Only process 0 registers userfaultfds. */
	if (k == MS_FZ_UFFD_MINOR || k == MS_FZ_CONTINUE)
		op->proc = 0;
	if (k == MS_FZ_PIN_GUP)
		op->flags = MS_FZ_F_READ | (below(rng, 2) ? MS_FZ_F_WRITE : 0);
	if (k == MS_FZ_FORK && g->nth && below(rng, 4) == 0)
		op->nth = (uint16_t)(1 + below(rng, 40));
	/* The others allocate less than a fork: their fault sites are few and early. */
	else if (ms_fz_nth_kind(k) && g->nth && below(rng, 6) == 0)
		op->nth = (uint16_t)(1 + below(rng, nth_max(k)));
}

void ms_fz_generate(struct ms_fz_seq *s, const struct ms_fz_gen_cfg *g, uint64_t *rng)
{
	unsigned nops = g->max_ops > 4 ? 4 + below(rng, g->max_ops - 3) : g->max_ops, procs = 1;

	memset(s, 0, sizeof(*s));
	s->nslots = g->nslots;
	s->npages = g->npages;
	/* A third in a THP window. */
	if (g->thp && below(rng, 3) == 0)
		s->thp = true;
	/*
	 * A quarter with a shared-file window. No draw without one: a seed list run with
	 * --ops -file draws the sequences it drew before the file window existed.
	 */
	if ((g->file_shmem || g->file_hugetlb) && below(rng, 4) == 0)
		s->file = g->file_hugetlb && (!g->file_shmem || below(rng, 2)) ?
			  MS_FZ_FILE_HUGETLB : MS_FZ_FILE_SHMEM;
	for (unsigned i = 0; i < nops && i < MS_FZ_MAX_OPS; i++) {
		gen_op(&s->ops[i], g, s, procs, i ? &s->ops[below(rng, i)] : NULL, rng);
		if (s->ops[i].kind == MS_FZ_FORK && procs < MS_FZ_MAX_PROCS)
			procs++;
		s->nops++;
	}
}

/* ---- shrinker ---- */

struct shrink {
	ms_fz_pred pred;
	void *arg;
	unsigned tests, max;
	struct ms_fz_seq cand;
};

static bool try_cand(struct shrink *sh, struct ms_fz_seq *s)
{
	if (sh->tests >= sh->max)
		return false;
	sh->tests++;
	if (!sh->pred(&sh->cand, sh->arg))
		return false;
	*s = sh->cand;
	return true;
}

static void drop(struct ms_fz_seq *dst, const struct ms_fz_seq *src, uint32_t at, uint32_t n)
{
	*dst = *src;
	memmove(dst->ops + at, src->ops + at + n, (src->nops - at - n) * sizeof(src->ops[0]));
	dst->nops = src->nops - n;
}

/* ddmin's complement step: remove chunks of size nops/2, nops/4, ... 1. */
static bool drop_chunks(struct shrink *sh, struct ms_fz_seq *s)
{
	bool any = false;

	for (uint32_t chunk = s->nops / 2 ? s->nops / 2 : 1; chunk >= 1; chunk /= 2) {
		for (uint32_t at = 0; at + chunk <= s->nops && s->nops > 1;) {
			drop(&sh->cand, s, at, chunk);
			if (try_cand(sh, s))
				any = true;
			else
				at += chunk;
		}
		if (chunk == 1)
			break;
	}
	return any;
}

/* Ops of process p: gone, with the fork that made it (the first fork after which p exists). */
static bool drop_proc(struct shrink *sh, struct ms_fz_seq *s, unsigned p)
{
	uint32_t n = 0;

	sh->cand = *s;
	for (uint32_t i = 0; i < s->nops; i++)
		if (s->ops[i].proc != p)
			sh->cand.ops[n++] = s->ops[i];
	if (n == s->nops)
		return false;
	sh->cand.nops = n;
	return try_cand(sh, s);
}

/* Process p's ops done by process 0 instead, without the first fork: fewer processes. */
static bool merge_proc(struct shrink *sh, struct ms_fz_seq *s, unsigned p)
{
	uint32_t n = 0;
	bool forked = false, any = false;

	sh->cand = *s;
	for (uint32_t i = 0; i < s->nops; i++) {
		struct ms_fz_op op = s->ops[i];

		if (!forked && op.kind == MS_FZ_FORK) {
			forked = true;
			continue;
		}
		if (op.proc == p) {
			op.proc = 0;
			any = true;
		}
		sh->cand.ops[n++] = op;
	}
	if (!forked || !any)
		return false;
	sh->cand.nops = n;
	return try_cand(sh, s);
}

static bool try_field(struct shrink *sh, struct ms_fz_seq *s, uint32_t i, size_t off,
		      uint16_t val)
{
	uint16_t *f;

	sh->cand = *s;
	f = (uint16_t *)((char *)&sh->cand.ops[i] + off);
	if (*f <= val)
		return false;
	*f = val;
	return try_cand(sh, s);
}

static bool shrink_args(struct shrink *sh, struct ms_fz_seq *s)
{
	bool any = false;

	for (uint32_t i = 0; i < s->nops; i++) {
		struct ms_fz_op *op = &s->ops[i];

		any |= try_field(sh, s, i, offsetof(struct ms_fz_op, nth), 0);
		if (op->n > 1)
			any |= try_field(sh, s, i, offsetof(struct ms_fz_op, n), 1) ||
			       try_field(sh, s, i, offsetof(struct ms_fz_op, n), op->n - 1);
		if (op->n2 > 1 && op->to != op->first)
			any |= try_field(sh, s, i, offsetof(struct ms_fz_op, n2), op->n);
		if (op->first)
			any |= try_field(sh, s, i, offsetof(struct ms_fz_op, first), 0);
	}
	return any;
}

/* No file op left: the sequence without its file window (one thing less to set up). */
static bool drop_file(struct shrink *sh, struct ms_fz_seq *s)
{
	if (!s->file)
		return false;
	for (uint32_t i = 0; i < s->nops; i++)
		if (ms_fz_is_file(s->ops[i].kind))
			return false;
	sh->cand = *s;
	sh->cand.file = MS_FZ_FILE_NONE;
	return try_cand(sh, s);
}

unsigned ms_fz_shrink(struct ms_fz_seq *s, ms_fz_pred pred, void *arg, unsigned max_tests)
{
	struct shrink *sh = calloc(1, sizeof(*sh));
	unsigned tests;
	bool any;

	if (!sh)
		return 0;
	sh->pred = pred;
	sh->arg = arg;
	sh->max = max_tests;
	do {
		any = drop_chunks(sh, s);
		for (unsigned p = MS_FZ_MAX_PROCS; p-- > 1;)
			any |= drop_proc(sh, s, p);
		for (unsigned p = MS_FZ_MAX_PROCS; p-- > 1;)
			any |= merge_proc(sh, s, p);
		any |= shrink_args(sh, s);
		any |= drop_file(sh, s);
	} while (any && sh->tests < sh->max);
	tests = sh->tests;
	free(sh);
	return tests;
}

/* Suite files: fio-style INI read through inih, checked and turned into cases. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "mmstorm/inject.h"
#include "mmstorm/perf.h"
#include "mmstorm/registry.h"
#include "mmstorm/suite.h"
#include "mmstorm/workload.h"

/* Bigger than any hand-written suite; keeps a runaway or binary file from costing much. */
#define SUITE_MAX_BYTES (1 << 20)
#define SUITE_MAX_CASES 4096
#define QUOTE_MAX 60
#define QUOTE_BUF (QUOTE_MAX + 16)
#define MSG_MAX 2048

#define NS_PER_MS 1000000LL
#define NS_PER_DAY (86400LL * 1000000000LL)

enum { CP_WORKLOAD, CP_INJECT, CP_REPEAT, CP_ITERATIONS, CP_DURATION, CP_TIMEOUT, CP_SEED,
       CP_PERF, CP_PERF_MODE, CP_COUNT };

static const char *const perf_modes[] = { "auto", "cgroup", "task", NULL };

const struct ms_param ms_case_params[] = {
	[CP_WORKLOAD] = { .name = "workload", .type = MS_P_STRING, .def = NULL, .unit = "",
			  .min = 1, .max = 0,
			  .help = "the workload this case runs (required; see `mmstorm list`)" },
	[CP_INJECT] = { .name = "inject", .type = MS_P_STRING, .def = "none", .unit = "",
			.min = 1, .max = 0,
			.help = "comma-separated injectors armed around every repeat, or none" },
	[CP_REPEAT] = { .name = "repeat", .type = MS_P_INT, .def = "1", .unit = "",
			.min = 1, .max = 10000,
			.help = "how many times the case runs, each in a fresh process" },
	[CP_ITERATIONS] = { .name = "iterations", .type = MS_P_INT, .def = "0", .unit = "",
			    .min = 0, .max = 1000000000000LL,
			    .help = "iterations per repeat; 0 = until duration (1 if both are 0)" },
	[CP_DURATION] = { .name = "duration", .type = MS_P_TIME, .def = "0", .unit = "",
			  .min = 0, .max = 7 * NS_PER_DAY,
			  .help = "run time per repeat; 0 = until iterations are done" },
	[CP_TIMEOUT] = { .name = "timeout", .type = MS_P_TIME, .def = "60s", .unit = "",
			 .min = NS_PER_MS, .max = 7 * NS_PER_DAY,
			 .help = "watchdog per repeat: past it the case is a TIMEOUT" },
	[CP_SEED] = { .name = "seed", .type = MS_P_INT, .def = "0", .unit = "",
		      .min = 0, .max = INT64_MAX,
		      .help = "random seed; 0 = derived from the suite seed and the case index" },
	[CP_PERF] = { .name = "perf", .type = MS_P_STRING, .def = "default", .unit = "",
		      .min = 1, .max = 0,
		      .help = "perf counters per repeat: default, none, or a comma list of events "
			      "(page-faults, cycles, tlb:tlb_flush, ...; docs/perf.md)" },
	[CP_PERF_MODE] = { .name = "perf_mode", .type = MS_P_ENUM, .def = "auto", .unit = "",
			   .min = 1, .max = 0, .choices = perf_modes,
			   .help = "where perf= counts: cgroup (per CPU, for a cgroup v2 of the "
				   "case's own: nothing per fork), task (inherited per-task "
				   "counters), auto (cgroup where it can be made, else task)" },
	[CP_COUNT] = { .name = NULL },
};

/* Keys only [global] has. Their defaults are applied by hand, not parsed from .def. */
enum { GP_NAME, GP_SEED, GP_VM_APPEND, GP_VM_MEM, GP_VM_SMP, GP_COUNT };

static const struct ms_param suite_params[] = {
	[GP_NAME] = { .name = "name", .type = MS_P_STRING, .min = 1, .max = 0 },
	[GP_SEED] = { .name = "seed", .type = MS_P_INT, .def = "1", .min = 0, .max = INT64_MAX },
	[GP_VM_APPEND] = { .name = "vm_append", .type = MS_P_STRING, .min = 1, .max = 0 },
	[GP_VM_MEM] = { .name = "vm_mem", .type = MS_P_SIZE, .unit = "bytes",
			.min = 32LL << 20, .max = 1LL << 40 },
	[GP_VM_SMP] = { .name = "vm_smp", .type = MS_P_INT, .unit = "cpus", .min = 1, .max = 64 },
	[GP_COUNT] = { .name = NULL },
};

struct entry {
	size_t key, val;		/* offsets into parser.arena */
	int line;
};

struct section {
	char name[MS_NAME_MAX];
	int line;
	size_t first, n;		/* its entries: ents[first .. first + n) */
};

/* A [global] key that passed the first checks: the default for cases that have the key. */
struct gdef {
	const struct entry *e;
	bool suite_key;			/* name, seed, vm_*: never a case default */
	bool used;
};

struct parser {
	const char *file;
	const char *buf;
	size_t len, pos;
	int lineno;
	bool stop;			/* tells the reader to end the inih pass */
	bool nomem;
	char *arena;
	size_t arena_len, arena_cap;
	struct entry *ents;
	size_t nents, ents_cap;
	struct section *secs;
	size_t nsecs, secs_cap;
	long cur;			/* section being read, -1 before the first header */
	long global;			/* index of [global] in secs, -1 if none */
	struct gdef *gdefs;
	size_t ngdefs;
	int err_line;			/* -1 no error yet, 0 about the whole file */
	char msg[MSG_MAX];
};

/* A table of parameters of one case and where each value comes from. */
struct binding {
	const struct ms_param *tab;
	struct ms_pval *vals;
	const struct entry **src;	/* per param: the section's entry that set it, or NULL */
	size_t n;
	const char *kind;		/* "workload", "injector", NULL for the case keys */
	const char *owner;
};

struct sbuf {
	char b[1024];
	size_t n;
};

__attribute__((format(printf, 2, 3)))
static void sb_add(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int ret;

	if (sb->n >= sizeof(sb->b) - 1)
		return;
	va_start(ap, fmt);
	ret = vsnprintf(sb->b + sb->n, sizeof(sb->b) - sb->n, fmt, ap);
	va_end(ap);
	if (ret > 0)
		sb->n += (size_t)ret;
	if (sb->n > sizeof(sb->b) - 1)
		sb->n = sizeof(sb->b) - 1;
}

/* n bytes of user text made safe for a one-line message: escaped, cut to QUOTE_MAX. */
static const char *quote_n(const char *text, size_t n, char *buf)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < QUOTE_BUF; i++) {
		if (o >= QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (s[i] < 0x20 || s[i] >= 0x7f)
			o += snprintf(buf + o, QUOTE_BUF - o, "\\x%02x", s[i]);
		else if (s[i] == '\\')
			o += snprintf(buf + o, QUOTE_BUF - o, "\\\\");
		else
			buf[o++] = s[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *quote(const char *text, char *buf)
{
	return quote_n(text, strlen(text), buf);
}

static bool earlier(const struct parser *p, int line)
{
	return p->err_line < 0 || line < p->err_line;
}

/* Keep the error of the lowest line: what a reader fixing the file top-down meets first. */
__attribute__((format(printf, 3, 4)))
static void fail(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	if (!earlier(p, line))
		return;
	p->err_line = line;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
}

static const char *ent_key(const struct parser *p, const struct entry *e)
{
	return p->arena + e->key;
}

static const char *ent_val(const struct parser *p, const struct entry *e)
{
	return p->arena + e->val;
}

static int grow(void **arr, size_t *cap, size_t want, size_t size)
{
	size_t ncap = *cap ? *cap : 16;
	void *n;

	if (want <= *cap)
		return 0;
	while (ncap < want)
		ncap *= 2;
	n = realloc(*arr, ncap * size);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static size_t levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* Closest candidate to a misspelt name, and the list of all candidates. */
struct suggest {
	const char *want;
	const char *best;
	size_t dist;
	struct sbuf all;
};

static void suggest_add(struct suggest *sg, const char *name)
{
	size_t d = levenshtein(sg->want, name);

	if (!sg->best || d < sg->dist) {
		sg->best = name;
		sg->dist = d;
	}
	sb_add(&sg->all, "%s%s", sg->all.n ? ", " : "", name);
}

static const char *suggest_close(const struct suggest *sg)
{
	size_t limit = 1 + strlen(sg->want) / 4;

	return sg->best && sg->dist <= (limit < 3 ? limit : 3) ? sg->best : NULL;
}

static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		lo = s[0] == 0xe0 ? 0xa0 : lo;
		hi = s[0] == 0xed ? 0x9f : hi;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		lo = s[0] == 0xf0 ? 0x90 : lo;
		hi = s[0] == 0xf4 ? 0x8f : hi;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Text lines only: tabs, printable ASCII and valid UTF-8 (in comments). */
static int check_bytes(struct parser *p, const char *line, size_t n, size_t col0)
{
	const unsigned char *s = (const unsigned char *)line;
	size_t i = 0, k;

	while (i < n) {
		if (s[i] == '\t' || (s[i] >= 0x20 && s[i] < 0x7f)) {
			i++;
			continue;
		}
		if (s[i] >= 0x80 && (k = utf8_seq(s + i, n - i))) {
			i += k;
			continue;
		}
		if (!s[i])
			fail(p, p->lineno, "NUL byte at column %zu (binary file?)", col0 + i + 1);
		else if (s[i] < 0x80)
			fail(p, p->lineno, "control byte 0x%02x at column %zu (binary file?)", s[i],
			     col0 + i + 1);
		else
			fail(p, p->lineno, "invalid UTF-8 byte 0x%02x at column %zu (binary file?)",
			     s[i], col0 + i + 1);
		return -EINVAL;
	}
	return 0;
}

static bool valid_name(const char *s, size_t n)
{
	if (!n || n >= MS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static int add_section(struct parser *p, const char *name, size_t n)
{
	struct section *sec;
	char q[QUOTE_BUF];
	bool global = n == 6 && !memcmp(name, "global", 6);

	for (size_t i = 0; i < p->nsecs; i++) {
		if (strlen(p->secs[i].name) == n && !memcmp(p->secs[i].name, name, n)) {
			fail(p, p->lineno, "duplicate section '%s' (first at line %d)",
			     quote_n(name, n, q), p->secs[i].line);
			return -EINVAL;
		}
	}
	if (!global && p->nsecs - (p->global >= 0) >= SUITE_MAX_CASES) {
		fail(p, p->lineno, "too many cases (at most %d)", SUITE_MAX_CASES);
		return -EINVAL;
	}
	if (grow((void **)&p->secs, &p->secs_cap, p->nsecs + 1, sizeof(*p->secs)))
		goto out_nomem;
	sec = &p->secs[p->nsecs];
	memcpy(sec->name, name, n);
	sec->name[n] = '\0';
	sec->line = p->lineno;
	sec->first = p->nents;
	sec->n = 0;
	if (global)
		p->global = (long)p->nsecs;
	p->cur = (long)p->nsecs++;
	return 0;
out_nomem:
	p->nomem = true;
	return -ENOMEM;
}

/* "[name]" with an optional comment after it; the section list is ours, not inih's. */
static int read_section(struct parser *p, const char *s, size_t n)
{
	const char *close = memchr(s, ']', n);
	char q[QUOTE_BUF];
	size_t len, rest;

	if (!close) {
		fail(p, p->lineno, "section header '%s' has no closing ']'", quote_n(s, n, q));
		return -EINVAL;
	}
	len = close - s - 1;
	if (!valid_name(s + 1, len)) {
		fail(p, p->lineno, "invalid section name '%s' (letters, digits, '_', '.', "
		     "'-', 1 to %d characters)",
		     quote_n(s + 1, len, q), MS_NAME_MAX - 1);
		return -EINVAL;
	}
	rest = n - (close + 1 - s);
	for (close++; rest && (*close == ' ' || *close == '\t'); rest--)
		close++;
	if (rest && *close != ';' && *close != '#') {
		fail(p, p->lineno, "unexpected text '%s' after section header",
		     quote_n(close, rest, q));
		return -EINVAL;
	}
	return add_section(p, s + 1, len);
}

/* Mirrors inih's split: the first '=' or ':', unless a ';' after whitespace comes first. */
static bool has_separator(const char *s, size_t n)
{
	bool was_space = false;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=' || s[i] == ':')
			return true;
		if (was_space && s[i] == ';')
			return false;
		was_space = s[i] == ' ' || s[i] == '\t';
	}
	return false;
}

/*
 * inih's reader. Debian's inih has no line numbers in the handler and no new-section
 * callback, so this reader counts lines, sees section headers itself and rejects what inih
 * would silently accept or cut (binary bytes, lines longer than its buffer). Leading blanks
 * are dropped so that inih never treats a line as a multi-line continuation.
 */
static char *suite_reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *line, *nl;
	size_t n, col0 = 0, max = num > 1 ? (size_t)num - 1 : 0;
	char q[QUOTE_BUF];

	if (p->stop || p->pos >= p->len)
		return NULL;
	line = p->buf + p->pos;
	nl = memchr(line, '\n', p->len - p->pos);
	n = nl ? (size_t)(nl - line) : p->len - p->pos;
	p->pos += n + (nl != NULL);
	p->lineno++;
	if (n && line[n - 1] == '\r')
		n--;
	if (p->lineno == 1 && n >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
		line += 3;
		n -= 3;
		col0 = 3;
	}
	if (check_bytes(p, line, n, col0))
		goto out_stop;
	if (n > max) {
		fail(p, p->lineno, "line too long (%zu bytes, at most %zu)", n, max);
		goto out_stop;
	}
	while (n && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	if (p->lineno == 1 && n >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
		fail(p, p->lineno, "stray byte-order mark");
		goto out_stop;
	}
	if (n && *line == '[') {
		if (read_section(p, line, n))
			goto out_stop;
	} else if (n && *line != ';' && *line != '#' && !has_separator(line, n)) {
		fail(p, p->lineno, "expected '[section]', 'key = value' or a comment, found '%s'",
		     quote_n(line, n, q));
		goto out_stop;
	}
	memcpy(str, line, n);
	str[n] = '\0';
	return str;
out_stop:
	p->stop = true;
	return NULL;
}

static int add_entry(struct parser *p, const char *key, const char *val)
{
	size_t kl = strlen(key) + 1, vl = strlen(val) + 1;
	struct entry *e;

	if (grow((void **)&p->arena, &p->arena_cap, p->arena_len + kl + vl, 1) ||
	    grow((void **)&p->ents, &p->ents_cap, p->nents + 1, sizeof(*p->ents)))
		return -ENOMEM;
	e = &p->ents[p->nents++];
	e->key = p->arena_len;
	e->val = p->arena_len + kl;
	e->line = p->lineno;
	memcpy(p->arena + e->key, key, kl);
	memcpy(p->arena + e->val, val, vl);
	p->arena_len += kl + vl;
	p->secs[p->cur].n++;
	return 0;
}

static int suite_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	char q[QUOTE_BUF];

	(void)section;	/* inih cuts long names; read_section keeps the real one */
	if (p->cur < 0)
		fail(p, p->lineno, "key '%s' outside any section (start with [global] or [case])",
		     quote(name, q));
	else if (!*name)
		fail(p, p->lineno, "[%s] missing key name before '='", p->secs[p->cur].name);
	else if (!value || !*value)
		fail(p, p->lineno, "[%s] key '%s' has an empty value", p->secs[p->cur].name,
		     quote(name, q));
	else if (add_entry(p, name, value))
		p->nomem = true;
	else
		return 1;
	p->stop = true;
	return 0;
}

static struct gdef *global_find(struct parser *p, const char *key)
{
	for (size_t i = 0; i < p->ngdefs; i++)
		if (!strcmp(ent_key(p, p->gdefs[i].e), key))
			return &p->gdefs[i];
	return NULL;
}

/* The first definition of a parameter name across all workloads and injectors. */
static const struct ms_param *registry_param(const char *key)
{
	const struct ms_param *prm;

	for (const struct ms_workload *const *w = ms_workloads; *w; w++)
		if ((prm = ms_param_find((*w)->params, key)))
			return prm;
	for (const struct ms_injector *const *i = ms_injectors; *i; i++)
		if ((prm = ms_param_find((*i)->params, key)))
			return prm;
	return NULL;
}

static int parse_at(struct parser *p, const char *sec, const struct entry *e,
		    const struct ms_param *prm, struct ms_pval *out)
{
	char err[MSG_MAX / 2], q[QUOTE_BUF];

	if (!ms_param_parse(prm, ent_val(p, e), out, err, sizeof(err)))
		return 0;
	fail(p, e->line, "[%s] key '%s': %s", sec, quote(ent_key(p, e), q), err);
	return -EINVAL;
}

static void list_workloads(struct suggest *sg)
{
	for (const struct ms_workload *const *w = ms_workloads; *w; w++)
		suggest_add(sg, (*w)->name);
}

static void list_injectors(struct suggest *sg)
{
	for (const struct ms_injector *const *i = ms_injectors; *i; i++)
		suggest_add(sg, (*i)->name);
}

static int add_injector(struct parser *p, const char *sec, const struct entry *e,
			const char *name, struct ms_case *c)
{
	struct suggest sg = { .want = name };
	const struct ms_injector *inj = ms_injector_find(name);
	char q[QUOTE_BUF];
	const char *close;

	if (!inj) {
		list_injectors(&sg);
		close = suggest_close(&sg);
		fail(p, e->line, "[%s] key 'inject': unknown injector '%s' (%s%s%s%s: %s)", sec,
		     quote(name, q), close ? "did you mean '" : "", close ? close : "",
		     close ? "'? " : "", "registered", sg.all.n ? sg.all.b : "none");
		return -EINVAL;
	}
	for (unsigned j = 0; j < c->ninj; j++) {
		if (c->inj[j] == inj) {
			fail(p, e->line, "[%s] key 'inject': injector '%s' is listed twice", sec,
			     inj->name);
			return -EINVAL;
		}
	}
	if (c->ninj == MS_MAX_INJECT) {
		fail(p, e->line, "[%s] key 'inject': more than %d injectors", sec, MS_MAX_INJECT);
		return -EINVAL;
	}
	c->inj[c->ninj++] = inj;
	return 0;
}

/* inject=a,b,c (or none) into c->inj[]. */
static int resolve_inject(struct parser *p, const char *sec, const struct entry *e,
			  struct ms_case *c)
{
	char *item, *next, q[QUOTE_BUF];
	struct ms_pval v;

	if (parse_at(p, sec, e, &ms_case_params[CP_INJECT], &v))
		return -EINVAL;
	if (!strcasecmp(v.s, "none"))
		return 0;
	for (item = v.s; item; item = next) {
		char *end;

		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		while (*item == ' ' || *item == '\t')
			item++;
		end = item + strlen(item);
		while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*item) {
			fail(p, e->line, "[%s] key 'inject': empty injector name in '%s'", sec,
			     quote(ent_val(p, e), q));
			return -EINVAL;
		}
		if (add_injector(p, sec, e, item, c))
			return -EINVAL;
	}
	return 0;
}

static void apply_suite_key(struct parser *p, int key, const struct entry *e, struct ms_suite *s)
{
	const char *val = ent_val(p, e);
	char q[QUOTE_BUF];
	struct ms_pval v;

	if (key == GP_NAME && !valid_name(val, strlen(val))) {
		fail(p, e->line, "[global] key 'name': expected name (letters, digits, '_', '.', "
		     "'-', 1 to %d characters), found '%s'", MS_NAME_MAX - 1, quote(val, q));
		return;
	}
	if (parse_at(p, "global", e, &suite_params[key], &v))
		return;
	switch (key) {
	case GP_NAME:
		snprintf(s->name, sizeof(s->name), "%.*s", (int)sizeof(s->name) - 1, v.s);
		break;
	case GP_SEED:
		s->seed = (uint64_t)v.i;
		break;
	case GP_VM_APPEND:
		snprintf(s->vm_append, sizeof(s->vm_append), "%s", v.s);
		break;
	case GP_VM_MEM:
		s->vm_mem_bytes = v.i;
		break;
	case GP_VM_SMP:
		s->vm_smp = (int)v.i;
		break;
	}
}

static void global_unknown(struct parser *p, const struct entry *e)
{
	const char *key = ent_key(p, e), *close;
	struct suggest sg = { .want = key };
	char q[QUOTE_BUF];

	for (const struct ms_param *prm = suite_params; prm->name; prm++)
		suggest_add(&sg, prm->name);
	for (const struct ms_param *prm = ms_case_params + 1; prm->name; prm++)
		suggest_add(&sg, prm->name);
	for (const struct ms_workload *const *w = ms_workloads; *w; w++)
		for (const struct ms_param *prm = (*w)->params; prm && prm->name; prm++)
			suggest_add(&sg, prm->name);
	for (const struct ms_injector *const *i = ms_injectors; *i; i++)
		for (const struct ms_param *prm = (*i)->params; prm && prm->name; prm++)
			suggest_add(&sg, prm->name);
	close = suggest_close(&sg);
	if (close)
		fail(p, e->line, "[global] unknown key '%s' (did you mean '%s'?)", quote(key, q),
		     close);
	else
		fail(p, e->line, "[global] unknown key '%s' (not a suite key, a case key, or a "
		     "parameter of any workload or injector; see `mmstorm list`)", quote(key, q));
}

static void load_global_entry(struct parser *p, const struct entry *e, struct ms_suite *s)
{
	const char *key = ent_key(p, e);
	const struct ms_param *prm;
	struct gdef *g = global_find(p, key);
	char q[QUOTE_BUF];
	struct ms_pval v;

	if (g) {
		fail(p, e->line, "[global] duplicate key '%s' (first at line %d)", quote(key, q),
		     g->e->line);
		return;
	}
	g = &p->gdefs[p->ngdefs];
	*g = (struct gdef){ .e = e };
	if ((prm = ms_param_find(suite_params, key))) {
		g->suite_key = true;
		apply_suite_key(p, (int)(prm - suite_params), e, s);
	} else if ((prm = ms_param_find(ms_case_params, key))) {
		if (prm == &ms_case_params[CP_WORKLOAD]) {
			fail(p, e->line, "[global] key 'workload' is not allowed here: each case "
			     "names its own workload");
			return;
		}
		if (prm == &ms_case_params[CP_INJECT]) {
			struct ms_case scratch = { .ninj = 0 };

			resolve_inject(p, "global", e, &scratch);
		} else {
			parse_at(p, "global", e, prm, &v);
		}
	} else if (!registry_param(key)) {
		if (earlier(p, e->line))	/* spares the search on a file full of bad keys */
			global_unknown(p, e);
		return;
	}
	p->ngdefs++;
}

static int load_globals(struct parser *p, struct ms_suite *s)
{
	const struct section *sec;

	if (p->global < 0)
		return 0;
	sec = &p->secs[p->global];
	p->gdefs = calloc(sec->n ? sec->n : 1, sizeof(*p->gdefs));
	if (!p->gdefs)
		return -ENOMEM;
	for (size_t i = 0; i < sec->n; i++)
		load_global_entry(p, &p->ents[sec->first + i], s);
	return 0;
}

/* Defaults nobody used were never checked against a case: check them against the registry. */
static void check_unused_globals(struct parser *p)
{
	struct ms_pval v;

	for (size_t i = 0; i < p->ngdefs; i++) {
		const struct gdef *g = &p->gdefs[i];
		const struct ms_param *prm;

		if (g->suite_key || g->used || ms_param_find(ms_case_params, ent_key(p, g->e)))
			continue;
		prm = registry_param(ent_key(p, g->e));
		if (prm)
			parse_at(p, "global", g->e, prm, &v);
	}
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void unknown_key(struct parser *p, const struct section *sec, const struct entry *e,
			const struct binding *b, size_t nb)
{
	const char *key = ent_key(p, e), *close;
	struct suggest sg = { .want = key };
	char q[QUOTE_BUF];

	if (ms_param_find(suite_params, key)) {
		fail(p, e->line, "[%s] key '%s' is only allowed in [global]", sec->name, key);
		return;
	}
	for (size_t i = 0; i < nb; i++)
		for (size_t j = 0; j < b[i].n; j++)
			suggest_add(&sg, b[i].tab[j].name);
	close = suggest_close(&sg);
	if (close)
		fail(p, e->line, "[%s] unknown key '%s' for workload '%s' (did you mean '%s'?)",
		     sec->name, quote(key, q), b[1].owner, close);
	else
		fail(p, e->line, "[%s] unknown key '%s' for workload '%s' (valid keys: %s)",
		     sec->name, quote(key, q), b[1].owner, sg.all.b);
}

static bool is_meta_key(const char *key)
{
	return !strncmp(key, MS_META_PREFIX, strlen(MS_META_PREFIX)) &&
	       key[strlen(MS_META_PREFIX)];
}

/* Metadata keys of the section, in file order; a repeated key continues the value. */
static int collect_meta(struct parser *p, const struct section *sec, struct ms_case *c)
{
	for (size_t k = 0; k < sec->n; k++) {
		const struct entry *e = &p->ents[sec->first + k];
		struct ms_case_meta *m = NULL;
		char *v;

		if (!is_meta_key(ent_key(p, e)))
			continue;
		for (unsigned i = 0; i < c->nmeta && !m; i++)
			if (!strcmp(c->meta[i].key, ent_key(p, e)))
				m = &c->meta[i];
		if (m) {
			if (asprintf(&v, "%s %s", m->val, ent_val(p, e)) < 0)
				return -ENOMEM;
			free(m->val);
			m->val = v;
			continue;
		}
		m = realloc(c->meta, (c->nmeta + 1) * sizeof(*m));
		if (!m)
			return -ENOMEM;
		c->meta = m;
		m = &c->meta[c->nmeta];
		m->key = strdup(ent_key(p, e));
		m->val = strdup(ent_val(p, e));
		c->nmeta += m->key && m->val;
		if (!m->key || !m->val) {
			free(m->key);
			free(m->val);
			return -ENOMEM;
		}
	}
	return 0;
}

const char *ms_case_meta(const struct ms_case *c, const char *key)
{
	for (unsigned i = 0; i < c->nmeta; i++)
		if (!strcmp(c->meta[i].key, key))
			return c->meta[i].val;
	return NULL;
}

/* Give each entry of the section to every table that has its key. */
static void bind_entries(struct parser *p, const struct section *sec, struct binding *b,
			 size_t nb, bool checkable)
{
	char q[QUOTE_BUF];

	for (size_t k = 0; k < sec->n; k++) {
		const struct entry *e = &p->ents[sec->first + k], *dup = NULL;
		bool matched = false;

		if (is_meta_key(ent_key(p, e)))
			continue;
		for (size_t i = 0; i < nb; i++) {
			const struct ms_param *prm = ms_param_find(b[i].tab, ent_key(p, e));

			if (!prm)
				continue;
			matched = true;
			if (b[i].src[prm - b[i].tab])
				dup = b[i].src[prm - b[i].tab];
			else
				b[i].src[prm - b[i].tab] = e;
		}
		if (dup)
			fail(p, e->line, "[%s] duplicate key '%s' (first at line %d)", sec->name,
			     quote(ent_key(p, e), q), dup->line);
		else if (!matched && checkable && earlier(p, e->line))
			unknown_key(p, sec, e, b, nb);
	}
}

/* Value of each parameter: from the section, else from [global], else the table default. */
static void fill_values(struct parser *p, const struct section *sec, struct binding *b)
{
	char err[MSG_MAX / 2];

	for (size_t j = 0; j < b->n; j++) {
		const struct ms_param *prm = &b->tab[j];
		struct gdef *g;

		if (!b->kind && (j == CP_WORKLOAD || j == CP_INJECT))
			continue;	/* resolved before the tables were built */
		if (b->src[j]) {
			parse_at(p, sec->name, b->src[j], prm, &b->vals[j]);
			continue;
		}
		g = global_find(p, prm->name);
		if (g && !g->suite_key) {
			g->used = true;
			parse_at(p, "global", g->e, prm, &b->vals[j]);
		} else if (!prm->def) {
			fail(p, sec->line, "[%s] missing required key '%s' for %s '%s'", sec->name,
			     prm->name, b->kind, b->owner);
		} else if (ms_param_parse(prm, prm->def, &b->vals[j], err, sizeof(err))) {
			fail(p, sec->line, "[%s] %s '%s' has a bad default for '%s': %s",
			     sec->name, b->kind ? b->kind : "case", b->owner, prm->name, err);
		}
	}
}

static void apply_case_keys(struct ms_case *c, const struct ms_pval *v, uint64_t suite_seed,
			    unsigned idx)
{
	c->repeat = (unsigned)v[CP_REPEAT].i;
	c->iterations = (uint64_t)v[CP_ITERATIONS].i;
	c->duration_ns = v[CP_DURATION].i;
	c->timeout_ns = v[CP_TIMEOUT].i;
	if (!c->iterations && !c->duration_ns)
		c->iterations = 1;
	c->seed = (uint64_t)v[CP_SEED].i;
	snprintf(c->perf, sizeof(c->perf), "%s", v[CP_PERF].s);
	c->perf_mode = (int)v[CP_PERF_MODE].i;
	if (!c->seed)
		c->seed = mix64(suite_seed ^ mix64(idx + 1));
}

static const struct entry *first_entry(struct parser *p, const struct section *sec,
				       const char *key)
{
	for (size_t k = 0; k < sec->n; k++)
		if (!strcmp(ent_key(p, &p->ents[sec->first + k]), key))
			return &p->ents[sec->first + k];
	return NULL;
}

static bool find_workload(struct parser *p, const struct section *sec, struct ms_case *c)
{
	const struct entry *wl = first_entry(p, sec, "workload");
	struct suggest sg;
	char q[QUOTE_BUF];
	const char *close;

	if (!wl) {
		fail(p, sec->line, "[%s] missing workload= (every case names the workload it runs)",
		     sec->name);
		return false;
	}
	c->wl = ms_workload_find(ent_val(p, wl));
	if (c->wl)
		return true;
	sg = (struct suggest){ .want = ent_val(p, wl) };
	list_workloads(&sg);
	close = suggest_close(&sg);
	fail(p, wl->line, "[%s] unknown workload '%s' (%s%s%s%s: %s)", sec->name,
	     quote(ent_val(p, wl), q), close ? "did you mean '" : "", close ? close : "",
	     close ? "'? " : "", "registered", sg.all.n ? sg.all.b : "none");
	return false;
}

/* Find the workload and injectors; false if the section's other keys cannot be judged. */
static bool resolve_case(struct parser *p, const struct section *sec, struct ms_case *c)
{
	const struct entry *inj = first_entry(p, sec, "inject");
	struct gdef *g = global_find(p, "inject");
	bool ok = find_workload(p, sec, c);

	if (inj)
		return !resolve_inject(p, sec->name, inj, c) && ok;
	if (g)
		return !resolve_inject(p, "global", g->e, c) && ok;
	return ok;
}

static int alloc_binding(struct binding *b, const struct ms_param *tab, struct ms_pval *vals,
			 const char *kind, const char *owner)
{
	b->tab = tab;
	b->n = ms_param_count(tab);
	b->kind = kind;
	b->owner = owner;
	b->src = calloc(b->n ? b->n : 1, sizeof(*b->src));
	b->vals = vals ? vals : calloc(b->n ? b->n : 1, sizeof(*b->vals));
	return b->src && b->vals ? 0 : -ENOMEM;
}

static int load_case(struct parser *p, const struct section *sec, struct ms_suite *s,
		     unsigned idx)
{
	struct ms_case *c = &s->cases[idx];
	struct binding b[2 + MS_MAX_INJECT] = { 0 };
	struct ms_pval cvals[CP_COUNT];
	char perr[256];
	size_t nb = 1;
	bool checkable;
	int ret;

	snprintf(c->name, sizeof(c->name), "%s", sec->name);
	c->line = sec->line;
	checkable = resolve_case(p, sec, c);
	ret = alloc_binding(&b[0], ms_case_params, cvals, NULL, "");
	if (!ret && c->wl) {
		ret = alloc_binding(&b[1], c->wl->params, NULL, "workload", c->wl->name);
		c->vals = b[1].vals;
		nb = 2;
	}
	for (unsigned j = 0; !ret && c->wl && j < c->ninj; j++) {
		ret = alloc_binding(&b[nb], c->inj[j]->params, NULL, "injector", c->inj[j]->name);
		c->inj_vals[j] = b[nb++].vals;
	}
	if (ret)
		goto out_free;
	if ((ret = collect_meta(p, sec, c)))
		goto out_free;
	bind_entries(p, sec, b, nb, checkable);
	for (size_t i = 0; i < nb; i++)
		fill_values(p, sec, &b[i]);
	apply_case_keys(c, cvals, s->seed, idx);
	if (ms_perf_spec_check(c->perf, perr, sizeof(perr)))
		fail(p, b[0].src[CP_PERF] ? b[0].src[CP_PERF]->line : sec->line, "[%s] key 'perf': %s",
		     sec->name, perr + 6);
out_free:
	for (size_t i = 0; i < 2 + MS_MAX_INJECT; i++)
		free(b[i].src);
	return ret;
}

static int build(struct parser *p, struct ms_suite *s)
{
	size_t ncases = p->nsecs - (p->global >= 0);
	int ret;

	ret = load_globals(p, s);
	if (ret || !ncases)
		return ret;
	s->cases = calloc(ncases, sizeof(*s->cases));
	if (!s->cases)
		return -ENOMEM;
	for (size_t i = 0; i < p->nsecs && !ret; i++) {
		if ((long)i == p->global)
			continue;
		ret = load_case(p, &p->secs[i], s, s->ncases++);
	}
	if (!ret)
		check_unused_globals(p);
	return ret;
}

static void default_name(struct ms_suite *s, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 4 && !strcmp(base + n - 4, ".ini"))
		n -= 4;
	if (!n) {
		base = "suite";
		n = 5;
	}
	if (n >= sizeof(s->name))
		n = sizeof(s->name) - 1;
	memcpy(s->name, base, n);
	s->name[n] = '\0';
}

/* The file name as the user gave it, minus bytes that would break the one-line message. */
static void write_error(const struct parser *p, char *err, size_t errlen)
{
	size_t o = 0;

	if (!err || !errlen)
		return;
	for (const unsigned char *c = (const unsigned char *)p->file; *c && o + 5 < errlen; c++) {
		if (*c < 0x20 || *c == 0x7f)
			o += snprintf(err + o, errlen - o, "\\x%02x", *c);
		else
			err[o++] = *c;
	}
	err[o] = '\0';
	if (p->err_line > 0)
		snprintf(err + o, errlen - o, ":%d: %s", p->err_line, p->msg);
	else
		snprintf(err + o, errlen - o, ": %s", p->msg);
}

static void parser_free(struct parser *p)
{
	free(p->arena);
	free(p->ents);
	free(p->secs);
	free(p->gdefs);
}

int ms_suite_load_mem(struct ms_suite *s, const char *name, const char *buf, size_t len,
		      char *err, size_t errlen)
{
	struct parser p = { .file = name ? name : "suite", .buf = buf, .len = len, .cur = -1,
			    .global = -1, .err_line = -1 };
	int ret = 0, rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->path, sizeof(s->path), "%s", p.file);
	default_name(s, p.file);
	s->seed = 1;
	if (err && errlen)
		err[0] = '\0';
	if (len > SUITE_MAX_BYTES) {
		fail(&p, 0, "file too large (%zu bytes, at most %d)", len, SUITE_MAX_BYTES);
	} else if (!len) {
		fail(&p, 0, "file is empty");
	} else {
		rc = ini_parse_stream(suite_reader, &p, suite_handler, &p);
		if (p.nomem)
			ret = -ENOMEM;
		else if (rc && p.err_line < 0)
			fail(&p, rc > 0 ? rc : 0, "cannot parse this line (inih error %d)", rc);
		if (!ret && p.err_line < 0)
			ret = build(&p, s);
		if (!ret && p.err_line < 0 && !s->ncases)
			fail(&p, 0, "no cases (every section other than [global] is a case)");
	}
	if (ret)
		fail(&p, 0, "%s", strerror(-ret));
	if (p.err_line >= 0) {
		write_error(&p, err, errlen);
		ms_suite_free(s);
		ret = ret ? ret : -EINVAL;
	}
	parser_free(&p);
	return ret;
}

/* Reads at most SUITE_MAX_BYTES + 1 bytes: enough to tell that a file is too large. */
static ssize_t read_suite(const char *path, char **bufp, off_t *size)
{
	char *buf = malloc(SUITE_MAX_BYTES + 1);
	size_t off = 0;
	struct stat st;
	ssize_t ret;
	int fd;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		goto out_close;
	}
	while (off < SUITE_MAX_BYTES + 1) {
		ret = read(fd, buf + off, SUITE_MAX_BYTES + 1 - off);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			ret = -errno;
			goto out_close;
		}
		if (!ret)
			break;
		off += (size_t)ret;
	}
	close(fd);
	*bufp = buf;
	*size = S_ISREG(st.st_mode) && st.st_size > (off_t)off ? st.st_size : (off_t)off;
	return (ssize_t)off;
out_close:
	close(fd);
out_free:
	free(buf);
	return ret;
}

__attribute__((format(printf, 5, 6)))
static int file_error(struct ms_suite *s, const char *path, char *err, size_t errlen,
		      const char *fmt, ...)
{
	struct parser p = { .file = path, .err_line = 0 };
	va_list ap;

	memset(s, 0, sizeof(*s));
	va_start(ap, fmt);
	vsnprintf(p.msg, sizeof(p.msg), fmt, ap);
	va_end(ap);
	write_error(&p, err, errlen);
	return -EINVAL;
}

int ms_suite_load(struct ms_suite *s, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	off_t size = 0;
	ssize_t n;
	int ret;

	n = read_suite(path, &buf, &size);
	if (n < 0) {
		ret = file_error(s, path, err, errlen, "%s", strerror((int)-n));
		return n == -ENOMEM ? -ENOMEM : ret;
	}
	if (n > SUITE_MAX_BYTES)
		ret = file_error(s, path, err, errlen, "file too large (%lld bytes, at most %d)",
				 (long long)size, SUITE_MAX_BYTES);
	else
		ret = ms_suite_load_mem(s, path, buf, (size_t)n, err, errlen);
	free(buf);
	return ret;
}

void ms_suite_free(struct ms_suite *s)
{
	for (unsigned i = 0; s->cases && i < s->ncases; i++) {
		free(s->cases[i].vals);
		for (unsigned j = 0; j < MS_MAX_INJECT; j++)
			free(s->cases[i].inj_vals[j]);
		for (unsigned j = 0; j < s->cases[i].nmeta; j++) {
			free(s->cases[i].meta[j].key);
			free(s->cases[i].meta[j].val);
		}
		free(s->cases[i].meta);
	}
	free(s->cases);
	s->cases = NULL;
	s->ncases = 0;
}

/* `mmstorm lava collect`: run.json per kernel from the LAVA logs of all its shards. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "mmstorm/lava.h"
#include "mmstorm/report.h"
#include "mmstorm/result.h"
#include "mmstorm/suite.h"
#include "mmstorm/util.h"
#include "mmstorm/vm.h"
#include "report/lava_int.h"
#include "vm/vm.h"

#define MAX_LOGS 1024
#define MAX_BAD 20

/* One LAVA job's log: one shard of one kernel. */
struct shard {
	const char *path;
	char label[64];
	unsigned number, count;		/* shard number/count (1-based), 0 if unknown */
	char cases[1024];		/* its case set, "" if unknown */
	bool has_cases;
	bool saw_start, saw_end, timed_out;
	char lava_error[512];		/* the first error LAVA logged */
	int64_t t0_ns, tlast_ns;	/* epoch ns of the first and last log line */
	int64_t dt_ns;			/* of the line being read */
	int open_index, open_repeat;	/* a case that started and did not end, -1 */
	int64_t open_t_ns;
	struct ms_lava_dec dec;
	struct ms_vmstream stream;
	struct ms_vmcon *con;
	json_t *events;			/* valid events in order, t_ns = epoch ns */
	json_t *problems;		/* strings */
	json_t *ended;			/* case index -> true, as strings */
};

struct collect {
	const char *results;
	const char *run_id;
	const char *suite_path;
	struct ms_suite suite;
	bool have_suite;
	struct shard *sh[MAX_LOGS];
	unsigned nsh;
	char dir[PATH_MAX];
};

/* ---- LAVA log lines ---- */

static void put_utf8(char **o, unsigned long cp)
{
	unsigned char *p = (unsigned char *)*o;

	if (cp < 0x80) {
		*p++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*p++ = (unsigned char)(0xc0 | cp >> 6);
		*p++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*p++ = (unsigned char)(0xe0 | cp >> 12);
		*p++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		*p++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*p++ = (unsigned char)(0xf0 | (cp >> 18 & 7));
		*p++ = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		*p++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		*p++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*o = (char *)p;
}

/* A YAML double-quoted scalar from p (after the quote) into o; returns past the quote. */
static const char *yaml_dq(const char *p, char *o)
{
	static const char simple[] = "0\0a\ab\bt\tn\nv\vf\fr\re\x1b \x20\"\"//\\\\";

	while (*p && *p != '"') {
		unsigned long cp;
		int digits;
		const char *s;

		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		for (s = simple; *s || s == simple; s += 2)
			if (s[0] == *p)
				break;
		if (*s || (*p == '0')) {
			*o++ = s[1];
			p++;
			continue;
		}
		digits = *p == 'x' ? 2 : *p == 'u' ? 4 : *p == 'U' ? 8 : 0;
		cp = *p == 'N' ? 0x85 : *p == '_' ? 0xa0 : *p == 'L' ? 0x2028 : *p == 'P' ? 0x2029 :
		     0;
		if (digits) {
			char hex[9] = "";

			memcpy(hex, p + 1, (size_t)digits);
			cp = strtoul(hex, NULL, 16);
			p += digits;
		} else if (!cp) {
			*o++ = *p;	/* unknown escape: keep the character */
		}
		if (digits || cp)
			put_utf8(&o, cp);
		if (*p)
			p++;
	}
	*o = '\0';
	return *p ? p + 1 : p;
}

static const char *yaml_sq(const char *p, char *o)
{
	while (*p) {
		if (*p == '\'' && p[1] == '\'') {
			*o++ = '\'';
			p += 2;
		} else if (*p == '\'') {
			p++;
			break;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return p;
}

/* A plain scalar up to the next , or } (or : for a key); trailing blanks dropped. */
static const char *yaml_plain(const char *p, char *o, bool key)
{
	char *start = o;

	while (*p && *p != ',' && *p != '}' && !(key && *p == ':'))
		*o++ = *p++;
	while (o > start && (o[-1] == ' ' || o[-1] == '\t'))
		o--;
	*o = '\0';
	return p;
}

static const char *skip_nested(const char *p)
{
	int depth = 0;

	for (; *p; p++) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
		} else if (*p == '\'') {
			for (p++; *p && !(*p == '\'' && p[1] != '\''); p++)
				if (*p == '\'')
					p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if ((*p == '}' || *p == ']') && --depth == 0) {
			return p + 1;
		}
		if (!*p)
			break;
	}
	return p;
}

/* A scalar (or, for a nested value, nothing) into o, which holds strlen(p) + 1 bytes. */
static const char *yaml_scalar(const char *p, char *o, bool key, bool *nested)
{
	*nested = false;
	while (*p == ' ')
		p++;
	if (*p == '!') {	/* a tag, as PyYAML writes for some numbers */
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	if (*p == '"')
		return yaml_dq(p + 1, o);
	if (*p == '\'')
		return yaml_sq(p + 1, o);
	if (*p == '{' || *p == '[') {
		*nested = true;
		*o = '\0';
		return skip_nested(p);
	}
	return yaml_plain(p, o, key);
}

int ms_lava_log_line(const char *line, char *lvl, size_t lvllen, char **msg, char **dt)
{
	size_t len = strlen(line);
	char *key = malloc(len + 1), *val = malloc(len + 1);
	const char *p = line;
	int ret = 0;

	*msg = *dt = NULL;
	lvl[0] = '\0';
	if (!key || !val)
		goto out;
	while (*p == ' ')
		p++;
	if (*p == '-' && p[1] == ' ')
		p += 2;
	while (*p == ' ')
		p++;
	if (*p++ != '{')
		goto out;
	for (;;) {
		bool nested;

		p = yaml_scalar(p, key, true, &nested);
		while (*p == ' ')
			p++;
		if (*p++ != ':')
			break;
		p = yaml_scalar(p, val, false, &nested);
		if (!nested && !strcmp(key, "lvl"))
			ms_strlcpy(lvl, val, lvllen);
		else if (!nested && !strcmp(key, "msg") && !*msg)
			*msg = strdup(val);
		else if (!nested && !strcmp(key, "dt") && !*dt)
			*dt = strdup(val);
		while (*p == ' ')
			p++;
		if (*p != ',')
			break;
		p++;
	}
	ret = lvl[0] && *msg;
out:
	free(key);
	free(val);
	if (!ret) {
		free(*msg);
		free(*dt);
		*msg = *dt = NULL;
	}
	return ret;
}

/* LAVA's console logger writes " as \" into the message: one backslash before each quote goes. */
static void unescape_console(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '\\' && s[1] == '"')
			continue;
		*o++ = *s;
	}
	*o = '\0';
}

/* "2026-11-24T01:08:52.052738" -> ns since the epoch (UTC), 0 if unreadable. */
static int64_t parse_dt(const char *dt)
{
	struct tm tm = { 0 };
	const char *frac;
	char *end;
	int64_t ns = 0, scale = 100000000;

	if (!dt)
		return 0;
	end = strptime(dt, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	for (frac = *end == '.' ? end + 1 : end; *frac >= '0' && *frac <= '9' && scale; frac++) {
		ns += (*frac - '0') * scale;
		scale /= 10;
	}
	return (int64_t)timegm(&tm) * 1000000000LL + ns;
}

/* ---- one shard's console ---- */

static void shard_problem(struct shard *s, const char *fmt, const char *a, const char *b)
{
	char msg[1024];

	if (json_array_size(s->problems) >= MAX_BAD)
		return;
	snprintf(msg, sizeof(msg), fmt, a, b);
	json_array_append_new(s->problems, json_string(msg));
}

static void on_event(void *arg, json_t *ev)
{
	struct shard *s = arg;
	const char *kind = json_string_value(json_object_get(ev, "ev"));
	int index = (int)json_integer_value(json_object_get(ev, "index"));
	int repeat = (int)json_integer_value(json_object_get(ev, "repeat"));
	char key[24];

	json_object_set_new(ev, "t_ns", json_integer(s->dt_ns));
	if (!strcmp(kind, "case_start")) {
		s->open_index = index;
		s->open_repeat = repeat;
		s->open_t_ns = s->dt_ns;
		/* A crash excerpt is about the running case: older kernel messages are not its. */
		ms_vmcon_mark(s->con);
	} else if (!strcmp(kind, "case_end")) {
		if (index == s->open_index && repeat == s->open_repeat)
			s->open_index = -1;
		snprintf(key, sizeof(key), "%d", index);
		json_object_set_new(s->ended, key, json_true());
	}
	json_array_append_new(s->events, ev);
}

static void on_bad(void *arg, unsigned long lineno, const char *why, const char *excerpt)
{
	struct shard *s = arg;
	char what[64];

	snprintf(what, sizeof(what), "event %lu", lineno);
	shard_problem(s, "%s skipped: %s", what, why);
	(void)excerpt;
}

/* The word after "key=" where key starts the line or follows a blank; false if absent. */
static bool word_after(const char *text, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = text; (p = strstr(p, key)); p += klen) {
		if ((p == text || p[-1] == ' ') && p[klen] == '=') {
			p += klen + 1;
			snprintf(buf, len, "%.*s", (int)strcspn(p, " "), p);
			return true;
		}
	}
	return false;
}

/*
 * Who the job is: from the kernel's command line print ("mmstorm.label=L mmstorm.shard=I/N
 * mmstorm.cases=SET"), which even a guest whose agent never started leaves, else from the
 * START marker ("label=L shard=I/N cases=SET|all").
 */
static void shard_identity(struct shard *s, const char *text, bool marker)
{
	const char *pre = marker ? "" : "mmstorm.";
	char key[32], val[1024];

	snprintf(key, sizeof(key), "%slabel", pre);
	if (!s->label[0] && word_after(text, key, val, sizeof(val)))
		ms_strlcpy(s->label, val, sizeof(s->label));
	snprintf(key, sizeof(key), "%sshard", pre);
	if (!s->number && word_after(text, key, val, sizeof(val)) &&
	    sscanf(val, "%u/%u", &s->number, &s->count) != 2)
		s->number = s->count = 0;
	snprintf(key, sizeof(key), "%scases", pre);
	if (!s->has_cases && word_after(text, key, val, sizeof(val)) && strcmp(val, "all")) {
		ms_strlcpy(s->cases, val, sizeof(s->cases));
		s->has_cases = true;
	}
}

static void shard_console_line(struct shard *s, char *text)
{
	char why[256], *json = NULL;
	int ret;

	unescape_console(text);
	/* The excerpt of a crash is for people: the machine lines are in the events already. */
	if (!strstr(text, MS_LAVA_EV " ") && !strstr(text, MS_LAVA_RESULT " ")) {
		ms_vmcon_feed(s->con, text, strlen(text));
		ms_vmcon_feed(s->con, "\n", 1);
	}
	if (strcasestr(text, "command line:"))
		shard_identity(s, text, false);
	if (!strncmp(text, MS_LAVA_START " ", sizeof(MS_LAVA_START))) {
		shard_identity(s, text + sizeof(MS_LAVA_START), true);
		s->saw_start = true;
	}
	if (strstr(text, MS_LAVA_END))
		s->saw_end = true;
	ret = ms_lava_dec_line(&s->dec, text, &json, why, sizeof(why));
	if (ret < 0)
		shard_problem(s, "console event stream: %s%s", why, "");
	if (ret > 0) {
		ms_vmstream_feed(&s->stream, json, strlen(json));
		ms_vmstream_feed(&s->stream, "\n", 1);
		free(json);
	}
}

static void shard_lava_line(struct shard *s, const char *lvl, const char *msg)
{
	if (strstr(msg, "timed out")) {
		s->timed_out = true;
		if (!s->lava_error[0])
			ms_strlcpy(s->lava_error, msg, sizeof(s->lava_error));
	}
	if ((!strcmp(lvl, "error") || !strcmp(lvl, "exception")) && !s->lava_error[0])
		ms_strlcpy(s->lava_error, msg, sizeof(s->lava_error));
}

static int shard_read(struct shard *s)
{
	FILE *f = fopen(s->path, "re");
	char lvl[32], *line = NULL, *msg, *dt;
	size_t cap = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (!ms_lava_log_line(line, lvl, sizeof(lvl), &msg, &dt))
			continue;
		s->dt_ns = parse_dt(dt);
		if (s->dt_ns && !s->t0_ns)
			s->t0_ns = s->dt_ns;
		if (s->dt_ns > s->tlast_ns)
			s->tlast_ns = s->dt_ns;
		/* Console lines read between actions come as "feedback". */
		if (!strcmp(lvl, "target") || !strcmp(lvl, "feedback"))
			shard_console_line(s, msg);
		else
			shard_lava_line(s, lvl, msg);
		free(msg);
		free(dt);
	}
	free(line);
	fclose(f);
	ms_vmstream_finish(&s->stream);
	return 0;
}

static struct shard *shard_new(const char *path)
{
	struct shard *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->path = path;
	s->open_index = -1;
	s->con = calloc(1, sizeof(*s->con));
	s->events = json_array();
	s->problems = json_array();
	s->ended = json_object();
	if (!s->con || !s->events || !s->problems || !s->ended ||
	    ms_vmstream_init(&s->stream, on_event, on_bad, s)) {
		free(s->con);
		json_decref(s->events);
		json_decref(s->problems);
		json_decref(s->ended);
		free(s);
		return NULL;
	}
	ms_vmcon_init(s->con);
	return s;
}

static void shard_free(struct shard *s)
{
	if (!s)
		return;
	ms_vmstream_free(&s->stream);
	ms_lava_dec_free(&s->dec);
	free(s->con);
	json_decref(s->events);
	json_decref(s->problems);
	json_decref(s->ended);
	free(s);
}

/* ---- one kernel: its shards merged into one run ---- */

struct kmerge {
	struct collect *c;
	const char *label;
	struct shard *sh[MAX_LOGS];
	unsigned n;
	int64_t t0_ns;
	struct ms_out *out;
	json_t *names;		/* case names (from a run_start, or --suite) */
	unsigned ncases;
	json_t *covered;	/* case index -> true: some shard was to run it */
	unsigned nshards;	/* N of "shard i/N" */
};

static int64_t rel_ns(const struct kmerge *m, int64_t t)
{
	return t > m->t0_ns ? t - m->t0_ns : 0;
}

static void merge_log(struct kmerge *m, int64_t t, bool problem, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void merge_log(struct kmerge *m, int64_t t, bool problem, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *ev;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev = json_pack("{s:s, s:I, s:s}", "ev", "log", "t_ns", (json_int_t)rel_ns(m, t), "msg",
		       msg);
	if (ev && problem)
		json_object_set_new(ev, "problem", json_true());
	if (ev)
		ms_out_event(m->out, ev);
}

static const char *case_name(const struct kmerge *m, unsigned index)
{
	const char *n = json_string_value(json_array_get(m->names, index));

	if (n)
		return n;
	if (m->c->have_suite && index < m->c->suite.ncases)
		return m->c->suite.cases[index].name;
	return "unknown";
}

/* A case_end in the guest's format, made on the host (as `mmstorm vm` makes them). */
static void host_case_end(struct kmerge *m, struct shard *s, unsigned index, int repeat,
			  const char *verdict, const char *reason, bool with_console)
{
	json_t *excerpt = with_console ? ms_vmcon_excerpt(s->con) : json_array();
	int64_t dur = with_console && s->open_t_ns ? s->tlast_ns - s->open_t_ns : 0;
	json_t *ev;

	ev = json_pack("{s:s, s:I, s:s, s:i, s:i, s:s, s:s, s:I, s:I, s:{},"
		       " s:{s:I, s:I, s:[]}, s:[s], s:{}, s:{s:s, s:s, s:O}, s:o}",
		       "ev", "case_end", "t_ns", (json_int_t)rel_ns(m, s->tlast_ns),
		       "case", case_name(m, index), "index", (int)index, "repeat", repeat,
		       "verdict", verdict, "reason", reason,
		       "duration_ns", (json_int_t)(dur > 0 ? dur : 0), "iterations", (json_int_t)0,
		       "metrics",
		       "checks", "run", (json_int_t)0, "failed", (json_int_t)0, "failures",
		       "notes", "result made by mmstorm lava collect: the guest could not report "
		       "this case",
		       "pgtables",
		       "kmsg", "class", s->con->hit ? "CRASH" : "none", "first", s->con->first,
		       "excerpt", excerpt,
		       "console", excerpt ? excerpt : json_array());
	if (ev)
		ms_out_event(m->out, ev);
}

/* The case a shard was running when its log ends without MMSTORM-LAVA-END. */
static void close_open_case(struct kmerge *m, struct shard *s, char *why, size_t len)
{
	char reason[1024], key[24];
	const char *verdict;

	if (s->con->hit) {
		verdict = "CRASH";
		snprintf(reason, sizeof(reason), "guest kernel crashed: %s", s->con->first);
	} else if (s->timed_out) {
		verdict = "TIMEOUT";
		snprintf(reason, sizeof(reason), "LAVA timed out waiting for the guest (%s)",
			 s->lava_error[0] ? s->lava_error : "no further output");
	} else {
		verdict = "CRASH";
		snprintf(reason, sizeof(reason), "the guest died without a kernel crash message "
			 "(%s)", s->lava_error[0] ? s->lava_error : "the LAVA log ends");
	}
	host_case_end(m, s, (unsigned)s->open_index, s->open_repeat, verdict, reason, true);
	snprintf(key, sizeof(key), "%d", s->open_index);
	json_object_set_new(s->ended, key, json_true());
	snprintf(why, len, "%s in case %s", verdict, case_name(m, (unsigned)s->open_index));
	s->open_index = -1;
}

static void shard_not_run(struct kmerge *m, struct shard *s, const char *why)
{
	char key[24], reason[1024];

	for (unsigned i = 0; i < m->ncases; i++) {
		snprintf(key, sizeof(key), "%u", i);
		if (!ms_case_set_has(s->cases, i) || json_object_get(s->ended, key))
			continue;
		snprintf(reason, sizeof(reason), "not run: LAVA shard %u/%u (%s) ended before "
			 "this case: %s", s->number, s->count, s->path, why);
		host_case_end(m, s, i, 0, "ERROR", reason, false);
	}
}

static void merge_shard(struct kmerge *m, struct shard *s, bool *started)
{
	char why[1200] = "";
	size_t i;
	json_t *ev, *p;

	json_array_foreach(s->events, i, ev) {
		const char *kind = json_string_value(json_object_get(ev, "ev"));
		int64_t t = json_integer_value(json_object_get(ev, "t_ns"));

		json_object_set_new(ev, "t_ns", json_integer(rel_ns(m, t)));
		if (!strcmp(kind, "run_start") && *started) {
			merge_log(m, t, false, "LAVA shard %u/%u started (%s)", s->number, s->count,
				  s->path);
		} else if (!strcmp(kind, "run_end")) {
			merge_log(m, t, false, "LAVA shard %u/%u finished (%s)", s->number,
				  s->count,
				  json_string_value(json_object_get(ev, "status")));
		} else {
			*started |= !strcmp(kind, "run_start");
			ms_out_event(m->out, json_incref(ev));
		}
	}
	json_array_foreach(s->problems, i, p)
		merge_log(m, s->tlast_ns, true, "LAVA shard %u/%u: %s", s->number, s->count,
			  json_string_value(p));
	if (s->saw_end)
		return;
	if (s->open_index >= 0)
		close_open_case(m, s, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", !s->saw_start ? "the agent never started" :
			 s->lava_error[0] ? s->lava_error : "the log ends between cases");
	merge_log(m, s->tlast_ns, true, "LAVA shard %u/%u (%s) ended early: %s", s->number,
		  s->count, s->path, why);
	if (s->has_cases)
		shard_not_run(m, s, why);
}

/* A kernel whose guests never spoke still gets a run.json saying who it was. */
static json_t *host_run_start(struct kmerge *m)
{
	return json_pack("{s:s, s:I, s:s, s:s, s:{s:s}, s:[], s:{s:s, s:s, s:I, s:i},"
			 " s:{s:s, s:s, s:s}, s:{}, s:{}, s:{s:s}}",
			 "ev", "run_start", "t_ns", (json_int_t)0, "run_id", "", "schema",
			 MS_EVENTS_SCHEMA, "mmstorm", "version", MMSTORM_VERSION, "command",
			 "suite", "path", m->c->have_suite ? m->c->suite.path : "",
			 "name", m->c->have_suite ? m->c->suite.name : "",
			 "seed", (json_int_t)(m->c->have_suite ? m->c->suite.seed : 0),
			 "ncases", (int)(m->c->have_suite ? m->c->suite.ncases : 0),
			 "kernel", "release", "unknown (the guest never started)", "version", "",
			 "cmdline", "", "cpu", "memory", "env", "where", "lava");
}

/* The first shard's run_start is the run's identity, with what LAVA told about the jobs. */
static json_t *run_start_of(struct kmerge *m)
{
	json_t *rs = NULL, *jobs = json_array(), *env, *lava;
	char run_id[300];
	int64_t t;
	size_t i;
	json_t *ev;

	for (unsigned k = 0; k < m->n && !rs; k++)
		json_array_foreach(m->sh[k]->events, i, ev)
			if (!rs &&
			    !strcmp(json_string_value(json_object_get(ev, "ev")), "run_start"))
				rs = json_incref(ev);
	if (!rs)
		rs = host_run_start(m);
	for (unsigned k = 0; k < m->n; k++)
		json_array_append_new(jobs, json_pack("{s:s, s:i, s:i, s:s, s:b, s:s}", "log",
			m->sh[k]->path, "shard", (int)m->sh[k]->number, "shards",
			(int)m->sh[k]->count, "cases", m->sh[k]->cases, "complete",
			m->sh[k]->saw_end, "lava_error", m->sh[k]->lava_error));
	t = json_integer_value(json_object_get(rs, "t_ns"));
	json_object_set_new(rs, "t_ns", json_integer(rel_ns(m, t)));
	snprintf(run_id, sizeof(run_id), "%s-%s", m->c->run_id, m->label);
	json_object_set_new(rs, "run_id", json_string(run_id));
	env = json_object_get(rs, "env");
	lava = json_object_get(env, "lava");
	if (json_is_object(lava)) {
		m->names = json_incref(json_object_get(lava, "case_names"));
		json_object_del(lava, "case_names");
		json_object_del(lava, "shard");
		json_object_del(lava, "cases");
	}
	json_object_set_new(env, "where", json_string("lava"));
	json_object_set_new(env, "lava_jobs", jobs);
	json_object_set_new(env, "kernel_input", json_pack("{s:s, s:s}", "label", m->label,
							   "kind", "lava"));
	json_object_del(env, "resume");
	json_object_del(env, "repeat");
	return rs;
}

/* Cases no collected shard was to run: their shard's log is missing. */
static void missing_shards(struct kmerge *m)
{
	char key[24], reason[512];

	for (unsigned i = 0; i < m->ncases; i++) {
		bool any = false;

		for (unsigned k = 0; k < m->n; k++)
			any |= !m->sh[k]->has_cases || ms_case_set_has(m->sh[k]->cases, i);
		snprintf(key, sizeof(key), "%u", i);
		if (any)
			continue;
		snprintf(reason, sizeof(reason), "not run: no LAVA log of the shard with this "
			 "case (%u of %u shard logs of %s collected)", m->n, m->nshards, m->label);
		host_case_end(m, m->sh[0], i, 0, "ERROR", reason, false);
	}
}

/* console-LABEL.log: every shard's console, as the kernel and the agent printed it. */
static void write_consoles(struct kmerge *m, const char *dir)
{
	char path[PATH_MAX + 200], lvl[32], *line = NULL, *msg, *dt;
	size_t cap = 0;
	FILE *out, *in;

	snprintf(path, sizeof(path), "%s/console-%s.log", dir, m->label);
	out = fopen(path, "we");
	if (!out)
		return;
	for (unsigned k = 0; k < m->n; k++) {
		fprintf(out, "=== mmstorm lava collect: shard %u/%u, %s ===\n", m->sh[k]->number,
			m->sh[k]->count, m->sh[k]->path);
		in = fopen(m->sh[k]->path, "re");
		while (in && getline(&line, &cap, in) > 0) {
			line[strcspn(line, "\n")] = '\0';
			if (!ms_lava_log_line(line, lvl, sizeof(lvl), &msg, &dt))
				continue;
			if (!strcmp(lvl, "target") || !strcmp(lvl, "feedback")) {
				unescape_console(msg);
				fprintf(out, "%s\n", msg);
			}
			free(msg);
			free(dt);
		}
		if (in)
			fclose(in);
	}
	free(line);
	fclose(out);
}

static int merge_kernel(struct kmerge *m, json_t **runs_out)
{
	struct ms_out_opts oo = { 0 };
	char dir[PATH_MAX + 80], ktap[PATH_MAX + 160], status[256] = "complete";
	bool started = false;
	json_t *rs;
	FILE *kf;
	int ret;

	snprintf(dir, sizeof(dir), "%s/%s", m->c->dir, m->label);
	snprintf(ktap, sizeof(ktap), "%s/ktap-%s.txt", dir, m->label);
	if ((ret = ms_mkdir_p(dir, 0755)))
		return ret;
	kf = fopen(ktap, "we");
	oo.dir = dir;
	oo.ktap = kf;
	if ((ret = ms_out_open(&m->out, &oo))) {
		if (kf)
			fclose(kf);
		return ret;
	}
	write_consoles(m, dir);
	rs = run_start_of(m);
	m->ncases = (unsigned)json_integer_value(json_object_get(json_object_get(rs, "suite"),
								 "ncases"));
	if (!m->ncases && m->c->have_suite)
		m->ncases = m->c->suite.ncases;
	ms_out_event(m->out, rs);
	started = true;
	for (unsigned k = 0; k < m->n; k++)
		merge_shard(m, m->sh[k], &started);
	missing_shards(m);
	if (m->n < m->nshards)
		snprintf(status, sizeof(status), "incomplete: %u of %u LAVA shard logs", m->n,
			 m->nshards);
	ms_out_event(m->out, json_pack("{s:s, s:I, s:s}", "ev", "run_end", "t_ns",
				       (json_int_t)rel_ns(m, m->sh[m->n - 1]->tlast_ns), "status",
				       status));
	ret = ms_out_write(m->out, status);
	fprintf(stderr, "# results: %s/run.json (%s, %u shard log%s)\n", dir, status, m->n,
		m->n == 1 ? "" : "s");
	*runs_out = json_incref(ms_out_run(m->out));
	ms_out_close(m->out);
	if (kf)
		fclose(kf);
	return ret;
}

/* ---- the command ---- */

static void collect_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm lava collect [options] LOG...\n"
		"  Reads the logs of LAVA jobs `mmstorm lava export` made (lava-run's output, or\n"
		"  the YAML log a LAVA server returns), any kernels and shards in any order, and\n"
		"  writes RESULTS/RUN-ID/LABEL/run.json per kernel as `mmstorm vm` does, and\n"
		"  RESULTS/RUN-ID/compare.{md,json} for several kernels.\n\n"
		"options:\n"
		"  --results DIR   parent directory of the output (default: results)\n"
		"  --run-id ID     name of this run (default: lava-DATE-TIME)\n"
		"  --suite FILE    the suite, to name the cases of a shard whose guest never\n"
		"                  started (the export directory has it as suite.ini)\n");
}

static int cmp_shard(const void *a, const void *b)
{
	const struct shard *x = *(struct shard *const *)a, *y = *(struct shard *const *)b;
	int c = strcmp(x->label, y->label);

	return c ? c : (int)x->number - (int)y->number;
}

static int collect_parse(struct collect *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "results", required_argument, NULL, 'r' },
		{ "run-id", required_argument, NULL, 'i' },
		{ "suite", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'r': c->results = optarg; break;
		case 'i': c->run_id = optarg; break;
		case 's': c->suite_path = optarg; break;
		case 'h': collect_usage(stdout); return 1;
		default: return -EINVAL;
		}
	}
	if (optind >= argc || argc - optind > MAX_LOGS)
		return -EINVAL;
	return optind;
}

static int read_shards(struct collect *c, int first, int argc, char **argv)
{
	for (int i = first; i < argc; i++) {
		struct shard *s = shard_new(argv[i]);
		int ret;

		if (!s)
			return -ENOMEM;
		c->sh[c->nsh++] = s;
		ret = shard_read(s);
		if (ret) {
			fprintf(stderr, "mmstorm lava collect: %s: %s\n", argv[i], strerror(-ret));
			return ret;
		}
		if (!s->label[0]) {
			fprintf(stderr, "mmstorm lava collect: %s: no mmstorm job in this log (no "
				"kernel command line with mmstorm.label=)\n", argv[i]);
			return -EINVAL;
		}
		fprintf(stderr, "# lava: %s: %s shard %u/%u, %lu events%s\n", argv[i], s->label,
			s->number, s->count, s->stream.nevents, s->saw_end ? "" :
			", ended early");
	}
	qsort(c->sh, c->nsh, sizeof(c->sh[0]), cmp_shard);
	return 0;
}

static int merge_all(struct collect *c, int *worst)
{
	const char *labels[MS_VM_MAX_KERNELS];
	json_t *runs[MS_VM_MAX_KERNELS];
	unsigned nk = 0, i = 0;
	int ret = 0;

	while (i < c->nsh && !ret) {
		struct kmerge m = { .c = c, .label = c->sh[i]->label };

		while (i < c->nsh && !strcmp(c->sh[i]->label, m.label) && m.n < MAX_LOGS) {
			struct shard *s = c->sh[i++];

			if (!m.t0_ns || (s->t0_ns && s->t0_ns < m.t0_ns))
				m.t0_ns = s->t0_ns;
			if (s->count > m.nshards)
				m.nshards = s->count;
			m.sh[m.n++] = s;
		}
		if (nk >= MS_VM_MAX_KERNELS) {
			fprintf(stderr, "mmstorm lava collect: more than %d kernels\n",
				MS_VM_MAX_KERNELS);
			return -E2BIG;
		}
		ret = merge_kernel(&m, &runs[nk]);
		json_decref(m.names);
		if (ret)
			break;
		labels[nk++] = m.sh[0]->label;
	}
	for (unsigned k = 0; k < nk; k++) {
		json_t *summary = json_object_get(runs[k], "summary");
		static const char *const bad[] = { "FAIL", "ERROR", "TIMEOUT", "CRASH" };

		for (unsigned v = 0; v < 4; v++)
			if (json_integer_value(json_object_get(summary, bad[v])))
				*worst = 1;
	}
	if (!ret && nk > 1) {
		int diffs = ms_kcompare_write(c->dir, labels, runs, nk);

		if (diffs > 0)
			*worst = 1;
		if (diffs >= 0)
			fprintf(stderr, "# comparison: %s/compare.md (%d verdict difference%s)\n",
				c->dir, diffs, diffs == 1 ? "" : "s");
		ms_compare_write_dir(c->dir, labels, runs, nk);
	}
	for (unsigned k = 0; k < nk; k++)
		json_decref(runs[k]);
	return ret;
}

int ms_lava_collect_main(int argc, char **argv)
{
	struct collect c = { .results = "results" };
	char id[64], err[1024];
	int first = collect_parse(&c, argc, argv), worst = 0, ret;
	time_t now = time(NULL);
	struct tm tm;

	if (first <= 0) {
		if (first < 0)
			collect_usage(stderr);
		return first ? MS_EXIT_USAGE : MS_EXIT_OK;
	}
	if (c.suite_path) {
		if (ms_suite_load(&c.suite, c.suite_path, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return MS_EXIT_USAGE;
		}
		c.have_suite = true;
	}
	if (!c.run_id) {
		gmtime_r(&now, &tm);
		strftime(id, sizeof(id), "lava-%Y%m%d-%H%M%S", &tm);
		c.run_id = id;
	}
	snprintf(c.dir, sizeof(c.dir), "%s/%s", c.results, c.run_id);
	ret = read_shards(&c, first, argc, argv);
	if (!ret)
		ret = merge_all(&c, &worst);
	for (unsigned i = 0; i < c.nsh; i++)
		shard_free(c.sh[i]);
	if (c.have_suite)
		ms_suite_free(&c.suite);
	if (ret)
		return ret == -EINVAL ? MS_EXIT_USAGE : MS_EXIT_INFRA;
	return worst ? MS_EXIT_FAIL : MS_EXIT_OK;
}

/* The host's outputs for one run: events.jsonl (append, fsync), the run.json model, KTAP. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmstorm/result.h"
#include "mmstorm/util.h"
#include "report/report_int.h"

static const char *const run_identity[] = {
	"run_id", "mmstorm", "command", "suite", "kernel", "cpu", "memory", "env",
};

static json_t *new_run_model(void)
{
	return json_pack("{s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n,"
			 " s:[], s:{}, s:[]}",
			 "schema", MS_RESULTS_SCHEMA, "status", "running",
			 "run_id", "mmstorm", "command", "suite", "kernel", "cpu", "memory",
			 "env", "started", "finished", "cases", "summary", "problems");
}

static void set_now(struct ms_out *o, const char *key)
{
	char buf[64];

	if (ms_report_utc_now(buf, sizeof(buf)))
		return;
	json_object_set_new(o->run, key, json_string(buf));
}

static void update_summary(struct ms_out *o)
{
	unsigned n[MS_V__COUNT] = { 0 };
	json_t *s = json_object();
	size_t i;

	if (!s)
		return;
	for (i = 0; i < o->ncs; i++)
		if (o->cs[i].worst >= 0)
			n[o->cs[i].worst]++;
	json_object_set_new(s, "PASS", json_integer(n[MS_V_PASS]));
	json_object_set_new(s, "FAIL", json_integer(n[MS_V_FAIL]));
	json_object_set_new(s, "SKIP", json_integer(n[MS_V_SKIP]));
	json_object_set_new(s, "ERROR", json_integer(n[MS_V_ERROR]));
	json_object_set_new(s, "TIMEOUT", json_integer(n[MS_V_TIMEOUT]));
	json_object_set_new(s, "CRASH", json_integer(n[MS_V_CRASH]));
	json_object_set_new(s, "total", json_integer(o->ncs));
	json_object_set_new(o->run, "summary", s);
}

static json_t *problem_entry(struct ms_out *o, const char *msg)
{
	return json_pack("{s:s, s:I, s:b, s:s}", "ev", "log", "t_ns", (json_int_t)o->last_t_ns,
			 "problem", 1, "msg", msg);
}

/*
 * Anything the model notices goes here, so that run.json says what it did not trust. A guest
 * spewing garbage must not grow run.json without bound: past a limit, events.jsonl has the rest.
 */
static void add_problem(struct ms_out *o, json_t *entry)
{
	size_t n = json_array_size(o->problems);

	if (!entry)
		return;
	if (n < MS_MAX_PROBLEMS) {
		json_array_append_new(o->problems, entry);
		return;
	}
	json_decref(entry);
	if (n == MS_MAX_PROBLEMS)
		json_array_append_new(o->problems, problem_entry(o, "more problems: only in "
								 "events.jsonl"));
}

static struct ms_case_st *find_case(struct ms_out *o, int index, size_t *pos)
{
	size_t lo = 0, hi = o->ncs, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (o->cs[mid].index == index) {
			*pos = mid;
			return &o->cs[mid];
		}
		if (o->cs[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return NULL;
}

static struct ms_case_st *get_case(struct ms_out *o, int index, const char *name)
{
	struct ms_case_st *cs, *grown;
	json_t *obj;
	size_t pos;

	cs = find_case(o, index, &pos);
	if (cs)
		return cs;
	if (o->ncs == o->cs_cap) {
		size_t cap = o->cs_cap ? 2 * o->cs_cap : 16;

		grown = realloc(o->cs, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		o->cs = grown;
		o->cs_cap = cap;
	}
	obj = json_pack("{s:i, s:s?, s:n, s:{}, s:n, s:n, s:[]}", "index", index, "name", name,
			"workload", "params", "verdict", "reason", "repeats");
	if (!obj || json_array_insert_new(o->cases, pos, obj))
		return NULL;
	memmove(&o->cs[pos + 1], &o->cs[pos], (o->ncs - pos) * sizeof(*cs));
	o->ncs++;
	cs = &o->cs[pos];
	*cs = (struct ms_case_st){ .index = index, .worst = -1, .obj = obj };
	return cs;
}

static void fold_run_start(struct ms_out *o, json_t *ev)
{
	size_t i;

	/* A guest rebooted after a crash starts again: the first identity is the run's. */
	if (o->started)
		return;
	o->started = true;
	for (i = 0; i < MS_ARRAY_SIZE(run_identity); i++)
		json_object_set(o->run, run_identity[i], json_object_get(ev, run_identity[i]));
	set_now(o, "started");
	ms_ktap_run_start(o);
}

static void fold_case_start(struct ms_out *o, json_t *ev)
{
	int index = (int)json_integer_value(json_object_get(ev, "index"));
	struct ms_case_st *cs;

	ms_ktap_case_start(o, index);
	cs = get_case(o, index, json_string_value(json_object_get(ev, "case")));
	if (!cs) {
		add_problem(o, problem_entry(o, "out of memory folding case_start"));
		return;
	}
	json_object_set(cs->obj, "name", json_object_get(ev, "case"));
	json_object_set(cs->obj, "workload", json_object_get(ev, "workload"));
	json_object_set(cs->obj, "params", json_object_get(ev, "params"));
	cs->repeats = (int)json_integer_value(json_object_get(ev, "repeats"));
	o->open_index = index;
	o->open_repeat = (int)json_integer_value(json_object_get(ev, "repeat"));
}

/* The case's verdict is its worst repeat's; the reason goes with it. */
static void aggregate(struct ms_case_st *cs)
{
	json_t *w = ms_report_worst_repeat(cs->obj);

	if (!w)
		return;
	cs->worst = ms_verdict_parse(ms_report_str(w, "verdict", NULL));
	json_object_set(cs->obj, "verdict", json_object_get(w, "verdict"));
	json_object_set(cs->obj, "reason", json_object_get(w, "reason"));
}

static int add_repeat(struct ms_out *o, struct ms_case_st *cs, json_t *ev, int repeat)
{
	json_t *repeats = json_object_get(cs->obj, "repeats");
	json_t *entry = json_copy(ev);
	char msg[128];
	json_t *r;
	size_t i;

	if (!entry)
		return -ENOMEM;
	json_object_del(entry, "ev");
	json_array_foreach(repeats, i, r) {
		if (ms_report_int(r, "repeat", -1) != repeat)
			continue;
		snprintf(msg, sizeof(msg), "case %d repeat %d ended twice: kept the later result",
			 cs->index, repeat);
		add_problem(o, problem_entry(o, msg));
		return json_array_set_new(repeats, i, entry) ? -ENOMEM : 0;
	}
	return json_array_append_new(repeats, entry) ? -ENOMEM : 0;
}

static void fold_case_end(struct ms_out *o, json_t *ev)
{
	int index = (int)json_integer_value(json_object_get(ev, "index"));
	int repeat = (int)json_integer_value(json_object_get(ev, "repeat"));
	struct ms_case_st *cs;

	cs = get_case(o, index, json_string_value(json_object_get(ev, "case")));
	if (!cs || add_repeat(o, cs, ev, repeat)) {
		add_problem(o, problem_entry(o, "out of memory folding case_end"));
		return;
	}
	aggregate(cs);
	if (o->open_index == index && o->open_repeat == repeat)
		o->open_index = -1;
	update_summary(o);
	ms_ktap_case_end(o, cs, repeat);
}

static void fold_log(struct ms_out *o, json_t *ev)
{
	if (json_is_true(json_object_get(ev, "problem")))
		add_problem(o, json_incref(ev));
	ms_ktap_log(o, json_string_value(json_object_get(ev, "msg")));
}

static void fold_run_end(struct ms_out *o, json_t *ev)
{
	o->ended = true;
	json_object_set(o->run, "status", json_object_get(ev, "status"));
	set_now(o, "finished");
	ms_ktap_run_end(o);
}

static void fold(struct ms_out *o, json_t *ev)
{
	const char *kind = json_string_value(json_object_get(ev, "ev"));

	if (!strcmp(kind, "run_start"))
		fold_run_start(o, ev);
	else if (!strcmp(kind, "case_start"))
		fold_case_start(o, ev);
	else if (!strcmp(kind, "case_end"))
		fold_case_end(o, ev);
	else if (!strcmp(kind, "log"))
		fold_log(o, ev);
	else if (!strcmp(kind, "run_end"))
		fold_run_end(o, ev);
}

/* One compact line and a single write(), so that a reader never sees half an event. */
static int append_line(struct ms_out *o, const json_t *ev, bool sync)
{
	size_t len;
	char *s;
	int ret;

	s = json_dumps(ev, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	/* The terminating NUL becomes the newline: the line is written without it. */
	len = strlen(s);
	s[len++] = '\n';
	ret = ms_write_all(o->fd, s, len);
	free(s);
	if (!ret && sync && fsync(o->fd))
		ret = -errno;
	return ret;
}

static void note_write_error(struct ms_out *o, int err)
{
	char msg[160];

	if (o->write_failed)
		return;
	o->write_failed = true;
	snprintf(msg, sizeof(msg), "writing %s/events.jsonl failed: %s; events since are only "
		 "in run.json", o->dir, strerror(-err));
	add_problem(o, problem_entry(o, msg));
}

/* The depth json_dumps would recurse to, counted no further than limit. */
static bool nested_within(const json_t *v, int limit)
{
	const char *key;
	json_t *x;
	size_t i;

	if (limit < 0)
		return false;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, x)
			if (!nested_within(x, limit - 1))
				return false;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (!nested_within(x, limit - 1))
				return false;
	}
	return true;
}

/*
 * A bad event is not applied: a "problem" log entry with the reason and a short excerpt takes
 * its place, in run.json and in events.jsonl, so replaying events.jsonl gives the same model.
 */
static int reject(struct ms_out *o, const json_t *ev, const char *err)
{
	char *dump = NULL;
	json_t *entry;
	int ret;

	if (ev && nested_within(ev, MS_EV_MAX_DEPTH))
		dump = json_dumps(ev, JSON_COMPACT | JSON_ENCODE_ANY);
	if (dump && strlen(dump) > MS_PROBLEM_EXCERPT) {
		/* Cut at a character boundary: the excerpt must stay valid UTF-8. */
		size_t n = MS_PROBLEM_EXCERPT;

		char *cut;

		while (n && ((unsigned char)dump[n] & 0xc0) == 0x80)
			n--;
		if (asprintf(&cut, "%.*s...", (int)n, dump) < 0)
			cut = NULL;
		free(dump);
		dump = cut;
	}
	entry = problem_entry(o, "");
	if (!entry) {
		free(dump);
		return -ENOMEM;
	}
	json_object_set_new(entry, "msg", json_sprintf("bad event skipped: %s", err));
	if (!dump || json_object_set_new(entry, "event", json_string(dump)))
		json_object_set_new(entry, "event", json_string("(not shown)"));
	free(dump);
	ret = append_line(o, entry, false);
	if (ret)
		note_write_error(o, ret);
	if (json_array_size(o->problems) < MS_MAX_PROBLEMS)
		ms_ktap_log(o, json_string_value(json_object_get(entry, "msg")));
	add_problem(o, entry);
	return -EINVAL;
}

int ms_out_event(struct ms_out *o, json_t *ev)
{
	char err[256];
	const char *kind;
	int ret;

	if (!o) {
		json_decref(ev);
		return -EINVAL;
	}
	if (ms_event_validate(ev, err, sizeof(err))) {
		ret = reject(o, ev, err);
		goto out_put;
	}
	o->last_t_ns = json_integer_value(json_object_get(ev, "t_ns"));
	kind = json_string_value(json_object_get(ev, "ev"));
	/* case_end and run_end are where a kill -9 must not lose anything before them. */
	ret = append_line(o, ev, !strcmp(kind, "case_end") || !strcmp(kind, "run_end"));
	if (ret)
		note_write_error(o, ret);
	fold(o, ev);
out_put:
	json_decref(ev);
	return ret;
}

/* Like ms_out_event, the sink's event() takes over the caller's reference. */
static int sink_event(struct ms_sink *s, json_t *ev)
{
	struct ms_out *o = (struct ms_out *)((char *)s - offsetof(struct ms_out, sink));

	return ms_out_event(o, ev);
}

int ms_out_open(struct ms_out **op, const struct ms_out_opts *opts)
{
	struct ms_out *o;
	char *events = NULL;
	int ret;

	if (!op || !opts || !opts->dir || !*opts->dir)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->fd = -1;
	o->open_index = -1;
	o->sink.event = sink_event;
	o->ktap = opts->ktap;
	o->ktap_verbose = opts->ktap_verbose;
	o->dir = strdup(opts->dir);
	o->run = new_run_model();
	if (!o->dir || !o->run || asprintf(&o->run_path, "%s/run.json", o->dir) < 0 ||
	    asprintf(&events, "%s/events.jsonl", o->dir) < 0) {
		o->run_path = NULL;
		ret = -ENOMEM;
		goto out_free;
	}
	o->cases = json_object_get(o->run, "cases");
	o->problems = json_object_get(o->run, "problems");
	update_summary(o);
	ret = ms_mkdir_p(o->dir, 0755);
	if (ret)
		goto out_free;
	o->fd = open(events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (o->fd < 0) {
		ret = -errno;
		goto out_free;
	}
	free(events);
	*op = o;
	return 0;

out_free:
	free(events);
	ms_out_close(o);
	return ret;
}

struct ms_sink *ms_out_sink(struct ms_out *o)
{
	return o ? &o->sink : NULL;
}

json_t *ms_out_run(struct ms_out *o)
{
	return o ? o->run : NULL;
}

int ms_out_open_case(struct ms_out *o, int *repeat)
{
	if (!o || o->open_index < 0)
		return -1;
	if (repeat)
		*repeat = o->open_repeat;
	return o->open_index;
}

int ms_out_write(struct ms_out *o, const char *status)
{
	if (!o)
		return -EINVAL;
	if (status) {
		json_object_set_new(o->run, "status", json_string(status));
		if (strcmp(status, "running") && json_is_null(json_object_get(o->run, "finished")))
			set_now(o, "finished");
	}
	update_summary(o);
	return ms_json_write_atomic(o->run, o->run_path);
}

enum ms_verdict ms_out_worst(struct ms_out *o)
{
	int worst = MS_V_PASS;
	size_t i;

	for (i = 0; o && i < o->ncs; i++)
		if (o->cs[i].worst > worst)
			worst = o->cs[i].worst;
	return (enum ms_verdict)worst;
}

const char *ms_out_dir(struct ms_out *o)
{
	return o ? o->dir : NULL;
}

void ms_out_close(struct ms_out *o)
{
	if (!o)
		return;
	/* A run that never said run_end still gets its pending results and totals on KTAP. */
	if (o->ktap_header)
		ms_ktap_run_end(o);
	/*
	 * Every case_end and run_end was fsync'd when it came, so a failure here loses no result,
	 * and there is no one left to tell.
	 */
	if (o->fd >= 0) {
		(void)fsync(o->fd);
		(void)close(o->fd);
	}
	json_decref(o->run);
	free(o->cs);
	free(o->run_path);
	free(o->dir);
	free(o);
}

/* Strict validation of events, which may come from an untrusted guest over a serial line. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mmstorm/result.h"
#include "report/report_int.h"

enum vt {
	VT_STR,
	VT_INT,		/* any integer (seeds are u64 and may arrive as negative int64) */
	VT_UINT,	/* integer >= 0 */
	VT_SMALL,	/* integer 0..MS_EV_MAX_INDEX */
	VT_BOOL,
	VT_NUM,		/* integer or real */
	VT_OBJ,		/* object; sub lists its members */
	VT_ARR,		/* array; sub, if set, lists the members of each element object */
	VT_STRS,	/* array of strings */
};

struct vmember {
	const char *key;
	enum vt type;
	const struct vmember *sub;
	bool optional;
};

static const struct vmember m_mmstorm[] = {
	{ "version", VT_STR },
	{ NULL }
};

static const struct vmember m_suite[] = {
	{ "path", VT_STR },
	{ "name", VT_STR },
	{ "seed", VT_INT },
	{ "ncases", VT_SMALL },
	{ NULL }
};

static const struct vmember m_kernel[] = {
	{ "release", VT_STR },
	{ "version", VT_STR },
	{ "cmdline", VT_STR },
	{ NULL }
};

static const struct vmember m_env[] = {
	{ "where", VT_STR },
	{ "accel", VT_STR, NULL, true },
	{ NULL }
};

static const struct vmember m_run_start[] = {
	{ "run_id", VT_STR },
	{ "schema", VT_STR },
	{ "mmstorm", VT_OBJ, m_mmstorm },
	{ "command", VT_STRS },
	{ "suite", VT_OBJ, m_suite },
	{ "kernel", VT_OBJ, m_kernel },
	{ "cpu", VT_OBJ },
	{ "memory", VT_OBJ },
	{ "env", VT_OBJ, m_env },
	{ NULL }
};

static const struct vmember m_case_start[] = {
	{ "case", VT_STR },
	{ "index", VT_SMALL },
	{ "repeat", VT_SMALL },
	{ "repeats", VT_SMALL },
	{ "workload", VT_STR },
	{ "params", VT_OBJ },
	{ "timeout_ns", VT_UINT },
	{ "seed", VT_INT },
	{ NULL }
};

static const struct vmember m_failure[] = {
	{ "what", VT_STR },
	{ "detail", VT_STR },
	{ NULL }
};

static const struct vmember m_checks[] = {
	{ "run", VT_UINT },
	{ "failed", VT_UINT },
	{ "failures", VT_ARR, m_failure },
	{ NULL }
};

static const struct vmember m_kmsg[] = {
	{ "class", VT_STR },
	{ "first", VT_STR },
	{ "excerpt", VT_STRS },
	{ NULL }
};

static const struct vmember m_case_end[] = {
	{ "case", VT_STR },
	{ "index", VT_SMALL },
	{ "repeat", VT_SMALL },
	{ "verdict", VT_STR },
	{ "reason", VT_STR },
	{ "duration_ns", VT_UINT },
	{ "iterations", VT_UINT },
	{ "metrics", VT_OBJ },
	{ "checks", VT_OBJ, m_checks },
	{ "notes", VT_STRS },
	{ "pgtables", VT_OBJ },
	{ "kmsg", VT_OBJ, m_kmsg },
	{ NULL }
};

static const struct vmember m_log[] = {
	{ "msg", VT_STR },
	{ "problem", VT_BOOL, NULL, true },
	{ NULL }
};

static const struct vmember m_run_end[] = {
	{ "status", VT_STR },
	{ NULL }
};

static const struct vmember m_hist[] = {
	{ "unit", VT_STR },
	{ "count", VT_UINT },
	{ "min", VT_NUM },
	{ "max", VT_NUM },
	{ "mean", VT_NUM },
	{ "p50", VT_NUM },
	{ "p90", VT_NUM },
	{ "p99", VT_NUM },
	{ "p999", VT_NUM },
	{ "buckets", VT_ARR, NULL, true },
	{ NULL }
};

static const struct vmember m_counter[] = {
	{ "unit", VT_STR },
	{ "value", VT_NUM },
	{ NULL }
};

static const struct vmember m_gauge[] = {
	{ "unit", VT_STR },
	{ "last", VT_NUM },
	{ "peak", VT_NUM },
	{ NULL }
};

static const struct {
	const char *name;
	const struct vmember *members;
} kinds[] = {
	{ "run_start", m_run_start },
	{ "case_start", m_case_start },
	{ "case_end", m_case_end },
	{ "log", m_log },
	{ "run_end", m_run_end },
};

static const struct {
	const char *name;
	const struct vmember *members;
} metric_kinds[] = {
	{ "hist", m_hist },
	{ "counter", m_counter },
	{ "gauge", m_gauge },
};

static const char *const kmsg_classes[] = { "none", "FAIL", "CRASH" };

struct vctx {
	const char *kind;
	char *err;
	size_t errlen;
	unsigned nodes;
	size_t str_bytes;
};

static int verr(struct vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int verr(struct vctx *c, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	if (!c->err || !c->errlen)
		return -EINVAL;
	n = snprintf(c->err, c->errlen, "%s: ", c->kind);
	if (n < 0 || (size_t)n >= c->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	va_end(ap);
	/* Quoted bits of a bad event may be cut mid-character: keep messages plain ASCII. */
	for (p = c->err; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return -EINVAL;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

/* Joins a parent path and a key without ever overflowing: paths are only for messages. */
static void path_join(char *dst, size_t len, const char *parent, const char *key)
{
	if (parent && *parent)
		snprintf(dst, len, "%s.%s", parent, key);
	else
		snprintf(dst, len, "%s", key);
}

/* Bounds on everything, before any member is looked at: strings, depth, size. */
static int walk(struct vctx *c, const json_t *v, const char *path, int depth)
{
	char sub[256];
	const char *key;
	json_t *x;
	size_t i;

	if (depth > MS_EV_MAX_DEPTH)
		return verr(c, "\"%s\" nested deeper than %d", path, MS_EV_MAX_DEPTH);
	if (++c->nodes > MS_EV_MAX_NODES)
		return verr(c, "more than %d values", MS_EV_MAX_NODES);
	if (json_is_string(v)) {
		size_t n = json_string_length(v);

		if (n > MS_EV_MAX_STR)
			return verr(c, "\"%s\" is a string of %zu bytes (max %d)", path, n,
				    MS_EV_MAX_STR);
		if (strlen(json_string_value(v)) != n)
			return verr(c, "\"%s\" contains a NUL byte", path);
		c->str_bytes += n;
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, x) {
			if (strlen(key) > MS_EV_MAX_STR)
				return verr(c, "a key in \"%s\" is longer than %d bytes", path,
					    MS_EV_MAX_STR);
			path_join(sub, sizeof(sub), path, key);
			if (walk(c, x, sub, depth + 1))
				return -EINVAL;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (walk(c, x, sub, depth + 1))
				return -EINVAL;
		}
	}
	if (c->str_bytes > MS_EV_MAX_STR_TOTAL)
		return verr(c, "more than %d bytes of strings", MS_EV_MAX_STR_TOTAL);
	return 0;
}

static bool type_ok(const json_t *v, enum vt type)
{
	json_int_t i;
	size_t k;
	json_t *x;

	switch (type) {
	case VT_STR:
		return json_is_string(v);
	case VT_INT:
		return json_is_integer(v);
	case VT_UINT:
	case VT_SMALL:
		if (!json_is_integer(v))
			return false;
		i = json_integer_value(v);
		return i >= 0 && (type == VT_UINT || i <= MS_EV_MAX_INDEX);
	case VT_BOOL:
		return json_is_boolean(v);
	case VT_NUM:
		return json_is_number(v);
	case VT_OBJ:
		return json_is_object(v);
	case VT_ARR:
		return json_is_array(v);
	case VT_STRS:
		if (!json_is_array(v))
			return false;
		json_array_foreach(v, k, x)
			if (!json_is_string(x))
				return false;
		return true;
	}
	return false;
}

static const char *type_want(enum vt type)
{
	switch (type) {
	case VT_STR:
		return "a string";
	case VT_INT:
		return "an integer";
	case VT_UINT:
		return "a non-negative integer";
	case VT_SMALL:
		return "an integer 0..1048576";
	case VT_BOOL:
		return "a boolean";
	case VT_NUM:
		return "a number";
	case VT_OBJ:
		return "an object";
	case VT_ARR:
		return "an array";
	case VT_STRS:
		return "an array of strings";
	}
	return "?";
}

static int check_members(struct vctx *c, const json_t *obj, const char *path,
			 const struct vmember *m);

static int check_elements(struct vctx *c, const json_t *arr, const char *path,
			  const struct vmember *m)
{
	char sub[256];
	json_t *x;
	size_t i;

	json_array_foreach(arr, i, x) {
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!json_is_object(x))
			return verr(c, "\"%s\" must be an object, is %s", sub, type_name(x));
		if (check_members(c, x, sub, m))
			return -EINVAL;
	}
	return 0;
}

static int check_members(struct vctx *c, const json_t *obj, const char *path,
			 const struct vmember *m)
{
	char sub[256];
	json_t *v;

	for (; m->key; m++) {
		path_join(sub, sizeof(sub), path, m->key);
		v = json_object_get(obj, m->key);
		if (!v) {
			if (m->optional)
				continue;
			return verr(c, "missing member \"%s\"", sub);
		}
		if (!type_ok(v, m->type))
			return verr(c, "\"%s\" must be %s, is %s", sub, type_want(m->type),
				    json_is_integer(v) && m->type != VT_INT ? "out of range" :
				    type_name(v));
		if (!m->sub)
			continue;
		if (m->type == VT_OBJ && check_members(c, v, sub, m->sub))
			return -EINVAL;
		if (m->type == VT_ARR && check_elements(c, v, sub, m->sub))
			return -EINVAL;
	}
	return 0;
}

static int check_buckets(struct vctx *c, const json_t *buckets, const char *path)
{
	json_t *b;
	size_t i;

	json_array_foreach(buckets, i, b) {
		if (json_array_size(b) != 2 || !type_ok(json_array_get(b, 0), VT_UINT) ||
		    !type_ok(json_array_get(b, 1), VT_UINT))
			return verr(c, "\"%s.buckets[%zu]\" must be [value, count] (non-negative "
				    "integers)", path, i);
	}
	return 0;
}

static int check_metric(struct vctx *c, const char *name, const json_t *m)
{
	char path[256];
	const char *kind;
	size_t i;

	path_join(path, sizeof(path), "metrics", name);
	if (!json_is_object(m))
		return verr(c, "\"%s\" must be an object, is %s", path, type_name(m));
	kind = json_string_value(json_object_get(m, "kind"));
	if (!kind)
		return verr(c, "\"%s.kind\" must be a string", path);
	for (i = 0; i < sizeof(metric_kinds) / sizeof(metric_kinds[0]); i++) {
		if (strcmp(kind, metric_kinds[i].name))
			continue;
		if (check_members(c, m, path, metric_kinds[i].members))
			return -EINVAL;
		if (json_object_get(m, "buckets"))
			return check_buckets(c, json_object_get(m, "buckets"), path);
		return 0;
	}
	return verr(c, "\"%s.kind\" is \"%.32s\", not hist, counter or gauge", path, kind);
}

static int check_case_start(struct vctx *c, const json_t *ev)
{
	json_int_t repeat = json_integer_value(json_object_get(ev, "repeat"));
	json_int_t repeats = json_integer_value(json_object_get(ev, "repeats"));

	if (repeats < 1)
		return verr(c, "\"repeats\" must be at least 1");
	if (repeat >= repeats)
		return verr(c, "\"repeat\" %lld is not below \"repeats\" %lld", (long long)repeat,
			    (long long)repeats);
	return 0;
}

static int check_case_end(struct vctx *c, const json_t *ev)
{
	const char *verdict = json_string_value(json_object_get(ev, "verdict"));
	const json_t *kmsg = json_object_get(ev, "kmsg");
	const char *cls = json_string_value(json_object_get(kmsg, "class"));
	const char *name;
	json_t *m;
	size_t i;

	if (ms_verdict_parse(verdict) < 0)
		return verr(c, "\"verdict\" is \"%.32s\", not a verdict", verdict);
	for (i = 0; i < sizeof(kmsg_classes) / sizeof(kmsg_classes[0]); i++)
		if (!strcmp(cls, kmsg_classes[i]))
			break;
	if (i == sizeof(kmsg_classes) / sizeof(kmsg_classes[0]))
		return verr(c, "\"kmsg.class\" is \"%.32s\", not none, FAIL or CRASH", cls);
	json_object_foreach(json_object_get(ev, "metrics"), name, m)
		if (check_metric(c, name, m))
			return -EINVAL;
	return 0;
}

int ms_event_validate(const json_t *ev, char *err, size_t errlen)
{
	struct vctx c = { .kind = "event", .err = err, .errlen = errlen };
	const struct vmember *members = NULL;
	const char *kind;
	json_t *t;
	size_t i;

	if (err && errlen)
		err[0] = '\0';
	if (!json_is_object(ev))
		return verr(&c, "not a JSON object (%s)", ev ? type_name(ev) : "nothing");
	kind = json_string_value(json_object_get(ev, "ev"));
	if (!kind)
		return verr(&c, "missing member \"ev\" (string)");
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (!strcmp(kind, kinds[i].name)) {
			c.kind = kinds[i].name;
			members = kinds[i].members;
		}
	}
	if (!members)
		return verr(&c, "unknown event kind \"%.64s\"", kind);
	if (walk(&c, ev, "", 0))
		return -EINVAL;
	t = json_object_get(ev, "t_ns");
	if (!t)
		return verr(&c, "missing member \"t_ns\"");
	if (!type_ok(t, VT_UINT))
		return verr(&c, "\"t_ns\" must be a non-negative integer, is %s",
			    json_is_integer(t) ? "negative" : type_name(t));
	if (check_members(&c, ev, "", members))
		return -EINVAL;
	if (members == m_run_start &&
	    strcmp(json_string_value(json_object_get(ev, "schema")), MS_EVENTS_SCHEMA))
		return verr(&c, "\"schema\" is \"%.64s\", this mmstorm reads " MS_EVENTS_SCHEMA,
			    json_string_value(json_object_get(ev, "schema")));
	if (members == m_case_start)
		return check_case_start(&c, ev);
	if (members == m_case_end)
		return check_case_end(&c, ev);
	return 0;
}

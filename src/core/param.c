/* Typed parameter values (INT, SIZE, TIME, BOOL, ENUM, STRING): parsing, checking, formatting. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mmstorm/param.h"

#define NS_PER_US 1000LL
#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* Longest piece of user text quoted back in an error message. */
#define QUOTE_MAX 60

struct unit {
	const char *name;
	int64_t mult;
};

/* Largest first: ms_param_format picks the first unit dividing the value exactly. */
static const struct unit time_units[] = {
	{ "d", 86400 * NS_PER_S },
	{ "h", 3600 * NS_PER_S },
	{ "m", 60 * NS_PER_S },
	{ "s", NS_PER_S },
	{ "ms", NS_PER_MS },
	{ "us", NS_PER_US },
	{ "ns", 1 },
};

static const char *const size_suffixes = "KMGT";	/* 1024^1 .. 1024^4 */

size_t ms_param_count(const struct ms_param *tab)
{
	size_t n = 0;

	while (tab && tab[n].name)
		n++;
	return n;
}

const struct ms_param *ms_param_find(const struct ms_param *tab, const char *name)
{
	for (; tab && tab->name; tab++)
		if (!strcmp(tab->name, name))
			return tab;
	return NULL;
}

/*
 * Digits in base 10 or 16. Keeps scanning after an overflow so that trailing garbage is still
 * reported as a syntax error rather than a range error.
 */
static int parse_digits(const char *s, unsigned base, uint64_t *v, const char **end)
{
	bool overflow = false;
	uint64_t acc = 0;
	const char *p;

	for (p = s;; p++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (acc > (UINT64_MAX - d) / base)
			overflow = true;
		else
			acc = acc * base + d;
	}
	*end = p;
	*v = acc;
	if (p == s)
		return -EINVAL;
	return overflow ? -ERANGE : 0;
}

int ms_parse_int(const char *text, int64_t *v)
{
	const char *s = text, *end;
	unsigned base = 10;
	bool neg = false;
	uint64_t u;
	int ret;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	ret = parse_digits(s, base, &u, &end);
	if (ret == -EINVAL || *end)
		return -EINVAL;
	if (ret)
		return ret;
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
	} else {
		if (u > INT64_MAX)
			return -ERANGE;
		*v = u;
	}
	return 0;
}

/* "", "B", or a K/M/G/T suffix optionally followed by "B" or "iB" (any case). */
static int size_shift(const char *s, unsigned *shift)
{
	const char *k = *s ? strchr(size_suffixes, toupper((unsigned char)*s)) : NULL;

	*shift = 0;
	if (k) {
		*shift = 10 * (unsigned)(k - size_suffixes + 1);
		s++;
		if (*s == 'i' || *s == 'I') {
			s++;
			if (*s != 'b' && *s != 'B')
				return -EINVAL;
		}
	}
	if (*s == 'b' || *s == 'B')
		s++;
	return *s ? -EINVAL : 0;
}

int ms_parse_size(const char *text, int64_t *bytes)
{
	const char *end;
	unsigned shift;
	uint64_t u;
	int ret;

	ret = parse_digits(text, 10, &u, &end);
	if (ret == -EINVAL || size_shift(end, &shift))
		return -EINVAL;
	if (ret)
		return ret;
	if (u > (uint64_t)INT64_MAX >> shift)
		return -ERANGE;
	*bytes = (int64_t)(u << shift);
	return 0;
}

int ms_parse_time(const char *text, int64_t *ns)
{
	int64_t mult = NS_PER_S;	/* a bare number is seconds */
	const char *end;
	uint64_t u;
	int ret;

	ret = parse_digits(text, 10, &u, &end);
	if (ret == -EINVAL)
		return -EINVAL;
	if (*end) {
		size_t i;

		for (i = 0; i < sizeof(time_units) / sizeof(time_units[0]); i++)
			if (!strcasecmp(end, time_units[i].name))
				break;
		if (i == sizeof(time_units) / sizeof(time_units[0]))
			return -EINVAL;
		mult = time_units[i].mult;
	}
	if (ret)
		return ret;
	if (u > (uint64_t)(INT64_MAX / mult))
		return -ERANGE;
	*ns = (int64_t)u * mult;
	return 0;
}

int ms_parse_bool(const char *text, int64_t *v)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(text, yes[i])) {
			*v = 1;
			return 0;
		}
		if (!strcasecmp(text, no[i])) {
			*v = 0;
			return 0;
		}
	}
	return -EINVAL;
}

static void format_size(int64_t v, char *buf, size_t len)
{
	for (int i = 3; i >= 0 && v > 0; i--) {
		int64_t mult = (int64_t)1 << (10 * (i + 1));

		if (v % mult == 0) {
			snprintf(buf, len, "%" PRId64 "%c", v / mult, size_suffixes[i]);
			return;
		}
	}
	snprintf(buf, len, "%" PRId64, v);
}

static void format_time(int64_t v, char *buf, size_t len)
{
	if (v == 0) {
		snprintf(buf, len, "0");
		return;
	}
	for (size_t i = 0; i < sizeof(time_units) / sizeof(time_units[0]); i++) {
		if (v % time_units[i].mult == 0) {
			snprintf(buf, len, "%" PRId64 "%s", v / time_units[i].mult,
				 time_units[i].name);
			return;
		}
	}
}

static size_t nchoices(const struct ms_param *p)
{
	size_t n = 0;

	while (p->choices && p->choices[n])
		n++;
	return n;
}

void ms_param_format(const struct ms_param *p, const struct ms_pval *v, char *buf, size_t len)
{
	if (!len)
		return;
	switch (p->type) {
	case MS_P_SIZE:
		format_size(v->i, buf, len);
		break;
	case MS_P_TIME:
		format_time(v->i, buf, len);
		break;
	case MS_P_BOOL:
		snprintf(buf, len, "%s", v->i ? "true" : "false");
		break;
	case MS_P_ENUM:
		if (v->i >= 0 && (uint64_t)v->i < nchoices(p))
			snprintf(buf, len, "%s", p->choices[v->i]);
		else
			snprintf(buf, len, "%" PRId64, v->i);
		break;
	case MS_P_STRING:
		snprintf(buf, len, "%s", v->s);
		break;
	case MS_P_INT:
	default:
		snprintf(buf, len, "%" PRId64, v->i);
		break;
	}
}

/* User text made safe for a one-line message: escaped and cut to QUOTE_MAX characters. */
static void quote(const char *text, char *buf, size_t len)
{
	size_t o = 0;
	const unsigned char *s;

	for (s = (const unsigned char *)text; *s && o + 8 < len; s++) {
		if (o >= QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (*s < 0x20 || *s >= 0x7f)
			o += snprintf(buf + o, len - o, "\\x%02x", *s);
		else if (*s == '\\')
			o += snprintf(buf + o, len - o, "\\\\");
		else
			buf[o++] = *s;
	}
	buf[o] = '\0';
}

/* "size (bytes, 4K..64G)", "one of (anon|thp)": what a value of p must look like. */
static void describe(const struct ms_param *p, char *buf, size_t len)
{
	static const char *const type_names[] = {
		[MS_P_INT] = "integer", [MS_P_SIZE] = "size", [MS_P_TIME] = "time",
		[MS_P_BOOL] = "bool", [MS_P_ENUM] = "one of", [MS_P_STRING] = "string",
	};
	const char *unit = p->unit ? p->unit : "";
	char lo[32], hi[32];
	int o;

	o = snprintf(buf, len, "%s", type_names[p->type]);
	if (p->type == MS_P_BOOL) {
		snprintf(buf + o, len - o, " (0/1, true/false, yes/no, on/off)");
		return;
	}
	if (p->type == MS_P_STRING) {
		snprintf(buf + o, len - o, " (printable ASCII, at most %d bytes)",
			 MS_PARAM_STR_MAX - 1);
		return;
	}
	if (p->type == MS_P_ENUM) {
		for (size_t i = 0; i < nchoices(p) && (size_t)o < len; i++)
			o += snprintf(buf + o, len - o, "%s%s", i ? "|" : " (", p->choices[i]);
		if ((size_t)o < len)
			snprintf(buf + o, len - o, ")");
		return;
	}
	if (p->min > p->max) {
		if (*unit)
			snprintf(buf + o, len - o, " (%s)", unit);
		return;
	}
	ms_param_format(p, &(struct ms_pval){ .i = p->min }, lo, sizeof(lo));
	ms_param_format(p, &(struct ms_pval){ .i = p->max }, hi, sizeof(hi));
	snprintf(buf + o, len - o, " (%s%s%s..%s)", unit, *unit ? ", " : "", lo, hi);
}

static int parse_string(const char *text, struct ms_pval *out)
{
	size_t n = strlen(text);

	if (n >= sizeof(out->s))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			return -EINVAL;
	memcpy(out->s, text, n + 1);
	return 0;
}

static int parse_enum(const struct ms_param *p, const char *text, struct ms_pval *out)
{
	for (size_t i = 0; i < nchoices(p); i++) {
		if (!strcasecmp(text, p->choices[i])) {
			out->i = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_typed(const struct ms_param *p, const char *text, struct ms_pval *out)
{
	int ret;

	switch (p->type) {
	case MS_P_INT:
		ret = ms_parse_int(text, &out->i);
		break;
	case MS_P_SIZE:
		ret = ms_parse_size(text, &out->i);
		break;
	case MS_P_TIME:
		ret = ms_parse_time(text, &out->i);
		break;
	case MS_P_BOOL:
		return ms_parse_bool(text, &out->i);
	case MS_P_ENUM:
		return parse_enum(p, text, out);
	case MS_P_STRING:
		return parse_string(text, out);
	default:
		return -EINVAL;
	}
	if (!ret && p->min <= p->max && (out->i < p->min || out->i > p->max))
		ret = -ERANGE;
	return ret;
}

int ms_param_parse(const struct ms_param *p, const char *text, struct ms_pval *out,
		   char *err, size_t errlen)
{
	char what[512], found[QUOTE_MAX + 16];
	int ret;

	memset(out, 0, sizeof(*out));
	if ((unsigned)p->type > MS_P_STRING)
		ret = -EINVAL;
	else
		ret = parse_typed(p, text, out);
	if (!ret) {
		/* .s holds the canonical text for every type: ENUM callers want the choice name. */
		if (p->type != MS_P_STRING)
			ms_param_format(p, out, out->s, sizeof(out->s));
		return 0;
	}
	memset(out, 0, sizeof(*out));
	if ((unsigned)p->type > MS_P_STRING)
		snprintf(what, sizeof(what), "a known type (parameter '%s' has type %d)", p->name,
			 (int)p->type);
	else
		describe(p, what, sizeof(what));
	quote(text, found, sizeof(found));
	if (err && errlen)
		snprintf(err, errlen, "expected %s, found '%s'", what, found);
	return -EINVAL;
}

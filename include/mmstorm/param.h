/* Declarative parameter tables: one place for parsing, validation, `mmstorm list` and docs. */
#ifndef MMSTORM_PARAM_H
#define MMSTORM_PARAM_H

#include <stddef.h>
#include <stdint.h>

enum ms_ptype {
	MS_P_INT,	/* plain integer, optional K/M/G (x1000) not accepted: digits only */
	MS_P_SIZE,	/* bytes, suffixes K M G T (powers of 1024), e.g. 64M */
	MS_P_TIME,	/* nanoseconds, suffixes ns us ms s m; a bare number means seconds */
	MS_P_BOOL,	/* 0/1, true/false, yes/no, on/off */
	MS_P_ENUM,	/* one of .choices; value is the index */
	MS_P_STRING,	/* free text, at most MS_PARAM_STR_MAX-1 bytes */
};

#define MS_PARAM_STR_MAX 256

struct ms_param {
	const char *name;
	enum ms_ptype type;
	const char *def;		/* default, in the same syntax the suite uses; NULL = required */
	const char *unit;		/* "bytes", "ns", "pages", "" ... shown by `list` */
	int64_t min, max;		/* inclusive range for INT/SIZE/TIME (ignored if min > max) */
	const char *const *choices;	/* ENUM: NULL-terminated list */
	const char *help;
};

/* A parsed value. Numeric types, BOOL and ENUM (index) use .i; STRING uses .s. */
struct ms_pval {
	int64_t i;
	char s[MS_PARAM_STR_MAX];
};

/* Number of entries in a NULL-name-terminated table. */
size_t ms_param_count(const struct ms_param *tab);
const struct ms_param *ms_param_find(const struct ms_param *tab, const char *name);

/*
 * Parse text into *out according to p. On error returns -EINVAL and writes a message
 * "expected <what> (<unit>, <range>), found '<text>'" into err.
 */
int ms_param_parse(const struct ms_param *p, const char *text, struct ms_pval *out,
		   char *err, size_t errlen);

/* Helpers shared with the suite parser and tests. Return 0 or -EINVAL / -ERANGE. */
int ms_parse_size(const char *text, int64_t *bytes);
int ms_parse_time(const char *text, int64_t *ns);
int ms_parse_int(const char *text, int64_t *v);
int ms_parse_bool(const char *text, int64_t *v);

/* Format a value of type p back to text (e.g. "64M", "30s"). */
void ms_param_format(const struct ms_param *p, const struct ms_pval *v, char *buf, size_t len);

#endif

/* The console protocol for LAVA: result lines a monitor reads, and the event stream in chunks. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "mmstorm/lava.h"
#include "mmstorm/util.h"

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool ms_case_set_has(const char *set, unsigned index)
{
	const char *p = set;

	while (p && *p) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;

		if (end == p)
			return false;
		if (*end == '-') {
			p = end + 1;
			hi = strtoul(p, &end, 10);
			if (end == p)
				return false;
		}
		if (index >= lo && index <= hi)
			return true;
		if (*end && *end != ',')
			return false;
		p = *end ? end + 1 : end;
	}
	return false;
}

static size_t b64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64_chars[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? b64_chars[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;

	return p ? (int)(p - b64_chars) : -1;
}

/* Returns the decoded length, or -EINVAL. */
static ssize_t b64_decode(const char *in, size_t len, unsigned char *out)
{
	size_t o = 0;

	if (len % 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		unsigned pad = 0;

		for (int k = 0; k < 4; k++) {
			bool tail_pad = in[i + k] == '=' && i + 4 == len && k >= 2;

			v[k] = tail_pad ? 0 : b64_value(in[i + k]);
			if (in[i + k] == '=')
				pad++;
			if (v[k] < 0)
				return -EINVAL;
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return (ssize_t)o;
}

/* ---- agent side ---- */

int ms_lava_put_event(int fd, unsigned long seq, const json_t *ev)
{
	char *text = json_dumps(ev, JSON_COMPACT), *b64 = NULL;
	unsigned char *z = NULL;
	uLongf zlen;
	size_t rawlen, blen, nparts;
	uint32_t crc;
	int ret = -ENOMEM;

	if (!text)
		return -ENOMEM;
	rawlen = strlen(text);
	crc = (uint32_t)crc32(0, (const Bytef *)text, (uInt)rawlen);
	zlen = compressBound(rawlen);
	z = malloc(zlen);
	if (!z || compress2(z, &zlen, (const Bytef *)text, rawlen, 6) != Z_OK)
		goto out;
	b64 = malloc(4 * (zlen / 3 + 1) + 1);
	if (!b64)
		goto out;
	blen = b64_encode(z, zlen, b64);
	nparts = (blen + MS_LAVA_CHUNK - 1) / MS_LAVA_CHUNK;
	ret = 0;
	for (size_t i = 0; i < nparts && !ret; i++) {
		char line[MS_LAVA_CHUNK + 128];
		size_t n = blen - i * MS_LAVA_CHUNK < MS_LAVA_CHUNK ? blen - i * MS_LAVA_CHUNK :
			   MS_LAVA_CHUNK;
		int h = snprintf(line, sizeof(line), MS_LAVA_EV " %lu %zu/%zu %zu %08x ", seq,
				 i + 1, nparts, rawlen, crc);

		memcpy(line + h, b64 + i * MS_LAVA_CHUNK, n);
		line[h + n] = '\n';
		ret = ms_write_all(fd, line, (size_t)h + n + 1);
	}
out:
	free(b64);
	free(z);
	free(text);
	return ret;
}

/* LAVA turns test case names into [a-z0-9_]; keep ours readable but free of spaces. */
static void lava_name(char *dst, size_t len, const char *a, const char *b)
{
	snprintf(dst, len, "%s%s%s", a, b ? "." : "", b ? b : "");
	for (char *p = dst; *p; p++)
		if (*p <= ' ' || *p >= 127)
			*p = '_';
}

static void lava_units(char *dst, size_t len, const char *unit)
{
	size_t o = 0;

	for (const char *p = unit && *unit ? unit : "none"; *p && o + 1 < len; p++)
		dst[o++] = strchr("_/%-", *p) || (*p >= '0' && *p <= '9') ||
			   (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ? *p : '_';
	dst[o] = '\0';
}

static int put_line(int fd, const char *name, const char *result, double value,
		    const char *unit)
{
	char line[1024], units[64];
	int n;

	if (!isfinite(value))
		return 0;
	lava_units(units, sizeof(units), unit);
	n = snprintf(line, sizeof(line), MS_LAVA_RESULT " case=%s result=%s measurement=%.10g "
		     "units=%s\n", name, result, value, units);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -E2BIG;
	return ms_write_all(fd, line, (size_t)n);
}

/* The number a metric stands for in a table: histogram p50, counter value, gauge peak. */
static bool metric_value(const json_t *m, double *v)
{
	const char *kind = json_string_value(json_object_get(m, "kind")) ?: "";
	const char *key = !strcmp(kind, "hist") ? "p50" : !strcmp(kind, "counter") ? "value" :
			  !strcmp(kind, "gauge") ? "peak" : NULL;
	json_t *x = key ? json_object_get(m, key) : NULL;

	if (!json_is_number(x))
		return false;
	*v = json_number_value(x);
	return true;
}

int ms_lava_put_result(int fd, const json_t *ev)
{
	const char *verdict = json_string_value(json_object_get(ev, "verdict")) ?: "";
	const char *result = !strcmp(verdict, "PASS") ? "pass" : !strcmp(verdict, "SKIP") ?
			     "skip" : "fail";
	json_int_t repeat = json_integer_value(json_object_get(ev, "repeat"));
	char base[256], name[512], rep[24];
	const char *key;
	json_t *m;
	int ret;

	snprintf(rep, sizeof(rep), "r%lld", (long long)repeat);
	lava_name(base, sizeof(base), json_string_value(json_object_get(ev, "case")) ?: "case",
		  repeat > 0 ? rep : NULL);
	ret = put_line(fd, base, result,
		       json_integer_value(json_object_get(ev, "duration_ns")) / 1e9, "s");
	json_object_foreach(json_object_get(ev, "metrics"), key, m) {
		double v;

		if (ret || !metric_value(m, &v))
			continue;
		lava_name(name, sizeof(name), base, key);
		ret = put_line(fd, name, result, v,
			       json_string_value(json_object_get(m, "unit")));
	}
	return ret;
}

/* ---- collect side ---- */

static void dec_reset(struct ms_lava_dec *d)
{
	d->part = d->nparts = 0;
	d->len = 0;
}

static int dec_fail(struct ms_lava_dec *d, char *why, size_t len, const char *fmt,
		    unsigned long seq)
{
	snprintf(why, len, fmt, seq);
	d->nbad++;
	dec_reset(d);
	return -EINVAL;
}

static int dec_finish(struct ms_lava_dec *d, char **json, char *why, size_t whylen)
{
	unsigned char *z = malloc(d->len / 4 * 3 + 3);
	char *text = malloc(d->rawlen + 1);
	uLongf tlen = d->rawlen;
	ssize_t zlen;
	int ret = -EINVAL;

	if (!z || !text) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	zlen = b64_decode(d->b64, d->len, z);
	if (zlen < 0 || uncompress((Bytef *)text, &tlen, z, (uLong)zlen) != Z_OK ||
	    tlen != d->rawlen || (uint32_t)crc32(0, (Bytef *)text, (uInt)tlen) != d->crc) {
		ret = dec_fail(d, why, whylen, "event %lu: corrupted (base64, zlib, length or "
			       "CRC mismatch)", d->seq);
		goto out;
	}
	text[tlen] = '\0';
	*json = text;
	text = NULL;
	d->nevents++;
	dec_reset(d);
	ret = 1;
out:
	free(text);
	free(z);
	return ret;
}

int ms_lava_dec_line(struct ms_lava_dec *d, const char *line, char **json, char *why,
		     size_t whylen)
{
	const char *p = strstr(line, MS_LAVA_EV " ");
	unsigned long seq, part, nparts, rawlen;
	unsigned crc;
	int off = 0;
	size_t n;

	*json = NULL;
	if (!p)
		return 0;
	if (sscanf(p + sizeof(MS_LAVA_EV), "%lu %lu/%lu %lu %8x %n", &seq, &part, &nparts,
		   &rawlen, &crc, &off) != 5 || !off || !part || part > nparts ||
	    rawlen > (64UL << 20))
		return dec_fail(d, why, whylen, "chunk line after event %lu: malformed header",
				d->seq);
	p += sizeof(MS_LAVA_EV) + (size_t)off;
	n = strspn(p, b64_chars + 0);
	n += strspn(p + n, "=");
	if (part == 1) {
		if (d->nparts)
			dec_fail(d, why, whylen, "event %lu: chunks missing", d->seq);
		d->seq = seq;
		d->nparts = (unsigned)nparts;
		d->rawlen = rawlen;
		d->crc = crc;
	} else if (seq != d->seq || part != d->part + 1 || nparts != d->nparts) {
		return dec_fail(d, why, whylen, "event %lu: chunk lost or out of order", seq);
	}
	if (d->len + n + 1 > d->cap) {
		size_t cap = (d->len + n + 1) * 2;
		char *b = realloc(d->b64, cap);

		if (!b)
			return dec_fail(d, why, whylen, "event %lu: out of memory", seq);
		d->b64 = b;
		d->cap = cap;
	}
	memcpy(d->b64 + d->len, p, n);
	d->len += n;
	d->part = (unsigned)part;
	if (part < nparts)
		return 0;
	return dec_finish(d, json, why, whylen);
}

void ms_lava_dec_free(struct ms_lava_dec *d)
{
	free(d->b64);
	d->b64 = NULL;
	d->cap = d->len = 0;
}

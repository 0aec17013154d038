/* The guest's event stream: untrusted serial bytes split into lines, parsed, validated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/result.h"
#include "vm/vm.h"

#define EXCERPT_MAX 80

void ms_vm_printable(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t o = 0;

	if (!dstlen)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)src[i];
		size_t need = ch >= 0x20 && ch < 0x7f ? 1 : 4;

		if (o + need + 1 > dstlen)
			break;
		if (need == 1)
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", ch);
	}
	dst[o] = '\0';
}

int ms_vmstream_init(struct ms_vmstream *s, void (*on_event)(void *, json_t *),
		     void (*on_bad)(void *, unsigned long, const char *, const char *),
		     void *arg)
{
	memset(s, 0, sizeof(*s));
	s->cap = 65536;
	s->buf = malloc(s->cap);
	if (!s->buf)
		return -ENOMEM;
	s->on_event = on_event;
	s->on_bad = on_bad;
	s->arg = arg;
	return 0;
}

void ms_vmstream_free(struct ms_vmstream *s)
{
	free(s->buf);
	s->buf = NULL;
}

/* Both texts may quote guest bytes (jansson's messages do): they leave here printable. */
static void stream_bad(struct ms_vmstream *s, unsigned long lineno, const char *why,
		       const char *line, size_t len)
{
	char excerpt[EXCERPT_MAX * 4 + 1], clean[512];

	s->nbad++;
	ms_vm_printable(excerpt, sizeof(excerpt), line, len < EXCERPT_MAX ? len : EXCERPT_MAX);
	ms_vm_printable(clean, sizeof(clean), why, strlen(why));
	if (s->on_bad)
		s->on_bad(s->arg, lineno, clean, excerpt);
}

/* JSON allows only these control bytes, and only as whitespace between tokens. */
static bool has_control(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
			return true;
	}
	return false;
}

static void stream_line(struct ms_vmstream *s, const char *line, size_t len)
{
	char why[256], err[200];
	json_error_t jerr;
	json_t *ev;

	s->lineno++;
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (!len)
		return;
	if (has_control(line, len)) {
		stream_bad(s, s->lineno, "control or NUL bytes", line, len);
		return;
	}
	ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ev) {
		snprintf(why, sizeof(why), "invalid JSON at column %d: %s", jerr.column, jerr.text);
		stream_bad(s, s->lineno, why, line, len);
		return;
	}
	if (!json_is_object(ev)) {
		json_decref(ev);
		stream_bad(s, s->lineno, "not a JSON object", line, len);
		return;
	}
	err[0] = '\0';
	if (ms_event_validate(ev, err, sizeof(err))) {
		json_decref(ev);
		snprintf(why, sizeof(why), "invalid event: %s", err[0] ? err : "rejected");
		stream_bad(s, s->lineno, why, line, len);
		return;
	}
	s->nevents++;
	if (s->on_event)
		s->on_event(s->arg, ev);
	else
		json_decref(ev);
}

/* Room for need bytes (at most the limit); false, and the line dropped, without memory. */
static bool stream_room(struct ms_vmstream *s, size_t need)
{
	size_t cap = s->cap;
	char *grown;

	if (need <= cap)
		return true;
	while (cap < need)
		cap *= 2;
	if (cap > MS_VMSTREAM_LINE_MAX)
		cap = MS_VMSTREAM_LINE_MAX;
	grown = realloc(s->buf, cap);
	if (!grown)
		return false;
	s->buf = grown;
	s->cap = cap;
	return true;
}

void ms_vmstream_feed(struct ms_vmstream *s, const void *data, size_t len)
{
	const char *p = data, *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (!s->dropping && s->len + n > MS_VMSTREAM_LINE_MAX) {
			stream_bad(s, s->lineno + 1, "line longer than 8 MiB", s->len ? s->buf : p,
				   s->len ? s->len : n);
			s->dropping = true;
			s->len = 0;
		}
		if (!s->dropping && !stream_room(s, s->len + n)) {
			stream_bad(s, s->lineno + 1, "out of memory for the line", s->buf, s->len);
			s->dropping = true;
			s->len = 0;
		}
		if (!s->dropping) {
			memcpy(s->buf + s->len, p, n);
			s->len += n;
		}
		if (!nl)
			break;
		if (s->dropping)
			s->lineno++;
		else
			stream_line(s, s->buf, s->len);
		s->dropping = false;
		s->len = 0;
		p = nl + 1;
	}
}

void ms_vmstream_finish(struct ms_vmstream *s)
{
	if (s->len && !s->dropping) {
		s->lineno++;
		stream_bad(s, s->lineno, "truncated line (stream ended)", s->buf, s->len);
	}
	s->len = 0;
	s->dropping = false;
}

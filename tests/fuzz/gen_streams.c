/* Fuzz: garbled guest event streams through the host's stream parser (built with ASan/UBSan). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mmstorm/result.h"
#include "vm/vm.h"

/*
 * usage: gen_streams [NSTREAMS [SEED [DUMPDIR]]]   (default 10000 streams, seed 1)
 * Each stream mixes valid events with mutated ones, random bytes, over-long lines, deep
 * nesting, bad UTF-8 and valid JSON that is no event, fed in random pieces. Whatever comes
 * in, the parser must not crash, must hand on only events that validate, and must never
 * lose a valid event that stands on its own line. A failing stream is written to
 * DUMPDIR/stream-N.raw when DUMPDIR is given, to replay it.
 */

static const char *const templates[] = {
	"{\"ev\":\"log\",\"t_ns\":12,\"msg\":\"guest says hello\"}",
	"{\"ev\":\"run_end\",\"t_ns\":99,\"status\":\"complete\"}",
	"{\"ev\":\"case_start\",\"t_ns\":5,\"case\":\"fork-anon\",\"index\":0,\"repeat\":0,"
	"\"repeats\":2,\"workload\":\"fork-storm\",\"params\":{\"size\":\"64M\"},"
	"\"timeout_ns\":120000000000,\"seed\":7}",
	"{\"ev\":\"case_end\",\"t_ns\":6,\"case\":\"fork-anon\",\"index\":0,\"repeat\":1,"
	"\"verdict\":\"PASS\",\"reason\":\"\",\"duration_ns\":3000,\"iterations\":4,"
	"\"metrics\":{\"fork_ns\":{\"kind\":\"hist\",\"unit\":\"ns\",\"count\":2,\"min\":1,"
	"\"max\":9,\"mean\":5.0,\"p50\":4,\"p90\":9,\"p99\":9,\"p999\":9,"
	"\"buckets\":[[4,1],[9,1]]},"
	"\"forks\":{\"kind\":\"counter\",\"unit\":\"processes\",\"value\":48}},"
	"\"checks\":{\"run\":3,\"failed\":0,\"failures\":[]},\"notes\":[\"n\"],\"pgtables\":{},"
	"\"kmsg\":{\"class\":\"none\",\"first\":\"\",\"excerpt\":[]}}",
	"{\"ev\":\"run_start\",\"t_ns\":1,\"run_id\":\"r\",\"schema\":\"" MS_EVENTS_SCHEMA "\","
	"\"mmstorm\":{\"version\":\"0.1.0\"},\"command\":[\"mmstorm\",\"agent\"],"
	"\"suite\":{\"path\":\"/suite.ini\",\"name\":\"q\",\"seed\":1,\"ncases\":9},"
	"\"kernel\":{\"release\":\"6.1\",\"version\":\"#1\",\"cmdline\":\"console=ttyS0\"},"
	"\"cpu\":{},\"memory\":{},\"env\":{\"where\":\"guest\"}}",
};

#define NTEMPLATES (sizeof(templates) / sizeof(templates[0]))

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

static size_t below(struct rng *r, size_t n)
{
	return n ? (size_t)(next(r) % n) : 0;
}

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p) {
			fprintf(stderr, "gen_streams: out of memory\n");
			exit(2);
		}
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void puts_b(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void mutated(struct rng *r, struct buf *b)
{
	const char *t = templates[below(r, NTEMPLATES)];
	size_t len = strlen(t), start = b->len;
	unsigned flips = 1 + (unsigned)below(r, 5);

	put(b, t, len);
	if (below(r, 4) == 0)
		b->len = start + below(r, len);	/* cut short */
	for (unsigned i = 0; i < flips && b->len > start; i++)
		b->p[start + below(r, b->len - start)] = (char)next(r);
}

static void random_bytes(struct rng *r, struct buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = (char)next(r);

		put(b, &c, 1);
	}
}

/* Mostly long but within the limit (strings past 64 KiB); now and then past the limit. */
static void long_line(struct rng *r, struct buf *b)
{
	size_t n = below(r, 100) ? 60000 + below(r, 100000) : MS_VMSTREAM_LINE_MAX - 16 +
		   below(r, 4096);
	char c = below(r, 2) ? '[' : 'a' + (char)below(r, 26);

	for (size_t i = 0; i < n; i++)
		put(b, &c, 1);
}

/* Valid JSON of the wrong shape, hostile values, or an event with a member taken away. */
static void tricky(struct rng *r, struct buf *b)
{
	static const char *const cases[] = {
		"[]", "null", "42", "\"ev\"", "{}", "{\"ev\":null}", "{\"ev\":\"log\"}",
		"{\"ev\":\"log\",\"t_ns\":1e999999,\"msg\":\"x\"}",
		"{\"ev\":\"log\",\"t_ns\":1,\"msg\":\"a\\u0000b\"}",
		"{\"ev\":\"log\",\"t_ns\":18446744073709551616,\"msg\":\"x\"}",
		"{\"ev\":\"log\",\"t_ns\":1,\"msg\":\"\xc3\x28\"}",
		"{\"ev\":\"log\",\"t_ns\":1,\"msg\":\"x\",\"msg\":\"y\"}",
		"{\"ev\":\"case_end\",\"t_ns\":1,\"case\":\"c\",\"index\":-1}",
		"{\"ev\":\"case_start\",\"t_ns\":1,\"case\":\"c\",\"index\":0,\"repeat\":5,"
		"\"repeats\":2,\"workload\":\"w\",\"params\":{},\"timeout_ns\":1,\"seed\":1}",
		"\xef\xbb\xbf{\"ev\":\"log\",\"t_ns\":1,\"msg\":\"bom\"}",
	};
	size_t depth;

	switch (below(r, 3)) {
	case 0:
		puts_b(b, cases[below(r, sizeof(cases) / sizeof(cases[0]))]);
		break;
	case 1:
		depth = 1 + below(r, 4000);	/* past jansson's 2048 levels */
		for (size_t i = 0; i < depth; i++)
			puts_b(b, below(r, 2) ? "[" : "{\"a\":");
		break;
	default: {
		json_t *ev = json_loads(templates[below(r, NTEMPLATES)], 0, NULL);
		const char *key;
		json_t *v;
		size_t k = 0, victim;
		char *s;

		if (!ev)
			return;
		victim = below(r, json_object_size(ev));
		json_object_foreach(ev, key, v) {
			if (k++ == victim) {
				json_object_del(ev, key);
				break;
			}
		}
		s = json_dumps(ev, JSON_COMPACT);
		if (s)
			puts_b(b, s);
		free(s);
		json_decref(ev);
	}
	}
}

struct tally {
	unsigned long events, bad, invalid_delivered;
};

static void on_event(void *arg, json_t *ev)
{
	struct tally *t = arg;
	char err[256];

	t->events++;
	if (!json_is_object(ev) || ms_event_validate(ev, err, sizeof(err)))
		t->invalid_delivered++;
	json_decref(ev);
}

static void on_bad(void *arg, unsigned long lineno, const char *why, const char *excerpt)
{
	struct tally *t = arg;

	(void)lineno;
	t->bad++;
	/* the texts go into JSON log events on the host: they must be printable ASCII */
	for (const char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			t->invalid_delivered++;
	for (const char *p = excerpt; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			t->invalid_delivered++;
}

/* One stream: returns true if every invariant held. */
static void dump(const char *dir, unsigned long n, const struct buf *b)
{
	char path[4096];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/stream-%lu.raw", dir, n);
	f = fopen(path, "we");
	if (!f || fwrite(b->p, 1, b->len, f) != b->len)
		fprintf(stderr, "gen_streams: cannot write %s\n", path);
	if (f)
		fclose(f);
}

static bool one_stream(struct rng *r, unsigned long n, const char *dumpdir,
		       unsigned long *bytes, struct tally *total)
{
	struct buf b = { 0 };
	struct ms_vmstream s;
	struct tally t = { 0 };
	unsigned lines = 1 + (unsigned)below(r, 40), pristine = 0;
	bool ok;

	for (unsigned i = 0; i < lines; i++) {
		switch (below(r, 6)) {
		case 0:
		case 1:
			puts_b(&b, templates[below(r, NTEMPLATES)]);
			pristine++;
			break;
		case 2:
			mutated(r, &b);
			break;
		case 3:
			random_bytes(r, &b, below(r, 300));
			break;
		case 4:
			if (below(r, 16) == 0)
				long_line(r, &b);
			else
				tricky(r, &b);
			break;
		default:
			tricky(r, &b);
			break;
		}
		if (below(r, 10))
			puts_b(&b, "\n");
		else
			puts_b(&b, "\r\n");
	}
	if (below(r, 3) == 0)
		mutated(r, &b);	/* the guest died mid-line */
	if (ms_vmstream_init(&s, on_event, on_bad, &t)) {
		free(b.p);
		return false;
	}
	for (size_t off = 0; off < b.len; ) {
		size_t n = 1 + below(r, below(r, 2) ? 16 : 8192);

		if (n > b.len - off)
			n = b.len - off;
		ms_vmstream_feed(&s, b.p + off, n);
		off += n;
	}
	ms_vmstream_finish(&s);
	ok = t.events >= pristine && !t.invalid_delivered && t.events == s.nevents &&
	     t.bad == s.nbad && t.events + t.bad <= s.lineno + 1;
	if (!ok) {
		fprintf(stderr, "stream %lu: %u pristine, %lu events, %lu bad, %lu lines, %lu "
			"invalid delivered\n", n, pristine, t.events, t.bad, s.lineno,
			t.invalid_delivered);
		dump(dumpdir, n, &b);
	}
	ms_vmstream_free(&s);
	*bytes += b.len;
	total->events += t.events;
	total->bad += t.bad;
	free(b.p);
	return ok;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
	struct rng r = { .s = argc > 2 ? strtoull(argv[2], NULL, 10) : 1 };
	const char *dumpdir = argc > 3 ? argv[3] : NULL;
	unsigned long passed = 0, failed = 0, bytes = 0;
	struct tally total = { 0 };

	if (!r.s)
		r.s = 1;
	for (unsigned long i = 0; i < n; i++) {
		if (one_stream(&r, i, dumpdir, &bytes, &total))
			passed++;
		else
			failed++;
	}
	printf("# fuzz: %lu streams, %lu bytes, %lu events accepted, %lu lines rejected\n", n,
	       bytes, total.events, total.bad);
	printf("%lu passed, %lu failed\n", passed, failed);
	return failed ? 1 : 0;
}

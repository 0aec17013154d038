/* Kernel log watch: reads /dev/kmsg records from a point on, classifies them, keeps an excerpt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "mmstorm/kmsg.h"

/* The excerpt: this many lines before the first hit, the hit, and the rest after it. */
#define EXCERPT_BEFORE	10
#define EXCERPT_AFTER	(MS_KMSG_EXCERPT_LINES - EXCERPT_BEFORE - 1)

/* A record is at most ~1 KiB of text plus its dictionary; a too small buffer gets EINVAL. */
#define KMSG_RECORD_MAX	8192

/* Records per poll: under a printk flood the caller still gets control back. */
#define KMSG_POLL_MAX	65536

struct kmsg_pattern {
	const char *text;
	enum ms_kmsg_class cls;
	bool whole_word;	/* "Oops" but not "Oopsie" */
};

/*
 * First match wins, so order matters:
 * - "BUG: Bad page state/map", "BUG: Bad rss-counter" and "BUG: non-zero pgtables_bytes" are
 *   printed with BUG: but the kernel carries on (the page or counter is leaked), so they are
 *   FAIL, like a WARNING, not CRASH; they come before the plain "BUG:".
 * - CRASH before the other FAIL patterns: an oops line naming page_table_check is a crash.
 * "RIP:" and call-trace lines are no pattern: they only follow a line matched already.
 */
static const struct kmsg_pattern patterns[] = {
	{ "BUG: Bad page",		MS_KMSG_FAIL },
	{ "BUG: Bad rss-counter",	MS_KMSG_FAIL },
	{ "BUG: non-zero pgtables_bytes", MS_KMSG_FAIL },
	{ "BUG:",			MS_KMSG_CRASH },
	{ "kernel BUG at",		MS_KMSG_CRASH },
	{ "Oops",			MS_KMSG_CRASH, true },
	{ "general protection fault",	MS_KMSG_CRASH },
	{ "Kernel panic",		MS_KMSG_CRASH },
	{ "Unable to handle",		MS_KMSG_CRASH },
	{ "KASAN:",			MS_KMSG_CRASH },
	{ "WARNING:",			MS_KMSG_FAIL },
	{ "Bad page",			MS_KMSG_FAIL },
	{ "Bad rss-counter",		MS_KMSG_FAIL },
	{ "page_table_check",		MS_KMSG_FAIL },
	{ "non-zero pgtables_bytes",	MS_KMSG_FAIL },
	{ "freeing invalid memtype",	MS_KMSG_FAIL },
	{ "get_pat_info",		MS_KMSG_FAIL },
	{ "untrack_pfn",		MS_KMSG_FAIL },
	{ "list_add corruption",	MS_KMSG_FAIL },
	{ "list_del corruption",	MS_KMSG_FAIL },
	{ "refcount_t:",		MS_KMSG_FAIL },
};

/*
 * Lines that quote a pattern without the kernel being in trouble: a user process's fault
 * ("traps: a.out[42] general protection fault ip:..."), a segfault report, the boot command
 * line (page_table_check=on).
 */
static const char *const harmless_prefixes[] = {
	"traps: ",
	"Kernel command line:",
};

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* A pattern counts only where it starts a word: "DEBUG:" is not "BUG:". */
static bool find_word(const char *line, const struct kmsg_pattern *pat)
{
	size_t len = strlen(pat->text);
	const char *p = line;

	while ((p = strstr(p, pat->text))) {
		if ((p == line || !is_word_char(p[-1])) &&
		    (!pat->whole_word || !is_word_char(p[len])))
			return true;
		p++;
	}
	return false;
}

static bool is_harmless(const char *line)
{
	for (size_t i = 0; i < sizeof(harmless_prefixes) / sizeof(harmless_prefixes[0]); i++) {
		if (!strncmp(line, harmless_prefixes[i], strlen(harmless_prefixes[i])))
			return true;
	}
	return strstr(line, " segfault at ") != NULL;
}

enum ms_kmsg_class ms_kmsg_classify(const char *line, const char **pattern)
{
	if (pattern)
		*pattern = NULL;
	if (!line || is_harmless(line))
		return MS_KMSG_NONE;
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		if (!find_word(line, &patterns[i]))
			continue;
		if (pattern)
			*pattern = patterns[i].text;
		return patterns[i].cls;
	}
	return MS_KMSG_NONE;
}

static void copy_line(char *dst, const char *src)
{
	size_t n = strlen(src);

	if (n > 255)
		n = 255;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void keep_line(struct ms_kmsg_watch *w, const char *line, bool hit)
{
	bool before = !w->first[0];

	if (before && !hit && w->nlines == EXCERPT_BEFORE) {
		memmove(w->excerpt[0], w->excerpt[1], (EXCERPT_BEFORE - 1) * sizeof(w->excerpt[0]));
		w->nlines--;
	}
	if (!before) {
		if (w->after_hit >= EXCERPT_AFTER || w->nlines >= MS_KMSG_EXCERPT_LINES)
			return;
		w->after_hit++;
	}
	copy_line(w->excerpt[w->nlines], line);
	if (hit && before)
		w->hit_at = w->nlines;
	w->nlines++;
}

void ms_kmsg_feed(struct ms_kmsg_watch *w, const char *line)
{
	const char *pattern;
	enum ms_kmsg_class cls;

	w->total++;
	cls = ms_kmsg_classify(line, &pattern);
	keep_line(w, line, cls != MS_KMSG_NONE);
	if (cls == MS_KMSG_NONE)
		return;
	if (w->nhits < MS_KMSG_HITS) {
		w->hit_cls[w->nhits] = (uint8_t)cls;
		snprintf(w->hits[w->nhits], sizeof(w->hits[0]), "%s", line);
	}
	w->nhits++;
	if (w->hit)
		w->hit(w->hit_arg, line, cls);
	if (!w->first[0]) {
		copy_line(w->first, line);
		/* An empty first[] means "no hit yet"; a hit line is never empty, but be sure. */
		if (!w->first[0])
			w->first[0] = ' ';
	}
	if (cls > w->worst) {
		w->worst = cls;
		w->pattern = pattern;
	}
}

int ms_kmsg_start(struct ms_kmsg_watch *w)
{
	int ret;

	memset(w, 0, sizeof(*w));
	w->hit_at = -1;
	w->fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	if (lseek(w->fd, 0, SEEK_END) < 0) {
		ret = -errno;
		close(w->fd);
		w->fd = -1;
		return ret;
	}
	return 0;
}

/*
 * "prio,seq,ts,flags;message\n" then " KEY=value\n" dictionary lines, which are not text.
 * prio is facility << 3 | level: the kernel logs with facility 0, while anything user space
 * writes to /dev/kmsg carries another facility (the kernel forces LOG_USER on it). Such
 * lines are context for the excerpt, never a finding: a daemon logging "WARNING:" must not
 * fail a case.
 */
static void feed_record(struct ms_kmsg_watch *w, char *rec)
{
	unsigned long prio = strtoul(rec, NULL, 10);
	char *msg = strchr(rec, ';');
	char *nl;

	if (!msg)
		return;
	msg++;
	nl = strchr(msg, '\n');
	if (nl)
		*nl = '\0';
	if (prio >> 3) {
		w->total++;
		keep_line(w, msg, false);
		return;
	}
	ms_kmsg_feed(w, msg);
}

void ms_kmsg_poll(struct ms_kmsg_watch *w)
{
	char rec[KMSG_RECORD_MAX];
	ssize_t n;

	if (w->fd < 0)
		return;
	for (unsigned i = 0; i < KMSG_POLL_MAX; i++) {
		n = read(w->fd, rec, sizeof(rec) - 1);
		if (n < 0 && (errno == EINTR || errno == EPIPE))
			continue;	/* EPIPE: the ring overwrote records we had not read */
		if (n <= 0)
			break;		/* EAGAIN: nothing more for now */
		rec[n] = '\0';
		feed_record(w, rec);
	}
}

void ms_kmsg_stop(struct ms_kmsg_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

void ms_kmsg_discount(struct ms_kmsg_watch *w, const char *substr, uint64_t n)
{
	uint64_t match = 0;

	if (!n || w->nhits > MS_KMSG_HITS)
		return;
	for (unsigned i = 0; i < w->nhits; i++)
		match += strstr(w->hits[i], substr) != NULL;
	if (match > n)
		return;
	w->worst = MS_KMSG_NONE;
	w->pattern = NULL;
	w->first[0] = '\0';
	for (unsigned i = 0; i < w->nhits; i++) {
		if (strstr(w->hits[i], substr))
			continue;
		if (!w->first[0])
			copy_line(w->first, w->hits[i]);
		if (w->hit_cls[i] > w->worst) {
			w->worst = w->hit_cls[i];
			ms_kmsg_classify(w->hits[i], &w->pattern);
		}
	}
}

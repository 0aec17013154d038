/* Kernel log watch: reads /dev/kmsg from a point on and classifies what the kernel said. */
#ifndef MMSTORM_KMSG_H
#define MMSTORM_KMSG_H

#include <stddef.h>
#include <stdint.h>

enum ms_kmsg_class {
	MS_KMSG_NONE = 0,
	MS_KMSG_FAIL,	/* WARNING:, Bad page, page_table_check, non-zero pgtables_bytes, ... */
	MS_KMSG_CRASH,	/* BUG:, Oops, general protection, Kernel panic, kernel BUG at */
};

/* Classify one kernel log line (message text, without the kmsg prefix). */
enum ms_kmsg_class ms_kmsg_classify(const char *line, const char **pattern);

#define MS_KMSG_EXCERPT_LINES 40
#define MS_KMSG_HITS 64

struct ms_kmsg_watch {
	int fd;				/* -1 when /dev/kmsg is not readable */
	enum ms_kmsg_class worst;
	const char *pattern;		/* pattern of the first line of the worst class */
	char first[256];		/* first classified line */
	unsigned nlines;		/* lines kept in excerpt (ring of the last lines, around hit) */
	char excerpt[MS_KMSG_EXCERPT_LINES][256];
	unsigned total;			/* all lines seen since start */
	unsigned after_hit;		/* lines kept after the first hit */
	int hit_at;			/* index in excerpt of first hit or -1 */
	/* Every classified line, in order, for ms_kmsg_discount() (nhits may exceed the array). */
	unsigned nhits;
	uint8_t hit_cls[MS_KMSG_HITS];
	char hits[MS_KMSG_HITS][200];
	/* When set (after ms_kmsg_start()), called with every classified line. */
	void (*hit)(void *arg, const char *line, enum ms_kmsg_class cls);
	void *hit_arg;
};

/* Start watching from now (seek to end). Returns 0 or -errno (watch disabled, fd = -1). */
int ms_kmsg_start(struct ms_kmsg_watch *w);
/* Read everything logged since start (non-blocking) and classify. */
void ms_kmsg_poll(struct ms_kmsg_watch *w);
/* Classify one message line into the watch (what poll does per record; usable with fd = -1). */
void ms_kmsg_feed(struct ms_kmsg_watch *w, const char *line);
/*
 * The case's own model predicted n lines containing substr: judge the watch without them
 * (worst, first, pattern from the other classified lines). Only when the kernel said no more
 * such lines than predicted and every classified line was kept; else the watch is unchanged.
 */
void ms_kmsg_discount(struct ms_kmsg_watch *w, const char *substr, uint64_t n);
void ms_kmsg_stop(struct ms_kmsg_watch *w);

#endif

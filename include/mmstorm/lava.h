/* LAVA: job export, the agent's console protocol (mmstorm.console=lava), and log collection. */
#ifndef MMSTORM_LAVA_H
#define MMSTORM_LAVA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* `mmstorm lava export|collect ...`: argv[0] is "lava"; returns the exit status. */
int ms_cmd_lava(int argc, char **argv);

/*
 * Console protocol (docs/lava.md). Every line starts with one of these words, so a LAVA
 * monitor and `collect` find them among kernel messages and KTAP.
 */
#define MS_LAVA_START "MMSTORM-LAVA-START"
#define MS_LAVA_END "MMSTORM-LAVA-END"
#define MS_LAVA_RESULT "MMSTORM-LAVA-RESULT"
#define MS_LAVA_EV "MMSTORM-LAVA-EV"
/* The monitor pattern: one regular expression for case results and measurements. */
#define MS_LAVA_PATTERN								\
	MS_LAVA_RESULT " case=(?P<test_case_id>[^ ]+) result=(?P<result>pass|fail|skip|unknown)" \
	" measurement=(?P<measurement>[-+0-9.eE]+) units=(?P<units>[A-Za-z0-9_/%-]+)"
/* Base64 characters per event chunk line: far below any console or LAVA line limit. */
#define MS_LAVA_CHUNK 512

/* "0-3,7,9-12": is index in the set? A malformed set holds nothing. */
bool ms_case_set_has(const char *set, unsigned index);

/* Agent side: each writes whole lines to fd with one write(2) per line. 0 or -errno. */
int ms_lava_put_event(int fd, unsigned long seq, const json_t *ev);
/* MS_LAVA_RESULT lines of a case_end: the case (duration in s) and its key metrics. */
int ms_lava_put_result(int fd, const json_t *case_end);

/* Collect side: reassembles MS_LAVA_EV chunks into JSON text lines. */
struct ms_lava_dec {
	unsigned long seq;	/* event being assembled */
	unsigned part, nparts;
	size_t rawlen;
	uint32_t crc;
	char *b64;
	size_t len, cap;
	unsigned long nevents, nbad;
};

/*
 * One console line (without its newline). Returns 1 and a malloc'd JSON text in *json once
 * an event is complete, 0 if the line is no chunk or the event is incomplete, or -EINVAL with
 * why (a lost, reordered or corrupted chunk: the event is dropped).
 */
int ms_lava_dec_line(struct ms_lava_dec *d, const char *line, char **json, char *why,
		     size_t whylen);
void ms_lava_dec_free(struct ms_lava_dec *d);

/*
 * One line of a LAVA log: lava-run's output or the YAML list a LAVA server returns (flow
 * mappings {dt: .., lvl: .., msg: ..}, quoted or not). 1 with the level, and malloc'd msg and
 * dt (NULL if absent), when it is an entry whose msg is a string; else 0.
 */
int ms_lava_log_line(const char *line, char *lvl, size_t lvllen, char **msg, char **dt);

#endif

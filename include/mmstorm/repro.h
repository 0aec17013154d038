/* Known-bug triggers (src/repro/): standalone programs linked into mmstorm and kept as text. */
#ifndef MMSTORM_REPRO_H
#define MMSTORM_REPRO_H

#include <stdio.h>

/*
 * Each src/repro/<name>.c is a plain-libc program: compiled into mmstorm with main renamed
 * ms_repro_main_<name>, and embedded verbatim so that `repro --emit-c` prints exactly what runs.
 * Its exit status: 1 reproduced, 0 not, 4 skipped; its last line says why (src/repro/repro_lib.h).
 */
struct ms_repro_trigger {
	const char *name;
	int (*main)(void);
	const char *src;	/* the file's text */
};

enum { MS_REPRO_NOT = 0, MS_REPRO_FOUND = 1, MS_REPRO_SKIP = 4 };

extern const struct ms_repro_trigger ms_repro_triggers[];	/* terminated by .name NULL */
extern const char ms_repro_src_lib[];			/* src/repro/repro_lib.h */

/* The bug.* keys every catalog entry must have (NULL-terminated). */
extern const char *const ms_repro_required_meta[];

const struct ms_repro_trigger *ms_repro_trigger_find(const char *name);
/*
 * Write the trigger as one standalone C file: the header comment (may be NULL), then its text
 * with repro_lib.h pasted in place of its #include. 0 or -errno.
 */
int ms_repro_emit_c(const struct ms_repro_trigger *t, const char *header, FILE *out);

#endif

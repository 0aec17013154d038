/* The knob journal: every sysfs/procfs/debugfs/cgroup change is recorded before it is made. */
#ifndef MMSTORM_JOURNAL_H
#define MMSTORM_JOURNAL_H

#include <stddef.h>
#include <stdio.h>

/*
 * The journal is one append-only file (default /run/mmstorm/journal, or $MMSTORM_STATE_DIR/
 * journal). Before a knob is written, a record with its path and old value is appended and
 * fsync'd, so a crash of mmstorm at any point leaves enough to restore it. Records of one
 * process hierarchy (runner + case + workers) go to the same file through O_APPEND, so forked
 * workers may journal too. Restore walks records newest first and writes the old values back.
 *
 * For files whose read value lists choices with the active one in brackets
 * ("always [madvise] never"), the bracketed word is what is saved and restored.
 */
struct ms_journal;

/* Open (create) the journal in dir and lock it against a concurrent mmstorm (-EBUSY). */
int ms_journal_open(struct ms_journal **jp, const char *dir);
void ms_journal_close(struct ms_journal *j);
const char *ms_journal_path(const struct ms_journal *j);

/* Number of records now in the journal (from the file: what a replay would restore). */
long ms_journal_pending(struct ms_journal *j);

/* Journal the old value of path, then write value. 0 or -errno (the knob is unchanged then). */
int ms_journal_write(struct ms_journal *j, const char *path, const char *value);
/* Journal a directory created by mmstorm (e.g. a cgroup): restore removes it (rmdir). */
int ms_journal_mkdir(struct ms_journal *j, const char *path, unsigned mode);

/* Position marker: restore_to() undoes all records after it (case end). */
long ms_journal_mark(struct ms_journal *j);
/*
 * Restore every record after mark, newest first, then truncate the file to mark. Failures
 * are reported on log (if non-NULL) as "# journal: ..." and counted; returns the number of
 * records that could not be restored (0 = all restored) or -errno if the file is unreadable.
 */
int ms_journal_restore_to(struct ms_journal *j, long mark, FILE *log);

/* Read the bracketed/plain current value of a knob into buf (trailing newline stripped). */
int ms_knob_read(const char *path, char *buf, size_t len);

#endif

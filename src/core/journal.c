/* The knob journal: each old value saved (fsync'd) before a knob changes; restore newest first. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmstorm/journal.h"

/*
 * One record a line, fields separated by tabs, tab/newline/backslash escaped:
 *   W <path> <old value>	a knob write; restore writes the old value back
 *   D <path>			a directory mmstorm created; restore removes it
 * A line without its newline is a record torn by a crash in the middle of the append: the knob
 * was not touched yet (the append is fsync'd first), so it is ignored.
 */
#define REC_WRITE	'W'
#define REC_MKDIR	'D'

/* Largest knob value saved; sysfs attributes are at most a page. */
#define KNOB_VALUE_MAX	4096

#define DEFAULT_STATE_DIR "/run/mmstorm"

struct ms_journal {
	int fd;
	int lock_fd;
	char path[PATH_MAX];
};

struct rec {
	char kind;
	const char *path;
	const char *value;
	long off;
};

static char *escape(char *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '\t':
			*out++ = '\\';
			*out++ = 't';
			break;
		case '\n':
			*out++ = '\\';
			*out++ = 'n';
			break;
		case '\\':
			*out++ = '\\';
			*out++ = '\\';
			break;
		default:
			*out++ = *s;
		}
	}
	*out = '\0';
	return out;
}

/* In place; -EINVAL on an escape we never write (a corrupt journal). */
static int unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (*s != '\\') {
			*out++ = *s;
			continue;
		}
		s++;
		if (*s == 't')
			*out++ = '\t';
		else if (*s == 'n')
			*out++ = '\n';
		else if (*s == '\\')
			*out++ = '\\';
		else
			return -EINVAL;
	}
	*out = '\0';
	return 0;
}

/* "always [madvise] never" -> "madvise"; anything else is left alone. */
static void pick_bracketed(char *s)
{
	char *open, *close;
	size_t n;

	if (strchr(s, '\n'))
		return;
	open = strchr(s, '[');
	if (!open || (open != s && open[-1] != ' '))
		return;
	close = strchr(open, ']');
	if (!close || close == open + 1 || (close[1] && close[1] != ' '))
		return;
	if (memchr(open, ' ', close - open) || strchr(close, '['))
		return;
	n = close - open - 1;
	memmove(s, open + 1, n);
	s[n] = '\0';
}

int ms_knob_read(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	char extra;
	int fd, ret = 0;

	if (!len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out_close;
		}
		if (n == 0)
			break;
		got += n;
	}
	if (got == len - 1) {
		n = read(fd, &extra, 1);
		if (n < 0) {
			ret = -errno;
			goto out_close;
		}
		if (n > 0) {
			ret = -EOVERFLOW;
			goto out_close;
		}
	}
	/* A value we could not write back byte for byte is no value to save. */
	if (memchr(buf, '\0', got)) {
		ret = -EINVAL;
		goto out_close;
	}
	buf[got] = '\0';
	if (got && buf[got - 1] == '\n')
		buf[got - 1] = '\0';
	pick_bracketed(buf);
out_close:
	close(fd);
	return ret;
}

/*
 * O_TRUNC as a shell's `echo v > knob` does: it is what makes regular files behave like knobs,
 * and sysfs/procfs/cgroup/debugfs accept it. A sysfs store reports its error as the result of
 * write(), so that result is the answer.
 */
static int knob_write(const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (len) {
		n = write(fd, value, len);
		if (n < 0)
			ret = -errno;
		else if ((size_t)n != len)
			ret = -EIO;
	}
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int ms_journal_open(struct ms_journal **jp, const char *dir)
{
	char lock_path[PATH_MAX];
	struct ms_journal *j;
	int ret;

	if (!dir)
		dir = getenv("MMSTORM_STATE_DIR");
	if (!dir || !*dir)
		dir = DEFAULT_STATE_DIR;
	ret = mkdir_p(dir, 0700);
	if (ret)
		return ret;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fd = -1;
	if (snprintf(j->path, sizeof(j->path), "%s/journal", dir) >= (int)sizeof(j->path) ||
	    snprintf(lock_path, sizeof(lock_path), "%s/journal.lock", dir) >=
	    (int)sizeof(lock_path)) {
		ret = -ENAMETOOLONG;
		goto out_free;
	}
	/*
	 * The lock lives on its own file so that truncating or replacing the journal never drops
	 * it. flock() belongs to the open file description: forked workers share it, and their
	 * close() does not release it while the runner still holds its descriptor.
	 */
	j->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0) {
		ret = -errno;
		goto out_free;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto out_lock;
	}
	j->fd = open(j->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		ret = -errno;
		goto out_lock;
	}
	*jp = j;
	return 0;
out_lock:
	close(j->lock_fd);
out_free:
	free(j);
	return ret;
}

void ms_journal_close(struct ms_journal *j)
{
	if (!j)
		return;
	close(j->fd);
	close(j->lock_fd);
	free(j);
}

const char *ms_journal_path(const struct ms_journal *j)
{
	return j->path;
}

/* One write() with O_APPEND, so records of concurrent workers never interleave. */
static int append_record(struct ms_journal *j, char kind, const char *path, const char *value)
{
	size_t len = 4 + 2 * strlen(path) + (value ? 2 * strlen(value) : 0);
	char *rec, *p;
	ssize_t n;
	int ret = 0;

	rec = malloc(len);
	if (!rec)
		return -ENOMEM;
	p = rec;
	*p++ = kind;
	*p++ = '\t';
	p = escape(p, path);
	if (value) {
		*p++ = '\t';
		p = escape(p, value);
	}
	*p++ = '\n';
	n = write(j->fd, rec, p - rec);
	if (n < 0)
		ret = -errno;
	else if (n != p - rec)
		ret = -EIO;	/* short only when the disk is full; the torn tail is ignored */
	else if (fsync(j->fd))
		ret = -errno;
	free(rec);
	return ret;
}

/* Relative paths would mean something else to the run that replays the journal. */
static int check_path(const char *path)
{
	return path && path[0] == '/' ? 0 : -EINVAL;
}

int ms_journal_write(struct ms_journal *j, const char *path, const char *value)
{
	char old[KNOB_VALUE_MAX];
	int ret;

	ret = check_path(path);
	if (ret)
		return ret;
	ret = ms_knob_read(path, old, sizeof(old));
	if (ret)
		return ret;
	ret = append_record(j, REC_WRITE, path, old);
	if (ret)
		return ret;
	return knob_write(path, value);
}

int ms_journal_mkdir(struct ms_journal *j, const char *path, unsigned mode)
{
	struct stat st;
	int ret;

	ret = check_path(path);
	if (ret)
		return ret;
	/* Never journal a directory we did not create: restore would remove someone else's. */
	if (!lstat(path, &st))
		return -EEXIST;
	ret = append_record(j, REC_MKDIR, path, NULL);
	if (ret)
		return ret;
	/* A failed mkdir leaves a record whose rmdir finds nothing: that counts as restored. */
	if (mkdir(path, mode))
		return -errno;
	return 0;
}

long ms_journal_mark(struct ms_journal *j)
{
	struct stat st;

	if (fstat(j->fd, &st))
		return -errno;
	return st.st_size;
}

/* The journal from off to its end, NUL-terminated, in a new buffer. */
static char *read_from(struct ms_journal *j, long off, size_t *lenp, int *err)
{
	struct stat st;
	size_t len, got = 0;
	ssize_t n;
	char *buf;

	if (fstat(j->fd, &st)) {
		*err = -errno;
		return NULL;
	}
	if (off < 0 || off > st.st_size) {
		*err = -EINVAL;
		return NULL;
	}
	len = st.st_size - off;
	buf = malloc(len + 1);
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	while (got < len) {
		n = pread(j->fd, buf + got, len - got, off + got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = -errno;
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	*lenp = got;
	return buf;
}

/* Split a line (modified in place) into a record; -EINVAL when it is not one. */
static int parse_record(char *line, struct rec *r)
{
	char *path, *value = NULL, *tab;

	if ((line[0] != REC_WRITE && line[0] != REC_MKDIR) || line[1] != '\t')
		return -EINVAL;
	r->kind = line[0];
	path = line + 2;
	tab = strchr(path, '\t');
	if (tab) {
		*tab = '\0';
		value = tab + 1;
	}
	if ((r->kind == REC_WRITE) != (value != NULL) || (value && strchr(value, '\t')))
		return -EINVAL;
	if (unescape(path) || (value && unescape(value)) || check_path(path))
		return -EINVAL;
	r->path = path;
	r->value = value;
	return 0;
}

/*
 * Parse buf (from file offset base) into records; complete lines only. Bad lines get
 * kind 0 so restore can report them. Returns the number of records or -ENOMEM.
 */
static long parse_all(char *buf, size_t len, long base, struct rec **recsp)
{
	struct rec *recs;
	long n = 0, cap = 0;
	char *line = buf, *nl;

	for (size_t i = 0; i < len; i++)
		cap += buf[i] == '\n';
	recs = calloc(cap ? cap : 1, sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	while ((nl = memchr(line, '\n', len - (line - buf)))) {
		*nl = '\0';
		recs[n].off = base + (line - buf);
		if (parse_record(line, &recs[n]))
			recs[n].kind = 0;
		n++;
		line = nl + 1;
	}
	*recsp = recs;
	return n;
}

long ms_journal_pending(struct ms_journal *j)
{
	struct rec *recs;
	size_t len;
	long n;
	char *buf;
	int err;

	buf = read_from(j, 0, &len, &err);
	if (!buf)
		return err;
	n = parse_all(buf, len, 0, &recs);
	if (n >= 0)
		free(recs);
	free(buf);
	return n;
}

/* Escaped copy for a one-line log message; the caller frees it. */
static char *esc_dup(const char *s)
{
	char *e = malloc(2 * strlen(s) + 1);

	if (e)
		escape(e, s);
	return e;
}

static int restore_write(const struct rec *r, FILE *log)
{
	char cur[KNOB_VALUE_MAX];
	char *ep = esc_dup(r->path), *ev = esc_dup(r->value), *ec = NULL;
	int ret = 0;

	if (!ep || !ev) {
		ret = -ENOMEM;
		goto out_free;
	}
	/* An unchanged value is not written: even that makes nr_hugepages go to work. */
	if (!ms_knob_read(r->path, cur, sizeof(cur)) && !strcmp(cur, r->value))
		goto out_ok;
	ret = knob_write(r->path, r->value);
	if (ret) {
		if (log)
			fprintf(log, "# journal: cannot restore %s to '%s': %s\n", ep, ev,
				strerror(-ret));
		goto out_free;
	}
	/*
	 * nr_hugepages and the like take what they can get (pages in use stay): the write succeeds
	 * short of the old value. Say so; looping would not free the pages.
	 */
	if (!ms_knob_read(r->path, cur, sizeof(cur)) && strcmp(cur, r->value)) {
		ec = esc_dup(cur);
		if (log)
			fprintf(log, "# journal: %s is '%s' after restoring '%s'\n", ep,
				ec ? ec : "?", ev);
		ret = -EAGAIN;
		goto out_free;
	}
out_ok:
	if (log)
		fprintf(log, "# journal: restored %s to '%s'\n", ep, ev);
out_free:
	if (ret == -ENOMEM && log)
		fprintf(log, "# journal: out of memory restoring a record\n");
	free(ep);
	free(ev);
	free(ec);
	return ret;
}

static int restore_mkdir(const struct rec *r, FILE *log)
{
	char *ep = esc_dup(r->path);
	int ret = 0;

	if (rmdir(r->path) && errno != ENOENT)
		ret = -errno;
	if (log && ret)
		fprintf(log, "# journal: cannot remove directory %s: %s\n", ep ? ep : "?",
			strerror(-ret));
	else if (log)
		fprintf(log, "# journal: removed directory %s\n", ep ? ep : "?");
	free(ep);
	return ret;
}

int ms_journal_restore_to(struct ms_journal *j, long mark, FILE *log)
{
	struct rec *recs;
	size_t len;
	long n, i;
	char *buf;
	int err, failed = 0;

	buf = read_from(j, mark, &len, &err);
	if (!buf)
		return err;
	n = parse_all(buf, len, mark, &recs);
	if (n < 0) {
		free(buf);
		return n;
	}
	for (i = n - 1; i >= 0; i--) {
		if (recs[i].kind == REC_WRITE) {
			err = restore_write(&recs[i], log);
		} else if (recs[i].kind == REC_MKDIR) {
			err = restore_mkdir(&recs[i], log);
		} else {
			err = -EINVAL;
			if (log)
				fprintf(log, "# journal: %s: bad record at offset %ld\n", j->path,
					recs[i].off);
		}
		failed += !!err;
	}
	free(recs);
	free(buf);
	if (ftruncate(j->fd, mark) || fsync(j->fd))
		return -errno;
	return failed;
}

/* Helpers shared by the known-bug triggers: verdict lines, kernel log watch, PAT memtype list. */
/*
 * Plain libc only: `mmstorm repro --emit-c` pastes this file in place of its #include, so
 * that a trigger sent with a bug report builds on its own (cc -o repro repro.c).
 *
 * A trigger prints one verdict line as its last line and returns:
 *   1  "REPRODUCED: <evidence>"
 *   0  "NOT REPRODUCED: <what was checked>"
 *   4  "SKIP: <what is missing>"
 *   anything else: the trigger itself could not run (e.g. 3, "ERROR: <why>").
 * Triggers never call exit(): mmstorm runs them in a forked process and ends it itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPRO_NOT	0
#define REPRO_FOUND	1
#define REPRO_ERROR	3
#define REPRO_SKIP	4

static inline int repro_say(int ret, const char *tag, const char *fmt, va_list ap)
{
	printf("%s: ", tag);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	return ret;
}

#define REPRO_VERDICT(name, ret, tag) \
	static inline __attribute__((format(printf, 1, 2))) int name(const char *fmt, ...) \
	{ \
		va_list ap; \
		int r; \
		va_start(ap, fmt); \
		r = repro_say(ret, tag, fmt, ap); \
		va_end(ap); \
		return r; \
	}

REPRO_VERDICT(repro_found, REPRO_FOUND, "REPRODUCED")
REPRO_VERDICT(repro_not, REPRO_NOT, "NOT REPRODUCED")
REPRO_VERDICT(repro_skip, REPRO_SKIP, "SKIP")
REPRO_VERDICT(repro_error, REPRO_ERROR, "ERROR")

/* Kernel log from now on: -1 when /dev/kmsg is not readable (then only other evidence counts). */
static inline int repro_kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * Read what the kernel logged since repro_kmsg_open(); copy the first message containing one
 * of pats (NULL-terminated) into out. Returns 1 when found, 0 when not, -1 without a log.
 */
static inline int repro_kmsg_find(int fd, const char *const *pats, char *out, size_t len)
{
	char rec[8192];
	int found = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	for (;;) {
		const char *msg;

		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* records were overwritten: go on with the next */
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		rec[strcspn(rec, "\n")] = '\0';
		for (int i = 0; pats[i] && !found && len > 9; i++) {
			size_t n = strlen(msg);

			if (!strstr(msg, pats[i]))
				continue;
			n = n < len - 9 ? n : len - 9;	/* a long message is cut to fit */
			memcpy(out, "kernel: ", 8);
			memcpy(out + 8, msg, n);
			out[8 + n] = '\0';
			found = 1;
		}
	}
	return found;
}

#define REPRO_MEMTYPE_LIST "/sys/kernel/debug/x86/pat_memtype_list"

/* Entries of the x86 PAT memtype list, or -1 when it cannot be read (no debugfs, no PAT). */
static inline long repro_memtype_count(void)
{
	FILE *f = fopen(REPRO_MEMTYPE_LIST, "re");
	char line[256];
	long n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, "PAT:", 4);
	fclose(f);
	return n;
}

/* A value from /proc/meminfo in kB, or -1. */
static inline long repro_meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	size_t kl = strlen(key);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Where a trigger may create files: $TMPDIR, else /tmp. */
static inline const char *repro_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

/* Durable file output for the report code: atomic replace, UTC timestamps, lenient lookups. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/result.h"
#include "mmstorm/util.h"
#include "report/report_int.h"

/* The rename is only durable once the directory entry is: fsync the directory too. */
static int fsync_parent(const char *path)
{
	char *dir = strdup(path);
	char *slash;
	int fd, ret = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	if (fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
out_free:
	free(dir);
	return ret;
}

int ms_report_write_atomic(const char *path, const char *buf, size_t len)
{
	char *tmp;
	int fd, ret;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	/* mkostemp makes 0600; results are meant to be read by CI users and web servers. */
	if (fchmod(fd, 0644)) {
		ret = -errno;
		goto out_close;
	}
	ret = ms_write_all(fd, buf, len);
	if (ret)
		goto out_close;
	if (fsync(fd)) {
		ret = -errno;
		goto out_close;
	}
	if (close(fd)) {
		ret = -errno;
		goto out_unlink;
	}
	if (rename(tmp, path)) {
		ret = -errno;
		goto out_unlink;
	}
	ret = fsync_parent(path);
	goto out_free;

out_close:
	close(fd);
out_unlink:
	unlink(tmp);
out_free:
	free(tmp);
	return ret;
}

int ms_json_write_atomic(const json_t *v, const char *path)
{
	size_t len;
	char *s;
	int ret;

	if (!v || !path)
		return -EINVAL;
	s = json_dumps(v, JSON_INDENT(2));
	if (!s)
		return -ENOMEM;
	/* A text file ends in a newline: it takes the place of the NUL, which is not written. */
	len = strlen(s);
	s[len++] = '\n';
	ret = ms_report_write_atomic(path, s, len);
	free(s);
	return ret;
}

int ms_report_utc_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	if (clock_gettime(CLOCK_REALTIME, &ts))
		return -errno;
	if (!gmtime_r(&ts.tv_sec, &tm))
		return -EOVERFLOW;
	if (!strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return -ENOSPC;
	return 0;
}

const char *ms_report_str(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : dflt;
}

json_int_t ms_report_int(const json_t *obj, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

json_t *ms_report_worst_repeat(const json_t *c)
{
	json_t *r, *worst = NULL;
	int v, wv = -1;
	size_t i;

	json_array_foreach(json_object_get(c, "repeats"), i, r) {
		v = ms_verdict_parse(ms_report_str(r, "verdict", NULL));
		if (v > wv) {
			wv = v;
			worst = r;
		}
	}
	return worst;
}

json_int_t ms_report_case_duration_ns(const json_t *c)
{
	json_int_t sum = 0;
	json_int_t d;
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(c, "repeats"), i, r) {
		d = ms_report_int(r, "duration_ns", 0);
		if (d > 0)
			sum = d > INT64_MAX - sum ? INT64_MAX : sum + d;
	}
	return sum;
}

const char *ms_report_sweep(const json_t *c)
{
	const json_t *inj = json_object_get(ms_report_worst_repeat(c), "inject");

	return ms_report_str(json_object_get(inj, "detail"), "fail-nth", "");
}

size_t ms_report_sweep_item(const char *t, unsigned *a, unsigned *b, char *word, size_t len)
{
	int k = 0, m = 0;
	size_t w;

	if (sscanf(t, "%u%n", a, &k) != 1)
		return 0;
	*b = *a;
	if (t[k] == '-' && sscanf(t + k + 1, "%u%n", b, &m) == 1)
		k += m + 1;
	if (t[k] != ' ' || *b < *a)
		return 0;
	k++;
	w = strcspn(t + k, ",");
	if (!w || w >= len)
		return 0;
	memcpy(word, t + k, w);
	word[w] = '\0';
	k += (int)w;
	while (t[k] == ',' || t[k] == ' ')
		k++;
	return (size_t)k;
}

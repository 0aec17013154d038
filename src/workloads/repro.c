/* repro: runs one known-bug trigger (src/repro/) per iteration; its verdict becomes checks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmstorm/repro.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"

#define RP_OUT_MAX 8192
#define RP_HUGE_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB"

static const struct ms_param repro_params[] = {
	{ "trigger", MS_P_STRING, NULL, "", 1, 0, NULL,
	  "the trigger program (src/repro/<trigger>.c; `mmstorm repro --list` names them)" },
	{ "hugepages", MS_P_INT, "0", "pages", 0, 4096, NULL,
	  "free 2 MiB huge pages the trigger needs: the pool is raised (journaled) to have them" },
	{ "knobs", MS_P_STRING, "none", "", 1, 0, NULL,
	  "PATH=VALUE[,PATH=VALUE...] written (journaled, restored) before the trigger runs, "
	  "e.g. fault-injection settings; a missing file is a SKIP" },
	{ NULL }
};

struct rp_state {
	const struct ms_repro_trigger *t;
	int m_attempts, m_found;
	bool found;
};

static int repro_probe(struct ms_ctx *ctx)
{
	if (!ms_repro_trigger_find(ms_param_s(ctx, "trigger")))
		return ms_error(ctx, ENOENT, "no trigger named '%s' in this build",
				ms_param_s(ctx, "trigger"));
	return 0;
}

static int raise_pool(struct ms_ctx *ctx, long want)
{
	uint64_t nr, nfree;
	char buf[32];
	int ret;

	if (ms_read_u64(RP_HUGE_DIR "/nr_hugepages", &nr) ||
	    ms_read_u64(RP_HUGE_DIR "/free_hugepages", &nfree))
		return ms_skip(ctx, "%s: no 2 MiB huge page pool (CONFIG_HUGETLBFS)", RP_HUGE_DIR);
	if (nfree >= (uint64_t)want)
		return 0;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)(nr + (uint64_t)want - nfree));
	ret = ms_knob_write(ctx, RP_HUGE_DIR "/nr_hugepages", buf);
	if (ret)
		return ms_error(ctx, -ret, "raising nr_hugepages to %s: %s", buf, strerror(-ret));
	if (ms_read_u64(RP_HUGE_DIR "/free_hugepages", &nfree) || nfree < (uint64_t)want)
		return ms_skip(ctx, "only %llu free 2 MiB huge pages after asking for %ld more "
			       "(memory fragmented or too small)", (unsigned long long)nfree, want);
	return 0;
}

/* knobs=PATH=VALUE,...: each one journaled. */
static int set_knobs(struct ms_ctx *ctx, const char *spec)
{
	char buf[MS_PARAM_STR_MAX], *save = NULL, *kv;
	int ret;

	if (!strcmp(spec, "none"))
		return 0;
	ms_strlcpy(buf, spec, sizeof(buf));
	for (kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq)
			return ms_error(ctx, EINVAL, "knobs: '%s' is not PATH=VALUE", kv);
		*eq = '\0';
		if (access(kv, W_OK))
			return ms_skip(ctx, "%s: %s (the trigger needs this knob)", kv,
				       strerror(errno));
		ret = ms_knob_write(ctx, kv, eq + 1);
		if (ret)
			return ms_error(ctx, -ret, "writing %s to %s: %s", eq + 1, kv,
					strerror(-ret));
	}
	return 0;
}

static int repro_setup(struct ms_ctx *ctx)
{
	struct rp_state *st = calloc(1, sizeof(*st));
	const struct ms_metric_spec m[] = {
		{ &st->m_attempts, "attempts", MS_M_COUNTER, "count" },
		{ &st->m_found, "reproduced", MS_M_COUNTER, "count" },
	};
	long want = (long)ms_param_i(ctx, "hugepages");
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	ms_set_priv(ctx, st);
	st->t = ms_repro_trigger_find(ms_param_s(ctx, "trigger"));
	if ((ret = ms_metrics(ctx, m, 2)))
		return ret;
	if (want && (ret = raise_pool(ctx, want)))
		return ret;
	return set_knobs(ctx, ms_param_s(ctx, "knobs"));
}

/* The trigger's process: its output into the pipe, its files in the case's directory. */
static int trigger_child(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	const struct ms_repro_trigger *t = ((struct rp_state *)ms_priv(ctx))->t;
	int *fds = arg, ret;

	(void)idx;
	close(fds[0]);
	if (dup2(fds[1], STDOUT_FILENO) < 0 || dup2(fds[1], STDERR_FILENO) < 0)
		return 3;
	close(fds[1]);
	setenv("TMPDIR", ms_tmpdir(ctx), 1);
	if (chdir(ms_tmpdir(ctx)))
		return 3;
	ret = t->main();
	fflush(NULL);
	return ret;
}

/* Last line of the trigger's output that starts with tag, after the tag; or the last line. */
static const char *verdict_line(char *out, const char *tag)
{
	const char *found = NULL, *last = out;

	for (char *line = out, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line)
			last = line;
		if (!strncmp(line, tag, strlen(tag)))
			found = line + strlen(tag);
		if (!nl)
			break;
	}
	return found ? found : last;
}

static int run_trigger(struct ms_ctx *ctx, char *out, size_t len)
{
	size_t n = 0;
	int fds[2], ret;
	ssize_t r;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = ms_spawn(ctx, trigger_child, fds, 0);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return pid;
	}
	while ((r = read(fds[0], out + n, len - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
		if (n == len - 1)	/* a flood: keep the start, drain the rest */
			n = len / 2;
	}
	out[n] = '\0';
	close(fds[0]);
	ret = ms_wait(ctx, pid);
	return ret == -EINTR ? -ECHILD : ret;
}

static int repro_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct rp_state *st = ms_priv(ctx);
	char out[RP_OUT_MAX];
	int ret;

	if (st->found)	/* the evidence is in; further attempts add nothing */
		return 0;
	ret = run_trigger(ctx, out, sizeof(out));
	if (ret == -ECHILD)
		return ms_error(ctx, EIO, "trigger %s was killed by a signal; output: %s",
				st->t->name, verdict_line(out, ""));
	if (ret < 0)
		return ms_error(ctx, -ret, "running trigger %s: %s", st->t->name, strerror(-ret));
	if (ret == MS_REPRO_NOT || ret == MS_REPRO_FOUND)
		ms_count(ctx, st->m_attempts, 1);
	switch (ret) {
	case MS_REPRO_NOT:
		if (!iter)	/* what was checked, once: passed checks keep no detail */
			ms_note(ctx, "%s", verdict_line(out, "NOT REPRODUCED: "));
		ms_check(ctx, true, "bug not reproduced", "%s", out);
		return 0;
	case MS_REPRO_FOUND:
		st->found = true;
		ms_count(ctx, st->m_found, 1);
		ms_check(ctx, false, "bug reproduced", "%s", verdict_line(out, "REPRODUCED: "));
		return 0;
	case MS_REPRO_SKIP:
		ms_skip(ctx, "%s", verdict_line(out, "SKIP: "));
		return MS_SKIP;
	default:
		return ms_error(ctx, EIO, "trigger %s exited with status %d: %s", st->t->name, ret,
				verdict_line(out, "ERROR: "));
	}
}

static void repro_teardown(struct ms_ctx *ctx)
{
	free(ms_priv(ctx));
}

const struct ms_workload ms_wl_repro = {
	.name = "repro",
	.summary = "runs a known-bug trigger (configs/bugs.ini, `mmstorm repro`): a failed check "
		   "is the bug reproduced, with the trigger's evidence",
	.params = repro_params,
	.probe = repro_probe,
	.setup = repro_setup,
	.run = repro_run,
	.teardown = repro_teardown,
};

/* `mmstorm fuzz`: the fuzz workload on the host or in a guest, its findings written as files. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"
#include "mmstorm/fuzz.h"
#include "mmstorm/util.h"

#define FZC_CHUNK 180			/* a suite line holds at most 199 bytes */
#define FZC_PARTS 8

struct fzc {
	const char *kernel, *baseline, *seeds, *budget, *replay, *results, *run_id, *ops;
	int max_ops, slots, max_shrink, max_failures;
	char id[64], dir[4096], fdir[4200], suite[4300];
	char *replay_text;
};

static void fzc_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm fuzz [--host | --kernel IMG] [--seed S | --seeds S1,S2,..]\n"
		"                    [--budget TIME] [--max-ops N] [--slots N] [--max-shrink N]\n"
		"                    [--max-failures N] [--baseline IMG|host]\n"
		"                    [--ops all|-uffd,-pfn,-nth] [--results DIR] [--run-id ID]\n"
		"       mmstorm fuzz --replay FILE [--host | --kernel IMG]\n\n"
		"Random sequences of fork, write, madvise, mremap, munmap, mprotect, migration,\n"
		"userfaultfd-wp registration and protection, vmsplice references, FOLL_PIN pins\n"
		"(io_uring fixed buffers, gup_test), /dev/mem pfnmap\n"
		"mappings, THP windows and fail-nth faults, checked against the reference model\n"
		"after every op (--ops also leaves out -pinfoll: the FOLL_PIN pins, -thp: THP\n"
		"windows, -file: the shared-file window with uffd MINOR and UFFDIO_CONTINUE).\n"
		"A failing sequence is shrunk and written, with a standalone C reproducer, to\n"
		"RESULTS/RUN-ID/fuzz/. It stops at the budget or after --max-failures distinct\n"
		"failures (default 1; failures that shrink to the same sequence and check are one).\n"
		"--baseline replays each failure on another kernel in a fresh guest (or the host):\n"
		"failures that fail there too are reported as not new and do not fail the run.\n"
		"--kernel runs it all in a QEMU guest (see `mmstorm vm --help`); default --host.\n"
		"Exit status: 0 nothing failed, 1 a sequence (or the replay) failed, 2 usage,\n"
		"3 infrastructure error. See docs/fuzz.md.\n");
}

static int64_t budget_s(const char *t)
{
	char *end;
	double v = strtod(t, &end);

	if (!strcmp(end, "m"))
		v *= 60;
	else if (!strcmp(end, "h"))
		v *= 3600;
	else if (!strcmp(end, "ms"))
		v /= 1000;
	else if (*end && strcmp(end, "s"))
		return -1;
	return v > 0 ? (int64_t)v + 1 : -1;
}

/* The sequence text as replayN= lines, split at op boundaries. */
static int put_replay(FILE *f, const struct fzc *o)
{
	static struct ms_fz_seq s;
	char err[200], *text, *p;
	int part = 0;

	if (ms_fz_seq_parse(&s, o->replay_text, err, sizeof(err))) {
		fprintf(stderr, "mmstorm fuzz: %s: %s\n", o->replay, err);
		return -EINVAL;
	}
	if (!(text = ms_fz_seq_text(&s, "|")))
		return -ENOMEM;
	for (p = text; *p && part < FZC_PARTS; part++) {
		size_t n = strlen(p);

		if (n > FZC_CHUNK) {
			n = FZC_CHUNK;
			while (n && p[n] != '|')
				n--;
			n = n ? n + 1 : FZC_CHUNK;
		}
		fprintf(f, "replay%d=%.*s\n", part + 1, (int)n, p);
		p += n;
	}
	if (*p) {
		fprintf(stderr, "mmstorm fuzz: %s: too long to replay (at most about %d bytes)\n",
			o->replay, FZC_CHUNK * FZC_PARTS);
		free(text);
		return -E2BIG;
	}
	free(text);
	return 0;
}

static int write_suite(struct fzc *o)
{
	int64_t b = budget_s(o->budget);
	FILE *f;
	int ret = 0;

	if (b < 0) {
		fprintf(stderr, "mmstorm fuzz: --budget %s: expected e.g. 90s, 10m\n", o->budget);
		return -EINVAL;
	}
	snprintf(o->suite, sizeof(o->suite), "%s/suite.ini", o->fdir);
	if (!(f = fopen(o->suite, "w")))
		return -errno;
	/*
	 * Shrinking comes on top of the budget: max_shrink sequences, each well under a second,
	 * for each distinct failure.
	 */
	fprintf(f, "; written by mmstorm fuzz\n[global]\nname=fuzz\niterations=1\nrepeat=1\n"
		"timeout=%llds\n\n[fuzz]\nworkload=fuzz\nseeds=%s\nbudget=%s\nmax_ops=%d\n"
		"slots=%d\nmax_shrink=%d\nmax_failures=%d\nops=%s\n",
		(long long)(b + 900LL * (o->max_failures + 2)), o->seeds, o->budget, o->max_ops, o->slots,
		o->max_shrink, o->max_failures, o->ops);
	if (o->replay_text)
		ret = put_replay(f, o);
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

/* mmstorm itself with argv (NULL-terminated), output to log (NULL: ours): its exit status. */
static int run_self(const char *const *argv, const char *log)
{
	int status, fd;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) < 0)
		return -errno;
	if (pid == 0) {
		if (log) {
			fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
				_exit(MS_EXIT_INFRA);
		}
		execv("/proc/self/exe", (char **)argv);
		perror("mmstorm fuzz: exec");
		_exit(MS_EXIT_INFRA);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : MS_EXIT_INFRA;
}

static int run_child(const struct fzc *o)
{
	const char *argv[16];
	int n = 0;

	argv[n++] = "mmstorm";
	if (o->kernel) {
		argv[n++] = "vm";
		argv[n++] = "--kernel";
		argv[n++] = o->kernel;
	} else {
		argv[n++] = "run";
	}
	argv[n++] = "--results";
	argv[n++] = o->results;
	argv[n++] = "--run-id";
	argv[n++] = o->id;
	argv[n++] = o->suite;
	argv[n] = NULL;
	return run_self(argv, NULL);
}

/* The case_end event of the run (host: DIR/events.jsonl; guest: DIR/LABEL/events.jsonl). */
static json_t *find_case_end(const struct fzc *o)
{
	char pat[4300];
	json_t *found = NULL;
	glob_t g;

	snprintf(pat, sizeof(pat), "%s/events.jsonl", o->dir);
	if (access(pat, R_OK))
		snprintf(pat, sizeof(pat), "%s/*/events.jsonl", o->dir);
	if (glob(pat, 0, NULL, &g))
		return NULL;
	for (size_t i = 0; i < g.gl_pathc && !found; i++) {
		FILE *f = fopen(g.gl_pathv[i], "r");
		char *line = NULL;
		size_t cap = 0;

		while (f && getline(&line, &cap, f) > 0) {
			json_t *ev = json_loads(line, 0, NULL);
			const char *kind = json_string_value(json_object_get(ev, "ev"));

			if (kind && !strcmp(kind, "case_end")) {
				json_decref(found);
				found = ev;
			} else {
				json_decref(ev);
			}
		}
		free(line);
		if (f)
			fclose(f);
	}
	globfree(&g);
	return found;
}

static int write_text(const char *path, const char *head, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "%s%s\n", head ? head : "", text);
	return fclose(f) ? -errno : 0;
}

static void write_corpus(const struct fzc *o, json_t *corpus)
{
	char path[4400];
	size_t i;
	json_t *v;

	snprintf(path, sizeof(path), "%s/corpus", o->fdir);
	if (ms_mkdir_p(path, 0755))
		return;
	json_array_foreach(corpus, i, v) {
		snprintf(path, sizeof(path), "%s/corpus/%04zu.seq", o->fdir, i);
		write_text(path, "# mmstorm fuzz corpus: this sequence reached new (op, state) "
			   "transitions\n", json_string_value(v));
	}
}

/* The counts of the newer op groups, each on its own line (the caller ends the last one). */
static void print_new_groups(json_t *fz)
{
	const char *k;
	json_t *v;

	if (json_is_true(json_object_get(fz, "nth"))) {
		printf("\nfuzz: failed as fail-nth made them (failure state checked):");
		json_object_foreach(json_object_get(fz, "injected_failures"), k, v)
			if (json_integer_value(v))
				printf(" %s %lld", k, (long long)json_integer_value(v));
	}
	if (json_is_true(json_object_get(fz, "thp"))) {
		printf("\nfuzz: /proc/vmstat (system-wide) while it ran:");
		json_object_foreach(json_object_get(fz, "thp_vmstat"), k, v)
			printf(" %s %lld", k, (long long)json_integer_value(v));
	}
}

/* How PAT was judged; the sequences that hit the kernel's own pfnmap-tracking limit. */
static void print_pat(json_t *pat)
{
	json_int_t known = json_integer_value(json_object_get(pat, "kernel_limit_sequences"));
	json_int_t unj = json_integer_value(json_object_get(pat, "unjudged_sequences"));

	if (!pat || strcmp(json_string_value(json_object_get(pat, "judged_by")) ?: "", "model"))
		return;
	printf("fuzz: PAT judged by the model of per-VMA pfnmap tracking: %lld sequences made "
	       "the kernel fail frees as the model predicts (memtype_erase() frees only exact and "
	       "end matches: a kernel limit before the pfnmap tracking rework, not counted as "
	       "failures); %lld sequences not judged (a pfn op failed under fail-nth)\n",
	       (long long)known, (long long)unj);
}

static void print_counts(json_t *fz)
{
	json_t *counts = json_object_get(fz, "op_counts"), *v;
	const char *k;

	printf("fuzz: %lld sequences, %lld distinct (op, state) transitions\nfuzz: ops run:",
	       (long long)json_integer_value(json_object_get(fz, "sequences")),
	       (long long)json_integer_value(json_object_get(fz, "transitions")));
	json_object_foreach(counts, k, v)
		printf(" %s %lld", k, (long long)json_integer_value(v));
	print_new_groups(fz);
	printf("\nfuzz: op groups: uffd %s, pfnmap %s, fail-nth %s, pin-uring %s, pin-gup %s, "
	       "THP %s; PAT check %s\n",
	       json_is_true(json_object_get(fz, "uffd")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "pfn")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "nth")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "pin_uring")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "pin_gup")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "thp")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "pat_checked")) ? "on" : "off");
	printf("fuzz: file windows: shmem %s, hugetlb %s, uffd-minor/continue %s (%lld minor "
	       "faults resolved)\n",
	       json_is_true(json_object_get(fz, "file_shmem")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "file_hugetlb")) ? "on" : "off",
	       json_is_true(json_object_get(fz, "minor")) ? "on" : "off",
	       (long long)json_integer_value(json_object_get(fz, "minor_faults")));
	print_pat(json_object_get(fz, "pat"));
	json_object_foreach(json_object_get(fz, "unshrunk_failures"), k, v)
		printf("fuzz: %lld more failing sequences of kind \"%s\" were not shrunk (the kind "
		       "was shrunk 3 times)\n", (long long)json_integer_value(v), k);
}

static void replay_cmd(const struct fzc *o, const char *seq, char *buf, size_t len)
{
	snprintf(buf, len, "mmstorm fuzz --replay %s %s%s", seq, o->kernel ? "--kernel " : "--host",
		 o->kernel ? o->kernel : "");
}

static int write_failure(const struct fzc *o, json_t *fl, size_t i)
{
	char seq[4400], path[4400], head[1024], cmd[9000];
	const char *c = json_string_value(json_object_get(fl, "reproducer_c"));

	snprintf(head, sizeof(head), "# mmstorm fuzz: %s\n# %s\n# found after %lld sequences "
		 "(seed %lld), shrunk from %lld to %lld ops\n",
		 json_string_value(json_object_get(fl, "kind")),
		 json_string_value(json_object_get(fl, "shrunk_message")),
		 (long long)json_integer_value(json_object_get(fl, "found_after_sequences")),
		 (long long)json_integer_value(json_object_get(fl, "seed")),
		 (long long)json_integer_value(json_object_get(fl, "original_ops")),
		 (long long)json_integer_value(json_object_get(fl, "shrunk_ops")));
	snprintf(seq, sizeof(seq), "%s/failure-%zu.seq", o->fdir, i + 1);
	write_text(seq, head, json_string_value(json_object_get(fl, "shrunk")));
	snprintf(path, sizeof(path), "%s/failure-%zu.orig.seq", o->fdir, i + 1);
	write_text(path, "# the sequence as generated, before shrinking\n",
		   json_string_value(json_object_get(fl, "original")));
	printf("FAILURE %zu: %s: %s\n  found after %lld sequences in %.1f s (seed %lld); shrunk "
	       "%lld -> %lld ops with %lld test runs in %.1f s\n  sequence:   %s\n", i + 1,
	       json_string_value(json_object_get(fl, "kind")),
	       json_string_value(json_object_get(fl, "shrunk_message")),
	       (long long)json_integer_value(json_object_get(fl, "found_after_sequences")),
	       json_integer_value(json_object_get(fl, "found_after_ns")) / 1e9,
	       (long long)json_integer_value(json_object_get(fl, "seed")),
	       (long long)json_integer_value(json_object_get(fl, "original_ops")),
	       (long long)json_integer_value(json_object_get(fl, "shrunk_ops")),
	       (long long)json_integer_value(json_object_get(fl, "shrink_tests")),
	       json_integer_value(json_object_get(fl, "shrink_ns")) / 1e9, seq);
	if (c) {
		snprintf(path, sizeof(path), "%s/failure-%zu.c", o->fdir, i + 1);
		write_text(path, NULL, c);
		printf("  reproducer: %s  (cc -O2 -o repro %s -lpthread)\n", path, path);
	}
	if (json_integer_value(json_object_get(fl, "repeats")))
		printf("  repeats:    %lld later sequences shrank to this failure again\n",
		       (long long)json_integer_value(json_object_get(fl, "repeats")));
	replay_cmd(o, seq, cmd, sizeof(cmd));
	printf("  replay:     %s\n", cmd);
	return 0;
}

/*
 * --baseline: replay a failure in a fresh guest of the baseline kernel (or on the host). One
 * that passes there is new in the kernel under test; one that fails there too is not the
 * change's doing. A fresh boot also settles failures that a run's earlier sequences can hide:
 * a leaked PAT memtype entry stays in the kernel, and a later sequence mapping the same
 * /dev/mem page can free that entry instead of its own.
 */
static const char *check_baseline(const struct fzc *o, json_t *fl, size_t i)
{
	char seq[4400], log[4400], id[128];
	const char *argv[12], *verdict;
	int n = 0, rc;

	snprintf(seq, sizeof(seq), "%s/failure-%zu.seq", o->fdir, i + 1);
	snprintf(log, sizeof(log), "%s/failure-%zu.baseline.log", o->fdir, i + 1);
	snprintf(id, sizeof(id), "%s-baseline-%zu", o->id, i + 1);
	argv[n++] = "mmstorm";
	argv[n++] = "fuzz";
	argv[n++] = "--replay";
	argv[n++] = seq;
	if (strcmp(o->baseline, "host")) {
		argv[n++] = "--kernel";
		argv[n++] = o->baseline;
	}
	argv[n++] = "--results";
	argv[n++] = o->results;
	argv[n++] = "--run-id";
	argv[n++] = id;
	argv[n] = NULL;
	rc = run_self(argv, log);
	verdict = rc == 0 ? "passes" : rc == MS_EXIT_FAIL ? "fails" : "error";
	json_object_set_new(fl, "baseline", json_pack("{s:s, s:s, s:s}", "kernel", o->baseline,
						      "replay", verdict, "log", log));
	printf("  baseline:   %s on %s%s (%s)\n", verdict, o->baseline,
	       rc == 0 ? ": new in this kernel" : rc == MS_EXIT_FAIL ? ": not new" :
	       ": inconclusive", log);
	return verdict;
}

static int report_replay(const struct fzc *o, json_t *r)
{
	const char *kind = json_string_value(json_object_get(r, "kind"));
	const char *c = json_string_value(json_object_get(r, "reproducer_c"));
	char path[4400];

	printf("replay %s: %s%s%s\n", o->replay, kind ? kind : "?",
	       *json_string_value(json_object_get(r, "message")) ? ": " : "",
	       json_string_value(json_object_get(r, "message")));
	if (c) {
		snprintf(path, sizeof(path), "%s/replay.c", o->fdir);
		write_text(path, NULL, c);
		printf("  reproducer: %s\n", path);
	}
	return kind && !strcmp(kind, "pass") ? 0 : MS_EXIT_FAIL;
}

/*
 * Write each failure; with --baseline replay each there. Then only failures that do not
 * also fail on the baseline make the exit status 1.
 */
static int report_failures(const struct fzc *o, json_t *fl, const char *verdict)
{
	unsigned known = 0;
	json_t *r;
	size_t i;

	json_array_foreach(fl, i, r) {
		write_failure(o, r, i);
		if (o->baseline && !strcmp(check_baseline(o, r, i), "fails"))
			known++;
	}
	if (!json_array_size(fl)) {
		printf("fuzz: no failures (case %s)\n", verdict ? verdict : "?");
		return 0;
	}
	if (o->baseline && known == json_array_size(fl)) {
		printf("fuzz: every failure also fails on the baseline %s: nothing new\n",
		       o->baseline);
		return 0;
	}
	if (o->baseline)
		printf("fuzz: %zu of %zu failures do not fail on the baseline %s\n",
		       json_array_size(fl) - known, json_array_size(fl), o->baseline);
	return MS_EXIT_FAIL;
}

static int collect(const struct fzc *o, int child_rc)
{
	json_t *ev = find_case_end(o), *fz, *r;
	const char *verdict;
	char path[4400];
	int ret;

	fz = json_object_get(json_object_get(ev, "artifacts"), "fuzz");
	verdict = json_string_value(json_object_get(ev, "verdict"));
	if (!fz) {
		fprintf(stderr, "mmstorm fuzz: no fuzz results in %s (verdict %s, exit %d): %s\n",
			o->dir, verdict ? verdict : "none", child_rc,
			json_string_value(json_object_get(ev, "reason")) ?: "the case never ended");
		json_decref(ev);
		return MS_EXIT_INFRA;
	}
	print_counts(fz);
	write_corpus(o, json_object_get(fz, "corpus"));
	if ((r = json_object_get(fz, "replay")))
		ret = report_replay(o, r);
	else
		ret = report_failures(o, json_object_get(fz, "failures"), verdict);
	snprintf(path, sizeof(path), "%s/stats.json", o->fdir);
	json_dump_file(fz, path, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (verdict && !strcmp(verdict, "ERROR"))
		ret = MS_EXIT_INFRA;
	printf("fuzz: files in %s\n", o->fdir);
	json_decref(ev);
	return ret;
}

static int load_replay(struct fzc *o)
{
	struct stat st;
	FILE *f = fopen(o->replay, "r");
	size_t n;

	if (!f || fstat(fileno(f), &st) || st.st_size > 1 << 20) {
		fprintf(stderr, "mmstorm fuzz: %s: %s\n", o->replay,
			f ? "too large" : strerror(errno));
		if (f)
			fclose(f);
		return -EINVAL;
	}
	o->replay_text = calloc(1, (size_t)st.st_size + 1);
	n = o->replay_text ? fread(o->replay_text, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	return o->replay_text && n == (size_t)st.st_size ? 0 : -EIO;
}

static int parse_args(struct fzc *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", no_argument, NULL, 'H' }, { "kernel", required_argument, NULL, 'k' },
		{ "seed", required_argument, NULL, 's' }, { "seeds", required_argument, NULL, 'S' },
		{ "budget", required_argument, NULL, 'b' },
		{ "max-ops", required_argument, NULL, 'o' },
		{ "slots", required_argument, NULL, 'l' },
		{ "max-shrink", required_argument, NULL, 'x' },
		{ "max-failures", required_argument, NULL, 'F' },
		{ "baseline", required_argument, NULL, 'B' },
		{ "ops", required_argument, NULL, 'O' },
		{ "replay", required_argument, NULL, 'r' },
		{ "results", required_argument, NULL, 'R' },
		{ "run-id", required_argument, NULL, 'i' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'H': o->kernel = NULL; break;
		case 'k': o->kernel = optarg; break;
		case 's': case 'S': o->seeds = optarg; break;
		case 'b': o->budget = optarg; break;
		case 'o': o->max_ops = atoi(optarg); break;
		case 'l': o->slots = atoi(optarg); break;
		case 'x': o->max_shrink = atoi(optarg); break;
		case 'F': o->max_failures = atoi(optarg); break;
		case 'B': o->baseline = optarg; break;
		case 'O': o->ops = optarg; break;
		case 'r': o->replay = optarg; break;
		case 'R': o->results = optarg; break;
		case 'i': o->run_id = optarg; break;
		case 'h': fzc_usage(stdout); return 1;
		default: fzc_usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fzc_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int ms_cmd_fuzz(int argc, char **argv)
{
	struct fzc o = { .seeds = "1", .budget = "60s", .results = "results", .ops = "all",
			 .max_ops = 40, .slots = 16, .max_shrink = 400, .max_failures = 1 };
	time_t now = time(NULL);
	struct tm tm;
	int ret;

	if ((ret = parse_args(&o, argc, argv)))
		return ret > 0 ? 0 : MS_EXIT_USAGE;
	if (o.replay && load_replay(&o))
		return MS_EXIT_USAGE;
	localtime_r(&now, &tm);
	if (!o.run_id) {
		strftime(o.id, sizeof(o.id), "fuzz-%Y%m%d-%H%M%S", &tm);
		snprintf(o.id + strlen(o.id), sizeof(o.id) - strlen(o.id), "-%d", (int)getpid());
	} else {
		ms_strlcpy(o.id, o.run_id, sizeof(o.id));
	}
	snprintf(o.dir, sizeof(o.dir), "%s/%s", o.results, o.id);
	snprintf(o.fdir, sizeof(o.fdir), "%s/fuzz", o.dir);
	if ((ret = ms_mkdir_p(o.fdir, 0755))) {
		fprintf(stderr, "mmstorm fuzz: %s: %s\n", o.fdir, strerror(-ret));
		return MS_EXIT_INFRA;
	}
	if ((ret = write_suite(&o))) {
		free(o.replay_text);
		return ret == -EINVAL || ret == -E2BIG ? MS_EXIT_USAGE : MS_EXIT_INFRA;
	}
	ret = run_child(&o);
	if (ret < 0) {
		fprintf(stderr, "mmstorm fuzz: %s\n", strerror(-ret));
		ret = MS_EXIT_INFRA;
	} else {
		ret = collect(&o, ret);
	}
	free(o.replay_text);
	return ret;
}

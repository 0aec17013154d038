/* `mmstorm repro`: the known-bug catalog (configs/bugs.ini) run on this kernel or in QEMU. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/journal.h"
#include "mmstorm/registry.h"
#include "mmstorm/repro.h"
#include "mmstorm/util.h"
#include "mmstorm/vm.h"
#include "mmstorm/workload.h"

#define RP_MAX_KERNELS 8
#define RP_INCLUDE "#include \"repro_lib.h\""

/* Metadata every catalog entry carries (docs/repro.md). */
const char *const ms_repro_required_meta[] = {
	"bug.id", "bug.title", "bug.fix", "bug.affected", "bug.trigger", "bug.detect",
	"bug.validation", NULL
};

const struct ms_repro_trigger *ms_repro_trigger_find(const char *name)
{
	for (const struct ms_repro_trigger *t = ms_repro_triggers; name && t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

int ms_repro_emit_c(const struct ms_repro_trigger *t, const char *header, FILE *out)
{
	const char *inc = strstr(t->src, RP_INCLUDE);

	if (header)
		fputs(header, out);
	/* mmstorm builds with _GNU_SOURCE on the command line; a lone file says it itself. */
	fputs("#define _GNU_SOURCE\n", out);
	if (!inc) {
		fputs(t->src, out);
	} else {
		fwrite(t->src, 1, (size_t)(inc - t->src), out);
		fprintf(out, "/* ---- repro_lib.h ---- */\n%s/* ---- end of repro_lib.h ---- */",
			ms_repro_src_lib);
		fputs(inc + strlen(RP_INCLUDE), out);
	}
	return ferror(out) ? -EIO : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm repro --list [--json] [--catalog FILE]\n"
		"       mmstorm repro --emit-c BUG [-o FILE]\n"
		"       mmstorm repro [--host | --kernel IMG ...] [--repeat N]\n"
		"                     [--budget TIME] [BUG...]\n"
		"  Runs known, reported kernel bugs (configs/bugs.ini; all when no BUG is\n"
		"  named) and says per bug and kernel: REPRODUCED (with the evidence:\n"
		"  kernel log line, leaked counter, differing data), NOT REPRODUCED, SKIP\n"
		"  (what the kernel lacks), or CRASH / TIMEOUT / ERROR (something else\n"
		"  went wrong), and how many attempts ran.\n\n"
		"options:\n"
		"  --list            the catalog: id, title, fixing commit, validation\n"
		"  --emit-c BUG      the trigger as one standalone C file (plain libc)\n"
		"  -o FILE           with --emit-c: write FILE instead of stdout\n"
		"  --host            run on the running kernel (the default)\n"
		"  --kernel IMG      run in QEMU on IMG (bzImage, .deb, build dir; repeatable)\n"
		"  --repeat N        attempts per bug (race-type bugs; default: the catalog's)\n"
		"  --budget TIME     keep attempting for TIME per bug (e.g. 30s, 5m)\n"
		"  --accel A         with --kernel: kvm, tcg or auto (default)\n"
		"  --catalog FILE    another catalog (default configs/bugs.ini)\n"
		"  --results DIR     parent of the results (default results)\n"
		"  --run-id ID       their directory (default repro-DATE-TIME-PID)\n\n"
		"BUG is an entry's id (bug.id) or section name. Exit status: 1 a bug\n"
		"REPRODUCED (or a CRASH/TIMEOUT), 0 none reproduced (NOT REPRODUCED and\n"
		"SKIP only), 2 usage or catalog error, 3 infrastructure error (ERROR\n"
		"verdicts, QEMU could not run).\n");
}

static const struct ms_case *find_bug(const struct ms_suite *s, const char *name)
{
	for (unsigned i = 0; i < s->ncases; i++) {
		const char *id = ms_case_meta(&s->cases[i], "bug.id");

		if (!strcasecmp(s->cases[i].name, name) || (id && !strcasecmp(id, name)))
			return &s->cases[i];
	}
	return NULL;
}

static const char *meta(const struct ms_case *c, const char *key)
{
	const char *v = ms_case_meta(c, key);

	return v ? v : "";
}

static int list(const struct ms_suite *s, bool as_json)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < s->ncases; i++) {
		const struct ms_case *c = &s->cases[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(c->name));
		for (unsigned k = 0; k < c->nmeta; k++)
			json_object_set_new(o, c->meta[k].key + strlen(MS_META_PREFIX),
					    json_string(c->meta[k].val));
		json_array_append_new(a, o);
		if (as_json)
			continue;
		printf("%-40s %s\n", c->name, meta(c, "bug.title"));
		printf("%-40s   fix: %s\n", "", meta(c, "bug.fix"));
		printf("%-40s   validated: %s\n", "", meta(c, "bug.validation"));
	}
	if (as_json) {
		json_dumpf(a, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(a);
	return 0;
}

/* The trigger= value of a repro case, or NULL for a case of another workload. */
static const char *trigger_name(const struct ms_case *c)
{
	const struct ms_workload *wl = ms_workload_find("repro");

	for (int i = 0; c->wl == wl && wl->params[i].name; i++)
		if (!strcmp(wl->params[i].name, "trigger"))
			return c->vals[i].s;
	return NULL;
}

static int emit_c(const struct ms_suite *s, const char *bug, const char *path)
{
	const struct ms_case *c = find_bug(s, bug);
	const struct ms_repro_trigger *t;
	char header[4096];
	FILE *f = stdout;
	int ret;

	if (!c || !trigger_name(c)) {
		fprintf(stderr, "mmstorm repro: no catalog entry '%s' with a trigger "
			"(see --list)\n", bug);
		return MS_EXIT_USAGE;
	}
	t = ms_repro_trigger_find(trigger_name(c));
	if (!t) {
		fprintf(stderr, "mmstorm repro: trigger '%s' is not in this build\n",
			trigger_name(c));
		return MS_EXIT_USAGE;
	}
	snprintf(header, sizeof(header),
		 "/*\n * %s: %s\n * Fix: %s\n * Affected: %s\n * Trigger: %s\n * Detection: %s\n"
		 " * Needs: %s\n *\n * Written by `mmstorm repro --emit-c %s` (mmstorm %s).\n"
		 " * Build: cc -O2 -Wall -o %s %s.c -lpthread; run as root.\n"
		 " * Exit status: 1 reproduced, 0 not reproduced, 4 skipped (reason printed).\n"
		 " */\n",
		 meta(c, "bug.id"), meta(c, "bug.title"), meta(c, "bug.fix"),
		 meta(c, "bug.affected"), meta(c, "bug.trigger"), meta(c, "bug.detect"),
		 ms_case_meta(c, "bug.needs") ? meta(c, "bug.needs") : "nothing special",
		 c->name, MMSTORM_VERSION, t->name, t->name);
	if (path && !(f = fopen(path, "we"))) {
		fprintf(stderr, "mmstorm repro: %s: %s\n", path, strerror(errno));
		return MS_EXIT_INFRA;
	}
	ret = ms_repro_emit_c(t, header, f);
	if (f != stdout && fclose(f))
		ret = -errno;
	if (ret) {
		fprintf(stderr, "mmstorm repro: writing the program: %s\n", strerror(-ret));
		return MS_EXIT_INFRA;
	}
	return 0;
}

struct rp_opts {
	const char *kernels[RP_MAX_KERNELS];
	unsigned nkernels;
	long repeat;
	const char *budget;
	const char *accel;
	const char *results;
	const char *run_id;
	char **bugs;
	int nbugs;
};

static bool selected(const struct ms_suite *s, const struct rp_opts *o, const char *sec)
{
	if (!o->nbugs)
		return true;
	for (int i = 0; i < o->nbugs; i++)
		if (find_bug(s, o->bugs[i]) == find_bug(s, sec))
			return true;
	return false;
}

/* A case key the overrides replace. */
static bool overridden(const char *line, const struct rp_opts *o)
{
	static const char *const keys[] = { "iterations", "duration", "timeout", NULL };

	if (!o->repeat && !o->budget)
		return false;
	while (*line == ' ' || *line == '\t')
		line++;
	for (int i = 0; keys[i]; i++) {
		size_t n = strlen(keys[i]);

		if (!strncmp(line, keys[i], n) && (line[n] == '=' || line[n] == ' '))
			return true;
	}
	return false;
}

/*
 * The catalog cut down to the chosen entries, their text unchanged but for --repeat/--budget:
 * the guest parses exactly this, so a VM run and a host run run the same cases.
 */
static int write_subset(const char *catalog, const struct ms_suite *s, const struct rp_opts *o,
			const char *path)
{
	FILE *in = fopen(catalog, "re"), *out = in ? fopen(path, "we") : NULL;
	char line[1024], sec[MS_NAME_MAX] = "global";
	int64_t budget_ns = 0;
	bool keep = true;

	if (!out) {
		if (in)
			fclose(in);
		return -errno;
	}
	if (o->budget)
		ms_parse_time(o->budget, &budget_ns);
	while (fgets(line, sizeof(line), in)) {
		char *p = line + strspn(line, " \t");

		if (*p == '[' && sscanf(p, "[%63[^]]]", sec) == 1) {
			keep = !strcmp(sec, "global") || selected(s, o, sec);
			if (keep)
				fputs(line, out);
			if (keep && strcmp(sec, "global") && (o->repeat || o->budget))
				fprintf(out, "iterations=%ld\nduration=%llds\ntimeout=%llds\n",
					o->repeat, (long long)(budget_ns / 1000000000),
					(long long)(120 + 30 * o->repeat + budget_ns / 1000000000));
			continue;
		}
		if (keep && !(strcmp(sec, "global") && overridden(p, o)))
			fputs(line, out);
	}
	fclose(in);
	return fclose(out) ? -errno : 0;
}

/* Does text contain one of the '|'-separated patterns? */
static bool match_pats(const char *pats, const char *text)
{
	char buf[512];

	if (!pats || !text)
		return false;
	ms_strlcpy(buf, pats, sizeof(buf));
	for (char *sv = NULL, *p = strtok_r(buf, "|", &sv); p; p = strtok_r(NULL, "|", &sv))
		if (strstr(text, p))
			return true;
	return false;
}

/* The kernel-log line of a repeat that matches the entry's bug.kmsg patterns ('|' between). */
static const char *kmsg_match(const struct ms_case *c, json_t *rep)
{
	const char *pats = ms_case_meta(c, "bug.kmsg");
	json_t *lines[2] = { json_object_get(json_object_get(rep, "kmsg"), "excerpt"),
			     json_object_get(rep, "console") };

	if (!pats)
		return NULL;
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *v;

		if (json_is_string(lines[l]) && match_pats(pats, json_string_value(lines[l])))
			return "(in the guest console)";
		json_array_foreach(lines[l], i, v)
			if (match_pats(pats, json_string_value(v)))
				return json_string_value(v);
	}
	return NULL;
}

enum rp_verdict { RP_NOT, RP_SKIP, RP_FOUND, RP_CRASH, RP_TIMEOUT, RP_ERROR };
static const char *const rp_names[] = { "NOT REPRODUCED", "SKIP", "REPRODUCED", "CRASH",
					"TIMEOUT", "ERROR" };

static void first_line(char *dst, size_t len, const char *src)
{
	ms_strlcpy(dst, src ? src : "", len);
	dst[strcspn(dst, "\n")] = '\0';
}

/* One catalog entry's result on one kernel, from its run.json case object. */
static enum rp_verdict judge(const struct ms_case *c, json_t *jc, char *ev, size_t len,
			     long long *attempts)
{
	const char *v = json_string_value(json_object_get(jc, "verdict")) ?: "ERROR";
	const char *reason = json_string_value(json_object_get(jc, "reason"));
	json_t *reps = json_object_get(jc, "repeats"), *rep, *f;
	const char *hit = NULL;
	size_t i, k;

	*attempts = 0;
	json_array_foreach(reps, i, rep) {
		json_t *a = json_object_get(json_object_get(json_object_get(rep, "metrics"),
							    "attempts"), "value");

		*attempts += json_is_number(a) ? (long long)json_number_value(a) : 0;
		json_array_foreach(json_object_get(json_object_get(rep, "checks"), "failures"),
				   k, f)
			if (!strcmp(json_string_value(json_object_get(f, "what")) ?: "",
				    "bug reproduced") && !hit)
				hit = json_string_value(json_object_get(f, "detail"));
	}
	if (hit) {
		first_line(ev, len, hit);
		return RP_FOUND;
	}
	json_array_foreach(reps, i, rep)
		if (!hit)
			hit = kmsg_match(c, rep);
	if (hit) {
		snprintf(ev, len, "kernel: %s", hit);
		ev[strcspn(ev, "\n")] = '\0';
		return RP_FOUND;
	}
	first_line(ev, len, reason);
	if (!strcmp(v, "PASS")) {
		json_t *n = json_array_get(json_object_get(json_array_get(reps, 0), "notes"), 0);

		first_line(ev, len, json_string_value(n));
		return RP_NOT;
	}
	if (!strcmp(v, "SKIP"))
		return RP_SKIP;
	if (!strcmp(v, "FAIL") && !strncmp(ev, "kernel: ", 8) &&
	    match_pats(ms_case_meta(c, "bug.kmsg_other"), ev)) {
		json_t *n = json_array_get(json_object_get(json_array_get(reps, 0), "notes"), 0);
		char tmp[1024];

		/* a known separate kernel complaint (docs/repro.md): said, but not this bug */
		snprintf(tmp, sizeof(tmp), "%s [known other issue: %s]",
			 json_string_value(n) ?: "", ev);
		first_line(ev, len, tmp);
		return RP_NOT;
	}
	if (!strcmp(v, "CRASH") || !strcmp(v, "FAIL")) {
		char tmp[1024];

		snprintf(tmp, sizeof(tmp), "not this bug: %s", ev);
		ms_strlcpy(ev, tmp, len);
		return RP_CRASH;
	}
	return !strcmp(v, "TIMEOUT") ? RP_TIMEOUT : RP_ERROR;
}

/* Print one kernel's results; returns the worst verdict seen. */
static enum rp_verdict report(const struct ms_suite *s, const char *label, json_t *run,
			      json_t *out)
{
	enum rp_verdict worst = RP_NOT;
	json_t *jc;
	size_t i;

	json_array_foreach(json_object_get(run, "cases"), i, jc) {
		const struct ms_case *c = find_bug(s, json_string_value(json_object_get(jc, "name"))
					     ?: "");
		enum rp_verdict v;
		long long attempts;
		char ev[1024];

		if (!c)
			continue;
		v = judge(c, jc, ev, sizeof(ev), &attempts);
		worst = v > worst ? v : worst;
		printf("%-40s %-12s %-15s %4lld  %s\n", c->name, label, rp_names[v], attempts, ev);
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I, s:s}", "bug", c->name,
						     "kernel", label, "verdict", rp_names[v],
						     "attempts", (json_int_t)attempts, "evidence",
						     ev));
	}
	fflush(stdout);
	return worst;
}

/* Run the subset suite on the running kernel; KTAP goes to stderr. */
static int run_host(const char *suite_path, const char *dir, const char *run_id, json_t **run)
{
	char err[1024];
	struct ms_run_opts ro = { .suite_path = suite_path, .run_id = run_id, .only_repeat = -1 };
	struct ms_out_opts oo = { .dir = dir, .ktap = stderr };
	const char *argv[] = { "mmstorm", "repro", "--host" };
	struct ms_journal *j = NULL;
	struct ms_out *out = NULL;
	struct ms_suite s;
	int ret, sig = 0;

	if (ms_suite_load(&s, suite_path, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return MS_EXIT_USAGE;
	}
	ro.argv = argv;
	ro.argc = 3;
	ret = ms_state_open(&j, stderr);
	if (!ret)
		ret = ms_out_open(&out, &oo);
	if (!ret)
		ret = ms_run_suite(&s, &ro, j, ms_out_sink(out), &sig);
	if (ret >= 0 && out) {
		ms_out_write(out, sig ? "interrupted" : "complete");
		*run = json_incref(ms_out_run(out));
	}
	if (out)
		ms_out_close(out);
	if (j) {
		ms_journal_restore_to(j, 0, stderr);
		ms_journal_close(j);
	}
	ms_suite_free(&s);
	if (ret < 0)
		fprintf(stderr, "mmstorm repro: run failed: %s\n", strerror(-ret));
	return ret < 0 || sig ? MS_EXIT_INFRA : 0;
}

/* `mmstorm vm` with the subset suite; its KTAP (stdout) goes to stderr with the rest. */
static int run_vm(const struct rp_opts *o, const char *suite_path, const char *run_id)
{
	char *argv[8 + 2 * RP_MAX_KERNELS];
	int argc = 0, saved, rc;

	argv[argc++] = "vm";
	for (unsigned i = 0; i < o->nkernels; i++) {
		argv[argc++] = "--kernel";
		argv[argc++] = (char *)o->kernels[i];
	}
	argv[argc++] = "--results";
	argv[argc++] = (char *)o->results;
	argv[argc++] = "--run-id";
	argv[argc++] = (char *)run_id;
	if (o->accel) {
		argv[argc++] = "--accel";
		argv[argc++] = (char *)o->accel;
	}
	argv[argc++] = (char *)suite_path;
	argv[argc] = NULL;
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	if (saved < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
		return MS_EXIT_INFRA;
	rc = ms_cmd_vm(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return rc;
}

static int filter_runjson(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Each kernel's run.json under DIR/<label>/, reported in label order. */
static enum rp_verdict report_vm(const struct ms_suite *s, const char *dir, json_t *out,
				 unsigned *nruns)
{
	enum rp_verdict worst = RP_NOT, v;
	struct dirent **ents;
	char path[PATH_MAX];
	int n = scandir(dir, &ents, filter_runjson, alphasort);

	*nruns = 0;
	for (int i = 0; i < n; i++) {
		json_t *run;

		snprintf(path, sizeof(path), "%s/%s/run.json", dir, ents[i]->d_name);
		run = json_load_file(path, 0, NULL);
		if (run) {
			v = report(s, ents[i]->d_name, run, out);
			worst = v > worst ? v : worst;
			(*nruns)++;
			json_decref(run);
		}
		free(ents[i]);
	}
	free(n >= 0 ? ents : NULL);
	return worst;
}

static int run_bugs(const char *catalog, const struct ms_suite *s, struct rp_opts *o)
{
	char id[128], dir[PATH_MAX], subset[PATH_MAX + 16];
	enum rp_verdict worst = RP_NOT;
	json_t *results = json_array(), *run = NULL;
	unsigned nruns = 1;
	int rc;

	for (int i = 0; i < o->nbugs; i++)
		if (!find_bug(s, o->bugs[i])) {
			fprintf(stderr, "mmstorm repro: no catalog entry '%s' (see --list)\n",
				o->bugs[i]);
			json_decref(results);
			return MS_EXIT_USAGE;
		}
	if (!o->run_id) {
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(id, sizeof(id), "repro-%Y%m%d-%H%M%S", &tm);
		snprintf(id + strlen(id), sizeof(id) - strlen(id), "-%d", (int)getpid() % 100000);
		o->run_id = id;
	}
	snprintf(dir, sizeof(dir), "%s/%s", o->results, o->run_id);
	snprintf(subset, sizeof(subset), "%s/bugs.ini", dir);
	if (ms_mkdir_p(dir, 0755) || write_subset(catalog, s, o, subset)) {
		fprintf(stderr, "mmstorm repro: cannot write %s: %s\n", subset, strerror(errno));
		json_decref(results);
		return MS_EXIT_INFRA;
	}
	printf("%-40s %-12s %-15s %4s  %s\n", "BUG", "KERNEL", "VERDICT", "TRY", "EVIDENCE");
	if (o->nkernels) {
		rc = run_vm(o, subset, o->run_id);
		worst = report_vm(s, dir, results, &nruns);
	} else {
		snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/host");
		rc = run_host(subset, dir, o->run_id, &run);
		if (run)
			worst = report(s, "host", run, results);
		json_decref(run);
		dir[strlen(dir) - 5] = '\0';
	}
	snprintf(subset, sizeof(subset), "%s/repro.json", dir);
	ms_json_write_atomic(results, subset);
	json_decref(results);
	fprintf(stderr, "# repro results: %s\n", subset);
	if (worst >= RP_FOUND && worst <= RP_TIMEOUT)
		return MS_EXIT_FAIL;
	if (worst == RP_ERROR || !nruns || rc == MS_EXIT_INFRA || rc == MS_EXIT_USAGE)
		return rc == MS_EXIT_USAGE ? rc : MS_EXIT_INFRA;
	return MS_EXIT_OK;
}

int ms_cmd_repro(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'J' },
		{ "emit-c", required_argument, NULL, 'e' },
		{ "host", no_argument, NULL, 'H' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "repeat", required_argument, NULL, 'n' },
		{ "budget", required_argument, NULL, 'b' },
		{ "accel", required_argument, NULL, 'a' },
		{ "catalog", required_argument, NULL, 'c' },
		{ "results", required_argument, NULL, 'r' },
		{ "run-id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rp_opts o = { .results = "results" };
	const char *catalog = NULL, *emit = NULL, *outfile = NULL;
	bool do_list = false, as_json = false, host = false;
	char path[PATH_MAX], err[1024];
	struct ms_suite s;
	int64_t ns;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'l': do_list = true; break;
		case 'J': as_json = true; break;
		case 'e': emit = optarg; break;
		case 'o': outfile = optarg; break;
		case 'H': host = true; break;
		case 'k':
			if (o.nkernels == RP_MAX_KERNELS) {
				fprintf(stderr, "mmstorm repro: at most %d kernels\n",
					RP_MAX_KERNELS);
				return MS_EXIT_USAGE;
			}
			o.kernels[o.nkernels++] = optarg;
			break;
		case 'n':
			o.repeat = strtol(optarg, NULL, 10);
			if (o.repeat < 1 || o.repeat > 1000000) {
				fprintf(stderr, "mmstorm repro: --repeat wants 1..1000000\n");
				return MS_EXIT_USAGE;
			}
			break;
		case 'b':
			if (ms_parse_time(optarg, &ns) || ns < 1000000000LL) {
				fprintf(stderr, "mmstorm repro: --budget wants a time >= 1s "
					"(30s, 5m), found '%s'\n", optarg);
				return MS_EXIT_USAGE;
			}
			o.budget = optarg;
			break;
		case 'a': o.accel = optarg; break;
		case 'c': catalog = optarg; break;
		case 'r': o.results = optarg; break;
		case 'i': o.run_id = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return MS_EXIT_USAGE;
		}
	}
	if ((host && o.nkernels) || (outfile && !emit)) {
		usage(stderr);
		return MS_EXIT_USAGE;
	}
	if (!catalog) {
		if (ms_find_config("bugs.ini", path, sizeof(path))) {
			fprintf(stderr, "mmstorm repro: configs/bugs.ini not found (--catalog)\n");
			return MS_EXIT_USAGE;
		}
		catalog = path;
	}
	if (ms_suite_load(&s, catalog, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return MS_EXIT_USAGE;
	}
	o.bugs = argv + optind;
	o.nbugs = argc - optind;
	if (do_list)
		rc = list(&s, as_json);
	else if (emit)
		rc = emit_c(&s, emit, outfile);
	else
		rc = run_bugs(catalog, &s, &o);
	ms_suite_free(&s);
	return rc;
}

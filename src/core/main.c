/* mmstorm's command line: `mmstorm <command>`, git style. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/fuzz.h"
#include "mmstorm/inject.h"
#include "mmstorm/journal.h"
#include "mmstorm/lava.h"
#include "mmstorm/probe.h"
#include "mmstorm/registry.h"
#include "mmstorm/report.h"
#include "mmstorm/util.h"
#include "mmstorm/vm.h"

static const char *const type_names[] = { "int", "size", "time", "bool", "enum", "string" };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm <command> [options]\n\n"
		"commands:\n"
		"  list      workloads, injectors and their parameters (units, defaults, ranges)\n"
		"  probe     what the running kernel supports (table, or --json)\n"
		"  run       run a suite on the running kernel (default configs/quick.ini)\n"
		"  vm        boot kernels under QEMU and run a suite inside each\n"
		"  compare   A/B verdicts between runs: medians, intervals, p-values (--aa: noise)\n"
		"  report    HTML/Markdown report with gnuplot charts (--trend DIR)\n"
		"  bisect-run  for `git bisect run`: build/boot a kernel, run a case, exit 0/1/125\n"
		"  repro     known, reported kernel bugs: REPRODUCED / NOT REPRODUCED per kernel\n"
		"  fuzz      model-based random op sequences; shrinks a failure to a C reproducer\n"
		"  bench     measure mmstorm's own overhead\n"
		"  lava      LAVA jobs for a suite (export), run.json from their logs (collect)\n\n"
		"  mmstorm <command> --help   options of one command\n"
		"  mmstorm --version\n\n"
		"exit status: 0 all PASS/SKIP, 1 a FAIL/ERROR/CRASH/TIMEOUT, 2 usage or config error,\n"
		"3 infrastructure error, 125 cannot test this kernel\n");
}

static void print_param(FILE *f, const struct ms_param *p)
{
	char range[128] = "";

	if (p->type == MS_P_ENUM) {
		size_t n = 0;

		for (int i = 0; p->choices[i] && n < sizeof(range) - 16; i++)
			n += (size_t)snprintf(range + n, sizeof(range) - n, "%s%s", i ? "|" : "",
					      p->choices[i]);
	} else if (p->min <= p->max && p->type != MS_P_BOOL) {
		struct ms_pval lo = { .i = p->min }, hi = { .i = p->max };
		char a[48], b[48];

		ms_param_format(p, &lo, a, sizeof(a));
		ms_param_format(p, &hi, b, sizeof(b));
		snprintf(range, sizeof(range), "%s..%s", a, b);
	}
	fprintf(f, "    %-16s %-6s %-10s %-8s %-24s %s\n", p->name, type_names[p->type],
		p->def ? p->def : "(required)", p->unit && *p->unit ? p->unit : "-", range,
		p->help ? p->help : "");
}

static void print_params(FILE *f, const struct ms_param *tab)
{
	fprintf(f, "    %-16s %-6s %-10s %-8s %-24s %s\n", "PARAM", "TYPE", "DEFAULT", "UNIT",
		"RANGE", "HELP");
	for (int i = 0; tab && tab[i].name; i++)
		print_param(f, &tab[i]);
}

static json_t *params_to_json(const struct ms_param *tab)
{
	json_t *a = json_array();

	for (int i = 0; tab && tab[i].name; i++) {
		const struct ms_param *p = &tab[i];
		json_t *o = json_pack("{s:s, s:s, s:s*, s:s, s:s}", "name", p->name, "type",
				      type_names[p->type], "default", p->def, "unit",
				      p->unit ? p->unit : "", "help", p->help ? p->help : "");

		if (p->type == MS_P_ENUM) {
			json_t *c = json_array();

			for (int k = 0; p->choices[k]; k++)
				json_array_append_new(c, json_string(p->choices[k]));
			json_object_set_new(o, "choices", c);
		} else if (p->min <= p->max) {
			json_object_set_new(o, "min", json_integer(p->min));
			json_object_set_new(o, "max", json_integer(p->max));
		}
		json_array_append_new(a, o);
	}
	return a;
}

static int cmd_list(int argc, char **argv)
{
	bool as_json = argc > 1 && !strcmp(argv[1], "--json");

	if (argc > 1 && !as_json) {
		fprintf(argc > 1 && strcmp(argv[1], "--help") ? stderr : stdout,
			"usage: mmstorm list [--json]\n"
			"  Lists workloads, injectors and case keys with types, defaults, units and "
			"ranges.\n");
		return strcmp(argv[1], "--help") ? MS_EXIT_USAGE : 0;
	}
	if (as_json) {
		json_t *o = json_object(), *w = json_array(), *in = json_array();

		for (int i = 0; ms_workloads[i]; i++)
			json_array_append_new(w, json_pack("{s:s, s:s, s:o, s:b}", "name",
				ms_workloads[i]->name, "summary", ms_workloads[i]->summary,
				"params", params_to_json(ms_workloads[i]->params), "test_only",
				ms_workloads[i]->guest_only));
		for (int i = 0; ms_injectors[i]; i++)
			json_array_append_new(in, json_pack("{s:s, s:s, s:o}", "name",
				ms_injectors[i]->name, "summary", ms_injectors[i]->summary,
				"params", params_to_json(ms_injectors[i]->params)));
		json_object_set_new(o, "case_keys", params_to_json(ms_case_params));
		json_object_set_new(o, "workloads", w);
		json_object_set_new(o, "injectors", in);
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
		return 0;
	}
	printf("Case keys (every section):\n");
	print_params(stdout, ms_case_params);
	printf("\nWorkloads:\n");
	for (int i = 0; ms_workloads[i]; i++) {
		printf("\n  %s%s: %s\n", ms_workloads[i]->name,
		       ms_workloads[i]->guest_only ? " (test-only, VM guest only)" : "",
		       ms_workloads[i]->summary);
		print_params(stdout, ms_workloads[i]->params);
	}
	printf("\nInjectors:%s\n", ms_injectors[0] ? "" : " (none registered yet)");
	for (int i = 0; ms_injectors[i]; i++) {
		printf("\n  %s%s: %s\n", ms_injectors[i]->name,
		       ms_injectors[i]->destructive ? " (destructive)" : "",
		       ms_injectors[i]->summary);
		print_params(stdout, ms_injectors[i]->params);
	}
	return 0;
}

static int cmd_probe(int argc, char **argv)
{
	json_t *p;

	if (argc > 1 && strcmp(argv[1], "--json")) {
		bool help = !strcmp(argv[1], "--help");

		fprintf(help ? stdout : stderr, "usage: mmstorm probe [--json]\n"
			"  What the running kernel offers: THP, hugetlb pools, userfaultfd, io_uring,\n"
			"  msharefs, MADV_SPLIT, gup_test, fault injection, hwpoison, PAT, cgroup v2,\n"
			"  /dev/mem, PCI BARs. Nothing is changed on the machine.\n");
		return help ? 0 : MS_EXIT_USAGE;
	}
	p = ms_probe();
	if (!p)
		return MS_EXIT_INFRA;
	if (argc > 1) {
		json_dumpf(p, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		ms_probe_print(p, stdout);
	}
	json_decref(p);
	return 0;
}

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm run [options] [SUITE]\n"
		"  Runs SUITE (default: configs/quick.ini) on the running kernel, printing KTAP and\n"
		"  writing results/<run-id>/{run.json,events.jsonl}.\n\n"
		"options:\n"
		"  --results DIR        parent directory of run output (default: results)\n"
		"  --run-id ID          name of this run (default: date-time-kernel)\n"
		"  --junit FILE         also write JUnit XML\n"
		"  --case NAME          run only this case\n"
		"  --check-only         parse and validate the suite, run nothing\n"
		"  --verbose, -v        metric summaries as KTAP diagnostics\n"
		"  --allow-destructive  let destructive injectors and scenarios (hwpoison) run on bare\n"
		"                       metal\n"
		"  --perf-record        perf record -g around each case run (pair with --case); keeps\n"
		"                       perf.data and the top symbols in the results\n"
		"  --config FILE        kernel .config to record (default /proc/config.gz or "
		"/boot/config-$(uname -r))\n");
}

/* Host sink: the outputs, plus a fresh run.json after every case so a kill -9 loses nothing. */
struct run_sink {
	struct ms_sink base;
	struct ms_out *out;
};

static int run_sink_event(struct ms_sink *s, json_t *ev)
{
	struct run_sink *r = (struct run_sink *)s;
	bool case_end = !strcmp(json_string_value(json_object_get(ev, "ev")) ?: "", "case_end");
	int ret = ms_out_event(r->out, ev);

	if (case_end)
		ms_out_write(r->out, "running");
	return ret;
}

static void make_run_id(char *buf, size_t len)
{
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;
	char ts[32];

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d-%H%M%S", &tm);
	if (uname(&u) < 0)
		strcpy(u.release, "unknown");
	snprintf(buf, len, "%s-%s-%d", ts, u.release, (int)getpid() % 100000);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "results", required_argument, NULL, 'r' },
		{ "run-id", required_argument, NULL, 'i' },
		{ "junit", required_argument, NULL, 'j' },
		{ "case", required_argument, NULL, 'c' },
		{ "check-only", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "allow-destructive", no_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'k' },
		{ "perf-record", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *results = "results", *junit = NULL, *run_id = NULL, *case_filter = NULL;
	const char *config = NULL;
	bool check_only = false, verbose = false, destructive = false, perf_record = false;
	char suite_path[PATH_MAX], err[1024], id[128], dir[PATH_MAX];
	struct ms_run_opts ro = { 0 };
	struct ms_out_opts oo = { 0 };
	struct ms_journal *j = NULL;
	struct ms_suite s = { 0 };
	struct ms_out *out = NULL;
	struct run_sink sink = { .base.event = run_sink_event };
	int c, ret, sig = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': results = optarg; break;
		case 'i': run_id = optarg; break;
		case 'j': junit = optarg; break;
		case 'c': case_filter = optarg; break;
		case 'C': check_only = true; break;
		case 'v': verbose = true; break;
		case 'D': destructive = true; break;
		case 'k': config = optarg; break;
		case 'P': perf_record = true; break;
		case 'h': run_usage(stdout); return 0;
		default: run_usage(stderr); return MS_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		run_usage(stderr);
		return MS_EXIT_USAGE;
	}
	if (optind < argc) {
		ms_strlcpy(suite_path, argv[optind], sizeof(suite_path));
	} else if (ms_find_config("quick.ini", suite_path, sizeof(suite_path))) {
		fprintf(stderr, "mmstorm: no suite given and configs/quick.ini not found\n");
		return MS_EXIT_USAGE;
	}
	if (ms_suite_load(&s, suite_path, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return MS_EXIT_USAGE;
	}
	if (case_filter) {
		bool found = false;

		for (unsigned i = 0; i < s.ncases; i++)
			found |= !strcmp(s.cases[i].name, case_filter);
		if (!found) {
			fprintf(stderr, "%s: no case named '%s'\n", suite_path, case_filter);
			ms_suite_free(&s);
			return MS_EXIT_USAGE;
		}
	}
	if (check_only) {
		printf("%s: %u case(s), valid\n", suite_path, s.ncases);
		ms_suite_free(&s);
		return 0;
	}
	rc = MS_EXIT_INFRA;
	if ((ret = ms_state_open(&j, stderr))) {
		fprintf(stderr, "mmstorm: cannot open the knob journal: %s\n", strerror(-ret));
		goto out_suite;
	}
	if (!run_id) {
		make_run_id(id, sizeof(id));
		run_id = id;
	}
	snprintf(dir, sizeof(dir), "%s/%s", results, run_id);
	oo.dir = dir;
	oo.ktap = stdout;
	oo.ktap_verbose = verbose;
	if ((ret = ms_out_open(&out, &oo))) {
		fprintf(stderr, "mmstorm: cannot create %s: %s\n", dir, strerror(-ret));
		goto out_journal;
	}
	ro.suite_path = suite_path;
	ro.run_id = run_id;
	ro.argv = (const char *const *)argv - 1;
	ro.argc = argc + 1;
	ro.only_repeat = -1;
	ro.case_filter = case_filter;
	ro.allow_destructive = destructive;
	ro.config_path = config;
	ro.perf_record_dir = perf_record ? dir : NULL;
	sink.out = out;
	ret = ms_run_suite(&s, &ro, j, &sink.base, &sig);
	if (ret < 0) {
		fprintf(stderr, "mmstorm: run failed: %s\n", strerror(-ret));
		ms_out_write(out, "error");
		goto out_out;
	}
	ms_out_event(out, json_pack("{s:s, s:I, s:s}", "ev", "run_end", "t_ns", (json_int_t)0,
				    "status", sig ? "interrupted" : "complete"));
	if (sig) {
		char st[64];

		snprintf(st, sizeof(st), "interrupted: %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
		ms_out_write(out, st);
	} else {
		ms_out_write(out, "complete");
	}
	if (junit && ms_out_write_junit(out, junit))
		fprintf(stderr, "mmstorm: cannot write %s\n", junit);
	fprintf(stderr, "# results: %s/run.json\n", dir);
	rc = sig ? MS_EXIT_INFRA : (ms_out_worst(out) > MS_V_SKIP ? MS_EXIT_FAIL : MS_EXIT_OK);
out_out:
	ms_out_close(out);
out_journal:
	ms_journal_restore_to(j, 0, stderr);
	ms_journal_close(j);
out_suite:
	ms_suite_free(&s);
	return rc;
}

int main(int argc, char **argv)
{
	if (getpid() == 1)
		return ms_agent_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return MS_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("mmstorm %s\n", MMSTORM_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(argv[1], "probe"))
		return cmd_probe(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "compare"))
		return ms_cmd_compare(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return ms_cmd_report(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bisect-run"))
		return ms_cmd_bisect_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bench"))
		return ms_cmd_bench(argc - 1, argv + 1);
	if (!strcmp(argv[1], "vm"))
		return ms_cmd_vm(argc - 1, argv + 1);
	if (!strcmp(argv[1], "repro"))
		return ms_cmd_repro(argc - 1, argv + 1);
	if (!strcmp(argv[1], "lava"))
		return ms_cmd_lava(argc - 1, argv + 1);
	if (!strcmp(argv[1], "fuzz"))
		return ms_cmd_fuzz(argc - 1, argv + 1);
	if (!strcmp(argv[1], "agent"))
		return ms_agent_main(argc - 1, argv + 1);
	fprintf(stderr, "mmstorm: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return MS_EXIT_USAGE;
}

/* `mmstorm bench --vm`: boot-to-first-result time and the host's cost per case, per kernel. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/param.h"
#include "mmstorm/util.h"
#include "mmstorm/vm.h"
#include "vm/vm.h"

#define BENCH_MAX_CASES 64

static void bench_vm_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm bench --vm --kernel KERNEL [--kernel KERNEL2 ...] [--cases N]\n"
		"                     [--accel tcg|kvm|auto] [--agent PATH]\n"
		"  Boots each kernel with a suite of N tiny cases (fork-storm, one iteration) and\n"
		"  prints QEMU start to the guest's run_start and to the first case result,\n"
		"  the wall time per case after the first, and mmstorm's own CPU time per\n"
		"  case while it watches the guest. Default accelerator: tcg, default N: 8.\n");
}

static int bench_suite(const char *path, unsigned ncases)
{
	FILE *f = fopen(path, "we");
	int ret = 0;

	if (!f)
		return -errno;
	fprintf(f, "; written by mmstorm bench --vm\n[global]\nname=bench-vm\nseed=1\n"
		"timeout=120s\niterations=1\nworkers=1\nchildren=2\n");
	for (unsigned i = 0; i < ncases; i++)
		fprintf(f, "\n[tiny-%u]\nworkload=fork-storm\nregion=anon\nsize=1M\n", i);
	if (fflush(f) || ferror(f))
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

static void bench_print(const struct ms_vm_opts *o, const struct ms_vm_stats *st,
			unsigned ncases)
{
	printf("# mmstorm bench --vm: %u cases of fork-storm (1 iteration) per kernel\n", ncases);
	printf("%-24s %12s %12s %12s %12s %14s %6s\n", "kernel", "run_start s", "1st result s",
	       "wall/case s", "QEMU up s", "host CPU/case", "boots");
	for (unsigned i = 0; i < o->nkernels; i++) {
		const struct ms_vm_stats *s = &st[i];
		double per_case = s->case_ends < 2 ? 0 :
			(s->last_result_at_ns - s->first_result_at_ns) / 1e9 / (s->case_ends - 1);

		printf("%-24.24s %12.2f %12.2f %12.3f %12.2f %11.2f ms %6u\n", s->label,
		       s->first_boot_to_run_start_ns / 1e9, s->first_boot_to_case_end_ns / 1e9,
		       per_case, s->wall_ns / 1e9,
		       s->case_ends ? s->host_cpu_ns / 1e6 / s->case_ends : 0, s->boots);
	}
}

int ms_bench_vm(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "cases", required_argument, NULL, 'n' },
		{ "accel", required_argument, NULL, 'A' },
		{ "agent", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	char *vargv[2 * MS_VM_MAX_KERNELS + 16];
	struct ms_vm_stats st[MS_VM_MAX_KERNELS] = { 0 };
	char work[] = "/tmp/mmstorm-bench-vm-XXXXXX", suite[64];
	const char *accel = "tcg";
	int vargc = 0, c, rc;
	struct ms_vm_opts o;
	unsigned ncases = 8;
	int64_t n;

	vargv[vargc++] = "vm";
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (vargc >= 2 * MS_VM_MAX_KERNELS)
				return MS_EXIT_USAGE;
			vargv[vargc++] = "--kernel";
			vargv[vargc++] = optarg;
			break;
		case 'n':
			if (ms_parse_int(optarg, &n) || n < 1 || n > BENCH_MAX_CASES) {
				fprintf(stderr, "bench --vm: --cases 1..%d\n", BENCH_MAX_CASES);
				return MS_EXIT_USAGE;
			}
			ncases = (unsigned)n;
			break;
		case 'A': accel = optarg; break;
		case 'g':
			vargv[vargc++] = "--agent";
			vargv[vargc++] = optarg;
			break;
		case 'h': bench_vm_usage(stdout); return 0;
		default: bench_vm_usage(stderr); return MS_EXIT_USAGE;
		}
	}
	if (vargc < 3) {
		bench_vm_usage(stderr);
		return MS_EXIT_USAGE;
	}
	if (!mkdtemp(work)) {
		fprintf(stderr, "bench --vm: %s: %s\n", work, strerror(errno));
		return MS_EXIT_INFRA;
	}
	snprintf(suite, sizeof(suite), "%s/bench.ini", work);
	if (bench_suite(suite, ncases)) {
		fprintf(stderr, "bench --vm: cannot write %s\n", suite);
		ms_vm_rmtree(work);
		return MS_EXIT_INFRA;
	}
	vargv[vargc++] = "--accel";
	vargv[vargc++] = (char *)accel;
	vargv[vargc++] = "--results";
	vargv[vargc++] = work;
	vargv[vargc++] = suite;
	vargv[vargc] = NULL;
	ms_vm_opts_init(&o, vargc, vargv);
	rc = ms_vm_parse(&o, vargc, vargv) ? MS_EXIT_USAGE : ms_vm_main(&o, st);
	if (rc == MS_EXIT_OK || rc == MS_EXIT_FAIL)
		bench_print(&o, st, ncases);
	ms_vm_rmtree(work);
	return rc == MS_EXIT_OK ? 0 : rc;
}

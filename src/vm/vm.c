/* `mmstorm vm`: boots each kernel under QEMU, runs the suite inside, survives crashes, compares. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/metrics.h"
#include "mmstorm/param.h"
#include "mmstorm/report.h"
#include "mmstorm/util.h"
#include "mmstorm/vm.h"
#include "vm/vm.h"

#define DEFAULT_MEM_BYTES (2LL << 30)
#define DEFAULT_SMP 2
#define SEC 1000000000LL

static void vm_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm vm --kernel KERNEL [--kernel KERNEL2 ...] [options] [SUITE]\n"
		"  Boots each KERNEL under QEMU with mmstorm as PID 1 and runs SUITE (default\n"
		"  configs/quick.ini) inside. A guest crash or hang marks the running case\n"
		"  CRASH or TIMEOUT, and the guest is booted again from the next case.\n"
		"  Several kernels: the suite runs on each, repeats alternate between the\n"
		"  kernels, and a comparison is written.\n"
		"  Output: RESULTS/RUN-ID/LABEL/{run.json,events.jsonl,console-LABEL.log,...},\n"
		"  and RESULTS/RUN-ID/compare.{md,json} for several kernels.\n\n"
		"  KERNEL: a bzImage, a Debian linux-image-*.deb, or a kernel build directory;\n"
		"          LABEL=KERNEL names it in file names and reports.\n\n"
		"options:\n"
		"  --results DIR        parent directory of run output (default: results)\n"
		"  --run-id ID          name of this run (default: vm-DATE-TIME-PID)\n"
		"  --mem SIZE           guest memory (default: suite's vm_mem, else 2G)\n"
		"  --smp N              guest CPUs (default: suite's vm_smp, else 2)\n"
		"  --append TEXT        more kernel command line (after the suite's vm_append)\n"
		"  --qemu-arg ARG       one more QEMU argument (repeatable)\n"
		"  --accel kvm|tcg|auto accelerator (default auto: KVM if it runs a guest)\n"
		"  --qemu BIN           QEMU binary (default qemu-system-x86_64)\n"
		"  --agent PATH         static mmstorm for the guest (default: $MMSTORM_AGENT,\n"
		"                       else mmstorm-static next to this binary)\n"
		"  --boot-timeout TIME  QEMU start to the guest's first event (default 300s)\n"
		"  --hang-margin TIME   silence past a case's timeout before the guest counts\n"
		"                       as hung (default 60s)\n"
		"  --crash-grace TIME   after a panic on the console, wait this long for the\n"
		"                       guest to go (default 15s)\n"
		"  --plain-initrd       uncompressed initramfs\n"
		"  --verbose, -v        metric summaries as KTAP diagnostics\n");
}

static int opt_time(const char *text, int64_t *ns)
{
	return ms_parse_time(text, ns) || *ns <= 0 ? -EINVAL : 0;
}

static int opt_append(struct ms_vm_opts *o, const char *text)
{
	size_t len = strlen(o->append);

	if (len + strlen(text) + 2 > sizeof(o->append))
		return -E2BIG;
	snprintf(o->append + len, sizeof(o->append) - len, "%s%s", len ? " " : "", text);
	return 0;
}

static int opt_accel(const char *text, enum ms_vm_accel *a)
{
	if (!strcmp(text, "auto"))
		*a = MS_VM_ACCEL_AUTO;
	else if (!strcmp(text, "kvm"))
		*a = MS_VM_ACCEL_KVM;
	else if (!strcmp(text, "tcg"))
		*a = MS_VM_ACCEL_TCG;
	else
		return -EINVAL;
	return 0;
}

int ms_vm_parse(struct ms_vm_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "results", required_argument, NULL, 'r' },
		{ "run-id", required_argument, NULL, 'i' },
		{ "mem", required_argument, NULL, 'm' },
		{ "smp", required_argument, NULL, 's' },
		{ "append", required_argument, NULL, 'a' },
		{ "qemu-arg", required_argument, NULL, 'q' },
		{ "accel", required_argument, NULL, 'A' },
		{ "qemu", required_argument, NULL, 'Q' },
		{ "agent", required_argument, NULL, 'g' },
		{ "boot-timeout", required_argument, NULL, 'b' },
		{ "hang-margin", required_argument, NULL, 'M' },
		{ "crash-grace", required_argument, NULL, 'G' },
		{ "plain-initrd", no_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int64_t v;
	int c, bad = 0;

	optind = 1;
	while (!bad && (c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (o->nkernels == MS_VM_MAX_KERNELS)
				bad = fprintf(stderr, "vm: at most %d kernels\n",
					      MS_VM_MAX_KERNELS);
			else
				o->kernels[o->nkernels++] = optarg;
			break;
		case 'r': o->results = optarg; break;
		case 'i': o->run_id = optarg; break;
		case 'm':
			if (ms_parse_size(optarg, &o->mem_bytes) || o->mem_bytes < (64 << 20))
				bad = fprintf(stderr, "vm: --mem %s: expected a size >= 64M\n",
					      optarg);
			break;
		case 's':
			if (ms_parse_int(optarg, &v) || v < 1 || v > 255)
				bad = fprintf(stderr, "vm: --smp %s: expected 1..255\n", optarg);
			o->smp = (int)v;
			break;
		case 'a':
			if (opt_append(o, optarg))
				bad = fprintf(stderr, "vm: --append: command line too long\n");
			break;
		case 'q':
			if (o->nqemu_args == MS_VM_MAX_QEMU_ARGS)
				bad = fprintf(stderr, "vm: at most %d --qemu-arg\n",
					      MS_VM_MAX_QEMU_ARGS);
			else
				o->qemu_args[o->nqemu_args++] = optarg;
			break;
		case 'A':
			if (opt_accel(optarg, &o->accel))
				bad = fprintf(stderr, "vm: --accel %s: expected kvm, tcg or auto\n",
					      optarg);
			break;
		case 'Q': o->qemu = optarg; break;
		case 'g': o->agent = optarg; break;
		case 'b':
		case 'M':
		case 'G':
			if (opt_time(optarg, &v))
				bad = fprintf(stderr, "vm: %s: expected a time (e.g. 30s)\n",
					      optarg);
			*(c == 'b' ? &o->boot_timeout_ns : c == 'M' ? &o->margin_ns :
			  &o->crash_grace_ns) = v;
			break;
		case 'P': o->plain_initrd = true; break;
		case 'v': o->verbose = true; break;
		case 'h': vm_usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (!bad && !o->nkernels)
		bad = fprintf(stderr, "vm: at least one --kernel is needed\n");
	if (!bad && argc - optind > 1)
		bad = fprintf(stderr, "vm: one suite at most\n");
	if (bad) {
		vm_usage(stderr);
		return -EINVAL;
	}
	if (optind < argc)
		ms_strlcpy(o->suite, argv[optind], sizeof(o->suite));
	return 0;
}

void ms_vm_opts_init(struct ms_vm_opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	o->results = "results";
	o->qemu = "qemu-system-x86_64";
	o->boot_timeout_ns = 300 * SEC;
	o->margin_ns = 60 * SEC;
	o->crash_grace_ns = 15 * SEC;
	o->argc = argc;
	o->argv = argv;
}

/* ---- preconditions ---- */

static bool in_path(const char *bin)
{
	char buf[PATH_MAX];
	const char *path = getenv("PATH"), *p, *colon;

	if (strchr(bin, '/'))
		return !access(bin, X_OK);
	for (p = path ? path : "/usr/bin:/bin"; *p; p = colon + 1) {
		colon = strchrnul(p, ':');
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(colon - p), p, bin);
		if (!access(buf, X_OK))
			return true;
		if (!*colon)
			break;
	}
	return false;
}

/* A dynamically linked /init finds no libc in our initramfs: refuse it before booting. */
static int elf_static(const char *path, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%.900s: %s", path, strerror(-ret));
		return ret;
	}
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		snprintf(err, errlen, "%.900s: not an x86-64 ELF executable", path);
		ret = -ENOEXEC;
		goto out;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		off_t off = (off_t)(eh.e_phoff + i * (uint64_t)eh.e_phentsize);

		if (pread(fd, &ph, sizeof(ph), off) != sizeof(ph))
			break;
		if (ph.p_type == PT_INTERP) {
			snprintf(err, errlen, "%.900s is dynamically linked: the guest needs a "
				 "static mmstorm (the build's mmstorm-static)", path);
			ret = -ENOEXEC;
			break;
		}
	}
out:
	close(fd);
	return ret;
}

static int find_agent(struct ms_vm *vm, char *err, size_t errlen)
{
	const char *env = getenv("MMSTORM_AGENT");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (vm->o->agent || (env && *env)) {
		ms_strlcpy(vm->agent, vm->o->agent ? vm->o->agent : env, sizeof(vm->agent));
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0) {
			snprintf(err, errlen, "/proc/self/exe: %s", strerror(errno));
			return -ENOENT;
		}
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		*slash = '\0';
		if (snprintf(vm->agent, sizeof(vm->agent), "%s/mmstorm-static", exe) >=
		    (int)sizeof(vm->agent)) {
			snprintf(err, errlen, "%.900s: path too long", exe);
			return -ENAMETOOLONG;
		}
	}
	return elf_static(vm->agent, err, errlen);
}

static void choose_accel(struct ms_vm *vm)
{
	char why[256];

	switch (vm->o->accel) {
	case MS_VM_ACCEL_TCG:
		vm->kvm = false;
		snprintf(vm->accel_reason, sizeof(vm->accel_reason), "--accel tcg");
		return;
	case MS_VM_ACCEL_KVM:
		vm->kvm = true;
		snprintf(vm->accel_reason, sizeof(vm->accel_reason), "--accel kvm");
		return;
	case MS_VM_ACCEL_AUTO:
		break;
	}
	vm->kvm = ms_kvm_usable(why, sizeof(why)) == 1;
	snprintf(vm->accel_reason, sizeof(vm->accel_reason), "auto: %s%s", why,
		 vm->kvm ? "" : "; using TCG");
}

/* ---- per-kernel set-up ---- */

static int copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in, out, ret = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		ret = -errno;
		goto out_in;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		ret = ms_write_all(out, buf, (size_t)n);
		if (ret)
			break;
	}
	if (n < 0)
		ret = -errno;
	close(out);
out_in:
	close(in);
	return ret;
}

/*
 * The results keep the config, and the image of a package: the unpacked package (hundreds
 * of MB of modules) goes at once, and the recorded QEMU command still works after the run.
 */
static int kr_keep_files(struct ms_vm_kernel_run *kr)
{
	char path[4200];
	int ret;

	if (kr->k.config[0]) {
		snprintf(path, sizeof(path), "%s/kernel-%s.config", kr->dir, kr->k.label);
		if (!copy_file(kr->k.config, path))
			ms_strlcpy(kr->k.config, path, sizeof(kr->k.config));
	}
	if (!kr->k.tmpdir[0])
		return 0;
	snprintf(path, sizeof(path), "%s/vmlinuz-%s", kr->dir, kr->k.label);
	ret = copy_file(kr->k.image, path);
	if (ret)
		return ret;
	ms_strlcpy(kr->k.image, path, sizeof(kr->k.image));
	ms_vm_kernel_cleanup(&kr->k);
	return 0;
}

/* "LABEL=PATH" names a kernel, unless the whole text is itself an existing path. */
static const char *split_label(const char *arg, char *label, size_t len)
{
	const char *eq = strchr(arg, '=');

	label[0] = '\0';
	if (!eq || strchr(arg, '/') < eq || !access(arg, F_OK) || (size_t)(eq - arg) >= len)
		return arg;
	snprintf(label, len, "%.*s", (int)(eq - arg), arg);
	return eq + 1;
}

static void unique_label(struct ms_vm *vm, struct ms_vm_kernel_run *kr)
{
	char base[sizeof(kr->k.label)];
	bool clash;
	int n = 1;

	ms_strlcpy(base, kr->k.label, sizeof(base));
	do {
		clash = false;
		for (unsigned i = 0; i < vm->nkr; i++)
			clash |= &vm->kr[i] != kr && !strcmp(vm->kr[i].k.label, kr->k.label);
		if (clash)
			snprintf(kr->k.label, sizeof(kr->k.label), "%.50s-%d", base, ++n);
	} while (clash);
}

static int kr_paths(struct ms_vm *vm, struct ms_vm_kernel_run *kr)
{
	char l[sizeof(kr->k.label)], d[sizeof(kr->dir)];
	int ret;

	/* Copies: the names are built from members of the same struct they are written to. */
	ms_strlcpy(l, kr->k.label, sizeof(l));
	if (snprintf(d, sizeof(d), "%s/%s", vm->dir, l) >= (int)sizeof(d))
		return -ENAMETOOLONG;
	ret = ms_mkdir_p(d, 0755);
	if (ret)
		return ret;
	ms_strlcpy(kr->dir, d, sizeof(kr->dir));
	snprintf(kr->initrd, sizeof(kr->initrd), "%s/initramfs-%s.cpio%s", d, l,
		 vm->o->plain_initrd ? "" : ".gz");
	snprintf(kr->console, sizeof(kr->console), "%s/console-%s.log", d, l);
	snprintf(kr->events, sizeof(kr->events), "%s/serial1-%s.raw", d, l);
	snprintf(kr->qemu_log, sizeof(kr->qemu_log), "%s/qemu-%s.log", d, l);
	return 0;
}

/* The capture files exist before QEMU appends to them, so they can be read from offset 0. */
static int kr_open_captures(struct ms_vm_kernel_run *kr)
{
	const char *paths[] = { kr->console, kr->events, kr->qemu_log };
	int *fds[] = { &kr->con_fd, &kr->ev_fd, &kr->qlog_fd };

	for (unsigned i = 0; i < 3; i++) {
		int fd = open(paths[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0)
			return -errno;
		*fds[i] = fd;
	}
	return 0;
}

/* The run id of one kernel's run: the command's, with the kernel's label. */
static void kr_run_id(const struct ms_vm *vm, const struct ms_vm_kernel_run *kr, char *buf,
		      size_t len)
{
	const char *base = strrchr(vm->dir, '/');

	snprintf(buf, len, "%.128s-%s", base ? base + 1 : vm->dir, kr->k.label);
}

static int kr_initramfs(struct ms_vm *vm, struct ms_vm_kernel_run *kr)
{
	char run_id[256];
	json_t *m;
	int ret;

	kr_run_id(vm, kr, run_id, sizeof(run_id));
	m = json_pack("{s:s, s:I, s:s, s:i, s:i}", "run_id", run_id, "seed",
		      (json_int_t)vm->suite->seed, "kernel_label", kr->k.label, "rounds",
		      (int)vm->rounds, "ncases", (int)vm->suite->ncases);
	if (!m)
		return -ENOMEM;
	ret = ms_vm_initramfs(kr->initrd, vm->agent, vm->suite->path, m, !vm->o->plain_initrd);
	json_decref(m);
	return ret;
}

static int kr_setup(struct ms_vm *vm, struct ms_vm_kernel_run *kr, const char *arg, char *err,
		    size_t errlen)
{
	struct ms_out_opts oo = { .ktap_verbose = vm->o->verbose };
	char label[64], path[4200];
	const char *input;
	int ret;

	kr->con_fd = kr->ev_fd = kr->qlog_fd = -1;
	kr->stats.first_boot_to_run_start_ns = kr->stats.first_boot_to_case_end_ns = -1;
	input = split_label(arg, label, sizeof(label));
	ret = ms_vm_kernel_resolve(&kr->k, input, vm->workdir, err, errlen);
	if (ret)
		return ret;
	if (label[0])
		ms_strlcpy(kr->k.label, label, sizeof(kr->k.label));
	unique_label(vm, kr);
	ret = kr_paths(vm, kr);
	if (!ret)
		ret = kr_keep_files(kr);
	if (!ret)
		ret = kr_open_captures(kr);
	if (!ret)
		ret = kr_initramfs(vm, kr);
	if (ret) {
		snprintf(err, errlen, "%s: setting up %s: %s", kr->k.label, kr->dir,
			 strerror(-ret));
		return ret;
	}
	kr->pending = json_array();
	oo.dir = kr->dir;
	if (vm->o->nkernels == 1) {
		oo.ktap = stdout;
	} else {
		snprintf(path, sizeof(path), "%s/ktap-%s.txt", kr->dir, kr->k.label);
		kr->ktap = fopen(path, "we");
		oo.ktap = kr->ktap;
	}
	ret = kr->pending ? ms_out_open(&kr->out, &oo) : -ENOMEM;
	if (ret)
		snprintf(err, errlen, "%s: %s", kr->dir, strerror(-ret));
	return ret;
}

static void kr_free(struct ms_vm_kernel_run *kr)
{
	ms_out_close(kr->out);
	kr->out = NULL;
	if (kr->ktap)
		fclose(kr->ktap);
	kr->ktap = NULL;
	json_decref(kr->pending);
	kr->pending = NULL;
	free(kr->qemu_cmd);
	kr->qemu_cmd = NULL;
	if (kr->con_fd >= 0)
		close(kr->con_fd);
	if (kr->ev_fd >= 0)
		close(kr->ev_fd);
	if (kr->qlog_fd >= 0)
		close(kr->qlog_fd);
	ms_vm_kernel_cleanup(&kr->k);
}

/* ---- boots ---- */

static int64_t cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static void kr_fail(struct ms_vm *vm, struct ms_vm_kernel_run *kr, struct ms_boot *b,
		    const char *what)
{
	json_t *excerpt = b->con ? ms_vmcon_excerpt(b->con) : NULL;
	size_t i;
	json_t *line;

	kr->failed = true;
	snprintf(kr->status, sizeof(kr->status), "error: %s", what);
	ms_vm_log(vm, kr, true, "%s", what);
	fprintf(stderr, "# vm: %s: %s\n", kr->k.label, what);
	json_array_foreach(excerpt, i, line)
		fprintf(stderr, "#   | %s\n", json_string_value(line));
	json_decref(excerpt);
}

/*
 * The guest died or hung: where to boot it again. A case it was running gets its CRASH or
 * TIMEOUT and the next case follows. A guest that twice in a row starts no case from the same
 * point will not get further: that is an infrastructure error, not a loop.
 */
static void after_death(struct ms_vm *vm, struct ms_vm_kernel_run *kr, struct ms_boot *b,
			enum ms_boot_end end, unsigned *resume, unsigned *fails)
{
	int open = ms_out_open_case(kr->out, NULL);
	char what[1024];

	if (open >= 0) {
		ms_boot_close_case(b, end);
		*resume = (unsigned)open + 1;
		*fails = 0;
		return;
	}
	if (b->last_ended >= 0) {
		ms_vm_log(vm, kr, true, "guest boot %u %s between cases (%s)", b->number,
			  end == MS_BOOT_HUNG ? "hung" : "died", b->why);
		*resume = (unsigned)b->last_ended + 1;
		*fails = 0;
		return;
	}
	snprintf(what, sizeof(what), "guest boot %u %s before starting a case at case %u "
		 "(%.400s)%s%.400s", b->number, end == MS_BOOT_HUNG ? "hung" : "died", *resume,
		 b->why, b->con->hit ? ": " : "", b->con->hit ? b->con->first : "");
	if (++*fails < 2)
		ms_vm_log(vm, kr, true, "%s; booting once more", what);
	else
		kr_fail(vm, kr, b, what);
}

static void kvm_fallback(struct ms_vm *vm, struct ms_vm_kernel_run *kr, struct ms_boot *b)
{
	vm->kvm = false;
	snprintf(vm->accel_reason, sizeof(vm->accel_reason), "KVM could not run the guest "
		 "(%.400s): fell back to TCG for the rest of the run", b->why);
	fprintf(stderr, "# vm: %s\n", vm->accel_reason);
	if (kr->started)
		ms_vm_log(vm, kr, false, "%s", vm->accel_reason);
}

/* Every case of the suite (or, when kernels alternate, its repeat `round`) on one kernel. */
static void kr_round(struct ms_vm *vm, struct ms_vm_kernel_run *kr, int round)
{
	unsigned resume = 0, fails = 0;

	while (resume < vm->suite->ncases && !kr->failed) {
		struct ms_boot b = { .vm = vm, .kr = kr, .resume = resume, .round = round };
		int64_t cpu0 = cpu_ns();
		uint64_t t0 = ms_now_ns();
		enum ms_boot_end end;

		b.number = ++kr->stats.boots;
		fprintf(stderr, "# vm: %s: boot %u (%s) from case %u", kr->k.label, b.number,
			vm->kvm ? "kvm" : "tcg", resume);
		if (round >= 0)
			fprintf(stderr, ", repeat %d of each case", round);
		fputc('\n', stderr);
		end = ms_boot_run(&b);
		kr->stats.host_cpu_ns += cpu_ns() - cpu0;
		kr->stats.wall_ns += (int64_t)(ms_now_ns() - t0);
		switch (end) {
		case MS_BOOT_DONE:
			resume = vm->suite->ncases;
			break;
		case MS_BOOT_KVM_FAILED:
			kvm_fallback(vm, kr, &b);
			break;
		case MS_BOOT_NOSTART:
			kr_fail(vm, kr, &b, b.why);
			break;
		case MS_BOOT_INTERRUPTED:
			ms_boot_close_case(&b, end);
			resume = vm->suite->ncases;
			break;
		case MS_BOOT_DIED:
		case MS_BOOT_HUNG:
			after_death(vm, kr, &b, end, &resume, &fails);
			break;
		}
		ms_boot_free(&b);
	}
}

static bool vm_signalled(struct ms_vm *vm)
{
	struct signalfd_siginfo si;

	if (!vm->interrupted && read(vm->sigfd, &si, sizeof(si)) == sizeof(si))
		vm->interrupted = (int)si.ssi_signo;
	return vm->interrupted;
}

/* Round r runs repeat r of every case; the kernels' order alternates (A B, B A, ...). */
static void vm_rounds(struct ms_vm *vm)
{
	for (unsigned r = 0; r < vm->rounds; r++) {
		for (unsigned n = 0; n < vm->nkr; n++) {
			unsigned i = r % 2 ? vm->nkr - 1 - n : n;

			if (vm_signalled(vm))
				return;
			if (!vm->kr[i].failed)
				kr_round(vm, &vm->kr[i], vm->rounds > 1 ? (int)r : -1);
		}
	}
}

/* ---- the end of a kernel's run ---- */

/* A guest that never spoke still leaves a run.json that says who it was and what happened. */
static void kr_host_run_start(struct ms_vm *vm, struct ms_vm_kernel_run *kr)
{
	char run_id[256];
	json_t *ev;

	kr_run_id(vm, kr, run_id, sizeof(run_id));
	ev = json_pack("{s:s, s:I, s:s, s:s, s:{s:s}, s:[], s:{s:s, s:s, s:I, s:i},"
		       " s:{s:s, s:s, s:s}, s:{}, s:{}, s:{s:s}}",
		       "ev", "run_start", "t_ns", (json_int_t)ms_vm_t_ns(vm),
		       "run_id", run_id, "schema", MS_EVENTS_SCHEMA, "mmstorm", "version", MMSTORM_VERSION,
		       "command", "suite", "path", vm->suite->path, "name", vm->suite->name,
		       "seed", (json_int_t)vm->suite->seed, "ncases", (int)vm->suite->ncases,
		       "kernel", "release", "unknown (the guest never started)", "version", "",
		       "cmdline", "", "cpu", "memory", "env", "where", "vm");
	if (!ev)
		return;
	ms_vm_add_env(vm, kr, ev);
	kr->started = true;
	ms_out_event(kr->out, ev);
}

static void kr_finish(struct ms_vm *vm, struct ms_vm_kernel_run *kr)
{
	const char *status = kr->status;
	char buf[64];
	size_t i;
	json_t *p;

	if (vm->interrupted) {
		snprintf(buf, sizeof(buf), "interrupted: SIG%s",
			 sigabbrev_np(vm->interrupted) ?: "?");
		status = buf;
	} else if (!kr->failed) {
		status = "complete";
	}
	if (!kr->started) {
		kr_host_run_start(vm, kr);
		json_array_foreach(kr->pending, i, p)
			ms_out_event(kr->out, json_incref(p));
		json_array_clear(kr->pending);
	}
	ms_out_event(kr->out, json_pack("{s:s, s:I, s:s}", "ev", "run_end", "t_ns",
					(json_int_t)ms_vm_t_ns(vm), "status", status));
	if (ms_out_write(kr->out, status))
		fprintf(stderr, "# vm: %s: cannot write %s/run.json\n", kr->k.label, kr->dir);
	else
		fprintf(stderr, "# results: %s/run.json (%s)\n", kr->dir, status);
}

static int vm_compare(struct ms_vm *vm)
{
	const char *labels[MS_VM_MAX_KERNELS];
	json_t *runs[MS_VM_MAX_KERNELS];
	int ret;

	if (vm->nkr < 2)
		return 0;
	for (unsigned i = 0; i < vm->nkr; i++) {
		labels[i] = vm->kr[i].k.label;
		runs[i] = ms_out_run(vm->kr[i].out);
	}
	ret = ms_kcompare_write(vm->dir, labels, runs, vm->nkr);
	if (ret < 0)
		fprintf(stderr, "# vm: comparison: %s\n", strerror(-ret));
	else
		fprintf(stderr, "# comparison: %s/compare.md (%d verdict difference%s)\n", vm->dir,
			ret, ret == 1 ? "" : "s");
	/* The statistical A/B (compare-stats.md): regressions are reported, the exit status stays
	 * that of the verdicts, as TCG timings rarely support a timing verdict. */
	if (ms_compare_write_dir(vm->dir, labels, runs, vm->nkr) < 0)
		fprintf(stderr, "# vm: statistical comparison could not be written\n");
	return ret;
}

static int vm_exit_code(struct ms_vm *vm, int differences)
{
	enum ms_verdict worst = MS_V_PASS;

	if (vm->interrupted)
		return MS_EXIT_INFRA;
	for (unsigned i = 0; i < vm->nkr; i++) {
		if (vm->kr[i].failed)
			return MS_EXIT_INFRA;
		if (ms_out_worst(vm->kr[i].out) > worst)
			worst = ms_out_worst(vm->kr[i].out);
	}
	return worst > MS_V_SKIP || differences > 0 ? MS_EXIT_FAIL : MS_EXIT_OK;
}

/* ---- the command ---- */

static int vm_signals(struct ms_vm *vm, sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, old) < 0)
		return -errno;
	vm->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->sigfd < 0) {
		int ret = -errno;

		sigprocmask(SIG_SETMASK, old, NULL);
		return ret;
	}
	return 0;
}

static void make_dir(struct ms_vm *vm)
{
	char id[128];
	time_t now = time(NULL);
	struct tm tm;

	if (vm->o->run_id) {
		snprintf(vm->dir, sizeof(vm->dir), "%s/%s", vm->o->results, vm->o->run_id);
		return;
	}
	gmtime_r(&now, &tm);
	strftime(id, sizeof(id), "vm-%Y%m%d-%H%M%S", &tm);
	snprintf(vm->dir, sizeof(vm->dir), "%s/%s-%d", vm->o->results, id, (int)getpid());
}

static int vm_prepare(struct ms_vm *vm, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	int ret;

	if (!in_path(vm->o->qemu)) {
		snprintf(err, errlen, "%s not found (install qemu-system-x86)", vm->o->qemu);
		return -ENOENT;
	}
	ret = find_agent(vm, err, errlen);
	if (ret)
		return ret;
	make_dir(vm);
	ret = ms_mkdir_p(vm->dir, 0755);
	if (ret) {
		snprintf(err, errlen, "%.900s: %s", vm->dir, strerror(-ret));
		return ret;
	}
	snprintf(vm->workdir, sizeof(vm->workdir), "%s/mmstorm-vm-XXXXXX", tmp && *tmp ? tmp :
		 "/tmp");
	if (!mkdtemp(vm->workdir)) {
		ret = -errno;
		snprintf(err, errlen, "%.900s: %s", vm->workdir, strerror(-ret));
		vm->workdir[0] = '\0';
		return ret;
	}
	choose_accel(vm);
	fprintf(stderr, "# vm: accelerator %s (%s)\n", vm->kvm ? "kvm" : "tcg", vm->accel_reason);
	return 0;
}

static unsigned max_repeat(const struct ms_suite *s)
{
	unsigned m = 1;

	for (unsigned i = 0; i < s->ncases; i++)
		if (s->cases[i].repeat > m)
			m = s->cases[i].repeat;
	return m;
}

static int vm_load_suite(struct ms_vm_opts *o, struct ms_suite *s)
{
	char err[1024];

	if (!o->suite[0] && ms_find_config("quick.ini", o->suite, sizeof(o->suite))) {
		fprintf(stderr, "vm: no suite given and configs/quick.ini not found\n");
		return -ENOENT;
	}
	if (ms_suite_load(s, o->suite, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -EINVAL;
	}
	if (!o->mem_bytes)
		o->mem_bytes = s->vm_mem_bytes ? s->vm_mem_bytes : DEFAULT_MEM_BYTES;
	if (!o->smp)
		o->smp = s->vm_smp ? s->vm_smp : DEFAULT_SMP;
	return 0;
}

static int vm_kernels(struct ms_vm *vm)
{
	char err[1024];

	for (unsigned i = 0; i < vm->o->nkernels; i++) {
		vm->nkr = i + 1;
		if (kr_setup(vm, &vm->kr[i], vm->o->kernels[i], err, sizeof(err))) {
			fprintf(stderr, "vm: %s\n", err);
			return -EINVAL;
		}
		fprintf(stderr, "# vm: kernel %s: %s (%s, config: %s)\n", vm->kr[i].k.label,
			vm->kr[i].k.image, vm->kr[i].k.kind, vm->kr[i].k.config[0] ?
			vm->kr[i].k.config : vm->kr[i].k.config_source);
	}
	return 0;
}

int ms_vm_main(struct ms_vm_opts *o, struct ms_vm_stats *stats)
{
	struct ms_suite suite = { 0 };
	struct ms_vm *vm;
	char err[1024];
	sigset_t old;
	int rc = MS_EXIT_INFRA, diffs, ret;

	if (vm_load_suite(o, &suite))
		return MS_EXIT_USAGE;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		goto out_suite;
	vm->o = o;
	vm->suite = &suite;
	vm->sigfd = -1;
	vm->t0_ns = ms_now_ns();
	vm->rounds = o->nkernels > 1 ? max_repeat(&suite) : 1;
	ret = vm_signals(vm, &old);
	if (ret) {
		fprintf(stderr, "vm: cannot set up signal handling: %s\n", strerror(-ret));
		goto out_vm;
	}
	if (vm_prepare(vm, err, sizeof(err))) {
		fprintf(stderr, "vm: %s\n", err);
		goto out_signals;
	}
	if (vm_kernels(vm)) {
		rc = MS_EXIT_USAGE;
		goto out_kernels;
	}
	vm_rounds(vm);
	for (unsigned i = 0; i < vm->nkr; i++)
		kr_finish(vm, &vm->kr[i]);
	diffs = vm_compare(vm);
	rc = vm_exit_code(vm, diffs);
	for (unsigned i = 0; stats && i < vm->nkr; i++) {
		stats[i] = vm->kr[i].stats;
		ms_strlcpy(stats[i].label, vm->kr[i].k.label, sizeof(stats[i].label));
	}
out_kernels:
	for (unsigned i = 0; i < vm->nkr; i++)
		kr_free(&vm->kr[i]);
	if (vm->workdir[0])
		ms_vm_rmtree(vm->workdir);
out_signals:
	close(vm->sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
out_vm:
	free(vm);
out_suite:
	ms_suite_free(&suite);
	return rc;
}

int ms_cmd_vm(int argc, char **argv)
{
	struct ms_vm_opts o;
	int ret;

	ms_vm_opts_init(&o, argc, argv);
	ret = ms_vm_parse(&o, argc, argv);
	if (ret)
		return ret > 0 ? MS_EXIT_OK : MS_EXIT_USAGE;
	return ms_vm_main(&o, NULL);
}

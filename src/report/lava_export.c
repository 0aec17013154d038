/* `mmstorm lava export`: LAVA job definitions for a suite on kernels, split into shards. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "mmstorm/lava.h"
#include "mmstorm/report.h"
#include "mmstorm/suite.h"
#include "mmstorm/util.h"
#include "report/lava_int.h"
#include "vm/vm.h"

#define MAX_KERNELS 16
#define MAX_SHARDS 256
#define SEC 1000000000LL
#define HANG_MARGIN_S 60	/* as `mmstorm vm --hang-margin` */
#define STAGE_MIN 5		/* deploy, each */
#define MIN_WAIT_S 120		/* boot to the first line, at least */

struct exp_kernel {
	char label[64];
	char input[4096];
	char kind[16];		/* "url", "bzimage", "deb", "builddir" */
	char url[4400];
};

struct exp {
	const char *out;
	const char *artifact_url;
	const char *device_type;
	const char *boot_template;
	const char *timings;
	const char *agent;
	const char *run_id;
	char append[1024];
	unsigned shards;
	struct exp_kernel k[MAX_KERNELS];
	const char *kernel_args[MAX_KERNELS];
	unsigned nk;
	char suite_path[PATH_MAX];
	struct ms_suite suite;
	double *weight;		/* expected seconds per case (or 1 each) */
	unsigned *shard_of;
	bool by_time;
	char prefix[4200];	/* artifact URL prefix, no trailing slash */
	char id[128];
	char workdir[PATH_MAX];
	char *template_text;
};

static void export_usage(FILE *f)
{
	fprintf(f,
		"usage: mmstorm lava export --kernel KERNEL [--kernel K2 ...] [options] [SUITE]\n"
		"  Writes LAVA job definitions (one per kernel and shard), the initramfs they\n"
		"  boot and the kernel images to DIR (docs/lava.md). SUITE defaults to\n"
		"  configs/quick.ini.\n\n"
		"  KERNEL: [LABEL=]bzImage, Debian linux-image .deb, kernel build dir, or a URL\n\n"
		"options:\n"
		"  --out DIR              where the jobs and artifacts go (default: lava-jobs)\n"
		"  --shards N             split the suite into N jobs per kernel (default 1)\n"
		"  --timings RUN.json     split by the case run times of that run (default:\n"
		"                         by count)\n"
		"  --artifact-url PREFIX  URL DIR is served at (default: file://DIR)\n"
		"  --device-type NAME     LAVA device type (default qemu)\n"
		"  --boot-template FILE   deploy+boot actions for a device type other than qemu\n"
		"  --append TEXT          more kernel command line (after the suite's vm_append)\n"
		"  --run-id ID            name of the run in the jobs (default: lava-DATE-TIME)\n"
		"  --agent PATH           static mmstorm for the guest (default: $MMSTORM_AGENT,\n"
		"                         else mmstorm-static next to this binary)\n");
}

static int parse_args(struct exp *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "out", required_argument, NULL, 'o' },
		{ "shards", required_argument, NULL, 'n' },
		{ "timings", required_argument, NULL, 't' },
		{ "artifact-url", required_argument, NULL, 'u' },
		{ "device-type", required_argument, NULL, 'd' },
		{ "boot-template", required_argument, NULL, 'b' },
		{ "append", required_argument, NULL, 'a' },
		{ "run-id", required_argument, NULL, 'i' },
		{ "agent", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	char *end;
	long n;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (e->nk >= MAX_KERNELS)
				return -E2BIG;
			e->kernel_args[e->nk++] = optarg;
			break;
		case 'o': e->out = optarg; break;
		case 'n':
			n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > MAX_SHARDS)
				return -EINVAL;
			e->shards = (unsigned)n;
			break;
		case 't': e->timings = optarg; break;
		case 'u': e->artifact_url = optarg; break;
		case 'd': e->device_type = optarg; break;
		case 'b': e->boot_template = optarg; break;
		case 'a':
			n = (long)strlen(e->append);
			snprintf(e->append + n, sizeof(e->append) - (size_t)n, "%s%s",
				 e->append[0] ? " " : "", optarg);
			break;
		case 'i': e->run_id = optarg; break;
		case 'A': e->agent = optarg; break;
		case 'h': export_usage(stdout); return 1;
		default: return -EINVAL;
		}
	}
	if (argc - optind > 1 || !e->nk)
		return -EINVAL;
	if (optind < argc)
		ms_strlcpy(e->suite_path, argv[optind], sizeof(e->suite_path));
	return 0;
}

/* ---- shards ---- */

/* Expected seconds per case from an earlier run: all its repeats, by case name. */
static int load_timings(struct exp *e, char *err, size_t errlen)
{
	json_t *run = ms_run_load(e->timings, err, errlen), *c;
	double known = 0;
	unsigned nknown = 0;
	size_t i, r;

	if (!run)
		return -EINVAL;
	for (unsigned k = 0; k < e->suite.ncases; k++) {
		e->weight[k] = -1;
		json_array_foreach(json_object_get(run, "cases"), i, c) {
			json_t *rep;
			double s = 0;

			if (strcmp(json_string_value(json_object_get(c, "name")) ?: "",
				   e->suite.cases[k].name))
				continue;
			json_array_foreach(json_object_get(c, "repeats"), r, rep)
				s += json_integer_value(json_object_get(rep, "duration_ns")) / 1e9;
			e->weight[k] = s;
			known += s;
			nknown++;
		}
	}
	/* A case the earlier run did not have is assumed to be an average one. */
	for (unsigned k = 0; k < e->suite.ncases; k++)
		if (e->weight[k] < 0)
			e->weight[k] = nknown ? known / nknown : 1;
	json_decref(run);
	e->by_time = true;
	return 0;
}

/* Longest case first into the least loaded shard: within 4/3 of the best split. */
static void split(struct exp *e)
{
	unsigned n = e->suite.ncases, *order = calloc(n, sizeof(*order));
	double load[MAX_SHARDS] = { 0 };

	for (unsigned i = 0; i < n; i++)
		order[i] = i;
	for (unsigned i = 1; order && i < n; i++)
		for (unsigned j = i; j > 0 && e->weight[order[j]] > e->weight[order[j - 1]]; j--) {
			unsigned t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (unsigned i = 0; i < n; i++) {
		unsigned c = order ? order[i] : i, best = 0;

		for (unsigned s = 1; s < e->shards; s++)
			if (load[s] < load[best])
				best = s;
		e->shard_of[c] = best;
		load[best] += e->weight[c];
	}
	free(order);
}

/* "0-3,7,9": the cases of shard s, as the agent's mmstorm.cases= reads them. */
static void shard_set(const struct exp *e, unsigned s, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < e->suite.ncases; i++) {
		unsigned j = i;

		if (e->shard_of[i] != s)
			continue;
		while (j + 1 < e->suite.ncases && e->shard_of[j + 1] == s)
			j++;
		if (j == i)
			o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%u", o ? "," : "",
					      i);
		else
			o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%u-%u",
					      o ? "," : "", i, j);
		i = j;
	}
}

static double shard_seconds(const struct exp *e, unsigned s, int64_t *worst_timeout_ns,
			    int64_t *total_timeout_ns)
{
	double t = 0;

	*worst_timeout_ns = *total_timeout_ns = 0;
	for (unsigned i = 0; i < e->suite.ncases; i++) {
		const struct ms_case *c = &e->suite.cases[i];

		if (e->shard_of[i] != s)
			continue;
		t += e->weight[i];
		*total_timeout_ns += c->timeout_ns * c->repeat;
		if (c->timeout_ns > *worst_timeout_ns)
			*worst_timeout_ns = c->timeout_ns;
	}
	return t;
}

/* ---- artifacts ---- */

static int copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out, ret = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		ret = -errno;
		goto out_in;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0 && !ret)
		ret = ms_write_all(out, buf, (size_t)n);
	if (n < 0)
		ret = -errno;
	if (close(out) < 0 && !ret)
		ret = -errno;
out_in:
	close(in);
	return ret;
}

static int find_agent(struct exp *e, char *path, size_t len)
{
	const char *env = getenv("MMSTORM_AGENT");
	char exe[PATH_MAX];
	ssize_t n;

	if (e->agent || (env && *env)) {
		ms_strlcpy(path, e->agent ? e->agent : env, len);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return -errno;
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		snprintf(path, len, "%s/mmstorm-static", exe);
	}
	return access(path, R_OK) ? -errno : 0;
}

static int write_initramfs(struct exp *e, char *err, size_t errlen)
{
	char agent[PATH_MAX], path[PATH_MAX + 64];
	json_t *m;
	int ret;

	ret = find_agent(e, agent, sizeof(agent));
	if (ret) {
		snprintf(err, errlen, "no static agent (%s): build mmstorm-static or give --agent",
			 strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/initramfs.cpio.gz", e->out);
	m = json_pack("{s:s, s:I, s:s, s:i, s:i}", "run_id", e->id, "seed",
		      (json_int_t)e->suite.seed, "kernel_label", "lava", "rounds", 1, "ncases",
		      (int)e->suite.ncases);
	ret = m ? ms_vm_initramfs(path, agent, e->suite.path, m, true) : -ENOMEM;
	json_decref(m);
	if (ret)
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	return ret;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s && s[1] ? s + 1 : p;
}

static void unique_label(struct exp *e, struct exp_kernel *k)
{
	char base[sizeof(k->label)];
	bool clash;
	int n = 1;

	ms_strlcpy(base, k->label, sizeof(base));
	for (char *p = k->label; *p; p++)
		if (!strchr("-_.+", *p) && !(*p >= '0' && *p <= '9') &&
		    !((*p | 32) >= 'a' && (*p | 32) <= 'z'))
			*p = '_';
	do {
		clash = false;
		for (unsigned i = 0; i < e->nk; i++)
			clash |= &e->k[i] != k && !strcmp(e->k[i].label, k->label);
		if (clash)
			snprintf(k->label, sizeof(k->label), "%.50s-%d", base, ++n);
	} while (clash);
}

/* A URL is used as is; a local kernel is copied next to the jobs (a .deb unpacked first). */
static int add_kernel(struct exp *e, struct exp_kernel *k, const char *arg, char *err,
		      size_t errlen)
{
	const char *eq = strchr(arg, '='), *input = arg;
	struct ms_vm_kernel vk;
	char dst[PATH_MAX + 128];
	int ret;

	if (eq && (!strchr(arg, '/') || strchr(arg, '/') > eq) && access(arg, F_OK)) {
		snprintf(k->label, sizeof(k->label), "%.*s", (int)(eq - arg), arg);
		input = eq + 1;
	}
	ms_strlcpy(k->input, input, sizeof(k->input));
	if (strstr(input, "://")) {
		ms_strlcpy(k->kind, "url", sizeof(k->kind));
		ms_strlcpy(k->url, input, sizeof(k->url));
		if (!k->label[0]) {
			const char *b = base_name(input);

			ms_strlcpy(k->label, strncmp(b, "vmlinuz-", 8) || !b[8] ? b : b + 8,
				   sizeof(k->label));
		}
		unique_label(e, k);
		return 0;
	}
	ret = ms_vm_kernel_resolve(&vk, input, e->workdir, err, errlen);
	if (ret)
		return ret;
	if (!k->label[0])
		ms_strlcpy(k->label, vk.label, sizeof(k->label));
	ms_strlcpy(k->kind, vk.kind, sizeof(k->kind));
	unique_label(e, k);
	snprintf(dst, sizeof(dst), "%s/vmlinuz-%s", e->out, k->label);
	ret = copy_file(vk.image, dst);
	ms_vm_kernel_cleanup(&vk);
	if (ret) {
		snprintf(err, errlen, "%s -> %s: %s", vk.image, dst, strerror(-ret));
		return ret;
	}
	snprintf(k->url, sizeof(k->url), "%s/vmlinuz-%s", e->prefix, k->label);
	return 0;
}

/* ---- the job ---- */

/* A YAML single-quoted scalar: nothing is an escape in it but '' for a quote. */
static void yq(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static void kernel_cmdline(const struct exp *e, const struct exp_kernel *k, unsigned s,
			   const char *set, char *buf, size_t len)
{
	snprintf(buf, len, "console=ttyS0 printk.time=1 panic=-1 mmstorm.console=lava "
		 "mmstorm.label=%s mmstorm.shard=%u/%u mmstorm.cases=%s%s%s%s%s", k->label, s + 1,
		 e->shards, set, e->suite.vm_append[0] ? " " : "", e->suite.vm_append,
		 e->append[0] ? " " : "", e->append);
}

/* QEMU as `mmstorm vm` runs it: the same BARs for the pfnmap cases, the suite's memory. */
static void write_qemu_actions(FILE *f, const struct exp *e, const struct exp_kernel *k,
			       const char *cmdline, long hang_s)
{
	char arg[4096];

	fprintf(f, "- deploy:\n    to: tmpfs\n    timeout: {minutes: %d}\n    images:\n"
		"      kernel:\n        url: ", STAGE_MIN);
	yq(f, k->url);
	snprintf(arg, sizeof(arg), "-kernel {kernel} -append \"%s\" -object "
		 "memory-backend-ram,id=ms-bar,size=16M -device ivshmem-plain,memdev=ms-bar",
		 cmdline);
	fprintf(f, "\n        image_arg: ");
	yq(f, arg);
	fprintf(f, "\n      ramdisk:\n        url: ");
	snprintf(arg, sizeof(arg), "%s/initramfs.cpio.gz", e->prefix);
	yq(f, arg);
	fprintf(f, "\n        image_arg: '-initrd {ramdisk}'\n");
	/*
	 * The boot action's timeout is also how long the monitor waits for the next line it
	 * matches (LAVA hands it to the console's reader): our hang detector, as in `mmstorm vm`.
	 */
	fprintf(f, "- boot:\n    method: qemu\n    media: tmpfs\n    timeout: {seconds: %ld}\n",
		hang_s);
}

/* --boot-template: the user's deploy and boot actions, placeholders filled (docs/lava.md). */
static void write_template_actions(FILE *f, const struct exp *e, const struct exp_kernel *k,
				   const char *cmdline, long hang_s)
{
	static const char *const keys[] = { "{KERNEL_URL}", "{RAMDISK_URL}", "{CMDLINE}",
					    "{BOOT_TIMEOUT_S}" };
	char ramdisk[4300], wait[24];
	const char *vals[] = { k->url, ramdisk, cmdline, wait };
	const char *p = e->template_text;

	snprintf(ramdisk, sizeof(ramdisk), "%s/initramfs.cpio.gz", e->prefix);
	snprintf(wait, sizeof(wait), "%ld", hang_s);
	while (*p) {
		unsigned i;

		for (i = 0; i < 4 && strncmp(p, keys[i], strlen(keys[i])); i++)
			;
		if (i < 4) {
			fputs(vals[i], f);
			p += strlen(keys[i]);
		} else {
			fputc(*p++, f);
		}
	}
	if (p > e->template_text && p[-1] != '\n')
		fputc('\n', f);
}

static void write_metadata(FILE *f, const struct exp *e, const struct exp_kernel *k,
			   unsigned s, const char *set, double expect_s)
{
	char shard[32];

	snprintf(shard, sizeof(shard), "%u/%u", s + 1, e->shards);
	fprintf(f, "metadata:\n  mmstorm.version: '%s'\n  mmstorm.run_id: ", MMSTORM_VERSION);
	yq(f, e->id);
	fprintf(f, "\n  mmstorm.suite: ");
	yq(f, e->suite.name);
	fprintf(f, "\n  mmstorm.kernel: ");
	yq(f, k->label);
	fprintf(f, "\n  mmstorm.kernel_input: ");
	yq(f, k->input);
	fprintf(f, "\n  mmstorm.shard: '%s'\n  mmstorm.cases: '%s'\n", shard, set);
	fprintf(f, "  mmstorm.expected_seconds: '%.0f'\n", e->by_time ? expect_s : -1.0);
}

static int write_job(struct exp *e, const struct exp_kernel *k, unsigned s, json_t *jobs)
{
	char set[2048], cmdline[4096], path[PATH_MAX + 128], name[512], mon[300];
	int64_t worst_ns, total_ns;
	double expect_s = shard_seconds(e, s, &worst_ns, &total_ns);
	long test_min = (long)((total_ns / SEC + 120 + 59) / 60);
	long hang_s = (long)(worst_ns / SEC + HANG_MARGIN_S);
	FILE *f;

	if (hang_s < MIN_WAIT_S)
		hang_s = MIN_WAIT_S;
	shard_set(e, s, set, sizeof(set));
	kernel_cmdline(e, k, s, set, cmdline, sizeof(cmdline));
	snprintf(name, sizeof(name), "%s-shard%uof%u.yaml", k->label, s + 1, e->shards);
	snprintf(path, sizeof(path), "%s/%s", e->out, name);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "# mmstorm lava export %s: suite %s on %s, shard %u/%u (cases %s)\n",
		MMSTORM_VERSION, e->suite.name, k->label, s + 1, e->shards, set);
	fprintf(f, "job_name: 'mmstorm %s %s %s shard %u/%u'\n", e->id, e->suite.name, k->label,
		s + 1, e->shards);
	fprintf(f, "device_type: ");
	yq(f, e->device_type);
	fprintf(f, "\nvisibility: public\npriority: medium\n");
	fprintf(f, "timeouts:\n  job: {minutes: %ld}\n  action: {minutes: %d}\n",
		test_min + 2 * STAGE_MIN + 2, STAGE_MIN);
	/* LAVA servers accept only their own context variables: mmstorm's identity is metadata. */
	fprintf(f, "context:\n  arch: amd64\n  memory: %lld\n",
		(long long)((e->suite.vm_mem_bytes ? e->suite.vm_mem_bytes : 2LL << 30) >> 20));
	write_metadata(f, e, k, s, set, expect_s);
	fprintf(f, "actions:\n");
	if (e->template_text)
		write_template_actions(f, e, k, cmdline, hang_s);
	else
		write_qemu_actions(f, e, k, cmdline, hang_s);
	fprintf(f, "- test:\n    timeout: {minutes: %ld}\n    monitors:\n    - name: ", test_min);
	snprintf(mon, sizeof(mon), "mmstorm-%s", e->suite.name);
	yq(f, mon);
	fprintf(f, "\n      start: '%s'\n      end: '%s'\n      pattern: ", MS_LAVA_START,
		MS_LAVA_END);
	yq(f, MS_LAVA_PATTERN);
	fputc('\n', f);
	if (fclose(f))
		return -errno;
	json_array_append_new(jobs, json_pack("{s:s, s:s, s:i, s:s, s:f, s:s}", "file", name,
					      "kernel", k->label, "shard", (int)s + 1, "cases", set,
					      "expected_s", e->by_time ? expect_s : -1.0,
					      "cmdline", cmdline));
	printf("%s/%s: cases %s\n", e->out, name, set);
	return 0;
}

/* ---- the command ---- */

static int read_template(struct exp *e, char *err, size_t errlen)
{
	FILE *f = fopen(e->boot_template, "re");
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", e->boot_template, strerror(errno));
		return -errno;
	}
	e->template_text = calloc(1, 65536);
	n = e->template_text ? fread(e->template_text, 1, 65535, f) : 0;
	fclose(f);
	if (!n) {
		snprintf(err, errlen, "%s: empty or unreadable", e->boot_template);
		return -EINVAL;
	}
	return 0;
}

static int prepare(struct exp *e, char *err, size_t errlen)
{
	char abs[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	int ret;

	if (!e->suite_path[0] && ms_find_config("quick.ini", e->suite_path,
						sizeof(e->suite_path))) {
		snprintf(err, errlen, "no suite given and configs/quick.ini not found");
		return -ENOENT;
	}
	if (ms_suite_load(&e->suite, e->suite_path, err, errlen))
		return -EINVAL;
	if (e->shards > e->suite.ncases) {
		snprintf(err, errlen, "--shards %u: the suite has %u cases", e->shards,
			 e->suite.ncases);
		return -EINVAL;
	}
	if (strcmp(e->device_type, "qemu") && !e->boot_template) {
		snprintf(err, errlen, "--device-type %s needs --boot-template (docs/lava.md)",
			 e->device_type);
		return -EINVAL;
	}
	if (e->boot_template && (ret = read_template(e, err, errlen)))
		return ret;
	e->weight = calloc(e->suite.ncases, sizeof(*e->weight));
	e->shard_of = calloc(e->suite.ncases, sizeof(*e->shard_of));
	if (!e->weight || !e->shard_of)
		return -ENOMEM;
	for (unsigned i = 0; i < e->suite.ncases; i++)
		e->weight[i] = 1;
	if (e->timings && (ret = load_timings(e, err, errlen)))
		return ret;
	split(e);
	ret = ms_mkdir_p(e->out, 0755);
	if (ret || !realpath(e->out, abs)) {
		snprintf(err, errlen, "%s: %s", e->out, strerror(ret ? -ret : errno));
		return ret ? ret : -errno;
	}
	if (e->artifact_url)
		snprintf(e->prefix, sizeof(e->prefix), "%s", e->artifact_url);
	else
		snprintf(e->prefix, sizeof(e->prefix), "file://%s", abs);
	for (size_t n = strlen(e->prefix); n && e->prefix[n - 1] == '/'; n--)
		e->prefix[n - 1] = '\0';
	snprintf(e->workdir, sizeof(e->workdir), "%s/mmstorm-lava-XXXXXX", tmp && *tmp ? tmp :
		 "/tmp");
	if (!mkdtemp(e->workdir)) {
		e->workdir[0] = '\0';
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void make_id(struct exp *e)
{
	time_t now = time(NULL);
	struct tm tm;

	if (e->run_id) {
		ms_strlcpy(e->id, e->run_id, sizeof(e->id));
		return;
	}
	gmtime_r(&now, &tm);
	strftime(e->id, sizeof(e->id), "lava-%Y%m%d-%H%M%S", &tm);
}

static int write_manifest(struct exp *e, json_t *jobs)
{
	char path[PATH_MAX + 64];
	json_t *ks = json_array(), *m;
	int ret;

	for (unsigned i = 0; i < e->nk; i++)
		json_array_append_new(ks, json_pack("{s:s, s:s, s:s, s:s}", "label", e->k[i].label,
						    "input", e->k[i].input, "kind", e->k[i].kind,
						    "url", e->k[i].url));
	m = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:o, s:o}", "schema",
		      "mmstorm-lava-export/1", "mmstorm", MMSTORM_VERSION, "run_id", e->id,
		      "suite", e->suite.name, "ncases", (int)e->suite.ncases, "shards",
		      (int)e->shards, "split", e->by_time ? "time" : "count", "device_type",
		      e->device_type, "kernels", ks, "jobs", json_incref(jobs));
	if (!m)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/manifest.json", e->out);
	ret = ms_json_write_atomic(m, path);
	json_decref(m);
	if (!ret) {
		snprintf(path, sizeof(path), "%s/suite.ini", e->out);
		ret = copy_file(e->suite.path, path);
	}
	return ret;
}

static int export_run(struct exp *e)
{
	char err[2048];
	json_t *jobs = json_array();
	int ret;

	make_id(e);
	ret = prepare(e, err, sizeof(err));
	if (!ret)
		ret = write_initramfs(e, err, sizeof(err));
	for (unsigned i = 0; !ret && i < e->nk; i++)
		ret = add_kernel(e, &e->k[i], e->kernel_args[i], err, sizeof(err));
	for (unsigned i = 0; !ret && i < e->nk; i++)
		for (unsigned s = 0; !ret && s < e->shards; s++)
			if ((ret = write_job(e, &e->k[i], s, jobs)))
				snprintf(err, sizeof(err), "%s: %s", e->out, strerror(-ret));
	if (!ret && (ret = write_manifest(e, jobs)))
		snprintf(err, sizeof(err), "%s/manifest.json: %s", e->out, strerror(-ret));
	json_decref(jobs);
	if (ret)
		fprintf(stderr, "mmstorm lava export: %s\n", err);
	else
		fprintf(stderr, "# lava: %u job(s) in %s, split by %s; artifacts at %s\n",
			e->nk * e->shards, e->out, e->by_time ? "time" : "count", e->prefix);
	return ret;
}

int ms_lava_export_main(int argc, char **argv)
{
	struct exp e = { .out = "lava-jobs", .device_type = "qemu", .shards = 1 };
	int ret = parse_args(&e, argc, argv);

	if (ret) {
		if (ret < 0)
			export_usage(stderr);
		return ret > 0 ? MS_EXIT_OK : MS_EXIT_USAGE;
	}
	ret = export_run(&e);
	if (e.workdir[0])
		ms_vm_rmtree(e.workdir);
	ms_suite_free(&e.suite);
	free(e.weight);
	free(e.shard_of);
	free(e.template_text);
	return ret == -EINVAL || ret == -ENOENT ? MS_EXIT_USAGE : ret ? MS_EXIT_INFRA : MS_EXIT_OK;
}

int ms_cmd_lava(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "export"))
		return ms_lava_export_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "collect"))
		return ms_lava_collect_main(argc - 1, argv + 1);
	fprintf(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
		"usage: mmstorm lava export --kernel K [--shards N] [options] [SUITE]\n"
		"       mmstorm lava collect [options] LOG...\n"
		"  LAVA job definitions for a suite, and run.json from the jobs' logs\n"
		"  (docs/lava.md). `mmstorm lava export --help` for the options.\n");
	return argc >= 2 && !strcmp(argv[1], "--help") ? MS_EXIT_OK : MS_EXIT_USAGE;
}

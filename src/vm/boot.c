/* One QEMU boot of one kernel: both serial streams watched live, events routed, crash and hang. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/metrics.h"
#include "mmstorm/probe.h"
#include "mmstorm/result.h"
#include "vm/vm.h"

#define POLL_MS 50
#define READ_CHUNK (1 << 20)		/* per stream and tick, so the timers keep running */
#define MAX_BAD_REPORTED 20
#define POWEROFF_GRACE_NS (30 * 1000000000ULL)
#define CMDLINE_MAX 2048		/* x86 COMMAND_LINE_SIZE */

uint64_t ms_vm_t_ns(const struct ms_vm *vm)
{
	return ms_now_ns() - vm->t0_ns;
}

static void vm_forward(struct ms_vm_kernel_run *kr, json_t *ev)
{
	bool result = !strcmp(json_string_value(json_object_get(ev, "ev")) ?: "", "case_end");

	if (!kr->started) {
		if (json_array_append_new(kr->pending, ev))
			fprintf(stderr, "# vm: %s: out of memory keeping an event\n",
				kr->k.label);
		return;
	}
	ms_out_event(kr->out, ev);
	/* Even a kill -9 of mmstorm then leaves a run.json with every result so far. */
	if (result && ms_out_write(kr->out, "running"))
		fprintf(stderr, "# vm: %s: cannot write run.json\n", kr->k.label);
}

void ms_vm_log(struct ms_vm *vm, struct ms_vm_kernel_run *kr, bool problem, const char *fmt,
	       ...)
{
	char msg[1024];
	va_list ap;
	json_t *ev;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev = json_pack("{s:s, s:I, s:s}", "ev", "log", "t_ns", (json_int_t)ms_vm_t_ns(vm),
		       "msg", msg);
	if (!ev)
		return;
	if (problem)
		json_object_set_new(ev, "problem", json_true());
	vm_forward(kr, ev);
}

static const struct ms_case *boot_case(const struct ms_boot *b, json_int_t index)
{
	if (index < 0 || index >= (json_int_t)b->vm->suite->ncases)
		return NULL;
	return &b->vm->suite->cases[index];
}

/* ---- events from the guest ---- */

static json_t *host_env_kernel(const struct ms_vm_kernel *k)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "input", k->input, "kind", k->kind,
			 "label", k->label, "image", k->image, "config", k->config,
			 "config_source", k->config_source);
}

/* The facts only the host knows go into the run's identity. */
void ms_vm_add_env(struct ms_vm *vm, struct ms_vm_kernel_run *kr, json_t *ev)
{
	json_t *env = json_object_get(ev, "env"), *kernel = json_object_get(ev, "kernel");
	json_t *cmd = json_array();

	for (int i = 0; cmd && i < vm->o->argc; i++) {
		char word[1024];

		ms_vm_printable(word, sizeof(word), vm->o->argv[i], strlen(vm->o->argv[i]));
		json_array_append_new(cmd, json_string(word));
	}
	json_object_set_new(env, "where", json_string("vm"));
	json_object_set_new(env, "accel", json_string(vm->kvm ? "kvm" : "tcg"));
	json_object_set_new(env, "accel_reason", json_string(vm->accel_reason));
	json_object_set_new(env, "qemu_command", kr->qemu_cmd ? json_string(kr->qemu_cmd) :
			    json_null());
	json_object_set_new(env, "host_command", cmd);
	json_object_set_new(env, "kernel_input", host_env_kernel(&kr->k));
	json_object_set_new(env, "rounds", json_integer(vm->rounds));
	/* Debian kernels have no /proc/config.gz: the guest could not read what the host has. */
	if (kr->k.config[0] && json_is_object(kernel) && !json_is_object(json_object_get(kernel,
										"config"))) {
		json_t *cfg = ms_kconfig_load(kr->k.config, 1);

		if (cfg) {
			json_object_set_new(kernel, "config", cfg);
			json_object_set_new(kernel, "config_path", json_string(kr->k.config));
		}
	} else if (json_is_object(json_object_get(kernel, "config"))) {
		json_object_set_new(json_object_get(env, "kernel_input"), "config_source",
				    json_string("guest"));
	}
}

static void boot_run_start(struct ms_boot *b, json_t *ev)
{
	struct ms_vm_kernel_run *kr = b->kr;
	size_t i;
	json_t *p;

	if (kr->stats.first_boot_to_run_start_ns < 0)
		kr->stats.first_boot_to_run_start_ns = (int64_t)(ms_now_ns() - b->start_ns);
	if (kr->started) {
		json_decref(ev);
		if (b->round >= 0)
			ms_vm_log(b->vm, kr, false, "guest boot %u (round %d) resumed at case %u",
				  b->number, b->round, b->resume);
		else
			ms_vm_log(b->vm, kr, false, "guest boot %u resumed at case %u", b->number,
				  b->resume);
		return;
	}
	ms_vm_add_env(b->vm, kr, ev);
	kr->started = true;
	ms_out_event(kr->out, ev);
	json_array_foreach(kr->pending, i, p)
		ms_out_event(kr->out, json_incref(p));
	json_array_clear(kr->pending);
}

static bool boot_check_index(struct ms_boot *b, json_t *ev, const char *kind)
{
	json_int_t index = json_integer_value(json_object_get(ev, "index"));

	if (boot_case(b, index))
		return true;
	ms_vm_log(b->vm, b->kr, true, "guest sent %s for case index %lld, the suite has %u "
		  "cases: skipped", kind, (long long)index, b->vm->suite->ncases);
	json_decref(ev);
	return false;
}

static void boot_case_start(struct ms_boot *b, json_t *ev)
{
	if (!boot_check_index(b, ev, "case_start"))
		return;
	b->open_index = (int)json_integer_value(json_object_get(ev, "index"));
	b->open_repeat = (int)json_integer_value(json_object_get(ev, "repeat"));
	b->open_since_ns = ms_now_ns();
	b->case_started = true;
	/* A crash excerpt is about the case that runs: older kernel messages are not its. */
	ms_vmcon_mark(b->con);
	b->hit_ns = 0;
	vm_forward(b->kr, ev);
}

static void boot_count_result(struct ms_boot *b)
{
	struct ms_vm_stats *st = &b->kr->stats;
	uint64_t now = ms_now_ns();

	st->case_ends++;
	if (st->first_boot_to_case_end_ns < 0)
		st->first_boot_to_case_end_ns = (int64_t)(now - b->start_ns);
	if (!st->first_result_at_ns)
		st->first_result_at_ns = now;
	st->last_result_at_ns = now;
}

static void boot_case_end(struct ms_boot *b, json_t *ev)
{
	struct ms_vm_kernel_run *kr = b->kr;
	int index, repeat;

	if (!boot_check_index(b, ev, "case_end"))
		return;
	index = (int)json_integer_value(json_object_get(ev, "index"));
	repeat = (int)json_integer_value(json_object_get(ev, "repeat"));
	if (index == b->open_index && repeat == b->open_repeat)
		b->open_index = -1;
	if (index > b->last_ended)
		b->last_ended = index;
	boot_count_result(b);
	if (b->vm->nkr > 1)
		fprintf(stderr, "# vm: %s: %s repeat %d: %s\n", kr->k.label,
			b->vm->suite->cases[index].name, repeat,
			json_string_value(json_object_get(ev, "verdict")));
	vm_forward(kr, ev);
}

static void boot_event(void *arg, json_t *ev)
{
	struct ms_boot *b = arg;
	const char *kind = json_string_value(json_object_get(ev, "ev"));

	b->nevents++;
	b->last_event_ns = ms_now_ns();
	/* One time base for the run, across boots and kernels: the host's. */
	json_object_set_new(ev, "t_ns", json_integer((json_int_t)ms_vm_t_ns(b->vm)));
	if (!strcmp(kind, "run_start")) {
		boot_run_start(b, ev);
	} else if (!strcmp(kind, "case_start")) {
		boot_case_start(b, ev);
	} else if (!strcmp(kind, "case_end")) {
		boot_case_end(b, ev);
	} else if (!strcmp(kind, "run_end")) {
		/* The run ends once, on the host, after the last boot of the last round. */
		b->run_end = true;
		ms_vm_log(b->vm, b->kr, false, "guest boot %u finished (%s)", b->number,
			  json_string_value(json_object_get(ev, "status")));
		json_decref(ev);
	} else {
		vm_forward(b->kr, ev);
	}
}

static void boot_bad(void *arg, unsigned long lineno, const char *why, const char *excerpt)
{
	struct ms_boot *b = arg;

	b->nbad_reported++;
	if (b->nbad_reported <= MAX_BAD_REPORTED)
		ms_vm_log(b->vm, b->kr, true, "guest event stream, boot %u line %lu skipped: %s: "
			  "%s", b->number, lineno, why, excerpt);
	else if (b->nbad_reported == MAX_BAD_REPORTED + 1)
		ms_vm_log(b->vm, b->kr, true, "guest event stream, boot %u: more bad lines, "
			  "counted but not shown", b->number);
}

/* ---- the case the guest could not finish ---- */

static const char *boot_verdict(struct ms_boot *b, enum ms_boot_end end, int64_t timeout_ns,
				char *reason, size_t len)
{
	const struct ms_vm_opts *o = b->vm->o;

	if (end == MS_BOOT_INTERRUPTED) {
		snprintf(reason, len, "run interrupted on the host (signal %d) while the case ran",
			 b->vm->interrupted);
		return "ERROR";
	}
	if (b->con->hit) {
		snprintf(reason, len, "guest kernel crashed%s: %s",
			 end == MS_BOOT_HUNG ? " and stopped" : "", b->con->first);
		return "CRASH";
	}
	if (end == MS_BOOT_HUNG) {
		snprintf(reason, len, "no progress from the guest for %.0f s (case timeout %.0f s "
			 "+ margin %.0f s): QEMU killed", (ms_now_ns() - b->last_event_ns) / 1e9,
			 timeout_ns / 1e9, o->margin_ns / 1e9);
		return "TIMEOUT";
	}
	snprintf(reason, len, "the guest died without a kernel crash message (%s)", b->why);
	return "CRASH";
}

/* A case_end in the guest's format; the console excerpt is its kmsg excerpt and "console". */
static json_t *host_case_end(struct ms_boot *b, const struct ms_case *c, int index, int repeat,
			     const char *verdict, const char *reason)
{
	json_t *excerpt = ms_vmcon_excerpt(b->con);
	uint64_t dur = index == b->open_index ? ms_now_ns() - b->open_since_ns : 0;

	if (!excerpt)
		return NULL;
	return json_pack("{s:s, s:I, s:s, s:i, s:i, s:s, s:s, s:I, s:I, s:{},"
			 " s:{s:I, s:I, s:[]}, s:[s], s:{}, s:{s:s, s:s, s:O}, s:o}",
			 "ev", "case_end", "t_ns", (json_int_t)ms_vm_t_ns(b->vm),
			 "case", c->name, "index", index, "repeat", repeat,
			 "verdict", verdict, "reason", reason,
			 "duration_ns", (json_int_t)dur, "iterations", (json_int_t)0,
			 "metrics",
			 "checks", "run", (json_int_t)0, "failed", (json_int_t)0, "failures",
			 "notes", "result made by the host: the guest could not report this case",
			 "pgtables",
			 "kmsg", "class", b->con->hit ? "CRASH" : "none", "first", b->con->first,
			 "excerpt", excerpt,
			 "console", excerpt);
}

void ms_boot_close_case(struct ms_boot *b, enum ms_boot_end end)
{
	struct ms_vm_kernel_run *kr = b->kr;
	const struct ms_case *c;
	const char *verdict;
	char reason[1024];
	int index, repeat;
	json_t *ev;

	index = ms_out_open_case(kr->out, &repeat);
	c = boot_case(b, index);
	if (!c)
		return;
	verdict = boot_verdict(b, end, c->timeout_ns, reason, sizeof(reason));
	ev = host_case_end(b, c, index, repeat, verdict, reason);
	if (!ev) {
		fprintf(stderr, "# vm: %s: out of memory recording case %s\n", kr->k.label,
			c->name);
		return;
	}
	b->open_index = -1;
	boot_count_result(b);
	if (b->vm->nkr > 1)
		fprintf(stderr, "# vm: %s: %s repeat %d: %s\n", kr->k.label, c->name, repeat,
			verdict);
	vm_forward(kr, ev);
}

/* ---- reading the streams ---- */

/* Reads what was appended since *off; everything when all, else at most READ_CHUNK. */
static void drain(int fd, off_t *off, bool all, void (*feed)(void *, const void *, size_t),
		  void *arg)
{
	static const size_t bufsz = 65536;
	char *buf = malloc(bufsz);
	size_t total = 0;

	if (!buf)
		return;
	while (all || total < READ_CHUNK) {
		ssize_t n = pread(fd, buf, bufsz, *off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*off += n;
		total += (size_t)n;
		feed(arg, buf, (size_t)n);
	}
	free(buf);
}

static void feed_events(void *arg, const void *data, size_t len)
{
	struct ms_boot *b = arg;

	ms_vmstream_feed(&b->stream, data, len);
}

static void feed_console(void *arg, const void *data, size_t len)
{
	struct ms_boot *b = arg;
	bool had = b->con->hit;

	ms_vmcon_feed(b->con, data, len);
	if (!had && b->con->hit)
		b->hit_ns = ms_now_ns();
}

static void boot_drain(struct ms_boot *b, bool all)
{
	drain(b->kr->ev_fd, &b->kr->ev_off, all, feed_events, b);
	drain(b->kr->con_fd, &b->kr->con_off, all, feed_console, b);
}

/* First line of what QEMU printed in this boot (for error messages). */
static void qemu_said(struct ms_boot *b, char *out, size_t len)
{
	char buf[4096];
	ssize_t n = pread(b->kr->qlog_fd, buf, sizeof(buf) - 1, b->kr->qlog_off);
	char *nl;

	out[0] = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	ms_vm_printable(out, len, buf, nl ? (size_t)(nl - buf) : (size_t)n);
}

static bool kvm_failed(struct ms_boot *b)
{
	static const char needle[] = "KVM internal error";
	char buf[65536];
	ssize_t n;

	if (!b->vm->kvm || b->nevents)
		return false;
	n = pread(b->kr->qlog_fd, buf, sizeof(buf), b->kr->qlog_off);
	return n > 0 && memmem(buf, (size_t)n, needle, sizeof(needle) - 1);
}

static uint64_t boot_deadline(const struct ms_boot *b)
{
	const struct ms_vm_opts *o = b->vm->o;
	const struct ms_case *c = boot_case(b, b->open_index);
	uint64_t d;

	if (!b->nevents)
		return b->start_ns + (uint64_t)o->boot_timeout_ns;
	d = b->last_event_ns + (uint64_t)o->margin_ns + (c ? (uint64_t)c->timeout_ns : 0);
	/* A panic that left the guest up (panic=0, halted) need not wait out the case timeout. */
	if (b->con->hit && b->hit_ns > b->last_event_ns &&
	    b->hit_ns + (uint64_t)o->crash_grace_ns < d)
		d = b->hit_ns + (uint64_t)o->crash_grace_ns;
	return d;
}

static void describe_exit(struct ms_boot *b)
{
	char said[256];
	int st = b->q.status;

	qemu_said(b, said, sizeof(said));
	if (WIFEXITED(st))
		snprintf(b->why, sizeof(b->why), "QEMU exited with status %d%s%s",
			 WEXITSTATUS(st), said[0] ? ": " : "", said);
	else
		snprintf(b->why, sizeof(b->why), "QEMU killed by signal %d%s%s", WTERMSIG(st),
			 said[0] ? ": " : "", said);
}

static enum ms_boot_end boot_exited(struct ms_boot *b)
{
	describe_exit(b);
	if (b->run_end)
		return MS_BOOT_DONE;
	if (!b->nevents && WIFEXITED(b->q.status) && WEXITSTATUS(b->q.status) == 127)
		return MS_BOOT_NOSTART;
	/*
	 * QEMU itself failing under KVM (an assertion, an error exit) before the guest said
	 * anything is KVM's doing; a clean exit is a guest that reset, as after a panic.
	 */
	if (b->vm->kvm && !b->nevents &&
	    (!WIFEXITED(b->q.status) || WEXITSTATUS(b->q.status)))
		return MS_BOOT_KVM_FAILED;
	return MS_BOOT_DIED;
}

static bool boot_signalled(struct ms_boot *b)
{
	struct pollfd p = { .fd = b->vm->sigfd, .events = POLLIN };
	struct signalfd_siginfo si;

	if (poll(&p, 1, POLL_MS) <= 0 || !(p.revents & POLLIN))
		return false;
	if (read(b->vm->sigfd, &si, sizeof(si)) != sizeof(si))
		return false;
	b->vm->interrupted = (int)si.ssi_signo;
	return true;
}

static enum ms_boot_end boot_watch(struct ms_boot *b)
{
	uint64_t run_end_ns = 0;

	for (;;) {
		bool exited;

		if (boot_signalled(b))
			return MS_BOOT_INTERRUPTED;
		/* Exit first, then read: all QEMU wrote before it exited is in the files. */
		exited = ms_qemu_poll(&b->q);
		boot_drain(b, exited);
		if (exited)
			return boot_exited(b);
		if (kvm_failed(b)) {
			qemu_said(b, b->why, sizeof(b->why));
			return MS_BOOT_KVM_FAILED;
		}
		if (b->run_end) {
			if (!run_end_ns)
				run_end_ns = ms_now_ns();
			if (ms_now_ns() - run_end_ns > POWEROFF_GRACE_NS) {
				snprintf(b->why, sizeof(b->why), "the guest did not power off");
				return MS_BOOT_DONE;
			}
			continue;
		}
		if (ms_now_ns() > boot_deadline(b)) {
			snprintf(b->why, sizeof(b->why), b->nevents ? "no progress" :
				 "no event within the boot timeout of %.0f s",
				 b->vm->o->boot_timeout_ns / 1e9);
			return MS_BOOT_HUNG;
		}
	}
}

static int boot_cmdline(struct ms_boot *b, char *buf, size_t len)
{
	const struct ms_vm_opts *o = b->vm->o;
	char repeat[40] = "";
	int n;

	if (b->round >= 0)
		snprintf(repeat, sizeof(repeat), " mmstorm.repeat=%d", b->round);
	n = snprintf(buf, len, "console=ttyS0 printk.time=1 mmstorm.resume=%u%s panic=-1%s%s%s%s",
		     b->resume, repeat, b->vm->suite->vm_append[0] ? " " : "",
		     b->vm->suite->vm_append, o->append[0] ? " " : "", o->append);
	return n < 0 || (size_t)n >= len ? -E2BIG : 0;
}

static int boot_start(struct ms_boot *b)
{
	const struct ms_vm_opts *o = b->vm->o;
	struct ms_vm_kernel_run *kr = b->kr;
	char cmdline[CMDLINE_MAX];
	struct ms_qemu_spec spec = {
		.qemu = o->qemu, .kernel = kr->k.image, .initrd = kr->initrd,
		.cmdline = cmdline, .console_path = kr->console, .events_path = kr->events,
		.stderr_path = kr->qemu_log, .kvm = b->vm->kvm, .mem_bytes = o->mem_bytes,
		.smp = o->smp, .extra = o->qemu_args,
	};
	int ret;

	ret = boot_cmdline(b, cmdline, sizeof(cmdline));
	if (ret) {
		snprintf(b->why, sizeof(b->why), "kernel command line longer than %d bytes",
			 CMDLINE_MAX - 1);
		return ret;
	}
	ret = ms_qemu_start(&b->q, &spec);
	if (ret) {
		snprintf(b->why, sizeof(b->why), "cannot start QEMU: %s", strerror(-ret));
		return ret;
	}
	free(kr->qemu_cmd);
	kr->qemu_cmd = ms_qemu_cmdline_str(&b->q);
	return 0;
}

int ms_boot_run(struct ms_boot *b)
{
	enum ms_boot_end end;
	off_t qlog_end;

	b->open_index = -1;
	b->last_ended = -1;
	b->q.pid = -1;
	b->con = calloc(1, sizeof(*b->con));
	if (!b->con || ms_vmstream_init(&b->stream, boot_event, boot_bad, b)) {
		free(b->con);
		b->con = NULL;
		snprintf(b->why, sizeof(b->why), "out of memory");
		return MS_BOOT_NOSTART;
	}
	ms_vmcon_init(b->con);
	if (boot_start(b))
		return MS_BOOT_NOSTART;
	b->start_ns = ms_now_ns();
	end = boot_watch(b);
	ms_qemu_kill(&b->q);
	boot_drain(b, true);
	ms_vmstream_finish(&b->stream);
	if (b->nbad_reported > MAX_BAD_REPORTED)
		ms_vm_log(b->vm, b->kr, true, "guest event stream, boot %u: %u bad lines skipped",
			  b->number, b->nbad_reported);
	qlog_end = lseek(b->kr->qlog_fd, 0, SEEK_END);
	if (qlog_end > 0)
		b->kr->qlog_off = qlog_end;
	return end;
}

void ms_boot_free(struct ms_boot *b)
{
	ms_qemu_kill(&b->q);
	ms_qemu_free(&b->q);
	ms_vmstream_free(&b->stream);
	free(b->con);
	b->con = NULL;
}

/* Internals of `mmstorm vm`: initramfs, guest streams, console watch, QEMU, kernels, boots. */
#ifndef MMSTORM_VM_INTERNAL_H
#define MMSTORM_VM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "mmstorm/result.h"
#include "mmstorm/suite.h"

/* ---- cpio newc writer (cpio.c) ---- */
struct ms_cpio;

int ms_cpio_open(struct ms_cpio **cp, const char *path, bool gzip);
int ms_cpio_dir(struct ms_cpio *c, const char *name, unsigned perm);
int ms_cpio_node(struct ms_cpio *c, const char *name, unsigned mode, unsigned major,
		 unsigned minor);
int ms_cpio_file(struct ms_cpio *c, const char *name, unsigned perm, const void *data,
		 size_t len);
int ms_cpio_file_from(struct ms_cpio *c, const char *name, unsigned perm, const char *src);
/* Writes the trailer and closes; frees c whatever happens. 0 or the first -errno. */
int ms_cpio_close(struct ms_cpio *c);

/*
 * The guest's initramfs: /init = agent, /suite.ini, /manifest.json, the directories the
 * agent mounts on, and /dev/console so init has a console before devtmpfs is mounted.
 */
int ms_vm_initramfs(const char *path, const char *agent, const char *suite,
		    const json_t *manifest, bool gzip);

/* ---- guest event stream (stream.c): untrusted bytes -> validated events ---- */
/*
 * A line is one event. Histograms travel as sparse bucket lists, so a case_end of the default
 * suite under TCG already measures 68 KB, and eight full histograms would be a few MB: the
 * limit bounds the host's memory, not what an honest agent sends.
 */
#define MS_VMSTREAM_LINE_MAX (8 << 20)

struct ms_vmstream {
	char *buf;		/* current partial line; grows up to MS_VMSTREAM_LINE_MAX */
	size_t len, cap;
	bool dropping;		/* current line overflowed: discard up to the next newline */
	unsigned long lineno;	/* lines seen (valid or not) */
	unsigned long nevents;
	unsigned long nbad;
	/* a valid event; the callback owns the reference */
	void (*on_event)(void *arg, json_t *ev);
	/* a rejected line: why, and a printable excerpt of its start */
	void (*on_bad)(void *arg, unsigned long lineno, const char *why, const char *excerpt);
	void *arg;
};

int ms_vmstream_init(struct ms_vmstream *s, void (*on_event)(void *, json_t *),
		     void (*on_bad)(void *, unsigned long, const char *, const char *),
		     void *arg);
void ms_vmstream_feed(struct ms_vmstream *s, const void *data, size_t len);
/* End of the stream: a line without its newline is reported as truncated. */
void ms_vmstream_finish(struct ms_vmstream *s);
void ms_vmstream_free(struct ms_vmstream *s);
/* Printable ASCII copy of untrusted bytes (\xNN escapes), cut to fit dst. */
void ms_vm_printable(char *dst, size_t dstlen, const char *src, size_t len);

/* ---- kernel console watch (console.c) ---- */
#define MS_VMCON_LINE_MAX 512
#define MS_VMCON_RING 64	/* lines kept before a hit, and the tail when there is none */
#define MS_VMCON_BEFORE 12	/* lines before the first crash line in its excerpt */
#define MS_VMCON_EXCERPT 80	/* lines in a crash excerpt */

struct ms_vmcon {
	char partial[MS_VMCON_LINE_MAX];
	size_t plen;
	char ring[MS_VMCON_RING][MS_VMCON_LINE_MAX];
	unsigned long total;	/* complete lines seen */
	/* first crash-class line since the last mark, with the lines around it */
	bool hit;
	char first[MS_VMCON_LINE_MAX];
	const char *pattern;
	char excerpt[MS_VMCON_EXCERPT][MS_VMCON_LINE_MAX];
	unsigned nexcerpt;
};

void ms_vmcon_init(struct ms_vmcon *c);
void ms_vmcon_feed(struct ms_vmcon *c, const void *data, size_t len);
/* Forget hits before now (a new case starts, or a new boot). */
void ms_vmcon_mark(struct ms_vmcon *c);
/* Lines around the first hit since the mark, or the last lines: a new JSON array of strings. */
json_t *ms_vmcon_excerpt(struct ms_vmcon *c);

/* ---- accelerator (kvm.c) ---- */
/* Runs a one-instruction guest (HLT) through /dev/kvm. 1 usable, 0 not (why says). */
int ms_kvm_usable(char *why, size_t len);

/* ---- QEMU process (qemu.c) ---- */
#define MS_QEMU_MAX_ARGS 128

struct ms_qemu_spec {
	const char *qemu;		/* binary (default qemu-system-x86_64) */
	const char *kernel;		/* bzImage */
	const char *initrd;
	const char *cmdline;
	const char *console_path;	/* ttyS0, appended */
	const char *events_path;	/* ttyS1, appended */
	const char *stderr_path;	/* QEMU's own messages, appended */
	bool kvm;
	int64_t mem_bytes;
	int smp;
	const char *const *extra;	/* --qemu-arg words, NULL-terminated (may be NULL) */
};

struct ms_qemu {
	pid_t pid;
	int status;			/* wait status once exited */
	bool exited;
	char *argv[MS_QEMU_MAX_ARGS];
	int argc;
};

/* Build the argument vector (also used to record the command line). */
int ms_qemu_argv(struct ms_qemu *q, const struct ms_qemu_spec *spec);
/* Start it: dies with this thread (PR_SET_PDEATHSIG) and in its own process group. */
int ms_qemu_start(struct ms_qemu *q, const struct ms_qemu_spec *spec);
/* Non-blocking: true once QEMU has exited (status filled in). */
bool ms_qemu_poll(struct ms_qemu *q);
/* SIGKILL and reap. */
void ms_qemu_kill(struct ms_qemu *q);
void ms_qemu_free(struct ms_qemu *q);
/* "qemu-system-x86_64 -kernel ..." with shell quoting, malloc'd. */
char *ms_qemu_cmdline_str(const struct ms_qemu *q);

/* ---- kernel inputs (kernel.c) ---- */
struct ms_vm_kernel {
	char input[4096];	/* what the user gave */
	char kind[16];		/* "bzimage", "deb", "builddir" */
	char label[64];		/* short unique name: file names and reports */
	char image[4096];	/* bootable image */
	char config[4096];	/* kernel .config, "" if none found */
	char config_source[32];	/* "builddir", "deb", "file", "guest", "none" */
	char tmpdir[4096];	/* unpacked .deb, removed by ms_vm_kernel_cleanup */
};

/* Recognise and, for a .deb, unpack (dpkg-deb -x) into workdir. Error text into err. */
int ms_vm_kernel_resolve(struct ms_vm_kernel *k, const char *input, const char *workdir,
			 char *err, size_t errlen);
void ms_vm_kernel_cleanup(struct ms_vm_kernel *k);
/* Remove a directory tree (no symlink following). 0 or -errno. */
int ms_vm_rmtree(const char *path);

/* ---- one `mmstorm vm` command (vm.c) and its boots (boot.c) ---- */
#define MS_VM_MAX_KERNELS 16
#define MS_VM_MAX_QEMU_ARGS 64

enum ms_vm_accel { MS_VM_ACCEL_AUTO, MS_VM_ACCEL_KVM, MS_VM_ACCEL_TCG };

struct ms_vm_opts {
	const char *kernels[MS_VM_MAX_KERNELS];
	unsigned nkernels;
	char suite[4096];
	const char *results;
	const char *run_id;
	int64_t mem_bytes;		/* 0: suite's vm_mem, else 2G */
	int smp;			/* 0: suite's vm_smp, else 2 */
	char append[1024];
	const char *qemu_args[MS_VM_MAX_QEMU_ARGS + 1];
	unsigned nqemu_args;
	enum ms_vm_accel accel;
	const char *qemu;
	const char *agent;
	int64_t boot_timeout_ns;	/* QEMU start to the first event */
	int64_t margin_ns;		/* added to a case's timeout before the guest is hung */
	int64_t crash_grace_ns;		/* after a panic line, with no event since */
	bool plain_initrd;
	bool verbose;
	int argc;			/* the host command, for run.json */
	char **argv;
};

/* What `mmstorm bench --vm` reads back, per kernel. */
struct ms_vm_stats {
	char label[64];
	int64_t first_boot_to_run_start_ns;	/* -1 if never */
	int64_t first_boot_to_case_end_ns;	/* QEMU start to the first result, -1 if never */
	unsigned boots;
	unsigned case_ends;
	uint64_t first_result_at_ns;		/* ms_now_ns() of the first and last case_end */
	uint64_t last_result_at_ns;
	int64_t host_cpu_ns;			/* mmstorm's own CPU time watching this kernel */
	int64_t wall_ns;			/* QEMU running, all boots */
};

struct ms_vm_kernel_run {
	struct ms_vm_kernel k;
	char dir[4096];			/* results/ID/LABEL */
	char initrd[4200];
	char console[4200];
	char events[4200];
	char qemu_log[4200];
	char *qemu_cmd;			/* of the latest boot, for run.json */
	off_t con_off, ev_off, qlog_off;	/* read so far (the files grow across boots) */
	int con_fd, ev_fd, qlog_fd;
	struct ms_out *out;
	FILE *ktap;			/* owned when not stdout */
	bool started;			/* the run_start went into out */
	json_t *pending;		/* log events waiting for the run_start */
	bool failed;			/* infrastructure error: no further rounds */
	char status[256];		/* run.json status when it ends */
	struct ms_vm_stats stats;
};

struct ms_vm {
	struct ms_vm_opts *o;
	struct ms_suite *suite;
	unsigned rounds;		/* 1, or the largest repeat when kernels alternate */
	uint64_t t0_ns;
	int sigfd;
	int interrupted;		/* signal number */
	bool kvm;			/* current accelerator choice */
	char accel_reason[512];
	char dir[4096];			/* results/ID */
	char agent[4096];
	char workdir[4096];		/* unpacked packages */
	struct ms_vm_kernel_run kr[MS_VM_MAX_KERNELS];
	unsigned nkr;
};

void ms_vm_opts_init(struct ms_vm_opts *o, int argc, char **argv);
/* 0, 1 after --help (printed), -EINVAL after a usage message. */
int ms_vm_parse(struct ms_vm_opts *o, int argc, char **argv);
/* The whole command: an exit status; stats (one per kernel, may be NULL) for bench --vm. */
int ms_vm_main(struct ms_vm_opts *o, struct ms_vm_stats *stats);

enum ms_boot_end {
	MS_BOOT_DONE,		/* run_end received (QEMU stopped or was stopped) */
	MS_BOOT_DIED,		/* QEMU exited without run_end */
	MS_BOOT_HUNG,		/* no progress within the deadline: QEMU killed */
	MS_BOOT_KVM_FAILED,	/* KVM could not run this guest: retry under TCG */
	MS_BOOT_INTERRUPTED,	/* SIGINT/SIGTERM on the host */
	MS_BOOT_NOSTART,	/* QEMU could not be started */
};

struct ms_boot {
	struct ms_vm *vm;
	struct ms_vm_kernel_run *kr;
	unsigned resume;
	int round;			/* -1: every repeat in this boot */
	unsigned number;		/* boots of this kernel so far, this one included */
	struct ms_qemu q;
	struct ms_vmstream stream;
	struct ms_vmcon *con;
	uint64_t start_ns, last_event_ns, hit_ns, open_since_ns;
	unsigned nevents;
	unsigned nbad_reported;
	bool run_end;
	bool case_started;		/* a case_start came in this boot */
	int last_ended;			/* highest index with a case_end this boot, -1 */
	int open_index, open_repeat;	/* from case_start, -1 */
	char why[512];			/* for DIED/HUNG/KVM_FAILED/NOSTART */
};

int ms_boot_run(struct ms_boot *b);
void ms_boot_free(struct ms_boot *b);
/* Host-side facts into a run_start: accelerator, QEMU command, kernel input and config. */
void ms_vm_add_env(struct ms_vm *vm, struct ms_vm_kernel_run *kr, json_t *ev);
/* For a boot that ended DIED/HUNG/INTERRUPTED with a case open: its CRASH/TIMEOUT/ERROR end. */
void ms_boot_close_case(struct ms_boot *b, enum ms_boot_end end);
/* A host-side "log" event into the kernel's run (held back until its run_start). */
void ms_vm_log(struct ms_vm *vm, struct ms_vm_kernel_run *kr, bool problem, const char *fmt,
	       ...) __attribute__((format(printf, 4, 5)));
uint64_t ms_vm_t_ns(const struct ms_vm *vm);

#endif

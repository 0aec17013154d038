/* The QEMU process: argument vector, start (tied to our life), poll, kill. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/vm.h"

static int qemu_add(struct ms_qemu *q, const char *word)
{
	if (q->argc >= MS_QEMU_MAX_ARGS - 1)
		return -E2BIG;
	q->argv[q->argc] = strdup(word);
	if (!q->argv[q->argc])
		return -ENOMEM;
	q->argv[++q->argc] = NULL;
	return 0;
}

static int qemu_addf(struct ms_qemu *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int qemu_addf(struct ms_qemu *q, const char *fmt, ...)
{
	char *s;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	ret = qemu_add(q, s);
	free(s);
	return ret;
}

/* QEMU option values are comma-separated: a comma in a path is written twice. */
static char *qemu_escape(const char *s)
{
	char *out = malloc(strlen(s) * 2 + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		*o++ = *s;
		if (*s == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

/* Appended, never truncated: the host reads each boot's bytes from where the last one ended. */
static int qemu_chardev(struct ms_qemu *q, const char *id, const char *path)
{
	char *esc = qemu_escape(path);
	int ret;

	if (!esc)
		return -ENOMEM;
	ret = qemu_addf(q, "file,id=%s,path=%s,append=on", id, esc);
	free(esc);
	if (!ret)
		ret = qemu_add(q, "-serial");
	if (!ret)
		ret = qemu_addf(q, "chardev:%s", id);
	return ret;
}

int ms_qemu_argv(struct ms_qemu *q, const struct ms_qemu_spec *spec)
{
	/* No default devices: exactly two serial ports and the PCI BARs pfnmap cases map. */
	static const char *const fixed[] = {
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
		"-device", "VGA",
		"-object", "memory-backend-ram,id=ms-bar,size=16M",
		"-device", "ivshmem-plain,memdev=ms-bar", NULL,
	};
	int ret = 0;

	memset(q, 0, sizeof(*q));
	q->pid = -1;
	ret = qemu_add(q, spec->qemu ? spec->qemu : "qemu-system-x86_64");
	for (unsigned i = 0; fixed[i] && !ret; i++)
		ret = qemu_add(q, fixed[i]);
	if (!ret)
		ret = qemu_addf(q, "-accel");
	/*
	 * One TCG thread for all vCPUs: with multi-threaded TCG we saw guests die of "Oops: int3"
	 * at static-key sites being patched (text_poke_bp) on 6.12 and the debug bzImage, a false
	 * CRASH that is not the kernel's fault.
	 */
	if (!ret)
		ret = qemu_add(q, spec->kvm ? "kvm" : "tcg,thread=single");
	if (!ret)
		ret = qemu_add(q, "-cpu");
	if (!ret)
		ret = qemu_add(q, spec->kvm ? "host" : "max");
	if (!ret)
		ret = qemu_add(q, "-m");
	if (!ret)
		ret = qemu_addf(q, "%lldM", (long long)(spec->mem_bytes >> 20));
	if (!ret)
		ret = qemu_add(q, "-smp");
	if (!ret)
		ret = qemu_addf(q, "%d", spec->smp);
	if (!ret)
		ret = qemu_add(q, "-kernel");
	if (!ret)
		ret = qemu_add(q, spec->kernel);
	if (!ret)
		ret = qemu_add(q, "-initrd");
	if (!ret)
		ret = qemu_add(q, spec->initrd);
	if (!ret)
		ret = qemu_add(q, "-append");
	if (!ret)
		ret = qemu_add(q, spec->cmdline);
	if (!ret)
		ret = qemu_add(q, "-chardev");
	if (!ret)
		ret = qemu_chardev(q, "ms-con", spec->console_path);
	if (!ret)
		ret = qemu_add(q, "-chardev");
	if (!ret)
		ret = qemu_chardev(q, "ms-ev", spec->events_path);
	for (unsigned i = 0; spec->extra && spec->extra[i] && !ret; i++)
		ret = qemu_add(q, spec->extra[i]);
	if (ret)
		ms_qemu_free(q);
	return ret;
}

void ms_qemu_free(struct ms_qemu *q)
{
	for (int i = 0; i < q->argc; i++)
		free(q->argv[i]);
	q->argc = 0;
	q->argv[0] = NULL;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void qemu_child(struct ms_qemu *q, const struct ms_qemu_spec *spec, pid_t parent)
{
	sigset_t none;
	int fd;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	/* Own process group: a ^C on the terminal is for mmstorm, which then stops QEMU. */
	if (setpgid(0, 0) < 0)
		_exit(127);
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		_exit(127);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		_exit(127);
	fd = open(spec->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
		_exit(127);
	closefrom(3);
	execvp(q->argv[0], q->argv);
	_exit(127);
}

int ms_qemu_start(struct ms_qemu *q, const struct ms_qemu_spec *spec)
{
	pid_t parent = getpid();
	int ret;

	ret = ms_qemu_argv(q, spec);
	if (ret)
		return ret;
	fflush(NULL);
	q->pid = fork();
	if (q->pid < 0) {
		ret = -errno;
		ms_qemu_free(q);
		return ret;
	}
	if (q->pid == 0)
		qemu_child(q, spec, parent);
	return 0;
}

bool ms_qemu_poll(struct ms_qemu *q)
{
	pid_t r;

	if (q->exited || q->pid <= 0)
		return true;
	r = waitpid(q->pid, &q->status, WNOHANG);
	if (r == q->pid || (r < 0 && errno == ECHILD)) {
		q->exited = true;
		return true;
	}
	return false;
}

void ms_qemu_kill(struct ms_qemu *q)
{
	if (q->exited || q->pid <= 0)
		return;
	if (kill(q->pid, SIGKILL) < 0 && errno != ESRCH)
		return;
	while (waitpid(q->pid, &q->status, 0) < 0) {
		if (errno != EINTR)
			break;
	}
	q->exited = true;
}

static const char shell_plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789-_=.,:/+@%";

/* Shell-quoted, so the recorded command can be pasted to reproduce a boot by hand. */
char *ms_qemu_cmdline_str(const struct ms_qemu *q)
{
	size_t len = 1;
	char *out, *o;

	for (int i = 0; i < q->argc; i++)
		len += strlen(q->argv[i]) * 4 + 3;
	out = malloc(len);
	if (!out)
		return NULL;
	o = out;
	for (int i = 0; i < q->argc; i++) {
		const char *a = q->argv[i];
		bool plain = *a && !a[strspn(a, shell_plain)];

		if (i)
			*o++ = ' ';
		if (plain) {
			o = stpcpy(o, a);
			continue;
		}
		*o++ = '\'';
		for (; *a; a++) {
			if (*a == '\'')
				o = stpcpy(o, "'\\''");
			else
				*o++ = *a;
		}
		*o++ = '\'';
	}
	*o = '\0';
	return out;
}

/* Is KVM usable here? A one-instruction guest says more than the presence of /dev/kvm. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vm/vm.h"

enum {
	PROBE_OK = 0,
	PROBE_OPEN = 10, PROBE_API, PROBE_VM, PROBE_MEM, PROBE_VCPU, PROBE_RUNMAP,
	PROBE_REGS, PROBE_RUN, PROBE_EXIT,
};

static const char *const probe_msgs[] = {
	[PROBE_OPEN] = "cannot open /dev/kvm",
	[PROBE_API] = "unexpected KVM API version",
	[PROBE_VM] = "KVM_CREATE_VM failed",
	[PROBE_MEM] = "KVM_SET_USER_MEMORY_REGION failed",
	[PROBE_VCPU] = "KVM_CREATE_VCPU failed",
	[PROBE_RUNMAP] = "cannot map the vcpu run area",
	[PROBE_REGS] = "cannot set vcpu registers",
	[PROBE_RUN] = "KVM_RUN failed",
	[PROBE_EXIT] = "the test guest did not exit on HLT (nested virtualization broken?)",
};

static int probe_regs(int vcpu)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return -1;
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rflags = 2;
	return ioctl(vcpu, KVM_SET_REGS, &regs);
}

/* Runs in a child, so a wedged KVM_RUN cannot hang the host: the parent kills it. */
static int probe_child(void)
{
	struct kvm_userspace_memory_region region = { .memory_size = 4096 };
	struct kvm_run *run;
	int kvm, vm, vcpu, mmap_size;
	unsigned char *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return PROBE_OPEN;
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return PROBE_API;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return PROBE_VM;
	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return PROBE_MEM;
	mem[0] = 0xf4;	/* hlt */
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return PROBE_MEM;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return PROBE_VCPU;
	mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size <= 0)
		return PROBE_RUNMAP;
	run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return PROBE_RUNMAP;
	if (probe_regs(vcpu) < 0)
		return PROBE_REGS;
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return PROBE_RUN;
	return run->exit_reason == KVM_EXIT_HLT ? PROBE_OK : PROBE_EXIT;
}

static int probe_wait(pid_t pid, int *status)
{
	for (int i = 0; i < 100; i++) {	/* 5 s */
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return -ETIMEDOUT;
}

int ms_kvm_usable(char *why, size_t len)
{
	int status = 0, ret, code;
	pid_t pid;

	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return 0;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		return 0;
	}
	if (pid == 0)
		_exit(probe_child());
	ret = probe_wait(pid, &status);
	if (ret) {
		snprintf(why, len, "KVM probe: %s", ret == -ETIMEDOUT ?
			 "the test guest did not stop within 5 s" : strerror(-ret));
		return 0;
	}
	if (!WIFEXITED(status)) {
		snprintf(why, len, "KVM probe died (signal %d)", WTERMSIG(status));
		return 0;
	}
	code = WEXITSTATUS(status);
	if (code == PROBE_OK) {
		snprintf(why, len, "KVM ran a test guest to HLT");
		return 1;
	}
	snprintf(why, len, "KVM probe: %s", code < (int)(sizeof(probe_msgs) /
		 sizeof(probe_msgs[0])) && probe_msgs[code] ? probe_msgs[code] : "failed");
	return 0;
}

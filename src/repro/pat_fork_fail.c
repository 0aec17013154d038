/* Trigger for dc84bc2aba85: VM_PAT handling when fork() fails in copy_page_range(). */
/*
 * With a shared /dev/mem mapping (VM_PFNMAP, PAT-tracked) followed by many anonymous VMAs,
 * fork() is made to fail at its 1st, 2nd, ... allocation (/proc/thread-self/fail-nth) until
 * one fork succeeds untouched. When dup_mmap() failed after track_pfn_copy(), the half-built
 * child mm was torn down with a VMA whose PAT state was not set up, and untrack_pfn() warned
 * (get_pat_info) or freed a reservation it did not own.
 * Evidence: such a warning in the kernel log, or memtype list entries left over.
 * Needs fault injection: CONFIG_FAULT_INJECTION (fail-nth), FAILSLAB / FAIL_PAGE_ALLOC with
 * ignore-gfp-wait=N in debugfs (mmstorm sets it through the case's knobs=).
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "repro_lib.h"

#define MAX_NTH		3000
#define NVMAS		64

static int set_nth(int nth_fd, int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	return pwrite(nth_fd, buf, (size_t)len, 0) == len ? 0 : -1;
}

static int get_nth(int nth_fd)
{
	char buf[16] = "";

	if (pread(nth_fd, buf, sizeof(buf) - 1, 0) < 0)
		return -1;
	return atoi(buf);
}

int main(void)
{
	static const char *const pats[] = { "get_pat_info", "untrack_pfn", "track_pfn",
					    "freeing invalid memtype", "WARNING:", NULL };
	long psz = sysconf(_SC_PAGESIZE), before, after;
	int fd, kfd, nth_fd, n, failed = 0, ret;
	char log[512], *p;

	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (nth_fd < 0)
		return repro_skip("/proc/thread-self/fail-nth: %s (needs CONFIG_FAULT_INJECTION)",
				  strerror(errno));
	fd = open("/dev/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return repro_skip("/dev/mem: %s (needs CONFIG_DEVMEM)", strerror(errno));
	p = mmap(NULL, (size_t)psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return repro_skip("mapping /dev/mem at offset 0: %s", strerror(errno));
	(void)*(volatile char *)p;
	/* VMAs after the pfnmap one, alternating protections so they do not merge */
	for (int i = 0; i < NVMAS; i++) {
		char *a = mmap(NULL, (size_t)psz, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (a != MAP_FAILED && i % 2 == 0)
			a[0] = 1;
	}
	kfd = repro_kmsg_open();
	before = repro_memtype_count();
	for (n = 1; n <= MAX_NTH; n++) {
		pid_t pid;
		int left;

		if (set_nth(nth_fd, n))
			return repro_error("writing fail-nth: %s", strerror(errno));
		pid = fork();
		left = get_nth(nth_fd);
		set_nth(nth_fd, 0);
		if (pid == 0)
			_exit(0);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		else
			failed++;
		if (pid > 0 && left > 0)
			break;	/* fork needed fewer than n allocations: every point was tried */
	}
	usleep(100000);
	after = repro_memtype_count();
	if (repro_kmsg_find(kfd, pats, log, sizeof(log)) > 0)
		ret = repro_found("%s (fork failed %d times)", log, failed);
	else if (before >= 0 && after > before)
		ret = repro_found("PAT memtype list grew from %ld to %ld entries over %d failed "
				  "forks", before, after, failed);
	else if (!failed)
		ret = repro_skip("no fork failed with fail-nth 1..%d: allocation failures "
				 "are not injected (ignore-gfp-wait=N for failslab and "
				 "fail_page_alloc?)", n - 1);
	else
		ret = repro_not("fork of a /dev/mem mapping failed at each of %d allocation "
				"points: no PAT warning, memtype list %ld -> %ld", failed, before,
				after);
	close(fd);
	if (kfd >= 0)
		close(kfd);
	close(nth_fd);
	return ret;
}

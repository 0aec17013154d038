/* Trigger for R/O long-term pins of pages shared after fork (a7f226604170). */
/*
 * Fault a page in, fork (the page is now shared with the child), take a read-only long-term
 * pin on it in the parent through gup_test (PIN_LONGTERM_TEST_START, as selftests/mm/cow.c
 * does), then write it in the parent. Since "mm/gup: trigger FAULT_FLAG_UNSHARE when
 * R/O-pinning a possibly shared anonymous page" the pin unshares the page first, so the
 * write lands in the pinned page. Before, the write COWed away from the pinned page.
 * Evidence: the bytes read through the pin differ from the parent's memory.
 */
#include <linux/types.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "repro_lib.h"

/* From the kernel's mm/gup_test.h (CONFIG_GUP_TEST). */
#define PIN_LONGTERM_TEST_START		_IOW('g', 7, struct pin_longterm_test)
#define PIN_LONGTERM_TEST_STOP		_IO('g', 8)
#define PIN_LONGTERM_TEST_READ		_IOW('g', 9, __u64)
#define PIN_LONGTERM_TEST_FLAG_USE_FAST	2

struct pin_longterm_test {
	__u64 addr;
	__u64 size;
	__u32 flags;
};

int main(void)
{
	long psz = sysconf(_SC_PAGESIZE);
	struct pin_longterm_test args = { .size = (__u64)psz, .flags = 0 };
	int gup, sync[2], ret, status;
	char *mem, *seen, c;
	__u64 to;
	pid_t pid;

	gup = open("/sys/kernel/debug/gup_test", O_RDWR | O_CLOEXEC);
	if (gup < 0)
		return repro_skip("/sys/kernel/debug/gup_test: %s (needs CONFIG_GUP_TEST and "
				  "debugfs)", strerror(errno));
	mem = mmap(NULL, (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	seen = malloc((size_t)psz);
	if (mem == MAP_FAILED || !seen || pipe(sync))
		return repro_error("mmap/malloc/pipe: %s", strerror(errno));
	memset(mem, 'A', (size_t)psz);
	pid = fork();
	if (pid < 0)
		return repro_error("fork: %s", strerror(errno));
	if (pid == 0) {	/* keeps the page shared until the parent is done */
		close(sync[1]);
		_exit(read(sync[0], &c, 1) < 0);
	}
	close(sync[0]);
	args.addr = (__u64)(uintptr_t)mem;
	if (ioctl(gup, PIN_LONGTERM_TEST_START, &args)) {
		ret = repro_skip("PIN_LONGTERM_TEST_START: %s (gup_test without long-term pin "
				 "tests)", strerror(errno));
		goto out_child;
	}
	memset(mem, 'B', (size_t)psz);
	to = (__u64)(uintptr_t)seen;
	if (ioctl(gup, PIN_LONGTERM_TEST_READ, &to)) {
		ret = repro_error("PIN_LONGTERM_TEST_READ: %s", strerror(errno));
	} else if (memcmp(seen, mem, (size_t)psz)) {
		ret = repro_found("the R/O long-term pin of a page shared after fork reads '%c' "
				  "where the parent wrote '%c': the pin was left on the old page",
				  seen[0], mem[0]);
	} else {
		ret = repro_not("R/O pin taken on a page shared with a child; the parent's write "
				"is visible through the pin");
	}
	ioctl(gup, PIN_LONGTERM_TEST_STOP);
out_child:
	close(sync[1]);
	waitpid(pid, &status, 0);
	close(gup);
	return ret;
}

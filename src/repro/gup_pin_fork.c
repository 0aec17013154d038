/* Trigger for pinned pages across fork(): a R/W long-term pin must stay with the parent's page. */
/*
 * Take a writable long-term pin (FOLL_LONGTERM, as RDMA or io_uring fixed buffers do) of an
 * anonymous page through gup_test, fork, and write the page in the parent while the child
 * lives. Since "mm: Do early cow for pinned pages during fork() for ptes" fork() copies a
 * pinned page for the child at once, so the parent keeps the pinned page. Before, the
 * parent's write COWed away from the page the pin (the "device") still uses.
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
#define PIN_LONGTERM_TEST_FLAG_USE_WRITE 1

struct pin_longterm_test {
	__u64 addr;
	__u64 size;
	__u32 flags;
};

int main(void)
{
	long psz = sysconf(_SC_PAGESIZE);
	struct pin_longterm_test args = { .size = (__u64)psz,
					  .flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE };
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
	args.addr = (__u64)(uintptr_t)mem;
	if (ioctl(gup, PIN_LONGTERM_TEST_START, &args)) {
		close(gup);
		return repro_skip("PIN_LONGTERM_TEST_START: %s (gup_test without long-term pin "
				  "tests)", strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		ret = repro_error("fork: %s", strerror(errno));
		goto out_pin;
	}
	if (pid == 0) {
		close(sync[1]);
		_exit(read(sync[0], &c, 1) < 0);
	}
	close(sync[0]);
	memset(mem, 'B', (size_t)psz);
	to = (__u64)(uintptr_t)seen;
	if (ioctl(gup, PIN_LONGTERM_TEST_READ, &to))
		ret = repro_error("PIN_LONGTERM_TEST_READ: %s", strerror(errno));
	else if (memcmp(seen, mem, (size_t)psz))
		ret = repro_found("after fork the parent's write went to a new page: the R/W "
				  "long-term pin reads '%c', the parent '%c'", seen[0], mem[0]);
	else
		ret = repro_not("R/W long-term pin, fork, parent write: the pin and the parent "
				"agree");
	close(sync[1]);
	waitpid(pid, &status, 0);
out_pin:
	ioctl(gup, PIN_LONGTERM_TEST_STOP);
	close(gup);
	return ret;
}

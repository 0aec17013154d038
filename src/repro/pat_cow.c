/* Trigger for CVE-2024-35877: VM_PAT handling of private (COW) /dev/mem mappings. */
/*
 * Map a page of /dev/mem MAP_PRIVATE and writable, write it (an anonymous COW page now
 * replaces the PFN in the page table), then fork, mremap and unmap it. Before "x86/mm/pat:
 * fix VM_PAT handling in COW mappings", PAT looked the reservation up through the page table,
 * found the anonymous page, and warned or freed the wrong range. Evidence: a WARNING naming
 * get_pat_info/untrack_pfn or "freeing invalid memtype" in the kernel log. Memtype list
 * entries left over are printed but are no evidence: the untrack_pfn_clear() regression
 * (e9f180d7cfde) leaks them on the mremap here too.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "repro_lib.h"

#define ROUNDS 10

/* 0, or -1 with errno; *forks_refused counts fork() failing, which the fixed kernel may do. */
static int one_round(int fd, long psz, int *forks_refused)
{
	char *p, *q;
	pid_t pid;
	int st;

	p = mmap(NULL, (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	p[0] = 'x';	/* COW: the PFN gives way to an anonymous page */
	pid = fork();
	if (pid == 0)
		_exit(p[0] == 'x' ? 0 : 1);
	if (pid < 0)
		(*forks_refused)++;
	else if (waitpid(pid, &st, 0) != pid)
		return -1;
	q = mremap(p, (size_t)psz, (size_t)psz, MREMAP_MAYMOVE | MREMAP_FIXED,
		   p + 64 * psz);
	if (q == MAP_FAILED)
		q = p;
	return munmap(q, (size_t)psz);
}

int main(void)
{
	static const char *const pats[] = { "get_pat_info", "untrack_pfn", "track_pfn",
					    "freeing invalid memtype", "memtype.c", NULL };
	long psz = sysconf(_SC_PAGESIZE), before, after;
	int fd, kfd, ret = 0, refused = 0;
	char log[512];

	fd = open("/dev/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return repro_skip("/dev/mem: %s (needs CONFIG_DEVMEM)", strerror(errno));
	kfd = repro_kmsg_open();
	before = repro_memtype_count();
	for (int i = 0; i < ROUNDS && !ret; i++)
		ret = one_round(fd, psz, &refused);
	if (ret) {
		ret = repro_skip("private writable mapping of /dev/mem at offset 0: %s",
				 strerror(errno));
		goto out;
	}
	usleep(100000);
	after = repro_memtype_count();
	if (repro_kmsg_find(kfd, pats, log, sizeof(log)) > 0)
		ret = repro_found("%s", log);
	else if (kfd < 0)
		ret = repro_skip("/dev/kmsg is not readable (the PAT warnings are the evidence)");
	else
		ret = repro_not("%d rounds of COW-write, fork, mremap, munmap of private "
				"/dev/mem: no PAT warning, memtype list %ld -> %ld; fork refused "
				"%d times (the fix fails fork of a COWed PAT mapping on purpose)",
				ROUNDS, before, after, refused);
out:
	close(fd);
	if (kfd >= 0)
		close(kfd);
	return ret;
}

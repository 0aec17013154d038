/* Trigger for CVE-2025-21696: uffd-wp PTE bits surviving mremap() without EVENT_REMAP. */
/*
 * Register anonymous memory for write-protect tracking without UFFD_FEATURE_EVENT_REMAP,
 * write-protect it, move it with mremap(): the moved VMA is no longer registered, so the
 * fixed kernel clears the uffd-wp bits of the moved PTEs. Evidence: /proc/self/pagemap bit
 * 57 (PM_UFFD_WP) still set on the new address, or (CONFIG_PAGE_TABLE_CHECK) the WARNING in
 * page_table_check once the pages are made writable again and written.
 */
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "repro_lib.h"

#define NPAGES		16
#define PM_UFFD_WP	(1ULL << 57)
#define PM_PRESENT	(1ULL << 63)

/* How many of the n pages at addr have the uffd-wp bit in pagemap; -1 on error. */
static int count_wp(int pm, const char *addr, long psz, int n)
{
	int set = 0;

	for (int i = 0; i < n; i++) {
		uint64_t e;
		off_t off = (off_t)((uintptr_t)(addr + (long)i * psz) / (uintptr_t)psz) * 8;

		if (pread(pm, &e, sizeof(e), off) != sizeof(e))
			return -1;
		set += (e & PM_PRESENT) && (e & PM_UFFD_WP);
	}
	return set;
}

static int open_uffd(void)
{
	int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 && errno == EPERM)	/* vm.unprivileged_userfaultfd=0: user faults only */
		fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd;
}

static int run(int uffd, int pm, int kfd, long psz)
{
	static const char *const pats[] = { "page_table_check", NULL };
	size_t len = NPAGES * (size_t)psz;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	char *a, *b, log[512];
	int before, after;

	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return repro_error("UFFDIO_API: %s", strerror(errno));
	if (!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		return repro_skip("userfaultfd has no write-protect mode on anonymous memory");
	a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		return repro_error("mmap: %s", strerror(errno));
	memset(a, 0x5a, len);
	reg.range.start = wp.range.start = (uintptr_t)a;
	reg.range.len = wp.range.len = len;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return repro_skip("UFFDIO_REGISTER_MODE_WP: %s", strerror(errno));
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return repro_error("UFFDIO_WRITEPROTECT: %s", strerror(errno));
	before = count_wp(pm, a, psz, NPAGES);
	if (mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, b) != b)
		return repro_error("mremap: %s", strerror(errno));
	after = count_wp(pm, b, psz, NPAGES);
	if (mprotect(b, len, PROT_READ) || mprotect(b, len, PROT_READ | PROT_WRITE))
		return repro_error("mprotect: %s", strerror(errno));
	memset(b, 0xa5, len);
	usleep(100000);	/* let printk reach the log buffer */
	if (repro_kmsg_find(kfd, pats, log, sizeof(log)) > 0)
		return repro_found("%s", log);
	if (after > 0)
		return repro_found("%d of %d PTEs moved by mremap() still carry the uffd-wp bit "
				   "(pagemap bit 57); %d were set before the move", after, NPAGES,
				   before);
	if (before <= 0)
		return repro_not("uffd-wp bits not visible in pagemap here (%d); no "
				 "page_table_check warning%s", before,
				 kfd < 0 ? " (kernel log unreadable)" : "");
	return repro_not("uffd-wp bits cleared on all %d moved PTEs (%d set before the move)",
			 NPAGES, before);
}

int main(void)
{
	long psz = sysconf(_SC_PAGESIZE);
	int uffd, pm, kfd, ret;

	kfd = repro_kmsg_open();
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return repro_skip("/proc/self/pagemap: %s", strerror(errno));
	uffd = open_uffd();
	if (uffd < 0) {
		close(pm);
		return repro_skip("userfaultfd: %s", strerror(errno));
	}
	ret = run(uffd, pm, kfd, psz);
	close(uffd);
	close(pm);
	if (kfd >= 0)
		close(kfd);
	return ret;
}

/* The fuzz runtime of fzrt.h: processes, windows, userfaultfds and /dev/mem, plain libc. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fzrt.h"

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#define FZRT_GOLDEN 0x9e3779b97f4a7c15ULL
#define FZRT_PM_UFFD_WP (1ULL << 57)
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#define SYS_io_uring_enter 426
#define SYS_io_uring_register 427
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
#define FZRT_MFD_HUGE_2MB (21U << 26)	/* MFD_HUGE_2MB of linux/memfd.h */
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 1
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 2
#endif
#define FZRT_PM_PRESENT (1ULL << 63)
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif

/* mm/gup_test.h (CONFIG_GUP_TEST), not a uapi header */
struct fzrt_pin_lt {
	uint64_t addr, size;
	uint32_t flags;
};
#define FZRT_PIN_LT_START _IOW('g', 7, struct fzrt_pin_lt)
#define FZRT_PIN_LT_STOP _IO('g', 8)
#define FZRT_PIN_LT_READ _IOW('g', 9, uint64_t)
#define FZRT_PIN_LT_WRITE 1
#define FZRT_PIN_LT_FAST 2

struct fzrt_reply {
	int ret;
	int pid;
};

void ms_fzrt_fill(void *page, uint64_t fill)
{
	uint64_t *w = page;

	for (size_t i = 0; i < MS_FZRT_PAGE / 8; i++)
		w[i] = fill ? fill ^ ((uint64_t)(i + 1) * FZRT_GOLDEN) : 0;
}

long ms_fzrt_diff(const void *page, uint64_t fill)
{
	const unsigned char *p = page;

	for (size_t i = 0; i < MS_FZRT_PAGE / 8; i++) {
		uint64_t want = fill ? fill ^ ((uint64_t)(i + 1) * FZRT_GOLDEN) : 0;
		unsigned char w[8];

		memcpy(w, &want, 8);
		for (size_t b = 0; b < 8; b++)
			if (p[i * 8 + b] != w[b])
				return (long)(i * 8 + b);
	}
	return -1;
}

static char *slot(const struct ms_fzrt *rt, bool pfn, int s)
{
	return (pfn ? rt->pwin : rt->win) + (size_t)s * MS_FZRT_PAGE;
}

int ms_fzrt_placeholder(char *addr, size_t len)
{
	void *p = mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
		       MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	if (p != addr) {
		munmap(p, len);
		return -EEXIST;
	}
	return 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Is [addr, +len) inside one VMA of this process? mremap needs that. */
static bool one_vma(const char *addr, size_t len)
{
	unsigned long lo, hi, a = (unsigned long)addr;
	char line[512];
	bool ok = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= a && a < hi) {
			ok = a + len <= hi;
			break;
		}
	fclose(f);
	return ok;
}

static int prot_of(int flags)
{
	return (flags & 1 ? PROT_READ : 0) | (flags & 2 ? PROT_WRITE : 0);
}

/* fail-nth: the nth fault site of this thread from now on fails (fault-injection.rst). */
static int nth_arm(int nth)
{
	char buf[16];

	if (!nth)
		return 0;
	snprintf(buf, sizeof(buf), "%d", nth);
	return write_str("/proc/thread-self/fail-nth", buf);
}

static void nth_disarm(int nth)
{
	if (nth)
		write_str("/proc/thread-self/fail-nth", "0");
}

/* write_str() with only the write() armed: opening the file has fault sites of its own. */
static int armed_write(const char *path, const char *s, int nth)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	if (!(ret = nth_arm(nth))) {
		ret = write(fd, s, strlen(s)) < 0 ? -errno : 0;
		nth_disarm(nth);
	}
	close(fd);
	return ret;
}

/*
 * With nth, only the mremap() call is armed. A failed move leaves the destination a hole
 * (mremap_to() unmapped it first): the placeholder goes back. A move whose munmap of the old
 * range failed returns success with the old range still mapped, empty (move_vma(): "OOM:
 * unable to split vma, just get accounts right"): that range is unmapped here.
 */
static int move_range(char *from, size_t old, char *to, size_t new, int nth)
{
	void *p;
	int ret;

	if (to != from) {
		if ((ret = nth_arm(nth)))
			return ret;
		p = mremap(from, old, new, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		ret = p == MAP_FAILED ? -errno : 0;
		nth_disarm(nth);
		if (ret) {
			ms_fzrt_placeholder(to, new);
			return ret;
		}
		ret = ms_fzrt_placeholder(from, old);
		if (ret == -EEXIST && nth && !munmap(from, old))
			ret = ms_fzrt_placeholder(from, old);
		return ret;
	}
	if (new > old && munmap(from + old, new - old))
		return -errno;
	if (!(ret = nth_arm(nth))) {
		p = mremap(from, old, new, 0);
		ret = p == MAP_FAILED ? -errno : 0;
		nth_disarm(nth);
	}
	if (ret) {
		if (new > old)
			ms_fzrt_placeholder(from + old, new - old);
		return ret;
	}
	return new < old ? ms_fzrt_placeholder(from + new, old - new) : 0;
}

int ms_fzrt_mremap(char *from, size_t old, char *to, size_t new)
{
	return move_range(from, old, to, new, 0);
}

static int armed_munmap(char *a, size_t len, int nth)
{
	int ret = nth_arm(nth);

	if (ret)
		return ret;
	ret = munmap(a, len) ? -errno : 0;
	nth_disarm(nth);
	return ret ? ret : ms_fzrt_placeholder(a, len);
}

static int armed_mprotect(char *a, size_t len, int prot, int nth)
{
	int ret = nth_arm(nth);

	if (ret)
		return ret;
	ret = mprotect(a, len, prot) ? -errno : 0;
	nth_disarm(nth);
	return ret;
}

static int do_mremap(char *from, size_t old, char *to, size_t new, bool dry, int nth)
{
	if (!one_vma(from, old))
		return MS_FZRT_SKIP;
	return dry ? 0 : move_range(from, old, to, new, nth);
}

/*
 * A minor fault (process 0 touched a page of its MINOR-registered main mapping that is in the
 * page cache but has no PTE there): map the page cache's page, as a minor-fault handler does.
 */
static void minor_fault(struct ms_fzrt *rt, unsigned long addr)
{
	struct uffdio_continue c = {
		.range = { addr & ~(rt->fslot - 1), rt->fslot },
	};

	if (!ioctl(rt->uffd[0], UFFDIO_CONTINUE, &c))
		__atomic_add_fetch(&rt->minor_faults, 1, __ATOMIC_RELAXED);
}

static void *monitor(void *arg)
{
	struct ms_fzrt *rt = arg;
	struct pollfd pfd[3] = { { rt->uffd[1], POLLIN, 0 }, { rt->uffd[2], POLLIN, 0 },
				 { rt->uffd[0], POLLIN, 0 } };
	struct uffd_msg msg;

	for (;;) {
		if (poll(pfd, 3, -1) < 0 && errno != EINTR)
			return NULL;
		for (int i = 0; i < 3; i++) {
			struct uffdio_writeprotect wp = { .mode = 0 };

			if (!(pfd[i].revents & POLLIN) || read(pfd[i].fd, &msg, sizeof(msg)) !=
			    sizeof(msg))
				continue;
			/* A remap event only has to be read for mremap to go on. */
			if (msg.event != UFFD_EVENT_PAGEFAULT)
				continue;
			if (i == 2) {
				minor_fault(rt, (unsigned long)msg.arg.pagefault.address);
				continue;
			}
			wp.range.start = msg.arg.pagefault.address & ~(MS_FZRT_PAGE - 1);
			wp.range.len = MS_FZRT_PAGE;
			if (!ioctl(pfd[i].fd, UFFDIO_WRITEPROTECT, &wp))
				__atomic_add_fetch(&rt->wp_faults, 1, __ATOMIC_RELAXED);
		}
	}
}

static int new_uffd(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), ret;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static int uffd_setup(struct ms_fzrt *rt)
{
	int ret;

	if (rt->monitor)
		return 0;
	if ((rt->uffd[1] = new_uffd(0)) < 0 ||
	    (rt->uffd[2] = new_uffd(UFFD_FEATURE_EVENT_REMAP)) < 0)
		return rt->uffd[1] < 0 ? rt->uffd[1] : rt->uffd[2];
	/* Without the MINOR feature (UFFDIO_API says EINVAL) uffd[0] stays < 0: no MINOR ops. */
	if (rt->file)
		rt->uffd[0] = new_uffd(rt->file == MS_FZRT_FILE_HUGETLB ?
				       UFFD_FEATURE_MINOR_HUGETLBFS : UFFD_FEATURE_MINOR_SHMEM);
	if ((ret = pthread_create(&rt->mon, NULL, monitor, rt)))
		return -ret;
	rt->monitor = true;
	return 0;
}

/*
 * The context whose registration covers addr: the one UFFDIO_WRITEPROTECT accepts. (6.12's
 * mwriteprotect_range() asks only for a uffd-wp VMA, not for its own context, so the first
 * context does for both.) Only ENOENT, the page in no uffd-wp VMA, tries the next: a failure
 * fail-nth injected (EFAULT from copy_from_user()) is the op's, not absorbed by a retry.
 */
static int uffd_wp_page(struct ms_fzrt *rt, char *addr, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { (unsigned long)addr, MS_FZRT_PAGE },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	int ret = -ENOENT;

	for (int i = 1; i <= 2; i++) {
		if (rt->uffd[i] < 0)
			continue;
		if (!ioctl(rt->uffd[i], UFFDIO_WRITEPROTECT, &wp))
			return 0;
		ret = -errno;
		if (ret != -ENOENT)
			return ret;
	}
	return ret;
}

/*
 * Page by page: 6.1's mwriteprotect_range() wants the range inside one VMA (ENOENT otherwise,
 * seen on Debian 6.1 after an mprotect split a registered range); 6.12's walks the VMAs
 * (for_each_vma_range()), which comes to the same as page by page.
 */
static int uffd_wp(struct ms_fzrt *rt, char *addr, size_t len, bool on, int nth)
{
	int ret = nth_arm(nth);

	for (size_t off = 0; !ret && off < len; off += MS_FZRT_PAGE)
		ret = uffd_wp_page(rt, addr + off, on);
	nth_disarm(nth);
	return ret;
}

static int uffd_reg(struct ms_fzrt *rt, char *addr, size_t len, bool remap, int nth)
{
	struct uffdio_register reg = {
		.range = { (unsigned long)addr, len }, .mode = UFFDIO_REGISTER_MODE_WP,
	};
	int ret = uffd_setup(rt);

	if (ret || (ret = nth_arm(nth)))
		return ret;
	ret = ioctl(rt->uffd[remap ? 2 : 1], UFFDIO_REGISTER, &reg) ? -errno : 0;
	nth_disarm(nth);
	return ret;
}

/*
 * A MAP_FIXED mmap that fails after it took the old mapping away leaves a gap there
 * (__mmap_region(): vms_abort_munmap_vmas()): the placeholder goes back (EEXIST: it stayed).
 */
static int armed_pfn_map(struct ms_fzrt *rt, char *a, size_t len, int nth)
{
	int ret = nth_arm(nth);

	if (ret)
		return ret;
	ret = mmap(a, len, PROT_READ, MAP_SHARED | MAP_FIXED, rt->mem_fd, 0) == MAP_FAILED ?
	      -errno : 0;
	nth_disarm(nth);
	if (ret && nth)
		ms_fzrt_placeholder(a, len);
	return ret;
}

static int minor_reg(struct ms_fzrt *rt, char *addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { (unsigned long)addr, len }, .mode = UFFDIO_REGISTER_MODE_MINOR,
	};
	int ret = uffd_setup(rt);

	if (ret)
		return ret;
	if (rt->uffd[0] < 0)
		return -EOPNOTSUPP;
	return ioctl(rt->uffd[0], UFFDIO_REGISTER, &reg) ? -errno : 0;
}

/* UFFDIO_CONTINUE: its result and uffdio_continue.mapped must be what the op says. */
static int file_continue(struct ms_fzrt *rt, const struct ms_fzrt_op *op, char *addr,
			 size_t len)
{
	struct uffdio_continue c = { .range = { (unsigned long)addr, len } };
	long ret;

	if (rt->uffd[0] < 0)
		return -EOPNOTSUPP;
	ret = ioctl(rt->uffd[0], UFFDIO_CONTINUE, &c) ? -errno : 0;
	if (ret == op->want_ret && (long)c.mapped == op->want_mapped)
		return 0;
	rt->cont_ret = ret;
	rt->cont_mapped = (long)c.mapped;
	return MS_FZRT_CONT_DIFF;
}

/* Every 4 KiB of a slot gets the fill's page image (a huge page: 512 times). */
static void file_fill(struct ms_fzrt *rt, char *a, uint64_t fill)
{
	for (size_t off = 0; off < rt->fslot; off += MS_FZRT_PAGE)
		ms_fzrt_fill(a + off, fill);
}

static int file_op(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	size_t off = (size_t)op->first * rt->fslot, len = (size_t)op->n * rt->fslot;
	char *a;

	if (!rt->fwin || op->first + op->n > MS_FZRT_FILE_SLOTS)
		return -EINVAL;
	switch (op->kind) {
	case MS_FZRT_FILE_WRITE:
	case MS_FZRT_FILE_FILL:
		a = op->kind == MS_FZRT_FILE_WRITE ? rt->fwin : rt->falias;
		for (int i = 0; i < op->n; i++)
			file_fill(rt, a + off + (size_t)i * rt->fslot, op->fill[i]);
		return 0;
	case MS_FZRT_FILE_ZAP:
		return madvise(rt->fwin + off, len, MADV_DONTNEED) ? -errno : 0;
	case MS_FZRT_FILE_PUNCH:
		return fallocate(rt->ffd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				 (off_t)len) ? -errno : 0;
	case MS_FZRT_UFFD_MINOR:
		return minor_reg(rt, rt->fwin + off, len);
	default:
		/*
		 * The range must be one VMA (uffd_mfill_lock(): -ENOENT). hugetlb VMAs never
		 * merge (VM_DONTEXPAND is VM_SPECIAL), so MINOR registrations of two pieces
		 * stay two: the layout is the kernel's business, such a CONTINUE is not run.
		 */
		if (op->dry)
			return one_vma(rt->fwin + off, len) ? 0 : MS_FZRT_SKIP;
		return file_continue(rt, op, rt->fwin + off, len);
	}
}

static int pfn_op(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	char *a = slot(rt, true, op->first);
	size_t len = (size_t)op->n * MS_FZRT_PAGE;

	switch (op->kind) {
	case MS_FZRT_PFN_MAP:
		/* pfnmap.c of the mm selftests: the first pages of /dev/mem. */
		if (rt->mem_fd < 0 && (rt->mem_fd = open("/dev/mem", O_RDONLY | O_CLOEXEC)) < 0)
			return -errno;
		return armed_pfn_map(rt, a, len, op->nth);
	case MS_FZRT_PFN_MUNMAP:
		return armed_munmap(a, len, op->nth);
	case MS_FZRT_PFN_MPROTECT:
		return armed_mprotect(a, len, prot_of(op->flags), op->nth);
	default:
		return do_mremap(a, len, slot(rt, true, op->to), (size_t)op->n2 * MS_FZRT_PAGE,
				 op->dry, op->nth);
	}
}

/* A FOLL_GET reference: the pages spliced into a pipe, held until UNPIN reads them back. */
static int splice_pin(char *addr, size_t len)
{
	struct iovec iov = { addr, len };
	int fd[2], ret = 0;

	if (pipe2(fd, O_CLOEXEC))
		return -errno;
	if (iov.iov_len > 65536 && fcntl(fd[1], F_SETPIPE_SZ, (int)iov.iov_len) < 0)
		ret = -errno;
	while (!ret && iov.iov_len) {
		ssize_t n = vmsplice(fd[1], &iov, 1, 0);

		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
	}
	close(fd[1]);
	if (ret)
		close(fd[0]);
	return ret ? ret : fd[0];
}

/*
 * FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM, as RDMA and io_uring fixed buffers take them: the
 * range registered as buffer 0 of a new ring (IORING_REGISTER_BUFFERS pins it at once).
 */
static int uring_pin(char *addr, size_t len, struct io_uring_params *p, int nth)
{
	struct iovec iov = { addr, len };
	int fd, ret;

	memset(p, 0, sizeof(*p));
	if ((fd = (int)syscall(SYS_io_uring_setup, 2, p)) < 0)
		return -errno;
	if (!(ret = nth_arm(nth))) {
		if (syscall(SYS_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1))
			ret = -errno;
		nth_disarm(nth);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * FOLL_PIN | FOLL_LONGTERM (| FOLL_WRITE) through gup_test: one such pin system-wide. The fast
 * variant: plain pin_user_pages() may not drop mmap_lock, so a write fault on a uffd-wp page
 * cannot wait for the monitor and fails with EFAULT; pin_user_pages_fast() falls back to a
 * slow path that may, as io_uring's pinning does.
 */
static int gup_pin(char *addr, size_t len, bool write, int nth)
{
	struct fzrt_pin_lt args = { (uintptr_t)addr, len,
				    FZRT_PIN_LT_FAST | (write ? FZRT_PIN_LT_WRITE : 0) };
	int fd = open("/sys/kernel/debug/gup_test", O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return errno == ENOENT ? -ENOSYS : -errno;
	if (!(ret = nth_arm(nth))) {
		ret = ioctl(fd, FZRT_PIN_LT_START, &args) ? -errno : 0;
		nth_disarm(nth);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int pin_take(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	char *a = slot(rt, false, op->first);
	size_t len = (size_t)op->n * MS_FZRT_PAGE;
	int k = op->pin, fd;

	if (k < 0 || k >= MS_FZRT_PINS)
		return -EINVAL;
	if (op->kind == MS_FZRT_PIN_URING)
		fd = uring_pin(a, len, &rt->pin_ring[k], op->nth);
	else if (op->kind == MS_FZRT_PIN_GUP)
		fd = gup_pin(a, len, op->flags & 2, op->nth);
	else
		fd = splice_pin(a, len);
	if (fd < 0)
		return fd;
	rt->pin_fd[k] = fd;
	rt->pin_kind[k] = op->kind;
	rt->pin_addr[k] = a;
	return 0;
}

/*
 * Submit one sqe and reap its completion: the rings are mapped only for this. With nth, only
 * io_uring_enter() is armed; an sqe it did not consume (io_submit_sqes() found no request:
 * -EAGAIN) is taken back, so that no later submission runs it.
 */
static int uring_submit(int fd, const struct io_uring_params *p,
			const struct io_uring_sqe *want, int nth)
{
	size_t sq_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	size_t cq_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	size_t sqe_len = p->sq_entries * sizeof(struct io_uring_sqe);
	bool single = p->features & IORING_FEAT_SINGLE_MMAP;
	char *sq, *cq = MAP_FAILED;
	struct io_uring_sqe *sqe = MAP_FAILED;
	struct io_uring_cqe *cqe;
	unsigned *tail, head;
	int ret;

	if (single && cq_len > sq_len)
		sq_len = cq_len;
	sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -errno;
	cq = single ? sq : mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				IORING_OFF_CQ_RING);
	if (cq != MAP_FAILED)
		sqe = mmap(NULL, sqe_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQES);
	if (cq == MAP_FAILED || sqe == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	tail = (unsigned *)(sq + p->sq_off.tail);
	if ((ret = nth_arm(nth)))
		goto out;
	sqe[0] = *want;
	((unsigned *)(sq + p->sq_off.array))[*tail & *(unsigned *)(sq + p->sq_off.ring_mask)] = 0;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	ret = syscall(SYS_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0 ?
	      -errno : 0;
	nth_disarm(nth);
	head = __atomic_load_n((unsigned *)(cq + p->cq_off.head), __ATOMIC_ACQUIRE);
	if (!ret && head == __atomic_load_n((unsigned *)(cq + p->cq_off.tail), __ATOMIC_ACQUIRE))
		ret = -EIO;
	if (ret) {
		if (__atomic_load_n((unsigned *)(sq + p->sq_off.head), __ATOMIC_ACQUIRE) != *tail)
			__atomic_store_n(tail, *tail - 1, __ATOMIC_RELEASE);
		goto out;
	}
	cqe = (struct io_uring_cqe *)(cq + p->cq_off.cqes) +
	      (head & *(unsigned *)(cq + p->cq_off.ring_mask));
	ret = cqe->res;
	__atomic_store_n((unsigned *)(cq + p->cq_off.head), head + 1, __ATOMIC_RELEASE);
out:
	munmap(sqe == MAP_FAILED ? NULL : sqe, sqe == MAP_FAILED ? 0 : sqe_len);
	if (!single && cq != MAP_FAILED)
		munmap(cq, cq_len);
	munmap(sq, sq_len);
	return ret;
}

/*
 * What the registered buffer holds, read by the kernel through the pin (IORING_OP_WRITE_FIXED
 * into a memfd), not through the process's page tables: that is what a device would see.
 */
static int uring_read(struct ms_fzrt *rt, int k, int ring, size_t len, void *buf)
{
	struct io_uring_sqe sqe;
	int mfd = (int)syscall(SYS_memfd_create, "fzrt-pin", MFD_CLOEXEC), ret;

	if (mfd < 0)
		return -errno;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_WRITE_FIXED;
	sqe.fd = mfd;
	sqe.addr = (uintptr_t)rt->pin_addr[k];
	sqe.len = (unsigned)len;
	sqe.buf_index = 0;
	ret = uring_submit(ring, &rt->pin_ring[k], &sqe, 0);
	if (ret >= 0)
		ret = ret == (int)len && pread(mfd, buf, len, 0) == (ssize_t)len ? 0 : -EIO;
	close(mfd);
	return ret;
}

/*
 * Fresh fills into pages [first, +n) of a pin-uring pin, the way a device writes: through the
 * registered buffer (IORING_OP_READ_FIXED from a memfd), not through any page table.
 */
static int pin_write(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	size_t len = (size_t)op->n * MS_FZRT_PAGE;
	struct io_uring_sqe sqe;
	int k = op->pin, mfd, ret;
	char *buf;

	if (k < 0 || k >= MS_FZRT_PINS || rt->pin_fd[k] < 0 ||
	    rt->pin_kind[k] != MS_FZRT_PIN_URING || op->n <= 0 || op->n > MS_FZRT_MAX_N)
		return -EINVAL;
	if (!(buf = malloc(len)))
		return -ENOMEM;
	for (int i = 0; i < op->n; i++)
		ms_fzrt_fill(buf + (size_t)i * MS_FZRT_PAGE, op->fill[i]);
	if ((mfd = (int)syscall(SYS_memfd_create, "fzrt-pin", MFD_CLOEXEC)) < 0) {
		ret = -errno;
		goto out;
	}
	if (pwrite(mfd, buf, len, 0) != (ssize_t)len) {
		ret = -EIO;
		goto out_close;
	}
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_READ_FIXED;
	sqe.fd = mfd;
	sqe.addr = (uintptr_t)rt->pin_addr[k] + (size_t)op->first * MS_FZRT_PAGE;
	sqe.len = (unsigned)len;
	ret = uring_submit(rt->pin_fd[k], &rt->pin_ring[k], &sqe, op->nth);
	ret = ret == (int)len ? 0 : ret < 0 ? ret : -EIO;
out_close:
	close(mfd);
out:
	free(buf);
	return ret;
}

static int pipe_read(int fd, char *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The release itself, armed with nth: IORING_UNREGISTER_BUFFERS (unpinned here, not later by
 * the ring's asynchronous teardown), PIN_LONGTERM_TEST_STOP, or the pipe's close(). An io_uring
 * release that fails keeps its buffers registered (io_sqe_buffers_unregister()): its ring stays
 * open, the pin held. Every other fd is closed.
 */
static int pin_unpin(int kind, int fd, int nth)
{
	int ret = nth_arm(nth);

	if (ret) {
		if (kind != MS_FZRT_PIN_URING)
			close(fd);
		return ret;
	}
	if (kind == MS_FZRT_PIN_URING)
		ret = syscall(SYS_io_uring_register, fd, IORING_UNREGISTER_BUFFERS, NULL, 0) ?
		      -errno : 0;
	else if (kind == MS_FZRT_PIN_GUP)
		ret = ioctl(fd, FZRT_PIN_LT_STOP) ? -errno : 0;
	else
		ret = close(fd) ? -errno : 0;
	nth_disarm(nth);
	if (kind == MS_FZRT_PIN_URING ? !ret : kind == MS_FZRT_PIN_GUP)
		close(fd);
	return ret;
}

/* The pinned pages as the pin holds them, then the pin dropped (nth: as pin_unpin()). */
static int pin_drop(struct ms_fzrt *rt, int k, void *buf, size_t len, int nth)
{
	int fd = rt->pin_fd[k], ret = 0, err;
	uint64_t to = (uintptr_t)buf;

	if (rt->pin_kind[k] == MS_FZRT_PIN_URING && buf)
		ret = uring_read(rt, k, fd, len, buf);
	else if (rt->pin_kind[k] == MS_FZRT_PIN_GUP && buf && ioctl(fd, FZRT_PIN_LT_READ, &to))
		ret = -errno;
	else if (rt->pin_kind[k] != MS_FZRT_PIN_URING && rt->pin_kind[k] != MS_FZRT_PIN_GUP && buf)
		ret = pipe_read(fd, buf, len);
	err = pin_unpin(rt->pin_kind[k], fd, nth);
	if (err && rt->pin_kind[k] == MS_FZRT_PIN_URING) {
		if (nth)
			return err;	/* the pin stays, as the model says */
		close(fd);
	}
	rt->pin_fd[k] = -1;
	return ret ? ret : err;
}

/* Read the pinned pages back and compare them with what the model says the pin holds. */
static int pin_release(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	size_t len = (size_t)op->n * MS_FZRT_PAGE;
	char *buf;
	int ret;

	if (op->pin < 0 || op->pin >= MS_FZRT_PINS || rt->pin_fd[op->pin] < 0 || op->n <= 0)
		return -EINVAL;
	if (!(buf = malloc(len)))
		return -ENOMEM;
	ret = pin_drop(rt, op->pin, buf, len, op->nth);
	for (int i = 0; i < op->n && !ret; i++) {
		const char *page = buf + (size_t)i * MS_FZRT_PAGE;
		long off = ms_fzrt_diff(page, op->fill[i]);
		uint64_t word;

		if (off < 0 || ((op->alt_mask >> i & 1) && ms_fzrt_diff(page, op->alt[i]) < 0))
			continue;
		word = op->fill[i] ? op->fill[i] ^ ((uint64_t)(off / 8 + 1) * FZRT_GOLDEN) : 0;
		rt->bad->page = i;
		rt->bad->off = off;
		rt->bad->want = ((unsigned char *)&word)[off % 8];
		rt->bad->got = (unsigned char)page[off];
		ret = MS_FZRT_PIN_DIFF;
	}
	free(buf);
	return ret;
}

/* The pins this process holds, dropped now: a pinner's exit must not leave one to a worker. */
static void pins_drop_all(struct ms_fzrt *rt)
{
	for (int k = 0; k < MS_FZRT_PINS; k++)
		if (rt->pin_fd[k] >= 0)
			pin_drop(rt, k, NULL, 0, 0);
}

/*
 * MADV_COLLAPSE of the window's PMD. It may refuse (a VMA boundary or a uffd-wp bit inside,
 * a pinned page, no free huge page): madvise_collapse_errno() says so with EINVAL, EAGAIN,
 * EBUSY or ENOMEM. The contents must be the same either way, which is what is checked.
 */
static int collapse(struct ms_fzrt *rt, int nth)
{
	int ret;

	if (!rt->thp)
		return -EINVAL;
	if ((ret = nth_arm(nth)))
		return ret;
	ret = madvise(rt->win, MS_FZRT_PMD, MADV_COLLAPSE) ? errno : 0;
	nth_disarm(nth);
	errno = ret;
	if (!ret)
		return 0;
	return errno == EINVAL || errno == EAGAIN || errno == EBUSY || errno == ENOMEM ? 0 : -errno;
}

static int mem_op(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	static const int advice[] = {
		[MS_FZRT_DONTNEED] = MADV_DONTNEED, [MS_FZRT_FREE] = MADV_FREE,
		[MS_FZRT_COLD] = MADV_COLD, [MS_FZRT_PAGEOUT] = MADV_PAGEOUT,
	};
	char *a = slot(rt, false, op->first);
	size_t len = (size_t)op->n * MS_FZRT_PAGE;

	switch (op->kind) {
	case MS_FZRT_WRITE:
		for (int i = 0; i < op->n && i < MS_FZRT_MAX_N; i++)
			ms_fzrt_fill(a + (size_t)i * MS_FZRT_PAGE, op->fill[i]);
		return 0;
	case MS_FZRT_MREMAP:
		return do_mremap(a, len, slot(rt, false, op->to), (size_t)op->n2 * MS_FZRT_PAGE,
				 op->dry, op->nth);
	case MS_FZRT_MUNMAP:
		return armed_munmap(a, len, op->nth);
	case MS_FZRT_MPROTECT:
		return armed_mprotect(a, len, prot_of(op->flags), op->nth);
	case MS_FZRT_MIGRATE:
		/* One node: compaction migrates the movable pages (a guest is small). */
		return armed_write("/proc/sys/vm/compact_memory", "1", op->nth);
	case MS_FZRT_UFFD_REG:
		return uffd_reg(rt, a, len, op->flags & 1, op->nth);
	case MS_FZRT_UFFD_WP:
		return uffd_wp(rt, a, len, op->flags & 1, op->nth);
	case MS_FZRT_COLLAPSE:
		return collapse(rt, op->nth);
	case MS_FZRT_PIN:
	case MS_FZRT_PIN_URING:
	case MS_FZRT_PIN_GUP:
		return pin_take(rt, op);
	case MS_FZRT_UNPIN:
		return pin_release(rt, op);
	case MS_FZRT_PIN_WRITE:
		return pin_write(rt, op);
	case MS_FZRT_DONTNEED:
	case MS_FZRT_FREE:
	case MS_FZRT_COLD:
	case MS_FZRT_PAGEOUT:
		return madvise(a, len, advice[op->kind]) ? -errno : 0;
	default:
		if (op->kind >= MS_FZRT_FILE_WRITE)
			return file_op(rt, op);
		return pfn_op(rt, op);
	}
}

static void child_loop(struct ms_fzrt *rt, int me);

/* fork() in this process; with nth, the nth fault site of the fork fails (fail-nth). */
static int do_fork(struct ms_fzrt *rt, const struct ms_fzrt_op *op, pid_t *out)
{
	char nth[16];
	pid_t pid;
	int err;

	if (op->nth) {
		snprintf(nth, sizeof(nth), "%d", op->nth);
		if ((err = write_str("/proc/thread-self/fail-nth", nth)))
			return err;
	}
	pid = fork();
	err = errno;
	if (pid == 0)
		child_loop(rt, op->child);
	if (op->nth)
		write_str("/proc/thread-self/fail-nth", "0");
	if (pid < 0)
		return -err;
	*out = pid;
	return 0;
}

static void child_loop(struct ms_fzrt *rt, int me)
{
	struct ms_fzrt_op op;
	struct fzrt_reply r;

	/*
	 * Only process 0 sends commands: with its ends closed here, every process sees EOF and
	 * exits when process 0 dies. (Not PDEATHSIG: a child must outlive its exiting parent.)
	 */
	for (int p = 0; p < MS_FZRT_PROCS; p++) {
		if (rt->cmd[p][1] >= 0)
			close(rt->cmd[p][1]);
		if (rt->rep[p][0] >= 0)
			close(rt->rep[p][0]);
		rt->cmd[p][1] = rt->rep[p][0] = -1;
	}
	/* The parent's pins stay the parent's: fork gave this process copies of their fds. */
	for (int k = 0; k < MS_FZRT_PINS; k++) {
		if (rt->pin_fd[k] >= 0)
			close(rt->pin_fd[k]);
		rt->pin_fd[k] = -1;
	}
	rt->monitor = false;		/* the thread stayed in the parent */
	for (;;) {
		pid_t pid = 0;

		if (read(rt->cmd[me][0], &op, sizeof(op)) != (ssize_t)sizeof(op))
			_exit(1);
		if (op.kind == MS_FZRT_EXIT) {
			pins_drop_all(rt);
			_exit(0);
		}
		r.ret = op.kind == MS_FZRT_FORK ? do_fork(rt, &op, &pid) : mem_op(rt, &op);
		r.pid = (int)pid;
		if (write(rt->rep[me][1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
	}
}

/* The process is gone (its memory with it) when its pidfd turns readable. */
static int wait_gone(struct ms_fzrt *rt, int p)
{
	struct pollfd pfd = { rt->pidfd[p], POLLIN, 0 };

	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	close(rt->pidfd[p]);
	rt->pidfd[p] = -1;
	rt->live[p] = false;
	return 0;
}

static int adopt(struct ms_fzrt *rt, int c, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return -errno;
	rt->pid[c] = pid;
	rt->pidfd[c] = fd;
	rt->live[c] = true;
	return 0;
}

int ms_fzrt_run(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	struct fzrt_reply r = { 0, 0 };
	pid_t pid = 0;

	if (op->proc < 0 || op->proc >= MS_FZRT_PROCS || !rt->live[op->proc])
		return -ESRCH;
	if (op->dry && op->kind != MS_FZRT_MREMAP && op->kind != MS_FZRT_PFN_MREMAP &&
	    op->kind != MS_FZRT_CONTINUE)
		return 0;
	if (op->proc == 0) {
		if (op->kind == MS_FZRT_EXIT)
			return -EINVAL;
		r.ret = op->kind == MS_FZRT_FORK ? do_fork(rt, op, &pid) : mem_op(rt, op);
		r.pid = (int)pid;
	} else {
		if (write(rt->cmd[op->proc][1], op, sizeof(*op)) != (ssize_t)sizeof(*op))
			return -EPIPE;
		if (op->kind == MS_FZRT_EXIT)
			return wait_gone(rt, op->proc);
		if (read(rt->rep[op->proc][0], &r, sizeof(r)) != (ssize_t)sizeof(r))
			return -EPIPE;	/* the process died: a signal the model did not expect */
	}
	if (op->kind == MS_FZRT_FORK && !r.ret)
		return adopt(rt, op->child, r.pid);
	return r.ret;
}

int ms_fzrt_read(struct ms_fzrt *rt, unsigned proc, unsigned s, void *buf)
{
	char path[64];
	ssize_t n;
	int fd;

	if (proc == 0) {
		memcpy(buf, slot(rt, false, (int)s), MS_FZRT_PAGE);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)rt->pid[proc]);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = pread(fd, buf, MS_FZRT_PAGE, (off_t)(uintptr_t)slot(rt, false, (int)s));
	close(fd);
	return n == (ssize_t)MS_FZRT_PAGE ? 0 : n < 0 ? -errno : -EIO;
}

static int vma_flags(struct ms_fzrt *rt, unsigned proc, uint8_t *bits)
{
	unsigned long lo = 0, hi = 0, w0 = (unsigned long)rt->win;
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)rt->pid[proc]);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			lo = a;
			hi = b;
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) || !strstr(line, " uw"))
			continue;
		for (unsigned s = 0; s < rt->nslots; s++) {
			unsigned long addr = w0 + s * MS_FZRT_PAGE;

			if (lo <= addr && addr < hi)
				bits[s] |= 2;
		}
	}
	fclose(f);
	return 0;
}

int ms_fzrt_wp(struct ms_fzrt *rt, unsigned proc, uint8_t *bits)
{
	uint64_t pm[MS_FZRT_MAX_N];
	char path[64];
	ssize_t n;
	int fd;

	memset(bits, 0, rt->nslots);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)rt->pid[proc]);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = pread(fd, pm, rt->nslots * 8, (off_t)((uintptr_t)rt->win / MS_FZRT_PAGE * 8));
	close(fd);
	if (n != (ssize_t)(rt->nslots * 8))
		return n < 0 ? -errno : -EIO;
	for (unsigned s = 0; s < rt->nslots; s++)
		bits[s] = !!(pm[s] & FZRT_PM_UFFD_WP);
	return vma_flags(rt, proc, bits);
}

static int check_data(struct ms_fzrt *rt, const struct ms_fzrt_want *w, char *msg, size_t len)
{
	static uint64_t page[MS_FZRT_PAGE / 8];
	const unsigned char *got = (const unsigned char *)page;
	unsigned char want[8];
	uint64_t word;
	long off;
	int ret;

	if ((ret = ms_fzrt_read(rt, (unsigned)w->proc, (unsigned)w->slot, page))) {
		snprintf(msg, len, "p%d slot %d: cannot read: %s", w->proc, w->slot,
			 strerror(-ret));
		return MS_FZRT_BAD_IO;
	}
	off = ms_fzrt_diff(page, w->fill);
	if (off < 0 || (w->has_alt && ms_fzrt_diff(page, w->alt) < 0))
		return MS_FZRT_OK;
	word = w->fill ? w->fill ^ ((uint64_t)(off / 8 + 1) * FZRT_GOLDEN) : 0;
	memcpy(want, &word, 8);
	snprintf(msg, len, "p%d slot %d: first differing byte at offset %ld: want 0x%02x, "
		 "got 0x%02x (page fill 0x%016llx%s)", w->proc, w->slot, off, want[off % 8],
		 got[off], (unsigned long long)w->fill, w->has_alt ? " or its alternative" : "");
	return MS_FZRT_BAD_DATA;
}

static int check_wp(struct ms_fzrt *rt, unsigned p, const char *wp0, char *msg, size_t len)
{
	uint8_t bits[MS_FZRT_MAX_N];
	int ret = ms_fzrt_wp(rt, p, bits);

	if (ret) {
		snprintf(msg, len, "p%u: cannot read pagemap/smaps: %s", p, strerror(-ret));
		return MS_FZRT_BAD_IO;
	}
	for (unsigned s = 0; s < rt->nslots; s++) {
		if ((bits[s] & 1) && !(bits[s] & 2)) {
			snprintf(msg, len, "p%u slot %u: uffd-wp bit (pagemap bit 57) set in a VMA "
				 "not registered for uffd-wp", p, s);
			return MS_FZRT_BAD_STRAY_WP;
		}
		if (p || !wp0 || wp0[s] == '2' || (bits[s] & 1) == wp0[s] - '0')
			continue;
		snprintf(msg, len, "p0 slot %u: uffd-wp bit is %d, model says %c", s, bits[s] & 1,
			 wp0[s]);
		return MS_FZRT_BAD_WP;
	}
	return MS_FZRT_OK;
}

/* len bytes at addr of proc's memory (process 0: its own; -1: the memfd at offset addr). */
static int read_at(struct ms_fzrt *rt, int proc, uintptr_t addr, void *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	if (proc == 0) {
		memcpy(buf, (void *)addr, len);
		return 0;
	}
	if (proc < 0) {
		n = pread(rt->ffd, buf, len, (off_t)addr);
	} else {
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)rt->pid[proc]);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return -errno;
		n = pread(fd, buf, len, (off_t)addr);
		close(fd);
	}
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

/* The first and the last 4 KiB of file slot s as proc sees it, against fill. */
static int check_file_slot(struct ms_fzrt *rt, int proc, unsigned s, uint64_t fill, char *msg,
			   size_t len)
{
	static uint64_t page[MS_FZRT_PAGE / 8];
	const char *who = proc < 0 ? "page cache (pread)" : proc ? "main mapping" :
			  "p0 main mapping";

	for (size_t o = 0; o < rt->fslot; o += rt->fslot - MS_FZRT_PAGE) {
		size_t off = s * rt->fslot + o;
		uintptr_t at = proc < 0 ? off : (uintptr_t)rt->fwin + off;
		int ret = read_at(rt, proc, at, page, MS_FZRT_PAGE);
		uint64_t word;
		long d;

		if (ret) {
			snprintf(msg, len, "p%d file slot %u: cannot read the %s: %s",
				 proc < 0 ? 0 : proc, s, who, strerror(-ret));
			return MS_FZRT_BAD_IO;
		}
		if ((d = ms_fzrt_diff(page, fill)) >= 0) {
			word = fill ? fill ^ ((uint64_t)(d / 8 + 1) * FZRT_GOLDEN) : 0;
			snprintf(msg, len, "p%d file slot %u (+%zu), %s: first differing byte at "
				 "offset %ld: want 0x%02x, got 0x%02x (page fill 0x%016llx)",
				 proc < 0 ? 0 : proc, s, o, who, d,
				 ((unsigned char *)&word)[d % 8], ((unsigned char *)page)[d],
				 (unsigned long long)fill);
			return MS_FZRT_BAD_DATA;
		}
		if (rt->fslot == MS_FZRT_PAGE)
			break;
	}
	return MS_FZRT_OK;
}

int ms_fzrt_check_file(struct ms_fzrt *rt, const uint64_t *cache, const char *pte0, char *msg,
		       size_t len)
{
	uint64_t pm[MS_FZRT_FILE_SLOTS];
	char path[64];
	int ret;

	if (!rt->fwin)
		return MS_FZRT_OK;
	for (unsigned s = 0; s < MS_FZRT_FILE_SLOTS; s++)
		if ((ret = check_file_slot(rt, -1, s, cache[s], msg, len)))
			return ret;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)rt->pid[0]);
	for (unsigned s = 0; s < MS_FZRT_FILE_SLOTS; s++) {
		uintptr_t a = (uintptr_t)rt->fwin + s * rt->fslot;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : pread(fd, &pm[s], 8, (off_t)(a / MS_FZRT_PAGE * 8));

		if (fd >= 0)
			close(fd);
		if (n != 8) {
			snprintf(msg, len, "p0: cannot read %s", path);
			return MS_FZRT_BAD_IO;
		}
		if (!!(pm[s] & FZRT_PM_PRESENT) == (pte0[s] == '1'))
			continue;
		snprintf(msg, len, "p0 file slot %u: the main mapping has %s PTE (pagemap present "
			 "bit), the model says %s", s, pm[s] & FZRT_PM_PRESENT ? "a" : "no",
			 pte0[s] == '1' ? "a page mapped" : "none");
		return MS_FZRT_BAD_PTE;
	}
	for (int p = 0; p < MS_FZRT_PROCS; p++)
		for (unsigned s = 0; rt->live[p] && s < MS_FZRT_FILE_SLOTS; s++) {
			if (p ? !cache[s] : pte0[s] != '1')
				continue;
			if ((ret = check_file_slot(rt, p, s, cache[s], msg, len)))
				return ret;
		}
	return MS_FZRT_OK;
}

int ms_fzrt_check(struct ms_fzrt *rt, const struct ms_fzrt_want *w, unsigned nw, const char *wp0,
		  char *msg, size_t len)
{
	int ret;

	for (unsigned i = 0; i < nw; i++)
		if ((ret = check_data(rt, &w[i], msg, len)))
			return ret;
	for (unsigned p = 0; p < MS_FZRT_PROCS; p++)
		if (rt->live[p] && (ret = check_wp(rt, p, wp0, msg, len)))
			return ret;
	return MS_FZRT_OK;
}

/*
 * The window, a guard page, the /dev/mem window. A THP window starts a 2 MiB-aligned PMD that
 * is all R/W and MADV_HUGEPAGE (the slots are its first pages); otherwise MADV_NOHUGEPAGE keeps
 * the slots base pages even where THP is "always".
 */
static int map_windows(struct ms_fzrt *rt)
{
	size_t span = rt->thp ? MS_FZRT_PMD : rt->nslots * MS_FZRT_PAGE;
	size_t map = rt->thp ? MS_FZRT_PMD : rt->npages * MS_FZRT_PAGE;
	size_t len = span + (1 + MS_FZRT_PFN_SLOTS) * MS_FZRT_PAGE + (rt->thp ? MS_FZRT_PMD : 0);
	char *base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base == MAP_FAILED)
		return -errno;
	rt->base = base;
	rt->len = len;
	rt->win = base;
	if (rt->thp)
		rt->win = (char *)(((uintptr_t)base + MS_FZRT_PMD - 1) & ~(MS_FZRT_PMD - 1));
	rt->pwin = rt->win + span + MS_FZRT_PAGE;
	if (map && mmap(rt->win, map, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -errno;
	if (rt->thp)
		return madvise(rt->win, MS_FZRT_PMD, MADV_HUGEPAGE) ? -errno : 0;
	if (madvise(base, len, MADV_NOHUGEPAGE) && errno != EINVAL)
		return -errno;
	return 0;
}

int ms_fzrt_file_init(struct ms_fzrt *rt, int file)
{
	unsigned flags = MFD_CLOEXEC | (file == MS_FZRT_FILE_HUGETLB ? MFD_HUGETLB |
					FZRT_MFD_HUGE_2MB : 0);
	size_t len;
	char *p;

	if (file != MS_FZRT_FILE_SHMEM && file != MS_FZRT_FILE_HUGETLB)
		return -EINVAL;
	rt->fslot = file == MS_FZRT_FILE_HUGETLB ? MS_FZRT_PMD : MS_FZRT_PAGE;
	len = MS_FZRT_FILE_SLOTS * rt->fslot;
	if ((rt->ffd = (int)syscall(SYS_memfd_create, "mmstorm-fuzz", flags)) < 0)
		return -errno;
	rt->file = file;
	if (ftruncate(rt->ffd, (off_t)len))
		return -errno;
	/* A huge page slot must be 2 MiB aligned: reserve one slot more and align in it. */
	p = mmap(NULL, len + rt->fslot, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	rt->fbase = p;
	rt->flen = len + rt->fslot;
	rt->fwin = (char *)(((uintptr_t)p + rt->fslot - 1) & ~(rt->fslot - 1));
	/* hugetlb reserves its pages here: ENOMEM when the pool has too few free. */
	if (mmap(rt->fwin, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, rt->ffd, 0) ==
	    MAP_FAILED)
		return -errno;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, rt->ffd, 0);
	if (p == MAP_FAILED)
		return -errno;
	rt->falias = p;
	return 0;
}

int ms_fzrt_init(struct ms_fzrt *rt, unsigned nslots, unsigned npages, bool thp)
{
	int ret;

	memset(rt, 0, sizeof(*rt));
	rt->uffd[0] = rt->uffd[1] = rt->uffd[2] = rt->mem_fd = rt->ffd = -1;
	for (int p = 0; p < MS_FZRT_PROCS; p++)
		rt->pidfd[p] = rt->cmd[p][0] = rt->cmd[p][1] = rt->rep[p][0] = rt->rep[p][1] = -1;
	for (int i = 0; i < MS_FZRT_PINS; i++)
		rt->pin_fd[i] = -1;
	if (nslots > MS_FZRT_MAX_N || npages > nslots)
		return -EINVAL;
	rt->nslots = nslots;
	rt->npages = npages;
	rt->thp = thp;
	/* The detail of a pin mismatch, written by whichever process held the pin. */
	rt->bad = mmap(NULL, MS_FZRT_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (rt->bad == MAP_FAILED) {
		rt->bad = NULL;
		return -errno;
	}
	if ((ret = map_windows(rt)))
		return ret;
	for (int p = 0; p < MS_FZRT_PROCS; p++)
		if (pipe2(rt->cmd[p], O_CLOEXEC) || pipe2(rt->rep[p], O_CLOEXEC))
			return -errno;
	rt->live[0] = true;
	rt->pid[0] = getpid();
	return 0;
}

void ms_fzrt_fini(struct ms_fzrt *rt)
{
	for (int p = 1; p < MS_FZRT_PROCS; p++) {
		if (!rt->live[p])
			continue;
		kill(rt->pid[p], SIGKILL);
		wait_gone(rt, p);
	}
	/* Our own children; grandchildren were reaped by their parents' deaths. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	for (int p = 0; p < MS_FZRT_PROCS; p++)
		for (int i = 0; i < 2; i++) {
			if (rt->cmd[p][i] >= 0)
				close(rt->cmd[p][i]);
			if (rt->rep[p][i] >= 0)
				close(rt->rep[p][i]);
		}
	if (rt->mem_fd >= 0)
		close(rt->mem_fd);
	if (rt->ffd >= 0)
		close(rt->ffd);
	if (rt->fbase)
		munmap(rt->fbase, rt->flen);
	if (rt->falias)
		munmap(rt->falias, MS_FZRT_FILE_SLOTS * rt->fslot);
	rt->ffd = -1;
	rt->fbase = rt->fwin = rt->falias = NULL;
	pins_drop_all(rt);
	if (rt->bad)
		munmap(rt->bad, MS_FZRT_PAGE);
	rt->bad = NULL;
	if (rt->base)
		munmap(rt->base, rt->len);
	rt->base = rt->win = NULL;
}

long ms_fzrt_pat_entries(void)
{
	FILE *f = fopen("/sys/kernel/debug/x86/pat_memtype_list", "re");
	char line[256];
	long n = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, "PAT:", 4);
	fclose(f);
	return n;
}

/*
 * Before the pfnmap tracking rework, x86 PAT tracks a pfnmap per VMA (track_pfn_copy() and
 * friends) and some partial unmaps leave reservations behind by design of memtype_erase();
 * after it, a refcounted context frees the whole range with the last piece.
 */
int ms_fzrt_pat_legacy(void)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	char line[256];
	int legacy = 0;

	if (!f)
		return 0;
	while (!legacy && fgets(line, sizeof(line), f)) {
		char *name = strrchr(line, ' ');

		legacy = name && !strcmp(name + 1, "track_pfn_copy\n");
	}
	fclose(f);
	return legacy;
}

static uint64_t range_mask(int n)
{
	return n >= 64 ? ~0ULL : (1ULL << n) - 1;
}

/*
 * MPROTECT: slots with the new protection; MUNMAP: slots in no VMA at all. The pfn ops look at
 * the /dev/mem window and its /dev/mem VMAs only (a free slot there has a placeholder):
 * PFN_MPROTECT slots with the new protection, PFN_MAP slots mapped from /dev/mem, PFN_MUNMAP
 * and PFN_MREMAP slots of the range no longer mapped from /dev/mem.
 */
static uint64_t maps_partial(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	bool pfn = op->kind >= MS_FZRT_PFN_MAP && op->kind <= MS_FZRT_PFN_MPROTECT;
	char path[64], line[512], perm[8];
	uint64_t found = 0, match = 0;
	unsigned long lo, hi;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)rt->pid[op->proc]);
	if (!(f = fopen(path, "re")))
		return ~0ULL;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) != 3 ||
		    (pfn && !strstr(line, "/dev/mem")))
			continue;
		for (int i = 0; i < op->n && i < 64; i++) {
			unsigned long a = (unsigned long)slot(rt, pfn, op->first + i);

			if (a < lo || a >= hi)
				continue;
			found |= 1ULL << i;
			if ((perm[0] == 'r') == !!(op->flags & 1) &&
			    (perm[1] == 'w') == !!(op->flags & 2))
				match |= 1ULL << i;
		}
	}
	fclose(f);
	if (op->kind == MS_FZRT_PFN_MAP)
		return found;
	if (op->kind == MS_FZRT_MPROTECT || op->kind == MS_FZRT_PFN_MPROTECT)
		return match;
	return ~found & range_mask(op->n);
}

/* PIN_URING, PIN_GUP: slots present and mapped by this process alone (pagemap bits 63, 56). */
static uint64_t pin_partial(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	uint64_t pm[MS_FZRT_MAX_N], mask = 0;
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)rt->pid[op->proc]);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ~0ULL;
	n = pread(fd, pm, (size_t)op->n * 8,
		  (off_t)((uintptr_t)slot(rt, false, op->first) / MS_FZRT_PAGE * 8));
	close(fd);
	if (n != (ssize_t)op->n * 8)
		return ~0ULL;
	for (int i = 0; i < op->n; i++)
		if ((pm[i] >> 63 & 1) && (pm[i] >> 56 & 1))
			mask |= 1ULL << i;
	return mask;
}

/*
 * Process 0's slots: UFFD_REG those whose VMA is registered for uffd-wp, UFFD_WP those whose
 * uffd-wp bit is as the op sets it (on: set, off: clear).
 */
static uint64_t uffd_partial(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	uint8_t bits[MS_FZRT_MAX_N];
	uint64_t mask = 0;

	if (ms_fzrt_wp(rt, 0, bits))
		return ~0ULL;
	for (int i = 0; i < op->n && op->first + i < (int)rt->nslots; i++) {
		uint8_t b = bits[op->first + i];

		if (op->kind == MS_FZRT_UFFD_REG ? (b & 2) : (b & 1) == (op->flags & 1))
			mask |= 1ULL << i;
	}
	return mask;
}

uint64_t ms_fzrt_partial(struct ms_fzrt *rt, const struct ms_fzrt_op *op)
{
	if (op->n <= 0 || op->n > MS_FZRT_MAX_N)
		return 0;
	if (op->kind == MS_FZRT_MPROTECT || op->kind == MS_FZRT_MUNMAP ||
	    (op->kind >= MS_FZRT_PFN_MAP && op->kind <= MS_FZRT_PFN_MPROTECT))
		return maps_partial(rt, op);
	if (op->kind == MS_FZRT_UFFD_REG || op->kind == MS_FZRT_UFFD_WP)
		return uffd_partial(rt, op);
	if (op->kind == MS_FZRT_PIN_URING || op->kind == MS_FZRT_PIN_GUP)
		return pin_partial(rt, op);
	return 0;
}

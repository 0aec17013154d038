/* hgm and hugetlb-minor: one copy of the userfaultfd handler thread and its lifecycle. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "workloads/uffd_common.h"

int ms_uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), dev;

	/* vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE: user faults are all we need. */
	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd >= 0 || errno != EPERM)
		return fd < 0 ? -errno : fd;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd < 0 ? -errno : fd;
}

/*
 * A handler that cannot resolve a fault must not leave the faulting thread asleep forever:
 * it unregisters the range and wakes it, so the access completes the ordinary way and the
 * case ends with this error (and the data checks say what the fault then mapped).
 */
void ms_uffd_fail(struct ms_uffd_thread *t, int err, const char *what)
{
	struct uffdio_range all = { __atomic_load_n(&t->base, __ATOMIC_SEQ_CST), t->len };

	if (!__atomic_load_n(&t->dead, __ATOMIC_SEQ_CST) && !t->err) {
		t->err = err;
		t->err_what = what;
	}
	/* Best effort: the case is already failing with err, these cannot make it worse. */
	(void)ioctl(t->uffd, UFFDIO_UNREGISTER, &all);
	(void)ioctl(t->uffd, UFFDIO_WAKE, &all);
	__atomic_store_n(&t->dead, true, __ATOMIC_SEQ_CST);
}

static void *handler_main(void *arg)
{
	struct ms_uffd_thread *t = arg;
	struct pollfd pfd[2] = { { .fd = t->uffd, .events = POLLIN },
				 { .fd = t->stop_fd, .events = POLLIN } };
	struct uffd_msg msgs[16];

	for (;;) {
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ms_uffd_fail(t, errno, "poll(uffd)");
			break;
		}
		if (pfd[1].revents)
			break;
		n = read(t->uffd, msgs, sizeof(msgs));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0 || n % sizeof(msgs[0])) {
			ms_uffd_fail(t, n < 0 ? errno : EIO, "read(uffd)");
			break;
		}
		for (size_t i = 0; i < n / sizeof(msgs[0]); i++)
			t->on_msg(t, &msgs[i]);
	}
	return NULL;
}

/* t->uffd, len and on_msg are set; the thread runs until ms_uffd_stop(). */
int ms_uffd_start(struct ms_ctx *ctx, struct ms_uffd_thread *t)
{
	int ret;

	t->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (t->stop_fd < 0)
		return ms_error(ctx, errno, "eventfd: %s", strerror(errno));
	ret = pthread_create(&t->thread, NULL, handler_main, t);
	if (ret)
		return ms_error(ctx, ret, "pthread_create(uffd handler): %s", strerror(ret));
	t->thread_ok = true;
	return 0;
}

/* Cleanup failures would be bugs here (EINVAL, EBADF): an ERROR, not silence. */
void ms_uffd_release(struct ms_ctx *ctx, int ret, const char *what)
{
	if (ret)
		ms_error(ctx, errno, "teardown: %s: %s", what, strerror(errno));
}

void ms_uffd_stop(struct ms_ctx *ctx, struct ms_uffd_thread *t)
{
	uint64_t one = 1;

	if (!t->thread_ok)
		return;
	if (write(t->stop_fd, &one, sizeof(one)) != sizeof(one))
		ms_error(ctx, errno, "stopping the uffd handler: %s", strerror(errno));
	else if ((errno = pthread_join(t->thread, NULL)))
		ms_uffd_release(ctx, -1, "pthread_join(uffd handler)");
}

void ms_uffd_close(struct ms_ctx *ctx, struct ms_uffd_thread *t)
{
	if (t->uffd >= 0)
		ms_uffd_release(ctx, close(t->uffd), "close(uffd)");
	if (t->stop_fd >= 0)
		ms_uffd_release(ctx, close(t->stop_fd), "close(eventfd)");
}

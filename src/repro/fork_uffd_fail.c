/* Trigger for f64e67e5d3a4: a failed fork() completing the userfaultfd fork handshake. */
/*
 * A userfaultfd with UFFD_FEATURE_EVENT_FORK watches some anonymous VMAs; fork() is made to
 * fail at its 1st, 2nd, ... allocation (/proc/thread-self/fail-nth). When dup_mmap() failed,
 * the kernel still completed the uffd fork handshake and handed the monitor a userfaultfd for
 * the half-built child mm. The monitor registers the ranges through every child uffd it gets,
 * walking that mm. Evidence: a kernel WARNING/BUG/Oops/KASAN/Bad rss-counter. (A fork event
 * for a fork that then failed is no evidence: after a successful dup_mmap() later steps of
 * fork may fail on fixed kernels too.) Needs fault injection like pat_fork_fail.
 */
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "repro_lib.h"

#define MAX_NTH		3000
#define NVMAS		32

struct monitor {
	int uffd;
	volatile int stop;
	volatile long forks;	/* UFFD_EVENT_FORK messages read */
	unsigned long lo, hi;	/* the watched VMAs span this range */
};

/*
 * Use the child's userfaultfd the way a monitor would: registering walks the child mm's
 * VMAs, which on an unfixed kernel may be a half-copied tree after a failed dup_mmap().
 */
static void poke_child(const struct monitor *m, int ufd)
{
	struct uffdio_register reg = { .range = { m->lo, m->hi - m->lo },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };

	if (!ioctl(ufd, UFFDIO_REGISTER, &reg))
		ioctl(ufd, UFFDIO_UNREGISTER, &reg.range);
}

static void *monitor(void *arg)
{
	struct monitor *m = arg;
	struct uffd_msg msg;

	while (!m->stop) {
		struct pollfd pfd = { .fd = m->uffd, .events = POLLIN };

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (read(m->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event == UFFD_EVENT_FORK) {
			poke_child(m, (int)msg.arg.fork.ufd);
			close((int)msg.arg.fork.ufd);
			__atomic_add_fetch(&m->forks, 1, __ATOMIC_SEQ_CST);
		}
	}
	return NULL;
}

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

static int watch(struct monitor *m, int uffd, long psz)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_FORK };

	if (ioctl(uffd, UFFDIO_API, &api))
		return -1;
	for (int i = 0; i < NVMAS; i++) {
		char *a = mmap(NULL, (size_t)psz, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct uffdio_register reg = { .range = { (unsigned long)a, (unsigned long)psz },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };

		if (a == MAP_FAILED)
			return -1;
		if (!m->lo || (unsigned long)a < m->lo)
			m->lo = (unsigned long)a;
		if ((unsigned long)a + (unsigned long)psz > m->hi)
			m->hi = (unsigned long)a + (unsigned long)psz;
		if (i % 2 == 0)
			a[0] = 1;
		if (i % 4 == 0 && ioctl(uffd, UFFDIO_REGISTER, &reg))
			return -1;
	}
	return 0;
}

int main(void)
{
	static const char *const pats[] = { "WARNING:", "BUG:", "KASAN:", "Bad rss-counter", "Oops",
					    "general protection", NULL };
	long psz = sysconf(_SC_PAGESIZE), bogus = 0;
	struct monitor m = { 0 };
	int kfd, nth_fd, n, failed = 0, ret;
	char log[512];
	pthread_t t;

	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (nth_fd < 0)
		return repro_skip("/proc/thread-self/fail-nth: %s (needs CONFIG_FAULT_INJECTION)",
				  strerror(errno));
	m.uffd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (m.uffd < 0)
		return repro_skip("userfaultfd: %s (root or vm.unprivileged_userfaultfd=1 for "
				  "fork events)", strerror(errno));
	if (watch(&m, m.uffd, psz))
		return repro_skip("userfaultfd with UFFD_FEATURE_EVENT_FORK: %s", strerror(errno));
	if (pthread_create(&t, NULL, monitor, &m))
		return repro_error("pthread_create failed");
	kfd = repro_kmsg_open();
	for (n = 1; n <= MAX_NTH; n++) {
		long events = __atomic_load_n(&m.forks, __ATOMIC_SEQ_CST);
		pid_t pid;
		int left;

		if (set_nth(nth_fd, n))
			break;
		pid = fork();
		left = get_nth(nth_fd);
		set_nth(nth_fd, 0);
		if (pid == 0)
			_exit(0);
		if (pid > 0) {
			waitpid(pid, NULL, 0);
			if (left > 0)
				break;
			continue;
		}
		failed++;
		usleep(1000);
		bogus += __atomic_load_n(&m.forks, __ATOMIC_SEQ_CST) != events;
	}
	m.stop = 1;
	pthread_join(t, NULL);
	usleep(100000);
	if (repro_kmsg_find(kfd, pats, log, sizeof(log)) > 0)
		ret = repro_found("%s (fork failed %d times)", log, failed);
	else if (!failed)
		ret = repro_skip("no fork failed with fail-nth 1..%d: allocation failures "
				 "are not injected (ignore-gfp-wait=N for failslab and "
				 "fail_page_alloc?)", n - 1);
	else
		ret = repro_not("%d failed forks with UFFD_EVENT_FORK, each child uffd used: "
				"no kernel complaint (%ld fork events for forks that failed "
				"after dup_mmap(), which fixed kernels allow)", failed, bogus);
	close(m.uffd);
	close(nth_fd);
	if (kfd >= 0)
		close(kfd);
	return ret;
}

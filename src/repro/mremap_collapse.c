/* Trigger for the move_normal_pmd()/retract_page_tables() race (mremap vs MADV_COLLAPSE). */
/*
 * In a private mount namespace, a tmpfs (huge=advise) file of 2 MiB is written in small pages
 * and mapped PTE-wise at a PMD-aligned address. One thread moves that page table back and
 * forth between two PMD-aligned addresses with mremap() (move_normal_pmd), while another
 * collapses the file into a THP with MADV_COLLAPSE through a second mapping, which retracts
 * the page tables of every mapping of the file. Unfixed, a page table moved mid-retract was
 * left behind or freed while mapped. Evidence: wrong bytes read through the moved mapping,
 * or Bad rss-counter / Bad page / BUG / Oops in the kernel log. The race is narrow: a clean
 * run is no proof.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>

#include "repro_lib.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define PMD_SIZE	(2UL << 20)
#define ROUNDS		200

struct race {
	char *slot[2];
	volatile int cur;
	volatile int go, stop;
	pthread_mutex_t lock;	/* held around each move: go=0 under it means no move runs */
};

static void *mover(void *arg)
{
	struct race *r = arg;

	while (!r->stop) {
		pthread_mutex_lock(&r->lock);
		if (r->go && mremap(r->slot[r->cur], PMD_SIZE, PMD_SIZE,
				    MREMAP_MAYMOVE | MREMAP_FIXED, r->slot[!r->cur]) != MAP_FAILED)
			r->cur = !r->cur;
		pthread_mutex_unlock(&r->lock);
		if (!r->go)
			sched_yield();
	}
	return NULL;
}

static char *aligned_slots(void)
{
	char *p = mmap(NULL, 4 * PMD_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	return (char *)(((uintptr_t)p + PMD_SIZE - 1) & ~(PMD_SIZE - 1));
}

/* The file in small pages again: punch it, rewrite it (write() never allocates a THP). */
static int refill(int fd, char *page, long psz)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PMD_SIZE))
		return -1;
	for (unsigned long off = 0; off < PMD_SIZE; off += (unsigned long)psz) {
		memset(page, (int)(off / (unsigned long)psz) & 0xff, (size_t)psz);
		if (pwrite(fd, page, (size_t)psz, (off_t)off) != psz)
			return -1;
	}
	return 0;
}

static int setup_fs(char *dir, size_t len)
{
	snprintf(dir, len, "%s/mremap-collapse-XXXXXX", repro_tmpdir());
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -1;
	if (!mkdtemp(dir))
		return -1;
	if (mount("tmpfs", dir, "tmpfs", 0, "huge=advise,size=8m")) {
		rmdir(dir);
		return -1;
	}
	return 0;
}

static int race(int fd, struct race *r, char *coll, char *page, long psz)
{
	static const char *const pats[] = { "Bad rss-counter", "Bad page", "BUG:", "Oops",
					    "WARNING:", "general protection", NULL };
	int kfd = repro_kmsg_open(), collapsed = 0;
	char log[512];
	pthread_t t;

	if (pthread_create(&t, NULL, mover, r))
		return repro_error("pthread_create failed");
	for (int i = 0; i < ROUNDS; i++) {
		char *m;

		if (refill(fd, page, psz))
			break;
		m = r->slot[r->cur];
		for (unsigned long off = 0; off < PMD_SIZE; off += (unsigned long)psz)
			(void)*(volatile char *)(m + off);	/* PTE-map it */
		r->go = 1;
		collapsed += !madvise(coll, PMD_SIZE, MADV_COLLAPSE);
		/*
		 * The mover tests go under the lock: once we held it after clearing go, no
		 * move is running or will start. (Clearing go under the lock starved us: the
		 * mover took the lock right back.)
		 */
		r->go = 0;
		pthread_mutex_lock(&r->lock);
		pthread_mutex_unlock(&r->lock);
		m = r->slot[r->cur];
		for (unsigned long off = 0; off < PMD_SIZE; off += (unsigned long)psz)
			if (m[off] != (char)(off / (unsigned long)psz)) {
				r->stop = 1;
				pthread_join(t, NULL);
				return repro_found("page %lu of the moved mapping reads "
						   "0x%02x, the file holds 0x%02x (round %d)",
						   off / (unsigned long)psz, (unsigned char)m[off],
						   (unsigned)(off / (unsigned long)psz) & 0xff, i);
			}
	}
	r->stop = 1;
	pthread_join(t, NULL);
	usleep(100000);
	if (repro_kmsg_find(kfd, pats, log, sizeof(log)) > 0)
		return repro_found("%s", log);
	if (!collapsed)
		return repro_skip("MADV_COLLAPSE never collapsed the tmpfs file (no MADV_COLLAPSE "
				  "of shmem here)");
	return repro_not("%d rounds, %d collapses of a file whose page table mremap() kept "
			 "moving: data intact, no kernel complaint", ROUNDS, collapsed);
}

int main(void)
{
	long psz = sysconf(_SC_PAGESIZE);
	struct race r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char dir[4096], path[4200], *page, *base, *coll;
	int fd, ret;

	if (setup_fs(dir, sizeof(dir)))
		return repro_skip("a private tmpfs with huge=advise: %s (needs root and "
				  "CONFIG_TRANSPARENT_HUGEPAGE)", strerror(errno));
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	page = malloc((size_t)psz);
	base = aligned_slots();
	coll = aligned_slots();
	if (fd < 0 || !page || !base || !coll || ftruncate(fd, PMD_SIZE)) {
		ret = repro_error("setting up the file: %s", strerror(errno));
		goto out;
	}
	r.slot[0] = base;
	r.slot[1] = base + PMD_SIZE;
	if (mmap(r.slot[0], PMD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) !=
	    r.slot[0] || munmap(r.slot[1], PMD_SIZE) ||
	    mmap(coll, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != coll ||
	    madvise(coll, PMD_SIZE, MADV_HUGEPAGE)) {
		ret = repro_error("mapping the file: %s", strerror(errno));
		goto out;
	}
	ret = race(fd, &r, coll, page, psz);
out:
	if (fd >= 0)
		close(fd);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	free(page);
	return ret;
}

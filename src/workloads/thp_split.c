/* thp-split: PMD-mapped THP split paths and MADV_COLLAPSE, with data and accounting checked. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/inject.h"
#include "mmstorm/journal.h"
#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define TS_DEBUGFS_SPLIT "/sys/kernel/debug/split_huge_pages"
#define TS_THP_DIR "/sys/kernel/mm/transparent_hugepage"
#define TS_CHILD_BROKEN 3		/* a fork child's own plumbing (pipe) failed */
#define TS_COLLAPSE_TRIES 5		/* MADV_COLLAPSE says EAGAIN on transient contention */

enum {
	P_MUNMAP, P_MPROTECT, P_MREMAP, P_DONTNEED, P_FORK_COW, P_PIN_VMSPLICE, P_PIN_IOURING,
	P_COLLAPSE, P_DEBUGFS
};
enum { R_PARENT = 1, R_CHILD, R_DMA };
enum { VM_SPLIT_PMD, VM_SPLIT_PAGE, VM_COLLAPSE_ALLOC, VM_NR };

static const char *const ts_paths[] = { "munmap", "mprotect", "mremap", "dontneed", "fork-cow",
					"pin-vmsplice", "pin-iouring", "collapse", "debugfs",
					NULL };
static const char *const ts_vm_keys[VM_NR] = { "thp_split_pmd", "thp_split_page",
					       "thp_collapse_alloc" };

static const struct ms_param thp_split_params[] = {
	{ "path", MS_P_ENUM, "munmap", "", 1, 0, ts_paths,
	  "how each PMD-mapped THP is split: munmap, mprotect or DONTNEED of one page, mremap of "
	  "its upper half, a COW write after fork, DONTNEED while vmsplice holds a reference, "
	  "fork while an io_uring fixed buffer pins it, debugfs split_huge_pages; or collapse: "
	  "4K pages collapsed with MADV_COLLAPSE" },
	{ "size", MS_P_SIZE, "8M", "bytes", 4096, 4LL << 30, NULL,
	  "region, rounded up to the PMD size: one THP per PMD, each split (or collapsed) "
	  "once per iteration" },
	{ NULL }
};

struct ts_cfg {
	int path;
	size_t psz;
	uint64_t pmd_bytes, size_bytes, asked_bytes;
	uint64_t nr_pmd, npages, per_pmd;	/* PMDs, base pages, base pages per PMD */
	uint64_t seed;
};

/* What one reading of the process and the system says; nothing here allocates. */
struct ts_snap {
	uint64_t pte;			/* VmPTE, bytes */
	uint64_t anon_huge;		/* AnonHugePages of the whole process, bytes */
	uint64_t vm[VM_NR];
	unsigned vm_found;		/* bit i: ts_vm_keys[i] is in /proc/vmstat */
};

/* The first page, of all checked in one pass, that did not hold what the model says. */
struct ts_bad {
	uint64_t checked, bad, page;
	size_t off;
	unsigned char want, got;
	uintptr_t addr;
};

struct ts_state {
	struct ms_ctx *ctx;		/* for injection points */
	struct ts_cfg cfg;
	int m_split, m_fork, m_pte, m_anon, m_vm[VM_NR], m_splits, m_checked;
	char *region, *dest;		/* this iteration's mappings (dest: mremap target) */
	char *arena[2], *place[2];	/* reserved once: region, dest; where they go */
	size_t arena_len;
	char **at;			/* per page: where it is mapped now, NULL = not mapped */
	uint64_t *want;			/* per page: the fill it must hold (0 = zero page) */
	uint64_t *pick;			/* per PMD: the page (index in the PMD) the op targets */
	uint64_t *lat_ns;		/* per PMD: op latency, recorded after the measurements */
	unsigned char *scratch;		/* one base page */
	struct io_uring ring;
	bool ring_ok;
	int data_fd;			/* pin-iouring: the file fixed-buffer I/O goes to */
	uint64_t gen;
};

/* One iteration's measurements, judged after everything was read. */
struct ts_iter {
	struct ts_snap base, populated, split, freed;
	struct ts_bad data, pipe, child_view, file;
	uint64_t fork_ns, split_ops;
	uint64_t injected;		/* PMDs an injected failure left unsplit (at most) */
	int op_err;			/* first errno of a split/collapse op */
	const char *op_what;
	int child_status;
	bool forked;
};

/* ---- small helpers ---- */

static uint64_t role(const struct ts_state *st, unsigned r)
{
	return st->cfg.seed ^ ((uint64_t)r << 60);
}

/* A seeded number for (iteration, PMD, salt): ms_stamp is a good mixer. */
static uint64_t rnd(const struct ts_state *st, uint64_t pmd, uint64_t salt)
{
	return ms_stamp(st->cfg.seed ^ salt, pmd, st->gen);
}

static char *pmd_ptr(const struct ts_state *st, uint64_t i)
{
	return st->region + i * st->cfg.pmd_bytes;
}

static uint64_t page_of(const struct ts_state *st, uint64_t pmd, uint64_t idx)
{
	return pmd * st->cfg.per_pmd + idx;
}

static bool is_fork_path(int path)
{
	return path == P_FORK_COW || path == P_PIN_IOURING;
}

/* ---- /proc readers: a stack buffer and no malloc, as they run between VmPTE readings ---- */

static void match_line(const char *line, const char *const *keys, size_t nkeys, uint64_t *vals,
		       uint64_t scale, unsigned *found)
{
	for (size_t k = 0; k < nkeys; k++) {
		size_t n = strlen(keys[k]);

		if (strncmp(line, keys[k], n) || (line[n] != ':' && line[n] != ' '))
			continue;
		vals[k] = strtoull(line + n + 1, NULL, 10) * scale;
		*found |= 1u << k;
	}
}

/* "key: value" or "key value" lines of a /proc file; values times scale. */
static int proc_keys(const char *path, const char *const *keys, size_t nkeys, uint64_t *vals,
		     uint64_t scale, unsigned *found)
{
	char buf[4096];
	size_t have = 0;
	int fd, ret = 0;

	*found = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		char *line = buf, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : 0;
			break;
		}
		have += n;
		buf[have] = '\0';
		while ((nl = memchr(line, '\n', buf + have - line))) {
			*nl = '\0';
			match_line(line, keys, nkeys, vals, scale, found);
			line = nl + 1;
		}
		have = buf + have - line;
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1) {
			ret = -EFBIG;
			break;
		}
	}
	close(fd);
	return ret;
}

static int snap_take(struct ts_snap *s)
{
	static const char *const pte_key[] = { "VmPTE" }, *const anon_key[] = { "AnonHugePages" };
	unsigned found;
	int ret;

	memset(s, 0, sizeof(*s));
	if ((ret = proc_keys("/proc/self/status", pte_key, 1, &s->pte, 1024, &found)))
		return ret;
	if (!found)
		return -ENOENT;
	if ((ret = proc_keys("/proc/self/smaps_rollup", anon_key, 1, &s->anon_huge, 1024,
			     &found)))
		return ret;
	if (!found)
		return -ENOENT;
	return proc_keys("/proc/vmstat", ts_vm_keys, VM_NR, s->vm, 1, &s->vm_found);
}

/* ---- mappings ---- */

/*
 * Each iteration maps its region (and the mremap destination) at the same PMD-aligned place
 * inside a PROT_NONE arena reserved once, so each PMD-sized piece can be a PMD-mapped THP.
 * The arena's ends stay mapped around the hole an iteration leaves: they keep the upper-level
 * page tables (free_pgtables() frees a PMD table only when no VMA is left in its PUD range),
 * so VmPTE moves by the region's PTE tables alone, wherever ASLR put the arena.
 */
static char *arena_place(struct ts_state *st, int i)
{
	size_t align = st->cfg.pmd_bytes;

	st->arena_len = st->cfg.size_bytes + 2 * align;
	st->arena[i] = mmap(NULL, st->arena_len, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (st->arena[i] == MAP_FAILED) {
		st->arena[i] = NULL;
		return NULL;
	}
	return (char *)ms_align_up((uintptr_t)st->arena[i] + st->cfg.psz, align);
}

static void *map_at(char *at, size_t len, int prot, int flags)
{
	return mmap(at, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}
static int unmap_all(struct ts_state *st)
{
	int ret = 0;

	if (st->region && munmap(st->region, st->cfg.size_bytes))
		ret = -errno;
	if (st->dest && munmap(st->dest, st->cfg.size_bytes) && !ret)
		ret = -errno;
	st->region = st->dest = NULL;
	return ret;
}

/* Generation gen everywhere, each page a full fill: a byte moved or lost anywhere shows. */
static void populate(struct ts_state *st)
{
	const struct ts_cfg *cfg = &st->cfg;

	for (uint64_t p = 0; p < cfg->npages; p++) {
		st->at[p] = st->region + p * cfg->psz;
		st->want[p] = ms_stamp(role(st, R_PARENT), p, st->gen);
		ms_page_fill(st->at[p], cfg->psz, st->want[p]);
	}
}

static void write_page(struct ts_state *st, uint64_t p, uint64_t fill)
{
	st->want[p] = fill;
	ms_page_fill(st->at[p], st->cfg.psz, fill);
}

static void bad_page(struct ts_bad *b, uint64_t p, const void *pg, size_t off, uint64_t fill,
		     size_t psz, unsigned char *scratch)
{
	b->checked++;
	if (off == MS_PAGE_MATCH || b->bad++)
		return;
	/* pg may be scratch itself: take the observed byte before the expected image. */
	b->got = ((const unsigned char *)pg)[off];
	ms_page_expect(scratch, psz, fill, 0);
	b->page = p;
	b->off = off;
	b->want = scratch[off];
	b->addr = (uintptr_t)pg + off;
}

/* Every mapped page against the model. */
static void verify_all(struct ts_state *st, struct ts_bad *b)
{
	size_t psz = st->cfg.psz;

	memset(b, 0, sizeof(*b));
	for (uint64_t p = 0; p < st->cfg.npages; p++) {
		if (!st->at[p])
			continue;
		bad_page(b, p, st->at[p], ms_page_check(st->at[p], psz, st->want[p], 0),
			 st->want[p], psz, st->scratch);
	}
}

/* ---- the split paths: each splits every PMD of the region once ---- */

/*
 * The call at an injection point returned r (0 or -1 with errno). True when an injector made
 * it fail: the model then says nothing changed (the PMD stays a THP, the page where it was),
 * which verify_all() and the relaxed accounting checks judge.
 */
static bool injected(struct ts_state *st, struct ts_iter *it, const char *point, long r)
{
	if (!ms_inject_done(st->ctx, point, r, r < 0 ? errno : 0))
		return false;
	it->injected++;
	return true;
}

/* Returns -1, so an op can end with `return op_failed(...)`. */
static int op_failed(struct ts_iter *it, const char *what)
{
	if (!it->op_err) {
		it->op_err = errno ? errno : EIO;
		it->op_what = what;
	}
	return -1;
}

static int split_munmap(struct ts_state *st, struct ts_iter *it)
{
	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++) {
		uint64_t p = page_of(st, i, st->pick[i]);
		uint64_t t0 = ms_now_ns();
		int r;

		ms_inject_point(st->ctx, "munmap");
		r = munmap(st->at[p], st->cfg.psz);
		if (injected(st, it, "munmap", r))
			continue;
		if (r)
			return op_failed(it, "munmap(one page of a THP)");
		st->lat_ns[it->split_ops] = ms_now_ns() - t0;
		st->at[p] = NULL;
		it->split_ops++;
	}
	return 0;
}

static int split_mprotect(struct ts_state *st, struct ts_iter *it)
{
	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++) {
		uint64_t p = page_of(st, i, st->pick[i]);
		uint64_t t0 = ms_now_ns();
		int r;

		ms_inject_point(st->ctx, "mprotect");
		r = mprotect(st->at[p], st->cfg.psz, PROT_READ);
		if (injected(st, it, "mprotect", r))
			continue;
		if (r)
			return op_failed(it, "mprotect(PROT_READ, one page of a THP)");
		st->lat_ns[it->split_ops] = ms_now_ns() - t0;
		it->split_ops++;
	}
	return 0;
}

/* The upper half of each THP moves to the same place in a PMD-aligned destination. */
static int split_mremap(struct ts_state *st, struct ts_iter *it)
{
	const struct ts_cfg *cfg = &st->cfg;
	uint64_t half = cfg->pmd_bytes / 2;

	for (uint64_t i = 0; i < cfg->nr_pmd; i++) {
		char *dst = st->dest + i * cfg->pmd_bytes + half;
		uint64_t t0 = ms_now_ns();
		void *p;

		ms_inject_point(st->ctx, "mremap");
		p = mremap(pmd_ptr(st, i) + half, half, half, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		/* A failed move leaves the source where it was (mremap undoes a partial move). */
		if (injected(st, it, "mremap", p == MAP_FAILED ? -1 : 0))
			continue;
		if (p == MAP_FAILED)
			return op_failed(it, "mremap(upper half of a THP, MREMAP_FIXED)");
		st->lat_ns[it->split_ops] = ms_now_ns() - t0;
		for (uint64_t k = cfg->per_pmd / 2; k < cfg->per_pmd; k++)
			st->at[page_of(st, i, k)] = dst + (k - cfg->per_pmd / 2) * cfg->psz;
		it->split_ops++;
	}
	return 0;
}

/*
 * A failed MADV_DONTNEED may have zapped part of its range before it failed: each page must
 * read as before or as zero, never anything else (verify_all() judges that with the model
 * taking whichever of the two the page shows).
 */
static void settle_zapped(struct ts_state *st, uint64_t first, uint64_t n)
{
	size_t psz = st->cfg.psz;

	for (uint64_t p = first; p < first + n; p++)
		if (ms_page_check(st->at[p], psz, 0, 0) == MS_PAGE_MATCH)
			st->want[p] = 0;
}

/* A seeded run of pages inside the THP, never all of it; they must read back as zero. */
static int split_dontneed(struct ts_state *st, struct ts_iter *it)
{
	const struct ts_cfg *cfg = &st->cfg;

	for (uint64_t i = 0; i < cfg->nr_pmd; i++) {
		uint64_t first = st->pick[i], room = cfg->per_pmd - first;
		uint64_t n = 1 + rnd(st, i, 0x646f6e74) % (room > 1 ? room - 1 : 1);
		uint64_t t0 = ms_now_ns();
		int r;

		ms_inject_point(st->ctx, "madvise:MADV_DONTNEED");
		r = madvise(st->at[page_of(st, i, first)], n * cfg->psz, MADV_DONTNEED);
		if (injected(st, it, "madvise:MADV_DONTNEED", r)) {
			settle_zapped(st, page_of(st, i, first), n);
			continue;
		}
		if (r)
			return op_failed(it, "madvise(MADV_DONTNEED, part of a THP)");
		st->lat_ns[it->split_ops] = ms_now_ns() - t0;
		for (uint64_t k = first; k < first + n; k++)
			st->want[page_of(st, i, k)] = 0;
		it->split_ops++;
	}
	return 0;
}

/*
 * vmsplice() takes a reference on one page of the THP; the page is then zapped (splitting
 * the PMD, and leaving a THP the deferred split cannot split while the pipe holds it) and
 * written afresh. The pipe must still deliver the data of the page it took.
 */
static int split_vmsplice(struct ts_state *st, struct ts_iter *it)
{
	const struct ts_cfg *cfg = &st->cfg;
	int pfd[2];

	memset(&it->pipe, 0, sizeof(it->pipe));
	if (pipe2(pfd, O_CLOEXEC))
		return op_failed(it, "pipe2");
	for (uint64_t i = 0; i < cfg->nr_pmd; i++) {
		uint64_t p = page_of(st, i, st->pick[i]), old = st->want[p], t0;
		struct iovec iov = { st->at[p], cfg->psz };

		if (vmsplice(pfd[1], &iov, 1, 0) != (ssize_t)cfg->psz) {
			op_failed(it, "vmsplice(one page of a THP)");
			break;
		}
		t0 = ms_now_ns();
		if (madvise(st->at[p], cfg->psz, MADV_DONTNEED)) {
			op_failed(it, "madvise(MADV_DONTNEED) of a vmspliced page");
			break;
		}
		st->lat_ns[i] = ms_now_ns() - t0;
		it->split_ops++;
		write_page(st, p, ms_stamp(role(st, R_PARENT), p, st->gen + 1));
		if (read(pfd[0], st->scratch, cfg->psz) != (ssize_t)cfg->psz) {
			op_failed(it, "read(pipe) of the vmspliced page");
			break;
		}
		bad_page(&it->pipe, p, st->scratch, ms_page_check(st->scratch, cfg->psz, old, 0),
			 old, cfg->psz, st->scratch);
	}
	close(pfd[0]);
	close(pfd[1]);
	return 0;
}

static int split_debugfs(struct ts_state *st, struct ts_iter *it)
{
	char cmd[96];

	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++) {
		uintptr_t a = (uintptr_t)pmd_ptr(st, i);
		int fd, len;
		uint64_t t0;

		len = snprintf(cmd, sizeof(cmd), "%d,0x%lx,0x%lx", (int)getpid(),
			       (unsigned long)a, (unsigned long)(a + st->cfg.pmd_bytes));
		/* A trigger, not a setting: there is no old value to journal or restore. */
		fd = open(TS_DEBUGFS_SPLIT, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return op_failed(it, "open(" TS_DEBUGFS_SPLIT ")");
		t0 = ms_now_ns();
		if (write(fd, cmd, len) != len) {
			close(fd);
			return op_failed(it, "write(" TS_DEBUGFS_SPLIT ")");
		}
		st->lat_ns[i] = ms_now_ns() - t0;
		close(fd);
		it->split_ops++;
	}
	return 0;
}

static int do_collapse(struct ts_state *st, struct ts_iter *it)
{
	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++) {
		uint64_t t0 = ms_now_ns();
		int r, tries = 0;

		ms_inject_point(st->ctx, "madvise:MADV_COLLAPSE");
		r = madvise(pmd_ptr(st, i), st->cfg.pmd_bytes, MADV_COLLAPSE);
		if (injected(st, it, "madvise:MADV_COLLAPSE", r))
			continue;
		while (r && errno == EAGAIN && ++tries < TS_COLLAPSE_TRIES)
			r = madvise(pmd_ptr(st, i), st->cfg.pmd_bytes, MADV_COLLAPSE);
		if (r)
			return op_failed(it, "madvise(MADV_COLLAPSE)");
		st->lat_ns[it->split_ops] = ms_now_ns() - t0;
		it->split_ops++;
	}
	return 0;
}

/* ---- the fork paths ---- */

static bool pipe_wait(int fd)
{
	char c;
	ssize_t n;

	while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	return n == 1;
}

static bool pipe_post(int fd)
{
	return write(fd, "x", 1) == 1;
}

static void report_bad(struct ms_ctx *ctx, const char *what, const char *who,
		       const struct ts_bad *b)
{
	if (!b->checked)
		return;
	ms_check(ctx, !b->bad, what, "%s: %llu of %llu pages differ from the model; first: page "
		 "%llu, address 0x%lx (byte %zu of the page): expected 0x%02x, observed 0x%02x",
		 who, (unsigned long long)b->bad, (unsigned long long)b->checked,
		 (unsigned long long)b->page, (unsigned long)b->addr, b->off, b->want, b->got);
}

/*
 * The child of fork-cow: it must see the fork-time data although the parent wrote since,
 * then its own write splits its copy of each PMD; its THPs must all be gone afterwards.
 */
static int cow_child(struct ms_ctx *ctx, struct ts_state *st, uint64_t anon_base, int in,
		     int out)
{
	const struct ts_cfg *cfg = &st->cfg;
	struct ts_bad b;
	struct ts_snap s;

	/* The model in this copy of the state is the one of fork time. */
	if (!pipe_wait(in))
		return TS_CHILD_BROKEN;
	verify_all(st, &b);
	report_bad(ctx, "fork-cow: child sees the fork-time data (parent's writes stay private)",
		   "child", &b);
	for (uint64_t i = 0; i < cfg->nr_pmd; i++) {
		uint64_t p = page_of(st, i, (st->pick[i] + cfg->per_pmd / 2) % cfg->per_pmd);

		write_page(st, p, ms_stamp(role(st, R_CHILD), p, st->gen + 1));
	}
	verify_all(st, &b);
	report_bad(ctx, "fork-cow: child keeps its own writes", "child", &b);
	if (snap_take(&s))
		return TS_CHILD_BROKEN;
	ms_check(ctx, s.anon_huge <= anon_base, "fork-cow: child's writes split its PMDs",
		 "child AnonHugePages %llu kB after writing one page of each of %llu THPs, %llu "
		 "kB before the parent populated the region", (unsigned long long)s.anon_huge >> 10,
		 (unsigned long long)cfg->nr_pmd, (unsigned long long)anon_base >> 10);
	return pipe_post(out) ? 0 : TS_CHILD_BROKEN;
}

/* The child of pin-iouring: it got copies at fork and must not see what io_uring wrote. */
static int pin_child(struct ms_ctx *ctx, struct ts_state *st, int in, int out)
{
	struct ts_bad b;

	if (!pipe_wait(in))
		return TS_CHILD_BROKEN;
	verify_all(st, &b);
	report_bad(ctx, "pin-iouring: child's copies do not see the parent's pinned-buffer I/O",
		   "child", &b);
	return pipe_post(out) ? 0 : TS_CHILD_BROKEN;
}

struct ts_fork {
	int p2c[2], c2p[2];
	pid_t pid;
};

static pid_t fork_timed(struct ms_ctx *ctx, struct ts_state *st, struct ts_iter *it,
			struct ts_fork *f, uint64_t anon_base)
{
	uint64_t t0;
	int err;

	f->pid = -1;
	if (pipe2(f->p2c, O_CLOEXEC))
		return -errno;
	if (pipe2(f->c2p, O_CLOEXEC)) {
		err = errno;
		close(f->p2c[0]);
		close(f->p2c[1]);
		return -err;
	}
	t0 = ms_now_ns();
	f->pid = fork();
	err = errno;
	if (f->pid == 0) {
		close(f->p2c[1]);
		close(f->c2p[0]);
		_exit(st->cfg.path == P_FORK_COW ?
		      cow_child(ctx, st, anon_base, f->p2c[0], f->c2p[1]) :
		      pin_child(ctx, st, f->p2c[0], f->c2p[1]));
	}
	it->fork_ns = ms_now_ns() - t0;
	close(f->p2c[0]);
	close(f->c2p[1]);
	if (f->pid < 0) {
		close(f->p2c[1]);
		close(f->c2p[0]);
		return -err;
	}
	it->forked = true;
	return f->pid;
}

/* Let the child check, wait for it, reap it. */
static void fork_finish(struct ts_iter *it, struct ts_fork *f)
{
	int status = 0;

	if (!pipe_post(f->p2c[1]) || !pipe_wait(f->c2p[0]))
		op_failed(it, "pipe to the fork child");
	close(f->p2c[1]);
	close(f->c2p[0]);
	while (waitpid(f->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			op_failed(it, "waitpid(fork child)");
			return;
		}
	}
	it->child_status = status;
}

/* After fork, the parent's first write to each shared THP splits its PMD and copies 4K. */
static int split_fork_cow(struct ms_ctx *ctx, struct ts_state *st, struct ts_iter *it)
{
	struct ts_fork f;
	int ret;

	ret = fork_timed(ctx, st, it, &f, it->base.anon_huge);
	if (ret < 0) {
		errno = -ret;
		return op_failed(it, "fork");
	}
	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++) {
		uint64_t p = page_of(st, i, st->pick[i]), t0 = ms_now_ns();

		/* The first store is the COW fault: that is what is timed. */
		*(volatile uint64_t *)st->at[p] = 0;
		st->lat_ns[i] = ms_now_ns() - t0;
		write_page(st, p, ms_stamp(role(st, R_PARENT), p, st->gen + 1));
		it->split_ops++;
	}
	fork_finish(it, &f);
	return 0;
}

static int uring_io(struct ts_state *st, bool write_op, void *buf, off_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	if (write_op)
		io_uring_prep_write_fixed(sqe, st->data_fd, buf, st->cfg.psz, off, 0);
	else
		io_uring_prep_read_fixed(sqe, st->data_fd, buf, st->cfg.psz, off, 0);
	ret = io_uring_submit_and_wait(&st->ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(&st->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&st->ring, cqe);
	if (ret >= 0 && ret != (int)st->cfg.psz)
		return -EIO;
	return ret < 0 ? ret : 0;
}

/* The file holds, at page slot i, the new data io_uring reads into PMD i's picked page. */
static int uring_prepare(struct ts_state *st)
{
	const struct ts_cfg *cfg = &st->cfg;

	for (uint64_t i = 0; i < cfg->nr_pmd; i++) {
		uint64_t p = page_of(st, i, st->pick[i]);

		ms_page_fill(st->scratch, cfg->psz, ms_stamp(role(st, R_DMA), p, st->gen + 1));
		if (pwrite(st->data_fd, st->scratch, cfg->psz, (off_t)(i * cfg->psz)) !=
		    (ssize_t)cfg->psz)
			return errno ? -errno : -EIO;
	}
	return 0;
}

/* Through the pin, into the parent's pages: they must be the ones it maps after the split. */
static int uring_read_into(struct ts_state *st, struct ts_iter *it)
{
	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++) {
		uint64_t p = page_of(st, i, st->pick[i]);
		int ret = uring_io(st, false, st->at[p], (off_t)(i * st->cfg.psz));

		if (ret) {
			errno = -ret;
			return op_failed(it, "io_uring READ_FIXED into the pinned buffer");
		}
		st->want[p] = ms_stamp(role(st, R_DMA), p, st->gen + 1);
	}
	return 0;
}

/* And out of them: what the device would see is what the parent's mapping shows. */
static int uring_write_from(struct ts_state *st, struct ts_iter *it)
{
	const struct ts_cfg *cfg = &st->cfg;
	off_t base = (off_t)(cfg->nr_pmd * cfg->psz);

	memset(&it->file, 0, sizeof(it->file));
	for (uint64_t i = 0; i < cfg->nr_pmd; i++) {
		uint64_t p = page_of(st, i, (st->pick[i] + cfg->per_pmd / 2) % cfg->per_pmd);
		off_t off = base + (off_t)(i * cfg->psz);
		int ret = uring_io(st, true, st->at[p], off);

		if (ret) {
			errno = -ret;
			return op_failed(it, "io_uring WRITE_FIXED from the pinned buffer");
		}
		if (pread(st->data_fd, st->scratch, cfg->psz, off) != (ssize_t)cfg->psz)
			return op_failed(it, "pread(io_uring data file)");
		bad_page(&it->file, p, st->scratch,
			 ms_page_check(st->scratch, cfg->psz, st->want[p], 0), st->want[p],
			 cfg->psz, st->scratch);
	}
	return 0;
}

/*
 * The region is an io_uring fixed buffer (FOLL_PIN | FOLL_LONGTERM). fork() must not share
 * pinned anon pages with the child: copy_huge_pmd() splits each pinned PMD in the parent and
 * the PTE copy gives the child private copies, so the pin stays with the parent's pages.
 */
static int split_pin_iouring(struct ms_ctx *ctx, struct ts_state *st, struct ts_iter *it)
{
	struct iovec iov = { st->region, st->cfg.size_bytes };
	struct ts_fork f;
	int ret;

	if ((ret = uring_prepare(st))) {
		errno = -ret;
		return op_failed(it, "pwrite(io_uring data file)");
	}
	ms_inject_point(ctx, "io_uring_register");
	ret = io_uring_register_buffers(&st->ring, &iov, 1);
	errno = -ret;
	/* Nothing pinned, nothing forked: the THPs stay whole and the data as it was. */
	if (ret && injected(st, it, "io_uring_register", -1)) {
		it->injected = st->cfg.nr_pmd;
		return 0;
	}
	if (!ret)
		ms_inject_done(ctx, "io_uring_register", 0, 0);
	if (ret)
		return op_failed(it, "io_uring_register_buffers(the THP region)");
	/* A kill here ("pinned") must release every FOLL_PIN the buffer holds. */
	ms_inject_point(ctx, "pinned");
	ms_inject_done(ctx, "pinned", 0, 0);
	ret = fork_timed(ctx, st, it, &f, it->base.anon_huge);
	if (ret < 0) {
		errno = -ret;
		op_failed(it, "fork");
		goto out_unregister;
	}
	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++)
		st->lat_ns[i] = it->fork_ns;
	it->split_ops = st->cfg.nr_pmd;
	uring_read_into(st, it);
	fork_finish(it, &f);
	uring_write_from(st, it);
out_unregister:
	ret = io_uring_unregister_buffers(&st->ring);
	if (ret) {
		errno = -ret;
		op_failed(it, "io_uring_unregister_buffers");
	}
	return 0;
}

/* ---- one iteration ---- */

static int iter_map(struct ms_ctx *ctx, struct ts_state *st)
{
	const struct ts_cfg *cfg = &st->cfg;
	int advice = cfg->path == P_COLLAPSE ? MADV_NOHUGEPAGE : MADV_HUGEPAGE;

	st->region = map_at(st->place[0], cfg->size_bytes, PROT_READ | PROT_WRITE, 0);
	if (st->region == MAP_FAILED) {
		st->region = NULL;
		return ms_error(ctx, errno, "mmap(%llu bytes): %s",
				(unsigned long long)cfg->size_bytes, strerror(errno));
	}
	/* collapse: 4K pages first, MADV_COLLAPSE makes the THPs. */
	if (madvise(st->region, cfg->size_bytes, advice))
		return ms_error(ctx, errno, "madvise(%s): %s", cfg->path == P_COLLAPSE ?
				"MADV_NOHUGEPAGE" : "MADV_HUGEPAGE", strerror(errno));
	if (cfg->path != P_MREMAP)
		return 0;
	st->dest = map_at(st->place[1], cfg->size_bytes, PROT_NONE, MAP_NORESERVE);
	if (st->dest == MAP_FAILED) {
		st->dest = NULL;
		return ms_error(ctx, errno, "mmap(mremap destination): %s", strerror(errno));
	}
	return 0;
}

/*
 * After populate: every PMD must be a THP (collapse: none may be). The split paths then set
 * MADV_NOHUGEPAGE, so khugepaged cannot collapse a split THP back before it is measured.
 */
static int iter_populated(struct ms_ctx *ctx, struct ts_state *st, struct ts_iter *it)
{
	const struct ts_cfg *cfg = &st->cfg;
	uint64_t got = it->populated.anon_huge - it->base.anon_huge;
	int ret;

	if (cfg->path == P_COLLAPSE) {
		if (madvise(st->region, cfg->size_bytes, MADV_HUGEPAGE))
			return ms_error(ctx, errno, "madvise(MADV_HUGEPAGE): %s", strerror(errno));
		return 0;
	}
	if (it->populated.anon_huge < it->base.anon_huge || got < cfg->size_bytes) {
		ret = ms_skip(ctx, "only %llu of %llu kB became PMD-mapped THPs at fault "
			      "(AnonHugePages; memory too fragmented, or THP defrag off)",
			      (unsigned long long)(it->populated.anon_huge - it->base.anon_huge) >>
			      10, (unsigned long long)cfg->size_bytes >> 10);
		return ret;
	}
	if (madvise(st->region, cfg->size_bytes, MADV_NOHUGEPAGE))
		return ms_error(ctx, errno, "madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	return 0;
}

static void pick_pages(struct ts_state *st)
{
	for (uint64_t i = 0; i < st->cfg.nr_pmd; i++) {
		/* Never page 0: mremap and dontneed need the THP's lower half kept. */
		st->pick[i] = 1 + rnd(st, i, 0x7069636b) % (st->cfg.per_pmd / 2 - 1);
		st->lat_ns[i] = 0;
	}
}

static int run_path(struct ms_ctx *ctx, struct ts_state *st, struct ts_iter *it)
{
	switch (st->cfg.path) {
	case P_MUNMAP:
		return split_munmap(st, it);
	case P_MPROTECT:
		return split_mprotect(st, it);
	case P_MREMAP:
		return split_mremap(st, it);
	case P_DONTNEED:
		return split_dontneed(st, it);
	case P_FORK_COW:
		return split_fork_cow(ctx, st, it);
	case P_PIN_VMSPLICE:
		return split_vmsplice(st, it);
	case P_PIN_IOURING:
		return split_pin_iouring(ctx, st, it);
	case P_COLLAPSE:
		return do_collapse(st, it);
	case P_DEBUGFS:
		return split_debugfs(st, it);
	}
	return 0;
}

/* ---- judging an iteration ---- */

/* Page tables of the region after the op, above the baseline, by the cost model. */
static uint64_t pte_expected(const struct ts_state *st)
{
	const struct ts_cfg *cfg = &st->cfg;
	uint64_t tables = cfg->nr_pmd;

	/* One PTE table per PMD the region spans; mremap's destination halves add one each. */
	if (cfg->path == P_MREMAP)
		tables += cfg->nr_pmd;
	return tables * cfg->psz;
}

static void check_counters(struct ms_ctx *ctx, struct ts_state *st, const struct ts_iter *it)
{
	uint64_t n = it->split_ops, want[VM_NR] = { 0 };
	int path = st->cfg.path;

	if (path == P_COLLAPSE)
		want[VM_COLLAPSE_ALLOC] = n;
	else
		want[VM_SPLIT_PMD] = path == P_FORK_COW ? 2 * n : n;
	if (path == P_DEBUGFS)
		want[VM_SPLIT_PAGE] = n;
	for (int k = 0; k < VM_NR; k++) {
		uint64_t d = it->split.vm[k] - it->populated.vm[k];

		if (!(it->split.vm_found & it->populated.vm_found & (1u << k)))
			continue;
		ms_count(ctx, st->m_vm[k], d);
		if (!want[k])
			continue;
		/* System-wide counters: other processes only add to them. */
		ms_check(ctx, d >= want[k], ts_vm_keys[k], "/proc/vmstat %s moved by %llu during "
			 "the %s ops, expected at least %llu (this case's own)", ts_vm_keys[k],
			 (unsigned long long)d, ts_paths[path], (unsigned long long)want[k]);
	}
}

static void check_tables(struct ms_ctx *ctx, struct ts_state *st, const struct ts_iter *it)
{
	const struct ts_cfg *cfg = &st->cfg;
	int64_t d = (int64_t)(it->split.pte - it->base.pte);
	uint64_t want_anon = cfg->path == P_COLLAPSE ? cfg->size_bytes : 0;
	uint64_t anon = it->split.anon_huge - it->base.anon_huge;
	/*
	 * After injected failures the model allows a range: a PMD whose op failed may or may not
	 * have been split before the error (a split is no leak), and a half that did not move
	 * needs no table at the destination. Whatever it was, munmap must free it all (below).
	 */
	uint64_t slack_pte = cfg->path == P_MREMAP ? it->injected * cfg->psz : 0;
	uint64_t slack_anon = it->injected * cfg->pmd_bytes;
	bool anon_ok = cfg->path == P_COLLAPSE ? anon <= want_anon && anon + slack_anon >=
		       want_anon : anon <= want_anon + slack_anon;

	ms_check(ctx, d <= (int64_t)pte_expected(st) && d + (int64_t)slack_pte >=
		 (int64_t)pte_expected(st), "VmPTE after the op is the cost model's",
		 "%s over %llu THPs: VmPTE %+lld bytes over the baseline, the model says %llu (one "
		 "4 KiB PTE table per PMD%s; %llu op(s) failed by injection)", ts_paths[cfg->path],
		 (unsigned long long)cfg->nr_pmd, (long long)d,
		 (unsigned long long)pte_expected(st), cfg->path == P_MREMAP ?
		 ", and one per moved half" : "", (unsigned long long)it->injected);
	ms_check(ctx, it->split.anon_huge >= it->base.anon_huge && anon_ok,
		 cfg->path == P_COLLAPSE ? "AnonHugePages after MADV_COLLAPSE" :
		 "AnonHugePages after the split", "smaps_rollup AnonHugePages %lld kB over the "
		 "baseline, expected %llu kB (%llu kB either way after injected failures)",
		 (long long)(int64_t)anon >> 10, (unsigned long long)want_anon >> 10,
		 (unsigned long long)slack_anon >> 10);
	ms_check(ctx, it->freed.pte == it->base.pte, "page tables freed after munmap",
		 "VmPTE %llu bytes after unmapping everything, %llu before the iteration",
		 (unsigned long long)it->freed.pte, (unsigned long long)it->base.pte);
	ms_gauge(ctx, st->m_pte, d);
	ms_gauge(ctx, st->m_anon, (int64_t)(it->populated.anon_huge - it->base.anon_huge));
}

static void check_child(struct ms_ctx *ctx, const struct ts_iter *it)
{
	int s = it->child_status;

	if (!it->forked)
		return;
	ms_check(ctx, WIFEXITED(s) && WEXITSTATUS(s) == 0, "fork child exits cleanly",
		 "status 0x%x (%s %d)", s, WIFSIGNALED(s) ? "signal" : "exit code",
		 WIFSIGNALED(s) ? WTERMSIG(s) : WEXITSTATUS(s));
}

static void judge(struct ms_ctx *ctx, struct ts_state *st, struct ts_iter *it)
{
	const char *path = ts_paths[st->cfg.path];
	char what[96];

	snprintf(what, sizeof(what), "%s: data matches the model", path);
	report_bad(ctx, what, "parent", &it->data);
	report_bad(ctx, "pin-vmsplice: the pipe delivers the page as it was spliced", "pipe",
		   &it->pipe);
	report_bad(ctx, "pin-iouring: WRITE_FIXED sends what the parent maps", "file",
		   &it->file);
	check_child(ctx, it);
	check_tables(ctx, st, it);
	check_counters(ctx, st, it);
	/* The ops that an injector failed left no latency: the first split_ops are the rest. */
	for (uint64_t i = 0; i < it->split_ops; i++)
		ms_sample(ctx, st->m_split, st->lat_ns[i]);
	if (it->forked)
		ms_sample(ctx, st->m_fork, it->fork_ns);
	ms_count(ctx, st->m_splits, it->split_ops);
	ms_count(ctx, st->m_checked, it->data.checked + it->pipe.checked + it->file.checked);
}

static int op_error(struct ms_ctx *ctx, const struct ts_state *st, const struct ts_iter *it)
{
	int e = it->op_err;

	if (st->cfg.path == P_COLLAPSE && (e == EINVAL || e == ENOMEM))
		return ms_skip(ctx, "%s: %s%s", it->op_what, strerror(e), e == EINVAL ?
			       " (MADV_COLLAPSE needs Linux 6.1)" : " (no THP could be allocated)");
	return ms_error(ctx, e, "%s: %s", it->op_what, strerror(e));
}

static int snap(struct ms_ctx *ctx, struct ts_snap *s)
{
	int ret = snap_take(s);

	if (ret)
		return ms_error(ctx, -ret, "reading /proc/self/status, smaps_rollup or vmstat: %s",
				strerror(-ret));
	return 0;
}

/*
 * Everything between the baseline and the last reading touches only memory setup already
 * touched, and records nothing in the case's shared area: the VmPTE deltas are the region's.
 */
static int measured(struct ms_ctx *ctx, struct ts_state *st, struct ts_iter *it)
{
	int ret;

	if ((ret = snap(ctx, &it->base)) || (ret = iter_map(ctx, st)))
		return ret;
	populate(st);
	if ((ret = snap(ctx, &it->populated)) || (ret = iter_populated(ctx, st, it)))
		return ret;
	pick_pages(st);
	run_path(ctx, st, it);
	verify_all(st, &it->data);
	if ((ret = snap(ctx, &it->split)))
		return ret;
	if ((ret = unmap_all(st)))
		return ms_error(ctx, -ret, "munmap(region): %s", strerror(-ret));
	return snap(ctx, &it->freed);
}

static int thp_split_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct ts_state *st = ms_priv(ctx);
	struct ts_iter it = { 0 };
	int ret;

	st->gen = 2 * iter + 1;	/* ops write gen + 1: generations never repeat */
	ret = measured(ctx, st, &it);
	if (ret) {
		unmap_all(st);
		return ret;
	}
	/* After a failed op the model's expectations do not hold: the error is the result. */
	if (it.op_err)
		return op_error(ctx, st, &it);
	judge(ctx, st, &it);
	return 0;
}

/* ---- probe, setup, teardown ---- */

static int cfg_load(struct ms_ctx *ctx, struct ts_cfg *cfg)
{
	uint64_t pmd = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = (int)ms_param_i(ctx, "path");
	cfg->asked_bytes = (uint64_t)ms_param_i(ctx, "size");
	cfg->seed = ms_seed(ctx);
	cfg->psz = (size_t)sysconf(_SC_PAGESIZE);
	if (access(TS_THP_DIR, F_OK))
		return ms_skip(ctx, "THP not built in (no " TS_THP_DIR ")");
	if (ms_read_u64(TS_THP_DIR "/hpage_pmd_size", &pmd) || !pmd)
		return ms_skip(ctx, "no " TS_THP_DIR "/hpage_pmd_size: no PMD-sized THP");
	cfg->pmd_bytes = pmd;
	cfg->size_bytes = ms_align_up(cfg->asked_bytes, pmd);
	cfg->nr_pmd = cfg->size_bytes / pmd;
	cfg->npages = cfg->size_bytes / cfg->psz;
	cfg->per_pmd = pmd / cfg->psz;
	return 0;
}

/* Make a THP mode knob allow MADV_HUGEPAGE: journaled, restored at case end. */
static int thp_allow(struct ms_ctx *ctx, const char *path, const char *off, const char *want)
{
	char cur[64];
	int ret;

	if (ms_knob_read(path, cur, sizeof(cur)) || strcmp(cur, off))
		return 0;	/* the per-size knob is missing before Linux 6.8 */
	ret = ms_knob_write(ctx, path, want);
	if (ret)
		return ms_skip(ctx, "THP disabled (%s is '%s') and setting '%s' failed: %s", path,
			       cur, want, strerror(-ret));
	ms_note(ctx, "%s was '%s'; set '%s' (journaled, restored after the case)", path, cur,
		want);
	return 0;
}

static int probe_memory(struct ms_ctx *ctx, const struct ts_cfg *cfg)
{
	uint64_t avail_kb, need = 2 * cfg->size_bytes + (16 << 20);

	/* pin-iouring's child gets a copy of every pinned page: twice the region. */
	if (!ms_meminfo_kb("MemAvailable", &avail_kb) && need / 1024 > avail_kb / 10 * 9)
		return ms_skip(ctx, "needs about %llu MiB, MemAvailable is %llu MiB",
			       (unsigned long long)need >> 20, (unsigned long long)avail_kb >> 10);
	return 0;
}

static int probe_uring(struct ms_ctx *ctx)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(4, &ring, 0);

	if (ret)
		return ms_skip(ctx, "io_uring unavailable: io_uring_setup: %s%s", strerror(-ret),
			       ret == -EPERM ? " (kernel.io_uring_disabled?)" : "");
	io_uring_queue_exit(&ring);
	return 0;
}

static int thp_split_probe(struct ms_ctx *ctx)
{
	char path[160];
	struct ts_cfg cfg;
	int ret;

	if ((ret = cfg_load(ctx, &cfg)) || (ret = probe_memory(ctx, &cfg)))
		return ret;
	if ((ret = thp_allow(ctx, TS_THP_DIR "/enabled", "never", "madvise")))
		return ret;
	snprintf(path, sizeof(path), TS_THP_DIR "/hugepages-%llukB/enabled",
		 (unsigned long long)cfg.pmd_bytes >> 10);
	if ((ret = thp_allow(ctx, path, "never", "inherit")))
		return ret;
	if (cfg.path == P_DEBUGFS && access(TS_DEBUGFS_SPLIT, W_OK))
		return ms_skip(ctx, "no %s (%s): debugfs not mounted, or a kernel without "
			       "CONFIG_DEBUG_FS", TS_DEBUGFS_SPLIT, strerror(errno));
	if (cfg.path == P_PIN_IOURING)
		return probe_uring(ctx);
	return 0;
}

static int register_metrics(struct ms_ctx *ctx, struct ts_state *st)
{
	const struct ms_metric_spec m[] = {
		{ &st->m_split, st->cfg.path == P_COLLAPSE ? "collapse_ns" : "split_ns", MS_M_HIST,
		  "ns" },
		{ &st->m_fork, "fork_ns", MS_M_HIST, "ns" },
		{ &st->m_pte, "vmpte_after_op_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_anon, "anon_huge_populated_bytes", MS_M_GAUGE, "bytes" },
		{ &st->m_vm[VM_SPLIT_PMD], "vmstat_thp_split_pmd", MS_M_COUNTER, "events" },
		{ &st->m_vm[VM_SPLIT_PAGE], "vmstat_thp_split_page", MS_M_COUNTER, "events" },
		{ &st->m_vm[VM_COLLAPSE_ALLOC], "vmstat_thp_collapse_alloc", MS_M_COUNTER,
		  "events" },
		{ &st->m_splits, st->cfg.path == P_COLLAPSE ? "collapses" : "splits",
		  MS_M_COUNTER, "pmds" },
		{ &st->m_checked, "checked_pages", MS_M_COUNTER, "pages" },
	};

	for (size_t i = 0; i < MS_ARRAY_SIZE(m); i++) {
		if (m[i].id == &st->m_fork && !is_fork_path(st->cfg.path))
			continue;
		*m[i].id = ms_metric(ctx, m[i].name, m[i].kind, m[i].unit);
		if (*m[i].id < 0)
			return ms_error(ctx, -*m[i].id, "registering metric %s: %s", m[i].name,
					strerror(-*m[i].id));
	}
	return 0;
}

static void *alloc_touched(size_t len)
{
	void *p = calloc(1, len);

	/* calloc may hand out untouched pages: touch them now, not in a measured window. */
	if (p)
		memset(p, 0, len);
	return p;
}

/*
 * One unmeasured pass over the address space the iterations use: a sanitizer's shadow of it
 * and the stack get their page tables here, not between two VmPTE readings.
 */
static int warm_up(struct ms_ctx *ctx, struct ts_state *st)
{
	struct ts_snap s;
	struct ts_bad b;
	int ret;

	if ((ret = iter_map(ctx, st)))
		return ret;
	populate(st);
	verify_all(st, &b);
	if (st->dest && mprotect(st->dest, st->cfg.size_bytes, PROT_READ))
		return ms_error(ctx, errno, "mprotect(mremap destination): %s", strerror(errno));
	for (uint64_t off = 0; st->dest && off < st->cfg.size_bytes; off += st->cfg.psz)
		(void)*(volatile char *)(st->dest + off);
	if ((ret = unmap_all(st)))
		return ms_error(ctx, -ret, "munmap: %s", strerror(-ret));
	if ((ret = snap(ctx, &s)))
		return ret;
	if (!(s.vm_found & (1u << VM_SPLIT_PMD)))
		ms_note(ctx, "/proc/vmstat has no thp_split_pmd (CONFIG_VM_EVENT_COUNTERS off?): "
			"the vmstat checks are off");
	return 0;
}

static int thp_split_setup(struct ms_ctx *ctx)
{
	struct ts_state *st = calloc(1, sizeof(*st));
	const struct ts_cfg *cfg;
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	st->data_fd = -1;
	st->ctx = ctx;
	ms_set_priv(ctx, st);
	if ((ret = cfg_load(ctx, &st->cfg)) || (ret = register_metrics(ctx, st)))
		return ret;
	cfg = &st->cfg;
	if (cfg->size_bytes != cfg->asked_bytes)
		ms_note(ctx, "size %llu rounded up to %llu bytes (the PMD size)",
			(unsigned long long)cfg->asked_bytes, (unsigned long long)cfg->size_bytes);
	st->at = alloc_touched(cfg->npages * sizeof(*st->at));
	st->want = alloc_touched(cfg->npages * sizeof(*st->want));
	st->pick = alloc_touched(cfg->nr_pmd * sizeof(*st->pick));
	st->lat_ns = alloc_touched(cfg->nr_pmd * sizeof(*st->lat_ns));
	st->scratch = alloc_touched(cfg->psz);
	if (!st->at || !st->want || !st->pick || !st->lat_ns || !st->scratch)
		return ms_error(ctx, ENOMEM, "out of memory for %llu pages",
				(unsigned long long)cfg->npages);
	if (cfg->path == P_PIN_IOURING) {
		if ((ret = io_uring_queue_init(4, &st->ring, 0)))
			return ms_error(ctx, -ret, "io_uring_queue_init: %s", strerror(-ret));
		st->ring_ok = true;
		st->data_fd = memfd_create("mmstorm-thp-split", MFD_CLOEXEC);
		if (st->data_fd < 0)
			return ms_error(ctx, errno, "memfd_create: %s", strerror(errno));
	}
	if (!(st->place[0] = arena_place(st, 0)) ||
	    (cfg->path == P_MREMAP && !(st->place[1] = arena_place(st, 1))))
		return ms_error(ctx, errno, "mmap(arena of %zu bytes): %s", st->arena_len,
				strerror(errno));
	return warm_up(ctx, st);
}

static void thp_split_teardown(struct ms_ctx *ctx)
{
	struct ts_state *st = ms_priv(ctx);

	if (!st)
		return;
	if (unmap_all(st))
		ms_error(ctx, errno, "munmap(region): %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		if (st->arena[i] && munmap(st->arena[i], st->arena_len))
			ms_error(ctx, errno, "munmap(arena): %s", strerror(errno));
	if (st->ring_ok)
		io_uring_queue_exit(&st->ring);
	if (st->data_fd >= 0 && close(st->data_fd))
		ms_error(ctx, errno, "close(io_uring data file): %s", strerror(errno));
	free(st->at);
	free(st->want);
	free(st->pick);
	free(st->lat_ns);
	free(st->scratch);
	free(st);
	ms_set_priv(ctx, NULL);
}

const struct ms_workload ms_wl_thp_split = {
	.name = "thp-split",
	.summary = "PMD-mapped THP split paths (partial munmap/mprotect/mremap/DONTNEED, fork+COW, "
		   "vmsplice and io_uring pins, debugfs) and MADV_COLLAPSE: data, AnonHugePages, "
		   "VmPTE and vmstat checked",
	.params = thp_split_params,
	.probe = thp_split_probe,
	.setup = thp_split_setup,
	.run = thp_split_run,
	.teardown = thp_split_teardown,
};

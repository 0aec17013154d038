/* pfnmap: PCI BAR and /dev/mem VM_PFNMAP mappings through fork, mremap, splits and kill -9. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmstorm/inject.h"
#include "mmstorm/metrics.h"
#include "mmstorm/model.h"
#include "mmstorm/util.h"
#include "mmstorm/workload.h"

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define PF_MEMTYPE_LIST "/sys/kernel/debug/x86/pat_memtype_list"
#define PF_PCI_DIR "/sys/bus/pci/devices"
#define PF_IORESOURCE_MEM 0x00000200ULL
#define PF_IORESOURCE_PREFETCH 0x00002000ULL
#define PF_SLOT_BYTES 64		/* each worker's record in every page of a written window */
#define PF_MAX_BARS 6

enum { SRC_DEVMEM, SRC_BAR };
enum { ORD_TAIL, ORD_HEAD };
enum { OP_MAP, OP_MADVISE, OP_FORK, OP_MUNMAP, OP_MPROTECT, OP_MREMAP, OP_KILL, OP_NR };

static const char *const pf_sources[] = { "devmem", "bar", NULL };
static const char *const pf_orders[] = { "tail-first", "head-first", NULL };
static const char *const pf_op_names[] = { "map", "madvise", "fork", "munmap", "mprotect",
					   "mremap", "kill", NULL };

static const struct ms_param pfnmap_params[] = {
	{ "source", MS_P_ENUM, "devmem", "", 1, 0, pf_sources,
	  "devmem: /dev/mem over the first top-level System RAM range of /proc/iomem, read-only "
	  "(as selftests/mm/pfnmap.c); bar: a PCI memory BAR through "
	  "/sys/bus/pci/devices/*/resourceN" },
	{ "bar", MS_P_STRING, "auto", "", 1, 0, NULL,
	  "source=bar: auto (QEMU VGA or ivshmem RAM BAR, else the first prefetchable memory "
	  "BAR), vga, ivshmem, DOMAIN:BUS:DEV.FN or DOMAIN:BUS:DEV.FN/resourceN" },
	{ "wc", MS_P_BOOL, "0", "", 1, 0, NULL,
	  "source=bar: map resourceN_wc (write-combining; prefetchable BARs only)" },
	{ "allow_device_bars", MS_P_BOOL, "0", "", 1, 0, NULL,
	  "outside a VM guest, map a real device's BAR (prefetchable BARs only, read-only); "
	  "refused with a SKIP unless set" },
	{ "pages", MS_P_INT, "2", "pages", 2, 4096, NULL,
	  "pages in every mapping of the window (splits need 2)" },
	{ "offset", MS_P_SIZE, "0", "bytes", 0, 1LL << 40, NULL,
	  "window start inside the BAR or the System RAM range (page-aligned)" },
	{ "workers", MS_P_INT, "4", "", 1, PF_SLOT_BYTES, NULL,
	  "processes mapping the same window at once, each running the op list" },
	{ "children", MS_P_INT, "2", "", 1, 256, NULL,
	  "children each worker forks in the fork op (all alive at once)" },
	{ "hold_vmas", MS_P_INT, "0", "vmas", 0, 4096, NULL,
	  "extra mappings of the window each worker keeps through the iteration: the VMAs "
	  "sharing the range, which every fork copies" },
	{ "rounds", MS_P_INT, "2", "", 1, 1000000, NULL,
	  "passes over the op list per worker and iteration" },
	{ "ops", MS_P_STRING, "all", "", 1, 0, NULL,
	  "comma list of map, madvise, fork, munmap, mprotect, mremap, kill; or all" },
	{ "unmap_order", MS_P_ENUM, "tail-first", "", 1, 0, pf_orders,
	  "split pieces are unmapped highest first (what PAT before the pfnmap tracking rewrite "
	  "handles) or lowest first (leaks a memtype before the rewrite)" },
	{ "require_memtype_list", MS_P_BOOL, "0", "", 1, 0, NULL,
	  "SKIP when " PF_MEMTYPE_LIST " is unreadable (else the leak check is off, with a "
	  "note)" },
	{ NULL }
};

struct pf_cfg {
	int source, order;
	bool wc, allow_bars, require_list, in_guest;
	bool writable;			/* records are written through the window (emulated RAM) */
	int prot;
	unsigned pages, workers, children, hold, rounds;
	unsigned ops;			/* 1 << OP_* */
	size_t psz, len;
	uint64_t offset;		/* the parameter: window start inside the region */
	uint64_t phys;			/* physical address of the window */
	off_t file_off;			/* its offset in path */
	uint64_t seed;
	char path[PATH_MAX];
	char what[192];			/* the region, for messages */
};

/* One PAT memtype list entry, as the kernel prints it (end exclusive). */
struct pf_mt {
	uint64_t start, end;
	char type[24];
};

struct pf_mtlist {
	struct pf_mt *e;		/* entries overlapping the window, sorted */
	size_t n, cap;
	size_t total;			/* all entries of the list */
};

/* Shared by the case process and its workers (MAP_SHARED). */
struct pf_ctl {
	uint32_t holding;		/* futex: workers done mapping their held VMAs */
	uint32_t go;			/* futex: the case sampled the list; run the ops */
};

struct pf_state {
	struct pf_cfg cfg;
	int m_mmap, m_munmap, m_fork, m_mremap, m_mprotect, m_reap;
	int m_mmaps, m_ops, m_checked, m_leaked, m_vmas, m_held;
	struct pf_ctl *ctl;
	pid_t *wpid;
	unsigned nspawned;
	uint64_t iter;
	bool have_list;
	bool ran;			/* an iteration spawned workers */
	bool broken;			/* a worker failed: its children may still be exiting */
	struct pf_mtlist base;		/* before the case's first worker */
	size_t base_total;
};

/* A worker: one process mapping the window; its children inherit a copy. */
struct pf_worker {
	struct ms_ctx *ctx;
	const struct pf_state *st;
	const struct pf_cfg *cfg;
	unsigned idx;
	int fd;
	char *witness;			/* first mapping: reference view, and where records go */
	char **holds;
	unsigned nholds;
	uint64_t gen;
	unsigned char *want, *got;	/* len bytes each */
	pid_t *pids;
};

/* ---- small helpers ---- */

static void appendf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;
	int n;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
	/* Cut messages say so: a reader must not take a prefix for the whole list. */
	if (n >= 0 && (size_t)n >= len - used && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

/* Device memory is read and written with aligned 8-byte accesses only. */
static void copy_in(void *dst, const char *src, size_t len)
{
	const volatile uint64_t *s = (const volatile uint64_t *)src;
	uint64_t *d = dst;

	for (size_t i = 0; i < len / 8; i++)
		d[i] = s[i];
}

static void copy_out(char *dst, const void *src, size_t len)
{
	volatile uint64_t *d = (volatile uint64_t *)dst;
	const uint64_t *s = src;

	for (size_t i = 0; i < len / 8; i++)
		d[i] = s[i];
	/* Write-combining buffers must drain before another mapping reads the bytes back. */
	__sync_synchronize();
}

static int read_hex(const char *dir, const char *name, unsigned *v)
{
	char path[PATH_MAX], buf[32];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	n = ms_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	*v = (unsigned)strtoul(buf, NULL, 16);
	return 0;
}

/* ---- the PAT memtype list ---- */

static int mt_cmp(const void *a, const void *b)
{
	const struct pf_mt *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->type, y->type);
}

static int mt_add(struct pf_mtlist *l, const struct pf_mt *m)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct pf_mt *e = realloc(l->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	l->e[l->n++] = *m;
	return 0;
}

/*
 * Snapshot of the entries overlapping the window: other activity in the system adds and
 * removes entries elsewhere, which must not count as this case's leaks.
 */
static int mt_read(const struct pf_cfg *cfg, struct pf_mtlist *l)
{
	char line[256];
	FILE *f;
	int ret = 0;

	l->n = 0;
	l->total = 0;
	f = fopen(PF_MEMTYPE_LIST, "re");
	if (!f)
		return -errno;
	while (!ret && fgets(line, sizeof(line), f)) {
		struct pf_mt m;

		if (sscanf(line, "PAT: [mem 0x%" SCNx64 "-0x%" SCNx64 "] %23s", &m.start, &m.end,
			   m.type) != 3)
			continue;
		l->total++;
		if (m.end > cfg->phys && m.start < cfg->phys + cfg->len)
			ret = mt_add(l, &m);
	}
	if (!ret && ferror(f))
		ret = -EIO;
	fclose(f);
	if (l->n)
		qsort(l->e, l->n, sizeof(*l->e), mt_cmp);
	return ret;
}

static void mt_free(struct pf_mtlist *l)
{
	free(l->e);
	memset(l, 0, sizeof(*l));
}

/* One line per distinct entry: "+[mem 0x...-0x...] write-back x3". */
static void mt_put(char *buf, size_t len, char sign, const struct pf_mt *m, unsigned times)
{
	appendf(buf, len, " %c[mem 0x%016" PRIx64 "-0x%016" PRIx64 "] %s", sign, m->start,
		m->end, m->type);
	if (times > 1)
		appendf(buf, len, " x%u", times);
	appendf(buf, len, ";");
}

/*
 * Multiset difference of two sorted snapshots: entries only in after (leaked) and only in
 * before (gone), written to buf. Returns the number of entries that differ.
 */
static size_t mt_diff(const struct pf_mtlist *before, const struct pf_mtlist *after,
		      size_t *leaked, char *buf, size_t len)
{
	size_t i = 0, j = 0, diff = 0;
	const struct pf_mt *last = NULL;
	unsigned times = 0;
	char last_sign = 0;

	*leaked = 0;
	buf[0] = '\0';
	while (i < before->n || j < after->n) {
		int c = i == before->n ? 1 : j == after->n ? -1 :
			mt_cmp(&before->e[i], &after->e[j]);
		const struct pf_mt *m;
		char sign;

		if (!c) {
			i++;
			j++;
			continue;
		}
		m = c < 0 ? &before->e[i++] : &after->e[j++];
		sign = c < 0 ? '-' : '+';
		*leaked += sign == '+';
		diff++;
		if (last && sign == last_sign && !mt_cmp(last, m)) {
			times++;
			continue;
		}
		if (last)
			mt_put(buf, len, last_sign, last, times);
		last = m;
		last_sign = sign;
		times = 1;
	}
	if (last)
		mt_put(buf, len, last_sign, last, times);
	return diff;
}

/* ---- the source: /dev/mem over System RAM, or a PCI BAR ---- */

/* The first top-level "System RAM" range of /proc/iomem, pages inside it (as the selftest). */
static int iomem_first_ram(struct ms_ctx *ctx, size_t psz, uint64_t *start, uint64_t *end)
{
	unsigned long long lo = 0, hi = 0;
	bool found = false;
	char line[256];
	FILE *f;

	f = fopen("/proc/iomem", "re");
	if (!f)
		return ms_skip(ctx, "/proc/iomem: %s", strerror(errno));
	while (!found && fgets(line, sizeof(line), f))
		found = isalnum((unsigned char)line[0]) && strstr(line, " : System RAM\n") &&
			sscanf(line, "%llx-%llx", &lo, &hi) == 2;
	fclose(f);
	if (!found)
		return ms_skip(ctx, "no top-level System RAM range in /proc/iomem");
	if (!lo && !hi)
		return ms_skip(ctx, "/proc/iomem hides addresses (0-0): needs CAP_SYS_ADMIN");
	*start = ms_align_up(lo, psz);
	*end = (hi + 1) / psz * psz;
	return 0;
}

static int cfg_devmem(struct ms_ctx *ctx, struct pf_cfg *cfg)
{
	uint64_t start = 0, end = 0;
	int ret;

	if ((ret = iomem_first_ram(ctx, cfg->psz, &start, &end)))
		return ret;
	cfg->phys = start + cfg->offset;
	if (end <= start || cfg->phys + cfg->len > end)
		return ms_skip(ctx, "the window (offset %#llx, %u pages) does not fit the first "
			       "System RAM range [mem %#llx-%#llx] of /proc/iomem",
			       (unsigned long long)cfg->offset, cfg->pages,
			       (unsigned long long)start, (unsigned long long)end - 1);
	snprintf(cfg->path, sizeof(cfg->path), "/dev/mem");
	cfg->file_off = (off_t)cfg->phys;
	snprintf(cfg->what, sizeof(cfg->what), "/dev/mem [mem %#llx-%#llx] (first System RAM "
		 "range %#llx-%#llx)", (unsigned long long)cfg->phys,
		 (unsigned long long)(cfg->phys + cfg->len - 1), (unsigned long long)start,
		 (unsigned long long)end - 1);
	return 0;
}

struct pf_bar {
	char dev[64];
	int idx;
	uint64_t start, size, flags;
	unsigned vendor, device;
};

/* QEMU's std VGA framebuffer or ivshmem memory: plain guest RAM, safe to write. */
static bool bar_is_ram(const struct pf_bar *b)
{
	return (b->vendor == 0x1234 && b->device == 0x1111 && b->idx == 0) ||
	       (b->vendor == 0x1af4 && b->device == 0x1110 && b->idx == 2);
}

static bool bar_prefetchable(const struct pf_bar *b)
{
	return b->flags & PF_IORESOURCE_PREFETCH;
}

/* The memory BARs of one device that sysfs lets us mmap (a resourceN file exists). */
static int dev_bars(const char *dev, struct pf_bar *bars)
{
	char dir[320], path[384], line[128];
	unsigned long long start, end, flags;
	unsigned vendor = 0, device = 0;
	int n = 0;
	FILE *f;

	snprintf(dir, sizeof(dir), PF_PCI_DIR "/%s", dev);
	if (read_hex(dir, "vendor", &vendor) || read_hex(dir, "device", &device))
		return 0;
	snprintf(path, sizeof(path), "%s/resource", dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	for (int idx = 0; n < PF_MAX_BARS && fgets(line, sizeof(line), f); idx++) {
		if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
			continue;
		if (!(flags & PF_IORESOURCE_MEM) || end <= start)
			continue;
		snprintf(path, sizeof(path), "%s/resource%d", dir, idx);
		if (access(path, F_OK))
			continue;
		ms_strlcpy(bars[n].dev, dev, sizeof(bars[n].dev));
		bars[n].idx = idx;
		bars[n].start = start;
		bars[n].size = end - start + 1;
		bars[n].flags = flags;
		bars[n].vendor = vendor;
		bars[n].device = device;
		n++;
	}
	fclose(f);
	return n;
}

struct pf_spec {
	char dev[64];			/* empty: any device */
	int idx;			/* -1: any BAR */
	bool vga, ivshmem;
};

static int parse_bar_spec(struct ms_ctx *ctx, const char *s, struct pf_spec *sp)
{
	const char *slash = strchr(s, '/');
	size_t dl = slash ? (size_t)(slash - s) : strlen(s);

	memset(sp, 0, sizeof(*sp));
	sp->idx = -1;
	if (!strcmp(s, "auto"))
		return 0;
	sp->vga = !strcmp(s, "vga");
	sp->ivshmem = !strcmp(s, "ivshmem");
	if (sp->vga || sp->ivshmem)
		return 0;
	if (!dl || dl >= sizeof(sp->dev) || strspn(s, "0123456789abcdefABCDEF:.") < dl ||
	    (slash && sscanf(slash, "/resource%d", &sp->idx) != 1))
		return ms_error(ctx, EINVAL, "bar='%s': expected auto, vga, ivshmem, "
				"DOMAIN:BUS:DEV.FN or DOMAIN:BUS:DEV.FN/resourceN", s);
	memcpy(sp->dev, s, dl);
	sp->dev[dl] = '\0';
	return 0;
}

struct pf_scan {
	struct pf_bar ram, pref;	/* first emulated RAM BAR, first prefetchable one */
	bool have_ram, have_pref;
	unsigned devices, bars, small, unprefetchable;
};

static void scan_bar(const struct pf_cfg *cfg, const struct pf_spec *sp,
		     const struct pf_bar *b, struct pf_scan *s)
{
	if (sp->idx >= 0 && b->idx != sp->idx)
		return;
	if ((sp->vga && (b->vendor != 0x1234 || b->device != 0x1111)) ||
	    (sp->ivshmem && (b->vendor != 0x1af4 || b->device != 0x1110)))
		return;
	s->bars++;
	if (b->size < cfg->offset + cfg->len) {
		s->small++;
		return;
	}
	if (bar_is_ram(b) && !s->have_ram) {
		s->ram = *b;
		s->have_ram = true;
	} else if (!bar_is_ram(b) && !bar_prefetchable(b)) {
		s->unprefetchable++;
	} else if (!s->have_pref && !sp->vga && !sp->ivshmem) {
		s->pref = *b;
		s->have_pref = true;
	}
}

static int scan_bars(const struct pf_cfg *cfg, const struct pf_spec *sp, struct pf_scan *s)
{
	struct dirent **names;
	struct pf_bar bars[PF_MAX_BARS];
	int n;

	memset(s, 0, sizeof(*s));
	n = scandir(PF_PCI_DIR, &names, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		const char *d = names[i]->d_name;

		if (d[0] != '.' && (!sp->dev[0] || !strcasecmp(d, sp->dev))) {
			int nb = dev_bars(d, bars);

			s->devices++;
			for (int k = 0; k < nb; k++)
				scan_bar(cfg, sp, &bars[k], s);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

/* Pick the BAR: emulated RAM first; a real device only prefetchable (reads have no effect). */
static int pick_bar(struct ms_ctx *ctx, struct pf_cfg *cfg, struct pf_bar *b)
{
	const char *spec = ms_param_s(ctx, "bar");
	struct pf_spec sp;
	struct pf_scan s;
	int ret;

	if ((ret = parse_bar_spec(ctx, spec, &sp)))
		return ret;
	if ((ret = scan_bars(cfg, &sp, &s)))
		return ms_skip(ctx, PF_PCI_DIR ": %s", strerror(-ret));
	if (!s.bars)
		return ms_skip(ctx, "no memory BAR with a resourceN file for bar=%s (%u PCI "
			       "devices looked at)", spec, s.devices);
	if (!s.have_ram && !s.have_pref)
		return ms_skip(ctx, "no usable memory BAR for bar=%s: %u devices, %u memory BARs "
			       "with a resourceN file, %u smaller than offset + %u pages, %u not "
			       "prefetchable (reads may have side effects)", spec, s.devices,
			       s.bars, s.small, cfg->pages, s.unprefetchable);
	*b = s.have_ram ? s.ram : s.pref;
	if (!cfg->in_guest && !cfg->allow_bars)
		return ms_skip(ctx, "refusing to map BAR%d of %s (%04x:%04x), a real device "
			       "outside a VM guest; allow_device_bars=1 maps prefetchable BARs "
			       "read-only", b->idx, b->dev, b->vendor, b->device);
	return 0;
}

static int cfg_bar(struct ms_ctx *ctx, struct pf_cfg *cfg)
{
	struct pf_bar b;
	int ret;

	if ((ret = pick_bar(ctx, cfg, &b)))
		return ret;
	snprintf(cfg->path, sizeof(cfg->path), PF_PCI_DIR "/%s/resource%d%s", b.dev, b.idx,
		 cfg->wc ? "_wc" : "");
	if (cfg->wc && access(cfg->path, F_OK))
		return ms_skip(ctx, "no %s: the kernel offers write-combining only for "
			       "prefetchable BARs", cfg->path);
	cfg->writable = bar_is_ram(&b);
	cfg->phys = b.start + cfg->offset;
	cfg->file_off = (off_t)cfg->offset;
	snprintf(cfg->what, sizeof(cfg->what), "%s/resource%d%s (%04x:%04x, %s%s) [mem "
		 "%#llx-%#llx]", b.dev, b.idx, cfg->wc ? "_wc" : "", b.vendor, b.device,
		 bar_is_ram(&b) ? "emulated RAM" : "device",
		 bar_prefetchable(&b) ? ", prefetchable" : "", (unsigned long long)cfg->phys,
		 (unsigned long long)(cfg->phys + cfg->len - 1));
	return 0;
}

static int parse_ops(struct ms_ctx *ctx, const char *s, unsigned *mask)
{
	char buf[MS_PARAM_STR_MAX], *tok, *save = NULL;

	*mask = 0;
	ms_strlcpy(buf, s, sizeof(buf));
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		int i;

		if (!strcmp(tok, "all")) {
			*mask = (1u << OP_NR) - 1;
			continue;
		}
		for (i = 0; i < OP_NR && strcmp(tok, pf_op_names[i]); i++)
			;
		if (i == OP_NR)
			return ms_error(ctx, EINVAL, "ops: unknown op '%s' (map, madvise, fork, "
					"munmap, mprotect, mremap, kill or all)", tok);
		*mask |= 1u << i;
	}
	if (!*mask)
		return ms_error(ctx, EINVAL, "ops='%s' names no op", s);
	return 0;
}

static int cfg_load(struct ms_ctx *ctx, struct pf_cfg *cfg)
{
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->source = (int)ms_param_i(ctx, "source");
	cfg->order = (int)ms_param_i(ctx, "unmap_order");
	cfg->wc = ms_param_i(ctx, "wc");
	cfg->allow_bars = ms_param_i(ctx, "allow_device_bars");
	cfg->require_list = ms_param_i(ctx, "require_memtype_list");
	cfg->in_guest = ms_in_guest(ctx);
	cfg->pages = (unsigned)ms_param_i(ctx, "pages");
	cfg->workers = (unsigned)ms_param_i(ctx, "workers");
	cfg->children = (unsigned)ms_param_i(ctx, "children");
	cfg->hold = (unsigned)ms_param_i(ctx, "hold_vmas");
	cfg->rounds = (unsigned)ms_param_i(ctx, "rounds");
	cfg->offset = (uint64_t)ms_param_i(ctx, "offset");
	cfg->seed = ms_seed(ctx);
	cfg->psz = (size_t)sysconf(_SC_PAGESIZE);
	cfg->len = (size_t)cfg->pages * cfg->psz;
	if ((ret = parse_ops(ctx, ms_param_s(ctx, "ops"), &cfg->ops)))
		return ret;
	if (cfg->offset % cfg->psz)
		return ms_error(ctx, EINVAL, "offset %#llx is not a multiple of the page size %zu",
				(unsigned long long)cfg->offset, cfg->psz);
	if (cfg->workers * PF_SLOT_BYTES > cfg->psz)
		return ms_error(ctx, EINVAL, "workers=%u: at most %zu (one %d-byte record each per "
				"page)", cfg->workers, cfg->psz / PF_SLOT_BYTES, PF_SLOT_BYTES);
	if (cfg->source == SRC_DEVMEM && cfg->wc)
		return ms_error(ctx, EINVAL, "wc=1 applies to source=bar only");
	ret = cfg->source == SRC_DEVMEM ? cfg_devmem(ctx, cfg) : cfg_bar(ctx, cfg);
	cfg->prot = cfg->writable ? PROT_READ | PROT_WRITE : PROT_READ;
	return ret;
}

/* ---- probe ---- */

/* Do all pages of the read-only window hold the same bytes? */
static bool pages_alike(const char *p, const struct pf_cfg *cfg)
{
	uint64_t a[64], b[64];

	for (unsigned i = 1; i < cfg->pages; i++)
		for (size_t off = 0; off < cfg->psz; off += sizeof(a)) {
			copy_in(a, p + off, sizeof(a));
			copy_in(b, p + i * cfg->psz + off, sizeof(b));
			if (memcmp(a, b, sizeof(a)))
				return false;
		}
	return true;
}

static int probe_map(struct ms_ctx *ctx, const struct pf_cfg *cfg)
{
	int fd = open(cfg->path, (cfg->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	void *p;

	if (fd < 0 && errno == ENOENT && cfg->source == SRC_DEVMEM)
		return ms_skip(ctx, "no /dev/mem (CONFIG_DEVMEM off or no device node)");
	if (fd < 0)
		return ms_skip(ctx, "open %s: %s", cfg->path, strerror(errno));
	p = mmap(NULL, cfg->len, cfg->prot, MAP_SHARED, fd, cfg->file_off);
	if (p == MAP_FAILED) {
		int err = errno;

		close(fd);
		return ms_skip(ctx, "mmap of %s failed: %s%s", cfg->what, strerror(err),
			       err == EPERM && cfg->source == SRC_DEVMEM ?
			       " (CONFIG_STRICT_DEVMEM or lockdown refuses the range)" : "");
	}
	if (!cfg->writable && pages_alike(p, cfg))
		ms_note(ctx, "the %u pages of %s hold the same bytes (low RAM is mostly zero): the "
			"data checks cannot tell a page from its neighbour; offset= can pick a "
			"window with content", cfg->pages, cfg->what);
	munmap(p, cfg->len);
	close(fd);
	return 0;
}

static int pfnmap_probe(struct ms_ctx *ctx)
{
	struct pf_cfg cfg;
	int ret;

	if ((ret = cfg_load(ctx, &cfg)) || (ret = probe_map(ctx, &cfg)))
		return ret;
	if (cfg.require_list && access(PF_MEMTYPE_LIST, R_OK))
		return ms_skip(ctx, "%s: %s (needs x86 PAT, CONFIG_DEBUG_FS and debugfs mounted)",
			       PF_MEMTYPE_LIST, strerror(errno));
	return 0;
}

/* ---- what a worker sees ---- */

static uint64_t record_stamp(const struct pf_worker *w, unsigned page)
{
	return ms_stamp(w->cfg->seed ^ ((uint64_t)(w->idx + 1) << 32), page, w->gen);
}

/* A new generation of this worker's records, written through its first mapping. */
static void stamp_window(struct pf_worker *w)
{
	uint64_t rec[PF_SLOT_BYTES / 8];

	if (!w->cfg->writable)
		return;
	w->gen++;
	for (unsigned p = 0; p < w->cfg->pages; p++) {
		ms_page_fill(rec, sizeof(rec), record_stamp(w, p));
		copy_out(w->witness + p * w->cfg->psz + w->idx * PF_SLOT_BYTES, rec, sizeof(rec));
	}
}

/* Written window: this worker's record in each page holds its latest generation. */
static bool check_records(struct pf_worker *w, const char *what, const char *addr,
			  unsigned first, unsigned n)
{
	const struct pf_cfg *cfg = w->cfg;
	uint64_t want[PF_SLOT_BYTES / 8], got[PF_SLOT_BYTES / 8];

	for (unsigned i = 0; i < n; i++) {
		const char *slot = addr + i * cfg->psz + w->idx * PF_SLOT_BYTES;
		const unsigned char *a = (const void *)want, *b = (const void *)got;
		size_t off = 0;

		ms_page_fill(want, sizeof(want), record_stamp(w, first + i));
		copy_in(got, slot, sizeof(got));
		if (!memcmp(want, got, sizeof(want)))
			continue;
		while (a[off] == b[off])
			off++;
		return ms_check(w->ctx, false, what, "worker %u, window page %u (phys %#llx), "
				"record byte %zu at %p: expected 0x%02x, observed 0x%02x "
				"(generation %llu, written through another mapping of %s)", w->idx,
				first + i, (unsigned long long)(cfg->phys + (first + i) * cfg->psz),
				off, (const void *)(slot + off), a[off], b[off],
				(unsigned long long)w->gen, cfg->what);
	}
	return ms_check(w->ctx, true, what, "%s", "");
}

/*
 * Read-only window: the pages must show what the first mapping shows. Firmware may change
 * a byte of low RAM meanwhile, so a difference counts only if a second look agrees.
 */
static bool check_pages(struct pf_worker *w, const char *what, const char *addr,
			unsigned first, unsigned n)
{
	size_t bytes = (size_t)n * w->cfg->psz;

	for (int tries = 0; tries < 2; tries++) {
		copy_in(w->want, w->witness + first * w->cfg->psz, bytes);
		copy_in(w->got, addr, bytes);
		if (!memcmp(w->want, w->got, bytes))
			return ms_check(w->ctx, true, what, "%s", "");
	}
	return ms_check_mem(w->ctx, what, w->want, w->got, bytes, (uintptr_t)addr, w->cfg->psz);
}

/* Pages first .. first + n - 1 of the window, mapped at addr, hold what the window holds. */
static bool check_view(struct pf_worker *w, const char *what, const char *addr, unsigned first,
		       unsigned n)
{
	ms_count(w->ctx, w->st->m_checked, n);
	if (w->cfg->writable)
		return check_records(w, what, addr, first, n);
	return check_pages(w, what, addr, first, n);
}

static bool smaps_is_header(const char *line)
{
	return (*line >= '0' && *line <= '9') || (*line >= 'a' && *line <= 'f');
}

/* The VmFlags of the VMA holding addr, from /proc/self/smaps. */
static int vma_flags(uintptr_t addr, char *flags, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	bool in = false;
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned long lo, hi;

		if (smaps_is_header(line)) {
			if (in)
				break;
			in = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi;
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			ms_strlcpy(flags, line + 8 + strspn(line + 8, " \t"), len);
			flags[strcspn(flags, "\n")] = '\0';
			ret = 0;
			break;
		}
	}
	free(line);
	fclose(f);
	return ret;
}

static void check_pfnmap(struct pf_worker *w, const void *addr, const char *where)
{
	static const char what[] = "VmFlags of the mapping show pf (VM_PFNMAP)";
	char flags[192], padded[200];
	int ret = vma_flags((uintptr_t)addr, flags, sizeof(flags));

	if (ret) {
		ms_check(w->ctx, false, what, "%s: no VmFlags for %p in /proc/self/smaps: %s",
			 where, addr, strerror(-ret));
		return;
	}
	snprintf(padded, sizeof(padded), " %s ", flags);
	ms_check(w->ctx, strstr(padded, " pf ") != NULL, what, "%s: VMA at %p of %s has VmFlags: "
		 "%s", where, addr, w->cfg->what, flags);
}

/* ---- timed calls: a failure is a check (the kernel refused), never a harness error ---- */

/* Setup mappings are not timed: mmap_ns is the latency the ops see with them in place. */
static char *win_map_timed(struct pf_worker *w, char *at, unsigned first, unsigned n,
			   const char *where, bool timed)
{
	const struct pf_cfg *cfg = w->cfg;
	uint64_t t0 = ms_now_ns(), t1;
	char *p;
	int err;

	p = mmap(at, (size_t)n * cfg->psz, cfg->prot, MAP_SHARED | (at ? MAP_FIXED : 0), w->fd,
		 cfg->file_off + (off_t)first * (off_t)cfg->psz);
	err = errno;
	t1 = ms_now_ns();
	if (p == MAP_FAILED) {
		ms_check(w->ctx, false, "mmap of the pfnmap window succeeds", "%s: mmap of %u "
			 "pages from window page %u of %s: %s", where, n, first, cfg->what,
			 strerror(err));
		return NULL;
	}
	if (timed)
		ms_sample(w->ctx, w->st->m_mmap, t1 - t0);
	ms_count(w->ctx, w->st->m_mmaps, 1);
	return p;
}

static char *win_map(struct pf_worker *w, char *at, unsigned first, unsigned n,
		     const char *where)
{
	return win_map_timed(w, at, first, n, where, true);
}

static bool win_unmap(struct pf_worker *w, char *p, unsigned n, const char *where)
{
	uint64_t t0 = ms_now_ns(), t1;
	int ret, err;

	ret = munmap(p, (size_t)n * w->cfg->psz);
	err = errno;
	t1 = ms_now_ns();
	if (ret)
		return ms_check(w->ctx, false, "munmap of a pfnmap succeeds", "%s: munmap(%p, %u "
				"pages): %s", where, (void *)p, n, strerror(err));
	ms_sample(w->ctx, w->st->m_munmap, t1 - t0);
	return true;
}

static bool win_protect(struct pf_worker *w, char *p, int prot, const char *where)
{
	uint64_t t0 = ms_now_ns(), t1;
	int ret, err;

	ret = mprotect(p, w->cfg->psz, prot);
	err = errno;
	t1 = ms_now_ns();
	if (ret)
		return ms_check(w->ctx, false, "mprotect of one page of a pfnmap succeeds",
				"%s: mprotect(%p, 1 page, %#x): %s", where, (void *)p, prot,
				strerror(err));
	ms_sample(w->ctx, w->st->m_mprotect, t1 - t0);
	return true;
}

/* ---- the ops; each maps the window afresh and leaves nothing mapped ---- */

/* The page split off first: the last one, or with head-first the first one. */
static unsigned cut_page(const struct pf_cfg *cfg)
{
	return cfg->order == ORD_HEAD ? 0 : cfg->pages - 1;
}

/* First page of what the split leaves beside the cut page. */
static unsigned rest_page(const struct pf_cfg *cfg)
{
	return cfg->order == ORD_HEAD ? 1 : 0;
}

static int op_map(struct pf_worker *w)
{
	unsigned n = w->cfg->pages;
	char *a = win_map(w, NULL, 0, n, "map");

	if (!a)
		return 0;
	check_pfnmap(w, a, "fresh mapping");
	check_view(w, "data through a fresh mapping", a, 0, n);
	win_unmap(w, a, n, "map");
	return 0;
}

static int op_madvise(struct pf_worker *w)
{
	static const struct {
		int advice;
		const char *name;
	} refused[] = {
		{ MADV_DONTNEED, "DONTNEED" }, { MADV_DONTNEED_LOCKED, "DONTNEED_LOCKED" },
		{ MADV_FREE, "FREE" }, { MADV_WIPEONFORK, "WIPEONFORK" }, { MADV_COLD, "COLD" },
		{ MADV_PAGEOUT, "PAGEOUT" }, { MADV_POPULATE_READ, "POPULATE_READ" },
		{ MADV_POPULATE_WRITE, "POPULATE_WRITE" },
	};
	unsigned n = w->cfg->pages;
	char *a = win_map(w, NULL, 0, n, "madvise"), what[96];

	if (!a)
		return 0;
	for (size_t i = 0; i < MS_ARRAY_SIZE(refused); i++) {
		int ret = madvise(a, w->cfg->len, refused[i].advice), err = errno;

		snprintf(what, sizeof(what), "madvise(MADV_%s) on a pfnmap fails with EINVAL",
			 refused[i].name);
		ms_check(w->ctx, ret && err == EINVAL, what, "%s: %s", w->cfg->what,
			 ret ? strerror(err) : "succeeded");
	}
	check_view(w, "data after the refused madvise calls", a, 0, n);
	win_unmap(w, a, n, "madvise");
	return 0;
}

static __attribute__((noreturn)) void fork_child(struct pf_worker *w, char *a, unsigned c,
						 pid_t parent)
{
	const struct pf_cfg *cfg = w->cfg;
	unsigned cut = cut_page(cfg), rest = rest_page(cfg);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	check_view(w, "child reads the inherited pfnmap", a, 0, cfg->pages);
	if (!c)
		check_pfnmap(w, a, "mapping inherited by fork");
	if (win_unmap(w, a + cut * cfg->psz, 1, "child's partial munmap"))
		check_view(w, "child's data after its partial munmap", a + rest * cfg->psz, rest,
			   cfg->pages - 1);
	_exit(0);
}

static void reap_child(struct pf_worker *w, pid_t pid, unsigned c)
{
	int status = 0;
	pid_t r;

	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		ms_check(w->ctx, false, "forked child exits cleanly", "waitpid(child %u): %s", c,
			 strerror(errno));
		return;
	}
	ms_check(w->ctx, WIFEXITED(status) && !WEXITSTATUS(status), "forked child exits cleanly",
		 "worker %u, child %u: %s %d", w->idx, c,
		 WIFSIGNALED(status) ? "killed by signal" : "exit status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static int op_fork(struct pf_worker *w)
{
	const struct pf_cfg *cfg = w->cfg;
	char *a = win_map(w, NULL, 0, cfg->pages, "fork");
	unsigned n = 0;
	pid_t me = getpid();

	if (!a)
		return 0;
	for (; n < cfg->children; n++) {
		uint64_t t0, t1;
		pid_t pid;
		int err;

		ms_inject_point(w->ctx, "fork");
		t0 = ms_now_ns();
		pid = fork();
		err = errno;
		t1 = ms_now_ns();
		if (pid == 0)
			fork_child(w, a, n, me);
		if (pid < 0) {
			/* An injected failure is a result: the PAT checks follow as always. */
			if (!ms_inject_done(w->ctx, "fork", pid, err))
				ms_check(w->ctx, false, "fork of a process with pfnmaps succeeds",
					 "worker %u, child %u: %s", w->idx, n, strerror(err));
			break;
		}
		ms_inject_done(w->ctx, "fork", pid, 0);
		w->pids[n] = pid;
		ms_sample(w->ctx, w->st->m_fork, t1 - t0);
	}
	for (unsigned c = 0; c < n; c++)
		reap_child(w, w->pids[c], c);
	check_view(w, "parent's data after its children exited", a, 0, cfg->pages);
	win_unmap(w, a, cfg->pages, "fork");
	return 0;
}

static int op_munmap(struct pf_worker *w)
{
	const struct pf_cfg *cfg = w->cfg;
	unsigned n = cfg->pages, cut = cut_page(cfg), rest = rest_page(cfg);
	char *a = win_map(w, NULL, 0, n, "munmap split"), *b;

	if (!a)
		return 0;
	if (!win_unmap(w, a + cut * cfg->psz, 1, "partial munmap")) {
		win_unmap(w, a, n, "munmap split");
		return 0;
	}
	check_view(w, "data left beside a partial munmap", a + rest * cfg->psz, rest, n - 1);
	b = win_map(w, a + cut * cfg->psz, cut, 1, "mmap of the unmapped page back in place");
	if (b) {
		ms_check(w->ctx, b == a + cut * cfg->psz, "MAP_FIXED maps the page back in place",
			 "asked %p, got %p", (void *)(a + cut * cfg->psz), (void *)b);
		check_pfnmap(w, b, "page mapped back");
		check_view(w, "data through the page mapped back", b, cut, 1);
		/* A mapping of its own: whatever the order, it goes first. */
		win_unmap(w, b, 1, "page mapped back");
	}
	win_unmap(w, a + rest * cfg->psz, n - 1, "rest of the split");
	return 0;
}

static int op_mprotect(struct pf_worker *w)
{
	const struct pf_cfg *cfg = w->cfg;
	unsigned n = cfg->pages, cut = cut_page(cfg), rest = rest_page(cfg);
	char *a = win_map(w, NULL, 0, n, "mprotect split");

	if (!a)
		return 0;
	if (win_protect(w, a + cut * cfg->psz, PROT_NONE, "split off one page"))
		check_view(w, "data beside a PROT_NONE page", a + rest * cfg->psz, rest, n - 1);
	if (win_protect(w, a + cut * cfg->psz, cfg->prot, "protection back"))
		check_view(w, "data after mprotect back", a, 0, n);
	if (cfg->order == ORD_HEAD) {
		/* One call: the kernel unmaps the pieces lowest first. */
		win_unmap(w, a, n, "both pieces at once");
		return 0;
	}
	win_unmap(w, a + (n - 1) * cfg->psz, 1, "last piece");
	win_unmap(w, a, n - 1, "first piece");
	return 0;
}

/* Move the whole window onto the reservation t; the moved mapping, or NULL. */
static char *mremap_move(struct pf_worker *w, char *a, char *t)
{
	const struct pf_cfg *cfg = w->cfg;
	uint64_t t0 = ms_now_ns(), t1;
	char *m;
	int err;

	m = mremap(a, cfg->len, cfg->len, MREMAP_MAYMOVE | MREMAP_FIXED, t);
	err = errno;
	t1 = ms_now_ns();
	if (m == MAP_FAILED) {
		ms_check(w->ctx, false, "mremap of a pfnmap to a fixed address succeeds", "%s: %s",
			 cfg->what, strerror(err));
		return NULL;
	}
	ms_sample(w->ctx, w->st->m_mremap, t1 - t0);
	ms_check(w->ctx, m == t, "mremap with MREMAP_FIXED moves to the address asked",
		 "asked %p, got %p", (void *)t, (void *)m);
	check_pfnmap(w, m, "after mremap to a fixed address");
	check_view(w, "data after mremap to a fixed address", m, 0, cfg->pages);
	return m;
}

/* Shrink by the last page (allowed), then grow back (refused); returns the pages mapped. */
static unsigned mremap_resize(struct pf_worker *w, char **m)
{
	const struct pf_cfg *cfg = w->cfg;
	unsigned left = cfg->pages;
	uint64_t t0 = ms_now_ns(), t1;
	char *e;
	int err;

	e = mremap(*m, cfg->len, cfg->len - cfg->psz, 0);
	err = errno;
	t1 = ms_now_ns();
	if (ms_check(w->ctx, e == *m, "mremap shrink of a pfnmap succeeds in place", "%s: %s",
		     cfg->what, e == MAP_FAILED ? strerror(err) : "moved")) {
		ms_sample(w->ctx, w->st->m_mremap, t1 - t0);
		check_view(w, "data after mremap shrink", *m, 0, --left);
	}
	e = mremap(*m, (size_t)left * cfg->psz, (size_t)(left + 1) * cfg->psz, MREMAP_MAYMOVE);
	err = errno;
	ms_check(w->ctx, e == MAP_FAILED && err == EFAULT,
		 "mremap expand of a pfnmap fails with EFAULT", "%s, %u -> %u pages: %s", cfg->what,
		 left, left + 1, e == MAP_FAILED ? strerror(err) : "succeeded");
	if (e == MAP_FAILED)
		return left;
	*m = e;
	return left + 1;
}

static int op_mremap(struct pf_worker *w)
{
	const struct pf_cfg *cfg = w->cfg;
	char *a, *t, *m;

	t = mmap(NULL, cfg->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t == MAP_FAILED)
		return ms_error(w->ctx, errno, "worker %u: reserving %zu bytes for mremap: %s",
				w->idx, cfg->len, strerror(errno));
	a = win_map(w, NULL, 0, cfg->pages, "mremap");
	m = a ? mremap_move(w, a, t) : NULL;
	if (!m) {
		munmap(t, cfg->len);
		if (a)
			win_unmap(w, a, cfg->pages, "mremap");
		return 0;
	}
	win_unmap(w, m, mremap_resize(w, &m), "after mremap");
	return 0;
}

static __attribute__((noreturn)) void kill_child(struct pf_worker *w, char *a, int fd,
						 pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* Split, the exit path unmaps the lower piece first: out of order for old PAT. */
	if (w->cfg->order == ORD_HEAD)
		win_protect(w, a, PROT_NONE, "child's split before kill -9");
	if (write(fd, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static int op_kill(struct pf_worker *w)
{
	const struct pf_cfg *cfg = w->cfg;
	int p[2], status = 0, err;
	char *a, c;
	uint64_t t0, t1;
	pid_t pid, me = getpid();
	ssize_t r;

	if (pipe2(p, O_CLOEXEC))
		return ms_error(w->ctx, errno, "worker %u: pipe: %s", w->idx, strerror(errno));
	a = win_map(w, NULL, 0, cfg->pages, "kill");
	if (!a)
		goto out_pipe;
	pid = fork();
	err = errno;
	if (pid == 0) {
		close(p[0]);
		kill_child(w, a, p[1], me);
	}
	close(p[1]);
	p[1] = -1;
	if (pid < 0) {
		ms_check(w->ctx, false, "fork of a process with pfnmaps succeeds", "worker %u: %s",
			 w->idx, strerror(err));
		goto out_unmap;
	}
	while ((r = read(p[0], &c, 1)) < 0 && errno == EINTR)
		;
	t0 = ms_now_ns();
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	t1 = ms_now_ns();
	ms_sample(w->ctx, w->st->m_reap, t1 - t0);
	ms_check(w->ctx, r == 1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		 "child killed with its pfnmap alive dies of SIGKILL", "worker %u: child %s, "
		 "status %#x", w->idx, r == 1 ? "was ready" : "never got ready", status);
	check_view(w, "data after a sharer was killed", a, 0, cfg->pages);
out_unmap:
	win_unmap(w, a, cfg->pages, "kill");
out_pipe:
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return 0;
}

static int (*const pf_ops[OP_NR])(struct pf_worker *) = {
	[OP_MAP] = op_map, [OP_MADVISE] = op_madvise, [OP_FORK] = op_fork,
	[OP_MUNMAP] = op_munmap, [OP_MPROTECT] = op_mprotect, [OP_MREMAP] = op_mremap,
	[OP_KILL] = op_kill,
};

/* ---- worker process ---- */

static int worker_setup(struct pf_worker *w)
{
	const struct pf_cfg *cfg = w->cfg;

	w->fd = open(cfg->path, (cfg->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (w->fd < 0)
		return ms_error(w->ctx, errno, "worker %u: open %s: %s", w->idx, cfg->path,
				strerror(errno));
	w->want = malloc(cfg->len);
	w->got = malloc(cfg->len);
	w->holds = calloc(cfg->hold ? cfg->hold : 1, sizeof(*w->holds));
	w->pids = calloc(cfg->children, sizeof(*w->pids));
	if (!w->want || !w->got || !w->holds || !w->pids)
		return ms_error(w->ctx, ENOMEM, "worker %u: out of memory", w->idx);
	w->witness = win_map_timed(w, NULL, 0, cfg->pages, "first mapping", false);
	if (!w->witness)
		return ms_error(w->ctx, EIO, "worker %u: cannot map %s", w->idx, cfg->what);
	for (; w->nholds < cfg->hold; w->nholds++) {
		w->holds[w->nholds] = win_map_timed(w, NULL, 0, cfg->pages, "held mapping",
						      false);
		if (!w->holds[w->nholds])
			return ms_error(w->ctx, EIO, "worker %u: held mapping %u of %s failed",
					w->idx, w->nholds, cfg->what);
	}
	return 0;
}

static void worker_cleanup(struct pf_worker *w)
{
	while (w->nholds--)
		munmap(w->holds[w->nholds], w->cfg->len);
	if (w->witness)
		munmap(w->witness, w->cfg->len);
	if (w->fd >= 0)
		close(w->fd);
	free(w->holds);
	free(w->pids);
	free(w->want);
	free(w->got);
}

static int worker_main(struct ms_ctx *ctx, void *arg, unsigned idx)
{
	struct pf_state *st = arg;
	struct pf_ctl *ctl = st->ctl;
	struct pf_worker w = { .ctx = ctx, .st = st, .cfg = &st->cfg, .idx = idx, .fd = -1,
			       .gen = st->iter << 32 };
	int ret = worker_setup(&w);

	__atomic_add_fetch(&ctl->holding, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&ctl->holding);
	while (!__atomic_load_n(&ctl->go, __ATOMIC_SEQ_CST))
		ms_futex_wait(&ctl->go, 0, -1);
	for (unsigned r = 0; !ret && r < w.cfg->rounds; r++) {
		if (r && ms_should_stop(ctx))
			break;
		for (int op = 0; !ret && op < OP_NR; op++) {
			if (!(w.cfg->ops & (1u << op)))
				continue;
			stamp_window(&w);
			ret = pf_ops[op](&w);
			ms_count(ctx, st->m_ops, 1);
		}
	}
	worker_cleanup(&w);
	return ret ? 1 : 0;
}

/* ---- the case process: spawns the workers, watches the memtype list ---- */

static int check_alive(struct ms_ctx *ctx, const struct pf_state *st)
{
	for (unsigned i = 0; i < st->nspawned; i++) {
		siginfo_t si = { 0 };

		if (waitid(P_PID, (id_t)st->wpid[i], &si, WEXITED | WNOHANG | WNOWAIT))
			return ms_error(ctx, errno, "waitid(worker %u): %s", i, strerror(errno));
		if (si.si_pid)
			return ms_error(ctx, EIO, "worker %u (pid %d) ended before mapping the "
					"window (%s %d)", i, (int)si.si_pid,
					si.si_code == CLD_EXITED ? "exit status" : "signal",
					si.si_status);
	}
	return 0;
}

static int wait_holding(struct ms_ctx *ctx, struct pf_state *st)
{
	for (;;) {
		uint32_t h = __atomic_load_n(&st->ctl->holding, __ATOMIC_SEQ_CST);
		int ret;

		if (h >= st->nspawned)
			return 0;
		if ((ret = check_alive(ctx, st)))
			return ret;
		ms_futex_wait(&st->ctl->holding, h, 10 * 1000 * 1000);
	}
}

static void release_workers(struct pf_state *st)
{
	__atomic_store_n(&st->ctl->go, 1, __ATOMIC_SEQ_CST);
	ms_futex_wake(&st->ctl->go);
}

/* The entries over the window while every worker holds its mappings: one per VMA, or less. */
static void sample_held(struct ms_ctx *ctx, struct pf_state *st)
{
	struct pf_mtlist l = { 0 };

	ms_gauge(ctx, st->m_vmas, (int64_t)st->nspawned * (1 + st->cfg.hold));
	if (st->have_list && !mt_read(&st->cfg, &l))
		ms_gauge(ctx, st->m_held, (int64_t)l.n);
	mt_free(&l);
}

static int reap_workers(struct ms_ctx *ctx, struct pf_state *st)
{
	int ret = 0;

	for (unsigned i = 0; i < st->nspawned; i++) {
		int r = ms_wait(ctx, st->wpid[i]);

		if (r < 0 && !ret)
			ret = ms_error(ctx, r == -EINTR ? EIO : -r, "worker %u (pid %d) %s", i,
				       (int)st->wpid[i], r == -EINTR ? "was killed by a signal" :
				       "could not be waited for");
		else if (r > 0 && !ret)
			ret = -EIO;	/* the worker said why with ms_error() */
	}
	st->nspawned = 0;
	return ret;
}

static void check_memtypes(struct ms_ctx *ctx, struct pf_state *st, const char *what,
			   const char *when, const struct pf_mtlist *before, size_t before_total)
{
	const struct pf_cfg *cfg = &st->cfg;
	struct pf_mtlist after = { 0 };
	char diff[320];
	size_t leaked, n;
	int ret;

	ret = mt_read(cfg, &after);
	if (ret) {
		ms_check(ctx, false, what, "%s: reading " PF_MEMTYPE_LIST ": %s", when,
			 strerror(-ret));
		return;
	}
	n = mt_diff(before, &after, &leaked, diff, sizeof(diff));
	ms_count(ctx, st->m_leaked, leaked);
	ms_check(ctx, !n, what, "%s: %zu entries leaked, %zu gone over [mem %#llx-%#llx] (window "
		 "%zu -> %zu, whole list %zu -> %zu):%s", when, leaked, n - leaked,
		 (unsigned long long)cfg->phys, (unsigned long long)(cfg->phys + cfg->len - 1),
		 before->n, after.n, before_total, after.total, diff);
	mt_free(&after);
}

static int spawn_workers(struct ms_ctx *ctx, struct pf_state *st)
{
	for (unsigned i = 0; i < st->cfg.workers; i++) {
		pid_t pid = ms_spawn(ctx, worker_main, st, i);

		if (pid < 0)
			return ms_error(ctx, -pid, "spawning worker %u: %s", i, strerror(-pid));
		st->wpid[st->nspawned++] = pid;
	}
	return 0;
}

static int pfnmap_run(struct ms_ctx *ctx, uint64_t iter)
{
	struct pf_state *st = ms_priv(ctx);
	struct pf_mtlist before = { 0 };
	char when[64];
	int ret, ret2;

	if (st->have_list && (ret = mt_read(&st->cfg, &before)))
		return ms_error(ctx, -ret, "reading " PF_MEMTYPE_LIST ": %s", strerror(-ret));
	st->iter = iter;
	st->ran = true;
	st->ctl->holding = 0;
	st->ctl->go = 0;
	ret = spawn_workers(ctx, st);
	if (!ret)
		ret = wait_holding(ctx, st);
	if (!ret)
		sample_held(ctx, st);
	release_workers(st);
	ret2 = reap_workers(ctx, st);
	/* Only with every mapper gone: a worker that died may leave children still exiting. */
	if (!ret && !ret2 && st->have_list) {
		snprintf(when, sizeof(when), "iteration %llu, all %u workers exited",
			 (unsigned long long)iter, st->cfg.workers);
		check_memtypes(ctx, st, "PAT memtype list over the window unchanged by the "
			       "iteration", when, &before, before.total);
	}
	mt_free(&before);
	st->broken |= ret || ret2;
	return ret ? ret : ret2;
}

static int register_metrics(struct ms_ctx *ctx, struct pf_state *st)
{
	const struct ms_metric_spec m[] = {
		{ &st->m_mmap, "mmap_ns", MS_M_HIST, "ns" },
		{ &st->m_munmap, "munmap_ns", MS_M_HIST, "ns" },
		{ &st->m_fork, "fork_ns", MS_M_HIST, "ns" },
		{ &st->m_mremap, "mremap_ns", MS_M_HIST, "ns" },
		{ &st->m_mprotect, "mprotect_ns", MS_M_HIST, "ns" },
		{ &st->m_reap, "kill_reap_ns", MS_M_HIST, "ns" },
		{ &st->m_mmaps, "mmaps", MS_M_COUNTER, "mappings" },
		{ &st->m_ops, "ops", MS_M_COUNTER, "ops" },
		{ &st->m_checked, "checked_pages", MS_M_COUNTER, "pages" },
		{ &st->m_leaked, "memtype_leaked", MS_M_COUNTER, "entries" },
		{ &st->m_vmas, "range_vmas", MS_M_GAUGE, "vmas" },
		{ &st->m_held, "memtype_entries_held", MS_M_GAUGE, "entries" },
	};

	return ms_metrics(ctx, m, MS_ARRAY_SIZE(m));
}

static void setup_list(struct ms_ctx *ctx, struct pf_state *st)
{
	int ret = mt_read(&st->cfg, &st->base);

	st->have_list = !ret;
	st->base_total = st->base.total;
	if (ret)
		ms_note(ctx, "%s: %s: the PAT memtype leak check is off", PF_MEMTYPE_LIST,
			strerror(-ret));
}

static int pfnmap_setup(struct ms_ctx *ctx)
{
	struct pf_state *st = calloc(1, sizeof(*st));
	struct pf_cfg *cfg;
	int ret;

	if (!st)
		return ms_error(ctx, ENOMEM, "out of memory");
	ms_set_priv(ctx, st);
	cfg = &st->cfg;
	if ((ret = cfg_load(ctx, cfg)) || (ret = register_metrics(ctx, st)))
		return ret;
	st->wpid = calloc(cfg->workers, sizeof(*st->wpid));
	st->ctl = mmap(NULL, sizeof(*st->ctl), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st->ctl == MAP_FAILED)
		st->ctl = NULL;
	if (!st->wpid || !st->ctl)
		return ms_error(ctx, ENOMEM, "out of memory for %u workers", cfg->workers);
	ms_note(ctx, "%s, %s: %s", cfg->what, cfg->writable ? "read-write" : "read-only",
		cfg->writable ? "each worker's records written through one mapping are checked "
		"through the others" : "every mapping is compared with the worker's first one");
	setup_list(ctx, st);
	return 0;
}

static void pfnmap_teardown(struct ms_ctx *ctx)
{
	struct pf_state *st = ms_priv(ctx);
	struct pf_mtlist now = { 0 };

	if (!st)
		return;
	if (st->nspawned && st->ctl) {
		release_workers(st);
		reap_workers(ctx, st);
	}
	if (st->have_list && !mt_read(&st->cfg, &now))
		ms_note(ctx, "%s: %zu entries before the case, %zu after; over the window [mem "
			"%#llx-%#llx]: %zu before, %zu after", PF_MEMTYPE_LIST, st->base_total,
			now.total, (unsigned long long)st->cfg.phys,
			(unsigned long long)(st->cfg.phys + st->cfg.len - 1), st->base.n, now.n);
	if (st->have_list && st->ran && !st->broken)
		check_memtypes(ctx, st, "PAT memtype list over the window as before the case",
			       "after the case", &st->base, st->base_total);
	mt_free(&now);
	mt_free(&st->base);
	if (st->ctl)
		munmap(st->ctl, sizeof(*st->ctl));
	free(st->wpid);
	free(st);
	ms_set_priv(ctx, NULL);
}

const struct ms_workload ms_wl_pfnmap = {
	.name = "pfnmap",
	.summary = "PCI BAR and /dev/mem VM_PFNMAP mappings through fork, mremap, munmap and "
		   "mprotect splits, refused madvise and kill -9, in storms of processes: "
		   "latency, data, VmFlags and PAT memtype leaks checked",
	.params = pfnmap_params,
	.probe = pfnmap_probe,
	.setup = pfnmap_setup,
	.run = pfnmap_run,
	.teardown = pfnmap_teardown,
};

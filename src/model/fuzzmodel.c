/* The fuzzer's model: the reference model plus userfaultfd-wp and /dev/mem window state. */
#include <errno.h>
#include <string.h>

#include "mmstorm/fuzz.h"
#include "mmstorm/refmodel.h"

static const uint8_t rm_kind[MS_FZ_KIND_COUNT] = {
	[MS_FZ_WRITE] = MS_RM_WRITE, [MS_FZ_FORK] = MS_RM_FORK, [MS_FZ_EXIT] = MS_RM_EXIT,
	[MS_FZ_DONTNEED] = MS_RM_DONTNEED, [MS_FZ_FREE] = MS_RM_FREE, [MS_FZ_COLD] = MS_RM_COLD,
	[MS_FZ_PAGEOUT] = MS_RM_PAGEOUT, [MS_FZ_MREMAP] = MS_RM_MREMAP,
	[MS_FZ_MUNMAP] = MS_RM_MUNMAP, [MS_FZ_MPROTECT] = MS_RM_MPROTECT,
	[MS_FZ_MIGRATE] = MS_RM_MIGRATE,
	[MS_FZ_PIN] = MS_RM_PIN, [MS_FZ_UNPIN] = MS_RM_UNPIN, [MS_FZ_PIN_URING] = MS_RM_PIN,
	[MS_FZ_PIN_GUP] = MS_RM_PIN, [MS_FZ_PIN_WRITE] = MS_RM_PIN_WRITE,
};

static bool is_rm_op(unsigned kind)
{
	return kind <= MS_FZ_MIGRATE || ms_fz_is_pin(kind) || kind == MS_FZ_UNPIN ||
	       kind == MS_FZ_PIN_WRITE;
}

int ms_fz_model_init(struct ms_fz_model *m, const struct ms_fz_seq *s)
{
	struct ms_rm_cfg cfg = {
		.nslots = s->nslots, .npages = s->npages, .folio_pages = 1, .seed = 1,
		/* 6.2+: a R/O long-term pin of an untouched page unshares the zero page */
		.ro_longterm_unshares_file = true,
	};

	memset(m, 0, sizeof(*m));
	if (!s->nslots || s->nslots > MS_FZ_MAX_SLOTS || s->npages > s->nslots)
		return -EINVAL;
	m->nslots = s->nslots;
	m->thp = s->thp;
	m->file = s->file;
	return ms_rm_new(&m->rm, &cfg);
}

void ms_fz_model_fini(struct ms_fz_model *m)
{
	ms_rm_free(m->rm);
	m->rm = NULL;
}

static void to_rm(const struct ms_fz_op *op, struct ms_rm_op *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = rm_kind[op->kind];
	r->proc = op->proc;
	r->first = op->first;
	r->n = op->n;
	r->to = op->to;
	r->n2 = op->n2;
	if (op->kind == MS_FZ_MPROTECT)
		r->flags = op->flags;
	else if (op->kind == MS_FZ_PIN)
		r->flags = MS_RM_PF_GET;	/* vmsplice */
	else if (op->kind == MS_FZ_PIN_URING)
		r->flags = MS_RM_PF_WRITE | MS_RM_PF_LONGTERM;	/* io_pin_pages() */
	else if (op->kind == MS_FZ_PIN_GUP)
		r->flags = MS_RM_PF_LONGTERM | (op->flags & MS_FZ_F_WRITE ? MS_RM_PF_WRITE : 0);
	r->pin = op->pin;
}

static unsigned live(const struct ms_fz_model *m, unsigned *free_id)
{
	unsigned n = 0;

	*free_id = MS_FZ_MAX_PROCS;
	for (unsigned p = MS_FZ_MAX_PROCS; p-- > 0;) {
		if (ms_rm_alive(m->rm, p))
			n++;
		else
			*free_id = p;
	}
	return n;
}

static bool mapped(const struct ms_fz_model *m, unsigned p, uint32_t first, uint32_t n)
{
	struct ms_rm_want w;

	for (uint32_t s = first; s < first + n; s++)
		if (ms_rm_expect(m->rm, p, s, &w) || w.view == MS_RM_V_UNMAPPED)
			return false;
	return true;
}

/* Registration of [first, +n): one context for all, or -1 when mixed. */
static int reg_of(const struct ms_fz_model *m, uint32_t first, uint32_t n)
{
	for (uint32_t s = first + 1; s < first + n; s++)
		if (m->reg[s] != m->reg[first])
			return -1;
	return m->reg[first];
}

static int check_uffd(const struct ms_fz_model *m, const struct ms_fz_op *op)
{
	int r = reg_of(m, op->first, op->n);

	if (op->proc || !mapped(m, 0, op->first, op->n))
		return -EINVAL;
	if (op->kind == MS_FZ_UFFD_WP)
		return r > 0 ? 0 : -EINVAL;
	if (r < 0)
		return -EINVAL;
	return r == MS_FZ_UFFD_NONE ||
	       r == (op->flags & MS_FZ_F_REMAP ? MS_FZ_UFFD_REMAP : MS_FZ_UFFD_PLAIN) ? 0 : -EINVAL;
}

static int check_pfn(const struct ms_fz_model *m, const struct ms_fz_op *op)
{
	const uint8_t *pf = m->pfn[op->proc];
	bool want_free = op->kind == MS_FZ_PFN_MAP;

	if (!ms_rm_alive(m->rm, op->proc) || !op->n || op->first + op->n > MS_FZ_PFN_SLOTS)
		return -EINVAL;
	for (unsigned s = op->first; s < op->first + op->n; s++)
		if ((pf[s] == MS_FZ_PFN_UNMAPPED) != want_free)
			return -EINVAL;
	if (op->kind != MS_FZ_PFN_MREMAP)
		return 0;
	/* Shrink in place, or move whole to a free place (a pfnmap cannot grow). */
	if (op->to == op->first)
		return op->n2 && op->n2 < op->n ? 0 : -EINVAL;
	if (op->n2 != op->n || op->to + op->n > MS_FZ_PFN_SLOTS)
		return -EINVAL;
	for (unsigned s = op->to; s < op->to + op->n; s++)
		if (pf[s] != MS_FZ_PFN_UNMAPPED && (s < op->first || s >= op->first + op->n))
			return -EINVAL;
	return op->to + op->n <= op->first || op->first + op->n <= op->to ? 0 : -EINVAL;
}

/*
 * The file window: any live process writes, fills, zaps or punches (the main mapping and the
 * memfd are shared across fork); only process 0 registers MINOR (a child forked without
 * UFFD_FEATURE_EVENT_FORK inherits no registration), and CONTINUE needs the whole range
 * registered.
 */
static int check_file(const struct ms_fz_model *m, const struct ms_fz_op *op)
{
	if (!m->file || !op->n || op->first + op->n > MS_FZ_FILE_SLOTS)
		return -EINVAL;
	if (op->kind != MS_FZ_UFFD_MINOR && op->kind != MS_FZ_CONTINUE)
		return 0;
	if (op->proc)
		return -EINVAL;
	for (unsigned s = op->first; op->kind == MS_FZ_CONTINUE && s < op->first + op->n; s++)
		if (!m->fminor[s])
			return -EINVAL;
	return 0;
}

/* Extra rules of process 0's registered slots, where the reference model does not look. */
static int check_rm_uffd(const struct ms_fz_model *m, const struct ms_fz_op *op)
{
	int r;

	if (op->proc || (op->kind != MS_FZ_MREMAP && op->kind != MS_FZ_EXIT))
		return op->kind == MS_FZ_EXIT && !op->proc ? -EINVAL : 0;
	if (op->kind == MS_FZ_EXIT)
		return -EINVAL;			/* process 0 is the worker: it stays */
	r = reg_of(m, op->first, op->n);
	if (r < 0)
		return -EINVAL;
	/* Growing a registered mapping in place: not modelled. */
	return r && op->to == op->first && op->n2 > op->n ? -EINVAL : 0;
}

int ms_fz_model_check(const struct ms_fz_model *m, const struct ms_fz_op *op, unsigned *child)
{
	unsigned free_id, n;

	if (op->kind >= MS_FZ_KIND_COUNT || op->proc >= MS_FZ_MAX_PROCS ||
	    !ms_rm_alive(m->rm, op->proc))
		return -EINVAL;
	if (op->nth && !ms_fz_nth_kind(op->kind))
		return -EINVAL;
	if (ms_fz_is_file(op->kind))
		return check_file(m, op);
	/* A THP window only; a vmsplice reference there: see allowed() in fuzzseq.c. */
	if (op->kind == MS_FZ_COLLAPSE)
		return m->thp ? 0 : -EINVAL;
	if (op->kind == MS_FZ_PIN && m->thp)
		return -EINVAL;
	if (op->kind == MS_FZ_PIN_WRITE) {
		unsigned owner;
		uint32_t n;

		/* Only an io_uring buffer can be written through (READ_FIXED). */
		if (op->pin >= sizeof(m->pin_kind) || m->pin_kind[op->pin] != MS_FZ_PIN_URING ||
		    ms_rm_pin_info(m->rm, op->pin, &owner, NULL, &n, NULL))
			return -EINVAL;
		return owner == op->proc && op->n && op->first + op->n <= n ? 0 : -EINVAL;
	}
	if (op->kind == MS_FZ_UNPIN) {
		unsigned owner;

		if (ms_rm_pin_info(m->rm, op->pin, &owner, NULL, NULL, NULL))
			return -EINVAL;
		return owner == op->proc ? 0 : -EINVAL;
	}
	if (op->kind == MS_FZ_PIN_GUP) {
		/* gup_test holds one long-term pin test at a time, system-wide. */
		for (unsigned k = 0; k < MS_RM_MAX_PINS; k++)
			if (m->pin_kind[k] == MS_FZ_PIN_GUP &&
			    !ms_rm_pin_info(m->rm, k, NULL, NULL, NULL, NULL))
				return -EINVAL;
	}
	if (op->kind >= MS_FZ_PFN_MAP && op->kind <= MS_FZ_PFN_MPROTECT)
		return check_pfn(m, op);
	if (op->kind == MS_FZ_UFFD_REG || op->kind == MS_FZ_UFFD_WP) {
		if (!op->n || op->first + op->n > m->nslots)
			return -EINVAL;
		return check_uffd(m, op);
	}
	if (op->kind == MS_FZ_FORK) {
		n = live(m, &free_id);
		if (n >= MS_FZ_MAX_PROCS || free_id >= MS_FZ_MAX_PROCS)
			return -EINVAL;
		if (child)
			*child = free_id;
		return 0;
	}
	if (op->kind != MS_FZ_EXIT && (!op->n || op->first + op->n > m->nslots))
		return -EINVAL;
	if (op->kind == MS_FZ_MREMAP && (!op->n2 || op->to + op->n2 > m->nslots))
		return -EINVAL;
	if (op->kind == MS_FZ_WRITE && !mapped(m, op->proc, op->first, op->n))
		return -EINVAL;
	return check_rm_uffd(m, op);
}

static void set_wp(struct ms_fz_model *m, uint32_t first, uint32_t n, uint8_t v)
{
	for (uint32_t s = first; s < first + n && s < m->nslots; s++)
		m->wp[s] = v;
}

static void unreg(struct ms_fz_model *m, uint32_t first, uint32_t n)
{
	for (uint32_t s = first; s < first + n && s < m->nslots; s++) {
		m->reg[s] = MS_FZ_UFFD_NONE;
		m->wp[s] = MS_FZ_WP_OFF;
	}
}

static void apply_mremap(struct ms_fz_model *m, const struct ms_fz_op *op)
{
	uint8_t reg[MS_FZ_MAX_SLOTS], wp[MS_FZ_MAX_SLOTS];
	uint32_t keep = op->n < op->n2 ? op->n : op->n2;

	if (op->to == op->first) {
		if (op->n2 < op->n)
			unreg(m, op->first + op->n2, op->n - op->n2);
		return;
	}
	memcpy(reg, m->reg + op->first, op->n);
	memcpy(wp, m->wp + op->first, op->n);
	unreg(m, op->first, op->n);
	unreg(m, op->to, op->n2);
	/* Without UFFD_FEATURE_EVENT_REMAP the moved VMA loses its context and its bits. */
	if (reg[0] != MS_FZ_UFFD_REMAP)
		return;
	memcpy(m->reg + op->to, reg, keep);
	memcpy(m->wp + op->to, wp, keep);
}

static void apply_uffd(struct ms_fz_model *m, const struct ms_fz_op *op)
{
	struct ms_rm_want w;

	for (uint32_t s = op->first; s < op->first + op->n; s++) {
		if (op->kind == MS_FZ_UFFD_REG) {
			m->reg[s] = op->flags & MS_FZ_F_REMAP ? MS_FZ_UFFD_REMAP : MS_FZ_UFFD_PLAIN;
			continue;
		}
		if (!(op->flags & MS_FZ_F_ON)) {
			m->wp[s] = MS_FZ_WP_OFF;
			continue;
		}
		/*
		 * Only a present PTE takes the bit (anonymous memory, no WP_UNPOPULATED): every
		 * readable slot is present, because the checks read it after each op.
		 */
		ms_rm_expect(m->rm, 0, s, &w);
		/* A page MADV_FREE left lazy (has_alt) may be discarded, bit and all. */
		m->wp[s] = w.view == MS_RM_V_DATA && !w.has_alt ? MS_FZ_WP_ON : MS_FZ_WP_ANY;
	}
}

static void apply_pfn(struct ms_fz_model *m, const struct ms_fz_op *op)
{
	uint8_t *pf = m->pfn[op->proc], v = pf[op->first];

	switch (op->kind) {
	case MS_FZ_PFN_MAP:
		memset(pf + op->first, MS_FZ_PFN_READ, op->n);
		break;
	case MS_FZ_PFN_MUNMAP:
		memset(pf + op->first, MS_FZ_PFN_UNMAPPED, op->n);
		break;
	case MS_FZ_PFN_MPROTECT:
		memset(pf + op->first, op->flags & MS_FZ_F_READ ? MS_FZ_PFN_READ : MS_FZ_PFN_NONE,
		       op->n);
		break;
	case MS_FZ_PFN_MREMAP:
		if (op->to == op->first) {
			memset(pf + op->first + op->n2, MS_FZ_PFN_UNMAPPED, op->n - op->n2);
			break;
		}
		memset(pf + op->first, MS_FZ_PFN_UNMAPPED, op->n);
		memset(pf + op->to, v, op->n);
		break;
	}
}

/*
 * Reclaim discards a clean lazy-free page instead of swapping it: the PTE goes, and with it
 * the uffd-wp bit (anonymous memory keeps no marker). The reference model knows which pages
 * are still lazy: those whose expectation has an alternative.
 */
static void lazy_any(struct ms_fz_model *m, uint32_t first, uint32_t n)
{
	struct ms_rm_want w;

	for (uint32_t s = first; s < first + n && s < m->nslots; s++)
		if (!ms_rm_expect(m->rm, 0, s, &w) && w.has_alt)
			m->wp[s] = MS_FZ_WP_ANY;
}

/* What process 0's own rm ops do to its uffd state. */
static void apply_rm_side(struct ms_fz_model *m, const struct ms_fz_op *op, unsigned child)
{
	if (op->kind == MS_FZ_FORK) {
		memcpy(m->pfn[child], m->pfn[op->proc], MS_FZ_PFN_SLOTS);
		return;
	}
	if (op->kind == MS_FZ_EXIT) {
		memset(m->pfn[op->proc], 0, MS_FZ_PFN_SLOTS);
		return;
	}
	if (op->proc)
		return;
	switch (op->kind) {
	case MS_FZ_WRITE:		/* the fault handler unprotects what a write hits */
	case MS_FZ_DONTNEED:		/* anonymous: no PTE marker keeps the bit */
		set_wp(m, op->first, op->n, MS_FZ_WP_OFF);
		break;
	case MS_FZ_PIN_URING:
	case MS_FZ_PIN_GUP:
		/*
		 * A FOLL_WRITE pin faults like a write (the monitor unprotects); a R/O FOLL_PIN
		 * unshares, and wp_page_copy() keeps the bit on the copy.
		 */
		if (op->kind == MS_FZ_PIN_URING || (op->flags & MS_FZ_F_WRITE))
			set_wp(m, op->first, op->n, MS_FZ_WP_OFF);
		break;
	case MS_FZ_FREE:
	case MS_FZ_MIGRATE:
		set_wp(m, op->first, op->n, MS_FZ_WP_ANY);
		break;
	case MS_FZ_PAGEOUT:
		lazy_any(m, op->first, op->n);
		break;
	case MS_FZ_MUNMAP:
		unreg(m, op->first, op->n);
		break;
	case MS_FZ_MREMAP:
		apply_mremap(m, op);
		break;
	}
}

static long file_slot_bytes(const struct ms_fz_model *m)
{
	return m->file == MS_FZ_FILE_HUGETLB ? 2L << 20 : 4096;
}

uint64_t ms_fz_model_file_fill(const struct ms_fz_model *m, const struct ms_fz_op *op, unsigned k)
{
	/* Never 0 (a hole reads as zeros), and new with every op: a stale page shows. */
	return 0xf11e000000000000ULL | (uint64_t)(m->fgen + 1) << 8 | ((op->first + k) & 0xff);
}

/*
 * UFFDIO_CONTINUE goes page by page (6.12 mm/userfaultfd.c mfill_atomic(); hugetlb:
 * mfill_atomic_hugetlb()) and stops at the first page that fails: no page in the page cache
 * is -EFAULT (mfill_atomic_pte_continue(): shmem_get_folio(SGP_NOALLOC) finds none;
 * hugetlb_mfill_atomic_pte(): filemap_lock_hugetlb_folio() fails), a PTE already there is
 * -EEXIST (mfill_atomic_install_pte(): !pte_none_mostly(); hugetlb: !huge_pte_none_mostly()).
 * mfill_atomic() returns "copied ? copied : err"; fs/userfaultfd.c userfaultfd_continue()
 * writes that to uffdio_continue.mapped and returns 0 when all was mapped, -EAGAIN for a
 * short one, else the error.
 */
void ms_fz_model_continue(const struct ms_fz_model *m, const struct ms_fz_op *op, long *ret,
			  long *mapped)
{
	long done = 0, err = 0, bytes = file_slot_bytes(m);

	for (unsigned s = op->first; s < op->first + op->n && s < MS_FZ_FILE_SLOTS; s++) {
		if (!m->fcache[s] || m->fpte[s]) {
			err = m->fcache[s] ? -EEXIST : -EFAULT;
			break;
		}
		done += bytes;
	}
	*mapped = done ? done : err;
	*ret = !done ? err : done == op->n * bytes ? 0 : -EAGAIN;
}

/* Process 0's PTEs are the model's; a child's are not tracked (its reads fault them in). */
static void apply_file(struct ms_fz_model *m, const struct ms_fz_op *op)
{
	long ret, mapped = 0;

	if (op->kind == MS_FZ_CONTINUE)
		ms_fz_model_continue(m, op, &ret, &mapped);
	for (unsigned k = 0; k < op->n; k++) {
		unsigned s = op->first + k;

		switch (op->kind) {
		case MS_FZ_FILE_WRITE:
			m->fcache[s] = ms_fz_model_file_fill(m, op, k);
			m->fpte[s] |= !op->proc;
			break;
		case MS_FZ_FILE_FILL:
			m->fcache[s] = ms_fz_model_file_fill(m, op, k);
			break;
		case MS_FZ_FILE_ZAP:
			m->fpte[s] &= !!op->proc;
			break;
		case MS_FZ_FILE_PUNCH:		/* unmaps the range from every mapping */
			m->fcache[s] = 0;
			m->fpte[s] = 0;
			break;
		case MS_FZ_UFFD_MINOR:
			m->fminor[s] = 1;
			break;
		case MS_FZ_CONTINUE:
			m->fpte[s] |= (long)k < mapped / file_slot_bytes(m);
			break;
		}
	}
	if (op->kind == MS_FZ_FILE_WRITE || op->kind == MS_FZ_FILE_FILL)
		m->fgen++;
}

int ms_fz_model_apply(struct ms_fz_model *m, const struct ms_fz_op *op, struct ms_rm_op *rm_op)
{
	struct ms_rm_op r;
	int ret;

	if (op->kind == MS_FZ_COLLAPSE)
		return 0;	/* contents, pins and uffd-wp bits stay as they are */
	if (ms_fz_is_file(op->kind)) {
		apply_file(m, op);
		return 0;
	}
	if (!is_rm_op(op->kind)) {
		if (op->kind >= MS_FZ_PFN_MAP)
			apply_pfn(m, op);
		else
			apply_uffd(m, op);
		return 0;
	}
	to_rm(op, &r);
	if ((ret = ms_rm_apply(m->rm, &r)))
		return ret;
	apply_rm_side(m, op, r.out);
	if (ms_fz_is_pin(op->kind) && r.out < sizeof(m->pin_kind))
		m->pin_kind[r.out] = op->kind;
	if (rm_op)
		*rm_op = r;
	return 0;
}

/* mapped?, written?, shared?, writable?, registered?, wp? of the op's first slot */
unsigned ms_fz_model_state(const struct ms_fz_model *m, const struct ms_fz_op *op)
{
	struct ms_rm_want w;
	unsigned st = 0, s = op->first;

	if (op->kind >= MS_FZ_PFN_MAP && op->kind <= MS_FZ_PFN_MPROTECT)
		return s < MS_FZ_PFN_SLOTS ? m->pfn[op->proc][s] : 0;
	/* file: in the page cache?, process 0's PTE?, MINOR-registered?, hugetlb?, which proc */
	if (ms_fz_is_file(op->kind) && s < MS_FZ_FILE_SLOTS)
		return (m->fcache[s] != 0) | m->fpte[s] << 1 | m->fminor[s] << 2 |
		       (m->file == MS_FZ_FILE_HUGETLB) << 3 | !!op->proc << 4;
	if (s >= m->nslots || ms_rm_expect(m->rm, op->proc, s, &w))
		return 0;
	st |= w.view != MS_RM_V_UNMAPPED;
	st |= (w.view == MS_RM_V_DATA && w.fill) << 1;
	st |= (ms_rm_mapcount(m->rm, op->proc, s) > 1) << 2;
	st |= w.writable << 3;
	if (!op->proc) {
		st |= (m->reg[s] != MS_FZ_UFFD_NONE) << 4;
		st |= (m->wp[s] == MS_FZ_WP_ON) << 5;
	}
	return st;
}

unsigned ms_fz_model_pin_wants(const struct ms_fz_model *m, unsigned pin, uint64_t *fill,
			       uint64_t *alt, uint64_t *alt_mask)
{
	struct ms_rm_want w;
	uint32_t n = 0;

	*alt_mask = 0;
	if (ms_rm_pin_info(m->rm, pin, NULL, NULL, &n, NULL))
		return 0;
	for (uint32_t i = 0; i < n && i < MS_FZ_MAX_SLOTS; i++) {
		fill[i] = alt[i] = 0;
		if (ms_rm_pin_expect(m->rm, pin, i, &w))
			continue;
		fill[i] = w.fill;
		alt[i] = w.alt;
		if (w.has_alt)
			*alt_mask |= 1ULL << i;
	}
	return n;
}

/* The protection the model gives proc's slot, as MS_FZ_F_READ | MS_FZ_F_WRITE. */
static unsigned prot_now(const struct ms_fz_model *m, unsigned proc, uint32_t s)
{
	struct ms_rm_want w;

	if (ms_rm_expect(m->rm, proc, s, &w) || w.view != MS_RM_V_DATA)
		return 0;
	return MS_FZ_F_READ | (w.writable ? MS_FZ_F_WRITE : 0);
}

/*
 * The op's effect reached a prefix of its range and stopped: slots [0, k) show it, the rest
 * do not, where same[i] says slot i showed it before (then its bit says nothing). The model
 * takes the longest such prefix; a slot past it that shows the effect is refused.
 */
static int fail_prefix(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part,
		       const bool *same)
{
	struct ms_fz_op pre = *op;
	uint32_t k = 0, i;

	for (i = 0; i < op->n; i++) {
		if (!(part >> i & 1) && !same[i])
			break;
		k = i + 1;
	}
	for (; i < op->n; i++)
		if ((part >> i & 1) && !same[i])
			return -EINVAL;
	if (!k)
		return 0;
	pre.n = (uint16_t)k;
	pre.nth = 0;
	return ms_fz_model_apply(m, &pre, NULL);
}

/*
 * mprotect() walks the VMAs of the range in order and stops at the first mprotect_fixup()
 * that fails (6.12 mm/mprotect.c do_mprotect_pkey()): the VMAs before it have the new
 * protection, the rest the old one. So the slots with the new protection must be a prefix
 * (slots that had it already say nothing); the model takes the longest prefix that fits.
 */
static int fail_mprotect(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part)
{
	unsigned want = op->flags & (MS_FZ_F_READ | MS_FZ_F_WRITE);
	bool same[MS_FZ_MAX_SLOTS];

	for (uint32_t i = 0; i < op->n && i < MS_FZ_MAX_SLOTS; i++)
		same[i] = prot_now(m, op->proc, op->first + i) == want;
	return fail_prefix(m, op, part, same);
}

/*
 * A pin that failed half way has faulted in or unshared (FOLL_WRITE: COW-broken) the pages
 * it reached before it gave them back. Contents stay; what changes is that the page is now
 * this process's own, which a later FOLL_GET reference can tell: the model follows by pinning
 * and unpinning each slot the kernel shows present and exclusive. A FOLL_WRITE fault on a
 * uffd-wp page had the monitor unprotect it: which pages it reached is not known.
 */
static int fail_pin(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part)
{
	struct ms_fz_op one = *op, un = { .kind = MS_FZ_UNPIN, .proc = op->proc };
	bool write = op->kind == MS_FZ_PIN_URING || (op->flags & MS_FZ_F_WRITE);
	struct ms_rm_op r;
	int ret;

	one.nth = 0;
	one.n = 1;
	for (uint32_t i = 0; i < op->n; i++) {
		if (!(part >> i & 1))
			continue;
		one.first = (uint16_t)(op->first + i);
		if ((ret = ms_fz_model_apply(m, &one, &r)))
			return ret;
		un.pin = r.out;
		if ((ret = ms_fz_model_apply(m, &un, NULL)))
			return ret;
	}
	if (write && !op->proc)
		set_wp(m, op->first, op->n, MS_FZ_WP_ANY);
	return 0;
}

/*
 * UFFDIO_REGISTER: userfaultfd_register_range() (6.12 mm/userfaultfd.c) registers the VMAs of
 * the range in address order and returns at the first vma_modify_flags_uffd() that fails (a
 * split_vma() or the maple tree preallocation of a merge): the VMAs before it are registered,
 * the rest not (a split that succeeded stays, unregistered). A failed copy_from_user() of the
 * argument comes before anything. So the slots that show the registration ("uw" in smaps) are
 * a prefix of the range; slots registered with this context already say nothing.
 */
static int fail_uffd_reg(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part)
{
	uint8_t want = op->flags & MS_FZ_F_REMAP ? MS_FZ_UFFD_REMAP : MS_FZ_UFFD_PLAIN;
	bool same[MS_FZ_MAX_SLOTS];

	for (uint32_t i = 0; i < op->n; i++)
		same[i] = m->reg[op->first + i] == want;
	return fail_prefix(m, op, part, same);
}

/*
 * mprotect of a /dev/mem range: as for anonymous memory, do_mprotect_pkey() stops at the first
 * mprotect_fixup() whose vma_modify_flags() fails (a split); change_protection() of the
 * VM_PFNMAP VMA only rewrites the PTEs remap_pfn_range() made. The slots with the new
 * protection are a prefix.
 */
static int fail_pfn_mprotect(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part)
{
	uint8_t want = op->flags & MS_FZ_F_READ ? MS_FZ_PFN_READ : MS_FZ_PFN_NONE;
	bool same[MS_FZ_PFN_SLOTS];

	for (uint32_t i = 0; i < op->n && i < MS_FZ_PFN_SLOTS; i++)
		same[i] = m->pfn[op->proc][op->first + i] == want;
	return fail_prefix(m, op, part, same);
}

/* Does a uffd-wp bit b fit the model's state v? */
static bool wp_fits(uint8_t v, bool b)
{
	return v == MS_FZ_WP_ANY || (v == MS_FZ_WP_ON) == b;
}

/*
 * UFFDIO_WRITEPROTECT: the runtime protects page by page (one ioctl each, fzrt.c uffd_wp()),
 * and each ioctl can fail only in its copy_from_user() of the argument, before
 * mwriteprotect_range() touches a PTE: for an anonymous VMA change_protection() allocates
 * nothing (no PTE markers: userfaultfd_wp_use_markers() is false; a missing page table would
 * be an order-0 page, which fail_page_alloc never fails). So pages [0, k) of the range are as
 * a successful op leaves them and [k, n) as they were, for some k; part says where the uffd-wp
 * bit shows the op's effect (set for "on", clear for "off"). The model takes the largest k
 * the bits fit; none fits: refused.
 */
static int fail_uffd_wp(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part)
{
	bool on = op->flags & MS_FZ_F_ON;
	uint8_t post[MS_FZ_MAX_SLOTS];
	struct ms_fz_op pre = *op;
	struct ms_rm_want w;
	int k;

	for (uint32_t i = 0; i < op->n; i++) {
		ms_rm_expect(m->rm, 0, op->first + i, &w);
		post[i] = !on ? MS_FZ_WP_OFF : w.view == MS_RM_V_DATA && !w.has_alt ?
			  MS_FZ_WP_ON : MS_FZ_WP_ANY;
	}
	for (k = op->n; k >= 0; k--) {
		bool fits = true;

		for (int i = 0; i < op->n && fits; i++)
			fits = wp_fits(i < k ? post[i] : m->wp[op->first + i],
				       (part >> i & 1) == on);
		if (fits)
			break;
	}
	if (k <= 0)
		return k < 0 ? -EINVAL : 0;
	pre.n = (uint16_t)k;
	pre.nth = 0;
	return ms_fz_model_apply(m, &pre, NULL);
}

int ms_fz_model_fail(struct ms_fz_model *m, const struct ms_fz_op *op, uint64_t part)
{
	switch (op->kind) {
	case MS_FZ_MPROTECT:
		return fail_mprotect(m, op, part);
	case MS_FZ_PIN_URING:
	case MS_FZ_PIN_GUP:
		return fail_pin(m, op, part);
	case MS_FZ_UFFD_REG:
		return fail_uffd_reg(m, op, part);
	case MS_FZ_UFFD_WP:
		return fail_uffd_wp(m, op, part);
	case MS_FZ_PFN_MPROTECT:
		return fail_pfn_mprotect(m, op, part);
	case MS_FZ_UNPIN:
		/*
		 * Only an io_uring pin's release allocates: io_sqe_buffers_unregister() ->
		 * io_rsrc_ref_quiesce() -> io_rsrc_node_alloc(), and on -ENOMEM the buffers stay
		 * registered (6.12 io_uring/rsrc.c). The pin is still held: the runtime keeps
		 * the ring, the model the pin. (vmsplice's close() and gup_test's
		 * PIN_LONGTERM_TEST_STOP allocate nothing.)
		 */
	case MS_FZ_PIN_WRITE:
		/*
		 * IORING_OP_READ_FIXED fails before it copies: io_uring_enter() finds no request
		 * (io_alloc_req(): -EAGAIN, the SQE not consumed; the runtime takes it back) or
		 * the read's async state (io_rw_alloc_async()) cannot be allocated (-ENOMEM in
		 * the CQE). The memfd is read without allocations: nothing is written.
		 */
	case MS_FZ_MIGRATE:
		/*
		 * The write to /proc/sys/vm/compact_memory fails only in proc_sys_call_handler()
		 * (kvzalloc() of the buffer, copy_from_iter()), before compact_nodes() runs;
		 * sysctl_compaction_handler() reports nothing of compaction itself.
		 */
	case MS_FZ_PFN_MAP:
		/*
		 * __mmap_region(): a failure before vms_clean_up_area() re-attaches the
		 * placeholder, one after it (vm_area_alloc(), vma_iter_prealloc(), mmap_mem() ->
		 * remap_pfn_range() -> track_pfn_remap() -> memtype_reserve()'s kzalloc()) leaves a
		 * gap (vms_abort_munmap_vmas()); the runtime puts the placeholder back. No
		 * /dev/mem page is mapped, and no memtype reserved: remap_pfn_range() frees its own
		 * on a later error, unmap_region() the VMA's. Nothing comes after mmap_file() that
		 * can fail.
		 */
	case MS_FZ_PFN_MUNMAP:
		/*
		 * As munmap: do_vmi_align_munmap() re-attaches what it gathered. A split at the
		 * start of the range that succeeded stays (vms_gather_munmap_vmas():
		 * end_split_failed -> reattach_vmas()): still mapped, one /dev/mem VMA more.
		 */
	case MS_FZ_PFN_MREMAP:
		/*
		 * Shrink in place: its do_vmi_munmap() of the tail changes nothing when it fails.
		 * Move: mremap_to() unmaps the destination, then move_vma() -> copy_vma() fails
		 * before a page table moved (move_page_tables() allocates only order-0 page
		 * tables); the runtime puts the destination's placeholder back. When the munmap of
		 * the old range fails, mremap succeeds ("OOM: unable to split vma") with the old
		 * range left mapped, empty, and VM_PAT cleared by untrack_pfn_clear(): the runtime
		 * unmaps it.
		 */
		return part ? -EINVAL : 0;
	case MS_FZ_MREMAP:
		/*
		 * move_vma() moves the page tables it managed to and back again: move_ptes()
		 * drops uffd-wp bits both ways where the context lacks UFFD_FEATURE_EVENT_REMAP.
		 * A failure before that (a split, copy_vma()) or of a resize in place changes
		 * nothing.
		 */
		if (!op->proc && op->to != op->first && reg_of(m, op->first, op->n) ==
		    MS_FZ_UFFD_PLAIN)
			set_wp(m, op->first, op->n, MS_FZ_WP_ANY);
		return part ? -EINVAL : 0;
	default:
		/*
		 * fork: dup_mmap() unwinds, the parent is as it was. munmap: 6.12
		 * do_vmi_align_munmap() splits and gathers every VMA before it detaches one, and
		 * a failure there re-attaches them: nothing is unmapped. collapse: the runtime
		 * takes every refusal as a run (contents must not change either way).
		 */
		return part ? -EINVAL : 0;
	}
}

int ms_fz_model_walk(struct ms_fz_model *m, const struct ms_fz_seq *s, uint32_t upto,
		     const int8_t *ran, const uint64_t *part, ms_fz_see see, void *arg)
{
	int ret = ms_fz_model_init(m, s);
	unsigned child;

	for (uint32_t i = 0; !ret && i < upto && i < s->nops; i++) {
		const struct ms_fz_op *op = &s->ops[i];

		if ((ran && ran[i] < 0) || ms_fz_model_check(m, op, &child))
			continue;
		if (see)
			see(arg, m, op, child, !ran || ran[i] > 0);
		if (!ran || ran[i] > 0)
			ret = ms_fz_model_apply(m, op, NULL);
		else
			ret = ms_fz_model_fail(m, op, part ? part[i] : 0);
	}
	return ret;
}

int ms_fz_model_replay(struct ms_fz_model *m, const struct ms_fz_seq *s, uint32_t upto,
		       const int8_t *ran, const uint64_t *part)
{
	return ms_fz_model_walk(m, s, upto, ran, part, NULL, NULL);
}

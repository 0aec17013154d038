/* The reference model of refmodel.h: frames, per-process slots and pins, op by op. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/model.h"
#include "mmstorm/refmodel.h"

#define ZERO_FRAME 0			/* the shared zero page: immutable, never counted */
#define FILE_ROLE 0x66696c65ULL		/* "file" */

enum { SL_EMPTY, SL_NONE, SL_MAPPED };
#define RW_PROT (MS_RM_PROT_READ | MS_RM_PROT_WRITE)

/* One address slot of one process: nothing, a mapping not faulted in yet, or a page. */
struct rm_slot {
	uint32_t frame;
	uint32_t file_idx;		/* file page behind the slot (file mappings) */
	uint8_t state;
	uint8_t prot;			/* MS_RM_PROT_* */
	bool dontfork;			/* MADV_DONTFORK (a VMA flag: moves with mremap) */
};

/* One physical page. */
struct rm_frame {
	uint64_t fill;
	uint32_t folio;
	uint32_t maps;			/* slots mapping it */
	uint32_t pins;			/* FOLL_PIN pins */
	uint32_t gets;			/* FOLL_GET references */
	bool anon;
	bool exclusive;			/* PageAnonExclusive */
	bool lazy;			/* MADV_FREE: each unpinned mapping may lose it */
	bool loose;			/* may have been swapped out behind a FOLL_GET reference */
	bool has_ref_alt;
	uint64_t ref_alt;		/* what a loose reference may still hold */
};

struct rm_proc {
	bool alive;
	struct rm_slot *slots;
};

struct rm_pin {
	bool active;
	uint8_t owner, flags;
	uint32_t first, n;
	uint32_t *frames;
};

struct ms_rm {
	struct ms_rm_cfg cfg;
	struct rm_proc procs[MS_RM_MAX_PROCS];
	struct rm_pin pins[MS_RM_MAX_PINS];
	struct rm_frame *frames;
	uint32_t nframes, frames_cap;
	uint32_t *folio_pins;		/* FOLL_PIN pins per folio */
	uint32_t nfolios, folios_cap;
	uint32_t *file_frame;		/* frame of each file page, 0 until first use */
	uint32_t gen;
	struct ms_rm_op *hist;
	size_t nhist, hist_cap;
};

static const char *const op_names[MS_RM_OP_COUNT] = {
	[MS_RM_POPULATE] = "pop", [MS_RM_WRITE] = "w", [MS_RM_FORCE_WRITE] = "fw",
	[MS_RM_FORK] = "fork", [MS_RM_EXIT] = "exit", [MS_RM_PIN] = "pin",
	[MS_RM_PIN_WRITE] = "pinw", [MS_RM_UNPIN] = "unpin", [MS_RM_DONTNEED] = "dontneed",
	[MS_RM_FREE] = "free", [MS_RM_COLD] = "cold", [MS_RM_PAGEOUT] = "pageout",
	[MS_RM_MREMAP] = "mremap", [MS_RM_MUNMAP] = "munmap", [MS_RM_MPROTECT] = "mprotect",
	[MS_RM_MIGRATE] = "migrate", [MS_RM_SPLIT] = "split", [MS_RM_COLLAPSE] = "collapse",
	[MS_RM_DONTFORK] = "dontfork",
};

const char *ms_rm_op_name(unsigned kind)
{
	return kind < MS_RM_OP_COUNT ? op_names[kind] : "?";
}

/* ---- frames and folios ---- */

static int grow(void **arr, uint32_t *cap, uint32_t want, size_t elem)
{
	uint32_t n = *cap ? *cap : 64;
	void *p;

	if (want <= *cap)
		return 0;
	while (n < want)
		n *= 2;
	p = realloc(*arr, (size_t)n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static uint32_t new_folio(struct ms_rm *m)
{
	m->folio_pins[m->nfolios] = 0;
	return m->nfolios++;
}

static uint32_t new_frame(struct ms_rm *m, uint64_t fill, bool anon, uint32_t folio)
{
	struct rm_frame *f = &m->frames[m->nframes];

	memset(f, 0, sizeof(*f));
	f->fill = fill;
	f->anon = anon;
	f->exclusive = anon;
	f->folio = folio;
	return m->nframes++;
}

/*
 * Every op creates at most two frames and folios per page it touches (a file page read in,
 * then its COW copy): reserve that much before mutating anything, so a failed allocation
 * leaves the model as it was.
 */
static int reserve(struct ms_rm *m, uint32_t pages)
{
	int ret;

	pages *= 2;
	ret = grow((void **)&m->frames, &m->frames_cap, m->nframes + pages,
		       sizeof(*m->frames));

	if (!ret)
		ret = grow((void **)&m->folio_pins, &m->folios_cap, m->nfolios + pages,
			   sizeof(*m->folio_pins));
	return ret;
}

static struct rm_slot *slot_of(struct ms_rm *m, unsigned p, uint32_t s)
{
	return &m->procs[p].slots[s];
}

static uint32_t file_frame(struct ms_rm *m, uint32_t idx)
{
	if (!m->file_frame[idx])
		m->file_frame[idx] = new_frame(m, ms_rm_file_fill(m, idx), false, new_folio(m));
	return m->file_frame[idx];
}

static bool is_file(const struct ms_rm *m)
{
	return m->cfg.file_pages > 0;
}

static void unmap_slot(struct ms_rm *m, struct rm_slot *sl)
{
	if (sl->state == SL_MAPPED)
		m->frames[sl->frame].maps--;
	sl->state = SL_NONE;
	sl->frame = ZERO_FRAME;
}

static void map_slot(struct ms_rm *m, struct rm_slot *sl, uint32_t frame)
{
	if (sl->state == SL_MAPPED)
		m->frames[sl->frame].maps--;
	sl->state = SL_MAPPED;
	sl->frame = frame;
	m->frames[frame].maps++;
}

/* A file mapping's read fault: the page cache page. Anonymous NONE stays the zero page. */
static void fault_in(struct ms_rm *m, struct rm_slot *sl)
{
	if (sl->state == SL_NONE && is_file(m))
		map_slot(m, sl, file_frame(m, sl->file_idx));
}

/* Nobody but the one mapping could ever tell a reuse from a copy. */
static bool unobservable(const struct rm_frame *f)
{
	return f->maps == 1 && !f->pins && !f->gets;
}

/*
 * What a write fault, a FOLL_WRITE GUP and a FAULT_FLAG_UNSHARE do in a private mapping:
 * leave the slot mapping an exclusive anonymous page with the same contents. Returns it.
 */
static uint32_t make_exclusive(struct ms_rm *m, struct rm_slot *sl)
{
	struct rm_frame *f;
	uint32_t id;

	fault_in(m, sl);
	if (sl->state != SL_MAPPED) {
		id = new_frame(m, 0, true, new_folio(m));
		map_slot(m, sl, id);
		return id;
	}
	f = &m->frames[sl->frame];
	if (f->anon && f->exclusive)
		return sl->frame;
	if (f->anon && unobservable(f)) {
		f->exclusive = true;
		return sl->frame;
	}
	id = new_frame(m, f->fill, true, new_folio(m));
	map_slot(m, sl, id);
	return id;
}

/* ---- validation helpers ---- */

static int check_proc(const struct ms_rm *m, unsigned p)
{
	return p < MS_RM_MAX_PROCS && m->procs[p].alive ? 0 : -EINVAL;
}

static int check_range(const struct ms_rm *m, uint32_t first, uint32_t n)
{
	return n && first < m->cfg.nslots && n <= m->cfg.nslots - first ? 0 : -EINVAL;
}

/* Every slot of the range is mapped (faulted in or not); prot_need bits are all there. */
static int check_mapped(struct ms_rm *m, unsigned p, uint32_t first, uint32_t n,
			unsigned prot_need, int prot_err)
{
	int ret = check_proc(m, p);

	if (ret || (ret = check_range(m, first, n)))
		return ret;
	for (uint32_t s = first; s < first + n; s++) {
		const struct rm_slot *sl = slot_of(m, p, s);

		if (sl->state == SL_EMPTY)
			return -EFAULT;
		if ((sl->prot & prot_need) != prot_need)
			return prot_err;
	}
	return 0;
}

static int check_active_pin(const struct ms_rm *m, unsigned pin)
{
	return pin < MS_RM_MAX_PINS && m->pins[pin].active ? 0 : -EINVAL;
}

/* ---- the ops ---- */

static void write_page(struct ms_rm *m, unsigned p, uint32_t s, uint64_t fill, uint32_t folio)
{
	struct rm_slot *sl = slot_of(m, p, s);
	struct rm_frame *f;
	uint32_t id;

	if (m->cfg.shared) {
		fault_in(m, sl);
		f = &m->frames[sl->frame];
		f->fill = fill;
		return;
	}
	if (folio != UINT32_MAX && sl->state == SL_NONE && !is_file(m)) {
		map_slot(m, sl, new_frame(m, fill, true, folio));
		return;
	}
	f = &m->frames[sl->frame];
	/*
	 * Swapped in behind a reference, the page is no longer known exclusive: this write may
	 * copy it (the reference keeps the old contents from now on) or reuse it (the reference
	 * follows the process, as before). The process sees its write either way.
	 */
	if (sl->state == SL_MAPPED && f->anon && f->exclusive && f->loose && f->gets &&
	    !f->has_ref_alt) {
		f->ref_alt = f->fill;
		f->has_ref_alt = true;
	}
	id = make_exclusive(m, sl);
	f = &m->frames[id];
	f->fill = fill;
	f->lazy = false;
}

static int op_write(struct ms_rm *m, struct ms_rm_op *op)
{
	bool force = op->kind == MS_RM_FORCE_WRITE;
	uint32_t folio = UINT32_MAX, folio_key = UINT32_MAX, fp = m->cfg.folio_pages;
	int ret;

	ret = check_mapped(m, op->proc, op->first, op->n, force ? 0 : MS_RM_PROT_WRITE,
			   -EACCES);
	if (ret)
		return ret;
	if (force) {
		for (uint32_t s = op->first; s < op->first + op->n; s++) {
			unsigned prot = slot_of(m, op->proc, s)->prot;

			/* GUP refuses FOLL_FORCE writes there (check_vma_flags). */
			if (!(prot & MS_RM_PROT_WRITE) &&
			    (m->cfg.shared || (m->cfg.huge && !m->cfg.huge_force_write)))
				return -EOPNOTSUPP;
		}
	}
	if ((ret = reserve(m, op->n)))
		return ret;
	for (uint32_t i = 0; i < op->n; i++) {
		uint32_t s = op->first + i;

		if (op->kind == MS_RM_POPULATE && fp > 1 && s / fp != folio_key) {
			folio_key = s / fp;
			folio = new_folio(m);
		} else if (op->kind == MS_RM_POPULATE && fp <= 1) {
			folio = new_folio(m);
		}
		write_page(m, op->proc, s, ms_rm_fill(m, op, i), folio);
	}
	return 0;
}

static bool folio_pinned(const struct ms_rm *m, const struct rm_frame *f)
{
	return m->folio_pins[f->folio] > 0;
}

static int op_fork(struct ms_rm *m, struct ms_rm_op *op)
{
	struct rm_proc *parent, *child = NULL;
	unsigned c;
	int ret;

	if ((ret = check_proc(m, op->proc)))
		return ret;
	for (c = 0; c < MS_RM_MAX_PROCS && m->procs[c].alive; c++)
		;
	if (c == MS_RM_MAX_PROCS)
		return -ENOSPC;
	if ((ret = reserve(m, m->cfg.nslots)))
		return ret;
	parent = &m->procs[op->proc];
	child = &m->procs[c];
	memcpy(child->slots, parent->slots, m->cfg.nslots * sizeof(*child->slots));
	for (uint32_t s = 0; s < m->cfg.nslots; s++) {
		struct rm_slot *sl = &child->slots[s];
		struct rm_frame *f = &m->frames[sl->frame];
		uint32_t id;

		if (sl->dontfork) {
			sl->state = SL_EMPTY;
			sl->frame = ZERO_FRAME;
			sl->dontfork = false;
			continue;
		}
		if (sl->state != SL_MAPPED)
			continue;
		if (m->cfg.shared || !f->anon) {
			f->maps++;
			continue;
		}
		/* A pinned folio's exclusive pages are copied for the child, never shared. */
		if (f->exclusive && folio_pinned(m, f)) {
			id = new_frame(m, f->fill, true, new_folio(m));
			sl->frame = id;
			m->frames[id].maps++;
			continue;
		}
		f->exclusive = false;
		f->maps++;
	}
	child->alive = true;
	op->out = (uint8_t)c;
	return 0;
}

static void release_pin(struct ms_rm *m, struct rm_pin *pin)
{
	for (uint32_t i = 0; i < pin->n; i++) {
		struct rm_frame *f = &m->frames[pin->frames[i]];

		if (pin->frames[i] == ZERO_FRAME)
			continue;
		if (pin->flags & MS_RM_PF_GET) {
			f->gets--;
		} else {
			f->pins--;
			m->folio_pins[f->folio]--;
		}
	}
	free(pin->frames);
	pin->frames = NULL;
	pin->active = false;
}

static int op_exit(struct ms_rm *m, struct ms_rm_op *op)
{
	struct rm_proc *pr;
	int ret;

	if ((ret = check_proc(m, op->proc)))
		return ret;
	pr = &m->procs[op->proc];
	for (uint32_t s = 0; s < m->cfg.nslots; s++) {
		unmap_slot(m, &pr->slots[s]);
		pr->slots[s].state = SL_EMPTY;
		pr->slots[s].dontfork = false;
	}
	for (unsigned k = 0; k < MS_RM_MAX_PINS; k++)
		if (m->pins[k].active && m->pins[k].owner == op->proc)
			release_pin(m, &m->pins[k]);
	pr->alive = false;
	return 0;
}

/* The page a pin of these flags ends up holding for slot sl (private mapping). */
static uint32_t pin_target_private(struct ms_rm *m, struct rm_slot *sl, unsigned flags)
{
	bool get = flags & MS_RM_PF_GET, write = flags & MS_RM_PF_WRITE;
	bool lt = flags & MS_RM_PF_LONGTERM;

	if (write)
		return make_exclusive(m, sl);
	fault_in(m, sl);
	if (get)
		return sl->state == SL_MAPPED ? sl->frame : ZERO_FRAME;
	/* R/O FOLL_PIN: gup_must_unshare() */
	if (sl->state != SL_MAPPED)
		return lt && m->cfg.ro_longterm_unshares_file ? make_exclusive(m, sl) :
		       ZERO_FRAME;
	if (m->frames[sl->frame].anon)
		return make_exclusive(m, sl);
	if (lt && m->cfg.ro_longterm_unshares_file)
		return make_exclusive(m, sl);
	return sl->frame;
}

static int op_pin(struct ms_rm *m, struct ms_rm_op *op)
{
	unsigned need = (op->flags & MS_RM_PF_WRITE) ? MS_RM_PROT_WRITE : MS_RM_PROT_READ;
	struct rm_pin *pin = NULL;
	unsigned k;
	int ret;

	if (op->flags & ~(MS_RM_PF_WRITE | MS_RM_PF_LONGTERM | MS_RM_PF_GET))
		return -EINVAL;
	if ((ret = check_mapped(m, op->proc, op->first, op->n, need, -EFAULT)))
		return ret;
	if ((op->flags & (MS_RM_PF_WRITE | MS_RM_PF_LONGTERM | MS_RM_PF_GET)) ==
	    (MS_RM_PF_WRITE | MS_RM_PF_LONGTERM) && m->cfg.shared &&
	    m->cfg.longterm_rw_refused)
		return -EOPNOTSUPP;
	for (k = 0; k < MS_RM_MAX_PINS && m->pins[k].active; k++)
		;
	if (k == MS_RM_MAX_PINS)
		return -ENOSPC;
	if ((ret = reserve(m, op->n)))
		return ret;
	pin = &m->pins[k];
	pin->frames = calloc(op->n, sizeof(*pin->frames));
	if (!pin->frames)
		return -ENOMEM;
	for (uint32_t i = 0; i < op->n; i++) {
		struct rm_slot *sl = slot_of(m, op->proc, op->first + i);
		uint32_t id;
		struct rm_frame *f;

		if (m->cfg.shared) {
			fault_in(m, sl);
			id = sl->frame;
		} else {
			id = pin_target_private(m, sl, op->flags);
		}
		pin->frames[i] = id;
		if (id == ZERO_FRAME)
			continue;
		f = &m->frames[id];
		if (op->flags & MS_RM_PF_GET) {
			f->gets++;
		} else {
			f->pins++;
			m->folio_pins[f->folio]++;
		}
	}
	pin->active = true;
	pin->owner = op->proc;
	pin->flags = op->flags;
	pin->first = op->first;
	pin->n = op->n;
	op->out = (uint8_t)k;
	return 0;
}

static int op_pin_write(struct ms_rm *m, struct ms_rm_op *op)
{
	struct rm_pin *pin;
	int ret;

	if ((ret = check_active_pin(m, op->pin)))
		return ret;
	pin = &m->pins[op->pin];
	if (!op->n || op->first >= pin->n || op->n > pin->n - op->first)
		return -EINVAL;
	if ((pin->flags & (MS_RM_PF_WRITE | MS_RM_PF_GET)) != MS_RM_PF_WRITE)
		return -EINVAL;
	for (uint32_t i = 0; i < op->n; i++) {
		struct rm_frame *f = &m->frames[pin->frames[op->first + i]];

		f->fill = ms_rm_fill(m, op, i);
		/*
		 * Not a CPU store: the PTE and the folio stay clean (GUP-fast does not dirty, an
		 * io_uring buffer is unpinned without dirtying), so a MADV_FREE'd page written
		 * only through a pin may still be discarded once the pin is gone.
		 */
		f->loose = false;
	}
	return 0;
}

static int op_unpin(struct ms_rm *m, struct ms_rm_op *op)
{
	int ret;

	if ((ret = check_active_pin(m, op->pin)))
		return ret;
	release_pin(m, &m->pins[op->pin]);
	return 0;
}

static int op_madvise(struct ms_rm *m, struct ms_rm_op *op)
{
	int ret;

	/* Unmapped first: an op over a hole is not run at all, whatever the memory. */
	if ((ret = check_mapped(m, op->proc, op->first, op->n, 0, 0)))
		return ret;
	if (op->kind == MS_RM_FREE && (m->cfg.shared || is_file(m) || m->cfg.huge))
		return -EOPNOTSUPP;
	if (op->kind == MS_RM_COLLAPSE && m->cfg.huge)
		return -EOPNOTSUPP;
	for (uint32_t s = op->first; s < op->first + op->n; s++) {
		struct rm_slot *sl = slot_of(m, op->proc, s);
		struct rm_frame *f = &m->frames[sl->frame];

		if (op->kind == MS_RM_DONTFORK) {
			sl->dontfork = true;
			continue;
		}
		if (op->kind == MS_RM_DONTNEED) {
			unmap_slot(m, sl);
			continue;
		}
		if (sl->state != SL_MAPPED || !f->anon)
			continue;
		/*
		 * Lazyfree, shared or not, pinned or not: reclaim unmaps it from each clean
		 * mapping in turn until it finds a dirty one, so any mapper may lose it, while
		 * no pin or reference holds it (refcount).
		 */
		if (op->kind == MS_RM_FREE)
			f->lazy = true;
		if (op->kind == MS_RM_PAGEOUT && f->gets && !f->pins)
			f->loose = true;
	}
	return 0;
}

static int op_mprotect(struct ms_rm *m, struct ms_rm_op *op)
{
	int ret;

	if (op->flags & ~(MS_RM_PROT_READ | MS_RM_PROT_WRITE))
		return -EINVAL;
	if ((ret = check_mapped(m, op->proc, op->first, op->n, 0, 0)))
		return ret;
	/* x86 cannot map write-only: PROT_WRITE implies PROT_READ. */
	for (uint32_t s = op->first; s < op->first + op->n; s++)
		slot_of(m, op->proc, s)->prot = op->flags & MS_RM_PROT_WRITE ? RW_PROT : op->flags;
	return 0;
}

static int op_munmap(struct ms_rm *m, struct ms_rm_op *op)
{
	int ret;

	if ((ret = check_proc(m, op->proc)) || (ret = check_range(m, op->first, op->n)))
		return ret;
	for (uint32_t s = op->first; s < op->first + op->n; s++) {
		struct rm_slot *sl = slot_of(m, op->proc, s);

		unmap_slot(m, sl);
		sl->state = SL_EMPTY;
		sl->dontfork = false;
	}
	return 0;
}

static bool range_empty(struct ms_rm *m, unsigned p, uint32_t first, uint32_t n)
{
	for (uint32_t s = first; s < first + n; s++)
		if (slot_of(m, p, s)->state != SL_EMPTY)
			return false;
	return true;
}

static int check_mremap(struct ms_rm *m, const struct ms_rm_op *op)
{
	struct rm_slot *last;
	uint32_t grow_from, grow_n;
	int ret;

	if ((ret = check_mapped(m, op->proc, op->first, op->n, 0, 0)) ||
	    (ret = check_range(m, op->to, op->n2)))
		return ret;
	for (uint32_t s = op->first + 1; s < op->first + op->n; s++)
		if (slot_of(m, op->proc, s)->prot != slot_of(m, op->proc, op->first)->prot)
			return -EFAULT;
	last = slot_of(m, op->proc, op->first + op->n - 1);
	if (is_file(m) && op->n2 > op->n &&
	    last->file_idx + (op->n2 - op->n) >= m->cfg.file_pages)
		return -EINVAL;
	if (op->to == op->first) {
		grow_from = op->first + op->n;
		grow_n = op->n2 > op->n ? op->n2 - op->n : 0;
		return grow_n && !range_empty(m, op->proc, grow_from, grow_n) ? -EINVAL : 0;
	}
	/* MREMAP_FIXED onto itself is EINVAL; the destination must be free here. */
	if (op->to < op->first + op->n && op->first < op->to + op->n2)
		return -EINVAL;
	return range_empty(m, op->proc, op->to, op->n2) ? 0 : -EINVAL;
}

static int op_mremap(struct ms_rm *m, struct ms_rm_op *op)
{
	struct rm_slot *src, *tmp, tail;
	uint32_t keep = op->n < op->n2 ? op->n : op->n2;
	int ret;

	if ((ret = check_mremap(m, op)))
		return ret;
	src = slot_of(m, op->proc, op->first);
	tail = src[op->n - 1];
	tmp = malloc(op->n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, src, op->n * sizeof(*tmp));
	for (uint32_t i = keep; i < op->n; i++)
		unmap_slot(m, &src[i]);
	for (uint32_t i = 0; i < op->n; i++) {
		src[i].state = SL_EMPTY;
		src[i].dontfork = false;
	}
	for (uint32_t i = 0; i < op->n2; i++) {
		struct rm_slot *d = slot_of(m, op->proc, op->to + i);

		if (i < keep) {
			*d = tmp[i];
			continue;
		}
		d->state = SL_NONE;
		d->frame = ZERO_FRAME;
		d->prot = tail.prot;
		d->dontfork = tail.dontfork;
		d->file_idx = tail.file_idx + (i - op->n) + 1;
	}
	free(tmp);
	return 0;
}

int ms_rm_apply(struct ms_rm *m, struct ms_rm_op *op)
{
	struct ms_rm_op saved = *op;
	int ret;

	if (op->kind >= MS_RM_OP_COUNT)
		return -EINVAL;
	if (m->nhist == m->hist_cap) {
		size_t cap = m->hist_cap ? 2 * m->hist_cap : 64;
		struct ms_rm_op *h = realloc(m->hist, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		m->hist = h;
		m->hist_cap = cap;
	}
	op->gen = m->gen + 1;
	switch (op->kind) {
	case MS_RM_POPULATE:
	case MS_RM_WRITE:
	case MS_RM_FORCE_WRITE:
		ret = op_write(m, op);
		break;
	case MS_RM_FORK:
		ret = op_fork(m, op);
		break;
	case MS_RM_EXIT:
		ret = op_exit(m, op);
		break;
	case MS_RM_PIN:
		ret = op_pin(m, op);
		break;
	case MS_RM_PIN_WRITE:
		ret = op_pin_write(m, op);
		break;
	case MS_RM_UNPIN:
		ret = op_unpin(m, op);
		break;
	case MS_RM_MREMAP:
		ret = op_mremap(m, op);
		break;
	case MS_RM_MUNMAP:
		ret = op_munmap(m, op);
		break;
	case MS_RM_MPROTECT:
		ret = op_mprotect(m, op);
		break;
	default:
		ret = op_madvise(m, op);
		break;
	}
	if (ret) {
		*op = saved;
		return ret;
	}
	m->gen++;
	m->hist[m->nhist++] = *op;
	return 0;
}

/* ---- construction and queries ---- */

int ms_rm_new(struct ms_rm **mp, const struct ms_rm_cfg *cfg)
{
	struct ms_rm *m;
	struct rm_slot *s0;

	*mp = NULL;
	if (!cfg->nslots || cfg->npages > cfg->nslots || cfg->nslots > (1u << 24) ||
	    (cfg->file_pages && cfg->file_pages < cfg->npages) ||
	    (cfg->shared && !cfg->file_pages))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	if (!m->cfg.folio_pages)
		m->cfg.folio_pages = 1;
	for (unsigned p = 0; p < MS_RM_MAX_PROCS; p++) {
		m->procs[p].slots = calloc(cfg->nslots, sizeof(struct rm_slot));
		if (!m->procs[p].slots)
			goto out_free;
	}
	m->file_frame = calloc(m->cfg.file_pages ? m->cfg.file_pages : 1, sizeof(uint32_t));
	if (!m->file_frame || reserve(m, 1))
		goto out_free;
	new_frame(m, 0, true, new_folio(m));	/* ZERO_FRAME */
	m->frames[ZERO_FRAME].exclusive = false;
	s0 = m->procs[0].slots;
	for (uint32_t s = 0; s < cfg->npages; s++) {
		s0[s].state = SL_NONE;
		s0[s].prot = MS_RM_PROT_READ | MS_RM_PROT_WRITE;
		s0[s].file_idx = s;
	}
	m->procs[0].alive = true;
	*mp = m;
	return 0;
out_free:
	ms_rm_free(m);
	return -ENOMEM;
}

void ms_rm_free(struct ms_rm *m)
{
	if (!m)
		return;
	for (unsigned p = 0; p < MS_RM_MAX_PROCS; p++)
		free(m->procs[p].slots);
	for (unsigned k = 0; k < MS_RM_MAX_PINS; k++)
		free(m->pins[k].frames);
	free(m->frames);
	free(m->folio_pins);
	free(m->file_frame);
	free(m->hist);
	free(m);
}

const struct ms_rm_cfg *ms_rm_config(const struct ms_rm *m)
{
	return &m->cfg;
}

uint64_t ms_rm_fill(const struct ms_rm *m, const struct ms_rm_op *op, uint32_t i)
{
	uint64_t who = op->kind == MS_RM_PIN_WRITE ? 0x100u + op->pin : op->proc;
	uint64_t role = m->cfg.seed ^ (((uint64_t)op->kind << 16 | who) << 32);

	return ms_stamp(role, (uint64_t)op->first + i, op->gen);
}

uint64_t ms_rm_file_fill(const struct ms_rm *m, uint32_t i)
{
	return ms_stamp(m->cfg.seed ^ (FILE_ROLE << 32), i, 0);
}

static void want_frame(const struct ms_rm *m, uint32_t id, struct ms_rm_want *w)
{
	const struct rm_frame *f = &m->frames[id];

	w->view = MS_RM_V_DATA;
	w->fill = f->fill;
}

/* A lazyfree page nothing holds may have been discarded from this mapping: zero then. */
static bool may_be_discarded(const struct rm_frame *f)
{
	return f->lazy && !f->pins && !f->gets;
}

int ms_rm_expect(const struct ms_rm *m, unsigned proc, uint32_t slot, struct ms_rm_want *w)
{
	const struct rm_slot *sl;

	memset(w, 0, sizeof(*w));
	if (proc >= MS_RM_MAX_PROCS || slot >= m->cfg.nslots)
		return -EINVAL;
	if (!m->procs[proc].alive)
		return 0;
	sl = &m->procs[proc].slots[slot];
	if (sl->state == SL_EMPTY)
		return 0;
	if (!(sl->prot & MS_RM_PROT_READ)) {
		w->view = MS_RM_V_NOACCESS;
		return 0;
	}
	if (sl->state == SL_MAPPED) {
		want_frame(m, sl->frame, w);
		w->has_alt = may_be_discarded(&m->frames[sl->frame]);
	} else if (is_file(m) && m->file_frame[sl->file_idx])
		want_frame(m, m->file_frame[sl->file_idx], w);
	else if (is_file(m))
		w->fill = ms_rm_file_fill(m, sl->file_idx);
	w->view = MS_RM_V_DATA;
	w->writable = sl->prot & MS_RM_PROT_WRITE;
	return 0;
}

int ms_rm_pin_expect(const struct ms_rm *m, unsigned pin, uint32_t i, struct ms_rm_want *w)
{
	memset(w, 0, sizeof(*w));
	if (check_active_pin(m, pin) || i >= m->pins[pin].n)
		return -EINVAL;
	want_frame(m, m->pins[pin].frames[i], w);
	if (m->frames[m->pins[pin].frames[i]].has_ref_alt) {
		w->alt = m->frames[m->pins[pin].frames[i]].ref_alt;
		w->has_alt = true;
	}
	return 0;
}

int ms_rm_observe(struct ms_rm *m, unsigned proc, uint32_t slot, uint64_t fill)
{
	struct rm_slot *sl;
	struct rm_frame *f;

	if (check_proc(m, proc) || slot >= m->cfg.nslots)
		return -EINVAL;
	sl = slot_of(m, proc, slot);
	if (sl->state != SL_MAPPED)
		return -EINVAL;
	f = &m->frames[sl->frame];
	if (fill == f->fill)
		return 0;
	if (fill || !may_be_discarded(f))
		return -EINVAL;
	/* Discarded from this mapping: the process refaults a fresh zero page. */
	unmap_slot(m, sl);
	return 0;
}

bool ms_rm_alive(const struct ms_rm *m, unsigned proc)
{
	return !check_proc(m, proc);
}

int ms_rm_pin_info(const struct ms_rm *m, unsigned pin, unsigned *owner, uint32_t *first,
		   uint32_t *n, unsigned *flags)
{
	const struct rm_pin *p;

	if (check_active_pin(m, pin))
		return -EINVAL;
	p = &m->pins[pin];
	if (owner)
		*owner = p->owner;
	if (first)
		*first = p->first;
	if (n)
		*n = p->n;
	if (flags)
		*flags = p->flags;
	return 0;
}

unsigned ms_rm_mapcount(const struct ms_rm *m, unsigned proc, uint32_t slot)
{
	const struct rm_slot *sl;

	if (check_proc(m, proc) || slot >= m->cfg.nslots)
		return 0;
	sl = &m->procs[proc].slots[slot];
	return sl->state == SL_MAPPED ? m->frames[sl->frame].maps : 0;
}

bool ms_rm_same_page(const struct ms_rm *m, unsigned proc, uint32_t slot, unsigned pin,
		     uint32_t i)
{
	const struct rm_slot *sl;

	if (check_proc(m, proc) || slot >= m->cfg.nslots || check_active_pin(m, pin) ||
	    i >= m->pins[pin].n)
		return false;
	sl = &m->procs[proc].slots[slot];
	return sl->state == SL_MAPPED && sl->frame == m->pins[pin].frames[i];
}

/* ---- text ---- */

static const char *pin_flags_str(unsigned f)
{
	static const char *const names[8] = { "ro", "rw", "ro|lt", "rw|lt", "get", "get|w",
					      "get|lt", "get|w|lt" };

	return names[f & 7];
}

static const char *prot_str(unsigned f)
{
	static const char *const names[4] = { "none", "r", "w", "rw" };

	return names[f & 3];
}

size_t ms_rm_op_str(const struct ms_rm_op *op, char *buf, size_t len)
{
	const char *name = ms_rm_op_name(op->kind);
	int n;

	switch (op->kind) {
	case MS_RM_FORK:
		n = snprintf(buf, len, "fork(%u)=%u", op->proc, op->out);
		break;
	case MS_RM_EXIT:
		n = snprintf(buf, len, "exit(%u)", op->proc);
		break;
	case MS_RM_PIN:
		n = snprintf(buf, len, "pin(%u,%u+%u,%s)=%u", op->proc, op->first, op->n,
			     pin_flags_str(op->flags), op->out);
		break;
	case MS_RM_PIN_WRITE:
		n = snprintf(buf, len, "pinw(#%u,%u+%u)", op->pin, op->first, op->n);
		break;
	case MS_RM_UNPIN:
		n = snprintf(buf, len, "unpin(#%u)", op->pin);
		break;
	case MS_RM_MREMAP:
		n = snprintf(buf, len, "mremap(%u,%u+%u->%u+%u)", op->proc, op->first, op->n,
			     op->to, op->n2);
		break;
	case MS_RM_WRITE:
	case MS_RM_FORCE_WRITE:
		n = snprintf(buf, len, "%s%s(%u,%u+%u)", op->flags & MS_RM_W_GUP ? "g" : "", name,
			     op->proc, op->first, op->n);
		break;
	case MS_RM_MPROTECT:
		n = snprintf(buf, len, "mprotect(%u,%u+%u,%s)", op->proc, op->first, op->n,
			     prot_str(op->flags));
		break;
	default:
		n = snprintf(buf, len, "%s(%u,%u+%u)", name, op->proc, op->first, op->n);
		break;
	}
	return n < 0 ? 0 : (size_t)n;
}

size_t ms_rm_history(const struct ms_rm *m, char *buf, size_t len)
{
	size_t total = 0, cap = 256, used;
	char *all = malloc(cap), one[96];

	if (!len)
		return 0;
	buf[0] = '\0';
	if (!all)
		return 0;
	all[0] = '\0';
	for (size_t i = 0; i < m->nhist; i++) {
		size_t n = ms_rm_op_str(&m->hist[i], one, sizeof(one));

		while (total + n + 3 > cap) {
			char *p = realloc(all, cap * 2);

			if (!p)
				goto out;
			all = p;
			cap *= 2;
		}
		if (i) {
			memcpy(all + total, "; ", 2);
			total += 2;
		}
		memcpy(all + total, one, n + 1);
		total += n;
	}
out:
	if (total < len) {
		memcpy(buf, all, total + 1);
		used = total;
	} else {
		/* Keep the start (setup) and the end (what led to the failure). */
		size_t head = (len - 6) / 3, tail = len - 6 - head;

		memcpy(buf, all, head);
		memcpy(buf + head, " ... ", 5);
		memcpy(buf + head + 5, all + total - tail, tail);
		buf[len - 1] = '\0';
		used = len - 1;
	}
	free(all);
	return used;
}

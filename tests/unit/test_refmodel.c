/* Unit tests for the reference model (src/model/refmodel.c): hand-worked op sequences. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mmstorm/refmodel.h"

#define RW (MS_RM_PROT_READ | MS_RM_PROT_WRITE)
#define RWLT (MS_RM_PF_WRITE | MS_RM_PF_LONGTERM)

static struct ms_rm *mk(uint32_t nslots, uint32_t npages, uint32_t folio, uint32_t file,
			bool shared)
{
	struct ms_rm_cfg cfg = { .nslots = nslots, .npages = npages, .folio_pages = folio,
				 .file_pages = file, .shared = shared, .seed = 42,
				 .ro_longterm_unshares_file = true };
	struct ms_rm *m;

	ck_assert_int_eq(ms_rm_new(&m, &cfg), 0);
	return m;
}

static struct ms_rm *mk_cfg(const struct ms_rm_cfg *cfg)
{
	struct ms_rm *m;

	ck_assert_int_eq(ms_rm_new(&m, cfg), 0);
	return m;
}

/* Apply an op that must succeed; returns it (gen and out filled in). */
static struct ms_rm_op ok_op(struct ms_rm *m, unsigned kind, unsigned proc, uint32_t first,
			     uint32_t n, unsigned flags)
{
	struct ms_rm_op op = { .kind = kind, .proc = proc, .first = first, .n = n,
			       .flags = flags };
	int ret = ms_rm_apply(m, &op);

	ck_assert_msg(ret == 0, "%s(%u,%u+%u,%#x) failed: %d", ms_rm_op_name(kind), proc, first,
		      n, flags, ret);
	return op;
}

static int try_op(struct ms_rm *m, unsigned kind, unsigned proc, uint32_t first, uint32_t n,
		  unsigned flags)
{
	struct ms_rm_op op = { .kind = kind, .proc = proc, .first = first, .n = n,
			       .flags = flags };

	return ms_rm_apply(m, &op);
}

static unsigned fork_of(struct ms_rm *m, unsigned parent)
{
	return ok_op(m, MS_RM_FORK, parent, 0, 0, 0).out;
}

static unsigned pin_of(struct ms_rm *m, unsigned proc, uint32_t first, uint32_t n,
		       unsigned flags)
{
	return ok_op(m, MS_RM_PIN, proc, first, n, flags).out;
}

static struct ms_rm_op pin_op(struct ms_rm *m, unsigned pin, uint32_t first, uint32_t n,
			      unsigned kind)
{
	struct ms_rm_op op = { .kind = kind, .pin = pin, .first = first, .n = n };

	ck_assert_int_eq(ms_rm_apply(m, &op), 0);
	return op;
}

static uint64_t seen(struct ms_rm *m, unsigned proc, uint32_t slot)
{
	struct ms_rm_want w;

	ck_assert_int_eq(ms_rm_expect(m, proc, slot, &w), 0);
	ck_assert_msg(w.view == MS_RM_V_DATA, "proc %u slot %u: view %u, not data", proc, slot,
		      w.view);
	ck_assert_msg(!w.has_alt, "proc %u slot %u: unexpected alternative", proc, slot);
	return w.fill;
}

static unsigned view(struct ms_rm *m, unsigned proc, uint32_t slot)
{
	struct ms_rm_want w;

	ck_assert_int_eq(ms_rm_expect(m, proc, slot, &w), 0);
	return w.view;
}

static uint64_t through(struct ms_rm *m, unsigned pin, uint32_t i)
{
	struct ms_rm_want w;

	ck_assert_int_eq(ms_rm_pin_expect(m, pin, i, &w), 0);
	ck_assert(!w.has_alt);
	return w.fill;
}

/* ---- anonymous memory: COW and the cow.c cases ---- */

START_TEST(test_cow_basic)
{
	struct ms_rm *m = mk(8, 4, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 4, 0), w;
	unsigned c;

	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &pop, 0));
	ck_assert_uint_ne(ms_rm_fill(m, &pop, 0), ms_rm_fill(m, &pop, 1));
	c = fork_of(m, 0);
	ck_assert_uint_eq(c, 1);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 2), 2);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(seen(m, 1, 0), ms_rm_fill(m, &pop, 0));
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 1);
	ck_assert_uint_eq(ms_rm_mapcount(m, 1, 0), 1);
	w = ok_op(m, MS_RM_WRITE, 1, 3, 1, 0);
	ck_assert_uint_eq(seen(m, 1, 3), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(seen(m, 0, 3), ms_rm_fill(m, &pop, 3));
	/* Unfaulted anonymous memory reads zero, in the child too. */
	ck_assert_uint_eq(view(m, 1, 5), MS_RM_V_UNMAPPED);
	ok_op(m, MS_RM_EXIT, 1, 0, 0, 0);
	ck_assert(!ms_rm_alive(m, 1));
	ck_assert_uint_eq(view(m, 1, 0), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 2), 1);
	ms_rm_free(m);
}
END_TEST

/* CVE-2020-29374: vmsplice() + unmap in child, then the parent writes. */
START_TEST(test_vmsplice_in_child)
{
	struct ms_rm *m = mk(4, 1, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 1, 0);
	unsigned c = fork_of(m, 0), ref;

	ref = pin_of(m, c, 0, 1, MS_RM_PF_GET);
	ok_op(m, MS_RM_MUNMAP, c, 0, 1, 0);
	ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(through(m, ref, 0), ms_rm_fill(m, &pop, 0));
	ck_assert_uint_ne(seen(m, 0, 0), ms_rm_fill(m, &pop, 0));
	ms_rm_free(m);
}
END_TEST

/* vmsplice() before fork(), unmap in the parent, the child writes: no leak into the pipe. */
START_TEST(test_vmsplice_before_fork)
{
	struct ms_rm *m = mk(4, 1, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 1, 0), w;
	unsigned ref = pin_of(m, 0, 0, 1, MS_RM_PF_GET), c = fork_of(m, 0);

	ok_op(m, MS_RM_MUNMAP, 0, 0, 1, 0);
	/* The child maps the page alone now, but the pipe holds it: a copy is due. */
	ck_assert_uint_eq(ms_rm_mapcount(m, c, 0), 1);
	w = ok_op(m, MS_RM_WRITE, c, 0, 1, 0);
	ck_assert_uint_eq(through(m, ref, 0), ms_rm_fill(m, &pop, 0));
	ck_assert_uint_eq(seen(m, c, 0), ms_rm_fill(m, &w, 0));
	ck_assert(!ms_rm_same_page(m, c, 0, ref, 0));
	ms_rm_free(m);
}
END_TEST

/* The vmsplicer owns the page exclusively: its own later writes show in the pipe. */
START_TEST(test_get_ref_sees_owner_write)
{
	struct ms_rm *m = mk(4, 1, 1, 0, false);
	struct ms_rm_op w;
	unsigned ref;

	ok_op(m, MS_RM_POPULATE, 0, 0, 1, 0);
	ref = pin_of(m, 0, 0, 1, MS_RM_PF_GET);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(through(m, ref, 0), ms_rm_fill(m, &w, 0));
	ck_assert(ms_rm_same_page(m, 0, 0, ref, 0));
	ms_rm_free(m);
}
END_TEST

/* io_uring fixed buffer + fork(): the pinned page stays the parent's, the child gets a copy. */
START_TEST(test_rw_pin_fork)
{
	struct ms_rm *m = mk(4, 2, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0), w, pw;
	unsigned pin = pin_of(m, 0, 0, 2, RWLT), c = fork_of(m, 0);

	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 1);
	ck_assert_uint_eq(ms_rm_mapcount(m, c, 0), 1);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(seen(m, c, 0), ms_rm_fill(m, &pop, 0));
	pw = pin_op(m, pin, 1, 1, MS_RM_PIN_WRITE);
	ck_assert_uint_eq(seen(m, 0, 1), ms_rm_fill(m, &pw, 0));
	ck_assert_uint_eq(seen(m, c, 1), ms_rm_fill(m, &pop, 1));
	w = ok_op(m, MS_RM_WRITE, c, 1, 1, 0);
	ck_assert_uint_eq(through(m, pin, 1), ms_rm_fill(m, &pw, 0));
	ck_assert(ms_rm_same_page(m, 0, 1, pin, 1));
	ck_assert(!ms_rm_same_page(m, c, 1, pin, 1));
	ok_op(m, MS_RM_EXIT, c, 0, 0, 0);
	pin_op(m, pin, 0, 0, MS_RM_UNPIN);
	ck_assert_int_eq(ms_rm_pin_expect(m, pin, 0, &(struct ms_rm_want){ 0 }), -EINVAL);
	ck_assert_uint_eq(seen(m, 0, 1), ms_rm_fill(m, &pw, 0));
	ms_rm_free(m);
}
END_TEST

/* R/O pin on a page shared with a child: unshared first, so the parent's writes show. */
START_TEST(test_ro_pin_on_shared)
{
	struct ms_rm *m = mk(4, 1, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 1, 0), w;
	unsigned c = fork_of(m, 0), pin;

	pin = pin_of(m, 0, 0, 1, MS_RM_PF_LONGTERM);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 1);
	ck_assert_uint_eq(ms_rm_mapcount(m, c, 0), 1);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &pop, 0));
	w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(seen(m, c, 0), ms_rm_fill(m, &pop, 0));
	/* The child's own write leaves parent and pin alone. */
	ok_op(m, MS_RM_WRITE, c, 0, 1, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ms_rm_free(m);
}
END_TEST

/* R/O pin after the child is gone ("previously shared") and on a R/O-mapped exclusive page. */
START_TEST(test_ro_pin_previously_shared_and_mprotect)
{
	struct ms_rm *m = mk(4, 2, 1, 0, false);
	struct ms_rm_op w;
	unsigned c, pin;

	ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0);
	c = fork_of(m, 0);
	ok_op(m, MS_RM_EXIT, c, 0, 0, 0);
	pin = pin_of(m, 0, 0, 2, MS_RM_PF_LONGTERM);
	ok_op(m, MS_RM_MPROTECT, 0, 0, 2, MS_RM_PROT_READ);
	ck_assert_int_eq(try_op(m, MS_RM_WRITE, 0, 0, 1, 0), -EACCES);
	ok_op(m, MS_RM_MPROTECT, 0, 0, 2, RW);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 2, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(through(m, pin, 1), ms_rm_fill(m, &w, 1));
	ms_rm_free(m);
}
END_TEST

START_TEST(test_dontneed_munmap_keep_pinned_page)
{
	struct ms_rm *m = mk(8, 4, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 4, 0), w;
	unsigned pin = pin_of(m, 0, 0, 4, RWLT);

	ok_op(m, MS_RM_DONTNEED, 0, 0, 2, 0);
	ck_assert_uint_eq(seen(m, 0, 0), 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &pop, 0));
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 0);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &pop, 0));
	ck_assert(!ms_rm_same_page(m, 0, 0, pin, 0));
	ok_op(m, MS_RM_MUNMAP, 0, 2, 2, 0);
	ck_assert_uint_eq(view(m, 0, 2), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(through(m, pin, 3), ms_rm_fill(m, &pop, 3));
	ck_assert_int_eq(try_op(m, MS_RM_WRITE, 0, 2, 1, 0), -EFAULT);
	ms_rm_free(m);
}
END_TEST

START_TEST(test_mremap_moves_pinned_pages)
{
	struct ms_rm *m = mk(16, 4, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 4, 0), w;
	struct ms_rm_op mr = { .kind = MS_RM_MREMAP, .first = 0, .n = 4, .to = 8, .n2 = 6 };
	unsigned pin = pin_of(m, 0, 1, 1, RWLT);

	ck_assert_int_eq(ms_rm_apply(m, &mr), 0);
	ck_assert_uint_eq(view(m, 0, 1), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(seen(m, 0, 9), ms_rm_fill(m, &pop, 1));
	ck_assert_uint_eq(seen(m, 0, 13), 0);	/* grown: fresh anonymous memory */
	ck_assert(ms_rm_same_page(m, 0, 9, pin, 0));
	w = ok_op(m, MS_RM_WRITE, 0, 9, 1, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	/* Shrink in place, then the destination of a move must be free. */
	mr = (struct ms_rm_op){ .kind = MS_RM_MREMAP, .first = 8, .n = 6, .to = 8, .n2 = 2 };
	ck_assert_int_eq(ms_rm_apply(m, &mr), 0);
	ck_assert_uint_eq(view(m, 0, 10), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ck_assert_int_eq(try_op(m, MS_RM_POPULATE, 0, 10, 1, 0), -EFAULT);
	mr = (struct ms_rm_op){ .kind = MS_RM_MREMAP, .first = 8, .n = 2, .to = 9, .n2 = 2 };
	ck_assert_int_eq(ms_rm_apply(m, &mr), -EINVAL);
	ms_rm_free(m);
}
END_TEST

/*
 * A THP (folio of 4 here) with one page pinned: fork copies every exclusive page of that
 * folio for the child; the other folio is COW-shared. FOLL_GET references tell them apart.
 */
START_TEST(test_fork_copies_whole_pinned_folio)
{
	struct ms_rm *m = mk(8, 8, 4, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 8, 0), w2, w5;
	unsigned a = pin_of(m, 0, 2, 1, MS_RM_PF_GET), b = pin_of(m, 0, 5, 1, MS_RM_PF_GET);
	unsigned c;

	pin_of(m, 0, 1, 1, RWLT);
	c = fork_of(m, 0);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 2), 1);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 5), 2);
	w2 = ok_op(m, MS_RM_WRITE, 0, 2, 1, 0);
	w5 = ok_op(m, MS_RM_WRITE, 0, 5, 1, 0);
	ck_assert_uint_eq(through(m, a, 0), ms_rm_fill(m, &w2, 0));
	ck_assert_uint_eq(through(m, b, 0), ms_rm_fill(m, &pop, 5));
	ck_assert_uint_eq(seen(m, c, 2), ms_rm_fill(m, &pop, 2));
	ck_assert_uint_eq(seen(m, c, 5), ms_rm_fill(m, &pop, 5));
	ck_assert_uint_eq(seen(m, 0, 5), ms_rm_fill(m, &w5, 0));
	ms_rm_free(m);
}
END_TEST

START_TEST(test_madv_free)
{
	struct ms_rm *m = mk(4, 2, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0), wr;
	struct ms_rm_want w;
	unsigned c;

	ok_op(m, MS_RM_FREE, 0, 0, 1, 0);
	ck_assert_int_eq(ms_rm_expect(m, 0, 0, &w), 0);
	ck_assert(w.has_alt);
	ck_assert_uint_eq(w.fill, ms_rm_fill(m, &pop, 0));
	ck_assert_uint_eq(w.alt, 0);
	ck_assert_int_eq(ms_rm_observe(m, 0, 0, 12345), -EINVAL);
	ck_assert_int_eq(ms_rm_observe(m, 0, 0, 0), 0);
	ck_assert_uint_eq(seen(m, 0, 0), 0);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 0);
	/*
	 * Shared with a child: lazyfree too, discarded for both or neither (the child's clean
	 * mapping does not keep it); the parent's write copies, the child keeps "old or zero".
	 */
	c = fork_of(m, 0);
	ok_op(m, MS_RM_FREE, 0, 1, 1, 0);
	ck_assert_int_eq(ms_rm_expect(m, c, 1, &w), 0);
	ck_assert(w.has_alt && w.fill == ms_rm_fill(m, &pop, 1) && w.alt == 0);
	/* Discarded from the parent's mapping only: the child may still have it. */
	ck_assert_int_eq(ms_rm_observe(m, 0, 1, 0), 0);
	ck_assert_uint_eq(seen(m, 0, 1), 0);
	ck_assert_int_eq(ms_rm_expect(m, c, 1, &w), 0);
	ck_assert(w.has_alt && w.fill == ms_rm_fill(m, &pop, 1));
	wr = ok_op(m, MS_RM_WRITE, 0, 1, 1, 0);
	ck_assert_uint_eq(seen(m, 0, 1), ms_rm_fill(m, &wr, 0));
	ck_assert_int_eq(ms_rm_expect(m, c, 1, &w), 0);
	ck_assert(w.has_alt);
	ck_assert_int_eq(ms_rm_observe(m, c, 1, 0), 0);
	ck_assert_uint_eq(seen(m, c, 1), 0);
	/* A pinned page is never discarded. */
	pin_of(m, 0, 1, 1, RWLT);
	ok_op(m, MS_RM_FREE, 0, 1, 1, 0);
	ck_assert_uint_eq(seen(m, 0, 1), ms_rm_fill(m, &wr, 0));
	ms_rm_free(m);
}
END_TEST

/* After PAGEOUT a FOLL_GET reference may or may not follow its owner's next write. */
START_TEST(test_pageout_loosens_get_refs)
{
	struct ms_rm *m = mk(4, 2, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0), w, w2;
	unsigned ref = pin_of(m, 0, 0, 1, MS_RM_PF_GET), pin = pin_of(m, 0, 1, 1, RWLT);
	struct ms_rm_want want;

	ok_op(m, MS_RM_PAGEOUT, 0, 0, 2, 0);
	ok_op(m, MS_RM_COLD, 0, 0, 2, 0);
	ok_op(m, MS_RM_MIGRATE, 0, 0, 2, 0);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 2, 0);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &w, 0));
	ck_assert_int_eq(ms_rm_pin_expect(m, ref, 0, &want), 0);
	ck_assert(want.has_alt);
	ck_assert_uint_eq(want.fill, ms_rm_fill(m, &pop, 0) ^ ms_rm_fill(m, &w, 0) ^ want.alt);
	ck_assert(want.alt == ms_rm_fill(m, &pop, 0) || want.alt == ms_rm_fill(m, &w, 0));
	/* Copied at that write (old for good) or not (follows the process): nothing else. */
	w2 = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_int_eq(ms_rm_pin_expect(m, ref, 0, &want), 0);
	ck_assert_uint_eq(want.fill, ms_rm_fill(m, &w2, 0));
	ck_assert_uint_eq(want.alt, ms_rm_fill(m, &pop, 0));
	ck_assert(!ms_rm_expect(m, 0, 0, &want) && !want.has_alt);
	/* The pinned page is not paged out: strict coherence. */
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 1));
	ms_rm_free(m);
}
END_TEST

START_TEST(test_zero_page_refs)
{
	struct ms_rm *m = mk(4, 2, 1, 0, false);
	struct ms_rm_op w;
	unsigned ref = pin_of(m, 0, 0, 1, MS_RM_PF_GET), lt = pin_of(m, 0, 1, 1,
								     MS_RM_PF_LONGTERM);

	w = ok_op(m, MS_RM_WRITE, 0, 0, 2, 0);
	/* A reference to the shared zero page stays zero; a R/O longterm pin unshares it. */
	ck_assert_uint_eq(through(m, ref, 0), 0);
	ck_assert_uint_eq(through(m, lt, 0), ms_rm_fill(m, &w, 1));
	ms_rm_free(m);
}
END_TEST

/* Before 6.2 a R/O longterm pin of the shared zero page pins the zero page itself. */
START_TEST(test_zero_page_lt_before_6_2)
{
	struct ms_rm_cfg cfg = { .nslots = 4, .npages = 2, .folio_pages = 1, .seed = 42 };
	struct ms_rm *m = mk_cfg(&cfg);
	unsigned lt = pin_of(m, 0, 0, 1, MS_RM_PF_LONGTERM);
	struct ms_rm_op w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);

	ck_assert_uint_eq(through(m, lt, 0), 0);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 1);
	ms_rm_free(m);
}
END_TEST

/*
 * MADV_DONTFORK: the child has nothing in the range (an access faults), the rest is shared
 * as usual; the pinned page stays the parent's. The flag moves with mremap and goes with
 * munmap.
 */
START_TEST(test_dontfork)
{
	struct ms_rm *m = mk(8, 4, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 4, 0), w;
	unsigned pin = pin_of(m, 0, 0, 2, RWLT), c, c2;

	ok_op(m, MS_RM_DONTFORK, 0, 0, 2, 0);
	c = fork_of(m, 0);
	ck_assert_uint_eq(view(m, c, 0), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(view(m, c, 1), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(seen(m, c, 2), ms_rm_fill(m, &pop, 2));
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 1);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 2), 2);
	ck_assert_int_eq(try_op(m, MS_RM_WRITE, c, 0, 1, 0), -EFAULT);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	/* A fork from the child (no DONTFORK range of its own) and after mremap. */
	c2 = fork_of(m, c);
	ck_assert_uint_eq(view(m, c2, 0), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(seen(m, c2, 3), ms_rm_fill(m, &pop, 3));
	{
		struct ms_rm_op mr = { .kind = MS_RM_MREMAP, .proc = 0, .first = 0, .n = 4,
				       .to = 4, .n2 = 4 };

		ck_assert_int_eq(ms_rm_apply(m, &mr), 0);
	}
	c2 = fork_of(m, 0);
	ck_assert_uint_eq(view(m, c2, 4), MS_RM_V_UNMAPPED);
	ck_assert_uint_eq(seen(m, c2, 6), ms_rm_fill(m, &pop, 2));
	ok_op(m, MS_RM_MUNMAP, 0, 4, 4, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ms_rm_free(m);
}
END_TEST

/*
 * A write through a pin is no CPU store: it does not cancel MADV_FREE. While pinned the page
 * stays; once unpinned, reclaim may discard it (old-or-zero), as 6.18 does for io_uring.
 */
START_TEST(test_free_then_pin_write)
{
	struct ms_rm *m = mk(4, 2, 1, 0, false);
	struct ms_rm_op pw;
	struct ms_rm_want w;
	unsigned pin;

	ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0);
	ok_op(m, MS_RM_FREE, 0, 0, 2, 0);
	pin = pin_of(m, 0, 0, 1, RWLT);
	pw = pin_op(m, pin, 0, 1, MS_RM_PIN_WRITE);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &pw, 0));
	ck_assert_int_eq(ms_rm_expect(m, 0, 0, &w), 0);
	ck_assert(!w.has_alt);
	pin_op(m, pin, 0, 0, MS_RM_UNPIN);
	ck_assert_int_eq(ms_rm_expect(m, 0, 0, &w), 0);
	ck_assert(w.has_alt && w.fill == ms_rm_fill(m, &pw, 0) && w.alt == 0);
	/* A CPU store does cancel it. */
	ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_int_eq(ms_rm_expect(m, 0, 0, &w), 0);
	ck_assert(!w.has_alt);
	ms_rm_free(m);
}
END_TEST

/* FOLL_FORCE (/proc/PID/mem) writes into R/O private memory break COW, never leak. */
START_TEST(test_force_write)
{
	struct ms_rm *m = mk(4, 2, 1, 0, false);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0), fw;
	unsigned c = fork_of(m, 0);

	ok_op(m, MS_RM_MPROTECT, c, 0, 2, MS_RM_PROT_READ);
	fw = ok_op(m, MS_RM_FORCE_WRITE, c, 0, 1, 0);
	ck_assert_uint_eq(seen(m, c, 0), ms_rm_fill(m, &fw, 0));
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &pop, 0));
	ok_op(m, MS_RM_MPROTECT, 0, 0, 2, 0);
	ck_assert_uint_eq(view(m, 0, 1), MS_RM_V_NOACCESS);
	ok_op(m, MS_RM_FORCE_WRITE, 0, 1, 1, 0);
	ms_rm_free(m);
}
END_TEST

/* ---- file and shared memory ---- */

START_TEST(test_file_private)
{
	struct ms_rm *m = mk(8, 4, 1, 8, false);
	struct ms_rm_op w;
	unsigned c, lt, st;

	ck_assert_uint_eq(seen(m, 0, 2), ms_rm_file_fill(m, 2));
	ck_assert_uint_ne(ms_rm_file_fill(m, 2), ms_rm_file_fill(m, 3));
	c = fork_of(m, 0);
	w = ok_op(m, MS_RM_WRITE, 0, 2, 1, 0);
	ck_assert_uint_eq(seen(m, c, 2), ms_rm_file_fill(m, 2));
	ck_assert_uint_eq(seen(m, 0, 2), ms_rm_fill(m, &w, 0));
	/* 6.2+: a R/O longterm pin breaks COW on the page cache page first. */
	lt = pin_of(m, 0, 0, 1, MS_RM_PF_LONGTERM);
	st = pin_of(m, 0, 1, 1, 0);
	w = ok_op(m, MS_RM_WRITE, 0, 0, 2, 0);
	ck_assert_uint_eq(through(m, lt, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(through(m, st, 0), ms_rm_file_fill(m, 1));
	ck_assert_int_eq(try_op(m, MS_RM_FREE, 0, 0, 1, 0), -EOPNOTSUPP);
	/* DONTNEED drops the private copy: the file shows through again. */
	ok_op(m, MS_RM_DONTNEED, 0, 0, 1, 0);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_file_fill(m, 0));
	ck_assert_uint_eq(through(m, lt, 0), ms_rm_fill(m, &w, 0));
	ms_rm_free(m);
}
END_TEST

START_TEST(test_file_private_before_6_2)
{
	struct ms_rm_cfg cfg = { .nslots = 4, .npages = 2, .file_pages = 2, .seed = 7 };
	struct ms_rm *m = mk_cfg(&cfg);
	unsigned lt = pin_of(m, 0, 0, 1, MS_RM_PF_LONGTERM);

	ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(through(m, lt, 0), ms_rm_file_fill(m, 0));
	ms_rm_free(m);
}
END_TEST

START_TEST(test_shared)
{
	struct ms_rm *m = mk(8, 4, 1, 8, true);
	struct ms_rm_op w, pw;
	unsigned c, pin;

	ck_assert_uint_eq(seen(m, 0, 3), ms_rm_file_fill(m, 3));
	c = fork_of(m, 0);
	pin = pin_of(m, 0, 0, 2, MS_RM_PF_LONGTERM);
	w = ok_op(m, MS_RM_WRITE, c, 0, 1, 0);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 0), 2);
	/* DONTNEED only drops the mapping: the page cache keeps the data. */
	ok_op(m, MS_RM_DONTNEED, 0, 0, 1, 0);
	ck_assert_uint_eq(seen(m, 0, 0), ms_rm_fill(m, &w, 0));
	ck_assert_int_eq(try_op(m, MS_RM_FREE, 0, 0, 1, 0), -EOPNOTSUPP);
	pin_op(m, pin, 0, 0, MS_RM_UNPIN);
	pin = pin_of(m, c, 2, 1, RWLT);
	pw = pin_op(m, pin, 0, 1, MS_RM_PIN_WRITE);
	ck_assert_uint_eq(seen(m, 0, 2), ms_rm_fill(m, &pw, 0));
	/* A FOLL_FORCE write cannot make anon pages in a R/O shared mapping. */
	ok_op(m, MS_RM_MPROTECT, 0, 0, 4, MS_RM_PROT_READ);
	ck_assert_int_eq(try_op(m, MS_RM_FORCE_WRITE, 0, 0, 1, 0), -EOPNOTSUPP);
	ms_rm_free(m);
}
END_TEST

START_TEST(test_shared_file_refuses_rw_longterm)
{
	struct ms_rm_cfg cfg = { .nslots = 4, .npages = 2, .file_pages = 2, .shared = true,
				 .longterm_rw_refused = true, .seed = 1 };
	struct ms_rm *m = mk_cfg(&cfg);

	ck_assert_int_eq(try_op(m, MS_RM_PIN, 0, 0, 1, RWLT), -EOPNOTSUPP);
	pin_of(m, 0, 0, 1, MS_RM_PF_WRITE);
	pin_of(m, 0, 0, 1, MS_RM_PF_LONGTERM);
	ms_rm_free(m);
}
END_TEST

START_TEST(test_hugetlb_rules)
{
	struct ms_rm_cfg cfg = { .nslots = 4, .npages = 2, .huge = true, .seed = 3 };
	struct ms_rm *m = mk_cfg(&cfg);
	struct ms_rm_op pop = ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0), w;
	unsigned pin = pin_of(m, 0, 0, 1, RWLT), c = fork_of(m, 0);

	ck_assert_int_eq(try_op(m, MS_RM_FREE, 0, 0, 1, 0), -EOPNOTSUPP);
	ck_assert_int_eq(try_op(m, MS_RM_COLLAPSE, 0, 0, 1, 0), -EOPNOTSUPP);
	ok_op(m, MS_RM_MPROTECT, 0, 1, 1, MS_RM_PROT_READ);
	ck_assert_int_eq(try_op(m, MS_RM_FORCE_WRITE, 0, 1, 1, 0), -EOPNOTSUPP);
	ms_rm_free(m);
	cfg.huge_force_write = true;
	m = mk_cfg(&cfg);
	pop = ok_op(m, MS_RM_POPULATE, 0, 0, 2, 0);
	pin = pin_of(m, 0, 0, 1, RWLT);
	c = fork_of(m, 0);
	ok_op(m, MS_RM_MPROTECT, c, 1, 1, MS_RM_PROT_READ);
	w = ok_op(m, MS_RM_FORCE_WRITE, c, 1, 1, 0);
	ck_assert_uint_eq(seen(m, c, 1), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(seen(m, 0, 1), ms_rm_fill(m, &pop, 1));
	w = ok_op(m, MS_RM_WRITE, 0, 0, 1, 0);
	ck_assert_uint_eq(through(m, pin, 0), ms_rm_fill(m, &w, 0));
	ck_assert_uint_eq(seen(m, c, 0), ms_rm_fill(m, &pop, 0));
	ms_rm_free(m);
}
END_TEST

/* ---- the contract: errors change nothing, bad ops are refused ---- */

START_TEST(test_errors_leave_model_unchanged)
{
	struct ms_rm *m = mk(8, 4, 1, 0, false);
	struct ms_rm_op op;
	char before[512], after[512];

	ok_op(m, MS_RM_POPULATE, 0, 0, 4, 0);
	ms_rm_history(m, before, sizeof(before));
	ck_assert_int_eq(try_op(m, MS_RM_WRITE, 0, 3, 2, 0), -EFAULT);
	ck_assert_int_eq(try_op(m, MS_RM_WRITE, 1, 0, 1, 0), -EINVAL);
	ck_assert_int_eq(try_op(m, MS_RM_WRITE, 0, 7, 2, 0), -EINVAL);
	ck_assert_int_eq(try_op(m, MS_RM_WRITE, 0, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(try_op(m, MS_RM_PIN, 0, 0, 1, 0x80), -EINVAL);
	ck_assert_int_eq(try_op(m, MS_RM_OP_COUNT, 0, 0, 1, 0), -EINVAL);
	op = (struct ms_rm_op){ .kind = MS_RM_UNPIN, .pin = 3 };
	ck_assert_int_eq(ms_rm_apply(m, &op), -EINVAL);
	ok_op(m, MS_RM_MPROTECT, 0, 0, 1, 0);
	ck_assert_int_eq(try_op(m, MS_RM_PIN, 0, 0, 2, MS_RM_PF_LONGTERM), -EFAULT);
	ck_assert_uint_eq(view(m, 0, 1), MS_RM_V_DATA);
	ck_assert_uint_eq(ms_rm_mapcount(m, 0, 1), 1);
	op = (struct ms_rm_op){ .kind = MS_RM_MREMAP, .first = 0, .n = 2, .to = 4, .n2 = 2 };
	ck_assert_int_eq(ms_rm_apply(m, &op), -EFAULT);	/* two protections */
	for (unsigned i = 1; i < MS_RM_MAX_PROCS; i++)
		fork_of(m, 0);
	ck_assert_int_eq(try_op(m, MS_RM_FORK, 0, 0, 0, 0), -ENOSPC);
	ms_rm_history(m, after, sizeof(after));
	ck_assert_int_eq(strncmp(before, after, strlen(before)), 0);
	ck_assert_ptr_null(strstr(after, "w(0,3+2)"));
	ms_rm_free(m);
}
END_TEST

START_TEST(test_bad_config)
{
	struct ms_rm_cfg cfg = { .nslots = 4, .npages = 5 };
	struct ms_rm *m = (struct ms_rm *)&cfg;

	ck_assert_int_eq(ms_rm_new(&m, &cfg), -EINVAL);
	ck_assert_ptr_null(m);
	cfg = (struct ms_rm_cfg){ .nslots = 0 };
	ck_assert_int_eq(ms_rm_new(&m, &cfg), -EINVAL);
	cfg = (struct ms_rm_cfg){ .nslots = 4, .npages = 2, .shared = true };
	ck_assert_int_eq(ms_rm_new(&m, &cfg), -EINVAL);
	cfg = (struct ms_rm_cfg){ .nslots = 4, .npages = 4, .file_pages = 2 };
	ck_assert_int_eq(ms_rm_new(&m, &cfg), -EINVAL);
}
END_TEST

START_TEST(test_text)
{
	struct ms_rm *m = mk(64, 48, 1, 0, false);
	struct ms_rm_op op = { .kind = MS_RM_MREMAP, .proc = 0, .first = 0, .n = 4, .to = 8,
			       .n2 = 6 };
	char buf[64], small[40];
	size_t n;

	ms_rm_op_str(&op, buf, sizeof(buf));
	ck_assert_str_eq(buf, "mremap(0,0+4->8+6)");
	op = (struct ms_rm_op){ .kind = MS_RM_FORCE_WRITE, .proc = 2, .first = 1, .n = 3,
				.flags = MS_RM_W_GUP };
	ms_rm_op_str(&op, buf, sizeof(buf));
	ck_assert_str_eq(buf, "gfw(2,1+3)");
	ok_op(m, MS_RM_POPULATE, 0, 0, 4, 0);
	pin_of(m, 0, 1, 2, RWLT);
	fork_of(m, 0);
	ok_op(m, MS_RM_MPROTECT, 0, 0, 2, MS_RM_PROT_READ);
	ms_rm_history(m, buf, sizeof(buf));
	ck_assert_str_eq(buf, "pop(0,0+4); pin(0,1+2,rw|lt)=0; fork(0)=1; mprotect(0,0+2,r)");
	for (int i = 0; i < 20; i++)
		ok_op(m, MS_RM_WRITE, 0, 20 + i, 1, 0);
	n = ms_rm_history(m, small, sizeof(small));
	ck_assert_uint_eq(n, sizeof(small) - 1);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(strncmp(small, "pop(0,0+4)", 10), 0);
	ck_assert_ptr_nonnull(strstr(small, " ... "));
	ck_assert_int_eq(strcmp(small + strlen(small) - 9, "w(0,39+1)"), 0);
	ms_rm_free(m);
}
END_TEST

/* ---- properties over seeded random sequences ---- */

static uint64_t rnd(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	uint64_t z = *s;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define RN 12

struct snap {
	struct ms_rm_want w[MS_RM_MAX_PROCS][RN];
};

static void take(struct ms_rm *m, struct snap *s)
{
	for (unsigned p = 0; p < MS_RM_MAX_PROCS; p++)
		for (uint32_t i = 0; i < RN; i++)
			if (ms_rm_expect(m, p, i, &s->w[p][i]))
				ck_abort_msg("ms_rm_expect(%u, %u) failed", p, i);
}

static struct ms_rm_op random_op(uint64_t *seed)
{
	struct ms_rm_op op = { 0 };

	op.kind = (uint8_t)(rnd(seed) % MS_RM_OP_COUNT);
	op.proc = (uint8_t)(rnd(seed) % 4);
	op.pin = (uint8_t)(rnd(seed) % 4);
	op.first = (uint32_t)(rnd(seed) % RN);
	op.n = 1 + (uint32_t)(rnd(seed) % 3);
	op.to = (uint32_t)(rnd(seed) % RN);
	op.n2 = 1 + (uint32_t)(rnd(seed) % 4);
	op.flags = (uint8_t)(rnd(seed) % 8);
	if (op.kind == MS_RM_MPROTECT)
		op.flags &= RW;
	if (op.kind == MS_RM_EXIT && op.proc == 0)
		op.proc = 1;
	/* Children forked after DONTFORK of most of the range have little left to act on. */
	if (op.kind == MS_RM_DONTFORK && rnd(seed) % 4)
		op.kind = MS_RM_WRITE;
	return op;
}

/*
 * Random sequences, valid or not: a failed op changes no expectation; in a private mapping
 * a write changes what the writer sees at that slot and nothing any other process sees; in
 * a shared one it shows wherever the same file page is mapped.
 */
static bool written_by(const struct ms_rm *m, const struct ms_rm_op *op, uint64_t fill)
{
	for (uint32_t i = 0; i < op->n; i++)
		if (ms_rm_fill(m, op, i) == fill)
			return true;
	return false;
}

static void random_run(bool shared, uint64_t seed)
{
	struct ms_rm *m = mk(RN, 8, 4, shared ? RN * 2 : 0, shared);
	struct snap *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	unsigned applied = 0;

	ck_assert(a && b);
	for (int step = 0; step < 400; step++) {
		struct ms_rm_op op = random_op(&seed);
		int ret;

		take(m, a);
		ret = ms_rm_apply(m, &op);
		take(m, b);
		if (ret) {
			if (memcmp(a, b, sizeof(*a)))
				ck_abort_msg("seed %llu step %d: failed op %s changed the "
					     "model", (unsigned long long)seed, step,
					     ms_rm_op_name(op.kind));
			continue;
		}
		applied++;
		if (op.kind != MS_RM_WRITE)
			continue;
		for (unsigned p = 0; p < MS_RM_MAX_PROCS; p++)
			for (uint32_t s = 0; s < RN; s++) {
				bool mine = p == op.proc && s >= op.first && s < op.first + op.n;
				bool changed = memcmp(&a->w[p][s], &b->w[p][s], sizeof(a->w[p][s]));

				/* Plain tests first: Check records every assertion it runs. */
				if (mine && b->w[p][s].fill != ms_rm_fill(m, &op, s - op.first))
					ck_abort_msg("seed %llu step %d: writer does not see its "
						     "write", (unsigned long long)seed, step);
				if (mine)
					continue;
				if (!shared && changed)
					ck_assert_msg(!changed, "seed %llu step %d: w(%u,%u+%u) "
						      "changed proc %u slot %u",
						      (unsigned long long)seed, step, op.proc,
						      op.first, op.n, p, s);
				else if (changed && !written_by(m, &op, b->w[p][s].fill))
					ck_abort_msg("seed %llu step %d: shared slot changed to "
						     "what the write did not write",
						     (unsigned long long)seed, step);
			}
	}
	ck_assert_uint_gt(applied, 25);
	free(a);
	free(b);
	ms_rm_free(m);
}

START_TEST(test_random_private)
{
	for (uint64_t seed = 1; seed <= 20; seed++)
		random_run(false, seed);
}
END_TEST

START_TEST(test_random_shared)
{
	for (uint64_t seed = 100; seed <= 110; seed++)
		random_run(true, seed);
}
END_TEST

static Suite *refmodel_suite(void)
{
	Suite *s = suite_create("refmodel");
	TCase *t = tcase_create("anon");

	tcase_add_test(t, test_cow_basic);
	tcase_add_test(t, test_vmsplice_in_child);
	tcase_add_test(t, test_vmsplice_before_fork);
	tcase_add_test(t, test_get_ref_sees_owner_write);
	tcase_add_test(t, test_rw_pin_fork);
	tcase_add_test(t, test_ro_pin_on_shared);
	tcase_add_test(t, test_ro_pin_previously_shared_and_mprotect);
	tcase_add_test(t, test_dontneed_munmap_keep_pinned_page);
	tcase_add_test(t, test_mremap_moves_pinned_pages);
	tcase_add_test(t, test_fork_copies_whole_pinned_folio);
	tcase_add_test(t, test_madv_free);
	tcase_add_test(t, test_free_then_pin_write);
	tcase_add_test(t, test_pageout_loosens_get_refs);
	tcase_add_test(t, test_zero_page_refs);
	tcase_add_test(t, test_zero_page_lt_before_6_2);
	tcase_add_test(t, test_dontfork);
	tcase_add_test(t, test_force_write);
	suite_add_tcase(s, t);
	t = tcase_create("file");
	tcase_add_test(t, test_file_private);
	tcase_add_test(t, test_file_private_before_6_2);
	tcase_add_test(t, test_shared);
	tcase_add_test(t, test_shared_file_refuses_rw_longterm);
	tcase_add_test(t, test_hugetlb_rules);
	suite_add_tcase(s, t);
	t = tcase_create("contract");
	tcase_add_test(t, test_errors_leave_model_unchanged);
	tcase_add_test(t, test_bad_config);
	tcase_add_test(t, test_text);
	tcase_add_test(t, test_random_private);
	tcase_add_test(t, test_random_shared);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(refmodel_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

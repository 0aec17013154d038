/* Unit tests for the fuzzer's pure parts: text form, shrinker, model, and the C reproducer. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/fuzz.h"
#include "mmstorm/model.h"
#include "mmstorm/refmodel.h"
#include "model/fzrt.h"

static void parse_ok(struct ms_fz_seq *s, const char *text)
{
	char err[200] = "";

	ck_assert_msg(ms_fz_seq_parse(s, text, err, sizeof(err)) == 0, "%s: %s", text, err);
}

static void same_seq(const struct ms_fz_seq *a, const struct ms_fz_seq *b)
{
	ck_assert_uint_eq(a->nslots, b->nslots);
	ck_assert_uint_eq(a->npages, b->npages);
	ck_assert_int_eq(a->thp, b->thp);
	ck_assert_uint_eq(a->file, b->file);
	ck_assert_uint_eq(a->nops, b->nops);
	ck_assert(!memcmp(a->ops, b->ops, a->nops * sizeof(a->ops[0])));
}

START_TEST(test_text_round_trip)
{
	static struct ms_fz_seq a, b;
	const char *text =
		"# a comment; with | separators\nwindow 16 8\nwrite p0 0+4\nuffd-reg p0 0+4 remap\n"
		"uffd-wp p0 1+2 on\nmremap p0 0+4 -> 8+4   # moved\nfork p0 nth=3\n"
		"mprotect p1 2+1 r\npin p1 0+2\nunpin p1 pin=2\npfn-map p0 0+2\n"
		"pfn-mremap p0 0+2 -> 0+1\n"
		"pfn-mprotect p0 0+1 none\nexit p1\nuffd-wp p0 0+1 off\n"
		"pin-uring p0 0+2\npin-gup p0 1+1 rw\npin-gup p0 2+1 r\npin-write p0 1+1 pin=3\n";
	char *out;

	parse_ok(&a, text);
	ck_assert_uint_eq(a.nops, 17);
	ck_assert_uint_eq(a.ops[16].pin, 3);
	ck_assert_uint_eq(a.ops[16].first, 1);
	ck_assert_uint_eq(a.ops[13].kind, MS_FZ_PIN_URING);
	ck_assert_uint_eq(a.ops[14].flags, MS_FZ_F_READ | MS_FZ_F_WRITE);
	ck_assert_uint_eq(a.ops[15].flags, MS_FZ_F_READ);
	ck_assert_uint_eq(a.ops[7].pin, 2);
	ck_assert_uint_eq(a.ops[3].to, 8);
	ck_assert_uint_eq(a.ops[4].nth, 3);
	ck_assert_uint_eq(a.ops[1].flags, MS_FZ_F_REMAP);
	out = ms_fz_seq_text(&a, "\n");
	parse_ok(&b, out);
	same_seq(&a, &b);
	free(out);
	/* The one-line form that suite parameters carry. */
	out = ms_fz_seq_text(&a, "; ");
	ck_assert_ptr_null(strchr(out, '\n'));
	parse_ok(&b, out);
	same_seq(&a, &b);
	free(out);
}
END_TEST

START_TEST(test_text_thp_and_nth)
{
	static struct ms_fz_seq a, b;
	char err[200];
	char *out;

	parse_ok(&a, "window 16 16 thp\ncollapse p0 nth=2\nmprotect p0 0+2 r nth=4\n"
		     "mremap p0 0+2 -> 4+2 nth=2\npin-uring p0 0+1 nth=1\nmunmap p1 3+1 nth=7\n");
	ck_assert(a.thp);
	ck_assert_uint_eq(a.nops, 5);
	ck_assert_uint_eq(a.ops[0].kind, MS_FZ_COLLAPSE);
	ck_assert_uint_eq(a.ops[0].nth, 2);
	out = ms_fz_seq_text(&a, "\n");
	ck_assert_ptr_nonnull(strstr(out, "window 16 16 thp\ncollapse p0 nth=2\n"));
	parse_ok(&b, out);
	ck_assert(b.thp);
	same_seq(&a, &b);
	free(out);
	/* A THP window may leave slots to the model unmapped; other ops take no nth. */
	parse_ok(&a, "window 16 8 thp");
	ck_assert(a.thp && a.npages == 8);
	ck_assert_int_eq(ms_fz_seq_parse(&a, "window 16 16 huge", err, sizeof(err)), -EINVAL);
	parse_ok(&a, "window 16 8\nwrite p0 0+1 nth=3\ncollapse p0\n");
	{
		struct ms_fz_model m;

		ck_assert_int_eq(ms_fz_model_init(&m, &a), 0);
		ck_assert_int_eq(ms_fz_model_check(&m, &a.ops[0], NULL), -EINVAL);
		ck_assert_int_eq(ms_fz_model_check(&m, &a.ops[1], NULL), -EINVAL);
		ms_fz_model_fini(&m);
	}
}
END_TEST

START_TEST(test_text_errors)
{
	static struct ms_fz_seq s;
	char err[200];

	ck_assert_int_eq(ms_fz_seq_parse(&s, "write p0 0+1", err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "window"));
	ck_assert_int_eq(ms_fz_seq_parse(&s, "window 8 4\nscribble p0 0+1", err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "line 2"));
	ck_assert_int_eq(ms_fz_seq_parse(&s, "window 8 4\nmremap p0 0+1", err, sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(ms_fz_seq_parse(&s, "window 99 4", err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_generated_round_trip)
{
	static struct ms_fz_seq a, b;
	struct ms_fz_gen_cfg g = { .max_ops = 60, .nslots = 16, .npages = 8, .uffd = true,
				   .pfn = true, .nth = true, .migrate = true,
				   .uring = true, .gup = true, .thp = true, .file_shmem = true,
				   .file_hugetlb = true, .minor_shmem = true,
				   .minor_hugetlb = true };
	uint64_t rng = 7;
	unsigned files[3] = { 0 };

	for (int i = 0; i < 200; i++) {
		char *out;

		ms_fz_generate(&a, &g, &rng);
		ck_assert_uint_ge(a.nops, 4);
		files[a.file]++;
		out = ms_fz_seq_text(&a, "\n");
		parse_ok(&b, out);
		same_seq(&a, &b);
		free(out);
	}
	/* About a quarter with a file window, both kinds. */
	ck_assert_uint_gt(files[MS_FZ_FILE_SHMEM], 10);
	ck_assert_uint_gt(files[MS_FZ_FILE_HUGETLB], 10);
	ck_assert_uint_gt(files[MS_FZ_FILE_NONE], 100);
}
END_TEST

START_TEST(test_text_file)
{
	static struct ms_fz_seq a, b;
	char err[200], *out;

	parse_ok(&a, "window 8 4\nfile hugetlb\nfile-write p0 0+2\nfile-fill p1 2+2\n"
		     "file-zap p0 1+1\nfile-punch p0 0+4\nuffd-minor p0 0+4\ncontinue p0 1+2\n");
	ck_assert_uint_eq(a.file, MS_FZ_FILE_HUGETLB);
	ck_assert_uint_eq(a.nops, 6);
	ck_assert_uint_eq(a.ops[0].kind, MS_FZ_FILE_WRITE);
	ck_assert_uint_eq(a.ops[1].kind, MS_FZ_FILE_FILL);
	ck_assert_uint_eq(a.ops[1].proc, 1);
	ck_assert_uint_eq(a.ops[5].kind, MS_FZ_CONTINUE);
	ck_assert_uint_eq(a.ops[5].first, 1);
	ck_assert_uint_eq(a.ops[5].n, 2);
	out = ms_fz_seq_text(&a, "\n");
	ck_assert_str_eq(out, "window 8 4\nfile hugetlb\nfile-write p0 0+2\nfile-fill p1 2+2\n"
			 "file-zap p0 1+1\nfile-punch p0 0+4\nuffd-minor p0 0+4\ncontinue p0 1+2");
	parse_ok(&b, out);
	same_seq(&a, &b);
	free(out);
	out = ms_fz_seq_text(&a, "; ");
	parse_ok(&b, out);
	same_seq(&a, &b);
	free(out);
	parse_ok(&a, "window 8 4\nfile shmem\n");
	ck_assert_uint_eq(a.file, MS_FZ_FILE_SHMEM);
	ck_assert_int_eq(ms_fz_seq_parse(&a, "window 8 4\nfile ext4", err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "file shmem|hugetlb"));
	ck_assert_int_eq(ms_fz_seq_parse(&a, "window 8 4\nfile shmem\ncontinue p0", err,
					 sizeof(err)), -EINVAL);
}
END_TEST

static void apply_ok(struct ms_fz_model *m, const struct ms_fz_op *op)
{
	char text[96];

	ms_fz_op_str(op, text, sizeof(text));
	ck_assert_msg(ms_fz_model_check(m, op, NULL) == 0, "%s refused", text);
	ck_assert_int_eq(ms_fz_model_apply(m, op, NULL), 0);
}

static void want_continue(const struct ms_fz_model *m, const struct ms_fz_op *op, long ret,
			  long mapped)
{
	long r, mp;

	ms_fz_model_continue(m, op, &r, &mp);
	ck_assert_int_eq(r, ret);
	ck_assert_int_eq(mp, mapped);
}

/* UFFDIO_CONTINUE's result in each state (6.12 mm/userfaultfd.c, see fuzzmodel.c). */
START_TEST(test_model_continue)
{
	static struct ms_fz_seq s;
	struct ms_fz_model m;
	long page = _i ? 2L << 20 : 4096;

	parse_ok(&s, _i ? "window 8 4\nfile hugetlb\n" : "window 8 4\nfile shmem\n");
	parse_ok(&s, "window 8 4\nfile shmem\nuffd-minor p0 0+4\ncontinue p0 0+2\n"
		     "file-fill p0 0+2\nfile-write p0 2+1\ncontinue p0 0+4\ncontinue p0 0+1\n"
		     "file-zap p0 0+3\ncontinue p0 1+3\nfile-punch p0 1+1\ncontinue p0 0+4\n"
		     "fork p0\ncontinue p1 0+1\nfile-write p1 3+1\nfile-zap p1 2+1\n"
		     "continue p0 3+1\n");
	s.file = _i ? MS_FZ_FILE_HUGETLB : MS_FZ_FILE_SHMEM;
	ck_assert_int_eq(ms_fz_model_init(&m, &s), 0);
	/* Not registered yet: a CONTINUE is skipped. */
	ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[1], NULL), -EINVAL);
	apply_ok(&m, &s.ops[0]);
	/* No page in the page cache: -EFAULT, for the ioctl and in mapped. */
	want_continue(&m, &s.ops[1], -EFAULT, -EFAULT);
	apply_ok(&m, &s.ops[1]);
	ck_assert_uint_eq(m.fpte[0], 0);
	apply_ok(&m, &s.ops[2]);
	apply_ok(&m, &s.ops[3]);
	ck_assert(m.fcache[0] && m.fcache[1] && m.fcache[2] && !m.fcache[3]);
	ck_assert(!m.fpte[0] && !m.fpte[1] && m.fpte[2]);	/* file-fill maps nothing */
	/* Two pages mapped, then the PTE of the third: -EAGAIN, mapped = two pages. */
	want_continue(&m, &s.ops[4], -EAGAIN, 2 * page);
	apply_ok(&m, &s.ops[4]);
	ck_assert(m.fpte[0] && m.fpte[1]);
	/* A PTE already there first: -EEXIST. */
	want_continue(&m, &s.ops[5], -EEXIST, -EEXIST);
	apply_ok(&m, &s.ops[6]);
	ck_assert(!m.fpte[0] && !m.fpte[1] && !m.fpte[2] && m.fcache[2]);
	/* Pages 1, 2 mapped, page 3 has none in the cache: -EAGAIN after two. */
	want_continue(&m, &s.ops[7], -EAGAIN, 2 * page);
	apply_ok(&m, &s.ops[7]);
	apply_ok(&m, &s.ops[8]);
	ck_assert(!m.fcache[1] && !m.fpte[1]);		/* a punch takes page and PTEs */
	/* Page 0 mapped, page 1 punched: -EAGAIN after one. */
	want_continue(&m, &s.ops[9], -EAGAIN, page);
	apply_ok(&m, &s.ops[9]);
	ck_assert(m.fpte[0] && !m.fpte[1]);
	apply_ok(&m, &s.ops[10]);
	/* A child has no registration (no UFFD_FEATURE_EVENT_FORK): skipped. */
	ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[11], NULL), -EINVAL);
	/* A child's write fills the page cache; its zap leaves process 0's PTEs alone. */
	apply_ok(&m, &s.ops[12]);
	apply_ok(&m, &s.ops[13]);
	ck_assert(m.fcache[3] && !m.fpte[3] && m.fpte[2]);
	/* The whole range mapped: 0, and mapped is every byte. */
	want_continue(&m, &s.ops[14], 0, page);
	apply_ok(&m, &s.ops[14]);
	ck_assert(m.fpte[3]);
	ms_fz_model_fini(&m);
	/* No file window: file ops are skipped. */
	s.file = MS_FZ_FILE_NONE;
	ck_assert_int_eq(ms_fz_model_init(&m, &s), 0);
	ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[2], NULL), -EINVAL);
	ms_fz_model_fini(&m);
}
END_TEST

/* Synthetic failure 1: a uffd-reg without remap of slot 0, then a moving mremap of slot 0. */
static bool pred_uffd_mremap(const struct ms_fz_seq *s, void *arg)
{
	bool reg = false;

	(void)arg;
	for (uint32_t i = 0; i < s->nops; i++) {
		const struct ms_fz_op *op = &s->ops[i];

		if (op->kind == MS_FZ_UFFD_REG && !(op->flags & MS_FZ_F_REMAP) && op->first == 0)
			reg = true;
		if (reg && op->kind == MS_FZ_MREMAP && op->to != op->first &&
		    op->first == 0)
			return true;
	}
	return false;
}

START_TEST(test_shrink_to_pair)
{
	static struct ms_fz_seq s;
	struct ms_fz_gen_cfg g = { .max_ops = 80, .nslots = 16, .npages = 8, .uffd = true,
				   .pfn = true, .nth = true };
	uint64_t rng = 1;
	unsigned tests, found = 0;

	for (int tries = 0; tries < 5000 && found < 5; tries++) {
		ms_fz_generate(&s, &g, &rng);
		if (!pred_uffd_mremap(&s, NULL))
			continue;
		found++;
		tests = ms_fz_shrink(&s, pred_uffd_mremap, NULL, 10000);
		ck_assert_uint_gt(tests, 0);
		ck_assert_uint_eq(s.nops, 2);
		ck_assert_uint_eq(s.ops[0].kind, MS_FZ_UFFD_REG);
		ck_assert_uint_eq(s.ops[1].kind, MS_FZ_MREMAP);
		/* Ranges as small as the predicate lets them be: one page each. */
		ck_assert_uint_eq(s.ops[0].n, 1);
		ck_assert_uint_eq(s.ops[1].n, 1);
	}
	ck_assert_uint_eq(found, 5);
}
END_TEST

/* Synthetic failure 2: at least three writes by a forked process, whichever pages. */
static bool pred_child_writes(const struct ms_fz_seq *s, void *arg)
{
	unsigned writes = 0, *calls = arg;
	bool forked = false;

	(*calls)++;
	for (uint32_t i = 0; i < s->nops; i++) {
		forked |= s->ops[i].kind == MS_FZ_FORK && s->ops[i].proc == 0;
		writes += forked && s->ops[i].kind == MS_FZ_WRITE && s->ops[i].proc == 1;
	}
	return writes >= 3;
}

START_TEST(test_shrink_processes_and_sizes)
{
	static struct ms_fz_seq s;
	const char *text = "window 16 8\nwrite p0 0+4\nfork p0 nth=7\nfork p0\nwrite p1 3+5\n"
			   "write p2 0+1\nexit p2\nwrite p1 2+2\nmremap p0 0+2 -> 8+2\n"
			   "write p1 4+1\nwrite p1 6+2\nfork p1\nwrite p3 0+1\n";
	unsigned calls = 0, tests;

	parse_ok(&s, text);
	ck_assert(pred_child_writes(&s, &calls));
	tests = ms_fz_shrink(&s, pred_child_writes, &calls, 10000);
	ck_assert_uint_eq(tests + 1, calls);
	ck_assert_uint_eq(s.nops, 4);
	ck_assert_uint_eq(s.ops[0].kind, MS_FZ_FORK);
	ck_assert_uint_eq(s.ops[0].nth, 0);
	for (int i = 1; i < 4; i++) {
		ck_assert_uint_eq(s.ops[i].kind, MS_FZ_WRITE);
		ck_assert_uint_eq(s.ops[i].n, 1);
		ck_assert_uint_eq(s.ops[i].first, 0);
	}
}
END_TEST

/* Synthetic failure 3: a pfn-map, then a pfn-mremap in the same process, whichever it is. */
static bool pred_pfn_move(const struct ms_fz_seq *s, void *arg)
{
	int mapped = -1;
	unsigned procs = 1;

	(void)arg;
	for (uint32_t i = 0; i < s->nops; i++) {
		procs += s->ops[i].kind == MS_FZ_FORK;
		if (s->ops[i].proc >= procs)
			continue;	/* no such process yet: the op would be skipped */
		if (s->ops[i].kind == MS_FZ_PFN_MAP)
			mapped = s->ops[i].proc;
		if (s->ops[i].kind == MS_FZ_PFN_MREMAP && s->ops[i].proc == mapped)
			return true;
	}
	return false;
}

START_TEST(test_shrink_merges_processes)
{
	static struct ms_fz_seq s;

	parse_ok(&s, "window 16 8\nwrite p0 0+1\nfork p0\npfn-map p1 0+2\nwrite p1 1+1\n"
		     "pfn-mremap p1 0+1 -> 3+1\n");
	ms_fz_shrink(&s, pred_pfn_move, NULL, 1000);
	ck_assert_uint_eq(s.nops, 2);
	ck_assert_uint_eq(s.ops[0].kind, MS_FZ_PFN_MAP);
	ck_assert_uint_eq(s.ops[0].proc, 0);
	ck_assert_uint_eq(s.ops[1].proc, 0);
}
END_TEST

START_TEST(test_shrink_budget)
{
	static struct ms_fz_seq s;
	unsigned calls = 0;

	parse_ok(&s, "window 16 8\nfork p0\nwrite p1 0+1\nwrite p1 1+1\nwrite p1 2+1\n"
		     "write p0 1+1\nwrite p0 2+1\n");
	ck_assert_uint_eq(ms_fz_shrink(&s, pred_child_writes, &calls, 3), 3);
	ck_assert_uint_eq(calls, 3);
}
END_TEST

START_TEST(test_model_uffd_rules)
{
	static struct ms_fz_seq s;
	struct ms_fz_model m;
	unsigned child;

	parse_ok(&s, "window 16 8\nwrite p0 0+4\nuffd-reg p0 0+4\nuffd-wp p0 0+4 on\n"
		     "write p0 1+1\nmremap p0 0+4 -> 8+4\nuffd-reg p0 8+4 remap\n"
		     "uffd-wp p0 8+2 on\nmremap p0 8+2 -> 12+2\nfork p0\nuffd-reg p1 0+1\n");
	ck_assert_int_eq(ms_fz_model_init(&m, &s), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[i], &child), 0);
		ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[i], NULL), 0);
	}
	ck_assert_uint_eq(m.reg[0], MS_FZ_UFFD_PLAIN);
	ck_assert_uint_eq(m.wp[0], MS_FZ_WP_ON);
	ck_assert_uint_eq(m.wp[1], MS_FZ_WP_OFF);	/* the write resolved the fault */
	/* Moved without EVENT_REMAP: no context, no bits at the destination. */
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[4], NULL), 0);
	ck_assert_uint_eq(m.reg[8], MS_FZ_UFFD_NONE);
	ck_assert_uint_eq(m.wp[8], MS_FZ_WP_OFF);
	ck_assert_uint_eq(m.reg[0], MS_FZ_UFFD_NONE);
	for (int i = 5; i < 7; i++)
		ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[i], NULL), 0);
	/* With EVENT_REMAP both move along. */
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[7], NULL), 0);
	ck_assert_uint_eq(m.reg[12], MS_FZ_UFFD_REMAP);
	ck_assert_uint_eq(m.wp[12], MS_FZ_WP_ON);
	ck_assert_uint_eq(m.reg[8], MS_FZ_UFFD_NONE);
	ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[8], &child), 0);
	ck_assert_uint_eq(child, 1);
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[8], NULL), 0);
	/* Only process 0 registers; a wp of an unregistered range is skipped. */
	ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[9], &child), -EINVAL);
	ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[2], &child), -EINVAL);
	ms_fz_model_fini(&m);
}
END_TEST

/* Found on bzImage: a lazy-free page that reclaim discards loses its uffd-wp bit with its PTE. */
/* What a failed injected op may leave, per op (ms_fz_model_fail()). */
START_TEST(test_model_failed_ops)
{
	static struct ms_fz_seq s;
	struct ms_fz_model m;
	struct ms_rm_want w;

	parse_ok(&s, "window 16 8\nwrite p0 0+4\nmprotect p0 0+4 r nth=2\nmunmap p0 0+2 nth=1\n"
		     "uffd-reg p0 4+2\nuffd-wp p0 4+2 on\nmremap p0 4+2 -> 10+2 nth=3\n"
		     "pin-uring p0 0+2 nth=1\nmprotect p0 0+2 rw\n");
	ck_assert_int_eq(ms_fz_model_init(&m, &s), 0);
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[0], NULL), 0);
	/* mprotect: a prefix of slots with the new protection, nothing else. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x2), -EINVAL);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x3), 0);
	ck_assert_int_eq(ms_rm_expect(m.rm, 0, 1, &w), 0);
	ck_assert(!w.writable);
	ck_assert_int_eq(ms_rm_expect(m.rm, 0, 2, &w), 0);
	ck_assert(w.writable);
	/* Slots 0-1 are r now: they count either way, so slot 2 alone makes a prefix. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x4), 0);
	ck_assert_int_eq(ms_rm_expect(m.rm, 0, 2, &w), 0);
	ck_assert(!w.writable);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x8), 0);
	ck_assert_int_eq(ms_rm_expect(m.rm, 0, 3, &w), 0);
	ck_assert(!w.writable);
	/* munmap: all or nothing. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[2], 0x1), -EINVAL);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[2], 0), 0);
	/* mremap without EVENT_REMAP: the bits may have gone there and back. */
	for (int i = 3; i < 5; i++)
		ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[i], NULL), 0);
	ck_assert_uint_eq(m.wp[4], MS_FZ_WP_ON);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[5], 0), 0);
	ck_assert_uint_eq(m.wp[4], MS_FZ_WP_ANY);
	ck_assert_uint_eq(m.reg[4], MS_FZ_UFFD_PLAIN);
	/* A failed pin leaves no pin behind. */
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[7], NULL), 0);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[6], 0x1), 0);
	ck_assert_int_ne(ms_rm_pin_info(m.rm, 0, NULL, NULL, NULL, NULL), 0);
	ms_fz_model_fini(&m);
}
END_TEST

/* nth= on the ops that gained it: the text form keeps it; ops with no fault site refuse it. */
START_TEST(test_text_nth_new_kinds)
{
	static const unsigned none[] = { MS_FZ_WRITE, MS_FZ_EXIT, MS_FZ_DONTNEED, MS_FZ_FREE,
					 MS_FZ_COLD, MS_FZ_PAGEOUT, MS_FZ_PIN };
	static struct ms_fz_seq a, b;
	struct ms_fz_model m;
	char *out;

	parse_ok(&a, "window 16 8\nuffd-reg p0 0+2 remap nth=3\nuffd-wp p0 0+2 on nth=2\n"
		     "unpin p0 pin=1 nth=1\npin-write p0 0+1 pin=0 nth=2\nmigrate p0 0+1 nth=1\n"
		     "pfn-map p0 0+2 nth=4\npfn-munmap p0 1+1 nth=2\n"
		     "pfn-mremap p0 0+2 -> 0+1 nth=3\n"
		     "pfn-mprotect p1 0+1 none nth=5\n");
	ck_assert_uint_eq(a.nops, 9);
	for (uint32_t i = 0; i < a.nops; i++) {
		ck_assert(ms_fz_nth_kind(a.ops[i].kind));
		ck_assert_uint_ne(a.ops[i].nth, 0);
	}
	ck_assert_uint_eq(a.ops[0].flags, MS_FZ_F_REMAP);
	ck_assert_uint_eq(a.ops[2].pin, 1);
	ck_assert_uint_eq(a.ops[7].n2, 1);
	out = ms_fz_seq_text(&a, "\n");
	ck_assert_ptr_nonnull(strstr(out, "\nuffd-wp p0 0+2 on nth=2\nunpin p0 pin=1 nth=1\n"
				     "pin-write p0 0+1 pin=0 nth=2\n"));
	ck_assert_ptr_nonnull(strstr(out, "\npfn-mremap p0 0+2 -> 0+1 nth=3\n"
				     "pfn-mprotect p1 0+1 none nth=5"));
	parse_ok(&b, out);
	same_seq(&a, &b);
	free(out);
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		ck_assert_msg(!ms_fz_nth_kind(none[i]), "%s", ms_fz_kind_name(none[i]));
	/* The model skips them: nothing there for fail-nth to fail. */
	parse_ok(&a, "window 16 8\ndontneed p0 0+1 nth=2\npageout p0 0+1 nth=1\n"
		     "pin p0 0+1 nth=1\n");
	ck_assert_int_eq(ms_fz_model_init(&m, &a), 0);
	for (uint32_t i = 0; i < a.nops; i++)
		ck_assert_int_eq(ms_fz_model_check(&m, &a.ops[i], NULL), -EINVAL);
	ms_fz_model_fini(&m);
}
END_TEST

/* The generator puts nth= on the new kinds too, within their ranges. */
START_TEST(test_generated_nth_kinds)
{
	const struct ms_fz_gen_cfg g = { .max_ops = 40, .nslots = 16, .npages = 8, .uffd = true,
					 .pfn = true, .nth = true, .migrate = true,
					 .uring = true, .gup = true };
	static struct ms_fz_seq s;
	unsigned seen[MS_FZ_KIND_COUNT] = { 0 };
	uint64_t rng = 7;

	for (int n = 0; n < 400; n++) {
		ms_fz_generate(&s, &g, &rng);
		for (uint32_t i = 0; i < s.nops; i++) {
			const struct ms_fz_op *op = &s.ops[i];

			if (!op->nth)
				continue;
			ck_assert(ms_fz_nth_kind(op->kind));
			ck_assert_uint_le(op->nth, op->kind == MS_FZ_FORK ? 40 : 12);
			if (op->kind == MS_FZ_UNPIN || op->kind == MS_FZ_MIGRATE)
				ck_assert_uint_le(op->nth, 3);
			seen[op->kind]++;
		}
	}
	ck_assert_uint_gt(seen[MS_FZ_UFFD_REG], 0);
	ck_assert_uint_gt(seen[MS_FZ_UFFD_WP], 0);
	ck_assert_uint_gt(seen[MS_FZ_UNPIN], 0);
	ck_assert_uint_gt(seen[MS_FZ_PIN_WRITE], 0);
	ck_assert_uint_gt(seen[MS_FZ_PFN_MAP], 0);
	ck_assert_uint_gt(seen[MS_FZ_PFN_MPROTECT], 0);
}
END_TEST

/* uffd-reg and uffd-wp stop at a page: a prefix of the range changed, the rest as it was. */
START_TEST(test_model_failed_uffd)
{
	static struct ms_fz_seq s;
	struct ms_fz_model m;

	parse_ok(&s, "window 16 8\nwrite p0 0+4\nuffd-reg p0 0+4 nth=2\nuffd-reg p0 0+4\n"
		     "uffd-wp p0 0+4 on nth=3\nuffd-wp p0 0+4 off nth=1\n");
	ck_assert_int_eq(ms_fz_model_init(&m, &s), 0);
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[0], NULL), 0);
	/* Registered: slot 1 without slot 0 is no prefix; nothing at all is fine. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x2), -EINVAL);
	ck_assert_uint_eq(m.reg[1], MS_FZ_UFFD_NONE);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0), 0);
	ck_assert_uint_eq(m.reg[0], MS_FZ_UFFD_NONE);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x3), 0);
	ck_assert_uint_eq(m.reg[1], MS_FZ_UFFD_PLAIN);
	ck_assert_uint_eq(m.reg[2], MS_FZ_UFFD_NONE);
	/* Slots 0-1 are registered now: they say nothing, slot 2 alone is a prefix. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x4), 0);
	ck_assert_uint_eq(m.reg[2], MS_FZ_UFFD_PLAIN);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[1], 0x8), 0);
	ck_assert_uint_eq(m.reg[3], MS_FZ_UFFD_PLAIN);
	/* Protect: slot 1's bit without slot 0's cannot be. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[3], 0x2), -EINVAL);
	ck_assert_uint_eq(m.wp[1], MS_FZ_WP_OFF);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[3], 0x3), 0);
	ck_assert_uint_eq(m.wp[0], MS_FZ_WP_ON);
	ck_assert_uint_eq(m.wp[1], MS_FZ_WP_ON);
	ck_assert_uint_eq(m.wp[2], MS_FZ_WP_OFF);
	/* Unprotect ("shows the effect": the bit clear): slot 1 cleared, slot 0 not: refused. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[4], 0x2 | 0xc), -EINVAL);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[4], 0x1 | 0xc), 0);
	ck_assert_uint_eq(m.wp[0], MS_FZ_WP_OFF);
	ck_assert_uint_eq(m.wp[1], MS_FZ_WP_ON);
	/* Slot 2 was never protected: a set bit there fits no prefix. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[4], 0x1 | 0x8), -EINVAL);
	ms_fz_model_fini(&m);
}
END_TEST

/* The pfn ops, unpin, pin-write, migrate: what their failures may leave. */
START_TEST(test_model_failed_other)
{
	static struct ms_fz_seq s;
	struct ms_fz_model m;
	struct ms_rm_want w0, w1;

	parse_ok(&s, "window 16 8\nwrite p0 0+3\npfn-map p0 0+3\npfn-mprotect p0 0+3 none nth=3\n"
		     "pfn-munmap p0 1+1 nth=2\npfn-mremap p0 0+3 -> 0+1 nth=1\n"
		     "pfn-map p0 3+1 nth=1\n"
		     "pin-uring p0 0+2\nunpin p0 pin=0 nth=1\npin-write p0 0+2 pin=0 nth=2\n"
		     "migrate p0 0+2 nth=1\n");
	ck_assert_int_eq(ms_fz_model_init(&m, &s), 0);
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[0], NULL), 0);
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[1], NULL), 0);
	/* pfn-mprotect: a prefix of the /dev/mem slots. */
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[2], 0x2), -EINVAL);
	ck_assert_uint_eq(m.pfn[0][1], MS_FZ_PFN_READ);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[2], 0x1), 0);
	ck_assert_uint_eq(m.pfn[0][0], MS_FZ_PFN_NONE);
	ck_assert_uint_eq(m.pfn[0][1], MS_FZ_PFN_READ);
	/* pfn-munmap, pfn-mremap, pfn-map: nothing may change. */
	for (int i = 3; i <= 5; i++) {
		ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[i], 0x1), -EINVAL);
		ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[i], 0), 0);
	}
	ck_assert_uint_eq(m.pfn[0][1], MS_FZ_PFN_READ);
	ck_assert_uint_eq(m.pfn[0][2], MS_FZ_PFN_READ);
	ck_assert_uint_eq(m.pfn[0][3], MS_FZ_PFN_UNMAPPED);
	/* A failed unpin keeps the pin; a failed pin-write writes nothing. */
	ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[6], NULL), 0);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[7], 0), 0);
	ck_assert_int_eq(ms_rm_pin_info(m.rm, 0, NULL, NULL, NULL, NULL), 0);
	ck_assert_int_eq(ms_rm_expect(m.rm, 0, 0, &w0), 0);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[8], 0), 0);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[8], 0x1), -EINVAL);
	ck_assert_int_eq(ms_rm_expect(m.rm, 0, 0, &w1), 0);
	ck_assert_uint_eq(w0.fill, w1.fill);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[9], 0), 0);
	ck_assert_int_eq(ms_fz_model_fail(&m, &s.ops[9], 0x3), -EINVAL);
	ms_fz_model_fini(&m);
}
END_TEST

START_TEST(test_model_lazy_wp)
{
	static struct ms_fz_seq s;
	struct ms_fz_model m;
	unsigned child;

	parse_ok(&s, "window 16 8\nuffd-reg p0 6+1\nwrite p0 6+1\nfree p0 1+6\n"
		     "uffd-wp p0 6+1 on\npageout p0 2+5\nwrite p0 6+1\nuffd-wp p0 6+1 on\n"
		     "pageout p0 6+1\n");
	ck_assert_int_eq(ms_fz_model_init(&m, &s), 0);
	for (uint32_t i = 0; i < s.nops; i++) {
		ck_assert_int_eq(ms_fz_model_check(&m, &s.ops[i], &child), 0);
		ck_assert_int_eq(ms_fz_model_apply(&m, &s.ops[i], NULL), 0);
		if (i == 4)
			ck_assert_uint_eq(m.wp[6], MS_FZ_WP_ANY);
	}
	/* Written again, the page is no longer lazy: protected, it stays so through reclaim. */
	ck_assert_uint_eq(m.wp[6], MS_FZ_WP_ON);
	ms_fz_model_fini(&m);
}
END_TEST

/* The runtime's page image is model.h's: reproducers and mmstorm compare the same bytes. */
START_TEST(test_fill_matches_model)
{
	static uint64_t a[MS_FZRT_PAGE / 8], b[MS_FZRT_PAGE / 8];
	uint64_t fills[] = { 0, 1, 0x123456789abcdef0ULL, ms_stamp(3, 4, 5) };

	for (size_t i = 0; i < sizeof(fills) / sizeof(fills[0]); i++) {
		ms_fzrt_fill(a, fills[i]);
		ms_page_fill(b, sizeof(b), fills[i]);
		ck_assert(!memcmp(a, b, sizeof(a)));
		ck_assert_int_eq(ms_fzrt_diff(a, fills[i]), -1);
		((unsigned char *)a)[1000] ^= 0x10;
		ck_assert_int_eq(ms_fzrt_diff(a, fills[i]), 1000);
		ck_assert_uint_eq(ms_page_check(a, sizeof(a), fills[i], 0), 1000);
	}
}
END_TEST

/* What ms_fzrt_partial() sees: protections and holes in maps, present+exclusive in pagemap. */
START_TEST(test_runtime_partial)
{
	static struct ms_fzrt rt;
	struct ms_fzrt_op op = { .kind = MS_FZRT_MPROTECT, .flags = 1, .first = 0, .n = 2 };

	ck_assert_int_eq(ms_fzrt_init(&rt, 8, 8, false), 0);
	ck_assert_int_eq(ms_fzrt_run(&rt, &op), 0);
	op.n = 4;
	ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0x3);
	op.flags = 3;
	ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0xc);
	/* munmap: a placeholder is no hole; a bare munmap leaves one. */
	op = (struct ms_fzrt_op){ .kind = MS_FZRT_MUNMAP, .first = 2, .n = 1 };
	ck_assert_int_eq(ms_fzrt_run(&rt, &op), 0);
	ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0);
	ck_assert_int_eq(munmap(rt.win + 3 * MS_FZRT_PAGE, MS_FZRT_PAGE), 0);
	op.n = 2;
	ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0x2);
	ck_assert_int_eq(ms_fzrt_placeholder(rt.win + 3 * MS_FZRT_PAGE, MS_FZRT_PAGE), 0);
	/* pins: a page this process wrote is present and its own; an untouched one is not. */
	memset(rt.win + 4 * MS_FZRT_PAGE, 1, MS_FZRT_PAGE);
	op = (struct ms_fzrt_op){ .kind = MS_FZRT_PIN_URING, .first = 4, .n = 2 };
	if (!geteuid())		/* pagemap shows unprivileged readers less */
		ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0x1);
	/* uffd: registered VMAs ("uw"), and uffd-wp bits as the op sets them (on: set). */
	op = (struct ms_fzrt_op){ .kind = MS_FZRT_UFFD_REG, .first = 4, .n = 1 };
	if (geteuid() || ms_fzrt_run(&rt, &op))
		goto out;	/* no userfaultfd for us here */
	op.n = 2;
	ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0x1);
	op = (struct ms_fzrt_op){ .kind = MS_FZRT_UFFD_WP, .flags = 1, .first = 4, .n = 1 };
	ck_assert_int_eq(ms_fzrt_run(&rt, &op), 0);
	op.n = 2;
	ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0x1);
	op.flags = 0;
	ck_assert_uint_eq(ms_fzrt_partial(&rt, &op), 0x2);
out:
	ms_fzrt_fini(&rt);
}
END_TEST

static int run_cmd(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A test's scratch directory goes, unless FUZZ_KEEP asks to look at it. */
static void rm_scratch(const char *dir)
{
	char cmd[128];

	if (getenv("FUZZ_KEEP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	run_cmd(cmd);
}

static void emit_to(const char *path, const char *text)
{
	static struct ms_fz_seq s;
	struct ms_fz_emit_opts o = { .title = "unit test", .failure = "none: a passing sequence" };
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	parse_ok(&s, text);
	ck_assert_int_eq(ms_fz_emit_c(f, &s, &o, NULL, NULL), 0);
	ck_assert_int_eq(fclose(f), 0);
}

/* Every op kind the host can run (no /dev/mem, no fail-nth here), all in one passing run. */
static const char *const passing =
	"window 16 8\nwrite p0 0+6\nuffd-reg p0 0+4\nuffd-wp p0 0+4 on\npin p0 1+3\nfork p0\n"
	"pin p1 2+2\nwrite p1 2+2\nwrite p0 1+1\nunpin p0 pin=0\nmprotect p0 3+1 r\n"
	"uffd-reg p0 4+2 remap\n"
	"uffd-wp p0 4+2 on\nmremap p0 4+2 -> 10+2\ndontneed p1 0+2\nfree p0 6+1\n"
	"pageout p0 0+2\ncold p1 3+1\nmremap p0 0+3 -> 12+3\nmunmap p1 5+1\nfork p1\n"
	"write p2 2+1\nexit p1\nuffd-wp p0 10+2 off\nmremap p0 12+3 -> 12+2\nexit p2\n";

START_TEST(test_emit_compiles_and_passes)
{
	char dir[] = "/tmp/test_fuzz_emitXXXXXX", cmd[512];
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "%s/repro.c", dir);
	emit_to(cmd, passing);
	snprintf(cmd, sizeof(cmd), "cc -std=gnu11 -Wall -Wextra -Werror -O2 -o %s/repro %s/repro.c "
		 "-lpthread", dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
	if (geteuid()) {
		fprintf(stderr, "not root: the emitted program is compiled, not run\n");
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "%s/repro > %s/out.txt", dir, dir);
	ret = run_cmd(cmd);
	if (ret == 4)
		goto out;	/* no userfaultfd here: its "SKIP:" line says why */
	ck_assert_msg(ret == 0, "the emitted program failed (%d) on a passing sequence", ret);
	/* It can fail too: one expected fill changed, and the first data check must say so. */
	snprintf(cmd, sizeof(cmd),
		 "sed -i '0,/^\\t{ 0, 0, 0, 0x/s//\\t{ 0, 0, 0, 5 ^ 0x/' %s/repro.c "
		 "&& cc -std=gnu11 -O2 -o %s/repro %s/repro.c -lpthread && %s/repro > %s/out.txt",
		 dir, dir, dir, dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'step 0 (write p0 0+6): p0 slot 0: first differing' "
		 "%s/out.txt", dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
out:
	rm_scratch(dir);
}
END_TEST

/*
 * A reproducer with nth= madvise ops compiles, and where fail-nth is missing (no
 * CONFIG_FAULT_INJECTION, as on the host) says SKIP and exits 4 rather than pass; with
 * fail-nth the injected fault may go another way than in mmstorm's run: 0 or 2.
 */
START_TEST(test_emit_nth_madvise)
{
	char dir[] = "/tmp/test_fuzz_nthXXXXXX", cmd[512];
	bool have_nth = !access("/proc/thread-self/fail-nth", W_OK);
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "%s/repro.c", dir);
	emit_to(cmd, "window 16 8\nwrite p0 0+4\nmigrate p0 0+4 nth=2\nuffd-reg p0 0+2 nth=3\n"
		"uffd-wp p0 0+2 on nth=2\nwrite p0 0+1\n");
	snprintf(cmd, sizeof(cmd), "cc -std=gnu11 -Wall -Wextra -Werror -O2 -o %s/repro %s/repro.c "
		 "-lpthread", dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
	if (geteuid())
		goto out;
	snprintf(cmd, sizeof(cmd), "%s/repro > %s/out.txt", dir, dir);
	ret = run_cmd(cmd);
	if (have_nth) {
		ck_assert_msg(ret == 0 || ret == 2, "with fail-nth: exit %d", ret);
		goto out;
	}
	ck_assert_int_eq(ret, 4);
	snprintf(cmd, sizeof(cmd), "grep -q '^SKIP: step 1 (migrate p0 0+4 nth=2) needs fail-nth' "
		 "%s/out.txt", dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
out:
	rm_scratch(dir);
}
END_TEST

/*
 * FOLL_PIN pins across fork, the CVE-2020-29374 class: the pin follows the pinner's writes,
 * never the child's, and unpin reads what the pin holds through the pin itself.
 */
static const char *const pinning[] = {
	"window 8 4\nwrite p0 0+3\npin-uring p0 0+2\nfork p0\nwrite p1 0+2\nwrite p0 0+1\n"
	"unpin p0 pin=0\npin-uring p1 1+2\nwrite p1 1+1\npin-write p1 0+1 pin=0\ndontneed p1 2+1\n"
	"unpin p1 pin=0\n"
	"exit p1\n",
	"window 8 4\nwrite p0 0+3\npin-gup p0 0+2 r\nfork p0\nwrite p1 0+2\nwrite p0 0+1\n"
	"unpin p0 pin=0\npin-gup p0 1+2 rw\nfork p0\nwrite p2 1+2\nunpin p0 pin=0\n",
	/* A THP window: a THP pinned, split by mprotect, collapsed (or refused) around the pin. */
	"window 16 16 thp\nwrite p0 0+4\nfork p0\nmprotect p0 2+1 r\npin-uring p0 0+2\n"
	"collapse p0\nunpin p0 pin=0\nmprotect p0 2+1 rw\ncollapse p0\nwrite p1 0+2\n"
	"dontneed p0 5+1\ncollapse p1\nwrite p0 1+1\n",
};

START_TEST(test_emit_foll_pin)
{
	char dir[] = "/tmp/test_fuzz_pinXXXXXX", cmd[768];
	bool gup = _i == 1;
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "%s/repro.c", dir);
	emit_to(cmd, pinning[_i]);
	snprintf(cmd, sizeof(cmd), "cc -std=gnu11 -Wall -Wextra -Werror -O2 -o %s/repro %s/repro.c "
		 "-lpthread", dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
	if (geteuid())
		goto out;
	snprintf(cmd, sizeof(cmd), "%s/repro > %s/out.txt", dir, dir);
	ret = run_cmd(cmd);
	/* gup_test is debugfs and CONFIG_GUP_TEST: a SKIP only where it is absent. */
	if (ret == 4 && (gup ? access("/sys/kernel/debug/gup_test", F_OK) != 0 : false))
		goto out;
	ck_assert_msg(ret == 0, "the emitted program failed (%d) on a passing sequence", ret);
	/* The pin's read-back is a real check: one expected fill of the first unpin changed. */
	snprintf(cmd, sizeof(cmd),
		 "sed -i '0,/kind = MS_FZRT_UNPIN/{/kind = MS_FZRT_UNPIN/"
		 "{n;s/.fill = { 0x/.fill = { 5 ^ 0x/}}' "
		 "%s/repro.c && cc -std=gnu11 -O2 -o %s/repro %s/repro.c -lpthread && "
		 "%s/repro > %s/out.txt", dir, dir, dir, dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'step 5 (unpin p0 pin=0): the reference holds other "
		 "bytes: page 0' %s/out.txt", dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
out:
	rm_scratch(dir);
}
END_TEST

/* Synthetic failure 3: a fork in a file sequence; the file window is not needed for it. */
static bool pred_fork(const struct ms_fz_seq *s, void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < s->nops; i++)
		if (s->ops[i].kind == MS_FZ_FORK)
			return true;
	return false;
}

START_TEST(test_shrink_drops_file)
{
	static struct ms_fz_seq s;

	parse_ok(&s, "window 8 4\nfile shmem\nfile-write p0 0+2\nuffd-minor p0 0+2\nfork p0\n"
		     "continue p0 0+1\n");
	ms_fz_shrink(&s, pred_fork, NULL, 100);
	ck_assert_uint_eq(s.nops, 1);
	ck_assert_uint_eq(s.file, MS_FZ_FILE_NONE);
}
END_TEST

/*
 * The file window in a reproducer: every file op, MINOR registration and each CONTINUE
 * outcome (-EEXIST, all mapped, -EAGAIN after some, -EFAULT), a child's view of the page
 * cache. Passes on the host; a changed page-cache fill or CONTINUE expectation fails it.
 */
static const char *const file_seq =
	"window 8 4\nfile %s\nfile-write p0 0+2\nfile-fill p0 2+2\nuffd-minor p0 0+4\n"
	"continue p0 0+4\nfile-zap p0 0+2\ncontinue p0 0+4\ncontinue p0 3+1\nfile-punch p0 1+1\n"
	"fork p0\nfile-write p1 1+1\ncontinue p0 0+2\ncontinue p0 1+2\nfile-write p0 0+4\n"
	"file-punch p0 3+1\ncontinue p0 3+1\nwrite p0 0+2\n";

/* 2 MiB pages the hugetlb variant needs free (a unit test does not change the pool). */
static bool hugetlb_free(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "re");
	unsigned long n = 0;

	if (f && fscanf(f, "%lu", &n) != 1)
		n = 0;
	if (f)
		fclose(f);
	return n >= MS_FZ_FILE_SLOTS;
}

START_TEST(test_emit_file)
{
	char dir[] = "/tmp/test_fuzz_fileXXXXXX", cmd[768], text[600];
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(text, sizeof(text), file_seq, _i ? "hugetlb" : "shmem");
	snprintf(cmd, sizeof(cmd), "%s/repro.c", dir);
	emit_to(cmd, text);
	snprintf(cmd, sizeof(cmd), "cc -std=gnu11 -Wall -Wextra -Werror -O2 -o %s/repro %s/repro.c "
		 "-lpthread", dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
	if (geteuid())
		goto out;
	if (_i && !hugetlb_free()) {
		fprintf(stderr, "SKIP: the hugetlb reproducer needs %d free 2 MiB pages "
			"(nr_hugepages): compiled, not run\n", MS_FZ_FILE_SLOTS);
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "%s/repro > %s/out.txt", dir, dir);
	if ((ret = run_cmd(cmd))) {
		snprintf(cmd, sizeof(cmd), "cat %s/out.txt >&2", dir);
		run_cmd(cmd);
	}
	ck_assert_msg(ret == 0, "the emitted program failed (%d) on a passing sequence", ret);
	/* The page cache is checked: the file-fill's first fill changed. */
	snprintf(cmd, sizeof(cmd),
		 "cp %s/repro.c %s/orig.c && sed -i '0,/kind = MS_FZRT_FILE_FILL/{/kind = "
		 "MS_FZRT_FILE_FILL/{n;s/.fill = { 0x/.fill = { 5 ^ 0x/}}' %s/repro.c && "
		 "cc -std=gnu11 -O2 -o %s/repro %s/repro.c -lpthread && %s/repro > %s/out.txt",
		 dir, dir, dir, dir, dir, dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'step 1 (file-fill p0 2+2): p0 file slot 2 (+0), page "
		 "cache (pread): first differing' %s/out.txt", dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
	/* So is CONTINUE's result: the fully mapped one expected a page short. */
	snprintf(cmd, sizeof(cmd),
		 "sed 's/.want_ret = 0, .want_mapped = %ld/.want_ret = 0, .want_mapped = %ld/' "
		 "%s/orig.c > %s/repro.c && cc -std=gnu11 -O2 -o %s/repro %s/repro.c -lpthread && "
		 "%s/repro > %s/out.txt", _i ? 8L << 20 : 16384L, _i ? 6L << 20 : 12288L,
		 dir, dir, dir, dir, dir, dir);
	ck_assert_int_eq(run_cmd(cmd), 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'step 5 (continue p0 0+4): UFFDIO_CONTINUE returned "
		 "0, mapped %ld, the model says 0, mapped' %s/out.txt", _i ? 8L << 20 : 16384L,
		 dir);
	ck_assert_int_eq(run_cmd(cmd), 0);
out:
	rm_scratch(dir);
}
END_TEST

static Suite *fuzz_suite(void)
{
	Suite *s = suite_create("fuzz_shrink");
	TCase *t = tcase_create("core");

	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_text_round_trip);
	tcase_add_test(t, test_text_errors);
	tcase_add_test(t, test_text_thp_and_nth);
	tcase_add_test(t, test_generated_round_trip);
	tcase_add_test(t, test_shrink_to_pair);
	tcase_add_test(t, test_shrink_processes_and_sizes);
	tcase_add_test(t, test_shrink_budget);
	tcase_add_test(t, test_shrink_merges_processes);
	tcase_add_test(t, test_model_uffd_rules);
	tcase_add_test(t, test_text_file);
	tcase_add_loop_test(t, test_model_continue, 0, 2);
	tcase_add_test(t, test_shrink_drops_file);
	tcase_add_loop_test(t, test_emit_file, 0, 2);
	tcase_add_test(t, test_model_lazy_wp);
	tcase_add_test(t, test_model_failed_ops);
	tcase_add_test(t, test_text_nth_new_kinds);
	tcase_add_test(t, test_generated_nth_kinds);
	tcase_add_test(t, test_model_failed_uffd);
	tcase_add_test(t, test_model_failed_other);
	tcase_add_test(t, test_runtime_partial);
	tcase_add_test(t, test_fill_matches_model);
	tcase_add_test(t, test_emit_compiles_and_passes);
	tcase_add_test(t, test_emit_nth_madvise);
	tcase_add_loop_test(t, test_emit_foll_pin, 0, 3);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fuzz_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

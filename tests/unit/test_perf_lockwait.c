/* Unit tests for pairing mmap_lock start/acquire samples into wait times (constructed streams). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/perf_lockwait.h"
#include <mmstorm/metrics.h>

static struct ms_hist *hist;
static struct ms_lw *lw;

static void setup(void)
{
	hist = malloc(sizeof(*hist));
	ck_assert_ptr_nonnull(hist);
	ms_hist_init(hist);
	lw = ms_lw_new(hist);
	ck_assert_ptr_nonnull(lw);
}

static void teardown(void)
{
	ms_lw_free(lw);
	free(hist);
}

static void feed(uint32_t tid, uint64_t t, bool acquire)
{
	struct ms_lw_sample s = { .time_ns = t, .tid = tid, .acquire = acquire };

	ms_lw_feed(lw, &s);
}

static struct ms_lw_stats stats(void)
{
	struct ms_lw_stats st;

	ms_lw_get_stats(lw, &st);
	return st;
}

/* Two threads waiting at the same time: each start pairs with its own thread's acquire. */
START_TEST(test_interleaved_threads)
{
	feed(101, 1000, false);
	feed(202, 1200, false);
	feed(101, 1050, true);
	feed(202, 1480, true);
	ms_lw_flush(lw, UINT64_MAX);
	ck_assert_uint_eq(stats().pairs, 2);
	ck_assert_uint_eq(stats().unpaired_starts + stats().acquires_without_start, 0);
	ck_assert_uint_eq(hist->count, 2);
	ck_assert_uint_eq(hist->min, 50);
	ck_assert_uint_eq(hist->max, 280);
	ck_assert_uint_eq(hist->sum, 330);
}
END_TEST

/*
 * Per-CPU buffers are read one after another: a thread that started waiting on CPU 0 and got
 * the lock on CPU 1 can arrive acquire first. Ordering by time must still pair them.
 */
START_TEST(test_acquire_read_before_start)
{
	feed(7, 5000, true);
	feed(7, 4000, false);
	ms_lw_flush(lw, UINT64_MAX);
	ck_assert_uint_eq(stats().pairs, 1);
	ck_assert_uint_eq(stats().unpaired_starts + stats().acquires_without_start, 0);
	ck_assert_uint_eq(hist->max, 1000);
}
END_TEST

/*
 * A flush pairs only what is older than its bound; the rest waits for a later round, where a
 * start from an earlier buffer read can still join it.
 */
START_TEST(test_flush_bound)
{
	feed(9, 100, false);
	feed(9, 300, true);
	ms_lw_flush(lw, 200);
	ck_assert_uint_eq(stats().pairs, 0);
	ck_assert_uint_eq(hist->count, 0);
	/* Late from another CPU's buffer: thread 10 waited 250..260, before 300. */
	feed(10, 250, false);
	feed(10, 260, true);
	ms_lw_flush(lw, 1000);
	ck_assert_uint_eq(stats().pairs, 2);
	ck_assert_uint_eq(stats().unpaired_starts + stats().acquires_without_start, 0);
	ck_assert_uint_eq(hist->min, 10);
	ck_assert_uint_eq(hist->max, 200);
}
END_TEST

/* A lost acquire: the older start is unpaired, the newer one pairs with the next acquire. */
START_TEST(test_lost_partner)
{
	feed(5, 10, false);
	feed(5, 20, false);
	feed(5, 25, true);
	feed(6, 30, true);	/* an acquire whose start was lost */
	ms_lw_lost(lw, 3);
	ms_lw_flush(lw, UINT64_MAX);
	ck_assert_uint_eq(stats().pairs, 1);
	ck_assert_uint_eq(stats().unpaired_starts, 1);
	ck_assert_uint_eq(stats().acquires_without_start, 1);
	ck_assert_uint_eq(stats().lost, 3);
	ck_assert_uint_eq(hist->max, 5);
}
END_TEST

/* Sampling stopped while a thread waited: its start is reported unpaired, not dropped silently. */
START_TEST(test_cut_off_start)
{
	feed(11, 100, false);
	feed(11, 110, true);
	feed(11, 120, false);
	ms_lw_flush(lw, UINT64_MAX);
	ck_assert_uint_eq(stats().pairs, 1);
	ck_assert_uint_eq(stats().unpaired_starts, 1);
	ck_assert_uint_eq(stats().acquires_without_start, 0);
}
END_TEST

/* Start and acquire in the same nanosecond: an uncontended lock, a wait of (at least) 0. */
START_TEST(test_same_time)
{
	feed(12, 700, true);
	feed(12, 700, false);
	ms_lw_flush(lw, UINT64_MAX);
	ck_assert_uint_eq(stats().pairs, 1);
	ck_assert_uint_eq(hist->count, 1);
	ck_assert_uint_le(hist->max, 1);
}
END_TEST

/* Many threads, many rounds, random order inside each round: every wait is found exactly. */
START_TEST(test_many_rounds)
{
	uint64_t want_sum = 0;
	unsigned n = 0;

	srand(12345);
	for (unsigned round = 0; round < 50; round++) {
		struct ms_lw_sample s[64];
		unsigned k = 0;

		for (unsigned t = 0; t < 32; t++) {
			uint64_t start = (uint64_t)round * 100000 + t * 1000 +
					 (unsigned)rand() % 500;
			uint64_t wait = (unsigned)rand() % 400;

			s[k++] = (struct ms_lw_sample){ start, 1000 + t, false };
			s[k++] = (struct ms_lw_sample){ start + wait, 1000 + t, true };
			want_sum += wait ? wait : 1;
			n++;
		}
		for (unsigned i = k - 1; i > 0; i--) {
			unsigned j = (unsigned)rand() % (i + 1);
			struct ms_lw_sample x = s[i];

			s[i] = s[j];
			s[j] = x;
		}
		for (unsigned i = 0; i < k; i++)
			ms_lw_feed(lw, &s[i]);
		ms_lw_flush(lw, (uint64_t)round * 100000);
	}
	ms_lw_flush(lw, UINT64_MAX);
	ck_assert_uint_eq(stats().pairs, n);
	ck_assert_uint_eq(stats().unpaired_starts + stats().acquires_without_start, 0);
	ck_assert_uint_eq(hist->sum, want_sum);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("perf_lockwait");
	TCase *tc = tcase_create("pairing");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_interleaved_threads);
	tcase_add_test(tc, test_acquire_read_before_start);
	tcase_add_test(tc, test_flush_bound);
	tcase_add_test(tc, test_lost_partner);
	tcase_add_test(tc, test_cut_off_start);
	tcase_add_test(tc, test_same_time);
	tcase_add_test(tc, test_many_rounds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

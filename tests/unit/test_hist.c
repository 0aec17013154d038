/* Unit tests for the log-linear histogram: accuracy, accounting, merge, sharing across fork. */
#include <check.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mmstorm/metrics.h>
#include <mmstorm/util.h>

/* splitmix64: fixed seeds keep every data set, and so every failure, reproducible. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static struct ms_hist *hist_new(void)
{
	struct ms_hist *h = malloc(sizeof(*h));

	ck_assert_ptr_nonnull(h);
	ms_hist_init(h);
	return h;
}

enum dataset { DS_UNIFORM, DS_LOGNORMAL, DS_CONSTANT, DS_WIDE, DS_SMALL, DS_NR };

static uint64_t gen(enum dataset ds, uint64_t *s)
{
	uint64_t e, v;
	int i;

	switch (ds) {
	case DS_UNIFORM:
		return 1 + rnd(s) % 1000000;
	case DS_LOGNORMAL:
		/* A sum of uniforms is near normal, so 2^sum is near log-normal (median ~50 us). */
		for (e = 0, i = 0; i < 6; i++)
			e += rnd(s) % 6;
		v = (1ULL << e) + rnd(s) % (1ULL << e);
		return v;
	case DS_CONSTANT:
		return 123456789;
	case DS_WIDE:
		/* Log-uniform over 1 ns .. 100 s. */
		e = rnd(s) % 37;
		v = (1ULL << e) + rnd(s) % (1ULL << e);
		return v > MS_HIST_MAX ? MS_HIST_MAX : v;
	case DS_SMALL:
		return 1 + rnd(s) % 2047;
	default:
		return 0;
	}
}

static const unsigned int permille[] = { 500, 900, 990, 999, 1000 };

/* Sample at rank ceil(q * n) of sorted v, the definition the histogram approximates. */
static uint64_t exact_permille(const uint64_t *v, size_t n, unsigned int pm)
{
	size_t rank = ((uint64_t)pm * n + 999) / 1000;

	return v[(rank ? rank : 1) - 1];
}

static void check_accuracy(enum dataset ds, size_t n, uint64_t seed)
{
	uint64_t *v = malloc(n * sizeof(*v));
	struct ms_hist *h = hist_new();
	struct ms_hist_summary s;
	uint64_t exact, got;
	size_t i;

	ck_assert_ptr_nonnull(v);
	for (i = 0; i < n; i++) {
		v[i] = gen(ds, &seed);
		ms_hist_record(h, v[i]);
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	for (i = 0; i < MS_ARRAY_SIZE(permille); i++) {
		exact = exact_permille(v, n, permille[i]);
		got = ms_hist_percentile(h, permille[i] / 10.0);
		ck_assert_msg(got >= exact && (got - exact) * 1000 <= exact,
			      "dataset %d n %zu p%.1f: hist %llu exact %llu", ds, n,
			      permille[i] / 10.0, (unsigned long long)got,
			      (unsigned long long)exact);
		/* Below 2048 every value has its own bucket: no error at all. */
		if (ds == DS_SMALL)
			ck_assert_uint_eq(got, exact);
	}
	ms_hist_summarize(h, &s);
	ck_assert_uint_eq(s.count, n);
	ck_assert_uint_eq(s.min, v[0]);
	ck_assert_uint_eq(s.max, v[n - 1]);
	ck_assert_uint_eq(s.p50, ms_hist_percentile(h, 50));
	ck_assert_uint_eq(s.p90, ms_hist_percentile(h, 90));
	ck_assert_uint_eq(s.p99, ms_hist_percentile(h, 99));
	ck_assert_uint_eq(s.p999, ms_hist_percentile(h, 99.9));
	ck_assert_uint_eq(ms_hist_percentile(h, 100), v[n - 1]);
	free(h);
	free(v);
}

START_TEST(test_accuracy)
{
	/* Round and prime sizes: ranks that are exact products, and ranks that are rounded up. */
	static const size_t sizes[] = { 1, 7, 1000, 99991, 100000 };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_accuracy(_i, sizes[i], 42 + 1000 * _i + i);
}
END_TEST

START_TEST(test_rank_exact)
{
	struct ms_hist *h = hist_new();
	uint64_t v;

	/* 1..1000 once each: pXX must be exactly rank ceil(XX/100 * 1000). */
	for (v = 1; v <= 1000; v++)
		ms_hist_record(h, v);
	ck_assert_uint_eq(ms_hist_percentile(h, 0), 1);
	ck_assert_uint_eq(ms_hist_percentile(h, 0.05), 1);
	ck_assert_uint_eq(ms_hist_percentile(h, 0.1), 1);
	ck_assert_uint_eq(ms_hist_percentile(h, 0.15), 2);
	ck_assert_uint_eq(ms_hist_percentile(h, 50), 500);
	ck_assert_uint_eq(ms_hist_percentile(h, 90), 900);
	ck_assert_uint_eq(ms_hist_percentile(h, 99), 990);
	ck_assert_uint_eq(ms_hist_percentile(h, 99.9), 999);
	ck_assert_uint_eq(ms_hist_percentile(h, 99.95), 1000);
	ck_assert_uint_eq(ms_hist_percentile(h, 100), 1000);
	ck_assert_uint_eq(ms_hist_percentile(h, 150), 1000);

	/* 99.9 * 41000 / 100 is 40959.000000000007 in doubles, yet rank 40959 is meant. */
	ms_hist_init(h);
	ms_hist_record_n(h, 1, 40959);
	ms_hist_record_n(h, 2, 41);
	ck_assert_uint_eq(ms_hist_percentile(h, 99.9), 1);
	ck_assert_uint_eq(ms_hist_percentile(h, 99.91), 2);
	free(h);
}
END_TEST

START_TEST(test_totals)
{
	struct ms_hist *h = hist_new();
	uint64_t seed = 7, v, sum = 0, min = UINT64_MAX, max = 0;
	int i;

	for (i = 0; i < 50000; i++) {
		v = gen(DS_WIDE, &seed) / 1000 + 1;	/* keeps the exact sum far from wrapping */
		sum += v;
		min = v < min ? v : min;
		max = v > max ? v : max;
		if (i % 3)
			ms_hist_record(h, v);
		else
			ms_hist_record_n(h, v, 1);
	}
	ms_hist_record_n(h, 12345, 0);		/* n == 0 records nothing */
	ms_hist_record_n(h, 777, 10);
	sum += 7770;
	min = 777 < min ? 777 : min;
	ck_assert_uint_eq(h->count, 50010);
	ck_assert_uint_eq(h->sum, sum);
	ck_assert_uint_eq(h->min, min);
	ck_assert_uint_eq(h->max, max);
	ck_assert_uint_eq(h->saturated, 0);
	ck_assert_uint_eq(h->counts[ms_hist_index(777)] >= 10, 1);
	ck_assert_double_eq_tol(ms_hist_mean(h), (double)sum / 50010, 1e-9 * sum / 50010);
	free(h);
}
END_TEST

START_TEST(test_empty)
{
	struct ms_hist *h = hist_new();
	struct ms_hist_summary s;

	ck_assert_uint_eq(h->count, 0);
	ck_assert_uint_eq(h->min, UINT64_MAX);
	ck_assert_uint_eq(ms_hist_percentile(h, 50), 0);
	ck_assert_double_eq(ms_hist_mean(h), 0.0);
	memset(&s, 0xff, sizeof(s));
	ms_hist_summarize(h, &s);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_uint_eq(s.min, 0);
	ck_assert_uint_eq(s.max, 0);
	ck_assert_uint_eq(s.p999, 0);
	ck_assert_double_eq(s.mean, 0.0);
	free(h);
}
END_TEST

START_TEST(test_saturation)
{
	struct ms_hist *h = hist_new();

	ms_hist_record(h, 0);
	ms_hist_record(h, MS_HIST_MAX);
	ck_assert_uint_eq(h->saturated, 0);
	ms_hist_record(h, MS_HIST_MAX + 1);
	ms_hist_record(h, UINT64_MAX);
	ms_hist_record_n(h, MS_HIST_MAX * 5, 3);
	ck_assert_uint_eq(h->saturated, 5);
	ck_assert_uint_eq(h->count, 7);
	ck_assert_uint_eq(h->min, 1);
	ck_assert_uint_eq(h->max, MS_HIST_MAX);
	ck_assert_uint_eq(h->sum, 1 + 6 * MS_HIST_MAX);
	ck_assert_uint_eq(h->counts[ms_hist_index(1)], 1);
	ck_assert_uint_eq(h->counts[ms_hist_index(MS_HIST_MAX)], 6);
	ck_assert_uint_eq(ms_hist_percentile(h, 10), 1);
	/* The bucket of MS_HIST_MAX reaches past it: the answer must be clamped. */
	ck_assert_uint_gt(ms_hist_highest_equiv(ms_hist_index(MS_HIST_MAX)), MS_HIST_MAX);
	ck_assert_uint_eq(ms_hist_percentile(h, 50), MS_HIST_MAX);
	ck_assert_uint_eq(ms_hist_percentile(h, 100), MS_HIST_MAX);
	free(h);
}
END_TEST

START_TEST(test_merge)
{
	struct ms_hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *e = hist_new();
	uint64_t sa = 1, sb = 2, v;
	int i;

	for (i = 0; i < 30000; i++) {
		v = gen(DS_LOGNORMAL, &sa);
		ms_hist_record(a, v);
		ms_hist_record(all, v);
	}
	for (i = 0; i < 20000; i++) {
		v = gen(DS_WIDE, &sb) * 3;	/* some saturate */
		ms_hist_record(b, v);
		ms_hist_record(all, v);
	}
	ck_assert_uint_gt(b->saturated, 0);
	ms_hist_merge(e, a);			/* into an empty one: min must come from a */
	ms_hist_merge(e, b);
	ms_hist_merge(a, b);
	ck_assert_mem_eq(a->counts, all->counts, sizeof(all->counts));
	ck_assert_mem_eq(e->counts, all->counts, sizeof(all->counts));
	ck_assert_mem_eq(a, all, sizeof(*all));
	ck_assert_mem_eq(e, all, sizeof(*all));
	ck_assert_uint_eq(ms_hist_percentile(a, 99.9), ms_hist_percentile(all, 99.9));
	free(a);
	free(b);
	free(all);
	free(e);
}
END_TEST

#define NR_CHILDREN 4
#define PER_CHILD 200000

/* Most samples hit a few hot counters, so lost updates between processes would show. */
static uint64_t child_value(int child, int i, uint64_t *seed)
{
	if (i % 4)
		return 1000 + (i % 8);
	return gen(child % 2 ? DS_WIDE : DS_LOGNORMAL, seed);
}

/* Pin to the n-th allowed CPU (mod their number): fork puts children on the parent's CPU. */
static int pin_to_nth_cpu(int n)
{
	cpu_set_t set, one;
	int cpu, k;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	k = n % CPU_COUNT(&set);
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set) || k-- > 0)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		return sched_setaffinity(0, sizeof(one), &one);
	}
	return -1;
}

START_TEST(test_fork_shared)
{
	struct ms_hist *sh, *want = hist_new();
	pid_t pids[NR_CHILDREN];
	int c, i, status, go[2], *ready;
	uint64_t seed;
	char byte;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ms_hist_init(sh);
	/*
	 * Children start together so that their updates really overlap: EOF on go[0] once all
	 * exist, then a spin until all run (a lone child finishes within one time slice).
	 */
	ready = mmap(NULL, sizeof(*ready), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	ck_assert_ptr_ne(ready, MAP_FAILED);
	*ready = 0;
	ck_assert_int_eq(pipe(go), 0);
	for (c = 0; c < NR_CHILDREN; c++) {
		pids[c] = fork();
		ck_assert_int_ge(pids[c], 0);
		if (pids[c] == 0) {
			if (pin_to_nth_cpu(c) || close(go[1]) || read(go[0], &byte, 1) != 0)
				_exit(1);
			__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
			while (__atomic_load_n(ready, __ATOMIC_SEQ_CST) < NR_CHILDREN)
				sched_yield();
			seed = 100 + c;
			for (i = 0; i < PER_CHILD; i++) {
				ms_hist_record(sh, child_value(c, i, &seed));
				/* Keep all children in play, not run one after another. */
				if (i % 4096 == 0)
					sched_yield();
			}
			_exit(0);
		}
	}
	ck_assert_int_eq(close(go[0]), 0);
	ck_assert_int_eq(close(go[1]), 0);
	for (c = 0; c < NR_CHILDREN; c++) {
		ck_assert_int_eq(waitpid(pids[c], &status, 0), pids[c]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (c = 0; c < NR_CHILDREN; c++) {
		seed = 100 + c;
		for (i = 0; i < PER_CHILD; i++)
			ms_hist_record(want, child_value(c, i, &seed));
	}
	ck_assert_uint_eq(sh->count, NR_CHILDREN * PER_CHILD);
	ck_assert_uint_eq(sh->sum, want->sum);
	ck_assert_uint_eq(sh->min, want->min);
	ck_assert_uint_eq(sh->max, want->max);
	ck_assert_uint_eq(sh->saturated, want->saturated);
	ck_assert_mem_eq(sh->counts, want->counts, sizeof(want->counts));
	ck_assert_int_eq(munmap(sh, sizeof(*sh)), 0);
	ck_assert_int_eq(munmap(ready, sizeof(*ready)), 0);
	free(want);
}
END_TEST

/* Plain checks in the loops: each Check assertion is a message to the runner, too slow here. */
static int roundtrip_ok(uint64_t v)
{
	size_t idx = ms_hist_index(v);

	return idx < MS_HIST_LEN && ms_hist_lowest_equiv(idx) <= v &&
	       v <= ms_hist_highest_equiv(idx);
}

/* Bucket i is contiguous with the next, within 3 digits, and maps back to i. */
static int bucket_ok(size_t i)
{
	uint64_t lo = ms_hist_lowest_equiv(i), hi = ms_hist_highest_equiv(i);
	uint64_t width = hi - lo + 1;

	if (lo > hi || (width != 1 && width * 1000 > lo))
		return 0;
	if (i + 1 < MS_HIST_LEN && hi + 1 != ms_hist_lowest_equiv(i + 1))
		return 0;
	return hi > MS_HIST_MAX || (ms_hist_index(lo) == i && ms_hist_index(hi) == i);
}

START_TEST(test_mapping)
{
	uint64_t seed = 3, v, bad = UINT64_MAX;
	size_t i;
	int b;

	for (v = 0; v < 100000; v++)
		if (!roundtrip_ok(v) && bad == UINT64_MAX)
			bad = v;
	for (b = 1; b < 37; b++)
		for (v = (1ULL << b) - 1; v <= (1ULL << b) + 1; v++)
			if (!roundtrip_ok(v) && bad == UINT64_MAX)
				bad = v;
	for (i = 0; i < 1000000; i++) {
		v = rnd(&seed) % (MS_HIST_MAX + 1);
		if (!roundtrip_ok(v) && bad == UINT64_MAX)
			bad = v;
	}
	ck_assert_msg(bad == UINT64_MAX, "%llu is outside its bucket %zu",
		      (unsigned long long)bad, ms_hist_index(bad));
	ck_assert(roundtrip_ok(MS_HIST_MAX));
	/* The buckets tile 0 .. 2^37 - 1 without gaps or overlaps. */
	ck_assert_uint_eq(ms_hist_lowest_equiv(0), 0);
	for (i = 0; i < MS_HIST_LEN; i++)
		if (!bucket_ok(i))
			break;
	ck_assert_msg(i == MS_HIST_LEN, "bucket %zu: [%llu, %llu]", i,
		      (unsigned long long)ms_hist_lowest_equiv(i),
		      (unsigned long long)ms_hist_highest_equiv(i));
	ck_assert_uint_eq(ms_hist_highest_equiv(MS_HIST_LEN - 1), (1ULL << 37) - 1);
	/* Above the range everything maps to MS_HIST_MAX's slot, never out of the array. */
	ck_assert_uint_eq(ms_hist_index(UINT64_MAX), ms_hist_index(MS_HIST_MAX));
}
END_TEST

START_TEST(test_now_ns)
{
	uint64_t a = ms_now_ns(), b = ms_now_ns();

	ck_assert_uint_gt(a, 0);
	ck_assert_uint_ge(b, a);
}
END_TEST

static Suite *hist_suite(void)
{
	Suite *s = suite_create("hist");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_accuracy, 0, DS_NR);
	tcase_add_test(tc, test_rank_exact);
	tcase_add_test(tc, test_totals);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_saturation);
	tcase_add_test(tc, test_merge);
	tcase_add_test(tc, test_fork_shared);
	tcase_add_test(tc, test_mapping);
	tcase_add_test(tc, test_now_ns);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hist_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

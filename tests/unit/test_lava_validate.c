/* `mmstorm lava export` over a matrix of options; lava-run --validate on the jobs it writes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "mmstorm/lava.h"
#include "mmstorm/suite.h"

#define SKIP_EXIT 4

static char tmp[64], quick[512], device[512], template[512], timings[128], self[512];
static char kernel_a[128], kernel_b[128];
static unsigned nvalidated;

static const char *src_dir(void)
{
	const char *s = getenv("MMSTORM_SOURCE_DIR");

	return s && *s ? s : MMSTORM_SOURCE_DIR;
}

/* Not a kernel: a file with the x86 boot header, which is all export and validation look at. */
static void fake_bzimage(const char *path)
{
	char buf[4096] = { 0 };
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	memcpy(buf + 0x202, "HdrS", 4);
	ck_assert_uint_eq(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
	fclose(f);
}

/* Case i of quick.ini took i + 1 seconds: an uneven split to balance. */
static void write_timings(const struct ms_suite *s)
{
	json_t *cases = json_array(), *run;

	for (unsigned i = 0; i < s->ncases; i++)
		json_array_append_new(cases, json_pack("{s:s, s:s, s:[{s:I}]}", "name",
			s->cases[i].name, "verdict", "PASS", "repeats", "duration_ns",
			(json_int_t)(i + 1) * 1000000000));
	run = json_pack("{s:s, s:o}", "schema", "mmstorm-run/1", "cases", cases);
	ck_assert_int_eq(json_dump_file(run, timings, 0), 0);
	json_decref(run);
}

static void setup(void)
{
	struct ms_suite s = { 0 };
	char err[512];
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "/tmp/test-lava-validate-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(quick, sizeof(quick), "%s/configs/quick.ini", src_dir());
	snprintf(device, sizeof(device), "%s/tests/data/lava/qemu-tcg-device.yaml", src_dir());
	snprintf(template, sizeof(template), "%s/configs/lava/qemu-boot.yaml", src_dir());
	snprintf(timings, sizeof(timings), "%s/timings.json", tmp);
	snprintf(kernel_a, sizeof(kernel_a), "%s/vmlinuz-6.12.0-a", tmp);
	snprintf(kernel_b, sizeof(kernel_b), "%s/bzImage-b", tmp);
	fake_bzimage(kernel_a);
	fake_bzimage(kernel_b);
	ck_assert_int_eq(ms_suite_load(&s, quick, err, sizeof(err)), 0);
	write_timings(&s);
	ms_suite_free(&s);
	/* The agent's content does not matter to LAVA: any readable file will do. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

struct combo {
	unsigned shards;
	unsigned kernels;
	int url;		/* 0 default file://DIR, 1 file://DIR/ given, 2 https:// */
	bool template;		/* the boot actions from --boot-template */
	bool timings;
	bool validate;		/* run lava-run --validate on every job */
};

static void export(const struct combo *c, const char *out)
{
	char url[256], *argv[32];
	int argc = 0;

	argv[argc++] = "lava";
	argv[argc++] = "export";
	argv[argc++] = "--out";
	argv[argc++] = (char *)out;
	argv[argc++] = "--agent";
	argv[argc++] = self;
	argv[argc++] = "--run-id";
	argv[argc++] = "matrix";
	argv[argc++] = "--shards";
	argv[argc++] = (char *[]){ "0", "1", "2", "3", "4" }[c->shards];
	argv[argc++] = "--kernel";
	argv[argc++] = kernel_a;
	if (c->kernels > 1) {
		argv[argc++] = "--kernel";
		argv[argc++] = kernel_b;
	}
	if (c->url) {
		if (c->url == 1)
			snprintf(url, sizeof(url), "file://%s/", out);
		else
			snprintf(url, sizeof(url), "https://lava.example.org/mmstorm/%s", out + 1);
		argv[argc++] = "--artifact-url";
		argv[argc++] = url;
	}
	if (c->template) {
		argv[argc++] = "--device-type";
		argv[argc++] = "qemu";
		argv[argc++] = "--boot-template";
		argv[argc++] = template;
	}
	if (c->timings) {
		argv[argc++] = "--timings";
		argv[argc++] = timings;
	}
	argv[argc++] = quick;
	argv[argc] = NULL;
	ck_assert_int_eq(ms_cmd_lava(argc, argv), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_lt(fread(buf, 1, (1 << 20) - 1, f), (1 << 20) - 1);
	fclose(f);
	return buf;
}

static void validate(const char *job)
{
	char cmd[1024], log[512], *text;
	int st;

	snprintf(log, sizeof(log), "%s/validate.log", tmp);
	snprintf(cmd, sizeof(cmd), "lava-run --validate --job-id %u --output-dir %s/lava "
		 "--device %s %s > %s 2>&1", nvalidated, tmp, device, job, log);
	st = system(cmd);
	text = slurp(log);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
		      strstr(text, "\"case\": \"validate\", \"definition\": \"lava\", "
			     "\"result\": \"pass\"}"), "lava-run --validate %s:\n%s", job, text);
	free(text);
	nvalidated++;
}

/* Each kernel's shards run every case of the suite exactly once; by time, evenly. */
static void check_manifest(const struct combo *c, const char *out)
{
	char path[512], job[512];
	json_t *m, *jobs, *j;
	size_t i;

	snprintf(path, sizeof(path), "%s/manifest.json", out);
	m = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(m);
	jobs = json_object_get(m, "jobs");
	ck_assert_uint_eq(json_array_size(jobs), c->shards * c->kernels);
	for (unsigned k = 0; k < c->kernels; k++) {
		unsigned ncases = (unsigned)json_integer_value(json_object_get(m, "ncases"));
		double lo = 1e18, hi = 0;

		for (unsigned ci = 0; ci < ncases; ci++) {
			unsigned seen = 0;

			for (unsigned s = 0; s < c->shards; s++) {
				j = json_array_get(jobs, k * c->shards + s);
				seen += ms_case_set_has(json_string_value(json_object_get(j,
								"cases")), ci);
			}
			ck_assert_msg(seen == 1, "case %u in %u shards", ci, seen);
		}
		for (unsigned s = 0; s < c->shards; s++) {
			double e = json_real_value(json_object_get(json_array_get(jobs,
						   k * c->shards + s), "expected_s"));

			lo = e < lo ? e : lo;
			hi = e > hi ? e : hi;
		}
		/* Longest first into the emptiest shard: never off by more than one case. */
		if (c->timings)
			ck_assert_msg(hi - lo <= ncases, "shards of %.0f..%.0f s", lo, hi);
	}
	json_array_foreach(jobs, i, j) {
		const char *file = json_string_value(json_object_get(j, "file"));
		char *text;

		snprintf(job, sizeof(job), "%s/%s", out, file);
		text = slurp(job);
		ck_assert(strstr(text, "mmstorm.console=lava"));
		ck_assert(strstr(text, "monitors:"));
		ck_assert(strstr(text, c->url == 2 ? "url: 'https://lava.example.org/mmstorm/" :
				 "url: 'file:///"));
		ck_assert(strstr(text, "mmstorm.shard: '"));
		free(text);
		if (c->validate)
			validate(job);
	}
	json_decref(m);
}

START_TEST(test_matrix)
{
	/*
	 * Every combination is exported and checked; lava-run --validate (about 4 s a job) runs
	 * on a covering subset: each shard count, kernel count, file:// URL form, boot path and
	 * timing mode at least once. It fetches http(s) URLs, so those jobs are not validated.
	 */
	static const bool pick[4][2][3][2][2] = {
		[0][0][0][0][0] = 1, [1][1][1][0][1] = 1, [2][0][1][1][1] = 1,
		[3][1][0][1][0] = 1,
	};
	bool have_lava = !system("command -v lava-run >/dev/null 2>&1");
	unsigned n = 0;

	for (unsigned sh = 1; sh <= 4; sh++)
		for (unsigned k = 1; k <= 2; k++)
			for (int u = 0; u < 3; u++)
				for (int t = 0; t < 2; t++)
					for (int tm = 0; tm < 2; tm++) {
		struct combo c = { sh, k, u, t, tm, have_lava && pick[sh - 1][k - 1][u][t][tm] };
		char out[256];

		snprintf(out, sizeof(out), "%s/jobs-%u", tmp, n++);
		export(&c, out);
		check_manifest(&c, out);
	}
	if (have_lava)
		ck_assert_uint_ge(nvalidated, 15);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lava_validate");
	TCase *tc = tcase_create("matrix");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 280);
	tcase_add_test(tc, test_matrix);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed)
		return EXIT_FAILURE;
	/* The exports were checked; without lava-run their validation is what was skipped. */
	if (system("command -v lava-run >/dev/null 2>&1")) {
		printf("SKIP: lava-run not installed (Debian package lava-dispatcher): exported "
		       "jobs checked but not validated\n");
		return SKIP_EXIT;
	}
	return EXIT_SUCCESS;
}

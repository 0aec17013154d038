/* Unit tests for the known-bug catalog: metadata, triggers, and the standalone C they emit. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstorm/registry.h"
#include "mmstorm/repro.h"
#include "mmstorm/suite.h"
#include "mmstorm/workload.h"

#define MIN_ENTRIES 12
#define RUN_TIMEOUT_S 60

static char tmpdir[256];

static void load_catalog(struct ms_suite *s)
{
	const char *src = getenv("MMSTORM_SOURCE_DIR");
	char path[4096], err[1024];

	snprintf(path, sizeof(path), "%s/configs/bugs.ini", src && *src ? src : MMSTORM_SOURCE_DIR);
	ck_assert_msg(!ms_suite_load(s, path, err, sizeof(err)), "%s", err);
}

static const char *trigger_of(const struct ms_case *c)
{
	const struct ms_workload *wl = ms_workload_find("repro");

	if (c->wl != wl)
		return NULL;
	for (int i = 0; wl->params[i].name; i++)
		if (!strcmp(wl->params[i].name, "trigger"))
			return c->vals[i].s;
	return NULL;
}

START_TEST(test_catalog_metadata)
{
	struct ms_suite s;
	unsigned reverts = 0;

	load_catalog(&s);
	ck_assert_uint_ge(s.ncases, MIN_ENTRIES);
	for (unsigned i = 0; i < s.ncases; i++) {
		const struct ms_case *c = &s.cases[i];
		const char *rev = ms_case_meta(c, "bug.revert");
		const char *val = ms_case_meta(c, "bug.validation");

		for (int k = 0; ms_repro_required_meta[k]; k++) {
			const char *v = ms_case_meta(c, ms_repro_required_meta[k]);

			ck_assert_msg(v && strlen(v) > 3, "[%s] lacks %s", c->name,
				      ms_repro_required_meta[k]);
		}
		/* "validation" says either which revert kernel checks it or that none does */
		ck_assert_msg(rev ? strstr(val, rev) != NULL :
			      strstr(val, "fixed kernels only") != NULL,
			      "[%s] bug.validation '%s' disagrees with bug.revert", c->name, val);
		reverts += rev != NULL;
		for (unsigned j = 0; j < i; j++)
			ck_assert_msg(strcasecmp(ms_case_meta(&s.cases[j], "bug.id"),
						 ms_case_meta(c, "bug.id")),
				      "[%s] repeats the bug.id of [%s]", c->name, s.cases[j].name);
		ck_assert_msg(trigger_of(c) && ms_repro_trigger_find(trigger_of(c)),
			      "[%s] names no trigger of this build", c->name);
	}
	ck_assert_uint_ge(reverts, 2);
	ms_suite_free(&s);
}
END_TEST

/* Every trigger in the build is used by the catalog: no dead reproducers. */
START_TEST(test_every_trigger_listed)
{
	struct ms_suite s;

	load_catalog(&s);
	for (const struct ms_repro_trigger *t = ms_repro_triggers; t->name; t++) {
		bool used = false;

		for (unsigned i = 0; i < s.ncases; i++)
			used |= !strcmp(trigger_of(&s.cases[i]) ?: "", t->name);
		ck_assert_msg(used, "trigger %s is in no catalog entry", t->name);
	}
	ms_suite_free(&s);
}
END_TEST

START_TEST(test_meta_keys)
{
	static const char ok[] =
		"[a]\nworkload=repro\ntrigger=dirty_cow\nbug.id=X-1\nbug.title=first half\n"
		"bug.title=second half\n";
	static const char global[] = "[global]\nbug.id=X\n[a]\nworkload=repro\ntrigger=x\n";
	static const char empty[] = "[a]\nworkload=repro\ntrigger=x\nbug.=1\n";
	struct ms_suite s;
	char err[1024];

	ck_assert_int_eq(ms_suite_load_mem(&s, "t.ini", ok, sizeof(ok) - 1, err, sizeof(err)), 0);
	ck_assert_str_eq(ms_case_meta(&s.cases[0], "bug.id"), "X-1");
	ck_assert_str_eq(ms_case_meta(&s.cases[0], "bug.title"), "first half second half");
	ck_assert_ptr_null(ms_case_meta(&s.cases[0], "bug.fix"));
	ms_suite_free(&s);
	ck_assert_int_eq(ms_suite_load_mem(&s, "t.ini", global, sizeof(global) - 1, err,
					   sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bug.id"));
	ck_assert_int_eq(ms_suite_load_mem(&s, "t.ini", empty, sizeof(empty) - 1, err,
					   sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "unknown key"));
}
END_TEST

/* Run a program with a time limit; returns its exit status, or -signal. */
static int run_prog(const char *exe, const char *out)
{
	int status, fd;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		setenv("TMPDIR", tmpdir, 1);
		alarm(RUN_TIMEOUT_S);
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static void last_line(const char *path, char *line, size_t len)
{
	FILE *f = fopen(path, "re");
	char buf[1024];

	line[0] = '\0';
	ck_assert_ptr_nonnull(f);
	while (fgets(buf, sizeof(buf), f))
		if (buf[0] != '\n')
			snprintf(line, len, "%s", buf);
	fclose(f);
}

/*
 * The emitted program is the trigger as compiled into mmstorm, made standalone: it must build
 * with cc -Wall -Werror and, on this (fixed) host kernel, end NOT REPRODUCED or SKIP.
 */
START_TEST(test_emit_compiles_and_runs)
{
	const struct ms_repro_trigger *t = &ms_repro_triggers[_i];
	const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
	char src[512], exe[512], out[512], cmd[2048], line[1024];
	FILE *f;
	int rc;

	snprintf(src, sizeof(src), "%s/%s.c", tmpdir, t->name);
	snprintf(exe, sizeof(exe), "%s/%s", tmpdir, t->name);
	snprintf(out, sizeof(out), "%s/%s.out", tmpdir, t->name);
	f = fopen(src, "we");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ms_repro_emit_c(t, "/* test */\n", f), 0);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "%s -std=gnu11 -O2 -Wall -Wextra -Werror -o %s %s -lpthread",
		 cc, exe, src);
	ck_assert_msg(system(cmd) == 0, "%s: does not compile standalone", t->name);
	rc = run_prog(exe, out);
	last_line(out, line, sizeof(line));
	ck_assert_msg(rc == 0 || rc == 4, "%s exited %d: %s", t->name, rc, line);
	ck_assert_msg(!strncmp(line, rc ? "SKIP: " : "NOT REPRODUCED: ", rc ? 6 : 16),
		      "%s: exit %d but last line '%s'", t->name, rc, line);
	unlink(src);
	unlink(exe);
	unlink(out);
}
END_TEST

START_TEST(test_emit_is_the_source)
{
	for (const struct ms_repro_trigger *t = ms_repro_triggers; t->name; t++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		const char *body;

		ck_assert_int_eq(ms_repro_emit_c(t, NULL, f), 0);
		fclose(f);
		/* the include is replaced by the library's text, the rest is verbatim */
		ck_assert_ptr_null(strstr(buf, "#include \"repro_lib.h\""));
		ck_assert_ptr_nonnull(strstr(buf, "static inline int repro_kmsg_open(void)"));
		body = strstr(t->src, "#include \"repro_lib.h\"");
		ck_assert_ptr_nonnull(body);
		ck_assert_ptr_nonnull(strstr(buf, body + strlen("#include \"repro_lib.h\"")));
		ck_assert_ptr_nonnull(strstr(buf, "int main(void)"));
		free(buf);
	}
}
END_TEST

int main(void)
{
	const char *base = getenv("TMPDIR");
	Suite *s = suite_create("repro");
	TCase *cat = tcase_create("catalog"), *emit = tcase_create("emit");
	unsigned n = 0;
	SRunner *sr;
	int failed;

	while (ms_repro_triggers[n].name)
		n++;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_repro.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	tcase_add_test(cat, test_catalog_metadata);
	tcase_add_test(cat, test_every_trigger_listed);
	tcase_add_test(cat, test_meta_keys);
	tcase_add_test(emit, test_emit_is_the_source);
	tcase_add_loop_test(emit, test_emit_compiles_and_runs, 0, (int)n);
	tcase_set_timeout(emit, RUN_TIMEOUT_S + 60);
	suite_add_tcase(s, cat);
	suite_add_tcase(s, emit);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rmdir(tmpdir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

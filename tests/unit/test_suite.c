/* Unit tests for the suite parser: values, defaults and inheritance, and every error class. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmstorm/inject.h"
#include "mmstorm/registry.h"
#include "mmstorm/suite.h"
#include "mmstorm/workload.h"

#define SEC 1000000000LL

static char tmpdir[256];

/* Writes len bytes to tmpdir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const void *buf, size_t len)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

static int load_text(struct ms_suite *s, const char *name, const char *text, char *err,
		     size_t errlen)
{
	const char *path = write_file(name, text, strlen(text));
	int ret = ms_suite_load(s, path, err, errlen);

	unlink(path);
	return ret;
}

static void check_message(const char *path, const char *err, int line, const char *needle)
{
	char prefix[600];

	if (line)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	ck_assert_msg(!strncmp(err, prefix, strlen(prefix)), "'%s' does not start with '%s'", err,
		      prefix);
	ck_assert_msg(strstr(err, needle), "'%s' does not contain '%s'", err, needle);
	ck_assert_msg(!strchr(err, '\n') && !strchr(err, '\r'), "'%s' is not one line", err);
}

/* Loads buf as file `name` and expects a rejection at `line` (0: about the whole file). */
static void expect_error_buf(const char *name, const void *buf, size_t len, int line,
			     const char *needle)
{
	char err[1024], path[512];
	struct ms_suite s;
	int ret;

	snprintf(path, sizeof(path), "%s", write_file(name, buf, len));
	memset(err, 'x', sizeof(err));
	ret = ms_suite_load(&s, path, err, sizeof(err));
	unlink(path);
	ck_assert_msg(ret == -EINVAL, "%s: ret %d, err '%s'", name, ret, ret ? err : "");
	ck_assert_ptr_null(s.cases);
	ck_assert_uint_eq(s.ncases, 0);
	check_message(path, err, line, needle);

	/* The in-memory entry point must say exactly the same. */
	{
		char err2[1024];

		ck_assert_int_eq(ms_suite_load_mem(&s, path, buf, len, err2, sizeof(err2)),
				 -EINVAL);
		ck_assert_str_eq(err, err2);
	}
}

static void expect_error(const char *name, const char *text, int line, const char *needle)
{
	expect_error_buf(name, text, strlen(text), line, needle);
}

static const struct ms_pval *val(const struct ms_case *c, const char *name)
{
	const struct ms_param *p = ms_param_find(c->wl->params, name);

	ck_assert_msg(p, "workload %s has no parameter %s", c->wl->name, name);
	return &c->vals[p - c->wl->params];
}

/* The registry's own default for a parameter, so tests do not restate workload tables. */
static int64_t def_of(const struct ms_case *c, const char *name)
{
	const struct ms_param *p = ms_param_find(c->wl->params, name);
	struct ms_pval v;
	char err[256];

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(ms_param_parse(p, p->def, &v, err, sizeof(err)), 0);
	return v.i;
}

static const char valid_suite[] =
	"; a comment\n"
	"[global]\n"
	"name=quick            ; suite name\n"
	"seed=12345\n"
	"timeout=30s\n"
	"size=128M\n"
	"vm_append=transparent_hugepage=madvise\n"
	"vm_mem=2G\n"
	"vm_smp=2\n"
	"\n"
	"[fork-anon]\n"
	"workload=fork-storm\n"
	"region=anon\n"
	"repeat=3\n"
	"iterations=10\n"
	"duration=5s\n"
	"\n"
	"[fork-thp]\n"
	"workload = fork-storm\n"
	"region = thp\n"
	"size = 1G\n"
	"timeout = 2m\n"
	"children = 0x20\n";

START_TEST(test_valid)
{
	struct ms_suite s;
	const struct ms_case *a, *b;
	char err[1024];

	ck_assert_msg(load_text(&s, "valid.ini", valid_suite, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(s.name, "quick");
	ck_assert_uint_eq(s.seed, 12345);
	ck_assert_str_eq(s.vm_append, "transparent_hugepage=madvise");
	ck_assert_int_eq(s.vm_mem_bytes, 2LL << 30);
	ck_assert_int_eq(s.vm_smp, 2);
	ck_assert_uint_eq(s.ncases, 2);
	a = &s.cases[0];
	b = &s.cases[1];

	ck_assert_str_eq(a->name, "fork-anon");
	ck_assert_int_eq(a->line, 11);
	ck_assert_ptr_eq(a->wl, ms_workload_find("fork-storm"));
	ck_assert_str_eq(val(a, "region")->s, "anon");
	ck_assert_int_eq(val(a, "size")->i, 128LL << 20);	/* inherited from [global] */
	ck_assert_int_eq(val(a, "workers")->i, def_of(a, "workers"));
	ck_assert_int_eq(val(a, "children")->i, def_of(a, "children"));
	ck_assert_uint_eq(a->repeat, 3);
	ck_assert_uint_eq(a->iterations, 10);
	ck_assert_int_eq(a->duration_ns, 5 * SEC);
	ck_assert_int_eq(a->timeout_ns, 30 * SEC);		/* inherited */
	ck_assert_uint_eq(a->ninj, 0);

	ck_assert_str_eq(b->name, "fork-thp");
	ck_assert_int_eq(b->line, 18);
	ck_assert_str_eq(val(b, "region")->s, "thp");
	ck_assert_int_eq(val(b, "size")->i, 1LL << 30);	/* overrides [global] */
	ck_assert_int_eq(val(b, "children")->i, 32);
	ck_assert_int_eq(b->timeout_ns, 120 * SEC);
	ck_assert_uint_eq(b->repeat, 1);
	ck_assert_uint_eq(b->iterations, 1);	/* neither iterations nor duration: one */
	ck_assert_int_eq(b->duration_ns, 0);
	ms_suite_free(&s);
	ck_assert_ptr_null(s.cases);
	ms_suite_free(&s);	/* twice is harmless */
}
END_TEST

START_TEST(test_defaults)
{
	struct ms_suite s;
	char err[1024];

	ck_assert_msg(load_text(&s, "my-suite.ini", "[only]\nworkload=fork-storm\nduration=1s\n",
				err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(s.name, "my-suite");	/* file base name without .ini */
	ck_assert_uint_eq(s.seed, 1);
	ck_assert_str_eq(s.vm_append, "");
	ck_assert_int_eq(s.vm_mem_bytes, 0);
	ck_assert_int_eq(s.vm_smp, 0);
	ck_assert_uint_eq(s.ncases, 1);
	ck_assert_uint_eq(s.cases[0].repeat, 1);
	ck_assert_uint_eq(s.cases[0].iterations, 0);	/* bounded by duration only */
	ck_assert_int_eq(s.cases[0].duration_ns, SEC);
	ck_assert_int_eq(s.cases[0].timeout_ns, 60 * SEC);
	ck_assert_int_eq(val(&s.cases[0], "size")->i, def_of(&s.cases[0], "size"));
	ck_assert_str_eq(val(&s.cases[0], "region")->s, "anon");
	ms_suite_free(&s);
}
END_TEST

static void load_seeds(const char *text, uint64_t *seeds, unsigned n)
{
	struct ms_suite s;
	char err[1024];

	ck_assert_msg(load_text(&s, "seeds.ini", text, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(s.ncases, n);
	for (unsigned i = 0; i < n; i++)
		seeds[i] = s.cases[i].seed;
	ms_suite_free(&s);
}

START_TEST(test_derived_seed)
{
	static const char one[] = "[global]\nseed=7\n[a]\nworkload=fork-storm\n"
		"[b]\nworkload=fork-storm\n[c]\nworkload=fork-storm\nseed=42\n"
		"[d]\nworkload=fork-storm\nseed=0\n";
	static const char two[] = "[global]\nseed=8\n[a]\nworkload=fork-storm\n"
		"[b]\nworkload=fork-storm\n[c]\nworkload=fork-storm\nseed=42\n"
		"[d]\nworkload=fork-storm\nseed=0\n";
	uint64_t s1[4], s1b[4], s2[4];

	load_seeds(one, s1, 4);
	load_seeds(one, s1b, 4);
	load_seeds(two, s2, 4);
	ck_assert_uint_eq(s1[2], 42);		/* explicit */
	ck_assert_uint_eq(s2[2], 42);
	ck_assert_uint_ne(s1[0], 0);		/* derived */
	ck_assert_uint_ne(s1[0], s1[1]);	/* per case */
	ck_assert_uint_ne(s1[1], s1[3]);	/* seed=0 means derived, from the index */
	ck_assert_uint_ne(s1[3], 0);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(s1[i], s1b[i]);	/* reproducible */
	ck_assert_uint_ne(s1[0], s2[0]);	/* follows the suite seed */
	ck_assert_uint_ne(s1[1], s2[1]);
}
END_TEST

/* BOM, CRLF, indentation, ':' separators, both comment styles, blank lines, UTF-8 comments. */
START_TEST(test_syntax_variants)
{
	static const char text[] = "\xef\xbb\xbf; caf\xc3\xa9 \xe2\x9c\x93\r\n"
		"# hash comment\r\n"
		"\r\n"
		"  [global]   ; trailing comment\r\n"
		"\tworkers : 4\r\n"
		"[c.1_x-y]\r\n"
		"    workload=fork-storm ; inline\r\n"
		"region=SHMEM\r\n"
		"repeat=2";	/* no final newline */
	struct ms_suite s;
	char err[1024];

	ck_assert_msg(load_text(&s, "variants.ini", text, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(s.ncases, 1);
	ck_assert_str_eq(s.cases[0].name, "c.1_x-y");
	ck_assert_int_eq(s.cases[0].line, 6);
	ck_assert_int_eq(val(&s.cases[0], "workers")->i, 4);
	ck_assert_str_eq(val(&s.cases[0], "region")->s, "shmem");
	ck_assert_uint_eq(s.cases[0].repeat, 2);
	ms_suite_free(&s);
}
END_TEST

START_TEST(test_inject)
{
	const struct ms_injector *inj = ms_injectors[0];
	const struct ms_param *p;
	char text[1024], err[1024];
	struct ms_suite s;

	/* Whatever is registered, an unknown injector is an error naming it. */
	expect_error("inj-unknown.ini", "[c]\nworkload=fork-storm\ninject=no-such-injector\n", 3,
		     "unknown injector 'no-such-injector'");
	expect_error("inj-empty.ini", "[c]\nworkload=fork-storm\ninject=,\n", 3,
		     "key 'inject'");
	if (!inj)
		return;		/* no injectors registered yet: nothing more to check */
	p = inj->params && inj->params[0].name ? &inj->params[0] : NULL;
	snprintf(text, sizeof(text), "[global]\ninject=%s\n[a]\nworkload=fork-storm\n"
		 "[b]\nworkload=fork-storm\ninject=none\n"
		 "[c]\nworkload=fork-storm\ninject= %s \n", inj->name, inj->name);
	ck_assert_msg(load_text(&s, "inj.ini", text, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(s.cases[0].ninj, 1);
	ck_assert_ptr_eq(s.cases[0].inj[0], inj);
	ck_assert_uint_eq(s.cases[1].ninj, 0);
	ck_assert_uint_eq(s.cases[2].ninj, 1);
	if (p)
		ck_assert_ptr_nonnull(s.cases[0].inj_vals[0]);
	ms_suite_free(&s);

	snprintf(text, sizeof(text), "[c]\nworkload=fork-storm\ninject=%s,%s\n", inj->name,
		 inj->name);
	expect_error("inj-twice.ini", text, 3, "listed twice");
	if (!p || !p->def)
		return;
	/* The injector's parameter is a valid key next to inject= and takes the default. */
	snprintf(text, sizeof(text), "[c]\nworkload=fork-storm\ninject=%s\n%s=%s\n", inj->name,
		 p->name, p->def);
	ck_assert_msg(load_text(&s, "inj-param.ini", text, err, sizeof(err)) == 0, "%s", err);
	{
		struct ms_pval want;

		ck_assert_int_eq(ms_param_parse(p, p->def, &want, err, sizeof(err)), 0);
		ck_assert_int_eq(s.cases[0].inj_vals[0][0].i, want.i);
		ck_assert_str_eq(s.cases[0].inj_vals[0][0].s, want.s);
	}
	ms_suite_free(&s);
	/* Without inject= the same key is unknown for the case. */
	if (!ms_param_find(ms_workload_find("fork-storm")->params, p->name) &&
	    !ms_param_find(ms_case_params, p->name)) {
		snprintf(text, sizeof(text), "[c]\nworkload=fork-storm\n%s=%s\n", p->name, p->def);
		expect_error("inj-noparam.ini", text, 3, "unknown key");
	}
}
END_TEST

START_TEST(test_err_value_type)
{
	expect_error("type.ini", "[c]\nworkload=fork-storm\nsize=64Q\n", 3,
		     "[c] key 'size': expected size (");
	expect_error("type2.ini", "[c]\nworkload=fork-storm\nregion=anonymous\n", 3,
		     "[c] key 'region': expected one of (anon|thp|hugetlb|shmem), "
		     "found 'anonymous'");
	expect_error("type3.ini", "[c]\nworkload=fork-storm\nworkers=two\n", 3,
		     "key 'workers': expected integer (");
	expect_error("type4.ini", "[c]\nworkload=fork-storm\nduration=5 parsecs\n", 3,
		     "key 'duration': expected time (");
}
END_TEST

START_TEST(test_err_overflow)
{
	expect_error("ovf.ini", "[c]\nworkload=fork-storm\nsize=99999999999T\n", 3,
		     "key 'size': expected size (bytes, 4K..64G), found '99999999999T'");
	expect_error("ovf2.ini", "[c]\nworkload=fork-storm\niterations=99999999999999999999\n",
		     3, "key 'iterations': expected integer (0..1000000000000)");
	expect_error("ovf3.ini", "[c]\nworkload=fork-storm\ntimeout=9999999999999d\n", 3,
		     "key 'timeout': expected time (1ms..7d)");
}
END_TEST

START_TEST(test_err_range)
{
	expect_error("rng.ini", "[c]\nworkload=fork-storm\nworkers=0\n", 3,
		     "key 'workers': expected integer (");
	expect_error("rng2.ini", "[c]\nworkload=fork-storm\nsize=128G\n", 3,
		     "found '128G'");
	expect_error("rng3.ini", "[c]\nworkload=fork-storm\nrepeat=0\n", 3,
		     "key 'repeat': expected integer (1..10000), found '0'");
	expect_error("rng4.ini", "[c]\nworkload=fork-storm\nduration=8d\n", 3,
		     "key 'duration': expected time (0..7d), found '8d'");
	expect_error("rng5.ini", "[c]\nworkload=fork-storm\ntimeout=0\n", 3,
		     "key 'timeout': expected time (1ms..7d), found '0'");
	expect_error("rng6.ini", "[global]\nvm_smp=65\n[c]\nworkload=fork-storm\n", 2,
		     "[global] key 'vm_smp'");
}
END_TEST

START_TEST(test_err_duplicate_section)
{
	expect_error("dsec.ini", "[a]\nworkload=fork-storm\n\n[a]\nworkload=fork-storm\n", 4,
		     "duplicate section 'a' (first at line 1)");
	expect_error("dsec2.ini", "[global]\nseed=1\n[a]\nworkload=fork-storm\n[global]\n", 5,
		     "duplicate section 'global' (first at line 1)");
}
END_TEST

START_TEST(test_err_duplicate_key)
{
	expect_error("dkey.ini", "[a]\nworkload=fork-storm\nsize=1M\nregion=thp\nsize=2M\n", 5,
		     "[a] duplicate key 'size' (first at line 3)");
	expect_error("dkey2.ini", "[a]\nworkload=fork-storm\nworkload=fork-storm\n", 3,
		     "duplicate key 'workload' (first at line 2)");
	expect_error("dkey3.ini", "[global]\nseed=1\nseed=2\n[a]\nworkload=fork-storm\n", 3,
		     "[global] duplicate key 'seed' (first at line 2)");
}
END_TEST

START_TEST(test_err_unknown_key)
{
	expect_error("ukey.ini", "[c]\nworkload=fork-storm\nsise=1M\n", 3,
		     "[c] unknown key 'sise' for workload 'fork-storm' (did you mean 'size'?)");
	/* Nothing close: the message lists the valid keys. */
	expect_error("ukey2.ini", "[c]\nworkload=fork-storm\nxyzzyplugh=1\n", 3,
		     "unknown key 'xyzzyplugh' for workload 'fork-storm' (valid keys: ");
	expect_error("ukey3.ini", "[c]\nworkload=fork-storm\nxyzzyplugh=1\n", 3,
		     "region");
	expect_error("ukey5.ini", "[c]\nworkload=fork-storm\nvm_smp=2\n", 3,
		     "[c] key 'vm_smp' is only allowed in [global]");
	/* Keys may come before workload=. */
	expect_error("ukey4.ini", "[c]\nregoin=thp\nworkload=fork-storm\n", 2,
		     "did you mean 'region'?");
}
END_TEST

START_TEST(test_err_unknown_workload)
{
	expect_error("uwl.ini", "[c]\nworkload=no-such-workload\nsize=1M\n", 2,
		     "[c] unknown workload 'no-such-workload' (");
	expect_error("uwl2.ini", "[c]\nworkload=no-such-workload\n", 2, "fork-storm");
	expect_error("uwl3.ini", "[c]\nworkload=fork-strom\n", 2, "did you mean 'fork-storm'?");
}
END_TEST

START_TEST(test_err_missing_workload)
{
	expect_error("nowl.ini", "[ok]\nworkload=fork-storm\n[c]\nsize=1M\nrepeat=2\n", 3,
		     "[c] missing workload=");
	expect_error("gwl.ini", "[global]\nworkload=fork-storm\n[c]\nworkload=fork-storm\n", 2,
		     "[global] key 'workload' is not allowed");
}
END_TEST

START_TEST(test_err_global)
{
	expect_error("gkey.ini", "[global]\nfoo_bar_baz=1\n[c]\nworkload=fork-storm\n", 2,
		     "[global] unknown key 'foo_bar_baz'");
	expect_error("gkey2.ini", "[global]\nchildern=3\n[c]\nworkload=fork-storm\n", 2,
		     "did you mean 'children'?");
	/* A global default is checked against the case's workload, and blamed on its line. */
	expect_error("gkey3.ini", "[global]\nsize=128G\n[c]\nworkload=fork-storm\n", 2,
		     "[global] key 'size': expected size (");
	/* Checked even when no case overrides or uses it... */
	expect_error("gkey4.ini", "[global]\nchildren=many\n[c]\nworkload=fork-storm\n", 2,
		     "[global] key 'children'");
	/* ...and an override does not hide a bad default. */
	expect_error("gkey5.ini",
		     "[global]\nchildren=0\n[c]\nworkload=fork-storm\nchildren=3\n", 2,
		     "[global] key 'children'");
	expect_error("gkey6.ini", "[global]\nname=has space\n[c]\nworkload=fork-storm\n", 2,
		     "[global] key 'name': expected name");
	expect_error("gkey7.ini", "[global]\nvm_mem=lots\n[c]\nworkload=fork-storm\n", 2,
		     "[global] key 'vm_mem': expected size (");
}
END_TEST

START_TEST(test_err_outside_section)
{
	expect_error("outside.ini", "; hi\nsize=1M\n[c]\nworkload=fork-storm\n", 2,
		     "key 'size' outside any section");
}
END_TEST

START_TEST(test_err_empty_value)
{
	expect_error("empty.ini", "[c]\nworkload=fork-storm\nsize=\n", 3,
		     "[c] key 'size' has an empty value");
	expect_error("empty2.ini", "[c]\nworkload=fork-storm\nsize =   ; just a comment\n", 3,
		     "key 'size' has an empty value");
	expect_error("empty3.ini", "[c]\nworkload=fork-storm\n= 5\n", 3, "missing key name");
}
END_TEST

START_TEST(test_err_binary)
{
	static const char nul[] = "[c]\nworkload=fork-storm\nsi\0ze=1M\n";
	static const char ctl[] = "[c]\nworkload=fork-storm\x1b[0m\n";
	static const char bad_utf8[] = "[c]\nworkload=fork-storm\n; \xc3\x28 broken\n";
	static const char cr[] = "[c]\rworkload=fork-storm\r";
	unsigned char junk[512];

	expect_error_buf("nul.ini", nul, sizeof(nul) - 1, 3, "NUL byte at column 3");
	expect_error_buf("ctl.ini", ctl, sizeof(ctl) - 1, 2, "control byte 0x1b at column 20");
	expect_error_buf("utf8.ini", bad_utf8, sizeof(bad_utf8) - 1, 3,
			 "invalid UTF-8 byte 0xc3");
	expect_error_buf("cr.ini", cr, sizeof(cr) - 1, 1, "control byte 0x0d");
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	expect_error_buf("junk.ini", junk, sizeof(junk), 1, "(binary file?)");
}
END_TEST

START_TEST(test_err_long_line)
{
	char text[600];
	int n;

	n = snprintf(text, sizeof(text), "[c]\nworkload=fork-storm\n; ");
	memset(text + n, 'x', 400);
	strcpy(text + n + 400, "\n");
	expect_error("long.ini", text, 3, "line too long (402 bytes, at most ");
}
END_TEST

START_TEST(test_err_whole_file)
{
	char path[512], err[1024];
	struct ms_suite s;

	expect_error("zero.ini", "", 0, "file is empty");
	expect_error("nocase.ini", "; nothing\n[global]\nseed=3\n", 0, "no cases");
	expect_error("comments.ini", "; a\n# b\n\n   \n", 0, "no cases");

	snprintf(path, sizeof(path), "%s/does-not-exist.ini", tmpdir);
	ck_assert_int_eq(ms_suite_load(&s, path, err, sizeof(err)), -EINVAL);
	check_message(path, err, 0, strerror(ENOENT));
	ck_assert_ptr_null(s.cases);

	snprintf(path, sizeof(path), "%s/a-directory.ini", tmpdir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(ms_suite_load(&s, path, err, sizeof(err)), -EINVAL);
	rmdir(path);
	check_message(path, err, 0, strerror(EISDIR));
}
END_TEST

START_TEST(test_err_too_large)
{
	size_t len = (1 << 20) + 1;
	char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	memset(buf, '\n', len);
	memcpy(buf, "[c]\nworkload=fork-storm\n", 24);
	expect_error_buf("huge.ini", buf, len, 0, "file too large (1048577 bytes, at most");
	/* One byte less is fine: blank lines. */
	{
		struct ms_suite s;
		char err[1024];

		ck_assert_msg(ms_suite_load_mem(&s, "big.ini", buf, len - 1, err,
						sizeof(err)) == 0, "%s", err);
		ms_suite_free(&s);
	}
	free(buf);
}
END_TEST

START_TEST(test_err_section_syntax)
{
	char text[200];

	expect_error("sec1.ini", "[c\nworkload=fork-storm\n", 1, "has no closing ']'");
	expect_error("sec2.ini", "[a b]\nworkload=fork-storm\n", 1,
		     "invalid section name 'a b'");
	expect_error("sec3.ini", "[]\nworkload=fork-storm\n", 1, "invalid section name ''");
	expect_error("sec4.ini", "[c]x\nworkload=fork-storm\n", 1,
		     "unexpected text 'x' after section header");
	snprintf(text, sizeof(text), "[%064d]\nworkload=fork-storm\n", 0);
	expect_error("sec5.ini", text, 1, "invalid section name");
	snprintf(text, sizeof(text), "[%063d]\nworkload=fork-storm\n", 0);
	{
		struct ms_suite s;
		char err[1024];

		ck_assert_msg(load_text(&s, "sec6.ini", text, err, sizeof(err)) == 0, "%s", err);
		ck_assert_uint_eq(strlen(s.cases[0].name), 63);
		ms_suite_free(&s);
	}
}
END_TEST

START_TEST(test_err_syntax)
{
	expect_error("syn.ini", "[c]\nworkload=fork-storm\nsize 64M\n", 3,
		     "expected '[section]', 'key = value' or a comment, found 'size 64M'");
	expect_error("syn2.ini", "[c]\nworkload=fork-storm\nsize ;= 64M\n", 3, "found 'size ;");
}
END_TEST

START_TEST(test_err_too_many_cases)
{
	size_t cap = 4200 * 40, n = 0;
	char *buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < 4097; i++)
		n += snprintf(buf + n, cap - n, "[c%d]\nworkload=fork-storm\n", i);
	expect_error_buf("many.ini", buf, n, 4097 * 2 - 1, "too many cases (at most 4096)");
	free(buf);
}
END_TEST

/* The error reported is the first one in the file, wherever [global] is. */
START_TEST(test_first_error_wins)
{
	expect_error("first.ini",
		     "[a]\nworkload=fork-storm\nsize=1Q\n[b]\nworkload=fork-storm\nrepeat=0\n", 3,
		     "key 'size'");
	expect_error("first2.ini",
		     "[a]\nworkload=fork-storm\nrepeat=0\n[global]\nsise=1\n", 3, "key 'repeat'");
	expect_error("first3.ini",
		     "[a]\nworkload=fork-storm\nworkers=0\n[global]\nsize=1Q\n", 3,
		     "key 'workers'");
	expect_error("first4.ini",
		     "[a]\nworkload=fork-storm\n[global]\nsize=1Q\n[b]\nworkers=0\n"
		     "workload=fork-storm\n", 4, "[global] key 'size'");
}
END_TEST

START_TEST(test_found_text_is_safe)
{
	char text[512];
	int n;

	n = snprintf(text, sizeof(text), "[c]\nworkload=fork-storm\nsize=");
	memset(text + n, '7', 150);
	strcpy(text + n + 150, "Q\n");
	expect_error("found.ini", text, 3, "...'");
	expect_error("found2.ini", "[c]\nworkload=fork-storm\nsize=\xc3\xa9t\xc3\xa9\n", 3,
		     "found '\\xc3\\xa9t\\xc3\\xa9'");
	{
		char err[40];
		struct ms_suite s;

		/* A small message buffer truncates but never overflows. */
		ck_assert_int_eq(ms_suite_load_mem(&s, "t.ini", "[c]\nsize=1\n", 11, err,
						   sizeof(err)), -EINVAL);
		ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
		ck_assert_int_eq(ms_suite_load_mem(&s, "t.ini", "[c]\nsize=1\n", 11, NULL, 0),
				 -EINVAL);
	}
}
END_TEST

static uint64_t rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Random bytes and random edits of a valid suite: either accepted or one well-formed line. */
START_TEST(test_random_inputs)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t vlen = sizeof(valid_suite) - 1;
	char buf[4096], err[1024];
	unsigned accepted = 0, rejected = 0;

	for (int i = 0; i < 3000; i++) {
		struct ms_suite s;
		size_t len;
		int ret;

		if (i % 3 == 0) {
			len = rng(&x) % sizeof(buf);
			for (size_t j = 0; j < len; j++)
				buf[j] = rng(&x) % 4 ? " =[]\n;#abz09xK\t"[rng(&x) % 16]
							 : (char)rng(&x);
		} else {
			memcpy(buf, valid_suite, vlen);
			len = i % 3 == 1 ? rng(&x) % (vlen + 1) : vlen;
			for (int k = 0; k < 3 && i % 3 == 2; k++)
				buf[rng(&x) % vlen] = (char)rng(&x);
		}
		ret = ms_suite_load_mem(&s, "fuzz.ini", buf, len, err, sizeof(err));
		if (!ret) {
			ck_assert_uint_gt(s.ncases, 0);
			accepted++;
			ms_suite_free(&s);
			continue;
		}
		rejected++;
		ck_assert_int_eq(ret, -EINVAL);
		ck_assert_msg(!strncmp(err, "fuzz.ini:", 9), "%s", err);
		ck_assert_msg(err[9] == ' ' || (err[9] >= '1' && err[9] <= '9'), "%s", err);
		ck_assert_msg(!strchr(err, '\n'), "%s", err);
	}
	ck_assert_uint_gt(accepted, 0);
	ck_assert_uint_gt(rejected, 0);
}
END_TEST

/* Worst cases at the size limit must not blow up (CK_DEFAULT_TIMEOUT catches a hang). */
START_TEST(test_big_inputs)
{
	size_t cap = 1 << 20, n;
	char *buf = malloc(cap);
	struct ms_suite s;
	char err[1024];

	ck_assert_ptr_nonnull(buf);
	/* Many keys in one section, every one a duplicate. */
	n = snprintf(buf, cap, "[c]\nworkload=fork-storm\n");
	while (n + 16 < cap)
		n += snprintf(buf + n, cap - n, "size=1M\n");
	ck_assert_int_eq(ms_suite_load_mem(&s, "dups.ini", buf, n, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "dups.ini:4: [c] duplicate key 'size'"), "%s", err);
	/* Many unknown global keys. */
	n = snprintf(buf, cap, "[global]\n");
	for (int i = 0; n + 32 < cap; i++)
		n += snprintf(buf + n, cap - n, "k%d=%d\n", i, i);
	ck_assert_int_eq(ms_suite_load_mem(&s, "keys.ini", buf, n, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "keys.ini:2: [global] unknown key 'k0'"), "%s", err);
	/* One line, one megabyte. */
	memset(buf, 'a', cap);
	ck_assert_int_eq(ms_suite_load_mem(&s, "line.ini", buf, cap, err, sizeof(err)),
			 -EINVAL);
	ck_assert_msg(strstr(err, "line.ini:1: line too long"), "%s", err);
	/* A million empty lines. */
	memset(buf, '\n', cap);
	ck_assert_int_eq(ms_suite_load_mem(&s, "nl.ini", buf, cap, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "nl.ini: no cases (every section other than [global] is a case)");
	free(buf);
}
END_TEST

static Suite *suite_suite(void)
{
	Suite *s = suite_create("suite");
	TCase *ok = tcase_create("valid");
	TCase *bad = tcase_create("errors");
	TCase *rob = tcase_create("robustness");

	tcase_add_test(ok, test_valid);
	tcase_add_test(ok, test_defaults);
	tcase_add_test(ok, test_derived_seed);
	tcase_add_test(ok, test_syntax_variants);
	tcase_add_test(ok, test_inject);
	tcase_add_test(bad, test_err_value_type);
	tcase_add_test(bad, test_err_overflow);
	tcase_add_test(bad, test_err_range);
	tcase_add_test(bad, test_err_duplicate_section);
	tcase_add_test(bad, test_err_duplicate_key);
	tcase_add_test(bad, test_err_unknown_key);
	tcase_add_test(bad, test_err_unknown_workload);
	tcase_add_test(bad, test_err_missing_workload);
	tcase_add_test(bad, test_err_global);
	tcase_add_test(bad, test_err_outside_section);
	tcase_add_test(bad, test_err_empty_value);
	tcase_add_test(bad, test_err_binary);
	tcase_add_test(bad, test_err_long_line);
	tcase_add_test(bad, test_err_whole_file);
	tcase_add_test(bad, test_err_too_large);
	tcase_add_test(bad, test_err_section_syntax);
	tcase_add_test(bad, test_err_syntax);
	tcase_add_test(bad, test_err_too_many_cases);
	tcase_add_test(bad, test_first_error_wins);
	tcase_add_test(bad, test_found_text_is_safe);
	tcase_add_test(rob, test_random_inputs);
	tcase_add_test(rob, test_big_inputs);
	suite_add_tcase(s, ok);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, rob);
	return s;
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	SRunner *sr;
	int failed;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_suite.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	sr = srunner_create(suite_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rmdir(tmpdir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

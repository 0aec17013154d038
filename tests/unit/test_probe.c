/* Unit tests of the kernel probe against the running kernel's own /sys and /proc. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include "mmstorm/journal.h"
#include "mmstorm/probe.h"

static const char *const features[] = {
	"thp", "hugetlb", "userfaultfd", "io_uring", "msharefs", "madv_split", "gup_test",
	"fault_injection", "fail_nth", "hwpoison", "pat_memtype_list", "cgroup2", "dev_mem",
	"pci_bars", "debugfs", "tracefs", "perf_events", "kernel_config",
};

#define NFEATURES (sizeof(features) / sizeof(features[0]))

static const char config_text[] =
	"#\n"
	"# Automatically generated file; DO NOT EDIT.\n"
	"#\n"
	"CONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\n"
	"CONFIG_TRANSPARENT_HUGEPAGE=y\n"
	"CONFIG_HZ=250\n"
	"CONFIG_LOCALVERSION=\"-mm\"\n"
	"# CONFIG_USERFAULTFD is not set\n"
	"CONFIG_NET=y\n"
	"CONFIG_EXT4_FS=m\n"
	"# CONFIG_SOUND is not set\n"
	"# a comment that is no option\n"
	"CONFIG_HUGETLBFS=y\n"
	"CONFIG_DEBUG_VM_PGTABLE=y";	/* no final newline */

static json_t *probe;

static void probe_once(void)
{
	if (!probe)
		probe = ms_probe();
	ck_assert_ptr_nonnull(probe);
}

START_TEST(test_every_feature)
{
	const char *name = features[_i], *detail;
	json_t *f, *avail;

	probe_once();
	ck_assert_uint_eq(json_object_size(probe), NFEATURES);
	f = json_object_get(probe, name);
	ck_assert_msg(json_is_object(f), "feature %s missing", name);
	avail = json_object_get(f, "available");
	ck_assert_msg(json_is_boolean(avail), "%s.available not a bool", name);
	detail = json_string_value(json_object_get(f, "detail"));
	ck_assert_msg(detail && *detail, "%s.detail empty", name);
}
END_TEST

static bool dir_exists(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static bool available(const char *name)
{
	return json_is_true(json_object_get(json_object_get(probe, name), "available"));
}

START_TEST(test_thp)
{
	static const char dir[] = "/sys/kernel/mm/transparent_hugepage";
	const char *mode;
	char want[64];

	probe_once();
	ck_assert_int_eq(available("thp"), dir_exists(dir));
	if (!dir_exists(dir))
		return;
	ck_assert_int_eq(ms_knob_read("/sys/kernel/mm/transparent_hugepage/defrag", want,
				      sizeof(want)), 0);
	mode = json_string_value(json_object_get(json_object_get(probe, "thp"), "defrag"));
	ck_assert_ptr_nonnull(mode);
	ck_assert_str_eq(mode, want);
	ck_assert_ptr_null(strchr(mode, '['));
}
END_TEST

START_TEST(test_hugetlb_sizes)
{
	json_t *sizes, *s;
	struct dirent *de;
	unsigned long kb;
	size_t i, ndirs = 0;
	DIR *d;

	probe_once();
	sizes = json_object_get(json_object_get(probe, "hugetlb"), "sizes");
	ck_assert(json_is_array(sizes));
	d = opendir("/sys/kernel/mm/hugepages");
	if (!d) {
		ck_assert_uint_eq(json_array_size(sizes), 0);
		ck_assert(!available("hugetlb"));
		return;
	}
	while ((de = readdir(d))) {
		bool found = false;

		if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		ndirs++;
		json_array_foreach(sizes, i, s)
			found |= json_integer_value(json_object_get(s, "size_kb")) ==
				 (json_int_t)kb;
		ck_assert_msg(found, "%s not in the probe", de->d_name);
	}
	closedir(d);
	ck_assert_uint_eq(json_array_size(sizes), ndirs);
	json_array_foreach(sizes, i, s) {
		ck_assert(json_is_integer(json_object_get(s, "nr")));
		ck_assert(json_is_integer(json_object_get(s, "free")));
		ck_assert(json_is_integer(json_object_get(s, "resv")));
		ck_assert(json_is_integer(json_object_get(s, "surplus")));
	}
}
END_TEST

START_TEST(test_madv_split_state)
{
	const char *state;

	probe_once();
	state = json_string_value(json_object_get(json_object_get(probe, "madv_split"),
						  "state"));
	ck_assert_ptr_nonnull(state);
	ck_assert(!strcmp(state, "present") || !strcmp(state, "absent") ||
		  !strcmp(state, "unknown"));
	ck_assert_int_eq(available("madv_split"), !strcmp(state, "present"));
}
END_TEST

START_TEST(test_simple_files)
{
	char boot[sizeof(((struct utsname *)0)->release) + 16];
	struct utsname u;
	struct stat st;

	probe_once();
	ck_assert_int_eq(available("fail_nth"), !access("/proc/self/fail-nth", R_OK | W_OK));
	ck_assert_int_eq(available("gup_test"), !stat("/sys/kernel/debug/gup_test", &st));
	ck_assert_int_eq(available("hwpoison"),
			 !stat("/proc/sys/vm/memory_failure_recovery", &st));
	ck_assert_int_eq(uname(&u), 0);
	snprintf(boot, sizeof(boot), "/boot/config-%s", u.release);
	ck_assert_int_eq(available("kernel_config"),
			 !access("/proc/config.gz", R_OK) || !access(boot, R_OK));
}
END_TEST

/* The probe reads; it never mounts (or unmounts) anything. */
START_TEST(test_probe_changes_no_mounts)
{
	char before[65536], after[65536];
	json_t *p;
	FILE *f;
	size_t n;

	f = fopen("/proc/self/mounts", "r");
	ck_assert_ptr_nonnull(f);
	n = fread(before, 1, sizeof(before) - 1, f);
	before[n] = '\0';
	fclose(f);
	p = ms_probe();
	ck_assert_ptr_nonnull(p);
	json_decref(p);
	f = fopen("/proc/self/mounts", "r");
	ck_assert_ptr_nonnull(f);
	n = fread(after, 1, sizeof(after) - 1, f);
	after[n] = '\0';
	fclose(f);
	ck_assert_str_eq(after, before);
}
END_TEST

START_TEST(test_print_table)
{
	char *out = NULL, line[512];
	size_t len = 0;
	int width = 0;
	FILE *f;

	probe_once();
	f = open_memstream(&out, &len);
	ck_assert_ptr_nonnull(f);
	ms_probe_print(probe, f);
	fclose(f);
	for (size_t i = 0; i < NFEATURES; i++)
		width = strlen(features[i]) > (size_t)width ? (int)strlen(features[i]) : width;
	for (size_t i = 0; i < NFEATURES; i++) {
		snprintf(line, sizeof(line), "\n%-*s  %-5s  %s\n", width, features[i],
			 available(features[i]) ? "yes" : "no",
			 json_string_value(json_object_get(json_object_get(probe, features[i]),
							   "detail")));
		ck_assert_msg(strstr(out, line), "no row '%s' in:\n%s", line + 1, out);
	}
	free(out);
}
END_TEST

START_TEST(test_kernel_identity)
{
	char cmdline[4096];
	struct utsname u;
	struct sysinfo si;
	json_t *k, *c, *m;
	ssize_t n;
	int fd;

	ck_assert_int_eq(uname(&u), 0);
	k = ms_probe_kernel(NULL);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(json_string_value(json_object_get(k, "release")), u.release);
	ck_assert_str_eq(json_string_value(json_object_get(k, "version")), u.version);
	ck_assert_str_eq(json_string_value(json_object_get(k, "machine")), u.machine);
	fd = open("/proc/cmdline", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	ck_assert_int_gt(n, 0);
	close(fd);
	cmdline[n] = '\0';
	cmdline[strcspn(cmdline, "\n")] = '\0';
	ck_assert_str_eq(json_string_value(json_object_get(k, "cmdline")), cmdline);
	json_decref(k);

	c = ms_probe_cpu();
	ck_assert_ptr_nonnull(c);
	ck_assert_int_ge(json_integer_value(json_object_get(c, "count")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "online")),
			 sysconf(_SC_NPROCESSORS_ONLN));
	ck_assert(json_is_string(json_object_get(c, "model")));
	json_decref(c);

	m = ms_probe_memory();
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(sysinfo(&si), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "total_bytes")),
			 (json_int_t)si.totalram * si.mem_unit);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "page_size_bytes")),
			 sysconf(_SC_PAGESIZE));
	json_decref(m);
}
END_TEST

static char tmpdir[PATH_MAX];

static void write_config(const char *path, bool gz)
{
	if (gz) {
		gzFile g = gzopen(path, "wb");

		ck_assert_ptr_nonnull(g);
		ck_assert_int_eq(gzwrite(g, config_text, sizeof(config_text) - 1),
				 (int)sizeof(config_text) - 1);
		ck_assert_int_eq(gzclose(g), Z_OK);
	} else {
		FILE *f = fopen(path, "w");

		ck_assert_ptr_nonnull(f);
		ck_assert_int_ge(fputs(config_text, f), 0);
		ck_assert_int_eq(fclose(f), 0);
	}
}

static void check_config(const char *path)
{
	static const char *const kept[][2] = {
		{ "CONFIG_TRANSPARENT_HUGEPAGE", "y" }, { "CONFIG_HZ", "250" },
		{ "CONFIG_LOCALVERSION", "-mm" }, { "CONFIG_USERFAULTFD", "n" },
		{ "CONFIG_HUGETLBFS", "y" }, { "CONFIG_DEBUG_VM_PGTABLE", "y" },
	};
	json_t *all, *mm;

	all = ms_kconfig_load(path, 0);
	mm = ms_kconfig_load(path, 1);
	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(mm);
	ck_assert_uint_eq(json_object_size(all), 10);
	ck_assert_uint_eq(json_object_size(mm), sizeof(kept) / sizeof(kept[0]));
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		ck_assert_str_eq(json_string_value(json_object_get(mm, kept[i][0])), kept[i][1]);
		ck_assert_str_eq(json_string_value(json_object_get(all, kept[i][0])), kept[i][1]);
	}
	ck_assert_ptr_null(json_object_get(mm, "CONFIG_NET"));
	ck_assert_ptr_null(json_object_get(mm, "CONFIG_SOUND"));
	ck_assert_ptr_null(json_object_get(mm, "CONFIG_CC_VERSION_TEXT"));
	ck_assert_str_eq(json_string_value(json_object_get(all, "CONFIG_CC_VERSION_TEXT")),
			 "gcc (Debian 12.2.0-14) 12.2.0");
	ck_assert_str_eq(json_string_value(json_object_get(all, "CONFIG_EXT4_FS")), "m");
	ck_assert_str_eq(json_string_value(json_object_get(all, "CONFIG_SOUND")), "n");
	json_decref(all);
	json_decref(mm);
}

START_TEST(test_kconfig_load)
{
	char plain[PATH_MAX + 16], gz[PATH_MAX + 16], bad[PATH_MAX + 16];
	json_t *k, *cfg;
	FILE *f;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mmstorm-tp-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(plain, sizeof(plain), "%s/config", tmpdir);
	snprintf(gz, sizeof(gz), "%s/config.gz", tmpdir);
	snprintf(bad, sizeof(bad), "%s/truncated.gz", tmpdir);
	write_config(plain, false);
	write_config(gz, true);
	check_config(plain);
	check_config(gz);

	/* The identity block takes an explicit config and keeps the MM-relevant part. */
	k = ms_probe_kernel(plain);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(json_string_value(json_object_get(k, "config_path")), plain);
	cfg = json_object_get(k, "config");
	ck_assert_str_eq(json_string_value(json_object_get(cfg, "CONFIG_HZ")), "250");
	ck_assert_ptr_null(json_object_get(cfg, "CONFIG_NET"));
	json_decref(k);

	/* Unreadable: missing, a directory, a gzip stream cut short. */
	f = fopen(bad, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fwrite("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x73", 1, 11, f), 11);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(ms_kconfig_load(bad, 0));
	ck_assert_ptr_null(ms_kconfig_load("/nonexistent/config", 0));
	ck_assert_ptr_null(ms_kconfig_load(tmpdir, 0));

	ck_assert_int_eq(unlink(plain), 0);
	ck_assert_int_eq(unlink(gz), 0);
	ck_assert_int_eq(unlink(bad), 0);
	ck_assert_int_eq(rmdir(tmpdir), 0);
}
END_TEST

static Suite *probe_suite(void)
{
	Suite *s = suite_create("probe");
	TCase *tc = tcase_create("probe");

	tcase_add_loop_test(tc, test_every_feature, 0, NFEATURES);
	tcase_add_test(tc, test_thp);
	tcase_add_test(tc, test_hugetlb_sizes);
	tcase_add_test(tc, test_madv_split_state);
	tcase_add_test(tc, test_simple_files);
	tcase_add_test(tc, test_probe_changes_no_mounts);
	tcase_add_test(tc, test_print_table);
	tcase_add_test(tc, test_kernel_identity);
	tcase_add_test(tc, test_kconfig_load);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(probe_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

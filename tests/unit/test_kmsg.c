/* Unit tests of the kernel log watch: classification of real kernel lines, excerpt, /dev/kmsg. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mmstorm/kmsg.h"

struct kline {
	const char *line;
	enum ms_kmsg_class cls;
	const char *pattern;
};

/* Lines as the kernel prints them (message text, no kmsg prefix). */
static const struct kline lines[] = {
	{ "BUG: unable to handle page fault for address: ffff888000000000", MS_KMSG_CRASH,
	  "BUG:" },
	{ "BUG: KASAN: use-after-free in folio_add_anon_rmap_ptes+0x5c/0x2b0", MS_KMSG_CRASH,
	  "BUG:" },
	{ "BUG: sleeping function called from invalid context at mm/memory.c:6250",
	  MS_KMSG_CRASH, "BUG:" },
	{ "kernel BUG at mm/huge_memory.c:2887!", MS_KMSG_CRASH, "kernel BUG at" },
	{ "Oops: 0002 [#1] PREEMPT SMP NOPTI", MS_KMSG_CRASH, "Oops" },
	{ "Oops: general protection fault, probably for non-canonical address "
	  "0xdffffc0000000000: 0000 [#1] PREEMPT SMP KASAN NOPTI", MS_KMSG_CRASH, "Oops" },
	{ "Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP", MS_KMSG_CRASH, "Oops" },
	{ "general protection fault, probably for non-canonical address 0xdead000000000122: "
	  "0000 [#1] SMP PTI", MS_KMSG_CRASH, "general protection fault" },
	{ "Kernel panic - not syncing: Fatal exception", MS_KMSG_CRASH, "Kernel panic" },
	{ "Unable to handle kernel paging request at virtual address dead000000000108",
	  MS_KMSG_CRASH, "Unable to handle" },
	{ "KASAN: null-ptr-deref in range [0x0000000000000008-0x000000000000000f]",
	  MS_KMSG_CRASH, "KASAN:" },
	{ "WARNING: CPU: 1 PID: 4242 at mm/gup.c:123 try_grab_folio+0x1a/0x2c0",
	  MS_KMSG_FAIL, "WARNING:" },
	{ "WARNING: possible circular locking dependency detected", MS_KMSG_FAIL,
	  "WARNING:" },
	{ "mmstorm-selftest WARNING: test", MS_KMSG_FAIL, "WARNING:" },
	/* BUG: lines after which the kernel carries on: FAIL, not CRASH (see kmsg.c). */
	{ "BUG: Bad page state in process fork-storm  pfn:12a400", MS_KMSG_FAIL,
	  "BUG: Bad page" },
	{ "BUG: Bad page map in process a.out  pte:8000000105a3f225 pmd:10a5b1067",
	  MS_KMSG_FAIL, "BUG: Bad page" },
	{ "BUG: Bad rss-counter state mm:00000000c5a4e1f0 type:MM_ANONPAGES val:-1",
	  MS_KMSG_FAIL, "BUG: Bad rss-counter" },
	{ "BUG: non-zero pgtables_bytes on freeing mm: 4096", MS_KMSG_FAIL,
	  "BUG: non-zero pgtables_bytes" },
	{ "page dumped because: Bad page state", MS_KMSG_FAIL, "Bad page" },
	{ "x86/PAT: a.out:1234 freeing invalid memtype [mem 0xfd000000-0xfd000fff]",
	  MS_KMSG_FAIL, "freeing invalid memtype" },
	{ "list_add corruption. prev->next should be next (ffff888100a4e3c8), but was "
	  "0000000000000000. (prev=ffff888100a4e3c8).", MS_KMSG_FAIL, "list_add corruption" },
	{ "refcount_t: underflow; use-after-free.", MS_KMSG_FAIL, "refcount_t:" },
	{ " untrack_pfn+0x1c/0x120", MS_KMSG_FAIL, "untrack_pfn" },
	{ " page_table_check_set+0x1ab/0x1c0", MS_KMSG_FAIL, "page_table_check" },
	/* Harmless: user-space faults, look-alike words, ordinary messages. */
	{ "traps: a.out[1234] general protection fault ip:401136 sp:7ffc9a1c3e10 error:0 in "
	  "a.out[401000+1000]", MS_KMSG_NONE, NULL },
	{ "a.out[1234]: segfault at 0 ip 0000000000401136 sp 00007ffc9a1c3e10 error 6 in "
	  "a.out[401000+1000] likely on CPU 1 (core 1, socket 0)", MS_KMSG_NONE, NULL },
	{ "Kernel command line: BOOT_IMAGE=/vmlinuz root=/dev/vda page_table_check=on",
	  MS_KMSG_NONE, NULL },
	{ "usb 1-1: DEBUG: descriptor 3", MS_KMSG_NONE, NULL },
	{ "NOWARNING: not a warning", MS_KMSG_NONE, NULL },
	{ "ACPI Warning: SystemIO range 0x0000000000000B00-0x0000000000000B08 conflicts",
	  MS_KMSG_NONE, NULL },
	{ "Oopsie: not an oops", MS_KMSG_NONE, NULL },
	{ "------------[ cut here ]------------", MS_KMSG_NONE, NULL },
	{ "EXT4-fs (vda): mounted filesystem with ordered data mode", MS_KMSG_NONE, NULL },
	{ "", MS_KMSG_NONE, NULL },
};

START_TEST(test_classify)
{
	const struct kline *k = &lines[_i];
	const char *pattern = "unset";

	ck_assert_msg(ms_kmsg_classify(k->line, &pattern) == k->cls, "class of '%s'", k->line);
	if (k->pattern)
		ck_assert_str_eq(pattern, k->pattern);
	else
		ck_assert_ptr_null(pattern);
	ck_assert_int_eq(ms_kmsg_classify(k->line, NULL), k->cls);
}
END_TEST

static void watch_init(struct ms_kmsg_watch *w)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->hit_at = -1;
}

static void feed_fmt(struct ms_kmsg_watch *w, const char *fmt, int i)
{
	char line[64];

	snprintf(line, sizeof(line), fmt, i);
	ms_kmsg_feed(w, line);
}

START_TEST(test_excerpt_around_hit)
{
	struct ms_kmsg_watch w;
	char want[64];
	int i, before;

	watch_init(&w);
	for (i = 0; i < 15; i++)
		feed_fmt(&w, "before %d", i);
	ck_assert_int_eq(w.worst, MS_KMSG_NONE);
	ck_assert_int_eq(w.hit_at, -1);
	before = w.nlines;
	ck_assert_int_gt(before, 0);
	ck_assert_int_lt(before, 15);
	ms_kmsg_feed(&w, "WARNING: CPU: 0 PID: 1 at mm/memory.c:1 f+0x0/0x10");
	for (i = 0; i < 60; i++)
		feed_fmt(&w, "after %d", i);
	/* A later, worse line: class and pattern follow it, the first hit and excerpt do not. */
	ms_kmsg_feed(&w, "BUG: unable to handle page fault for address: 0");

	ck_assert_int_eq(w.total, 15 + 1 + 60 + 1);
	ck_assert_int_eq(w.worst, MS_KMSG_CRASH);
	ck_assert_str_eq(w.pattern, "BUG:");
	ck_assert_str_eq(w.first, "WARNING: CPU: 0 PID: 1 at mm/memory.c:1 f+0x0/0x10");
	ck_assert_int_eq(w.nlines, MS_KMSG_EXCERPT_LINES);
	ck_assert_int_eq(w.hit_at, before);
	ck_assert_str_eq(w.excerpt[w.hit_at], w.first);
	ck_assert_uint_eq(w.after_hit, MS_KMSG_EXCERPT_LINES - before - 1);
	/* In order: the last lines before the hit, the hit, the first lines after it. */
	for (i = 0; i < before; i++) {
		snprintf(want, sizeof(want), "before %d", 15 - before + i);
		ck_assert_str_eq(w.excerpt[i], want);
	}
	for (i = before + 1; i < MS_KMSG_EXCERPT_LINES; i++) {
		snprintf(want, sizeof(want), "after %d", i - before - 1);
		ck_assert_str_eq(w.excerpt[i], want);
	}
}
END_TEST

START_TEST(test_excerpt_short)
{
	struct ms_kmsg_watch w;
	char longline[400];

	watch_init(&w);
	ms_kmsg_feed(&w, "a");
	ms_kmsg_feed(&w, "b");
	ms_kmsg_feed(&w, "Oops: 0000 [#1] SMP");
	ms_kmsg_feed(&w, "RIP: 0010:zap_pte_range+0x1a/0x900");
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	ms_kmsg_feed(&w, longline);
	ck_assert_int_eq(w.worst, MS_KMSG_CRASH);
	ck_assert_str_eq(w.pattern, "Oops");
	ck_assert_int_eq(w.nlines, 5);
	ck_assert_int_eq(w.hit_at, 2);
	ck_assert_str_eq(w.excerpt[0], "a");
	ck_assert_str_eq(w.excerpt[1], "b");
	ck_assert_str_eq(w.excerpt[3], "RIP: 0010:zap_pte_range+0x1a/0x900");
	ck_assert_uint_eq(strlen(w.excerpt[4]), sizeof(w.excerpt[4]) - 1);
	ck_assert_uint_eq(w.after_hit, 2);
}
END_TEST

/* Lines a case predicted do not count; one more than predicted and they all count again. */
START_TEST(test_discount_predicted)
{
	const char *pat = "x86/PAT: fzw:7 freeing invalid memtype [mem 0x00000000-0x00000fff]";
	struct ms_kmsg_watch w;

	watch_init(&w);
	ms_kmsg_feed(&w, "a");
	ms_kmsg_feed(&w, pat);
	ms_kmsg_feed(&w, pat);
	ck_assert_int_eq(w.worst, MS_KMSG_FAIL);
	ms_kmsg_discount(&w, "freeing invalid memtype", 1);
	ck_assert_int_eq(w.worst, MS_KMSG_FAIL);
	ms_kmsg_discount(&w, "freeing invalid memtype", 2);
	ck_assert_int_eq(w.worst, MS_KMSG_NONE);
	ck_assert_str_eq(w.first, "");
	/* Other lines keep their verdict, and become the first. */
	watch_init(&w);
	ms_kmsg_feed(&w, pat);
	ms_kmsg_feed(&w, "WARNING: CPU: 0 PID: 1 at mm/memory.c:1 f+0x0/0x10");
	ms_kmsg_discount(&w, "freeing invalid memtype", 5);
	ck_assert_int_eq(w.worst, MS_KMSG_FAIL);
	ck_assert_str_eq(w.first, "WARNING: CPU: 0 PID: 1 at mm/memory.c:1 f+0x0/0x10");
	ck_assert_str_eq(w.pattern, "WARNING:");
}
END_TEST

START_TEST(test_no_hit_keeps_recent)
{
	struct ms_kmsg_watch w;
	char want[64];
	unsigned i;

	watch_init(&w);
	for (i = 0; i < 100; i++)
		feed_fmt(&w, "line %d", i);
	ck_assert_int_eq(w.worst, MS_KMSG_NONE);
	ck_assert_ptr_null(w.pattern);
	ck_assert_str_eq(w.first, "");
	ck_assert_int_eq(w.hit_at, -1);
	ck_assert_uint_eq(w.total, 100);
	ck_assert_uint_gt(w.nlines, 0);
	for (i = 0; i < w.nlines; i++) {
		snprintf(want, sizeof(want), "line %u", 100 - w.nlines + i);
		ck_assert_str_eq(w.excerpt[i], want);
	}
}
END_TEST

/* The real thing: a line written to /dev/kmsg comes back through the watch, classified. */
START_TEST(test_dev_kmsg)
{
	char line[128], tag[64];
	struct ms_kmsg_watch w;
	bool seen_old = false, seen_new = false;
	int fd, ret;

	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("# SKIP test_dev_kmsg: /dev/kmsg not writable: %s\n", strerror(errno));
		return;
	}
	snprintf(tag, sizeof(tag), "pid %d", (int)getpid());
	/* Logged before the watch starts: must not be seen. */
	snprintf(line, sizeof(line), "mmstorm-selftest old line %s\n", tag);
	ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	ret = ms_kmsg_start(&w);
	if (ret) {
		close(fd);
		printf("# SKIP test_dev_kmsg: /dev/kmsg not readable: %s\n", strerror(-ret));
		return;
	}
	ck_assert_int_ge(w.fd, 0);
	snprintf(line, sizeof(line), "mmstorm-selftest WARNING: test %s\n", tag);
	ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	ms_kmsg_poll(&w);

	/*
	 * A line user space writes carries the LOG_USER facility: it is read and kept as context,
	 * but is no finding, however alarming its words (the kernel logs with facility 0).
	 */
	ck_assert_uint_ge(w.total, 1);
	line[strlen(line) - 1] = '\0';
	for (unsigned i = 0; i < w.nlines; i++) {
		seen_old |= strstr(w.excerpt[i], "old line") && strstr(w.excerpt[i], tag);
		seen_new |= !strcmp(w.excerpt[i], line);
	}
	ck_assert(!seen_old);
	ck_assert(seen_new);
	ck_assert(!strstr(w.first, "mmstorm-selftest"));
	/* Nothing new: a second poll returns at once and changes nothing it had. */
	ms_kmsg_poll(&w);
	ck_assert(!strstr(w.first, "mmstorm-selftest"));
	ms_kmsg_stop(&w);
	ck_assert_int_eq(w.fd, -1);
	ms_kmsg_poll(&w);
}
END_TEST

static Suite *kmsg_suite(void)
{
	Suite *s = suite_create("kmsg");
	TCase *tc = tcase_create("kmsg");

	tcase_add_loop_test(tc, test_classify, 0, sizeof(lines) / sizeof(lines[0]));
	tcase_add_test(tc, test_excerpt_around_hit);
	tcase_add_test(tc, test_excerpt_short);
	tcase_add_test(tc, test_no_hit_keeps_recent);
	tcase_add_test(tc, test_discount_predicted);
	tcase_add_test(tc, test_dev_kmsg);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(kmsg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

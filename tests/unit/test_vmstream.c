/* Unit tests for the guest event stream parser and the kernel console watch of `mmstorm vm`. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vm/vm.h"

#define MAX_SEEN 64

struct seen {
	unsigned nevents, nbad;
	json_t *events[MAX_SEEN];
	char why[MAX_SEEN][256];
	char excerpt[MAX_SEEN][512];
	unsigned long lineno[MAX_SEEN];
};

static void on_event(void *arg, json_t *ev)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->nevents, MAX_SEEN);
	s->events[s->nevents++] = ev;
}

static void on_bad(void *arg, unsigned long lineno, const char *why, const char *excerpt)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->nbad, MAX_SEEN);
	snprintf(s->why[s->nbad], sizeof(s->why[0]), "%s", why);
	snprintf(s->excerpt[s->nbad], sizeof(s->excerpt[0]), "%s", excerpt);
	s->lineno[s->nbad++] = lineno;
}

static struct ms_vmstream stream;
static struct seen seen;

static void stream_setup(void)
{
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(ms_vmstream_init(&stream, on_event, on_bad, &seen), 0);
}

static void stream_teardown(void)
{
	for (unsigned i = 0; i < seen.nevents; i++)
		json_decref(seen.events[i]);
	ms_vmstream_free(&stream);
}

static void feed(const char *s)
{
	ms_vmstream_feed(&stream, s, strlen(s));
}

#define LOG_EV(msg) "{\"ev\":\"log\",\"t_ns\":5,\"msg\":\"" msg "\"}"

static const char *msg_of(unsigned i)
{
	return json_string_value(json_object_get(seen.events[i], "msg"));
}

START_TEST(test_valid_lines)
{
	feed(LOG_EV("one") "\n" LOG_EV("two") "\r\n\n   \n" LOG_EV("three") "\n");
	ck_assert_uint_eq(seen.nevents, 3);
	ck_assert_uint_eq(seen.nbad, 0);
	ck_assert_str_eq(msg_of(0), "one");
	ck_assert_str_eq(msg_of(1), "two");
	ck_assert_str_eq(msg_of(2), "three");
	ck_assert_uint_eq(stream.lineno, 5);
	ck_assert_uint_eq(stream.nevents, 3);
}
END_TEST

/* A serial line hands over bytes in any grouping: one at a time must give the same events. */
START_TEST(test_byte_by_byte)
{
	const char *text = LOG_EV("a") "\n" LOG_EV("b") "\n";

	for (const char *p = text; *p; p++)
		ms_vmstream_feed(&stream, p, 1);
	ck_assert_uint_eq(seen.nevents, 2);
	ck_assert_str_eq(msg_of(1), "b");
	ck_assert_uint_eq(seen.nbad, 0);
}
END_TEST

START_TEST(test_bad_lines_reported_and_skipped)
{
	feed("{\"ev\":\"log\",\"t_ns\":5,\"msg\":\"x\"\n");	/* unterminated */
	feed("[1,2,3]\n");
	feed("{\"ev\":\"log\",\"t_ns\":-1,\"msg\":\"x\"}\n");	/* fails validation */
	feed("{\"ev\":\"nonsense\",\"t_ns\":1}\n");
	feed("{\"ev\":\"log\",\"ev\":\"log\",\"t_ns\":1,\"msg\":\"x\"}\n");	/* duplicate key */
	feed("{\"ev\":\"log\",\"t_ns\":1,\"msg\":\"\xff\xfe\"}\n");	/* not UTF-8 */
	feed(LOG_EV("survivor") "\n");
	ck_assert_uint_eq(seen.nbad, 6);
	ck_assert_uint_eq(seen.nevents, 1);
	ck_assert_str_eq(msg_of(0), "survivor");
	ck_assert_ptr_nonnull(strstr(seen.why[0], "invalid JSON"));
	ck_assert_str_eq(seen.why[1], "not a JSON object");
	ck_assert_ptr_nonnull(strstr(seen.why[2], "invalid event"));
	ck_assert_ptr_nonnull(strstr(seen.why[2], "t_ns"));
	ck_assert_ptr_nonnull(strstr(seen.why[3], "unknown event kind"));
	for (unsigned i = 0; i < seen.nbad; i++)
		ck_assert_uint_eq(seen.lineno[i], i + 1);
	/* The excerpt of the non-UTF-8 line is escaped, so it can go into JSON as is. */
	ck_assert_ptr_nonnull(strstr(seen.excerpt[5], "\\xff\\xfe"));
}
END_TEST

START_TEST(test_control_bytes)
{
	static const char line[] = "{\"ev\":\"log\",\"t_ns\":1,\0\"msg\":\"x\"}\n";

	ms_vmstream_feed(&stream, line, sizeof(line) - 1);
	feed("\x1b[0m" LOG_EV("esc") "\n");
	ck_assert_uint_eq(seen.nevents, 0);
	ck_assert_uint_eq(seen.nbad, 2);
	ck_assert_str_eq(seen.why[0], "control or NUL bytes");
	ck_assert_str_eq(seen.why[1], "control or NUL bytes");
	ck_assert_ptr_nonnull(strstr(seen.excerpt[0], "\\x00"));
}
END_TEST

/*
 * A valid event of exactly total bytes (newline not counted): strings are at most 64 KiB
 * each in an event, so the padding is an array of them.
 */
static char *padded_event(size_t total)
{
	static const char head[] = "{\"ev\":\"log\",\"t_ns\":1,\"msg\":\"m\",\"pad\":[\"";
	static const size_t chunk = 60000;
	char *buf = malloc(total + 2), *p = buf, *end = buf + total;

	ck_assert_ptr_nonnull(buf);
	p = mempcpy(p, head, sizeof(head) - 1);
	/* chunk 'a's, then "," between strings, and "]}" at the end */
	while ((size_t)(end - p) > chunk + 3 + 3) {
		memset(p, 'a', chunk);
		p = mempcpy(p + chunk, "\",\"", 3);
	}
	memset(p, 'b', (size_t)(end - p) - 3);
	memcpy(end - 3, "\"]}", 3);
	buf[total] = '\n';
	buf[total + 1] = '\0';
	return buf;
}

START_TEST(test_line_limit)
{
	char *exact = padded_event(MS_VMSTREAM_LINE_MAX);
	char *over = padded_event(MS_VMSTREAM_LINE_MAX + 1);

	feed(exact);
	ck_assert_uint_eq(seen.nevents, 1);
	ck_assert_uint_eq(seen.nbad, 0);
	/* in pieces, so the overflow happens across feeds */
	ms_vmstream_feed(&stream, over, 1000);
	ms_vmstream_feed(&stream, over + 1000, MS_VMSTREAM_LINE_MAX - 1000);
	ms_vmstream_feed(&stream, over + MS_VMSTREAM_LINE_MAX,
			 strlen(over) - MS_VMSTREAM_LINE_MAX);
	feed(LOG_EV("after") "\n");
	ck_assert_uint_eq(seen.nbad, 1);
	ck_assert_str_eq(seen.why[0], "line longer than 8 MiB");
	ck_assert_uint_eq(seen.lineno[0], 2);
	ck_assert_uint_eq(seen.nevents, 2);
	ck_assert_str_eq(msg_of(1), "after");
	ck_assert_uint_eq(stream.lineno, 3);
	free(exact);
	free(over);
}
END_TEST

START_TEST(test_huge_line_without_newline)
{
	size_t len = 3 * MS_VMSTREAM_LINE_MAX;
	char *junk = malloc(len);

	ck_assert_ptr_nonnull(junk);
	memset(junk, '{', len);
	ms_vmstream_feed(&stream, junk, len);
	ms_vmstream_finish(&stream);
	/* reported when it went over the limit; the rest up to the end is dropped silently */
	ck_assert_uint_eq(seen.nbad, 1);
	ck_assert_str_eq(seen.why[0], "line longer than 8 MiB");
	free(junk);
}
END_TEST

START_TEST(test_truncated_at_end)
{
	feed(LOG_EV("whole") "\n{\"ev\":\"log\",\"t_");
	ck_assert_uint_eq(seen.nbad, 0);
	ms_vmstream_finish(&stream);
	ck_assert_uint_eq(seen.nevents, 1);
	ck_assert_uint_eq(seen.nbad, 1);
	ck_assert_str_eq(seen.why[0], "truncated line (stream ended)");
	/* the next boot's stream starts clean */
	feed(LOG_EV("next") "\n");
	ck_assert_uint_eq(seen.nevents, 2);
	ck_assert_uint_eq(seen.nbad, 1);
}
END_TEST

START_TEST(test_printable)
{
	char out[16];

	ms_vm_printable(out, sizeof(out), "ab\n\x01\xff", 5);
	ck_assert_str_eq(out, "ab\\x0a\\x01\\xff");
	/* never a partial escape at the cut */
	ms_vm_printable(out, 6, "a\x01\x02", 3);
	ck_assert_str_eq(out, "a\\x01");
	ms_vm_printable(out, 1, "abc", 3);
	ck_assert_str_eq(out, "");
}
END_TEST

/* ---- console watch ---- */

static struct ms_vmcon *con;

static void con_setup(void)
{
	con = malloc(sizeof(*con));
	ck_assert_ptr_nonnull(con);
	ms_vmcon_init(con);
}

static void con_teardown(void)
{
	free(con);
}

static void con_feed(const char *s)
{
	ms_vmcon_feed(con, s, strlen(s));
}

static void con_lines(unsigned from, unsigned n)
{
	char line[64];

	for (unsigned i = from; i < from + n; i++) {
		snprintf(line, sizeof(line), "[    1.%06u] line %u\r\n", i, i);
		con_feed(line);
	}
}

START_TEST(test_console_panic_excerpt)
{
	json_t *ex;

	con_lines(0, 100);
	ck_assert(!con->hit);
	con_feed("[    2.000000] Kernel panic - not syncing: sysrq triggered crash\r\n");
	ck_assert(con->hit);
	ck_assert_str_eq(con->first, "[    2.000000] Kernel panic - not syncing: sysrq triggered "
			 "crash");
	con_lines(100, 200);
	ex = ms_vmcon_excerpt(con);
	ck_assert_uint_eq(json_array_size(ex), MS_VMCON_EXCERPT);
	/* lines before the hit, the hit, then what followed */
	ck_assert_str_eq(json_string_value(json_array_get(ex, 0)), "[    1.000088] line 88");
	ck_assert_str_eq(json_string_value(json_array_get(ex, MS_VMCON_BEFORE)), con->first);
	ck_assert_str_eq(json_string_value(json_array_get(ex, MS_VMCON_BEFORE + 1)),
			 "[    1.000100] line 100");
	json_decref(ex);
}
END_TEST

START_TEST(test_console_userspace_quotes_ignored)
{
	json_t *ex;

	/* KTAP from the agent may quote kernel messages; only timestamped lines are the kernel's */
	con_feed("# kmsg CRASH: BUG: unable to handle page fault\n");
	con_feed("not ok 3 x # Kernel panic - not syncing\n");
	ck_assert(!con->hit);
	con_feed("[   12.5] BUG: unable to handle page fault for address: 0000000000000000\n");
	ck_assert(con->hit);
	ex = ms_vmcon_excerpt(con);
	ck_assert_uint_eq(json_array_size(ex), 3);
	json_decref(ex);
}
END_TEST

START_TEST(test_console_mark_and_tail)
{
	json_t *ex;

	con_feed("[    1.0] Oops: general protection fault\n");
	ck_assert(con->hit);
	ms_vmcon_mark(con);
	ck_assert(!con->hit);
	ck_assert_str_eq(con->first, "");
	con_lines(0, 100);
	ex = ms_vmcon_excerpt(con);
	ck_assert_uint_eq(json_array_size(ex), 40);
	ck_assert_str_eq(json_string_value(json_array_get(ex, 39)), "[    1.000099] line 99");
	json_decref(ex);
}
END_TEST

START_TEST(test_console_long_and_binary_lines)
{
	char *big = malloc(3 * MS_VMCON_LINE_MAX);
	json_t *ex;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 3 * MS_VMCON_LINE_MAX);
	ms_vmcon_feed(con, big, 3 * MS_VMCON_LINE_MAX);
	ms_vmcon_feed(con, "\n\xc3\x28\x01z\n", 6);
	ex = ms_vmcon_excerpt(con);
	/* long lines are cut into pieces; bytes JSON cannot carry are escaped */
	ck_assert_uint_ge(json_array_size(ex), 4);
	for (size_t i = 0; i < json_array_size(ex); i++)
		ck_assert_uint_lt(strlen(json_string_value(json_array_get(ex, i))),
				  MS_VMCON_LINE_MAX);
	ck_assert_str_eq(json_string_value(json_array_get(ex, json_array_size(ex) - 1)),
			 "\\xc3(\\x01z");
	json_decref(ex);
	free(big);
}
END_TEST

static Suite *vmstream_suite(void)
{
	Suite *s = suite_create("vmstream");
	TCase *t = tcase_create("stream");
	TCase *c = tcase_create("console");

	tcase_add_checked_fixture(t, stream_setup, stream_teardown);
	tcase_add_test(t, test_valid_lines);
	tcase_add_test(t, test_byte_by_byte);
	tcase_add_test(t, test_bad_lines_reported_and_skipped);
	tcase_add_test(t, test_control_bytes);
	tcase_add_test(t, test_line_limit);
	tcase_add_test(t, test_huge_line_without_newline);
	tcase_add_test(t, test_truncated_at_end);
	tcase_add_test(t, test_printable);
	suite_add_tcase(s, t);
	tcase_add_checked_fixture(c, con_setup, con_teardown);
	tcase_add_test(c, test_console_panic_excerpt);
	tcase_add_test(c, test_console_userspace_quotes_ignored);
	tcase_add_test(c, test_console_mark_and_tail);
	tcase_add_test(c, test_console_long_and_binary_lines);
	suite_add_tcase(s, c);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmstream_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

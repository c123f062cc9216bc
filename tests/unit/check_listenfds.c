/*
 * check_listenfds.c - reading LISTEN_FDS and LISTEN_PID: the count for
 * this process, none for another's, errors for anything but a plain
 * positive decimal, and the cap.
 */
#include "config.h"

#include <check.h>
#include <errno.h>

#include "pp_listenfds.h"
#include "suite.h"

START_TEST(counts)
{
	ck_assert_int_eq(pp_listen_fds_parse("1", "1234", 1234), 1);
	ck_assert_int_eq(pp_listen_fds_parse("3", "1234", 1234), 3);
	ck_assert_int_eq(pp_listen_fds_parse("007", "01234", 1234), 7);
	/* LISTEN_PID unset or empty: taken as ours (the manual's rule). */
	ck_assert_int_eq(pp_listen_fds_parse("2", NULL, 1234), 2);
	ck_assert_int_eq(pp_listen_fds_parse("2", "", 1234), 2);
	/* Meant for another process, or nothing passed. */
	ck_assert_int_eq(pp_listen_fds_parse("2", "1235", 1234), 0);
	ck_assert_int_eq(pp_listen_fds_parse("junk", "1235", 1234), 0);
	ck_assert_int_eq(pp_listen_fds_parse(NULL, "1234", 1234), 0);
	ck_assert_int_eq(pp_listen_fds_parse("", NULL, 1234), 0);
	ck_assert_int_eq(pp_listen_fds_parse(NULL, NULL, 1234), 0);
}
END_TEST

START_TEST(strict)
{
	static const char *const bad[] = { "0",  "-1", "+1",  " 1",        "1 ",
					   "1x", "x1", "0x3", "2147483645" };
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pp_listen_fds_parse(bad[i], "1234", 1234) ==
				      -EINVAL,
			      "LISTEN_FDS '%s'", bad[i]);
	ck_assert_int_eq(pp_listen_fds_parse("1", "1234x", 1234), -EINVAL);
	ck_assert_int_eq(pp_listen_fds_parse("1", "-1234", 1234), -EINVAL);
	ck_assert_int_eq(pp_listen_fds_parse("1", " 1234", 1234), -EINVAL);
	ck_assert_int_eq(
		pp_listen_fds_parse("1", "99999999999999999999999", 1234),
		-EINVAL);
}
END_TEST

START_TEST(cap)
{
	ck_assert_int_eq(pp_listen_fds_parse("4096", NULL, 1), 4096);
	ck_assert_int_eq(pp_listen_fds_parse("4097", NULL, 1),
			 PP_LISTEN_FDS_MAX);
	ck_assert_int_eq(pp_listen_fds_parse("2147483644", NULL, 1),
			 PP_LISTEN_FDS_MAX);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("listenfds");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, counts);
	tcase_add_test(tc, strict);
	tcase_add_test(tc, cap);
	return pp_suite_run(s, tc);
}

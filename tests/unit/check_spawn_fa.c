/*
 * check_spawn_fa.c - posix_spawn file actions read back from libc's
 * object, and the numbers a descriptor has in the child after them.
 */
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <string.h>

#include "spawn_fa.h"
#include "suite.h"

static struct pp_faplan plan;

static void
act(enum pp_faop op, int fd, int newfd)
{
	plan.a[plan.n].op = op;
	plan.a[plan.n].fd = fd;
	plan.a[plan.n++].newfd = newfd;
}

START_TEST(read_back)
{
	int (*closefrom)(posix_spawn_file_actions_t *, int) =
		(int (*)(posix_spawn_file_actions_t *, int))dlsym(
			RTLD_DEFAULT,
			"posix_spawn_file_actions_addclosefrom_np");
	posix_spawn_file_actions_t fa;
	struct pp_faplan p;
	size_t n = 4;

	ck_assert(pp_fa_read(NULL, &p));
	ck_assert_uint_eq(p.n, 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, 5, 0);
	posix_spawn_file_actions_adddup2(&fa, 5, 1);
	posix_spawn_file_actions_addclose(&fa, 6);
	posix_spawn_file_actions_addopen(&fa, 7, "/dev/null", O_RDONLY, 0);
	if (closefrom != NULL && closefrom(&fa, 10) == 0)
		n++;
#if defined(__GLIBC__)
	ck_assert(pp_fa_read(&fa, &p));
	ck_assert_uint_eq(p.n, n);
	ck_assert_int_eq(p.a[0].op, PP_FA_DUP2);
	ck_assert_int_eq(p.a[0].fd, 5);
	ck_assert_int_eq(p.a[0].newfd, 0);
	ck_assert_int_eq(p.a[1].newfd, 1);
	ck_assert_int_eq(p.a[2].op, PP_FA_CLOSE);
	ck_assert_int_eq(p.a[2].fd, 6);
	ck_assert_int_eq(p.a[3].op, PP_FA_OPEN);
	ck_assert_int_eq(p.a[3].fd, 7);
	if (n == 5) {
		ck_assert_int_eq(p.a[4].op, PP_FA_CLOSEFROM);
		ck_assert_int_eq(p.a[4].fd, 10);
	}
#else
	/* Another libc: not understood, so nothing is handed over. */
	ck_assert(!pp_fa_read(&fa, &p));
#endif
	posix_spawn_file_actions_destroy(&fa);
}
END_TEST

START_TEST(fate_exec_only)
{
	int out[PP_FA_COPIES];

	plan.n = 0;
	ck_assert_uint_eq(pp_fa_fate(&plan, 5, false, out), 1);
	ck_assert_int_eq(out[0], 5);
	ck_assert_uint_eq(pp_fa_fate(&plan, 5, true, out), 0);
}
END_TEST

START_TEST(fate_dup2_and_close)
{
	int out[PP_FA_COPIES];

	plan.n = 0;
	act(PP_FA_DUP2, 5, 0);
	act(PP_FA_DUP2, 5, 1);
	act(PP_FA_CLOSE, 5, -1);
	ck_assert_uint_eq(pp_fa_fate(&plan, 5, false, out), 2);
	ck_assert_int_eq(out[0], 0);
	ck_assert_int_eq(out[1], 1);
	/* Close-on-exec in the parent: the dup2 copies carry it across. */
	ck_assert_uint_eq(pp_fa_fate(&plan, 5, true, out), 2);
	/* Another descriptor is overwritten on 0 and 1, and keeps its own
	 * number only when it is not close-on-exec. */
	ck_assert_uint_eq(pp_fa_fate(&plan, 0, false, out), 0);
	ck_assert_uint_eq(pp_fa_fate(&plan, 4, false, out), 1);
	ck_assert_int_eq(out[0], 4);
	ck_assert_uint_eq(pp_fa_fate(&plan, 4, true, out), 0);
}
END_TEST

START_TEST(fate_open_closefrom_self_dup2)
{
	int out[PP_FA_COPIES];

	plan.n = 0;
	act(PP_FA_DUP2, 9, 3);
	act(PP_FA_OPEN, 3, -1);
	ck_assert_uint_eq(pp_fa_fate(&plan, 9, false, out), 1);
	ck_assert_int_eq(out[0], 9);
	plan.n = 0;
	act(PP_FA_DUP2, 9, 2);
	act(PP_FA_CLOSEFROM, 3, -1);
	ck_assert_uint_eq(pp_fa_fate(&plan, 9, false, out), 1);
	ck_assert_int_eq(out[0], 2);
	/* dup2 onto itself clears close-on-exec. */
	plan.n = 0;
	act(PP_FA_DUP2, 7, 7);
	ck_assert_uint_eq(pp_fa_fate(&plan, 7, true, out), 1);
	ck_assert_int_eq(out[0], 7);
	/* A chain: 5 -> 8 -> 0, 5 closed, 8 replaced by another. */
	plan.n = 0;
	act(PP_FA_DUP2, 5, 8);
	act(PP_FA_CLOSE, 5, -1);
	act(PP_FA_DUP2, 8, 0);
	act(PP_FA_DUP2, 4, 8);
	act(PP_FA_OTHER, -1, -1);
	ck_assert_uint_eq(pp_fa_fate(&plan, 5, true, out), 1);
	ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(fate_too_many_copies)
{
	int out[PP_FA_COPIES], i;

	plan.n = 0;
	for (i = 0; i < PP_FA_COPIES; i++)
		act(PP_FA_DUP2, 100, 200 + i);
	/* More copies than followed: none reported (the child then sees
	 * the real addresses), never a wrong number. */
	ck_assert_uint_eq(pp_fa_fate(&plan, 100, false, out), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("spawn_fa");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, read_back);
	tcase_add_test(tc, fate_exec_only);
	tcase_add_test(tc, fate_dup2_and_close);
	tcase_add_test(tc, fate_open_closefrom_self_dup2);
	tcase_add_test(tc, fate_too_many_copies);
	return pp_suite_run(s, tc);
}

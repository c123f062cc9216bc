/*
 * suite.h - what every Check suite's main() ends with: run the suite,
 * report, and turn the failures into the exit status.
 */
#ifndef PP_TEST_SUITE_H
#define PP_TEST_SUITE_H

#include <check.h>

/*
 * Run s (tc, when not NULL, added to it first: a suite of one tcase);
 * 0 when every test passed, else 1.
 */
static inline int
pp_suite_run(Suite *s, TCase *tc)
{
	SRunner *sr;
	int failed;

	if (tc != NULL)
		suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

#endif /* PP_TEST_SUITE_H */

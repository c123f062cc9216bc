/*
 * check_state.c - the state file's pure helpers: counter names, the
 * class of each parser error, the configuration text (and where it is
 * cut), a process's start time from /proc/PID/stat, the layout check.
 */
#include "config.h"

#include <check.h>
#include <stddef.h>
#include <string.h>

#include "pp_state.h"
#include "suite.h"

START_TEST(names)
{
	unsigned i, j;

	for (i = 0; i < PP_ST_N; i++) {
		ck_assert_ptr_nonnull(pp_stat_name(i));
		for (j = 0; j < i; j++)
			ck_assert_str_ne(pp_stat_name(i), pp_stat_name(j));
	}
	ck_assert_ptr_null(pp_stat_name(PP_ST_N));
	ck_assert_str_eq(pp_stat_name(PP_ST_PROXIED_V1), "proxied_v1");
	ck_assert_str_eq(pp_stat_name(PP_ST_PENDING), "pending");
	ck_assert_int_le(PP_ST_N, PP_STATE_COUNTERS);
}
END_TEST

START_TEST(classes)
{
	ck_assert_int_eq(pp_stat_of_error(PP_E_SIGNATURE), PP_ST_BAD_SIGNATURE);
	ck_assert_int_eq(pp_stat_of_error(PP_E_VERSION), PP_ST_BAD_VERSION);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V1_SYNTAX), PP_ST_BAD_SYNTAX);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V1_PORT), PP_ST_BAD_SYNTAX);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V2_COMMAND), PP_ST_BAD_SYNTAX);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V2_FAMILY), PP_ST_BAD_FAMILY);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V1_TOO_LONG),
			 PP_ST_BAD_TOO_LONG);
	ck_assert_int_eq(pp_stat_of_error(PP_E_TOO_LONG), PP_ST_BAD_TOO_LONG);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V2_TLV), PP_ST_BAD_TLV);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V2_LENGTH), PP_ST_BAD_TLV);
	ck_assert_int_eq(pp_stat_of_error(PP_E_V2_CRC), PP_ST_CRC);
	ck_assert_int_eq(pp_stat_of_error(PP_E_TRUNCATED), PP_ST_BAD_TRUNCATED);
	ck_assert_int_eq(pp_stat_of_error(PP_OK), PP_ST_BAD_TRUNCATED);
}
END_TEST

static const char *
get_some(const char *name)
{
	if (strcmp(name, "PP_PORTS") == 0)
		return "8080, 53/udp";
	if (strcmp(name, "PP_LOG") == 0)
		return "info";
	return NULL;
}

static char long_value[5000];

static const char *
get_long(const char *name)
{
	if (strcmp(name, "PP_ALLOW") == 0)
		return long_value;
	return strcmp(name, "PP_PORTS") == 0 ? "80" : NULL;
}

START_TEST(config_text)
{
	char out[PP_STATE_CONFIG];
	size_t n;

	n = pp_state_config_text(get_some, out, sizeof(out));
	ck_assert_str_eq(out, "PP_PORTS=8080, 53/udp\nPP_LOG=info\n");
	ck_assert_uint_eq(n, strlen(out));
	memset(long_value, 'a', sizeof(long_value) - 1);
	n = pp_state_config_text(get_long, out, sizeof(out));
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_uint_lt(n, sizeof(out));
	ck_assert(strncmp(out, "PP_PORTS=80\nPP_ALLOW=aaa", 24) == 0);
	ck_assert_str_eq(out + n - 4, "...\n");
	n = pp_state_config_text(get_some, out, 10);
	ck_assert_uint_lt(n, 10);
	ck_assert_uint_eq(n, strlen(out));
}
END_TEST

START_TEST(starttime)
{
	static const char plain[] =
		"123 (srv) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 "
		"0 987654 12345678 300 18446744073709551615\n";
	static const char odd[] =
		"7 (a) b) c (d) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 1\n";

	ck_assert_uint_eq(pp_state_starttime(plain, strlen(plain)), 987654);
	ck_assert_uint_eq(pp_state_starttime(odd, strlen(odd)), 42);
	ck_assert_uint_eq(pp_state_starttime("1 (x) S 1", 9), 0);
	ck_assert_uint_eq(pp_state_starttime("garbage", 7), 0);
}
END_TEST

START_TEST(layout)
{
	static struct pp_state_file f;
	char path[64];

	ck_assert(!pp_state_valid(&f, sizeof(f)));
	memcpy(f.magic, PP_STATE_MAGIC, sizeof(f.magic));
	f.version = PP_STATE_VERSION;
	f.size = sizeof(f);
	f.nslots = PP_STATE_SLOTS;
	f.ncounters = PP_STATE_COUNTERS;
	ck_assert(pp_state_valid(&f, sizeof(f)));
	ck_assert(!pp_state_valid(&f, sizeof(f) - 1));
	f.version = 2;
	ck_assert(!pp_state_valid(&f, sizeof(f)));
	/* The layout readers outside C rely on (tests/integ/test_status.py,
	 * ppshim(1)). */
	ck_assert_uint_eq(offsetof(struct pp_state_file, config), 48);
	ck_assert_uint_eq(sizeof(struct pp_state_slot), 320);
	ck_assert_uint_eq(sizeof(f), 48 + PP_STATE_CONFIG + 32 * 320);
	ck_assert(pp_state_path("/run/ppshim", 42, path, sizeof(path)));
	ck_assert_str_eq(path, "/run/ppshim/ppshim-42.state");
	ck_assert(!pp_state_path("/run/ppshim", 42, path, 10));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, names);
	tcase_add_test(tc, classes);
	tcase_add_test(tc, config_text);
	tcase_add_test(tc, starttime);
	tcase_add_test(tc, layout);
	return pp_suite_run(s, tc);
}

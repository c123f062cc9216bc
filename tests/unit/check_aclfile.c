/*
 * check_aclfile.c - PP_ALLOW and PP_DIRECT entries that name a file
 * ("@/path"): read through a struct pp_aclio (here an in-memory one),
 * with comments, several entries a line, and errors that name the file
 * and the line.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pp_acl.h"
#include "pp_config.h"
#include "suite.h"

/* The fake file system: up to four files, by path. */
static struct {
	const char *path;
	const char *text; /* NULL: the read fails with err */
	int err;
} files[4];
static char buf[PP_ACL_FILE_MAX + 1];
static char err[PP_ERRMSG_MAX];
static struct pp_acl acl;
static unsigned reads;

static long
fake_read(void *ctx, const char *path, char *out, size_t cap, int *e)
{
	size_t i, n;

	(void)ctx;
	reads++;
	for (i = 0; i < 4; i++) {
		if (files[i].path == NULL || strcmp(files[i].path, path) != 0)
			continue;
		if (files[i].text == NULL) {
			*e = files[i].err;
			return -1;
		}
		n = strlen(files[i].text);
		if (n > cap) {
			*e = EFBIG;
			return -1;
		}
		memcpy(out, files[i].text, n);
		return (long)n;
	}
	*e = ENOENT;
	return -1;
}

static const struct pp_aclio io = { .read = fake_read,
				    .buf = buf,
				    .cap = sizeof(buf) };

static void
reset(void)
{
	memset(files, 0, sizeof(files));
	memset(&acl, 0, sizeof(acl));
	err[0] = '\0';
	reads = 0;
}

static int
parse(const char *v)
{
	return pp_parse_acl_io(&acl, "PP_ALLOW", v, &io, err, sizeof(err));
}

START_TEST(entries_comments_and_blank_lines)
{
	reset();
	files[0].path = "/etc/lb";
	files[0].text = "# the balancers\n\n10.0.0.0/8   # inside\n"
			"192.0.2.1, 192.0.2.2 2001:db8::/32\n   \n"
			"198.51.100.0/24"; /* no final newline */
	ck_assert_int_eq(parse("@/etc/lb"), 0);
	ck_assert_uint_eq(acl.n, 5);
	ck_assert_uint_eq(acl.v[0].plen, 96 + 8);
	ck_assert_uint_eq(acl.v[3].plen, 32);
	ck_assert_uint_eq(acl.v[4].plen, 96 + 24);
	ck_assert_uint_eq(reads, 1);
}
END_TEST

START_TEST(files_and_inline_entries_mix)
{
	reset();
	files[0].path = "/a";
	files[0].text = "10.0.0.1\n";
	files[1].path = "/b";
	files[1].text = "10.0.0.2\n10.0.0.3\n";
	ck_assert_int_eq(parse("127.0.0.1, @/a @/b,::1"), 0);
	ck_assert_uint_eq(acl.n, 5);
	ck_assert_uint_eq(reads, 2);
}
END_TEST

START_TEST(an_empty_file_trusts_nobody)
{
	reset();
	files[0].path = "/empty";
	files[0].text = "# nothing yet\n";
	ck_assert_int_eq(parse("@/empty"), 0);
	ck_assert_uint_eq(acl.n, 0);
}
END_TEST

START_TEST(errors_name_the_file_and_line)
{
	reset();
	files[0].path = "/etc/lb";
	files[0].text = "10.0.0.0/8\n# fine\n10.0.0.1/8 # host bits\n";
	ck_assert_int_eq(parse("@/etc/lb"), -1);
	ck_assert_str_eq(err, "PP_ALLOW: /etc/lb:3: '10.0.0.1/8': host bits "
			      "set beyond prefix");
	files[0].text = "10.0.0.0/8\n@/etc/other\n";
	ck_assert_int_eq(parse("@/etc/lb"), -1);
	ck_assert_str_eq(err, "PP_ALLOW: /etc/lb:2: '@/etc/other': a list "
			      "file cannot name another");
}
END_TEST

START_TEST(unreadable_files)
{
	reset();
	ck_assert_int_eq(parse("@/nowhere"), -1);
	ck_assert_str_eq(err, "PP_ALLOW: '@/nowhere': no such file");
	files[0].path = "/secret";
	files[0].err = EACCES;
	ck_assert_int_eq(parse("@/secret"), -1);
	ck_assert_str_eq(err, "PP_ALLOW: '@/secret': permission denied");
	files[0].err = EIO;
	ck_assert_int_eq(parse("@/secret"), -1);
	ck_assert_str_eq(err, "PP_ALLOW: '@/secret': cannot be read");
	ck_assert_int_eq(parse("@relative"), -1);
	ck_assert_str_eq(err, "PP_ALLOW: '@relative': a list file's path "
			      "must be absolute");
	ck_assert_int_eq(parse("@"), -1);
}
END_TEST

START_TEST(a_file_larger_than_the_limit)
{
	static char big[PP_ACL_FILE_MAX + 2];

	reset();
	memset(big, '#', sizeof(big) - 1);
	files[0].path = "/big";
	files[0].text = big;
	ck_assert_int_eq(parse("@/big"), -1);
	ck_assert_str_eq(err, "PP_ALLOW: '@/big': file larger than 256 KiB");
	/* Exactly the limit is fine. */
	big[PP_ACL_FILE_MAX] = '\0';
	ck_assert_int_eq(parse("@/big"), 0);
}
END_TEST

START_TEST(the_entry_limit_counts_files_too)
{
	static char text[PP_MAX_CIDRS * 16];
	size_t i, n = 0;

	reset();
	for (i = 0; i < PP_MAX_CIDRS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "10.%zu.%zu.0/24\n", i / 256, i % 256);
	files[0].path = "/full";
	files[0].text = text;
	ck_assert_int_eq(parse("@/full"), 0);
	ck_assert_uint_eq(acl.n, PP_MAX_CIDRS);
	ck_assert_int_eq(parse("127.0.0.1 @/full"), -1);
	ck_assert_ptr_nonnull(strstr(err, "/full:1024:"));
	ck_assert_ptr_nonnull(strstr(err, "too many entries"));
}
END_TEST

START_TEST(at_most_eight_files_a_list)
{
	char spec[16 * (PP_ACL_FILES_MAX + 1)];
	size_t i, n = 0;

	reset();
	files[0].path = "/lb";
	files[0].text = "10.0.0.0/8\n";
	for (i = 0; i < PP_ACL_FILES_MAX; i++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, "@/lb ");
	ck_assert_int_eq(parse(spec), 0);
	ck_assert_uint_eq(acl.n, PP_ACL_FILES_MAX);
	/* The library follows eight files: a ninth is refused, not read. */
	reads = 0;
	snprintf(spec + n, sizeof(spec) - n, "127.0.0.1 @/lb");
	ck_assert_int_eq(parse(spec), -1);
	ck_assert_str_eq(err, "PP_ALLOW: '@/lb': too many list files (max 8)");
	ck_assert_uint_eq(reads, PP_ACL_FILES_MAX);
}
END_TEST

START_TEST(without_io_files_are_refused)
{
	reset();
	ck_assert_int_eq(
		pp_parse_acl(&acl, "PP_DIRECT", "@/etc/lb", err, sizeof(err)),
		-1);
	ck_assert_str_eq(err, "PP_DIRECT: '@/etc/lb': a list file is read "
			      "only by the library and ppshim");
}
END_TEST

static const char *
env_get(const char *name)
{
	if (strcmp(name, "PP_PORTS") == 0)
		return "25";
	if (strcmp(name, "PP_ALLOW") == 0)
		return "@/etc/lb";
	if (strcmp(name, "PP_DIRECT") == 0)
		return "@/etc/direct";
	return NULL;
}

START_TEST(the_configuration_reads_both_lists)
{
	struct pp_config *c = calloc(1, sizeof(*c));

	reset();
	files[0].path = "/etc/lb";
	files[0].text = "10.0.0.1\n";
	files[1].path = "/etc/direct";
	files[1].text = "192.0.2.0/24\n198.51.100.7\n";
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(pp_config_parse_io(c, env_get, &io, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(c->allow.n, 1);
	ck_assert_uint_eq(c->direct.n, 2);
	ck_assert_int_eq(pp_config_parse(c, env_get, err, sizeof(err)), -1);
	free(c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("aclfile");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, entries_comments_and_blank_lines);
	tcase_add_test(tc, files_and_inline_entries_mix);
	tcase_add_test(tc, an_empty_file_trusts_nobody);
	tcase_add_test(tc, errors_name_the_file_and_line);
	tcase_add_test(tc, unreadable_files);
	tcase_add_test(tc, a_file_larger_than_the_limit);
	tcase_add_test(tc, the_entry_limit_counts_files_too);
	tcase_add_test(tc, at_most_eight_files_a_list);
	tcase_add_test(tc, without_io_files_are_refused);
	tcase_add_test(tc, the_configuration_reads_both_lists);
	return pp_suite_run(s, tc);
}

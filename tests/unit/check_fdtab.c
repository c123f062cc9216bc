/*
 * check_fdtab.c - the per-descriptor table: set, get, clear, copy, the
 * range clears of close_range/closefrom, numbers far above 1024, and
 * readers that never see a torn entry while writers race.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "fdtab.h"

static struct pp_fdinfo
conn_info(uint32_t ip, uint16_t port, uint64_t cookie)
{
	struct pp_fdinfo i;

	memset(&i, 0, sizeof(i));
	i.kind = PP_FD_CONN;
	i.family = AF_INET;
	i.has_src = true;
	i.has_dst = true;
	i.cookie = cookie;
	i.src.sin.sin_family = AF_INET;
	i.src.sin.sin_addr.s_addr = htonl(ip);
	i.src.sin.sin_port = htons(port);
	i.srclen = sizeof(i.src.sin);
	i.dst = i.src;
	i.dstlen = i.srclen;
	return i;
}

START_TEST(untracked_is_none)
{
	struct pp_fdinfo out;

	ck_assert_int_eq(pp_fd_kind(-1), PP_FD_NONE);
	ck_assert_int_eq(pp_fd_kind(77), PP_FD_NONE);
	ck_assert_int_eq(pp_fd_kind(PP_FDTAB_PAGE * PP_FDTAB_PAGES),
			 PP_FD_NONE);
	ck_assert_int_eq(pp_fd_get(12345, &out), PP_FD_NONE);
	ck_assert_int_eq(out.kind, PP_FD_NONE);
	ck_assert(!out.has_src);
	/* Clearing an untracked number allocates nothing and is harmless. */
	pp_fd_clear(999999);
	ck_assert_ptr_null(atomic_load(&pp_fdtab[999999 / PP_FDTAB_PAGE]));
}
END_TEST

START_TEST(set_get_clear)
{
	struct pp_fdinfo in = conn_info(0xC0000201, 5000, 42), out;

	ck_assert(pp_fd_set(5, &in));
	ck_assert_int_eq(pp_fd_kind(5), PP_FD_CONN);
	ck_assert_int_eq(pp_fd_get(5, &out), PP_FD_CONN);
	ck_assert_mem_eq(&out, &in, sizeof(in));
	ck_assert_int_eq(pp_fd_kind(6), PP_FD_NONE);
	pp_fd_clear(5);
	ck_assert_int_eq(pp_fd_kind(5), PP_FD_NONE);
	ck_assert_int_eq(pp_fd_get(5, &out), PP_FD_NONE);
	ck_assert_uint_eq(out.cookie, 0);
}
END_TEST

START_TEST(brief_of_a_datagram_socket)
{
	struct pp_fdinfo in;
	uint16_t fam = 1, port = 1;

	memset(&in, 0, sizeof(in));
	in.kind = PP_FD_UDP;
	in.family = AF_INET6;
	in.lport = htons(5353);
	ck_assert_int_eq(pp_fd_brief(8, &fam, &port), PP_FD_NONE);
	ck_assert_uint_eq(fam, 0);
	ck_assert_uint_eq(port, 0);
	ck_assert(pp_fd_set(8, &in));
	ck_assert_int_eq(pp_fd_brief(8, &fam, &port), PP_FD_UDP);
	ck_assert_uint_eq(fam, AF_INET6);
	ck_assert_uint_eq(port, htons(5353));
	ck_assert_int_eq(pp_fd_brief(-3, &fam, &port), PP_FD_NONE);
	ck_assert_int_eq(
		pp_fd_brief(PP_FDTAB_PAGE * PP_FDTAB_PAGES, &fam, &port),
		PP_FD_NONE);
	pp_fd_clear(8);
	ck_assert_int_eq(pp_fd_brief(8, &fam, &port), PP_FD_NONE);
	ck_assert_uint_eq(port, 0);
}
END_TEST

START_TEST(high_numbers)
{
	struct pp_fdinfo in = conn_info(0x0A000001, 1, 7), out;
	int fds[] = { 1023, 1024,  4097,
		      5000, 65536, PP_FDTAB_PAGE * PP_FDTAB_PAGES - 1 };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		in.cookie = (uint64_t)fds[i];
		ck_assert(pp_fd_set(fds[i], &in));
	}
	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		ck_assert_int_eq(pp_fd_get(fds[i], &out), PP_FD_CONN);
		ck_assert_uint_eq(out.cookie, (uint64_t)fds[i]);
	}
	ck_assert(!pp_fd_set(PP_FDTAB_PAGE * PP_FDTAB_PAGES, &in));
	ck_assert(!pp_fd_set(-3, &in));
}
END_TEST

START_TEST(copy_follows_dup)
{
	struct pp_fdinfo in = conn_info(0xC6336401, 25, 9), out;

	ck_assert(pp_fd_set(40, &in));
	pp_fd_copy(40, 0); /* vsftpd: dup2(sock, 0) */
	pp_fd_copy(40, 1);
	ck_assert_int_eq(pp_fd_get(0, &out), PP_FD_CONN);
	ck_assert_mem_eq(&out, &in, sizeof(in));
	ck_assert_int_eq(pp_fd_get(1, &out), PP_FD_CONN);
	pp_fd_clear(40);
	ck_assert_int_eq(pp_fd_kind(0), PP_FD_CONN);
	/* dup2 of an untracked fd over a tracked one clears it. */
	pp_fd_copy(41, 1);
	ck_assert_int_eq(pp_fd_kind(1), PP_FD_NONE);
	/* Copy onto itself changes nothing. */
	pp_fd_copy(0, 0);
	ck_assert_int_eq(pp_fd_kind(0), PP_FD_CONN);
	pp_fd_clear(0);
}
END_TEST

START_TEST(range_clear)
{
	struct pp_fdinfo in = conn_info(0x7F000001, 80, 1);
	int fd;

	for (fd = 100; fd < 110; fd++)
		ck_assert(pp_fd_set(fd, &in));
	ck_assert(pp_fd_set(3000, &in));
	pp_fd_clear_range(103, 106);
	for (fd = 100; fd < 110; fd++)
		ck_assert_int_eq(pp_fd_kind(fd), fd >= 103 && fd <= 106
							 ? PP_FD_NONE
							 : PP_FD_CONN);
	/* closefrom(101): everything from 101 up, across pages. */
	pp_fd_clear_range(101, ~0U);
	ck_assert_int_eq(pp_fd_kind(100), PP_FD_CONN);
	for (fd = 101; fd < 110; fd++)
		ck_assert_int_eq(pp_fd_kind(fd), PP_FD_NONE);
	ck_assert_int_eq(pp_fd_kind(3000), PP_FD_NONE);
	pp_fd_clear(100);
}
END_TEST

/*
 * Writers keep replacing the entry with one of two complete values;
 * readers must only ever see one of the two (never a mix).
 */
static atomic_bool stop;

static void *
writer(void *arg)
{
	struct pp_fdinfo a = conn_info(0x01010101, 1111, 1111);
	struct pp_fdinfo b = conn_info(0x02020202, 2222, 2222);
	unsigned long i;

	(void)arg;
	for (i = 0; !atomic_load(&stop); i++) {
		pp_fd_set(7, (i & 1) ? &a : &b);
		if ((i % 7) == 0)
			pp_fd_clear(7);
	}
	return NULL;
}

static void *
reader(void *arg)
{
	struct pp_fdinfo out;
	long bad = 0, i;

	(void)arg;
	for (i = 0; i < 300000; i++) {
		if (pp_fd_get(7, &out) == PP_FD_NONE)
			continue;
		if (out.cookie != ntohs(out.src.sin.sin_port) ||
		    ntohl(out.src.sin.sin_addr.s_addr) !=
			    (out.cookie == 1111 ? 0x01010101u : 0x02020202u))
			bad++;
	}
	return (void *)bad;
}

START_TEST(no_torn_reads)
{
	pthread_t w[2], r[2];
	void *res;
	int i;

	atomic_store(&stop, false);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&w[i], NULL, writer, NULL), 0);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&r[i], NULL, reader, NULL), 0);
	for (i = 0; i < 2; i++) {
		pthread_join(r[i], &res);
		ck_assert_int_eq((long)res, 0);
	}
	atomic_store(&stop, true);
	for (i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fdtab");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, untracked_is_none);
	tcase_add_test(tc, set_get_clear);
	tcase_add_test(tc, brief_of_a_datagram_socket);
	tcase_add_test(tc, high_numbers);
	tcase_add_test(tc, copy_follows_dup);
	tcase_add_test(tc, range_clear);
	tcase_add_test(tc, no_torn_reads);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

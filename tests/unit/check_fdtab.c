/*
 * check_fdtab.c - the per-descriptor table: set, get, clear, copy, the
 * range clears of close_range/closefrom, the clear of an entry only as it
 * was seen, numbers far above 1024, readers that never see a torn entry
 * while writers race, and a signal handler that reads, clears or sets an
 * entry its own thread is in the middle of writing (it must not wait for
 * that thread); and pp_fd_foreach, the one walk over the table.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/time.h>

#include "fdtab.h"
#include "suite.h"

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

START_TEST(dgram_view_of_a_socket)
{
	struct pp_fdinfo in;
	struct pp_fddgram d;

	memset(&in, 0, sizeof(in));
	in.kind = PP_FD_UDP;
	in.family = AF_INET6;
	in.lport = htons(5353);
	in.stat = 7;
	memset(&d, 0xA5, sizeof(d));
	ck_assert_int_eq(pp_fd_dgram(8, &d), PP_FD_NONE);
	ck_assert_uint_eq(d.family, 0);
	ck_assert_uint_eq(d.lport, 0);
	ck_assert(!d.spp);
	ck_assert_uint_eq(d.stat, 0);
	ck_assert(pp_fd_set(8, &in));
	ck_assert_int_eq(pp_fd_dgram(8, &d), PP_FD_UDP);
	ck_assert_uint_eq(d.family, AF_INET6);
	ck_assert_uint_eq(d.lport, htons(5353));
	ck_assert(!d.spp);
	ck_assert_uint_eq(d.stat, 7);
	in.spp = true;
	ck_assert(pp_fd_set(8, &in));
	ck_assert_int_eq(pp_fd_dgram(8, &d), PP_FD_UDP);
	ck_assert(d.spp);
	ck_assert_int_eq(pp_fd_dgram(-3, &d), PP_FD_NONE);
	ck_assert(!d.spp);
	ck_assert_int_eq(pp_fd_dgram(PP_FDTAB_PAGE * PP_FDTAB_PAGES, &d),
			 PP_FD_NONE);
	pp_fd_clear(8);
	ck_assert_int_eq(pp_fd_dgram(8, &d), PP_FD_NONE);
	ck_assert_uint_eq(d.lport, 0);
	ck_assert_uint_eq(d.stat, 0);
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

/* A stale entry is forgotten only as it was seen: one written since (the
 * number closed and given to another socket) stays. */
START_TEST(clear_if_only_as_seen)
{
	struct pp_fdinfo old = conn_info(0x7F000001, 80, 1);
	struct pp_fdinfo now = conn_info(0x7F000002, 81, 2), out;

	ck_assert(pp_fd_set(200, &old));
	ck_assert_int_eq(pp_fd_get(200, &out), PP_FD_CONN);
	ck_assert(pp_fd_set(200, &now)); /* another socket got it */
	ck_assert(!pp_fd_clear_if(200, &out));
	ck_assert_int_eq(pp_fd_get(200, &out), PP_FD_CONN);
	ck_assert_int_eq(out.cookie, 2);
	ck_assert(pp_fd_clear_if(200, &out));
	ck_assert_int_eq(pp_fd_kind(200), PP_FD_NONE);
	ck_assert(!pp_fd_clear_if(200, &out));
	ck_assert(!pp_fd_clear_if(5000000, &out));
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

/* What the table's writer does when a handler asked it to forget. */
static void
wipe(void *arg)
{
	struct pp_fdent *e = arg;

	memset(&e->info, 0, sizeof(e->info));
	atomic_store(&e->kind, PP_FD_NONE);
}

/*
 * This thread is inside a write of fd 9's entry (as when a signal
 * handler interrupted dup2 onto 9): what the handler then calls returns
 * at once, reads nothing half-written, and its clear is carried out by
 * the interrupted writer when it finishes.
 */
START_TEST(own_write_is_not_waited_for)
{
	struct pp_fdinfo a = conn_info(0x01010101, 1111, 1111);
	struct pp_fdinfo b = conn_info(0x02020202, 2222, 2222), out;
	struct pp_fdent *e;
	struct pp_fddgram d;

	ck_assert(pp_fd_set(9, &a));
	ck_assert(pp_fd_set(10, &a));
	e = pp_fd_slot(9);
	ck_assert(!pp_fd_busy(9));
	ck_assert(pp_seq_write_begin(&e->seq));
	memset(&e->info, 0xA5, sizeof(e->info) / 2); /* half-written */
	/* The handler's calls: */
	ck_assert(pp_fd_busy(9));
	ck_assert(!pp_fd_busy(10));
	ck_assert_int_eq(pp_fd_get(9, &out), PP_FD_NONE);
	ck_assert_int_eq(out.kind, PP_FD_NONE);
	ck_assert(!out.has_src);
	ck_assert_int_eq(pp_fd_dgram(9, &d), PP_FD_NONE);
	ck_assert_int_eq(pp_fd_get(10, &out), PP_FD_CONN); /* others: as ever */
	ck_assert(!pp_fd_set(9, &b));
	pp_fd_copy(9, 10); /* unknown source: the copy is untracked */
	ck_assert_int_eq(pp_fd_kind(10), PP_FD_NONE);
	pp_fd_clear(9);
	ck_assert(atomic_load(&e->seq) & PP_SEQ_FORGET);
	/* The interrupted writer finishes, and forgets as asked. */
	e->info = a;
	pp_seq_write_end(&e->seq, wipe, e);
	ck_assert_uint_eq(atomic_load(&e->seq) & (PP_SEQ_BUSY | PP_SEQ_FORGET),
			  0);
	ck_assert(!pp_fd_busy(9));
	ck_assert_int_eq(pp_fd_kind(9), PP_FD_NONE);
	ck_assert_int_eq(pp_fd_get(9, &out), PP_FD_NONE);
	/* And the entry works as before. */
	ck_assert(pp_fd_set(9, &b));
	ck_assert_int_eq(pp_fd_get(9, &out), PP_FD_CONN);
	ck_assert_mem_eq(&out, &b, sizeof(b));
	pp_fd_clear(9);
	ck_assert_int_eq(pp_inside.nwriting, 0);
}
END_TEST

/* Another thread's write is waited for, and read whole. */
static void *
slow_writer(void *arg)
{
	struct pp_fdent *e = pp_fd_slot(11);
	struct pp_fdinfo *b = arg;
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	pp_seq_write_begin(&e->seq);
	memset(&e->info, 0xA5, sizeof(e->info));
	nanosleep(&ts, NULL);
	e->info = *b;
	pp_seq_write_end(&e->seq, NULL, NULL);
	return NULL;
}

START_TEST(other_threads_write_is_waited_for)
{
	struct pp_fdinfo a = conn_info(0x01010101, 1111, 1111);
	struct pp_fdinfo b = conn_info(0x02020202, 2222, 2222), out;
	pthread_t t;

	ck_assert(pp_fd_set(11, &a));
	ck_assert_int_eq(pthread_create(&t, NULL, slow_writer, &b), 0);
	while (!(atomic_load(&pp_fd_slot(11)->seq) & PP_SEQ_BUSY))
		;
	ck_assert(!pp_fd_busy(11));
	ck_assert_int_eq(pp_fd_get(11, &out), PP_FD_CONN);
	ck_assert_mem_eq(&out, &b, sizeof(b));
	pthread_join(t, NULL);
	pp_fd_clear(11);
}
END_TEST

/*
 * Real signals: a timer interrupts the thread inside pp_fd_set of fd 13
 * again and again; the handler reads the entry (never a mix of two
 * values) and now and then clears it.  A clear that arrived in the
 * middle of a write leaves the entry cleared once the write is done.
 */
static volatile sig_atomic_t h_calls, h_bad, h_midwrite, h_midwrites;

static void
on_alarm(int sig)
{
	struct pp_fdinfo out;

	(void)sig;
	h_calls++;
	if (pp_fd_get(13, &out) != PP_FD_NONE &&
	    (out.cookie != ntohs(out.src.sin.sin_port) ||
	     ntohl(out.src.sin.sin_addr.s_addr) !=
		     (out.cookie == 1111 ? 0x01010101u : 0x02020202u)))
		h_bad++;
	if (h_calls % 4 == 0) {
		if (atomic_load(&pp_fd_slot(13)->seq) & PP_SEQ_BUSY) {
			h_midwrite = 1;
			h_midwrites++;
		}
		pp_fd_clear(13);
	}
}

START_TEST(signal_handler_inside_writes)
{
	struct pp_fdinfo a = conn_info(0x01010101, 1111, 1111);
	struct pp_fdinfo b = conn_info(0x02020202, 2222, 2222);
	struct itimerval it = { { 0, 20 }, { 0, 20 } };
	struct sigaction sa;
	struct timespec t0, t;
	unsigned long i, stale = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	ck_assert(pp_fd_set(13, &a));
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0;; i++) {
		h_midwrite = 0;
		pp_fd_set(13, (i & 1) ? &a : &b);
		if (h_midwrite && pp_fd_kind(13) != PP_FD_NONE)
			stale++;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= 2 && h_midwrites > 0)
			break;
		if (t.tv_sec - t0.tv_sec >= 20)
			break;
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	signal(SIGALRM, SIG_IGN);
	ck_assert_int_gt(h_calls, 0);
	ck_assert_int_eq(h_bad, 0);
	ck_assert_uint_eq(stale, 0);
	ck_assert_uint_eq(pp_inside.nwriting, 0);
	pp_fd_clear(13);
}
END_TEST

/* What foreach_visits_in_order saw. */
struct seen {
	int fd[8];
	uint64_t cookie[8];
	size_t n, stop;
};

static bool
visit(int fd, const struct pp_fdinfo *info, void *arg)
{
	struct seen *v = arg;

	ck_assert_uint_lt(v->n, 8);
	v->fd[v->n] = fd;
	v->cookie[v->n] = info->cookie;
	return ++v->n != v->stop;
}

START_TEST(foreach_visits_in_order)
{
	struct pp_fdinfo c1 = conn_info(0x0a000001, 1, 11);
	struct pp_fdinfo c2 = conn_info(0x0a000002, 2, 22);
	struct pp_fdinfo c3 = conn_info(0x0a000003, 3, 33), l;
	struct seen v = { .stop = 0 };

	memset(&l, 0, sizeof(l));
	l.kind = PP_FD_LISTEN;
	l.cookie = 44;
	pp_fd_foreach(PP_FD_CONN, visit, &v);
	ck_assert_uint_eq(v.n, 0);
	/* Out of order, across pages, with other kinds between. */
	ck_assert(pp_fd_set(70000, &c3));
	ck_assert(pp_fd_set(1500, &c2));
	ck_assert(pp_fd_set(7, &l));
	ck_assert(pp_fd_set(4, &c1));
	ck_assert(pp_fd_set(9, &c2));
	pp_fd_clear(9);
	pp_fd_foreach(PP_FD_CONN, visit, &v);
	ck_assert_uint_eq(v.n, 3);
	ck_assert_int_eq(v.fd[0], 4);
	ck_assert_uint_eq(v.cookie[0], 11);
	ck_assert_int_eq(v.fd[1], 1500);
	ck_assert_uint_eq(v.cookie[1], 22);
	ck_assert_int_eq(v.fd[2], 70000);
	ck_assert_uint_eq(v.cookie[2], 33);
	/* Any kind; a visitor that says stop. */
	v.n = 0;
	pp_fd_foreach(PP_FD_NONE, visit, &v);
	ck_assert_uint_eq(v.n, 4);
	ck_assert_int_eq(v.fd[1], 7);
	ck_assert_uint_eq(v.cookie[1], 44);
	v.n = 0;
	v.stop = 2;
	pp_fd_foreach(PP_FD_NONE, visit, &v);
	ck_assert_uint_eq(v.n, 2);
	v.n = 0;
	v.stop = 0;
	pp_fd_foreach(PP_FD_LISTEN, visit, &v);
	ck_assert_uint_eq(v.n, 1);
	ck_assert_int_eq(v.fd[0], 7);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fdtab");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, untracked_is_none);
	tcase_add_test(tc, set_get_clear);
	tcase_add_test(tc, dgram_view_of_a_socket);
	tcase_add_test(tc, high_numbers);
	tcase_add_test(tc, copy_follows_dup);
	tcase_add_test(tc, range_clear);
	tcase_add_test(tc, clear_if_only_as_seen);
	tcase_add_test(tc, no_torn_reads);
	tcase_add_test(tc, own_write_is_not_waited_for);
	tcase_add_test(tc, other_threads_write_is_waited_for);
	tcase_add_test(tc, signal_handler_inside_writes);
	tcase_add_test(tc, foreach_visits_in_order);
	tcase_set_timeout(tc, 60);
	return pp_suite_run(s, tc);
}

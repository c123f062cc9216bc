/*
 * sigreenter.c - a program whose signal handler calls the hooked
 * functions on the thread it interrupts, while that thread is itself
 * inside them, as POSIX allows for accept, close, getpeername, recvfrom
 * and sendto.  A timer (SIGALRM, every -i microseconds) interrupts the
 * main thread at random points of its own calls for -s seconds.
 *
 *   -m dup2   accepts one connection on 127.0.0.1:PORT (PROXY-only), then
 *             loops dup2 of it and of a plain socket onto a tracked
 *             number T; the handler asks getpeername of T and of the
 *             connection, and now and then closes T.
 *   -m udp    PORT/udp is PROXY-only; the program sends itself datagrams
 *             with v2 headers from a second socket (the proxy), receives
 *             them into a buffer smaller than 64 KiB and replies to each
 *             advertised client; the handler does the same.
 *   -m accept PORT is PROXY-only; the program connects clients to itself,
 *             half of them sending their header in two pieces (so that
 *             accept hands them to the worker), and accepts them; the
 *             handler accepts too.
 *
 * Every answer is classified: the advertised address ("adv"), the real
 * one ("real"), or anything else ("torn").  Prints "listening PORT" when
 * ready (dup2: the test then connects), and at the end one line
 * "done KEY=VALUE...".  Exits 0 when nothing was torn or lost, 1
 * otherwise, 2 on a setup error.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#define PAYLOAD 200
#define BATCH 32

static unsigned long n_sig, n_adv, n_real, n_other, n_torn, n_closes;
static unsigned long n_acc, n_eagain, n_routed, n_recv;

static int mode_fd_t = -1, mode_fd_c = -1, mode_fd_u = -1, mode_fd_s = -1;
static int mode_fd_l = -1;
static struct sockaddr_in adv_c, real_c, proxy_s;

static bool
same_in(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
	       a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* Start (usec > 0) or stop the timer.  Started once the program is in
 * its loop: a handler before that has nothing to look at. */
static void
timer(long usec)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	it.it_interval.tv_sec = usec / 1000000;
	it.it_interval.tv_usec = usec % 1000000;
	it.it_value = it.it_interval;
	(void)setitimer(ITIMER_REAL, &it, NULL);
	if (usec == 0)
		signal(SIGALRM, SIG_IGN); /* and one still pending is dropped */
}

/* ===== dup2 ===== */

static void
classify_peer(int fd, bool unix_ok)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return; /* closed by the handler: EBADF */
	if (ss.ss_family == AF_UNIX && unix_ok)
		n_other++;
	else if (ss.ss_family == AF_INET && len == sizeof(*in) &&
		 same_in(in, &adv_c))
		n_adv++;
	else if (ss.ss_family == AF_INET && len == sizeof(*in) &&
		 same_in(in, &real_c))
		n_real++;
	else
		n_torn++;
}

static void
on_alarm_dup2(int sig)
{
	int saved = errno;

	(void)sig;
	n_sig++;
	classify_peer(mode_fd_t, true);
	classify_peer(mode_fd_c, false);
	if (n_sig % 8 == 0 && close(mode_fd_t) == 0)
		n_closes++;
	errno = saved;
}

static int
run_dup2(int port, double seconds, long usec)
{
	socklen_t len;
	int l, c, t, pair[2];
	unsigned long iter = 0;
	double end;

	l = tu_listen_inet("127.0.0.1", port, 0, NULL);
	if (l < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
		return 2;
	tu_out("listening %d", port);
	len = sizeof(adv_c);
	c = accept(l, (struct sockaddr *)&adv_c, &len);
	len = sizeof(real_c);
	if (c < 0 || syscall(SYS_getpeername, c, &real_c, &len) != 0)
		return 2;
	if (same_in(&adv_c, &real_c)) {
		tu_out("error: no advertised address");
		return 2;
	}
	t = dup(c);
	if (t < 0)
		return 2;
	mode_fd_c = c;
	mode_fd_t = t;
	timer(usec);
	end = tu_now() + seconds;
	while (tu_now() < end) {
		(void)dup2(c, t);
		(void)dup2(pair[0], t);
		(void)dup2(c, t);
		(void)close(t);
		iter++;
	}
	timer(0);
	/* After the storm: the entries say what the descriptors are. */
	n_adv = n_real = n_other = 0;
	(void)dup2(c, t);
	classify_peer(t, false);
	classify_peer(c, false);
	(void)dup2(pair[0], t);
	classify_peer(t, true);
	tu_out("final adv=%lu real=%lu other=%lu torn=%lu", n_adv, n_real,
	       n_other, n_torn);
	tu_out("done iter=%lu closes=%lu", iter, n_closes);
	return n_torn == 0 && n_adv == 2 && n_other == 1 ? 0 : 1;
}

/* ===== udp ===== */

/* Datagram numbers: even from the main thread, odd from the handler,
 * each counted by its sender alone (a shared count would lose the
 * handler's increments). */
static uint32_t udp_main_sent, udp_handler_sent;

/* The advertised client of datagram number seq (127.0.0.2-5). */
static void
udp_client(uint32_t seq, struct sockaddr_in *out)
{
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_addr.s_addr = htonl(0x7f000002u + seq % 4);
	out->sin_port = htons((uint16_t)(10000 + seq % 20000));
}

static void
udp_send(uint32_t seq, int port)
{
	static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	struct sockaddr_in to = { .sin_family = AF_INET }, cl;
	uint8_t d[28 + 4 + PAYLOAD];
	uint32_t dst = htonl(INADDR_LOOPBACK), nseq = htonl(seq);
	uint16_t dport = htons((uint16_t)port);
	unsigned i;

	udp_client(seq, &cl);
	memcpy(d, sig, 12);
	d[12] = 0x21; /* v2 PROXY */
	d[13] = 0x12; /* INET, DGRAM */
	d[14] = 0;
	d[15] = 12;
	memcpy(d + 16, &cl.sin_addr, 4);
	memcpy(d + 20, &dst, 4);
	memcpy(d + 24, &cl.sin_port, 2);
	memcpy(d + 26, &dport, 2);
	memcpy(d + 28, &nseq, 4);
	for (i = 0; i < PAYLOAD; i++)
		d[32 + i] = (uint8_t)(seq * 31 + i);
	to.sin_addr.s_addr = dst;
	to.sin_port = dport;
	(void)sendto(mode_fd_s, d, sizeof(d), 0, (struct sockaddr *)&to,
		     sizeof(to));
}

/* Receive one datagram on the PROXY-only socket, check it, reply. */
static bool
udp_recv_one(void)
{
	uint8_t buf[2048];
	struct sockaddr_in from, cl;
	socklen_t len = sizeof(from);
	uint32_t seq;
	ssize_t n;
	unsigned i;
	bool ok;

	n = recvfrom(mode_fd_u, buf, sizeof(buf), MSG_DONTWAIT,
		     (struct sockaddr *)&from, &len);
	if (n < 0)
		return false;
	n_recv++;
	ok = n == 4 + PAYLOAD;
	if (ok) {
		memcpy(&seq, buf, 4);
		seq = ntohl(seq);
		udp_client(seq, &cl);
		ok = len == sizeof(from) && same_in(&from, &cl);
		for (i = 0; ok && i < PAYLOAD; i++)
			ok = buf[4 + i] == (uint8_t)(seq * 31 + i);
	}
	if (!ok) {
		n_torn++;
		return true;
	}
	n_adv++;
	buf[0] = 'r';
	(void)sendto(mode_fd_u, buf, 4, 0, (struct sockaddr *)&from,
		     sizeof(from));
	return true;
}

/* Count the replies that reached the proxy (were routed). */
static void
udp_drain_proxy(void)
{
	uint8_t buf[64];
	ssize_t n;

	while ((n = recv(mode_fd_s, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
		if (n == 4 && buf[0] == 'r')
			n_routed++;
}

static int udp_port;

static void
on_alarm_udp(int sig)
{
	int saved = errno;

	(void)sig;
	n_sig++;
	udp_send(2 * udp_handler_sent++ + 1, udp_port);
	(void)udp_recv_one();
	errno = saved;
}

static int
run_udp(int port, double seconds, long usec)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(proxy_s);
	int buf = 4 << 20;
	unsigned long iter = 0;
	double end;
	int i;

	udp_port = port;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	mode_fd_u = socket(AF_INET, SOCK_DGRAM, 0);
	mode_fd_s = socket(AF_INET, SOCK_DGRAM, 0);
	if (mode_fd_u < 0 || mode_fd_s < 0 ||
	    bind(mode_fd_u, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		return 2;
	(void)setsockopt(mode_fd_u, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	(void)setsockopt(mode_fd_s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	sin.sin_port = 0;
	if (bind(mode_fd_s, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(mode_fd_s, (struct sockaddr *)&proxy_s, &len) != 0)
		return 2;
	tu_out("listening %d", port);
	timer(usec);
	end = tu_now() + seconds;
	while (tu_now() < end) {
		for (i = 0; i < 8; i++)
			udp_send(2 * udp_main_sent++, port);
		/* Bounded: the handler keeps sending too. */
		for (i = 0; i < 64 && udp_recv_one(); i++)
			;
		udp_drain_proxy();
		iter++;
	}
	timer(0);
	usleep(100000);
	while (udp_recv_one())
		;
	usleep(100000);
	udp_drain_proxy();
	tu_out("done iter=%lu sent=%lu received=%lu adv=%lu routed=%lu "
	       "torn=%lu",
	       iter, (unsigned long)udp_main_sent + udp_handler_sent, n_recv,
	       n_adv, n_routed, n_torn);
	return n_torn == 0 && n_adv > 0 && n_routed > 0 ? 0 : 1;
}

/* ===== accept ===== */

static void
accept_check(int fd, const struct sockaddr_in *a, socklen_t alen)
{
	struct sockaddr_in p;
	socklen_t plen = sizeof(p);

	n_acc++;
	if (getpeername(fd, (struct sockaddr *)&p, &plen) != 0 ||
	    alen != sizeof(*a) || plen != sizeof(p) || !same_in(&p, a))
		n_torn++; /* accept and getpeername disagree */
	else if ((ntohl(p.sin_addr.s_addr) >> 8) == 0xc00002) /* 192.0.2 */
		n_adv++;
	else if (p.sin_addr.s_addr == htonl(INADDR_LOOPBACK))
		n_real++;
	else
		n_torn++;
	close(fd);
}

static void
on_alarm_accept(int sig)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int saved = errno, fd;

	(void)sig;
	n_sig++;
	fd = accept(mode_fd_l, (struct sockaddr *)&a, &alen);
	if (fd >= 0)
		accept_check(fd, &a, alen);
	else if (errno == EAGAIN || errno == EWOULDBLOCK)
		n_eagain++;
	else
		n_torn++;
	errno = saved;
}

static void
accept_drain(void)
{
	struct sockaddr_in a;
	socklen_t alen;
	int fd;

	for (;;) {
		alen = sizeof(a);
		fd = accept4(mode_fd_l, (struct sockaddr *)&a, &alen, 0);
		if (fd < 0)
			return;
		accept_check(fd, &a, alen);
	}
}

static int
run_accept(int port, double seconds, long usec)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char hdr[BATCH][80];
	size_t hlen[BATCH];
	int cl[BATCH], i;
	unsigned long conns = 0;
	double end, until;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	mode_fd_l = tu_listen_inet("127.0.0.1", port, TU_NONBLOCK, NULL);
	if (mode_fd_l < 0)
		return 2;
	tu_out("listening %d", port);
	timer(usec);
	end = tu_now() + seconds;
	while (tu_now() < end) {
		for (i = 0; i < BATCH; i++) {
			cl[i] = socket(AF_INET, SOCK_STREAM, 0);
			if (cl[i] < 0 || connect(cl[i], (struct sockaddr *)&sin,
						 sizeof(sin)) != 0)
				return 2;
			hlen[i] = (size_t)snprintf(
				hdr[i], sizeof(hdr[i]),
				"PROXY TCP4 192.0.2.%d 198.51.100.7 %lu "
				"80\r\nx",
				1 + i, 1024 + conns + (unsigned long)i);
			/* Most in two pieces: the worker ends those. */
			(void)send(cl[i], hdr[i], i % 4 ? 9 : hlen[i],
				   MSG_NOSIGNAL);
		}
		accept_drain();
		for (i = 0; i < BATCH; i++)
			if (i % 4)
				(void)send(cl[i], hdr[i] + 9, hlen[i] - 9,
					   MSG_NOSIGNAL);
		conns += BATCH;
		until = tu_now() + 10;
		while (n_acc < conns && tu_now() < until) {
			accept_drain();
			usleep(200);
		}
		for (i = 0; i < BATCH; i++)
			close(cl[i]);
		if (n_acc < conns)
			break;
	}
	timer(0);
	tu_out("done conns=%lu accepted=%lu adv=%lu real=%lu eagain=%lu "
	       "torn=%lu",
	       conns, n_acc, n_adv, n_real, n_eagain, n_torn);
	return n_torn == 0 && n_acc == conns && n_adv > 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *mode = "dup2";
	struct sigaction sa;
	double seconds = 2;
	long usec = 50;
	int port = 0, opt, ret;

	while ((opt = getopt(argc, argv, "m:p:s:i:")) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'i':
			usec = atol(optarg);
			break;
		default:
			return 64;
		}
	}
	if (port <= 0 || usec <= 0)
		return 64;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (strcmp(mode, "dup2") == 0)
		sa.sa_handler = on_alarm_dup2;
	else if (strcmp(mode, "udp") == 0)
		sa.sa_handler = on_alarm_udp;
	else if (strcmp(mode, "accept") == 0)
		sa.sa_handler = on_alarm_accept;
	else
		return 64;
	if (sigaction(SIGALRM, &sa, NULL) != 0)
		return 2;
	if (strcmp(mode, "dup2") == 0)
		ret = run_dup2(port, seconds, usec);
	else if (strcmp(mode, "udp") == 0)
		ret = run_udp(port, seconds, usec);
	else
		ret = run_accept(port, seconds, usec);
	timer(0);
	tu_out("signals %lu", n_sig);
	return ret;
}

/*
 * reuse: a descriptor the library tracks is closed behind its back, and
 * its number given to another descriptor; does the new one read its own
 * data and report its own addresses?
 *
 *   reuse -k KIND -p PORT -c CLOSE -w WAY [-R] [-s]
 *
 * KIND is the entry the library holds for the number:
 *   conn    a connection accepted on the PROXY-only TCP port PORT (the
 *           client sends a header and one line);
 *   listen  the PROXY-only listener on PORT itself (a first client sends
 *           a header and one line, to show the listener is PROXY-only);
 *   udp     a datagram socket bound to the PROXY-only PORT/udp (the
 *           client sends one datagram with a v2 header).
 * Once ready the program prints "listening port=PORT"; after the client's
 * connection or datagram, "before peer=ADDR sock=ADDR" with what the
 * library reported for it.
 *
 * CLOSE is how the number is closed without the library seeing it: raw
 * (the close system call) or fclose (of an fdopen'ed stream).
 *
 * WAY is how another descriptor gets the number:
 *   socketpair  one end of a UNIX stream pair;
 *   scm         a socket received with SCM_RIGHTS: a TCP connection to
 *               the PROXY-only port itself, accepted behind the library's
 *               back (so it has the same local port and no header), for
 *               listen a plain listener on another port;
 *   socket      socket + connect to a plain listener of this process (for
 *               listen: socket + bind + listen on another port);
 *   udp         a datagram socket bound to another port;
 *   pipe, open, eventfd, memfd  the calls of the same names.
 * With -R the socket, socketpair and recvmsg calls are raw system calls,
 * so that the library sees nothing of the new descriptor and only its
 * identity checks stand between it and the old entry.
 *
 * Then data goes through the new descriptor (in pieces of 7 bytes, for a
 * listener through a connection accepted on it; with -s that client
 * sends nothing until accept returned), and one line is printed:
 *   after same=1 data=ok peer=ADDR sock=ADDR want_peer=ADDR want_sock=ADDR
 * (ADDR "-" where the call fails, "unix:" for an unnamed UNIX socket), or
 * "error WHAT errno=N".
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#define DATA_LEN 3000

static const char *kind = "conn", *how = "raw", *way = "socketpair";
static int port;
static bool raw, silent, sent;
static unsigned char data[DATA_LEN];

static void
die(const char *what)
{
	tu_out("error %s errno=%d", what, errno);
	exit(1);
}

/* "peer" or "sock" of fd as the (hooked) calls report it. */
static void
name(int fd, bool peer, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		     : getsockname(fd, (struct sockaddr *)&ss, &len);

	if (r != 0)
		snprintf(out, cap, "-");
	else
		tu_fmt_addr(&ss, len, out, cap);
}

static int
new_socket(int domain, int type)
{
	int fd = raw ? (int)syscall(SYS_socket, domain, type, 0)
		     : socket(domain, type, 0);

	if (fd < 0)
		die("socket");
	return fd;
}

static int
bind_to(int fd, const struct sockaddr *a, socklen_t len)
{
	return raw ? (int)syscall(SYS_bind, fd, a, len) : bind(fd, a, len);
}

static int
tcp_listener(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = new_socket(AF_INET, SOCK_STREAM), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind_to(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("bind");
	if ((raw ? (int)syscall(SYS_listen, fd, 16) : listen(fd, 16)) != 0)
		die("listen");
	return fd;
}

static void
connect_to(int fd, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(lfd, (struct sockaddr *)&ss, &len) != 0 ||
	    (raw ? (int)syscall(SYS_connect, fd, &ss, len)
		 : connect(fd, (struct sockaddr *)&ss, len)) != 0)
		die("connect");
}

static void
send_fd(int chan, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "F", .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(chan, &m, 0) != 1)
		die("sendmsg");
}

static int
recv_fd(int chan)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;
	int fd;

	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	n = raw ? syscall(SYS_recvmsg, chan, &m, 0) : recvmsg(chan, &m, 0);
	c = CMSG_FIRSTHDR(&m);
	if (n != 1 || c == NULL || c->cmsg_type != SCM_RIGHTS)
		die("recvmsg");
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Close fd without the library seeing it. */
static void
close_behind(int fd)
{
	if (strcmp(how, "fclose") == 0) {
		FILE *f = fdopen(fd, "r+");

		if (f == NULL)
			die("fdopen");
		fclose(f);
	} else {
		syscall(SYS_close, fd);
	}
}

/* Read DATA_LEN bytes from fd, 7 at a time (read, recv, recvfrom). */
static bool
read_all(int fd)
{
	unsigned char got[DATA_LEN];
	size_t have = 0;
	ssize_t n;
	int i = 0, type;
	socklen_t tlen = sizeof(type);
	bool sock = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;

	while (have < DATA_LEN) {
		size_t want = DATA_LEN - have < 7 ? DATA_LEN - have : 7;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 5000) != 1)
			return false;
		switch (sock ? i++ % 3 : 0) {
		case 0:
			n = read(fd, got + have, want);
			break;
		case 1:
			n = recv(fd, got + have, want, 0);
			break;
		default:
			n = recvfrom(fd, got + have, want, 0, NULL, NULL);
			break;
		}
		if (n <= 0)
			return false;
		have += (size_t)n;
	}
	return memcmp(got, data, DATA_LEN) == 0;
}

static void
write_all(int fd, const void *p, size_t n)
{
	if (!tu_write_all(fd, p, n))
		die("write");
}

static void
report(int newfd, int oldfd, bool ok, int other)
{
	char peer[128], sock[128], wpeer[128] = "-", wsock[128] = "-";

	/* getsockname first: a getpeername that noticed a stale entry
	 * would have the library forget it before getsockname is asked. */
	name(newfd, false, sock, sizeof(sock));
	name(newfd, true, peer, sizeof(peer));
	if (other >= 0) {
		/* What the other end sees, swapped: plain sockets. */
		name(other, false, wpeer, sizeof(wpeer));
		name(other, true, wsock, sizeof(wsock));
	}
	tu_out("after same=%d data=%s peer=%s sock=%s want_peer=%s "
	       "want_sock=%s",
	       newfd == oldfd, ok ? "ok" : "bad", peer, sock, wpeer, wsock);
}

/* The accepted side of a fresh connection to lfd (a plain listener, or
 * the PROXY-only one behind the library's back); *cli the client. */
static int
plain_conn(int lfd, int *cli)
{
	int fd;

	*cli = new_socket(AF_INET, SOCK_STREAM);
	connect_to(*cli, lfd);
	/* Sent at once: a PROXY-only listener defers accept until data. */
	write_all(*cli, data, DATA_LEN);
	sent = true;
	fd = (int)syscall(SYS_accept4, lfd, NULL, NULL, 0);
	if (fd < 0)
		die("accept");
	return fd;
}

/*
 * Give the number old (closed behind the library's back) to a new
 * descriptor, made ready beforehand where that needs descriptors of its
 * own.  Returns it; *other is the descriptor at its other end (-1).
 */
static int
reuse(int old, int proxy_lfd, int *other)
{
	int chan[2] = { -1, -1 }, sv[2], pass = -1, cli = -1, lfd = -1, fd;
	char path[] = "/tmp/ppshim-reuse-XXXXXX";

	*other = -1;
	if (strcmp(way, "open") == 0) {
		int w = mkstemp(path);

		if (w < 0)
			die("mkstemp");
		write_all(w, data, DATA_LEN);
		close(w);
	}
	if (strcmp(way, "scm") == 0) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, chan) != 0)
			die("socketpair");
		if (strcmp(kind, "listen") == 0) {
			pass = tcp_listener();
		} else {
			pass = plain_conn(proxy_lfd >= 0
						  ? proxy_lfd
						  : (lfd = tcp_listener()),
					  &cli);
			*other = cli;
		}
		send_fd(chan[1], pass);
		close(pass);
	} else if (strcmp(way, "socket") == 0 && strcmp(kind, "listen") != 0) {
		lfd = tcp_listener();
	}
	close_behind(old);
	if (strcmp(way, "socketpair") == 0) {
		if ((raw ? (int)syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0,
					sv)
			 : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) != 0)
			die("socketpair");
		*other = sv[1];
		return sv[0];
	}
	if (strcmp(way, "scm") == 0) {
		fd = recv_fd(chan[0]);
		return fd;
	}
	if (strcmp(way, "socket") == 0) {
		if (strcmp(kind, "listen") == 0)
			return tcp_listener();
		fd = new_socket(AF_INET, SOCK_STREAM);
		connect_to(fd, lfd);
		*other = (int)syscall(SYS_accept4, lfd, NULL, NULL, 0);
		if (*other < 0)
			die("accept");
		return fd;
	}
	if (strcmp(way, "udp") == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET };

		fd = new_socket(AF_INET, SOCK_DGRAM);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind_to(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
			die("bind");
		*other = socket(AF_INET, SOCK_DGRAM, 0);
		connect_to(*other, fd);
		connect_to(fd, *other);
		return fd;
	}
	if (strcmp(way, "pipe") == 0) {
		if (pipe(sv) != 0)
			die("pipe");
		*other = sv[1];
		return sv[0];
	}
	if (strcmp(way, "open") == 0) {
		fd = open(path, O_RDONLY);
		unlink(path);
		return fd;
	}
	if (strcmp(way, "eventfd") == 0)
		return eventfd(0, 0);
	if (strcmp(way, "memfd") == 0) {
		fd = memfd_create("ppshim-reuse", 0);
		if (fd >= 0) {
			write_all(fd, data, DATA_LEN);
			lseek(fd, 0, SEEK_SET);
		}
		return fd;
	}
	die("unknown way");
	return -1;
}

/* Data through new descriptor fd, whose other end is other. */
static bool
exchange(int fd, int other, int *peer_of_accepted)
{
	uint64_t v = 0, one = 5;

	*peer_of_accepted = -1;
	if (strcmp(kind, "listen") == 0 && strcmp(way, "socketpair") != 0) {
		/* A listener now: a client connects, accept serves it. */
		int cli = new_socket(AF_INET, SOCK_STREAM), c;
		struct timespec t0, t1;

		connect_to(cli, fd);
		if (!silent)
			write_all(cli, data, DATA_LEN);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		c = accept(fd, NULL, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (c < 0)
			die("accept after reuse");
		if (t1.tv_sec - t0.tv_sec >= 2)
			die("accept was late");
		if (silent)
			write_all(cli, data, DATA_LEN);
		*peer_of_accepted = cli;
		return read_all(c) && dup2(c, fd + 100) >= 0;
	}
	if (strcmp(way, "eventfd") == 0) {
		write_all(fd, &one, sizeof(one));
		return read(fd, &v, sizeof(v)) == sizeof(v) && v == 5;
	}
	if (other >= 0 && strcmp(way, "udp") == 0) {
		unsigned char got[DATA_LEN];

		if (send(other, data, 1000, 0) != 1000)
			die("send");
		return recv(fd, got, sizeof(got), 0) == 1000 &&
		       memcmp(got, data, 1000) == 0;
	}
	if (other >= 0 && !sent)
		write_all(other, data, DATA_LEN);
	return read_all(fd);
}

int
main(int argc, char **argv)
{
	char line[4096], peer[128], sock[128];
	struct sockaddr_storage ss;
	socklen_t len;
	int opt, lfd = -1, old, fd, other, cli, i;
	ssize_t n;
	bool ok;

	while ((opt = getopt(argc, argv, "k:p:c:w:Rs")) != -1) {
		switch (opt) {
		case 'k':
			kind = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'c':
			how = optarg;
			break;
		case 'w':
			way = optarg;
			break;
		case 'R':
			raw = true;
			break;
		case 's':
			silent = true;
			break;
		default:
			return 2;
		}
	}
	for (i = 0; i < DATA_LEN; i++)
		data[i] = (unsigned char)(i * 7 + i / 256);

	/* The tracked descriptor, and the client's connection or datagram
	 * through it with what the library reported. */
	{
		struct sockaddr_in a = { .sin_family = AF_INET };
		int one = 1;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)port);
		lfd = socket(
			AF_INET,
			strcmp(kind, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM, 0);
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0)
			die("bind");
		if (strcmp(kind, "udp") != 0 && listen(lfd, 16) != 0)
			die("listen");
	}
	tu_out("listening port=%d", port);
	if (strcmp(kind, "udp") == 0) {
		len = sizeof(ss);
		n = recvfrom(lfd, line, sizeof(line), 0, (struct sockaddr *)&ss,
			     &len);
		if (n < 0)
			die("recvfrom");
		tu_fmt_addr(&ss, len, peer, sizeof(peer));
		tu_out("before peer=%s data=%.*s", peer, (int)n, line);
		old = lfd;
		lfd = -1;
	} else {
		old = accept(lfd, NULL, NULL);
		if (old < 0)
			die("accept");
		name(old, true, peer, sizeof(peer));
		name(old, false, sock, sizeof(sock));
		n = read(old, line, sizeof(line));
		tu_out("before peer=%s sock=%s data=%.*s", peer, sock,
		       (int)(n > 0 ? n - 1 : 0), line);
		if (strcmp(kind, "listen") == 0) {
			close(old);
			old = lfd;
			lfd = -1;
		}
	}
	fd = reuse(old, lfd, &other);
	if (fd < 0)
		die(way);
	ok = exchange(fd, other, &cli);
	if (cli >= 0) {
		/* The listener: the addresses of the connection accepted on
		 * it (kept at fd + 100), against its client's. */
		report(fd + 100, old + 100, ok, cli);
		tu_out("listener same=%d", fd == old);
	} else {
		report(fd, old, ok, other);
	}
	return 0;
}

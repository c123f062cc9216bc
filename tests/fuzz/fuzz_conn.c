/*
 * fuzz_conn.c - libFuzzer target for the whole accept path of a
 * PROXY-only listener: read the header, strip it, decide.
 *
 * The library's sources are linked into this program, so the accept,
 * accept4, getpeername, getsockname, dup, dup2, close and read called
 * here are its hooks, exactly as in a preloaded server, and its worker
 * thread and knocks run as they do there.  A constructor that runs
 * before the library's opens four listeners on loopback and names them
 * in PP_PORTS, with PP_ALLOW=127.0.0.1,::1 and PP_DIRECT=127.0.0.3:
 *
 *   0  127.0.0.1                 (AF_INET)
 *   1  [::1]                     (AF_INET6, IPv6 only)
 *   2  [::ffff:127.0.0.1]        (AF_INET6 reached by IPv4 clients)
 *   3  unix:@ppshim-fuzz-PID     (abstract UNIX: every peer trusted)
 *
 * Without IPv6 (or without ::1 on lo) listener 0 takes the inputs of the
 * listeners that could not be made.
 *
 * Each input is one connection.  Its first byte chooses
 *   bits 0-1  the listener;
 *   bits 2-3  the client's source on listeners 0 and 2: 127.0.0.1
 *             (trusted; also 3), 127.0.0.2 (untrusted), 127.0.0.3
 *             (direct);
 *   bits 4-5  how many cuts (0-3) the stream is written in, each given
 *             by the two bytes (big-endian offset) that follow;
 *   bit 6     accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC;
 *   bit 7     an 8-byte address buffer for accept (truncation).
 * The rest is the stream the client sends.  After each piece but the
 * last the program calls accept once (that first attempt may find a
 * partial header, which the library's worker then finishes); after the
 * last the client shuts its side down, and the program waits, accepting,
 * until it is handed the connection or the client sees it closed.
 *
 * The outcome is checked against pp_parse_buf() on the whole stream and
 * the contract's table:
 *   - untrusted source: never accepted; the client sees EOF or a reset;
 *   - direct source: accepted, real addresses, every byte intact;
 *   - trusted source, no complete valid header, or an IPv6 client on the
 *     IPv4 listener: never accepted;
 *   - trusted, LOCAL, UNKNOWN, UNSPEC or UNIX addresses: accepted, real
 *     addresses;
 *   - trusted, INET or INET6: the advertised source from accept and
 *     getpeername, the advertised destination from getsockname (IPv4
 *     mapped on the IPv6 listeners);
 * and whenever it is accepted: the bytes read are exactly the stream
 * after the header, the accept4 flags are the ones asked for, a
 * truncated address buffer is filled the kernel's way, a dup reports the
 * same, and a plain socket dup2'ed over the number reports its own
 * address.  A connection that settles neither way within 5 seconds
 * fails too.  Every failure aborts with a line saying which rule broke.
 *
 * FUZZ_CONN_LOG=1 turns the library's logging on (PP_LOG=debug to
 * syslog), so that the log formatting of every header runs as well.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_net.h"
#include "pp_config.h"
#include "pp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The library's configuration (src/init.c), read by its constructor. */
extern struct pp_config pp_cfg;

#define PP_FZ_NLISTEN 4
#define PP_FZ_STREAM_MAX (PP_V2_MAX + 4096)
#define PP_FZ_SETTLE_MS 5000
#define PP_FZ_BUF (1 << 20)

#define PP_FZ_CHECK(c, what)                                                   \
	do {                                                                   \
		if (!(c))                                                      \
			pp_fn_fail("fuzz_conn.c", __LINE__, what);             \
	} while (0)

struct pp_fz_listener {
	int fd;
	int family;             /* of the listening socket */
	int cfamily;            /* of the client sockets that reach it */
	union pp_sockaddr addr; /* where clients connect */
	socklen_t addrlen;
	union pp_sockaddr local; /* its own address (getsockname) */
	socklen_t locallen;
};

static struct pp_fz_listener pp_fz_l[PP_FZ_NLISTEN];
static int pp_fz_setup_errno;
static const char *pp_fz_setup_what;
static size_t pp_fz_nports; /* named in PP_PORTS */

static int64_t
pp_fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ===== Set-up, before the library reads its configuration ===== */

/* Raw system calls only: the hooks must not run before setenv. */
static int
pp_fz_listen_on(struct pp_fz_listener *l, int family, const void *sa,
		socklen_t len, int v6only)
{
	int fd, one = 1, big = PP_FZ_BUF;

	fd = (int)syscall(SYS_socket, family,
			  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (family != AF_UNIX) {
		syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_REUSEADDR, &one,
			sizeof(one));
		syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVBUF, &big,
			sizeof(big));
	}
	if (family == AF_INET6)
		syscall(SYS_setsockopt, fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			sizeof(v6only));
	l->locallen = sizeof(l->local);
	if (syscall(SYS_bind, fd, sa, len) != 0 ||
	    syscall(SYS_listen, fd, 256) != 0 ||
	    syscall(SYS_getsockname, fd, &l->local.sa, &l->locallen) != 0) {
		syscall(SYS_close, fd);
		return -1;
	}
	l->fd = fd;
	l->family = family;
	return 0;
}

__attribute__((constructor(101))) static void
pp_fz_setup(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct pp_fz_listener *l;
	char ports[256];
	socklen_t ulen;
	size_t n;
	int i;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = &pp_fz_l[0];
	if (pp_fz_listen_on(l, AF_INET, &sin, sizeof(sin), 0) != 0) {
		pp_fz_setup_what = "listener on 127.0.0.1";
		goto fail;
	}
	l->cfamily = AF_INET;
	l->addr = l->local;
	l->addrlen = l->locallen;

	/* Listeners 1 and 2 need IPv6 (1: on lo too); without, their
	 * inputs go to listener 0. */
	l = &pp_fz_l[1];
	sin6.sin6_addr = in6addr_loopback;
	if (pp_fz_listen_on(l, AF_INET6, &sin6, sizeof(sin6), 1) != 0) {
		l->fd = -1;
	} else {
		l->cfamily = AF_INET6;
		l->addr = l->local;
		l->addrlen = l->locallen;
	}

	l = &pp_fz_l[2];
	memset(&sin6.sin6_addr, 0, sizeof(sin6.sin6_addr));
	sin6.sin6_addr.s6_addr[10] = 0xff;
	sin6.sin6_addr.s6_addr[11] = 0xff;
	sin6.sin6_addr.s6_addr[12] = 127;
	sin6.sin6_addr.s6_addr[15] = 1;
	if (pp_fz_listen_on(l, AF_INET6, &sin6, sizeof(sin6), 0) != 0) {
		l->fd = -1;
	} else {
		l->cfamily = AF_INET;
		memset(&l->addr, 0, sizeof(l->addr));
		l->addr.sin.sin_family = AF_INET;
		l->addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l->addr.sin.sin_port = l->local.sin6.sin6_port;
		l->addrlen = sizeof(struct sockaddr_in);
	}

	l = &pp_fz_l[3];
	n = (size_t)snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
			     "ppshim-fuzz-%ld", (long)getpid());
	ulen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	if (pp_fz_listen_on(l, AF_UNIX, &sun, ulen, 0) != 0) {
		pp_fz_setup_what = "abstract UNIX listener";
		goto fail;
	}
	l->cfamily = AF_UNIX;
	l->addr = l->local;
	l->addrlen = l->locallen;

	n = (size_t)snprintf(ports, sizeof(ports), "%u,unix:@%s",
			     ntohs(pp_fz_l[0].local.sin.sin_port),
			     sun.sun_path + 1);
	pp_fz_nports = 2;
	for (i = 1; i <= 2; i++) {
		if (pp_fz_l[i].fd < 0)
			continue;
		n += (size_t)snprintf(ports + n, sizeof(ports) - n, ",%u",
				      ntohs(pp_fz_l[i].local.sin6.sin6_port));
		pp_fz_nports++;
	}
	pp_fn_env();
	pp_fn_set("PP_PORTS", ports);
	pp_fn_set("PP_TIMEOUT_MS", "3000");
	pp_fn_set("PP_VERSIONS", "1,2");
	pp_fn_set("PP_SOCKNAME", "proxied");
	if (getenv("FUZZ_CONN_LOG") != NULL &&
	    strcmp(getenv("FUZZ_CONN_LOG"), "1") == 0) {
		pp_fn_set("PP_LOG", "debug");
		pp_fn_set("PP_LOG_TARGET", "syslog");
	} else {
		pp_fn_set("PP_LOG", "none");
	}
	return;
fail:
	pp_fz_setup_errno = errno;
	for (i = 0; i < PP_FZ_NLISTEN; i++)
		pp_fz_l[i].fd = -1;
}

/* ===== One connection ===== */

struct pp_fz_case {
	const struct pp_fz_listener *l;
	enum pp_fn_src src;
	int flags;      /* accept4 flags */
	socklen_t alen; /* address buffer given to accept */
	const uint8_t *stream;
	size_t len;
	size_t cuts[4];
	size_t ncuts;
	/* the expectation */
	bool accepted;
	size_t hlen; /* bytes stripped */
	bool advertised;
	struct pp_fn_addr peer, sock;
};

static void
pp_fz_expect(struct pp_fz_case *c, const struct pp_fn_addr *real_peer,
	     const struct pp_fn_addr *real_sock)
{
	struct pp_header h;
	enum pp_err err;

	c->accepted = false;
	c->hlen = 0;
	c->advertised = false;
	c->peer = *real_peer;
	c->sock = *real_sock;
	if (c->src == PP_FN_UNTRUSTED)
		return;
	if (c->src == PP_FN_DIRECT) {
		c->accepted = true;
		return;
	}
	if (pp_parse_buf(c->stream, c->len, pp_cfg.versions, &h, &err, NULL,
			 0) != PP_DONE)
		return;
	c->hlen = h.len;
	if (h.command == PP_CMD_LOCAL || h.transport == PP_TP_UNSPEC ||
	    (h.family != PP_FAM_INET && h.family != PP_FAM_INET6)) {
		c->accepted = true;
		return;
	}
	if (h.family == PP_FAM_INET6 && c->l->family == AF_INET)
		return;
	c->accepted = true;
	c->advertised = true;
	pp_fn_as(&h.src, c->l->family, &c->peer);
	pp_fn_as(&h.dst, c->l->family, &c->sock);
}

/* The client: a non-blocking socket from the chosen source. */
static int
pp_fz_client(const struct pp_fz_case *c)
{
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct pollfd pfd;
	int fd, big = PP_FZ_BUF, err = 0;
	socklen_t elen = sizeof(err);

	fd = socket(c->l->cfamily, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	PP_FZ_CHECK(fd >= 0, "client socket");
	if (c->l->cfamily != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (c->l->cfamily == AF_INET) {
		from.sin_addr.s_addr = pp_fn_src_addr(c->src);
		PP_FZ_CHECK(bind(fd, (struct sockaddr *)&from, sizeof(from)) ==
				    0,
			    "bind the client to its source");
	}
	if (connect(fd, &c->l->addr.sa, c->l->addrlen) != 0) {
		PP_FZ_CHECK(errno == EINPROGRESS,
			    "connect to the listener (backlog full?)");
		pfd.fd = fd;
		pfd.events = POLLOUT;
		PP_FZ_CHECK(poll(&pfd, 1, PP_FZ_SETTLE_MS) == 1,
			    "connect did not complete");
		PP_FZ_CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) ==
					    0 &&
				    err == 0,
			    "connect failed");
	}
	return fd;
}

/* Send data whole (or until the server has closed the connection). */
static void
pp_fz_send(int fd, const uint8_t *data, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int64_t deadline = pp_fz_now_ms() + PP_FZ_SETTLE_MS;
	ssize_t k;

	while (n > 0) {
		k = send(fd, data, n, MSG_NOSIGNAL);
		if (k > 0) {
			data += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
			return; /* refused: checked later */
		PP_FZ_CHECK(k < 0 && (errno == EAGAIN || errno == EINTR),
			    "client send");
		PP_FZ_CHECK(pp_fz_now_ms() < deadline,
			    "client send blocked: nobody reads the stream");
		(void)poll(&pfd, 1, 50);
	}
}

/* One accept as the program makes it; checks the address it returns. */
static int
pp_fz_accept(const struct pp_fz_case *c)
{
	uint8_t buf[sizeof(union pp_sockaddr) + 16];
	struct pp_fn_addr got;
	socklen_t len = c->alen;
	int fd, fl, fdfl;
	size_t i;

	memset(buf, 0xa5, sizeof(buf));
	fd = accept4(c->l->fd, (struct sockaddr *)buf, &len, c->flags);
	if (fd < 0) {
		PP_FZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK ||
				    errno == EINTR,
			    "accept failed with something but EAGAIN");
		return -1;
	}
	PP_FZ_CHECK(c->accepted, "accept returned a connection that must "
				 "be refused");
	for (i = c->alen; i < sizeof(buf); i++)
		PP_FZ_CHECK(buf[i] == 0xa5, "accept wrote past the buffer");
	PP_FZ_CHECK(len == c->peer.len, "accept: address length");
	if (c->alen >= len) {
		pp_fn_norm(buf, len, &got);
		PP_FZ_CHECK(pp_fn_same(&got, &c->peer), "accept: address");
	} else if (c->peer.family == AF_INET || c->peer.family == AF_INET6) {
		/* 8 bytes: the family and the port are in */
		pp_fn_norm(buf, len, &got);
		PP_FZ_CHECK(got.family == c->peer.family &&
				    got.port == c->peer.port,
			    "accept: truncated address");
	}
	fl = fcntl(fd, F_GETFL);
	fdfl = fcntl(fd, F_GETFD);
	PP_FZ_CHECK(fl >= 0 && fdfl >= 0, "fcntl on the connection");
	PP_FZ_CHECK(!(fl & O_NONBLOCK) == !(c->flags & SOCK_NONBLOCK),
		    "accept4: O_NONBLOCK not as asked");
	PP_FZ_CHECK(!(fdfl & FD_CLOEXEC) == !(c->flags & SOCK_CLOEXEC),
		    "accept4: FD_CLOEXEC not as asked");
	return fd;
}

/* Is the client's connection closed by the server (EOF or reset)? */
static bool
pp_fz_client_closed(int cfd)
{
	uint8_t b;
	ssize_t n = recv(cfd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n == 0)
		return true;
	if (n < 0)
		return errno == ECONNRESET || errno == EPIPE;
	pp_fn_fail("fuzz_conn.c", __LINE__,
		   "the client received bytes from the server");
	return false;
}

static void
pp_fz_names(int fd, const struct pp_fz_case *c, const char *what)
{
	union pp_sockaddr sa;
	struct pp_fn_addr got;
	socklen_t len = sizeof(sa);

	PP_FZ_CHECK(getpeername(fd, &sa.sa, &len) == 0, what);
	pp_fn_norm(&sa, len, &got);
	PP_FZ_CHECK(pp_fn_same(&got, &c->peer), what);
	len = sizeof(sa);
	PP_FZ_CHECK(getsockname(fd, &sa.sa, &len) == 0, what);
	pp_fn_norm(&sa, len, &got);
	PP_FZ_CHECK(pp_fn_same(&got, &c->sock), what);
}

/* Read the connection to EOF: exactly the stream after the header. */
static void
pp_fz_read_all(int fd, const struct pp_fz_case *c)
{
	static uint8_t buf[65536];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t deadline = pp_fz_now_ms() + PP_FZ_SETTLE_MS;
	size_t off = c->hlen;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			PP_FZ_CHECK(errno == EAGAIN || errno == EINTR,
				    "read from the accepted connection");
			PP_FZ_CHECK(pp_fz_now_ms() < deadline,
				    "the stream did not reach its end");
			(void)poll(&pfd, 1, 50);
			continue;
		}
		PP_FZ_CHECK((size_t)n <= c->len - off,
			    "more bytes than the client sent after the header");
		PP_FZ_CHECK(memcmp(buf, c->stream + off, (size_t)n) == 0,
			    "the bytes after the header differ");
		off += (size_t)n;
	}
	PP_FZ_CHECK(off == c->len, "bytes after the header missing");
}

static void
pp_fz_rst_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/*
 * What an accepted connection must report, also under other numbers.
 * Closes the client (a reset: no TIME_WAIT left behind) and fd.
 */
static void
pp_fz_check_conn(int fd, int cfd, const struct pp_fz_case *c)
{
	union pp_sockaddr sa;
	int d, sp[2];
	socklen_t len = sizeof(sa);

	pp_fz_names(fd, c, "getpeername/getsockname on the connection");
	pp_fz_read_all(fd, c);
	d = dup(fd);
	PP_FZ_CHECK(d >= 0, "dup");
	pp_fz_names(d, c, "the addresses after dup");
	/* A plain socket put over the number reports its own address. */
	PP_FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0,
		    "socketpair");
	PP_FZ_CHECK(dup2(sp[0], fd) == fd, "dup2");
	PP_FZ_CHECK(getpeername(fd, &sa.sa, &len) == 0 &&
			    sa.sa.sa_family == AF_UNIX,
		    "dup2 over a proxied number: stale address");
	pp_fz_names(d, c,
		    "the addresses of the dup after dup2 over the "
		    "original");
	pp_fz_rst_close(cfd);
	close(sp[0]);
	close(sp[1]);
	close(fd);
	close(d);
}

static void
pp_fz_run(struct pp_fz_case *c)
{
	struct pp_fn_addr real_peer, real_sock;
	union pp_sockaddr sa;
	struct pollfd pfd[2];
	socklen_t len;
	int64_t deadline;
	size_t i, from = 0, to;
	int cfd, fd = -1;

	cfd = pp_fz_client(c);
	/* The real addresses, as the kernel gives them to the server. */
	len = sizeof(sa);
	PP_FZ_CHECK(syscall(SYS_getsockname, cfd, &sa.sa, &len) == 0,
		    "client getsockname");
	if (c->l->family == AF_UNIX) {
		/* An unbound client: the server sees an unnamed peer. */
		memset(&sa, 0, sizeof(sa));
		sa.sa.sa_family = AF_UNIX;
		pp_fn_norm(&sa, sizeof(sa_family_t), &real_peer);
	} else {
		pp_fn_as(&sa, c->l->family, &real_peer);
	}
	pp_fn_norm(&c->l->local, c->l->locallen, &real_sock);
	pp_fz_expect(c, &real_peer, &real_sock);

	for (i = 0; i <= c->ncuts; i++) {
		to = i < c->ncuts ? c->cuts[i] : c->len;
		pp_fz_send(cfd, c->stream + from, to - from);
		from = to;
		if (i < c->ncuts && fd < 0)
			fd = pp_fz_accept(c);
	}
	shutdown(cfd, SHUT_WR);

	deadline = pp_fz_now_ms() + PP_FZ_SETTLE_MS;
	while (fd < 0) {
		fd = pp_fz_accept(c);
		if (fd >= 0)
			break;
		if (pp_fz_client_closed(cfd)) {
			PP_FZ_CHECK(!c->accepted, "a connection the contract "
						  "accepts was refused");
			break;
		}
		PP_FZ_CHECK(pp_fz_now_ms() < deadline,
			    "the connection was neither accepted nor refused");
		pfd[0].fd = c->l->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = cfd;
		pfd[1].events = POLLIN;
		(void)poll(pfd, 2, 100);
	}
	if (fd >= 0)
		pp_fz_check_conn(fd, cfd, c);
	else
		pp_fz_rst_close(cfd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_fz_case c;
	size_t i, j, k, t;

	if (pp_fz_l[0].fd < 0 || pp_cfg.nports != pp_fz_nports) {
		fprintf(stderr, "fuzz_conn: set-up failed (%s: %s)\n",
			pp_fz_setup_what ? pp_fz_setup_what
					 : "the library read no PP_PORTS",
			strerror(pp_fz_setup_errno));
		abort();
	}
	if (size < 1)
		return 0;
	memset(&c, 0, sizeof(c));
	c.l = &pp_fz_l[data[0] & 3];
	if (c.l->fd < 0)
		c.l = &pp_fz_l[0]; /* no IPv6 here */
	c.src = PP_FN_TRUSTED;
	if (c.l->cfamily == AF_INET) {
		c.src = pp_fn_src_of(data[0] >> 2);
	}
	c.flags = (data[0] & 0x40) ? SOCK_NONBLOCK | SOCK_CLOEXEC : 0;
	c.alen = (data[0] & 0x80) ? 8 : sizeof(union pp_sockaddr);
	c.ncuts = (data[0] >> 4) & 3;
	if (size < 1 + 2 * c.ncuts)
		return 0;
	c.stream = data + 1 + 2 * c.ncuts;
	c.len = size - 1 - 2 * c.ncuts;
	if (c.len > PP_FZ_STREAM_MAX)
		c.len = PP_FZ_STREAM_MAX;
	for (i = 0; i < c.ncuts; i++) {
		k = ((size_t)data[1 + 2 * i] << 8) | data[2 + 2 * i];
		c.cuts[i] = c.len ? k % (c.len + 1) : 0;
	}
	/* in order */
	for (i = 1; i < c.ncuts; i++)
		for (j = i; j > 0 && c.cuts[j - 1] > c.cuts[j]; j--) {
			t = c.cuts[j];
			c.cuts[j] = c.cuts[j - 1];
			c.cuts[j - 1] = t;
		}
	pp_fz_run(&c);
	return 0;
}

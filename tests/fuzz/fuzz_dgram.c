/*
 * fuzz_dgram.c - libFuzzer target for the whole datagram path of
 * PROXY-only UDP sockets: receive, judge, strip, report, route the reply.
 *
 * The library's sources are linked into this program, so the receive and
 * send calls made here (and connect) are its hooks, exactly as in a
 * preloaded server.  A constructor that runs before the
 * library's binds four non-blocking UDP sockets on loopback and names them
 * in PP_PORTS, with PP_ALLOW=127.0.0.1,::1 and PP_DIRECT=127.0.0.3; the
 * first input has the library classify them, as its bind() would have:
 *
 *   0  127.0.0.1                 (AF_INET, v2)
 *   1  [::1]                     (AF_INET6, IPv6 only, v2)
 *   2  [::ffff:127.0.0.1]        (AF_INET6 reached by IPv4 senders, v2)
 *   3  127.0.0.1                 (AF_INET, PORT/udp+spp: SPP headers)
 *
 * Without IPv6 (or without ::1 on lo) socket 0 takes the inputs of the
 * sockets that could not be made.
 *
 * Each input is one datagram.  Its first byte chooses
 *   bits 0-1  the socket;
 *   bits 2-3  the sender's source on the IPv4 sockets: 127.0.0.1
 *             (trusted; also 3), 127.0.0.2 (untrusted), 127.0.0.3
 *             (direct); on [::1] always ::1 (trusted);
 *   bits 4-6  the receiving call: recvfrom, recv, read, recvmsg with one
 *             buffer, recvmsg with the buffer in two pieces, recvmmsg,
 *             recvfrom with MSG_PEEK then again without, recvfrom with
 *             MSG_TRUNC;
 *   bit 7     an 8-byte buffer instead of a 64 KiB one (truncation).
 * The second byte chooses how the program replies to an advertised
 * client:
 *   bits 0-1  sendto, sendmsg, sendmmsg, or connect to the client, send,
 *             and connect(AF_UNSPEC) again;
 *   bit 2     from another thread, which received nothing (the route
 *             then comes from the table shared by all threads).
 * The rest is the datagram the sender sends.
 *
 * The outcome is checked against pp_parse_buf() (pp_parse_spp() on the
 * SPP socket) and the contract:
 *   - untrusted source, no valid header, a header of a version
 *     PP_VERSIONS leaves out, or an IPv6 client on an IPv4 socket:
 *     dropped, the call reports EAGAIN;
 *   - direct source: every byte, the real source;
 *   - LOCAL, UNSPEC transport, UNSPEC or UNIX family: the header
 *     stripped, the real source;
 *   - PROXY INET or INET6: the header stripped, the advertised source
 *     (IPv4 mapped on the IPv6 sockets, an IPv4-mapped client as IPv4
 *     on the IPv4 ones);
 * with the kernel's truncation (the bytes that fit, MSG_TRUNC in
 * msg_flags, the whole length with MSG_TRUNC asked for), a peek that
 * leaves the datagram for the next call, and nothing left behind.  A
 * reply sent to an advertised source must reach the sender (the proxy):
 * bare from a v2 socket, behind the datagram's own SPP header from the
 * SPP socket.  Replies go only to advertised sources on loopback, so that
 * a routing fault could never send one off the machine.  Every failure
 * aborts with a line saying which rule broke.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz_net.h"
#include "pp_config.h"
#include "pp_parse.h"
#include "udp_sock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The library's configuration (src/init.c), read by its constructor. */
extern struct pp_config pp_cfg;

#define PP_FU_NSOCK 4
#define PP_FU_WAIT_MS 5000
#define PP_FU_BIG 65536
#define PP_FU_SMALL 8
#define PP_FU_MAX 65000 /* the largest datagram sent: under UDP's limit */

#define PP_FU_CHECK(c, what)                                                   \
	do {                                                                   \
		if (!(c))                                                      \
			pp_fn_fail("fuzz_dgram.c", __LINE__, what);            \
	} while (0)

enum pp_fu_send { PP_FU_SENDTO, PP_FU_SENDMSG, PP_FU_SENDMMSG, PP_FU_CONNECT };

enum pp_fu_call {
	PP_FU_RECVFROM,
	PP_FU_RECV,
	PP_FU_READ,
	PP_FU_RECVMSG,
	PP_FU_RECVMSG2,
	PP_FU_RECVMMSG,
	PP_FU_PEEK,
	PP_FU_TRUNC,
};

struct pp_fu_sock {
	int fd;
	int family;             /* of the socket */
	int cfamily;            /* of the senders that reach it */
	bool spp;               /* PORT/udp+spp */
	union pp_sockaddr addr; /* where senders send */
	socklen_t addrlen;
};

static struct pp_fu_sock pp_fu_s[PP_FU_NSOCK];
static int pp_fu_setup_errno;
static const char *pp_fu_setup_what;
static size_t pp_fu_nports;
static bool pp_fu_classified;

/* ===== Set-up, before the library reads its configuration ===== */

/* A socket of family, IPv6-only as v6only says; -1 on failure.  Raw
 * system calls only: the hooks must not run before setenv. */
static int
pp_fu_socket(int family, int v6only)
{
	int fd;

	fd = (int)syscall(SYS_socket, family,
			  SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && family == AF_INET6)
		syscall(SYS_setsockopt, fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			sizeof(v6only));
	return fd;
}

/*
 * s: a socket bound to sa (len bytes, port 0) on a port named
 * explicitly, as a server's is: the kernel keeps an ephemeral port
 * only until the socket is disconnected (connect(AF_UNSPEC)), which the
 * replies by connect do.  The port is one the kernel just gave another
 * socket; tried a few times in case someone takes it meanwhile.
 */
static int
pp_fu_bind(struct pp_fu_sock *s, int family, const void *sa, socklen_t len,
	   int v6only)
{
	union pp_sockaddr at;
	socklen_t atlen;
	int fd, probe, tries;

	for (tries = 0; tries < 8; tries++) {
		probe = pp_fu_socket(family, v6only);
		atlen = sizeof(at);
		if (probe < 0 || syscall(SYS_bind, probe, sa, len) != 0 ||
		    syscall(SYS_getsockname, probe, &at.sa, &atlen) != 0) {
			if (probe >= 0)
				syscall(SYS_close, probe);
			return -1;
		}
		syscall(SYS_close, probe);
		fd = pp_fu_socket(family, v6only);
		if (fd < 0)
			return -1;
		s->addrlen = sizeof(s->addr);
		if (syscall(SYS_bind, fd, &at.sa, atlen) == 0 &&
		    syscall(SYS_getsockname, fd, &s->addr.sa, &s->addrlen) ==
			    0) {
			s->fd = fd;
			s->family = family;
			s->cfamily = family;
			return 0;
		}
		syscall(SYS_close, fd);
	}
	return -1;
}

static uint16_t
pp_fu_port(const struct pp_fu_sock *s)
{
	return ntohs(s->family == AF_INET ? s->addr.sin.sin_port
					  : s->addr.sin6.sin6_port);
}

__attribute__((constructor(101))) static void
pp_fu_setup(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	char ports[256];
	int i, len;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (pp_fu_bind(&pp_fu_s[0], AF_INET, &sin, sizeof(sin), 0) != 0) {
		pp_fu_setup_what = "socket on 127.0.0.1";
		goto fail;
	}
	sin6.sin6_addr = in6addr_loopback;
	if (pp_fu_bind(&pp_fu_s[1], AF_INET6, &sin6, sizeof(sin6), 1) != 0)
		pp_fu_s[1].fd = -1; /* no ::1 here */
	memset(&sin6.sin6_addr, 0, sizeof(sin6.sin6_addr));
	sin6.sin6_addr.s6_addr[10] = 0xff;
	sin6.sin6_addr.s6_addr[11] = 0xff;
	sin6.sin6_addr.s6_addr[12] = 127;
	sin6.sin6_addr.s6_addr[15] = 1;
	if (pp_fu_bind(&pp_fu_s[2], AF_INET6, &sin6, sizeof(sin6), 0) != 0)
		pp_fu_s[2].fd = -1; /* no IPv6 here */
	else /* IPv4 senders reach it at 127.0.0.1 and its port */
		pp_fu_s[2].cfamily = AF_INET;
	if (pp_fu_bind(&pp_fu_s[3], AF_INET, &sin, sizeof(sin), 0) != 0) {
		pp_fu_setup_what = "SPP socket on 127.0.0.1";
		goto fail;
	}
	pp_fu_s[3].spp = true;

	len = snprintf(ports, sizeof(ports), "%u/udp,%u/udp+spp",
		       pp_fu_port(&pp_fu_s[0]), pp_fu_port(&pp_fu_s[3]));
	pp_fu_nports = 2;
	for (i = 1; i <= 2; i++) {
		if (pp_fu_s[i].fd < 0)
			continue;
		len += snprintf(ports + len, sizeof(ports) - (size_t)len,
				",%u/udp", pp_fu_port(&pp_fu_s[i]));
		pp_fu_nports++;
	}
	pp_fn_env();
	pp_fn_set("PP_PORTS", ports);
	pp_fn_set("PP_LOG", "none");
	return;
fail:
	pp_fu_setup_errno = errno;
	for (i = 0; i < PP_FU_NSOCK; i++)
		pp_fu_s[i].fd = -1;
}

/* ===== Expected addresses ===== */

/* The client ip (16 bytes, an IPv4 one mapped) and port as a socket of
 * family fam reports it; false when fam cannot hold it. */
static bool
pp_fu_client_as(const uint8_t ip[16], uint16_t port, int fam,
		struct pp_fn_addr *out)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = port };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = port };

	if (fam == AF_INET6) {
		memcpy(&sin6.sin6_addr, ip, 16);
		pp_fn_norm(&sin6, sizeof(sin6), out);
		return true;
	}
	if (memcmp(ip, mapped, sizeof(mapped)) != 0)
		return false;
	memcpy(&sin.sin_addr, ip + 12, 4);
	pp_fn_norm(&sin, sizeof(sin), out);
	return true;
}

/* Whether *a is a loopback address (127.0.0.0/8, ::1, or mapped). */
static bool
pp_fu_loopback(const struct pp_fn_addr *a)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t one[16] = { [15] = 1 };

	if (a->family == AF_INET)
		return a->ip[0] == 127;
	return memcmp(a->ip, one, 16) == 0 ||
	       (memcmp(a->ip, mapped, 12) == 0 && a->ip[12] == 127);
}

/* *a back as a socket address, into *sa; its length. */
static socklen_t
pp_fu_sa(const struct pp_fn_addr *a, union pp_sockaddr *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sa.sa_family = (sa_family_t)a->family;
	if (a->family == AF_INET) {
		sa->sin.sin_port = a->port;
		memcpy(&sa->sin.sin_addr, a->ip, 4);
		return sizeof(sa->sin);
	}
	sa->sin6.sin6_port = a->port;
	memcpy(&sa->sin6.sin6_addr, a->ip, 16);
	return sizeof(sa->sin6);
}

/* ===== One datagram ===== */

struct pp_fu_case {
	const struct pp_fu_sock *s;
	enum pp_fn_src src;
	enum pp_fu_call call;
	size_t buflen;
	enum pp_fu_send send; /* how the reply is sent */
	bool thread;          /* from another thread */
	const uint8_t *dgram;
	size_t len;
	/* the expectation */
	bool delivered;
	size_t hlen; /* bytes stripped */
	bool advertised;
	struct pp_fn_addr peer;
};

static void
pp_fu_expect(struct pp_fu_case *c, const struct pp_fn_addr *real)
{
	struct pp_header h;
	struct pp_spp spp;
	enum pp_err err;
	uint8_t ip[16];
	uint16_t port;

	c->delivered = false;
	c->hlen = 0;
	c->advertised = false;
	c->peer = *real;
	if (c->src == PP_FN_UNTRUSTED)
		return;
	if (c->src == PP_FN_DIRECT) {
		c->delivered = true;
		return;
	}
	if (c->s->spp) {
		if (!pp_parse_spp(c->dgram, c->len, &spp))
			return;
		c->hlen = PP_SPP_LEN;
		memcpy(ip, spp.client, 16);
		port = spp.cport;
	} else {
		if (pp_parse_buf(c->dgram, c->len,
				 pp_cfg.versions &
					 (PP_ACCEPT_V2 | PP_ACCEPT_DRAFT),
				 &h, &err, NULL, 0) != PP_DONE)
			return;
		c->hlen = h.len;
		if (h.command == PP_CMD_LOCAL || h.transport == PP_TP_UNSPEC ||
		    (h.family != PP_FAM_INET && h.family != PP_FAM_INET6)) {
			c->delivered = true;
			return;
		}
		memset(ip, 0, sizeof(ip));
		if (h.family == PP_FAM_INET) {
			ip[10] = ip[11] = 0xff;
			memcpy(ip + 12, &h.src.sin.sin_addr, 4);
			port = h.src.sin.sin_port;
		} else {
			memcpy(ip, &h.src.sin6.sin6_addr, 16);
			port = h.src.sin6.sin6_port;
		}
	}
	if (!pp_fu_client_as(ip, port, c->s->family, &c->peer))
		return;
	c->delivered = true;
	c->advertised = true;
}

/* One sender socket, bound to the source. */
static int
pp_fu_sender_once(const struct pp_fu_case *c)
{
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct sockaddr_in6 from6 = { .sin6_family = AF_INET6,
				      .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd;

	fd = socket(c->s->cfamily, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	PP_FU_CHECK(fd >= 0, "sender socket");
	if (c->s->cfamily == AF_INET) {
		from.sin_addr.s_addr = pp_fn_src_addr(c->src);
		PP_FU_CHECK(bind(fd, (struct sockaddr *)&from, sizeof(from)) ==
				    0,
			    "bind the sender to its source");
	} else {
		PP_FU_CHECK(
			bind(fd, (struct sockaddr *)&from6, sizeof(from6)) == 0,
			"bind the sender to ::1");
	}
	return fd;
}

/* Whether port (network order) is one of the PROXY-only sockets'. */
static bool
pp_fu_ours(uint16_t port)
{
	int i;

	for (i = 0; i < PP_FU_NSOCK; i++)
		if (pp_fu_s[i].fd >= 0 &&
		    htons(pp_fu_port(&pp_fu_s[i])) == port)
			return true;
	return false;
}

/* The sender: a socket from the chosen source, on a port of its own:
 * an IPv4 sender may be given the port of the IPv6-only socket, which
 * PP_PORTS makes PROXY-only in every family. */
static int
pp_fu_sender(const struct pp_fu_case *c)
{
	union pp_sockaddr self;
	socklen_t len;
	int fd, i;

	for (i = 0; i < 16; i++) {
		fd = pp_fu_sender_once(c);
		len = sizeof(self);
		PP_FU_CHECK(getsockname(fd, &self.sa, &len) == 0,
			    "getsockname of the sender");
		if (!pp_fu_ours(self.sa.sa_family == AF_INET
					? self.sin.sin_port
					: self.sin6.sin6_port))
			return fd;
		close(fd);
	}
	pp_fn_fail("fuzz_dgram.c", __LINE__,
		   "no sender port apart from PP_PORTS'");
	return -1;
}

/* Where the sender's datagrams go: the socket's address, or 127.0.0.1
 * and its port for the socket reached by IPv4 senders. */
static socklen_t
pp_fu_target(const struct pp_fu_sock *s, union pp_sockaddr *to)
{
	memset(to, 0, sizeof(*to));
	if (s->cfamily == s->family) {
		*to = s->addr;
		return s->addrlen;
	}
	to->sin.sin_family = AF_INET;
	to->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to->sin.sin_port = s->addr.sin6.sin6_port;
	return sizeof(to->sin);
}

static void
pp_fu_wait(int fd, const char *what)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, PP_FU_WAIT_MS);
	while (r < 0 && errno == EINTR);
	PP_FU_CHECK(r == 1 && (pfd.revents & POLLIN), what);
}

/* One receive by c->call (flags added); the datagram's bytes into buf,
 * its source into *from, msg_flags into *mflags where the call has
 * them. */
static ssize_t
pp_fu_receive(const struct pp_fu_case *c, int flags, uint8_t *buf,
	      union pp_sockaddr *from, socklen_t *fromlen, int *mflags)
{
	struct iovec iov[2];
	struct msghdr m;
	struct mmsghdr mm;
	size_t half;
	ssize_t n;
	int fd = c->s->fd, k;

	*fromlen = sizeof(*from);
	*mflags = 0;
	memset(&m, 0, sizeof(m));
	m.msg_name = from;
	m.msg_namelen = sizeof(*from);
	m.msg_iov = iov;
	m.msg_iovlen = 1;
	iov[0].iov_base = buf;
	iov[0].iov_len = c->buflen;
	switch (c->call) {
	case PP_FU_RECV:
		*fromlen = 0;
		return recv(fd, buf, c->buflen, flags);
	case PP_FU_READ:
		*fromlen = 0;
		return read(fd, buf, c->buflen);
	case PP_FU_RECVMSG2:
	case PP_FU_RECVMSG:
		if (c->call == PP_FU_RECVMSG2) {
			half = c->buflen / 2;
			iov[0].iov_len = half;
			iov[1].iov_base = buf + half;
			iov[1].iov_len = c->buflen - half;
			m.msg_iovlen = 2;
		}
		n = recvmsg(fd, &m, flags);
		*fromlen = m.msg_namelen;
		*mflags = m.msg_flags;
		return n;
	case PP_FU_RECVMMSG:
		memset(&mm, 0, sizeof(mm));
		mm.msg_hdr = m;
		k = recvmmsg(fd, &mm, 1, flags, NULL);
		*fromlen = mm.msg_hdr.msg_namelen;
		*mflags = mm.msg_hdr.msg_flags;
		return k == 1 ? (ssize_t)mm.msg_len : -1;
	default:
		return recvfrom(fd, buf, c->buflen, flags, &from->sa, fromlen);
	}
}

/* Check what one receive gave against the expectation. */
static void
pp_fu_check_got(const struct pp_fu_case *c, ssize_t n, const uint8_t *buf,
		const union pp_sockaddr *from, socklen_t fromlen, int mflags,
		bool trunc_asked)
{
	struct pp_fn_addr got;
	size_t plen, fit;

	PP_FU_CHECK(n >= 0, "a datagram that must arrive was not received");
	plen = c->len - c->hlen;
	fit = plen < c->buflen ? plen : c->buflen;
	PP_FU_CHECK((size_t)n == (trunc_asked ? plen : fit),
		    "the length received");
	PP_FU_CHECK(memcmp(buf, c->dgram + c->hlen, fit) == 0,
		    "the bytes received are not the datagram's payload");
	if (c->call == PP_FU_RECVMSG || c->call == PP_FU_RECVMSG2 ||
	    c->call == PP_FU_RECVMMSG)
		PP_FU_CHECK(!(mflags & MSG_TRUNC) == (fit == plen),
			    "MSG_TRUNC in msg_flags");
	if (fromlen == 0)
		return;
	pp_fn_norm(from, fromlen, &got);
	PP_FU_CHECK(pp_fn_same(&got, &c->peer),
		    c->advertised ? "not the advertised source"
				  : "not the real source");
	/* No flow label or scope in any source expected here. */
	PP_FU_CHECK(got.family != AF_INET6 || (from->sin6.sin6_flowinfo == 0 &&
					       from->sin6.sin6_scope_id == 0),
		    "a flow label or scope in the source");
}

static const uint8_t pp_fu_payload[3] = { 'R', 'E', 'P' };

/* The reply of c, to the advertised source to, sent as c->send says. */
struct pp_fu_reply {
	const struct pp_fu_case *c;
	const union pp_sockaddr *to;
	socklen_t tolen;
	ssize_t n;
};

static void *
pp_fu_send_reply(void *arg)
{
	struct pp_fu_reply *r = arg;
	int fd = r->c->s->fd;
	struct iovec iov = { .iov_base = (void *)pp_fu_payload,
			     .iov_len = sizeof(pp_fu_payload) };
	struct msghdr m = { .msg_name = (void *)r->to,
			    .msg_namelen = r->tolen,
			    .msg_iov = &iov,
			    .msg_iovlen = 1 };
	struct mmsghdr mm = { .msg_hdr = m };
	struct sockaddr none = { .sa_family = AF_UNSPEC };

	switch (r->c->send) {
	case PP_FU_SENDMSG:
		r->n = sendmsg(fd, &m, 0);
		break;
	case PP_FU_SENDMMSG:
		r->n = sendmmsg(fd, &mm, 1, 0) == 1 ? (ssize_t)mm.msg_len : -1;
		break;
	case PP_FU_CONNECT:
		r->n = -1;
		if (connect(fd, &r->to->sa, r->tolen) != 0)
			break;
		r->n = send(fd, pp_fu_payload, sizeof(pp_fu_payload), 0);
		PP_FU_CHECK(connect(fd, &none, sizeof(none)) == 0,
			    "connect(AF_UNSPEC) after the reply");
		break;
	default:
		r->n = sendto(fd, pp_fu_payload, sizeof(pp_fu_payload), 0,
			      &r->to->sa, r->tolen);
		break;
	}
	return NULL;
}

/* A reply to the advertised source reaches the sender. */
static void
pp_fu_reply(const struct pp_fu_case *c, int sender, const union pp_sockaddr *to,
	    socklen_t tolen)
{
	static uint8_t buf[PP_SPP_LEN + sizeof(pp_fu_payload) + 1];
	size_t want = (c->s->spp ? PP_SPP_LEN : 0) + sizeof(pp_fu_payload);
	struct pp_fu_reply r = { .c = c, .to = to, .tolen = tolen };
	pthread_t t;
	ssize_t n;

	if (c->thread) {
		PP_FU_CHECK(pthread_create(&t, NULL, pp_fu_send_reply, &r) == 0,
			    "a thread for the reply");
		PP_FU_CHECK(pthread_join(t, NULL) == 0, "join that thread");
	} else {
		(void)pp_fu_send_reply(&r);
	}
	/* A payload of 3: the length the call reports (not the header's). */
	PP_FU_CHECK(r.n == (ssize_t)sizeof(pp_fu_payload),
		    "the reply to the advertised source was not sent");
	pp_fu_wait(sender, "the reply did not reach the proxy");
	n = recv(sender, buf, sizeof(buf), 0);
	if (n != (ssize_t)want)
		fprintf(stderr,
			"fuzz_dgram: a reply of %zd bytes where %zu were "
			"due (%s)\n",
			n, want, n < 0 ? strerror(errno) : "");
	PP_FU_CHECK(n == (ssize_t)want, "the reply's length at the proxy");
	if (c->s->spp)
		PP_FU_CHECK(memcmp(buf, c->dgram, PP_SPP_LEN) == 0,
			    "the reply's SPP header is not the datagram's");
	PP_FU_CHECK(memcmp(buf + want - sizeof(pp_fu_payload), pp_fu_payload,
			   sizeof(pp_fu_payload)) == 0,
		    "the reply's bytes at the proxy");
}

static void
pp_fu_run(struct pp_fu_case *c)
{
	static uint8_t buf[PP_FU_BIG], peek[PP_FU_BIG];
	union pp_sockaddr to, from, pfrom, self;
	struct pp_fn_addr real, pgot, got;
	socklen_t tolen, fromlen, pfromlen, selflen = sizeof(self);
	ssize_t n, pn;
	int sender, mflags, pflags;

	sender = pp_fu_sender(c);
	PP_FU_CHECK(getsockname(sender, &self.sa, &selflen) == 0,
		    "getsockname of the sender");
	/* The real source as the socket reports it: mapped on socket 2. */
	pp_fn_as(&self, c->s->family, &real);
	pp_fu_expect(c, &real);

	tolen = pp_fu_target(c->s, &to);
	n = sendto(sender, c->dgram, c->len, 0, &to.sa, tolen);
	PP_FU_CHECK(n == (ssize_t)c->len, "send the datagram");
	pp_fu_wait(c->s->fd, "the datagram did not arrive");

	if (c->call == PP_FU_PEEK) {
		pn = pp_fu_receive(c, MSG_PEEK, peek, &pfrom, &pfromlen,
				   &pflags);
		if (!c->delivered) {
			PP_FU_CHECK(pn < 0 && errno == EAGAIN,
				    "a peek delivered a datagram that must be "
				    "dropped");
		} else {
			pp_fu_check_got(c, pn, peek, &pfrom, pfromlen, pflags,
					false);
		}
	}
	n = pp_fu_receive(c, c->call == PP_FU_TRUNC ? MSG_TRUNC : 0, buf, &from,
			  &fromlen, &mflags);
	if (!c->delivered) {
		PP_FU_CHECK(n < 0 && errno == EAGAIN,
			    "a datagram that must be dropped was delivered");
	} else {
		pp_fu_check_got(c, n, buf, &from, fromlen, mflags,
				c->call == PP_FU_TRUNC);
		if (c->call == PP_FU_PEEK) {
			pp_fn_norm(&pfrom, pfromlen, &pgot);
			pp_fn_norm(&from, fromlen, &got);
			PP_FU_CHECK(pp_fn_same(&pgot, &got),
				    "the peek and the read disagree");
		}
	}
	/* Nothing left behind for the next datagram. */
	n = recv(c->s->fd, buf, sizeof(buf), MSG_DONTWAIT);
	PP_FU_CHECK(n < 0 && errno == EAGAIN, "a datagram was left behind");

	/* Only to loopback clients: were the reply not routed, it would
	 * go where the header said. */
	if (c->delivered && c->advertised && pp_fu_loopback(&c->peer)) {
		tolen = pp_fu_sa(&c->peer, &to);
		pp_fu_reply(c, sender, &to, tolen);
	}
	close(sender);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_fu_case c;
	unsigned k;

	if (pp_fu_s[0].fd < 0 || pp_cfg.nports != pp_fu_nports) {
		fprintf(stderr, "fuzz_dgram: set-up failed (%s: %s)\n",
			pp_fu_setup_what ? pp_fu_setup_what
					 : "the library read no PP_PORTS",
			strerror(pp_fu_setup_errno));
		abort();
	}
	if (!pp_fu_classified) {
		for (k = 0; k < PP_FU_NSOCK; k++)
			if (pp_fu_s[k].fd >= 0)
				pp_udp_classify(pp_fu_s[k].fd, false);
		pp_fu_classified = true;
	}
	if (size < 1)
		return 0;
	memset(&c, 0, sizeof(c));
	k = data[0] & 3;
	if (pp_fu_s[k].fd < 0)
		k = 0; /* no IPv6 here */
	c.s = &pp_fu_s[k];
	c.src = PP_FN_TRUSTED;
	if (c.s->cfamily == AF_INET) {
		c.src = pp_fn_src_of(data[0] >> 2);
	}
	c.call = (enum pp_fu_call)((data[0] >> 4) & 7);
	c.buflen = (data[0] & 0x80) ? PP_FU_SMALL : PP_FU_BIG;
	if (size < 2)
		return 0;
	c.send = (enum pp_fu_send)(data[1] & 3);
	c.thread = (data[1] & 4) != 0;
	c.dgram = data + 2;
	c.len = size - 2;
	if (c.len > PP_FU_MAX)
		c.len = PP_FU_MAX;
	pp_fu_run(&c);
	return 0;
}

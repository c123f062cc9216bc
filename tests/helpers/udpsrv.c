/*
 * udpsrv: the UDP echo server the integration tests run under LD_PRELOAD.
 *
 * It knows nothing about the PROXY protocol.  For each datagram it prints
 * one line on stdout with what the receive call told it:
 *
 *   dgram src=192.0.2.1:5000 len=5 data=hello
 *
 * plus, depending on the options, alen= (the address length reported),
 * trunc=1 (MSG_TRUNC in msg_flags), dst= (the IP_PKTINFO/IPV6_PKTINFO
 * local address), peek= (what MSG_PEEK saw first).  It then echoes
 * "src=ADDR:PORT " and the bytes it got back to the sender (modes that
 * learn the sender), through the matching send call, then prints what
 * that call returned:
 *
 *   sent n=27            (or "sent errno=90" when it failed)
 *
 * Usage: udpsrv [-4|-6|-l ADDR] -p PORT [-m MODE] [-n] [-b SIZE] [-t]
 *               [-k] [-a ALEN] [-H FD]
 *   -m recvfrom  recvfrom + sendto (the default)
 *      recvmsg   recvmsg with IP_PKTINFO/IPV6_RECVPKTINFO, reply with
 *                sendmsg from the same local address, as dnsmasq does
 *      mmsg      recvmmsg (MSG_WAITFORONE, 8 at a time) + sendmmsg
 *      recv      recv, no reply (src=-)
 *      read      read, no reply (src=-)
 *      connect   recvfrom the first datagram, connect() to its source,
 *                then read() and the -w call only
 *   -w   how connect mode replies: write (the default), send, sendto
 *        (NULL address), sendmsg (no name), sendmmsg (no names)
 *   -R   reply with SIZE bytes ('R') instead of the echo
 *   -I   recvmsg mode: the reply in N iovecs (the first N-1 one byte
 *        each, the last the rest)
 *   -T   recvfrom mode: each reply sent by a thread of its own, which
 *        received nothing (its route comes from the table all threads
 *        share), and joined before the next receive
 *   -X   recvfrom mode: before each reply, a new UDP socket (bound to
 *        another port of the same loopback address) is dup2'd over the
 *        receiving descriptor, and the reply goes out on it: a socket
 *        not in PP_PORTS, whose replies go where the program says
 *   -n   non-blocking socket and poll(); prints "eagain" when a receive
 *        after a readable poll reports EAGAIN
 *   -b   the receive buffer size (default 65536)
 *   -t   pass MSG_TRUNC (len= is then the call's return value)
 *   -k   MSG_PEEK each datagram before receiving it
 *   -a   the address buffer length given to the call (default: full)
 *   -H   create the socket, dup2 it to FD, close the original, then bind
 *   -F   use the already bound socket inherited on FD (no socket, no bind)
 *
 * Prints "listening ADDR:PORT" once bound.  Built twice: the second build
 * (udpsrv_fortify) has _FORTIFY_SOURCE=2 and optimisation, so that its
 * recv, recvfrom and read calls are the __recv_chk, __recvfrom_chk and
 * __read_chk of hardened distribution builds.
 */
#include "config.h"

#if defined(PP_FORTIFY) && defined(__OPTIMIZE__)
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE PP_FORTIFY
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tutil.h"

#define BUF_MAX 65536
#define BATCH 8

enum mode { M_RECVFROM, M_RECVMSG, M_MMSG, M_RECV, M_READ, M_CONNECT };
enum way { W_WRITE, W_SEND, W_SENDTO, W_SENDMSG, W_SENDMMSG };
#define IOV_MANY 1024

static struct {
	const char *addr;
	int port;
	enum mode mode;
	bool nonblock;
	size_t bufsize;
	bool trunc;
	bool peek;
	socklen_t alen;
	int high_fd;
	int inherited;
	enum way way;
	long reply_size;
	int iovs;
	bool reply_thread;
	bool replace;
} opt = {
	.addr = "127.0.0.1",
	.mode = M_RECVFROM,
	.bufsize = BUF_MAX,
	.alen = sizeof(struct sockaddr_storage),
	.high_fd = -1,
	.inherited = -1,
	.reply_size = -1,
	.iovs = 1,
};

/* Fixed-size objects, so the fortified build calls the _chk variants. */
static char buf[BUF_MAX];
static char bufs[BATCH][BUF_MAX];

/* Printable bytes as they are, others (and '\', ' ') as \xNN. */
static void
escape(const char *d, size_t n, char *o, size_t cap)
{
	size_t i, k = 0;
	unsigned char c;

	for (i = 0; i < n && k + 5 < cap; i++) {
		c = (unsigned char)d[i];
		if (c > 0x20 && c < 0x7f && c != '\\')
			o[k++] = (char)c;
		else
			k += (size_t)snprintf(o + k, cap - k, "\\x%02x", c);
	}
	o[k] = '\0';
}

/* The line for one datagram; extra holds optional fields. */
static void
report(const struct sockaddr_storage *src, socklen_t alen, ssize_t len,
       const char *data, size_t got, const char *extra)
{
	char who[INET6_ADDRSTRLEN + 16], esc[400];

	tu_fmt_addr(src, alen, who, sizeof(who));
	escape(data, got, esc, sizeof(esc));
	tu_out("dgram src=%s len=%zd data=%s%s", who, len, esc, extra);
}

/* "src=ADDR:PORT " + payload, the reply body. */
static size_t
echo_body(const struct sockaddr_storage *src, socklen_t alen, const char *data,
	  size_t got, char *o, size_t cap)
{
	char who[INET6_ADDRSTRLEN + 16];
	int k;

	if (opt.reply_size >= 0) {
		k = opt.reply_size < (long)cap ? (int)opt.reply_size : (int)cap;
		memset(o, 'R', (size_t)k);
		return (size_t)k;
	}
	tu_fmt_addr(src, alen, who, sizeof(who));
	k = snprintf(o, cap, "src=%s ", who);
	if (k < 0 || (size_t)k >= cap)
		return 0;
	if (got > cap - (size_t)k)
		got = cap - (size_t)k;
	memcpy(o + k, data, got);
	return (size_t)k + got;
}

/* What a send call returned, on stdout. */
static void
sent(ssize_t n, const char *call)
{
	if (n < 0) {
		tu_out("sent errno=%d", errno);
		fprintf(stderr, "udpsrv: %s: %s\n", call, strerror(errno));
		return;
	}
	tu_out("sent n=%zd", n);
}

static int
open_socket(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct rlimit rl;
	int fd, one = 1, zero = 0;
	char who[INET6_ADDRSTRLEN + 16];

	memset(&ss, 0, sizeof(ss));
	if (opt.inherited >= 0) {
		fd = opt.inherited;
		goto bound;
	}
	len = tu_inet_addr(opt.addr, opt.port, &ss);
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		tu_die("socket");
	if (opt.high_fd >= 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur <= (rlim_t)opt.high_fd) {
			rl.rlim_cur = (rlim_t)opt.high_fd + 1;
			if (rl.rlim_max < rl.rlim_cur)
				rl.rlim_max = rl.rlim_cur;
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				tu_die("setrlimit");
		}
		if (dup2(fd, opt.high_fd) < 0)
			tu_die("dup2");
		close(fd);
		fd = opt.high_fd;
	}
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				 sizeof(zero));
	if (opt.mode == M_RECVMSG) {
		if (ss.ss_family == AF_INET)
			(void)setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one,
					 sizeof(one));
		else
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO,
					 &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		tu_die("bind");
bound:
	if (opt.nonblock && fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		tu_die("fcntl");
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		tu_die("getsockname");
	tu_fmt_addr(&ss, len, who, sizeof(who));
	tu_out("listening %s fd=%d", who, fd);
	return fd;
}

/* Waits until fd is readable (non-blocking mode only). */
static void
wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (!opt.nonblock)
		return;
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			tu_die("poll");
}

/* A receive failed: EAGAIN in non-blocking mode is reported, EINTR
 * ignored, anything else fatal. */
static void
recv_failed(const char *what)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		if (!opt.nonblock) {
			fprintf(stderr,
				"udpsrv: EAGAIN on a blocking socket\n");
			exit(4);
		}
		tu_out("eagain");
		return;
	}
	if (errno == EINTR)
		return;
	tu_die(what);
}

static int
base_flags(void)
{
	return opt.trunc ? MSG_TRUNC : 0;
}

/* -k: what MSG_PEEK shows, as " peek=SRC/LEN/DATA". */
static bool
peek_first(int fd, char *extra, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t alen = opt.alen;
	char who[INET6_ADDRSTRLEN + 16], esc[300];
	ssize_t n;
	size_t got;

	memset(&ss, 0, sizeof(ss));
	n = recvfrom(fd, buf, opt.bufsize, base_flags() | MSG_PEEK,
		     (struct sockaddr *)&ss, &alen);
	if (n < 0) {
		recv_failed("recvfrom(MSG_PEEK)");
		return false;
	}
	got = (size_t)n < opt.bufsize ? (size_t)n : opt.bufsize;
	tu_fmt_addr(&ss, alen, who, sizeof(who));
	escape(buf, got, esc, sizeof(esc));
	snprintf(extra, cap, " peek=%s/%zd/%s", who, n, esc);
	return true;
}

/* A sendto() for serve_recvfrom(), on the thread that runs it. */
struct reply_job {
	int fd;
	const void *buf;
	size_t len;
	const struct sockaddr *to;
	socklen_t tolen;
	ssize_t n;
	int err;
};

static void *
reply_main(void *arg)
{
	struct reply_job *j = arg;

	j->n = sendto(j->fd, j->buf, j->len, 0, j->to, j->tolen);
	j->err = errno;
	return NULL;
}

/* -X: put a new UDP socket, bound to another port of fd's address,
 * in the place of fd. */
static void
replace_socket(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int s;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		tu_die("udpsrv: getsockname");
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	else
		((struct sockaddr_in *)&ss)->sin_port = 0;
	s = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&ss, len) != 0 ||
	    dup2(s, fd) != fd || close(s) != 0)
		tu_die("udpsrv: the replacing socket");
}

/* sendto(), on this thread or (-T) on one of its own. */
static ssize_t
reply_to(int fd, const void *b, size_t len, const struct sockaddr *to,
	 socklen_t tolen)
{
	struct reply_job j = { fd, b, len, to, tolen, -1, 0 };
	pthread_t t;

	if (opt.replace)
		replace_socket(fd);
	if (!opt.reply_thread)
		return sendto(fd, b, len, 0, to, tolen);
	if (pthread_create(&t, NULL, reply_main, &j) != 0 ||
	    pthread_join(t, NULL) != 0)
		tu_die("udpsrv: the reply thread");
	errno = j.err;
	return j.n;
}

static void
serve_recvfrom(int fd)
{
	struct sockaddr_storage ss;
	socklen_t alen;
	char extra[512], reply[BUF_MAX + 64];
	ssize_t n;
	size_t got, rl;

	for (;;) {
		wait_readable(fd);
		extra[0] = '\0';
		if (opt.peek && !peek_first(fd, extra, sizeof(extra)))
			continue;
		memset(&ss, 0, sizeof(ss));
		alen = opt.alen;
		n = recvfrom(fd, buf, opt.bufsize, base_flags(),
			     (struct sockaddr *)&ss, &alen);
		if (n < 0) {
			recv_failed("recvfrom");
			continue;
		}
		got = (size_t)n < opt.bufsize ? (size_t)n : opt.bufsize;
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
			 " alen=%u", (unsigned)alen);
		report(&ss, alen, n, buf, got, extra);
		rl = echo_body(&ss, alen, buf, got, reply, sizeof(reply));
		sent(reply_to(fd, reply, rl, (struct sockaddr *)&ss,
			      alen < sizeof(ss) ? alen : sizeof(ss)),
		     "sendto");
	}
}

/* The local address from IP_PKTINFO/IPV6_PKTINFO, and a control block
 * that sends from it. */
static void
pktinfo(struct msghdr *m, char *dst, size_t cap, char *ctl, size_t *ctllen)
{
	struct cmsghdr *c, *o;
	struct in_pktinfo pi;
	struct in6_pktinfo pi6;
	char host[INET6_ADDRSTRLEN];
	struct msghdr om;

	snprintf(dst, cap, "-");
	*ctllen = 0;
	memset(&om, 0, sizeof(om));
	om.msg_control = ctl;
	om.msg_controllen = CMSG_SPACE(sizeof(pi6));
	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			inet_ntop(AF_INET, &pi.ipi_addr, host, sizeof(host));
			snprintf(dst, cap, "%s", host);
			/* Reply from that address, any interface. */
			pi.ipi_spec_dst = pi.ipi_addr;
			pi.ipi_ifindex = 0;
			om.msg_controllen = CMSG_SPACE(sizeof(pi));
			o = CMSG_FIRSTHDR(&om);
			o->cmsg_level = IPPROTO_IP;
			o->cmsg_type = IP_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(o), &pi, sizeof(pi));
			*ctllen = CMSG_SPACE(sizeof(pi));
		} else if (c->cmsg_level == IPPROTO_IPV6 &&
			   c->cmsg_type == IPV6_PKTINFO) {
			memcpy(&pi6, CMSG_DATA(c), sizeof(pi6));
			inet_ntop(AF_INET6, &pi6.ipi6_addr, host, sizeof(host));
			snprintf(dst, cap, "%s", host);
			pi6.ipi6_ifindex = 0;
			om.msg_controllen = CMSG_SPACE(sizeof(pi6));
			o = CMSG_FIRSTHDR(&om);
			o->cmsg_level = IPPROTO_IPV6;
			o->cmsg_type = IPV6_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof(pi6));
			memcpy(CMSG_DATA(o), &pi6, sizeof(pi6));
			*ctllen = CMSG_SPACE(sizeof(pi6));
		}
	}
}

static void
serve_recvmsg(int fd)
{
	struct sockaddr_storage ss;
	union {
		char b[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 256];
		struct cmsghdr align;
	} ctl, octl;
	static struct iovec oiov[IOV_MANY];
	char extra[512], dst[INET6_ADDRSTRLEN], reply[BUF_MAX + 64];
	struct iovec iov;
	struct msghdr m, om;
	size_t got, ctllen, rl, k;
	ssize_t n;
	int i;

	for (;;) {
		wait_readable(fd);
		extra[0] = '\0';
		if (opt.peek && !peek_first(fd, extra, sizeof(extra)))
			continue;
		memset(&ss, 0, sizeof(ss));
		memset(&m, 0, sizeof(m));
		iov.iov_base = buf;
		iov.iov_len = opt.bufsize;
		m.msg_name = &ss;
		m.msg_namelen = opt.alen;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl.b;
		m.msg_controllen = sizeof(ctl.b);
		n = recvmsg(fd, &m, base_flags());
		if (n < 0) {
			recv_failed("recvmsg");
			continue;
		}
		got = (size_t)n < opt.bufsize ? (size_t)n : opt.bufsize;
		memset(&octl, 0, sizeof(octl));
		pktinfo(&m, dst, sizeof(dst), octl.b, &ctllen);
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
			 " alen=%u trunc=%d dst=%s", (unsigned)m.msg_namelen,
			 (m.msg_flags & MSG_TRUNC) ? 1 : 0, dst);
		report(&ss, m.msg_namelen, n, buf, got, extra);
		memset(&om, 0, sizeof(om));
		rl = echo_body(&ss, m.msg_namelen, buf, got, reply,
			       sizeof(reply));
		/* -I: one byte in each iovec but the last */
		for (i = 0, k = 0; i < opt.iovs - 1; i++) {
			oiov[i].iov_base = reply + k;
			oiov[i].iov_len = k < rl ? 1 : 0;
			k += oiov[i].iov_len;
		}
		oiov[i].iov_base = reply + k;
		oiov[i].iov_len = rl - k;
		om.msg_name = &ss;
		om.msg_namelen =
			m.msg_namelen < sizeof(ss) ? m.msg_namelen : sizeof(ss);
		om.msg_iov = oiov;
		om.msg_iovlen = (size_t)opt.iovs;
		if (ctllen > 0) {
			om.msg_control = octl.b;
			om.msg_controllen = ctllen;
		}
		sent(sendmsg(fd, &om, 0), "sendmsg");
	}
}

static void
serve_mmsg(int fd)
{
	static char replies[BATCH][BUF_MAX + 64];
	struct sockaddr_storage ss[BATCH];
	struct mmsghdr v[BATCH], o[BATCH];
	struct iovec iov[BATCH], oiov[BATCH];
	char extra[64];
	size_t got;
	int c, i, n, s;

	for (;;) {
		wait_readable(fd);
		memset(v, 0, sizeof(v));
		memset(ss, 0, sizeof(ss));
		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = opt.bufsize;
			v[i].msg_hdr.msg_name = &ss[i];
			v[i].msg_hdr.msg_namelen = opt.alen;
			v[i].msg_hdr.msg_iov = &iov[i];
			v[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, v, BATCH, base_flags() | MSG_WAITFORONE, NULL);
		if (n < 0) {
			recv_failed("recvmmsg");
			continue;
		}
		tu_out("batch n=%d", n);
		memset(o, 0, sizeof(o));
		for (i = 0; i < n; i++) {
			got = v[i].msg_len < opt.bufsize ? v[i].msg_len
							 : opt.bufsize;
			snprintf(extra, sizeof(extra), " alen=%u trunc=%d",
				 (unsigned)v[i].msg_hdr.msg_namelen,
				 (v[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0);
			report(&ss[i], v[i].msg_hdr.msg_namelen,
			       (ssize_t)v[i].msg_len, bufs[i], got, extra);
			oiov[i].iov_base = replies[i];
			oiov[i].iov_len = echo_body(
				&ss[i], v[i].msg_hdr.msg_namelen, bufs[i], got,
				replies[i], sizeof(replies[i]));
			o[i].msg_hdr.msg_name = &ss[i];
			o[i].msg_hdr.msg_namelen = v[i].msg_hdr.msg_namelen;
			o[i].msg_hdr.msg_iov = &oiov[i];
			o[i].msg_hdr.msg_iovlen = 1;
		}
		for (s = 0; s < n;) {
			i = sendmmsg(fd, o + s, (unsigned)(n - s), 0);
			if (i <= 0) {
				sent(-1, "sendmmsg");
				break;
			}
			for (c = s; c < s + i; c++)
				sent((ssize_t)o[c].msg_len, "sendmmsg");
			s += i;
		}
	}
}

/* recv and read: no source, no reply. */
static void
serve_noaddr(int fd)
{
	struct sockaddr_storage none;
	char extra[512];
	ssize_t n;
	size_t got;

	memset(&none, 0, sizeof(none));
	for (;;) {
		wait_readable(fd);
		extra[0] = '\0';
		if (opt.peek && !peek_first(fd, extra, sizeof(extra)))
			continue;
		if (opt.mode == M_READ)
			n = read(fd, buf, opt.bufsize);
		else
			n = recv(fd, buf, opt.bufsize, base_flags());
		if (n < 0) {
			recv_failed(opt.mode == M_READ ? "read" : "recv");
			continue;
		}
		got = (size_t)n < opt.bufsize ? (size_t)n : opt.bufsize;
		report(&none, 0, n, buf, got, extra);
	}
}

/* Reply on the connected socket fd the way -w says. */
static ssize_t
conn_send(int fd, char *reply, size_t rl)
{
	struct iovec iov = { .iov_base = reply, .iov_len = rl };
	struct mmsghdr mm;
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	switch (opt.way) {
	case W_SEND:
		return send(fd, reply, rl, 0);
	case W_SENDTO:
		return sendto(fd, reply, rl, 0, NULL, 0);
	case W_SENDMSG:
		return sendmsg(fd, &m, 0);
	case W_SENDMMSG:
		memset(&mm, 0, sizeof(mm));
		mm.msg_hdr = m;
		if (sendmmsg(fd, &mm, 1, 0) != 1)
			return -1;
		return (ssize_t)mm.msg_len;
	case W_WRITE:
		break;
	}
	return write(fd, reply, rl);
}

/* The first datagram tells whom to connect to; then read and the -w
 * call only. */
static void
serve_connect(int fd)
{
	struct sockaddr_storage ss;
	socklen_t alen = sizeof(ss);
	char reply[BUF_MAX + 64];
	ssize_t n;
	size_t got, rl;

	for (;;) {
		wait_readable(fd);
		n = recvfrom(fd, buf, opt.bufsize, 0, (struct sockaddr *)&ss,
			     &alen);
		if (n >= 0)
			break;
		recv_failed("recvfrom");
	}
	got = (size_t)n < opt.bufsize ? (size_t)n : opt.bufsize;
	report(&ss, alen, n, buf, got, " connect=1");
	if (connect(fd, (struct sockaddr *)&ss, alen) != 0)
		tu_die("connect");
	for (;;) {
		rl = echo_body(&ss, alen, buf, got, reply, sizeof(reply));
		sent(conn_send(fd, reply, rl), "send");
		for (;;) {
			wait_readable(fd);
			n = read(fd, buf, opt.bufsize);
			if (n >= 0)
				break;
			recv_failed("read");
		}
		got = (size_t)n < opt.bufsize ? (size_t)n : opt.bufsize;
		report(&ss, alen, n, buf, got, " connected=1");
	}
}

int
main(int argc, char **argv)
{
	int c, fd;

	while ((c = getopt(argc, argv, "46l:p:m:nb:tka:H:F:w:R:I:TX")) != -1) {
		switch (c) {
		case '4':
			opt.addr = "127.0.0.1";
			break;
		case '6':
			opt.addr = "::1";
			break;
		case 'l':
			opt.addr = optarg;
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 'm':
			if (strcmp(optarg, "recvfrom") == 0)
				opt.mode = M_RECVFROM;
			else if (strcmp(optarg, "recvmsg") == 0)
				opt.mode = M_RECVMSG;
			else if (strcmp(optarg, "mmsg") == 0)
				opt.mode = M_MMSG;
			else if (strcmp(optarg, "recv") == 0)
				opt.mode = M_RECV;
			else if (strcmp(optarg, "read") == 0)
				opt.mode = M_READ;
			else if (strcmp(optarg, "connect") == 0)
				opt.mode = M_CONNECT;
			else
				goto usage;
			break;
		case 'n':
			opt.nonblock = true;
			break;
		case 'b':
			opt.bufsize = (size_t)atol(optarg);
			if (opt.bufsize > BUF_MAX)
				goto usage;
			break;
		case 't':
			opt.trunc = true;
			break;
		case 'k':
			opt.peek = true;
			break;
		case 'a':
			opt.alen = (socklen_t)atoi(optarg);
			if (opt.alen > sizeof(struct sockaddr_storage))
				goto usage;
			break;
		case 'H':
			opt.high_fd = atoi(optarg);
			break;
		case 'F':
			opt.inherited = atoi(optarg);
			break;
		case 'w':
			if (strcmp(optarg, "write") == 0)
				opt.way = W_WRITE;
			else if (strcmp(optarg, "send") == 0)
				opt.way = W_SEND;
			else if (strcmp(optarg, "sendto") == 0)
				opt.way = W_SENDTO;
			else if (strcmp(optarg, "sendmsg") == 0)
				opt.way = W_SENDMSG;
			else if (strcmp(optarg, "sendmmsg") == 0)
				opt.way = W_SENDMMSG;
			else
				goto usage;
			break;
		case 'R':
			opt.reply_size = atol(optarg);
			break;
		case 'T':
			opt.reply_thread = true;
			break;
		case 'X':
			opt.replace = true;
			break;
		case 'I':
			opt.iovs = atoi(optarg);
			if (opt.iovs < 1 || opt.iovs > IOV_MANY)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	tu_server_signals();
	fd = open_socket();
	switch (opt.mode) {
	case M_RECVFROM:
		serve_recvfrom(fd);
		break;
	case M_RECVMSG:
		serve_recvmsg(fd);
		break;
	case M_MMSG:
		serve_mmsg(fd);
		break;
	case M_RECV:
	case M_READ:
		serve_noaddr(fd);
		break;
	case M_CONNECT:
		serve_connect(fd);
		break;
	}
	return 0;
usage:
	fprintf(stderr, "usage: udpsrv [-4|-6|-l ADDR] -p PORT [-m MODE] [-n] "
			"[-b SIZE] [-t] [-k] [-a ALEN] [-H FD] [-F FD] "
			"[-w WAY] [-R SIZE] [-I N] [-T] [-X]\n");
	return 64;
}

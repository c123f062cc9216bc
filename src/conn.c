/*
 * conn.c - accepting connections on PROXY-only listeners.
 *
 * The rule that shapes everything here: a client that has not finished
 * its header must never delay anyone else, whatever the server's shape
 * (one blocking thread, an event loop, many threads, several processes).
 *
 * 1. Fewer half-open connections reach accept at all: a PROXY-only TCP
 *    listener gets TCP_DEFER_ACCEPT (as long as PP_TIMEOUT_MS), so the
 *    kernel holds a connection back until its first bytes arrive, and
 *    those bytes are nearly always the whole header.  It is not set when
 *    PP_DIRECT is not empty: direct clients of protocols where the server
 *    speaks first (SMTP, FTP banners) send nothing until they are
 *    greeted, and would wait out the defer period.
 *
 * 2. accept() takes a connection, checks its source, then makes one
 *    non-blocking attempt at the header: peek, parse, consume exactly the
 *    header bytes.  Complete: the connection is returned.  Invalid, or an
 *    untrusted source: reset (SO_LINGER 0) and the loop takes the next
 *    connection.  Incomplete: the connection becomes "pending", and the
 *    loop takes the next one.  The real accept blocks exactly when the
 *    program's own would (blocking listener) and reports EAGAIN exactly
 *    when the program's own would (non-blocking listener), so an event
 *    loop is never held up.
 *
 * 3. Pending connections are finished by one worker thread, started the
 *    first time one exists (all signals blocked, so the program's signals
 *    still go to its own threads).  It polls them, reads their headers as
 *    bytes arrive, resets those whose PP_TIMEOUT_MS ran out, and moves
 *    the complete ones to a ready list.  It holds no descriptor of its
 *    own: it waits on a condition variable while nothing is pending, and
 *    polls with a short cap so that new pending connections are picked
 *    up without a wake-up descriptor.
 *
 * 4. A ready connection has to reach the program, which may be blocked
 *    in accept (blocking listener) or asleep in epoll_wait on the
 *    listener (event loop).  The worker "knocks": it opens a connection
 *    to the listener's own address and writes a 16-byte knock that can
 *    never be a valid header (the v2 signature with command 0xF).  The
 *    listener becomes readable, the program calls accept, and accept
 *    returns the ready connection first; the knock itself is recognised
 *    (by its address in this process, by its bytes in any other process
 *    that shares the listener) and closed without a trace.  Every
 *    accept() looks at the ready list before the real call, and that
 *    look is one atomic load while the list is empty.
 *
 * A signal that interrupts the real accept makes accept return EINTR;
 * the pending connection stays with the worker and is served later.
 *
 * After fork the child closes its copies of pending and ready
 * connections (the parent serves them) and starts its own worker when it
 * needs one.  Every use of a pending descriptor is preceded by a check of
 * its SO_COOKIE, so a number closed behind our back (close_range in the
 * program) is never read from or reset.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "handover.h"
#include "shim.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

#define PP_INLINE_BUF 536 /* HAProxy's usual maximum header */
#define PP_SCRATCH 4096
#define PP_WORKER_TICK_MS 20
#define PP_KNOCK_SLOTS 16
#define PP_KNOCKS_PER_ROUND 64
#define PP_REKNOCK_MS 200
#define PP_MAX_KNOCKS 300 /* a minute of knocking, then give up */

static const uint8_t pp_knock[16] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
	0x55, 0x49, 0x54, 0x0A, 0x2F, 'p',  'p',  'k',
};

/* One connection whose header is being read. */
struct pp_job {
	int fd;
	int family;     /* the listener's (and so the connection's) family */
	uint16_t lport; /* the listener's port, network order (0: unknown) */
	union pp_sockaddr peer;
	socklen_t peerlen;
	struct pp_parser p;
	uint8_t *heap; /* p.buf when the header outgrew inline[] */
	uint8_t inline_buf[PP_INLINE_BUF];
};

enum pp_step { PP_STEP_MORE, PP_STEP_DONE, PP_STEP_BAD, PP_STEP_KNOCK };

/* A connection left to the worker, then waiting in the ready list. */
struct pp_pend {
	struct pp_pend *next;
	int lfd;
	uint64_t lcookie;
	uint64_t cookie;
	int64_t deadline;
	enum { PP_PEND_READING, PP_PEND_READY, PP_PEND_DEAD } state;
	unsigned knocks;       /* once ready: knocks sent for it */
	struct pp_fdinfo info; /* once ready */
	struct pp_job job;
};

static pthread_mutex_t pp_pmtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_pcond = PTHREAD_COND_INITIALIZER;
static struct pp_pend *pp_pending;
static struct pp_pend *pp_readyq;
static atomic_uint pp_nready;
static bool pp_worker_up;

/* Knocks this process sent and has not seen back yet. */
static pthread_mutex_t pp_kmtx = PTHREAD_MUTEX_INITIALIZER;
static union pp_inaddr pp_knocks[PP_KNOCK_SLOTS];
static unsigned pp_knock_next;
static atomic_uint pp_nknocks;

static int64_t
pp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
pp_socket_cookie(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0)
		return 0;
	return c;
}

bool
pp_same_socket(int fd, uint64_t cookie)
{
	return cookie != 0 && pp_socket_cookie(fd) == cookie;
}

static bool
pp_inaddr_equal(const struct sockaddr *a, socklen_t alen,
		const union pp_inaddr *b, socklen_t blen)
{
	if (alen != blen || a->sa_family != b->sa.sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;

		return x->sin_port == b->sin.sin_port &&
		       x->sin_addr.s_addr == b->sin.sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;

		return x->sin6_port == b->sin6.sin6_port &&
		       memcmp(&x->sin6_addr, &b->sin6.sin6_addr, 16) == 0;
	}
	return false;
}

bool
pp_conn_matches(int fd, const struct pp_fdinfo *info, bool peer,
		const struct sockaddr *real, socklen_t reallen)
{
	if (info->rpeerlen == 0 || info->lport == 0)
		return pp_same_socket(fd, info->cookie);
	if (peer)
		return pp_inaddr_equal(real, reallen, &info->rpeer,
				       info->rpeerlen);
	if (real->sa_family == AF_INET && reallen >= sizeof(struct sockaddr_in))
		return ((const struct sockaddr_in *)real)->sin_port ==
		       info->lport;
	if (real->sa_family == AF_INET6 &&
	    reallen >= sizeof(struct sockaddr_in6))
		return ((const struct sockaddr_in6 *)real)->sin6_port ==
		       info->lport;
	return false;
}

uint64_t
pp_conn_cookie(int fd, const struct pp_fdinfo *info)
{
	union pp_sockaddr real;
	socklen_t len = sizeof(real);

	if (info->cookie != 0)
		return pp_same_socket(fd, info->cookie) ? info->cookie : 0;
	if (info->rpeerlen == 0 ||
	    pp_real.getpeername(fd, &real.sa, &len) != 0 ||
	    !pp_conn_matches(fd, info, true, &real.sa, len))
		return 0;
	return pp_socket_cookie(fd);
}

void
pp_copy_addr(struct sockaddr *dst, socklen_t *len, const struct sockaddr *a,
	     socklen_t alen)
{
	socklen_t n;

	if (dst == NULL || len == NULL)
		return;
	n = *len < alen ? *len : alen;
	memcpy(dst, a, n);
	*len = alen;
}

/* A TLV value as printable text, other bytes as \xNN. */
static void
pp_fmt_tlv(const uint8_t *v, size_t n, char *out, size_t cap)
{
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < cap; i++) {
		if (v[i] > 0x20 && v[i] < 0x7f && v[i] != '\\')
			out[o++] = (char)v[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x",
					      v[i]);
	}
	out[o] = '\0';
}

/* Reset a connection we refuse, so the client sees RST, not a close. */
static void
pp_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	pp_real.close(fd);
}

static void
pp_refuse(int fd, const union pp_sockaddr *peer, socklen_t peerlen,
	  enum pp_loglevel level, const char *why)
{
	char who[INET6_ADDRSTRLEN + 16];
	int saved = errno;

	pp_reset(fd);
	if (pp_log_on(level)) {
		pp_fmt_addr(&peer->sa, peerlen, who, sizeof(who));
		pp_log(level, "refused %s: %s", who, why);
	}
	errno = saved;
}

static void
pp_job_init(struct pp_job *j, int fd, int family, const union pp_sockaddr *peer,
	    socklen_t peerlen)
{
	j->fd = fd;
	j->family = family;
	j->lport = 0;
	j->peer = *peer;
	j->peerlen = peerlen;
	j->heap = NULL;
	pp_parser_init(&j->p, j->inline_buf, sizeof(j->inline_buf),
		       pp_cfg.versions);
}

static void
pp_job_free(struct pp_job *j)
{
	free(j->heap);
	j->heap = NULL;
}

static bool
pp_job_grow(struct pp_job *j, size_t total)
{
	uint8_t *nb = malloc(total);

	if (nb == NULL || !pp_parser_setbuf(&j->p, nb, total)) {
		free(nb);
		return false;
	}
	free(j->heap);
	j->heap = nb;
	return true;
}

/*
 * Push data into the parser, moving it to a larger buffer as soon as the
 * header's total length is known to exceed the one it has.  *used is the
 * number of bytes that belong to the header.
 */
static enum pp_status
pp_job_push(struct pp_job *j, const uint8_t *data, size_t n, size_t *used)
{
	enum pp_status st = PP_NEED_MORE;
	size_t off = 0, chunk, u, total;

	*used = 0;
	while (off < n) {
		total = pp_parser_total(&j->p);
		if (total > j->p.cap && !pp_job_grow(j, total))
			break; /* the push below reports the header too long */
		chunk = n - off;
		if (total == 0 && chunk > j->p.cap - j->p.have)
			chunk = j->p.cap - j->p.have;
		if (chunk == 0)
			break;
		st = pp_parser_push(&j->p, data + off, chunk, &u);
		off += u;
		*used += u;
		if (st != PP_NEED_MORE || u < chunk)
			return st;
	}
	if (off < n) {
		st = pp_parser_push(&j->p, data + off, n - off, &u);
		*used += u;
	}
	return st;
}

/*
 * Read as much of the header as has arrived, never a byte past it.
 * Returns PP_STEP_MORE when the socket has nothing more for now.
 */
static enum pp_step
pp_job_step(struct pp_job *j, const char **why)
{
	uint8_t scratch[PP_SCRATCH];
	enum pp_status st;
	size_t want, total, used;
	ssize_t n;

	for (;;) {
		want = pp_parser_want(&j->p);
		total = pp_parser_total(&j->p);
		if (total > j->p.cap && !pp_job_grow(j, total)) {
			*why = "out of memory for the header";
			return PP_STEP_BAD;
		}
		if (want > 0)
			n = pp_real.recv(
				j->fd, scratch,
				want < sizeof(scratch) ? want : sizeof(scratch),
				MSG_DONTWAIT);
		else
			n = pp_real.recv(j->fd, scratch, sizeof(scratch),
					 MSG_PEEK | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return PP_STEP_MORE;
			*why = errno == ECONNRESET ? "reset by the client"
						   : "receive error";
			return PP_STEP_BAD;
		}
		if (n == 0) {
			*why = j->p.have
				       ? "closed before the header was complete"
				       : "closed without a header";
			return PP_STEP_BAD;
		}
		if (j->p.have == 0 && (size_t)n >= sizeof(pp_knock) &&
		    memcmp(scratch, pp_knock, sizeof(pp_knock)) == 0)
			return PP_STEP_KNOCK;
		st = pp_job_push(j, scratch, (size_t)n, &used);
		/* Take the header bytes the peek saw off the socket.  They
		 * are in the parser already: MSG_TRUNC has TCP drop them
		 * without copying them out again. */
		if (want == 0 && used > 0 &&
		    pp_real.recv(j->fd, scratch, used,
				 MSG_DONTWAIT | MSG_TRUNC) != (ssize_t)used) {
			*why = "receive error";
			return PP_STEP_BAD;
		}
		if (st == PP_DONE)
			return PP_STEP_DONE;
		if (st == PP_INVALID) {
			*why = j->p.reason[0] ? j->p.reason
					      : pp_strerror(j->p.err);
			return PP_STEP_BAD;
		}
	}
}

/* Map an IPv4 address into an IPv6 socket's form (::ffff:a.b.c.d). */
static void
pp_map_v4(const struct sockaddr_in *in, struct sockaddr_in6 *out)
{
	memset(out, 0, sizeof(*out));
	out->sin6_family = AF_INET6;
	out->sin6_port = in->sin_port;
	out->sin6_addr.s6_addr[10] = 0xff;
	out->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&out->sin6_addr.s6_addr[12], &in->sin_addr, 4);
}

/* Put one advertised address into the form the socket's family has. */
static void
pp_adv_addr(const union pp_sockaddr *a, int family, union pp_inaddr *out,
	    socklen_t *outlen)
{
	if (a->sa.sa_family == AF_INET && family == AF_INET6) {
		pp_map_v4(&a->sin, &out->sin6);
		*outlen = sizeof(out->sin6);
	} else if (a->sa.sa_family == AF_INET) {
		out->sin = a->sin;
		*outlen = sizeof(out->sin);
	} else {
		out->sin6 = a->sin6;
		*outlen = sizeof(out->sin6);
	}
}

/*
 * A complete header: decide what the connection reports, log it.
 * Returns false (with *why) when the advertised client cannot be
 * represented on this socket.
 */
static bool
pp_job_finish(struct pp_job *j, struct pp_fdinfo *info, const char **why)
{
	const struct pp_header *h = pp_parser_header(&j->p);
	char real[INET6_ADDRSTRLEN + 16], src[INET6_ADDRSTRLEN + 16];
	char dst[INET6_ADDRSTRLEN + 16], extra[600] = "";
	const uint8_t *v;
	size_t vlen, o;

	memset(info, 0, sizeof(*info));
	/* Tracked even with the real addresses: a program exec'ed on it
	 * must know the header was read already. */
	info->kind = PP_FD_CONN;
	info->family = (uint16_t)j->family;
	if ((j->peer.sa.sa_family == AF_INET &&
	     j->peerlen == sizeof(struct sockaddr_in)) ||
	    (j->peer.sa.sa_family == AF_INET6 &&
	     j->peerlen == sizeof(struct sockaddr_in6))) {
		memcpy(&info->rpeer, &j->peer, j->peerlen);
		info->rpeerlen = j->peerlen;
		info->lport = j->lport;
	}
	if (h->command == PP_CMD_LOCAL || h->transport == PP_TP_UNSPEC ||
	    (h->family != PP_FAM_INET && h->family != PP_FAM_INET6)) {
		if (pp_log_on(PP_LOG_INFO)) {
			pp_fmt_addr(&j->peer.sa, j->peerlen, real,
				    sizeof(real));
			pp_log(PP_LOG_INFO, "local %s (v%u %s)", real,
			       h->version,
			       h->command == PP_CMD_LOCAL ? "LOCAL"
			       : h->family == PP_FAM_UNIX ? "UNIX"
							  : "UNSPEC");
		}
		return true;
	}
	if (h->family == PP_FAM_INET6 && j->family == AF_INET) {
		*why = "IPv6 client on an IPv4 socket";
		return false;
	}
	info->has_src = true;
	info->has_dst = !pp_cfg.sockname_real;
	pp_adv_addr(&h->src, j->family, &info->src, &info->srclen);
	pp_adv_addr(&h->dst, j->family, &info->dst, &info->dstlen);
	if (pp_log_on(PP_LOG_INFO)) {
		pp_fmt_addr(&j->peer.sa, j->peerlen, real, sizeof(real));
		pp_fmt_addr(&h->src.sa, h->srclen, src, sizeof(src));
		pp_fmt_addr(&h->dst.sa, h->dstlen, dst, sizeof(dst));
		o = 0;
		if (h->tlv_len > 0 &&
		    pp_tlv_find(h->tlv, h->tlv_len, PP_TLV_UNIQUE_ID, &v,
				&vlen)) {
			o = (size_t)snprintf(extra, sizeof(extra),
					     " unique_id=");
			pp_fmt_tlv(v, vlen, extra + o, sizeof(extra) - o);
			o = strlen(extra);
		}
		if (h->tlv_len > 0 &&
		    pp_tlv_find(h->tlv, h->tlv_len, PP_TLV_AUTHORITY, &v,
				&vlen) &&
		    o + 12 < sizeof(extra)) {
			o += (size_t)snprintf(extra + o, sizeof(extra) - o,
					      " authority=");
			pp_fmt_tlv(v, vlen, extra + o, sizeof(extra) - o);
		}
		pp_log(PP_LOG_INFO, "proxied %s as %s -> %s (v%u%s)", real, src,
		       dst, h->version, extra);
	}
	return true;
}

/* Was this connection one of our own knocks?  (Forgets it if so.) */
static bool
pp_own_knock(const union pp_sockaddr *peer, socklen_t len)
{
	unsigned i;
	bool found = false;

	if (atomic_load_explicit(&pp_nknocks, memory_order_acquire) == 0)
		return false;
	pthread_mutex_lock(&pp_kmtx);
	for (i = 0; i < PP_KNOCK_SLOTS; i++) {
		union pp_inaddr *k = &pp_knocks[i];
		socklen_t klen = k->sa.sa_family == AF_INET
					 ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6);

		if (k->sa.sa_family != AF_UNSPEC &&
		    pp_inaddr_equal(&peer->sa, len, k, klen)) {
			k->sa.sa_family = AF_UNSPEC;
			atomic_fetch_sub(&pp_nknocks, 1);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&pp_kmtx);
	return found;
}

/* Does the connection already hold our knock bytes? */
static bool
pp_peek_knock(int fd)
{
	uint8_t b[sizeof(pp_knock)];

	return pp_real.recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) ==
		       (ssize_t)sizeof(b) &&
	       memcmp(b, pp_knock, sizeof(b)) == 0;
}

/*
 * Is connection fd one from this host's address to the same address (as
 * knocks are: bound to the address they knock on)?  peer is its source.
 */
static bool
pp_self_connection(int fd, const union pp_sockaddr *peer)
{
	union pp_sockaddr local;
	socklen_t len = sizeof(local);

	if (pp_real.getsockname(fd, &local.sa, &len) != 0 ||
	    local.sa.sa_family != peer->sa.sa_family)
		return false;
	if (local.sa.sa_family == AF_INET)
		return local.sin.sin_addr.s_addr == peer->sin.sin_addr.s_addr;
	return local.sa.sa_family == AF_INET6 &&
	       memcmp(&local.sin6.sin6_addr, &peer->sin6.sin6_addr, 16) == 0;
}

/*
 * Knock on listener lfd so that whoever waits on it calls accept.  Runs
 * on the worker, with no lock held.  Uses raw system calls: the knock is
 * ours, none of the program's business.
 */
static void
pp_send_knock(int lfd, uint64_t lcookie)
{
	union pp_sockaddr sa;
	union pp_inaddr local;
	socklen_t len = sizeof(sa), llen = sizeof(local);
	struct pollfd pfd;
	int s;

	if (!pp_same_socket(lfd, lcookie) ||
	    pp_real.getsockname(lfd, &sa.sa, &len) != 0)
		return;
	if (sa.sa.sa_family == AF_INET &&
	    sa.sin.sin_addr.s_addr == htonl(INADDR_ANY))
		sa.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (sa.sa.sa_family == AF_INET6 &&
		 IN6_IS_ADDR_UNSPECIFIED(&sa.sin6.sin6_addr))
		sa.sin6.sin6_addr = in6addr_loopback;
	else if (sa.sa.sa_family == AF_UNIX &&
		 len <= offsetof(struct sockaddr_un, sun_path))
		return; /* unnamed: nobody can connect to it */
	s = (int)syscall(SYS_socket, sa.sa.sa_family,
			 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	if (sa.sa.sa_family != AF_UNIX) {
		/*
		 * Bound first, to the very address it knocks on: its source
		 * address and port are known, and recorded, before the
		 * connection can reach anybody's accept.  Recorded after
		 * connect, an accept on another thread could take the knock
		 * before it was known, and hand it to the program as a
		 * PP_DIRECT connection when loopback is listed there.
		 */
		memset(&local, 0, sizeof(local));
		if (sa.sa.sa_family == AF_INET) {
			local.sin.sin_family = AF_INET;
			local.sin.sin_addr = sa.sin.sin_addr;
			llen = sizeof(local.sin);
		} else {
			local.sin6.sin6_family = AF_INET6;
			local.sin6.sin6_addr = sa.sin6.sin6_addr;
			local.sin6.sin6_scope_id = sa.sin6.sin6_scope_id;
			llen = sizeof(local.sin6);
		}
		if (syscall(SYS_bind, s, &local.sa, llen) != 0 ||
		    syscall(SYS_getsockname, s, &local.sa, &llen) != 0)
			goto out;
		pthread_mutex_lock(&pp_kmtx);
		if (pp_knocks[pp_knock_next].sa.sa_family == AF_UNSPEC)
			atomic_fetch_add(&pp_nknocks, 1);
		pp_knocks[pp_knock_next] = local;
		pp_knock_next = (pp_knock_next + 1) % PP_KNOCK_SLOTS;
		pthread_mutex_unlock(&pp_kmtx);
	}
	if (syscall(SYS_connect, s, &sa.sa, len) != 0 && errno != EINPROGRESS &&
	    errno != EAGAIN)
		goto out;
	pfd.fd = s;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, 200) == 1 && (pfd.revents & POLLOUT))
		(void)syscall(SYS_sendto, s, pp_knock, sizeof(pp_knock),
			      MSG_NOSIGNAL, NULL, 0);
out:
	syscall(SYS_close, s);
}

static void *pp_worker(void *arg);

static struct pp_pend **
pp_readyq_tail(struct pp_pend **head)
{
	while (*head != NULL)
		head = &(*head)->next;
	return head;
}

/* Start the worker if this process has none.  Called with pp_pmtx held. */
static void
pp_worker_start(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;

	if (pp_worker_up)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&t, &attr, pp_worker, NULL) == 0)
		pp_worker_up = true;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Hand a job the first attempt could not finish to the worker. */
static void
pp_pend_add(struct pp_job *j, int lfd, uint64_t lcookie, int64_t deadline)
{
	struct pp_pend *pd = malloc(sizeof(*pd));
	const char *why = "out of memory";

	if (pd == NULL)
		goto fail;
	memset(pd, 0, sizeof(*pd));
	pd->job = *j;
	if (j->heap == NULL && !pp_parser_setbuf(&pd->job.p, pd->job.inline_buf,
						 sizeof(pd->job.inline_buf)))
		goto fail;
	pd->lfd = lfd;
	pd->lcookie = lcookie;
	pd->cookie = pp_socket_cookie(j->fd);
	pd->deadline = deadline;
	/* Not the program's yet: keep it out of anything it execs. */
	(void)pp_real.fcntl(j->fd, F_SETFD, FD_CLOEXEC);
	pthread_mutex_lock(&pp_pmtx);
	pd->next = pp_pending;
	pp_pending = pd;
	pp_worker_start();
	pthread_cond_signal(&pp_pcond);
	pthread_mutex_unlock(&pp_pmtx);
	return;
fail:
	free(pd);
	pp_refuse(j->fd, &j->peer, j->peerlen, PP_LOG_WARN, why);
	pp_job_free(j);
}

/* Take a ready connection of listener lcookie, or NULL. */
static struct pp_pend *
pp_ready_take(uint64_t lcookie)
{
	struct pp_pend **pp, *pd = NULL;

	pthread_mutex_lock(&pp_pmtx);
	for (pp = &pp_readyq; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->lcookie == lcookie) {
			pd = *pp;
			*pp = pd->next;
			atomic_fetch_sub(&pp_nready, 1);
			break;
		}
	}
	pthread_mutex_unlock(&pp_pmtx);
	return pd;
}

/*
 * The worker: finish pending headers, expire them, knock for the ready
 * ones.  Holds pp_pmtx only while it walks the lists, never across poll.
 */
static void *
pp_worker(void *arg)
{
	struct pollfd *pfd = NULL;
	struct pp_pend **snap = NULL, *pd, **pp;
	size_t cap = 0, n, i;
	int64_t now, next;
	int knocks[PP_KNOCKS_PER_ROUND], nk;
	uint64_t kcookies[PP_KNOCKS_PER_ROUND];
	const char *why;
	enum pp_step st;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pp_pmtx);
		while (pp_pending == NULL && pp_readyq == NULL)
			pthread_cond_wait(&pp_pcond, &pp_pmtx);
		n = 0;
		for (pd = pp_pending; pd != NULL; pd = pd->next)
			n++;
		if (n > cap) {
			struct pollfd *np = realloc(pfd, n * sizeof(*pfd));
			struct pp_pend **ns = realloc(snap, n * sizeof(*snap));

			if (np != NULL)
				pfd = np;
			if (ns != NULL)
				snap = ns;
			if (np == NULL || ns == NULL) {
				pthread_mutex_unlock(&pp_pmtx);
				poll(NULL, 0, PP_WORKER_TICK_MS);
				continue;
			}
			cap = n;
		}
		now = pp_now_ms();
		next = now + PP_WORKER_TICK_MS;
		for (i = 0, pd = pp_pending; pd != NULL; pd = pd->next, i++) {
			snap[i] = pd;
			pfd[i].fd = pd->job.fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			if (pd->deadline < next)
				next = pd->deadline;
		}
		for (pd = pp_readyq; pd != NULL; pd = pd->next)
			if (pd->deadline < next)
				next = pd->deadline;
		pthread_mutex_unlock(&pp_pmtx);

		(void)poll(pfd, n, next > now ? (int)(next - now) : 0);

		now = pp_now_ms();
		nk = 0;
		pthread_mutex_lock(&pp_pmtx);
		for (i = 0; i < n; i++) {
			pd = snap[i];
			if (pfd[i].revents == 0 && pd->deadline > now)
				continue;
			if (!pp_same_socket(pd->job.fd, pd->cookie)) {
				/* Closed behind our back: not ours to touch. */
				pd->state = PP_PEND_DEAD;
				continue;
			}
			st = pfd[i].revents ? pp_job_step(&pd->job, &why)
					    : PP_STEP_MORE;
			if (st == PP_STEP_MORE && pd->deadline <= now) {
				st = PP_STEP_BAD;
				why = "timeout waiting for the header";
			}
			if (st == PP_STEP_DONE &&
			    !pp_job_finish(&pd->job, &pd->info, &why))
				st = PP_STEP_BAD;
			switch (st) {
			case PP_STEP_MORE:
				break;
			case PP_STEP_DONE:
				pd->state = PP_PEND_READY;
				pd->deadline = now + PP_REKNOCK_MS;
				pd->knocks = 1;
				if (nk < PP_KNOCKS_PER_ROUND) {
					knocks[nk] = pd->lfd;
					kcookies[nk++] = pd->lcookie;
				}
				break;
			case PP_STEP_BAD:
				pp_refuse(pd->job.fd, &pd->job.peer,
					  pd->job.peerlen, PP_LOG_WARN, why);
				pd->state = PP_PEND_DEAD;
				break;
			case PP_STEP_KNOCK:
				pp_real.close(pd->job.fd);
				pd->state = PP_PEND_DEAD;
				break;
			}
		}
		/* Unlink what is finished; move the ready ones. */
		for (pp = &pp_pending; *pp != NULL;) {
			pd = *pp;
			if (pd->state == PP_PEND_READING) {
				pp = &pd->next;
				continue;
			}
			*pp = pd->next;
			if (pd->state == PP_PEND_DEAD) {
				pp_job_free(&pd->job);
				free(pd);
				continue;
			}
			pd->next = NULL;
			*pp_readyq_tail(&pp_readyq) = pd;
			atomic_fetch_add(&pp_nready, 1);
		}
		/*
		 * Ready connections nobody took: knock again (the knock may
		 * have gone to another process sharing the listener), and
		 * drop those whose listener is gone.
		 */
		for (pp = &pp_readyq; *pp != NULL;) {
			pd = *pp;
			if (pd->deadline > now) {
				pp = &pd->next;
				continue;
			}
			if (!pp_same_socket(pd->lfd, pd->lcookie) ||
			    pd->knocks >= PP_MAX_KNOCKS) {
				*pp = pd->next;
				atomic_fetch_sub(&pp_nready, 1);
				if (pp_same_socket(pd->job.fd, pd->cookie))
					pp_refuse(pd->job.fd, &pd->job.peer,
						  pd->job.peerlen, PP_LOG_WARN,
						  "the program did not accept "
						  "it");
				pp_job_free(&pd->job);
				free(pd);
				continue;
			}
			pd->knocks++;
			pd->deadline = now + PP_REKNOCK_MS;
			if (nk < PP_KNOCKS_PER_ROUND) {
				knocks[nk] = pd->lfd;
				kcookies[nk++] = pd->lcookie;
			}
			pp = &pd->next;
		}
		pthread_mutex_unlock(&pp_pmtx);
		for (i = 0; i < (size_t)nk; i++)
			pp_send_knock(knocks[i], kcookies[i]);
	}
	return NULL;
}

/* Give a connection to the program: flags, table entry, address. */
static int
pp_hand_over(int fd, const struct pp_fdinfo *info, const struct pp_job *j,
	     struct sockaddr *addr, socklen_t *alen)
{
	const union pp_sockaddr *peer = &j->peer;
	socklen_t peerlen = j->peerlen;

	if (info->kind == PP_FD_CONN) {
		const struct pp_header *h = pp_parser_header(&j->p);
		struct pp_fdinfo reg = *info;
		struct pp_tlvset tlvs;

		/* The identity check uses the real peer (no system call);
		 * the cookie only where that cannot work, or for the TLVs,
		 * which are kept by cookie for the exec hook. */
		if (reg.rpeerlen == 0 || reg.lport == 0 || h->tlv_len > 0)
			reg.cookie = pp_socket_cookie(fd);
		if (!pp_fd_set(fd, &reg)) {
			pp_refuse(fd, peer, peerlen, PP_LOG_ERROR,
				  "out of memory for the descriptor table");
			return -1;
		}
		if (h->tlv_len > 0) {
			pp_tlvset_from_area(&tlvs, h->tlv, h->tlv_len);
			pp_tlvcache_put(reg.cookie, &tlvs);
		}
	}
	if (info->kind == PP_FD_CONN && info->has_src) {
		pp_copy_addr(addr, alen, &info->src.sa, info->srclen);
	} else {
		pp_copy_addr(addr, alen, &peer->sa, peerlen);
	}
	return fd;
}

/* A connection finished by the worker, made to look freshly accepted. */
static int
pp_hand_ready(struct pp_pend *pd, int flags, struct sockaddr *addr,
	      socklen_t *alen)
{
	int fd = pd->job.fd, fl;

	if (!pp_same_socket(fd, pd->cookie)) {
		fd = -1;
		goto out;
	}
	fl = pp_real.fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)pp_real.fcntl(fd, F_SETFL,
				    (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK
							    : fl & ~O_NONBLOCK);
	(void)pp_real.fcntl(fd, F_SETFD,
			    (flags & SOCK_CLOEXEC) ? FD_CLOEXEC : 0);
	fd = pp_hand_over(fd, &pd->info, &pd->job, addr, alen);
out:
	pp_job_free(&pd->job);
	free(pd);
	return fd;
}

int
pp_accept_proxy(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	struct pp_fdinfo linfo, info;
	union pp_sockaddr peer;
	socklen_t peerlen;
	struct pp_job job;
	struct pp_pend *pd;
	const char *why;
	int saved = errno, fd;

	if (addr != NULL && alen == NULL) {
		errno = EFAULT;
		return -1;
	}
	pp_fd_get(lfd, &linfo);
	for (;;) {
		if (atomic_load_explicit(&pp_nready, memory_order_acquire) >
			    0 &&
		    (pd = pp_ready_take(linfo.cookie)) != NULL) {
			fd = pp_hand_ready(pd, flags, addr, alen);
			if (fd >= 0) {
				errno = saved;
				return fd;
			}
			continue;
		}
		peerlen = sizeof(peer);
		fd = pp_real.accept4(lfd, &peer.sa, &peerlen, flags);
		if (fd < 0)
			return -1;
		if (pp_fd_kind(fd) != PP_FD_NONE)
			pp_fd_clear(fd);
		if (pp_own_knock(&peer, peerlen)) {
			pp_real.close(fd);
			continue;
		}
		if (linfo.family != AF_UNIX &&
		    !pp_acl_match(&pp_cfg.allow, &peer.sa, peerlen)) {
			if (pp_acl_match(&pp_cfg.direct, &peer.sa, peerlen)) {
				/* The knock of another process that shares
				 * the listener, when its address is direct. */
				if (pp_self_connection(fd, &peer) &&
				    pp_peek_knock(fd)) {
					pp_real.close(fd);
					continue;
				}
				if (pp_log_on(PP_LOG_INFO)) {
					char who[INET6_ADDRSTRLEN + 16];

					pp_fmt_addr(&peer.sa, peerlen, who,
						    sizeof(who));
					pp_log(PP_LOG_INFO, "direct %s", who);
				}
				pp_copy_addr(addr, alen, &peer.sa, peerlen);
				errno = saved;
				return fd;
			}
			if (pp_peek_knock(fd))
				pp_real.close(fd);
			else
				pp_refuse(fd, &peer, peerlen, PP_LOG_INFO,
					  "untrusted source");
			continue;
		}
		pp_job_init(&job, fd, linfo.family, &peer, peerlen);
		job.lport = linfo.lport;
		switch (pp_job_step(&job, &why)) {
		case PP_STEP_DONE:
			if (!pp_job_finish(&job, &info, &why))
				break;
			fd = pp_hand_over(fd, &info, &job, addr, alen);
			pp_job_free(&job);
			if (fd < 0)
				continue;
			errno = saved;
			return fd;
		case PP_STEP_MORE:
			pp_pend_add(&job, lfd, linfo.cookie,
				    pp_now_ms() + pp_cfg.timeout_ms);
			continue;
		case PP_STEP_KNOCK:
			pp_real.close(fd);
			pp_job_free(&job);
			continue;
		case PP_STEP_BAD:
			break;
		}
		pp_refuse(fd, &peer, peerlen, PP_LOG_WARN, why);
		pp_job_free(&job);
	}
}

enum pp_fdkind
pp_classify(int fd)
{
	struct pp_fdinfo info;
	union pp_sockaddr sa;
	socklen_t len = sizeof(sa), olen;
	int type = 0, listening = 0, defer, saved = errno;

	memset(&info, 0, sizeof(info));
	info.kind = PP_FD_PLAIN;
	olen = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) != 0) {
		info.kind = PP_FD_NONE; /* not a socket, or not open */
		goto out;
	}
	olen = sizeof(listening);
	if (type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) != 0 ||
	    !listening || pp_real.getsockname(fd, &sa.sa, &len) != 0 ||
	    !pp_config_match(&pp_cfg, type, &sa.sa, len))
		goto set;
	info.kind = PP_FD_LISTEN;
	info.socktype = (uint8_t)type;
	info.family = sa.sa.sa_family;
	if (sa.sa.sa_family == AF_INET)
		info.lport = sa.sin.sin_port;
	else if (sa.sa.sa_family == AF_INET6)
		info.lport = sa.sin6.sin6_port;
	info.cookie = pp_socket_cookie(fd);
	if (pp_cfg.direct.n == 0 && sa.sa.sa_family != AF_UNIX) {
		defer = (int)((pp_cfg.timeout_ms + 999) / 1000);
		(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
				 sizeof(defer));
	}
	if (pp_log_on(PP_LOG_DEBUG)) {
		char where[INET6_ADDRSTRLEN + 120];

		pp_fmt_addr(&sa.sa, len, where, sizeof(where));
		pp_log(PP_LOG_DEBUG, "fd %d listening on %s is PROXY-only", fd,
		       where);
	}
set:
	if (!pp_fd_set(fd, &info))
		info.kind = PP_FD_PLAIN; /* untracked: passed through */
out:
	errno = saved;
	return (enum pp_fdkind)info.kind;
}

void
pp_conn_atfork_prepare(void)
{
	pthread_mutex_lock(&pp_kmtx);
	pthread_mutex_lock(&pp_pmtx);
}

void
pp_conn_atfork_parent(void)
{
	pthread_mutex_unlock(&pp_pmtx);
	pthread_mutex_unlock(&pp_kmtx);
}

/*
 * In a child: the pending and ready connections are the parent's to
 * serve; close the child's copies of them and start afresh.  free_lists
 * is false after a fork that did not run the pthread_atfork handlers
 * (a raw clone), where malloc's state may be mid-update: the lists are
 * then dropped, a few kilobytes at most, and the locks, which a thread
 * that does not exist in the child may hold, are made anew.  After an
 * ordinary fork the child handler has unlocked them already (the child's
 * one thread holds them): re-initialising a locked mutex is undefined,
 * and ThreadSanitizer then believes them held forever.
 */
void
pp_conn_forget(bool free_lists)
{
	struct pp_pend *pd, *next;
	struct pp_pend *lists[2] = { pp_pending, pp_readyq };
	int i;

	for (i = 0; i < 2; i++) {
		for (pd = lists[i]; pd != NULL; pd = next) {
			next = pd->next;
			if (pp_same_socket(pd->job.fd, pd->cookie))
				syscall(SYS_close, pd->job.fd);
			if (free_lists) {
				pp_job_free(&pd->job);
				free(pd);
			}
		}
	}
	pp_pending = NULL;
	pp_readyq = NULL;
	atomic_store(&pp_nready, 0);
	pp_worker_up = false;
	memset(pp_knocks, 0, sizeof(pp_knocks));
	atomic_store(&pp_nknocks, 0);
	if (!free_lists) {
		pthread_mutex_init(&pp_pmtx, NULL);
		pthread_mutex_init(&pp_kmtx, NULL);
	}
	pthread_cond_init(&pp_pcond, NULL);
}

void
pp_conn_atfork_child(void)
{
	pp_init_atfork_child();
	pthread_mutex_unlock(&pp_pmtx);
	pthread_mutex_unlock(&pp_kmtx);
	pp_conn_forget(true);
}

int
pp_read_header_wait(int fd, int family, const union pp_sockaddr *peer,
		    socklen_t peerlen, struct pp_fdinfo *info,
		    struct pp_tlvset *tlvs, const char **why)
{
	int64_t deadline = pp_now_ms() + pp_cfg.timeout_ms, now;
	const struct pp_header *h;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct pp_job job;
	enum pp_step st;
	int ret = -1;

	memset(tlvs, 0, sizeof(*tlvs));
	pp_job_init(&job, fd, family, peer, peerlen);
	for (;;) {
		st = pp_job_step(&job, why);
		if (st == PP_STEP_DONE)
			break;
		if (st == PP_STEP_KNOCK) {
			*why = "not a PROXY header";
			goto out;
		}
		if (st == PP_STEP_BAD)
			goto out;
		now = pp_now_ms();
		if (now >= deadline) {
			*why = "timeout waiting for the header";
			goto out;
		}
		(void)poll(&pfd, 1, (int)(deadline - now));
	}
	if (!pp_job_finish(&job, info, why))
		goto out;
	h = pp_parser_header(&job.p);
	if (h->tlv_len > 0)
		pp_tlvset_from_area(tlvs, h->tlv, h->tlv_len);
	ret = 0;
out:
	pp_job_free(&job);
	return ret;
}

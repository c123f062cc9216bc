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
 *    loop is never held up.  Once the call has taken a connection it
 *    could not return, it enters the real accept again only on a
 *    non-blocking listener or when poll() sees another one queued;
 *    otherwise it fails with ECONNABORTED (after a 5 ms grace for a
 *    header it left pending), as the kernel's accept would have returned
 *    by then: a program that waits in select() or poll() before a
 *    blocking accept is never stuck in it, a plain accept loop gets one
 *    error per connection taken (no spin), and SO_RCVTIMEO is never
 *    restarted.
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
 *    look is one atomic load while the list is empty.  The knock comes
 *    from the address it goes to; for a wildcard listener 127.0.0.1,
 *    or for [::] ::ffff:127.0.0.1 when dual-stack (it exists where lo
 *    has no IPv6) and ::1 when v6-only.  A knock that cannot be sent is
 *    reported once, at warn.
 *
 * 5. In a prefork group the knock wakes whichever process has waited
 *    longest, seldom the one whose worker read the header.  So each
 *    PROXY-only listener gets, at the first fork after it is classified,
 *    a "pool": a close-on-exec, non-blocking AF_UNIX datagram socket
 *    pair that every process forked afterwards shares (a process that
 *    never forks needs none, and keeps every descriptor for itself).
 *    The worker sends a ready connection there (SCM_RIGHTS, with the
 *    header bytes and what it reports) before knocking, and whichever
 *    process takes a knock, its own or another's, takes the oldest
 *    connection from the pool, or from the pool of an SO_REUSEPORT
 *    sibling on the same address: the header reader's state travels
 *    with the connection.  The worker knocks again every PP_REKNOCK_MS
 *    while its connection is still there (a knock taken by a process
 *    without the pool), and a connection nobody took for a minute is
 *    reset.  Without a pool (no slot, the listener classified after the
 *    fork, the pool full) the ready list of point 4 is used.
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
#define PP_MAX_KNOCKS 300    /* a minute of knocking, then give up */
#define PP_PARK_GRACE_MS 5   /* a blocking accept waits for what it parked */
#define PP_POOL_TTL_MS 60000 /* a pooled connection nobody takes: reset */

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
	enum {
		PP_PEND_READING,
		PP_PEND_READY,
		PP_PEND_DEAD,
		PP_PEND_POOLED
	} state;
	unsigned knocks;       /* once ready: knocks sent for it */
	uint64_t seq;          /* PP_PEND_POOLED: its number in the pool */
	struct pp_fdinfo info; /* once ready */
	struct pp_job job;
};

/*
 * The pending and ready lists.  Taken by the worker (all signals
 * blocked: never re-entered) and, on the program's threads, by accept
 * and accept4 on a PROXY-only listener (pp_ready_take, pp_pend_add).
 * From a signal handler, only accept/accept4 reach it; they take it as
 * section PP_HOLD_PENDING and, when their thread is inside it already,
 * fail with EAGAIN before taking a connection (pp_accept_proxy).
 */
static pthread_mutex_t pp_pmtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_pcond = PTHREAD_COND_INITIALIZER;
static struct pp_pend *pp_pending;
static struct pp_pend *pp_readyq;
static atomic_uint pp_nready;
static bool pp_worker_up;
/* Connections this process put in a pool, until they leave it. */
static struct pp_pend *pp_pooled;
static uint64_t pp_pool_seq;

/*
 * The ready pool of a listener, shared by every process that inherited
 * it (see the top comment, point 5): a datagram socket pair whose
 * receive queue holds ready connections (SCM_RIGHTS) with their header.
 * A slot is claimed when the listener is classified; its socket pair is
 * made only when the process forks, so a process that never forks
 * holds no descriptor of the library's.  Slots change under
 * pp_poolmtx; readers look them up without it.  Hooks that reach the
 * lock from a signal handler: listen, accept and accept4 (classifying a
 * listener: pp_pool_note) and fork (pp_pool_open_all, the fork
 * handlers); taken as section PP_HOLD_POOL, and skipped by a handler
 * whose thread holds it.
 */
#define PP_POOLS 64
#define PP_POOL_MAGIC 0x70706f6cU
struct pp_pool {
	_Atomic uint64_t lcookie; /* the listener's; 0: slot free */
	int lfd;
	socklen_t laddrlen; /* its address: SO_REUSEPORT siblings share it */
	union pp_sockaddr laddr;
	_Atomic bool up; /* the socket pair exists (made at the first fork) */
	int rfd, wfd;    /* receive and send ends */
	uint64_t rcookie, wcookie;
};
static struct pp_pool pp_pools[PP_POOLS];
static pthread_mutex_t pp_poolmtx = PTHREAD_MUTEX_INITIALIZER;

/* What travels with a ready connection through a pool. */
struct pp_poolmsg {
	uint32_t magic;
	uint32_t hlen; /* header bytes that follow */
	pid_t pid;     /* the process that put it, with its seq */
	uint64_t seq;
	int64_t deadline; /* CLOCK_MONOTONIC ms: reset it after this */
	int family;
	uint16_t lport;
	socklen_t peerlen;
	union pp_sockaddr peer;
	struct pp_fdinfo info;
};

/*
 * Knocks this process sent and has not seen back yet.  Taken by the
 * worker, and by accept/accept4 on a PROXY-only listener
 * (pp_own_knock), the only hooks that reach it from a signal handler:
 * section PP_HOLD_KNOCKS, handled as pp_pmtx is.
 */
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
	union pp_sockaddr p;
	socklen_t plen = sizeof(p);

	if (peer)
		return pp_inaddr_equal(real, reallen, &info->rpeer,
				       info->rpeerlen);
	if (!(real->sa_family == AF_INET &&
	      reallen >= sizeof(struct sockaddr_in) &&
	      ((const struct sockaddr_in *)real)->sin_port == info->lport) &&
	    !(real->sa_family == AF_INET6 &&
	      reallen >= sizeof(struct sockaddr_in6) &&
	      ((const struct sockaddr_in6 *)real)->sin6_port == info->lport))
		return false;
	/* Every connection of the listener has that local port: the real
	 * peer tells them apart (the one system call of the check). */
	return pp_real.getpeername(fd, &p.sa, &plen) == 0 &&
	       pp_inaddr_equal(&p.sa, plen, &info->rpeer, info->rpeerlen);
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

/*
 * malloc and free on the accept path, as section PP_HOLD_MALLOC: a
 * signal handler's accept must not allocate while its thread is inside
 * the allocator (pp_accept_proxy checks).
 */
static void *
pp_alloc(size_t n)
{
	void *p;

	if (!pp_hold(PP_HOLD_MALLOC))
		return NULL;
	p = malloc(n);
	pp_release(PP_HOLD_MALLOC);
	return p;
}

static void
pp_dealloc(void *p)
{
	if (p == NULL || !pp_hold(PP_HOLD_MALLOC))
		return; /* unreachable from a handler: never leaked */
	free(p);
	pp_release(PP_HOLD_MALLOC);
}

static void
pp_job_free(struct pp_job *j)
{
	pp_dealloc(j->heap);
	j->heap = NULL;
}

static bool
pp_job_grow(struct pp_job *j, size_t total)
{
	uint8_t *nb = pp_alloc(total);

	if (nb == NULL || !pp_parser_setbuf(&j->p, nb, total)) {
		pp_dealloc(nb);
		return false;
	}
	pp_dealloc(j->heap);
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

/* Copy a reason into the caller's buffer, printable bytes only (errors
 * only: never on the path of a good connection). */
static void
pp_why(char why[PP_WHY_MAX], const char *text)
{
	size_t i;

	for (i = 0; i + 1 < PP_WHY_MAX && text[i] != '\0'; i++)
		why[i] = text[i] >= 0x20 && text[i] <= 0x7e ? text[i] : '?';
	why[i] = '\0';
}

/*
 * Read as much of the header as has arrived, never a byte past it.
 * Returns PP_STEP_MORE when the socket has nothing more for now, and
 * with PP_STEP_BAD the reason in why (a copy: the parser's own text dies
 * with the job).
 */
static enum pp_step
pp_job_step(struct pp_job *j, char why[PP_WHY_MAX])
{
	uint8_t scratch[PP_SCRATCH];
	enum pp_status st;
	size_t want, total, used;
	ssize_t n;

	for (;;) {
		want = pp_parser_want(&j->p);
		total = pp_parser_total(&j->p);
		if (total > j->p.cap && !pp_job_grow(j, total)) {
			pp_why(why, "out of memory for the header");
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
			pp_why(why, errno == ECONNRESET ? "reset by the client"
							: "receive error");
			return PP_STEP_BAD;
		}
		if (n == 0) {
			pp_why(why,
			       j->p.have
				       ? "closed before the header was complete"
				       : "closed without a header");
			return PP_STEP_BAD;
		}
		if (j->p.have == 0 && (size_t)n >= sizeof(pp_knock) &&
		    memcmp(scratch, pp_knock, sizeof(pp_knock)) == 0)
			return PP_STEP_KNOCK;
		st = pp_job_push(j, scratch, (size_t)n, &used);
		/* Take the header bytes the peek saw off the socket.  They
		 * are in the parser already: MSG_TRUNC has TCP drop them
		 * without copying them out again.  Not those of an invalid
		 * header: the connection is refused, or given back intact if
		 * its listener turns out to be another socket. */
		if (want == 0 && used > 0 && st != PP_INVALID &&
		    pp_real.recv(j->fd, scratch, used,
				 MSG_DONTWAIT | MSG_TRUNC) != (ssize_t)used) {
			pp_why(why, "receive error");
			return PP_STEP_BAD;
		}
		if (st == PP_DONE)
			return PP_STEP_DONE;
		if (st == PP_INVALID) {
			pp_why(why, j->p.reason[0] ? j->p.reason
						   : pp_strerror(j->p.err));
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
 * Returns false (with the reason in why) when the advertised client
 * cannot be represented on this socket.
 */
static bool
pp_job_finish(struct pp_job *j, struct pp_fdinfo *info, char why[PP_WHY_MAX])
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
		pp_why(why, "IPv6 client on an IPv4 socket");
		return false;
	}
	info->has_src = true;
	/* Known whatever PP_SOCKNAME says: each process that asks (this
	 * one, or a program it hands the connection to) applies its own. */
	info->has_dst = true;
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

	if (atomic_load_explicit(&pp_nknocks, memory_order_acquire) == 0 ||
	    !pp_lock(&pp_kmtx, PP_HOLD_KNOCKS))
		return false; /* the knock's bytes still give it away */
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
	pp_unlock(&pp_kmtx, PP_HOLD_KNOCKS);
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

/* Say once per process that a listener cannot be knocked on. */
static void
pp_knock_failed(int lfd, const union pp_sockaddr *sa, socklen_t len, int err)
{
	static atomic_bool warned;
	char where[INET6_ADDRSTRLEN + 16];

	if (atomic_exchange(&warned, true) || !pp_log_on(PP_LOG_WARN))
		return;
	pp_fmt_addr(&sa->sa, len, where, sizeof(where));
	pp_log(PP_LOG_WARN,
	       "cannot knock on fd %d from %s (%s): a connection whose "
	       "header arrives in pieces reaches the program only when "
	       "another connection wakes it",
	       lfd, where, strerror(err));
}

/*
 * One knock from address sa to sa (the listener's address, or a
 * loopback address for a wildcard listener).  Returns 0, or the errno
 * of the step that failed.
 */
static int
pp_knock_from(const union pp_sockaddr *sa, socklen_t len)
{
	union pp_inaddr local;
	socklen_t llen = sizeof(local);
	struct pollfd pfd;
	int s, off = 0, err = 0;

	s = (int)syscall(SYS_socket, sa->sa.sa_family,
			 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	if (sa->sa.sa_family != AF_UNIX) {
		/*
		 * Bound first, to the very address it knocks on: its source
		 * address and port are known, and recorded, before the
		 * connection can reach anybody's accept.  Recorded after
		 * connect, an accept on another thread could take the knock
		 * before it was known, and hand it to the program as a
		 * PP_DIRECT connection when loopback is listed there.
		 */
		memset(&local, 0, sizeof(local));
		if (sa->sa.sa_family == AF_INET) {
			local.sin.sin_family = AF_INET;
			local.sin.sin_addr = sa->sin.sin_addr;
			llen = sizeof(local.sin);
		} else {
			/* ::ffff:127.0.0.1 needs a dual-stack socket, even
			 * where net.ipv6.bindv6only makes them v6-only. */
			(void)syscall(SYS_setsockopt, s, IPPROTO_IPV6,
				      IPV6_V6ONLY, &off, sizeof(off));
			local.sin6.sin6_family = AF_INET6;
			local.sin6.sin6_addr = sa->sin6.sin6_addr;
			local.sin6.sin6_scope_id = sa->sin6.sin6_scope_id;
			llen = sizeof(local.sin6);
		}
		if (syscall(SYS_bind, s, &local.sa, llen) != 0 ||
		    syscall(SYS_getsockname, s, &local.sa, &llen) != 0) {
			err = errno;
			goto out;
		}
		pthread_mutex_lock(&pp_kmtx);
		if (pp_knocks[pp_knock_next].sa.sa_family == AF_UNSPEC)
			atomic_fetch_add(&pp_nknocks, 1);
		pp_knocks[pp_knock_next] = local;
		pp_knock_next = (pp_knock_next + 1) % PP_KNOCK_SLOTS;
		pthread_mutex_unlock(&pp_kmtx);
	}
	if (syscall(SYS_connect, s, &sa->sa, len) != 0 &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		err = errno;
		goto out;
	}
	pfd.fd = s;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, 200) == 1 && (pfd.revents & POLLOUT))
		(void)syscall(SYS_sendto, s, pp_knock, sizeof(pp_knock),
			      MSG_NOSIGNAL, NULL, 0);
out:
	syscall(SYS_close, s);
	return err;
}

/*
 * Knock on listener lfd so that whoever waits on it calls accept.  Runs
 * on the worker, with no lock held.  Uses raw system calls: the knock is
 * ours, none of the program's business.
 *
 * The address: the listener's own, or for a wildcard a loopback address
 * that exists on every host: 127.0.0.1 for 0.0.0.0; for [::] with
 * IPV6_V6ONLY off (dual-stack, the default) ::ffff:127.0.0.1, which
 * works where lo has no IPv6 (Docker's default); for a v6-only [::],
 * ::1.  When no knock can be sent, it says so at warn, once.
 */
static void
pp_send_knock(int lfd, uint64_t lcookie)
{
	union pp_sockaddr sa;
	socklen_t len = sizeof(sa), olen;
	int v6only = 1, err;

	if (!pp_same_socket(lfd, lcookie) ||
	    pp_real.getsockname(lfd, &sa.sa, &len) != 0)
		return;
	if (sa.sa.sa_family == AF_INET &&
	    sa.sin.sin_addr.s_addr == htonl(INADDR_ANY)) {
		sa.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (sa.sa.sa_family == AF_INET6 &&
		   IN6_IS_ADDR_UNSPECIFIED(&sa.sin6.sin6_addr)) {
		olen = sizeof(v6only);
		if (getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			       &olen) != 0)
			v6only = 1;
		if (v6only) {
			sa.sin6.sin6_addr = in6addr_loopback;
		} else {
			memset(&sa.sin6.sin6_addr, 0, 16);
			sa.sin6.sin6_addr.s6_addr[10] = 0xff;
			sa.sin6.sin6_addr.s6_addr[11] = 0xff;
			sa.sin6.sin6_addr.s6_addr[12] = 127;
			sa.sin6.sin6_addr.s6_addr[15] = 1;
		}
	} else if (sa.sa.sa_family == AF_UNIX &&
		   len <= offsetof(struct sockaddr_un, sun_path)) {
		return; /* unnamed: nobody can connect to it */
	}
	err = pp_knock_from(&sa, len);
	if (err == EADDRNOTAVAIL && sa.sa.sa_family == AF_INET6 && !v6only) {
		/* No 127.0.0.1 on lo, oddly: ::1 may still be there. */
		sa.sin6.sin6_addr = in6addr_loopback;
		err = pp_knock_from(&sa, len);
	}
	if (err != 0 && err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM)
		pp_knock_failed(lfd, &sa, len, err);
}

static void *pp_worker(void *arg);
static bool pp_pool_put(struct pp_pend *pd, int64_t now);
static int pp_pool_state(const struct pp_pend *pd, int64_t now, bool *expired);
static void pp_pool_drop_head(const struct pp_pend *pd, int64_t now);

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
	struct pp_pend *pd = pp_alloc(sizeof(*pd));
	static const char why[] = "out of memory";

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
	if (!pp_lock(&pp_pmtx, PP_HOLD_PENDING))
		goto fail; /* unreachable: pp_accept_proxy checked */
	pd->next = pp_pending;
	pp_pending = pd;
	pp_worker_start();
	pthread_cond_signal(&pp_pcond);
	pp_unlock(&pp_pmtx, PP_HOLD_PENDING);
	return;
fail:
	pp_dealloc(pd);
	pp_refuse(j->fd, &j->peer, j->peerlen, PP_LOG_WARN, why);
	pp_job_free(j);
}

/* Take a ready connection of listener lcookie, or NULL. */
static struct pp_pend *
pp_ready_take(uint64_t lcookie)
{
	struct pp_pend **pp, *pd = NULL;

	if (!pp_lock(&pp_pmtx, PP_HOLD_PENDING))
		return NULL; /* unreachable: pp_accept_proxy checked */
	for (pp = &pp_readyq; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->lcookie == lcookie) {
			pd = *pp;
			*pp = pd->next;
			atomic_fetch_sub(&pp_nready, 1);
			break;
		}
	}
	pp_unlock(&pp_pmtx, PP_HOLD_PENDING);
	return pd;
}

/*
 * Count one more knock for ready connection pd, due again in
 * PP_REKNOCK_MS, and queue its listener in knocks/kcookies (room for
 * PP_KNOCKS_PER_ROUND, *nk used).  Called with pp_pmtx held.
 */
static void
pp_knock_again(struct pp_pend *pd, int64_t now, int *knocks, uint64_t *kcookies,
	       int *nk)
{
	pd->knocks++;
	pd->deadline = now + PP_REKNOCK_MS;
	if (*nk < PP_KNOCKS_PER_ROUND) {
		knocks[*nk] = pd->lfd;
		kcookies[(*nk)++] = pd->lcookie;
	}
}

/*
 * The worker: finish pending headers, expire them, knock for the ready
 * ones.  Holds pp_pmtx only while it walks the lists, never across poll.
 * It runs with every signal blocked, so nothing here is re-entered and
 * its locks and allocations need no pp_hold (reentry.h).
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
	char why[PP_WHY_MAX];
	enum pp_step st;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pp_pmtx);
		while (pp_pending == NULL && pp_readyq == NULL &&
		       pp_pooled == NULL)
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
		for (pd = pp_pooled; pd != NULL; pd = pd->next)
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
			st = pfd[i].revents ? pp_job_step(&pd->job, why)
					    : PP_STEP_MORE;
			if (st == PP_STEP_MORE && pd->deadline <= now) {
				st = PP_STEP_BAD;
				pp_why(why, "timeout waiting for the header");
			}
			if (st == PP_STEP_DONE &&
			    !pp_job_finish(&pd->job, &pd->info, why))
				st = PP_STEP_BAD;
			switch (st) {
			case PP_STEP_MORE:
				break;
			case PP_STEP_DONE:
				pd->state = pp_pool_put(pd, now)
						    ? PP_PEND_POOLED
						    : PP_PEND_READY;
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
			if (pd->state == PP_PEND_POOLED) {
				pp_job_free(&pd->job);
				pd->next = pp_pooled;
				pp_pooled = pd;
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
			pp_knock_again(pd, now, knocks, kcookies, &nk);
			pp = &pd->next;
		}
		/*
		 * Connections put in a pool: knock again while they are still
		 * there (a knock can be taken by a process that cannot reach
		 * the pool); reset them when nobody took them for a minute.
		 */
		for (pp = &pp_pooled; *pp != NULL;) {
			bool expired;
			int where;

			pd = *pp;
			if (pd->deadline > now) {
				pp = &pd->next;
				continue;
			}
			where = pp_pool_state(pd, now, &expired);
			if (expired ||
			    (where == 2 && pd->knocks >= PP_MAX_KNOCKS))
				pp_pool_drop_head(pd, now);
			if (where == 0 || pd->knocks >= PP_MAX_KNOCKS ||
			    !pp_same_socket(pd->lfd, pd->lcookie)) {
				*pp = pd->next;
				free(pd);
				continue;
			}
			pp_knock_again(pd, now, knocks, kcookies, &nk);
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
		/* A signal handler's accept got the number of an entry its
		 * interrupted thread is writing (it closed that descriptor):
		 * no entry, so the real addresses, in accept's answer too. */
		if (pp_fd_busy(fd)) {
			pp_fd_clear(fd);
			pp_copy_addr(addr, alen, &peer->sa, peerlen);
			return fd;
		}
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
	pp_dealloc(pd);
	return fd;
}

/*
 * The pool of listener lcookie, or NULL when it has none (yet).
 * Lock-free: a slot is filled before it is published, and the
 * descriptors are checked by their own cookies before each use.
 */
static struct pp_pool *
pp_pool_find(uint64_t lcookie)
{
	int i;

	if (lcookie == 0)
		return NULL;
	for (i = 0; i < PP_POOLS; i++)
		if (atomic_load_explicit(&pp_pools[i].lcookie,
					 memory_order_acquire) == lcookie)
			return atomic_load_explicit(&pp_pools[i].up,
						    memory_order_acquire)
				       ? &pp_pools[i]
				       : NULL;
	return NULL;
}

/* Close the pools of listeners this process no longer has.  Called with
 * pp_poolmtx held. */
static void
pp_pool_sweep(void)
{
	struct pp_pool *pl;
	int i;

	for (i = 0; i < PP_POOLS; i++) {
		pl = &pp_pools[i];
		if (atomic_load_explicit(&pl->lcookie, memory_order_relaxed) ==
			    0 ||
		    pp_same_socket(pl->lfd, pl->lcookie))
			continue;
		atomic_store_explicit(&pl->lcookie, 0, memory_order_release);
		if (atomic_exchange(&pl->up, false)) {
			if (pp_same_socket(pl->rfd, pl->rcookie))
				syscall(SYS_close, pl->rfd);
			if (pp_same_socket(pl->wfd, pl->wcookie))
				syscall(SYS_close, pl->wfd);
		}
	}
}

/*
 * Note PROXY-only listener lfd for a pool, made when the process forks
 * (pp_pool_open_all).  Without a slot knocks still work, within the
 * process.  Takes pp_poolmtx.
 */
static void
pp_pool_note(int lfd, uint64_t lcookie, const union pp_sockaddr *laddr,
	     socklen_t laddrlen)
{
	struct pp_pool *pl;
	int i;

	/* A signal handler's listen or accept whose thread holds the lock:
	 * no pool for this listener (see above). */
	if (lcookie == 0 || !pp_lock(&pp_poolmtx, PP_HOLD_POOL))
		return;
	pp_pool_sweep();
	for (i = 0; i < PP_POOLS; i++)
		if (atomic_load_explicit(&pp_pools[i].lcookie,
					 memory_order_relaxed) == lcookie)
			goto out;
	for (i = 0; i < PP_POOLS; i++) {
		pl = &pp_pools[i];
		if (atomic_load_explicit(&pl->lcookie, memory_order_relaxed) !=
		    0)
			continue;
		atomic_store_explicit(&pl->up, false, memory_order_relaxed);
		pl->lfd = lfd;
		pl->laddrlen = laddrlen <= sizeof(pl->laddr) ? laddrlen : 0;
		memcpy(&pl->laddr, laddr, pl->laddrlen);
		atomic_store_explicit(&pl->lcookie, lcookie,
				      memory_order_release);
		break;
	}
out:
	pp_unlock(&pp_poolmtx, PP_HOLD_POOL);
}

/*
 * fd, or a close-on-exec copy of it at 3 or above when it is 0, 1 or 2
 * (a daemon that closed its standard descriptors reopens them next, and
 * expects to get those numbers).  Raw calls: the descriptor is ours.
 */
static int
pp_fd_above_stdio(int fd)
{
	int nfd;

	if (fd > 2)
		return fd;
	nfd = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return fd;
	syscall(SYS_close, fd);
	return nfd;
}

/*
 * Before a fork: give every noted listener still open its socket pair,
 * so that the child shares it.  Takes pp_poolmtx.
 */
static void
pp_pool_open_all(void)
{
	struct pp_pool *pl;
	int sv[2], i;

	/* fork from a handler whose thread holds the lock: no new pools. */
	if (!pp_lock(&pp_poolmtx, PP_HOLD_POOL))
		return;
	pp_pool_sweep();
	for (i = 0; i < PP_POOLS; i++) {
		pl = &pp_pools[i];
		if (atomic_load_explicit(&pl->lcookie, memory_order_relaxed) ==
			    0 ||
		    atomic_load_explicit(&pl->up, memory_order_relaxed) ||
		    syscall(SYS_socketpair, AF_UNIX,
			    SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
			    sv) != 0)
			continue;
		pl->rfd = pp_fd_above_stdio(sv[0]);
		pl->wfd = pp_fd_above_stdio(sv[1]);
		pl->rcookie = pp_socket_cookie(sv[0]);
		pl->wcookie = pp_socket_cookie(sv[1]);
		(void)syscall(SYS_shutdown, sv[0], SHUT_WR);
		atomic_store_explicit(&pl->up, true, memory_order_release);
	}
	pp_unlock(&pp_poolmtx, PP_HOLD_POOL);
}

/* Send fd with msg and the header bytes into a pool.  Returns 0 or an
 * errno. */
static int
pp_pool_send(struct pp_pool *pl, int fd, const struct pp_poolmsg *msg,
	     const uint8_t *hdr)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov[2] = {
		{ .iov_base = (void *)msg, .iov_len = sizeof(*msg) },
		{ .iov_base = (void *)hdr, .iov_len = msg->hlen },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	struct cmsghdr *c;

	if (!pp_same_socket(pl->wfd, pl->wcookie))
		return EBADF;
	memset(&cm, 0, sizeof(cm));
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (syscall(SYS_sendmsg, pl->wfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return errno;
	return 0;
}

/*
 * Put the ready connection pd in its listener's pool: any process that
 * takes a knock on the listener takes it from there.  Returns false
 * (pd unchanged) when there is no pool or it is full.  On success the
 * connection is the pool's and pd only remembers where it went.
 */
static bool
pp_pool_put(struct pp_pend *pd, int64_t now)
{
	struct pp_pool *pl = pp_pool_find(pd->lcookie);
	struct pp_poolmsg msg;

	if (pl == NULL)
		return false;
	memset(&msg, 0, sizeof(msg));
	msg.magic = PP_POOL_MAGIC;
	msg.hlen = (uint32_t)pd->job.p.have;
	msg.pid = getpid();
	msg.seq = ++pp_pool_seq;
	msg.deadline = now + PP_POOL_TTL_MS;
	msg.family = pd->job.family;
	msg.lport = pd->job.lport;
	msg.peerlen = pd->job.peerlen;
	msg.peer = pd->job.peer;
	msg.info = pd->info;
	if (pp_pool_send(pl, pd->job.fd, &msg, pd->job.p.buf) != 0)
		return false;
	pp_real.close(pd->job.fd);
	pd->job.fd = -1;
	pd->seq = msg.seq;
	return true;
}

/*
 * Take the oldest connection of a pool, if any.  Returns its descriptor
 * (close-on-exec), with *msg and the header bytes in hdr (PP_V2_MAX
 * bytes), or -1.
 */
static int
pp_pool_recv(struct pp_pool *pl, struct pp_poolmsg *msg, uint8_t *hdr)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov[2] = {
		{ .iov_base = msg, .iov_len = sizeof(*msg) },
		{ .iov_base = hdr, .iov_len = PP_V2_MAX },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	struct cmsghdr *c;
	ssize_t n;
	int fd = -1;

	if (!pp_same_socket(pl->rfd, pl->rcookie))
		return -1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	n = syscall(SYS_recvmsg, pl->rfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (fd >= 0 &&
	    (n < (ssize_t)sizeof(*msg) || msg->magic != PP_POOL_MAGIC ||
	     (size_t)n != sizeof(*msg) + msg->hlen ||
	     (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)) {
		pp_reset(fd);
		fd = -1;
	}
	return fd;
}

/*
 * Take a ready connection from pool pl and hand it over as accept
 * would.  hdr: PP_V2_MAX bytes of scratch.  Returns the descriptor, or
 * -1 when the pool is empty.
 */
static int
pp_pool_take1(struct pp_pool *pl, uint8_t *hdr, int flags,
	      struct sockaddr *addr, socklen_t *alen)
{
	struct pp_poolmsg msg;
	struct pp_job job;
	size_t used;
	int fd, fl;

	for (;;) {
		fd = pp_pool_recv(pl, &msg, hdr);
		if (fd < 0)
			break;
		if (pp_fd_kind(fd) != PP_FD_NONE)
			pp_fd_clear(fd);
		pp_job_init(&job, fd, msg.family, &msg.peer, msg.peerlen);
		job.lport = msg.lport;
		if (pp_job_push(&job, hdr, msg.hlen, &used) != PP_DONE ||
		    pp_now_ms() > msg.deadline) {
			pp_refuse(fd, &msg.peer, msg.peerlen, PP_LOG_WARN,
				  "the program did not accept it");
			pp_job_free(&job);
			continue;
		}
		fl = pp_real.fcntl(fd, F_GETFL);
		if (fl >= 0)
			(void)pp_real.fcntl(fd, F_SETFL,
					    (flags & SOCK_NONBLOCK)
						    ? fl | O_NONBLOCK
						    : fl & ~O_NONBLOCK);
		if (!(flags & SOCK_CLOEXEC))
			(void)pp_real.fcntl(fd, F_SETFD, 0);
		fd = pp_hand_over(fd, &msg.info, &job, addr, alen);
		pp_job_free(&job);
		if (fd >= 0)
			break;
	}
	return fd;
}

/*
 * A knock was taken on listener lcookie: take a ready connection from
 * its pool, or else from the pool of an SO_REUSEPORT sibling (another
 * listener on the same address, which the knock reached instead of
 * that one), and hand it over as accept would.  Returns the
 * descriptor, or -1 when there is none (another process was quicker).
 */
static int
pp_pool_take(uint64_t lcookie, int flags, struct sockaddr *addr,
	     socklen_t *alen)
{
	struct pp_pool *pl = pp_pool_find(lcookie), *sib;
	uint8_t *hdr;
	int fd, i;

	if (pl == NULL || (hdr = pp_alloc(PP_V2_MAX)) == NULL)
		return -1;
	fd = pp_pool_take1(pl, hdr, flags, addr, alen);
	for (i = 0; fd < 0 && i < PP_POOLS; i++) {
		sib = &pp_pools[i];
		if (sib == pl ||
		    atomic_load_explicit(&sib->lcookie, memory_order_acquire) ==
			    0 ||
		    !atomic_load_explicit(&sib->up, memory_order_acquire) ||
		    sib->laddrlen == 0 || sib->laddrlen != pl->laddrlen ||
		    memcmp(&sib->laddr, &pl->laddr, pl->laddrlen) != 0)
			continue;
		fd = pp_pool_take1(sib, hdr, flags, addr, alen);
	}
	pp_dealloc(hdr);
	return fd;
}

/*
 * Is the connection pd put in its pool still there?  Peeks at the oldest
 * message, which is FIFO.  Returns 0 gone (or the pool), 1 still there
 * or unknown (another process's connection is ahead of it), 2 at the
 * head.  *expired: the head is past its deadline.
 */
static int
pp_pool_state(const struct pp_pend *pd, int64_t now, bool *expired)
{
	struct pp_pool *pl = pp_pool_find(pd->lcookie);
	struct pp_poolmsg msg;
	ssize_t n;

	*expired = false;
	if (pl == NULL || !pp_same_socket(pl->rfd, pl->rcookie))
		return 0;
	n = syscall(SYS_recvfrom, pl->rfd, &msg, sizeof(msg),
		    MSG_PEEK | MSG_DONTWAIT, NULL, NULL);
	if (n < (ssize_t)sizeof(msg) || msg.magic != PP_POOL_MAGIC)
		return 0;
	*expired = msg.deadline < now;
	if (msg.pid != getpid())
		return 1;
	if (msg.seq > pd->seq)
		return 0;
	return msg.seq == pd->seq ? 2 : 1;
}

/*
 * Reset the oldest connection of pd's pool when it is pd's (given up) or
 * past its deadline; one that took its place meanwhile goes back in.
 */
static void
pp_pool_drop_head(const struct pp_pend *pd, int64_t now)
{
	struct pp_pool *pl = pp_pool_find(pd->lcookie);
	struct pp_poolmsg msg;
	uint8_t *hdr;
	int fd;

	if (pl == NULL || (hdr = malloc(PP_V2_MAX)) == NULL)
		return;
	fd = pp_pool_recv(pl, &msg, hdr);
	if (fd >= 0 && (msg.deadline < now ||
			(msg.pid == getpid() && msg.seq == pd->seq) ||
			pp_pool_send(pl, fd, &msg, hdr) != 0))
		pp_refuse(fd, &msg.peer, msg.peerlen, PP_LOG_WARN,
			  "the program did not accept it");
	else if (fd >= 0)
		pp_real.close(fd); /* our copy: the pool has it again */
	free(hdr);
}

/*
 * After this call took a connection it could not return (refused, left
 * to the worker, a knock): may it go back into the real accept?  Yes on
 * a non-blocking listener (the real call says EAGAIN itself), and on a
 * blocking one only when another connection is queued already: the
 * kernel's accept would have returned by now, and a program that waits
 * in select() or poll() before accept must not stay blocked in it.  A
 * connection this call parked gets a grace of PP_PARK_GRACE_MS: if its
 * header completes meanwhile, the knock makes the listener readable and
 * the connection is returned.  *nonblock caches the listener's flag (-1
 * unknown).  Another thread or process may still take what poll saw
 * before our accept does: the real accept then blocks, as the program's
 * own would after its select() in that race.
 */
static bool
pp_may_accept_again(int lfd, bool parked, int *nonblock)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int fl;

	if (*nonblock < 0) {
		fl = pp_real.fcntl(lfd, F_GETFL);
		*nonblock = fl >= 0 && (fl & O_NONBLOCK) != 0;
	}
	if (*nonblock)
		return true;
	return poll(&pfd, 1, parked ? PP_PARK_GRACE_MS : 0) == 1 &&
	       (pfd.revents & POLLIN) != 0;
}

/* Forget the entry linfo of lfd, unless the number has another entry by
 * now (closed and given to a new socket by another thread). */
static void
pp_listener_forget(int lfd, const struct pp_fdinfo *linfo)
{
	int saved = errno;

	if (!pp_foreign_process())
		(void)pp_fd_clear_if(lfd, linfo);
	errno = saved;
}

/*
 * PP_INHERIT=1 is for the program inetd or systemd starts per
 * connection.  A process that also accepts connections on a PROXY-only
 * listener has the two mixed up: it refuses them, and says so once.
 */
static void
pp_inherit_misused(int lfd)
{
	static atomic_bool said;

	if (atomic_exchange(&said, true))
		return;
	pp_log(PP_LOG_ERROR,
	       "fd %d: PP_INHERIT=1 is for a program started per connection "
	       "(inetd, systemd Accept=yes), not for one that accepts its "
	       "own: connections on PROXY-only listeners are refused; unset "
	       "PP_INHERIT",
	       lfd);
}

/*
 * Is connection fd, just accepted on lfd, not one of a PROXY-only port?
 * lfd's number may have been closed behind our back and given to
 * another listening socket, whose clients are the program's, untouched
 * (and the stale entry of lfd is then forgotten).  One getsockname,
 * asked only before a connection would be refused or left pending, or
 * when its peer's family does not fit the listener: the accept path of
 * a complete header has no system call to spare.  By the connection's
 * own local address, not by lfd, which another thread may have closed
 * and reused since the accept.
 */
static bool
pp_not_proxied(int fd, int lfd, const struct pp_fdinfo *linfo)
{
	union pp_sockaddr sa;
	socklen_t len = sizeof(sa);
	int saved = errno;
	bool plain;

	plain = pp_real.getsockname(fd, &sa.sa, &len) == 0 &&
		!pp_config_match(&pp_cfg, SOCK_STREAM, &sa.sa, len);
	errno = saved;
	if (plain)
		pp_listener_forget(lfd, linfo);
	return plain;
}

int
pp_accept_proxy(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	struct pp_fdinfo linfo, info;
	union pp_sockaddr peer;
	socklen_t peerlen;
	struct pp_job job;
	struct pp_pend *pd;
	char why[PP_WHY_MAX];
	int saved = errno, fd, nonblock = -1;
	bool took = false, parked = false;

	if (addr != NULL && alen == NULL) {
		errno = EFAULT;
		return -1;
	}
	/*
	 * A signal handler that interrupted its own thread inside the
	 * lists' locks or malloc, or inside a write of the listener's
	 * entry: this accept cannot finish a connection without waiting for
	 * that thread, which cannot run.  It fails as a non-blocking accept
	 * that found nothing does, before taking a connection, so none is
	 * lost: the interrupted call or the next one takes it.
	 */
	if (pp_holding(PP_HOLD_PENDING | PP_HOLD_KNOCKS | PP_HOLD_MALLOC) ||
	    (pp_fd_get(lfd, &linfo) != PP_FD_LISTEN && pp_fd_busy(lfd))) {
		errno = EAGAIN;
		return -1;
	}
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
		/*
		 * Only connections that cannot be returned so far: report
		 * ECONNABORTED (a connection that went away before accept,
		 * which servers retry) rather than block where the kernel
		 * would not have.  Never without having taken one.
		 */
		if (took && !pp_may_accept_again(lfd, parked, &nonblock)) {
			if (atomic_load_explicit(&pp_nready,
						 memory_order_acquire) > 0 &&
			    (pd = pp_ready_take(linfo.cookie)) != NULL) {
				fd = pp_hand_ready(pd, flags, addr, alen);
				if (fd >= 0) {
					errno = saved;
					return fd;
				}
			}
			errno = ECONNABORTED;
			return -1;
		}
		peerlen = sizeof(peer);
		fd = pp_real.accept4(lfd, &peer.sa, &peerlen, flags);
		if (fd < 0) {
			/* EAGAIN after taking something: the listener is
			 * non-blocking, and that is what it says.  EINVAL,
			 * ENOTSOCK, EOPNOTSUPP: lfd is no listener (now). */
			if (errno == EINVAL || errno == ENOTSOCK ||
			    errno == EOPNOTSUPP)
				pp_listener_forget(lfd, &linfo);
			return -1;
		}
		took = true;
		if (pp_fd_kind(fd) != PP_FD_NONE)
			pp_fd_clear(fd);
		if (peer.sa.sa_family != linfo.family &&
		    pp_not_proxied(fd, lfd, &linfo))
			goto plain;
		if (pp_own_knock(&peer, peerlen)) {
			pp_real.close(fd);
			goto knocked;
		}
		if (pp_cfg.inherit) {
			if (pp_peek_knock(fd)) {
				pp_real.close(fd);
				goto knocked;
			}
			if (pp_not_proxied(fd, lfd, &linfo))
				goto plain;
			pp_inherit_misused(lfd);
			pp_refuse(fd, &peer, peerlen, PP_LOG_INFO,
				  "PP_INHERIT=1 in a process that accepts");
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
					goto knocked;
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
			if (pp_peek_knock(fd)) {
				pp_real.close(fd);
				goto knocked;
			}
			if (pp_not_proxied(fd, lfd, &linfo))
				goto plain;
			pp_refuse(fd, &peer, peerlen, PP_LOG_INFO,
				  "untrusted source");
			continue;
		}
		pp_job_init(&job, fd, linfo.family, &peer, peerlen);
		job.lport = linfo.lport;
		switch (pp_job_step(&job, why)) {
		case PP_STEP_DONE:
			if (!pp_job_finish(&job, &info, why))
				break;
			fd = pp_hand_over(fd, &info, &job, addr, alen);
			pp_job_free(&job);
			if (fd < 0)
				continue;
			errno = saved;
			return fd;
		case PP_STEP_MORE:
			if (pp_not_proxied(fd, lfd, &linfo)) {
				pp_job_free(&job);
				goto plain;
			}
			pp_pend_add(&job, lfd, linfo.cookie,
				    pp_now_ms() + pp_cfg.timeout_ms);
			parked = true;
			continue;
		case PP_STEP_KNOCK:
			pp_real.close(fd);
			pp_job_free(&job);
			goto knocked;
		case PP_STEP_BAD:
			break;
		}
		pp_job_free(&job);
		if (pp_not_proxied(fd, lfd, &linfo))
			goto plain;
		pp_refuse(fd, &peer, peerlen, PP_LOG_WARN, why);
		continue;
	knocked:
		/* A knock, ours or another process's: a connection is ready
		 * in the listener's pool, unless somebody took it already. */
		fd = pp_pool_take(linfo.cookie, flags, addr, alen);
		if (fd >= 0) {
			errno = saved;
			return fd;
		}
	}
plain:
	/* lfd is another socket than the listener of the entry: the
	 * connection is the program's, untouched, with its real peer. */
	pp_copy_addr(addr, alen, &peer.sa, peerlen);
	errno = saved;
	return fd;
}

enum pp_fdkind
pp_classify(int fd)
{
	struct pp_fdinfo info;
	union pp_sockaddr sa;
	socklen_t len = sizeof(sa), olen;
	int type = 0, listening = 0, defer, saved = errno;

	/* Being classified by this very thread (a signal handler): taken
	 * for PROXY-only, whose accept then fails with EAGAIN rather than
	 * hand over bytes nobody checked. */
	if (pp_fd_busy(fd))
		return PP_FD_LISTEN;
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
	pp_pool_note(fd, info.cookie, &sa, len);
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

/* The locks the fork handlers took: not those the forking thread held
 * already (fork from a handler that interrupted an accept). */
static PP_TLS unsigned pp_fork_held;

void
pp_conn_atfork_prepare(void)
{
	pp_pool_open_all();
	pp_fork_held = 0;
	if (pp_lock(&pp_poolmtx, PP_HOLD_POOL))
		pp_fork_held |= PP_HOLD_POOL;
	if (pp_lock(&pp_kmtx, PP_HOLD_KNOCKS))
		pp_fork_held |= PP_HOLD_KNOCKS;
	if (pp_lock(&pp_pmtx, PP_HOLD_PENDING))
		pp_fork_held |= PP_HOLD_PENDING;
}

void
pp_conn_atfork_parent(void)
{
	if (pp_fork_held & PP_HOLD_PENDING)
		pp_unlock(&pp_pmtx, PP_HOLD_PENDING);
	if (pp_fork_held & PP_HOLD_KNOCKS)
		pp_unlock(&pp_kmtx, PP_HOLD_KNOCKS);
	if (pp_fork_held & PP_HOLD_POOL)
		pp_unlock(&pp_poolmtx, PP_HOLD_POOL);
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
	struct pp_pend *lists[3] = { pp_pending, pp_readyq, pp_pooled };
	int i;

	for (i = 0; i < 3; i++) {
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
	pp_pooled = NULL;
	atomic_store(&pp_nready, 0);
	pp_worker_up = false;
	memset(pp_knocks, 0, sizeof(pp_knocks));
	atomic_store(&pp_nknocks, 0);
	if (!free_lists) {
		pthread_mutex_init(&pp_pmtx, NULL);
		pthread_mutex_init(&pp_kmtx, NULL);
		pthread_mutex_init(&pp_poolmtx, NULL);
	}
	pthread_cond_init(&pp_pcond, NULL);
}

void
pp_conn_atfork_child(void)
{
	pp_init_atfork_child();
	pp_conn_atfork_parent();
	/* Forked from a handler that interrupted this thread's use of the
	 * lists: they stay as they are for it. */
	if (pp_fork_held == (PP_HOLD_POOL | PP_HOLD_PENDING | PP_HOLD_KNOCKS))
		pp_conn_forget(true);
}

int
pp_read_header_wait(int fd, int family, const union pp_sockaddr *peer,
		    socklen_t peerlen, struct pp_fdinfo *info,
		    struct pp_tlvset *tlvs, char why[PP_WHY_MAX])
{
	int64_t deadline = pp_now_ms() + pp_cfg.timeout_ms, now;
	const struct pp_header *h;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct pp_job job;
	enum pp_step st;
	int ret = -1;

	memset(tlvs, 0, sizeof(*tlvs));
	why[0] = '\0';
	pp_job_init(&job, fd, family, peer, peerlen);
	for (;;) {
		st = pp_job_step(&job, why);
		if (st == PP_STEP_DONE)
			break;
		if (st == PP_STEP_KNOCK) {
			pp_why(why, "not a PROXY header");
			goto out;
		}
		if (st == PP_STEP_BAD)
			goto out;
		now = pp_now_ms();
		if (now >= deadline) {
			pp_why(why, "timeout waiting for the header");
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

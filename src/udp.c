/*
 * udp.c - the receive path of PROXY-only datagram sockets: one header
 * per datagram, stripped before the program sees it.
 *
 * Which sockets are PROXY-only: udp_sock.c; every receive call on any
 * other descriptor (read() on every file of the program included) costs
 * one table load and goes straight to libc (hook_udp.c).
 *
 * Identity.  The number of a PROXY-only socket may be closed behind the
 * hooks' back and given to another descriptor where no hook sees it.
 * Each receive asks the kernel at no extra cost: it carries MSG_OOB,
 * which UDP ignores and every other socket refuses (EINVAL, EOPNOTSUPP)
 * before taking a byte, a non-socket fails with ENOTSOCK, and a
 * datagram whose source is not an address of the entry's family is
 * another socket's.  Such a descriptor's entry is forgotten and the
 * call is libc's, every byte still there (a datagram already received
 * is delivered as the kernel gave it).  A UDP socket of the same family
 * is told apart by its cookie, compared before a datagram is dropped,
 * so its datagrams are never lost; one whose sources send valid headers
 * is not (see doc/security.md, section 4).
 *
 * Receiving.  The header length differs from one datagram to the next,
 * so the kernel cannot be asked to put the payload where the program
 * wants it.  Each datagram is received whole (MSG_TRUNC tells its real
 * length).  recvfrom, recv and read use the kernel's recvfrom (cheaper
 * than recvmsg), into the program's buffer when it holds 64 KiB (more
 * than any UDP payload), else into a private 64 KiB buffer.  A recvmsg
 * with one buffer receives into it followed by the private one for what
 * does not fit.  In the program's buffer the header is read in place
 * and the payload moved down over it.  A datagram longer than the
 * program's buffer is first put together in the private one, and so is
 * every datagram for a program that gives several buffers; its payload
 * is then copied into them.  The private buffer is one per
 * thread, mapped the first time that thread receives on a PROXY-only
 * socket and unmapped when it exits.  The caller's control buffer is
 * handed to the kernel as it is, so IP_PKTINFO, IPV6_PKTINFO,
 * timestamps and MSG_CTRUNC are exactly the kernel's: the real local
 * address, never an advertised one.
 *
 * Each datagram gets a verdict from its real source (udp_judge.c): its
 * header stripped and its advertised client reported, or its real
 * source reported, or dropped.
 * A dropped datagram is never seen by the program: the call receives
 * the next one, which blocks, or fails with EAGAIN, exactly when the
 * program's own call would.  Under MSG_PEEK a bad datagram is really
 * received (and so removed) before the next one is peeked.
 *
 * Replies.  A datagram that advertised a client notes its reply route
 * (route.c), through which sendto, sendmsg, sendmmsg and connect to
 * that client go back to the proxy; a client that came by SPP has the
 * header's proxy noted with it, for the header its replies carry
 * (udp_reply.c).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ident.h"
#include "pp_hot.h"
#include "route.h"
#include "shim.h"
#include "stats.h"
#include "udp.h"
#include "pp_sockaddr.h"
#include "udp_judge.h"

#define PP_WARN_EVERY_S 10u
#define PP_MMSG_MAX 1024u /* UIO_MAXIOV: the kernel's cap on vlen */

/*
 * The hooks' per-thread state.  The library is loaded at start (it is
 * preloaded), so its thread-local variables can live in the static TLS
 * block, reached without a call to __tls_get_addr (PP_TLS, reentry.h).
 */

/* ===== The per-thread receive buffer ===== */

/* The receive buffer, the thread's fingerprint slots (route.h),
 * then the buffer of a signal handler's receive that interrupted one of
 * the thread's (pp_udp_buf_take), in one mapping.  Pages never touched
 * cost no memory. */
#define PP_TMAP (PP_UDP_BUF + PP_RT_FRESH_SZ + PP_UDP_BUF)

static PP_TLS uint8_t *pp_tbuf;
static pthread_key_t pp_tbuf_key;
static pthread_once_t pp_tbuf_once = PTHREAD_ONCE_INIT;
static bool pp_tbuf_key_ok;

static void
pp_tbuf_free(void *p)
{
	munmap(p, PP_TMAP);
}

static void
pp_tbuf_key_init(void)
{
	pp_tbuf_key_ok = pthread_key_create(&pp_tbuf_key, pp_tbuf_free) == 0;
}

/* mmap rather than malloc: no allocator lock inside a receive call.
 * Called as section PP_HOLD_UDPBUF only (pp_udp_buf_take): a handler
 * never enters the pthread_once below while its thread is inside it. */
PP_WARM_DGRAM static uint8_t *
pp_udp_buf(void)
{
	void *p;

	if (pp_tbuf != NULL)
		return pp_tbuf;
	p = mmap(NULL, PP_TMAP, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	pthread_once(&pp_tbuf_once, pp_tbuf_key_init);
	if (pp_tbuf_key_ok)
		(void)pthread_setspecific(pp_tbuf_key, p);
	pp_rt_fresh_attach((uint64_t *)((uint8_t *)p + PP_UDP_BUF));
	pp_tbuf = p;
	return p;
}

/*
 * The buffer for one receive (or one reply copied whole, udp_reply.c):
 * the thread's; for a signal handler that
 * interrupted its thread inside a receive, the spare one beside it, so
 * that the interrupted receive finds its datagram intact; deeper still
 * (or before the thread's mapping exists), a mapping of its own.  *held
 * says which (a PP_HOLD_* bit, or 0 for a mapping of its own); give it
 * back with pp_udp_buf_give().  NULL when memory is short.
 */
PP_HOT_DGRAM uint8_t *
pp_udp_buf_take(unsigned *held)
{
	void *p;

	*held = 0;
	if (pp_hold(PP_HOLD_UDPBUF)) {
		p = pp_udp_buf();
		if (p == NULL)
			pp_release(PP_HOLD_UDPBUF);
		else
			*held = PP_HOLD_UDPBUF;
		return p;
	}
	if (pp_tbuf != NULL && pp_hold(PP_HOLD_UDPBUF2)) {
		*held = PP_HOLD_UDPBUF2;
		return pp_tbuf + PP_UDP_BUF + PP_RT_FRESH_SZ;
	}
	p = mmap(NULL, PP_UDP_BUF, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

PP_HOT_DGRAM void
pp_udp_buf_give(uint8_t *buf, unsigned held)
{
	if (held != 0)
		pp_release(held);
	else
		munmap(buf, PP_UDP_BUF);
}

/* ===== Receiving ===== */

static _Atomic uint32_t pp_last_warn;

/*
 * errno's address, asked of libc once per thread: the receive saves and
 * restores errno on every call, and libc's __errno_location is one more
 * page of code between two system calls (pp_hot.h).  A thread's errno
 * stays where it is; a forked child's is at the same address.
 */
static PP_TLS int *pp_errp;

static inline int *
pp_errno_at(void)
{
	int *p = pp_errp;

	if (__builtin_expect(p == NULL, 0))
		pp_errp = p = &errno;
	return p;
}

static void
pp_dropped(int fd, const union pp_sockaddr *src, socklen_t srclen,
	   const char *why)
{
	enum pp_loglevel level = PP_LOG_INFO;
	uint32_t now, last;
	char who[INET6_ADDRSTRLEN + 16];

	if (!pp_log_on(PP_LOG_WARN))
		return;
	/* One warning every few seconds at most: a flood of bad datagrams
	 * must not become a flood of log lines.  The rest at info. */
	now = pp_now_s() + PP_WARN_EVERY_S; /* never 0 */
	last = atomic_load_explicit(&pp_last_warn, memory_order_relaxed);
	if ((last == 0 || now - last >= PP_WARN_EVERY_S) &&
	    atomic_compare_exchange_strong(&pp_last_warn, &last, now))
		level = PP_LOG_WARN;
	if (!pp_log_on(level))
		return;
	pp_sa_fmt(&src->sa, srclen, who, sizeof(who));
	pp_log(level, "fd %d: dropped a datagram from %s: %s", fd, who, why);
}

/* Scatter p[0..n) over the caller's buffers; returns what fitted. */
static size_t
pp_scatter(const struct msghdr *msg, const uint8_t *p, size_t n)
{
	size_t i, k, done = 0;

	for (i = 0; i < (size_t)msg->msg_iovlen && done < n; i++) {
		k = msg->msg_iov[i].iov_len;
		if (k > n - done)
			k = n - done;
		if (k > 0)
			memcpy(msg->msg_iov[i].iov_base, p + done, k);
		done += k;
	}
	return done;
}

/* Really receive (and forget) the datagram a MSG_PEEK looked at. */
static void
pp_consume(int fd, uint8_t *buf)
{
	struct iovec iov = { .iov_base = buf, .iov_len = 1 };
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	(void)pp_real.recvmsg(fd, &m, MSG_DONTWAIT | MSG_TRUNC);
}

/* Which call the datagram path receives with. */
enum pp_udp_by {
	/* The kernel's recvfrom, for recvfrom, recv and read: msg has one
	 * buffer and no control buffer, and the caller does not look at
	 * msg_flags. */
	PP_UDP_BY_RECVFROM,
	/* The recvmsg function the caller gives (via). */
	PP_UDP_BY_RECVMSG,
};

static inline __attribute__((always_inline)) ssize_t
pp_udp_recv(int fd, struct msghdr *msg, int flags, enum pp_udp_by by,
	    pp_recvmsg_fn via);
static inline __attribute__((always_inline)) ssize_t
pp_udp_recv_in(int fd, struct msghdr *msg, int flags, enum pp_udp_by by,
	       pp_recvmsg_fn via, uint8_t *buf, const struct pp_fddgram *fi);

/*
 * Is fd still the datagram socket its entry describes?  The datagram
 * path asks the kernel at no cost of its own (see pp_udp_recv); this,
 * one getsockopt, is only asked before a datagram is dropped and when
 * the kernel refused the probe.  True when the kernel has no cookies
 * (nothing to compare: the entry is kept, as it always was).
 */
static bool
pp_udp_same(int fd)
{
	struct pp_fdinfo info;

	if (pp_fd_get(fd, &info) != PP_FD_UDP)
		return false;
	return info.cookie == 0 || pp_same_socket(fd, info.cookie);
}

/*
 * Forget the entry of fd, which the kernel's answer showed to be stale,
 * unless the number is by now a PROXY-only socket of its own (closed and
 * classified anew by another thread meanwhile).  Off the hot path.
 */
static void
pp_udp_forget(int fd)
{
	struct pp_fdinfo info;
	int saved = errno;

	if (pp_claim_table() && pp_fd_get(fd, &info) == PP_FD_UDP &&
	    !(info.cookie != 0 && pp_same_socket(fd, info.cookie)))
		(void)pp_fd_clear_if(fd, &info);
	errno = saved;
}

/* A source the kernel reports for a datagram of a socket of family fam:
 * an address of that family, whole. */
static bool
pp_udp_source(int fam, const union pp_sockaddr *src, socklen_t len)
{
	if (src->sa.sa_family != fam)
		return false;
	return len == (fam == AF_INET6 ? sizeof(struct sockaddr_in6)
				       : sizeof(struct sockaddr_in));
}

/*
 * The identity probe: MSG_OOB on every receive of the datagram path.
 * UDP ignores the flag; a stream socket (TCP, a socketpair, any UNIX
 * socket) and every other kind refuses it at once, EINVAL or
 * EOPNOTSUPP, before a byte is taken.  Turned off for good if a kernel
 * ever refuses it on the very socket (checked by cookie).
 */
static PP_HOT_DATA atomic_int pp_udp_probe = MSG_OOB;

/*
 * Receive one datagram for pp_udp_recv() into m (whose name and control
 * fields are set), by recvfrom or through via.  With direct, into the
 * caller's single
 * buffer d0[0..len0) first and the thread's buffer after it; otherwise
 * into the thread's buffer alone.  Sets *d to where the datagram's first
 * *have bytes now lie in one piece.
 */
static inline __attribute__((always_inline)) ssize_t
pp_udp_get(int fd, struct msghdr *m, int flags, enum pp_udp_by by,
	   pp_recvmsg_fn via, bool direct, uint8_t *d0, size_t len0,
	   uint8_t *buf, const uint8_t **d, size_t *have)
{
	struct iovec iov[2];
	size_t k;
	ssize_t n;

	/* recvfrom, recv, read (no control buffer, no msg_flags): the
	 * kernel's cheaper recvfrom, straight into a buffer that holds any
	 * datagram, else into ours. */
	if (by == PP_UDP_BY_RECVFROM) {
		*d = direct && len0 >= PP_UDP_BUF ? d0 : buf;
		*have = *d == d0 ? len0 : PP_UDP_BUF;
		n = pp_real.recvfrom(fd, (void *)*d, *have, flags | MSG_TRUNC,
				     m->msg_name, &m->msg_namelen);
		if (n >= 0 && (size_t)n < *have)
			*have = (size_t)n;
		return n;
	}

	iov[0].iov_base = d0;
	iov[0].iov_len = len0;
	iov[1].iov_base = buf;
	iov[1].iov_len = PP_UDP_BUF;
	m->msg_iov = direct ? iov : iov + 1;
	m->msg_iovlen = direct ? 2 : 1;
	n = via(fd, m, flags | MSG_TRUNC);
	if (n < 0)
		return n;
	if (!direct || (size_t)n <= len0 || len0 >= PP_UDP_BUF) {
		*d = direct ? d0 : buf;
		*have = direct ? len0 : PP_UDP_BUF;
		if ((size_t)n < *have)
			*have = (size_t)n;
		return n;
	}
	/* Longer than the caller's buffer: put it together in ours. */
	k = (size_t)n - len0;
	if (k > PP_UDP_BUF - len0)
		k = PP_UDP_BUF - len0;
	memmove(buf + len0, buf, k);
	memcpy(buf, d0, len0);
	*d = buf;
	*have = len0 + k;
	return n;
}

PP_HOT_DGRAM ssize_t
pp_udp_recvmsg_via(int fd, struct msghdr *msg, int flags, pp_recvmsg_fn via)
{
	return pp_udp_recv(fd, msg, flags, PP_UDP_BY_RECVMSG, via);
}

/* The datagram path proper, receiving as by says (via: the recvmsg
 * function of PP_UDP_BY_RECVMSG).  Inlined in its two callers, so that
 * recvfrom's copy is built for one buffer and no control buffer. */
static inline __attribute__((always_inline)) ssize_t
pp_udp_recv(int fd, struct msghdr *msg, int flags, enum pp_udp_by by,
	    pp_recvmsg_fn via)
{
	struct pp_fddgram fi;
	uint8_t *buf;
	ssize_t n;
	unsigned own;

	/* The error queue holds our own datagrams; a bad msg is the
	 * kernel's to refuse (EFAULT). */
	if ((flags & MSG_ERRQUEUE) || msg == NULL ||
	    pp_fd_dgram(fd, &fi) != PP_FD_UDP)
		return PP_UDP_PASS;
	if (msg->msg_iovlen > IOV_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	buf = pp_udp_buf_take(&own);
	if (buf == NULL) {
		errno = ENOMEM;
		return -1;
	}
	n = pp_udp_recv_in(fd, msg, flags, by, via, buf, &fi);
	pp_udp_buf_give(buf, own);
	return n;
}

/* pp_udp_recv() on PROXY-only socket fd (*fi: its family, the port it
 * is bound to, SPP rather than v2, its counters), with buf as the
 * private buffer.
 * Inlined: a call of its own costs the datagram path a few per cent of
 * its instructions. */
static inline __attribute__((always_inline)) ssize_t
pp_udp_recv_in(int fd, struct msghdr *msg, int flags, enum pp_udp_by by,
	       pp_recvmsg_fn via, uint8_t *buf, const struct pp_fddgram *fi)
{
	const uint16_t family = fi->family, lport = fi->lport;
	const bool spp = fi->spp;
	struct pp_note nt;
	struct pp_spp sh;
	union pp_sockaddr src;
	struct pp_advert adv;
	struct msghdr m;
	enum pp_verdict v;
	const char *why = "";
	size_t skip, have = 0, plen, done, len0 = 0;
	const uint8_t *d = NULL;
	uint8_t *d0 = NULL;
	bool direct, note;
	ssize_t n;
	int *const errp = pp_errno_at();
	int saved = *errp, probe, e;

	/* One buffer of the caller's (recvfrom, recv, read, most recvmsg):
	 * the datagram goes straight into it. */
	direct = msg->msg_iovlen == 1 && msg->msg_iov != NULL &&
		 msg->msg_iov[0].iov_base != NULL &&
		 msg->msg_iov[0].iov_len > 0;
	if (direct) {
		d0 = msg->msg_iov[0].iov_base;
		len0 = msg->msg_iov[0].iov_len;
	}
	probe = atomic_load_explicit(&pp_udp_probe, memory_order_relaxed);
	for (;;) {
		memset(&m, 0, sizeof(m));
		m.msg_name = &src;
		m.msg_namelen = sizeof(src);
		m.msg_control = msg->msg_control;
		m.msg_controllen = msg->msg_controllen;
		n = pp_udp_get(fd, &m, flags | probe, by, via, direct, d0, len0,
			       buf, &d, &have);
		/*
		 * The entry is checked before any answer, by the kernel's
		 * own: a number closed behind our back and reused is no
		 * socket now (ENOTSOCK), or a socket that refuses the
		 * probe, taking nothing, or not a datagram socket of the
		 * entry's family (its source says so).
		 */
		if (n < 0) {
			e = errno;
			if (e == ENOTSOCK)
				goto stale;
			if (probe == 0 || (e != EINVAL && e != EOPNOTSUPP))
				return -1;
			if (!pp_udp_same(fd))
				goto stale;
			probe = 0; /* this kernel refuses it on UDP */
			n = pp_udp_get(fd, &m, flags, by, via, direct, d0, len0,
				       buf, &d, &have);
			if (n < 0)
				return -1;
			atomic_store_explicit(&pp_udp_probe, 0,
					      memory_order_relaxed);
		}
		if (!pp_udp_source(family, &src, m.msg_namelen)) {
			/* No source: a stream socket's urgent byte answered
			 * the probe (TCP without SO_OOBINLINE). */
			if (m.msg_namelen == 0)
				goto stale;
			/* A datagram of another socket: delivered as the
			 * kernel gave it. */
			pp_udp_forget(fd);
			v = PP_DG_REAL;
			skip = 0;
			break;
		}
		v = pp_judge(family, spp, &src, m.msg_namelen, d, have, &skip,
			     &adv, &why);
		if (v != PP_DG_DROP) {
			pp_stat_dgram(fi->stat, v == PP_DG_ADV, skip, spp);
			break;
		}
		/* Never drop a datagram of a socket that only has the
		 * number of a PROXY-only one. */
		if (!pp_udp_same(fd)) {
			pp_udp_forget(fd);
			v = PP_DG_REAL;
			skip = 0;
			break;
		}
		pp_stat_inc(fi->stat, PP_ST_DROPPED);
		pp_dropped(fd, &src, m.msg_namelen, why);
		if (flags & MSG_PEEK)
			pp_consume(fd, buf);
	}
	/* The note's fresh set is fetched while the payload is copied. */
	note = v == PP_DG_ADV;
	if (note) {
		memcpy(nt.k.k.aaddr, adv.norm, sizeof(nt.k.k.aaddr));
		nt.k.k.aport = adv.port;
		nt.k.k.lport = lport;
		nt.family = family;
		nt.adv = &adv.addr;
		nt.sw.s.on = 0;
		/* The header's proxy, for the header of the replies (the
		 * payload is moved over it below). */
		if (spp && pp_parse_spp(d, have, &sh)) {
			memcpy(nt.sw.s.paddr, sh.proxy, 16);
			nt.sw.s.pport = sh.pport;
			nt.sw.s.on = 1;
		}
		note = pp_note_prep(&nt, &src.sa, m.msg_namelen, pp_now_s());
	}
	plen = (size_t)n - skip;
	if (d == d0) {
		done = have - skip;
		if (skip > 0 && done > 0)
			memmove(d0, d0 + skip, done);
	} else if (direct) {
		/* The caller's one buffer (recvfrom into a small one). */
		done = have - skip < len0 ? have - skip : len0;
		pp_copy_hot(d0, d + skip, done);
	} else {
		done = pp_scatter(msg, d + skip, have - skip);
	}
	msg->msg_flags = m.msg_flags & ~MSG_TRUNC;
	if (done < plen)
		msg->msg_flags |= MSG_TRUNC;
	msg->msg_controllen = m.msg_controllen;
	if (v == PP_DG_ADV) {
		if (msg->msg_name != NULL)
			pp_sa_copy(msg->msg_name, &msg->msg_namelen,
				   &adv.addr.sa, adv.len);
		if (note)
			pp_rt_note(&nt);
	} else if (msg->msg_name != NULL) {
		pp_sa_copy(msg->msg_name, &msg->msg_namelen, &src.sa,
			   m.msg_namelen);
	}
	if (pp_log_on(PP_LOG_DEBUG)) {
		char real[INET6_ADDRSTRLEN + 16], as[INET6_ADDRSTRLEN + 16];

		pp_sa_fmt(&src.sa, m.msg_namelen, real, sizeof(real));
		if (v == PP_DG_ADV)
			pp_sa_fmt(&adv.addr.sa, adv.len, as, sizeof(as));
		pp_log(PP_LOG_DEBUG, "fd %d: datagram from %s as %s, %zu bytes",
		       fd, real, v == PP_DG_ADV ? as : "itself", plen);
	}
	*errp = saved;
	return (flags & MSG_TRUNC) ? (ssize_t)plen : (ssize_t)done;
stale:
	/* Not the socket of the entry: forget it, and let the program's
	 * own call have the descriptor, every byte still in it. */
	pp_udp_forget(fd);
	*errp = saved;
	return PP_UDP_PASS;
}

PP_HOT_DGRAM ssize_t
pp_udp_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
		socklen_t *alen)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (addr != NULL && alen != NULL) {
		m.msg_name = addr;
		m.msg_namelen = *alen;
	}
	n = pp_udp_recv(fd, &m, flags, PP_UDP_BY_RECVFROM, NULL);
	if (n >= 0 && m.msg_name != NULL)
		*alen = m.msg_namelen;
	return n;
}

static int64_t
pp_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * The kernel's recvmmsg, one datagram at a time: waits for the first
 * exactly as the program's call would; with MSG_WAITFORONE takes only
 * what is already queued after that; the timeout, as in the kernel, is
 * looked at after each datagram and the time left written back.  An
 * error after at least one datagram ends the batch (the next call sees
 * it again, or EAGAIN).
 */
PP_WARM_DGRAM int
pp_udp_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		int64_t *tmo_ns, pp_recvmsg_fn via)
{
	struct timespec now;
	int64_t end = 0, left;
	unsigned int i;
	ssize_t n;
	int f, saved = errno;

	if (vec == NULL || vlen == 0)
		return PP_UDP_PASS; /* the kernel's answer is the right one */
	if (tmo_ns != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		end = pp_ns(&now) + *tmo_ns;
	}
	if (vlen > PP_MMSG_MAX)
		vlen = PP_MMSG_MAX;
	for (i = 0; i < vlen; i++) {
		f = flags & ~MSG_WAITFORONE;
		if (i > 0 && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		n = pp_udp_recvmsg_via(fd, &vec[i].msg_hdr, f, via);
		if (n == PP_UDP_PASS && i == 0)
			return PP_UDP_PASS;
		if (n < 0)
			break;
		vec[i].msg_len = (unsigned int)n;
		if (tmo_ns != NULL) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = end - pp_ns(&now);
			if (left <= 0) {
				i++;
				break;
			}
		}
	}
	if (tmo_ns != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = end - pp_ns(&now);
		*tmo_ns = left < 0 ? 0 : left;
	}
	if (i == 0)
		return -1;
	errno = saved;
	return (int)i;
}

/*
 * accept.c - the accept engine: accepting connections on PROXY-only
 * listeners (pp_accept_proxy), and classifying listeners (pp_classify).
 *
 * This is where the reader of the TCP path starts; doc/HACKING.md maps
 * the files.  The design, point by point, with where each part lives:
 * points 1 and 2 here, the header job in hdrio.c, point 3 in pending.c,
 * point 4 in knock.c, point 5 in pool.c, socket identity in ident.c.
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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accept.h"
#include "hdrio.h"
#include "hook_newfd.h"
#include "ident.h"
#include "knock.h"
#include "pending.h"
#include "pool.h"
#include "pp_hot.h"
#include "pp_sockaddr.h"
#include "shim.h"
#include "stats.h"
#include "trust.h"

#define PP_PARK_GRACE_MS 5 /* a blocking accept waits for what it parked */

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

	if (pp_claim_table())
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

/* See accept.h.  Takes pp_pmtx, pp_kmtx and malloc as sections, never
 * across the real accept. */
PP_HOT_CONN int
pp_accept_proxy(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	struct pp_fdinfo linfo, info;
	union pp_sockaddr peer;
	socklen_t peerlen;
	struct pp_job job;
	struct pp_pend *pd;
	enum pp_trust trust;
	enum pp_err bad;
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
		pp_fd_fresh(fd);
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
		    (trust = pp_trust(&peer.sa, peerlen)) != PP_TRUST_PROXY) {
			if (trust == PP_TRUST_DIRECT) {
				/* The knock of another process that shares
				 * the listener, when its address is direct. */
				if (pp_self_connection(fd, &peer) &&
				    pp_peek_knock(fd)) {
					pp_real.close(fd);
					goto knocked;
				}
				if (pp_log_on(PP_LOG_INFO)) {
					char who[INET6_ADDRSTRLEN + 16];

					pp_sa_fmt(&peer.sa, peerlen, who,
						  sizeof(who));
					pp_log(PP_LOG_INFO, "direct %s", who);
				}
				pp_stat_inc(linfo.stat, PP_ST_DIRECT);
				pp_sa_copy(addr, alen, &peer.sa, peerlen);
				errno = saved;
				return fd;
			}
			if (pp_peek_knock(fd)) {
				pp_real.close(fd);
				goto knocked;
			}
			if (pp_not_proxied(fd, lfd, &linfo))
				goto plain;
			pp_stat_inc(linfo.stat, PP_ST_UNTRUSTED);
			pp_refuse(fd, &peer, peerlen, PP_LOG_INFO,
				  "untrusted source");
			continue;
		}
		pp_job_init(&job, fd, linfo.family, &peer, peerlen);
		job.lport = linfo.lport;
		job.stat = linfo.stat;
		bad = PP_OK;
		switch (pp_job_step(&job, why)) {
		case PP_STEP_DONE:
			if (!pp_job_finish(&job, &info, why)) {
				bad = PP_E_V2_FAMILY;
				break;
			}
			pp_stat_done(job.stat,
				     pp_parser_header(&job.p)->version,
				     info.has_src);
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
			bad = job.p.err;
			break;
		}
		pp_job_free(&job);
		if (pp_not_proxied(fd, lfd, &linfo))
			goto plain;
		pp_stat_bad(linfo.stat, bad);
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
	pp_sa_copy(addr, alen, &peer.sa, peerlen);
	errno = saved;
	return fd;
}

/* See accept.h.  May take pp_poolmtx (pp_pool_note); keeps errno. */
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
	info.lport = pp_sa_port(&sa.sa, len);
	info.cookie = pp_socket_cookie(fd);
	info.stat = (uint8_t)pp_stat_slot(type, &sa.sa, len);
	pp_pool_note(fd, info.cookie, &sa, len);
	if (!pp_trust_any_direct() && sa.sa.sa_family != AF_UNIX) {
		defer = (int)((pp_cfg.timeout_ms + 999) / 1000);
		(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
				 sizeof(defer));
	}
	if (pp_log_on(PP_LOG_DEBUG)) {
		char where[INET6_ADDRSTRLEN + 120];

		pp_sa_fmt(&sa.sa, len, where, sizeof(where));
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

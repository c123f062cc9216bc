/*
 * knock.c - knocks: how the worker wakes whoever waits on a listener.
 *
 * A ready connection has to reach the program, which may be blocked in
 * accept or asleep in epoll_wait on the listener.  The worker opens a
 * connection to the listener's own address and writes 16 bytes that can
 * never be a valid header (the v2 signature with command 0xF).  The
 * listener becomes readable, the program calls accept, and accept
 * returns the ready connection first; the knock itself is recognised
 * (by its address in this process: pp_own_knock, by its bytes in any
 * other process that shares the listener: pp_peek_knock) and closed
 * without a trace.  The knock comes from the address it goes to; for a
 * wildcard listener 127.0.0.1, or for [::] ::ffff:127.0.0.1 when
 * dual-stack (it exists where lo has no IPv6) and ::1 when v6-only.  A
 * knock that cannot be sent is reported once, at warn.  See accept.c
 * for the whole design.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ident.h"
#include "knock.h"
#include "pp_hot.h"
#include "pp_sockaddr.h"
#include "shim.h"

const uint8_t pp_knock[16] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
	0x55, 0x49, 0x54, 0x0A, 0x2F, 'p',  'p',  'k',
};

/*
 * Knocks this process sent and has not seen back yet.  Taken by the
 * worker, and by accept/accept4 on a PROXY-only listener
 * (pp_own_knock), the only hooks that reach it from a signal handler:
 * section PP_HOLD_KNOCKS, handled as pp_pmtx is.
 */
pthread_mutex_t pp_kmtx = PTHREAD_MUTEX_INITIALIZER;
union pp_inaddr pp_knocks[PP_KNOCK_SLOTS];
static unsigned pp_knock_next;
atomic_uint pp_nknocks;

/* Was this connection one of our own knocks?  (Forgets it if so.) */
PP_HOT_CONN bool
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
		    pp_sa_equal(&peer->sa, len, &k->sa, klen)) {
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
bool
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
bool
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
	pp_sa_fmt(&sa->sa, len, where, sizeof(where));
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
 * on the worker, with no lock held.  The listener's name is read through
 * pp_real (it is the program's socket); the knocking socket is made with
 * raw system calls (it is ours, none of the program's business: real.h).
 *
 * The address: the listener's own, or for a wildcard a loopback address
 * that exists on every host: 127.0.0.1 for 0.0.0.0; for [::] with
 * IPV6_V6ONLY off (dual-stack, the default) ::ffff:127.0.0.1, which
 * works where lo has no IPv6 (Docker's default); for a v6-only [::],
 * ::1.  When no knock can be sent, it says so at warn, once.
 */
void
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
			struct in_addr lo = { htonl(INADDR_LOOPBACK) };

			pp_sa_map4(sa.sin6.sin6_addr.s6_addr, &lo);
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

/*
 * ident.c - socket identity: is a descriptor number still the socket the
 * table (or a list of ours) recorded for it?
 *
 * A program may close a descriptor and get the number back for another
 * socket without any hook seeing it (close_range, a raw syscall, a
 * library of its own).  Whatever holds a number for later compares the
 * socket's SO_COOKIE, or the real addresses that a call fetched anyway,
 * before it reads, resets or reports anything on it.  Used by the
 * accept engine, the name hooks (hook_name.c), the exec hand-over
 * (hook_exec.c), inherited sockets (inherit.c) and UDP (udp_sock.c,
 * udp.c).
 */
#include "config.h"

#include "ident.h"
#include "pp_sockaddr.h"
#include "shim.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* The SO_COOKIE of fd, 0 when it has none.  Lock-free. */
uint64_t
pp_socket_cookie(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0)
		return 0;
	return c;
}

/* Is fd still the socket whose SO_COOKIE is cookie?  Lock-free. */
bool
pp_same_socket(int fd, uint64_t cookie)
{
	return cookie != 0 && pp_socket_cookie(fd) == cookie;
}

/* See ident.h.  Lock-free: at most one real getpeername. */
bool
pp_conn_matches(int fd, const struct pp_fdinfo *info, bool peer,
		const struct sockaddr *real, socklen_t reallen)
{
	if (info->rpeerlen == 0 || info->lport == 0)
		return pp_same_socket(fd, info->cookie);
	union pp_sockaddr p;
	socklen_t plen = sizeof(p);

	if (peer)
		return pp_sa_equal(real, reallen, &info->rpeer.sa,
				   info->rpeerlen);
	if (pp_sa_port(real, reallen) != info->lport)
		return false;
	/* Every connection of the listener has that local port: the real
	 * peer tells them apart (the one system call of the check). */
	return pp_real.getpeername(fd, &p.sa, &plen) == 0 &&
	       pp_sa_equal(&p.sa, plen, &info->rpeer.sa, info->rpeerlen);
}

/* See ident.h.  Lock-free. */
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

/*
 * hook_name.c - getpeername and getsockname.
 *
 * On a connection that carries advertised addresses, the real call is
 * made first, so every error (EBADF, ENOTSOCK, ENOTCONN after a reset,
 * EFAULT for a missing length) is the kernel's own; only on success is
 * the answer replaced by the advertised address, copied the kernel's way
 * (truncated to the buffer, full length reported).  The real answer is
 * also the identity check: an advertised address is only given while
 * the descriptor is still the connection it was accepted as.
 * getpeername compares the real peer, address and port, with the one
 * accept saw (no system call of its own: the kernel gives one peer
 * endpoint to one connection of a listening port at a time, and a
 * number reused behind the hooks' back is another connection);
 * getsockname compares the real local port, and then the real peer too
 * (one getpeername), since every connection of the listener shares the
 * local port.  Entries without those (handed over by an exec) compare
 * the SO_COOKIE.  A number closed behind the hooks' back and reused
 * therefore never reports a stale address.  Every other descriptor
 * costs a table load.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>

#include "ident.h"
#include "pp_hot.h"
#include "pp_sockaddr.h"
#include "shim.h"

enum pp_which { PP_PEER, PP_SOCK };

PP_HOT_CALL static int
pp_name(enum pp_which which, int fd, struct sockaddr *addr, socklen_t *len)
{
	struct pp_fdinfo info;
	union pp_sockaddr real;
	const struct sockaddr *a;
	socklen_t reallen = sizeof(real), alen;
	int ret, saved;

	/* Errors (and bad pointers: EFAULT) exactly as the kernel's. */
	if (len == NULL || (addr == NULL && *len != 0))
		goto passthrough;
	if (which == PP_PEER)
		ret = pp_real.getpeername(fd, &real.sa, &reallen);
	else
		ret = pp_real.getsockname(fd, &real.sa, &reallen);
	if (ret != 0)
		return ret;
	saved = errno;
	a = &real.sa;
	alen = reallen;
	/* Only an advertised answer needs the check; the real one is the
	 * kernel's whatever the number is now. */
	if (pp_fd_get(fd, &info) == PP_FD_CONN &&
	    (which == PP_PEER ? info.has_src
			      : info.has_dst && !pp_cfg.sockname_real)) {
		if (pp_conn_matches(fd, &info, which == PP_PEER, &real.sa,
				    reallen)) {
			a = which == PP_PEER ? &info.src.sa : &info.dst.sa;
			alen = which == PP_PEER ? info.srclen : info.dstlen;
		} else if (pp_claim_table()) {
			/* Closed behind our back and the number reused. */
			(void)pp_fd_clear_if(fd, &info);
		}
	}
	pp_sa_copy(addr, len, a, alen);
	errno = saved;
	return 0;
passthrough:
	return which == PP_PEER ? pp_real.getpeername(fd, addr, len)
				: pp_real.getsockname(fd, addr, len);
}

PP_HOT_CALL PP_EXPORT int
getpeername(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
	if (!pp_ready())
		return (int)syscall(SYS_getpeername, fd, addr, len);
	if (pp_fd_kind(fd) != PP_FD_CONN)
		return pp_real.getpeername(fd, addr, len);
	return pp_name(PP_PEER, fd, addr, len);
}

PP_HOT_CALL PP_EXPORT int
getsockname(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
	if (!pp_ready())
		return (int)syscall(SYS_getsockname, fd, addr, len);
	if (pp_fd_kind(fd) != PP_FD_CONN)
		return pp_real.getsockname(fd, addr, len);
	return pp_name(PP_SOCK, fd, addr, len);
}

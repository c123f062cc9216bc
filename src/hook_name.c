/*
 * hook_name.c - getpeername and getsockname.
 *
 * On a connection that carries advertised addresses, the real call is
 * made first, so every error (EBADF, ENOTSOCK, ENOTCONN after a reset,
 * EFAULT for a missing length) is the kernel's own; only on success is
 * the answer replaced by the advertised address, copied the kernel's way
 * (truncated to the buffer, full length reported).  The real answer is
 * also the identity check: it must be the real peer (or local port) the
 * connection was accepted with, so a number that was closed behind the
 * hooks' back and reused never reports a stale address, at no system
 * call of its own.  Every other descriptor costs a table load.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>

#include "shim.h"

enum pp_which { PP_PEER, PP_SOCK };

static int
pp_name(enum pp_which which, int fd, struct sockaddr *addr, socklen_t *len)
{
	struct pp_fdinfo info;
	union pp_sockaddr real;
	socklen_t reallen = sizeof(real);
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
	if (pp_fd_get(fd, &info) != PP_FD_CONN ||
	    !pp_conn_matches(fd, &info, which == PP_PEER, &real.sa, reallen)) {
		/* Closed behind our back and the number reused. */
		if (info.kind == PP_FD_CONN && !pp_foreign_process())
			pp_fd_clear(fd);
		pp_copy_addr(addr, len, &real.sa, reallen);
	} else if (which == PP_PEER && info.has_src) {
		pp_copy_addr(addr, len, &info.src.sa, info.srclen);
	} else if (which == PP_SOCK && info.has_dst && !pp_cfg.sockname_real) {
		pp_copy_addr(addr, len, &info.dst.sa, info.dstlen);
	} else {
		pp_copy_addr(addr, len, &real.sa, reallen);
	}
	errno = saved;
	return 0;
passthrough:
	return which == PP_PEER ? pp_real.getpeername(fd, addr, len)
				: pp_real.getsockname(fd, addr, len);
}

PP_EXPORT int
getpeername(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
	if (!pp_ready())
		return (int)syscall(SYS_getpeername, fd, addr, len);
	if (pp_fd_kind(fd) != PP_FD_CONN)
		return pp_real.getpeername(fd, addr, len);
	return pp_name(PP_PEER, fd, addr, len);
}

PP_EXPORT int
getsockname(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
	if (!pp_ready())
		return (int)syscall(SYS_getsockname, fd, addr, len);
	if (pp_fd_kind(fd) != PP_FD_CONN)
		return pp_real.getsockname(fd, addr, len);
	return pp_name(PP_SOCK, fd, addr, len);
}

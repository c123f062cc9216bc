/*
 * hook_name.c - getpeername and getsockname.
 *
 * On a connection that carries advertised addresses, the real call is
 * made first with the caller's own arguments, so every error (EBADF,
 * ENOTSOCK, ENOTCONN after a reset, EFAULT, EINVAL) is the kernel's own;
 * only on success is the answer replaced by the advertised address,
 * copied the kernel's way (truncated to the buffer, full length
 * reported).  Before answering from the table, the socket's cookie is
 * compared, so a number that was closed behind the hooks' back and
 * reused never reports a stale address.  Every other descriptor costs a
 * table load.
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
	socklen_t cap;
	int ret, saved;

	if (len == NULL)
		return which == PP_PEER ? pp_real.getpeername(fd, addr, len)
					: pp_real.getsockname(fd, addr, len);
	cap = *len;
	if (which == PP_PEER)
		ret = pp_real.getpeername(fd, addr, len);
	else
		ret = pp_real.getsockname(fd, addr, len);
	if (ret != 0)
		return ret;
	saved = errno;
	if (pp_fd_get(fd, &info) != PP_FD_CONN)
		goto out;
	if (!pp_same_socket(fd, info.cookie)) {
		if (!pp_foreign_process())
			pp_fd_clear(fd);
		goto out;
	}
	if (which == PP_PEER && info.has_src) {
		*len = cap;
		pp_copy_addr(addr, len, &info.src.sa, info.srclen);
	} else if (which == PP_SOCK && info.has_dst) {
		*len = cap;
		pp_copy_addr(addr, len, &info.dst.sa, info.dstlen);
	}
out:
	errno = saved;
	return 0;
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

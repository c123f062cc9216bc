/*
 * hook_accept.c - accept, accept4 and listen.
 *
 * A listening socket is classified once, at listen() or at the first
 * accept() on it (sockets inherited from a parent or a launcher), and
 * the answer is cached in the table: accept on any other socket then
 * costs one table load before the real call.  PROXY-only listeners go
 * to pp_accept_proxy() (accept.c).
 */
#include "config.h"

#include <errno.h>
#include <sys/syscall.h>

#include "accept.h"
#include "hook_newfd.h"
#include "pp_hot.h"
#include "shim.h"

PP_HOT_CALL static int
pp_accept_any(int fd, struct sockaddr *addr, socklen_t *len, int flags,
	      bool four)
{
	enum pp_fdkind kind = PP_FD_PLAIN;
	int newfd;

	if (pp_active()) {
		kind = pp_fd_kind(fd);
		if (kind == PP_FD_NONE)
			kind = pp_classify(fd);
	}
	if (kind == PP_FD_LISTEN)
		return pp_accept_proxy(fd, addr, len, flags);
	newfd = four ? pp_real.accept4(fd, addr, len, flags)
		     : pp_real.accept(fd, addr, len);
	/* A number handed out again: whatever was known of it is stale. */
	if (newfd >= 0)
		pp_fd_fresh(newfd);
	return newfd;
}

PP_HOT_CALL PP_EXPORT int
accept(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
	if (!pp_ready())
		return (int)syscall(SYS_accept4, fd, addr, len, 0);
	return pp_accept_any(fd, addr, len, 0, false);
}

PP_HOT_CALL PP_EXPORT int
accept4(int fd, struct sockaddr *restrict addr, socklen_t *restrict len,
	int flags)
{
	if (!pp_ready())
		return (int)syscall(SYS_accept4, fd, addr, len, flags);
	return pp_accept_any(fd, addr, len, flags, true);
}

PP_EXPORT int
listen(int fd, int backlog)
{
	int ret, saved;

	if (!pp_ready())
		return (int)syscall(SYS_listen, fd, backlog);
	ret = pp_real.listen(fd, backlog);
	if (ret == 0 && pp_active()) {
		saved = errno;
		(void)pp_classify(fd);
		errno = saved;
	}
	return ret;
}

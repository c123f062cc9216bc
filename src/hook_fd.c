/*
 * hook_fd.c - close, dup, dup2, dup3, fcntl(F_DUPFD*), close_range,
 * closefrom: keep the table in step with the kernel's descriptor
 * numbers, so the advertised addresses follow the connection (dup2 onto
 * 0 and 1, as vsftpd does) and never a reused number.
 *
 * close clears the entry before the real close: once the kernel has the
 * number back, another thread's accept may get it, and a late clear
 * would wipe that connection's entry.  It also clears an entry whose
 * writer is inside it and may not have set its kind yet (a signal
 * handler that interrupted dup2 onto that number, another thread); the
 * table leaves that clear to the writer when it is this very thread
 * (fdtab.c).  Untracked numbers cost a load or three on one cache line.
 */
#include "config.h"

/*
 * The hooks keep their plain names: with these, glibc's headers would
 * rename fcntl to fcntl64 or __fcntl_time64 (hook_udp.c has the story).
 */
#undef _TIME_BITS
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pp_hot.h"
#include "shim.h"

/* Hooked where libc has them; musl does not declare them all. */
#if !HAVE_DECL_CLOSE_RANGE
int close_range(unsigned int first, unsigned int last, int flags);
#endif
#if !HAVE_DECL_CLOSEFROM
void closefrom(int lowfd);
#endif
#if !HAVE_DECL_FCNTL64
int fcntl64(int fd, int cmd, ...);
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void
pp_forget(int fd)
{
	if (pp_fd_clearable(fd) && pp_claim_table())
		pp_fd_clear(fd);
}

/* After a successful dup-like call: newfd now is what oldfd is. */
static void
pp_dup_done(int oldfd, int newfd)
{
	int saved = errno;

	if (pp_fd_kind(oldfd) == PP_FD_NONE && pp_fd_kind(newfd) == PP_FD_NONE)
		return;
	if (pp_claim_table())
		pp_fd_copy(oldfd, newfd);
	errno = saved;
}

PP_HOT_CALL PP_EXPORT int
close(int fd)
{
	if (!pp_ready())
		return (int)syscall(SYS_close, fd);
	pp_forget(fd);
	return pp_real.close(fd);
}

PP_EXPORT int
dup(int oldfd)
{
	int fd;

	if (!pp_ready())
		return (int)syscall(SYS_dup, oldfd);
	fd = pp_real.dup(oldfd);
	if (fd >= 0)
		pp_dup_done(oldfd, fd);
	return fd;
}

PP_EXPORT int
dup2(int oldfd, int newfd)
{
	int fd;

	if (!pp_ready())
		return (int)syscall(SYS_dup3, oldfd, newfd, 0);
	fd = pp_real.dup2(oldfd, newfd);
	if (fd >= 0 && oldfd != newfd)
		pp_dup_done(oldfd, fd);
	return fd;
}

PP_EXPORT int
dup3(int oldfd, int newfd, int flags)
{
	int fd;

	if (!pp_ready())
		return (int)syscall(SYS_dup3, oldfd, newfd, flags);
	fd = pp_real.dup3(oldfd, newfd, flags);
	if (fd >= 0)
		pp_dup_done(oldfd, fd);
	return fd;
}

PP_HOT_CALL static int
pp_fcntl(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	int ret;

	if (!pp_ready() || real == NULL)
		return (int)syscall(SYS_fcntl, fd, cmd, arg);
	ret = real(fd, cmd, arg);
	if (ret >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		pp_dup_done(fd, ret);
	return ret;
}

/*
 * fcntl is variadic; like libc itself, take the optional argument as a
 * pointer-sized value and hand it on unchanged.
 */
PP_HOT_CALL PP_EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return pp_fcntl(pp_real.fcntl, fd, cmd, arg);
}

PP_HOT_CALL PP_EXPORT int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return pp_fcntl(pp_real.fcntl64 ? pp_real.fcntl64 : pp_real.fcntl, fd,
			cmd, arg);
}

#ifdef HAVE___FCNTL_TIME64
int __fcntl_time64(int fd, int cmd, ...);

/* What fcntl is in a 32-bit program built with _TIME_BITS=64. */
PP_EXPORT int
__fcntl_time64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return pp_fcntl(pp_real.fcntl_time64 ? pp_real.fcntl_time64
					     : pp_real.fcntl64,
			fd, cmd, arg);
}
#endif

PP_EXPORT int
close_range(unsigned int first, unsigned int last, int flags)
{
	if (!pp_ready() || pp_real.close_range == NULL)
		return (int)syscall(SYS_close_range, first, last, flags);
	if (!((unsigned)flags & CLOSE_RANGE_CLOEXEC) && first <= last &&
	    pp_claim_table())
		pp_fd_clear_range(first, last);
	return pp_real.close_range(first, last, flags);
}

PP_EXPORT void
closefrom(int lowfd)
{
	if (!pp_ready() || pp_real.closefrom == NULL) {
		syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0);
		return;
	}
	if (lowfd >= 0 && pp_claim_table())
		pp_fd_clear_range((unsigned)lowfd, ~0U);
	pp_real.closefrom(lowfd);
}

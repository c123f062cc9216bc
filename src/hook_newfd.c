/*
 * hook_newfd.c - the calls that hand out descriptor numbers: socketpair,
 * pipe, pipe2, open, openat, creat (with their 64-bit and
 * _FORTIFY_SOURCE names), eventfd, signalfd, timerfd_create,
 * epoll_create, epoll_create1, memfd_create, inotify_init,
 * inotify_init1, fanotify_init, pidfd_open and pidfd_getfd.  socket,
 * accept, dup*, fcntl(F_DUPFD*) and recvmsg with SCM_RIGHTS are hooked
 * where their other work is (hook_udp.c, hook_accept.c, hook_fd.c).
 *
 * A number can be closed behind the hooks' back (a raw close system
 * call, fclose of an fdopen'ed stream, close_range inside libc): its
 * entry then describes a socket that no longer exists.  The next call
 * that gets the number from the kernel forgets the entry, so the new
 * descriptor is never taken for the old socket.  (Every entry is also
 * checked against the descriptor before it is used: the rule is in
 * fdtab.c; this is the first line.)
 *
 * Each hook costs the real call and one table load; the entry is only
 * touched when the number was tracked.  open is called from other
 * libraries' constructors, maybe before ours: until the library is
 * ready (or while it binds its symbols on this thread), the hooks make
 * the system call themselves.  Descriptors libc opens for itself (fopen,
 * opendir, the resolver's sockets) do not pass through here; the checks
 * before every use cover them.
 */
#include "config.h"

/* Keep the plain names: with these, glibc's headers would rename open
 * to open64 (hook_udp.c has the story). */
#undef _TIME_BITS
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook_newfd.h"
#include "shim.h"

#ifndef O_LARGEFILE
#define O_LARGEFILE 0
#endif

/* musl's headers (before 1.2.4, with _GNU_SOURCE) make these macros for
 * the plain names: the hooks keep their own. */
#undef open64
#undef openat64
#undef creat64

/*
 * Prototypes of our own: a hook must be defined whatever this libc
 * declares, and the names differ between glibc versions and musl.
 * None of the headers that declare them is included here.
 */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int open64(const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);
int creat64(const char *path, mode_t mode);
int eventfd(unsigned int count, int flags);
int signalfd(int fd, const sigset_t *mask, int flags);
int timerfd_create(int clockid, int flags);
int epoll_create(int size);
int epoll_create1(int flags);
int memfd_create(const char *name, unsigned int flags);
int inotify_init(void);
int inotify_init1(int flags);
int fanotify_init(unsigned int flags, unsigned int event_f_flags);
int pidfd_open(pid_t pid, unsigned int flags);
int pidfd_getfd(int pidfd, int targetfd, unsigned int flags);

void
pp_fd_forget(int fd)
{
	int saved = errno;

	if (pp_claim_table())
		pp_fd_clear(fd);
	errno = saved;
}

void
pp_fd_fresh_rights(const struct msghdr *msg)
{
	struct cmsghdr *c;
	const unsigned char *p;
	size_t n, i;
	int fd;

	if (msg == NULL || msg->msg_control == NULL ||
	    msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (c = CMSG_FIRSTHDR(msg); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		p = CMSG_DATA(c);
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, p + i * sizeof(int), sizeof(int));
			pp_fd_fresh(fd);
		}
	}
}

/* A descriptor-creating call returned ret. */
static inline int
pp_new(int ret)
{
	if (ret >= 0)
		pp_fd_fresh(ret);
	return ret;
}

/* open's optional mode: there only with O_CREAT or O_TMPFILE. */
static inline bool
pp_has_mode(int flags)
{
#ifdef O_TMPFILE
	if ((flags & O_TMPFILE) == O_TMPFILE)
		return true;
#endif
	return (flags & O_CREAT) != 0;
}

#define PP_MODE(flags, mode)                                                   \
	do {                                                                   \
		va_list ap_;                                                   \
                                                                               \
		(mode) = 0;                                                    \
		if (pp_has_mode(flags)) {                                      \
			va_start(ap_, flags);                                  \
			(mode) = (mode_t)va_arg(ap_, int);                     \
			va_end(ap_);                                           \
		}                                                              \
	} while (0)

static int
pp_sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

PP_EXPORT int
socketpair(int domain, int type, int protocol, int sv[2])
{
	int ret;

	if (!pp_ready() || pp_real.socketpair == NULL)
		return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
	ret = pp_real.socketpair(domain, type, protocol, sv);
	if (ret == 0) {
		pp_fd_fresh(sv[0]);
		pp_fd_fresh(sv[1]);
	}
	return ret;
}

static int
pp_pipe(int fds[2], int flags, bool two)
{
	int ret;

	if (!pp_ready() || (two ? pp_real.pipe2 == NULL : pp_real.pipe == NULL))
		return (int)syscall(SYS_pipe2, fds, flags);
	ret = two ? pp_real.pipe2(fds, flags) : pp_real.pipe(fds);
	if (ret == 0) {
		pp_fd_fresh(fds[0]);
		pp_fd_fresh(fds[1]);
	}
	return ret;
}

PP_EXPORT int
pipe(int fds[2])
{
	return pp_pipe(fds, 0, false);
}

PP_EXPORT int
pipe2(int fds[2], int flags)
{
	return pp_pipe(fds, flags, true);
}

PP_EXPORT int
open(const char *path, int flags, ...)
{
	mode_t mode;

	PP_MODE(flags, mode);
	if (!pp_ready() || pp_real.open == NULL)
		return pp_sys_openat(AT_FDCWD, path, flags, mode);
	return pp_new(pp_real.open(path, flags, mode));
}

PP_EXPORT int
open64(const char *path, int flags, ...)
{
	mode_t mode;

	PP_MODE(flags, mode);
	if (!pp_ready() || pp_real.open_64 == NULL)
		return pp_sys_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
	return pp_new(pp_real.open_64(path, flags, mode));
}

PP_EXPORT int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	PP_MODE(flags, mode);
	if (!pp_ready() || pp_real.openat == NULL)
		return pp_sys_openat(dirfd, path, flags, mode);
	return pp_new(pp_real.openat(dirfd, path, flags, mode));
}

PP_EXPORT int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	PP_MODE(flags, mode);
	if (!pp_ready() || pp_real.openat_64 == NULL)
		return pp_sys_openat(dirfd, path, flags | O_LARGEFILE, mode);
	return pp_new(pp_real.openat_64(dirfd, path, flags, mode));
}

/*
 * The _FORTIFY_SOURCE names: libc's own check (a mode is required with
 * O_CREAT) stays libc's, so they call libc's function of the same name.
 */
PP_EXPORT int
__open_2(const char *path, int flags)
{
	if (!pp_ready() || pp_real.open_2 == NULL)
		return pp_sys_openat(AT_FDCWD, path, flags, 0);
	return pp_new(pp_real.open_2(path, flags));
}

PP_EXPORT int
__open64_2(const char *path, int flags)
{
	if (!pp_ready() || pp_real.open64_2 == NULL)
		return pp_sys_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
	return pp_new(pp_real.open64_2(path, flags));
}

PP_EXPORT int
__openat_2(int dirfd, const char *path, int flags)
{
	if (!pp_ready() || pp_real.openat_2 == NULL)
		return pp_sys_openat(dirfd, path, flags, 0);
	return pp_new(pp_real.openat_2(dirfd, path, flags));
}

PP_EXPORT int
__openat64_2(int dirfd, const char *path, int flags)
{
	if (!pp_ready() || pp_real.openat64_2 == NULL)
		return pp_sys_openat(dirfd, path, flags | O_LARGEFILE, 0);
	return pp_new(pp_real.openat64_2(dirfd, path, flags));
}

PP_EXPORT int
creat(const char *path, mode_t mode)
{
	if (!pp_ready() || pp_real.creat == NULL)
		return pp_sys_openat(AT_FDCWD, path,
				     O_CREAT | O_WRONLY | O_TRUNC, mode);
	return pp_new(pp_real.creat(path, mode));
}

PP_EXPORT int
creat64(const char *path, mode_t mode)
{
	if (!pp_ready() || pp_real.creat_64 == NULL)
		return pp_sys_openat(AT_FDCWD, path,
				     O_CREAT | O_WRONLY | O_TRUNC | O_LARGEFILE,
				     mode);
	return pp_new(pp_real.creat_64(path, mode));
}

PP_EXPORT int
eventfd(unsigned int count, int flags)
{
	if (!pp_ready() || pp_real.eventfd == NULL)
		return (int)syscall(SYS_eventfd2, count, flags);
	return pp_new(pp_real.eventfd(count, flags));
}

PP_EXPORT int
signalfd(int fd, const sigset_t *mask, int flags)
{
	if (!pp_ready() || pp_real.signalfd == NULL)
		return (int)syscall(SYS_signalfd4, fd, mask,
				    (size_t)(_NSIG / 8), flags);
	return pp_new(pp_real.signalfd(fd, mask, flags));
}

PP_EXPORT int
timerfd_create(int clockid, int flags)
{
	if (!pp_ready() || pp_real.timerfd_create == NULL)
		return (int)syscall(SYS_timerfd_create, clockid, flags);
	return pp_new(pp_real.timerfd_create(clockid, flags));
}

PP_EXPORT int
epoll_create(int size)
{
	if (!pp_ready() || pp_real.epoll_create == NULL) {
		if (size <= 0) {
			errno = EINVAL;
			return -1;
		}
		return (int)syscall(SYS_epoll_create1, 0);
	}
	return pp_new(pp_real.epoll_create(size));
}

PP_EXPORT int
epoll_create1(int flags)
{
	if (!pp_ready() || pp_real.epoll_create1 == NULL)
		return (int)syscall(SYS_epoll_create1, flags);
	return pp_new(pp_real.epoll_create1(flags));
}

PP_EXPORT int
memfd_create(const char *name, unsigned int flags)
{
	if (!pp_ready() || pp_real.memfd_create == NULL) {
#ifdef SYS_memfd_create
		return (int)syscall(SYS_memfd_create, name, flags);
#else
		errno = ENOSYS;
		return -1;
#endif
	}
	return pp_new(pp_real.memfd_create(name, flags));
}

PP_EXPORT int
inotify_init(void)
{
	if (!pp_ready() || pp_real.inotify_init == NULL)
		return (int)syscall(SYS_inotify_init1, 0);
	return pp_new(pp_real.inotify_init());
}

PP_EXPORT int
inotify_init1(int flags)
{
	if (!pp_ready() || pp_real.inotify_init1 == NULL)
		return (int)syscall(SYS_inotify_init1, flags);
	return pp_new(pp_real.inotify_init1(flags));
}

PP_EXPORT int
fanotify_init(unsigned int flags, unsigned int event_f_flags)
{
	if (!pp_ready() || pp_real.fanotify_init == NULL)
		return (int)syscall(SYS_fanotify_init, flags, event_f_flags);
	return pp_new(pp_real.fanotify_init(flags, event_f_flags));
}

/* The system call numbers of kernels newer than some libcs' headers. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

PP_EXPORT int
pidfd_open(pid_t pid, unsigned int flags)
{
	if (!pp_ready() || pp_real.pidfd_open == NULL)
		return (int)syscall(SYS_pidfd_open, pid, flags);
	return pp_new(pp_real.pidfd_open(pid, flags));
}

/* A copy of another process's descriptor, a socket maybe: as with
 * SCM_RIGHTS, a number that is new here. */
PP_EXPORT int
pidfd_getfd(int pidfd, int targetfd, unsigned int flags)
{
	if (!pp_ready() || pp_real.pidfd_getfd == NULL)
		return (int)syscall(SYS_pidfd_getfd, pidfd, targetfd, flags);
	return pp_new(pp_real.pidfd_getfd(pidfd, targetfd, flags));
}

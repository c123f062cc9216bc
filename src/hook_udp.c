/*
 * hook_udp.c - socket, bind, connect and the receive calls (with their
 * _FORTIFY_SOURCE variants); the send calls are in hook_udp_send.c.
 *
 * Every hook looks at one table entry first: a descriptor that is not a
 * PROXY-only datagram socket goes straight to libc, with no system call,
 * lock or allocation of ours (read() is called on every file the program
 * reads).  The datagram path itself is in udp.c.
 *
 * 64-bit time on 32-bit targets.  A program built with _TIME_BITS=64
 * against glibc 2.34 or later calls __recvmsg64 and __recvmmsg64
 * (__sendmsg64 and __sendmmsg64: hook_udp_send.c) instead of the plain
 * names: they are
 * hooked too where libc has them (configure).  This file is always built
 * for the plain ABI, so that the hooks named recvmsg and so on keep
 * those names; the *64 hooks spell out the 64-bit struct timespec.
 * 32-bit musl (1.2 and later) renames recvmmsg to __recvmmsg_time64 in
 * every program, its only struct timespec being the 64-bit one: the
 * hook named recvmmsg gets that name there by the same renaming, and
 * real.c binds it to libc's __recvmmsg_time64.
 */
#include "config.h"

/* With these, glibc's headers would rename the plain hooks (above). */
#undef _TIME_BITS
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook_newfd.h"
#include "pp_hot.h"
#include "route.h"
#include "shim.h"
#include "udp.h"
#include "udp_reply.h"
#include "udp_sock.h"

#ifdef HAVE___CHK_FAIL
/* Exported by glibc; what its own _chk functions call on overflow. */
extern void __chk_fail(void) __attribute__((__noreturn__));
#define pp_chk_fail __chk_fail
#else
/*
 * musl has no _chk functions (its programs never call the hooks below),
 * and no __chk_fail: the hooks stay, failing the way glibc's do.
 */
static void pp_chk_fail(void) __attribute__((__noreturn__));

static void
pp_chk_fail(void)
{
	static const char msg[] = "*** buffer overflow detected ***: "
				  "terminated\n";

	(void)pp_write_stderr(msg, sizeof(msg) - 1);
	abort();
}
#endif

/* Declared by glibc's headers only in fortified builds. */
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen,
		       int flags, struct sockaddr *restrict addr,
		       socklen_t *restrict alen);
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);

#define PP_NS_PER_S 1000000000LL

/*
 * A recvmmsg timeout in nanoseconds; false when the kernel would refuse
 * it (EINVAL).  Clamped to some 146 years, beyond which nothing differs.
 */
static bool
pp_tmo_ns(int64_t sec, int64_t nsec, int64_t *ns)
{
	if (sec < 0 || nsec < 0 || nsec >= PP_NS_PER_S)
		return false;
	if (sec > INT64_MAX / 2 / PP_NS_PER_S)
		sec = INT64_MAX / 2 / PP_NS_PER_S;
	*ns = sec * PP_NS_PER_S + nsec;
	return true;
}

/* recvmmsg as a system call, before the binding: ts64 when the timeout
 * is a 64-bit struct timespec. */
PP_WARM_DGRAM static int
pp_sys_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		void *tmo, bool ts64)
{
#ifdef SYS_recvmmsg_time64
	if (ts64)
		return (int)syscall(SYS_recvmmsg_time64, fd, vec, vlen, flags,
				    tmo);
#endif
	(void)ts64;
	return (int)syscall(SYS_recvmmsg, fd, vec, vlen, flags, tmo);
}

/* recvmmsg returned n messages into vec: forget the stale entries of
 * the descriptors they carried (SCM_RIGHTS).  Returns n. */
PP_WARM_DGRAM static int
pp_mmsg_rights(int n, const struct mmsghdr *vec)
{
	int i;

	for (i = 0; i < n; i++)
		if (vec[i].msg_hdr.msg_controllen > 0)
			pp_fd_fresh_rights(&vec[i].msg_hdr);
	return n;
}

/* ===== Classification ===== */

PP_EXPORT int
socket(int domain, int type, int protocol)
{
	int fd;

	if (!pp_ready())
		return (int)syscall(SYS_socket, domain, type, protocol);
	fd = pp_real.socket(domain, type, protocol);
	/* A number handed out again: whatever was known of it is stale. */
	if (fd >= 0)
		pp_fd_fresh(fd);
	return fd;
}

PP_EXPORT int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	int ret;

	if (!pp_ready())
		return (int)syscall(SYS_bind, fd, addr, len);
	ret = pp_real.bind(fd, addr, len);
	if (ret != 0)
		return ret;
	if ((pp_active() &&
	     (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) ||
	    pp_fd_kind(fd) != PP_FD_NONE)
		pp_udp_classify(fd, true);
	return ret;
}

PP_EXPORT int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct pp_reply r;
	int ret;

	if (!pp_ready())
		return (int)syscall(SYS_connect, fd, addr, len);
	if (!pp_is_udp(fd))
		return pp_real.connect(fd, addr, len);
	if (!pp_udp_route(fd, addr, len, &r)) {
		ret = pp_real.connect(fd, addr, len);
		pp_udp_connected(fd, NULL, ret);
		return ret;
	}
	ret = pp_real.connect(fd, &r.via.sa, r.vialen);
	pp_udp_connected(fd, r.spp ? &r : NULL, ret);
	return ret;
}

/* ===== Receiving ===== */

PP_HOT_CALL static ssize_t
pp_recvfrom_any(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
		socklen_t *alen)
{
	ssize_t n;

	if (!pp_is_udp(fd))
		return pp_real.recvfrom(fd, buf, len, flags, addr, alen);
	n = pp_udp_recvfrom(fd, buf, len, flags, addr, alen);
	if (n == PP_UDP_PASS)
		return pp_real.recvfrom(fd, buf, len, flags, addr, alen);
	return n;
}

PP_HOT_CALL static ssize_t
pp_recv_any(int fd, void *buf, size_t len, int flags)
{
	ssize_t n;

	if (!pp_is_udp(fd))
		return pp_real.recv(fd, buf, len, flags);
	n = pp_udp_recvfrom(fd, buf, len, flags, NULL, NULL);
	if (n == PP_UDP_PASS)
		return pp_real.recv(fd, buf, len, flags);
	return n;
}

PP_HOT_CALL static ssize_t
pp_read_any(int fd, void *buf, size_t len)
{
	ssize_t n;

	if (!pp_is_udp(fd))
		return pp_real.read(fd, buf, len);
	n = pp_udp_recvfrom(fd, buf, len, 0, NULL, NULL);
	if (n == PP_UDP_PASS)
		return pp_real.read(fd, buf, len);
	return n;
}

PP_HOT_CALL PP_EXPORT ssize_t
recvfrom(int fd, void *restrict buf, size_t len, int flags,
	 struct sockaddr *restrict addr, socklen_t *restrict alen)
{
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, addr, alen);
	return pp_recvfrom_any(fd, buf, len, flags, addr, alen);
}

PP_HOT_CALL PP_EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	return pp_recv_any(fd, buf, len, flags);
}

PP_HOT_CALL PP_EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	if (!pp_ready())
		return syscall(SYS_read, fd, buf, len);
	return pp_read_any(fd, buf, len);
}

/* recvmsg and __recvmsg64 once bound: the same, each through its own
 * libc call. */
PP_HOT_CALL static ssize_t
pp_recvmsg_any(int fd, struct msghdr *msg, int flags, pp_recvmsg_fn real)
{
	ssize_t n;

	if (real == NULL)
		return syscall(SYS_recvmsg, fd, msg, flags);
	if (!pp_is_udp(fd)) {
		n = real(fd, msg, flags);
		/* Descriptors received (SCM_RIGHTS) are new numbers here. */
		if (n >= 0 && msg->msg_controllen > 0)
			pp_fd_fresh_rights(msg);
		return n;
	}
	n = pp_udp_recvmsg_via(fd, msg, flags, real);
	if (n == PP_UDP_PASS)
		return real(fd, msg, flags);
	return n;
}

PP_HOT_CALL PP_EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!pp_ready())
		return syscall(SYS_recvmsg, fd, msg, flags);
	return pp_recvmsg_any(fd, msg, flags, pp_real.recvmsg);
}

/*
 * The flags are an unsigned int in musl, and the timeout was const in
 * glibc before 2.21 (configure): the kernel writes the time left back
 * all the same, and so does this hook.
 */
PP_WARM_DGRAM PP_EXPORT int
recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, PP_MMSG_FLAGS flags,
	 PP_RECVMMSG_TMO_CONST struct timespec *tmo)
{
	struct timespec *t = (struct timespec *)tmo;
	int64_t ns = 0;
	int n;

	if (!pp_ready())
		return pp_sys_recvmmsg(fd, vec, vlen, (int)flags, t,
				       sizeof(t->tv_sec) == 8);
	if (!pp_is_udp(fd) || vec == NULL || vlen == 0)
		return pp_mmsg_rights(
			pp_real.recvmmsg(fd, vec, vlen, flags, tmo), vec);
	if (t != NULL && !pp_tmo_ns(t->tv_sec, t->tv_nsec, &ns)) {
		errno = EINVAL;
		return -1;
	}
	n = pp_udp_recvmmsg(fd, vec, vlen, (int)flags, t != NULL ? &ns : NULL,
			    pp_real.recvmsg);
	if (n == PP_UDP_PASS)
		return pp_real.recvmmsg(fd, vec, vlen, flags, tmo);
	if (t != NULL) {
		t->tv_sec = (time_t)(ns / PP_NS_PER_S);
		t->tv_nsec = (long)(ns % PP_NS_PER_S);
	}
	return n;
}

#ifdef HAVE___RECVMSG64
ssize_t __recvmsg64(int fd, struct msghdr *msg, int flags);

/* A program built with _TIME_BITS=64: __recvmsg64 also rewrites the
 * kernel's timestamps into that program's layout, so it does the
 * receiving on this path. */
PP_WARM_DGRAM PP_EXPORT ssize_t
__recvmsg64(int fd, struct msghdr *msg, int flags)
{
	if (!pp_ready())
		return syscall(SYS_recvmsg, fd, msg, flags);
	return pp_recvmsg_any(fd, msg, flags, pp_real.recvmsg64);
}
#endif

#ifdef HAVE___RECVMMSG64
/* struct timespec of a 32-bit program built with _TIME_BITS=64. */
struct pp_timespec64 {
	int64_t tv_sec;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	int32_t pad;
	int32_t tv_nsec;
#else
	int32_t tv_nsec;
	int32_t pad;
#endif
};

int __recvmmsg64(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		 struct pp_timespec64 *tmo);

PP_WARM_DGRAM PP_EXPORT int
__recvmmsg64(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
	     struct pp_timespec64 *tmo)
{
	pp_recvmsg_fn via;
	int64_t ns = 0;
	int n;

	if (!pp_ready() || pp_real.recvmmsg64 == NULL)
		return pp_sys_recvmmsg(fd, vec, vlen, flags, tmo, true);
	if (!pp_is_udp(fd) || vec == NULL || vlen == 0)
		return pp_mmsg_rights(
			pp_real.recvmmsg64(fd, vec, vlen, flags, tmo), vec);
	if (tmo != NULL && !pp_tmo_ns(tmo->tv_sec, tmo->tv_nsec, &ns)) {
		errno = EINVAL;
		return -1;
	}
	via = pp_real.recvmsg64 != NULL ? pp_real.recvmsg64 : pp_real.recvmsg;
	n = pp_udp_recvmmsg(fd, vec, vlen, flags, tmo != NULL ? &ns : NULL,
			    via);
	if (n == PP_UDP_PASS)
		return pp_real.recvmmsg64(fd, vec, vlen, flags, tmo);
	if (tmo != NULL) {
		tmo->tv_sec = ns / PP_NS_PER_S;
		tmo->tv_nsec = (int32_t)(ns % PP_NS_PER_S);
	}
	return n;
}
#endif

/*
 * The fortified variants check the length against the size of the
 * object the compiler saw, as glibc's own do, then behave as the plain
 * call (and so strip headers too).
 */
PP_HOT_CALL PP_EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		pp_chk_fail();
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	return pp_recv_any(fd, buf, len, flags);
}

PP_HOT_CALL PP_EXPORT ssize_t
__recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen, int flags,
	       struct sockaddr *restrict addr, socklen_t *restrict alen)
{
	if (len > buflen)
		pp_chk_fail();
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, addr, alen);
	return pp_recvfrom_any(fd, buf, len, flags, addr, alen);
}

PP_HOT_CALL PP_EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		pp_chk_fail();
	if (!pp_ready())
		return syscall(SYS_read, fd, buf, len);
	return pp_read_any(fd, buf, len);
}

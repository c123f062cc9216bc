/*
 * hook_udp.c - socket, bind, connect, the receive calls (with their
 * _FORTIFY_SOURCE variants) and the send calls that carry an address.
 *
 * Every hook looks at one table entry first: a descriptor that is not a
 * PROXY-only datagram socket goes straight to libc, with no system call,
 * lock or allocation of ours (read() is called on every file the program
 * reads).  The datagram path itself is in udp.c.
 *
 * send() and write() carry no address and are not hooked: on a socket
 * connected to an advertised client, connect() already went to the proxy
 * instead, and the kernel sends there.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "udp.h"

/* Exported by glibc; what its own _chk functions call on overflow. */
extern void __chk_fail(void) __attribute__((__noreturn__));

/* Declared by glibc's headers only in fortified builds. */
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen,
		       int flags, struct sockaddr *restrict addr,
		       socklen_t *restrict alen);
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);

static inline bool
pp_is_udp(int fd)
{
	return __builtin_expect(pp_fd_kind(fd) == PP_FD_UDP, 0);
}

/* ===== Classification ===== */

PP_EXPORT int
socket(int domain, int type, int protocol)
{
	int fd, saved;

	if (!pp_ready())
		return (int)syscall(SYS_socket, domain, type, protocol);
	fd = pp_real.socket(domain, type, protocol);
	/* A number handed out again: whatever was known of it is stale. */
	if (fd >= 0 && pp_fd_kind(fd) != PP_FD_NONE && !pp_foreign_process()) {
		saved = errno;
		pp_fd_clear(fd);
		errno = saved;
	}
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
	union pp_inaddr via;
	socklen_t vialen;

	if (!pp_ready())
		return (int)syscall(SYS_connect, fd, addr, len);
	if (!pp_is_udp(fd) || !pp_udp_route(fd, addr, len, &via, &vialen))
		return pp_real.connect(fd, addr, len);
	return pp_real.connect(fd, &via.sa, vialen);
}

/* ===== Receiving ===== */

static ssize_t
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

static ssize_t
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

static ssize_t
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

PP_EXPORT ssize_t
recvfrom(int fd, void *restrict buf, size_t len, int flags,
	 struct sockaddr *restrict addr, socklen_t *restrict alen)
{
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, addr, alen);
	return pp_recvfrom_any(fd, buf, len, flags, addr, alen);
}

PP_EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	return pp_recv_any(fd, buf, len, flags);
}

PP_EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	if (!pp_ready())
		return syscall(SYS_read, fd, buf, len);
	return pp_read_any(fd, buf, len);
}

PP_EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t n;

	if (!pp_ready())
		return syscall(SYS_recvmsg, fd, msg, flags);
	if (!pp_is_udp(fd))
		return pp_real.recvmsg(fd, msg, flags);
	n = pp_udp_recvmsg(fd, msg, flags);
	if (n == PP_UDP_PASS)
		return pp_real.recvmsg(fd, msg, flags);
	return n;
}

PP_EXPORT int
recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
	 struct timespec *tmo)
{
	int n;

	if (!pp_ready())
		return (int)syscall(SYS_recvmmsg, fd, vec, vlen, flags, tmo);
	if (!pp_is_udp(fd))
		return pp_real.recvmmsg(fd, vec, vlen, flags, tmo);
	n = pp_udp_recvmmsg(fd, vec, vlen, flags, tmo);
	if (n == PP_UDP_PASS)
		return pp_real.recvmmsg(fd, vec, vlen, flags, tmo);
	return n;
}

/*
 * The fortified variants check the length against the size of the
 * object the compiler saw, as glibc's own do, then behave as the plain
 * call (and so strip headers too).
 */
PP_EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		__chk_fail();
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	return pp_recv_any(fd, buf, len, flags);
}

PP_EXPORT ssize_t
__recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen, int flags,
	       struct sockaddr *restrict addr, socklen_t *restrict alen)
{
	if (len > buflen)
		__chk_fail();
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, addr, alen);
	return pp_recvfrom_any(fd, buf, len, flags, addr, alen);
}

PP_EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	if (!pp_ready())
		return syscall(SYS_read, fd, buf, len);
	return pp_read_any(fd, buf, len);
}

/* ===== Replies ===== */

PP_EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
       const struct sockaddr *dst, socklen_t dlen)
{
	union pp_inaddr via;
	socklen_t vialen;

	if (!pp_ready())
		return syscall(SYS_sendto, fd, buf, len, flags, dst, dlen);
	if (!pp_is_udp(fd) || dst == NULL ||
	    !pp_udp_route(fd, dst, dlen, &via, &vialen))
		return pp_real.sendto(fd, buf, len, flags, dst, dlen);
	return pp_real.sendto(fd, buf, len, flags, &via.sa, vialen);
}

PP_EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	union pp_inaddr via;
	socklen_t vialen;
	struct msghdr m;

	if (!pp_ready())
		return syscall(SYS_sendmsg, fd, msg, flags);
	if (!pp_is_udp(fd) || msg == NULL || msg->msg_name == NULL ||
	    !pp_udp_route(fd, msg->msg_name, msg->msg_namelen, &via, &vialen))
		return pp_real.sendmsg(fd, msg, flags);
	m = *msg;
	m.msg_name = &via;
	m.msg_namelen = vialen;
	return pp_real.sendmsg(fd, &m, flags);
}

#define PP_MMSG_CHUNK 64

/*
 * sendmmsg with some destinations rewritten: the caller's array is
 * never written to except msg_len, so it is copied, a chunk at a time.
 */
static int
pp_sendmmsg_udp(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	struct mmsghdr tmp[PP_MMSG_CHUNK];
	union pp_inaddr via[PP_MMSG_CHUNK];
	struct msghdr *h;
	socklen_t vialen;
	unsigned int base, cnt, i, total = 0;
	int n, saved = errno;

	if (vlen > 1024)
		vlen = 1024; /* UIO_MAXIOV, as the kernel caps it */
	for (base = 0; base < vlen; base += cnt) {
		cnt = vlen - base < PP_MMSG_CHUNK ? vlen - base : PP_MMSG_CHUNK;
		for (i = 0; i < cnt; i++) {
			tmp[i] = vec[base + i];
			h = &tmp[i].msg_hdr;
			if (h->msg_name != NULL &&
			    pp_udp_route(fd, h->msg_name, h->msg_namelen,
					 &via[i], &vialen)) {
				h->msg_name = &via[i];
				h->msg_namelen = vialen;
			}
		}
		n = pp_real.sendmmsg(fd, tmp, cnt, flags);
		if (n < 0) {
			if (total == 0)
				return -1;
			break;
		}
		for (i = 0; i < (unsigned int)n; i++)
			vec[base + i].msg_len = tmp[i].msg_len;
		total += (unsigned int)n;
		if ((unsigned int)n < cnt)
			break;
	}
	errno = saved;
	return (int)total;
}

PP_EXPORT int
sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	if (!pp_ready())
		return (int)syscall(SYS_sendmmsg, fd, vec, vlen, flags);
	if (!pp_is_udp(fd) || !pp_udp_routing() || vlen == 0)
		return pp_real.sendmmsg(fd, vec, vlen, flags);
	return pp_sendmmsg_udp(fd, vec, vlen, flags);
}

/*
 * hook_udp.c - socket, bind, connect, the receive calls (with their
 * _FORTIFY_SOURCE variants) and the send calls that carry an address.
 *
 * Every hook looks at one table entry first: a descriptor that is not a
 * PROXY-only datagram socket goes straight to libc, with no system call,
 * lock or allocation of ours (read() is called on every file the program
 * reads).  The datagram path itself is in udp.c.
 *
 * send() and write() carry no address: on a socket connected to an
 * advertised client, connect() already went to the proxy instead, and
 * the kernel sends there.  They are hooked for the header that a client
 * which arrived by SPP gets on every reply (udp_reply.c), and cost the
 * untracked descriptor, every file the program writes, one table load.
 *
 * 64-bit time on 32-bit targets.  A program built with _TIME_BITS=64
 * against glibc 2.34 or later calls __recvmsg64, __recvmmsg64,
 * __sendmsg64 and __sendmmsg64 instead of the plain names: they are
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

static inline bool
pp_is_udp(int fd)
{
	return __builtin_expect(pp_fd_kind(fd) == PP_FD_UDP, 0);
}

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
static int
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
static int
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

/* recvmsg and __recvmsg64 once bound: the same, each through its own
 * libc call. */
static ssize_t
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

PP_EXPORT ssize_t
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
PP_EXPORT int
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
PP_EXPORT ssize_t
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

PP_EXPORT int
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
PP_EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		pp_chk_fail();
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	return pp_recv_any(fd, buf, len, flags);
}

PP_EXPORT ssize_t
__recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen, int flags,
	       struct sockaddr *restrict addr, socklen_t *restrict alen)
{
	if (len > buflen)
		pp_chk_fail();
	if (!pp_ready())
		return syscall(SYS_recvfrom, fd, buf, len, flags, addr, alen);
	return pp_recvfrom_any(fd, buf, len, flags, addr, alen);
}

PP_EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		pp_chk_fail();
	if (!pp_ready())
		return syscall(SYS_read, fd, buf, len);
	return pp_read_any(fd, buf, len);
}

/* ===== Replies ===== */

/* send, write and sendto without an address on a PROXY-only datagram
 * socket: with the header when it is connected to an SPP client. */
static ssize_t
pp_send_connected(int fd, const void *buf, size_t len, int flags)
{
	uint8_t hdr[PP_SPP_LEN];

	if (!pp_udp_conn_hdr(fd, hdr))
		return PP_UDP_PASS;
	return pp_spp_send(fd, buf, len, flags, NULL, 0, hdr);
}

PP_EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t n;

	if (!pp_ready())
		return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
	if (!pp_is_udp(fd) ||
	    (n = pp_send_connected(fd, buf, len, flags)) == PP_UDP_PASS)
		return pp_real.send(fd, buf, len, flags);
	return n;
}

PP_EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	ssize_t n;

	if (!pp_ready())
		return syscall(SYS_write, fd, buf, len);
	if (!pp_is_udp(fd) ||
	    (n = pp_send_connected(fd, buf, len, 0)) == PP_UDP_PASS)
		return pp_real.write(fd, buf, len);
	return n;
}

PP_EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
       const struct sockaddr *dst, socklen_t dlen)
{
	struct pp_reply r;
	ssize_t n;

	if (!pp_ready())
		return syscall(SYS_sendto, fd, buf, len, flags, dst, dlen);
	if (!pp_is_udp(fd))
		return pp_real.sendto(fd, buf, len, flags, dst, dlen);
	if (dst == NULL) {
		n = pp_send_connected(fd, buf, len, flags);
		if (n == PP_UDP_PASS)
			return pp_real.sendto(fd, buf, len, flags, dst, dlen);
		return n;
	}
	if (!pp_udp_route(fd, dst, dlen, &r))
		return pp_real.sendto(fd, buf, len, flags, dst, dlen);
	if (r.spp)
		return pp_spp_send(fd, buf, len, flags, &r.via.sa, r.vialen,
				   r.hdr);
	return pp_real.sendto(fd, buf, len, flags, &r.via.sa, r.vialen);
}

/* sendmsg and __sendmsg64 once bound: the same, each through its own
 * libc call. */
static ssize_t
pp_sendmsg_any(int fd, const struct msghdr *msg, int flags, pp_sendmsg_fn real)
{
	struct pp_reply r;
	struct msghdr m;

	if (real == NULL)
		return syscall(SYS_sendmsg, fd, msg, flags);
	if (!pp_is_udp(fd) || msg == NULL)
		return real(fd, msg, flags);
	if (msg->msg_name == NULL) {
		if (!pp_udp_conn_hdr(fd, r.hdr))
			return real(fd, msg, flags);
		return pp_spp_sendmsg(fd, msg, flags, NULL, 0, r.hdr, real);
	}
	if (!pp_udp_route(fd, msg->msg_name, msg->msg_namelen, &r))
		return real(fd, msg, flags);
	if (r.spp)
		return pp_spp_sendmsg(fd, msg, flags, &r.via.sa, r.vialen,
				      r.hdr, real);
	m = *msg;
	m.msg_name = &r.via;
	m.msg_namelen = r.vialen;
	return real(fd, &m, flags);
}

PP_EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!pp_ready())
		return syscall(SYS_sendmsg, fd, msg, flags);
	return pp_sendmsg_any(fd, msg, flags, pp_real.sendmsg);
}

#ifdef HAVE___SENDMSG64
ssize_t __sendmsg64(int fd, const struct msghdr *msg, int flags);

PP_EXPORT ssize_t
__sendmsg64(int fd, const struct msghdr *msg, int flags)
{
	if (!pp_ready())
		return syscall(SYS_sendmsg, fd, msg, flags);
	return pp_sendmsg_any(fd, msg, flags, pp_real.sendmsg64);
}
#endif

#define PP_MMSG_CHUNK 64
#define PP_MMSG_IOV 128 /* iovecs for a chunk's SPP messages */

/* One chunk of pp_sendmmsg_udp: its copies of the caller's messages,
 * the proxies they go to and the headers of those that carry one. */
struct pp_mmsg_chunk {
	struct mmsghdr tmp[PP_MMSG_CHUNK];
	struct pp_reply r[PP_MMSG_CHUNK];
	bool spp[PP_MMSG_CHUNK];
	struct iovec iov[PP_MMSG_IOV];
	size_t used;
	bool conn_known, conn; /* connected to an SPP client (r[0].hdr) */
	uint8_t conn_hdr[PP_SPP_LEN];
};

/*
 * Rewrite message i of chunk c (a copy) for sending: to the proxy of its
 * client, with the header when the client arrived by SPP.  False when
 * its iovecs no longer fit in the chunk's (it then starts the next).
 */
static bool
pp_mmsg_prep(int fd, struct pp_mmsg_chunk *c, unsigned int i)
{
	struct msghdr *h = &c->tmp[i].msg_hdr;
	struct pp_reply *r = &c->r[i];
	const uint8_t *hdr = r->hdr;

	c->spp[i] = false;
	if (h->msg_name == NULL) {
		if (!c->conn_known) {
			c->conn = pp_udp_conn_hdr(fd, c->conn_hdr);
			c->conn_known = true;
		}
		if (!c->conn)
			return true;
		hdr = c->conn_hdr;
	} else if (!pp_udp_route(fd, h->msg_name, h->msg_namelen, r)) {
		return true;
	} else {
		h->msg_name = &r->via;
		h->msg_namelen = r->vialen;
		if (!r->spp)
			return true;
	}
	if (!pp_spp_wrap(h, hdr, c->iov, &c->used, PP_MMSG_IOV))
		return false;
	c->spp[i] = true;
	return true;
}

/*
 * sendmmsg with some destinations rewritten: the caller's array is
 * never written to except msg_len, so it is copied, a chunk at a time.
 * A message to an SPP client gets its header (msg_len is the program's
 * count); one whose iovecs do not fit beside the chunk's others goes in
 * the next chunk, or alone through pp_spp_sendmsg() when it fits in no
 * chunk.
 */
static int
pp_sendmmsg_udp(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		bool t64)
{
	struct pp_mmsg_chunk c;
	struct msghdr *h;
	unsigned int base, cnt, i, total = 0;
	ssize_t one;
	int n, saved = errno;

	if (vlen > 1024)
		vlen = 1024; /* UIO_MAXIOV, as the kernel caps it */
	c.conn_known = false;
	for (base = 0; base < vlen; base += cnt) {
		cnt = vlen - base < PP_MMSG_CHUNK ? vlen - base : PP_MMSG_CHUNK;
		c.used = 0;
		for (i = 0; i < cnt; i++) {
			c.tmp[i] = vec[base + i];
			if (!pp_mmsg_prep(fd, &c, i))
				break;
		}
		if (i == 0) { /* too many iovecs for a chunk: alone */
			h = &vec[base].msg_hdr;
			one = pp_spp_sendmsg(
				fd, h, flags,
				h->msg_name != NULL ? &c.r[0].via.sa : NULL,
				c.r[0].vialen,
				h->msg_name != NULL ? c.r[0].hdr : c.conn_hdr,
				t64 && pp_real.sendmsg64 != NULL
					? pp_real.sendmsg64
					: pp_real.sendmsg);
			n = one < 0 ? -1 : 1;
			c.tmp[0].msg_len = one < 0 ? 0 : (unsigned int)one;
			c.spp[0] = false;
			cnt = 1;
		} else {
			cnt = i;
			n = t64 ? pp_real.sendmmsg64(fd, c.tmp, cnt, flags)
				: pp_real.sendmmsg(fd, c.tmp, cnt, flags);
		}
		if (n < 0) {
			if (total == 0)
				return -1;
			break;
		}
		for (i = 0; i < (unsigned int)n; i++)
			vec[base + i].msg_len =
				c.spp[i] ? c.tmp[i].msg_len - PP_SPP_LEN
					 : c.tmp[i].msg_len;
		total += (unsigned int)n;
		if ((unsigned int)n < cnt)
			break;
	}
	errno = saved;
	return (int)total;
}

PP_EXPORT int
sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, PP_MMSG_FLAGS flags)
{
	if (!pp_ready())
		return (int)syscall(SYS_sendmmsg, fd, vec, vlen, flags);
	if (!pp_is_udp(fd) || !pp_udp_routing() || vlen == 0)
		return pp_real.sendmmsg(fd, vec, vlen, flags);
	return pp_sendmmsg_udp(fd, vec, vlen, (int)flags, false);
}

#ifdef HAVE___SENDMMSG64
int __sendmmsg64(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);

PP_EXPORT int
__sendmmsg64(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	if (!pp_ready() || pp_real.sendmmsg64 == NULL)
		return (int)syscall(SYS_sendmmsg, fd, vec, vlen, flags);
	if (!pp_is_udp(fd) || !pp_udp_routing() || vlen == 0)
		return pp_real.sendmmsg64(fd, vec, vlen, flags);
	return pp_sendmmsg_udp(fd, vec, vlen, flags, true);
}
#endif

/*
 * hook_udp_send.c - the send calls on PROXY-only datagram sockets: a
 * reply to an advertised client goes to the proxy that delivered it
 * (route.c), with the SPP header when the client arrived by SPP
 * (udp_reply.c).
 *
 * sendto, sendmsg and sendmmsg name the client.  send() and write() carry
 * no address: on a socket connected to an advertised client, connect()
 * (hook_udp.c) already went to the proxy instead, and the kernel sends
 * there.  They are hooked for the header that a client which arrived by
 * SPP gets on every reply, and cost the untracked descriptor, every file
 * the program writes, one table load.
 *
 * __sendmsg64 and __sendmmsg64, the names a 32-bit program built with
 * _TIME_BITS=64 calls (glibc 2.34 and later), are hooked where libc has
 * them; this file is built for the plain ABI, as hook_udp.c is.
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

#include "pp_hot.h"
#include "route.h"
#include "shim.h"
#include "udp.h"
#include "udp_reply.h"
#include "udp_sock.h"

/* send, write and sendto without an address on a PROXY-only datagram
 * socket: with the header when it is connected to an SPP client. */
PP_HOT_CALL static ssize_t
pp_send_connected(int fd, const void *buf, size_t len, int flags)
{
	uint8_t hdr[PP_SPP_LEN];

	if (!pp_udp_conn_hdr(fd, hdr))
		return PP_UDP_PASS;
	return pp_spp_send(fd, buf, len, flags, NULL, 0, hdr);
}

PP_HOT_CALL PP_EXPORT ssize_t
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

PP_HOT_CALL PP_EXPORT ssize_t
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

PP_HOT_CALL PP_EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
       const struct sockaddr *dst, socklen_t dlen)
{
	struct pp_reply r;
	ssize_t n;

	if (!pp_ready())
		return syscall(SYS_sendto, fd, buf, len, flags, dst, dlen);
	if (dst == NULL) {
		if (!pp_is_udp(fd))
			return pp_real.sendto(fd, buf, len, flags, dst, dlen);
		n = pp_send_connected(fd, buf, len, flags);
		if (n == PP_UDP_PASS)
			return pp_real.sendto(fd, buf, len, flags, dst, dlen);
		return n;
	}
	/* One look at the table: no route for any other descriptor. */
	if (!pp_udp_route(fd, dst, dlen, &r))
		return pp_real.sendto(fd, buf, len, flags, dst, dlen);
	if (r.spp)
		return pp_spp_send(fd, buf, len, flags, &r.via.sa, r.vialen,
				   r.hdr);
	return pp_real.sendto(fd, buf, len, flags, &r.via.sa, r.vialen);
}

/* sendmsg and __sendmsg64 once bound: the same, each through its own
 * libc call. */
PP_HOT_CALL static ssize_t
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

PP_HOT_CALL PP_EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!pp_ready())
		return syscall(SYS_sendmsg, fd, msg, flags);
	return pp_sendmsg_any(fd, msg, flags, pp_real.sendmsg);
}

#ifdef HAVE___SENDMSG64
ssize_t __sendmsg64(int fd, const struct msghdr *msg, int flags);

PP_WARM_DGRAM PP_EXPORT ssize_t
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
PP_WARM_DGRAM static bool
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
PP_WARM_DGRAM static int
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

PP_WARM_DGRAM PP_EXPORT int
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

PP_WARM_DGRAM PP_EXPORT int
__sendmmsg64(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	if (!pp_ready() || pp_real.sendmmsg64 == NULL)
		return (int)syscall(SYS_sendmmsg, fd, vec, vlen, flags);
	if (!pp_is_udp(fd) || !pp_udp_routing() || vlen == 0)
		return pp_real.sendmmsg64(fd, vec, vlen, flags);
	return pp_sendmmsg_udp(fd, vec, vlen, flags, true);
}
#endif

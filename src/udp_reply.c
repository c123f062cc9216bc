/*
 * udp_reply.c - replies to datagram clients that arrived by SPP
 * (udp_reply.h).
 *
 * Tencent EdgeOne's guide ("Transmitting Client Real IP via SPP
 * Protocol") says the origin's reply must carry the SPP header, which
 * the proxy removes: a reply without one loses its first 38 bytes.
 * Neither it nor Cloudflare's "Simple Proxy Protocol Header" page says
 * more of the reply's header, so it is the header the client's last
 * datagram came with: magic, client address and port, proxy address
 * and port, each in its place (route.c keeps the proxy's fields).
 *
 * The header is prepended without copying the payload: an iovec array
 * of the header and the program's iovecs, on the stack for up to
 * PP_SPP_IOV - 1 of them.  A datagram in more buffers (up to IOV_MAX)
 * is copied whole, header first, into the thread's 64 KiB receive
 * buffer (udp.c), which holds any datagram the socket can send.  The
 * program's call returns its own count: the kernel's less the header.
 * The kernel refuses (EMSGSIZE) a datagram the header pushes past the
 * largest the socket can send, and that error is the program's.
 *
 * Connected sockets.  connect() to such a client goes to the proxy
 * (hook_udp.c), and the header its sends carry is kept in the socket's
 * entry: has_src set, src the client and rpeer the proxy, both as
 * AF_INET6 with the header's 16-byte addresses and ports.  send, write,
 * sendto and sendmsg without an address, and sendmmsg's messages
 * without one, then carry it.  The entry's cookie is compared before
 * each such send: a number closed and reused behind the hooks' back is
 * sent to as the program asked, without a header.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

#include "ident.h"
#include "pp_hot.h"
#include "shim.h"
#include "udp.h"
#include "udp_reply.h"

bool
pp_spp_wrap(struct msghdr *h, const uint8_t *hdr, struct iovec *pool,
	    size_t *used, size_t cap)
{
	size_t n = (size_t)h->msg_iovlen;

	if (n >= cap - *used || (n > 0 && h->msg_iov == NULL))
		return false;
	pool[*used].iov_base = (void *)hdr;
	pool[*used].iov_len = PP_SPP_LEN;
	if (n > 0)
		memcpy(pool + *used + 1, h->msg_iov, n * sizeof(*pool));
	h->msg_iov = pool + *used;
	h->msg_iovlen = n + 1;
	*used += n + 1;
	return true;
}

/* The program's count from the kernel's n (header included). */
static ssize_t
pp_spp_count(ssize_t n)
{
	if (n < 0)
		return n;
	return n >= PP_SPP_LEN ? n - PP_SPP_LEN : 0;
}

/*
 * m (msg addressed as it will be sent) in more buffers than the stack
 * holds: header and payload copied into the thread's buffer, sent as
 * one.  EMSGSIZE when more than IOV_MAX buffers (the kernel's own
 * answer) or more than the buffer holds (more than any socket sends).
 */
static ssize_t
pp_spp_send_copy(int fd, struct msghdr *m, int flags, const uint8_t *hdr,
		 pp_sendmsg_fn real)
{
	struct iovec one;
	uint8_t *buf;
	size_t i, len = PP_SPP_LEN;
	unsigned held;
	ssize_t n;

	if (m->msg_iovlen > IOV_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	for (i = 0; i < (size_t)m->msg_iovlen; i++) {
		if (m->msg_iov[i].iov_len > PP_UDP_BUF - len) {
			errno = EMSGSIZE;
			return -1;
		}
		len += m->msg_iov[i].iov_len;
	}
	buf = pp_udp_buf_take(&held);
	if (buf == NULL) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(buf, hdr, PP_SPP_LEN);
	len = PP_SPP_LEN;
	for (i = 0; i < (size_t)m->msg_iovlen; i++) {
		if (m->msg_iov[i].iov_len > 0)
			memcpy(buf + len, m->msg_iov[i].iov_base,
			       m->msg_iov[i].iov_len);
		len += m->msg_iov[i].iov_len;
	}
	one.iov_base = buf;
	one.iov_len = len;
	m->msg_iov = &one;
	m->msg_iovlen = 1;
	n = real(fd, m, flags);
	pp_udp_buf_give(buf, held);
	return pp_spp_count(n);
}

PP_WARM_DGRAM ssize_t
pp_spp_sendmsg(int fd, const struct msghdr *msg, int flags,
	       const struct sockaddr *to, socklen_t tolen, const uint8_t *hdr,
	       pp_sendmsg_fn real)
{
	struct iovec pool[PP_SPP_IOV];
	struct msghdr m = *msg;
	size_t used = 0;

	m.msg_name = (void *)to;
	m.msg_namelen = to != NULL ? tolen : 0;
	if (!pp_spp_wrap(&m, hdr, pool, &used, PP_SPP_IOV))
		return pp_spp_send_copy(fd, &m, flags, hdr, real);
	return pp_spp_count(real(fd, &m, flags));
}

PP_HOT_DGRAM ssize_t
pp_spp_send(int fd, const void *buf, size_t len, int flags,
	    const struct sockaddr *to, socklen_t tolen, const uint8_t *hdr)
{
	/* One buffer always fits beside the header: what pp_spp_sendmsg
	 * would build, without building the program's message first. */
	struct iovec iov[2] = {
		{ .iov_base = (void *)hdr, .iov_len = PP_SPP_LEN },
		{ .iov_base = (void *)buf, .iov_len = len },
	};
	struct msghdr m = {
		.msg_name = (void *)to,
		.msg_namelen = to != NULL ? tolen : 0,
		.msg_iov = iov,
		.msg_iovlen = 2,
	};

	return pp_spp_count(pp_real.sendmsg(fd, &m, flags));
}

PP_WARM_DGRAM bool
pp_udp_conn_hdr(int fd, uint8_t *hdr)
{
	struct pp_fdinfo info;
	int saved = errno;
	bool ok;

	if (pp_fd_get(fd, &info) != PP_FD_UDP || !info.has_src)
		return false;
	ok = info.cookie == 0 || pp_same_socket(fd, info.cookie);
	errno = saved;
	if (ok)
		pp_spp_build(hdr, info.src.sin6.sin6_addr.s6_addr,
			     info.src.sin6.sin6_port,
			     info.rpeer.sin6.sin6_addr.s6_addr,
			     info.rpeer.sin6.sin6_port);
	return ok;
}

/* The 16-byte address and port of an SPP header field as AF_INET6. */
static void
pp_spp_sin6(union pp_inaddr *out, socklen_t *outlen, const uint8_t *addr,
	    uint16_t port)
{
	memset(out, 0, sizeof(*out));
	out->sin6.sin6_family = AF_INET6;
	memcpy(&out->sin6.sin6_addr, addr, 16);
	out->sin6.sin6_port = port;
	*outlen = sizeof(out->sin6);
}

PP_WARM_DGRAM void
pp_udp_connected(int fd, const struct pp_reply *r, int ret)
{
	struct pp_fdinfo info;
	struct pp_spp h;
	bool spp =
		r != NULL && ret == 0 && pp_parse_spp(r->hdr, PP_SPP_LEN, &h);
	int saved = errno;

	if (!pp_claim_table() || pp_fd_get(fd, &info) != PP_FD_UDP ||
	    (!spp && !info.has_src))
		goto out;
	info.has_src = spp;
	if (spp) {
		pp_spp_sin6(&info.src, &info.srclen, h.client, h.cport);
		pp_spp_sin6(&info.rpeer, &info.rpeerlen, h.proxy, h.pport);
	} else {
		info.srclen = info.rpeerlen = 0;
		memset(&info.src, 0, sizeof(info.src));
		memset(&info.rpeer, 0, sizeof(info.rpeer));
	}
	(void)pp_fd_set(fd, &info);
out:
	errno = saved;
}

/*
 * udpfloor.c - the datagram floor: a preload that does, per datagram, the
 * least any library must do to put an unmodified UDP echo server behind a
 * PROXY v2 sender, and nothing else.  Against plain (no header, no
 * preload) it shows what interposing recvfrom and sendto, stripping the
 * header and sending the reply back to the proxy cost by themselves;
 * ppshim against it is the library's own work.
 *
 * Per datagram:
 *   recvfrom: the program's call, with the flags ppshim adds (MSG_TRUNC,
 *     and the MSG_OOB of its identity probe), so that the kernel's work is
 *     the same; then, when the datagram starts with a v2 PROXY header of
 *     family INET or INET6, the payload moved over it and the advertised
 *     source reported;
 *   sendto: a reply to the address last reported by this thread goes to
 *     the proxy that sent that datagram.
 *
 * Left out, and part of the library's work: the table of PROXY-only
 * sockets, the PP_ALLOW check, strict parsing, counters, the reply routes
 * of every recent client across threads, a datagram longer than the
 * program's buffer.  Only for bench/run.sh: every UDP recvfrom of the
 * process is treated so, and a reply to an address other than the last
 * advertised source or a loopback one is refused (EHOSTUNREACH) rather
 * than sent off the machine.
 *
 * Usage: LD_PRELOAD=bench/.libs/libppudpfloor.so bench/udpecho -p PORT
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define UF_EXPORT __attribute__((visibility("default")))
#define UF_TLS __thread __attribute__((tls_model("initial-exec")))
#define UF_V2_FIXED 16

typedef ssize_t (*uf_recvfrom_fn)(int, void *, size_t, int, struct sockaddr *,
				  socklen_t *);
typedef ssize_t (*uf_sendto_fn)(int, const void *, size_t, int,
				const struct sockaddr *, socklen_t);

static uf_recvfrom_fn uf_recvfrom;
static uf_sendto_fn uf_sendto;

union uf_sa {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* This thread's last datagram: the source it advertised, and its proxy. */
static UF_TLS union uf_sa uf_adv, uf_proxy;
static UF_TLS socklen_t uf_advlen, uf_proxylen;

__attribute__((constructor)) static void
uf_init(void)
{
	uf_recvfrom = (uf_recvfrom_fn)dlsym(RTLD_NEXT, "recvfrom");
	uf_sendto = (uf_sendto_fn)dlsym(RTLD_NEXT, "sendto");
}

static const uint8_t uf_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* The advertised source of the v2 header at b (n bytes) into *a, and the
 * header's length; 0 when b does not start with a PROXY header of family
 * INET or INET6. */
static size_t
uf_header(const uint8_t *b, size_t n, union uf_sa *a, socklen_t *alen)
{
	size_t len;

	if (n < UF_V2_FIXED || memcmp(b, uf_sig, sizeof(uf_sig)) != 0 ||
	    b[12] != 0x21)
		return 0;
	len = UF_V2_FIXED + ((size_t)b[14] << 8 | b[15]);
	if (len > n)
		return 0;
	if (b[13] >> 4 == 1 && len >= UF_V2_FIXED + 12) {
		a->sin = (struct sockaddr_in){ .sin_family = AF_INET };
		memcpy(&a->sin.sin_addr, b + 16, 4);
		memcpy(&a->sin.sin_port, b + 24, 2);
		*alen = sizeof(a->sin);
		return len;
	}
	if (b[13] >> 4 == 2 && len >= UF_V2_FIXED + 36) {
		a->sin6 = (struct sockaddr_in6){ .sin6_family = AF_INET6 };
		memcpy(&a->sin6.sin6_addr, b + 16, 16);
		memcpy(&a->sin6.sin6_port, b + 48, 2);
		*alen = sizeof(a->sin6);
		return len;
	}
	return 0;
}

UF_EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
	 socklen_t *alen)
{
	union uf_sa src, adv;
	socklen_t srclen = sizeof(src), advlen = 0;
	ssize_t n;
	size_t have, h;

	n = uf_recvfrom(fd, buf, len, flags | MSG_TRUNC | MSG_OOB, &src.sa,
			&srclen);
	if (n < 0 && (errno == EINVAL || errno == EOPNOTSUPP))
		return uf_recvfrom(fd, buf, len, flags, addr, alen);
	if (n < 0)
		return n;
	have = (size_t)n < len ? (size_t)n : len;
	h = uf_header(buf, have, &adv, &advlen);
	if (h > 0 && srclen <= sizeof(src)) {
		memmove(buf, (uint8_t *)buf + h, have - h);
		uf_adv = adv;
		uf_advlen = advlen;
		uf_proxy = src;
		uf_proxylen = srclen;
		src = adv;
		srclen = advlen;
		n -= (ssize_t)h;
		have -= h;
	}
	if (addr != NULL && alen != NULL) {
		memcpy(addr, &src, *alen < srclen ? *alen : srclen);
		*alen = srclen;
	}
	return (flags & MSG_TRUNC) ? n : (ssize_t)have;
}

/* Whether sa (len bytes) is a loopback address. */
static bool
uf_loopback(const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET && len >= sizeof(*sin))
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6 && len >= sizeof(*sin6))
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	return false;
}

UF_EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
       const struct sockaddr *dst, socklen_t dlen)
{
	if (dst != NULL && dlen >= sizeof(sa_family_t) &&
	    dst->sa_family != AF_UNIX) {
		if (uf_advlen != 0 && dlen >= uf_advlen &&
		    memcmp(dst, &uf_adv, uf_advlen) == 0) {
			dst = &uf_proxy.sa;
			dlen = uf_proxylen;
		} else if (!uf_loopback(dst, dlen)) {
			errno = EHOSTUNREACH;
			return -1;
		}
	}
	return uf_sendto(fd, buf, len, flags, dst, dlen);
}

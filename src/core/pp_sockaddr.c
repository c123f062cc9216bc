/*
 * pp_sockaddr.c - socket addresses: normalised, compared, converted
 * between IPv4 and IPv6 and formatted (see pp_sockaddr.h).
 *
 * Nothing here allocates, does I/O or keeps state; addresses are read
 * with memcpy, so a caller's buffer need not be aligned.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "pp_hot.h"
#include "pp_sockaddr.h"

/* The family of sa, AF_UNSPEC when len cannot hold one. */
static sa_family_t
pp_sa_family(const struct sockaddr *sa, socklen_t len)
{
	sa_family_t fam;

	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return AF_UNSPEC;
	memcpy(&fam, (const char *)sa + offsetof(struct sockaddr, sa_family),
	       sizeof(fam));
	return fam;
}

PP_HOT_DGRAM void
pp_sa_map4(uint8_t a[16], const void *v4)
{
	/* Stores of immediates: written byte by byte, the two 0xff came
	 * from pp_sa_is_mapped()'s table in .rodata (pp_hot.h). */
	const uint64_t zero = 0;
	const uint32_t ffff = htonl(0xffffu);

	memcpy(a, &zero, 8);
	memcpy(a + 8, &ffff, 4);
	memcpy(a + 12, v4, 4);
}

bool
pp_sa_is_mapped(const uint8_t a[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0,    0,
					    0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

PP_HOT_CONN bool
pp_sa_norm(const struct sockaddr *sa, socklen_t len, uint8_t a[16],
	   uint16_t *port)
{
	switch (pp_sa_family(sa, len)) {
	case AF_INET: {
		struct sockaddr_in sin;

		if (len < (socklen_t)sizeof(sin))
			return false;
		memcpy(&sin, sa, sizeof(sin));
		pp_sa_map4(a, &sin.sin_addr);
		*port = sin.sin_port;
		return true;
	}
	case AF_INET6: {
		struct sockaddr_in6 sin6;

		if (len < (socklen_t)sizeof(sin6))
			return false;
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(a, &sin6.sin6_addr, 16);
		*port = sin6.sin6_port;
		return true;
	}
	}
	return false;
}

uint16_t
pp_sa_port(const struct sockaddr *sa, socklen_t len)
{
	uint8_t a[16];
	uint16_t port;

	return pp_sa_norm(sa, len, a, &port) ? port : 0;
}

bool
pp_sa_equal(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
	    socklen_t blen)
{
	uint8_t x[16], y[16];
	uint16_t xp, yp;

	return alen == blen && pp_sa_family(a, alen) == pp_sa_family(b, blen) &&
	       pp_sa_norm(a, alen, x, &xp) && pp_sa_norm(b, blen, y, &yp) &&
	       xp == yp && memcmp(x, y, 16) == 0;
}

bool
pp_sa_same(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
	   socklen_t blen, bool port)
{
	uint8_t x[16], y[16];
	uint16_t xp, yp;

	return pp_sa_norm(a, alen, x, &xp) && pp_sa_norm(b, blen, y, &yp) &&
	       (!port || xp == yp) && memcmp(x, y, 16) == 0;
}

PP_WARM_DGRAM bool
pp_sa_as_family(const struct sockaddr *sa, socklen_t len, int fam,
		union pp_inaddr *out, socklen_t *outlen)
{
	sa_family_t from = pp_sa_family(sa, len);
	uint8_t a[16];
	uint16_t port;

	/* Already an IPv4 address for an IPv4 socket, as nearly every
	 * datagram on an AF_INET socket is: no round trip through the
	 * normalised form. */
	if (from == AF_INET && fam == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		memset(out, 0, sizeof(*out));
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = in.sin_port;
		out->sin.sin_addr = in.sin_addr;
		*outlen = sizeof(out->sin);
		return true;
	}
	if (!pp_sa_norm(sa, len, a, &port))
		return false;
	/* Flow label and scope as they came. */
	if (fam == AF_INET6 && from == AF_INET6) {
		memset(out, 0, sizeof(*out));
		memcpy(&out->sin6, sa, sizeof(out->sin6));
		*outlen = sizeof(out->sin6);
		return true;
	}
	return pp_sa_from_norm(a, port, fam, out, outlen);
}

PP_HOT_DGRAM bool
pp_sa_from_norm(const uint8_t a[16], uint16_t port, int fam,
		union pp_inaddr *out, socklen_t *outlen)
{
	memset(out, 0, sizeof(*out));
	if (fam == AF_INET6) {
		out->sin6.sin6_family = AF_INET6;
		out->sin6.sin6_port = port;
		memcpy(&out->sin6.sin6_addr, a, 16);
		*outlen = sizeof(out->sin6);
		return true;
	}
	if (fam == AF_INET && pp_sa_is_mapped(a)) {
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = port;
		memcpy(&out->sin.sin_addr, a + 12, 4);
		*outlen = sizeof(out->sin);
		return true;
	}
	return false;
}

void
pp_sa_fmt(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;

	switch (pp_sa_family(sa, len)) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  host, sizeof(host));
		snprintf(out, cap, "%s:%u", host,
			 ntohs(((const struct sockaddr_in *)sa)->sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
			  sizeof(host));
		snprintf(out, cap, "[%s]:%u", host,
			 ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
		break;
	case AF_UNIX:
		if (len > offsetof(struct sockaddr_un, sun_path) &&
		    sun->sun_path[0] != '\0')
			snprintf(out, cap, "unix:%.*s",
				 (int)(len -
				       offsetof(struct sockaddr_un, sun_path)),
				 sun->sun_path);
		else
			snprintf(out, cap, "unix:(unnamed)");
		break;
	default:
		snprintf(out, cap, "(unknown)");
		break;
	}
}

void
pp_sa_ip(const union pp_inaddr *a, char *ip, size_t cap, unsigned *port)
{
	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->sin.sin_addr, ip, (socklen_t)cap);
		*port = ntohs(a->sin.sin_port);
	} else {
		inet_ntop(AF_INET6, &a->sin6.sin6_addr, ip, (socklen_t)cap);
		*port = ntohs(a->sin6.sin6_port);
	}
}

PP_HOT_DGRAM void
pp_sa_copy(struct sockaddr *dst, socklen_t *len, const struct sockaddr *a,
	   socklen_t alen)
{
	socklen_t n;

	if (dst == NULL || len == NULL)
		return;
	n = *len < alen ? *len : alen;
	pp_copy_hot(dst, a, n);
	*len = alen;
}

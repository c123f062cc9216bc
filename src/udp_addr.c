/*
 * udp_addr.c - the address forms of the datagram path (udp_addr.h): the
 * receive path reports an advertised client in its socket's family, and
 * the reply table keys clients by their 16-byte address.
 */
#include "config.h"

#include <string.h>
#include <netinet/in.h>

#include "udp_addr.h"

/* An IPv4 or IPv6 address as 16 bytes (IPv4 as ::ffff:a.b.c.d) and a
 * port in network order.  False for anything else. */
bool
pp_norm(const struct sockaddr *sa, socklen_t len, uint8_t a[16], uint16_t *port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	if (sa == NULL || len < sizeof(sa_family_t))
		return false;
	if (sa->sa_family == AF_INET && len >= sizeof(*in)) {
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &in->sin_addr, 4);
		*port = in->sin_port;
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(*in6)) {
		memcpy(a, &in6->sin6_addr, 16);
		*port = in6->sin6_port;
		return true;
	}
	return false;
}

bool
pp_is_mapped(const uint8_t a[16])
{
	struct in6_addr in6;

	memcpy(&in6, a, sizeof(in6));
	return IN6_IS_ADDR_V4MAPPED(&in6);
}

/*
 * Express an address in the form a socket of family fam uses: IPv4 on an
 * IPv6 socket becomes ::ffff:a.b.c.d, a mapped address on an IPv4 socket
 * becomes plain IPv4.  False when fam cannot hold it.
 */
bool
pp_as_family(const struct sockaddr *sa, socklen_t len, int fam,
	     union pp_inaddr *out, socklen_t *outlen)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	uint8_t a[16];
	uint16_t port;

	/* Already in that family (the common case): no conversion. */
	if (sa != NULL && fam == AF_INET && len >= sizeof(*in) &&
	    sa->sa_family == AF_INET) {
		memset(out, 0, sizeof(*out));
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = in->sin_port;
		out->sin.sin_addr = in->sin_addr;
		*outlen = sizeof(out->sin);
		return true;
	}
	if (!pp_norm(sa, len, a, &port))
		return false;
	memset(out, 0, sizeof(*out));
	if (fam == AF_INET6) {
		if (sa->sa_family == AF_INET6)
			out->sin6 = *(const struct sockaddr_in6 *)sa;
		out->sin6.sin6_family = AF_INET6;
		out->sin6.sin6_port = port;
		memcpy(&out->sin6.sin6_addr, a, 16);
		*outlen = sizeof(out->sin6);
		return true;
	}
	if (fam == AF_INET && pp_is_mapped(a)) {
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = port;
		memcpy(&out->sin.sin_addr, a + 12, 4);
		*outlen = sizeof(out->sin);
		return true;
	}
	return false;
}

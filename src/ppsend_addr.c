/*
 * ppsend_addr.c - addresses in ppsend: ADDR[:PORT] as --src, --dst and
 * --bind give it (IPv6 in brackets), "ADDR:PORT" as the messages print
 * it, and the two real ends of the connection.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pp_sockaddr.h"
#include "ppsend_addr.h"

/* Parse a port 0..65535 in decimal; false when s is not one. */
static bool
ps_port(const char *s, uint16_t *port)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/*
 * Parse ADDR (IPv4 or IPv6, optionally in brackets) with an optional
 * :PORT, into *a.  need_port makes the port mandatory.  Returns false on
 * any syntax error.
 */
bool
ps_parse_addr(const char *s, bool need_port, union pp_sockaddr *a)
{
	char buf[PS_ADDRSTRLEN];
	const char *host, *port = NULL;
	uint16_t p = 0;
	char *q;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	host = buf;
	if (buf[0] == '[') {
		q = strchr(buf, ']');
		if (q == NULL)
			return false;
		*q = '\0';
		host = buf + 1;
		if (q[1] == ':')
			port = q + 2;
		else if (q[1] != '\0')
			return false;
	} else {
		q = strrchr(buf, ':');
		/* One colon: ADDR:PORT; more: a bare IPv6 address. */
		if (q != NULL && strchr(buf, ':') == q) {
			*q = '\0';
			port = q + 1;
		}
	}
	if (port != NULL && !ps_port(port, &p))
		return false;
	if (port == NULL && need_port)
		return false;
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &a->sin.sin_addr) == 1 && buf[0] != '[') {
		a->sin.sin_family = AF_INET;
		a->sin.sin_port = htons(p);
		return true;
	}
	if (inet_pton(AF_INET6, host, &a->sin6.sin6_addr) == 1) {
		a->sin6.sin6_family = AF_INET6;
		a->sin6.sin6_port = htons(p);
		return true;
	}
	return false;
}

/* The length of the sockaddr in a, IPv4 or IPv6. */
socklen_t
ps_salen(const union pp_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->sin6) : sizeof(a->sin);
}

/* "1.2.3.4:5" or "[::1]:5" into buf (size bytes); returns buf. */
const char *
ps_fmt_addr(const union pp_sockaddr *a, char *buf, size_t size)
{
	pp_sa_fmt(&a->sa, ps_salen(a), buf, size);
	return buf;
}

/*
 * The local and the peer address of the connected socket fd; zeroed
 * where the call fails.
 */
void
ps_endpoints(int fd, union pp_sockaddr *local, union pp_sockaddr *peer)
{
	socklen_t len;

	memset(local, 0, sizeof(*local));
	memset(peer, 0, sizeof(*peer));
	len = sizeof(*local);
	getsockname(fd, &local->sa, &len);
	len = sizeof(*peer);
	getpeername(fd, &peer->sa, &len);
}

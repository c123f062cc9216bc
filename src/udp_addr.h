/*
 * udp_addr.h - the address forms of the datagram path: an IPv4 or IPv6
 * address as 16 bytes, and in the form a socket of a given family uses.
 */
#ifndef PP_UDP_ADDR_H
#define PP_UDP_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"

/* An IPv4 or IPv6 address as 16 bytes (IPv4 as ::ffff:a.b.c.d) and a
 * port in network order.  False for anything else. */
bool pp_norm(const struct sockaddr *sa, socklen_t len, uint8_t a[16],
	     uint16_t *port);

/* Is a (16 bytes) an IPv4-mapped IPv6 address? */
bool pp_is_mapped(const uint8_t a[16]);

/*
 * sa in the form a socket of family fam uses, into *out and *outlen:
 * IPv4 on an IPv6 socket becomes ::ffff:a.b.c.d, a mapped address on an
 * IPv4 socket plain IPv4.  False when fam cannot hold it.
 */
bool pp_as_family(const struct sockaddr *sa, socklen_t len, int fam,
		  union pp_inaddr *out, socklen_t *outlen);

#endif /* PP_UDP_ADDR_H */

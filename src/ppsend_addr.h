/*
 * ppsend_addr.h - addresses in ppsend: ADDR[:PORT] as the options give
 * it, as messages print it, and the two ends of a connected socket.
 */
#ifndef PS_ADDR_H
#define PS_ADDR_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>

#include "pp_parse.h"

/* Room for "[IPV6ADDR]:PORT" and its terminating NUL. */
#define PS_ADDRSTRLEN (INET6_ADDRSTRLEN + 8)

/*
 * Parse ADDR (IPv4 or IPv6, optionally in brackets) with an optional
 * :PORT, into *a.  need_port makes the port mandatory.  Returns false on
 * any syntax error.
 */
bool ps_parse_addr(const char *s, bool need_port, union pp_sockaddr *a);

/* The length of the sockaddr in a, IPv4 or IPv6. */
socklen_t ps_salen(const union pp_sockaddr *a);

/* "1.2.3.4:5" or "[::1]:5" into buf (size bytes); returns buf. */
const char *ps_fmt_addr(const union pp_sockaddr *a, char *buf, size_t size);

/*
 * The local and the peer address of the connected socket fd; zeroed
 * where the call fails.
 */
void ps_endpoints(int fd, union pp_sockaddr *local, union pp_sockaddr *peer);

#endif

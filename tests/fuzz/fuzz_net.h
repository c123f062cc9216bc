/*
 * fuzz_net.h - what the two fuzz targets that run real sockets through
 * the library's hooks share (fuzz_conn.c, fuzz_dgram.c): the failure
 * report, the environment both set before the library reads it, the
 * three loopback sources, and addresses reduced to what the checks
 * compare.
 */
#ifndef PP_FUZZ_NET_H
#define PP_FUZZ_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pp_parse.h"

/* Report which rule broke, at file:line, and abort. */
_Noreturn void pp_fn_fail(const char *file, int line, const char *what);

/* setenv(name, value), aborting when it fails. */
void pp_fn_set(const char *name, const char *value);

/*
 * What both targets set before the library reads its configuration:
 * PP_ALLOW=127.0.0.1,::1, PP_DIRECT=127.0.0.3, PP_V2_DRAFT=1,
 * PP_INHERIT=0, and no PPSHIM_HANDOVER.
 */
void pp_fn_env(void);

/* The source of an IPv4 client, chosen by two bits of the input:
 * 127.0.0.1 (trusted; 0 and 3), 127.0.0.2 (untrusted; 1), 127.0.0.3
 * (direct; 2). */
enum pp_fn_src { PP_FN_TRUSTED, PP_FN_UNTRUSTED, PP_FN_DIRECT };

enum pp_fn_src pp_fn_src_of(unsigned bits);

/* The address of src, in network order. */
in_addr_t pp_fn_src_addr(enum pp_fn_src src);

/* An address reduced to what the checks compare. */
struct pp_fn_addr {
	int family;
	socklen_t len;
	uint16_t port;
	uint8_t ip[16];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	size_t pathlen;
};

/* The len bytes of socket address p, reduced. */
void pp_fn_norm(const void *p, socklen_t len, struct pp_fn_addr *out);

bool pp_fn_same(const struct pp_fn_addr *a, const struct pp_fn_addr *b);

/* An IPv4 or IPv6 address as a socket of family fam reports it: an
 * IPv4 one IPv4-mapped for an AF_INET6 socket. */
void pp_fn_as(const union pp_sockaddr *a, int fam, struct pp_fn_addr *out);

#endif

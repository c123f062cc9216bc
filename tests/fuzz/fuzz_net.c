/*
 * fuzz_net.c - what the fuzz targets over real sockets share
 * (fuzz_net.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_net.h"

void
pp_fn_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: %s\n", file, line, what);
	abort();
}

void
pp_fn_set(const char *name, const char *value)
{
	if (setenv(name, value, 1) != 0)
		abort();
}

void
pp_fn_env(void)
{
	pp_fn_set("PP_ALLOW", "127.0.0.1,::1");
	pp_fn_set("PP_DIRECT", "127.0.0.3");
	pp_fn_set("PP_V2_DRAFT", "1");
	pp_fn_set("PP_INHERIT", "0");
	unsetenv("PPSHIM_HANDOVER");
}

enum pp_fn_src
pp_fn_src_of(unsigned bits)
{
	switch (bits & 3) {
	case 1:
		return PP_FN_UNTRUSTED;
	case 2:
		return PP_FN_DIRECT;
	default:
		return PP_FN_TRUSTED;
	}
}

in_addr_t
pp_fn_src_addr(enum pp_fn_src src)
{
	return htonl(src == PP_FN_UNTRUSTED ? 0x7f000002
		     : src == PP_FN_DIRECT  ? 0x7f000003
					    : 0x7f000001);
}

void
pp_fn_norm(const void *p, socklen_t len, struct pp_fn_addr *out)
{
	union pp_sockaddr sa;

	memset(out, 0, sizeof(*out));
	memset(&sa, 0, sizeof(sa));
	memcpy(&sa, p, len < sizeof(sa) ? len : sizeof(sa));
	out->family = sa.sa.sa_family;
	out->len = len;
	if (sa.sa.sa_family == AF_INET) {
		out->port = sa.sin.sin_port;
		memcpy(out->ip, &sa.sin.sin_addr, 4);
	} else if (sa.sa.sa_family == AF_INET6) {
		out->port = sa.sin6.sin6_port;
		memcpy(out->ip, &sa.sin6.sin6_addr, 16);
	} else if (sa.sa.sa_family == AF_UNIX &&
		   len > offsetof(struct sockaddr_un, sun_path)) {
		out->pathlen = len - offsetof(struct sockaddr_un, sun_path);
		memcpy(out->path, sa.sun.sun_path, out->pathlen);
	}
}

bool
pp_fn_same(const struct pp_fn_addr *a, const struct pp_fn_addr *b)
{
	return a->family == b->family && a->len == b->len &&
	       a->port == b->port && memcmp(a->ip, b->ip, 16) == 0 &&
	       a->pathlen == b->pathlen &&
	       memcmp(a->path, b->path, a->pathlen) == 0;
}

void
pp_fn_as(const union pp_sockaddr *a, int fam, struct pp_fn_addr *out)
{
	struct sockaddr_in6 m;

	if (a->sa.sa_family == AF_INET && fam == AF_INET6) {
		memset(&m, 0, sizeof(m));
		m.sin6_family = AF_INET6;
		m.sin6_port = a->sin.sin_port;
		m.sin6_addr.s6_addr[10] = 0xff;
		m.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&m.sin6_addr.s6_addr[12], &a->sin.sin_addr, 4);
		pp_fn_norm(&m, sizeof(m), out);
	} else if (a->sa.sa_family == AF_INET) {
		pp_fn_norm(&a->sin, sizeof(a->sin), out);
	} else {
		pp_fn_norm(&a->sin6, sizeof(a->sin6), out);
	}
}

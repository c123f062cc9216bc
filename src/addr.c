/*
 * addr.c - small address helpers shared by the TCP and UDP paths.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/un.h>

#include "shim.h"

/* "192.0.2.1:5000", "[2001:db8::1]:5000", "unix:/path". */
void
pp_fmt_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;

	switch (len >= sizeof(sa_family_t) ? sa->sa_family : AF_UNSPEC) {
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

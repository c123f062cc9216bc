/*
 * udp_sock.c - which datagram sockets are PROXY-only.
 *
 * A datagram socket is PROXY-only when the address it is
 * bound to matches a PORT/udp entry of PP_PORTS.  bind() (hook_udp.c)
 * classifies it right after the kernel accepted the address, and the
 * constructor classifies the bound datagram sockets a program inherits
 * (fds 0-2 as inetd's "wait" services get them, and systemd's LISTEN_FDS
 * range).  The answer is a PP_FD_UDP entry in the descriptor table,
 * holding the socket's cookie, its family and its bound address, which
 * the receive path (udp.c) and the reply routes (route.c) go by.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ident.h"
#include "inherit.h"
#include "pp_sockaddr.h"
#include "shim.h"
#include "stats.h"
#include "udp_sock.h"

static bool
pp_udp_configured(void)
{
	size_t i;

	for (i = 0; i < pp_cfg.nports; i++)
		if (pp_cfg.ports[i].socktype == SOCK_DGRAM)
			return true;
	return false;
}

void
pp_udp_classify(int fd, bool clear)
{
	struct pp_fdinfo info;
	const struct pp_port *port = NULL;
	union pp_sockaddr sa;
	socklen_t len = sizeof(sa), olen = sizeof(int);
	int type = 0, saved = errno;

	if (!pp_active() || !pp_udp_configured() ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) != 0 ||
	    type != SOCK_DGRAM || pp_real.getsockname(fd, &sa.sa, &len) != 0 ||
	    (sa.sa.sa_family != AF_INET && sa.sa.sa_family != AF_INET6) ||
	    len > sizeof(info.dst) ||
	    (port = pp_config_find(&pp_cfg, SOCK_DGRAM, &sa.sa, len)) == NULL) {
		if (clear && pp_fd_kind(fd) != PP_FD_NONE && pp_claim_table())
			pp_fd_clear(fd);
		goto out;
	}
	if (!pp_claim_table())
		goto out;
	memset(&info, 0, sizeof(info));
	info.kind = PP_FD_UDP;
	info.socktype = SOCK_DGRAM;
	info.family = sa.sa.sa_family;
	info.spp = port->spp;
	info.cookie = pp_socket_cookie(fd);
	memcpy(&info.dst, &sa, len); /* the bound address */
	info.dstlen = len;
	info.stat = (uint8_t)pp_stat_slot(SOCK_DGRAM, &sa.sa, len);
	info.lport = sa.sa.sa_family == AF_INET6 ? sa.sin6.sin6_port
						 : sa.sin.sin_port;
	if (!pp_fd_set(fd, &info)) {
		pp_log(PP_LOG_ERROR,
		       "fd %d: cannot track a PROXY-only UDP "
		       "socket: its datagrams pass untouched",
		       fd);
		goto out;
	}
	if (pp_log_on(PP_LOG_DEBUG)) {
		char where[INET6_ADDRSTRLEN + 16];

		pp_sa_fmt(&sa.sa, len, where, sizeof(where));
		pp_log(PP_LOG_DEBUG, "fd %d bound to %s/udp is PROXY-only%s",
		       fd, where, info.spp ? " (SPP)" : "");
	}
out:
	errno = saved;
}

void
pp_udp_inherit(void)
{
	int fd, n;

	if (!pp_active() || !pp_udp_configured())
		return;
	for (fd = 0; fd < 3; fd++)
		pp_udp_classify(fd, false);
	n = pp_listen_fds();
	for (fd = 3; fd < 3 + n; fd++)
		pp_udp_classify(fd, false);
}

/*
 * udp_sock.h - which datagram sockets are PROXY-only (udp_sock.c; the
 * hooks in hook_udp.c, the datagram path in udp.c).
 */
#ifndef PP_UDP_SOCK_H
#define PP_UDP_SOCK_H

#include <stdbool.h>

#include "fdtab.h"

/* After a successful bind (or at load for inherited descriptors):
 * make fd a PP_FD_UDP entry when it is a datagram socket bound to a
 * PORT/udp address; otherwise, with clear, forget what was known. */
void pp_udp_classify(int fd, bool clear);

/* At load: classify the datagram sockets inherited on fds 0-2 and in the
 * systemd LISTEN_FDS range. */
void pp_udp_inherit(void);

/* Is fd a PROXY-only datagram socket?  One table load: what every
 * datagram hook asks first. */
static inline bool
pp_is_udp(int fd)
{
	return __builtin_expect(pp_fd_kind(fd) == PP_FD_UDP, 0);
}

#endif /* PP_UDP_SOCK_H */

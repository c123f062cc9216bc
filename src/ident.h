/*
 * ident.h - socket identity: is a descriptor number still the socket
 * that was recorded for it (ident.c)?  All lock-free.
 */
#ifndef PP_IDENT_H
#define PP_IDENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"

/* The SO_COOKIE of fd, 0 when it has none. */
uint64_t pp_socket_cookie(int fd);

/* Is fd still the socket whose SO_COOKIE is cookie? */
bool pp_same_socket(int fd, uint64_t cookie);

/*
 * Is connection entry info still what fd is?  real/reallen is the real
 * answer of getpeername (peer true) or getsockname (peer false) that
 * the caller just fetched: compared with the recorded real peer or local
 * port, no system call; entries without those fall back to the cookie.
 */
bool pp_conn_matches(int fd, const struct pp_fdinfo *info, bool peer,
		     const struct sockaddr *real, socklen_t reallen);

/* The cookie of connection entry info on fd after checking that fd is
 * still that socket, or 0 (exec hand-over). */
uint64_t pp_conn_cookie(int fd, const struct pp_fdinfo *info);

#endif /* PP_IDENT_H */

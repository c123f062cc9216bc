/*
 * udp.h - the datagram receive path of udp.c, for hook_udp.c.
 */
#ifndef PP_UDP_H
#define PP_UDP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "fdtab.h"

/*
 * Returned by the pp_udp_recv* functions when the descriptor turned out
 * not to be a PROXY-only datagram socket after all (its entry was
 * stale): the hook then makes the caller's own call unchanged.  errno
 * is untouched in that case.
 */
#define PP_UDP_PASS (-2)

/* The size of the thread's buffer: more than any UDP datagram. */
#define PP_UDP_BUF 65536u

/*
 * The thread's 64 KiB buffer for one receive or one reply (a signal
 * handler that interrupted its thread inside one gets the spare beside
 * it, or a mapping of its own); *held says which, for
 * pp_udp_buf_give().  NULL when memory is short.  Async-signal-safe.
 */
uint8_t *pp_udp_buf_take(unsigned *held);

/* Give back what pp_udp_buf_take() returned, with its *held. */
void pp_udp_buf_give(uint8_t *buf, unsigned held);

/*
 * The receive call beneath the datagram path: libc's recvmsg, or, for a
 * 32-bit program built with 64-bit time_t, libc's __recvmsg64 (which
 * rewrites the kernel's timestamps into that program's layout).
 */
typedef ssize_t (*pp_recvmsg_fn)(int fd, struct msghdr *msg, int flags);

/* recvmsg on a PP_FD_UDP socket, receiving through via (libc's recvmsg
 * or __recvmsg64, never NULL): header stripped, advertised source
 * reported, bad datagrams skipped.  -1 with errno, or PP_UDP_PASS. */
ssize_t pp_udp_recvmsg_via(int fd, struct msghdr *msg, int flags,
			   pp_recvmsg_fn via);

/* recvfrom (recv and read too, with addr NULL) on a PP_FD_UDP socket. */
ssize_t pp_udp_recvfrom(int fd, void *buf, size_t len, int flags,
			struct sockaddr *addr, socklen_t *alen);

/*
 * recvmmsg on a PP_FD_UDP socket, each datagram received through via
 * (never NULL): only the good datagrams fill vec.
 * tmo_ns is the timeout in nanoseconds (valid, not negative), replaced
 * by the time left, or NULL: an integer, so that hooks built for either
 * struct timespec layout of a 32-bit target can share this code.
 */
int pp_udp_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		    int64_t *tmo_ns, pp_recvmsg_fn via);

#endif /* PP_UDP_H */

/*
 * udp_reply.h - replies to datagram clients that arrived by SPP: the
 * header prepended to what the program sends (udp_reply.c), for the send
 * hooks of hook_udp.c.
 */
#ifndef PP_UDP_REPLY_H
#define PP_UDP_REPLY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "route.h"

/* The send call beneath: libc's sendmsg or __sendmsg64. */
typedef ssize_t (*pp_sendmsg_fn)(int fd, const struct msghdr *msg, int flags);

/* iovecs on the stack for one datagram with its header: a program's
 * datagram in more buffers than this less one is copied (udp_reply.c). */
#define PP_SPP_IOV 64

/*
 * Send msg on fd through real (never NULL) with the SPP header hdr
 * (PP_SPP_LEN bytes) before its payload, to to/tolen (NULL: the
 * connected peer) instead of msg's name.  The payload is not copied
 * unless it lies in PP_SPP_IOV buffers or more (then into the thread's
 * receive buffer).  Returns what the program's call returns: the
 * payload's length sent, or -1 with errno (EMSGSIZE when the header
 * pushes the datagram past what the socket can send).
 */
ssize_t pp_spp_sendmsg(int fd, const struct msghdr *msg, int flags,
		       const struct sockaddr *to, socklen_t tolen,
		       const uint8_t *hdr, pp_sendmsg_fn real);

/* pp_spp_sendmsg() of buf[0..len) through libc's sendmsg. */
ssize_t pp_spp_send(int fd, const void *buf, size_t len, int flags,
		    const struct sockaddr *to, socklen_t tolen,
		    const uint8_t *hdr);

/*
 * Make h (a copy of a program's message) carry hdr before its payload,
 * its iovecs placed after hdr's in pool[*used..cap), *used advanced.
 * False, h untouched, when they do not fit.
 */
bool pp_spp_wrap(struct msghdr *h, const uint8_t *hdr, struct iovec *pool,
		 size_t *used, size_t cap);

/*
 * Is PROXY-only datagram socket fd connected to a client that arrived
 * by SPP (pp_udp_connected)?  Then hdr (PP_SPP_LEN bytes) is the header
 * its sends carry and true is returned.  Checks that fd is still the
 * socket that connected (one getsockopt), so that a number reused
 * behind the hooks' back never gets a header.  Keeps errno.
 */
bool pp_udp_conn_hdr(int fd, uint8_t *hdr);

/*
 * connect() on PROXY-only datagram socket fd returned ret (its errno
 * set): to the SPP client r describes (NULL: to anything else).  Notes
 * in fd's entry whether its sends carry a header from now on.  Keeps
 * errno.
 */
void pp_udp_connected(int fd, const struct pp_reply *r, int ret);

#endif /* PP_UDP_REPLY_H */

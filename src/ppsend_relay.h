/*
 * ppsend_relay.h - ppsend's exchange once connected: the header sent,
 * then stdin to the server and the server to stdout, or --expect.
 */
#ifndef PS_RELAY_H
#define PS_RELAY_H

#include "ppsend.h"

/*
 * Send the header ps_hdr on the TCP socket fd (in two pieces with
 * --split), after --hexdump; exits with PS_EXIT_CONN on errors.
 */
void ps_send_header(const struct ps_opts *o, int fd);

/*
 * The TCP exchange after the header: stdin to the socket (half-closed at
 * stdin's end), the socket to stdout; with --expect, only the first line
 * counts and the socket is never half-closed.  Returns the exit status.
 */
int ps_relay_tcp(const struct ps_opts *o, int fd);

/*
 * The UDP exchange: each read of stdin becomes one datagram behind the
 * header (one datagram with the header alone when stdin is empty);
 * replies go to stdout.  Ends --timeout after the last activity once
 * stdin is done.  Returns the exit status.
 */
int ps_relay_udp(const struct ps_opts *o, int fd);

#endif

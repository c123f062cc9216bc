/*
 * ppsend_relay.c - ppsend's exchange once connected: the header sent
 * (whole or in two pieces), then stdin to the server and the server's
 * bytes to stdout like netcat, over TCP or as one datagram per read over
 * UDP (an SPP header on a reply decoded to stderr); or, with --expect,
 * the server's first line matched.  A reset, the header echoed back and
 * silence are explained.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "ppsend_addr.h"
#include "ppsend_header.h"
#include "ppsend_relay.h"

#define PS_LINE_MAX 4096 /* longest first line --expect looks at */
#define PS_IO_SIZE 65536
#define PS_UDP_MAX 65507 /* largest UDP payload over IPv4 */

static uint8_t ps_io[PS_IO_SIZE];

/* ===== Time ===== */

static long long
ps_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (never negative), for poll(). */
static int
ps_left(long long deadline)
{
	long long left = deadline - ps_now_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static void
ps_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ===== I/O ===== */

static bool
ps_is_reset(int err)
{
	return err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
}

/* Report a reset; received says whether the server had sent anything. */
static void ps_die_reset(size_t received) __attribute__((noreturn));

static void
ps_die_reset(size_t received)
{
	if (received == 0) {
		ps_msg("connection reset by peer: the server (or ppshim in "
		       "front of it) refused the header");
		ps_msg("is this source trusted there (PP_ALLOW), and does it "
		       "accept this header version (PP_VERSIONS)?");
	} else {
		ps_msg("connection reset by peer after %zu bytes from the "
		       "server",
		       received);
	}
	exit(PS_EXIT_CONN);
}

/*
 * Write p[0..n) whole to fd, a socket when sock (sent without SIGPIPE),
 * waiting for room when it is non-blocking.  Returns 0, or the errno of
 * the write that failed.
 */
static int
ps_put_all(int fd, bool sock, const uint8_t *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t w;

	while (n > 0) {
		w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				poll(&pfd, 1, -1);
				continue;
			}
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Send the header bytes p[0..n) on non-blocking fd; exits on errors. */
static void
ps_send_all(int fd, const uint8_t *p, size_t n)
{
	int err = ps_put_all(fd, true, p, n);

	if (err == 0)
		return;
	if (ps_is_reset(err))
		ps_die_reset(0);
	ps_msg("send: %s", strerror(err));
	exit(PS_EXIT_CONN);
}

/* Write to stdout whole; false when stdout went away. */
static bool
ps_write_out(const uint8_t *p, size_t n)
{
	int err = ps_put_all(STDOUT_FILENO, false, p, n);

	if (err != 0 && err != EPIPE)
		ps_msg("stdout: %s", strerror(err));
	return err == 0;
}

/*
 * Wait on the two descriptors in pfd until deadline (-1: none), again
 * after a signal.  Returns how many are ready, 0 when the time is up, -1
 * after saying why poll failed.
 */
static int
ps_poll2(struct pollfd *pfd, long long deadline)
{
	int rc;

	do {
		rc = poll(pfd, 2, deadline < 0 ? -1 : ps_left(deadline));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		ps_msg("poll: %s", strerror(errno));
	return rc;
}

/*
 * Read what stdin has into buf (cap bytes).  Returns the count, 0 at its
 * end or after an error (said), -1 when there was nothing after all.
 */
static ssize_t
ps_read_stdin(uint8_t *buf, size_t cap)
{
	ssize_t n = read(STDIN_FILENO, buf, cap);

	if (n < 0 && errno != EINTR && errno != EAGAIN) {
		ps_msg("stdin: %s", strerror(errno));
		return 0;
	}
	return n;
}

/*
 * Send the header ps_hdr on the TCP socket fd (in two pieces with
 * --split), after --hexdump; exits with PS_EXIT_CONN on errors.
 */
void
ps_send_header(const struct ps_opts *o, int fd)
{
	if (o->hexdump)
		ps_describe(o, fd);
	if (o->split > 0) {
		ps_send_all(fd, ps_hdr, (size_t)o->split);
		if (o->delay_ms > 0)
			ps_sleep_ms(o->delay_ms);
		ps_send_all(fd, ps_hdr + o->split,
			    ps_hdr_len - (size_t)o->split);
	} else {
		ps_send_all(fd, ps_hdr, ps_hdr_len);
	}
}

/* Whether data starts with the header we sent (n >= ps_hdr_len). */
static bool
ps_echoed(const uint8_t *data, size_t n)
{
	return n >= ps_hdr_len && memcmp(data, ps_hdr, ps_hdr_len) == 0;
}

static void
ps_echo_note(void)
{
	ps_msg("the server sent the PROXY header back: this port is not "
	       "PROXY-only (ppshim not loaded into the server, or PP_PORTS "
	       "does not name this port)");
}

/*
 * Match the first line (line[0..n), without its line ending) against
 * --expect, print it and exit.
 */
static void ps_match_exit(const struct ps_opts *o, char *line, size_t n)
	__attribute__((noreturn));

static void
ps_match_exit(const struct ps_opts *o, char *line, size_t n)
{
	int rc;

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	line[n] = '\0';
	rc = regexec(&o->re, line, 0, NULL, 0);
	ps_write_out((const uint8_t *)line, n);
	ps_write_out((const uint8_t *)"\n", 1);
	if (rc == 0)
		exit(PS_EXIT_OK);
	ps_msg("the first line does not match '%s'", o->expect);
	exit(PS_EXIT_NOMATCH);
}

/* What the server sent so far, for --expect and the echo check. */
struct ps_rx {
	char line[PS_LINE_MAX + 1]; /* the first PS_LINE_MAX bytes */
	size_t line_len;
	uint8_t first[PP_V2_MAX]; /* the first ps_hdr_len bytes */
	size_t received;          /* bytes in all */
	bool echo_checked;
};

static void
ps_rx_add(struct ps_rx *rx, const uint8_t *p, size_t n)
{
	size_t k;

	if (rx->received < ps_hdr_len) {
		k = ps_hdr_len - rx->received;
		memcpy(rx->first + rx->received, p, k < n ? k : n);
	}
	if (rx->line_len < PS_LINE_MAX) {
		k = PS_LINE_MAX - rx->line_len;
		memcpy(rx->line + rx->line_len, p, k < n ? k : n);
		rx->line_len += k < n ? k : n;
	}
	rx->received += n;
}

/* Whether the bytes so far could still be our header coming back. */
static bool
ps_rx_maybe_echo(const struct ps_rx *rx)
{
	return rx->received < ps_hdr_len &&
	       memcmp(rx->first, ps_hdr, rx->received) == 0;
}

/*
 * --expect: decide on the first line when it is complete (or final: the
 * server closed, or the time is up).  Returns only when undecided.
 */
static void
ps_rx_decide(const struct ps_opts *o, struct ps_rx *rx, bool final)
{
	char *nl;

	if (ps_echoed(rx->first, rx->received)) {
		ps_echo_note();
		exit(PS_EXIT_NOMATCH);
	}
	if (!final && ps_rx_maybe_echo(rx))
		return;
	nl = memchr(rx->line, '\n', rx->line_len);
	if (nl != NULL)
		ps_match_exit(o, rx->line, (size_t)(nl - rx->line));
	if (rx->line_len == PS_LINE_MAX || (final && rx->line_len > 0))
		ps_match_exit(o, rx->line, rx->line_len);
}

/*
 * The TCP exchange after the header: stdin to the socket (half-closed at
 * stdin's end), the socket to stdout; with --expect, only the first line
 * counts and the socket is never half-closed.  Returns the exit status.
 */
int
ps_relay_tcp(const struct ps_opts *o, int fd)
{
	static struct ps_rx rx;
	uint8_t *buf = ps_io + PS_IO_SIZE / 2;
	size_t out_len = 0, out_off = 0;
	bool in_open = true, shut = false;
	long long deadline = -1;
	struct pollfd pfd[2];
	ssize_t n;
	int rc;

	if (o->have_expect)
		deadline = ps_now_ms() + o->timeout_ms;
	for (;;) {
		/* Half-close at the end of stdin, as nc -N does; but not for
		 * --expect: a proxy may abort a client that closes before the
		 * server has spoken (HAProxy does when its server connection
		 * is not up yet). */
		if (!in_open && out_len == 0 && !shut && !o->have_expect) {
			shutdown(fd, SHUT_WR);
			shut = true;
			if (o->timeout_set)
				deadline = ps_now_ms() + o->timeout_ms;
		}
		pfd[0].fd = in_open && out_len == 0 ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN | (out_len > 0 ? POLLOUT : 0);
		rc = ps_poll2(pfd, deadline);
		if (rc < 0)
			return PS_EXIT_CONN;
		if (rc == 0) {
			if (!o->have_expect)
				return PS_EXIT_OK;
			ps_rx_decide(o, &rx, true);
			ps_msg("no line from the server within %d ms: does it "
			       "wait for the client to speak first?",
			       o->timeout_ms);
			return PS_EXIT_NOMATCH;
		}
		if (pfd[0].revents & POLLNVAL) {
			in_open = false; /* no stdin at all */
		} else if (pfd[0].revents != 0) {
			n = ps_read_stdin(ps_io, PS_IO_SIZE / 2);
			if (n == 0) {
				in_open = false;
			} else if (n > 0) {
				out_len = (size_t)n;
				out_off = 0;
			}
		}
		if (out_len > 0 && (pfd[1].revents & (POLLOUT | POLLERR))) {
			n = send(fd, ps_io + out_off, out_len, MSG_NOSIGNAL);
			if (n < 0 && ps_is_reset(errno))
				ps_die_reset(rx.received);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				ps_msg("send: %s", strerror(errno));
				return PS_EXIT_CONN;
			}
			if (n > 0) {
				out_off += (size_t)n;
				out_len -= (size_t)n;
			}
		}
		if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(fd, buf, PS_IO_SIZE / 2, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (ps_is_reset(errno))
				ps_die_reset(rx.received);
			ps_msg("recv: %s", strerror(errno));
			return PS_EXIT_CONN;
		}
		ps_rx_add(&rx, buf, (size_t)n);
		if (o->have_expect) {
			ps_rx_decide(o, &rx, n == 0);
			if (n > 0)
				continue;
			ps_msg("the server closed the connection without "
			       "sending a line (a receiver that rejects the "
			       "header may close this way)");
			return PS_EXIT_CONN;
		}
		if (!rx.echo_checked && rx.received >= ps_hdr_len) {
			rx.echo_checked = true;
			if (ps_echoed(rx.first, rx.received))
				ps_echo_note();
		}
		if (n == 0)
			return PS_EXIT_OK;
		if (!ps_write_out(buf, (size_t)n))
			return PS_EXIT_OK;
	}
}

/*
 * A reply on an SPP exchange: when it begins with an SPP header, say
 * what the header holds on stderr and move the payload to the front of
 * p.  Returns the payload's length (n when there is no header).
 */
static size_t
ps_spp_reply(uint8_t *p, size_t n)
{
	union pp_sockaddr c, x;
	struct pp_spp h;
	char sc[PS_ADDRSTRLEN], sx[PS_ADDRSTRLEN];

	if (!pp_parse_spp(p, n, &h)) {
		fprintf(stderr,
			"ppsend: reply without an SPP header (%zu "
			"bytes)\n",
			n);
		return n;
	}
	memset(&c, 0, sizeof(c));
	memset(&x, 0, sizeof(x));
	(void)pp_spp_inet(h.client, h.cport, &c.sa);
	(void)pp_spp_inet(h.proxy, h.pport, &x.sa);
	fprintf(stderr, "ppsend: reply SPP header: client %s proxy %s\n",
		ps_fmt_addr(&c, sc, sizeof(sc)),
		ps_fmt_addr(&x, sx, sizeof(sx)));
	memmove(p, p + PP_SPP_LEN, n - PP_SPP_LEN);
	return n - PP_SPP_LEN;
}

/*
 * The UDP exchange: each read of stdin becomes one datagram behind the
 * header (one datagram with the header alone when stdin is empty);
 * replies go to stdout.  Ends --timeout after the last activity once
 * stdin is done.  Returns the exit status.
 */
int
ps_relay_udp(const struct ps_opts *o, int fd)
{
	static uint8_t dgram[PS_UDP_MAX];
	size_t room = PS_UDP_MAX > ps_hdr_len ? PS_UDP_MAX - ps_hdr_len : 0;
	bool in_open = true, sent = false;
	long long deadline = -1;
	unsigned long replies = 0;
	struct pollfd pfd[2];
	ssize_t n;
	int rc;

	if (room == 0) {
		ps_msg("the header (%zu bytes) leaves no room in a datagram",
		       ps_hdr_len);
		return EX_USAGE;
	}
	memcpy(dgram, ps_hdr, ps_hdr_len);
	if (o->hexdump)
		ps_describe(o, fd);
	for (;;) {
		pfd[0].fd = in_open ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN;
		rc = ps_poll2(pfd, deadline);
		if (rc < 0)
			return PS_EXIT_CONN;
		if (rc == 0) {
			if (replies > 0)
				return o->have_expect ? PS_EXIT_NOMATCH
						      : PS_EXIT_OK;
			ps_msg("no reply within %d ms: the datagram was "
			       "dropped (a source not in PP_ALLOW, or a bad "
			       "header), or nothing answers there",
			       o->timeout_ms);
			return o->have_expect ? PS_EXIT_NOMATCH : PS_EXIT_CONN;
		}
		if (pfd[0].revents != 0) {
			n = ps_read_stdin(dgram + ps_hdr_len, room);
			if (n == 0) {
				in_open = false;
				deadline = ps_now_ms() + o->timeout_ms;
			}
			if (n > 0 || (n == 0 && !sent)) {
				if (send(fd, dgram, ps_hdr_len + (size_t)n, 0) <
				    0) {
					if (errno == ECONNREFUSED)
						goto unreachable;
					ps_msg("send: %s", strerror(errno));
					return PS_EXIT_CONN;
				}
				sent = true;
				if (!in_open)
					deadline = ps_now_ms() + o->timeout_ms;
			}
		}
		if (!(pfd[1].revents & (POLLIN | POLLERR)))
			continue;
		n = recv(fd, ps_io, sizeof(ps_io), 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNREFUSED)
				goto unreachable;
			ps_msg("recv: %s", strerror(errno));
			return PS_EXIT_CONN;
		}
		replies++;
		if (!in_open)
			deadline = ps_now_ms() + o->timeout_ms;
		if (o->spp)
			n = (ssize_t)ps_spp_reply(ps_io, (size_t)n);
		if (ps_echoed(ps_io, (size_t)n)) {
			ps_echo_note();
			if (o->have_expect)
				return PS_EXIT_NOMATCH;
		}
		if (o->have_expect) {
			char *line = (char *)ps_io;
			size_t len = 0;

			while (len < (size_t)n && len < PS_LINE_MAX &&
			       ps_io[len] != '\n')
				len++;
			ps_match_exit(o, line, len);
		}
		if (!ps_write_out(ps_io, (size_t)n))
			return PS_EXIT_OK;
	}
unreachable:
	ps_msg("port unreachable: nothing listens on UDP %s port %s", o->host,
	       o->port);
	return PS_EXIT_CONN;
}

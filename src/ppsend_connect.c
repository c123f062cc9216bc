/*
 * ppsend_connect.c - ppsend's connection to HOST PORT: each address HOST
 * resolves to in turn, from --bind when given, within --timeout each;
 * why each one failed is said only when all of them did.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ppsend_addr.h"
#include "ppsend_connect.h"

/* Why each address of HOST failed, printed only when all of them did. */
static char ps_failures[2048];

/* Add the line fmt says, and a newline, to ps_failures while it fits. */
static void ps_note_failure(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
ps_note_failure(const char *fmt, ...)
{
	size_t n = strlen(ps_failures);
	va_list ap;

	if (n + 1 >= sizeof(ps_failures))
		return;
	va_start(ap, fmt);
	vsnprintf(ps_failures + n, sizeof(ps_failures) - n, fmt, ap);
	va_end(ap);
	n = strlen(ps_failures);
	if (n + 1 < sizeof(ps_failures))
		strcpy(ps_failures + n, "\n");
}

/* Connect fd to ai within timeout_ms; 0, or -1 with errno set. */
static int
ps_connect_one(int fd, const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len;
	int rc, err;

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	do {
		rc = poll(&pfd, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	err = 0;
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

/*
 * A socket of type stype connected to o->host, o->port, from o->bind
 * when given, within o->timeout_ms per address, trying each address of
 * HOST in turn.  Non-blocking on return.  Exits with PS_EXIT_CONN (after
 * saying why for each address) when none works.
 */
int
ps_connect(const struct ps_opts *o, int stype)
{
	struct addrinfo hints, *res, *ai;
	char where[PS_ADDRSTRLEN], b[PS_ADDRSTRLEN];
	union pp_sockaddr peer;
	int fd = -1, rc, err, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = stype;
	hints.ai_family = o->have_bind ? o->bind.sa.sa_family : AF_UNSPEC;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		ps_msg("%s port %s: %s%s", o->host, o->port,
		       rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc),
		       o->have_bind ? " (looking for an address in the family "
				      "of --bind)"
				    : "");
		exit(PS_EXIT_CONN);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		memset(&peer, 0, sizeof(peer));
		memcpy(&peer, ai->ai_addr, ai->ai_addrlen);
		ps_fmt_addr(&peer, where, sizeof(where));
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			ps_note_failure("  socket for %s: %s", where,
					strerror(errno));
			continue;
		}
		if (o->have_bind) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				   sizeof(one));
			if (bind(fd, &o->bind.sa, ps_salen(&o->bind)) != 0) {
				ps_msg("--bind %s: %s",
				       ps_fmt_addr(&o->bind, b, sizeof(b)),
				       strerror(errno));
				exit(PS_EXIT_CONN);
			}
		}
		if (stype == SOCK_STREAM)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		if (ps_connect_one(fd, ai, o->timeout_ms) == 0)
			break;
		err = errno;
		ps_note_failure("  connect to %s: %s%s", where, strerror(err),
				err == ECONNREFUSED ? " (nothing listens there)"
				: err == ETIMEDOUT ? " (no answer: a firewall?)"
						   : "");
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "ppsend: cannot connect to %s port %s:\n%s",
			o->host, o->port, ps_failures);
		exit(PS_EXIT_CONN);
	}
	return fd;
}

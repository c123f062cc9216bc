/*
 * whoami: a per-connection program, as inetd, xinetd, tcpserver and
 * systemd (Accept=yes) run them: the connection is on fds 0 and 1 (or on
 * the one descriptor given with -f, the LISTEN_FDS way).
 *
 * It knows nothing about the PROXY protocol.  It writes one line to the
 * connection saying what getpeername() and getsockname() report and what
 * the launcher left in the environment ('-' for an unset variable):
 *
 *   whoami peer=192.0.2.1:5000 sock=198.51.100.7:25 TCPREMOTEIP=...
 *          TCPREMOTEPORT=... TCPLOCALIP=... TCPLOCALPORT=...
 *          TCPREMOTEHOST=... TCPREMOTEINFO=... REMOTE_HOST=...
 *          PP_TLV_AUTHORITY=... PP_TLV_ALPN=... PP_TLV_UNIQUE_ID=...
 *          PP_TLV_SSL_CN=... PPSHIM_HANDOVER=...
 *
 * (one line, wrapped here), then exits.  Options:
 *   -r     the client speaks first: read one line (byte by byte, so that
 *          nothing after it is consumed) before answering, and send that
 *          line back after the report;
 *   -e     after the report, echo every byte until EOF;
 *   -f FD  use FD instead of 0 (reading) and 1 (writing).
 *
 * stderr is left alone: under inetd it may be the connection too.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tutil.h"

#define LINE_SIZE 16384
#define IO_SIZE 65536

static const char *const vars[] = {
	"TCPREMOTEIP",      "TCPREMOTEPORT",    "TCPLOCALIP",
	"TCPLOCALPORT",     "TCPREMOTEHOST",    "TCPREMOTEINFO",
	"REMOTE_HOST",      "PP_TLV_AUTHORITY", "PP_TLV_ALPN",
	"PP_TLV_UNIQUE_ID", "PP_TLV_SSL_CN",
};

static void
usage(void)
{
	fprintf(stderr, "usage: whoami [-r] [-e] [-f FD]\n");
	exit(2);
}

/* Append " NAME=value" (blanks in the value made '_') to line. */
static void
append_var(char *line, size_t cap, const char *name, const char *value)
{
	size_t len = strlen(line), i;

	if (value == NULL)
		value = "-";
	snprintf(line + len, cap - len, " %s=%s", name, value);
	for (i = len + 1 + strlen(name) + 1; line[i] != '\0'; i++)
		if (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' ||
		    line[i] == '\r')
			line[i] = '_';
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage peer, sock;
	socklen_t peerlen = sizeof(peer), socklen = sizeof(sock);
	char line[LINE_SIZE], first[LINE_SIZE], addr[256];
	static char io[IO_SIZE];
	bool client_first = false, echo = false;
	int in = 0, out = 1, c;
	size_t firstlen = 0, i;
	ssize_t n;

	while ((c = getopt(argc, argv, "ref:")) != -1) {
		switch (c) {
		case 'r':
			client_first = true;
			break;
		case 'e':
			echo = true;
			break;
		case 'f':
			in = out = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (client_first)
		firstlen = tu_read_line(in, first, sizeof(first));

	if (getpeername(in, (struct sockaddr *)&peer, &peerlen) != 0)
		peerlen = 0;
	if (getsockname(in, (struct sockaddr *)&sock, &socklen) != 0)
		socklen = 0;
	snprintf(line, sizeof(line), "whoami");
	tu_fmt_addr(&peer, peerlen, addr, sizeof(addr));
	append_var(line, sizeof(line), "peer", addr);
	tu_fmt_addr(&sock, socklen, addr, sizeof(addr));
	append_var(line, sizeof(line), "sock", addr);
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		append_var(line, sizeof(line), vars[i], getenv(vars[i]));
	append_var(line, sizeof(line), "PPSHIM_HANDOVER",
		   getenv("PPSHIM_HANDOVER"));
	strncat(line, "\n", sizeof(line) - strlen(line) - 1);

	if (!tu_write_all(out, line, strlen(line)) ||
	    !tu_write_all(out, first, firstlen))
		return 1;
	while (echo) {
		n = read(in, io, sizeof(io));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || !tu_write_all(out, io, (size_t)n))
			break;
	}
	return 0;
}

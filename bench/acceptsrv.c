/*
 * acceptsrv - a blocking accept server with several accepting threads or
 * processes, for accept throughput under the shim against a server that
 * reads the PROXY header itself.
 *
 * Every thread (-j, default 1) of every process (-f, default 1: no
 * fork; N: N children share the listener, a prefork group) loops on a
 * blocking accept() of the one listener, reads the request up to its
 * blank line, answers "HTTP/1.0 200 OK" with a 2-byte body and closes.
 * With -n the first bytes must be a PROXY header (v1 or v2), which it
 * parses with the core library's pp_parse_buf() and skips, as a server
 * with PROXY support of its own does; without -n (under the shim) the
 * stream starts with the request.
 *
 * Usage: acceptsrv -p PORT [-l ADDR] [-j THREADS] [-f PROCS] [-n]
 *        [-d SECONDS]   (stops after -d, 900 by default)
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pp_parse.h"
#include "target.h"

#define AS_MAX_THREADS 256
#define AS_BUF 2048
#define AS_REPLY "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"

static int lfd, secs = 900;
static bool native;

/* Serve one connection: header (with -n), request, reply. */
static void
as_serve(int fd)
{
	char buf[AS_BUF];
	struct pp_header h;
	enum pp_err err;
	size_t have = 0, skip = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		if (native && skip == 0) {
			if (pp_parse_buf(buf, have, PP_ACCEPT_V1 | PP_ACCEPT_V2,
					 &h, &err, NULL, 0) != PP_DONE) {
				if (have < 16)
					continue;
				return;
			}
			skip = h.len;
		}
		if (strstr(buf + skip, "\r\n\r\n") != NULL)
			break;
		if (have == sizeof(buf) - 1)
			return;
	}
	(void)write(fd, AS_REPLY, sizeof(AS_REPLY) - 1);
}

static void *
as_loop(void *arg)
{
	int fd;

	(void)arg;
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EAGAIN)
				continue;
			perror("acceptsrv: accept");
			exit(1);
		}
		as_serve(fd);
		close(fd);
	}
	return NULL;
}

/* One process: threads - 1 more threads, then this one. */
static void
as_process(int threads)
{
	pthread_t t;
	int i;

	alarm((unsigned)secs);
	for (i = 1; i < threads; i++)
		if (pthread_create(&t, NULL, as_loop, NULL) != 0) {
			fprintf(stderr, "acceptsrv: cannot start a thread\n");
			exit(1);
		}
	as_loop(NULL);
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	struct sockaddr_in sin;
	int c, i, port = 0, threads = 1, procs = 1, one = 1;

	while ((c = getopt(argc, argv, "l:p:j:f:nd:")) != -1) {
		switch (c) {
		case 'l':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'j':
			threads = atoi(optarg);
			break;
		case 'f':
			procs = atoi(optarg);
			break;
		case 'n':
			native = true;
			break;
		case 'd':
			secs = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (!bt_sockaddr(addr, port, &sin) || threads < 1 ||
	    threads > AS_MAX_THREADS || procs < 1 || procs > AS_MAX_THREADS ||
	    secs <= 0)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 4096) != 0) {
		perror("acceptsrv: listener");
		return 1;
	}
	if (procs == 1)
		as_process(threads);
	for (i = 0; i < procs; i++)
		if (fork() == 0) {
			(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
			as_process(threads);
			_exit(0);
		}
	/* The children end at their alarm, or with this process. */
	alarm((unsigned)secs);
	for (i = 0; i < procs; i++)
		(void)wait(NULL);
	return 0;
usage:
	fprintf(stderr, "usage: acceptsrv -p PORT [-l ADDR] [-j THREADS] "
			"[-f PROCS] [-n] [-d SECONDS]\n");
	return 64;
}

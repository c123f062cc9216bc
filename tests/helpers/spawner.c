/*
 * spawner: a program that starts children while it holds proxied
 * connections, run under LD_PRELOAD by the integration tests.
 *
 *   spawner -m MODE PROGRAM
 *
 * A per-connection service (inetd style: the connection on fds 0 and
 * 1), started with PP_INHERIT=1.  It starts PROGRAM once with its
 * connection on 0 and 1 by MODE:
 *
 *   system       system(PROGRAM): libc's own spawn, through /bin/sh;
 *   popen        popen(PROGRAM, "r"): the child's stdout is a pipe, whose
 *                content spawner copies to the connection;
 *   posix_spawn  posix_spawn(PROGRAM) without file actions;
 *   execve       fork, then execve(PROGRAM, environ) in the child;
 *
 * waits for it, then runs system("true"), reads the connection to EOF
 * and writes one line:
 *
 *   spawner true=STATUS read=N sum=HEX
 *
 * (STATUS system's return value, N the bytes read, HEX their 32-bit
 * FNV-1a) and exits 0.
 *
 *   spawner -s -p PORT -d a|b PROGRAM
 *
 * A server on 127.0.0.1:PORT (printing "listening port=N").  Per round
 * it accepts three connections, names them a, b and c by the port their
 * getpeername reports (lowest first), makes a close-on-exec, and
 * posix_spawns PROGRAM with the file actions dup2(X, 0), dup2(X, 1),
 * close(c), X the one -d names; prints "round a=FD b=FD c=FD" on stdout,
 * waits for the child and closes the three.
 *
 * stderr is left alone in the first form: it is the connection too.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tutil.h"

extern char **environ;

static void
wait_for(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* Start prog on the connection by mode; returns false on an error. */
static bool
run_child(const char *mode, char *prog)
{
	char *argv[] = { prog, NULL };
	char buf[16384];
	FILE *f;
	size_t n;
	pid_t pid;

	if (strcmp(mode, "system") == 0)
		return system(prog) != -1;
	if (strcmp(mode, "popen") == 0) {
		f = popen(prog, "r");
		if (f == NULL)
			return false;
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			if (!tu_write_all(1, buf, n))
				break;
		return pclose(f) != -1;
	}
	if (strcmp(mode, "posix_spawn") == 0) {
		if (posix_spawn(&pid, prog, NULL, NULL, argv, environ) != 0)
			return false;
		wait_for(pid);
		return true;
	}
	if (strcmp(mode, "execve") == 0) {
		pid = fork();
		if (pid < 0)
			return false;
		if (pid == 0) {
			execve(prog, argv, environ);
			_exit(127);
		}
		wait_for(pid);
		return true;
	}
	return false;
}

static int
service(const char *mode, char *prog)
{
	char buf[65536], line[128];
	uint32_t sum = 2166136261u;
	unsigned long long total = 0;
	ssize_t n, i;
	int rc;

	if (!run_child(mode, prog))
		return 1;
	rc = system("true");
	for (;;) {
		n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			sum ^= (uint8_t)buf[i];
			sum *= 16777619u;
		}
		total += (unsigned long long)n;
	}
	snprintf(line, sizeof(line), "spawner true=%d read=%llu sum=%08x\n", rc,
		 total, sum);
	return tu_write_all(1, line, strlen(line)) ? 0 : 1;
}

static int
peer_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int
server(int port, char which, char *prog)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { prog, NULL };
	int lfd, c[3], p[3], i, j, t, x;
	pid_t pid;

	lfd = tu_listen_inet("127.0.0.1", port, 0, &port);
	if (lfd < 0) {
		perror("spawner: listen");
		return 1;
	}
	tu_out("listening port=%d", port);
	for (;;) {
		for (i = 0; i < 3; i++) {
			c[i] = accept(lfd, NULL, NULL);
			if (c[i] < 0) {
				perror("spawner: accept");
				return 1;
			}
			p[i] = peer_port(c[i]);
		}
		for (i = 1; i < 3; i++)
			for (j = i; j > 0 && p[j - 1] > p[j]; j--) {
				t = p[j];
				p[j] = p[j - 1];
				p[j - 1] = t;
				t = c[j];
				c[j] = c[j - 1];
				c[j - 1] = t;
			}
		fcntl(c[0], F_SETFD, FD_CLOEXEC);
		x = which == 'a' ? c[0] : c[1];
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, x, 0);
		posix_spawn_file_actions_adddup2(&fa, x, 1);
		posix_spawn_file_actions_addclose(&fa, c[2]);
		tu_out("round a=%d b=%d c=%d", c[0], c[1], c[2]);
		if (posix_spawn(&pid, prog, &fa, NULL, argv, environ) == 0)
			wait_for(pid);
		else
			perror("spawner: posix_spawn");
		posix_spawn_file_actions_destroy(&fa);
		for (i = 0; i < 3; i++)
			close(c[i]);
	}
}

int
main(int argc, char **argv)
{
	const char *mode = NULL;
	bool srv = false;
	int port = 0, c;
	char which = 'b';

	while ((c = getopt(argc, argv, "m:sp:d:")) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 's':
			srv = true;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'd':
			which = optarg[0];
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 1 || (!srv && mode == NULL))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if (srv)
		return server(port, which, argv[optind]);
	return service(mode, argv[optind]);
}

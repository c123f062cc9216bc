/*
 * vforkclose.c - a server that accepts one connection on 127.0.0.1:PORT,
 * then vforks a child that closes the connection's descriptor (and
 * everything from 3 up) before it exits, the way a spawner cleans up
 * before exec.  The child shares the parent's memory: it must not take
 * the parent's advertised addresses with it.  Prints "listening", then
 * "peer ADDR:PORT" as getpeername reports it after the child is gone.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET }, peer;
	socklen_t len = sizeof(peer);
	char text[INET_ADDRSTRLEN];
	int one = 1, s, c;
	pid_t pid;

	if (argc != 2)
		return 64;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(s, 4) != 0)
		return 2;
	printf("listening\n");
	fflush(stdout);
	c = accept(s, NULL, NULL);
	if (c < 0)
		return 2;
	pid = vfork();
	if (pid == 0) {
		close(c);
		close_range(3, ~0U, 0);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, NULL, 0) != pid)
		return 2;
	if (getpeername(c, (struct sockaddr *)&peer, &len) != 0)
		return 2;
	printf("peer %s:%u\n",
	       inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text)),
	       ntohs(peer.sin_port));
	return 0;
}

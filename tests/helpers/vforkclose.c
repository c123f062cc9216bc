/*
 * vforkclose.c - a server that accepts one connection on 127.0.0.1:PORT,
 * then vforks a child that closes the connection's descriptor (and
 * everything from 3 up) before it exits, the way a spawner cleans up
 * before exec.  The child shares the parent's memory: it must not take
 * the parent's advertised addresses with it.  Prints "listening", then
 * "peer ADDR:PORT" as getpeername reports it after the child is gone.
 */
#include "config.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tutil.h"

int
main(int argc, char **argv)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	char text[INET6_ADDRSTRLEN + 16];
	int s, c;
	pid_t pid;

	if (argc != 2)
		return 64;
	s = tu_listen_inet("127.0.0.1", atoi(argv[1]), 0, NULL);
	if (s < 0)
		return 2;
	tu_out("listening");
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
	tu_fmt_addr(&peer, len, text, sizeof(text));
	tu_out("peer %s", text);
	return 0;
}

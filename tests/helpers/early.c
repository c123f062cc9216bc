/*
 * early.c - a library whose constructor uses sockets before ppshim's
 * constructor has run (libcap's constructor calls close in vsftpd; any
 * library may accept or read in its own).  Preloaded after libppshim.so
 * (LD_PRELOAD=libppshim.so:libearly.so), its constructor runs first and
 * its calls already reach ppshim's hooks.
 *
 * With EARLY_PORT set, the constructor listens on 127.0.0.1:EARLY_PORT,
 * prints "early listening", accepts one connection and prints what
 * accept and getpeername report ("early peer=A:P name=A:P"), then lets
 * the program run.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((constructor)) static void
early_init(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET }, peer, name;
	socklen_t plen = sizeof(peer), nlen = sizeof(name);
	const char *port = getenv("EARLY_PORT");
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	int one = 1, s, c;

	close(dup(2)); /* what libcap's constructor does, more or less */
	if (port == NULL)
		return;
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)atoi(port));
	if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(s, 8) != 0) {
		perror("early: listen");
		exit(2);
	}
	printf("early listening\n");
	fflush(stdout);
	c = accept(s, (struct sockaddr *)&peer, &plen);
	if (c < 0 || getpeername(c, (struct sockaddr *)&name, &nlen) != 0) {
		perror("early: accept");
		exit(2);
	}
	printf("early peer=%s:%u name=%s:%u\n",
	       inet_ntop(AF_INET, &peer.sin_addr, a, sizeof(a)),
	       ntohs(peer.sin_port),
	       inet_ntop(AF_INET, &name.sin_addr, b, sizeof(b)),
	       ntohs(name.sin_port));
	fflush(stdout);
	close(c);
	close(s);
}

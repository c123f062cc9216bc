/*
 * fdgrow - the memory a process's descriptor table costs under the shim:
 * one PROXY-only listener, duplicated (dup2) onto ever higher numbers,
 * and the process's resident and virtual size after each.
 *
 * The listener is made known to the shim by one non-blocking accept
 * (the shim classifies a listener at its first accept); dup2 then gives
 * the new number the listener's entry.  Run it with and without the
 * preload (PP_PORTS naming the port) to see what the table adds.
 *
 * Usage: fdgrow -p PORT FD...   (as root the descriptor limit is raised
 * to the kernel's nr_open; otherwise to the hard limit)
 * Prints "FDGROW fd=N rss_kb=R vsz_kb=V" before the first dup2 (fd=-1,
 * twice: the first includes stdio's buffer) and after each.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* VmRSS and VmSize of this process, in kB. */
static void
fg_report(int fd)
{
	char line[256];
	long rss = -1, vsz = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			rss = atol(line + 6);
		else if (strncmp(line, "VmSize:", 7) == 0)
			vsz = atol(line + 7);
	}
	fclose(f);
	printf("FDGROW fd=%d rss_kb=%ld vsz_kb=%ld\n", fd, rss, vsz);
}

/* Raise the descriptor limit as far as it goes. */
static void
fg_raise(void)
{
	struct rlimit rl;
	long max = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");

	if (f != NULL) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (max > 0 && (rlim_t)max > rl.rlim_max) {
		struct rlimit up = { (rlim_t)max, (rlim_t)max };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	int c, i, fd, lfd, port = 0, one = 1;

	while ((c = getopt(argc, argv, "p:")) != -1) {
		if (c != 'p')
			goto usage;
		port = atoi(optarg);
	}
	if (port <= 0 || port > 65535 || optind >= argc)
		goto usage;
	fg_raise();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 16) != 0) {
		perror("fdgrow: listener");
		return 1;
	}
	(void)accept(lfd, NULL, NULL); /* EAGAIN; classifies the listener */
	fflush(stdout);
	fg_report(-1); /* once for stdio's own buffers */
	fflush(stdout);
	fg_report(-1);
	for (i = optind; i < argc; i++) {
		fd = atoi(argv[i]);
		if (dup2(lfd, fd) != fd) {
			fprintf(stderr, "fdgrow: dup2 onto %d: ", fd);
			perror(NULL);
			continue;
		}
		fg_report(fd);
	}
	fflush(stdout);
	return 0;
usage:
	fprintf(stderr, "usage: fdgrow -p PORT FD...\n");
	return 64;
}

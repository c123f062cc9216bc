/*
 * holdconn - many idle keep-alive connections held open on one server,
 * for the server's memory with and without the shim.
 *
 * Opens N connections one after the other; on each it sends a PROXY v2
 * header (unless /none) and one HTTP/1.1 keep-alive request, reads the
 * answer, and keeps the connection open.  Then prints "HELD n=N" and
 * waits until killed (or -d seconds).  Sources are bound round-robin to
 * 127.1.0.1.. like loadgen's, so that 10,000 and more fit in the
 * ephemeral ports.
 *
 * Usage: holdconn -t PORT[/v2|none] -n N [-d SECONDS]
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pp_parse.h"
#include "target.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HC_REQUEST "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
#define HC_SOURCES 64

/* One connection, its request answered; -1 on failure. */
static int
hc_open(const struct sockaddr_in *to, int i, int v2)
{
	char buf[512];
	struct pp_header h;
	struct sockaddr_in src;
	size_t n = 0;
	ssize_t r;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7F010001u + (uint32_t)i % HC_SOURCES);
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			 sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
	    connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0)
		goto fail;
	if (v2) {
		memset(&h, 0, sizeof(h));
		h.version = 2;
		h.command = PP_CMD_PROXY;
		h.family = PP_FAM_INET;
		h.transport = PP_TP_STREAM;
		h.src.sin.sin_family = AF_INET;
		h.src.sin.sin_addr.s_addr = htonl(0x0A000001u + (uint32_t)i);
		h.src.sin.sin_port = htons((uint16_t)(1024 + i % 60000));
		h.srclen = sizeof(h.src.sin);
		h.dst.sin = *to;
		h.dstlen = sizeof(h.dst.sin);
		n = pp_encode_v2(&h, false, (uint8_t *)buf, sizeof(buf));
	}
	memcpy(buf + n, HC_REQUEST, sizeof(HC_REQUEST) - 1);
	n += sizeof(HC_REQUEST) - 1;
	if (write(fd, buf, n) != (ssize_t)n)
		goto fail;
	r = read(fd, buf, sizeof(buf) - 1);
	if (r <= 0)
		goto fail;
	buf[r] = '\0';
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in to;
	struct rlimit rl;
	char *slash;
	int c, i, n = 0, held = 0, failed = 0, v2 = 1, port = 0, secs = 900;

	while ((c = getopt(argc, argv, "t:n:d:")) != -1) {
		switch (c) {
		case 't':
			port = atoi(optarg);
			slash = strchr(optarg, '/');
			v2 = slash == NULL || strcmp(slash, "/none") != 0;
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'd':
			secs = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (!bt_sockaddr("127.0.0.1", port, &to) || n <= 0 || secs <= 0)
		goto usage;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (i = 0; i < n; i++) {
		if (hc_open(&to, i, v2) >= 0)
			held++;
		else if (++failed > 100) {
			fprintf(stderr, "holdconn: %s after %d\n",
				strerror(errno), held);
			break;
		}
	}
	printf("HELD n=%d failed=%d\n", held, failed);
	fflush(stdout);
	sleep((unsigned)secs);
	return 0;
usage:
	fprintf(stderr, "usage: holdconn -t PORT[/v2|none] -n N "
			"[-d SECONDS]\n");
	return 64;
}

/*
 * udpecho - the smallest UDP echo server: each datagram goes back to its
 * sender, byte for byte.  Nothing is printed per datagram, so the
 * benchmark measures the receive and send path, not a terminal.
 *
 * It knows nothing about PROXY headers: under libppshim.so with the port
 * in PP_PORTS (/udp) the header is stripped before it sees the datagram,
 * and its reply to the advertised source is routed to the proxy.
 *
 * With -n it is instead a server with PROXY support of its own, the
 * reference the shim is measured against: every datagram must begin with
 * a v2 header, which it parses (the core library's parser, as a server
 * linking a PROXY library would) and strips, dropping datagrams without
 * one, and it replies to the proxy, which is the real sender.
 *
 * Usage: udpecho [-l ADDR] -p PORT [-m recvfrom|recvmsg|mmsg] [-n] [-d SEC]
 *   -m recvfrom  recvfrom + sendto (default)
 *      recvmsg   recvmsg + sendmsg
 *      mmsg      recvmmsg (up to 16, MSG_WAITFORONE) + sendmmsg
 *   -n  native PROXY support, as above (recvfrom mode only)
 *   -d  exit after SEC seconds (default 900), so it never outlives a run
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pp_parse.h"

#define UE_BATCH 16
#define UE_MAX 2048

enum ue_mode { UE_RECVFROM, UE_RECVMSG, UE_MMSG };

static void
ue_recvfrom(int fd, bool native)
{
	struct sockaddr_storage ss;
	struct pp_header h;
	char buf[UE_MAX];
	socklen_t sl;
	size_t off = 0;
	ssize_t n;

	for (;;) {
		sl = sizeof(ss);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss,
			     &sl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recvfrom");
			return;
		}
		if (native) {
			if (pp_parse_buf(buf, (size_t)n, PP_ACCEPT_V2, &h, NULL,
					 NULL, 0) != PP_DONE)
				continue;
			off = h.len;
		}
		(void)sendto(fd, buf + off, (size_t)n - off, 0,
			     (struct sockaddr *)&ss, sl);
	}
}

static void
ue_recvmsg(int fd)
{
	struct sockaddr_storage ss;
	char buf[UE_MAX];
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	for (;;) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		mh.msg_name = &ss;
		mh.msg_namelen = sizeof(ss);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		n = recvmsg(fd, &mh, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recvmsg");
			return;
		}
		iov.iov_len = (size_t)n;
		(void)sendmsg(fd, &mh, 0);
	}
}

static void
ue_mmsg(int fd)
{
	static char bufs[UE_BATCH][UE_MAX];
	struct sockaddr_storage ss[UE_BATCH];
	struct mmsghdr mm[UE_BATCH];
	struct iovec iov[UE_BATCH];
	int i, n;

	for (;;) {
		memset(mm, 0, sizeof(mm));
		for (i = 0; i < UE_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = UE_MAX;
			mm[i].msg_hdr.msg_name = &ss[i];
			mm[i].msg_hdr.msg_namelen = sizeof(ss[i]);
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, mm, UE_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recvmmsg");
			return;
		}
		for (i = 0; i < n; i++)
			iov[i].iov_len = mm[i].msg_len;
		(void)sendmmsg(fd, mm, (unsigned)n, 0);
	}
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	enum ue_mode mode = UE_RECVFROM;
	struct sockaddr_in sin;
	int c, fd, port = 0, secs = 900;
	bool native = false;

	while ((c = getopt(argc, argv, "l:p:m:nd:")) != -1) {
		switch (c) {
		case 'l':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'm':
			if (strcmp(optarg, "recvfrom") == 0)
				mode = UE_RECVFROM;
			else if (strcmp(optarg, "recvmsg") == 0)
				mode = UE_RECVMSG;
			else if (strcmp(optarg, "mmsg") == 0)
				mode = UE_MMSG;
			else
				goto usage;
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
	if (port <= 0 || port > 65535 || secs <= 0 ||
	    (native && mode != UE_RECVFROM))
		goto usage;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		goto usage;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		perror("bind");
		return 1;
	}
	alarm((unsigned)secs);
	printf("listening %s:%d\n", addr, port);
	fflush(stdout);
	switch (mode) {
	case UE_RECVFROM:
		ue_recvfrom(fd, native);
		break;
	case UE_RECVMSG:
		ue_recvmsg(fd);
		break;
	case UE_MMSG:
		ue_mmsg(fd);
		break;
	}
	return 1;
usage:
	fprintf(stderr, "usage: udpecho [-l ADDR] -p PORT "
			"[-m recvfrom|recvmsg|mmsg] [-n] [-d SEC]\n");
	return 64;
}

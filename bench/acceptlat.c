/*
 * acceptlat - an event-loop HTTP server that times every accept4() call.
 *
 * One thread, epoll, a non-blocking listener.  When the listener is
 * readable it calls accept4 until EAGAIN, timing each call; connections
 * are read until the end of the request headers, answered "ok" and
 * closed.  Connections idle for 10 s are closed.  After -d seconds it
 * prints the distribution of the accept4 durations and exits.
 *
 * Run under libppshim.so with the port in PP_PORTS, it shows whether the
 * shim ever makes accept wait (for a silent or trickling client, say):
 * on a non-blocking listener every call must return at once.
 *
 * Usage: acceptlat [-l ADDR] -p PORT [-d SEC]
 * Prints "listening ADDR:PORT" once ready, and at the end one line
 *   ACCEPT calls=N accepted=N eagain=N p50_us=.. p99_us=.. p999_us=..
 *          max_us=.. over_1ms=N over_10ms=N over_100ms=N served=N
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bstat.h"

#define AL_MAXFD 65536
#define AL_IDLE_NS (10LL * 1000000000)
#define AL_RESPONSE                                                            \
	"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "      \
	"2\r\n\r\nok"

struct al_conn {
	int64_t last;
	uint32_t tail; /* the last 4 bytes read */
	bool open;
};

static struct al_conn conns[AL_MAXFD];
static double *durs;
static size_t ndurs, capdurs;

static void
al_record(double us)
{
	double *n;

	if (ndurs == capdurs) {
		capdurs = capdurs ? capdurs * 2 : 1 << 16;
		n = realloc(durs, capdurs * sizeof(*n));
		if (n == NULL) {
			perror("realloc");
			exit(1);
		}
		durs = n;
	}
	durs[ndurs++] = us;
}

static void
al_close(int fd)
{
	conns[fd].open = false;
	close(fd);
}

/* Read what fd has; answer and close at the end of the headers. */
static bool
al_read(int fd)
{
	char buf[4096];
	ssize_t n, i;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			conns[fd].last = bs_now_ns();
			for (i = 0; i < n; i++)
				conns[fd].tail =
					conns[fd].tail << 8 | (uint8_t)buf[i];
			if (conns[fd].tail == 0x0D0A0D0Au) {
				(void)write(fd, AL_RESPONSE,
					    sizeof(AL_RESPONSE) - 1);
				al_close(fd);
				return true;
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return false;
		al_close(fd);
		return false;
	}
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	struct epoll_event ev, evs[64];
	struct sockaddr_in sin;
	uint64_t calls = 0, accepted = 0, eagain = 0, served = 0;
	uint64_t over1 = 0, over10 = 0, over100 = 0;
	int64_t end, t0, t1, sweep;
	int c, i, n, lfd, fd, ep, port = 0, one = 1;
	double secs = 30;

	while ((c = getopt(argc, argv, "l:p:d:")) != -1) {
		switch (c) {
		case 'l':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		default:
			goto usage;
		}
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (port <= 0 || port > 65535 || secs <= 0 ||
	    inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		goto usage;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return 1;
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 4096) != 0) {
		perror("bind/listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
		return 1;
	printf("listening %s:%d\n", addr, port);
	fflush(stdout);
	end = bs_now_ns() + (int64_t)(secs * 1e9);
	sweep = bs_now_ns() + 1000000000LL;
	while (bs_now_ns() < end) {
		n = epoll_wait(ep, evs, 64, 100);
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd != lfd) {
				if (al_read(evs[i].data.fd))
					served++;
				continue;
			}
			for (;;) {
				t0 = bs_now_ns();
				fd = accept4(lfd, NULL, NULL,
					     SOCK_NONBLOCK | SOCK_CLOEXEC);
				t1 = bs_now_ns();
				calls++;
				al_record((double)(t1 - t0) / 1e3);
				if (t1 - t0 > 1000000)
					over1++;
				if (t1 - t0 > 10000000)
					over10++;
				if (t1 - t0 > 100000000)
					over100++;
				if (fd < 0) {
					if (errno == EAGAIN)
						eagain++;
					break;
				}
				accepted++;
				if (fd >= AL_MAXFD) {
					close(fd);
					continue;
				}
				conns[fd].open = true;
				conns[fd].tail = 0;
				conns[fd].last = t1;
				ev.events = EPOLLIN | EPOLLRDHUP;
				ev.data.fd = fd;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) !=
				    0) {
					al_close(fd);
					continue;
				}
				if (al_read(fd))
					served++;
			}
		}
		if (bs_now_ns() >= sweep) {
			int64_t now = bs_now_ns();

			for (fd = 0; fd < AL_MAXFD; fd++)
				if (conns[fd].open &&
				    now - conns[fd].last > AL_IDLE_NS)
					al_close(fd);
			sweep = now + 1000000000LL;
		}
	}
	{
		double p50 = bs_quantile(durs, ndurs, 0.5);
		double p99 = bs_quantile(durs, ndurs, 0.99);
		double p999 = bs_quantile(durs, ndurs, 0.999);

		printf("ACCEPT calls=%llu accepted=%llu eagain=%llu "
		       "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
		       "over_1ms=%llu over_10ms=%llu over_100ms=%llu "
		       "served=%llu\n",
		       (unsigned long long)calls, (unsigned long long)accepted,
		       (unsigned long long)eagain, p50, p99, p999,
		       ndurs ? durs[ndurs - 1] : 0, (unsigned long long)over1,
		       (unsigned long long)over10, (unsigned long long)over100,
		       (unsigned long long)served);
	}
	return 0;
usage:
	fprintf(stderr, "usage: acceptlat [-l ADDR] -p PORT [-d SEC]\n");
	return 64;
}

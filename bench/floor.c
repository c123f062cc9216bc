/*
 * floor.c - the floor: a preload that makes, per accepted TCP connection,
 * the two system calls ppshim makes to take a PROXY header off a
 * connection, and nothing else.  Loaded into an nginx that parses the
 * header itself (proxy_protocol), it shows what any library that strips
 * headers before the program reads must cost on top of native parsing;
 * ppshim against it is the library's own cost.
 *
 * What ppshim does (src/hdrio.c, pp_job_step; src/accept.c):
 *   once per PROXY-only listener: setsockopt(TCP_DEFER_ACCEPT, 5 s, the
 *     default PP_TIMEOUT_MS rounded up), so that accept finds the header;
 *   per connection, inside accept: recv(fd, scratch, 4096,
 *     MSG_PEEK | MSG_DONTWAIT), parse, then recv(fd, scratch, header
 *     length, MSG_DONTWAIT | MSG_TRUNC), which drops the header without
 *     copying it.
 * Here the same two calls, with MSG_PEEK added to the second so that the
 * header stays for nginx (with MSG_TRUNC, TCP neither copies nor consumes
 * it).  Every TCP listener the process accepts on is treated so.
 *
 * Usage: LD_PRELOAD=bench/.libs/libppfloor.so nginx ... (listen ...
 * proxy_protocol).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define FL_EXPORT __attribute__((visibility("default")))
#define FL_SCRATCH 4096 /* PP_SCRATCH */
#define FL_DEFER_S 5    /* PP_DEFAULT_TIMEOUT_MS, in seconds */
#define FL_MAX_LISTENERS 1024

typedef int (*fl_accept4_fn)(int, struct sockaddr *, socklen_t *, int);

static atomic_bool fl_deferred[FL_MAX_LISTENERS];

static fl_accept4_fn
fl_real_accept4(void)
{
	static _Atomic(fl_accept4_fn) fn;
	fl_accept4_fn f = atomic_load(&fn);

	if (f == NULL) {
		f = (fl_accept4_fn)dlsym(RTLD_NEXT, "accept4");
		atomic_store(&fn, f);
	}
	return f;
}

/* The length of the header at the start of buf (n bytes), or n when none
 * is recognised there. */
static size_t
fl_header_len(const uint8_t *buf, size_t n)
{
	static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	size_t i, len;

	if (n >= 16 && memcmp(buf, sig, sizeof(sig)) == 0) {
		len = 16 + ((size_t)buf[14] << 8 | buf[15]);
		return len < n ? len : n;
	}
	if (n >= 6 && memcmp(buf, "PROXY ", 6) == 0)
		for (i = 6; i + 1 < n && i < 108; i++)
			if (buf[i] == '\r' && buf[i + 1] == '\n')
				return i + 2;
	return n;
}

/* Once per listener: what ppshim sets on a PROXY-only listener. */
static void
fl_listener(int lfd)
{
	int defer = FL_DEFER_S;

	if (lfd < 0 || lfd >= FL_MAX_LISTENERS ||
	    atomic_exchange(&fl_deferred[lfd], true))
		return;
	(void)setsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
			 sizeof(defer));
}

/* The two calls, per accepted connection. */
static void
fl_connection(int fd)
{
	uint8_t scratch[FL_SCRATCH];
	ssize_t n;
	size_t used;

	n = recv(fd, scratch, sizeof(scratch), MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0)
		return;
	used = fl_header_len(scratch, (size_t)n);
	(void)recv(fd, scratch, used, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
}

FL_EXPORT int
accept4(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	int fd, saved;

	fl_listener(lfd);
	fd = fl_real_accept4()(lfd, addr, alen, flags);
	if (fd >= 0) {
		saved = errno;
		fl_connection(fd);
		errno = saved;
	}
	return fd;
}

FL_EXPORT int
accept(int lfd, struct sockaddr *addr, socklen_t *alen)
{
	return accept4(lfd, addr, alen, 0);
}

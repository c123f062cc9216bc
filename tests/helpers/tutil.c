/*
 * tutil: what the test helper programs share: their output lines, fatal
 * errors, complete writes, address text and TCP listeners (tutil.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#define LINE_MAX_ 8192

int tu_log_fd = STDOUT_FILENO;

void
tu_out(const char *fmt, ...)
{
	char buf[LINE_MAX_ + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, LINE_MAX_, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > LINE_MAX_ - 1)
		n = LINE_MAX_ - 1;
	buf[n++] = '\n';
	(void)tu_write_all(tu_log_fd, buf, (size_t)n);
}

void
tu_out_private(void)
{
	tu_log_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (tu_log_fd < 0)
		tu_die("dup stdout");
}

void
tu_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
		strerror(errno));
	exit(1);
}

bool
tu_write_all(int fd, const void *p, size_t len)
{
	const char *at = p;
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = write(fd, at, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			(void)poll(&pfd, 1, -1);
			continue;
		}
		if (n <= 0)
			return false;
		at += n;
		len -= (size_t)n;
	}
	return true;
}

size_t
tu_read_line(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap) {
		n = read(fd, buf + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf[len++] == '\n')
			break;
	}
	if (cap > 0)
		buf[len] = '\0';
	return len;
}

/* clang-format off */
static const struct {
	int num;
	const char *name;
} errnames[] = {
	{ EAGAIN, "EAGAIN" }, { EINTR, "EINTR" },
	{ ECONNABORTED, "ECONNABORTED" }, { ECONNRESET, "ECONNRESET" },
	{ EMFILE, "EMFILE" }, { ENFILE, "ENFILE" }, { EINVAL, "EINVAL" },
	{ EBADF, "EBADF" }, { ENOTSOCK, "ENOTSOCK" }, { ENOTCONN, "ENOTCONN" },
	{ EPROTO, "EPROTO" }, { ENOBUFS, "ENOBUFS" }, { ENOMEM, "ENOMEM" },
	{ EPERM, "EPERM" }, { ETIMEDOUT, "ETIMEDOUT" }, { EFAULT, "EFAULT" },
	{ EOPNOTSUPP, "EOPNOTSUPP" }, { EPIPE, "EPIPE" },
};
/* clang-format on */

const char *
tu_errname(int err)
{
	static _Thread_local char other[16];
	size_t i;

	for (i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].num == err)
			return errnames[i].name;
	snprintf(other, sizeof(other), "E%d", err);
	return other;
}

void
tu_fmt_addr(const void *addr, size_t len, char *dst, size_t cap)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
	char text[INET6_ADDRSTRLEN];
	ptrdiff_t plen;

	memset(&ss, 0, sizeof(ss));
	if (len > sizeof(ss))
		len = sizeof(ss);
	memcpy(&ss, addr, len);
	if (len < sizeof(sa_family_t)) {
		snprintf(dst, cap, "-");
		return;
	}
	switch (ss.ss_family) {
	case AF_INET:
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		snprintf(dst, cap, "%s:%u", text, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		snprintf(dst, cap, "[%s]:%u", text, ntohs(sin6->sin6_port));
		break;
	case AF_UNIX:
		plen = (ptrdiff_t)len -
		       (ptrdiff_t)offsetof(struct sockaddr_un, sun_path);
		if (plen > (ptrdiff_t)sizeof(sun->sun_path))
			plen = sizeof(sun->sun_path);
		if (plen <= 0)
			snprintf(dst, cap, "unix:");
		else if (sun->sun_path[0] == '\0')
			snprintf(dst, cap, "unix:@%.*s", (int)plen - 1,
				 sun->sun_path + 1);
		else
			snprintf(dst, cap, "unix:%.*s",
				 (int)strnlen(sun->sun_path, (size_t)plen),
				 sun->sun_path);
		break;
	default:
		snprintf(dst, cap, "family%d", ss.ss_family);
		break;
	}
}

socklen_t
tu_inet_addr(const char *addr, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return sizeof(*sin6);
	}
	fprintf(stderr, "%s: bad address %s\n", program_invocation_short_name,
		addr);
	exit(2);
}

int
tu_listen_inet(const char *addr, int port, int flags, int *bound)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	socklen_t len = tu_inet_addr(addr, port, &ss);
	int fd, one = 1, zero = 0, saved;

	fd = socket(ss.ss_family,
		    SOCK_STREAM | (flags & TU_CLOEXEC ? SOCK_CLOEXEC : 0) |
			    (flags & TU_NONBLOCK ? SOCK_NONBLOCK : 0),
		    0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (flags & TU_REUSEPORT)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				 sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				 sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0)
		goto fail;
	len = sizeof(ss);
	if (bound != NULL) {
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
			goto fail;
		*bound = ntohs(ss.ss_family == AF_INET ? sin->sin_port
						       : sin6->sin6_port);
	}
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static void
on_term(int sig)
{
	(void)sig;
	_exit(0);
}

void
tu_server_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
}

double
tu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * log.c - log lines to stderr or syslog.
 *
 * Every byte the library writes to fd 2 goes through pp_write_stderr():
 * log lines, the configuration error of the constructor, early warnings.
 *
 * stderr: lines go to fd 2 only while it is not a socket.  An inetd-style
 * program has its client on 0, 1 and 2, and a daemon that closed stderr
 * may get number 2 back for a client connection: log text must never be
 * injected into a client's stream.  A socket on fd 2 (journald's stream
 * included) sends the line to syslog instead, which journald reads too.
 *
 * syslog: one datagram to /dev/log from a socket opened and closed for
 * that line.  libc's syslog() keeps a descriptor open, which a program
 * closing descriptors it does not own could turn into a write to an
 * unrelated socket; logging is per connection at most, so the extra
 * socket per line costs nothing that matters.
 *
 * A hook called from a signal handler may log: nothing here takes a
 * lock or allocates (lines are put together on the stack with
 * vsnprintf, of strings and integers only, and written with raw system
 * calls), so a line never waits for the interrupted thread.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "pp_hot.h"

PP_HOT_DATA enum pp_loglevel pp_log_level = PP_LOG_WARN;
static enum pp_logtarget pp_target = PP_TARGET_STDERR;

void
pp_log_init(enum pp_loglevel level, enum pp_logtarget target)
{
	pp_log_level = level;
	pp_target = target;
}

static bool
pp_stderr_usable(void)
{
	struct stat st;

	/* Never a socket: an inetd-style program has its client there. */
	return syscall(SYS_fstat, 2, &st) == 0 && !S_ISSOCK(st.st_mode);
}

bool
pp_write_stderr(const char *buf, size_t len)
{
	ssize_t n;
	int saved = errno;

	if (!pp_stderr_usable()) {
		errno = saved;
		return false;
	}
	while (len > 0) {
		n = (ssize_t)syscall(SYS_write, 2, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	errno = saved;
	return true;
}

static void
pp_syslog_line(enum pp_loglevel level, const char *msg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[1200];
	int prio, fd, len;

	switch (level) {
	case PP_LOG_ERROR:
		prio = 3;
		break;
	case PP_LOG_WARN:
		prio = 4;
		break;
	case PP_LOG_INFO:
		prio = 6;
		break;
	default:
		prio = 7;
		break;
	}
	len = snprintf(buf, sizeof(buf), "<%d>ppshim[%ld]: %s", 3 * 8 + prio,
		       (long)getpid(), msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(buf))
		len = sizeof(buf) - 1;
	strcpy(sun.sun_path, "/dev/log");
	/* The raw call: this socket is ours, not the program's. */
	fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	syscall(SYS_sendto, fd, buf, (size_t)len, MSG_NOSIGNAL,
		(struct sockaddr *)&sun, sizeof(sun));
	syscall(SYS_close, fd);
}

static void
pp_emit(enum pp_loglevel level, const char *msg, bool both)
{
	char line[1200];
	int len;

	bool written = false;

	if (pp_target == PP_TARGET_STDERR || both) {
		len = snprintf(line, sizeof(line), "ppshim[%ld]: %s\n",
			       (long)getpid(), msg);
		if (len > 0) {
			if ((size_t)len >= sizeof(line)) {
				len = sizeof(line) - 1;
				line[len - 1] = '\n';
			}
			written = pp_write_stderr(line, (size_t)len);
		}
	}
	if (pp_target == PP_TARGET_SYSLOG || both || !written)
		pp_syslog_line(level, msg);
}

void
pp_log(enum pp_loglevel level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int saved = errno;

	if (!pp_log_on(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pp_emit(level, msg, false);
	errno = saved;
}

void
pp_log_config_error(const char *msg)
{
	char line[PP_ERRMSG_MAX + 16];
	int saved = errno;
	int len;

	len = snprintf(line, sizeof(line), "ppshim: %s\n", msg);
	if (len > 0)
		(void)pp_write_stderr(line, (size_t)len < sizeof(line)
						    ? (size_t)len
						    : sizeof(line) - 1);
	pp_syslog_line(PP_LOG_ERROR, msg);
	errno = saved;
}

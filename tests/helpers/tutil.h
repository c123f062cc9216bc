/*
 * tutil: what the test helper programs share: their output lines, fatal
 * errors, complete writes, address text and TCP listeners.
 */
#ifndef TUTIL_H
#define TUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The descriptor tu_out writes to: stdout, or its private copy. */
extern int tu_log_fd;

/* Prints one line (fmt, and a newline added) on tu_log_fd in a single
 * write, so that lines of threads and processes never interleave. */
void tu_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes tu_out write to a close-on-exec copy of stdout numbered 3 or
 * higher, so that the program may close, dup onto or exec over fd 1 and
 * still print its lines; exits 1 when the copy fails. */
void tu_out_private(void);

/* Prints "PROGRAM: what: strerror(errno)" on stderr and exits 1. */
void tu_die(const char *what) __attribute__((noreturn));

/* Writes all of p to fd, retrying after EINTR and waiting in poll after
 * EAGAIN; returns false on another error (errno set). */
bool tu_write_all(int fd, const void *p, size_t len);

/* Reads one line from fd a byte at a time (nothing past it is consumed)
 * into buf, with its '\n', at most cap - 1 bytes, NUL-terminated; stops
 * early at EOF or an error.  Returns the number of bytes read. */
size_t tu_read_line(int fd, char *buf, size_t cap);

/* The symbolic name of an errno value ("EBADF"), or "E<number>" (in a
 * per-thread buffer) for a value not in the list. */
const char *tu_errname(int err);

/* Writes an address of len bytes as text into dst: "192.0.2.1:5000",
 * "[2001:db8::1]:5000", "unix:PATH" ("unix:" unnamed, "unix:@NAME"
 * abstract), "familyN", or "-" when len cannot hold a family (no
 * address).  Only the first len bytes of addr are read. */
void tu_fmt_addr(const void *addr, size_t len, char *dst, size_t cap);

/* Fills ss for the IPv4 or IPv6 literal addr and port; returns the
 * address length.  Exits 2 with a message on anything else. */
socklen_t tu_inet_addr(const char *addr, int port, struct sockaddr_storage *ss);

/* tu_listen_inet flags. */
enum {
	TU_CLOEXEC = 1,   /* SOCK_CLOEXEC */
	TU_NONBLOCK = 2,  /* SOCK_NONBLOCK */
	TU_REUSEPORT = 4, /* SO_REUSEPORT (SO_REUSEADDR is always set) */
};

/* Returns a TCP socket listening on addr:port (as tu_inet_addr; "::"
 * takes IPv4 clients too) with flags, and stores the bound port in *bound
 * unless bound is NULL; returns -1 with errno set when a call fails. */
int tu_listen_inet(const char *addr, int port, int flags, int *bound);

/* Installs the servers' signal dispositions: SIGTERM ends the process
 * with _exit(0), SIGPIPE is ignored. */
void tu_server_signals(void);

/* The monotonic clock, in seconds. */
double tu_now(void);

#endif

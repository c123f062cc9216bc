/*
 * srv: the echo server the integration tests run under LD_PRELOAD.
 *
 * It knows nothing about the PROXY protocol.  For each connection it reports,
 * on stdout and (unless -q) to the client, what accept(), getpeername() and
 * getsockname() told it, in one line:
 *
 *   conn fd=5 acc=192.0.2.1:5000 acclen=16 peer=192.0.2.1:5000 peerlen=16
 *        sock=198.51.100.7:25 socklen=16 fam=AF_INET
 *
 * (one line, wrapped here), then echoes every byte it reads until EOF and
 * closes.  Without -b the line goes to the client just before the first echoed
 * bytes (or at EOF); with -b it goes right after accept, before any read, the
 * way SMTP servers speak first.  With -r the server answers the first bytes
 * it reads (line, then those bytes) and closes, like an HTTP/0.9 server.
 *
 * Once the listeners are up it prints "listening port=N" (or "path=P"), so
 * that tests wait for it instead of sleeping.  accept() errors are printed as
 * "accept-error errno=NAME" and the server carries on.
 *
 * Options:
 *   -l ADDR   listen address (127.0.0.1, ::1, 0.0.0.0, ::); -p PORT (0: any)
 *   -e PORT   a second listener on ADDR (epoll and select modes)
 *   -u PATH   a UNIX stream listener instead
 *   -m MODE   block: one thread, blocking accept, one connection at a time;
 *             epoll, select: non-blocking listener and connections, accept4
 *             until EAGAIN (an accept that takes over 100 ms is reported as
 *             "slow-accept ms=N"); threads: -t N threads blocking in accept;
 *             fork: the child dup2s the connection onto 0 and 1 (vsftpd);
 *             selectblock: like select, but the listener stays blocking and
 *             each time select() says it is readable the server makes one
 *             accept4(SOCK_NONBLOCK) (xinetd, sendmail); an accept that
 *             takes over 100 ms is reported as "slow-accept ms=N"
 *   -a N      N-byte address buffers; report the lengths and "canary=ok" if
 *             nothing was written past N bytes
 *   -N        accept(fd, NULL, NULL)
 *   -f FLAGS  accept4 with nonblock,cloexec (or 0); report them read back
 *   -b        banner: the conn line goes to the client right after accept
 *   -q        do not send the conn line to the client
 *   -r        answer the first bytes read (line, those bytes), then close
 *   -c N      exit after N connections
 *   -F FD     move the listener to descriptor FD; -D FD: move each
 *             accepted connection to the lowest free descriptor >= FD
 *   -s MS     a SIGALRM every MS milliseconds, without SA_RESTART
 *
 * Everything on stdout is written with write(2), one line per call, through a
 * copy of the original stdout: the fork mode moves the connection onto fds 0
 * and 1.  SIGTERM ends the process with _exit(0), so that valgrind and the
 * tests see a normal exit.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#define LINE_SIZE 1024
#define IO_SIZE 65536
#define ADDR_MAX 256 /* largest -a */
#define CANARY 64    /* guard bytes checked after each address buffer */
#define MAX_LISTENERS 2

enum mode {
	MODE_BLOCK,
	MODE_EPOLL,
	MODE_SELECT,
	MODE_THREADS,
	MODE_FORK,
	MODE_SELECTBLOCK,
};

static struct {
	const char *addr;
	int port;
	int extra_port; /* -e: a second listener, same address */
	const char *unix_path;
	enum mode mode;
	int threads;
	int addr_size; /* -a; -1: sizeof(struct sockaddr_storage), no report */
	bool null_addr;
	bool use_accept4;
	int accept_flags;
	bool banner;
	bool quiet;
	bool reply_once;
	long count;
	int listen_fd_at; /* -F */
	int conn_fd_min;  /* -D */
	int signal_ms;    /* -s: SIGALRM this often, without SA_RESTART */
} opt = {
	.addr = "127.0.0.1",
	.mode = MODE_BLOCK,
	.threads = 4,
	.addr_size = -1,
	.extra_port = -1,
};

static int listeners[MAX_LISTENERS];
static int nlisteners;
static atomic_long finished;

/* An address buffer of opt.addr_size bytes followed by guard bytes. */
struct addrbuf {
	unsigned char b[ADDR_MAX + CANARY];
	socklen_t size;
	socklen_t len;
};

static void
usage(void)
{
	fprintf(stderr,
		"usage: srv [-l ADDR] [-p PORT] [-e PORT] [-u PATH]\n"
		"           [-m MODE] [-t N] [-a N] [-N] [-f FLAGS]\n"
		"           [-b] [-q] [-r] [-c N] [-F FD] [-D FD] [-s MS]\n"
		"MODE: block epoll select selectblock threads fork; FLAGS: "
		"nonblock,cloexec or 0\n");
	exit(2);
}

static void
finish(void)
{
	tu_out("exit conns=%ld", atomic_load(&finished));
	exit(0);
}

/* Counts a finished connection; exits when -c COUNT is reached. */
static void
count_finished(void)
{
	long n = atomic_fetch_add(&finished, 1) + 1;

	if (opt.count > 0 && n >= opt.count && opt.mode != MODE_FORK)
		finish();
}

static void
addrbuf_init(struct addrbuf *a)
{
	memset(a->b, 0xa5, sizeof(a->b));
	a->size = opt.addr_size < 0 ? sizeof(struct sockaddr_storage)
				    : (socklen_t)opt.addr_size;
	a->len = a->size;
}

static bool
addrbuf_canary_ok(const struct addrbuf *a)
{
	size_t i;

	for (i = a->size; i < a->size + CANARY; i++)
		if (a->b[i] != 0xa5)
			return false;
	return true;
}

/*
 * Formats what an address call returned: the bytes it may have written (the
 * smaller of the buffer size and the returned length) are decoded as the
 * address, so a truncated sockaddr_in still shows its address and port.
 */
static void
format_addr(char *dst, size_t size, const struct addrbuf *a)
{
	size_t have = a->len < a->size ? a->len : a->size;

	if (have < sizeof(sa_family_t))
		snprintf(dst, size, "none");
	else
		tu_fmt_addr(a->b, have, dst, size);
}

static const char *
family_name(const struct addrbuf *a, char *buf, size_t size)
{
	sa_family_t fam;

	if ((a->len < a->size ? a->len : a->size) < sizeof(fam))
		return "-";
	memcpy(&fam, a->b, sizeof(fam));
	switch (fam) {
	case AF_INET:
		return "AF_INET";
	case AF_INET6:
		return "AF_INET6";
	case AF_UNIX:
		return "AF_UNIX";
	default:
		snprintf(buf, size, "%d", fam);
		return buf;
	}
}

/*
 * Builds the conn line for a connection whose peer is asked on peer_fd and
 * whose local address on sock_fd (the same socket, except in fork mode).
 * acc is what accept() returned, or NULL with -N.
 */
static void
describe(char *line, size_t size, int peer_fd, int sock_fd,
	 const struct addrbuf *acc)
{
	struct addrbuf peer, sock;
	char acc_s[160] = "null", acclen_s[16] = "-";
	char peer_s[160], sock_s[160], flags_s[40] = "", canary_s[20] = "";
	char fam[16];
	int rc_peer, rc_sock, fl, fdfl;

	addrbuf_init(&peer);
	addrbuf_init(&sock);
	rc_peer = getpeername(peer_fd, (struct sockaddr *)peer.b, &peer.len);
	if (rc_peer < 0)
		snprintf(peer_s, sizeof(peer_s), "error:%s", tu_errname(errno));
	else
		format_addr(peer_s, sizeof(peer_s), &peer);
	rc_sock = getsockname(sock_fd, (struct sockaddr *)sock.b, &sock.len);
	if (rc_sock < 0)
		snprintf(sock_s, sizeof(sock_s), "error:%s", tu_errname(errno));
	else
		format_addr(sock_s, sizeof(sock_s), &sock);
	if (acc != NULL) {
		format_addr(acc_s, sizeof(acc_s), acc);
		snprintf(acclen_s, sizeof(acclen_s), "%u", (unsigned)acc->len);
	}
	if (opt.use_accept4) {
		fl = fcntl(peer_fd, F_GETFL);
		fdfl = fcntl(peer_fd, F_GETFD);
		snprintf(flags_s, sizeof(flags_s), " flags=%s",
			 (fl & O_NONBLOCK) && (fdfl & FD_CLOEXEC)
				 ? "nonblock,cloexec"
			 : (fl & O_NONBLOCK)   ? "nonblock"
			 : (fdfl & FD_CLOEXEC) ? "cloexec"
					       : "none");
	}
	if (opt.addr_size >= 0)
		snprintf(canary_s, sizeof(canary_s), " canary=%s",
			 addrbuf_canary_ok(&peer) && addrbuf_canary_ok(&sock) &&
					 (acc == NULL || addrbuf_canary_ok(acc))
				 ? "ok"
				 : "bad");
	snprintf(line, size,
		 "conn fd=%d acc=%s acclen=%s peer=%s peerlen=%u sock=%s "
		 "socklen=%u fam=%s%s%s",
		 peer_fd, acc_s, acclen_s, peer_s,
		 rc_peer < 0 ? 0 : (unsigned)peer.len, sock_s,
		 rc_sock < 0 ? 0 : (unsigned)sock.len,
		 rc_peer < 0 ? "-" : family_name(&peer, fam, sizeof(fam)),
		 flags_s, canary_s);
}

/*
 * Accepts one connection the way the options say.  extra_flags are accept4
 * flags the mode itself needs (SOCK_NONBLOCK for the event loops).
 */
static int
do_accept(int lfd, struct addrbuf *acc, int extra_flags)
{
	struct sockaddr *sa = NULL;
	socklen_t *lenp = NULL;
	int fd, nfd, saved;

	addrbuf_init(acc);
	if (!opt.null_addr) {
		sa = (struct sockaddr *)acc->b;
		lenp = &acc->len;
	}
	if (opt.use_accept4 || extra_flags != 0)
		fd = accept4(lfd, sa, lenp, opt.accept_flags | extra_flags);
	else
		fd = accept(lfd, sa, lenp);
	if (fd < 0 || opt.conn_fd_min <= 0)
		return fd;
	nfd = fcntl(fd, F_DUPFD, opt.conn_fd_min);
	saved = errno;
	close(fd);
	errno = saved;
	return nfd;
}

static void
report_accept_error(int err)
{
	tu_out("accept-error errno=%s", tu_errname(err));
}

/* ===== Blocking service: block, threads and fork modes ===== */

static int
send_line(int fd, const char *line)
{
	char buf[LINE_SIZE + 2];
	int n = snprintf(buf, sizeof(buf), "%s\n", line);

	return tu_write_all(fd, buf, (size_t)n) ? 0 : -1;
}

/* Serves one connection to completion: conn line, echo until EOF. */
static void
serve(int rfd, int wfd, const char *line)
{
	char *buf = malloc(IO_SIZE);
	bool sent = false;
	ssize_t n;
	int fl;

	if (buf == NULL)
		tu_die("malloc");
	/* -f nonblock was only there to be reported. */
	fl = fcntl(rfd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(rfd, F_SETFL, fl & ~O_NONBLOCK);
	if (opt.banner && !opt.quiet) {
		send_line(wfd, line);
		sent = true;
	}
	for (;;) {
		n = read(rfd, buf, IO_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!sent && !opt.quiet) {
			if (send_line(wfd, line) < 0)
				break;
			sent = true;
		}
		if (!tu_write_all(wfd, buf, (size_t)n) || opt.reply_once)
			break;
	}
	if (!sent && !opt.quiet)
		send_line(wfd, line);
	free(buf);
}

static void
handle_blocking(int fd, const struct addrbuf *acc)
{
	char line[LINE_SIZE];

	describe(line, sizeof(line), fd, fd, acc);
	tu_out("%s", line);
	serve(fd, fd, line);
	close(fd);
	count_finished();
}

static void
run_block(void)
{
	struct addrbuf acc;
	int fd;

	for (;;) {
		fd = do_accept(listeners[0], &acc, 0);
		if (fd < 0) {
			report_accept_error(errno);
			usleep(10000);
			continue;
		}
		handle_blocking(fd, opt.null_addr ? NULL : &acc);
	}
}

static void *
accept_thread(void *arg)
{
	(void)arg;
	run_block();
	return NULL;
}

static void
run_threads(void)
{
	pthread_t tid;
	int i, rc;

	for (i = 0; i < opt.threads; i++) {
		rc = pthread_create(&tid, NULL, accept_thread, NULL);
		if (rc != 0) {
			errno = rc;
			tu_die("pthread_create");
		}
	}
	for (;;)
		pause();
}

/*
 * vsftpd's shape: the child moves the connection onto fds 0 and 1, closes
 * the original descriptor, then asks getpeername(0) and getsockname(1).
 */
static void
run_fork(void)
{
	struct addrbuf acc;
	char line[LINE_SIZE];
	long accepted = 0;
	pid_t pid;
	int fd;

	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		fd = do_accept(listeners[0], &acc, 0);
		if (fd < 0) {
			report_accept_error(errno);
			usleep(10000);
			continue;
		}
		pid = fork();
		if (pid < 0)
			tu_die("fork");
		if (pid == 0) {
			close(listeners[0]);
			if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
				_exit(3);
			if (fd > 1)
				close(fd);
			describe(line, sizeof(line), 0, 1,
				 opt.null_addr ? NULL : &acc);
			tu_out("%s", line);
			serve(0, 1, line);
			close(0);
			close(1);
			_exit(0);
		}
		close(fd);
		atomic_fetch_add(&finished, 1);
		if (opt.count > 0 && ++accepted >= opt.count) {
			while (wait(NULL) > 0)
				;
			finish();
		}
	}
}

/* ===== Non-blocking service: epoll and select modes ===== */

struct conn {
	int fd;
	bool line_sent;
	bool eof;
	char line[LINE_SIZE];
	char *buf; /* pending output */
	size_t len, off;
};

static struct conn **conns;
static int nconns;
static char io_buf[IO_SIZE];

static bool
is_listener(int fd)
{
	int i;

	for (i = 0; i < nlisteners; i++)
		if (listeners[i] == fd)
			return true;
	return false;
}

static void
queue(struct conn *c, const void *data, size_t len)
{
	if (c->off == c->len)
		c->off = c->len = 0;
	memcpy(c->buf + c->len, data, len);
	c->len += len;
}

static void
queue_line(struct conn *c)
{
	if (c->line_sent || opt.quiet)
		return;
	queue(c, c->line, strlen(c->line));
	queue(c, "\n", 1);
	c->line_sent = true;
}

static struct conn *
conn_new(int fd, const struct addrbuf *acc)
{
	struct conn *c;
	struct conn **grown;

	if (fd >= nconns) {
		grown = realloc(conns, (size_t)(fd + 64) * sizeof(*conns));
		if (grown == NULL)
			tu_die("realloc");
		memset(grown + nconns, 0,
		       (size_t)(fd + 64 - nconns) * sizeof(*conns));
		conns = grown;
		nconns = fd + 64;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->buf = malloc(IO_SIZE + LINE_SIZE + 1)) == NULL)
		tu_die("malloc");
	c->fd = fd;
	describe(c->line, sizeof(c->line), fd, fd, acc);
	tu_out("%s", c->line);
	if (opt.banner)
		queue_line(c);
	conns[fd] = c;
	return c;
}

static void
conn_free(struct conn *c)
{
	conns[c->fd] = NULL;
	close(c->fd);
	free(c->buf);
	free(c);
	count_finished();
}

static bool
conn_wants_write(const struct conn *c)
{
	return c->off < c->len;
}

/*
 * Makes progress on a connection: flush pending output, else read.  Returns
 * false when the connection is finished and has been freed.
 */
static bool
conn_step(struct conn *c)
{
	ssize_t n;

	for (;;) {
		if (conn_wants_write(c)) {
			n = write(c->fd, c->buf + c->off, c->len - c->off);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return true;
				break;
			}
			c->off += (size_t)n;
			continue;
		}
		if (c->eof)
			break;
		n = read(c->fd, io_buf, sizeof(io_buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			break;
		}
		if (n == 0) {
			c->eof = true;
			queue_line(c);
			continue;
		}
		queue_line(c);
		queue(c, io_buf, (size_t)n);
		if (opt.reply_once)
			c->eof = true;
	}
	conn_free(c);
	return false;
}

/*
 * Accepts on a non-blocking listener until EAGAIN.  Calls add() for each new
 * connection.  An accept that takes long means the call blocked.
 */
static void
accept_burst(int lfd, void (*add)(struct conn *))
{
	struct addrbuf acc;
	struct conn *c;
	double t0, dt;
	int fd;

	for (;;) {
		t0 = tu_now();
		fd = do_accept(lfd, &acc, SOCK_NONBLOCK);
		dt = tu_now() - t0;
		if (dt > 0.1)
			tu_out("slow-accept ms=%d", (int)(dt * 1000));
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				report_accept_error(errno);
			return;
		}
		c = conn_new(fd, opt.null_addr ? NULL : &acc);
		if (conn_step(c))
			add(c);
	}
}

static int epfd = -1;

static void
epoll_set(struct conn *c, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = conn_wants_write(c) ? EPOLLOUT : EPOLLIN;
	ev.data.fd = c->fd;
	if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
		tu_die("epoll_ctl");
}

static void
epoll_add(struct conn *c)
{
	epoll_set(c, EPOLL_CTL_ADD);
}

static void
run_epoll(void)
{
	struct epoll_event ev, evs[64];
	int i, n;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		tu_die("epoll_create1");
	for (i = 0; i < nlisteners; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.fd = listeners[i];
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, listeners[i], &ev) < 0)
			tu_die("epoll_ctl");
	}
	for (;;) {
		n = epoll_wait(epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tu_die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (is_listener(fd))
				accept_burst(fd, epoll_add);
			else if (fd < nconns && conns[fd] != NULL &&
				 conn_step(conns[fd]))
				epoll_set(conns[fd], EPOLL_CTL_MOD);
		}
	}
}

/* One accept on a blocking listener that select() found readable. */
static void
accept_one(int lfd, void (*add)(struct conn *))
{
	struct addrbuf acc;
	struct conn *c;
	double t0, dt;
	int fd;

	t0 = tu_now();
	fd = do_accept(lfd, &acc, SOCK_NONBLOCK);
	dt = tu_now() - t0;
	if (dt > 0.1)
		tu_out("slow-accept ms=%d", (int)(dt * 1000));
	if (fd < 0) {
		if (errno != EINTR)
			report_accept_error(errno);
		return;
	}
	c = conn_new(fd, opt.null_addr ? NULL : &acc);
	if (conn_step(c))
		add(c);
}

static void
select_add(struct conn *c)
{
	if (c->fd >= FD_SETSIZE) {
		fprintf(stderr, "srv: fd %d too high for select\n", c->fd);
		conn_free(c);
	}
}

static void
run_select(void)
{
	fd_set rd, wr;
	int i, fd, maxfd, n;

	for (;;) {
		FD_ZERO(&rd);
		FD_ZERO(&wr);
		maxfd = -1;
		for (i = 0; i < nlisteners; i++) {
			FD_SET(listeners[i], &rd);
			if (listeners[i] > maxfd)
				maxfd = listeners[i];
		}
		for (fd = 0; fd < nconns; fd++) {
			if (conns[fd] == NULL)
				continue;
			FD_SET(fd, conn_wants_write(conns[fd]) ? &wr : &rd);
			if (fd > maxfd)
				maxfd = fd;
		}
		n = select(maxfd + 1, &rd, &wr, NULL, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tu_die("select");
		}
		for (fd = 0; fd <= maxfd; fd++) {
			if (!FD_ISSET(fd, &rd) && !FD_ISSET(fd, &wr))
				continue;
			if (is_listener(fd) && opt.mode == MODE_SELECTBLOCK)
				accept_one(fd, select_add);
			else if (is_listener(fd))
				accept_burst(fd, select_add);
			else if (fd < nconns && conns[fd] != NULL)
				conn_step(conns[fd]);
		}
	}
}

/* ===== Setup ===== */

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		tu_die("fcntl");
}

static int
listen_unix(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "srv: path too long\n");
		exit(2);
	}
	strcpy(sun.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		tu_die("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		tu_die("bind");
	if (listen(fd, 1024) < 0)
		tu_die("listen");
	return fd;
}

static void
raise_nofile(int highest)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		tu_die("getrlimit");
	if (rl.rlim_cur > (rlim_t)highest + 64)
		return;
	if (rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max <= (rlim_t)highest + 64) {
		fprintf(stderr, "srv: RLIMIT_NOFILE hard limit too low\n");
		exit(2);
	}
	rl.rlim_cur = (rlim_t)highest + 1024;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		tu_die("setrlimit");
}

static void
parse_flags(const char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;

	if (copy == NULL)
		tu_die("strdup");
	opt.use_accept4 = true;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "nonblock") == 0)
			opt.accept_flags |= SOCK_NONBLOCK;
		else if (strcmp(tok, "cloexec") == 0)
			opt.accept_flags |= SOCK_CLOEXEC;
		else if (strcmp(tok, "0") != 0)
			usage();
	}
	free(copy);
}

static enum mode
parse_mode(const char *s)
{
	if (strcmp(s, "block") == 0)
		return MODE_BLOCK;
	if (strcmp(s, "epoll") == 0)
		return MODE_EPOLL;
	if (strcmp(s, "select") == 0)
		return MODE_SELECT;
	if (strcmp(s, "selectblock") == 0)
		return MODE_SELECTBLOCK;
	if (strcmp(s, "threads") == 0)
		return MODE_THREADS;
	if (strcmp(s, "fork") == 0)
		return MODE_FORK;
	usage();
	return MODE_BLOCK;
}

static void
on_alarm(int sig)
{
	(void)sig;
}

/* -s: a signal every ms milliseconds interrupts whatever call is waiting. */
static void
start_interval_signal(int ms)
{
	struct sigaction sa;
	struct itimerval it;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: calls fail with EINTR */
	sigaction(SIGALRM, &sa, NULL);
	memset(&it, 0, sizeof(it));
	it.it_interval.tv_sec = ms / 1000;
	it.it_interval.tv_usec = (ms % 1000) * 1000;
	it.it_value = it.it_interval;
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		tu_die("setitimer");
}

int
main(int argc, char **argv)
{
	int c, port = 0, extra = 0, fd, fd2;

	while ((c = getopt(argc, argv, "l:p:e:u:m:t:a:Nf:bqrc:F:D:s:h")) !=
	       -1) {
		switch (c) {
		case 'l':
			opt.addr = optarg;
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 'e':
			opt.extra_port = atoi(optarg);
			break;
		case 'u':
			opt.unix_path = optarg;
			break;
		case 'm':
			opt.mode = parse_mode(optarg);
			break;
		case 't':
			opt.threads = atoi(optarg);
			break;
		case 'a':
			opt.addr_size = atoi(optarg);
			if (opt.addr_size < 0 || opt.addr_size > ADDR_MAX)
				usage();
			break;
		case 'N':
			opt.null_addr = true;
			break;
		case 'f':
			parse_flags(optarg);
			break;
		case 'b':
			opt.banner = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'r':
			opt.reply_once = true;
			break;
		case 'c':
			opt.count = atol(optarg);
			break;
		case 'F':
			opt.listen_fd_at = atoi(optarg);
			break;
		case 'D':
			opt.conn_fd_min = atoi(optarg);
			break;
		case 's':
			opt.signal_ms = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || opt.threads < 1)
		usage();
	if (opt.extra_port >= 0 && opt.mode != MODE_EPOLL &&
	    opt.mode != MODE_SELECT && opt.mode != MODE_SELECTBLOCK) {
		fprintf(stderr, "srv: -e needs -m epoll or -m select\n");
		exit(2);
	}

	tu_server_signals();
	tu_out_private();
	if (opt.listen_fd_at > 0 || opt.conn_fd_min > 0)
		raise_nofile(opt.listen_fd_at > opt.conn_fd_min
				     ? opt.listen_fd_at
				     : opt.conn_fd_min + 1024);

	if (opt.unix_path != NULL)
		fd = listen_unix(opt.unix_path);
	else
		fd = tu_listen_inet(opt.addr, opt.port, 0, &port);
	if (fd < 0)
		tu_die("listen");
	if (opt.listen_fd_at > 0) {
		if (dup2(fd, opt.listen_fd_at) < 0)
			tu_die("dup2");
		close(fd);
		fd = opt.listen_fd_at;
	}
	listeners[nlisteners++] = fd;
	if (opt.extra_port >= 0 && opt.unix_path == NULL) {
		fd2 = tu_listen_inet(opt.addr, opt.extra_port, 0, &extra);
		if (fd2 < 0)
			tu_die("listen");
		listeners[nlisteners++] = fd2;
	}
	if (opt.mode == MODE_EPOLL || opt.mode == MODE_SELECT)
		for (c = 0; c < nlisteners; c++)
			set_nonblock(listeners[c]);

	if (opt.unix_path != NULL)
		tu_out("listening path=%s fd=%d", opt.unix_path, fd);
	else if (nlisteners > 1)
		tu_out("listening port=%d extra=%d fd=%d", port, extra, fd);
	else
		tu_out("listening port=%d fd=%d", port, fd);
	if (opt.signal_ms > 0)
		start_interval_signal(opt.signal_ms);

	switch (opt.mode) {
	case MODE_BLOCK:
		run_block();
		break;
	case MODE_THREADS:
		run_threads();
		break;
	case MODE_FORK:
		run_fork();
		break;
	case MODE_EPOLL:
		run_epoll();
		break;
	case MODE_SELECT:
	case MODE_SELECTBLOCK:
		run_select();
		break;
	}
	return 0;
}

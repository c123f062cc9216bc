/*
 * torture: servers that do to their descriptors what the stress tests
 * need done while the library is preloaded.  Like srv, it knows nothing
 * about the PROXY protocol; it prints "listening port=N" once ready and
 * one line per event on stdout.  Modes (-m):
 *
 *   emfile   One thread, blocking accept.  After listening, RLIMIT_NOFILE
 *            is lowered to -n N.  Every connection is held open (not
 *            read) after it was sent "conn peer=ADDR".  An accept error
 *            prints "accept-error errno=NAME held=K"; after EMFILE or
 *            ENFILE the server waits for SIGUSR1, then closes every held
 *            connection ("released n=K") and accepts again.
 *
 *   prefork  -P N processes accept on one listener (the parent and N-1
 *            children forked after listen, which die with it).  Each
 *            connection gets "conn pid=PID peer=ADDR sock=ADDR", on
 *            stdout and to the client, then an echo until EOF.  With -U
 *            an SO_REUSEPORT group instead: the parent opens N listeners
 *            on the port before forking, and process i accepts on the
 *            i-th (nginx's reuseport).
 *
 *   race     -t N threads accept on the listener; each reads one line
 *            "EXPECT ADDR" from the client, asks getpeername 20 times
 *            (every answer must be ADDR), answers "ok" (or "bad ...")
 *            and closes the connection one of five ways (close,
 *            close_range, fclose of an fdopen'ed stream, dup2 of a plain
 *            socket over it, a raw close system call).  Meanwhile two
 *            threads connect to a plain listener on -e PORT and accept
 *            from it, check that both ends report their real addresses,
 *            and close them the same five ways, so descriptor numbers
 *            pass back and forth between proxied and plain sockets all
 *            the time.  With -R a third thread replaces the PROXY
 *            listener by a new one (SO_REUSEPORT, same port) every
 *            200 ms.  Any wrong answer prints "stale ..."; every second
 *            "stats conns=N plain=N stale=N" (and once more on SIGUSR1).
 *
 *   fdops    One thread, blocking accept.  For each connection, with A
 *            the address getpeername reports for it: dup2, dup3 and
 *            F_DUPFD copies (also above 4096, on separate pages of the
 *            library's table) report A; a plain socket dup2'ed over the
 *            connection, or given a number freed by close_range, by a
 *            raw close system call or by fclose, reports its own
 *            address; close_range with CLOSE_RANGE_CLOEXEC keeps A.  The
 *            client gets "fdops ok peer=A sock=S" or "fdops bad step=N
 *            got=X want=Y".
 *
 * Options: -l ADDR -p PORT (the listener), -n N, -P N, -t N, -e PORT, -R,
 * -U.
 * SIGTERM ends the process with _exit(0).
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define LINE_SIZE 512
#define ADDR_SIZE 80
#define MAX_HELD 65536

static struct {
	const char *mode;
	const char *addr;
	int port;
	int nofile;
	int procs;
	int threads;
	int plain_port;
	bool churn_listener;
	bool reuseport_group;
} opt = {
	.mode = "fdops",
	.addr = "127.0.0.1",
	.nofile = 64,
	.procs = 4,
	.threads = 8,
	.plain_port = -1,
};

static void
peer_of(int fd, char *dst, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		snprintf(dst, size, "error:%s", tu_errname(errno));
	else
		tu_fmt_addr(&ss, len, dst, size);
}

static void
sock_of(int fd, char *dst, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		snprintf(dst, size, "error:%s", tu_errname(errno));
	else
		tu_fmt_addr(&ss, len, dst, size);
}

/* What the kernel says, past any hook: the truth to compare with. */
static void
raw_name(long nr, int fd, char *dst, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (syscall(nr, fd, (struct sockaddr *)&ss, &len) != 0)
		snprintf(dst, size, "error:%s", tu_errname(errno));
	else
		tu_fmt_addr(&ss, len, dst, size);
}

static void
send_line(int fd, const char *line)
{
	char buf[LINE_SIZE + 2];
	int n = snprintf(buf, sizeof(buf), "%s\n", line);

	(void)tu_write_all(fd, buf, (size_t)n);
}

/* ===== emfile ===== */

static volatile sig_atomic_t released;

static void
on_usr1(int sig)
{
	(void)sig;
	released = 1;
}

static void
run_emfile(int lfd)
{
	static int held[MAX_HELD];
	struct sockaddr_storage ss;
	struct sigaction sa;
	struct rlimit rl;
	sigset_t block, wait_mask;
	char peer[ADDR_SIZE], line[LINE_SIZE];
	socklen_t len;
	int nheld = 0, fd, err, i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		tu_die("getrlimit");
	rl.rlim_cur = (rlim_t)opt.nofile;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		tu_die("setrlimit");
	tu_out("listening port=%d fd=%d nofile=%d", opt.port, lfd, opt.nofile);
	for (;;) {
		len = sizeof(ss);
		fd = accept(lfd, (struct sockaddr *)&ss, &len);
		if (fd < 0) {
			err = errno;
			tu_out("accept-error errno=%s held=%d", tu_errname(err),
			       nheld);
			if (err != EMFILE && err != ENFILE) {
				usleep(10000);
				continue;
			}
			while (!released)
				sigsuspend(&wait_mask);
			released = 0;
			for (i = 0; i < nheld; i++)
				close(held[i]);
			tu_out("released n=%d", nheld);
			nheld = 0;
			continue;
		}
		peer_of(fd, peer, sizeof(peer));
		snprintf(line, sizeof(line), "conn peer=%s", peer);
		tu_out("%s fd=%d", line, fd);
		send_line(fd, line);
		if (nheld < MAX_HELD)
			held[nheld++] = fd;
		else
			close(fd);
	}
}

/* ===== prefork ===== */

static void
serve_echo(int fd)
{
	char peer[ADDR_SIZE], sock[ADDR_SIZE], line[LINE_SIZE], buf[16384];
	ssize_t n;

	peer_of(fd, peer, sizeof(peer));
	sock_of(fd, sock, sizeof(sock));
	snprintf(line, sizeof(line), "conn pid=%ld peer=%s sock=%s",
		 (long)getpid(), peer, sock);
	tu_out("%s", line);
	send_line(fd, line);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || !tu_write_all(fd, buf, (size_t)n))
			break;
	}
	close(fd);
}

static void
prefork_loop(int lfd)
{
	int fd;

	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			tu_out("accept-error errno=%s pid=%ld",
			       tu_errname(errno), (long)getpid());
			usleep(10000);
			continue;
		}
		serve_echo(fd);
	}
}

static void
run_prefork(int lfd)
{
	pid_t parent = getpid(), pid;
	int i, *lfds = calloc((size_t)opt.procs, sizeof(int));

	if (lfds == NULL)
		tu_die("calloc");
	for (i = 0; i < opt.procs; i++) {
		lfds[i] = i == 0 || !opt.reuseport_group
				  ? lfd
				  : tu_listen_inet(opt.addr, opt.port,
						   TU_CLOEXEC | TU_REUSEPORT,
						   NULL);
		if (lfds[i] < 0)
			tu_die("listen");
	}
	for (i = 1; i < opt.procs; i++) {
		pid = fork();
		if (pid < 0)
			tu_die("fork");
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			prefork_loop(lfds[i]);
		}
		tu_out("child pid=%ld", (long)pid);
	}
	tu_out("listening port=%d fd=%d procs=%d", opt.port, lfd, opt.procs);
	prefork_loop(lfd);
}

/* ===== race ===== */

static _Atomic int cur_listener = -1;
static int plain_lfd = -1;
static struct sockaddr_storage plain_addr;
static socklen_t plain_addrlen;
static atomic_long n_conns, n_plain, n_stale, n_churn;

static void
stale(const char *where, int fd, const char *got, const char *want)
{
	atomic_fetch_add(&n_stale, 1);
	tu_out("stale where=%s fd=%d got=%s want=%s", where, fd, got, want);
}

/* Close fd one of five ways, then check what its number reports if a
 * plain socket took it over. */
static void
close_somehow(int fd, unsigned how)
{
	char got[ADDR_SIZE];
	FILE *f;
	int sp[2];

	switch (how % 5) {
	case 0:
		close(fd);
		break;
	case 1:
		if (close_range((unsigned)fd, (unsigned)fd, 0) != 0)
			close(fd);
		break;
	case 2:
		f = fdopen(fd, "r+");
		if (f != NULL)
			fclose(f); /* libc's own close: not interposed */
		else
			close(fd);
		break;
	case 3:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) !=
		    0) {
			close(fd);
			break;
		}
		if (dup2(sp[0], fd) == fd) {
			peer_of(fd, got, sizeof(got));
			if (strcmp(got, "unix:") != 0)
				stale("dup2-over", fd, got, "unix:");
		}
		close(fd);
		close(sp[0]);
		close(sp[1]);
		break;
	case 4:
		syscall(SYS_close, fd);
		break;
	}
}

static void *
race_acceptor(void *arg)
{
	struct sockaddr_storage ss;
	struct timeval tv = { .tv_sec = 10 };
	char line[LINE_SIZE], acc[ADDR_SIZE], got[ADDR_SIZE];
	const char *want;
	socklen_t len;
	unsigned how = (unsigned)(uintptr_t)arg;
	bool bad;
	size_t n;
	int fd, i;

	for (;;) {
		len = sizeof(ss);
		fd = accept(atomic_load(&cur_listener), (struct sockaddr *)&ss,
			    &len);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(1000);
			continue;
		}
		tu_fmt_addr(&ss, len, acc, sizeof(acc));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = tu_read_line(fd, line, sizeof(line));
		if (n == 0 || line[n - 1] != '\n' ||
		    strncmp(line, "EXPECT ", 7) != 0) {
			close_somehow(fd, how++);
			continue;
		}
		line[n - 1] = '\0';
		want = line + 7;
		bad = strcmp(acc, want) != 0;
		if (bad)
			stale("accept", fd, acc, want);
		for (i = 0; i < 20 && !bad; i++) {
			peer_of(fd, got, sizeof(got));
			if (strcmp(got, want) != 0) {
				stale("conn", fd, got, want);
				bad = true;
			}
		}
		send_line(fd, bad ? "bad" : "ok");
		atomic_fetch_add(&n_conns, 1);
		close_somehow(fd, how++);
	}
	return NULL;
}

static void *
race_churner(void *arg)
{
	char got[ADDR_SIZE], want[ADDR_SIZE], lname[ADDR_SIZE];
	unsigned how = (unsigned)(uintptr_t)arg;
	int c, a;

	tu_fmt_addr(&plain_addr, plain_addrlen, lname, sizeof(lname));
	for (;;) {
		c = socket(plain_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0) {
			usleep(1000);
			continue;
		}
		if (connect(c, (struct sockaddr *)&plain_addr, plain_addrlen) !=
		    0) {
			close(c);
			usleep(1000);
			continue;
		}
		a = accept(plain_lfd, NULL, NULL);
		if (a < 0) {
			close(c);
			continue;
		}
		/* Not necessarily c's peer (the other churner's), but
		 * always a real loopback address: compare with the kernel. */
		peer_of(a, got, sizeof(got));
		raw_name(SYS_getpeername, a, want, sizeof(want));
		if (strcmp(got, want) != 0)
			stale("plain-accepted", a, got, want);
		peer_of(c, got, sizeof(got));
		if (strcmp(got, lname) != 0)
			stale("plain-client", c, got, lname);
		sock_of(a, got, sizeof(got));
		if (strcmp(got, lname) != 0)
			stale("plain-sockname", a, got, lname);
		atomic_fetch_add(&n_plain, 1);
		close_somehow(a, how++);
		close_somehow(c, how++);
	}
	return NULL;
}

static void *
race_listener_churner(void *arg)
{
	int old, nl;

	(void)arg;
	for (;;) {
		usleep(200000);
		nl = tu_listen_inet(opt.addr, opt.port,
				    TU_CLOEXEC | TU_REUSEPORT, NULL);
		if (nl < 0)
			continue;
		old = atomic_exchange(&cur_listener, nl);
		/* Wakes the threads blocked in accept on the old one. */
		shutdown(old, SHUT_RDWR);
		close(old);
		atomic_fetch_add(&n_churn, 1);
	}
	return NULL;
}

static volatile sig_atomic_t stats_now;

static void
on_stats(int sig)
{
	(void)sig;
	stats_now = 1;
}

static void
run_race(int lfd)
{
	struct sigaction sa;
	pthread_t t;
	int i, pport = 0;

	atomic_store(&cur_listener, lfd);
	if (opt.plain_port < 0) {
		fprintf(stderr, "torture: race needs -e PORT\n");
		exit(2);
	}
	plain_lfd =
		tu_listen_inet(opt.addr, opt.plain_port, TU_CLOEXEC, &pport);
	if (plain_lfd < 0)
		tu_die("plain listener");
	plain_addrlen = sizeof(plain_addr);
	if (getsockname(plain_lfd, (struct sockaddr *)&plain_addr,
			&plain_addrlen) != 0)
		tu_die("getsockname");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stats;
	sigaction(SIGUSR1, &sa, NULL);
	for (i = 0; i < opt.threads; i++)
		if (pthread_create(&t, NULL, race_acceptor,
				   (void *)(uintptr_t)i) != 0)
			tu_die("pthread_create");
	for (i = 0; i < 2; i++)
		if (pthread_create(&t, NULL, race_churner,
				   (void *)(uintptr_t)(i * 2)) != 0)
			tu_die("pthread_create");
	if (opt.churn_listener &&
	    pthread_create(&t, NULL, race_listener_churner, NULL) != 0)
		tu_die("pthread_create");
	tu_out("listening port=%d fd=%d plain=%d", opt.port, lfd, pport);
	for (;;) {
		for (i = 0; i < 10 && !stats_now; i++)
			usleep(100000);
		stats_now = 0;
		tu_out("stats conns=%ld plain=%ld stale=%ld churn=%ld",
		       atomic_load(&n_conns), atomic_load(&n_plain),
		       atomic_load(&n_stale), atomic_load(&n_churn));
	}
}

/* ===== fdops ===== */

struct fdcheck {
	int conn;
	const char *want_peer; /* the connection's own answer */
	int step;
	char got[ADDR_SIZE];
	const char *want;
	bool bad;
};

static void
expect_peer(struct fdcheck *c, int fd, const char *want)
{
	c->step++;
	if (c->bad)
		return;
	peer_of(fd, c->got, sizeof(c->got));
	if (strcmp(c->got, want) != 0) {
		c->bad = true;
		c->want = want;
	}
}

static void
expect_ok(struct fdcheck *c, bool ok, const char *what)
{
	c->step++;
	if (c->bad || ok)
		return;
	c->bad = true;
	snprintf(c->got, sizeof(c->got), "%s:%s", what, tu_errname(errno));
	c->want = "success";
}

static void
fdops_one(int fd, int high1, int high2)
{
	struct fdcheck c = { .conn = fd };
	char peer[ADDR_SIZE], sock[ADDR_SIZE], line[LINE_SIZE];
	int sp[2], reply, f;
	FILE *fp;

	peer_of(fd, peer, sizeof(peer));
	sock_of(fd, sock, sizeof(sock));
	reply = dup(fd);
	expect_ok(&c, reply >= 0, "dup");
	expect_ok(&c, socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0,
		  "socketpair");
	if (c.bad)
		goto done;

	/* Copies report the connection's address, above 4096 too. */
	expect_ok(&c, dup2(fd, 100) == 100, "dup2");
	expect_peer(&c, 100, peer);
	expect_ok(&c, dup3(fd, 101, O_CLOEXEC) == 101, "dup3");
	expect_peer(&c, 101, peer);
	expect_ok(&c, fcntl(fd, F_DUPFD, high1) == high1, "F_DUPFD high");
	expect_peer(&c, high1, peer);
	expect_ok(&c, fcntl(fd, F_DUPFD_CLOEXEC, high2) == high2,
		  "F_DUPFD_CLOEXEC high");
	expect_peer(&c, high2, peer);

	/* A plain socket dup2'ed over the connection's own number. */
	expect_ok(&c, dup2(sp[0], fd) == fd, "dup2 over");
	expect_peer(&c, fd, "unix:");
	expect_peer(&c, 100, peer);

	/* close_range: CLOEXEC keeps the entries, a real close drops them. */
	expect_ok(&c, close_range(100, 101, CLOSE_RANGE_CLOEXEC) == 0,
		  "close_range cloexec");
	expect_peer(&c, 100, peer);
	expect_peer(&c, 101, peer);
	expect_ok(&c, close_range(100, 101, 0) == 0, "close_range");
	expect_ok(&c, dup2(sp[1], 100) == 100, "dup2 reuse");
	expect_ok(&c, dup2(sp[1], 101) == 101, "dup2 reuse");
	expect_peer(&c, 100, "unix:");
	expect_peer(&c, 101, "unix:");
	close(100);
	close(101);

	/* Numbers above 4096 freed by close_range and reused. */
	expect_ok(&c, close_range((unsigned)high1, (unsigned)high2, 0) == 0,
		  "close_range high");
	expect_ok(&c, fcntl(sp[0], F_DUPFD, high1) == high1, "F_DUPFD reuse");
	expect_peer(&c, high1, "unix:");
	expect_ok(&c, fcntl(sp[0], F_DUPFD, high2) == high2, "F_DUPFD reuse");
	expect_peer(&c, high2, "unix:");
	close(high1);
	close(high2);

	/* Closed behind the hooks' back, reused behind their back too. */
	expect_ok(&c, dup2(reply, 200) == 200, "dup2");
	expect_peer(&c, 200, peer);
	syscall(SYS_close, 200);
	expect_ok(&c, syscall(SYS_dup3, sp[0], 200, 0) == 200, "raw dup3");
	expect_peer(&c, 200, "unix:");
	close(200);

	/* fclose of an fdopen'ed copy (libc closes it internally). */
	f = dup(reply);
	expect_ok(&c, f >= 0, "dup");
	fp = f >= 0 ? fdopen(f, "r+") : NULL;
	expect_ok(&c, fp != NULL, "fdopen");
	if (fp != NULL) {
		fclose(fp);
		expect_ok(&c, syscall(SYS_dup3, sp[0], f, 0) == f, "raw dup3");
		expect_peer(&c, f, "unix:");
		close(f);
	}

	/* The connection itself is still right under its other number. */
	expect_peer(&c, reply, peer);
	close(sp[0]);
	close(sp[1]);
done:
	if (c.bad)
		snprintf(line, sizeof(line), "fdops bad step=%d got=%s want=%s",
			 c.step, c.got, c.want);
	else
		snprintf(line, sizeof(line), "fdops ok peer=%s sock=%s", peer,
			 sock);
	tu_out("%s", line);
	if (reply >= 0) {
		send_line(reply, line);
		close(reply);
	}
	close(fd);
}

static void
run_fdops(int lfd)
{
	struct rlimit rl;
	int fd, high1 = 5000, high2 = 15000;

	/* As high as the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= 15001)
			high2 = (int)rl.rlim_cur - 1;
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= 5001) {
			fprintf(stderr, "torture: RLIMIT_NOFILE too low\n");
			exit(2);
		}
	}
	tu_out("listening port=%d fd=%d high=%d,%d", opt.port, lfd, high1,
	       high2);
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			tu_out("accept-error errno=%s", tu_errname(errno));
			usleep(10000);
			continue;
		}
		fdops_one(fd, high1, high2);
	}
}

/* ===== main ===== */

static void
usage(void)
{
	fprintf(stderr, "usage: torture -m emfile|prefork|race|fdops [-l ADDR] "
			"[-p PORT]\n"
			"               [-n NOFILE] [-P PROCS] [-t THREADS] "
			"[-e PORT] [-R] [-U]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int c, lfd;

	while ((c = getopt(argc, argv, "m:l:p:n:P:t:e:RU")) != -1) {
		switch (c) {
		case 'm':
			opt.mode = optarg;
			break;
		case 'l':
			opt.addr = optarg;
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 'n':
			opt.nofile = atoi(optarg);
			break;
		case 'P':
			opt.procs = atoi(optarg);
			break;
		case 't':
			opt.threads = atoi(optarg);
			break;
		case 'e':
			opt.plain_port = atoi(optarg);
			break;
		case 'R':
			opt.churn_listener = true;
			break;
		case 'U':
			opt.reuseport_group = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || opt.procs < 1 || opt.threads < 1)
		usage();
	tu_server_signals();
	tu_out_private();
	lfd = tu_listen_inet(opt.addr, opt.port,
			     TU_CLOEXEC | (strcmp(opt.mode, "race") == 0 ||
							   opt.reuseport_group
						   ? TU_REUSEPORT
						   : 0),
			     &opt.port);
	if (lfd < 0)
		tu_die("listen");
	if (strcmp(opt.mode, "emfile") == 0)
		run_emfile(lfd);
	else if (strcmp(opt.mode, "prefork") == 0)
		run_prefork(lfd);
	else if (strcmp(opt.mode, "race") == 0)
		run_race(lfd);
	else if (strcmp(opt.mode, "fdops") == 0)
		run_fdops(lfd);
	else
		usage();
	return 0;
}

/*
 * forkexec: a server that runs one program per connection, the way
 * inetd-style launchers and CGI servers do, run under LD_PRELOAD by the
 * integration tests.
 *
 *   forkexec [-m MODE] [-C] [-K] [-H] [-k N] -l ADDR -p PORT -- PROGRAM ...
 *
 * It listens on ADDR:PORT, prints "listening port=N" on stdout, and for
 * each connection it accepts sets tcpserver's variables (TCPREMOTEIP,
 * TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT from the kernel's own view of
 * the socket, bypassing any interposed getpeername, and TCPREMOTEHOST,
 * TCPREMOTEINFO naming the proxy), then starts PROGRAM with the
 * connection on fds 0 and 1.  MODE chooses how:
 *
 *   execve, execv, execvp, execvpe, execl, execlp, fexecve
 *           fork; the child dup2s the connection onto 0 and 1, closes the
 *           original descriptor and execs with that call (execvp and
 *           execlp search PATH for PROGRAM; execl and execlp pass at most
 *           four arguments);
 *   execle  the same with a fresh environment holding only LD_PRELOAD,
 *           ASAN_OPTIONS (when set) and the variables above (at most
 *           two arguments);
 *   posix_spawn, posix_spawnp
 *           no fork: the server itself spawns PROGRAM with the file
 *           actions dup2(conn, 0), dup2(conn, 1) and close(conn).
 *
 * -C accepts with SOCK_CLOEXEC.  -K keeps the original descriptor open in
 * the program (no close, no close file action).  -H: the server holds
 * every connection open after starting its program, so that later
 * programs start while it has several connections.  -k N: in fork modes
 * the child first runs "/bin/sh -c true" N times (fork and execv, one
 * after the other, each on the connection) and writes "children=N ok=M"
 * (M of them exited 0) to the connection before it execs PROGRAM.
 *
 * Errors go to stderr.  SIGTERM ends the server with _exit(0).
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tutil.h"

extern char **environ;

enum mode {
	M_EXECVE,
	M_EXECV,
	M_EXECVP,
	M_EXECVPE,
	M_EXECL,
	M_EXECLP,
	M_EXECLE,
	M_FEXECVE,
	M_SPAWN,
	M_SPAWNP,
};

static const char *const mode_names[] = {
	"execve", "execv",  "execvp",  "execvpe",     "execl",
	"execlp", "execle", "fexecve", "posix_spawn", "posix_spawnp",
};

static struct {
	enum mode mode;
	bool cloexec;
	bool keep;
	bool hold;
	int children;
	char **argv; /* PROGRAM [ARGS] */
	int argc;
} opt;

static void
usage(void)
{
	fprintf(stderr, "usage: forkexec [-m MODE] [-C] [-K] [-H] [-k N] "
			"-l ADDR -p PORT -- PROGRAM [ARGS]\n");
	exit(2);
}

/* The kernel's own address of a socket, as text: ip and port. */
static void
real_addr(int fd, bool peer, char *ip, size_t cap, char *port, size_t pcap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in *sin = (const void *)&ss;
	const struct sockaddr_in6 *sin6 = (const void *)&ss;
	long r;

	memset(&ss, 0, sizeof(ss));
	r = syscall(peer ? SYS_getpeername : SYS_getsockname, fd, &ss, &len);
	snprintf(ip, cap, "?");
	snprintf(port, pcap, "?");
	if (r != 0)
		return;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)cap);
		snprintf(port, pcap, "%u", ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)cap);
		snprintf(port, pcap, "%u", ntohs(sin6->sin6_port));
	}
}

/* What a launcher puts in the environment, for the connection on fd. */
static char rip[64], rport[8], lip[64], lport[8];
static char e_rip[80], e_rport[24], e_lip[80], e_lport[24];

static void
set_tcp_env(int fd)
{
	real_addr(fd, true, rip, sizeof(rip), rport, sizeof(rport));
	real_addr(fd, false, lip, sizeof(lip), lport, sizeof(lport));
	setenv("TCPREMOTEIP", rip, 1);
	setenv("TCPREMOTEPORT", rport, 1);
	setenv("TCPLOCALIP", lip, 1);
	setenv("TCPLOCALPORT", lport, 1);
	setenv("TCPREMOTEHOST", "proxy.invalid", 1);
	setenv("TCPREMOTEINFO", "proxyuser", 1);
	snprintf(e_rip, sizeof(e_rip), "TCPREMOTEIP=%s", rip);
	snprintf(e_rport, sizeof(e_rport), "TCPREMOTEPORT=%s", rport);
	snprintf(e_lip, sizeof(e_lip), "TCPLOCALIP=%s", lip);
	snprintf(e_lport, sizeof(e_lport), "TCPLOCALPORT=%s", lport);
}

/* Run "/bin/sh -c true" n times; returns how many exited 0. */
static int
run_children(int n)
{
	char *sh[] = { "sh", "-c", "true", NULL };
	int i, ok = 0, status;
	pid_t pid;

	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid < 0) {
			perror("forkexec: fork");
			continue;
		}
		if (pid == 0) {
			execv("/bin/sh", sh);
			_exit(127);
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok++;
	}
	return ok;
}

/* In the forked child: the connection on 0 and 1, then exec. */
static void
child(int conn)
{
	char *const *a = opt.argv;
	char *arg[5] = { NULL, NULL, NULL, NULL, NULL };
	char *fresh[8], preload[4096], asan[1024], line[64];
	int i, k = 0, fd, ok;

	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	set_tcp_env(conn);
	if (dup2(conn, 0) < 0 || dup2(conn, 1) < 0) {
		perror("forkexec: dup2");
		_exit(126);
	}
	if (!opt.keep && conn > 1)
		close(conn);
	if (opt.children > 0) {
		ok = run_children(opt.children);
		snprintf(line, sizeof(line), "children=%d ok=%d\n",
			 opt.children, ok);
		if (write(1, line, strlen(line)) < 0)
			_exit(125);
	}
	for (i = 1; i < opt.argc && i < 5; i++)
		arg[i - 1] = a[i];
	switch (opt.mode) {
	case M_EXECVE:
		execve(a[0], a, environ);
		break;
	case M_EXECV:
		execv(a[0], a);
		break;
	case M_EXECVP:
		execvp(a[0], a);
		break;
	case M_EXECVPE:
		execvpe(a[0], a, environ);
		break;
	case M_EXECL:
		execl(a[0], a[0], arg[0], arg[1], arg[2], arg[3], (char *)NULL);
		break;
	case M_EXECLP:
		execlp(a[0], a[0], arg[0], arg[1], arg[2], arg[3],
		       (char *)NULL);
		break;
	case M_EXECLE:
		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s",
			 getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
		fresh[k++] = preload;
		if (getenv("ASAN_OPTIONS")) {
			snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s",
				 getenv("ASAN_OPTIONS"));
			fresh[k++] = asan;
		}
		fresh[k++] = e_rip;
		fresh[k++] = e_rport;
		fresh[k++] = e_lip;
		fresh[k++] = e_lport;
		fresh[k++] = "TCPREMOTEHOST=proxy.invalid";
		fresh[k] = NULL;
		/* The environment follows the first NULL. */
		if (opt.argc == 1)
			execle(a[0], a[0], (char *)NULL, fresh);
		else if (opt.argc == 2)
			execle(a[0], a[0], a[1], (char *)NULL, fresh);
		else
			execle(a[0], a[0], a[1], a[2], (char *)NULL, fresh);
		break;
	case M_FEXECVE:
		fd = open(a[0], O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			fexecve(fd, a, environ);
		break;
	default:
		break;
	}
	fprintf(stderr, "forkexec: %s %s: %s\n", mode_names[opt.mode], a[0],
		strerror(errno));
	_exit(127);
}

/* posix_spawn(p) from the server itself, without fork. */
static void
spawn(int conn)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r;

	set_tcp_env(conn);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, conn, 0);
	posix_spawn_file_actions_adddup2(&fa, conn, 1);
	if (!opt.keep)
		posix_spawn_file_actions_addclose(&fa, conn);
	if (opt.mode == M_SPAWN)
		r = posix_spawn(&pid, opt.argv[0], &fa, NULL, opt.argv,
				environ);
	else
		r = posix_spawnp(&pid, opt.argv[0], &fa, NULL, opt.argv,
				 environ);
	if (r != 0)
		fprintf(stderr, "forkexec: %s %s: %s\n", mode_names[opt.mode],
			opt.argv[0], strerror(r));
	posix_spawn_file_actions_destroy(&fa);
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = -1, lfd, conn, c;
	size_t i;
	pid_t pid;

	while ((c = getopt(argc, argv, "l:p:m:CKHk:")) != -1) {
		switch (c) {
		case 'l':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'm':
			for (i = 0;
			     i < sizeof(mode_names) / sizeof(*mode_names); i++)
				if (strcmp(optarg, mode_names[i]) == 0)
					break;
			if (i == sizeof(mode_names) / sizeof(*mode_names))
				usage();
			opt.mode = (enum mode)i;
			break;
		case 'C':
			opt.cloexec = true;
			break;
		case 'K':
			opt.keep = true;
			break;
		case 'H':
			opt.hold = true;
			break;
		case 'k':
			opt.children = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (port < 0 || optind >= argc)
		usage();
	opt.argv = argv + optind;
	opt.argc = argc - optind;
	tu_server_signals();
	lfd = tu_listen_inet(addr, port, 0, &port);
	if (lfd < 0) {
		perror("forkexec: listen");
		exit(1);
	}
	tu_out("listening port=%d", port);

	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		conn = accept4(lfd, NULL, NULL, opt.cloexec ? SOCK_CLOEXEC : 0);
		if (conn < 0) {
			if (errno != EINTR && errno != EAGAIN)
				perror("forkexec: accept");
			continue;
		}
		if (opt.mode == M_SPAWN || opt.mode == M_SPAWNP) {
			spawn(conn);
		} else {
			pid = fork();
			if (pid < 0)
				perror("forkexec: fork");
			else if (pid == 0)
				child(conn);
		}
		if (!opt.hold)
			close(conn);
	}
}

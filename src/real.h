/*
 * real.h - the libc entry points that ppshim interposes, bound once.
 *
 * Every hook reaches libc through pp_real.  The table is filled by
 * pp_real_bind() (pthread_once + dlsym(RTLD_NEXT)), which every hook
 * calls first, so a hook called before the library's constructor (from
 * another library's constructor) works as well as a later one.  While
 * the binding runs, a hook re-entered from dlsym's own allocations on
 * the same thread must not call through the table: pp_binding() tells
 * it to use the raw system call instead.
 *
 * How the library reaches the kernel: three routes, one rule each.
 *
 * 1. pp_real.NAME, for a call ppshim hooks, made on the program's
 *    behalf or on the program's descriptors: the real accept of a hook,
 *    the peek and read of a header, the listener's name for a knock,
 *    and the close of a connection it accepted and never handed over.
 *    It goes where the program's own call would have gone: to libc, or
 *    to a library preloaded after ppshim.  Never the exported name
 *    itself: inside the library that can bind to another preloaded
 *    library's definition, or back into our own hook.  The exec family
 *    calls its static bodies in hook_exec.c for the same reason.
 * 2. syscall(SYS_NAME), for what is the library's alone and must stay
 *    invisible to the program and to other interposers: the sockets it
 *    makes for itself (the knock, the log socket, the pool pair), and
 *    any call made where pp_real cannot be used: while pp_binding(),
 *    before pp_ready() (the hook falls through to the kernel), and in a
 *    fork child that drops what its parent was holding
 *    (pp_conn_forget).
 * 3. Plain libc, for everything ppshim does not hook (poll, setsockopt,
 *    malloc, getenv...): no interposer of ours stands in between.
 */
#ifndef PP_REAL_H
#define PP_REAL_H

#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <spawn.h>

struct pp_real {
	__typeof__(accept) *accept;
	__typeof__(accept4) *accept4;
	__typeof__(listen) *listen;
	__typeof__(getpeername) *getpeername;
	__typeof__(getsockname) *getsockname;
	__typeof__(close) *close;
	__typeof__(dup) *dup;
	__typeof__(dup2) *dup2;
	__typeof__(dup3) *dup3;
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*close_range)(unsigned int, unsigned int, int);
	void (*closefrom)(int);
	__typeof__(recv) *recv;
	/* UDP (udp.c, hook_udp.c) */
	__typeof__(socket) *socket;
	__typeof__(bind) *bind;
	__typeof__(connect) *connect;
	__typeof__(read) *read;
	__typeof__(recvfrom) *recvfrom;
	__typeof__(recvmsg) *recvmsg;
	__typeof__(recvmmsg) *recvmmsg;
	__typeof__(send) *send;
	__typeof__(write) *write;
	__typeof__(sendto) *sendto;
	__typeof__(sendmsg) *sendmsg;
	__typeof__(sendmmsg) *sendmmsg;
	__typeof__(execve) *execve;
	int (*execvpe)(const char *, char *const[], char *const[]);
	__typeof__(fexecve) *fexecve;
	__typeof__(posix_spawn) *posix_spawn;
	__typeof__(posix_spawnp) *posix_spawnp;
	/*
	 * The names a 32-bit program built with _TIME_BITS=64 calls
	 * instead (glibc 2.34 and later); NULL where libc lacks them.
	 * Their types are spelled out without struct timespec, whose
	 * layout depends on how the file including this one is built.
	 */
	ssize_t (*recvmsg64)(int, struct msghdr *, int);
	int (*recvmmsg64)(int, struct mmsghdr *, unsigned int, int, void *);
	ssize_t (*sendmsg64)(int, const struct msghdr *, int);
	int (*sendmmsg64)(int, struct mmsghdr *, unsigned int, int);
	int (*fcntl_time64)(int, int, ...);
	/*
	 * Calls that hand out a descriptor number (hook_newfd.c): their
	 * hooks only forget a stale entry of the number they return.  The
	 * *64 names are spelled *_64: musl's headers make open64 and the
	 * like macros for the plain names.
	 */
	int (*socketpair)(int, int, int, int[2]);
	int (*pipe)(int[2]);
	int (*pipe2)(int[2], int);
	int (*open)(const char *, int, ...);
	int (*open_64)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*openat_64)(int, const char *, int, ...);
	int (*open_2)(const char *, int);
	int (*open64_2)(const char *, int);
	int (*openat_2)(int, const char *, int);
	int (*openat64_2)(int, const char *, int);
	int (*creat)(const char *, mode_t);
	int (*creat_64)(const char *, mode_t);
	int (*eventfd)(unsigned int, int);
	int (*signalfd)(int, const void *, int);
	int (*timerfd_create)(int, int);
	int (*epoll_create)(int);
	int (*epoll_create1)(int);
	int (*memfd_create)(const char *, unsigned int);
	int (*inotify_init)(void);
	int (*inotify_init1)(int);
	int (*fanotify_init)(unsigned int, unsigned int);
	int (*pidfd_open)(pid_t, unsigned int);
	int (*pidfd_getfd)(int, int, unsigned int);
};

extern struct pp_real pp_real;

/* Bind every entry of pp_real (once per process).  Never fails: a name
 * libc lacks stays NULL and its hook falls back to the system call. */
void pp_real_bind(void);

/* True on the thread that is running pp_real_bind() right now. */
bool pp_binding(void);

#endif /* PP_REAL_H */

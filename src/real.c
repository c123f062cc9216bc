/*
 * real.c - binding the real libc functions behind the hooks.
 *
 * One pthread_once binds the whole table, so there is no per-call
 * "is it bound yet" race and no lock afterwards.  dlsym may allocate;
 * an allocator that calls back into a hooked function during that time
 * (P6 in the design notes) finds pp_binding() true on its thread, and
 * the hook then makes the system call itself instead of recursing into
 * pthread_once, which would deadlock.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

#include "hook_vfork.h"
#include "pp_hot.h"
#include "real.h"
#include "route.h"
#include "shim.h"

PP_HOT_DATA struct pp_real pp_real;

static pthread_once_t pp_bind_once = PTHREAD_ONCE_INIT;
static __thread bool pp_in_bind;

static void *
pp_sym(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/*
 * The vDSO's clock_gettime, for pp_now_s() (route.h): glibc lists the
 * vDSO among the loaded objects.  Elsewhere (musl, or under valgrind,
 * which has no vDSO) the clock stays libc's.
 */
static void
pp_bind_clock(void)
{
	static const char *const names[] = { "__vdso_clock_gettime",
					     "__kernel_clock_gettime" };
	void *h = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
	void *f = NULL;
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; f == NULL && i < sizeof(names) / sizeof(names[0]); i++)
		f = dlsym(h, names[i]);
	if (f != NULL)
		pp_rt_clock = (pp_clock_fn)f;
	dlclose(h);
}

static void
pp_bind_all(void)
{
	int saved = errno;

	pp_in_bind = true;
	pp_real.accept = pp_sym("accept");
	pp_real.accept4 = pp_sym("accept4");
	pp_real.listen = pp_sym("listen");
	pp_real.getpeername = pp_sym("getpeername");
	pp_real.getsockname = pp_sym("getsockname");
	pp_real.close = pp_sym("close");
	pp_real.dup = pp_sym("dup");
	pp_real.dup2 = pp_sym("dup2");
	pp_real.dup3 = pp_sym("dup3");
	pp_real.fcntl = pp_sym("fcntl");
	pp_real.fcntl64 = pp_sym("fcntl64");
	pp_real.close_range = pp_sym("close_range");
	pp_real.closefrom = pp_sym("closefrom");
	pp_real.recv = pp_sym("recv");
	pp_vfork_real = pp_sym("vfork");
	pp_real.socket = pp_sym("socket");
	pp_real.bind = pp_sym("bind");
	pp_real.connect = pp_sym("connect");
	pp_real.read = pp_sym("read");
	pp_real.recvfrom = pp_sym("recvfrom");
	pp_real.recvmsg = pp_sym("recvmsg");
#ifdef HAVE___RECVMMSG_TIME64
	/* 32-bit musl: the hook named recvmmsg is __recvmmsg_time64. */
	pp_real.recvmmsg = pp_sym("__recvmmsg_time64");
#else
	pp_real.recvmmsg = pp_sym("recvmmsg");
#endif
	pp_real.send = pp_sym("send");
	pp_real.write = pp_sym("write");
	pp_real.sendto = pp_sym("sendto");
	pp_real.sendmsg = pp_sym("sendmsg");
	pp_real.sendmmsg = pp_sym("sendmmsg");
	pp_real.execve = pp_sym("execve");
	pp_real.execvpe = pp_sym("execvpe");
	pp_real.fexecve = pp_sym("fexecve");
	pp_real.posix_spawn = pp_sym("posix_spawn");
	pp_real.posix_spawnp = pp_sym("posix_spawnp");
#ifdef HAVE___RECVMSG64
	pp_real.recvmsg64 = pp_sym("__recvmsg64");
#endif
#ifdef HAVE___RECVMMSG64
	pp_real.recvmmsg64 = pp_sym("__recvmmsg64");
#endif
#ifdef HAVE___SENDMSG64
	pp_real.sendmsg64 = pp_sym("__sendmsg64");
#endif
#ifdef HAVE___SENDMMSG64
	pp_real.sendmmsg64 = pp_sym("__sendmmsg64");
#endif
#ifdef HAVE___FCNTL_TIME64
	pp_real.fcntl_time64 = pp_sym("__fcntl_time64");
#endif
	pp_real.socketpair = pp_sym("socketpair");
	pp_real.pipe = pp_sym("pipe");
	pp_real.pipe2 = pp_sym("pipe2");
	pp_real.open = pp_sym("open");
	pp_real.open_64 = pp_sym("open64");
	pp_real.openat = pp_sym("openat");
	pp_real.openat_64 = pp_sym("openat64");
	pp_real.open_2 = pp_sym("__open_2");
	pp_real.open64_2 = pp_sym("__open64_2");
	pp_real.openat_2 = pp_sym("__openat_2");
	pp_real.openat64_2 = pp_sym("__openat64_2");
	pp_real.creat = pp_sym("creat");
	pp_real.creat_64 = pp_sym("creat64");
	pp_real.eventfd = pp_sym("eventfd");
	pp_real.signalfd = pp_sym("signalfd");
	pp_real.timerfd_create = pp_sym("timerfd_create");
	pp_real.epoll_create = pp_sym("epoll_create");
	pp_real.epoll_create1 = pp_sym("epoll_create1");
	pp_real.memfd_create = pp_sym("memfd_create");
	pp_real.inotify_init = pp_sym("inotify_init");
	pp_real.inotify_init1 = pp_sym("inotify_init1");
	pp_real.fanotify_init = pp_sym("fanotify_init");
	pp_real.pidfd_open = pp_sym("pidfd_open");
	pp_real.pidfd_getfd = pp_sym("pidfd_getfd");
	pp_bind_clock();
	pp_in_bind = false;
	errno = saved;
}

void
pp_real_bind(void)
{
	if (pp_in_bind)
		return;
	pthread_once(&pp_bind_once, pp_bind_all);
}

bool
pp_binding(void)
{
	return pp_in_bind;
}

/*
 * stats.c - the state file: this process's counters, per PROXY-only
 * socket, in a small file that `ppshim status` reads without the
 * process's help (layout in core/pp_state.h, the counting in stats.h).
 *
 * Where: PP_STATE_DIR when set, else /run/ppshim (made 0755 when it is
 * missing and can be), as ppshim-PID.state, mode 0644 less the umask.
 * None when the directory cannot be written: said once, at info.
 *
 * When: the first time a socket is classified PROXY-only, never in a
 * process without one.  The file is made under a temporary name, filled
 * and renamed into place, so a reader never sees half a header.  Only
 * system calls (raw, real.h rule 2: the file is the library's own) and
 * fixed buffers; the configuration's text is made at load.  A signal
 * handler that interrupts the making does not make it again: its
 * socket is not counted.
 *
 * fork: the child keeps the mapping, and its counts go into the
 * parent's file, which so shows the totals of a prefork group; the file
 * names its maker's pid only, and only the maker removes it at exit.
 * exec: the new image makes its own file (the old one, under the same
 * pid, is removed at load), and counts from zero.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pp_sockaddr.h"
#include "shim.h"
#include "stats.h"

#define PP_STATE_DIR_DEFAULT "/run/ppshim"
#define PP_STATE_PATH_MAX 512

/* 0 not tried yet, 1 being made (by one thread), 2 decided. */
static atomic_int pp_st_state;
static char pp_st_config[PP_STATE_CONFIG];
static char pp_st_dir[PP_STATE_PATH_MAX - 64];
static char pp_st_path[PP_STATE_PATH_MAX];

static const char *
pp_st_getenv(const char *name)
{
	return getenv(name);
}

static const char *
pp_st_dirname(void)
{
	return pp_st_dir[0] != '\0' ? pp_st_dir : PP_STATE_DIR_DEFAULT;
}

static int
pp_st_rename(const char *from, const char *to)
{
#ifdef SYS_renameat
	return (int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
#else
	return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0);
#endif
}

void
pp_stat_prepare(void)
{
	const char *d = getenv("PP_STATE_DIR");
	char path[PP_STATE_PATH_MAX];

	if (pp_cfg.nports == 0)
		return;
	(void)pp_state_config_text(pp_st_getenv, pp_st_config,
				   sizeof(pp_st_config));
	if (d != NULL && d[0] != '\0') {
		if (strlen(d) >= sizeof(pp_st_dir)) {
			pp_log(PP_LOG_INFO,
			       "PP_STATE_DIR is too long: no state file");
			atomic_store(&pp_st_state, 2);
			return;
		}
		strcpy(pp_st_dir, d);
	}
	/* An earlier image of this pid (before exec) may have left one. */
	if (pp_state_path(pp_st_dirname(), (long)syscall(SYS_getpid), path,
			  sizeof(path)))
		(void)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
}

/* This process's start time, /proc/self/stat field 22 (0: unknown). */
static uint64_t
pp_st_start_ticks(void)
{
	char buf[1024];
	long n = -1;
	int fd;

	fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/stat",
			  O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = syscall(SYS_read, fd, buf, sizeof(buf));
	(void)syscall(SYS_close, fd);
	return n > 0 ? pp_state_starttime(buf, (size_t)n) : 0;
}

/* Make, fill and rename the file into place; NULL (said once) when it
 * cannot be. */
static struct pp_state_file *
pp_st_make(void)
{
	const char *dir = pp_st_dirname(), *what = "open";
	char tmp[PP_STATE_PATH_MAX];
	struct pp_state_file *f = MAP_FAILED;
	struct timespec now;
	long pid = syscall(SYS_getpid);
	int fd = -1, e;

	if (pp_st_dir[0] == '\0')
		(void)syscall(SYS_mkdirat, AT_FDCWD, dir, 0755);
	if (!pp_state_path(dir, pid, pp_st_path, sizeof(pp_st_path)) ||
	    snprintf(tmp, sizeof(tmp), "%s/.ppshim-%ld.tmp", dir, pid) >=
		    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	(void)syscall(SYS_unlinkat, AT_FDCWD, tmp, 0);
	fd = (int)syscall(SYS_openat, AT_FDCWD, tmp,
			  O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  0644);
	if (fd < 0)
		goto fail;
	what = "size";
	if (syscall(SYS_ftruncate, fd, (long)sizeof(*f)) != 0)
		goto fail;
	what = "map";
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED)
		goto fail;
	(void)syscall(SYS_close, fd);
	fd = -1;
	f->version = PP_STATE_VERSION;
	f->size = sizeof(*f);
	f->nslots = PP_STATE_SLOTS;
	f->ncounters = PP_STATE_COUNTERS;
	f->pid = (int32_t)pid;
	f->start_ticks = pp_st_start_ticks();
	clock_gettime(CLOCK_REALTIME, &now);
	f->created = (int64_t)now.tv_sec;
	memcpy(f->config, pp_st_config, sizeof(f->config));
	/* The magic last: a reader takes the file once it is there. */
	atomic_thread_fence(memory_order_release);
	memcpy(f->magic, PP_STATE_MAGIC, sizeof(f->magic));
	what = "rename";
	if (pp_st_rename(tmp, pp_st_path) != 0)
		goto fail;
	return f;
fail:
	e = errno;
	if (f != MAP_FAILED)
		munmap(f, sizeof(*f));
	if (fd >= 0) {
		(void)syscall(SYS_close, fd);
		(void)syscall(SYS_unlinkat, AT_FDCWD, tmp, 0);
	} else if (what[0] != 'o') {
		(void)syscall(SYS_unlinkat, AT_FDCWD, tmp, 0);
	}
	pp_st_path[0] = '\0';
	pp_log(PP_LOG_INFO, "no state file, counters off: %s: %s: %s", dir,
	       what, strerror(e));
	return NULL;
}

/* The file, made the first time; NULL when there is none (yet). */
static struct pp_state_file *
pp_st_file(void)
{
	struct pp_state_file *f;
	int s = atomic_load_explicit(&pp_st_state, memory_order_acquire);
	int i;

	if (s == 2)
		return atomic_load_explicit(&pp_stat_map, memory_order_acquire);
	/* A handler that interrupted its own thread making it. */
	if (pp_holding(PP_HOLD_STATE))
		return NULL;
	s = 0;
	if (atomic_compare_exchange_strong(&pp_st_state, &s, 1)) {
		(void)pp_hold(PP_HOLD_STATE);
		f = pp_st_make();
		atomic_store_explicit(&pp_stat_map, f, memory_order_release);
		atomic_store_explicit(&pp_st_state, 2, memory_order_release);
		pp_release(PP_HOLD_STATE);
		return f;
	}
	/* Another thread is making it: a few system calls. */
	for (i = 0;
	     i < 100000 &&
	     atomic_load_explicit(&pp_st_state, memory_order_acquire) == 1;
	     i++)
		sched_yield();
	return atomic_load_explicit(&pp_stat_map, memory_order_acquire);
}

unsigned
pp_stat_slot(int socktype, const struct sockaddr *sa, socklen_t len)
{
	static atomic_bool said;
	struct pp_state_file *f = pp_st_file();
	char key[PP_STATE_ADDR];
	uint32_t tp, u;
	unsigned i;

	if (f == NULL)
		return 0;
	memset(key, 0, sizeof(key));
	pp_sa_fmt(sa, len, key, sizeof(key)); /* "ADDR:PORT", "unix:/path" */
	tp = sa->sa_family == AF_UNIX ? PP_STATE_UNIX
	     : socktype == SOCK_DGRAM ? PP_STATE_UDP
				      : PP_STATE_TCP;
	for (i = 0; i < PP_STATE_SLOTS; i++) {
		struct pp_state_slot *s = &f->slot[i];

		if (atomic_load_explicit(&s->used, memory_order_acquire) == 2 &&
		    s->transport == tp && strcmp(s->addr, key) == 0)
			return i + 1;
	}
	for (i = 0; i < PP_STATE_SLOTS; i++) {
		struct pp_state_slot *s = &f->slot[i];

		u = 0;
		if (!atomic_compare_exchange_strong(&s->used, &u, 1))
			continue;
		s->transport = tp;
		memcpy(s->addr, key, sizeof(s->addr));
		atomic_store_explicit(&s->used, 2, memory_order_release);
		return i + 1;
	}
	if (!atomic_exchange(&said, true))
		pp_log(PP_LOG_INFO,
		       "state file full: %s and later listeners not counted",
		       key);
	return 0;
}

void
pp_stat_atfork_child(void)
{
	int s = 1;

	/* The thread making it does not exist here. */
	(void)atomic_compare_exchange_strong(&pp_st_state, &s, 0);
}

/* At exit, in the process that made it: remove the file. */
__attribute__((destructor)) static void
pp_stat_fini(void)
{
	struct pp_state_file *f =
		atomic_load_explicit(&pp_stat_map, memory_order_acquire);

	if (f != NULL && pp_st_path[0] != '\0' &&
	    f->pid == (int32_t)syscall(SYS_getpid))
		(void)syscall(SYS_unlinkat, AT_FDCWD, pp_st_path, 0);
}

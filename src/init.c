/*
 * init.c - loading: bind the real symbols, read the configuration once,
 * install the fork handlers.
 *
 * The configuration is read by the constructor, before main and before
 * the program can clear its environment (exim and nginx do), or earlier
 * still by whichever hook another library's constructor calls first.
 * A malformed value stops the process with status 78 (EX_CONFIG) and a
 * line naming the variable and the token: it never runs with a
 * half-understood ACL.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook_vfork.h"
#include "inherit.h"
#include "pending.h"
#include "pp_hot.h"
#include "shim.h"
#include "stats.h"
#include "trust.h"
#include "udp_sock.h"

struct pp_config pp_cfg;
PP_HOT_DATA atomic_bool pp_done;
static pid_t pp_pid;

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/*
 * A page the kernel zeroes in the child of any fork that copies memory
 * (fork, or a raw clone without CLONE_VM, which runs no pthread_atfork
 * handler: vsftpd's isolate=YES), and shares with a vfork or CLONE_VM
 * child.  Nonzero here means "this memory is still the process that
 * owns the table, or shared with it".
 */
static volatile unsigned char *pp_own_page;

static void
pp_mark_own_memory(void)
{
	void *p;

	if (pp_own_page == NULL) {
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;
		if (madvise(p, 4096, MADV_WIPEONFORK) != 0) {
			munmap(p, 4096); /* before Linux 4.14: getpid alone */
			return;
		}
		pp_own_page = p;
	}
	pp_own_page[0] = 1;
}

static pthread_once_t pp_init_once = PTHREAD_ONCE_INIT;
static __thread bool pp_in_init;

static const char *
pp_env(const char *name)
{
	return getenv(name);
}

static void
pp_init_all(void)
{
	char err[PP_ERRMSG_MAX];
	struct pp_aclio io;
	int saved = errno;

	pp_in_init = true;
	if (!pp_trust_prepare(&io)) {
		pp_log_config_error("no memory for the lists PP_ALLOW and "
				    "PP_DIRECT name");
		_exit(78);
	}
	if (pp_config_parse_io(&pp_cfg, pp_env, &io, err, sizeof(err)) != 0) {
		pp_log_config_error(err);
		_exit(78);
	}
	pp_trust_start();
	pp_log_init(pp_cfg.log_level, pp_cfg.log_target);
	if (pp_cfg.nports == 0 && getenv("PPSHIM_HANDOVER") == NULL)
		pp_log(PP_LOG_WARN,
		       "PP_PORTS is empty: no socket is PROXY-only");
	pp_pid = (pid_t)syscall(SYS_getpid);
	pp_stat_prepare();
	pp_mark_own_memory();
	pthread_atfork(pp_conn_atfork_prepare, pp_conn_atfork_parent,
		       pp_conn_atfork_child);
	pp_inherit_load();
	pp_udp_inherit();
	pp_in_init = false;
	atomic_store_explicit(&pp_done, true, memory_order_release);
	errno = saved;
}

bool
pp_ready_slow(void)
{
	if (pp_binding() || pp_in_init)
		return false;
	pp_real_bind();
	pthread_once(&pp_init_once, pp_init_all);
	return true;
}

void
pp_init_atfork_child(void)
{
	pp_pid = (pid_t)syscall(SYS_getpid);
	pp_mark_own_memory();
	pp_trust_atfork_child();
	pp_stat_atfork_child();
}

PP_HOT_CONN bool
pp_claim_table(void)
{
	/* A copy made by a fork that ran no handlers (the page is wiped in
	 * it): ours now.  One load, no system call. */
	if (pp_own_page != NULL && pp_own_page[0] == 0) {
		/* A fork that bypassed pthread_atfork: our own copy now.
		 * malloc's locks were not reset by such a fork, so the
		 * lists are dropped, not freed. */
		pp_init_atfork_child();
		pp_conn_forget(false);
		return true;
	}
	/* Memory shared with another process: only after vfork. */
	if (!atomic_load_explicit(&pp_vfork_seen, memory_order_relaxed))
		return true;
	return (pid_t)syscall(SYS_getpid) == pp_pid;
}

__attribute__((constructor)) static void
pp_constructor(void)
{
	int saved = errno;

	(void)pp_ready();
	errno = saved;
}

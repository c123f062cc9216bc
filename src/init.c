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
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

struct pp_config pp_cfg;
atomic_bool pp_done;
static pid_t pp_pid;

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
	int saved = errno;

	pp_in_init = true;
	if (pp_config_parse(&pp_cfg, pp_env, err, sizeof(err)) != 0) {
		pp_log_config_error(err);
		_exit(78);
	}
	pp_log_init(pp_cfg.log_level, pp_cfg.log_target);
	if (pp_cfg.nports == 0 && getenv("PPSHIM_HANDOVER") == NULL)
		pp_log(PP_LOG_WARN,
		       "PP_PORTS is empty: no socket is PROXY-only");
	pp_pid = (pid_t)syscall(SYS_getpid);
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
}

bool
pp_foreign_process(void)
{
	return (pid_t)syscall(SYS_getpid) != pp_pid;
}

__attribute__((constructor)) static void
pp_constructor(void)
{
	int saved = errno;

	(void)pp_ready();
	errno = saved;
}

/*
 * shim.h - what every hook consults first (init.c): the configuration,
 * whether the library is ready, and whether this process may change the
 * descriptor table.  The other files' shared functions are declared in
 * their own headers.
 */
#ifndef PP_SHIM_H
#define PP_SHIM_H

#include <stdbool.h>
#include <sys/socket.h>

#include "fdtab.h"
#include "log.h"
#include "pp_config.h"
#include "real.h"

#define PP_EXPORT __attribute__((visibility("default")))

/* The configuration, immutable once pp_ready() returned. */
extern struct pp_config pp_cfg;

#include <stdatomic.h>

extern atomic_bool pp_done;
bool pp_ready_slow(void);

/*
 * Make sure the real symbols are bound and the configuration read; exits
 * the process with status 78 on a configuration error (before main when
 * called from the constructor).  One load after the first call.  Returns
 * false while the binding itself runs on this thread (the caller must
 * then use the raw system call).
 */
static inline bool
pp_ready(void)
{
	if (__builtin_expect(
		    atomic_load_explicit(&pp_done, memory_order_acquire), 1))
		return true;
	return pp_ready_slow();
}

/*
 * May this process change the descriptor table?  First makes the table
 * this process's own when it is a copy a fork left without running the
 * fork handlers (a raw clone: the lists are dropped, the process id
 * taken anew); then false only in a child that shares our memory without
 * being us (vfork, or clone with CLONE_VM), which must leave the table
 * alone.  Only asked where an entry would change, never on the untracked
 * fast path: one load until a process has used vfork.
 */
bool pp_claim_table(void);

/* Called from the fork child handler: this is a new process now. */
void pp_init_atfork_child(void);

/* Are any PROXY-only sockets configured at all? */
static inline bool
pp_active(void)
{
	return pp_cfg.nports > 0;
}

#endif /* PP_SHIM_H */

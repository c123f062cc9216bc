/*
 * shim.h - declarations shared by the hook files.
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
 * True in a child that shares our memory without being us (vfork, or
 * clone with CLONE_VM): it must not change the table.  Only asked where
 * an entry would change, never on the untracked fast path.
 */
bool pp_foreign_process(void);

/* hook_vfork.c: has this process (or its parent before exec) used vfork?
 * libc's vfork, bound by pp_real_bind(). */
extern atomic_bool pp_vfork_seen;
extern void *pp_vfork_real;

/* Called from the fork child handler: this is a new process now. */
void pp_init_atfork_child(void);

/*
 * hook_newfd.c: a call that hands out descriptor numbers returned fd,
 * so whatever the table knew of that number is stale: forget it.  One
 * or two loads when the number is untracked (nearly always); keeps
 * errno; changes nothing in a vfork child.
 */
void pp_fd_forget(int fd);

static inline void
pp_fd_fresh(int fd)
{
	if (__builtin_expect(pp_fd_kind(fd) != PP_FD_NONE, 0))
		pp_fd_forget(fd);
}

/* The same for every descriptor a received message carried (SCM_RIGHTS
 * in msg's control data, as recvmsg left it).  Lock-free. */
void pp_fd_fresh_rights(const struct msghdr *msg);

/* Are any PROXY-only sockets configured at all? */
static inline bool
pp_active(void)
{
	return pp_cfg.nports > 0;
}

/* inherit.c: at load, take over connections an exec handed over, and
 * with PP_INHERIT=1 read the header of inherited connections. */
void pp_inherit_load(void);

/*
 * inherit.c: how many descriptors from 3 on systemd's socket activation
 * passed this process (LISTEN_FDS and LISTEN_PID, read by
 * pp_listen_fds_parse: at most PP_LISTEN_FDS_MAX), 0 when none or
 * malformed.  Reads the environment: at load only.
 */
int pp_listen_fds(void);

/*
 * hook_exec.c: set PPSHIM_HANDOVER in this process's own environment to
 * the connections it holds now (unset it when none), for the children
 * libc starts internally (system, popen), which copy the environment.
 * Called at load; not thread-safe (setenv).
 */
void pp_handover_environ(void);

/* udp_sock.c: which datagram sockets are PROXY-only (hooks in
 * hook_udp.c, the datagram path in udp.c). */

/* After a successful bind (or at load for inherited descriptors):
 * make fd a PP_FD_UDP entry when it is a datagram socket bound to a
 * PORT/udp address; otherwise, with clear, forget what was known. */
void pp_udp_classify(int fd, bool clear);

/* At load: classify the datagram sockets inherited on fds 0-2 and in the
 * systemd LISTEN_FDS range. */
void pp_udp_inherit(void);

#endif /* PP_SHIM_H */

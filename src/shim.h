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

/* conn.c: the accept path of PROXY-only listeners. */

/* Classify listening socket fd (at listen() or first accept()); caches
 * the answer in the fd table and returns its kind. */
enum pp_fdkind pp_classify(int fd);

/* accept/accept4 on a PROXY-only listener (kind PP_FD_LISTEN). */
int pp_accept_proxy(int lfd, struct sockaddr *addr, socklen_t *alen, int flags);

struct pp_tlvset;

/*
 * The reason a connection is refused, as logged: a copy in storage the
 * caller owns (never a pointer into a parser or a frame that is gone).
 */
#define PP_WHY_MAX 128

/*
 * Read the header of connection fd (accepted by someone else: an
 * inherited socket), waiting at most PP_TIMEOUT_MS.  Returns 0 with
 * *info (kind PP_FD_CONN, or PP_FD_NONE for LOCAL/UNKNOWN/UNSPEC) and
 * *tlvs filled, or -1 with the reason copied into why (PP_WHY_MAX
 * bytes, NUL-terminated).  Does not close fd.
 */
int pp_read_header_wait(int fd, int family, const union pp_sockaddr *peer,
			socklen_t peerlen, struct pp_fdinfo *info,
			struct pp_tlvset *tlvs, char why[PP_WHY_MAX]);

/* inherit.c: at load, take over connections an exec handed over, and
 * with PP_INHERIT=1 read the header of inherited connections. */
void pp_inherit_load(void);

/*
 * hook_exec.c: set PPSHIM_HANDOVER in this process's own environment to
 * the connections it holds now (unset it when none), for the children
 * libc starts internally (system, popen), which copy the environment.
 * Called at load; not thread-safe (setenv).
 */
void pp_handover_environ(void);

/* fork handlers for the pending-connection machinery. */
void pp_conn_atfork_prepare(void);
void pp_conn_atfork_parent(void);
void pp_conn_atfork_child(void);

/* Drop this process's copies of pending and ready connections (a child
 * of any kind of fork); frees them only when free_lists. */
void pp_conn_forget(bool free_lists);

/*
 * Copy the address a (length alen) into the caller's buffer the way the
 * kernel does: at most *len bytes, *len set to the full length.
 */
void pp_copy_addr(struct sockaddr *dst, socklen_t *len,
		  const struct sockaddr *a, socklen_t alen);

/*
 * Is connection entry info still what fd is?  real/reallen is the real
 * answer of getpeername (peer true) or getsockname (peer false) that
 * the caller just fetched: compared with the recorded real peer or local
 * port, no system call; entries without those fall back to the cookie.
 */
bool pp_conn_matches(int fd, const struct pp_fdinfo *info, bool peer,
		     const struct sockaddr *real, socklen_t reallen);

/* The cookie of connection entry info on fd after checking that fd is
 * still that socket, or 0 (exec hand-over). */
uint64_t pp_conn_cookie(int fd, const struct pp_fdinfo *info);

/* Is fd still the socket whose SO_COOKIE is cookie? */
bool pp_same_socket(int fd, uint64_t cookie);

/* The SO_COOKIE of fd, 0 when it has none. */
uint64_t pp_socket_cookie(int fd);

/* addr.c: "192.0.2.1:5000", "[2001:db8::1]:5000", "unix:/path" into out. */
void pp_fmt_addr(const struct sockaddr *sa, socklen_t len, char *out,
		 size_t cap);

/* udp.c: PROXY-only datagram sockets (hooks in hook_udp.c). */

/* After a successful bind (or at load for inherited descriptors):
 * make fd a PP_FD_UDP entry when it is a datagram socket bound to a
 * PORT/udp address; otherwise, with clear, forget what was known. */
void pp_udp_classify(int fd, bool clear);

/* At load: classify the datagram sockets inherited on fds 0-2 and in the
 * systemd LISTEN_FDS range. */
void pp_udp_inherit(void);

#endif /* PP_SHIM_H */

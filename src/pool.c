/*
 * pool.c - the shared ready pools of prefork groups.
 *
 * In a prefork group the knock wakes whichever process has waited
 * longest, seldom the one whose worker read the header.  So each
 * PROXY-only listener gets, at the first fork after it is classified,
 * a "pool": a close-on-exec, non-blocking AF_UNIX datagram socket
 * pair that every process forked afterwards shares (a process that
 * never forks needs none, and keeps every descriptor for itself).
 * The worker sends a ready connection there (SCM_RIGHTS, with the
 * header bytes and what it reports) before knocking, and whichever
 * process takes a knock, its own or another's, takes the oldest
 * connection from the pool, or from the pool of an SO_REUSEPORT
 * sibling on the same address: the header reader's state travels
 * with the connection.  The worker knocks again every PP_REKNOCK_MS
 * while its connection is still there (a knock taken by a process
 * without the pool), and a connection nobody took for a minute is
 * reset.  Without a pool (no slot, the listener classified after the
 * fork, the pool full) the ready list of pending.c is used.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hdrio.h"
#include "hook_newfd.h"
#include "ident.h"
#include "pending.h"
#include "pool.h"
#include "shim.h"

#define PP_POOL_TTL_MS 60000 /* a pooled connection nobody takes: reset */

/*
 * The ready pool of a listener, shared by every process that inherited
 * it (see the top comment, point 5): a datagram socket pair whose
 * receive queue holds ready connections (SCM_RIGHTS) with their header.
 * A slot is claimed when the listener is classified; its socket pair is
 * made only when the process forks, so a process that never forks
 * holds no descriptor of the library's.  Slots change under
 * pp_poolmtx; readers look them up without it.  Hooks that reach the
 * lock from a signal handler: listen, accept and accept4 (classifying a
 * listener: pp_pool_note) and fork (pp_pool_open_all, the fork
 * handlers); taken as section PP_HOLD_POOL, and skipped by a handler
 * whose thread holds it.
 */
#define PP_POOLS 64
#define PP_POOL_MAGIC 0x70706f6cU
struct pp_pool {
	_Atomic uint64_t lcookie; /* the listener's; 0: slot free */
	int lfd;
	socklen_t laddrlen; /* its address: SO_REUSEPORT siblings share it */
	union pp_sockaddr laddr;
	_Atomic bool up; /* the socket pair exists (made at the first fork) */
	int rfd, wfd;    /* receive and send ends */
	uint64_t rcookie, wcookie;
};
static struct pp_pool pp_pools[PP_POOLS];
pthread_mutex_t pp_poolmtx = PTHREAD_MUTEX_INITIALIZER;

/* What travels with a ready connection through a pool. */
struct pp_poolmsg {
	uint32_t magic;
	uint32_t hlen; /* header bytes that follow */
	pid_t pid;     /* the process that put it, with its seq */
	uint64_t seq;
	int64_t deadline; /* CLOCK_MONOTONIC ms: reset it after this */
	int family;
	uint16_t lport;
	socklen_t peerlen;
	union pp_sockaddr peer;
	struct pp_fdinfo info;
};

static uint64_t pp_pool_seq;

/*
 * The pool of listener lcookie, or NULL when it has none (yet).
 * Lock-free: a slot is filled before it is published, and the
 * descriptors are checked by their own cookies before each use.
 */
static struct pp_pool *
pp_pool_find(uint64_t lcookie)
{
	int i;

	if (lcookie == 0)
		return NULL;
	for (i = 0; i < PP_POOLS; i++)
		if (atomic_load_explicit(&pp_pools[i].lcookie,
					 memory_order_acquire) == lcookie)
			return atomic_load_explicit(&pp_pools[i].up,
						    memory_order_acquire)
				       ? &pp_pools[i]
				       : NULL;
	return NULL;
}

/* Close the pools of listeners this process no longer has.  Called with
 * pp_poolmtx held. */
static void
pp_pool_sweep(void)
{
	struct pp_pool *pl;
	int i;

	for (i = 0; i < PP_POOLS; i++) {
		pl = &pp_pools[i];
		if (atomic_load_explicit(&pl->lcookie, memory_order_relaxed) ==
			    0 ||
		    pp_same_socket(pl->lfd, pl->lcookie))
			continue;
		atomic_store_explicit(&pl->lcookie, 0, memory_order_release);
		if (atomic_exchange(&pl->up, false)) {
			if (pp_same_socket(pl->rfd, pl->rcookie))
				syscall(SYS_close, pl->rfd);
			if (pp_same_socket(pl->wfd, pl->wcookie))
				syscall(SYS_close, pl->wfd);
		}
	}
}

/*
 * Note PROXY-only listener lfd for a pool, made when the process forks
 * (pp_pool_open_all).  Without a slot knocks still work, within the
 * process.  Takes pp_poolmtx.
 */
void
pp_pool_note(int lfd, uint64_t lcookie, const union pp_sockaddr *laddr,
	     socklen_t laddrlen)
{
	struct pp_pool *pl;
	int i;

	/* A signal handler's listen or accept whose thread holds the lock:
	 * no pool for this listener (see above). */
	if (lcookie == 0 || !pp_lock(&pp_poolmtx, PP_HOLD_POOL))
		return;
	pp_pool_sweep();
	for (i = 0; i < PP_POOLS; i++)
		if (atomic_load_explicit(&pp_pools[i].lcookie,
					 memory_order_relaxed) == lcookie)
			goto out;
	for (i = 0; i < PP_POOLS; i++) {
		pl = &pp_pools[i];
		if (atomic_load_explicit(&pl->lcookie, memory_order_relaxed) !=
		    0)
			continue;
		atomic_store_explicit(&pl->up, false, memory_order_relaxed);
		pl->lfd = lfd;
		pl->laddrlen = laddrlen <= sizeof(pl->laddr) ? laddrlen : 0;
		memcpy(&pl->laddr, laddr, pl->laddrlen);
		atomic_store_explicit(&pl->lcookie, lcookie,
				      memory_order_release);
		break;
	}
out:
	pp_unlock(&pp_poolmtx, PP_HOLD_POOL);
}

/*
 * fd, or a close-on-exec copy of it at 3 or above when it is 0, 1 or 2
 * (a daemon that closed its standard descriptors reopens them next, and
 * expects to get those numbers).  Raw calls: the descriptor is ours.
 */
static int
pp_fd_above_stdio(int fd)
{
	int nfd;

	if (fd > 2)
		return fd;
	nfd = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return fd;
	syscall(SYS_close, fd);
	return nfd;
}

/*
 * Before a fork: give every noted listener still open its socket pair,
 * so that the child shares it.  Takes pp_poolmtx.
 */
void
pp_pool_open_all(void)
{
	struct pp_pool *pl;
	int sv[2], i;

	/* fork from a handler whose thread holds the lock: no new pools. */
	if (!pp_lock(&pp_poolmtx, PP_HOLD_POOL))
		return;
	pp_pool_sweep();
	for (i = 0; i < PP_POOLS; i++) {
		pl = &pp_pools[i];
		if (atomic_load_explicit(&pl->lcookie, memory_order_relaxed) ==
			    0 ||
		    atomic_load_explicit(&pl->up, memory_order_relaxed) ||
		    syscall(SYS_socketpair, AF_UNIX,
			    SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
			    sv) != 0)
			continue;
		pl->rfd = pp_fd_above_stdio(sv[0]);
		pl->wfd = pp_fd_above_stdio(sv[1]);
		pl->rcookie = pp_socket_cookie(sv[0]);
		pl->wcookie = pp_socket_cookie(sv[1]);
		(void)syscall(SYS_shutdown, sv[0], SHUT_WR);
		atomic_store_explicit(&pl->up, true, memory_order_release);
	}
	pp_unlock(&pp_poolmtx, PP_HOLD_POOL);
}

/* Send fd with msg and the header bytes into a pool.  Returns 0 or an
 * errno. */
static int
pp_pool_send(struct pp_pool *pl, int fd, const struct pp_poolmsg *msg,
	     const uint8_t *hdr)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov[2] = {
		{ .iov_base = (void *)msg, .iov_len = sizeof(*msg) },
		{ .iov_base = (void *)hdr, .iov_len = msg->hlen },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	struct cmsghdr *c;

	if (!pp_same_socket(pl->wfd, pl->wcookie))
		return EBADF;
	memset(&cm, 0, sizeof(cm));
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (syscall(SYS_sendmsg, pl->wfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return errno;
	return 0;
}

/*
 * Put the ready connection pd in its listener's pool: any process that
 * takes a knock on the listener takes it from there.  Returns false
 * (pd unchanged) when there is no pool or it is full.  On success the
 * connection is the pool's and pd only remembers where it went.
 */
bool
pp_pool_put(struct pp_pend *pd, int64_t now)
{
	struct pp_pool *pl = pp_pool_find(pd->lcookie);
	struct pp_poolmsg msg;

	if (pl == NULL)
		return false;
	memset(&msg, 0, sizeof(msg));
	msg.magic = PP_POOL_MAGIC;
	msg.hlen = (uint32_t)pd->job.p.have;
	msg.pid = getpid();
	msg.seq = ++pp_pool_seq;
	msg.deadline = now + PP_POOL_TTL_MS;
	msg.family = pd->job.family;
	msg.lport = pd->job.lport;
	msg.peerlen = pd->job.peerlen;
	/* Only the bytes accept filled: the rest of the union is stack. */
	if (msg.peerlen <= sizeof(msg.peer))
		memcpy(&msg.peer, &pd->job.peer, msg.peerlen);
	msg.info = pd->info;
	if (pp_pool_send(pl, pd->job.fd, &msg, pd->job.p.buf) != 0)
		return false;
	pp_real.close(pd->job.fd);
	pd->job.fd = -1;
	pd->seq = msg.seq;
	return true;
}

/*
 * Take the oldest connection of a pool, if any.  Returns its descriptor
 * (close-on-exec), with *msg and the header bytes in hdr (PP_V2_MAX
 * bytes), or -1.
 */
static int
pp_pool_recv(struct pp_pool *pl, struct pp_poolmsg *msg, uint8_t *hdr)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov[2] = {
		{ .iov_base = msg, .iov_len = sizeof(*msg) },
		{ .iov_base = hdr, .iov_len = PP_V2_MAX },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	struct cmsghdr *c;
	ssize_t n;
	int fd = -1;

	if (!pp_same_socket(pl->rfd, pl->rcookie))
		return -1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	n = syscall(SYS_recvmsg, pl->rfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (fd >= 0 &&
	    (n < (ssize_t)sizeof(*msg) || msg->magic != PP_POOL_MAGIC ||
	     (size_t)n != sizeof(*msg) + msg->hlen ||
	     (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)) {
		pp_reset(fd);
		fd = -1;
	}
	return fd;
}

/*
 * Take a ready connection from pool pl and hand it over as accept
 * would.  hdr: PP_V2_MAX bytes of scratch.  Returns the descriptor, or
 * -1 when the pool is empty.
 */
static int
pp_pool_take1(struct pp_pool *pl, uint8_t *hdr, int flags,
	      struct sockaddr *addr, socklen_t *alen)
{
	struct pp_poolmsg msg;
	struct pp_job job;
	size_t used;
	int fd, fl;

	for (;;) {
		fd = pp_pool_recv(pl, &msg, hdr);
		if (fd < 0)
			break;
		pp_fd_fresh(fd);
		pp_job_init(&job, fd, msg.family, &msg.peer, msg.peerlen);
		job.lport = msg.lport;
		if (pp_job_push(&job, hdr, msg.hlen, &used) != PP_DONE ||
		    pp_now_ms() > msg.deadline) {
			pp_refuse(fd, &msg.peer, msg.peerlen, PP_LOG_WARN,
				  "the program did not accept it");
			pp_job_free(&job);
			continue;
		}
		fl = pp_real.fcntl(fd, F_GETFL);
		if (fl >= 0)
			(void)pp_real.fcntl(fd, F_SETFL,
					    (flags & SOCK_NONBLOCK)
						    ? fl | O_NONBLOCK
						    : fl & ~O_NONBLOCK);
		if (!(flags & SOCK_CLOEXEC))
			(void)pp_real.fcntl(fd, F_SETFD, 0);
		fd = pp_hand_over(fd, &msg.info, &job, addr, alen);
		pp_job_free(&job);
		if (fd >= 0)
			break;
	}
	return fd;
}

/*
 * A knock was taken on listener lcookie: take a ready connection from
 * its pool, or else from the pool of an SO_REUSEPORT sibling (another
 * listener on the same address, which the knock reached instead of
 * that one), and hand it over as accept would.  Returns the
 * descriptor, or -1 when there is none (another process was quicker).
 */
int
pp_pool_take(uint64_t lcookie, int flags, struct sockaddr *addr,
	     socklen_t *alen)
{
	struct pp_pool *pl = pp_pool_find(lcookie), *sib;
	uint8_t *hdr;
	int fd, i;

	if (pl == NULL || (hdr = pp_alloc(PP_V2_MAX)) == NULL)
		return -1;
	fd = pp_pool_take1(pl, hdr, flags, addr, alen);
	for (i = 0; fd < 0 && i < PP_POOLS; i++) {
		sib = &pp_pools[i];
		if (sib == pl ||
		    atomic_load_explicit(&sib->lcookie, memory_order_acquire) ==
			    0 ||
		    !atomic_load_explicit(&sib->up, memory_order_acquire) ||
		    sib->laddrlen == 0 || sib->laddrlen != pl->laddrlen ||
		    memcmp(&sib->laddr, &pl->laddr, pl->laddrlen) != 0)
			continue;
		fd = pp_pool_take1(sib, hdr, flags, addr, alen);
	}
	pp_dealloc(hdr);
	return fd;
}

/*
 * Is the connection pd put in its pool still there?  Peeks at the oldest
 * message, which is FIFO.  Returns 0 gone (or the pool), 1 still there
 * or unknown (another process's connection is ahead of it), 2 at the
 * head.  *expired: the head is past its deadline.
 */
int
pp_pool_state(const struct pp_pend *pd, int64_t now, bool *expired)
{
	struct pp_pool *pl = pp_pool_find(pd->lcookie);
	struct pp_poolmsg msg;
	ssize_t n;

	*expired = false;
	if (pl == NULL || !pp_same_socket(pl->rfd, pl->rcookie))
		return 0;
	n = syscall(SYS_recvfrom, pl->rfd, &msg, sizeof(msg),
		    MSG_PEEK | MSG_DONTWAIT, NULL, NULL);
	if (n < (ssize_t)sizeof(msg) || msg.magic != PP_POOL_MAGIC)
		return 0;
	*expired = msg.deadline < now;
	if (msg.pid != getpid())
		return 1;
	if (msg.seq > pd->seq)
		return 0;
	return msg.seq == pd->seq ? 2 : 1;
}

/*
 * Reset the oldest connection of pd's pool when it is pd's (given up) or
 * past its deadline; one that took its place meanwhile goes back in.
 */
void
pp_pool_drop_head(const struct pp_pend *pd, int64_t now)
{
	struct pp_pool *pl = pp_pool_find(pd->lcookie);
	struct pp_poolmsg msg;
	uint8_t *hdr;
	int fd;

	if (pl == NULL || (hdr = malloc(PP_V2_MAX)) == NULL)
		return;
	fd = pp_pool_recv(pl, &msg, hdr);
	if (fd >= 0 && (msg.deadline < now ||
			(msg.pid == getpid() && msg.seq == pd->seq) ||
			pp_pool_send(pl, fd, &msg, hdr) != 0))
		pp_refuse(fd, &msg.peer, msg.peerlen, PP_LOG_WARN,
			  "the program did not accept it");
	else if (fd >= 0)
		pp_real.close(fd); /* our copy: the pool has it again */
	free(hdr);
}

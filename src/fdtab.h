/*
 * fdtab.h - what ppshim knows about each descriptor number.
 *
 * See the comment at the top of fdtab.c for the concurrency rules.
 */
#ifndef PP_FDTAB_H
#define PP_FDTAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pp_sockaddr.h"
#include "reentry.h"

enum pp_fdkind {
	PP_FD_NONE = 0,   /* nothing known: classify on first accept */
	PP_FD_PLAIN = 1,  /* a socket that is not a PROXY-only listener */
	PP_FD_LISTEN = 2, /* a PROXY-only listener */
	PP_FD_CONN = 3,   /* a connection with advertised addresses */
	PP_FD_UDP = 4,    /* a PROXY-only datagram socket */
};

/* A consistent copy of one entry (what readers get). */
struct pp_fdinfo {
	uint8_t kind;
	uint8_t socktype; /* PP_FD_LISTEN: SOCK_STREAM or SOCK_DGRAM */
	uint16_t family;  /* the socket's own address family */
	bool has_src;     /* PP_FD_CONN: src is advertised; PP_FD_UDP:
			   * connected to an SPP client, src its address
			   * and rpeer the proxy's, as in the header
			   * (AF_INET6, udp_reply.c) */
	bool has_dst;     /* PP_FD_CONN: dst is advertised (getsockname
			   * answers it unless PP_SOCKNAME=real) */
	bool spp;         /* PP_FD_UDP: datagrams carry SPP, not v2 */
	uint8_t stat;     /* PP_FD_LISTEN, PP_FD_UDP: the counters' slot
			   * in the state file (stats.h), 0: none */
	uint64_t cookie;  /* SO_COOKIE of the socket the entry describes,
			     0 while not fetched (see rpeer) */
	socklen_t srclen, dstlen;
	union pp_inaddr src, dst;
	/*
	 * PP_FD_CONN accepted here: the real peer and local port, which the
	 * name hooks compare with the real answer they fetch anyway, so a
	 * number reused for another socket is noticed without a system
	 * call of its own.  rpeerlen 0 when unknown (the cookie is used).
	 */
	socklen_t rpeerlen;
	union pp_inaddr rpeer;
	uint16_t lport; /* network order; PP_FD_UDP: the bound port */
};

struct pp_fdent {
	_Atomic uint32_t seq;  /* odd while a writer is inside */
	_Atomic uint8_t kind;  /* a copy of info.kind for the fast path */
	struct pp_fdinfo info; /* written under seq */
};

#define PP_FDTAB_PAGE 1024
#define PP_FDTAB_PAGES 1024 /* fds 0 .. 1048575 */

extern _Atomic(struct pp_fdent *) pp_fdtab[PP_FDTAB_PAGES];

/* The entry of fd, NULL when its page was never allocated (or fd is out
 * of range): one or two loads. */
static inline struct pp_fdent *
pp_fd_slot(int fd)
{
	struct pp_fdent *page;

	if (fd < 0 || (unsigned)fd >= PP_FDTAB_PAGE * PP_FDTAB_PAGES)
		return NULL;
	page = atomic_load_explicit(&pp_fdtab[fd / PP_FDTAB_PAGE],
				    memory_order_acquire);
	return page == NULL ? NULL : &page[fd % PP_FDTAB_PAGE];
}

/*
 * The fast path: the kind of fd, with one or two loads and no call,
 * syscall, lock or allocation.  PP_FD_NONE for anything not tracked.
 */
static inline enum pp_fdkind
pp_fd_kind(int fd)
{
	struct pp_fdent *e = pp_fd_slot(fd);

	if (e == NULL)
		return PP_FD_NONE;
	return (enum pp_fdkind)atomic_load_explicit(&e->kind,
						    memory_order_acquire);
}

/*
 * Would pp_fd_clear(fd) have anything to do?  True when fd is tracked,
 * or when a writer is inside its entry and may not have set its kind
 * yet (a close from a signal handler that interrupted that writer, or
 * from another thread, must still clear).  Two or three loads, one
 * cache line; no call.
 */
static inline bool
pp_fd_clearable(int fd)
{
	struct pp_fdent *e = pp_fd_slot(fd);

	return e != NULL &&
	       (atomic_load_explicit(&e->kind, memory_order_acquire) !=
			PP_FD_NONE ||
		(atomic_load_explicit(&e->seq, memory_order_acquire) &
		 PP_SEQ_BUSY));
}

/* What the datagram path needs of a PROXY-only socket's entry, per
 * datagram. */
struct pp_fddgram {
	uint16_t family, lport;
	bool spp;
	uint8_t stat; /* its counters' slot (stats.h), 0 for none */
};

/*
 * The kind of fd's entry with the fields of *out, and nothing else:
 * what the datagram path needs per datagram, without copying the whole
 * entry.  PP_FD_NONE (and *out zeroed) when untracked, or when this
 * thread is writing the entry (see pp_fd_get).  Lock-free;
 * async-signal-safe.
 */
static inline enum pp_fdkind
pp_fd_dgram(int fd, struct pp_fddgram *out)
{
	struct pp_fdent *e = pp_fd_slot(fd);
	struct pp_fddgram d;
	uint32_t s1;
	uint8_t k;

	*out = (struct pp_fddgram){ 0 };
	if (e == NULL)
		return PP_FD_NONE;
	do {
		if (!pp_seq_read_begin(&e->seq, &s1))
			return PP_FD_NONE; /* see pp_fd_get */
		k = e->info.kind;
		d.family = e->info.family;
		d.lport = e->info.lport;
		d.spp = e->info.spp;
		d.stat = e->info.stat;
	} while (!pp_seq_read_ok(&e->seq, s1));
	*out = d;
	return (enum pp_fdkind)k;
}

/*
 * Copy the entry of fd into *out.  Returns its kind (PP_FD_NONE when
 * untracked, *out then zeroed).  Also PP_FD_NONE at once when this very
 * thread is writing the entry (the caller is a signal handler that
 * interrupted it; see reentry.h): the hooks then answer from the
 * kernel.  Lock-free; async-signal-safe.
 */
enum pp_fdkind pp_fd_get(int fd, struct pp_fdinfo *out);

/*
 * Replace the entry of fd with *in (allocating its page when needed).
 * Returns false when fd is out of range or memory is short, or when
 * this thread is writing the entry already (a signal handler): the
 * entry is then cleared once that write ends.  Async-signal-safe.
 */
bool pp_fd_set(int fd, const struct pp_fdinfo *in);

/*
 * Forget fd.  Allocates nothing; async-signal-safe.  From a signal
 * handler whose thread is writing the entry, the clear is left to that
 * writer, which does it before its write ends: the entry is never
 * reported again either way.
 */
void pp_fd_clear(int fd);

/* Is this thread writing fd's entry (the caller is a signal handler that
 * interrupted the write)?  The answer of pp_fd_get is unknown then. */
bool pp_fd_busy(int fd);

/* Forget fd only if its entry is still *was (a copy pp_fd_get made):
 * a decision taken on an earlier look never wipes the entry of a socket
 * that got the number since, nor one this thread is writing (from a
 * signal handler).  Returns whether it forgot.  Allocates nothing;
 * async-signal-safe. */
bool pp_fd_clear_if(int fd, const struct pp_fdinfo *was);

/* Forget fds first..last (inclusive, clipped to the table). */
void pp_fd_clear_range(unsigned first, unsigned last);

/* Make newfd describe what oldfd describes (dup, dup2, F_DUPFD). */
void pp_fd_copy(int oldfd, int newfd);

/* Called by pp_fd_foreach for each entry; false stops the walk. */
typedef bool (*pp_fd_visit_fn)(int fd, const struct pp_fdinfo *info, void *arg);

/*
 * Call fn for each tracked descriptor whose entry is of kind (of any
 * kind when kind is PP_FD_NONE), in increasing order, with a consistent
 * copy of the entry (pp_fd_get's: an entry this thread is writing is
 * passed over), until fn returns false.  The only walk of the table:
 * lock-free, allocates nothing, async-signal-safe when fn is.
 */
void pp_fd_foreach(enum pp_fdkind kind, pp_fd_visit_fn fn, void *arg);

#endif /* PP_FDTAB_H */

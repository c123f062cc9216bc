/*
 * pending.h - connections whose header has not arrived yet: the pending
 * list, the worker thread and the ready list (pending.c).
 */
#ifndef PP_PENDING_H
#define PP_PENDING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"
#include "hdrio.h"

/* A connection left to the worker, then waiting in the ready list. */
struct pp_pend {
	struct pp_pend *next;
	int lfd;
	uint64_t lcookie;
	uint64_t cookie;
	int64_t deadline;
	enum {
		PP_PEND_READING,
		PP_PEND_READY,
		PP_PEND_DEAD,
		PP_PEND_POOLED
	} state;
	unsigned knocks;       /* once ready: knocks sent for it */
	uint64_t seq;          /* PP_PEND_POOLED: its number in the pool */
	struct pp_fdinfo info; /* once ready */
	struct pp_job job;
};

/* Connections in the ready list: read lock-free (one atomic load) by
 * accept before it takes pp_pmtx. */
extern atomic_uint pp_nready;

/* Hand job j, which the first attempt could not finish, to the worker
 * (started if needed), with its deadline.  Takes pp_pmtx (section
 * PP_HOLD_PENDING); on allocation failure the connection is refused. */
void pp_pend_add(struct pp_job *j, int lfd, uint64_t lcookie, int64_t deadline);

/* Take a ready connection of listener lcookie, or NULL.  Takes
 * pp_pmtx (section PP_HOLD_PENDING). */
struct pp_pend *pp_ready_take(uint64_t lcookie);

/* Give connection fd to the program as accept would: flags, table entry
 * info, address from job j into addr/alen.  Returns fd, or -1 with errno
 * (the connection then refused).  No lock. */
int pp_hand_over(int fd, const struct pp_fdinfo *info, const struct pp_job *j,
		 struct sockaddr *addr, socklen_t *alen);

/* A connection finished by the worker (taken with pp_ready_take), made
 * to look freshly accepted; frees pd.  Returns the descriptor, or -1
 * when it went away.  No lock. */
int pp_hand_ready(struct pp_pend *pd, int flags, struct sockaddr *addr,
		  socklen_t *alen);

/* fork handlers for the pending-connection machinery: prepare takes
 * the pool, knock and pending locks (in that order, each unless this
 * thread holds it already), parent and child release them. */
void pp_conn_atfork_prepare(void);
void pp_conn_atfork_parent(void);
void pp_conn_atfork_child(void);

/* Drop this process's copies of pending and ready connections (a child
 * of any kind of fork); frees them only when free_lists. */
void pp_conn_forget(bool free_lists);

#endif /* PP_PENDING_H */

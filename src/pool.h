/*
 * pool.h - the shared ready pools of prefork groups (pool.c).
 */
#ifndef PP_POOL_H
#define PP_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"
#include "pp_parse.h"
#include "pending.h"

/* Guards the pool slots (section PP_HOLD_POOL); readers look slots up
 * without it.  Outside pool.c only the fork handlers (pending.c) take
 * it. */
extern pthread_mutex_t pp_poolmtx;

/* Note PROXY-only listener lfd for a pool, made when the process forks.
 * Takes pp_poolmtx. */
void pp_pool_note(int lfd, uint64_t lcookie, const union pp_sockaddr *laddr,
		  socklen_t laddrlen);

/* Before a fork: give every noted listener still open its socket pair.
 * Takes pp_poolmtx. */
void pp_pool_open_all(void);

/* Put ready connection pd in its listener's pool.  Returns false (pd
 * unchanged) when there is no pool or it is full.  Called by the worker
 * with pp_pmtx held. */
bool pp_pool_put(struct pp_pend *pd, int64_t now);

/* Is the connection pd put in its pool still there?  Returns 0 gone,
 * 1 still there or unknown, 2 at the head; *expired: the head is past
 * its deadline.  Lock-free (called with pp_pmtx held). */
int pp_pool_state(const struct pp_pend *pd, int64_t now, bool *expired);

/* Reset the oldest connection of pd's pool when it is pd's or past its
 * deadline.  Lock-free (called with pp_pmtx held). */
void pp_pool_drop_head(const struct pp_pend *pd, int64_t now);

/* A knock was taken on listener lcookie: take a ready connection from
 * its pool (or an SO_REUSEPORT sibling's) and hand it over as accept
 * would.  Returns the descriptor, or -1 when there is none.  No lock. */
int pp_pool_take(uint64_t lcookie, int flags, struct sockaddr *addr,
		 socklen_t *alen);

#endif /* PP_POOL_H */

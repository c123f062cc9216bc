/*
 * stats.h - the counters of each PROXY-only socket, kept in this
 * process's state file (stats.c; the layout in core/pp_state.h).
 *
 * A counter is a relaxed atomic add into shared memory: no lock, no
 * system call, no allocation, safe from a signal handler.  A socket
 * knows its slot from its table entry (pp_fdinfo.stat, a job's stat:
 * 1-based, 0 for "not counted"); until the file exists nothing is
 * counted, and a process without a PROXY-only socket never makes one.
 */
#ifndef PP_STATS_H
#define PP_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"
#include "pp_state.h"

/* The mapped state file, NULL while there is none.  Defined in fdtab.c,
 * beside the table whose entries hold the slots, so that whatever links
 * the table (route.c in its unit test) can count; set by stats.c. */
extern struct pp_state_file *_Atomic pp_stat_map;

/* Add delta to counter c of slot (1-based; 0 counts nothing). */
static inline void
pp_stat_add(unsigned slot, enum pp_stat c, int64_t delta)
{
	struct pp_state_file *f =
		atomic_load_explicit(&pp_stat_map, memory_order_acquire);

	if (f == NULL || slot == 0 || slot > PP_STATE_SLOTS)
		return;
	atomic_fetch_add_explicit(&f->slot[slot - 1].c[c], (uint64_t)delta,
				  memory_order_relaxed);
}

/* Count one of c on slot. */
static inline void
pp_stat_inc(unsigned slot, enum pp_stat c)
{
	pp_stat_add(slot, c, 1);
}

/*
 * The slot of a PROXY-only socket bound to sa (socktype SOCK_STREAM or
 * SOCK_DGRAM): the one already showing that address, else a new one.
 * Makes the state file the first time (raw system calls, no lock; never
 * from a signal handler that interrupted the making).  Returns the
 * 1-based slot, 0 when nothing is counted (no file, slots full).
 */
unsigned pp_stat_slot(int socktype, const struct sockaddr *sa, socklen_t len);

/* At load, with the configuration read: keep its text and the
 * directory for the file, and remove a file an earlier image of this
 * process left under its pid (exec). */
void pp_stat_prepare(void);

/* In a fork child: a file being made by another thread of the parent
 * never will be; this process counts into the parent's otherwise. */
void pp_stat_atfork_child(void);

/* A header accepted on slot: proxied by version when it advertised a
 * client, else LOCAL (health checks). */
static inline void
pp_stat_done(unsigned slot, unsigned version, bool advertised)
{
	pp_stat_inc(slot, !advertised    ? PP_ST_LOCAL
			  : version == 1 ? PP_ST_PROXIED_V1
					 : PP_ST_PROXIED_V2);
}

/* A datagram judged for the program on a socket whose counters are
 * slot: proxied (adv, SPP or v2), LOCAL (a header stripped, skip > 0)
 * or direct. */
static inline void
pp_stat_dgram(unsigned slot, bool adv, size_t skip, bool spp)
{
	pp_stat_inc(slot, adv ? (spp ? PP_ST_PROXIED_SPP : PP_ST_PROXIED_V2)
			  : skip > 0 ? PP_ST_LOCAL
				     : PP_ST_DIRECT);
}

/* A header refused with parser error err on slot: the class counter
 * (pp_stat_of_error). */
static inline void
pp_stat_bad(unsigned slot, enum pp_err err)
{
	pp_stat_inc(slot, pp_stat_of_error(err));
}

#endif /* PP_STATS_H */

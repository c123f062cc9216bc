/*
 * reentry.h - what this thread is in the middle of, for a signal
 * handler that calls a hook on the same thread.
 *
 * POSIX lets a signal handler call accept, close, dup2, getpeername,
 * recvfrom, sendto and execve.  Such a hook may find its own thread
 * stopped halfway through a write of a table entry, or holding one of
 * the library's locks, or inside malloc.  Waiting for that thread would
 * never end: it runs again only when the handler returns.  So every
 * write section, lock and allocation on a program's thread records
 * itself here first, and a hook that finds its own thread inside one
 * never waits for it:
 *   - a reader of a seqlock that this thread is writing gives up: the
 *     hook answers from the kernel (real addresses), as for an
 *     untracked descriptor;
 *   - a writer of such an entry does not write: a clear asks the
 *     interrupted writer to clear when it finishes (PP_SEQ_FORGET), so
 *     an entry is never reported after its descriptor was closed; a set
 *     leaves the entry out (real addresses);
 *   - a lock this thread holds is not taken: the UDP reply table notes
 *     no route and routes no reply from a bucket in mid-change (the
 *     reply goes where the program sends it); accept on a PROXY-only
 *     listener fails with EAGAIN before taking a connection, so nothing
 *     is lost: the interrupted call or the next one takes it.
 * What another thread is in the middle of is waited for as before: it
 * keeps running.
 *
 * The state is thread-local in the static TLS block (the library is
 * preloaded), reached without a call; a handler that changes it puts it
 * back before returning, so the plain read-modify-writes below need no
 * atomic instruction.  Costs: nothing on the path of an untracked
 * descriptor; a few TLS stores where a lock or a write section already
 * is.
 */
#ifndef PP_REENTRY_H
#define PP_REENTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PP_TLS __thread __attribute__((tls_model("initial-exec")))

/* The locks and sections a thread may be inside (pp_inside.hold). */
enum pp_hold {
	PP_HOLD_PENDING = 1u << 0, /* pending.c pp_pmtx: pending, ready lists */
	PP_HOLD_KNOCKS = 1u << 1,  /* knock.c pp_kmtx: knocks sent */
	PP_HOLD_MALLOC = 1u << 2,  /* hdrio.c pp_alloc: malloc, free */
	PP_HOLD_POOL = 1u << 6,    /* pool.c pp_poolmtx: ready pools */
	PP_HOLD_ROUTES = 1u << 3,  /* route.c pp_rt.mtx: the reply table */
	PP_HOLD_UDPBUF = 1u << 4,  /* udp.c: the thread's receive buffer */
	PP_HOLD_UDPBUF2 = 1u << 5, /* udp.c: its spare, for a handler */
	PP_HOLD_STATE = 1u << 7,   /* stats.c: making the state file */
};

/* Write sections one thread can be inside at once (nested handlers). */
#define PP_NEST_MAX 8

struct pp_inside {
	unsigned hold;     /* PP_HOLD_* bits */
	unsigned nwriting; /* entries of writing[] in use */
	_Atomic uint32_t *writing[PP_NEST_MAX]; /* seqlock words this
						   thread is writing */
};

extern PP_TLS struct pp_inside pp_inside;

/* Bit 0 of a sequence word: a writer is inside.  Bit 1: a handler that
 * interrupted that writer asks it to clear the entry before leaving. */
#define PP_SEQ_BUSY 1u
#define PP_SEQ_FORGET 2u

/*
 * Enter section b (one of PP_HOLD_*).  Returns false when this thread
 * is inside it already (a signal handler interrupted it): the caller
 * must then not take the lock or allocate.  Marked before the lock is
 * taken, so that a handler arriving while it is being taken keeps off.
 */
static inline bool
pp_hold(unsigned b)
{
	if (pp_inside.hold & b)
		return false;
	pp_inside.hold |= b;
	atomic_signal_fence(memory_order_seq_cst);
	return true;
}

/* Leave section b, entered by a successful pp_hold(b). */
static inline void
pp_release(unsigned b)
{
	atomic_signal_fence(memory_order_seq_cst);
	pp_inside.hold &= ~b;
}

/* Is this thread inside any of the sections in mask? */
static inline bool
pp_holding(unsigned mask)
{
	return (pp_inside.hold & mask) != 0;
}

/* Lock m as section b.  Returns false, without locking, when this
 * thread holds m already (see pp_hold). */
static inline bool
pp_lock(pthread_mutex_t *m, unsigned b)
{
	if (!pp_hold(b))
		return false;
	pthread_mutex_lock(m);
	return true;
}

/* Unlock m, locked by a successful pp_lock(m, b). */
static inline void
pp_unlock(pthread_mutex_t *m, unsigned b)
{
	pthread_mutex_unlock(m);
	pp_release(b);
}

/*
 * Is the seqlock word seq being written by this thread, below the
 * caller on its stack (the caller is a signal handler that interrupted
 * the write)?  More than PP_NEST_MAX nested sections: assumed so.
 */
static inline bool
pp_seq_mine(const _Atomic uint32_t *seq)
{
	unsigned i, n = pp_inside.nwriting;

	if (n > PP_NEST_MAX)
		return true;
	for (i = 0; i < n; i++)
		if (pp_inside.writing[i] == seq)
			return true;
	return false;
}

/*
 * The reader's side: wait out another thread's writer and return the
 * sequence number in *s.  Returns false at once when the writer is this
 * thread, which cannot finish while the caller runs: the entry cannot
 * be read now.
 */
static inline bool
pp_seq_read_begin(const _Atomic uint32_t *seq, uint32_t *s)
{
	while ((*s = atomic_load_explicit(seq, memory_order_acquire)) &
	       PP_SEQ_BUSY)
		if (pp_seq_mine(seq))
			return false;
	return true;
}

/* After copying: was the copy made while no writer got in? */
static inline bool
pp_seq_read_ok(const _Atomic uint32_t *seq, uint32_t s)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(seq, memory_order_relaxed) == s;
}

/*
 * The writer's side: make seq odd, waiting out another thread's writer.
 * Returns false, changing nothing, when this thread is the writer
 * already (a signal handler interrupted it).  Recorded in pp_inside
 * before seq becomes odd, so a handler arriving at any point knows.
 */
static inline bool
pp_seq_write_begin(_Atomic uint32_t *seq)
{
	unsigned n = pp_inside.nwriting;
	uint32_t s;

	/* Listed but not busy: the interrupted writer has not begun yet,
	 * or has just ended; this one goes first, or after. */
	if ((atomic_load_explicit(seq, memory_order_relaxed) & PP_SEQ_BUSY) &&
	    pp_seq_mine(seq))
		return false;
	/* The count first: a handler arriving between the two stores
	 * uses the slots above, and at worst sees a stale pointer in this
	 * one, which only makes it give up on that entry. */
	pp_inside.nwriting = n + 1;
	atomic_signal_fence(memory_order_seq_cst);
	if (n < PP_NEST_MAX)
		pp_inside.writing[n] = seq;
	atomic_signal_fence(memory_order_seq_cst);
	for (;;) {
		s = atomic_load_explicit(seq, memory_order_relaxed);
		if ((s & PP_SEQ_BUSY) == 0 &&
		    atomic_compare_exchange_weak_explicit(seq, &s, s + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			break;
	}
	atomic_thread_fence(memory_order_release);
	return true;
}

/*
 * Leave a write section begun by a successful pp_seq_write_begin().
 * forget(arg) clears the entry first when a handler asked for it
 * (PP_SEQ_FORGET; NULL when nobody can ask).
 */
static inline void
pp_seq_write_end(_Atomic uint32_t *seq, void (*forget)(void *), void *arg)
{
	uint32_t s;

	for (;;) {
		s = atomic_load_explicit(seq, memory_order_relaxed);
		if ((s & PP_SEQ_FORGET) && forget != NULL)
			forget(arg);
		/* Fails only when a handler set PP_SEQ_FORGET meanwhile. */
		if (atomic_compare_exchange_weak_explicit(
			    seq, &s, (s | PP_SEQ_BUSY | PP_SEQ_FORGET) + 1,
			    memory_order_release, memory_order_relaxed))
			break;
	}
	atomic_signal_fence(memory_order_seq_cst);
	pp_inside.nwriting--;
}

/* From a handler that found its own thread writing seq: have that
 * writer clear the entry before it leaves. */
static inline void
pp_seq_ask_forget(_Atomic uint32_t *seq)
{
	atomic_fetch_or_explicit(seq, PP_SEQ_FORGET, memory_order_relaxed);
}

#endif /* PP_REENTRY_H */

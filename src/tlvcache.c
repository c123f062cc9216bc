/*
 * tlvcache.c - the TLVs of recent proxied connections, by socket cookie,
 * for the exec hand-over (tlvcache.h).
 *
 * Lock-free (a seqlock per slot, like the descriptor table), because the
 * exec hook may run in a vfork child, where taking a lock the parent
 * held would hang; nor does anything wait for a writer of its own
 * thread, which a signal handler may interrupt (reentry.h): accept and
 * accept4 write a slot, execve and the other exec and spawn hooks read
 * them.  Slots are reused round-robin: the TLVs of one of the
 * PP_TLVCACHE_SLOTS most recent proxied connections are found.
 */
#include "config.h"

#include <stdatomic.h>
#include <string.h>

#include "reentry.h"
#include "tlvcache.h"

#define PP_TLVCACHE_SLOTS 64

static struct {
	_Atomic uint32_t seq;
	uint64_t cookie;
	struct pp_tlvset t;
} pp_tlvcache[PP_TLVCACHE_SLOTS];
static atomic_uint pp_tlvcache_next;

void
pp_tlvcache_put(uint64_t cookie, const struct pp_tlvset *t)
{
	unsigned i, tries;

	/* A slot its own thread is writing (a signal handler interrupted
	 * it) is passed over for the next one. */
	for (tries = 0; tries < PP_TLVCACHE_SLOTS; tries++) {
		i = atomic_fetch_add(&pp_tlvcache_next, 1) % PP_TLVCACHE_SLOTS;
		if (pp_seq_write_begin(&pp_tlvcache[i].seq))
			break;
	}
	if (tries == PP_TLVCACHE_SLOTS)
		return;
	pp_tlvcache[i].cookie = cookie;
	pp_tlvcache[i].t = *t;
	pp_seq_write_end(&pp_tlvcache[i].seq, NULL, NULL);
}

bool
pp_tlvcache_get(uint64_t cookie, struct pp_tlvset *t)
{
	uint32_t s;
	unsigned i;

	for (i = 0; i < PP_TLVCACHE_SLOTS; i++) {
		do {
			/* Not a slot this thread is writing: not found. */
			if (!pp_seq_read_begin(&pp_tlvcache[i].seq, &s) ||
			    pp_tlvcache[i].cookie != cookie)
				break;
			*t = pp_tlvcache[i].t;
			if (pp_seq_read_ok(&pp_tlvcache[i].seq, s) &&
			    pp_tlvcache[i].cookie == cookie)
				return true;
		} while (1);
	}
	memset(t, 0, sizeof(*t));
	return false;
}

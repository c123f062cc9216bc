/*
 * tlvcache.h - the TLVs of recent proxied connections, kept for the exec
 * hand-over: written at accept, read by the exec and spawn hooks.
 */
#ifndef PP_TLVCACHE_H
#define PP_TLVCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "handover.h"

/*
 * Remember the TLVs of connection cookie (lock-free, async-signal-safe;
 * a small ring of the most recent ones), and find them again.  get
 * returns false and an empty set when the cookie is not there.
 */
void pp_tlvcache_put(uint64_t cookie, const struct pp_tlvset *t);
bool pp_tlvcache_get(uint64_t cookie, struct pp_tlvset *t);

#endif /* PP_TLVCACHE_H */

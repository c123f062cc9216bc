/*
 * accept.h - the accept engine of PROXY-only listeners (accept.c).
 */
#ifndef PP_ACCEPT_H
#define PP_ACCEPT_H

#include <sys/socket.h>

#include "fdtab.h"

/* Classify listening socket fd (at listen() or first accept()); caches
 * the answer in the fd table and returns its kind.  May take
 * pp_poolmtx (pp_pool_note); keeps errno. */
enum pp_fdkind pp_classify(int fd);

/* accept/accept4 on a PROXY-only listener (kind PP_FD_LISTEN).  Returns
 * what the real accept would; takes pp_pmtx, pp_kmtx and malloc as
 * sections (reentry.h), never across the real call. */
int pp_accept_proxy(int lfd, struct sockaddr *addr, socklen_t *alen, int flags);

#endif /* PP_ACCEPT_H */

/*
 * knock.h - knocks: waking whoever waits on a listener, and recognising
 * the knock when it is accepted (knock.c).
 */
#ifndef PP_KNOCK_H
#define PP_KNOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"
#include "pp_parse.h"

#define PP_KNOCK_SLOTS 16

/* The 16 bytes of a knock: never a valid header (v2, command 0xF). */
extern const uint8_t pp_knock[16];

/*
 * Knocks this process sent and has not seen back yet, under pp_kmtx
 * (section PP_HOLD_KNOCKS).  Outside knock.c only the fork handlers
 * (pending.c) touch them.
 */
extern pthread_mutex_t pp_kmtx;
extern union pp_inaddr pp_knocks[PP_KNOCK_SLOTS];
extern atomic_uint pp_nknocks;

/* Was this connection one of our own knocks?  (Forgets it if so.)
 * One atomic load when none is out; else takes pp_kmtx. */
bool pp_own_knock(const union pp_sockaddr *peer, socklen_t len);

/* Does connection fd already hold our knock bytes?  No lock. */
bool pp_peek_knock(int fd);

/* Is connection fd one from this host's address to the same address (as
 * knocks are)?  peer is its source.  No lock. */
bool pp_self_connection(int fd, const union pp_sockaddr *peer);

/* Knock on listener lfd (SO_COOKIE lcookie) so that whoever waits on it
 * calls accept.  Must be called with no lock held; takes pp_kmtx. */
void pp_send_knock(int lfd, uint64_t lcookie);

#endif /* PP_KNOCK_H */

/*
 * ppsend_connect.h - ppsend's connection to HOST PORT.
 */
#ifndef PS_CONNECT_H
#define PS_CONNECT_H

#include "ppsend.h"

/*
 * A socket of type stype connected to o->host, o->port, from o->bind
 * when given, within o->timeout_ms per address, trying each address of
 * HOST in turn.  Non-blocking on return.  Exits with PS_EXIT_CONN (after
 * saying why for each address) when none works.
 */
int ps_connect(const struct ps_opts *o, int stype);

#endif

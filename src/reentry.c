/*
 * reentry.c - the per-thread record of what a thread is inside of (see
 * reentry.h).
 */
#include "config.h"

#include "reentry.h"

PP_TLS struct pp_inside pp_inside;

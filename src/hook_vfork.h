/*
 * hook_vfork.h - the vfork hook (hook_vfork.c): what the rest of the
 * library needs to know of vfork.
 */
#ifndef PP_HOOK_VFORK_H
#define PP_HOOK_VFORK_H

#include <stdatomic.h>

/* Has this process (or its parent before exec) used vfork?
 * libc's vfork, bound by pp_real_bind(). */
extern atomic_bool pp_vfork_seen;
extern void *pp_vfork_real;

#endif /* PP_HOOK_VFORK_H */

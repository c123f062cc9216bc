/*
 * hook_exec.h - the exec and spawn hooks (hook_exec.c): the hand-over
 * they describe in PPSHIM_HANDOVER.
 */
#ifndef PP_HOOK_EXEC_H
#define PP_HOOK_EXEC_H

/*
 * Set PPSHIM_HANDOVER in this process's own environment to
 * the connections it holds now (unset it when none), for the children
 * libc starts internally (system, popen), which copy the environment.
 * Called at load; not thread-safe (setenv).
 */
void pp_handover_environ(void);

#endif /* PP_HOOK_EXEC_H */

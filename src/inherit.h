/*
 * inherit.h - sockets a process inherits (inherit.c): connections an
 * exec handed over, and systemd's socket activation.
 */
#ifndef PP_INHERIT_H
#define PP_INHERIT_H

/* At load: take over connections an exec handed over, and
 * with PP_INHERIT=1 read the header of inherited connections. */
void pp_inherit_load(void);

/*
 * How many descriptors from 3 on systemd's socket activation
 * passed this process (LISTEN_FDS and LISTEN_PID, read by
 * pp_listen_fds_parse: at most PP_LISTEN_FDS_MAX), 0 when none or
 * malformed.  Reads the environment: at load only.
 */
int pp_listen_fds(void);

#endif /* PP_INHERIT_H */

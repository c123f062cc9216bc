/*
 * pp_listenfds.h - systemd's socket-activation variables, LISTEN_FDS and
 * LISTEN_PID, read the way sd_listen_fds(3) reads them (pp_listenfds.c).
 * Pure: the caller passes the values and its process id.
 */
#ifndef PP_LISTENFDS_H
#define PP_LISTENFDS_H

/* The first descriptor passed (SD_LISTEN_FDS_START). */
#define PP_LISTEN_FDS_START 3

/*
 * The most descriptors taken from LISTEN_FDS: those beyond are left
 * alone.  systemd's own limit on a unit's sockets is far below it, and
 * the constructor looks at each one with a few system calls.
 */
#define PP_LISTEN_FDS_MAX 4096

/*
 * How many descriptors, from PP_LISTEN_FDS_START on, socket activation
 * passed to process self, given the values of LISTEN_FDS and LISTEN_PID
 * (NULL when unset).  Returns:
 *  - 0 when LISTEN_FDS is unset or empty, or LISTEN_PID names another
 *    process (the variables were meant for a parent);
 *  - -EINVAL when a value is not a plain decimal number (digits only:
 *    no sign, no blanks), or LISTEN_FDS is 0 or above INT_MAX - 3;
 *  - otherwise the count, at most PP_LISTEN_FDS_MAX.
 * One departure from sd_listen_fds: an unset or empty LISTEN_PID is
 * accepted, as the manual says (launchers other than systemd, tests,
 * set LISTEN_FDS alone).
 */
int pp_listen_fds_parse(const char *listen_fds, const char *listen_pid,
			long self);

#endif /* PP_LISTENFDS_H */

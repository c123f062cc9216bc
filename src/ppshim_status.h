/*
 * ppshim_status.h - `ppshim status [--json] [PID...]`: which processes
 * have the library, with what configuration, and their counters.
 */
#ifndef WS_STATUS_H
#define WS_STATUS_H

/*
 * Run the status command; argv[0] is "status".  Returns the status to
 * exit with: 0 when every process shown has the library, 1 when one
 * does not, 2 for a usage error or a PID that does not exist.
 */
int ws_status(int argc, char **argv);

#endif

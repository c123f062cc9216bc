/*
 * ppshim.h - what the wrapper's files share: its exit statuses for a
 * COMMAND, and the one way it refuses (or with --force runs) a COMMAND
 * in which the library would not take effect.
 */
#ifndef WS_PPSHIM_H
#define WS_PPSHIM_H

#include <stdbool.h>

/* Shell conventions for a command that cannot be run or found. */
#define WS_EXIT_CANNOT_EXEC 126
#define WS_EXIT_NOT_FOUND 127

/*
 * Report a COMMAND in which the library would not take effect: refused
 * (returns WS_EXIT_CANNOT_EXEC), or with force a warning (returns 0).
 * The message is one line on stderr: "ppshim: " fmt, then what ppshim
 * does about it.
 */
int ws_refuse(bool force, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

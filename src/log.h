/*
 * log.h - ppshim's log lines: "ppshim[PID]: message", to stderr or
 * syslog as PP_LOG_TARGET says, filtered by PP_LOG.
 */
#ifndef PP_LOG_H
#define PP_LOG_H

#include <stdbool.h>

#include "pp_config.h"

/* Set the level and target (called once at load). */
void pp_log_init(enum pp_loglevel level, enum pp_logtarget target);

/* Would a line at this level be written? */
bool pp_log_on(enum pp_loglevel level);

/*
 * Write one line at level.  Preserves errno.  Never writes to an fd 2
 * that is a socket (it may be a client's connection); keeps no descriptor open
 * between lines, so a program that closes descriptors it does not own
 * cannot make a later line go astray.
 */
void pp_log(enum pp_loglevel level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The configuration error of the contract: "ppshim: MSG" on stderr and
 * to syslog, whatever PP_LOG says.
 */
void pp_log_config_error(const char *msg);

#endif /* PP_LOG_H */

/*
 * log.h - ppshim's log lines: "ppshim[PID]: message", to stderr or
 * syslog as PP_LOG_TARGET says, filtered by PP_LOG.
 */
#ifndef PP_LOG_H
#define PP_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "pp_config.h"

/* Set the level and target (called once at load). */
void pp_log_init(enum pp_loglevel level, enum pp_logtarget target);

/* The level PP_LOG set (pp_log_init); read through pp_log_on(). */
extern enum pp_loglevel pp_log_level;

/* Would a line at this level be written?  Inline: every datagram asks
 * whether it is to be logged. */
static inline bool
pp_log_on(enum pp_loglevel level)
{
	return level != PP_LOG_NONE && level <= pp_log_level;
}

/*
 * Write one line at level.  Preserves errno.  Never writes to an fd 2
 * that is a socket (it may be a client's connection); keeps no descriptor open
 * between lines, so a program that closes descriptors it does not own
 * cannot make a later line go astray.
 */
void pp_log(enum pp_loglevel level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The one writer to fd 2: writes buf[0..len) there unless fd 2 is a
 * socket (an inetd-style program has its client there) or not open.
 * Returns false when nothing was written, so the caller can send the
 * line to syslog instead.  Preserves errno; async-signal-safe.
 */
bool pp_write_stderr(const char *buf, size_t len);

/*
 * The configuration error of the contract: "ppshim: MSG" to syslog and
 * on stderr (unless fd 2 is a socket), whatever PP_LOG says.
 */
void pp_log_config_error(const char *msg);

#endif /* PP_LOG_H */

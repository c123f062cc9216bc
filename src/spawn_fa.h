/*
 * spawn_fa.h - what a posix_spawn child really receives: the file
 * actions, read back from libc's own object.
 *
 * A hand-over must describe only the descriptors the new image holds,
 * under the numbers it holds them by (handover.h).  For posix_spawn
 * those follow from the file actions (adddup2 moves a connection to
 * another number and may carry a close-on-exec descriptor across the
 * exec; addclose, addopen and addclosefrom_np take numbers away).  The
 * object is opaque, so its actions are read from glibc's layout, which
 * is checked once against actions of known values before it is
 * trusted.  Where the check fails (another libc, another layout) or an
 * action is not understood, pp_fa_read() reports it and the caller hands
 * over nothing: the child then sees the real addresses, never another
 * client's.
 */
#ifndef PP_SPAWN_FA_H
#define PP_SPAWN_FA_H

#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>

enum pp_faop {
	PP_FA_CLOSE,     /* fd closed */
	PP_FA_DUP2,      /* newfd becomes a copy of fd */
	PP_FA_OPEN,      /* fd becomes a file */
	PP_FA_CLOSEFROM, /* every fd >= fd closed */
	PP_FA_OTHER,     /* no effect on descriptors (chdir, ...) */
};

#define PP_FA_MAX 128   /* actions read; more: not understood */
#define PP_FA_COPIES 16 /* child numbers of one descriptor we follow */

struct pp_faact {
	enum pp_faop op;
	int fd, newfd;
};

struct pp_faplan {
	size_t n;
	struct pp_faact a[PP_FA_MAX];
};

/*
 * Read the actions of fa (NULL: none) into *plan.  Returns false when
 * they cannot be known for certain (unchecked layout, an unknown action,
 * more than PP_FA_MAX).  Not async-signal-safe the first time (the
 * layout check allocates); thread-safe.
 */
bool pp_fa_read(const posix_spawn_file_actions_t *fa, struct pp_faplan *plan);

/*
 * The numbers under which the child holds the parent's descriptor fd
 * (close-on-exec when cloexec) after the actions and the exec: at most
 * PP_FA_COPIES of them in out, ascending.  Returns how many; 0 also when
 * they are too many to follow.
 */
size_t pp_fa_fate(const struct pp_faplan *plan, int fd, bool cloexec,
		  int out[PP_FA_COPIES]);

#endif /* PP_SPAWN_FA_H */

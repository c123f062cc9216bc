/*
 * hook_newfd.h - calls that hand out descriptor numbers (hook_newfd.c):
 * forgetting what the table knew of a number handed out again.
 */
#ifndef PP_HOOK_NEWFD_H
#define PP_HOOK_NEWFD_H

#include <sys/socket.h>

#include "fdtab.h"

/*
 * A call that hands out descriptor numbers returned fd,
 * so whatever the table knew of that number is stale: forget it.  One
 * or two loads when the number is untracked (nearly always); keeps
 * errno; changes nothing in a vfork child.
 */
void pp_fd_forget(int fd);

static inline void
pp_fd_fresh(int fd)
{
	if (__builtin_expect(pp_fd_kind(fd) != PP_FD_NONE, 0))
		pp_fd_forget(fd);
}

/* The same for every descriptor a received message carried (SCM_RIGHTS
 * in msg's control data, as recvmsg left it).  Lock-free. */
void pp_fd_fresh_rights(const struct msghdr *msg);

#endif /* PP_HOOK_NEWFD_H */

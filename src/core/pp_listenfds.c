/*
 * pp_listenfds.c - how many descriptors systemd's socket activation
 * passed us, from LISTEN_FDS and LISTEN_PID (see pp_listenfds.h).  The
 * one reader for every caller: inherited connections (inherit.c) and
 * inherited datagram sockets (udp.c).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "pp_cfgtext.h"
#include "pp_listenfds.h"

int
pp_listen_fds_parse(const char *listen_fds, const char *listen_pid, long self)
{
	unsigned long pid, n;

	if (listen_pid != NULL && *listen_pid != '\0') {
		if (pp_cfg_num(listen_pid, strlen(listen_pid), LONG_MAX,
			       &pid) != PP_NUM_OK)
			return -EINVAL;
		if ((long)pid != self)
			return 0;
	}
	if (listen_fds == NULL || *listen_fds == '\0')
		return 0;
	if (pp_cfg_num(listen_fds, strlen(listen_fds),
		       INT_MAX - PP_LISTEN_FDS_START, &n) != PP_NUM_OK ||
	    n == 0)
		return -EINVAL;
	return n > PP_LISTEN_FDS_MAX ? PP_LISTEN_FDS_MAX : (int)n;
}

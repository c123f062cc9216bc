/*
 * trust.h - which sources may send a PROXY header (PP_ALLOW), which may
 * connect without one (PP_DIRECT), and the lists read from files that
 * the library follows while the program runs.
 */
#ifndef PP_TRUST_H
#define PP_TRUST_H

#include <stdbool.h>
#include <sys/socket.h>

enum pp_trust {
	PP_TRUST_NONE = 0, /* in neither list: refused (dropped) */
	PP_TRUST_PROXY,    /* PP_ALLOW: must send a header */
	PP_TRUST_DIRECT,   /* PP_DIRECT only: served as is */
};

/*
 * Which list the source sa (AF_INET or AF_INET6) is in, PP_ALLOW first.
 * When a list names files, it is the list as last read: the files are
 * looked at (one stat each) at most once a second, from here, and a
 * change that parses replaces the list whole; one that does not, or a
 * file that vanished, keeps the last good list and is logged once.
 * Lock-free and allocation-free; async-signal-safe; no system call
 * unless a second has passed since the last look.
 */
enum pp_trust pp_trust(const struct sockaddr *sa, socklen_t len);

/* May PP_DIRECT list any source (now or after a file changes)? */
bool pp_trust_any_direct(void);

/*
 * At load, before the configuration is parsed: copy the values of the
 * lists that name files (the program may change its environment later)
 * and note what each file looks like, so that a change made while the
 * configuration is read is seen at the first look.  Fills *io, which
 * the configuration parser reads the files with.  Returns false when
 * memory is short.  Not thread-safe; init.c calls it once.
 */
struct pp_aclio;
bool pp_trust_prepare(struct pp_aclio *io);

/* At load, after the configuration: start from the lists it holds. */
void pp_trust_start(void);

/* In a fork child: a look its parent's other thread was making is not
 * going on here. */
void pp_trust_atfork_child(void);

#endif /* PP_TRUST_H */

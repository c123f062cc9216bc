/*
 * spawn_fa.c - reading posix_spawn file actions back (see spawn_fa.h).
 *
 * Why read libc's object rather than record the actions: recording means
 * interposing every posix_spawn_file_actions_* call and keeping a table
 * keyed by the object's address, which a program that copies the object,
 * or builds it before the table exists, would silently defeat.  The
 * object itself is what posix_spawn will carry out, so it is the one
 * source of truth.  Its layout is glibc's private one (spawn_int.h):
 *
 *   posix_spawn_file_actions_t { int __allocated, __used;
 *                                struct __spawn_action *__actions; ... }
 *   struct __spawn_action { enum tag; union { ... } action; }
 *
 * with the tags in the order close, dup2, open, chdir, fchdir,
 * closefrom, tcsetpgrp.  Before the first use, actions of known values
 * are added to an object of our own through libc's functions and read
 * back through the mirror below; only when every field comes back as
 * written is the layout trusted, and only the tags seen in that check
 * are ever understood.
 */
#include "config.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include "spawn_fa.h"

#if defined(__GLIBC__)
/* glibc's struct __spawn_action, as spawn_int.h declares it. */
struct pp_glibc_action {
	int tag;
	union {
		struct {
			int fd;
		} close_action;
		struct {
			int fd;
			int newfd;
		} dup2_action;
		struct {
			int fd;
			char *path;
			int oflag;
			mode_t mode;
		} open_action;
		struct {
			char *path;
		} chdir_action;
		struct {
			int fd;
		} fchdir_action;
		struct {
			int from;
		} closefrom_action;
		struct {
			int fd;
		} setpgrp_action;
	} action;
};

enum {
	PP_TAG_CLOSE,
	PP_TAG_DUP2,
	PP_TAG_OPEN,
	PP_TAG_CHDIR,
	PP_TAG_FCHDIR,
	PP_TAG_CLOSEFROM,
	PP_TAG_TCSETPGRP,
	PP_TAG_COUNT
};

/* 0: not checked yet; 1 + a bit per tag seen in the check; -1: the
 * layout is not the one above. */
static atomic_int pp_fa_layout;

typedef int (*pp_fa_fd_fn)(posix_spawn_file_actions_t *, int);
typedef int (*pp_fa_path_fn)(posix_spawn_file_actions_t *, const char *);

static int
pp_fa_check(void)
{
	pp_fa_fd_fn closefrom = (pp_fa_fd_fn)dlsym(
		RTLD_DEFAULT, "posix_spawn_file_actions_addclosefrom_np");
	pp_fa_fd_fn fchdir = (pp_fa_fd_fn)dlsym(
		RTLD_DEFAULT, "posix_spawn_file_actions_addfchdir_np");
	pp_fa_fd_fn tcsetpgrp = (pp_fa_fd_fn)dlsym(
		RTLD_DEFAULT, "posix_spawn_file_actions_addtcsetpgrp_np");
	pp_fa_path_fn chdir = (pp_fa_path_fn)dlsym(
		RTLD_DEFAULT, "posix_spawn_file_actions_addchdir_np");
	static const char path[] = "/";
	posix_spawn_file_actions_t fa;
	const struct pp_glibc_action *a;
	int tags[PP_TAG_COUNT], n = 0, i, seen = 0;
	bool ok;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	ok = posix_spawn_file_actions_addclose(&fa, 3) == 0 &&
	     posix_spawn_file_actions_adddup2(&fa, 4, 5) == 0 &&
	     posix_spawn_file_actions_addopen(&fa, 6, path, O_RDONLY, 0) == 0;
	tags[n++] = PP_TAG_CLOSE;
	tags[n++] = PP_TAG_DUP2;
	tags[n++] = PP_TAG_OPEN;
	if (ok && chdir != NULL && chdir(&fa, path) == 0)
		tags[n++] = PP_TAG_CHDIR;
	if (ok && fchdir != NULL && fchdir(&fa, 7) == 0)
		tags[n++] = PP_TAG_FCHDIR;
	if (ok && closefrom != NULL && closefrom(&fa, 8) == 0)
		tags[n++] = PP_TAG_CLOSEFROM;
	if (ok && tcsetpgrp != NULL && tcsetpgrp(&fa, 9) == 0)
		tags[n++] = PP_TAG_TCSETPGRP;
	ok = ok && fa.__used == n && fa.__allocated >= n &&
	     fa.__actions != NULL;
	for (i = 0; ok && i < n; i++) {
		a = (const struct pp_glibc_action *)fa.__actions + i;
		ok = a->tag == tags[i];
		switch (tags[i]) {
		case PP_TAG_CLOSE:
			ok = ok && a->action.close_action.fd == 3;
			break;
		case PP_TAG_DUP2:
			ok = ok && a->action.dup2_action.fd == 4 &&
			     a->action.dup2_action.newfd == 5;
			break;
		case PP_TAG_OPEN:
			ok = ok && a->action.open_action.fd == 6 &&
			     a->action.open_action.oflag == O_RDONLY &&
			     a->action.open_action.path != NULL &&
			     strcmp(a->action.open_action.path, path) == 0;
			break;
		case PP_TAG_CHDIR:
			ok = ok && a->action.chdir_action.path != NULL &&
			     strcmp(a->action.chdir_action.path, path) == 0;
			break;
		case PP_TAG_FCHDIR:
			ok = ok && a->action.fchdir_action.fd == 7;
			break;
		case PP_TAG_CLOSEFROM:
			ok = ok && a->action.closefrom_action.from == 8;
			break;
		case PP_TAG_TCSETPGRP:
			ok = ok && a->action.setpgrp_action.fd == 9;
			break;
		default:
			break;
		}
		seen |= 1 << tags[i];
	}
	posix_spawn_file_actions_destroy(&fa);
	return ok ? 1 | seen << 1 : -1;
}

bool
pp_fa_read(const posix_spawn_file_actions_t *fa, struct pp_faplan *plan)
{
	const struct pp_glibc_action *a;
	int layout, i;

	plan->n = 0;
	if (fa == NULL)
		return true;
	layout = atomic_load_explicit(&pp_fa_layout, memory_order_acquire);
	if (layout == 0) {
		layout = pp_fa_check();
		atomic_store_explicit(&pp_fa_layout, layout,
				      memory_order_release);
	}
	if (layout < 0 || fa->__used < 0 || fa->__used > PP_FA_MAX ||
	    (fa->__used > 0 && fa->__actions == NULL))
		return false;
	for (i = 0; i < fa->__used; i++) {
		a = (const struct pp_glibc_action *)fa->__actions + i;
		if (a->tag < 0 || a->tag >= PP_TAG_COUNT ||
		    !(layout & 1 << (a->tag + 1)))
			return false;
		plan->a[i].fd = -1;
		plan->a[i].newfd = -1;
		switch (a->tag) {
		case PP_TAG_CLOSE:
			plan->a[i].op = PP_FA_CLOSE;
			plan->a[i].fd = a->action.close_action.fd;
			break;
		case PP_TAG_DUP2:
			plan->a[i].op = PP_FA_DUP2;
			plan->a[i].fd = a->action.dup2_action.fd;
			plan->a[i].newfd = a->action.dup2_action.newfd;
			break;
		case PP_TAG_OPEN:
			plan->a[i].op = PP_FA_OPEN;
			plan->a[i].fd = a->action.open_action.fd;
			break;
		case PP_TAG_CLOSEFROM:
			plan->a[i].op = PP_FA_CLOSEFROM;
			plan->a[i].fd = a->action.closefrom_action.from;
			break;
		default:
			plan->a[i].op = PP_FA_OTHER;
			break;
		}
	}
	plan->n = (size_t)fa->__used;
	return true;
}
#else
bool
pp_fa_read(const posix_spawn_file_actions_t *fa, struct pp_faplan *plan)
{
	/* Another libc's layout is not known: understood only when empty. */
	plan->n = 0;
	return fa == NULL;
}
#endif

/* One child number of the followed descriptor. */
struct pp_facopy {
	int fd;
	bool cloexec;
};

static size_t
pp_fa_drop(struct pp_facopy *s, size_t n, int fd, bool from)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (from ? s[i].fd < fd : s[i].fd != fd)
			s[k++] = s[i];
	return k;
}

size_t
pp_fa_fate(const struct pp_faplan *plan, int fd, bool cloexec,
	   int out[PP_FA_COPIES])
{
	struct pp_facopy s[PP_FA_COPIES];
	const struct pp_faact *a;
	size_t n = 1, i, j, k = 0;
	bool have;
	int t;

	s[0].fd = fd;
	s[0].cloexec = cloexec;
	for (i = 0; i < plan->n && n > 0; i++) {
		a = &plan->a[i];
		switch (a->op) {
		case PP_FA_CLOSE:
		case PP_FA_OPEN:
			n = pp_fa_drop(s, n, a->fd, false);
			break;
		case PP_FA_CLOSEFROM:
			n = pp_fa_drop(s, n, a->fd, true);
			break;
		case PP_FA_DUP2:
			have = false;
			for (j = 0; j < n; j++)
				if (s[j].fd == a->fd)
					have = true;
			if (a->fd == a->newfd) {
				/* dup2 onto itself clears close-on-exec. */
				for (j = 0; j < n; j++)
					if (s[j].fd == a->fd)
						s[j].cloexec = false;
				break;
			}
			n = pp_fa_drop(s, n, a->newfd, false);
			if (!have)
				break;
			if (n == PP_FA_COPIES)
				return 0; /* too many to follow: none */
			s[n].fd = a->newfd;
			s[n++].cloexec = false;
			break;
		case PP_FA_OTHER:
			break;
		}
	}
	for (i = 0; i < n; i++)
		if (!s[i].cloexec)
			out[k++] = s[i].fd;
	/* Ascending, for the caller's "lowest number" rules. */
	for (i = 1; i < k; i++)
		for (j = i; j > 0 && out[j - 1] > out[j]; j--) {
			t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return k;
}

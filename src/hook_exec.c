/*
 * hook_exec.c - execve and the libc calls around it: the advertised
 * addresses follow a connection into the program that is exec'ed.
 *
 * Every exec entry point a program can call from outside libc (execve,
 * execv, execvp, execvpe, execl, execlp, execle, fexecve, posix_spawn,
 * posix_spawnp) goes through pp_exec_env(), which describes each
 * connection the new image receives (tracked, still the same socket,
 * not close-on-exec; for posix_spawn, after its file actions and under
 * the numbers they give it: spawn_fa.h) in PPSHIM_HANDOVER, and adds
 * that to the environment the program passes, so programs that build a
 * fresh environment for their child (xinetd) keep the hand-over.  It
 * never describes a descriptor the new image does not get.  For the
 * connection on the lowest of fds 0-2 (inetd style) it also exports the
 * PP_TLV_* variables and rewrites TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP
 * and TCPLOCALPORT where present (TCPREMOTEHOST and TCPREMOTEINFO
 * described the proxy: they are removed when the address changes).
 * PP_INHERIT is turned off in the new image once a header was read on
 * this side: a connection's header is read once.
 *
 * Calls that libc makes internally (system, popen, posix_spawn inside
 * other libc functions) cannot be interposed; their children inherit the
 * process environment.  pp_handover_environ() writes there, at load,
 * the hand-over of the connections this image holds (received or read
 * with PP_INHERIT), and inherit.c turns PP_INHERIT off there, so those
 * children see the advertised addresses too and never read a header
 * from the client's payload.
 *
 * execve may run in a vfork child: the work here uses the stack, mmap
 * and system calls only, and changes no shared state.
 */
#include "config.h"

#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handover.h"
#include "hook_exec.h"
#include "ident.h"
#include "shim.h"
#include "tlvcache.h"
#include "spawn_fa.h"

extern char **environ;

#define PP_HANDOVER_MAX 16384 /* bytes of PPSHIM_HANDOVER */
#define PP_EXEC_MAXARGS 4096  /* execl* argument lists */

/* The environment built for one exec, in one anonymous mapping. */
struct pp_execenv {
	char **envp; /* what to pass to the real call */
	void *map;
	size_t maplen;
};

static bool
pp_has_name(const char *entry, const char *name)
{
	size_t n = strlen(name);

	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* Copy "NAME=value" into the string area; returns the copy or NULL. */
static char *
pp_env_put(char **area, char *end, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	char *s = *area;

	if ((size_t)(end - s) < n + v + 2)
		return NULL;
	memcpy(s, name, n);
	s[n] = '=';
	memcpy(s + n + 1, value, v + 1);
	*area = s + n + v + 2;
	return s;
}

/* The environment being built for exec, as pp_tcpvars_rewrite edits it:
 * n entries, new strings taken from [area, end). */
struct pp_envbuild {
	char **envp;
	size_t n;
	char *area, *end;
};

static const char *
pp_build_get(void *arg, const char *name)
{
	struct pp_envbuild *b = arg;
	size_t i;

	for (i = 0; i < b->n; i++)
		if (pp_has_name(b->envp[i], name))
			return b->envp[i] + strlen(name) + 1;
	return NULL;
}

static void
pp_build_set(void *arg, const char *name, const char *value)
{
	struct pp_envbuild *b = arg;
	char *s = pp_env_put(&b->area, b->end, name, value);
	size_t i;

	for (i = 0; s != NULL && i < b->n; i++)
		if (pp_has_name(b->envp[i], name))
			b->envp[i] = s;
}

static void
pp_build_unset(void *arg, const char *name)
{
	struct pp_envbuild *b = arg;
	size_t i = 0;

	while (i < b->n) {
		if (pp_has_name(b->envp[i], name)) {
			memmove(&b->envp[i], &b->envp[i + 1],
				(b->n - i - 1) * sizeof(char *));
			b->n--;
			continue;
		}
		i++;
	}
}

/*
 * Rewrite tcpserver's variables among the n entries of envp for
 * connection info, new strings taken from [area, end).  Returns the
 * number of entries left.
 */
static size_t
pp_build_tcpvars(char **envp, size_t n, char *area, char *end,
		 const struct pp_fdinfo *info)
{
	struct pp_envbuild b = { envp, n, area, end };
	const struct pp_envops ops = { pp_build_get, pp_build_set,
				       pp_build_unset, &b };

	pp_tcpvars_rewrite(info, pp_cfg.sockname_real, &ops);
	return b.n;
}

/* Which descriptors the new image receives. */
enum pp_view {
	PP_VIEW_EXEC,  /* this process's, less the close-on-exec ones */
	PP_VIEW_SPAWN, /* the same after posix_spawn's file actions */
	PP_VIEW_NONE,  /* unknown: hand nothing over */
};

/* Add the entry for h; the lowest one on 0, 1 or 2 becomes *first. */
static bool
pp_collect_one(char *out, size_t cap, struct pp_handover *first,
	       const struct pp_handover *h)
{
	if (!pp_handover_append(out, cap, h))
		return false;
	if (h->fd <= 2 && (first->fd < 0 || h->fd < first->fd))
		*first = *h;
	return true;
}

/* What pp_collect gathers while it walks the table. */
struct pp_collectctx {
	char *out;
	size_t cap, n;
	struct pp_handover *first;
	enum pp_view view;
	const struct pp_faplan *plan;
	bool any;
};

/* pp_fd_foreach visitor: the entries for one connection (fd, *info). */
static bool
pp_collect_fd(int fd, const struct pp_fdinfo *info, void *arg)
{
	struct pp_collectctx *c = arg;
	struct pp_handover h;
	int fdfl, copies[PP_FA_COPIES];
	size_t nc, k;

	fdfl = (int)syscall(SYS_fcntl, fd, F_GETFD);
	if (fdfl < 0)
		return true;
	h.info = *info;
	h.info.cookie = pp_conn_cookie(fd, &h.info);
	if (h.info.cookie == 0)
		return true;
	c->any = true;
	if (c->view == PP_VIEW_NONE)
		return true;
	if (c->view == PP_VIEW_EXEC) {
		if (fdfl & FD_CLOEXEC)
			return true;
		nc = 1;
		copies[0] = fd;
	} else {
		nc = pp_fa_fate(c->plan, fd, (fdfl & FD_CLOEXEC) != 0, copies);
	}
	if (nc == 0)
		return true;
	pp_tlvcache_get(h.info.cookie, &h.tlvs);
	for (k = 0; k < nc; k++) {
		h.fd = copies[k];
		if (pp_collect_one(c->out, c->cap, c->first, &h))
			c->n++;
	}
	return true;
}

/*
 * Describe the connections the new image receives, under the numbers it
 * receives them by; returns how many entries (the value in out,
 * NUL-terminated).  *first is the connection on the lowest of fds 0-2
 * (fd -1: none there); *any tells whether this process holds a
 * connection at all.
 */
static size_t
pp_collect(char *out, size_t cap, struct pp_handover *first, enum pp_view view,
	   const struct pp_faplan *plan, bool *any)
{
	struct pp_collectctx c = { out, cap, 0, first, view, plan, false };

	out[0] = '\0';
	first->fd = -1;
	pp_fd_foreach(PP_FD_CONN, pp_collect_fd, &c);
	*any = c.any;
	return c.n;
}

/* Is entry PP_INHERIT with a value that turns it on? */
static bool
pp_inherit_on(const char *entry)
{
	return pp_has_name(entry, "PP_INHERIT") &&
	       strcmp(entry + sizeof("PP_INHERIT"), "0") != 0;
}

static char pp_inherit_off[] = "PP_INHERIT=0";

/*
 * Build the environment for exec from envp.  Returns false when envp can
 * be used as it is (nothing to hand over, nothing stale to remove).
 *
 * PP_INHERIT is turned off in the new image whenever a header was read
 * on this side (a connection is handed over, this process holds one, or
 * it was itself started with PP_INHERIT=1): a connection's header is
 * read once, never again from the client's payload.
 */
static bool
pp_exec_env(char *const envp[], struct pp_execenv *x, enum pp_view view,
	    const struct pp_faplan *plan)
{
	struct pp_handover first;
	char value[PP_HANDOVER_MAX], tlv[2 * PP_XTLV_MAX + 8];
	char *area, *end, *s;
	char *const empty[] = { NULL };
	size_t n, count = 0, i, j, k, extra;
	bool stale = false, inherit = false, any, off;
	int saved = errno;

	if (envp == NULL)
		envp = empty;
	for (i = 0; envp[i] != NULL; i++) {
		if (pp_has_name(envp[i], PP_HANDOVER_VAR))
			stale = true;
		else if (pp_inherit_on(envp[i]))
			inherit = true;
	}
	count = i;
	n = pp_collect(value, sizeof(value), &first, view, plan, &any);
	off = inherit && (n > 0 || any || pp_cfg.inherit);
	if (n == 0 && !stale && !off) {
		errno = saved;
		return false;
	}
	extra = 1 + PP_XTLV_COUNT + 4;
	x->maplen = (count + extra + 1) * sizeof(char *) + sizeof(value) +
		    PP_XTLV_COUNT * sizeof(tlv) + 4 * 128;
	x->map = mmap(NULL, x->maplen, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x->map == MAP_FAILED) {
		errno = saved;
		return false;
	}
	x->envp = x->map;
	area = (char *)(x->envp + count + extra + 1);
	end = (char *)x->map + x->maplen;
	k = 0;
	for (i = 0; i < count; i++) {
		if (pp_has_name(envp[i], PP_HANDOVER_VAR))
			continue;
		if (off && pp_inherit_on(envp[i])) {
			x->envp[k++] = pp_inherit_off;
			continue;
		}
		if (n > 0) {
			for (j = 0; j < PP_XTLV_COUNT; j++)
				if (pp_has_name(
					    envp[i],
					    pp_tlv_envname((enum pp_tlvname)j)))
					break;
			if (j < PP_XTLV_COUNT)
				continue;
		}
		x->envp[k++] = envp[i];
	}
	if (n > 0 && (s = pp_env_put(&area, end, PP_HANDOVER_VAR, value)))
		x->envp[k++] = s;
	/* The variables describe the connection on 0, 1 or 2 (inetd
	 * style), and only one the new image really holds. */
	if (n > 0 && first.fd >= 0) {
		for (j = 0; j < PP_XTLV_COUNT; j++) {
			if (!first.tlvs.present[j])
				continue;
			pp_tlv_envvalue(first.tlvs.val[j], first.tlvs.len[j],
					tlv, sizeof(tlv));
			if ((s = pp_env_put(&area, end,
					    pp_tlv_envname((enum pp_tlvname)j),
					    tlv)))
				x->envp[k++] = s;
		}
		/* tcpserver's variables, where the launcher set them. */
		k = pp_build_tcpvars(x->envp, k, area, end, &first.info);
	}
	x->envp[k] = NULL;
	errno = saved;
	return true;
}

void
pp_handover_environ(void)
{
	struct pp_handover first;
	char *value;
	bool any;

	value = malloc(PP_HANDOVER_MAX);
	if (value == NULL) {
		unsetenv(PP_HANDOVER_VAR);
		return;
	}
	if (pp_collect(value, PP_HANDOVER_MAX, &first, PP_VIEW_EXEC, NULL,
		       &any) > 0)
		setenv(PP_HANDOVER_VAR, value, 1);
	else
		unsetenv(PP_HANDOVER_VAR);
	free(value);
}

static void
pp_exec_done(struct pp_execenv *x)
{
	int saved = errno;

	munmap(x->map, x->maplen);
	errno = saved;
}

/*
 * The bodies of execve and execvpe.  The other exec* functions call
 * these, never the exported names: a call to an exported name from
 * inside the library could be bound to another preloaded library's
 * definition, which would then see the environment twice.
 */
static int
pp_execve(const char *path, char *const argv[], char *const envp[])
{
	struct pp_execenv x;
	int ret;

	if (!pp_ready())
		return (int)syscall(SYS_execve, path, argv, envp);
	if (!pp_exec_env(envp, &x, PP_VIEW_EXEC, NULL))
		return pp_real.execve(path, argv, envp);
	ret = pp_real.execve(path, argv, x.envp);
	pp_exec_done(&x);
	return ret;
}

static int
pp_execvpe(const char *file, char *const argv[], char *const envp[])
{
	struct pp_execenv x;
	int ret;

	if (!pp_ready() || pp_real.execvpe == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (!pp_exec_env(envp, &x, PP_VIEW_EXEC, NULL))
		return pp_real.execvpe(file, argv, envp);
	ret = pp_real.execvpe(file, argv, x.envp);
	pp_exec_done(&x);
	return ret;
}

PP_EXPORT int
execve(const char *path, char *const argv[], char *const envp[])
{
	return pp_execve(path, argv, envp);
}

PP_EXPORT int
execvpe(const char *file, char *const argv[], char *const envp[])
{
	return pp_execvpe(file, argv, envp);
}

PP_EXPORT int
execv(const char *path, char *const argv[])
{
	return pp_execve(path, argv, environ);
}

PP_EXPORT int
execvp(const char *file, char *const argv[])
{
	return pp_execvpe(file, argv, environ);
}

PP_EXPORT int
fexecve(int fd, char *const argv[], char *const envp[])
{
	struct pp_execenv x;
	int ret;

	if (!pp_ready() || pp_real.fexecve == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (!pp_exec_env(envp, &x, PP_VIEW_EXEC, NULL))
		return pp_real.fexecve(fd, argv, envp);
	ret = pp_real.fexecve(fd, argv, x.envp);
	pp_exec_done(&x);
	return ret;
}

/*
 * execl, execlp, execle: gather the variadic arguments (at most
 * PP_EXEC_MAXARGS, like a kernel limit: E2BIG beyond) and go on as
 * execve / execvpe.
 */
#define PP_GATHER_ARGS(argv, arg0, ap)                                         \
	do {                                                                   \
		size_t pp_n = 0;                                               \
		(argv)[pp_n++] = (char *)(arg0);                               \
		while ((argv)[pp_n - 1] != NULL) {                             \
			if (pp_n == PP_EXEC_MAXARGS) {                         \
				va_end(ap);                                    \
				errno = E2BIG;                                 \
				return -1;                                     \
			}                                                      \
			(argv)[pp_n++] = va_arg(ap, char *);                   \
		}                                                              \
	} while (0)

PP_EXPORT int
execl(const char *path, const char *arg, ...)
{
	char *argv[PP_EXEC_MAXARGS];
	va_list ap;

	va_start(ap, arg);
	PP_GATHER_ARGS(argv, arg, ap);
	va_end(ap);
	return pp_execve(path, argv, environ);
}

PP_EXPORT int
execlp(const char *file, const char *arg, ...)
{
	char *argv[PP_EXEC_MAXARGS];
	va_list ap;

	va_start(ap, arg);
	PP_GATHER_ARGS(argv, arg, ap);
	va_end(ap);
	return pp_execvpe(file, argv, environ);
}

PP_EXPORT int
execle(const char *path, const char *arg, ...)
{
	char *argv[PP_EXEC_MAXARGS];
	char *const *envp;
	va_list ap;

	va_start(ap, arg);
	PP_GATHER_ARGS(argv, arg, ap);
	envp = va_arg(ap, char *const *);
	va_end(ap);
	return pp_execve(path, argv, envp);
}

/*
 * The environment for posix_spawn(p): what the child receives follows
 * from the file actions; when they cannot be read, nothing is handed
 * over (the child sees the real addresses, never another client's).
 */
static bool
pp_spawn_env(char *const envp[], const posix_spawn_file_actions_t *fa,
	     struct pp_execenv *x)
{
	struct pp_faplan plan;
	int saved = errno;
	bool known = pp_fa_read(fa, &plan);

	errno = saved;
	return pp_exec_env(envp, x, known ? PP_VIEW_SPAWN : PP_VIEW_NONE,
			   &plan);
}

PP_EXPORT int
posix_spawn(pid_t *restrict pid, const char *restrict path,
	    const posix_spawn_file_actions_t *fa,
	    const posix_spawnattr_t *restrict attr, char *const argv[],
	    char *const envp[])
{
	struct pp_execenv x;
	int ret;

	if (!pp_ready() || pp_real.posix_spawn == NULL)
		return ENOSYS;
	if (!pp_spawn_env(envp, fa, &x))
		return pp_real.posix_spawn(pid, path, fa, attr, argv, envp);
	ret = pp_real.posix_spawn(pid, path, fa, attr, argv, x.envp);
	pp_exec_done(&x);
	return ret;
}

PP_EXPORT int
posix_spawnp(pid_t *restrict pid, const char *restrict file,
	     const posix_spawn_file_actions_t *fa,
	     const posix_spawnattr_t *restrict attr, char *const argv[],
	     char *const envp[])
{
	struct pp_execenv x;
	int ret;

	if (!pp_ready() || pp_real.posix_spawnp == NULL)
		return ENOSYS;
	if (!pp_spawn_env(envp, fa, &x))
		return pp_real.posix_spawnp(pid, file, fa, attr, argv, envp);
	ret = pp_real.posix_spawnp(pid, file, fa, attr, argv, x.envp);
	pp_exec_done(&x);
	return ret;
}

/*
 * ppshim_command.c - COMMAND: found the way execvp(3) finds it, checked
 * for what would make the library silently do nothing in it (the
 * loader's secure-execution mode, no loader at all, a Go program), and
 * executed, the very file that was checked; a file without a #! line
 * goes to the shell as execvp(3) does, an ELF file never.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sysexits.h>
#include <unistd.h>

#include "ppshim.h"
#include "ppshim_command.h"
#include "ppshim_kernel.h"

/* Can we execute this file (effective ids, as execve checks)? */
static bool
ws_executable(const char *path, struct stat *st)
{
	if (stat(path, st) != 0)
		return false;
	if (!S_ISREG(st->st_mode)) {
		errno = EACCES;
		return false;
	}
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
}

/*
 * Find cmd the way execvp(3) does: a name with a slash as is, otherwise
 * the first executable regular file of that name in PATH (default: the
 * system's standard path).  Returns a malloc'd path and fills *st, or
 * NULL with errno ENOENT (nothing of that name), EACCES (found but not
 * executable) or another error.
 */
static char *
ws_resolve(const char *cmd, struct stat *st)
{
	const char *path, *p;
	char defpath[256];
	size_t cmdlen = strlen(cmd);
	bool seen_eacces = false;

	if (strchr(cmd, '/') != NULL) {
		if (!ws_executable(cmd, st))
			return NULL;
		return strdup(cmd);
	}
	if (cmdlen == 0) {
		errno = ENOENT;
		return NULL;
	}
	path = getenv("PATH");
	if (path == NULL) {
		size_t n = confstr(_CS_PATH, defpath, sizeof(defpath));

		if (n == 0 || n > sizeof(defpath))
			strcpy(defpath, "/bin:/usr/bin");
		path = defpath;
	}
	p = path;
	for (;;) {
		size_t dirlen = strcspn(p, ":");
		char *cand = malloc(dirlen + 1 + cmdlen + 1);

		if (cand == NULL)
			return NULL;
		/* An empty element means the current directory. */
		if (dirlen == 0)
			sprintf(cand, "./%s", cmd);
		else
			sprintf(cand, "%.*s/%s", (int)dirlen, p, cmd);
		if (ws_executable(cand, st))
			return cand;
		if (errno == EACCES)
			seen_eacces = true;
		free(cand);
		p += dirlen;
		if (*p == '\0')
			break;
		p++;
	}
	errno = seen_eacces ? EACCES : ENOENT;
	return NULL;
}

/*
 * Why the loader would ignore the library for this file, or NULL when it
 * would not.  Set-group-ID counts only with group execute permission, as
 * the kernel has it (without, the bit means mandatory locking).
 */
static const char *
ws_secure_exec_reason(const char *path, const struct stat *st)
{
	if (st->st_mode & S_ISUID)
		return "is setuid";
	if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		return "is setgid";
	if (getxattr(path, "security.capability", NULL, 0) >= 0)
		return "has file capabilities";
	return NULL;
}

/*
 * Find COMMAND and make sure the loader will honour the preload for it,
 * and the library see its sockets.  Returns 0 with *path (malloc'd),
 * *st and *elf set, or the status to exit with (a message printed): 127
 * when not found, 126 when not executable, or (unless force) run in
 * secure-execution mode, statically linked or a Go program; EX_OSERR.
 * *path is NULL or malloc'd in every case.
 */
int
ws_check_command(const char *cmd, bool force, char **path, struct stat *st,
		 struct ws_elf *elf)
{
	const char *why;
	int r;

	*path = ws_resolve(cmd, st);
	if (*path == NULL) {
		if (errno == ENOENT || errno == ENOTDIR) {
			fprintf(stderr, "ppshim: %s: command not found\n", cmd);
			return WS_EXIT_NOT_FOUND;
		}
		fprintf(stderr, "ppshim: %s: %s\n", cmd, strerror(errno));
		return errno == ENOMEM ? EX_OSERR : WS_EXIT_CANNOT_EXEC;
	}
	why = ws_secure_exec_reason(*path, st);
	if (why != NULL) {
		r = ws_refuse(force,
			      "%s %s: the dynamic loader runs it in "
			      "secure-execution mode and ignores LD_PRELOAD "
			      "entries with a slash, so libppshim would not be "
			      "loaded",
			      *path, why);
		if (r != 0)
			return r;
	}
	ws_elf_inspect(*path, elf);
	if (!elf->parsed)
		return 0; /* a script, or nothing ppshim can read: as before */
	/* Whatever else would be said of it, it could not run at all. */
	if (ws_kernel_refuses_ia32(elf)) {
		ws_noexec_message(*path, elf);
		return WS_EXIT_CANNOT_EXEC;
	}
	if (elf->go && elf->interp)
		return ws_refuse(force,
				 "%s is a Go program: libppshim would be "
				 "loaded, but Go's net package makes its "
				 "system calls itself, not through the C "
				 "library, so the library would never see "
				 "its sockets",
				 *path);
	if (elf->go)
		return ws_refuse(force,
				 "%s is a statically linked Go program: no "
				 "dynamic loader runs it and nothing reads "
				 "LD_PRELOAD, and Go's net package makes its "
				 "system calls itself; libppshim cannot work "
				 "in it",
				 *path);
	if (!elf->interp && !ws_is_own_loader(*path))
		return ws_refuse(force,
				 "%s is statically linked: no dynamic loader "
				 "runs it and nothing reads LD_PRELOAD, so "
				 "libppshim would not be loaded",
				 *path);
	return 0;
}

/* Run a file without a #! line with the shell, as execvp(3) does. */
static void
ws_exec_script(const char *path, int argc, char **argv)
{
	char **nargv = calloc((size_t)argc + 2, sizeof(*nargv));
	int i;

	if (nargv == NULL)
		return;
	nargv[0] = (char *)"sh";
	nargv[1] = (char *)path;
	for (i = 1; i < argc; i++)
		nargv[i + 1] = argv[i];
	execv("/bin/sh", nargv);
	free(nargv);
}

/*
 * Execute the checked file path (headers in elf) with argv[0..argc), as
 * execvp(3) would but never handing an ELF file to the shell.  Returns
 * only on failure, with the status to exit with (126, 127), the reason
 * printed.
 */
int
ws_exec_command(const char *path, int argc, char **argv,
		const struct ws_elf *elf)
{
	int r;

	execv(path, argv);
	if (errno == ENOEXEC && elf->cls > 0) {
		/* Never hand an ELF file to the shell, as execvp would. */
		ws_noexec_message(path, elf);
		return WS_EXIT_CANNOT_EXEC;
	}
	if (errno == ENOEXEC)
		ws_exec_script(path, argc, argv);
	r = errno;
	fprintf(stderr, "ppshim: %s: %s\n", path, strerror(r));
	return r == ENOENT ? WS_EXIT_NOT_FOUND : WS_EXIT_CANNOT_EXEC;
}

/*
 * ppshim.c - the wrapper: ppshim [options] -- COMMAND [ARGS...]
 *
 * Sets the PP_* variables from its options, checks the resulting
 * configuration with the parser the library itself uses (so a mistake is
 * reported here, before the server starts), adds the library to
 * LD_PRELOAD without disturbing what is already there, refuses commands
 * that the dynamic loader would run in secure-execution mode (where it
 * silently ignores the preload), and execs COMMAND.
 *
 * Exit statuses (sysexits(3) where one fits, the shell's otherwise):
 *   64  usage error
 *   69  library missing, unreadable, not ELF, or of the other ELF class
 *   71  system error (out of memory)
 *   78  configuration error (the message names the variable and token)
 *  126  COMMAND setuid, setgid or with file capabilities, or not executable
 *  127  COMMAND not found
 * Otherwise the status is COMMAND's own, since ppshim replaces itself.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sysexits.h>
#include <unistd.h>

#include "pp_config.h"

#ifndef PPSHIM_LIBDIR
#define PPSHIM_LIBDIR "/usr/local/lib"
#endif

#define PP_DEFAULT_LIBRARY PPSHIM_LIBDIR "/libppshim.so"

/* Shell conventions for a command that cannot be run or found. */
#define PP_EXIT_CANNOT_EXEC 126
#define PP_EXIT_NOT_FOUND 127

/*
 * One row per option that sets a variable.  optional_arg marks the
 * boolean switches: given alone they mean "1".
 */
struct pp_optvar {
	const char *option;
	const char *var;
	const char *metavar;
	bool optional_arg;
	const char *help;
	const char *dflt;
};

static const struct pp_optvar pp_optvars[] = {
	{ "ports", "PP_PORTS", "LIST", false,
	  "PROXY-only listeners: PORT, ADDR:PORT, [V6ADDR]:PORT,\n"
	  "each optionally /tcp or /udp; unix:/path",
	  "empty: no socket is touched" },
	{ "allow", "PP_ALLOW", "CIDRS", false,
	  "trusted proxies, which must send a header", "127.0.0.0/8,::1" },
	{ "direct", "PP_DIRECT", "CIDRS", false,
	  "sources that connect without a header", "empty" },
	{ "timeout-ms", "PP_TIMEOUT_MS", "MS", false,
	  "how long to wait for a complete header", "3000" },
	{ "versions", "PP_VERSIONS", "LIST", false,
	  "accepted header versions: 1, 2 or 1,2", "1,2" },
	{ "sockname", "PP_SOCKNAME", "MODE", false,
	  "what getsockname returns: proxied or real", "proxied" },
	{ "log", "PP_LOG", "LEVEL", false, "none, error, warn, info or debug",
	  "warn" },
	{ "log-target", "PP_LOG_TARGET", "TARGET", false, "stderr or syslog",
	  "stderr" },
	{ "v2-draft", "PP_V2_DRAFT", "0|1", true,
	  "also accept the 2012 draft v2 layout", "0" },
	{ "inherit", "PP_INHERIT", "0|1", true,
	  "read the header of inherited connected sockets", "0" },
};

#define PP_NOPTVARS (sizeof(pp_optvars) / sizeof(pp_optvars[0]))

/* getopt_long values: the index into pp_optvars, then these. */
enum { PP_OPT_LIBRARY = 0x100, PP_OPT_HELP = 'h', PP_OPT_VERSION = 'V' };

static const struct option pp_fixed_opts[] = {
	{ "library", required_argument, NULL, PP_OPT_LIBRARY },
	{ "help", no_argument, NULL, PP_OPT_HELP },
	{ "version", no_argument, NULL, PP_OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

#define PP_NFIXED (sizeof(pp_fixed_opts) / sizeof(pp_fixed_opts[0]))

static void
pp_usage_hint(void)
{
	fprintf(stderr, "Try 'ppshim --help' for more information.\n");
}

static void
pp_help(void)
{
	size_t i;

	printf("Usage: ppshim [OPTION]... -- COMMAND [ARG]...\n"
	       "Run COMMAND with libppshim preloaded: on the listening sockets"
	       " named by\n"
	       "--ports it strips the PROXY protocol header that trusted "
	       "proxies send,\n"
	       "and COMMAND sees the client addresses the header "
	       "advertises.\n\n"
	       "Each option sets one environment variable; a variable whose"
	       " option is not\n"
	       "given keeps its inherited value, or the library's default.\n"
	       "\n");
	for (i = 0; i < PP_NOPTVARS; i++) {
		const struct pp_optvar *o = &pp_optvars[i];
		const char *h = o->help;
		char left[64];

		if (o->optional_arg)
			snprintf(left, sizeof(left), "--%s[=%s]", o->option,
				 o->metavar);
		else
			snprintf(left, sizeof(left), "--%s=%s", o->option,
				 o->metavar);
		printf("  %-22s sets %s\n", left, o->var);
		/* The help text may hold several lines: indent each. */
		while (*h != '\0') {
			size_t n = strcspn(h, "\n");

			printf("%25s%.*s\n", "", (int)n, h);
			h += n;
			if (*h == '\n')
				h++;
		}
		printf("%25s(default: %s)\n", "", o->dflt);
	}
	printf("  %-22s sets LD_PRELOAD (appended, kept once)\n"
	       "%25sthe library to preload\n"
	       "%25s(default: %s)\n",
	       "--library=PATH", "", "", PP_DEFAULT_LIBRARY);
	printf("  %-22s show this help and exit\n", "-h, --help");
	printf("  %-22s show the version and exit\n", "-V, --version");
	printf("\n"
	       "ppshim refuses a setuid, setgid or file-capability COMMAND:"
	       " the dynamic\n"
	       "loader runs such programs in secure-execution mode and"
	       " silently ignores\n"
	       "LD_PRELOAD, so the library would not be loaded.\n"
	       "\n"
	       "Exit status: 64 usage error, 69 library missing, 71 system"
	       " error,\n"
	       "78 configuration error, 126 COMMAND cannot be run with the"
	       " library\n"
	       "or cannot be executed, 127 COMMAND not found; otherwise"
	       " COMMAND's status.\n"
	       "See ppshim(1) and libppshim(8).\n");
}

/* getenv() with the const-qualified shape pp_config_parse() wants. */
static const char *
pp_env(const char *name)
{
	return getenv(name);
}

/* Is the character a separator between LD_PRELOAD elements? */
static bool
pp_is_sep(char c)
{
	return c == ':' || c == ' ';
}

/* Is lib exactly one of the elements of the LD_PRELOAD value list? */
static bool
pp_preload_has(const char *list, const char *lib)
{
	size_t liblen = strlen(lib);
	const char *p = list;

	while (*p != '\0') {
		size_t n = 0;

		while (pp_is_sep(*p))
			p++;
		while (p[n] != '\0' && !pp_is_sep(p[n]))
			n++;
		if (n == liblen && memcmp(p, lib, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/*
 * Add lib to LD_PRELOAD unless it is already an element; entries that
 * are there stay, in front (an ASan runtime must stay first).  Returns 0
 * or -errno.
 */
static int
pp_preload_add(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t oldlen;
	char *v;
	int r;

	if (old == NULL || old[strspn(old, ": ")] == '\0')
		return setenv("LD_PRELOAD", lib, 1) == 0 ? 0 : -errno;
	if (pp_preload_has(old, lib))
		return 0;
	oldlen = strlen(old);
	v = malloc(oldlen + 1 + strlen(lib) + 1);
	if (v == NULL)
		return -errno;
	/* Keep the old value verbatim; add a separator only if needed. */
	if (pp_is_sep(old[oldlen - 1]))
		sprintf(v, "%s%s", old, lib);
	else
		sprintf(v, "%s:%s", old, lib);
	r = setenv("LD_PRELOAD", v, 1) == 0 ? 0 : -errno;
	free(v);
	return r;
}

/*
 * The library path made absolute, so that a server that changes
 * directory (or its children) still finds it.  Returns a malloc'd string
 * or NULL with errno set.
 */
static char *
pp_absolute(const char *path)
{
	char cwd[PATH_MAX];
	char *r;

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	r = malloc(strlen(cwd) + 1 + strlen(path) + 1);
	if (r == NULL)
		return NULL;
	sprintf(r, "%s/%s", cwd, path);
	return r;
}

/* Can we execute this file (effective ids, as execve checks)? */
static bool
pp_executable(const char *path, struct stat *st)
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
pp_resolve(const char *cmd, struct stat *st)
{
	const char *path, *p;
	char defpath[256];
	size_t cmdlen = strlen(cmd);
	bool seen_eacces = false;

	if (strchr(cmd, '/') != NULL) {
		if (!pp_executable(cmd, st))
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
		if (pp_executable(cand, st))
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
pp_secure_exec_reason(const char *path, const struct stat *st)
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
 * The ELF class of a file (ELFCLASS32 or ELFCLASS64), 0 when it is not
 * an ELF file (a script, a libtool .la), -1 when it cannot be read.
 */
static int
pp_elf_class(const char *path)
{
	unsigned char id[EI_NIDENT];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(id, 1, sizeof(id), f);
	fclose(f);
	if (n < sizeof(id) || memcmp(id, ELFMAG, SELFMAG) != 0)
		return 0;
	if (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)
		return 0;
	return id[EI_CLASS];
}

/* Run a file without a #! line with the shell, as execvp(3) does. */
static void
pp_exec_script(const char *path, int argc, char **argv)
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
 * Parse the options, setting a PP_* variable for each one given.
 * Returns -1 to go on (*library set, optind at COMMAND), or the status to
 * exit with (0 after --help or --version, EX_USAGE, EX_OSERR).
 */
static int
pp_options(int argc, char **argv, const char **library)
{
	struct option longopts[PP_NOPTVARS + PP_NFIXED];
	size_t i;
	int c;

	for (i = 0; i < PP_NOPTVARS; i++) {
		longopts[i].name = pp_optvars[i].option;
		longopts[i].has_arg = required_argument;
		if (pp_optvars[i].optional_arg)
			longopts[i].has_arg = optional_argument;
		longopts[i].flag = NULL;
		longopts[i].val = (int)i;
	}
	memcpy(&longopts[i], pp_fixed_opts, sizeof(pp_fixed_opts));

	/*
	 * '+': stop at the first non-option, so COMMAND's own options are
	 * never taken for ours even without "--".  ':': report a missing
	 * value ourselves (opterr = 0 silences getopt's own messages).
	 */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
		if (c >= 0 && (size_t)c < PP_NOPTVARS) {
			const char *v = optarg != NULL ? optarg : "1";

			if (setenv(pp_optvars[c].var, v, 1) != 0) {
				fprintf(stderr, "ppshim: setenv %s: %s\n",
					pp_optvars[c].var, strerror(errno));
				return EX_OSERR;
			}
			continue;
		}
		switch (c) {
		case PP_OPT_LIBRARY:
			*library = optarg;
			break;
		case PP_OPT_HELP:
			pp_help();
			return EXIT_SUCCESS;
		case PP_OPT_VERSION:
			printf("ppshim %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		case ':':
			fprintf(stderr, "ppshim: option '%s' needs a value\n",
				argv[optind - 1]);
			pp_usage_hint();
			return EX_USAGE;
		default:
			if (optopt != 0)
				fprintf(stderr,
					"ppshim: unknown option '-%c'\n",
					optopt);
			else
				fprintf(stderr, "ppshim: unknown option '%s'\n",
					argv[optind - 1]);
			pp_usage_hint();
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ppshim: no COMMAND given\n");
		pp_usage_hint();
		return EX_USAGE;
	}
	if ((*library)[0] == '\0') {
		fprintf(stderr, "ppshim: --library: empty path\n");
		pp_usage_hint();
		return EX_USAGE;
	}
	return -1;
}

/*
 * Find COMMAND and make sure the loader will honour the preload for it.
 * Returns 0 with *path (malloc'd) and *st set, or the status to exit
 * with: 127 when not found, 126 when not executable or run in
 * secure-execution mode, EX_OSERR.
 */
static int
pp_check_command(const char *cmd, char **path, struct stat *st)
{
	const char *why;

	*path = pp_resolve(cmd, st);
	if (*path == NULL) {
		if (errno == ENOENT || errno == ENOTDIR) {
			fprintf(stderr, "ppshim: %s: command not found\n", cmd);
			return PP_EXIT_NOT_FOUND;
		}
		fprintf(stderr, "ppshim: %s: %s\n", cmd, strerror(errno));
		return errno == ENOMEM ? EX_OSERR : PP_EXIT_CANNOT_EXEC;
	}
	why = pp_secure_exec_reason(*path, st);
	if (why != NULL) {
		fprintf(stderr,
			"ppshim: %s %s: the dynamic loader runs it in "
			"secure-execution mode and ignores LD_PRELOAD entries "
			"with a slash, so libppshim would not be loaded; "
			"refusing to run it\n",
			*path, why);
		return PP_EXIT_CANNOT_EXEC;
	}
	return 0;
}

/*
 * Check that the library can be preloaded into the program at path: a
 * readable ELF file of the same class.  Returns 0 with *lib set to its
 * absolute path (malloc'd), or the status to exit with (EX_UNAVAILABLE,
 * EX_OSERR).
 */
static int
pp_check_library(const char *library, const char *path, char **lib)
{
	int libclass, cmdclass;
	struct stat st;

	*lib = pp_absolute(library);
	if (*lib == NULL) {
		fprintf(stderr, "ppshim: %s: %s\n", library, strerror(errno));
		return EX_OSERR;
	}
	if (stat(*lib, &st) != 0 || access(*lib, R_OK) != 0) {
		fprintf(stderr, "ppshim: library %s: %s (see --library)\n",
			*lib, strerror(errno));
		return EX_UNAVAILABLE;
	}
	libclass = pp_elf_class(*lib);
	if (!S_ISREG(st.st_mode) || libclass <= 0) {
		fprintf(stderr,
			"ppshim: library %s: not an ELF shared object "
			"(a libtool .la file? use .libs/libppshim.so)\n",
			*lib);
		return EX_UNAVAILABLE;
	}
	/* A script (cmdclass 0) loads its interpreter: not checked. */
	cmdclass = pp_elf_class(path);
	if (cmdclass > 0 && cmdclass != libclass) {
		fprintf(stderr,
			"ppshim: library %s is %s-bit but %s is %s-bit: the "
			"loader would skip the library; use the build that "
			"matches\n",
			*lib, libclass == ELFCLASS64 ? "64" : "32", path,
			cmdclass == ELFCLASS64 ? "64" : "32");
		return EX_UNAVAILABLE;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct pp_config cfg; /* large: keep it off the stack */
	const char *library = PP_DEFAULT_LIBRARY;
	char err[PP_ERRMSG_MAX];
	char *lib, *path;
	struct stat st;
	int r;

	r = pp_options(argc, argv, &library);
	if (r >= 0)
		return r;
	argc -= optind;
	argv += optind;

	/* The same check the library makes at load, with the same words. */
	if (pp_config_parse(&cfg, pp_env, err, sizeof(err)) != 0) {
		fprintf(stderr, "ppshim: %s\n", err);
		return EX_CONFIG;
	}
	r = pp_check_command(argv[0], &path, &st);
	if (r != 0)
		return r;
	r = pp_check_library(library, path, &lib);
	if (r != 0)
		return r;
	r = pp_preload_add(lib);
	if (r != 0) {
		fprintf(stderr, "ppshim: LD_PRELOAD: %s\n", strerror(-r));
		return EX_OSERR;
	}

	/* Exec the very file that was checked, not a new PATH search. */
	execv(path, argv);
	if (errno == ENOEXEC)
		pp_exec_script(path, argc, argv);
	r = errno;
	fprintf(stderr, "ppshim: %s: %s\n", path, strerror(r));
	return r == ENOENT ? PP_EXIT_NOT_FOUND : PP_EXIT_CANNOT_EXEC;
}

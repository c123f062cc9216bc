/*
 * ppshim.c - the wrapper: ppshim [options] -- COMMAND [ARGS...]
 *
 * Sets the PP_* variables from its options, checks the resulting
 * configuration with the parser the library itself uses (so a mistake is
 * reported here, before the server starts), adds the library to
 * LD_PRELOAD without disturbing what is already there, refuses commands
 * in which the library would silently do nothing, and execs COMMAND.
 * This file holds the options, the help and the order of those steps;
 * ppshim_command.c finds and checks COMMAND, ppshim_preload.c the
 * library, ppshim_elf.c reads their ELF headers, ppshim_kernel.c asks
 * whether the kernel can run COMMAND at all.
 *
 * Those are the commands that the dynamic loader runs in secure-execution
 * mode (it ignores the preload), statically linked ones (no loader reads
 * LD_PRELOAD at all) and Go programs (their net package makes its own
 * system calls); --force runs them all the same.
 *
 * Exit statuses (sysexits(3) where one fits, the shell's otherwise):
 *   64  usage error
 *   69  library missing (for COMMAND's ABI, where its path has $LIB),
 *       unreadable, not ELF, or of the other ELF class (that one not
 *       with --force)
 *   71  system error (out of memory)
 *   78  configuration error (the message names the variable and token)
 *  126  COMMAND setuid, setgid, with file capabilities, statically linked
 *       or a Go program (all but --force), not executable, or an ELF
 *       file the kernel refuses (ENOEXEC: never handed to /bin/sh)
 *  127  COMMAND not found
 * Otherwise the status is COMMAND's own, since ppshim replaces itself.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "pp_config.h"
#include "ppshim.h"
#include "ppshim_command.h"
#include "ppshim_elf.h"
#include "ppshim_preload.h"
#include "ppshim_status.h"

/*
 * One row per option that sets a variable.  optional_arg marks the
 * boolean switches: given alone they mean "1".
 */
struct ws_optvar {
	const char *option;
	const char *var;
	const char *metavar;
	bool optional_arg;
	const char *help;
	const char *dflt;
};

static const struct ws_optvar ws_optvars[] = {
	{ "ports", "PP_PORTS", "LIST", false,
	  "PROXY-only listeners: PORT, ADDR:PORT, [V6ADDR]:PORT,\n"
	  "each optionally /tcp, /udp or /udp+spp; unix:/path",
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

#define WS_NOPTVARS (sizeof(ws_optvars) / sizeof(ws_optvars[0]))

/* getopt_long values: the index into ws_optvars, then these. */
enum {
	WS_OPT_LIBRARY = 0x100,
	WS_OPT_FORCE,
	WS_OPT_HELP = 'h',
	WS_OPT_VERSION = 'V'
};

static const struct option ws_fixed_opts[] = {
	{ "library", required_argument, NULL, WS_OPT_LIBRARY },
	{ "force", no_argument, NULL, WS_OPT_FORCE },
	{ "help", no_argument, NULL, WS_OPT_HELP },
	{ "version", no_argument, NULL, WS_OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

#define WS_NFIXED (sizeof(ws_fixed_opts) / sizeof(ws_fixed_opts[0]))

static void
ws_usage_hint(void)
{
	fprintf(stderr, "Try 'ppshim --help' for more information.\n");
}

static void
ws_help(void)
{
	size_t i;

	printf("Usage: ppshim [OPTION]... -- COMMAND [ARG]...\n"
	       "  or:  ppshim status [--json] [PID]...\n"
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
	for (i = 0; i < WS_NOPTVARS; i++) {
		const struct ws_optvar *o = &ws_optvars[i];
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
	       "--library=PATH", "", "", ws_default_library());
	printf("  %-22s run COMMAND even where the library would not\n"
	       "%25stake effect (see below)\n",
	       "--force", "");
	printf("  %-22s show this help and exit\n", "-h, --help");
	printf("  %-22s show the version and exit\n", "-V, --version");
	printf("\n"
	       "ppshim refuses a COMMAND in which the library would silently"
	       " do nothing:\n"
	       "a setuid, setgid or file-capability program (the loader runs"
	       " it in\n"
	       "secure-execution mode and ignores LD_PRELOAD), a statically"
	       " linked one\n"
	       "(no loader reads LD_PRELOAD), a Go program (its net package"
	       " makes system\n"
	       "calls directly), one of the other ELF class than the"
	       " library.\n"
	       "\n"
	       "'ppshim status' shows which processes have the library, "
	       "their\n"
	       "configuration and counters (see 'ppshim status --help').\n"
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
ws_getenv(const char *name)
{
	return getenv(name);
}

/* A list file that PP_ALLOW or PP_DIRECT names, read as the library
 * reads it at load (struct pp_aclio). */
static long
ws_read_list(void *ctx, const char *path, char *buf, size_t cap, int *err)
{
	size_t got = 0;
	ssize_t n;
	char extra;
	int fd;

	(void)ctx;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	*err = 0;
	while (got < cap && (n = read(fd, buf + got, cap - got)) != 0) {
		if (n < 0 && errno != EINTR) {
			*err = errno;
			break;
		}
		if (n > 0)
			got += (size_t)n;
	}
	if (*err == 0 && got == cap && read(fd, &extra, 1) == 1)
		*err = EFBIG;
	close(fd);
	return *err != 0 ? -1 : (long)got;
}

/*
 * Parse the options, setting a PP_* variable for each one given.
 * Returns -1 to go on (*library and *force set, optind at COMMAND), or
 * the status to exit with (0 after --help or --version, EX_USAGE,
 * EX_OSERR).
 */
static int
ws_options(int argc, char **argv, const char **library, bool *force)
{
	struct option longopts[WS_NOPTVARS + WS_NFIXED];
	size_t i;
	int c;

	for (i = 0; i < WS_NOPTVARS; i++) {
		longopts[i].name = ws_optvars[i].option;
		longopts[i].has_arg = required_argument;
		if (ws_optvars[i].optional_arg)
			longopts[i].has_arg = optional_argument;
		longopts[i].flag = NULL;
		longopts[i].val = (int)i;
	}
	memcpy(&longopts[i], ws_fixed_opts, sizeof(ws_fixed_opts));

	/*
	 * '+': stop at the first non-option, so COMMAND's own options are
	 * never taken for ours even without "--".  ':': report a missing
	 * value ourselves (opterr = 0 silences getopt's own messages).
	 */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
		if (c >= 0 && (size_t)c < WS_NOPTVARS) {
			const char *v = optarg != NULL ? optarg : "1";

			if (setenv(ws_optvars[c].var, v, 1) != 0) {
				fprintf(stderr, "ppshim: setenv %s: %s\n",
					ws_optvars[c].var, strerror(errno));
				return EX_OSERR;
			}
			continue;
		}
		switch (c) {
		case WS_OPT_LIBRARY:
			*library = optarg;
			break;
		case WS_OPT_FORCE:
			*force = true;
			break;
		case WS_OPT_HELP:
			ws_help();
			return EXIT_SUCCESS;
		case WS_OPT_VERSION:
			printf("ppshim %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		case ':':
			fprintf(stderr, "ppshim: option '%s' needs a value\n",
				argv[optind - 1]);
			ws_usage_hint();
			return EX_USAGE;
		default:
			if (optopt != 0)
				fprintf(stderr,
					"ppshim: unknown option '-%c'\n",
					optopt);
			else
				fprintf(stderr, "ppshim: unknown option '%s'\n",
					argv[optind - 1]);
			ws_usage_hint();
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ppshim: no COMMAND given\n");
		ws_usage_hint();
		return EX_USAGE;
	}
	if ((*library)[0] == '\0') {
		fprintf(stderr, "ppshim: --library: empty path\n");
		ws_usage_hint();
		return EX_USAGE;
	}
	return -1;
}

/*
 * Report a COMMAND in which the library would not take effect: refused
 * (WS_EXIT_CANNOT_EXEC), or with force a warning and 0.  The message is
 * one line: "ppshim: " fmt, then what ppshim does about it.
 */
int
ws_refuse(bool force, const char *fmt, ...)
{
	va_list ap;

	fputs("ppshim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (force) {
		fputs("; running it anyway (--force)\n", stderr);
		return 0;
	}
	fputs("; refusing to run it (--force overrides)\n", stderr);
	return WS_EXIT_CANNOT_EXEC;
}

int
main(int argc, char **argv)
{
	static struct pp_config cfg; /* large: keep it off the stack */
	const char *library = ws_default_library();
	char err[PP_ERRMSG_MAX];
	struct pp_aclio io = { .read = ws_read_list,
			       .cap = PP_ACL_FILE_MAX + 1 };
	struct ws_elf elf;
	bool force = false;
	char *lib, *path;
	struct stat st;
	int r;

	/* "ppshim -- status" still runs a command of that name. */
	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return ws_status(argc - 1, argv + 1);
	r = ws_options(argc, argv, &library, &force);
	if (r >= 0)
		return r;
	argc -= optind;
	argv += optind;

	/* The same check the library makes at load, with the same words. */
	io.buf = malloc(io.cap);
	if (io.buf == NULL) {
		perror("ppshim");
		return EX_OSERR;
	}
	r = pp_config_parse_io(&cfg, ws_getenv, &io, err, sizeof(err));
	free(io.buf);
	if (r != 0) {
		fprintf(stderr, "ppshim: %s\n", err);
		return EX_CONFIG;
	}
	r = ws_check_command(argv[0], force, &path, &st, &elf);
	if (r != 0) {
		free(path);
		return r;
	}
	r = ws_check_library(library, path, &elf, force, &lib);
	if (r != 0) {
		free(lib);
		free(path);
		return r;
	}
	r = ws_preload_add(lib);
	free(lib);
	if (r != 0) {
		fprintf(stderr, "ppshim: LD_PRELOAD: %s\n", strerror(-r));
		free(path);
		return EX_OSERR;
	}

	/* Exec the very file that was checked, not a new PATH search. */
	r = ws_exec_command(path, argc, argv, &elf);
	free(path);
	return r;
}

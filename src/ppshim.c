/*
 * ppshim.c - the wrapper: ppshim [options] -- COMMAND [ARGS...]
 *
 * Sets the PP_* variables from its options, checks the resulting
 * configuration with the parser the library itself uses (so a mistake is
 * reported here, before the server starts), adds the library to
 * LD_PRELOAD without disturbing what is already there, refuses commands
 * in which the library would silently do nothing, and execs COMMAND.
 *
 * Those are the commands that the dynamic loader runs in secure-execution
 * mode (it ignores the preload), statically linked ones (no loader reads
 * LD_PRELOAD at all) and Go programs (their net package makes its own
 * system calls); --force runs them all the same.  The ELF headers are
 * read here, both classes, in the machine's own byte order.
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

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sysexits.h>
#include <unistd.h>

#include "pp_config.h"

#ifndef PPSHIM_LIBDIR
#define PPSHIM_LIBDIR "/usr/local/lib"
#endif

#ifndef PP_MULTIARCH
#define PP_MULTIARCH ""
#endif

#define WS_LIBNAME "libppshim.so"
#define WS_DEFAULT_LIBRARY PPSHIM_LIBDIR "/" WS_LIBNAME

/* The loader's name for "the library directory of this program's ABI". */
#define WS_DOLLAR_LIB_TOKEN "$LIB"

/* Shell conventions for a command that cannot be run or found. */
#define WS_EXIT_CANNOT_EXEC 126
#define WS_EXIT_NOT_FOUND 127

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

/*
 * The library to preload when --library is not given.  Installed in a
 * multiarch directory (PREFIX/lib/TRIPLET, as the Debian package has it)
 * and with glibc's loader, it is PREFIX/$LIB/libppshim.so: the loader
 * expands $LIB to lib/TRIPLET for each program's own ABI, so a 32-bit
 * program (or one that a 64-bit server execs) loads its own build of the
 * library where both are installed.  Otherwise LIBDIR/libppshim.so.
 */
static const char *
ws_default_library(void)
{
#ifdef PP_DOLLAR_LIB
	static const char libdir[] = PPSHIM_LIBDIR;
	static const char tail[] = "/lib/" PP_MULTIARCH;
	static char buf[PATH_MAX];
	size_t n = strlen(libdir), t = strlen(tail);
	int r;

	if (PP_MULTIARCH[0] == '\0' || n < t ||
	    strcmp(libdir + n - t, tail) != 0)
		return WS_DEFAULT_LIBRARY;
	r = snprintf(buf, sizeof(buf), "%.*s/%s/%s", (int)(n - t), libdir,
		     WS_DOLLAR_LIB_TOKEN, WS_LIBNAME);
	if (r > 0 && (size_t)r < sizeof(buf))
		return buf;
#endif
	return WS_DEFAULT_LIBRARY;
}

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

/* Is the character a separator between LD_PRELOAD elements? */
static bool
ws_is_sep(char c)
{
	return c == ':' || c == ' ';
}

/* Is lib exactly one of the elements of the LD_PRELOAD value list? */
static bool
ws_preload_has(const char *list, const char *lib)
{
	size_t liblen = strlen(lib);
	const char *p = list;

	while (*p != '\0') {
		size_t n = 0;

		while (ws_is_sep(*p))
			p++;
		while (p[n] != '\0' && !ws_is_sep(p[n]))
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
ws_preload_add(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t oldlen;
	char *v;
	int r;

	if (old == NULL || old[strspn(old, ": ")] == '\0')
		return setenv("LD_PRELOAD", lib, 1) == 0 ? 0 : -errno;
	if (ws_preload_has(old, lib))
		return 0;
	oldlen = strlen(old);
	v = malloc(oldlen + 1 + strlen(lib) + 1);
	if (v == NULL)
		return -errno;
	/* Keep the old value verbatim; add a separator only if needed. */
	if (ws_is_sep(old[oldlen - 1]))
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
ws_absolute(const char *path)
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
 * The ELF class of a file (ELFCLASS32 or ELFCLASS64), 0 when it is not
 * an ELF file (a script, a libtool .la), -1 when it cannot be read.
 */
static int
ws_elf_class(const char *path)
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

/* ===== What the loader will make of COMMAND: its ELF headers ===== */

/* Bounds on what is read from a file that may hold anything. */
#define WS_ELF_MAX_PHNUM 4096u
#define WS_ELF_MAX_SHNUM 65536u
#define WS_ELF_MAX_NOTES (1u << 20)
#define WS_ELF_MAX_STRTAB (4u << 20)

/* What an executable's headers say, as far as the preload goes. */
struct ws_elf {
	int cls;          /* ELFCLASS32, ELFCLASS64; 0 not ELF; -1 unreadable */
	unsigned machine; /* e_machine */
	bool parsed;      /* our byte order, an executable: below is known */
	bool interp;      /* PT_INTERP: a dynamic loader runs it */
	bool go;          /* built by the Go toolchain */
	char interp_path[256];
};

/* The header fields used, from either class. */
struct ws_ehdr {
	unsigned type, machine, phentsize, phnum, shentsize, shnum, shstrndx;
	uint64_t phoff, shoff;
};

struct ws_seg {
	uint64_t type, offset, filesz, align;
};

struct ws_sec {
	uint64_t name, offset, size, link;
};

/* Read exactly n bytes at off; false on any shortfall. */
static bool
ws_pread(int fd, void *buf, size_t n, uint64_t off)
{
	ssize_t r;

	if ((off_t)off < 0 || (uint64_t)(off_t)off != off)
		return false;
	r = pread(fd, buf, n, (off_t)off);
	return r >= 0 && (size_t)r == n;
}

static bool
ws_read_ehdr(int fd, int cls, struct ws_ehdr *h)
{
	if (cls == ELFCLASS64) {
		Elf64_Ehdr e;

		if (!ws_pread(fd, &e, sizeof(e), 0))
			return false;
		h->type = e.e_type;
		h->machine = e.e_machine;
		h->phoff = e.e_phoff;
		h->phentsize = e.e_phentsize;
		h->phnum = e.e_phnum;
		h->shoff = e.e_shoff;
		h->shentsize = e.e_shentsize;
		h->shnum = e.e_shnum;
		h->shstrndx = e.e_shstrndx;
		return h->phentsize >= sizeof(Elf64_Phdr);
	} else {
		Elf32_Ehdr e;

		if (!ws_pread(fd, &e, sizeof(e), 0))
			return false;
		h->type = e.e_type;
		h->machine = e.e_machine;
		h->phoff = e.e_phoff;
		h->phentsize = e.e_phentsize;
		h->phnum = e.e_phnum;
		h->shoff = e.e_shoff;
		h->shentsize = e.e_shentsize;
		h->shnum = e.e_shnum;
		h->shstrndx = e.e_shstrndx;
		return h->phentsize >= sizeof(Elf32_Phdr);
	}
}

static bool
ws_read_seg(int fd, int cls, const struct ws_ehdr *h, unsigned i,
	    struct ws_seg *p)
{
	uint64_t off = h->phoff + (uint64_t)i * h->phentsize;

	if (cls == ELFCLASS64) {
		Elf64_Phdr e;

		if (!ws_pread(fd, &e, sizeof(e), off))
			return false;
		p->type = e.p_type;
		p->offset = e.p_offset;
		p->filesz = e.p_filesz;
		p->align = e.p_align;
	} else {
		Elf32_Phdr e;

		if (!ws_pread(fd, &e, sizeof(e), off))
			return false;
		p->type = e.p_type;
		p->offset = e.p_offset;
		p->filesz = e.p_filesz;
		p->align = e.p_align;
	}
	return true;
}

static bool
ws_read_sec(int fd, int cls, const struct ws_ehdr *h, uint64_t i,
	    struct ws_sec *p)
{
	uint64_t off = h->shoff + i * h->shentsize;

	if (cls == ELFCLASS64) {
		Elf64_Shdr e;

		if (h->shentsize < sizeof(e) ||
		    !ws_pread(fd, &e, sizeof(e), off))
			return false;
		p->name = e.sh_name;
		p->offset = e.sh_offset;
		p->size = e.sh_size;
		p->link = e.sh_link;
	} else {
		Elf32_Shdr e;

		if (h->shentsize < sizeof(e) ||
		    !ws_pread(fd, &e, sizeof(e), off))
			return false;
		p->name = e.sh_name;
		p->offset = e.sh_offset;
		p->size = e.sh_size;
		p->link = e.sh_link;
	}
	return true;
}

/* Does a run of notes (a PT_NOTE segment) hold one whose owner is "Go"? */
static bool
ws_notes_go(const unsigned char *p, size_t n, size_t align)
{
	size_t off = 0;

	while (n - off >= 12) {
		uint32_t namesz, descsz;
		size_t pad;

		memcpy(&namesz, p + off, 4);
		memcpy(&descsz, p + off + 4, 4);
		off += 12;
		if (namesz > n - off)
			return false;
		if (namesz >= 3 && memcmp(p + off, "Go", 3) == 0)
			return true;
		pad = (align - namesz % align) % align;
		if (namesz + pad > n - off)
			return false;
		off += namesz + pad;
		pad = (align - descsz % align) % align;
		if (descsz > n - off || descsz + pad > n - off)
			return false;
		off += descsz + pad;
	}
	return false;
}

/* Is the segment a note segment that names the Go toolchain? */
static bool
ws_seg_go(int fd, const struct ws_seg *sg)
{
	unsigned char *buf;
	bool go;

	if (sg->filesz == 0 || sg->filesz > WS_ELF_MAX_NOTES)
		return false;
	buf = malloc((size_t)sg->filesz);
	if (buf == NULL)
		return false;
	go = ws_pread(fd, buf, (size_t)sg->filesz, sg->offset) &&
	     ws_notes_go(buf, (size_t)sg->filesz, sg->align == 8 ? 8 : 4);
	free(buf);
	return go;
}

/*
 * Does a section carry a name only the Go linker gives: its build ID
 * note, or the build information of Go 1.13 and later?  (Stripping
 * keeps both: they are allocated.)
 */
static bool
ws_sections_go(int fd, int cls, const struct ws_ehdr *h)
{
	static const char *const names[] = { ".note.go.buildid",
					     ".go.buildinfo" };
	uint64_t shnum = h->shnum, strndx = h->shstrndx, i;
	struct ws_sec sec, strsec;
	bool go = false;
	char *tab;
	size_t k;

	if (h->shoff == 0)
		return false;
	if (shnum == 0 || strndx == SHN_XINDEX) {
		/* More than 0xff00 sections: the counts are in section 0. */
		if (!ws_read_sec(fd, cls, h, 0, &sec))
			return false;
		if (shnum == 0)
			shnum = sec.size;
		if (strndx == SHN_XINDEX)
			strndx = sec.link;
	}
	if (shnum > WS_ELF_MAX_SHNUM || strndx >= shnum ||
	    !ws_read_sec(fd, cls, h, strndx, &strsec) || strsec.size == 0 ||
	    strsec.size > WS_ELF_MAX_STRTAB)
		return false;
	tab = malloc((size_t)strsec.size);
	if (tab == NULL)
		return false;
	if (!ws_pread(fd, tab, (size_t)strsec.size, strsec.offset))
		goto out;
	for (i = 0; i < shnum && !go; i++) {
		const char *name;
		size_t len;

		if (!ws_read_sec(fd, cls, h, i, &sec) ||
		    sec.name >= strsec.size)
			continue;
		name = tab + sec.name;
		len = strnlen(name, (size_t)(strsec.size - sec.name));
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (len == strlen(names[k]) &&
			    memcmp(name, names[k], len) == 0)
				go = true;
	}
out:
	free(tab);
	return go;
}

/*
 * Read what the loader will make of the file at path into *e.  Never
 * fails: what cannot be read is left unknown (e->parsed false), and the
 * callers then let the loader decide as before.
 */
static void
ws_elf_inspect(const char *path, struct ws_elf *e)
{
	unsigned char id[EI_NIDENT];
	struct ws_ehdr h;
	struct ws_seg sg;
	unsigned i;
	int fd;

	memset(e, 0, sizeof(*e));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e->cls = -1;
		return;
	}
	if (!ws_pread(fd, id, sizeof(id), 0) ||
	    memcmp(id, ELFMAG, SELFMAG) != 0 ||
	    (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64))
		goto out;
	e->cls = id[EI_CLASS];
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (id[EI_DATA] != ELFDATA2LSB)
		goto out;
#else
	if (id[EI_DATA] != ELFDATA2MSB)
		goto out;
#endif
	if (!ws_read_ehdr(fd, e->cls, &h) ||
	    (h.type != ET_EXEC && h.type != ET_DYN))
		goto out;
	e->machine = h.machine;
	if (h.phnum > WS_ELF_MAX_PHNUM)
		goto out;
	for (i = 0; i < h.phnum; i++) {
		if (!ws_read_seg(fd, e->cls, &h, i, &sg))
			goto out;
		if (sg.type == PT_INTERP) {
			size_t n = sizeof(e->interp_path) - 1;

			e->interp = true;
			if (sg.filesz < n)
				n = (size_t)sg.filesz;
			if (!ws_pread(fd, e->interp_path, n, sg.offset))
				e->interp_path[0] = '\0';
			e->interp_path[n] = '\0';
		} else if (sg.type == PT_NOTE && !e->go) {
			e->go = ws_seg_go(fd, &sg);
		}
	}
	if (!e->go)
		e->go = ws_sections_go(fd, e->cls, &h);
	e->parsed = true;
out:
	close(fd);
}

/*
 * Is path the dynamic loader that runs this very program?  Run as a
 * command ("ld.so PROGRAM") it has no PT_INTERP of its own, and it does
 * read LD_PRELOAD.
 */
static bool
ws_is_own_loader(const char *path)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct ws_elf self;

	ws_elf_inspect("/proc/self/exe", &self);
	if (!self.interp || self.interp_path[0] == '\0')
		return false;
	return realpath(path, a) != NULL &&
	       realpath(self.interp_path, b) != NULL && strcmp(a, b) == 0;
}

/* A name for an ELF machine, for messages. */
static const char *
ws_machine_name(int cls, unsigned machine)
{
	switch (machine) {
	case EM_X86_64:
		return cls == ELFCLASS32 ? "x32" : "x86-64";
	case EM_386:
		return "i386";
	case EM_AARCH64:
		return "arm64";
	case EM_ARM:
		return "arm";
	default:
		return cls == ELFCLASS32 ? "32-bit" : "64-bit";
	}
}

/*
 * Where glibc's loader may look for PREFIX/$LIB/... for a program of
 * this class and machine.  For the wrapper's own ABI that is the
 * multiarch directory it was configured for, and only that.  For
 * another, the multiarch directory of that architecture (Debian's libc6
 * of it), then the biarch one (libc6-i386 and the like): which one the
 * other loader uses is its own business, so finding either will do.
 */
static size_t
ws_lib_dirs(int cls, unsigned machine, const char **dirs, size_t max)
{
	static const struct {
		unsigned machine;
		int cls;
		const char *dir;
	} known[] = {
		{ EM_X86_64, ELFCLASS64, "lib/x86_64-linux-gnu" },
		{ EM_X86_64, ELFCLASS32, "lib/x86_64-linux-gnux32" },
		{ EM_X86_64, ELFCLASS32, "libx32" },
		{ EM_386, ELFCLASS32, "lib/i386-linux-gnu" },
		{ EM_AARCH64, ELFCLASS64, "lib/aarch64-linux-gnu" },
		{ EM_ARM, ELFCLASS32, "lib/arm-linux-gnueabihf" },
		{ EM_ARM, ELFCLASS32, "lib/arm-linux-gnueabi" },
		{ 0, ELFCLASS32, "lib32" },
		{ 0, ELFCLASS64, "lib64" },
	};
	struct ws_elf self;
	size_t i, n = 0;

	ws_elf_inspect("/proc/self/exe", &self);
	if (PP_MULTIARCH[0] != '\0' && self.parsed && self.cls == cls &&
	    self.machine == machine && max > 0) {
		dirs[0] = "lib/" PP_MULTIARCH;
		return 1;
	}
	for (i = 0; i < sizeof(known) / sizeof(known[0]) && n < max; i++) {
		if (known[i].cls != cls ||
		    (known[i].machine != 0 && known[i].machine != machine))
			continue;
		dirs[n++] = known[i].dir;
	}
	return n;
}

/*
 * lib with its first $LIB replaced by dir.  Returns a malloc'd string
 * or NULL (out of memory).
 */
static char *
ws_subst_lib(const char *lib, const char *dir)
{
	const char *at = strstr(lib, WS_DOLLAR_LIB_TOKEN);
	size_t head = (size_t)(at - lib), toklen = strlen(WS_DOLLAR_LIB_TOKEN);
	char *r = malloc(strlen(lib) - toklen + strlen(dir) + 1);

	if (r != NULL)
		sprintf(r, "%.*s%s%s", (int)head, lib, dir, at + toklen);
	return r;
}

/* The running kernel's machine ("x86_64"), or "unknown". */
static const char *
ws_kernel_machine(void)
{
	static struct utsname u;

	if (u.machine[0] == '\0' && uname(&u) != 0)
		return "unknown";
	return u.machine;
}

/*
 * Why the kernel may have refused (ENOEXEC) to run an ELF file: a guess
 * from its class and machine against the running kernel's, for the one
 * line the user reads.
 */
static const char *
ws_enoexec_hint(const struct ws_elf *elf)
{
	static char hint[128];
	const char *kernel = ws_kernel_machine();

	if (!elf->parsed)
		return "not an executable for this machine (byte order or "
		       "file type)";
	if (strcmp(kernel, "x86_64") == 0) {
		if (elf->machine == EM_386)
			return "32-bit x86 on a kernel without IA-32 support?";
		if (elf->machine == EM_X86_64 && elf->cls == ELFCLASS32)
			return "x32 on a kernel without x32 support?";
	}
	(void)snprintf(hint, sizeof(hint), "built for %s, the kernel is %s",
		       ws_machine_name(elf->cls, elf->machine), kernel);
	return hint;
}

/* The one line for an ELF COMMAND that the kernel will not execute. */
static void
ws_noexec_message(const char *path, const struct ws_elf *elf)
{
	fprintf(stderr,
		"ppshim: %s: cannot execute: the kernel cannot run this ELF "
		"file (%s)\n",
		path, ws_enoexec_hint(elf));
}

/*
 * Can the kernel run 32-bit x86 programs?  Asked by doing it: a child
 * execs a 93-byte i386 program that only calls exit(0), from a memfd.
 * Returns false only when the kernel refused it (ENOEXEC); true when it
 * ran, or when the probe itself could not be made (no memfd, no fork):
 * then the exec of COMMAND tells.
 */
static bool
ws_kernel_runs_ia32(void)
{
	/* clang-format off */
	static const unsigned char prog[] = {
		/* Elf32_Ehdr: ET_EXEC, EM_386, entry 0x08048054, one phdr */
		0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		2, 0, 3, 0, 1, 0, 0, 0, 0x54, 0x80, 0x04, 0x08,
		0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x34, 0, 0x20, 0, 1, 0, 0x28, 0, 0, 0, 0, 0,
		/* Elf32_Phdr: PT_LOAD of the whole file at 0x08048000, R+X */
		1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x04, 0x08,
		0, 0x80, 0x04, 0x08, 0x5d, 0, 0, 0, 0x5d, 0, 0, 0,
		5, 0, 0, 0, 0, 0x10, 0, 0,
		/* xor %ebx,%ebx; mov $1,%eax (exit); int $0x80 */
		0x31, 0xdb, 0xb8, 0x01, 0, 0, 0, 0xcd, 0x80,
	};
	/* clang-format on */
	char *const argv[] = { (char *)"ppshim-ia32-probe", NULL };
	char *const envp[] = { NULL };
	int fd, status;
	pid_t pid;

	fd = (int)syscall(SYS_memfd_create, "ppshim-ia32-probe", 1u);
	if (fd < 0)
		return true;
	if (write(fd, prog, sizeof(prog)) != (ssize_t)sizeof(prog)) {
		close(fd);
		return true;
	}
	pid = fork();
	if (pid == 0) {
		fexecve(fd, argv, envp);
		_exit(errno == ENOEXEC ? 126 : 127);
	}
	close(fd);
	if (pid < 0)
		return true;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return true;
	return !(WIFEXITED(status) && WEXITSTATUS(status) == 126);
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
static int __attribute__((format(printf, 2, 3)))
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

/*
 * Find COMMAND and make sure the loader will honour the preload for it,
 * and the library see its sockets.  Returns 0 with *path (malloc'd),
 * *st and *elf set, or the status to exit with: 127 when not found, 126
 * when not executable, or (unless force) run in secure-execution mode,
 * statically linked or a Go program; EX_OSERR.
 */
static int
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
	if (elf->machine == EM_386 &&
	    strcmp(ws_kernel_machine(), "x86_64") == 0 &&
	    !ws_kernel_runs_ia32()) {
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

/*
 * For a library path with $LIB in it: the file the loader will open for
 * the program (class cls, machine; for a script, the wrapper's own ABI),
 * as a malloc'd path.  NULL when none of the candidate directories has
 * it, with the candidates tried in tried; or NULL with errno ENOMEM.
 */
static char *
ws_expand_lib(const char *lib, const struct ws_elf *elf, char *tried,
	      size_t cap)
{
	const char *dirs[8];
	struct ws_elf self;
	int cls = elf->cls;
	unsigned machine = elf->machine;
	size_t i, n, len = 0;

	if (!elf->parsed) {
		/* A script: its interpreter is most likely of our own ABI. */
		ws_elf_inspect("/proc/self/exe", &self);
		cls = sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;
		if (self.parsed)
			cls = self.cls;
		machine = self.machine;
	}
	n = ws_lib_dirs(cls, machine, dirs, sizeof(dirs) / sizeof(dirs[0]));
	tried[0] = '\0';
	for (i = 0; i < n; i++) {
		char *cand = ws_subst_lib(lib, dirs[i]);
		int w;

		if (cand == NULL)
			return NULL;
		if (access(cand, F_OK) == 0)
			return cand;
		w = snprintf(tried + len, cap - len, "%s%s", i > 0 ? ", " : "",
			     cand);
		if (w > 0 && (size_t)w < cap - len)
			len += (size_t)w;
		free(cand);
	}
	errno = ENOENT;
	return NULL;
}

/*
 * Check that the library can be preloaded into the program at path
 * (headers in elf): a readable ELF file of the same class, found for the
 * program's ABI if its path has $LIB in it.  Returns 0 with *lib set to
 * its absolute path (malloc'd, $LIB kept), or the status to exit with
 * (EX_UNAVAILABLE, EX_OSERR; 126 for the other class, unless force).
 */
static int
ws_check_library(const char *library, const char *path,
		 const struct ws_elf *elf, bool force, char **lib)
{
	int libclass, cmdclass = elf->cls;
	char tried[1024];
	struct stat st;
	char *file;
	int r = 0;

	*lib = ws_absolute(library);
	if (*lib == NULL) {
		fprintf(stderr, "ppshim: %s: %s\n", library, strerror(errno));
		return EX_OSERR;
	}
	file = *lib;
	if (strstr(*lib, WS_DOLLAR_LIB_TOKEN) != NULL) {
		file = ws_expand_lib(*lib, elf, tried, sizeof(tried));
		if (file == NULL && errno == ENOMEM) {
			fprintf(stderr, "ppshim: %s\n", strerror(errno));
			return EX_OSERR;
		}
		if (file == NULL) {
			fprintf(stderr,
				"ppshim: library %s: no build of it for %s "
				"(%s) is installed: looked for %s (install "
				"the %s library, or see --library)\n",
				*lib, path,
				elf->parsed ? ws_machine_name(elf->cls,
							      elf->machine)
					    : "this machine",
				tried,
				elf->parsed ? ws_machine_name(elf->cls,
							      elf->machine)
					    : "native");
			return EX_UNAVAILABLE;
		}
	}
	if (stat(file, &st) != 0 || access(file, R_OK) != 0) {
		fprintf(stderr, "ppshim: library %s: %s (see --library)\n",
			file, strerror(errno));
		r = EX_UNAVAILABLE;
		goto out;
	}
	libclass = ws_elf_class(file);
	if (!S_ISREG(st.st_mode) || libclass <= 0) {
		fprintf(stderr,
			"ppshim: library %s: not an ELF shared object "
			"(a libtool .la file? use .libs/libppshim.so)\n",
			file);
		r = EX_UNAVAILABLE;
		goto out;
	}
	/* A script (class 0) loads its interpreter: not checked. */
	if (cmdclass > 0 && cmdclass != libclass) {
		r = ws_refuse(force,
			      "library %s is %s-bit but %s is %s-bit: the "
			      "loader would skip the library (use the build "
			      "that matches)",
			      file, libclass == ELFCLASS64 ? "64" : "32", path,
			      cmdclass == ELFCLASS64 ? "64" : "32");
		if (r != 0)
			r = EX_UNAVAILABLE;
	}
out:
	if (file != *lib)
		free(file);
	return r;
}

int
main(int argc, char **argv)
{
	static struct pp_config cfg; /* large: keep it off the stack */
	const char *library = ws_default_library();
	char err[PP_ERRMSG_MAX];
	struct ws_elf elf;
	bool force = false;
	char *lib, *path;
	struct stat st;
	int r;

	r = ws_options(argc, argv, &library, &force);
	if (r >= 0)
		return r;
	argc -= optind;
	argv += optind;

	/* The same check the library makes at load, with the same words. */
	if (pp_config_parse(&cfg, ws_getenv, err, sizeof(err)) != 0) {
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
	execv(path, argv);
	if (errno == ENOEXEC && elf.cls > 0) {
		/* Never hand an ELF file to the shell, as execvp would. */
		ws_noexec_message(path, &elf);
		free(path);
		return WS_EXIT_CANNOT_EXEC;
	}
	if (errno == ENOEXEC)
		ws_exec_script(path, argc, argv);
	r = errno;
	fprintf(stderr, "ppshim: %s: %s\n", path, strerror(r));
	free(path);
	return r == ENOENT ? WS_EXIT_NOT_FOUND : WS_EXIT_CANNOT_EXEC;
}

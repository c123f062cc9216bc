/*
 * ppshim_preload.c - the library the wrapper preloads: its default path
 * (PREFIX/$LIB/libppshim.so where the loader expands $LIB), the path the
 * loader will open for COMMAND's ABI, the checks that it is a readable
 * ELF file of COMMAND's class, and its place in LD_PRELOAD (appended,
 * kept once, what is there stays in front).
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "ppshim.h"
#include "ppshim_preload.h"

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

/*
 * The library to preload when --library is not given.  Installed in a
 * multiarch directory (PREFIX/lib/TRIPLET, as the Debian package has it)
 * and with glibc's loader, it is PREFIX/$LIB/libppshim.so: the loader
 * expands $LIB to lib/TRIPLET for each program's own ABI, so a 32-bit
 * program (or one that a 64-bit server execs) loads its own build of the
 * library where both are installed.  Otherwise LIBDIR/libppshim.so.
 * A static string.
 */
const char *
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
int
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
 * (EX_UNAVAILABLE, EX_OSERR; EX_UNAVAILABLE for the other class,
 * unless force), the reason printed.
 */
int
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

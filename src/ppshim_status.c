/*
 * ppshim_status.c - `ppshim status [--json] [PID...]`: for each process,
 * whether libppshim is mapped (from /proc/PID/maps), its configuration
 * (from its state file, else the PP_* of /proc/PID/environ), its
 * PROXY-only listeners and their counters (from the state file, layout
 * in core/pp_state.h), and for a process that names the library in
 * LD_PRELOAD without having it, the reason when it can be told:
 * secure-execution mode (AT_SECURE in /proc/PID/auxv, else the
 * executable's setuid/setgid bits or file capabilities), a static
 * executable, another ELF class than the library.
 *
 * Without PID: every process that has the library mapped, and every
 * process whose LD_PRELOAD names it.  A state file whose process is
 * gone, or another one now, or no longer has the library, is stale: it
 * is removed when this user may.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "pp_state.h"
#include "ppshim_elf.h"
#include "ppshim_status.h"

#define WS_ST_USAGE 2
#define WS_ST_MAXENV (1u << 20)

/* What is known of one process. */
struct ws_proc {
	long pid;
	char comm[64];
	char library[512]; /* the mapped libppshim, "" when none */
	char *environ;     /* /proc/PID/environ, NULL if unreadable */
	size_t envlen;
	char preload[1024];             /* its LD_PRELOAD, "" when none */
	char statedir[512];             /* PP_STATE_DIR, or the default */
	char statepath[600];            /* the state file read, "" when none */
	const struct pp_state_file *st; /* mapped, or NULL */
	const char *reason_code;        /* not loaded: "secure", "static"... */
	char reason[160];
};

/* Read a whole small file of /proc into a malloc'd buffer (NUL added);
 * NULL when it cannot be read. */
static char *
ws_slurp(const char *path, size_t max, size_t *len)
{
	size_t cap = 4096, got = 0;
	char *buf = malloc(cap + 1), *nb;
	ssize_t n;
	int fd;

	if (buf == NULL)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (got == cap) {
			if (cap >= max)
				break;
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (nb == NULL)
				break;
			buf = nb;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0) {
				close(fd);
				free(buf);
				return NULL;
			}
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (len != NULL)
		*len = got;
	return buf;
}

/* The value of NAME in a NUL-separated environment block, or NULL. */
static const char *
ws_env_get(const char *env, size_t len, const char *name)
{
	size_t n = strlen(name), i = 0;

	while (env != NULL && i < len) {
		const char *e = env + i;

		if (strncmp(e, name, n) == 0 && e[n] == '=')
			return e + n + 1;
		i += strlen(e) + 1;
	}
	return NULL;
}

/* Does the text name the library (an element whose file name starts
 * with "libppshim")? */
static bool
ws_names_lib(const char *text)
{
	const char *p = text;

	while ((p = strstr(p, "libppshim")) != NULL) {
		if (p == text || p[-1] == '/' || p[-1] == ' ' || p[-1] == ':')
			return true;
		p++;
	}
	return false;
}

/* The path of the libppshim mapped into pid into out ("" when none);
 * false when its maps cannot be read. */
static bool
ws_mapped(long pid, char *out, size_t cap)
{
	char path[64], line[1024], *p;
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		p = strchr(line, '/');
		if (p == NULL)
			continue;
		p[strcspn(p, "\n")] = '\0';
		if (strstr(p, "/libppshim") != NULL &&
		    strstr(p, ".so") != NULL) {
			snprintf(out, cap, "%s", p);
			break;
		}
	}
	fclose(f);
	return true;
}

/* Process pid's start time (/proc/PID/stat field 22), 0 unknown. */
static uint64_t
ws_start_ticks(long pid)
{
	char path[64], *buf;
	size_t len;
	uint64_t t;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	buf = ws_slurp(path, 4096, &len);
	if (buf == NULL)
		return 0;
	t = pp_state_starttime(buf, len);
	free(buf);
	return t;
}

/* Map p's state file, when there is one that is p's own; remove it
 * when it is stale. */
static void
ws_state_open(struct ws_proc *p)
{
	struct pp_state_file *f;
	struct stat sb;
	uint64_t ticks;
	int fd;

	if (!pp_state_path(p->statedir, p->pid, p->statepath,
			   sizeof(p->statepath)))
		goto none;
	fd = open(p->statepath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		goto none;
	if (fstat(fd, &sb) != 0 || (size_t)sb.st_size < sizeof(*f)) {
		close(fd);
		goto none;
	}
	f = mmap(NULL, sizeof(*f), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		goto none;
	ticks = ws_start_ticks(p->pid);
	if (!pp_state_valid(f, sizeof(*f)))
		goto unmap;
	if (f->pid != p->pid || p->library[0] == '\0' ||
	    (ticks != 0 && f->start_ticks != 0 && ticks != f->start_ticks)) {
		(void)unlink(p->statepath); /* stale */
		goto unmap;
	}
	p->st = f;
	return;
unmap:
	munmap(f, sizeof(*f));
none:
	p->statepath[0] = '\0';
}

/* The ELF class of the first LD_PRELOAD element naming the library, 0
 * when unknown. */
static int
ws_preload_class(const char *preload)
{
	char buf[1024], *tok, *save = NULL;
	int cls;

	snprintf(buf, sizeof(buf), "%s", preload);
	for (tok = strtok_r(buf, " :", &save); tok != NULL;
	     tok = strtok_r(NULL, " :", &save)) {
		if (!ws_names_lib(tok) || strchr(tok, '$') != NULL)
			continue;
		cls = ws_elf_class(tok);
		return cls > 0 ? cls : 0;
	}
	return 0;
}

/* AT_SECURE of pid from its auxv: 1, 0, or -1 when unreadable. */
static int
ws_at_secure(long pid)
{
	char path[64], *buf;
	size_t len, i;
	int r = -1;

	snprintf(path, sizeof(path), "/proc/%ld/auxv", pid);
	buf = ws_slurp(path, 65536, &len);
	if (buf == NULL)
		return -1;
	for (i = 0; i + 2 * sizeof(unsigned long) <= len;
	     i += 2 * sizeof(unsigned long)) {
		unsigned long kv[2];

		memcpy(kv, buf + i, sizeof(kv));
		if (kv[0] == AT_NULL)
			break;
		if (kv[0] == AT_SECURE) {
			r = kv[1] != 0;
			break;
		}
	}
	if (len > 0 && r < 0)
		r = 0;
	free(buf);
	return r;
}

/* Why p, which names the library in LD_PRELOAD, does not have it. */
static void
ws_reason(struct ws_proc *p)
{
	char exe[64];
	struct ws_elf elf;
	struct stat sb;
	int sec, cls;

	snprintf(exe, sizeof(exe), "/proc/%ld/exe", p->pid);
	sec = ws_at_secure(p->pid);
	if (sec == 1) {
		p->reason_code = "secure";
		snprintf(p->reason, sizeof(p->reason),
			 "secure-execution mode (AT_SECURE: setuid, setgid "
			 "or file capabilities): the loader ignores "
			 "LD_PRELOAD");
		return;
	}
	if (sec < 0 && stat(exe, &sb) == 0 &&
	    ((sb.st_mode & (S_ISUID | S_ISGID)) != 0 ||
	     getxattr(exe, "security.capability", NULL, 0) > 0)) {
		p->reason_code = "secure";
		snprintf(p->reason, sizeof(p->reason),
			 "%s executable: the loader ignores LD_PRELOAD",
			 (sb.st_mode & S_ISUID)   ? "setuid"
			 : (sb.st_mode & S_ISGID) ? "setgid"
						  : "file-capability");
		return;
	}
	ws_elf_inspect(exe, &elf);
	if (elf.parsed && !elf.interp) {
		p->reason_code = "static";
		snprintf(p->reason, sizeof(p->reason),
			 "statically linked: no loader reads LD_PRELOAD");
		return;
	}
	cls = ws_preload_class(p->preload);
	if (elf.cls > 0 && cls > 0 && elf.cls != cls) {
		p->reason_code = "elf_class";
		snprintf(p->reason, sizeof(p->reason),
			 "a %d-bit program, a %d-bit library",
			 elf.cls == ELFCLASS32 ? 32 : 64,
			 cls == ELFCLASS32 ? 32 : 64);
		return;
	}
	p->reason_code = "unknown";
	snprintf(p->reason, sizeof(p->reason), "not loaded (reason unknown)");
}

/* Gather what is known of pid.  false when there is no such process. */
static bool
ws_proc_read(long pid, struct ws_proc *p)
{
	char path[64], *comm;
	const char *v;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	snprintf(path, sizeof(path), "/proc/%ld", pid);
	if (access(path, F_OK) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	comm = ws_slurp(path, 256, NULL);
	if (comm != NULL) {
		comm[strcspn(comm, "\n")] = '\0';
		snprintf(p->comm, sizeof(p->comm), "%s", comm);
		free(comm);
	}
	(void)ws_mapped(pid, p->library, sizeof(p->library));
	snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
	p->environ = ws_slurp(path, WS_ST_MAXENV, &p->envlen);
	v = ws_env_get(p->environ, p->envlen, "LD_PRELOAD");
	snprintf(p->preload, sizeof(p->preload), "%s", v ? v : "");
	v = ws_env_get(p->environ, p->envlen, "PP_STATE_DIR");
	if (v == NULL || v[0] == '\0')
		v = getenv("PP_STATE_DIR");
	snprintf(p->statedir, sizeof(p->statedir), "%s",
		 v != NULL && v[0] != '\0' ? v : "/run/ppshim");
	ws_state_open(p);
	if (p->library[0] == '\0')
		ws_reason(p);
	return true;
}

static void
ws_proc_free(struct ws_proc *p)
{
	if (p->st != NULL)
		munmap((void *)p->st, sizeof(*p->st));
	free(p->environ);
}

/* Is process pid one that `ppshim status` without PID shows? */
static bool
ws_interesting(long pid)
{
	char lib[512], path[64], *env;
	const char *v;
	size_t len;
	bool r;

	if (ws_mapped(pid, lib, sizeof(lib)) && lib[0] != '\0')
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
	env = ws_slurp(path, WS_ST_MAXENV, &len);
	v = ws_env_get(env, len, "LD_PRELOAD");
	r = v != NULL && ws_names_lib(v);
	free(env);
	return r;
}

/* ===== Output ===== */

static const char *
ws_transport(uint32_t tp)
{
	return tp == PP_STATE_UDP    ? "udp"
	       : tp == PP_STATE_UNIX ? "unix"
				     : "tcp";
}

/* Which counters a person is shown for a transport (all in JSON). */
static bool
ws_shown(uint32_t tp, unsigned c)
{
	if (c == PP_ST_PENDING)
		return tp != PP_STATE_UDP;
	if (c == PP_ST_DROPPED || c == PP_ST_ROUTED || c == PP_ST_PROXIED_SPP)
		return tp == PP_STATE_UDP;
	if (tp == PP_STATE_UDP)
		return c == PP_ST_PROXIED_V2 || c == PP_ST_LOCAL ||
		       c == PP_ST_DIRECT;
	return true;
}

static void
ws_json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Each "NAME=value" line of the configuration text, or each PP_*
 * entry of the environment: fn(name, namelen, value, valuelen). */
static void
ws_config_each(const struct ws_proc *p,
	       void (*fn)(const char *, int, const char *, int, bool *),
	       bool *first)
{
	const char *s, *e, *eq;
	size_t i;

	if (p->st != NULL) {
		char cfg[PP_STATE_CONFIG + 1];

		memcpy(cfg, p->st->config, PP_STATE_CONFIG);
		cfg[PP_STATE_CONFIG] = '\0';
		for (s = cfg; *s != '\0'; s = *e ? e + 1 : e) {
			e = s + strcspn(s, "\n");
			eq = memchr(s, '=', (size_t)(e - s));
			if (eq != NULL)
				fn(s, (int)(eq - s), eq + 1, (int)(e - eq - 1),
				   first);
		}
		return;
	}
	for (i = 0; p->environ != NULL && i < p->envlen;
	     i += strlen(p->environ + i) + 1) {
		s = p->environ + i;
		eq = strchr(s, '=');
		if (strncmp(s, "PP_", 3) == 0 && eq != NULL &&
		    strncmp(s, "PP_TLV_", 7) != 0)
			fn(s, (int)(eq - s), eq + 1, (int)strlen(eq + 1),
			   first);
	}
}

static void
ws_config_text(const char *n, int nl, const char *v, int vl, bool *first)
{
	(void)first;
	printf("    %.*s=%.*s\n", nl, n, vl, v);
}

static void
ws_config_json(const char *n, int nl, const char *v, int vl, bool *first)
{
	char name[256], val[PP_STATE_CONFIG];

	snprintf(name, sizeof(name), "%.*s", nl, n);
	snprintf(val, sizeof(val), "%.*s", vl, v);
	printf("%s", *first ? "" : ", ");
	*first = false;
	ws_json_str(name);
	printf(": ");
	ws_json_str(val);
}

static const char *
ws_config_source(const struct ws_proc *p)
{
	return p->st != NULL ? "state" : p->environ != NULL ? "environ" : NULL;
}

static void
ws_print_text(const struct ws_proc *p)
{
	const char *src = ws_config_source(p);
	unsigned i, c;
	bool first = true;

	printf("%ld %s: ", p->pid, p->comm[0] ? p->comm : "?");
	if (p->library[0] != '\0')
		printf("libppshim loaded (%s)\n", p->library);
	else
		printf("libppshim NOT loaded: %s\n", p->reason);
	if (p->preload[0] != '\0')
		printf("  LD_PRELOAD=%s\n", p->preload);
	if (src == NULL)
		printf("  configuration: unknown (environment not "
		       "readable)\n");
	else
		printf("  configuration (from %s):\n",
		       p->st != NULL ? p->statepath : "its environment");
	if (src != NULL)
		ws_config_each(p, ws_config_text, &first);
	if (p->library[0] == '\0')
		return;
	if (p->st == NULL) {
		printf("  counters: no state file in %s\n", p->statedir);
		return;
	}
	for (i = 0; i < PP_STATE_SLOTS; i++) {
		const struct pp_state_slot *s = &p->st->slot[i];

		if (atomic_load(&((struct pp_state_slot *)s)->used) != 2)
			continue;
		printf("  PROXY-only %s %.*s\n", ws_transport(s->transport),
		       PP_STATE_ADDR, s->addr);
		for (c = 0; c < PP_ST_N; c++)
			if (ws_shown(s->transport, c))
				printf("    %-16s %" PRIu64 "\n",
				       pp_stat_name(c),
				       atomic_load(
					       (_Atomic uint64_t *)&s->c[c]));
	}
}

static void
ws_print_json(const struct ws_proc *p, bool first_proc)
{
	const char *src = ws_config_source(p);
	bool first = true, fs = true;
	unsigned i, c;

	printf("%s\n  {\"pid\": %ld, \"command\": ", first_proc ? "" : ",",
	       p->pid);
	ws_json_str(p->comm);
	printf(", \"loaded\": %s, \"library\": ",
	       p->library[0] ? "true" : "false");
	if (p->library[0])
		ws_json_str(p->library);
	else
		printf("null");
	printf(", \"reason\": ");
	if (p->library[0])
		printf("null, \"reason_code\": null");
	else {
		ws_json_str(p->reason);
		printf(", \"reason_code\": ");
		ws_json_str(p->reason_code);
	}
	printf(", \"ld_preload\": ");
	if (p->preload[0])
		ws_json_str(p->preload);
	else
		printf("null");
	printf(", \"config_source\": ");
	if (src != NULL)
		ws_json_str(src);
	else
		printf("null");
	printf(", \"config\": {");
	if (src != NULL)
		ws_config_each(p, ws_config_json, &first);
	printf("}, \"state_file\": ");
	if (p->st != NULL)
		ws_json_str(p->statepath);
	else
		printf("null");
	if (p->st != NULL)
		printf(", \"created\": %" PRId64, p->st->created);
	printf(", \"listeners\": [");
	for (i = 0; p->st != NULL && i < PP_STATE_SLOTS; i++) {
		const struct pp_state_slot *s = &p->st->slot[i];
		char addr[PP_STATE_ADDR + 1];

		if (atomic_load(&((struct pp_state_slot *)s)->used) != 2)
			continue;
		memcpy(addr, s->addr, PP_STATE_ADDR);
		addr[PP_STATE_ADDR] = '\0';
		printf("%s{\"address\": ", fs ? "" : ", ");
		fs = false;
		ws_json_str(addr);
		printf(", \"transport\": \"%s\", \"counters\": {",
		       ws_transport(s->transport));
		for (c = 0; c < PP_ST_N; c++)
			printf("%s\"%s\": %" PRIu64, c ? ", " : "",
			       pp_stat_name(c),
			       atomic_load((_Atomic uint64_t *)&s->c[c]));
		printf("}}");
	}
	printf("]}");
}

/* ===== The command ===== */

static void
ws_status_help(void)
{
	printf("Usage: ppshim status [--json] [PID]...\n"
	       "Show, for each PID (default: every process that has "
	       "libppshim mapped or\n"
	       "names it in LD_PRELOAD), whether the library is loaded, its"
	       " configuration,\n"
	       "its PROXY-only listeners and their counters (from the state"
	       " file in\n"
	       "PP_STATE_DIR or /run/ppshim), and why the library is "
	       "missing where it can\n"
	       "tell: setuid/setgid/capabilities, static, other ELF "
	       "class.\n\n"
	       "  --json      one JSON object for scripts (keys in "
	       "ppshim(1))\n"
	       "  -h, --help  show this help and exit\n\n"
	       "Exit status: 0 every process shown has the library, 1 one "
	       "does not,\n"
	       "2 usage error or no such process.\n");
}

/* Parse a PID argument; false when it is not one. */
static bool
ws_pid_arg(const char *s, long *pid)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	*pid = strtol(s, &end, 10);
	return errno == 0 && *end == '\0' && *pid > 0;
}

/* Every pid under /proc that the listing shows, in order; *n set.
 * NULL when out of memory or /proc cannot be read. */
static long *
ws_scan(size_t *n)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	long *v = NULL, *nv, pid, self = (long)getpid();
	size_t cap = 0;

	*n = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (!ws_pid_arg(de->d_name, &pid) || pid == self ||
		    !ws_interesting(pid))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				break;
			v = nv;
		}
		v[(*n)++] = pid;
	}
	closedir(d);
	return v;
}

/*
 * Remove the state files in dir whose process is gone, or is another
 * process now (another start time), when this user may: a process
 * killed by a signal leaves its file behind.
 */
static void
ws_sweep(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct pp_state_file f;
	char path[1024], *end;
	uint64_t ticks;
	long pid;
	int fd;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "ppshim-", 7) != 0)
			continue;
		errno = 0;
		pid = strtol(de->d_name + 7, &end, 10);
		if (errno != 0 || pid <= 0 || strcmp(end, ".state") != 0 ||
		    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
			    (int)sizeof(path))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (read(fd, &f, sizeof(f)) != (ssize_t)sizeof(f) ||
		    !pp_state_valid(&f, sizeof(f))) {
			close(fd);
			continue;
		}
		close(fd);
		ticks = ws_start_ticks(pid);
		if (ticks == 0 ||
		    (f.start_ticks != 0 && ticks != f.start_ticks))
			(void)unlink(path);
	}
	closedir(d);
}

static int
ws_cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

int
ws_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ws_proc p;
	long *pids, pid;
	size_t n = 0, i;
	bool json = false, missing = false, shown = false;
	int c, ret = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			ws_status_help();
			return 0;
		default:
			fprintf(stderr, "ppshim status: unknown option '%s'\n",
				argv[optind - 1]);
			fprintf(stderr, "Try 'ppshim status --help' for more "
					"information.\n");
			return WS_ST_USAGE;
		}
	}
	if (optind < argc) {
		n = (size_t)(argc - optind);
		pids = calloc(n, sizeof(*pids));
		if (pids == NULL) {
			perror("ppshim status");
			return WS_ST_USAGE;
		}
		for (i = 0; i < n; i++) {
			if (!ws_pid_arg(argv[optind + (int)i], &pids[i])) {
				fprintf(stderr,
					"ppshim status: '%s' is not a PID\n",
					argv[optind + (int)i]);
				free(pids);
				return WS_ST_USAGE;
			}
		}
	} else {
		const char *dir = getenv("PP_STATE_DIR");

		ws_sweep(dir != NULL && dir[0] != '\0' ? dir : "/run/ppshim");
		pids = ws_scan(&n);
		if (n > 1)
			qsort(pids, n, sizeof(*pids), ws_cmp_long);
	}
	if (json)
		printf("{\"processes\": [");
	for (i = 0; i < n; i++) {
		pid = pids[i];
		if (!ws_proc_read(pid, &p)) {
			fprintf(stderr, "ppshim status: %ld: no such process\n",
				pid);
			ret = WS_ST_USAGE;
			continue;
		}
		if (p.library[0] == '\0')
			missing = true;
		if (json)
			ws_print_json(&p, !shown);
		else
			ws_print_text(&p);
		shown = true;
		ws_proc_free(&p);
	}
	if (json)
		printf("%s]}\n", shown ? "\n" : "");
	else if (n == 0)
		printf("no process has libppshim loaded or named in "
		       "LD_PRELOAD\n");
	free(pids);
	if (ret != 0)
		return ret;
	return missing ? 1 : 0;
}

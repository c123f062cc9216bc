/*
 * ppshim_elf.c - the wrapper's reading of ELF files: the class of the
 * library, and for COMMAND what the dynamic loader will make of it (a
 * PT_INTERP, or none: statically linked) and whether the Go toolchain
 * built it (its notes or sections).  Both classes are read, in the
 * machine's own byte order; a file that may hold anything is read within
 * fixed bounds, and what cannot be read is left unknown.
 */
#include "config.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppshim_elf.h"

/* Bounds on what is read from a file that may hold anything. */
#define WS_ELF_MAX_PHNUM 4096u
#define WS_ELF_MAX_SHNUM 65536u
#define WS_ELF_MAX_NOTES (1u << 20)
#define WS_ELF_MAX_STRTAB (4u << 20)

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

/*
 * One of each ELF structure T (Ehdr, Phdr, Shdr) as read from a file of
 * either class; WS_SIZEOF is its size in the class cls.  The fields have
 * the same names in both classes, so one macro per structure (COPY)
 * copies the ones used, and WS_COPY applies it to whichever was read.
 */
#define WS_ELF_UNION(T)                                                        \
	union {                                                                \
		Elf32_##T c32;                                                 \
		Elf64_##T c64;                                                 \
	}
#define WS_SIZEOF(cls, T)                                                      \
	((cls) == ELFCLASS64 ? sizeof(Elf64_##T) : sizeof(Elf32_##T))

#define WS_COPY(cls, COPY, out, e)                                             \
	((cls) == ELFCLASS64 ? (void)COPY(out, (e).c64)                        \
			     : (void)COPY(out, (e).c32))
#define WS_COPY_EHDR(h, e)                                                     \
	((h)->type = (e).e_type, (h)->machine = (e).e_machine,                 \
	 (h)->phoff = (e).e_phoff, (h)->phentsize = (e).e_phentsize,           \
	 (h)->phnum = (e).e_phnum, (h)->shoff = (e).e_shoff,                   \
	 (h)->shentsize = (e).e_shentsize, (h)->shnum = (e).e_shnum,           \
	 (h)->shstrndx = (e).e_shstrndx)
#define WS_COPY_PHDR(p, e)                                                     \
	((p)->type = (e).p_type, (p)->offset = (e).p_offset,                   \
	 (p)->filesz = (e).p_filesz, (p)->align = (e).p_align)
#define WS_COPY_SHDR(p, e)                                                     \
	((p)->name = (e).sh_name, (p)->offset = (e).sh_offset,                 \
	 (p)->size = (e).sh_size, (p)->link = (e).sh_link)

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

/*
 * The class an ELF identification (EI_NIDENT bytes) names, ELFCLASS32 or
 * ELFCLASS64; 0 when it is not ELF or of another class.
 */
static int
ws_ident_class(const unsigned char *id)
{
	if (memcmp(id, ELFMAG, SELFMAG) != 0)
		return 0;
	if (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)
		return 0;
	return id[EI_CLASS];
}

/*
 * The ELF class of a file (ELFCLASS32 or ELFCLASS64), 0 when it is not
 * an ELF file (a script, a libtool .la), -1 when it cannot be read.
 */
int
ws_elf_class(const char *path)
{
	unsigned char id[EI_NIDENT];
	int fd = open(path, O_RDONLY | O_CLOEXEC), cls = 0;

	if (fd < 0)
		return -1;
	if (ws_pread(fd, id, sizeof(id), 0))
		cls = ws_ident_class(id);
	close(fd);
	return cls;
}

static bool
ws_read_ehdr(int fd, int cls, struct ws_ehdr *h)
{
	WS_ELF_UNION(Ehdr) e;

	if (!ws_pread(fd, &e, WS_SIZEOF(cls, Ehdr), 0))
		return false;
	WS_COPY(cls, WS_COPY_EHDR, h, e);
	return h->phentsize >= WS_SIZEOF(cls, Phdr);
}

static bool
ws_read_seg(int fd, int cls, const struct ws_ehdr *h, unsigned i,
	    struct ws_seg *p)
{
	uint64_t off = h->phoff + (uint64_t)i * h->phentsize;
	WS_ELF_UNION(Phdr) e;

	if (!ws_pread(fd, &e, WS_SIZEOF(cls, Phdr), off))
		return false;
	WS_COPY(cls, WS_COPY_PHDR, p, e);
	return true;
}

static bool
ws_read_sec(int fd, int cls, const struct ws_ehdr *h, uint64_t i,
	    struct ws_sec *p)
{
	uint64_t off = h->shoff + i * h->shentsize;
	WS_ELF_UNION(Shdr) e;

	if (h->shentsize < WS_SIZEOF(cls, Shdr) ||
	    !ws_pread(fd, &e, WS_SIZEOF(cls, Shdr), off))
		return false;
	WS_COPY(cls, WS_COPY_SHDR, p, e);
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
void
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
	if (!ws_pread(fd, id, sizeof(id), 0) || ws_ident_class(id) == 0)
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
bool
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

/* A name for an ELF machine ("x86-64", "i386"...), for messages. */
const char *
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

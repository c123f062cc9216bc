/*
 * vectors.c - load the PROXY header test vectors.
 *
 * One vector per file, one directive per line; '#' starts a comment
 * (outside quotes).  Data directives append bytes:
 *
 *   hex 0D 0A 0D0A        bytes in hex, pairs may be run together
 *   text "PROXY TCP4 "    a quoted string; escapes \r \n \t \0 \\ \"
 *                         and \xHH (both directives accept a mix of hex
 *                         bytes and quoted strings, as do tlv values)
 *   crlf                  the two bytes CR LF
 *   fill N XX             N bytes of value XX (hex)
 *   len16                 v2 length field: two bytes, big-endian, filled
 *                         with (header length - 16) once the file is read
 *   len8                  the same in one byte (the 2012 draft layout)
 *   crc                   four bytes: the correct CRC32C of the header
 *                         (computed with these bytes zero)
 *   crc-bad               the correct CRC32C with its lowest bit flipped
 *   payload               what follows is data after the header
 *   at                    the next byte is the first one at which the
 *                         header can be seen to be invalid
 *
 * Other directives:
 *
 *   flags v1,v2,draft     layouts the parser accepts (default v1,v2)
 *   expect valid
 *   expect invalid PP_E_V1_SYNTAX
 *   expect-at N           same as `at`, counted in bytes from 1; "end"
 *                         names the last byte
 *   expect version 1|2    expect draft yes|no
 *   expect command LOCAL|PROXY
 *   expect family UNSPEC|INET|INET6|UNIX
 *   expect transport UNSPEC|STREAM|DGRAM
 *   expect src 192.0.2.1:56324     (also [2001:db8::1]:443, unix:/path,
 *   expect dst ...                  none)
 *   expect crc yes|no     a CRC32C TLV was checked
 *   expect tlv-len N      length of the TLV area
 *   expect tlv 02 "example.com"    a TLV (by pp_tlv_find()); the value
 *   expect ssl 21 "TLSv1.3"        is quoted strings and hex bytes
 *
 * This is test code: plain stdio and malloc.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "vectors.h"

struct pp_vec_names {
	enum pp_err err;
	const char *name;
};

static const struct pp_vec_names pp_vec_errs[] = {
	{ PP_OK, "PP_OK" },
	{ PP_E_SIGNATURE, "PP_E_SIGNATURE" },
	{ PP_E_VERSION, "PP_E_VERSION" },
	{ PP_E_V1_SYNTAX, "PP_E_V1_SYNTAX" },
	{ PP_E_V1_ADDR, "PP_E_V1_ADDR" },
	{ PP_E_V1_PORT, "PP_E_V1_PORT" },
	{ PP_E_V1_TOO_LONG, "PP_E_V1_TOO_LONG" },
	{ PP_E_V2_COMMAND, "PP_E_V2_COMMAND" },
	{ PP_E_V2_FAMILY, "PP_E_V2_FAMILY" },
	{ PP_E_V2_LENGTH, "PP_E_V2_LENGTH" },
	{ PP_E_V2_TLV, "PP_E_V2_TLV" },
	{ PP_E_V2_CRC, "PP_E_V2_CRC" },
	{ PP_E_TOO_LONG, "PP_E_TOO_LONG" },
	{ PP_E_TRUNCATED, "PP_E_TRUNCATED" },
	{ PP_E_V2_ADDR, "PP_E_V2_ADDR" },
};

const char *
pp_vec_err_name(enum pp_err err)
{
	size_t i;

	for (i = 0; i < sizeof(pp_vec_errs) / sizeof(pp_vec_errs[0]); i++)
		if (pp_vec_errs[i].err == err)
			return pp_vec_errs[i].name;
	return "PP_E_?";
}

bool
pp_vec_err_parse(const char *name, enum pp_err *err)
{
	size_t i;

	for (i = 0; i < sizeof(pp_vec_errs) / sizeof(pp_vec_errs[0]); i++) {
		if (strcmp(pp_vec_errs[i].name, name) == 0) {
			*err = pp_vec_errs[i].err;
			return true;
		}
	}
	return false;
}

char *
pp_vec_addr(const union pp_sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	switch (sa->sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &sa->sin.sin_addr, a, sizeof(a));
		snprintf(buf, size, "%s:%u", a, ntohs(sa->sin.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sa->sin6.sin6_addr, a, sizeof(a));
		snprintf(buf, size, "[%s]:%u", a, ntohs(sa->sin6.sin6_port));
		break;
	case AF_UNIX:
		snprintf(buf, size, "unix:%.*s",
			 (int)(len > offsetof(struct sockaddr_un, sun_path)
				       ? len - offsetof(struct sockaddr_un,
							sun_path)
				       : 0),
			 sa->sun.sun_path);
		/* the length counts the NUL */
		break;
	default:
		snprintf(buf, size, "none");
		break;
	}
	return buf;
}

/* ===== The loader ===== */

struct pp_vec_ctx {
	const char *file;
	unsigned line;
	struct pp_vec *v;
	size_t cap;
	bool in_payload;
	bool have_expect;
	size_t len16[4], nlen16;
	size_t len8[4], nlen8;
	size_t crc_at;
	bool crc_bad, have_crc;
};

static __attribute__((format(printf, 2, 3))) bool
pp_vec_bad(struct pp_vec_ctx *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%u: ", c->file, c->line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return false;
}

static void
pp_vec_put(struct pp_vec_ctx *c, const uint8_t *b, size_t n)
{
	struct pp_vec *v = c->v;

	if (v->len + n > c->cap) {
		size_t nc = c->cap ? c->cap : 256;

		while (nc < v->len + n)
			nc *= 2;
		v->data = realloc(v->data, nc);
		if (v->data == NULL)
			abort();
		c->cap = nc;
	}
	memcpy(v->data + v->len, b, n);
	v->len += n;
}

static int
pp_vec_hexdig(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/*
 * A sequence of hex bytes (pairs may be run together) and quoted strings
 * (escapes \r \n \t \0 \\ \" \xHH), separated by blanks, into out[0..cap).
 * Returns the number of bytes, -1 if malformed.
 */
static long
pp_vec_bytes(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			return (long)n;
		if (*s != '"') {
			int hi = pp_vec_hexdig((unsigned char)s[0]);
			int lo = hi < 0 ? -1
					: pp_vec_hexdig((unsigned char)s[1]);

			if (lo < 0 || n == cap)
				return -1;
			out[n++] = (uint8_t)(hi << 4 | lo);
			s += 2;
			continue;
		}
		s++;
		while (*s != '"') {
			int ch = (unsigned char)*s++;

			if (ch == '\0' || n == cap)
				return -1;
			if (ch == '\\') {
				ch = (unsigned char)*s++;
				switch (ch) {
				case 'r':
					ch = '\r';
					break;
				case 'n':
					ch = '\n';
					break;
				case 't':
					ch = '\t';
					break;
				case '0':
					ch = 0;
					break;
				case '\\':
				case '"':
					break;
				case 'x': {
					int hi = pp_vec_hexdig(
						(unsigned char)s[0]);
					int lo =
						hi < 0 ? -1
						       : pp_vec_hexdig(
								 (unsigned char)
									 s[1]);

					if (lo < 0)
						return -1;
					ch = hi << 4 | lo;
					s += 2;
					break;
				}
				default:
					return -1;
				}
			}
			out[n++] = (uint8_t)ch;
		}
		s++;
	}
}

static bool
pp_vec_enum(const char *s, const char *const *names, size_t n, int *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	return false;
}

static bool
pp_vec_yesno(const char *s, int *out)
{
	static const char *const yn[] = { "no", "yes" };

	return pp_vec_enum(s, yn, 2, out);
}

static bool
pp_vec_expect(struct pp_vec_ctx *c, char *rest)
{
	static const char *const cmds[] = { "LOCAL", "PROXY" };
	static const char *const fams[] = { "UNSPEC", "INET", "INET6", "UNIX" };
	static const char *const tps[] = { "UNSPEC", "STREAM", "DGRAM" };
	struct pp_vec *v = c->v;
	char *key = rest, *val;
	uint8_t buf[512];
	long n;

	val = key + strcspn(key, " \t");
	if (*val != '\0')
		*val++ = '\0';
	while (*val == ' ' || *val == '\t')
		val++;

	if (strcmp(key, "valid") == 0) {
		v->valid = true;
		c->have_expect = true;
		return true;
	}
	if (strcmp(key, "invalid") == 0) {
		v->valid = false;
		c->have_expect = true;
		if (!pp_vec_err_parse(val, &v->err))
			return pp_vec_bad(c, "unknown error code '%s'", val);
		return true;
	}
	if (strcmp(key, "version") == 0) {
		v->version = atoi(val);
		return true;
	}
	if (strcmp(key, "draft") == 0)
		return pp_vec_yesno(val, &v->draft) ||
		       pp_vec_bad(c, "yes or no");
	if (strcmp(key, "crc") == 0)
		return pp_vec_yesno(val, &v->crc) || pp_vec_bad(c, "yes or no");
	if (strcmp(key, "command") == 0)
		return pp_vec_enum(val, cmds, 2, &v->command) ||
		       pp_vec_bad(c, "bad command");
	if (strcmp(key, "family") == 0)
		return pp_vec_enum(val, fams, 4, &v->family) ||
		       pp_vec_bad(c, "bad family");
	if (strcmp(key, "transport") == 0)
		return pp_vec_enum(val, tps, 3, &v->transport) ||
		       pp_vec_bad(c, "bad transport");
	if (strcmp(key, "tlv-len") == 0) {
		v->tlv_len = atol(val);
		return true;
	}
	if (strcmp(key, "src") == 0 || strcmp(key, "dst") == 0) {
		char *dst = key[0] == 's' ? v->src : v->dst;

		snprintf(dst, sizeof(v->src), "%s", val);
		return true;
	}
	if (strcmp(key, "tlv") == 0 || strcmp(key, "ssl") == 0) {
		struct pp_vec_tlv *t;
		char *end;
		unsigned long type = strtoul(val, &end, 16);

		if (end == val || type > 255 || v->ntlv == PP_VEC_MAX_TLV)
			return pp_vec_bad(c, "bad tlv expectation");
		n = pp_vec_bytes(end, buf, sizeof(buf));
		if (n < 0)
			return pp_vec_bad(c, "bad tlv value");
		t = &v->tlv[v->ntlv++];
		t->type = (uint8_t)type;
		t->ssl = key[0] == 's';
		memcpy(t->val, buf, (size_t)n);
		t->len = (size_t)n;
		return true;
	}
	return pp_vec_bad(c, "unknown expectation '%s'", key);
}

static bool
pp_vec_line(struct pp_vec_ctx *c, char *line)
{
	struct pp_vec *v = c->v;
	char *dir, *rest, *p;
	bool quoted = false;
	uint8_t buf[512];
	long n;

	/* strip the comment (outside quotes) and trailing blanks */
	for (p = line; *p; p++) {
		if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted)
			break;
	}
	*p = '\0';
	while (p > line && isspace((unsigned char)p[-1]))
		*--p = '\0';
	dir = line;
	while (*dir == ' ' || *dir == '\t')
		dir++;
	if (*dir == '\0')
		return true;
	rest = dir + strcspn(dir, " \t");
	if (*rest != '\0')
		*rest++ = '\0';
	while (*rest == ' ' || *rest == '\t')
		rest++;

	if (strcmp(dir, "hex") == 0) {
		n = pp_vec_bytes(rest, buf, sizeof(buf));
		if (n < 0)
			return pp_vec_bad(c, "bad hex");
		pp_vec_put(c, buf, (size_t)n);
	} else if (strcmp(dir, "text") == 0) {
		n = pp_vec_bytes(rest, buf, sizeof(buf));
		if (n < 0)
			return pp_vec_bad(c, "bad quoted text");
		pp_vec_put(c, buf, (size_t)n);
	} else if (strcmp(dir, "crlf") == 0) {
		pp_vec_put(c, (const uint8_t *)"\r\n", 2);
	} else if (strcmp(dir, "fill") == 0) {
		char *end;
		unsigned long cnt = strtoul(rest, &end, 10);
		long b = pp_vec_bytes(end, buf, 1);

		if (end == rest || b != 1 || cnt > 70000)
			return pp_vec_bad(c, "fill N XX");
		while (cnt-- > 0)
			pp_vec_put(c, buf, 1);
	} else if (strcmp(dir, "len16") == 0 || strcmp(dir, "len8") == 0) {
		bool is16 = dir[3] == '1';
		size_t *nn = is16 ? &c->nlen16 : &c->nlen8;

		if (*nn == 4)
			return pp_vec_bad(c, "too many length fields");
		(is16 ? c->len16 : c->len8)[(*nn)++] = v->len;
		memset(buf, 0, 2);
		pp_vec_put(c, buf, is16 ? 2 : 1);
	} else if (strcmp(dir, "crc") == 0 || strcmp(dir, "crc-bad") == 0) {
		if (c->have_crc)
			return pp_vec_bad(c, "one crc directive per file");
		c->have_crc = true;
		c->crc_bad = dir[3] == '-';
		c->crc_at = v->len;
		memset(buf, 0, 4);
		pp_vec_put(c, buf, 4);
	} else if (strcmp(dir, "payload") == 0) {
		c->in_payload = true;
		v->hdr_len = v->len;
	} else if (strcmp(dir, "at") == 0) {
		v->at = v->len + 1;
	} else if (strcmp(dir, "flags") == 0) {
		char *tok, *save = NULL;

		v->flags = 0;
		for (tok = strtok_r(rest, ", ", &save); tok;
		     tok = strtok_r(NULL, ", ", &save)) {
			if (strcmp(tok, "v1") == 0)
				v->flags |= PP_ACCEPT_V1;
			else if (strcmp(tok, "v2") == 0)
				v->flags |= PP_ACCEPT_V2;
			else if (strcmp(tok, "draft") == 0)
				v->flags |= PP_ACCEPT_DRAFT;
			else
				return pp_vec_bad(c, "unknown flag '%s'", tok);
		}
	} else if (strcmp(dir, "expect-at") == 0) {
		if (strcmp(rest, "end") == 0)
			v->at = (size_t)-1; /* resolved at the end */
		else if ((v->at = strtoul(rest, NULL, 10)) == 0)
			return pp_vec_bad(c, "expect-at N (from 1) or end");
	} else if (strcmp(dir, "expect") == 0) {
		return pp_vec_expect(c, rest);
	} else {
		return pp_vec_bad(c, "unknown directive '%s'", dir);
	}
	return true;
}

static bool
pp_vec_load_file(const char *path, const char *name, struct pp_vec *v)
{
	struct pp_vec_ctx c;
	char line[1024];
	FILE *f;
	size_t i;
	bool ok = true;

	memset(v, 0, sizeof(*v));
	memset(&c, 0, sizeof(c));
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->flags = PP_ACCEPT_V1 | PP_ACCEPT_V2;
	v->version = v->draft = v->command = v->family = -1;
	v->transport = v->crc = -1;
	v->tlv_len = -1;
	c.file = path;
	c.v = v;
	f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		return false;
	}
	while (ok && fgets(line, sizeof(line), f) != NULL) {
		c.line++;
		ok = pp_vec_line(&c, line);
	}
	fclose(f);
	if (!ok)
		return false;
	if (!c.have_expect)
		return pp_vec_bad(&c, "no 'expect valid' or 'expect invalid'");
	if (!c.in_payload)
		v->hdr_len = v->len;
	if (v->at == (size_t)-1)
		v->at = v->hdr_len;
	for (i = 0; i < c.nlen16; i++) {
		size_t l = v->hdr_len - 16;

		v->data[c.len16[i]] = (uint8_t)(l >> 8);
		v->data[c.len16[i] + 1] = (uint8_t)l;
	}
	for (i = 0; i < c.nlen8; i++)
		v->data[c.len8[i]] = (uint8_t)(v->hdr_len - 16);
	if (c.have_crc) {
		uint32_t crc = pp_crc32c_sw(0, v->data, v->hdr_len);

		if (c.crc_bad)
			crc ^= 1;
		v->data[c.crc_at] = (uint8_t)(crc >> 24);
		v->data[c.crc_at + 1] = (uint8_t)(crc >> 16);
		v->data[c.crc_at + 2] = (uint8_t)(crc >> 8);
		v->data[c.crc_at + 3] = (uint8_t)crc;
	}
	if (v->len == 0)
		return pp_vec_bad(&c, "no data");
	return true;
}

static int
pp_vec_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

long
pp_vec_load(const char *dir, struct pp_vec **out)
{
	static const char *const sub[] = { "valid", "invalid" };
	char **names = NULL;
	size_t nn = 0, cap = 0, i;
	struct pp_vec *v;
	long ret = -1;

	for (i = 0; i < 2; i++) {
		char path[1024];
		struct dirent *e;
		DIR *d;

		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		d = opendir(path);
		if (d == NULL) {
			perror(path);
			goto out;
		}
		while ((e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);

			if (l < 5 || strcmp(e->d_name + l - 4, ".txt") != 0)
				continue;
			if (nn == cap) {
				cap = cap ? cap * 2 : 64;
				names = realloc(names, cap * sizeof(*names));
				if (names == NULL)
					abort();
			}
			names[nn] = malloc(strlen(sub[i]) + l + 2);
			if (names[nn] == NULL)
				abort();
			sprintf(names[nn++], "%s/%s", sub[i], e->d_name);
		}
		closedir(d);
	}
	qsort(names, nn, sizeof(*names), pp_vec_cmp);
	v = calloc(nn ? nn : 1, sizeof(*v));
	if (v == NULL)
		abort();
	for (i = 0; i < nn; i++) {
		char path[1024];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (!pp_vec_load_file(path, names[i], &v[i])) {
			pp_vec_free(v, i + 1);
			goto out;
		}
	}
	*out = v;
	ret = (long)nn;
out:
	for (i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	return ret;
}

void
pp_vec_free(struct pp_vec *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].data);
	free(v);
}

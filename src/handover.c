/*
 * handover.c - encoding and decoding PPSHIM_HANDOVER (see handover.h),
 * and the variables a connection's program gets (PP_TLV_*, tcpserver's
 * TCPREMOTEIP and company: pp_tcpvars_rewrite).  Pure: no I/O, no allocation; the exec hook runs it between vfork and
 * exec, where only async-signal-safe work is allowed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "handover.h"
#include "pp_hex.h"
#include "pp_parse.h"
#include "pp_sockaddr.h"

static const char *const pp_labels[PP_XTLV_COUNT] = {
	"authority", "alpn", "unique_id", "ssl_version", "ssl_cn", "ssl_cipher",
};

static const char *const pp_envnames[PP_XTLV_COUNT] = {
	"PP_TLV_AUTHORITY",   "PP_TLV_ALPN",   "PP_TLV_UNIQUE_ID",
	"PP_TLV_SSL_VERSION", "PP_TLV_SSL_CN", "PP_TLV_SSL_CIPHER",
};

const char *
pp_tlv_label(enum pp_tlvname t)
{
	return pp_labels[t];
}

const char *
pp_tlv_envname(enum pp_tlvname t)
{
	return pp_envnames[t];
}

static void
pp_tlv_keep(struct pp_tlvset *t, enum pp_tlvname n, const uint8_t *v,
	    size_t len)
{
	if (len > PP_XTLV_MAX)
		len = PP_XTLV_MAX;
	memcpy(t->val[n], v, len);
	t->len[n] = (uint16_t)len;
	t->present[n] = true;
}

void
pp_tlvset_from_area(struct pp_tlvset *t, const uint8_t *tlv, size_t tlv_len)
{
	static const struct {
		enum pp_tlvname name;
		uint8_t type;
		bool ssl;
	} map[] = {
		{ PP_XTLV_AUTHORITY, PP_TLV_AUTHORITY, false },
		{ PP_XTLV_ALPN, PP_TLV_ALPN, false },
		{ PP_XTLV_UNIQUE_ID, PP_TLV_UNIQUE_ID, false },
		{ PP_XTLV_SSL_VERSION, PP_SUBTLV_SSL_VERSION, true },
		{ PP_XTLV_SSL_CN, PP_SUBTLV_SSL_CN, true },
		{ PP_XTLV_SSL_CIPHER, PP_SUBTLV_SSL_CIPHER, true },
	};
	const uint8_t *v;
	size_t i, vlen;
	bool found;

	memset(t, 0, sizeof(*t));
	if (tlv == NULL || tlv_len == 0)
		return;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		found = map[i].ssl ? pp_tlv_ssl_find(tlv, tlv_len, map[i].type,
						     &v, &vlen)
				   : pp_tlv_find(tlv, tlv_len, map[i].type, &v,
						 &vlen);
		if (found)
			pp_tlv_keep(t, map[i].name, v, vlen);
	}
}

/* Small appender that never overruns and remembers a failure. */
struct pp_out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void
pp_put(struct pp_out *o, const char *s, size_t n)
{
	if (o->full || o->len + n + 1 > o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* As many whole bytes of p as fit, in hex; full when not all did. */
static void
pp_put_hex(struct pp_out *o, const void *p, size_t n)
{
	size_t fit;

	if (o->full)
		return;
	fit = (o->cap - o->len - 1) / 2;
	if (fit > n)
		fit = n;
	o->len += pp_hex_encode(p, fit, o->buf + o->len);
	o->buf[o->len] = '\0';
	if (fit < n)
		o->full = true;
}

static void
pp_put_num(struct pp_out *o, uint64_t v, unsigned base)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = pp_hex_char((unsigned)(v % base));
		v /= base;
	} while (v != 0);
	pp_put(o, tmp + i, sizeof(tmp) - i);
}

bool
pp_handover_append(char *out, size_t cap, const struct pp_handover *h)
{
	struct pp_out o = { out, cap, strlen(out), false };
	size_t start = o.len;
	unsigned flags =
		(h->info.has_src ? 1u : 0u) | (h->info.has_dst ? 2u : 0u);
	int i;

	if (h->fd < 0 || o.len >= cap)
		return false;
	if (o.len > 0)
		pp_put(&o, ";", 1);
	pp_put_num(&o, (uint64_t)h->fd, 10);
	pp_put(&o, ",", 1);
	pp_put_num(&o, h->info.cookie, 16);
	pp_put(&o, ",", 1);
	pp_put_num(&o, flags, 10);
	pp_put(&o, ",", 1);
	if (h->info.has_src)
		pp_put_hex(&o, &h->info.src, h->info.srclen);
	pp_put(&o, ",", 1);
	if (h->info.has_dst)
		pp_put_hex(&o, &h->info.dst, h->info.dstlen);
	for (i = 0; i < PP_XTLV_COUNT; i++) {
		if (!h->tlvs.present[i])
			continue;
		pp_put(&o, ",", 1);
		pp_put(&o, pp_labels[i], strlen(pp_labels[i]));
		pp_put(&o, "=", 1);
		pp_put_hex(&o, h->tlvs.val[i], h->tlvs.len[i]);
	}
	if (o.full) {
		out[start] = '\0';
		return false;
	}
	return true;
}

/* Parse [s, e) as a number in base; false on anything else. */
static bool
pp_get_num(const char *s, const char *e, unsigned base, uint64_t max,
	   uint64_t *out)
{
	uint64_t v = 0;
	int d;

	if (s == e || e - s > 20)
		return false;
	for (; s < e; s++) {
		d = pp_hex_digit((unsigned char)*s);
		if (d < 0 || (unsigned)d >= base || (uint64_t)d > max ||
		    v > (max - (unsigned)d) / base)
			return false;
		v = v * base + (unsigned)d;
	}
	*out = v;
	return true;
}

/* A sockaddr as handed over: AF_INET or AF_INET6 of the right length. */
static bool
pp_get_addr(const char *s, const char *e, union pp_inaddr *a, socklen_t *alen)
{
	size_t n;

	memset(a, 0, sizeof(*a));
	if (!pp_hex_decode(s, (size_t)(e - s), a, sizeof(*a), &n))
		return false;
	if ((a->sa.sa_family == AF_INET && n == sizeof(a->sin)) ||
	    (a->sa.sa_family == AF_INET6 && n == sizeof(a->sin6))) {
		*alen = (socklen_t)n;
		return true;
	}
	return false;
}

static bool
pp_parse_entry(const char *s, const char *e, struct pp_handover *h)
{
	const char *f[5 + PP_XTLV_COUNT + 1], *p = s, *eq;
	size_t nf = 0, i, len;
	uint64_t v;
	int t;

	memset(h, 0, sizeof(*h));
	f[nf++] = s;
	for (p = s; p < e; p++) {
		if (*p != ',')
			continue;
		if (nf == sizeof(f) / sizeof(f[0]))
			return false;
		f[nf++] = p + 1;
	}
	if (nf < 5)
		return false;
#define PP_FIELD_END(k) ((k) + 1 < nf ? f[(k) + 1] - 1 : e)
	if (!pp_get_num(f[0], PP_FIELD_END(0), 10, 0x7fffffff, &v))
		return false;
	h->fd = (int)v;
	if (!pp_get_num(f[1], PP_FIELD_END(1), 16, UINT64_MAX, &v) || v == 0)
		return false;
	h->info.cookie = v;
	if (!pp_get_num(f[2], PP_FIELD_END(2), 10, 3, &v))
		return false;
	h->info.kind = PP_FD_CONN;
	h->info.has_src = (v & 1) != 0;
	h->info.has_dst = (v & 2) != 0;
	if (h->info.has_src &&
	    !pp_get_addr(f[3], PP_FIELD_END(3), &h->info.src, &h->info.srclen))
		return false;
	if (h->info.has_dst &&
	    !pp_get_addr(f[4], PP_FIELD_END(4), &h->info.dst, &h->info.dstlen))
		return false;
	h->info.family = h->info.has_src ? h->info.src.sa.sa_family
					 : h->info.dst.sa.sa_family;
	for (i = 5; i < nf; i++) {
		eq = memchr(f[i], '=', (size_t)(PP_FIELD_END(i) - f[i]));
		if (eq == NULL)
			return false;
		for (t = 0; t < PP_XTLV_COUNT; t++)
			if (strlen(pp_labels[t]) == (size_t)(eq - f[i]) &&
			    memcmp(pp_labels[t], f[i], (size_t)(eq - f[i])) ==
				    0)
				break;
		if (t == PP_XTLV_COUNT ||
		    !pp_hex_decode(eq + 1, (size_t)(PP_FIELD_END(i) - eq - 1),
				   h->tlvs.val[t], PP_XTLV_MAX, &len))
			return false;
		h->tlvs.len[t] = (uint16_t)len;
		h->tlvs.present[t] = true;
	}
#undef PP_FIELD_END
	return true;
}

size_t
pp_handover_parse(const char *value,
		  void (*take)(const struct pp_handover *h, void *arg),
		  void *arg)
{
	struct pp_handover h;
	const char *s = value, *e;
	size_t n = 0;

	if (value == NULL)
		return 0;
	while (*s != '\0') {
		e = strchr(s, ';');
		if (e == NULL)
			e = s + strlen(s);
		if (pp_parse_entry(s, e, &h)) {
			take(&h, arg);
			n++;
		}
		s = *e == ';' ? e + 1 : e;
	}
	return n;
}

void
pp_tlv_envvalue(const uint8_t *v, size_t len, char *out, size_t cap)
{
	struct pp_out o = { out, cap, 0, false };
	size_t i;
	bool text = true;

	if (cap == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < len; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			text = false;
	if (text) {
		pp_put(&o, (const char *)v, len);
	} else {
		pp_put(&o, "hex:", 4);
		pp_put_hex(&o, v, len);
	}
}

void
pp_tcpvars_rewrite(const struct pp_fdinfo *info, bool sockname_real,
		   const struct pp_envops *env)
{
	static const char *const names[4] = {
		"TCPREMOTEIP",
		"TCPREMOTEPORT",
		"TCPLOCALIP",
		"TCPLOCALPORT",
	};
	char ip[INET6_ADDRSTRLEN], num[8];
	const char *old, *val;
	bool host = false;
	unsigned port;
	int side, k;

	for (side = 0; side < 2; side++) {
		if (side == 0 ? !info->has_src
			      : !info->has_dst || sockname_real)
			continue;
		pp_sa_ip(side == 0 ? &info->src : &info->dst, ip, sizeof(ip),
			 &port);
		snprintf(num, sizeof(num), "%u", port);
		for (k = 0; k < 2; k++) {
			val = k == 0 ? ip : num;
			old = env->get(env->arg, names[2 * side + k]);
			if (old == NULL || strcmp(old, val) == 0)
				continue;
			env->set(env->arg, names[2 * side + k], val);
			if (side == 0 && k == 0)
				host = true;
		}
	}
	/* Names looked up for the proxy do not describe the client. */
	if (host) {
		env->unset(env->arg, "TCPREMOTEHOST");
		env->unset(env->arg, "TCPREMOTEINFO");
	}
}

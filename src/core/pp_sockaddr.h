/*
 * pp_sockaddr.h - socket addresses (IPv4, IPv6, IPv4-mapped IPv6): one
 * comparable form, comparison, conversion between the two families and
 * the text for logs and variables (pp_sockaddr.c).
 *
 * Pure: no I/O, no state.  Every function takes the address with its
 * length and never reads past it; a NULL address, a short length or a
 * family it does not handle is refused (false) rather than guessed.
 */
#ifndef PP_SOCKADDR_H
#define PP_SOCKADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 socket address, either one in the same storage. */
union pp_inaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* Longest text pp_sa_fmt() writes for an IPv4 or IPv6 address. */
#define PP_SA_FMT_MAX (INET6_ADDRSTRLEN + 16)

/* Write the IPv4-mapped form (::ffff:a.b.c.d) of the 4-byte IPv4
 * address v4 (network order) into a. */
void pp_sa_map4(uint8_t a[16], const void *v4);

/* Is the 16-byte address a IPv4-mapped (::ffff:0:0/96)? */
bool pp_sa_is_mapped(const uint8_t a[16]);

/*
 * The comparable form of sa (len bytes, alignment not required): its
 * address as 16 bytes, IPv4 written IPv4-mapped, and its port in
 * network order.  False (a and *port untouched) for anything but a whole
 * AF_INET or AF_INET6 address.
 */
bool pp_sa_norm(const struct sockaddr *sa, socklen_t len, uint8_t a[16],
		uint16_t *port);

/*
 * The comparable form a (pp_sa_norm's) with port (network order) as a
 * socket of family fam reports it: an IPv4-mapped address as AF_INET for
 * an AF_INET socket, anything as AF_INET6 for an AF_INET6 one.  False
 * when fam cannot hold it (an IPv6 address for an AF_INET socket).
 */
bool pp_sa_from_norm(const uint8_t a[16], uint16_t port, int fam,
		     union pp_inaddr *out, socklen_t *outlen);

/* The port of a whole AF_INET or AF_INET6 address sa, in network order;
 * 0 for anything else. */
uint16_t pp_sa_port(const struct sockaddr *sa, socklen_t len);

/*
 * Is a (alen bytes) exactly b (blen bytes): same length, family, address
 * and port?  IPv4 and its mapped form differ here: this is the identity
 * test of two answers of the kernel for the same kind of socket.
 */
bool pp_sa_equal(const struct sockaddr *a, socklen_t alen,
		 const struct sockaddr *b, socklen_t blen);

/*
 * Do a and b name the same host (and, with port, the same port) once
 * normalised (pp_sa_norm): 192.0.2.1 and ::ffff:192.0.2.1 are the same.
 * False when either is not an IPv4 or IPv6 address.
 */
bool pp_sa_same(const struct sockaddr *a, socklen_t alen,
		const struct sockaddr *b, socklen_t blen, bool port);

/*
 * sa in the form a socket of family fam uses: IPv4 on an AF_INET6
 * socket becomes ::ffff:a.b.c.d, an IPv4-mapped address on an AF_INET
 * socket plain IPv4; an address already of that family is copied.
 * *out is zeroed first.  False when fam cannot hold it (IPv6 on an
 * AF_INET socket, another family).
 */
bool pp_sa_as_family(const struct sockaddr *sa, socklen_t len, int fam,
		     union pp_inaddr *out, socklen_t *outlen);

/*
 * sa (len bytes) for a log line: "192.0.2.1:5000", "[2001:db8::1]:5000",
 * "unix:/path", "unix:(unnamed)" or "(unknown)", cut to cap bytes with
 * the NUL.
 */
void pp_sa_fmt(const struct sockaddr *sa, socklen_t len, char *out, size_t cap);

/*
 * The address of a (AF_INET, else taken as AF_INET6) as text without
 * port ("192.0.2.1", "2001:db8::1") into ip[0..cap), and its port in
 * host order: what tcpserver's variables hold.
 */
void pp_sa_ip(const union pp_inaddr *a, char *ip, size_t cap, unsigned *port);

/*
 * Copy the address a (alen bytes) into a caller's buffer the way the
 * kernel does: at most *len bytes, then *len set to alen.  Nothing when
 * dst or len is NULL.
 */
void pp_sa_copy(struct sockaddr *dst, socklen_t *len, const struct sockaddr *a,
		socklen_t alen);

#endif /* PP_SOCKADDR_H */

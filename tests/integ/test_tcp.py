#!/usr/bin/env python3
"""test_tcp.py - the TCP and UNIX stream shim, row by row of the contract's
per-connection table (doc: CONTRACT.md, "What each connection gets").

The server is tests/helpers/srv with the library preloaded; it reports what
accept, getpeername and getsockname return, and echoes.  Every test here
asserts something only the shim can make true (an advertised address, an
abort, a header stripped), so each fails when the library is absent.

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_tcp.py [NAME...]
"""

import os
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import pptest as pp  # noqa: E402
from pptest import (CLIENT4, CLIENT6, SERVER4, SERVER6, SLOW, Fail,  # noqa
                    Skip, all_tlvs, check, connect, defer, eq, exchange,
                    expect_conn, good, refused, start_srv, test, tlv, v1, v2,
                    v2_draft)

PEER4 = "%s:5000" % CLIENT4
SOCK4 = "%s:25" % SERVER4
PEER6 = "[%s]:5000" % CLIENT6
SOCK6 = "[%s]:25" % SERVER6
MAPPED_PEER4 = "[::ffff:%s]:5000" % CLIENT4
MAPPED_SOCK4 = "[::ffff:%s]:25" % SERVER4


def env(**kw):
    """PP_* variables for the server: its port is PROXY-only."""
    e = {"PP_PORTS": "{port}"}
    e.update(kw)
    return e


def real_peer(r, host="127.0.0.1"):
    """The client's own address as the server would see it without a
    header."""
    if ":" in host:
        return "[%s]:%d" % (r.local[0], r.local[1])
    return "%s:%d" % (r.local[0], r.local[1])


def v4_on(srv, text):
    """How an IPv4 address:port shows on srv's listener family."""
    if srv.host in ("::", "::1"):
        host, _, port = text.rpartition(":")
        return "[::ffff:%s]:%s" % (host, port)
    return text


# ===== Valid PROXY headers: the advertised addresses =====

@test
def v1_tcp4_advertised_and_payload():
    srv = start_srv("-b", env=env())
    payload = os.urandom(65536)
    r = exchange(srv.target, v1() + payload)
    expect_conn(srv, r, peer=PEER4, sock=SOCK4, fam="AF_INET", payload=payload,
                peerlen=16, socklen=16, acclen=16)


@test
def v1_tcp4_read_first_server():
    # Without -b the server reads before it writes: the usual HTTP shape.
    srv = start_srv(env=env())
    payload = b"GET / HTTP/1.0\r\n\r\n"
    r = exchange(srv.target, v1(sport=80, dport=8080) + payload)
    expect_conn(srv, r, peer="%s:80" % CLIENT4, sock="%s:8080" % SERVER4,
                payload=payload)


@test(ipv6=True)
def v1_tcp6_advertised():
    srv = start_srv("-b", env=env(), host="::1")
    payload = os.urandom(65536)
    r = exchange(srv.target, v1("TCP6") + payload)
    expect_conn(srv, r, peer=PEER6, sock=SOCK6, fam="AF_INET6",
                payload=payload, peerlen=28, socklen=28, acclen=28)
    # The longest v1 header there is (104 bytes).
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    r = exchange(srv.target, v1("TCP6", full, full, 65535, 65535) + b"x")
    expect_conn(srv, r, peer="[%s]:65535" % full, sock="[%s]:65535" % full,
                payload=b"x")


@test
def v2_inet_advertised():
    srv = start_srv("-b", env=env())
    payload = os.urandom(65536)
    cases = [
        ("plain", v2()),
        ("all TLVs and CRC32C", v2(tlvs=all_tlvs(), crc=True)),
        ("CRC32C only", v2(crc=True)),
        # The transport describes the client's own connection: a UDP query
        # relayed over TCP keeps its addresses.
        ("DGRAM transport", v2(transport="DGRAM")),
    ]
    for what, hdr in cases:
        r = exchange(srv.target, hdr + payload)
        expect_conn(srv, r, peer=PEER4, sock=SOCK4, fam="AF_INET",
                    payload=payload, peerlen=16, socklen=16, what=what)


@test(ipv6=True)
def v2_inet6_advertised():
    srv = start_srv("-b", env=env(), host="::1")
    payload = os.urandom(65536)
    for what, hdr in [("plain", v2(family="INET6")),
                      ("TLVs+CRC", v2(family="INET6", tlvs=all_tlvs(),
                                      crc=True))]:
        r = exchange(srv.target, hdr + payload)
        expect_conn(srv, r, peer=PEER6, sock=SOCK6, fam="AF_INET6",
                    payload=payload, peerlen=28, socklen=28, what=what)


@test
def v2_read_first_server():
    srv = start_srv(env=env())
    r = exchange(srv.target, v2(tlvs=all_tlvs(), crc=True) + b"hello")
    expect_conn(srv, r, peer=PEER4, sock=SOCK4, payload=b"hello")


@test
def sockname_real():
    srv = start_srv("-b", env=env(PP_SOCKNAME="real"))
    here = "127.0.0.1:%d" % srv.port
    for what, hdr in [("v1", v1()), ("v2", v2())]:
        r = exchange(srv.target, hdr + b"data")
        expect_conn(srv, r, peer=PEER4, sock=here, payload=b"data",
                    what=what)
    srv = start_srv("-b", env=env(PP_SOCKNAME="proxied"))
    r = exchange(srv.target, v1() + b"data")
    expect_conn(srv, r, peer=PEER4, sock=SOCK4, what="proxied")


@test
def port_zero_is_valid():
    srv = start_srv("-b", env=env())
    r = exchange(srv.target, v1(sport=0, dport=0) + b"z")
    expect_conn(srv, r, peer="%s:0" % CLIENT4, sock="%s:0" % SERVER4,
                payload=b"z", what="v1")
    r = exchange(srv.target, v2(sport=0, dport=0) + b"z")
    expect_conn(srv, r, peer="%s:0" % CLIENT4, sock="%s:0" % SERVER4,
                payload=b"z", what="v2")


@test
def header_only_then_close():
    srv = start_srv("-b", env=env())
    for what, hdr in [("v1", v1()), ("v2", v2())]:
        r = exchange(srv.target, hdr)
        expect_conn(srv, r, peer=PEER4, payload=b"", what=what)


@test
def second_header_is_data():
    srv = start_srv("-b", env=env())
    second = v1(src="203.0.113.9", sport=9)
    r = exchange(srv.target, v1() + second + b"tail")
    expect_conn(srv, r, peer=PEER4, payload=second + b"tail", what="v1")
    second = v2(src="203.0.113.9", sport=9)
    r = exchange(srv.target, v2() + second + b"tail")
    expect_conn(srv, r, peer=PEER4, payload=second + b"tail", what="v2")


# ===== Valid headers that keep the real addresses =====

def real_address_headers():
    long_unknown = ("PROXY UNKNOWN " + "ffff:" * 7 + "ffff " + "ffff:" * 7 +
                    "ffff 65535 65535\r\n").encode()
    assert len(long_unknown) == 107
    return [
        ("v1 UNKNOWN short", b"PROXY UNKNOWN\r\n"),
        ("v1 UNKNOWN with addresses",
         b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"),
        ("v1 UNKNOWN 107 bytes", long_unknown),
        ("v2 LOCAL empty", v2("LOCAL", family="UNSPEC", transport="UNSPEC")),
        ("v2 LOCAL with addresses", v2("LOCAL")),
        ("v2 LOCAL with extra bytes", v2("LOCAL", family="UNSPEC",
                                         transport="UNSPEC",
                                         extra=os.urandom(20))),
        ("v2 LOCAL with TLVs", v2("LOCAL", tlvs=all_tlvs(), crc=True)),
        ("v2 PROXY UNSPEC", v2(family="UNSPEC", transport="UNSPEC")),
        ("v2 PROXY UNSPEC with bytes", v2(family="UNSPEC", transport="UNSPEC",
                                          extra=b"\x01" * 12)),
        ("v2 PROXY INET, UNSPEC transport", v2(transport="UNSPEC")),
        ("v2 PROXY UNIX stream", v2(family="UNIX")),
        ("v2 PROXY UNIX dgram", v2(family="UNIX", transport="DGRAM")),
    ]


@test
def real_addresses_for_local_unknown_unspec_unix():
    srv = start_srv("-b", env=env())
    here = "127.0.0.1:%d" % srv.port
    for what, hdr in real_address_headers():
        payload = os.urandom(1000)
        r = exchange(srv.target, hdr + payload)
        expect_conn(srv, r, peer=real_peer(r), sock=here, fam="AF_INET",
                    payload=payload, what=what)


# ===== Invalid headers: aborted, the next connection served =====

def v2_crc_bad():
    h = bytearray(v2(tlvs=all_tlvs(), crc=True))
    h[-1] ^= 0x01
    return bytes(h)


def v2_crc_stale():
    # A right checksum, then a byte of the addresses changed.
    h = bytearray(v2(crc=True))
    h[17] ^= 0x40
    return bytes(h)


def invalid_headers():
    ok = v1()
    sig = pp.V2_SIG
    return [
        ("garbage", b"GET / HTTP/1.0\r\n\r\n"),
        ("binary garbage", bytes(range(256))),
        ("PROXX", b"PROXX TCP4 192.0.2.1 198.51.100.7 5000 25\r\n"),
        ("lowercase", b"proxy TCP4 192.0.2.1 198.51.100.7 5000 25\r\n"),
        ("lone LF", ok[:-2] + b"\n"),
        ("lone CR", ok[:-2] + b"\rX\r\n"),
        ("CR CR LF", ok[:-2] + b"\r\r\n"),
        ("two spaces", b"PROXY  TCP4 192.0.2.1 198.51.100.7 5000 25\r\n"),
        ("trailing space", b"PROXY TCP4 192.0.2.1 198.51.100.7 5000 25 \r\n"),
        ("TCP5", b"PROXY TCP5 192.0.2.1 198.51.100.7 5000 25\r\n"),
        ("TCP4 with IPv6", b"PROXY TCP4 2001:db8::1 198.51.100.7 5000 25\r\n"),
        ("TCP6 with IPv4", b"PROXY TCP6 192.0.2.1 198.51.100.7 5000 25\r\n"),
        ("octet 256", b"PROXY TCP4 192.0.2.256 198.51.100.7 5000 25\r\n"),
        ("three octets", b"PROXY TCP4 192.0.2 198.51.100.7 5000 25\r\n"),
        ("port 65536", b"PROXY TCP4 192.0.2.1 198.51.100.7 65536 25\r\n"),
        ("negative port", b"PROXY TCP4 192.0.2.1 198.51.100.7 -1 25\r\n"),
        ("port letters", b"PROXY TCP4 192.0.2.1 198.51.100.7 5x 25\r\n"),
        ("missing port", b"PROXY TCP4 192.0.2.1 198.51.100.7 5000\r\n"),
        ("extra field", b"PROXY TCP4 192.0.2.1 198.51.100.7 5000 25 1\r\n"),
        ("PROXY alone", b"PROXY\r\n"),
        ("CRLF alone", b"\r\n"),
        ("v1 108 bytes", b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n"),
        ("v1 no CRLF in 107", b"PROXY UNKNOWN " + b"x" * 200),
        ("v2 signature off by one", sig[:-1] + b"\x0b" + v2()[12:]),
        ("v2 version 1", v2(ver_cmd=0x11)),
        ("v2 version 3", v2(ver_cmd=0x31)),
        ("v2 command 2", v2(ver_cmd=0x22)),
        ("v2 command 15", v2(ver_cmd=0x2F)),
        ("v2 family 4", v2(fam_byte=0x41)),
        ("v2 transport 3", v2(fam_byte=0x13)),
        ("v2 INET length 11", v2(length=11, addresses=v2()[16:27])),
        ("v2 INET6 length 35", v2(family="INET6", length=35,
                                  addresses=v2(family="INET6")[16:51])),
        ("v2 UNIX length 215", v2(family="UNIX", length=215,
                                  addresses=v2(family="UNIX")[16:231])),
        ("v2 TLV past end", v2(tlvs=tlv(1, b"h2")[:3] + b"\x00")),
        ("v2 TLV length past end", v2(tlvs=b"\x02\x00\x10abcd")),
        ("v2 TLV header cut", v2(tlvs=b"\x04\x00")),
        ("v2 bad CRC32C", v2_crc_bad()),
        ("v2 stale CRC32C", v2_crc_stale()),
        ("v2 draft layout without PP_V2_DRAFT", v2_draft()),
    ]


@test(timeout=60)
def invalid_headers_are_aborted():
    srv = start_srv("-b", env=env())
    for what, hdr in invalid_headers():
        refused(srv, hdr + b"payload", what=what)


@test
def truncated_headers_then_close():
    srv = start_srv("-b", env=env())
    h1 = v1()
    h2 = v2(tlvs=all_tlvs(), crc=True)
    cases = [("v1 cut at %d" % n, h1[:n]) for n in (1, 5, 6, 20, len(h1) - 1)]
    cases += [("v2 cut at %d" % n, h2[:n])
              for n in (1, 12, 13, 15, 16, 20, len(h2) - 1)]
    for what, data in cases:
        refused(srv, data, what=what)


@test
def versions_restricted():
    srv = start_srv("-b", env=env(PP_VERSIONS="2"))
    refused(srv, v1() + b"x", what="v1 on PP_VERSIONS=2",
            good_fn=lambda s, what: expect_conn(
                s, exchange(s.target, v2() + b"y"), peer=PEER4,
                payload=b"y", what=what))
    srv = start_srv("-b", env=env(PP_VERSIONS="1"))
    refused(srv, v2() + b"x", what="v2 on PP_VERSIONS=1")
    srv = start_srv("-b", env=env(PP_VERSIONS="1,2"))
    for what, hdr in [("v1", v1()), ("v2", v2())]:
        r = exchange(srv.target, hdr + b"x")
        expect_conn(srv, r, peer=PEER4, payload=b"x", what=what)


@test
def v2_draft_layout():
    srv = start_srv("-b", env=env(PP_V2_DRAFT="1"))
    here = "127.0.0.1:%d" % srv.port
    r = exchange(srv.target, v2_draft() + b"draft")
    expect_conn(srv, r, peer=PEER4, sock=SOCK4, payload=b"draft",
                what="draft PROXY INET")
    r = exchange(srv.target, v2_draft(cmd=0) + b"draft")
    expect_conn(srv, r, peer=real_peer(r), sock=here, payload=b"draft",
                what="draft LOCAL")
    r = exchange(srv.target, v2() + b"final")
    expect_conn(srv, r, peer=PEER4, payload=b"final", what="final layout")
    r = exchange(srv.target, v1() + b"v1")
    expect_conn(srv, r, peer=PEER4, payload=b"v1", what="v1")


# ===== Headers torn into segments =====

@test(timeout=60)
def torn_v1_every_offset():
    srv = start_srv("-b", env=env())
    hdr = v1()
    for k in range(1, len(hdr)):
        r = exchange(srv.target, hdr[k:] + b"after", pieces=[hdr[:k]],
                     pause=0.02)
        expect_conn(srv, r, peer=PEER4, sock=SOCK4, payload=b"after",
                    what="torn at %d" % k)


@test(timeout=60)
def torn_v2_with_tlvs():
    srv = start_srv("-b", env=env())
    hdr = v2(tlvs=all_tlvs(), crc=True)
    for k in list(range(1, len(hdr), 4)) + [12, 13, 14, 15, 16, 17]:
        r = exchange(srv.target, hdr[k:] + b"after", pieces=[hdr[:k]],
                     pause=0.02)
        expect_conn(srv, r, peer=PEER4, sock=SOCK4, payload=b"after",
                    what="torn at %d" % k)
    local = v2("LOCAL", family="UNSPEC", transport="UNSPEC")
    r = exchange(srv.target, b"after", pieces=[bytes([b]) for b in local],
                 pause=0.01)
    expect_conn(srv, r, peer=real_peer(r), payload=b"after",
                what="LOCAL byte by byte")


@test(timeout=60)
def v2_longest_header():
    # Length 65535: 12 address bytes, a NOOP TLV filling the rest.
    srv = start_srv("-b", env=env())
    payload = os.urandom(4096)
    for size in (600, 2048, 16384):
        hdr = v2(tlvs=tlv(pp.TLV_NOOP, b"\0" * (size - 16 - 12 - 3)))
        r = exchange(srv.target, hdr + payload)
        expect_conn(srv, r, peer=PEER4, payload=payload,
                    what="%d-byte header" % size)
    hdr = v2(tlvs=tlv(pp.TLV_NOOP, b"\0" * (65535 - 12 - 3)))
    eq(len(hdr), 16 + 65535, "header size")
    r = exchange(srv.target, hdr + payload)
    expect_conn(srv, r, peer=PEER4, payload=payload, what="one write")
    cuts = [0, 10, 16, 1000, 30000, 65000, len(hdr)]
    pieces = [hdr[a:b] for a, b in zip(cuts, cuts[1:])]
    r = exchange(srv.target, payload, pieces=pieces, pause=0.05)
    expect_conn(srv, r, peer=PEER4, payload=payload, what="in pieces")
    hdr = v2(tlvs=tlv(pp.TLV_NOOP, b"\0" * (65535 - 12 - 3 - 7)), crc=True)
    r = exchange(srv.target, hdr + payload)
    expect_conn(srv, r, peer=PEER4, payload=payload, what="with CRC32C")


# ===== Who may send a header =====

@test
def untrusted_source_refused():
    srv = start_srv("-b", env=env(PP_ALLOW="127.0.0.1", PP_LOG="info"))
    refused(srv, v1() + b"x", src="127.0.0.2", what="valid v1, untrusted")
    refused(srv, v2() + b"x", src="127.0.0.2", what="valid v2, untrusted")
    refused(srv, b"hello\r\n", src="127.0.0.2", what="no header, untrusted")
    srv.wait_line(r"refused.*untrusted|untrusted.*refused", stream="err")
    # An untrusted client that says nothing is not let in either.
    s = connect(srv.target, src="127.0.0.2")
    defer(s.close)
    status, dt, data = pp.wait_closed(s, 5 * SLOW)
    check(status in ("eof", "reset") and not data,
          "silent untrusted client: %s %r" % (status, data))
    good(srv)


@test(ipv6=True)
def untrusted_ipv6_source_refused():
    # On "::", 127.0.0.1 (trusted) and ::1 (not in PP_ALLOW) both reach it.
    srv = start_srv("-b", env=env(PP_ALLOW="127.0.0.0/8"), host="::")
    for hdr in (v1("TCP6"), v1(), v2(family="INET6")):
        r = exchange(("::1", srv.port), hdr + b"x")
        check(r.refused, "::1 not in PP_ALLOW: %r" % r)
    r = exchange(("127.0.0.1", srv.port), v1() + b"x")
    expect_conn(srv, r, peer=MAPPED_PEER4, payload=b"x", what="from 127.0.0.1")
    eq(len(srv.conn_lines()), 1, "conn lines")


@test
def default_allow_is_loopback():
    srv = start_srv("-b", env=env())
    for src in ("127.0.0.1", "127.0.0.9", "127.255.255.254"):
        r = exchange(srv.target, v1() + b"x", src=src)
        expect_conn(srv, r, peer=PEER4, payload=b"x", what=src)


@test
def allow_cidr_list():
    srv = start_srv("-b", env=env(PP_ALLOW="10.0.0.0/8, 127.0.0.8/29 ::1"))
    for src in ("127.0.0.8", "127.0.0.15"):
        r = exchange(srv.target, v1() + b"x", src=src)
        expect_conn(srv, r, peer=PEER4, payload=b"x", what=src)
    for src in ("127.0.0.7", "127.0.0.16"):
        r = exchange(srv.target, v1() + b"x", src=src)
        check(r.refused, "%s outside PP_ALLOW: %r" % (src, r))


@test
def direct_source_passes_untouched():
    srv = start_srv("-b", env=env(PP_ALLOW="127.0.0.1",
                                  PP_DIRECT="127.0.0.3, 127.0.0.16/28"))
    for src in ("127.0.0.3", "127.0.0.20"):
        data = v1() + b"plain data"
        r = exchange(srv.target, data, src=src)
        expect_conn(srv, r, peer=real_peer(r),
                    sock="127.0.0.1:%d" % srv.port, payload=data,
                    what="direct %s with a header" % src)
        r = exchange(srv.target, b"no header", src=src)
        expect_conn(srv, r, peer=real_peer(r), payload=b"no header",
                    what="direct %s without a header" % src)
    # Decided by address alone: a direct client that waits for the server
    # to speak first gets the banner at once.
    s = connect(srv.target, src="127.0.0.3")
    defer(s.close)
    t0 = time.monotonic()
    line = pp.read_line(s, timeout=2)
    fields = pp.parse_conn(line)
    check(fields is not None, "direct client got no banner: %r" % line)
    eq(fields["peer"], "127.0.0.3:%d" % s.getsockname()[1], "direct peer")
    check(time.monotonic() - t0 < 1.0 * SLOW, "banner came late")
    s.close()  # srv -m block serves one connection at a time
    good(srv)
    refused(srv, v1() + b"x", src="127.0.0.4", what="in neither list")


@test
def allow_wins_over_direct():
    srv = start_srv("-b", env=env(PP_ALLOW="127.0.0.4",
                                  PP_DIRECT="127.0.0.4,127.0.0.3"))
    r = exchange(srv.target, v1() + b"x", src="127.0.0.4")
    expect_conn(srv, r, peer=PEER4, payload=b"x", what="in both lists")
    r = exchange(srv.target, v1() + b"x", src="127.0.0.3")
    expect_conn(srv, r, peer=real_peer(r), payload=v1() + b"x",
                what="direct only")


@test
def trust_answer_covers_its_allow_entry_only():
    # Each thread remembers the last source it judged; a proxy's answer
    # holds for the PP_ALLOW entry that gave it, so the sources around
    # that entry's edges, in PP_DIRECT or in neither list, are judged
    # each on their own, in whatever order they come.
    for host in ("127.0.0.1", "::"):
        srv = start_srv("-b", host=host,
                        env=env(PP_ALLOW="127.0.0.8/29",
                                PP_DIRECT="127.0.0.0/24"))
        served = [0]

        def seen(text):
            return v4_on(srv, text)

        def proxied(src):
            r = exchange(("127.0.0.1", srv.port), v1() + b"x", src=src)
            expect_conn(srv, r, peer=seen(PEER4), payload=b"x",
                        what="%s on %s, in PP_ALLOW" % (src, host))
            served[0] += 1

        def direct(src):
            data = v1() + b"x"
            r = exchange(("127.0.0.1", srv.port), data, src=src)
            peer = "%s:%d" % r.local
            expect_conn(srv, r, peer=seen(peer), payload=data,
                        what="%s on %s, in PP_DIRECT" % (src, host))
            served[0] += 1

        def refused_from(src):
            # refused() counts the server's lines: wait for the last one.
            deadline = time.monotonic() + 5 * SLOW
            while (len(srv.conn_lines()) < served[0]
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            refused(srv, v1() + b"x", src=src, target=("127.0.0.1", srv.port),
                    what="%s on %s, in neither list" % (src, host),
                    good_fn=lambda srv, what: proxied("127.0.0.9"))

        for src in ("127.0.0.9", "127.0.0.14", "127.0.0.15", "127.0.0.8"):
            proxied(src)
        direct("127.0.0.16")
        proxied("127.0.0.12")
        direct("127.0.0.7")
        proxied("127.0.0.10")
        refused_from("127.0.1.1")
        proxied("127.0.0.11")
        srv.stop()


# ===== Timeouts =====

@test
def timeout_aborts_silent_client():
    srv = start_srv("-b", env=env(PP_TIMEOUT_MS="300", PP_LOG="info"))
    for what, first in [("silent", b""), ("half a header", v1()[:20]),
                        ("v2 signature only", pp.V2_SIG)]:
        s = connect(srv.target)
        defer(s.close)
        if first:
            s.sendall(first)
        status, dt, data = pp.wait_closed(s, 5 * SLOW)
        check(status in ("eof", "reset") and not data,
              "%s: not aborted: %s %r" % (what, status, data))
        check(0.2 <= dt <= 3.0 * SLOW,
              "%s: aborted after %.2fs, PP_TIMEOUT_MS=300" % (what, dt))
        s.close()
    srv.wait_line(r"refused.*timeout|timeout.*refused|timed out",
                  stream="err")
    good(srv)
    eq(len(srv.conn_lines()), 1, "conn lines")


@test
def default_timeout_waits_for_slow_header():
    # The default is 3 s: a header that starts after 1.5 s is still read.
    srv = start_srv("-b", env=env())
    s = connect(srv.target)
    defer(s.close)
    time.sleep(1.5)
    s.sendall(v1() + b"late")
    status, got = pp.pump(s, b"", timeout=5)
    r = pp.Result(status, got, s.getsockname(), 0)
    expect_conn(srv, r, peer=PEER4, payload=b"late")


# ===== Address families =====

@test(ipv6=True)
def v4_client_on_v6_listener():
    srv = start_srv("-b", env=env(), host="::")
    for what, hdr in [("v1", v1()), ("v2", v2())]:
        r = exchange(("127.0.0.1", srv.port), hdr + b"x")
        expect_conn(srv, r, peer=MAPPED_PEER4, sock=MAPPED_SOCK4,
                    fam="AF_INET6", peerlen=28, socklen=28, payload=b"x",
                    what=what)
    r = exchange(("127.0.0.1", srv.port), v1("TCP6") + b"x")
    expect_conn(srv, r, peer=PEER6, sock=SOCK6, payload=b"x",
                what="v6 header over a v4 connection")
    r = exchange(("127.0.0.1", srv.port), b"PROXY UNKNOWN\r\nx")
    expect_conn(srv, r, peer="[::ffff:127.0.0.1]:%d" % r.local[1],
                sock="[::ffff:127.0.0.1]:%d" % srv.port, payload=b"x",
                what="UNKNOWN over a v4 connection")
    r = exchange(("::1", srv.port), v1() + b"x")
    expect_conn(srv, r, peer=MAPPED_PEER4, payload=b"x", what="from ::1")


@test
def v6_client_on_v4_listener_refused():
    srv = start_srv("-b", env=env())
    refused(srv, v1("TCP6") + b"x", what="v1 TCP6 on an IPv4 socket")
    refused(srv, v2(family="INET6") + b"x", what="v2 INET6 on an IPv4 socket")


@test
def wildcard_v4_listener():
    srv = start_srv("-b", env=env(), host="0.0.0.0")
    r = exchange(srv.target, v1() + b"x")
    expect_conn(srv, r, peer=PEER4, sock=SOCK4, payload=b"x")


# ===== Which sockets are PROXY-only =====

@test
def socket_not_listed_passes_untouched():
    srv = start_srv("-b", "-m", "epoll", env=env(), extra_port=True)
    data = v1() + b"after"
    r = exchange(srv.extra_target, data)
    expect_conn(srv, r, peer=real_peer(r), sock="127.0.0.1:%d" % srv.extra,
                payload=data, what="second listener, not in PP_PORTS")
    good(srv, what="listed listener")
    cases = [("other address", "127.0.0.2:{port}"),
             ("udp entry", "{port}/udp"),
             ("other port", "1")]
    for what, ports in cases:
        srv = start_srv("-b", env={"PP_PORTS": ports})
        data = v2() + b"after"
        r = exchange(srv.target, data)
        expect_conn(srv, r, peer=real_peer(r), payload=data, what=what)


@test
def ports_entry_forms():
    for ports in ("127.0.0.1:{port}", "{port}/tcp", "1, {port} 2",
                  "127.0.0.1:{port}/tcp"):
        srv = start_srv("-b", env={"PP_PORTS": ports})
        good(srv, what="PP_PORTS=%s" % ports)
        srv.stop()


@test(ipv6=True)
def ports_entry_v6_forms():
    srv = start_srv("-b", env={"PP_PORTS": "[::1]:{port}"}, host="::1")
    good(srv, what="[::1]:port")
    srv = start_srv("-b", env={"PP_PORTS": "{port}"}, host="::")
    good(srv, what="port on ::")


# ===== Head of line: silent clients never hold up complete ones =====

def make_head_of_line_test(mode):
    def head_of_line():
        srv = start_srv("-b", "-m", mode, env=env(PP_TIMEOUT_MS="3000"))
        silent = []
        for _ in range(5):  # more than srv's 4 threads
            s = connect(srv.target)
            defer(s.close)
            silent.append(s)
        time.sleep(0.1)
        for i in range(3):
            t0 = time.monotonic()
            r = exchange(srv.target, v1(sport=4000 + i) + b"x", timeout=3)
            dt = time.monotonic() - t0
            expect_conn(srv, r, peer="%s:%d" % (CLIENT4, 4000 + i),
                        payload=b"x", what="client %d behind silent ones" % i)
            check(dt < 1.0 * SLOW, "served after %.2fs" % dt)
        for s in silent:
            s.setblocking(False)
            try:
                data = s.recv(100)
            except BlockingIOError:
                data = None
            check(data is None, "a silent client was let in: %r" % data)
        eq(len(srv.conn_lines()), 3, "conn lines")
    head_of_line.__name__ = "head_of_line_" + mode
    test(timeout=30)(head_of_line)


def make_trickle_test(mode):
    def trickle():
        srv = start_srv("-b", "-m", mode, env=env(PP_TIMEOUT_MS="6000"))
        hdr = v1(src="192.0.2.9", dst="198.51.100.9", sport=7, dport=8)
        result = []

        def slow_client():
            s = connect(srv.target, timeout=15)
            try:
                for b in hdr:
                    s.sendall(bytes([b]))
                    time.sleep(0.1)
                status, got = pp.pump(s, b"slow payload", timeout=5)
                result.append(pp.Result(status, got, s.getsockname(), 0))
            except OSError as e:
                result.append(e)
            finally:
                s.close()
        t = threading.Thread(target=slow_client, daemon=True)
        t.start()
        n = 0
        while t.is_alive():
            t0 = time.monotonic()
            good(srv, what="client %d during the trickle" % n)
            dt = time.monotonic() - t0
            check(dt < 1.0 * SLOW, "client %d served after %.2fs" % (n, dt))
            n += 1
            t.join(0.5)
        t.join()
        check(result and isinstance(result[0], pp.Result),
              "trickle client: %r" % result)
        expect_conn(srv, result[0], peer="192.0.2.9:7", sock="198.51.100.9:8",
                    payload=b"slow payload", what="trickled header")
    trickle.__name__ = "slow_trickle_" + mode
    test(timeout=40)(trickle)


for _mode in ("block", "epoll", "select", "threads", "fork"):
    make_head_of_line_test(_mode)
for _mode in ("block", "epoll", "select", "threads"):
    make_trickle_test(_mode)


def make_nonblocking_test(mode):
    def nonblocking_mixed():
        srv = start_srv("-b", "-m", mode,
                        env=env(PP_ALLOW="127.0.0.1", PP_TIMEOUT_MS="3000"))
        for src in ("127.0.0.1", "127.0.0.2"):
            for _ in range(3):
                s = connect(srv.target, src=src)
                defer(s.close)
        served = 0
        for i in range(20):
            r = exchange(srv.target, b"garbage\r\n")
            check(r.refused, "garbage %d: %r" % (i, r))
            s = connect(srv.target)
            s.sendall(v2()[:10])
            pp.rst_close(s)
            r = exchange(srv.target, v1() + b"x", src="127.0.0.2")
            check(r.refused, "untrusted %d: %r" % (i, r))
            good(srv, what="good %d" % i)
            served += 1
        time.sleep(0.2)
        bad = [ln for ln in srv.lines() if ln.startswith(("slow-accept",
                                                          "accept-error"))]
        slow = [ln for ln in bad if ln.startswith("slow-accept") and
                int(ln.split("=")[1]) > 100 * SLOW]
        errors = [ln for ln in bad if ln.startswith("accept-error")]
        check(not slow, "accept blocked: %r" % slow)
        check(not errors, "accept failed instead of EAGAIN: %r" % errors)
        eq(len(srv.conn_lines()), served, "conn lines")
    nonblocking_mixed.__name__ = "nonblocking_mixed_" + mode
    test(timeout=60)(nonblocking_mixed)


for _mode in ("epoll", "select"):
    make_nonblocking_test(_mode)


# ===== A blocking accept returns when the kernel's would have =====
#
# A server that waits for its blocking listener with select() or poll()
# (xinetd, inetd, sendmail, Python's socketserver) calls accept once per
# readable event.  When that accept finds only a connection the library
# refuses or keeps waiting for its header, it must return (ECONNABORTED)
# instead of blocking until the next good client arrives.

SOCKSERV = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        os.pardir, "helpers", "sockserv.py")
# A PP_DIRECT entry no client uses: it switches TCP_DEFER_ACCEPT off, so
# that clients that send nothing reach accept at once.
NO_DEFER = "192.0.2.254"


def shape_untrusted_byte(srv):
    try:
        s = connect(srv.target, src="127.0.0.2")
        defer(s.close)
        s.sendall(b"x")
    except (ConnectionResetError, BrokenPipeError):
        pass  # refused already, before the byte


def shape_silent_trusted(srv):
    s = connect(srv.target)
    defer(s.close)


def shape_health_check(srv):
    s = connect(srv.target)
    s.close()


NO_HOLD_SHAPES = [shape_untrusted_byte, shape_silent_trusted,
                  shape_health_check]


def sockserv(mode, *args, env=None, host="127.0.0.1"):
    """tests/helpers/sockserv.py under the library, listening."""
    port = pp.free_port(host)
    e = {k: v.replace("{port}", str(port)) for k, v in (env or {}).items()}
    srv = pp.Srv([sys.executable, SOCKSERV, mode, host, str(port)] +
                 list(args), e, True, host, port, None)
    srv.wait_line("^listening ", timeout=10)
    return srv


def no_hold(srv, shape, rounds=4):
    """After each bad connection of this shape, the server's accept
    returns at once (no "slow-accept": the server measures each call),
    and the next good client is served well before PP_TIMEOUT_MS (3 s),
    which a connection held until its timeout would take.  The bounds
    (250 ms for an accept call, 1 s for a client) tell a hold from a
    loaded machine; they are not a speed measurement (make bench)."""
    for i in range(rounds):
        shape(srv)
        # Long enough for an accept stuck until the next client to show.
        time.sleep(0.3)
        t0 = time.monotonic()
        good(srv, what="%s %d: next good client" % (shape.__name__, i))
        dt = time.monotonic() - t0
        check(dt < 1.0 * SLOW, "%s %d: next good client served after "
              "%.3fs" % (shape.__name__, i, dt))
    time.sleep(0.1)
    errors = [ln for ln in srv.lines() if ln.startswith("accept-error")
              and ln != "accept-error errno=ECONNABORTED"]
    errors += [ln for ln in srv.lines() if ln.startswith("slow-accept")
               and int(ln.split("=")[1]) > 250 * SLOW]
    check(not errors, "%s: %r" % (shape.__name__, errors[:3]))


def make_no_hold_test(mode, shape):
    def no_hold_test():
        srv = start_srv("-b", "-m", mode,
                        env=env(PP_ALLOW="127.0.0.1", PP_DIRECT=NO_DEFER,
                                PP_TIMEOUT_MS="3000"))
        no_hold(srv, shape)
    no_hold_test.__name__ = "no_hold_%s_%s" % (
        shape.__name__[len("shape_"):], mode)
    test(timeout=30)(no_hold_test)


for _mode in ("selectblock", "block", "threads"):
    for _shape in NO_HOLD_SHAPES:
        make_no_hold_test(_mode, _shape)


def make_socketserver_test(shape):
    def socketserver_no_hold():
        srv = sockserv("serve", env=env(PP_ALLOW="127.0.0.1",
                                        PP_DIRECT=NO_DEFER,
                                        PP_TIMEOUT_MS="3000"))
        no_hold(srv, shape)
        # socketserver swallows the error: nothing on its stderr but the
        # library's log lines.
        noise = [ln for ln in srv.lines("err")
                 if not ln.startswith("ppshim[")]
        check(not noise, "socketserver complained: %r" % noise[:3])
    socketserver_no_hold.__name__ = "no_hold_%s_python_socketserver" % (
        shape.__name__[len("shape_"):])
    test(timeout=30)(socketserver_no_hold)


for _shape in NO_HOLD_SHAPES:
    make_socketserver_test(_shape)


@test(timeout=30)
def blocking_accept_returns_after_refusal():
    # The kernel's accept returns for every connection; ours returns
    # ECONNABORTED for one it refused, rather than wait for another.
    srv = start_srv("-b", "-m", "selectblock",
                    env=env(PP_ALLOW="127.0.0.1"))
    before = len([ln for ln in srv.lines() if "ECONNABORTED" in ln])
    shape_untrusted_byte(srv)
    srv.wait_line("^accept-error errno=ECONNABORTED", timeout=1)
    after = len([ln for ln in srv.lines() if "ECONNABORTED" in ln])
    eq(after, before + 1, "ECONNABORTED returns for one refusal")
    eq(len(srv.conn_lines()), 0, "connections the server saw")


@test(timeout=30)
def plain_accept_loop_does_not_spin():
    # A thread that calls accept in a loop, nothing to wait on: one
    # ECONNABORTED per connection taken, never an error without one.
    srv = start_srv("-b", "-m", "block", env=env(PP_ALLOW="127.0.0.1",
                                                  PP_DIRECT=NO_DEFER))
    for _ in range(3):
        shape_untrusted_byte(srv)
    shape_silent_trusted(srv)
    good(srv)
    time.sleep(0.5)
    errors = [ln for ln in srv.lines() if ln.startswith("accept-error")]
    check(len(errors) <= 5, "accept returned %d errors for 4 bad "
          "connections (and the knocks): %r" % (len(errors), errors[:8]))
    check(all(ln == "accept-error errno=ECONNABORTED" for ln in errors),
          "errors: %r" % errors)


# Run by knock_without_ipv6_on_lo in a network namespace of its own,
# where lo has IPv4 only (Docker's default): a [::] listener's header in
# two pieces must reach the program through the knock.
NETNS_CHILD = r"""
import subprocess, sys, time
sys.path.insert(0, %r)
import pptest as pp
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w") as f:
    f.write("1")
try:
    srv = pp.start_srv("-b", host="::", env={"PP_PORTS": "{port}",
                                             "PP_TIMEOUT_MS": "8000"})
    hdr = pp.v1(sport=4242)
    r = pp.exchange(("127.0.0.1", srv.port), hdr[10:] + b"x",
                    pieces=[hdr[:10]], pause=0.1, timeout=4)
    print("line=%%s" %% r.line)
    print("elapsed=%%.3f" %% r.elapsed)
    for ln in srv.lines("err"):
        print("log=%%s" %% ln)
finally:
    pp.run_cleanups()
"""


@test(timeout=60)
def knock_without_ipv6_on_lo():
    pp.require(pp.caps.netns)
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c",
         "ip link set lo up && "
         "echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if probe.returncode != 0:
        raise Skip("cannot make a network namespace with IPv4-only lo: %s"
                   % probe.stdout.decode(errors="replace").strip()[-200:])
    code = NETNS_CHILD % os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", code],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=dict(os.environ), timeout=40 * SLOW)
    text = out.stdout.decode(errors="replace")
    lines = dict(ln.split("=", 1) for ln in text.splitlines()
                 if ln.startswith(("line=", "elapsed=")))
    check(out.returncode == 0, "namespace child failed: %s" % text[-600:])
    check(lines.get("line", "").startswith("conn ") and
          "peer=[::ffff:%s]:4242" % CLIENT4 in lines["line"],
          "torn header on [::] not served: %s" % text[-600:])
    # The pause between the pieces is 0.1 s; without a knock the
    # connection waits for another client, here forever.
    check(float(lines["elapsed"]) < 1.0 * SLOW, "served after %s s"
          % lines["elapsed"])
    check("cannot knock" not in text, "knock failed: %s" % text[-600:])


@test(timeout=20)
def daemon_reopens_stdio_after_fork():
    # A daemon closes 0, 1 and 2, forks, and reopens them on /dev/null:
    # whatever the library makes at the fork (a prefork group's ready
    # pool) must not take those numbers.
    srv = sockserv("daemonize", env=env(PP_ALLOW="127.0.0.1"))
    srv.wait_line("^reopened ", timeout=10)
    got = [ln for ln in srv.lines() if ln.startswith("reopened ")]
    eq(got, ["reopened fds=0,1,2"], "the daemon's three opens")
    r = exchange(srv.target, v1(sport=4322) + b"x")
    check(r.line == "conn peer=%s:4322" % CLIENT4, "client: %r" % r)


@test(timeout=30)
def rcvtimeo_is_a_deadline_across_refusals():
    # An untrusted connection every 0.7 s and a 1 s SO_RCVTIMEO: each
    # accept returns within the timeout (ECONNABORTED for a refusal,
    # EAGAIN when the time is up); none waits past it.
    srv = sockserv("rcvtimeo", "1000", env=env(PP_ALLOW="127.0.0.1"))
    stop = threading.Event()

    def untrusted():
        while not stop.is_set():
            try:
                s = connect(srv.target, src="127.0.0.2")
                s.sendall(b"x")
                s.close()
            except OSError:
                pass
            stop.wait(0.7)
    t = threading.Thread(target=untrusted, daemon=True)
    t.start()
    try:
        time.sleep(3.5)
    finally:
        stop.set()
        t.join(5)
    r = exchange(srv.target, v1(sport=4321) + b"x")
    check(r.line == "conn peer=%s:4321" % CLIENT4, "good client: %r" % r)
    calls = [ln for ln in srv.lines() if ln.startswith("accept ms=")]
    check(len(calls) >= 5, "accept returned only %d times in 3.5 s: %r"
          % (len(calls), calls))
    late = [ln for ln in calls if int(ln.split()[1][3:]) > 1100 * SLOW]
    check(not late, "accept waited past its 1 s timeout: %r" % late)
    kinds = {ln.split()[2] for ln in calls}
    check(kinds <= {"errno=ECONNABORTED", "errno=EAGAIN", "conn"},
          "accept results: %r" % calls)
    check("errno=ECONNABORTED" in kinds, "no refusal reported: %r" % calls)


# ===== Kernel-exact address results =====

@test
def truncated_address_buffers():
    for size in (0, 2, 8, 15):
        srv = start_srv("-b", "-a", str(size), env=env())
        r = exchange(srv.target, v1() + b"x")
        expect_conn(srv, r, payload=b"x", acclen=16, peerlen=16, socklen=16,
                    canary="ok", what="-a %d" % size)
        if size >= 8:
            # The first 8 bytes hold family, port and address.
            expect_conn(srv, r, peer=PEER4, sock=SOCK4, what="-a %d" % size)
        srv.stop()
    srv = start_srv("-b", "-a", "64", env=env())
    r = exchange(srv.target, v2() + b"x")
    expect_conn(srv, r, peer=PEER4, payload=b"x", acclen=16, peerlen=16,
                canary="ok", what="-a 64")


@test(ipv6=True)
def truncated_address_buffers_v6():
    srv = start_srv("-b", "-a", "8", env=env(), host="::1")
    r = exchange(srv.target, v1("TCP6") + b"x")
    expect_conn(srv, r, peer="[::]:5000", sock="[::]:25", check_acc=False,
                payload=b"x", acclen=28, peerlen=28, socklen=28, canary="ok")
    srv = start_srv("-b", "-a", "24", env=env(), host="::1")
    r = exchange(srv.target, v1("TCP6") + b"x")
    expect_conn(srv, r, peer=PEER6, sock=SOCK6, payload=b"x", acclen=28,
                peerlen=28, socklen=28, canary="ok", what="-a 24")
    srv = start_srv("-b", "-a", "16", env=env(), host="::")
    r = exchange(("127.0.0.1", srv.port), v1() + b"x")
    expect_conn(srv, r, payload=b"x", acclen=28, peerlen=28, socklen=28,
                canary="ok", what="v4-mapped, -a 16")


@test
def null_accept_address():
    srv = start_srv("-b", "-N", env=env())
    r = exchange(srv.target, v1() + b"x")
    expect_conn(srv, r, peer=PEER4, sock=SOCK4, payload=b"x", acc="null")
    srv = start_srv("-b", "-N", "-m", "epoll", env=env())
    r = exchange(srv.target, v2() + b"x")
    expect_conn(srv, r, peer=PEER4, payload=b"x", acc="null", what="epoll")


@test
def accept4_flags_honoured():
    for flags, want in [("nonblock,cloexec", "nonblock,cloexec"),
                        ("cloexec", "cloexec"), ("nonblock", "nonblock"),
                        ("0", "none")]:
        for mode in ("block", "threads"):
            srv = start_srv("-b", "-f", flags, "-m", mode, env=env())
            r = exchange(srv.target, v1() + b"x")
            expect_conn(srv, r, peer=PEER4, payload=b"x", flags=want,
                        what="-f %s -m %s" % (flags, mode))
            srv.stop()
    srv = start_srv("-b", "-f", "cloexec", "-m", "epoll", env=env())
    r = exchange(srv.target, v1() + b"x")
    expect_conn(srv, r, peer=PEER4, payload=b"x", flags="nonblock,cloexec",
                what="epoll")


# ===== The addresses follow the connection =====

@test
def fork_dup2_onto_stdio():
    srv = start_srv("-b", "-m", "fork", env=env())
    payload = os.urandom(65536)
    for what, hdr in [("v1", v1()), ("v2", v2(tlvs=all_tlvs(), crc=True))]:
        r = exchange(srv.target, hdr + payload)
        expect_conn(srv, r, peer=PEER4, sock=SOCK4, payload=payload, fd=0,
                    what=what)
    srv = start_srv("-b", "-m", "fork", env=env(PP_SOCKNAME="real"))
    r = exchange(srv.target, v1() + b"x")
    expect_conn(srv, r, peer=PEER4, sock="127.0.0.1:%d" % srv.port,
                payload=b"x", what="PP_SOCKNAME=real")


@test
def high_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 8192:
        raise Skip("RLIMIT_NOFILE hard limit %d" % hard)
    for mode in ("block", "epoll"):
        srv = start_srv("-b", "-m", mode, "-F", "5000", "-D", "6000",
                        env=env())
        srv.wait_line(r"^listening .*fd=5000")
        # Distinct source ports: identical conn lines could be matched
        # against each other while the second one is still in flight.
        for what, sport, hdr_fn in [("v1", 5101, v1), ("v2", 5102, v2)]:
            r = exchange(srv.target, hdr_fn(sport=sport) + b"x")
            expect_conn(srv, r, peer="%s:%d" % (CLIENT4, sport), sock=SOCK4,
                        payload=b"x", what="%s %s" % (mode, what))
            check(int(r.fields["fd"]) >= 6000, "fd %s" % r.fields["fd"])
        refused(srv, b"garbage", what=mode + " garbage")
        srv.stop()


@test
def reused_descriptor_reports_real_addresses():
    # epoll mode closes each connection when done, so the next accepted one
    # gets the same descriptor number; on the unlisted listener it must
    # report its own addresses.
    srv = start_srv("-b", "-m", "epoll", env=env(), extra_port=True)
    for i in range(3):
        r = exchange(srv.target, v1() + b"x")
        expect_conn(srv, r, peer=PEER4, payload=b"x", what="proxied %d" % i)
        fd = r.fields["fd"]
        r = exchange(srv.extra_target, b"plain")
        expect_conn(srv, r, peer=real_peer(r),
                    sock="127.0.0.1:%d" % srv.extra, payload=b"plain",
                    what="unlisted %d" % i)
        eq(r.fields["fd"], fd, "descriptor reused")


def make_signal_test(mode):
    def signals():
        # SIGALRM every 20 ms without SA_RESTART while headers trickle in:
        # accept may fail with EINTR, but no connection is lost.
        srv = start_srv("-b", "-m", mode, "-s", "20",
                        env=env(PP_TIMEOUT_MS="5000"))
        hdr = v2(tlvs=all_tlvs(), crc=True)
        for i in range(5):
            r = exchange(srv.target, hdr[9:] + b"s%d" % i, pieces=[hdr[:9]],
                         pause=0.15)
            expect_conn(srv, r, peer=PEER4, payload=b"s%d" % i,
                        what="torn header %d" % i)
            good(srv, what="whole header %d" % i)
        errors = [ln for ln in srv.lines() if ln.startswith("accept-error")
                  and "EINTR" not in ln and "ECONNABORTED" not in ln]
        check(not errors, "accept failed: %r" % errors)
    signals.__name__ = "signals_lose_no_connection_" + mode
    test(timeout=30)(signals)


for _mode in ("block", "threads", "epoll"):
    make_signal_test(_mode)


# ===== UNIX stream listeners =====

def unix_srv(*args, **kw):
    path = os.path.join(pp.tempdir(), "sock")
    e = {"PP_PORTS": "unix:{path}"}
    e.update(kw)
    return start_srv(*args, env=e, unix=path)


def unix_local_good(srv, what="LOCAL"):
    r = exchange(srv.target, v2("LOCAL") + b"local")
    expect_conn(srv, r, peer="unix:", sock="unix:" + srv.path,
                fam="AF_UNIX", payload=b"local", what=what)


@test
def unix_real_addresses():
    srv = unix_srv("-b", PP_ALLOW="10.9.9.9")  # every unix peer is trusted
    unix_local_good(srv)
    r = exchange(srv.target, b"PROXY UNKNOWN\r\nx")
    expect_conn(srv, r, peer="unix:", sock="unix:" + srv.path, payload=b"x",
                what="v1 UNKNOWN")
    r = exchange(srv.target, v2(family="UNIX") + b"x")
    expect_conn(srv, r, peer="unix:", payload=b"x", what="v2 UNIX family")


@test
def unix_invalid_aborted():
    srv = unix_srv("-b")
    for what, hdr in [("garbage", b"garbage\r\n"), ("bad CRC", v2_crc_bad()),
                      ("truncated", v2()[:14])]:
        refused(srv, hdr, what=what, good_fn=unix_local_good)


@test
def unix_inet_header_advertised():
    # LEAD-CHECK: the contract hands the advertised addresses to the
    # server; on a UNIX listener that means getpeername/getsockname return
    # AF_INET/AF_INET6 addresses (srv's buffer is a sockaddr_storage).
    # Adjust here if the contract is read otherwise.
    srv = unix_srv("-b")
    for what, hdr in [("v1 TCP4", v1()), ("v2 INET", v2())]:
        r = exchange(srv.target, hdr + b"x")
        expect_conn(srv, r, peer=PEER4, sock=SOCK4, fam="AF_INET",
                    peerlen=16, socklen=16, payload=b"x", what=what)
    r = exchange(srv.target, v2(family="INET6") + b"x")
    expect_conn(srv, r, peer=PEER6, sock=SOCK6, fam="AF_INET6", peerlen=28,
                payload=b"x", what="v2 INET6")


@test
def unix_not_listed_untouched():
    tmp = pp.tempdir()
    listed = os.path.join(tmp, "listed")
    ports = "unix:%s" % listed
    other = start_srv("-b", env={"PP_PORTS": ports},
                      unix=os.path.join(tmp, "other"))
    data = v2() + b"x"
    r = exchange(other.target, data)
    expect_conn(other, r, peer="unix:", payload=data, what="not listed")
    srv = start_srv("-b", env={"PP_PORTS": ports}, unix=listed)
    unix_local_good(srv, what="listed")


# ===== Load =====

@test(timeout=120)
def concurrency_1000_distinct_clients():
    total = 1000 // pp.LOAD_DIV
    srv = start_srv("-b", "-m", "threads", "-t", "32", env=env())
    errors = []
    jobs = list(range(total))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not jobs or len(errors) > 5:
                    return
                i = jobs.pop()
            src = "10.%d.%d.%d" % ((i >> 8) & 255, i & 255, 1 + i % 200)
            sport = 1024 + i
            if i % 3 == 0:
                hdr = v1(src=src, sport=sport)
            else:
                hdr = v2(src=src, sport=sport, tlvs=all_tlvs(),
                         crc=(i % 3 == 1))
            payload = os.urandom(1 + i % 3000)
            try:
                r = exchange(srv.target, hdr + payload, timeout=20)
                f = r.fields or {}
                want = "%s:%d" % (src, sport)
                if f.get("peer") != want or f.get("acc") != want or \
                        r.rest != payload:
                    raise Fail("client %d: want %s, got %r" % (i, want, r))
            except Exception as e:
                with lock:
                    errors.append(str(e))
    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "; ".join(errors[:5]))
    deadline = time.monotonic() + 5 * SLOW
    while len(srv.conn_lines()) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    eq(len(srv.conn_lines()), total, "conn lines")


def bad_garbage(srv):
    r = exchange(srv.target, b"SSH-2.0-x\r\n")
    check(r.refused, "garbage: %r" % r)


def bad_rst_mid_header(srv):
    s = connect(srv.target)
    s.sendall(v2(tlvs=all_tlvs())[:30])
    pp.rst_close(s)


def bad_truncated(srv):
    r = exchange(srv.target, v1()[:25])
    check(r.refused, "truncated: %r" % r)


def bad_untrusted(srv):
    r = exchange(srv.target, v1() + b"x", src="127.0.0.2")
    check(r.refused, "untrusted: %r" % r)


def bad_crc(srv):
    r = exchange(srv.target, v2_crc_bad())
    check(r.refused, "bad crc: %r" % r)


def bad_silent_rst(srv):
    s = connect(srv.target)
    pp.rst_close(s)


BAD_KINDS = [bad_garbage, bad_rst_mid_header, bad_truncated, bad_untrusted,
             bad_crc, bad_silent_rst]


def make_flat_test(mode):
    def resources_flat():
        srv = start_srv("-b", "-m", mode, "-t", "8",
                        env=env(PP_ALLOW="127.0.0.1", PP_TIMEOUT_MS="500"))

        def batch(n, nthreads):
            errors = []

            def run(k):
                try:
                    for i in range(k, n, nthreads):
                        BAD_KINDS[i % len(BAD_KINDS)](srv)
                except Exception as e:
                    errors.append(str(e))
            ts = [threading.Thread(target=run, args=(k,), daemon=True)
                  for k in range(nthreads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            check(not errors, "; ".join(errors[:3]))

        def settle():
            # Past PP_TIMEOUT_MS, so that held headers have been dropped.
            time.sleep(1.0 * min(SLOW, 4))
            for _ in range(3):
                good(srv)
            time.sleep(0.2)
        batch(60, 6)
        settle()
        fds0, rss0 = srv.fd_count(), srv.rss_kib()
        batch(1000 // pp.LOAD_DIV, 10)
        settle()
        fds1, rss1 = srv.fd_count(), srv.rss_kib()
        eq(len(srv.conn_lines()), 6, "conn lines (good clients only)")
        check(fds1 <= fds0 + 2, "descriptors grew: %d -> %d" % (fds0, fds1))
        if SLOW == 1:
            check(rss1 <= rss0 + 2048,
                  "RSS grew: %d -> %d KiB" % (rss0, rss1))
    resources_flat.__name__ = "fds_and_memory_flat_" + mode
    test(timeout=120)(resources_flat)


for _mode in ("epoll", "threads"):
    make_flat_test(_mode)


# ===== Configuration =====

CONFIG_ERRORS = [
    ("PP_ALLOW", "10.0.0.0/33"),
    ("PP_ALLOW", "300.1.1.1"),
    ("PP_DIRECT", "1.2.3.4/40"),
    ("PP_PORTS", "70000"),
    ("PP_PORTS", "80/sctp"),
    ("PP_TIMEOUT_MS", "abc"),
    ("PP_LOG", "loud"),
    ("PP_LOG_TARGET", "file"),
    ("PP_VERSIONS", "3"),
    ("PP_SOCKNAME", "fake"),
]


@test(timeout=60)
def config_errors_exit_78():
    for var, token in CONFIG_ERRORS:
        e = {"PP_PORTS": "25"}
        e[var] = token
        p = pp.Proc([pp.SRV, "-p", str(pp.free_port())], env=e)
        rc = p.wait_exit(10)
        what = "%s=%s" % (var, token)
        eq(rc, pp.EX_CONFIG, what + ": exit status")
        eq(p.lines(), [], what + ": srv's main ran")
        msgs = p.log_lines()
        check(len(msgs) == 1, "%s: want one message, got %r" % (what, msgs))
        check(var in msgs[0] and token in msgs[0],
              "%s: message does not name it: %r" % (what, msgs[0]))


@test
def config_valid_forms_start():
    srv = start_srv("-b", env={
        "PP_PORTS": " {port}/tcp, 127.0.0.1:1/udp [::1]:2 unix:/tmp/x ",
        "PP_ALLOW": "10.0.0.0/8, 127.0.0.1 ::1 fd00::/8",
        "PP_DIRECT": "192.0.2.7",
        "PP_TIMEOUT_MS": "1000", "PP_VERSIONS": "1,2",
        "PP_SOCKNAME": "proxied", "PP_LOG": "debug",
        "PP_LOG_TARGET": "stderr", "PP_V2_DRAFT": "0", "PP_INHERIT": "0"})
    good(srv)


@test
def ports_unset_or_empty_warns_once():
    for what, e in [("unset", {}), ("empty", {"PP_PORTS": ""})]:
        srv = start_srv("-b", env=e)
        data = v1() + b"x"
        r = exchange(srv.target, data)
        expect_conn(srv, r, peer=real_peer(r), payload=data, what=what)
        r = exchange(srv.target, data)
        expect_conn(srv, r, peer=real_peer(r), payload=data, what=what)
        srv.stop()
        msgs = srv.log_lines()
        if pp.VALGRIND:
            # valgrind's launcher loads the library too, same PID.
            msgs = sorted(set(msgs))
        check(len(msgs) == 1 and "PP_PORTS" in msgs[0],
              "%s: want one warning naming PP_PORTS, got %r" % (what, msgs))


@test
def logging_levels_and_targets():
    srv = start_srv("-b", env=env(PP_LOG="info"))
    good(srv)
    srv.wait_line(CLIENT4.replace(".", r"\."), stream="err")
    refused(srv, b"garbage\r\n", what="garbage")
    srv.wait_line("refused", stream="err")
    for level in ("none",):
        srv = start_srv("-b", env=env(PP_LOG=level))
        good(srv)
        refused(srv, b"garbage\r\n", what="garbage, PP_LOG=" + level)
        time.sleep(0.1)
        eq(srv.log_lines(), [], "PP_LOG=%s output" % level)
    srv = start_srv("-b", env=env(PP_LOG="info", PP_LOG_TARGET="syslog"))
    good(srv)
    refused(srv, b"garbage\r\n", what="garbage, syslog")
    time.sleep(0.1)
    eq(srv.log_lines(), [], "stderr with PP_LOG_TARGET=syslog")


if __name__ == "__main__":
    pp.main("test_tcp")

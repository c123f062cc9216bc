#!/usr/bin/env python3
"""test_udp.py - PROXY-only UDP sockets (CONTRACT.md, the UDP paragraph).

The server is tests/helpers/udpsrv (and udpsrv_fortify, the same built with
_FORTIFY_SOURCE=2) with the library preloaded; it prints one line per
datagram with the source its receive call reported and echoes
"src=ADDR:PORT " + payload to that source.  The test client plays the proxy:
it sends PROXY v2 datagrams from a loopback address and expects the echo
back, without a header.  Every test asserts something only the shim makes
true, so each fails when the library is absent.  The last tests put dnsdist
(useProxyProtocol) in front of dnsmasq under the shim, when both are
installed.

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_udp.py [NAME...]
"""

import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pptest as pp  # noqa: E402
from pptest import (CLIENT4, CLIENT6, SLOW, Fail, Skip,  # noqa
                    all_tlvs, check, defer, eq, test, tlv, v1, v2)

UDPSRV = os.path.join(pp.BUILDDIR, "tests", "helpers", "udpsrv")
UDPSRV_FORTIFY = os.path.join(pp.BUILDDIR, "tests", "helpers",
                              "udpsrv_fortify")
CLIENT4_SEEN = "%s:5000" % CLIENT4
MAPPED4 = "[::ffff:%s]:5000" % CLIENT4
CLIENT6_SEEN = "[%s]:5000" % CLIENT6


def hdr(cmd="PROXY", family="INET", transport="DGRAM", sport=5000, **kw):
    """A v2 header as dnsdist sends it (DGRAM transport)."""
    return v2(cmd=cmd, family=family, transport=transport, sport=sport,
              dport=53, **kw)


def local_hdr():
    """dnsdist's health-check header: LOCAL, family 0, length 0."""
    return v2(cmd="LOCAL", family="UNSPEC", transport="UNSPEC")


def udp_free_port(host="127.0.0.1"):
    fam = pp.family_of(host)
    for _ in range(200):
        port = random.randint(20000, 32000)
        try:
            with socket.socket(fam, socket.SOCK_DGRAM) as s:
                s.bind((host, port))
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.bind((host, port))
            return port
        except OSError:
            continue
    raise Fail("no free UDP port found")


class Udpsrv(pp.Proc):
    def dgrams(self):
        return [ln for ln in self.lines() if ln.startswith("dgram ")]

    def fields(self, line):
        out = {}
        for word in line.split()[1:]:
            k, _, v = word.partition("=")
            out[k] = v
        return out

    def wait_dgram(self, start, timeout=5):
        """The next dgram line after the count start; returns its fields."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            d = self.dgrams()
            if len(d) > start:
                return self.fields(d[start])
            if time.monotonic() > deadline:
                raise Fail("udpsrv: no datagram reported%s" % self.tail())
            if not self.alive():
                raise Fail("udpsrv exited%s" % self.tail())
            time.sleep(0.01)


def start_udp(*args, env=None, host="127.0.0.1", port=None, binary=None,
              preload=True, pp_ports=None):
    """Starts udpsrv on host (and a free port); PP_PORTS is PORT/udp unless
    pp_ports (may contain {port}) says otherwise."""
    binary = binary or UDPSRV
    if not os.access(binary, os.X_OK):
        raise Skip("%s not built" % binary)

    def launch(p):
        e = {"PP_PORTS": (pp_ports or "{port}/udp").replace("{port}",
                                                           str(p))}
        e.update(env or {})
        srv = Udpsrv([binary, "-l", host, "-p", str(p)] + list(args), e,
                     preload=preload, name=os.path.basename(binary))
        srv.port = p
        srv.host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return srv
    srv, _ = pp.start_on_free_port(
        launch, pp.wait_listening_line, port,
        lambda: udp_free_port(host if host not in ("0.0.0.0", "::")
                              else "127.0.0.1"), what="udpsrv")
    return srv


def client(src="127.0.0.1", family=None):
    fam = family or pp.family_of(src)
    c = socket.socket(fam, socket.SOCK_DGRAM)
    c.bind((src, 0))
    c.settimeout(3 * SLOW)
    defer(c.close)
    return c


def send(c, srv, data, host=None):
    c.sendto(data, (host or srv.host, srv.port))


def reply(c, timeout=3):
    c.settimeout(timeout * SLOW)
    try:
        data, frm = c.recvfrom(70000)
    except socket.timeout:
        raise Fail("no reply reached the client")
    return data, frm


def no_reply(c, timeout=0.3):
    c.settimeout(timeout)
    try:
        data, _ = c.recvfrom(70000)
    except socket.timeout:
        return
    raise Fail("unexpected reply %r" % data[:80])


def expect(srv, start, src=None, data=None, **fields):
    f = srv.wait_dgram(start)
    if src is not None:
        eq(f.get("src"), src, "reported source")
    if data is not None:
        eq(f.get("data"), data, "payload the server got")
    for k, v in fields.items():
        eq(f.get(k), str(v), k)
    return f


def shim_loaded(proc):
    """Is the library mapped in proc (for the tests where the shim must
    change nothing)?"""
    try:
        with open("/proc/%d/maps" % proc.pid) as f:
            return os.path.basename(pp.LIB) in f.read()
    except OSError:
        return False


def real(c):
    host, port = c.getsockname()[:2]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


# ===== The advertised source, in every receive call =====

def advertised_case(mode, binary=None, replies=True):
    srv = start_udp("-m", mode, binary=binary)
    c = client()
    send(c, srv, hdr() + b"hello")
    noaddr = mode in ("recv", "read")
    expect(srv, 0, src="-" if noaddr else CLIENT4_SEEN, data="hello", len=5)
    if replies:
        data, frm = reply(c)
        eq(data, b"src=%s hello" % CLIENT4_SEEN.encode(), "echo")
        eq(frm[1], srv.port, "reply source port")
    # A second datagram: the program sees exactly the good ones.
    send(c, srv, b"no header at all")
    send(c, srv, hdr(sport=6000) + b"again")
    f = expect(srv, 1, data="again")
    if not noaddr:
        eq(f["src"], "%s:6000" % CLIENT4, "second source")
    eq(len(srv.dgrams()), 2, "datagrams the program saw")


@test
def recvfrom_advertised_and_reply():
    advertised_case("recvfrom")


@test
def recvmsg_pktinfo_advertised_and_reply():
    srv = start_udp("-m", "recvmsg")
    c = client()
    send(c, srv, hdr() + b"hello")
    # IP_PKTINFO keeps the real local address: the reply leaves from it.
    expect(srv, 0, src=CLIENT4_SEEN, data="hello", dst="127.0.0.1",
           alen=16, trunc=0)
    data, frm = reply(c)
    eq(data, b"src=%s hello" % CLIENT4_SEEN.encode(), "echo")
    eq(frm, ("127.0.0.1", srv.port), "reply source")


@test
def recvmmsg_sendmmsg_advertised_and_reply():
    advertised_case("mmsg")


@test
def recv_advertised_payload():
    advertised_case("recv", replies=False)


@test
def read_advertised_payload():
    advertised_case("read", replies=False)


@test
def fortified_recvfrom():
    advertised_case("recvfrom", binary=UDPSRV_FORTIFY)


@test
def fortified_recv():
    advertised_case("recv", binary=UDPSRV_FORTIFY, replies=False)


@test
def fortified_read():
    advertised_case("read", binary=UDPSRV_FORTIFY, replies=False)


@test
def fortified_binary_imports_chk():
    if not shutil.which("nm"):
        raise Skip("nm not found")
    if not os.access(UDPSRV_FORTIFY, os.X_OK):
        raise Skip("udpsrv_fortify not built")
    out = subprocess.run(["nm", "-D", UDPSRV_FORTIFY], capture_output=True,
                         text=True, timeout=10).stdout
    missing = [n for n in ("__recv_chk", "__recvfrom_chk", "__read_chk")
               if n not in out]
    if missing:
        raise Skip("not fortified here (an -O0 build?): %s" % missing)


@test
def connected_socket_write_goes_to_proxy():
    # connect() to the advertised client connects to the proxy instead:
    # write() replies reach it, read() still strips headers.
    srv = start_udp("-m", "connect")
    c = client()
    send(c, srv, hdr() + b"first")
    expect(srv, 0, src=CLIENT4_SEEN, data="first")
    data, _ = reply(c)
    eq(data, b"src=%s first" % CLIENT4_SEEN.encode(), "first echo")
    send(c, srv, hdr() + b"second")
    expect(srv, 1, data="second", connected=1)
    data, _ = reply(c)
    eq(data, b"src=%s second" % CLIENT4_SEEN.encode(), "second echo")


# ===== Families =====

@test(ipv6=True)
def inet6_on_v6_socket():
    srv = start_udp("-m", "recvmsg", host="::1")
    c = client("::1")
    send(c, srv, hdr(family="INET6") + b"six")
    expect(srv, 0, src=CLIENT6_SEEN, data="six", alen=28, dst="::1")
    data, frm = reply(c)
    eq(data, b"src=%s six" % CLIENT6_SEEN.encode(), "echo")


@test(ipv6=True)
def v4_on_v6_socket_is_mapped():
    srv = start_udp(host="::")
    c = client("127.0.0.1")
    send(c, srv, hdr() + b"mapped", host="127.0.0.1")
    expect(srv, 0, src=MAPPED4, data="mapped", alen=28)
    data, _ = reply(c)
    eq(data, b"src=%s mapped" % MAPPED4.encode(), "echo")


@test
def inet6_client_on_v4_socket_dropped():
    srv = start_udp()
    c = client()
    send(c, srv, hdr(family="INET6") + b"cannot")
    send(c, srv, hdr() + b"next")
    expect(srv, 0, src=CLIENT4_SEEN, data="next")


# ===== LOCAL and the other real-address cases =====

@test
def local_health_check_keeps_real_source():
    srv = start_udp()
    c = client()
    query = bytes.fromhex("12340100000100000000000001610474657374"
                          "0000010001")
    send(c, srv, local_hdr() + query)
    f = expect(srv, 0, src=real(c), len=len(query))
    data, _ = reply(c)
    eq(data, b"src=%s " % real(c).encode() + query, "echo")
    check(f["data"].startswith("\\x124"), "query bytes intact")


@test
def unspec_family_and_tlvs():
    srv = start_udp()
    c = client()
    send(c, srv, hdr(family="UNSPEC", transport="UNSPEC") + b"unspec")
    expect(srv, 0, src=real(c), data="unspec")
    send(c, srv, hdr(tlvs=all_tlvs(), crc=True) + b"tlvs")
    expect(srv, 1, src=CLIENT4_SEEN, data="tlvs")


@test
def stream_transport_uses_addresses():
    # As on TCP, the transport describes the client's own connection.
    srv = start_udp()
    c = client()
    send(c, srv, hdr(transport="STREAM") + b"relayed")
    expect(srv, 0, src=CLIENT4_SEEN, data="relayed")


@test
def draft_layout_only_with_pp_v2_draft():
    draft = pp.v2_draft(fam_byte=0x12, sport=5000, dport=53)
    srv = start_udp()
    c = client()
    send(c, srv, draft + b"draft-off")
    send(c, srv, hdr() + b"final")
    expect(srv, 0, src=CLIENT4_SEEN, data="final")
    srv.stop()
    srv = start_udp(env={"PP_V2_DRAFT": "1"})
    send(c, srv, draft + b"draft-on")
    expect(srv, 0, src=CLIENT4_SEEN, data="draft-on")


@test
def pp_versions_without_2_drops_everything_proxied():
    srv = start_udp(env={"PP_VERSIONS": "1", "PP_ALLOW": "127.0.0.1",
                         "PP_DIRECT": "127.0.0.3"})
    c = client()
    send(c, srv, hdr() + b"v2-refused")
    send(c, srv, v1() + b"v1-refused")
    d = client("127.0.0.3")
    send(d, srv, b"direct")
    expect(srv, 0, src=real(d), data="direct")
    eq(len(srv.dgrams()), 1, "datagrams the program saw")


# ===== Dropped datagrams =====

def bad_crc():
    h = bytearray(hdr(crc=True))
    h[-1] ^= 0xFF
    return bytes(h)


BAD = [
    ("no header", b"plain DNS query bytes"),
    ("garbage", os.urandom(40)),
    ("empty", b""),
    ("v1", v1() + b"text"),
    ("bad CRC", bad_crc() + b"crc"),
    ("truncated header", hdr()[:20]),
    ("length past end", hdr(length=200) + b"x"),
    ("bad command", hdr(ver_cmd=0x22) + b"cmd"),
    ("version 3", hdr(ver_cmd=0x31) + b"ver"),
    ("bad family", hdr(fam_byte=0x42) + b"fam"),
    ("signature only", pp.V2_SIG),
]


@test
def bad_datagrams_dropped_next_served():
    srv = start_udp()
    c = client()
    for i, (what, data) in enumerate(BAD):
        send(c, srv, data)
        send(c, srv, hdr(sport=7000 + i) + b"good%d" % i)
        f = expect(srv, i, data="good%d" % i)
        eq(f["src"], "%s:%d" % (CLIENT4, 7000 + i), "after " + what)
        data, _ = reply(c)
        check(data.endswith(b"good%d" % i), "echo after %s: %r" % (what,
                                                                  data))
    eq(len(srv.dgrams()), len(BAD), "datagrams the program saw")
    check(any("dropped" in ln for ln in srv.log_lines()),
          "a drop is logged: %r" % srv.log_lines())


@test
def untrusted_source_dropped():
    srv = start_udp(env={"PP_ALLOW": "127.0.0.1/32"})
    bad = client("127.0.0.2")
    send(bad, srv, hdr() + b"spoofed")
    no_reply(bad)
    c = client()
    send(c, srv, hdr() + b"trusted")
    expect(srv, 0, src=CLIENT4_SEEN, data="trusted")
    eq(len(srv.dgrams()), 1, "datagrams the program saw")


@test
def direct_source_untouched():
    srv = start_udp(env={"PP_ALLOW": "127.0.0.1/32",
                         "PP_DIRECT": "127.0.0.3"})
    d = client("127.0.0.3")
    data = hdr() + b"as-is"
    send(d, srv, data)
    f = expect(srv, 0, src=real(d), len=len(data))
    check(f["data"].startswith("\\x0d\\x0a\\x0d\\x0a"),
          "the header is ordinary data for a direct source: %r" % f)
    got, _ = reply(d)
    eq(got, b"src=%s " % real(d).encode() + data, "direct echo")
    # The same bytes from the trusted proxy are stripped.
    c = client()
    send(c, srv, data)
    expect(srv, 1, src=CLIENT4_SEEN, data="as-is")


@test
def untouched_when_not_in_pp_ports():
    # A UDP socket on another port, and a /tcp entry on this one.
    for ports in ("{other}/udp", "{port}", "{port}/tcp"):
        other = udp_free_port()
        srv = start_udp(pp_ports=ports.replace("{other}", str(other)))
        c = client()
        data = hdr() + b"raw"
        send(c, srv, data)
        f = expect(srv, 0, src=real(c), len=len(data))
        check("raw" in f["data"], "%s: payload intact" % ports)
        check(shim_loaded(srv), "the library is not loaded in udpsrv")
        srv.stop()


@test
def address_entries_and_wildcard_bind():
    # PORT/udp matches a wildcard bind; ADDR:PORT/udp the same address only.
    for host, ports, proxied in (("0.0.0.0", "{port}/udp", True),
                                 ("127.0.0.1", "127.0.0.1:{port}/udp", True),
                                 ("127.0.0.1", "127.0.0.2:{port}/udp", False),
                                 ("0.0.0.0", "127.0.0.1:{port}/udp", False)):
        srv = start_udp(host=host, pp_ports=ports)
        c = client()
        send(c, srv, hdr() + b"wild")
        what = "%s with %s" % (host, ports)
        if proxied:
            expect(srv, 0, src=CLIENT4_SEEN, data="wild")
        else:
            f = expect(srv, 0, src=real(c))
            check(f["data"].endswith("wild"), what + ": untouched")
        srv.stop()


# ===== Non-blocking, batches, peeking, truncation =====

@test
def nonblocking_eagain_after_drops():
    srv = start_udp("-n")
    c = client()
    for data in (b"bad1", v1() + b"bad2"):
        send(c, srv, data)
    srv.wait_line("^eagain$", timeout=5)
    eq(len(srv.dgrams()), 0, "nothing reached the program")
    send(c, srv, hdr() + b"after")
    expect(srv, 0, src=CLIENT4_SEEN, data="after")
    reply(c)


@test
def recvmmsg_batch_with_bad_ones():
    srv = start_udp("-m", "mmsg")
    c = client()
    # Queue everything while the server is stopped: one batch.
    os.kill(srv.pid, signal.SIGSTOP)
    try:
        for i in range(3):
            send(c, srv, b"bad%d" % i)
            send(c, srv, hdr(sport=8000 + i) + b"good%d" % i)
        send(c, srv, v1() + b"badv1")
        time.sleep(0.1)
    finally:
        os.kill(srv.pid, signal.SIGCONT)
    for i in range(3):
        expect(srv, i, src="%s:%d" % (CLIENT4, 8000 + i), data="good%d" % i)
    srv.wait_line("^batch n=3$", timeout=5)
    got = sorted(reply(c)[0] for _ in range(3))
    eq(got, sorted(b"src=%s:%d good%d" % (CLIENT4.encode(), 8000 + i, i)
                   for i in range(3)), "replies")
    eq(len(srv.dgrams()), 3, "datagrams the program saw")


@test
def peek_strips_and_skips_bad():
    srv = start_udp("-k")
    c = client()
    send(c, srv, b"bad under peek")
    send(c, srv, hdr() + b"peeked")
    f = expect(srv, 0, src=CLIENT4_SEEN, data="peeked")
    eq(f.get("peek"), "%s/6/peeked" % CLIENT4_SEEN, "what MSG_PEEK saw")
    reply(c)
    eq(len(srv.dgrams()), 1, "datagrams the program saw")


@test
def short_buffer_and_msg_trunc():
    payload = b"0123456789abcdef"
    # recvfrom with MSG_TRUNC: the real payload length, header excluded.
    srv = start_udp("-b", "4", "-t")
    c = client()
    send(c, srv, hdr(tlvs=tlv(0xEA, b"x" * 300)) + payload)
    expect(srv, 0, src=CLIENT4_SEEN, data="0123", len=len(payload))
    srv.stop()
    # recvmsg without MSG_TRUNC: what fitted, and MSG_TRUNC in msg_flags.
    srv = start_udp("-m", "recvmsg", "-b", "4")
    send(c, srv, hdr() + payload)
    expect(srv, 0, src=CLIENT4_SEEN, data="0123", len=4, trunc=1)
    send(c, srv, hdr() + b"fit")
    expect(srv, 1, data="fit", len=3, trunc=0)


@test
def address_buffer_truncated_full_length():
    srv = start_udp("-m", "recvmsg", "-a", "8")
    c = client()
    send(c, srv, hdr() + b"short-addr")
    expect(srv, 0, data="short-addr", alen=16)


@test
def large_datagram():
    srv = start_udp()
    c = client()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    payload = bytes(random.getrandbits(8) for _ in range(60000))
    send(c, srv, hdr(tlvs=all_tlvs(), crc=True) + payload)
    f = expect(srv, 0, src=CLIENT4_SEEN, len=60000)
    data, _ = reply(c)
    eq(data, b"src=%s " % CLIENT4_SEEN.encode() + payload, "echo")
    check(f["len"] == "60000", "length")


# ===== Replies =====

@test
def replies_follow_their_proxy():
    srv = start_udp()
    a = client("127.0.0.1")
    b = client("127.0.0.5")
    send(a, srv, hdr(src="192.0.2.10", sport=1111) + b"via-a")
    expect(srv, 0, src="192.0.2.10:1111", data="via-a")
    send(b, srv, hdr(src="192.0.2.20", sport=2222) + b"via-b")
    expect(srv, 1, src="192.0.2.20:2222", data="via-b")
    eq(reply(a)[0], b"src=192.0.2.10:1111 via-a", "reply through a")
    eq(reply(b)[0], b"src=192.0.2.20:2222 via-b", "reply through b")
    # The same client now comes through b: replies follow.
    send(b, srv, hdr(src="192.0.2.10", sport=1111) + b"moved")
    expect(srv, 2, src="192.0.2.10:1111", data="moved")
    eq(reply(b)[0], b"src=192.0.2.10:1111 moved", "reply follows the move")
    no_reply(a)


@test
def back_through_first_proxy_replies_from_another_thread():
    # A client through proxy a, then b, then a again, within a second:
    # the newest decides, also for a reply that a thread of the server's
    # own sends, which received nothing (its route is the table's).
    srv = start_udp("-T")
    a = client("127.0.0.1")
    b = client("127.0.0.5")
    for i, (c, tag) in enumerate(((a, b"first"), (b, b"second"),
                                  (a, b"back"))):
        send(c, srv, hdr(src="192.0.2.30", sport=3333) + tag)
        expect(srv, i, src="192.0.2.30:3333", data=tag.decode())
        eq(reply(c)[0], b"src=192.0.2.30:3333 " + tag,
           "reply %d through its proxy" % i)
    no_reply(a)
    no_reply(b)


@test
def reply_on_a_socket_put_in_the_others_place_is_not_routed():
    # The server receives through proxy a, then puts a socket outside
    # PP_PORTS in the place of its own (dup2) and replies on it: the reply
    # goes where the program says, the advertised client (a loopback
    # address here), and the proxy gets nothing.
    srv = start_udp("-X")
    a = client("127.0.0.1")
    direct = client("127.0.0.9")
    dport = direct.getsockname()[1]
    send(a, srv, hdr(src="127.0.0.9", sport=dport) + b"swapped")
    expect(srv, 0, src="127.0.0.9:%d" % dport, data="swapped")
    data, frm = reply(direct)
    eq(data, b"src=127.0.0.9:%d swapped" % dport, "reply, unrouted")
    eq(frm[0], "127.0.0.1", "sent from the replacing socket")
    if frm[1] == srv.port:
        raise Fail("the reply came from the PROXY-only port")
    no_reply(a)


@test
def many_clients_replies():
    srv = start_udp("-m", "mmsg")
    c = client()
    n = 200
    want = set()
    for i in range(n):
        src = "198.18.%d.%d" % (i // 250, i % 250 + 1)
        send(c, srv, hdr(src=src, sport=10000 + i) + b"q%d" % i)
        want.add(b"src=%s:%d q%d" % (src.encode(), 10000 + i, i))
        if i % 20 == 19:
            time.sleep(0.01)
    got = set()
    while len(got) < n:
        got.add(reply(c, timeout=5)[0])
    eq(got, want, "every reply reached the proxy")


@test
def many_clients_nearly_alike_replies():
    # Clients told apart only by their port, or only by the top byte of
    # their address, each through the same proxy: every one of them must
    # be remembered, whatever the server answers first.  Replies are read
    # a group at a time, before the proxy's receive buffer fills.
    srv = start_udp("-m", "mmsg")
    c = client()
    clients = [("198.18.7.7", 20000 + i) for i in range(300)]
    clients += [("%d.18.7.7" % (i + 1), 30000) for i in range(200)]
    want, got = set(), set()
    for g in range(0, len(clients), 20):
        for i in range(g, min(g + 20, len(clients))):
            src, sport = clients[i]
            send(c, srv, hdr(src=src, sport=sport) + b"n%d" % i)
            want.add(b"src=%s:%d n%d" % (src.encode(), sport, i))
        while len(got) < len(want):
            got.add(reply(c, timeout=5)[0])
    eq(got, want, "every reply reached the proxy")


# ===== Descriptors =====

@test
def high_fd():
    srv = start_udp("-H", "5000")
    srv.wait_line("fd=5000", timeout=5)
    c = client()
    send(c, srv, hdr() + b"high")
    expect(srv, 0, src=CLIENT4_SEEN, data="high")
    reply(c)


@test
def inherited_listen_fds():
    port = udp_free_port()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    defer(s.close)
    fd = s.fileno()

    def to_fd3():
        os.dup2(fd, 3)
        os.set_inheritable(3, True)

    env = pp.child_env({"PP_PORTS": "%d/udp" % port, "LISTEN_FDS": "1"})
    # Kept open: 3, where to_fd3 put the socket (the driver's own fd 3,
    # make check's log, is replaced in the child).
    p = subprocess.Popen([UDPSRV, "-F", "3"], env=env, pass_fds=(3,),
                         preexec_fn=to_fd3, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)

    def stop():
        p.kill()
        p.wait(5)
        p.stdout.close()
        p.stderr.close()
    defer(stop)
    c = client()
    c.sendto(hdr() + b"inherited", ("127.0.0.1", port))
    data, _ = reply(c)
    eq(data, b"src=%s inherited" % CLIENT4_SEEN.encode(), "echo")


# ===== SPP (PORT/udp+spp): the header of Spectrum and EdgeOne =====

SPP_CLIENT4 = "192.0.2.7"
SPP_CLIENT6 = "2001:db8::7"


def spp_addr(a):
    if ":" in a:
        return socket.inet_pton(socket.AF_INET6, a)
    return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(a)


def spp(client=SPP_CLIENT4, cport=40000, proxy="198.51.100.1",
        pport=27015, magic=0x56EC):
    """The 38-byte SPP header as the edge sends it."""
    return (struct.pack("!H", magic) + spp_addr(client) + spp_addr(proxy) +
            struct.pack("!HH", cport, pport))


def start_spp(*args, **kw):
    kw.setdefault("pp_ports", "{port}/udp+spp")
    return start_udp(*args, **kw)


SPP_SEEN4 = "%s:40000" % SPP_CLIENT4


def spp_reply(c, client=SPP_CLIENT4, cport=40000, proxy="198.51.100.1",
              pport=27015, timeout=3):
    """A reply to an SPP client: it carries the header its datagram came
    with (client and proxy in their places); returns the payload after
    it and the reply's source."""
    data, frm = reply(c, timeout)
    eq(data[:38], spp(client, cport, proxy, pport), "the reply's SPP header")
    return data[38:], frm


def sent_lines(srv):
    return [ln for ln in srv.lines() if ln.startswith("sent ")]


def wait_sent(srv, start, timeout=5):
    """What udpsrv's send call number start returned: an int, the byte
    count, or a string "errno=N"."""
    deadline = time.monotonic() + timeout * SLOW
    while len(sent_lines(srv)) <= start:
        if time.monotonic() > deadline:
            raise Fail("udpsrv: no send reported%s" % srv.tail())
        time.sleep(0.01)
    word = sent_lines(srv)[start].split()[1]
    return int(word[2:]) if word.startswith("n=") else word


def spp_case(mode, binary=None, replies=True):
    srv = start_spp("-m", mode, binary=binary)
    edge = client()
    send(edge, srv, spp() + b"hello")
    noaddr = mode in ("recv", "read")
    expect(srv, 0, src="-" if noaddr else SPP_SEEN4, data="hello", len=5)
    if replies:
        # The reply reaches the edge that delivered the datagram, with
        # the header, and the program's call returns its own count.
        data, frm = spp_reply(edge)
        eq(data, b"src=%s hello" % SPP_SEEN4.encode(), "echo at the edge")
        eq(frm[1], srv.port, "reply source port")
        eq(wait_sent(srv, 0), len(data), "the send call's count")
    send(edge, srv, b"no header at all, long enough to be one: 38+")
    send(edge, srv, spp(cport=41000) + b"again")
    f = expect(srv, 1, data="again")
    if not noaddr:
        eq(f["src"], "%s:41000" % SPP_CLIENT4, "second source")
    eq(len(srv.dgrams()), 2, "datagrams the program saw")


@test
def spp_recvfrom_client_and_reply():
    spp_case("recvfrom")


@test
def spp_recvmmsg_sendmmsg():
    spp_case("mmsg")


@test
def spp_recv_payload():
    spp_case("recv", replies=False)


@test
def spp_read_payload():
    spp_case("read", replies=False)


@test
def spp_fortified_recvfrom():
    spp_case("recvfrom", binary=UDPSRV_FORTIFY)


@test
def spp_fortified_recv():
    spp_case("recv", binary=UDPSRV_FORTIFY, replies=False)


@test
def spp_fortified_read():
    spp_case("read", binary=UDPSRV_FORTIFY, replies=False)


@test
def spp_recvmsg_pktinfo_and_reply():
    srv = start_spp("-m", "recvmsg")
    edge = client()
    send(edge, srv, spp() + b"hello")
    # IP_PKTINFO keeps the real local address, not the header's proxy.
    expect(srv, 0, src=SPP_SEEN4, data="hello", dst="127.0.0.1", alen=16,
           trunc=0)
    data, frm = spp_reply(edge)
    eq(data, b"src=%s hello" % SPP_SEEN4.encode(), "echo at the edge")
    eq(frm, ("127.0.0.1", srv.port), "reply source")


@test
def spp_payload_byte_exact():
    srv = start_spp()
    edge = client()
    body = bytes(range(256)) * 4 + b"\x56\xec" + spp()
    send(edge, srv, spp() + body)
    f = expect(srv, 0, src=SPP_SEEN4, len=len(body))
    data, _ = spp_reply(edge)
    eq(data, b"src=%s " % SPP_SEEN4.encode() + body, "echo, byte for byte")
    check(f["data"], "payload reported")
    # An empty payload: exactly 38 bytes.
    send(edge, srv, spp(cport=40001))
    expect(srv, 1, src="%s:40001" % SPP_CLIENT4, len=0)


@test
def spp_mapped_client_on_v4_socket_is_inet():
    srv = start_spp("-m", "recvmsg")
    edge = client()
    send(edge, srv, spp() + b"four")
    expect(srv, 0, src=SPP_SEEN4, data="four", alen=16)


@test(ipv6=True)
def spp_mapped_client_on_v6_socket_is_mapped():
    srv = start_spp(host="::")
    edge = client("127.0.0.1")
    send(edge, srv, spp() + b"mapped", host="127.0.0.1")
    seen = "[::ffff:%s]:40000" % SPP_CLIENT4
    expect(srv, 0, src=seen, data="mapped", alen=28)
    data, _ = spp_reply(edge)
    eq(data, b"src=%s mapped" % seen.encode(), "echo at the edge")


@test(ipv6=True)
def spp_v6_client_on_v6_socket():
    srv = start_spp("-m", "recvmsg", host="::1")
    edge = client("::1")
    send(edge, srv, spp(client=SPP_CLIENT6, proxy="2001:db8::1") + b"six")
    seen = "[%s]:40000" % SPP_CLIENT6
    expect(srv, 0, src=seen, data="six", alen=28, dst="::1")
    data, _ = spp_reply(edge, client=SPP_CLIENT6, proxy="2001:db8::1")
    eq(data, b"src=%s six" % seen.encode(), "echo at the edge")


@test
def spp_v6_client_on_v4_socket_dropped():
    srv = start_spp()
    edge = client()
    send(edge, srv, spp(client=SPP_CLIENT6) + b"cannot")
    send(edge, srv, spp() + b"next")
    expect(srv, 0, src=SPP_SEEN4, data="next")
    eq(len(srv.dgrams()), 1, "datagrams the program saw")


SPP_BAD = [
    ("empty", b""),
    ("one byte", b"\x56"),
    ("magic only", b"\x56\xec"),
    ("37 bytes", spp()[:37]),
    ("wrong magic", spp(magic=0x56ED) + b"x"),
    ("byte-swapped magic", spp(magic=0xEC56) + b"x"),
    ("zero magic", spp(magic=0) + b"x"),
    ("PROXY v2 header", hdr() + b"v2 is not SPP here" + b"." * 20),
]


@test
def spp_malformed_dropped_next_served():
    srv = start_spp()
    edge = client()
    for i, (what, data) in enumerate(SPP_BAD):
        send(edge, srv, data)
        send(edge, srv, spp(cport=42000 + i) + b"good%d" % i)
        f = expect(srv, i, data="good%d" % i)
        eq(f["src"], "%s:%d" % (SPP_CLIENT4, 42000 + i), "after " + what)
        got, _ = spp_reply(edge, cport=42000 + i)
        check(got.endswith(b"good%d" % i), "echo after %s: %r" % (what, got))
    eq(len(srv.dgrams()), len(SPP_BAD), "datagrams the program saw")
    check(any("SPP" in ln and "dropped" in ln for ln in srv.log_lines()),
          "a drop is logged: %r" % srv.log_lines())


@test
def spp_nonblocking_eagain_after_drops():
    srv = start_spp("-n")
    edge = client()
    send(edge, srv, spp()[:20])
    send(edge, srv, spp(magic=0x1234) + b"bad")
    srv.wait_line("^eagain$", timeout=5)
    eq(len(srv.dgrams()), 0, "nothing reached the program")
    send(edge, srv, spp() + b"after")
    expect(srv, 0, src=SPP_SEEN4, data="after")
    spp_reply(edge)


@test
def spp_recvmmsg_batch_with_bad_ones():
    srv = start_spp("-m", "mmsg")
    edge = client()
    os.kill(srv.pid, signal.SIGSTOP)
    try:
        for i in range(3):
            send(edge, srv, spp()[:10 + i])
            send(edge, srv, spp(cport=8000 + i) + b"good%d" % i)
        send(edge, srv, hdr() + b"v2 is not SPP" + b"." * 30)
        time.sleep(0.1)
    finally:
        os.kill(srv.pid, signal.SIGCONT)
    for i in range(3):
        expect(srv, i, src="%s:%d" % (SPP_CLIENT4, 8000 + i),
               data="good%d" % i)
    srv.wait_line("^batch n=3$", timeout=5)
    eq(len(srv.dgrams()), 3, "datagrams the program saw")


@test
def spp_peek_strips_and_skips_bad():
    srv = start_spp("-k")
    edge = client()
    send(edge, srv, b"bad under peek")
    send(edge, srv, spp() + b"peeked")
    f = expect(srv, 0, src=SPP_SEEN4, data="peeked")
    eq(f.get("peek"), "%s/6/peeked" % SPP_SEEN4, "what MSG_PEEK saw")
    spp_reply(edge)
    eq(len(srv.dgrams()), 1, "datagrams the program saw")


@test
def spp_short_buffer_and_msg_trunc():
    payload = b"0123456789abcdef"
    srv = start_spp("-b", "4", "-t")
    edge = client()
    send(edge, srv, spp() + payload)
    expect(srv, 0, src=SPP_SEEN4, data="0123", len=len(payload))
    srv.stop()
    # recvmsg with a buffer shorter than the header itself
    srv = start_spp("-m", "recvmsg", "-b", "4")
    send(edge, srv, spp() + payload)
    expect(srv, 0, src=SPP_SEEN4, data="0123", len=4, trunc=1)
    send(edge, srv, spp() + b"fit")
    expect(srv, 1, data="fit", len=3, trunc=0)


@test
def spp_untrusted_edge_dropped():
    srv = start_spp(env={"PP_ALLOW": "127.0.0.1/32"})
    bad = client("127.0.0.2")
    send(bad, srv, spp() + b"spoofed")
    no_reply(bad)
    edge = client()
    send(edge, srv, spp() + b"trusted")
    expect(srv, 0, src=SPP_SEEN4, data="trusted")
    eq(len(srv.dgrams()), 1, "datagrams the program saw")


@test
def spp_direct_source_untouched():
    srv = start_spp(env={"PP_ALLOW": "127.0.0.1/32",
                         "PP_DIRECT": "127.0.0.3"})
    d = client("127.0.0.3")
    data = spp() + b"as-is"
    send(d, srv, data)
    f = expect(srv, 0, src=real(d), len=len(data))
    check(f["data"].startswith("V\\xec"),
          "the header is ordinary data for a direct source: %r" % f)
    got, _ = reply(d)
    eq(got, b"src=%s " % real(d).encode() + data, "direct echo")
    edge = client()
    send(edge, srv, data)
    expect(srv, 1, src=SPP_SEEN4, data="as-is")


@test
def spp_and_v2_entries_side_by_side():
    # One PP_PORTS, two sockets: each expects its own header only.
    p2 = udp_free_port()
    s_spp = start_spp(pp_ports="{port}/udp+spp %d/udp" % p2)
    s_v2 = start_udp(port=p2, pp_ports="%d/udp {port}/udp+spp" % p2)
    edge = client()
    send(edge, s_spp, hdr() + b"v2 to spp" + b"." * 30)
    send(edge, s_v2, spp() + b"spp to v2")
    send(edge, s_spp, spp() + b"spp-ok")
    send(edge, s_v2, hdr() + b"v2-ok")
    expect(s_spp, 0, src=SPP_SEEN4, data="spp-ok")
    expect(s_v2, 0, src=CLIENT4_SEEN, data="v2-ok")
    eq(len(s_spp.dgrams()), 1, "datagrams the SPP program saw")
    eq(len(s_v2.dgrams()), 1, "datagrams the v2 program saw")


def spp_many_client(i):
    return "198.18.%d.%d" % (i // 250, i % 250 + 1), 30000 + i % 30000


@test(timeout=120)
def spp_many_clients_replies():
    # 10,000 clients, each through its own header: every reply names its
    # own client in the header, and the echo after it says the same.
    srv = start_spp()
    edge = client()
    edge.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    n, window = 10000, 50
    for base in range(0, n, window):
        for i in range(base, base + window):
            who, cport = spp_many_client(i)
            send(edge, srv, spp(client=who, cport=cport) + b"c%d" % i)
        for i in range(base, base + window):
            data, _ = reply(edge)
            j = int(data.rsplit(b" c", 1)[1])
            who, cport = spp_many_client(j)
            eq(data[:38], spp(client=who, cport=cport),
               "the header of reply %d" % j)
            eq(data[38:], b"src=%s:%d c%d" % (who.encode(), cport, j),
               "echo %d" % j)
    # Every echo came back; the program's own lines may still be on
    # their way through its stdout pipe.
    deadline = time.monotonic() + 10 * SLOW
    while len(srv.dgrams()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    eq(len(srv.dgrams()), n, "datagrams the program saw")


SPP_REPLY_MODES = (("recvfrom", "sendto"), ("recvmsg", "sendmsg"),
                   ("mmsg", "sendmmsg"))


def spp_replies_by_each_call(host, client_addr, proxy):
    for mode, call in SPP_REPLY_MODES:
        srv = start_spp("-m", mode, host=host)
        edge = client(host)
        body = bytes(range(256)) + b"\0" * 3 + b"end"
        send(edge, srv, spp(client=client_addr, proxy=proxy) + body)
        data, frm = spp_reply(edge, client=client_addr, proxy=proxy)
        seen = ("[%s]:40000" if ":" in client_addr else "%s:40000") % \
            client_addr
        eq(data, b"src=%s " % seen.encode() + body, "%s: payload" % call)
        eq(frm[:2], (host, srv.port), "%s: reply source" % call)
        eq(wait_sent(srv, 0), len(data), "%s: the count returned" % call)
        srv.stop()


@test
def spp_replies_carry_the_header_ipv4():
    spp_replies_by_each_call("127.0.0.1", SPP_CLIENT4, "198.51.100.1")


@test(ipv6=True)
def spp_replies_carry_the_header_ipv6():
    spp_replies_by_each_call("::1", SPP_CLIENT6, "2001:db8::1")


@test
def spp_connected_replies_carry_the_header():
    # connect() to the client goes to the proxy; every send call on the
    # connected socket then carries the header.
    for way in ("write", "send", "sendto", "sendmsg", "sendmmsg"):
        srv = start_spp("-m", "connect", "-w", way)
        edge = client()
        send(edge, srv, spp() + b"first")
        data, frm = spp_reply(edge)
        eq(data, b"src=%s first" % SPP_SEEN4.encode(), way + ": echo")
        eq(frm, ("127.0.0.1", srv.port), way + ": reply source")
        eq(wait_sent(srv, 0), len(data), way + ": the count returned")
        send(edge, srv, spp() + b"second")
        expect(srv, 1, data="second")
        data, _ = spp_reply(edge)
        eq(data, b"src=%s second" % SPP_SEEN4.encode(), way + ": again")
        eq(wait_sent(srv, 1), len(data), way + ": the count again")
        srv.stop()


@test(ipv6=True)
def spp_connected_ipv6_client():
    srv = start_spp("-m", "connect", "-w", "send", host="::1")
    edge = client("::1")
    send(edge, srv, spp(client=SPP_CLIENT6, proxy="2001:db8::1") + b"six")
    data, _ = spp_reply(edge, client=SPP_CLIENT6, proxy="2001:db8::1")
    eq(data, b"src=[%s]:40000 six" % SPP_CLIENT6.encode(), "echo")


@test
def spp_reply_the_header_pushes_past_the_limit():
    # 65,507 bytes is the largest IPv4 UDP payload: it fits bare (a v2
    # reply), not with 38 more.  The call fails with EMSGSIZE and nothing
    # is sent; 38 bytes less fits.
    import errno as errno_mod
    srv = start_udp("-R", "65507")
    edge = client()
    edge.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    send(edge, srv, hdr() + b"big")
    data, _ = reply(edge)
    eq(len(data), 65507, "a v2 reply of the largest size, bare")
    eq(wait_sent(srv, 0), 65507, "v2: the count returned")
    srv.stop()
    srv = start_spp("-R", "65507")
    send(edge, srv, spp() + b"big")
    eq(wait_sent(srv, 0), "errno=%d" % errno_mod.EMSGSIZE,
       "what the send call returned")
    no_reply(edge)
    srv.stop()
    srv = start_spp("-R", str(65507 - 38))
    send(edge, srv, spp() + b"fits")
    data, _ = spp_reply(edge)
    eq(data, b"R" * (65507 - 38), "the largest reply with a header")
    eq(wait_sent(srv, 0), 65507 - 38, "the count returned")


@test
def spp_reply_in_many_buffers():
    # A reply in up to 63 buffers gets the header in an iovec of its own;
    # in more (up to IOV_MAX), it is copied whole.  Byte for byte either
    # way.
    for iovs in (2, 63, 64, 1024):
        srv = start_spp("-m", "recvmsg", "-I", str(iovs))
        edge = client()
        body = bytes(range(1, 256)) * 8
        send(edge, srv, spp() + body)
        data, _ = spp_reply(edge)
        eq(data, b"src=%s " % SPP_SEEN4.encode() + body,
           "%d buffers: payload" % iovs)
        eq(wait_sent(srv, 0), len(data), "%d buffers: count" % iovs)
        srv.stop()


@test
def v2_replies_have_no_header():
    for mode in ("recvfrom", "recvmsg", "mmsg", "connect"):
        srv = start_udp("-m", mode)
        edge = client()
        send(edge, srv, hdr() + b"bare")
        data, _ = reply(edge)
        eq(data, b"src=%s bare" % CLIENT4_SEEN.encode(), mode + ": reply")
        eq(wait_sent(srv, 0), len(data), mode + ": count")
        srv.stop()


# ===== A real proxy: dnsdist in front of dnsmasq =====

def dns_query(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", 1, 1)


def dns_answer_a(resp, qid):
    """The first A record's address in a response, or None."""
    if len(resp) < 12 or struct.unpack("!H", resp[:2])[0] != qid:
        return None
    an = struct.unpack("!H", resp[6:8])[0]
    i = 12
    while resp[i] != 0:
        i += resp[i] + 1
    i += 5
    for _ in range(an):
        if resp[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while resp[i] != 0:
                i += resp[i] + 1
            i += 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", resp[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            return socket.inet_ntoa(resp[i:i + 4])
        i += rdlen
    return None


def dnsdist_rig():
    dnsdist, dnsmasq = shutil.which("dnsdist"), None
    for path in ("/usr/sbin/dnsmasq", shutil.which("dnsmasq")):
        if path and os.access(path, os.X_OK):
            dnsmasq = path
            break
    if not dnsdist or not dnsmasq:
        raise Skip("dnsdist or dnsmasq not installed")
    if pp.ASAN_LIB:
        # dnsmasq 2.90 hangs at start with the ASan runtime preloaded,
        # with or without ppshim.
        raise Skip("dnsmasq does not run with a preloaded ASan runtime")
    back = udp_free_port()
    front = udp_free_port()
    d = pp.tempdir()
    mq = pp.Proc([dnsmasq, "--no-daemon", "-C", "/dev/null",
                  "--port=%d" % back, "--listen-address=127.0.0.1",
                  "--bind-interfaces", "--log-queries", "--log-facility=-",
                  "--no-resolv", "--no-hosts", "--pid-file=",
                  "--address=/example.test/192.0.2.1"],
                 env={"PP_PORTS": "%d/udp,%d/tcp" % (back, back),
                      "PP_LOG": "info"}, name="dnsmasq")
    mq.wait_line("started", timeout=10, stream="err")
    conf = os.path.join(d, "dnsdist.conf")
    with open(conf, "w") as f:
        f.write('setSecurityPollSuffix("")\n'
                'addLocal("127.0.0.1:%d")\n'
                'newServer({address="127.0.0.1:%d", useProxyProtocol=true,'
                ' checkName="example.test.", checkInterval=1})\n'
                % (front, back))
    dd = pp.Proc([dnsdist, "--supervised", "--disable-syslog", "-C", conf],
                 preload=False, name="dnsdist")
    # Up means its LOCAL health checks went through the shim.
    dd.wait_line("Marking downstream .* as 'up'", timeout=15)
    return mq, front


def ask(front, tcp, qid):
    q = dns_query("example.test", qid)
    if tcp:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.7", 0))
        s.settimeout(5 * SLOW)
        defer(s.close)
        s.connect(("127.0.0.1", front))
        s.sendall(struct.pack("!H", len(q)) + q)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H",
                                                           buf[:2])[0]:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return dns_answer_a(buf[2:], qid)
    c = client("127.0.0.7")
    for _ in range(3):
        c.sendto(q, ("127.0.0.1", front))
        try:
            return dns_answer_a(c.recvfrom(4096)[0], qid)
        except socket.timeout:
            continue
    return None


@test(timeout=60)
def dnsdist_dnsmasq_udp_and_tcp():
    mq, front = dnsdist_rig()
    for tcp, qid in ((False, 0x4242), (True, 0x4343)):
        start = len(mq.lines("err"))
        eq(ask(front, tcp, qid), "192.0.2.1",
           "answer over %s" % ("TCP" if tcp else "UDP"))
        mq.wait_line(r"query\[A\] example\.test from 127\.0\.0\.7$",
                     timeout=5, start=start, stream="err")


@test
def spp_ppsend_plays_the_edge():
    ppsend = os.path.join(pp.BUILDDIR, "src", "ppsend")
    srv = start_spp()
    r = subprocess.run([ppsend, "--spp", "--timeout", "500",
                        "--src", "203.0.113.5:4444",
                        "--dst", "198.51.100.1:27015", srv.host,
                        str(srv.port)], input=b"hi",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=pp.child_env(preload=False), timeout=10 * SLOW)
    eq(r.returncode, 0, "ppsend: %r" % (r.stderr,))
    expect(srv, 0, src="203.0.113.5:4444", data="hi", len=2)
    eq(r.stdout, b"src=203.0.113.5:4444 hi", "the echo ppsend got")
    check(b"reply SPP header: client 203.0.113.5:4444 proxy "
          b"198.51.100.1:27015" in r.stderr,
          "ppsend decoded the reply's header: %r" % r.stderr)


def spp_dnsmasq():
    """dnsmasq preloaded with a PORT/udp+spp listener on 127.0.0.1 and a
    free port, answering example.test with 192.0.2.53 and logging each
    query on stderr; nothing leaves loopback.  Stopped by PID at the end
    of the test (pp.Proc)."""
    dnsmasq = None
    for path in ("/usr/sbin/dnsmasq", shutil.which("dnsmasq")):
        if path and os.access(path, os.X_OK):
            dnsmasq = path
            break
    if not dnsmasq:
        raise Skip("dnsmasq not installed")
    if pp.ASAN_LIB:
        raise Skip("dnsmasq does not run with a preloaded ASan runtime")
    port = udp_free_port()
    mq = pp.Proc([dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
                  "--port=%d" % port, "--listen-address=127.0.0.1",
                  "--bind-interfaces", "--log-queries", "--log-facility=-",
                  "--no-resolv", "--no-hosts", "--pid-file=",
                  "--address=/example.test/192.0.2.53"],
                 env={"PP_PORTS": "%d/udp+spp" % port,
                      "PP_ALLOW": "127.0.0.1/32", "PP_LOG": "info"},
                 name="dnsmasq")
    mq.wait_line("started", timeout=10, stream="err")
    return mq, port


@test(timeout=60)
def spp_dnsmasq_sees_the_client():
    # The test plays the edge: SPP + a DNS query from 127.0.0.1; the
    # answer comes back with the header.  (An IPv6 client cannot be
    # reported on dnsmasq's IPv4 socket: dropped, as test_udp's
    # spp_v6_client_on_v4_socket_dropped shows.)
    mq, port = spp_dnsmasq()
    edge = client()
    bad = client("127.0.0.2")
    for qid, who, cport in ((0x5151, SPP_CLIENT4, 40000),
                            (0x5252, "198.51.100.77", 40001)):
        start = len(mq.lines("err"))
        # untrusted, short and wrong-magic datagrams never reach dnsmasq
        bad.sendto(spp(client="203.0.113.9") + dns_query("example.test", 1),
                   ("127.0.0.1", port))
        edge.sendto(spp()[:30], ("127.0.0.1", port))
        edge.sendto(spp(magic=0x1111) + dns_query("example.test", 2),
                    ("127.0.0.1", port))
        edge.sendto(spp(client=who, cport=cport) +
                    dns_query("example.test", qid), ("127.0.0.1", port))
        resp, frm = spp_reply(edge, client=who, cport=cport, timeout=5)
        eq(frm, ("127.0.0.1", port), "the answer's source")
        eq(dns_answer_a(resp, qid), "192.0.2.53", "the answer at the edge")
        mq.wait_line(r"query\[A\] example\.test from %s$" % re.escape(who),
                     timeout=5, start=start, stream="err")
        err = mq.lines("err")[start:]
        check(not any("203.0.113.9" in ln or "from 127.0.0." in ln
                      for ln in err if "query[" in ln),
              "only the good query reached dnsmasq: %r" % err)
    no_reply(bad)


@test(timeout=60)
def spp_dnsmasq_ppsend_plays_the_edge():
    # ppsend --spp sends the query from a chosen client; the answer it
    # gets carries the header, which it decodes, then the DNS answer.
    mq, port = spp_dnsmasq()
    ppsend = os.path.join(pp.BUILDDIR, "src", "ppsend")
    q = dns_query("example.test", 0x6161)
    r = subprocess.run([ppsend, "--spp", "--hexdump", "--timeout", "2000",
                        "--src", "203.0.113.44:5353",
                        "--dst", "198.51.100.1:53", "127.0.0.1",
                        str(port)], input=q,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=pp.child_env(preload=False), timeout=10 * SLOW)
    eq(r.returncode, 0, "ppsend: %r" % (r.stderr,))
    check(b"reply SPP header: client 203.0.113.44:5353 proxy "
          b"198.51.100.1:53" in r.stderr,
          "ppsend decoded the answer's header: %r" % r.stderr)
    eq(dns_answer_a(r.stdout, 0x6161), "192.0.2.53", "the answer")
    mq.wait_line(r"query\[A\] example\.test from 203\.0\.113\.44$",
                 timeout=5, stream="err")


if __name__ == "__main__":
    if not os.access(UDPSRV, os.X_OK):
        pp.skip_all("udpsrv not built: %s" % UDPSRV)
    pp.main("UDP")

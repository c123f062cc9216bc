#!/usr/bin/env python3
"""test_ppsend.py - ppsend, the diagnostic PROXY client (issue 10).

Three receivers, each observing what ppsend sent:
  (a) tests/helpers/srv with libppshim preloaded: its conn line shows the
      addresses the shim took from the header;
  (b) HAProxy in mode tcp with accept-proxy on its bind line: its log shows
      the advertised addresses and TLVs (skipped without /usr/sbin/haproxy);
  (c) a UDP receiver in this file that parses the v2 header byte by byte.
The header bytes printed by --hexdump are also compared with pptest's own
independent builders.

ppsend itself never runs with the library preloaded; only srv does.

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_ppsend.py [NAME...]
"""

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pptest as pp  # noqa: E402
from pptest import (SLOW, V2_SIG, Fail, Skip, check, defer, eq,  # noqa: E402
                    start_srv, test, tlv)

PPSEND = os.environ.get("PPSEND") or os.path.join(pp.BUILDDIR, "src",
                                                    "ppsend")
HAPROXY = os.environ.get("HAPROXY") or "/usr/sbin/haproxy"

EX_USAGE = 64


def env(**kw):
    """PP_* variables for srv: its port is PROXY-only, 127.0.0.1 trusted."""
    e = {"PP_PORTS": "{port}", "PP_ALLOW": "127.0.0.1"}
    e.update(kw)
    return e


class Run:
    """One finished ppsend run."""

    def __init__(self, p, elapsed):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr.decode(errors="replace")
        self.elapsed = elapsed
        head, _, self.rest = self.out.partition(b"\n")
        self.line = head.decode(errors="replace")
        self.fields = pp.parse_conn(self.line)

    def __repr__(self):
        return "<ppsend rc=%s out=%r err=%r>" % (self.rc, self.out[:200],
                                                 self.err[-600:])

    def header(self):
        """The header bytes --hexdump printed (hexdump -C layout)."""
        data = bytearray()
        for ln in self.err.splitlines():
            m = re.match(r"^[0-9a-f]{8}  (.*?)\s*\|", ln)
            if m:
                data += bytes.fromhex(m.group(1).replace(" ", ""))
        return bytes(data)

    def endpoints(self):
        """The real (local, remote) addresses from the --hexdump line."""
        m = re.search(r"ppsend: (?:tcp|udp) (\S+) -> (\S+), ", self.err)
        check(m is not None, "no connection line on stderr: %r" % self)
        return m.group(1), m.group(2)


def ppsend(*args, stdin=b"", timeout=10):
    """Runs ppsend (never preloaded) and waits for it, bounded."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([PPSEND] + [str(a) for a in args], input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=pp.child_env(preload=False),
                           timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        raise Fail("ppsend %s did not exit within %ss" % (
            " ".join(map(str, args)), timeout * SLOW))
    return Run(p, time.monotonic() - t0)


def served(srv, r, peer=None, sock=None, payload=None, what="ppsend"):
    """ppsend got srv's conn line (exit 0), srv printed the same, fields as
    advertised, payload echoed."""
    eq(r.rc, 0, "%s: exit status (%r)" % (what, r))
    check(r.fields is not None, "%s: no conn line: %r" % (what, r))
    if peer is not None:
        eq(r.fields.get("peer"), peer, what + ": getpeername")
    if sock is not None:
        eq(r.fields.get("sock"), sock, what + ": getsockname")
    if payload is not None:
        eq(r.rest, payload, what + ": echo")
    srv.wait_line("^" + re.escape(r.line) + "$", timeout=5)


def refused(srv, r, what):
    """ppsend saw the reset and said so; the server saw nothing."""
    eq(r.rc, 2, "%s: exit status (%r)" % (what, r))
    check("refused the header" in r.err,
          "%s: no refusal message: %r" % (what, r))
    check(r.fields is None, "%s: served: %r" % (what, r))


def target(srv):
    host, port = srv.target
    return [host, port]


# ===== (a) srv under ppshim =====

def src_dst_advertised(srv, version, src, dst):
    """ppsend VERSION --src SRC --dst DST: srv sees src and dst, and the
    data goes through."""
    r = ppsend(version, "--src", src, "--dst", dst, *target(srv),
               stdin=b"ping\n")
    served(srv, r, peer=src, sock=dst, payload=b"ping\n")


@test
def v1_src_dst_advertised():
    src_dst_advertised(start_srv(env=env()), "-1", "192.0.2.10:40000",
                       "198.51.100.7:25")


@test
def v2_src_dst_advertised():
    src_dst_advertised(start_srv("-b", env=env(PP_VERSIONS="2")), "-2",
                       "192.0.2.11:40001", "198.51.100.8:587")


@test
def default_addresses_are_the_real_ones():
    srv = start_srv(env=env())
    for version in ("-1", "-2"):
        r = ppsend(version, "--hexdump", *target(srv), stdin=b"x")
        local, remote = r.endpoints()
        served(srv, r, peer=local, sock=remote, payload=b"x", what=version)
    # Only one side given: the other is the real one.
    r = ppsend("--src", "192.0.2.12:1234", "--hexdump", *target(srv))
    served(srv, r, peer="192.0.2.12:1234", sock=r.endpoints()[1])
    r = ppsend("-2", "--dst", "198.51.100.9:8080", "--hexdump",
               *target(srv))
    served(srv, r, peer=r.endpoints()[0], sock="198.51.100.9:8080")


@test
def hexdump_bytes_match_the_spec():
    srv = start_srv(env=env())
    r = ppsend("-1", "--src", "192.0.2.1:5000", "--dst", "198.51.100.7:25",
               "--hexdump", *target(srv))
    served(srv, r)
    eq(r.header(), pp.v1(), "v1 header")
    ssl = tlv(pp.TLV_SSL, struct.pack("!BI", 1, 0) +
              tlv(pp.TLV_SSL_VERSION, b"TLSv1.3") +
              tlv(pp.TLV_SSL_CN, b"client.example"))
    want = pp.v2(tlvs=tlv(pp.TLV_AUTHORITY, b"www.example") + ssl +
                 tlv(pp.TLV_UNIQUE_ID, b"\x01\x02\xff") +
                 tlv(0xEA, b"vpce-1") + tlv(pp.TLV_NOOP, b""), crc=True)
    r = ppsend("-2", "--src", "192.0.2.1:5000", "--dst", "198.51.100.7:25",
               "--tlv", "authority=www.example",
               "--tlv", "ssl-version=TLSv1.3",
               "--tlv", "unique-id=0x0102ff",
               "--tlv", "ssl-cn=client.example",
               "--tlv", "0xEA=vpce-1", "--tlv", "noop=",
               "--crc32c", "--hexdump", *target(srv))
    served(srv, r, peer="192.0.2.1:5000", sock="198.51.100.7:25")
    eq(r.header(), want, "v2 header with TLVs and CRC32C")


@test
def expect_matches_the_first_line():
    srv = start_srv("-b", env=env())
    r = ppsend("--src", "192.0.2.20:2525", "--expect",
               r"^conn .* peer=192\.0\.2\.20:2525 ", *target(srv))
    eq(r.rc, 0, "matching --expect (%r)" % r)
    check(r.line.startswith("conn "), "line not printed: %r" % r)
    srv.wait_line("peer=192.0.2.20:2525")
    r = ppsend("--src", "192.0.2.21:2525", "--expect", "^220 ",
               *target(srv))
    eq(r.rc, 1, "non-matching --expect (%r)" % r)
    check("does not match" in r.err and r.line.startswith("conn "),
          "no mismatch report: %r" % r)


@test
def expect_with_a_server_that_reads_first():
    # Without -b srv speaks only after reading: stdin goes out first.
    srv = start_srv(env=env())
    r = ppsend("-2", "--expect", "^conn ", *target(srv),
               stdin=b"GET / HTTP/1.0\r\n\r\n")
    eq(r.rc, 0, "--expect after sending stdin (%r)" % r)


@test
def split_and_delay():
    srv = start_srv("-b", env=env(PP_TIMEOUT_MS="3000"))
    for version, n in (("-1", 6), ("-2", 13)):
        r = ppsend(version, "--split", n, "--delay", 400, "--src",
                   "192.0.2.30:30", "--dst", "198.51.100.30:25",
                   *target(srv), stdin=b"after\n")
        served(srv, r, peer="192.0.2.30:30", sock="198.51.100.30:25",
               payload=b"after\n", what="split " + version)
        check(r.elapsed >= 0.4, "split %s: no pause (%.2fs)" % (version,
                                                                r.elapsed))
    # A pause longer than the shim's header timeout: the first piece alone
    # reached it, so the connection is aborted.
    srv = start_srv("-b", env=env(PP_TIMEOUT_MS="300"))
    r = ppsend("-2", "--split", 10, "--delay", 1500, *target(srv))
    eq(r.rc, 2, "split past PP_TIMEOUT_MS (%r)" % r)
    check("reset by peer" in r.err, "no reset message: %r" % r)
    check(not srv.conn_lines(), "served: %r" % srv.conn_lines())


@test
def crc32c_checked_by_the_shim():
    srv = start_srv("-b", env=env(PP_LOG="info"))
    r = ppsend("-2", "--crc32c", "--src", "192.0.2.40:40", "--dst",
               "198.51.100.40:25", *target(srv), stdin=b"crc\n")
    served(srv, r, peer="192.0.2.40:40", sock="198.51.100.40:25",
           payload=b"crc\n")
    # The same header with a wrong checksum (a raw CRC32C TLV of zeros)
    # is aborted: the shim does check what --crc32c fills in.
    r = ppsend("-2", "--tlv", "0x03=0x00000000", *target(srv))
    refused(srv, r, "zero CRC32C")


@test
def tlvs_reach_the_shim():
    srv = start_srv("-b", env=env(PP_LOG="info"))
    r = ppsend("-2", "--tlv", "authority=www.example", "--tlv",
               "unique-id=req-42", "--tlv", "ssl-cn=me", "--tlv",
               "alpn=h2", "--tlv", "netns=blue", "--src", "192.0.2.41:41",
               *target(srv))
    served(srv, r, peer="192.0.2.41:41")
    # With PP_LOG=info the shim reports the authority it parsed.
    deadline = time.monotonic() + 5 * SLOW
    while time.monotonic() < deadline:
        logs = [ln for ln in srv.log_lines() if "192.0.2.41" in ln]
        if logs:
            break
        time.sleep(0.05)
    check(logs, "no log line: %r" % srv.lines("err"))
    if "authority=" in logs[0]:
        check("authority=www.example" in logs[0], "log: %r" % logs[0])
    # A TLV whose length runs past the header end is not something
    # ppsend can build; a malformed SSL TLV (too short for its flags and
    # verify fields) is, and is refused.
    r = ppsend("-2", "--tlv", "0x20=0x01", *target(srv))
    refused(srv, r, "short SSL TLV")


@test
def local_and_unknown_keep_the_real_addresses():
    srv = start_srv("-b", env=env())
    for args in (["-2", "--local"], ["--local"], ["-1", "--unknown"],
                 ["--unknown"]):
        r = ppsend(*args, "--hexdump", *target(srv), stdin=b"hc\n")
        local, remote = r.endpoints()
        served(srv, r, peer=local, sock=remote, payload=b"hc\n",
               what=" ".join(args))
    r = ppsend("--unknown", "--hexdump", *target(srv))
    eq(r.header(), b"PROXY UNKNOWN\r\n", "v1 UNKNOWN bytes")
    r = ppsend("--local", "--hexdump", *target(srv))
    eq(r.header(), V2_SIG + b"\x20\x00\x00\x00", "v2 LOCAL bytes")


@test
def bind_chooses_the_source():
    srv = start_srv("-b", env=env(PP_ALLOW="127.0.0.1,127.0.0.3"))
    port = pp.free_port()
    r = ppsend("--unknown", "--bind", "127.0.0.3:%d" % port, *target(srv))
    served(srv, r, peer="127.0.0.3:%d" % port)
    r = ppsend("-2", "--local", "--bind", "127.0.0.3", *target(srv))
    served(srv, r)
    check(r.fields["peer"].startswith("127.0.0.3:"), "bind: %r" % r)


@test
def untrusted_source_is_refused():
    srv = start_srv("-b", env=env(PP_ALLOW="127.0.0.1"))
    for version in ("-1", "-2"):
        r = ppsend(version, "--bind", "127.0.0.2", *target(srv))
        refused(srv, r, "untrusted " + version)
        r = ppsend(version, "--bind", "127.0.0.2", "--expect", "^conn ",
                   *target(srv))
        refused(srv, r, "untrusted --expect " + version)
    check(not srv.conn_lines(), "served: %r" % srv.conn_lines())
    # A version the shim does not accept is refused the same way.
    srv = start_srv("-b", env=env(PP_VERSIONS="2"))
    refused(srv, ppsend("-1", *target(srv)), "v1 with PP_VERSIONS=2")


@test
def draft_layout():
    srv = start_srv("-b", env=env(PP_V2_DRAFT="1"))
    r = ppsend("--draft", "--src", "192.0.2.1:5000", "--dst",
               "198.51.100.7:25", "--hexdump", *target(srv), stdin=b"d\n")
    served(srv, r, peer="192.0.2.1:5000", sock="198.51.100.7:25",
           payload=b"d\n")
    eq(r.header(), pp.v2_draft(), "draft bytes")
    srv = start_srv("-b", env=env())
    refused(srv, ppsend("--draft", *target(srv)), "draft without "
            "PP_V2_DRAFT")


@test(ipv6=True)
def ipv6():
    srv = start_srv("-b", env=env(PP_ALLOW="::1"), host="::1")
    for version in ("-1", "-2"):
        r = ppsend(version, "--src", "[2001:db8::1]:5000", "--dst",
                   "[2001:db8::2]:25", "::1", srv.port, stdin=b"6\n")
        served(srv, r, peer="[2001:db8::1]:5000", sock="[2001:db8::2]:25",
               payload=b"6\n", what="v6 " + version)
        r = ppsend(version, "--hexdump", "::1", srv.port)
        local, remote = r.endpoints()
        served(srv, r, peer=local, sock=remote, what="v6 real " + version)
    r = ppsend("--bind", "[::1]:0", "--unknown", "::1", srv.port)
    served(srv, r)
    # An IPv4 --src with an IPv6 connection needs --dst too.
    r = ppsend("--src", "192.0.2.1:1", "::1", srv.port)
    eq(r.rc, EX_USAGE, "mixed families (%r)" % r)
    check("--dst" in r.err, "no advice: %r" % r)
    # Both addresses named, each once: the given one and the real one.
    check("192.0.2.1:1 is IPv4" in r.err and
          "destination [::1]:%d is not" % srv.port in r.err,
          "addresses in the message: %r" % r.err)


@test
def stdin_relay_large():
    srv = start_srv(env=env())
    data = os.urandom(3 << 20)
    r = ppsend("-2", *target(srv), stdin=data, timeout=30)
    served(srv, r, payload=data)


# ===== Failures as the manual describes them =====

def _tcp_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    defer(s.close)
    return s


def _serve(listener, handler):
    def loop():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                try:
                    handler(c)
                except OSError:
                    pass
    threading.Thread(target=loop, daemon=True).start()


@test
def echoing_server_is_not_proxy_only():
    ls = _tcp_listener()

    def echo(c):
        while True:
            data = c.recv(4096)
            if not data:
                return
            c.sendall(data)
    _serve(ls, echo)
    port = ls.getsockname()[1]
    for version in ("-1", "-2"):
        r = ppsend(version, "--expect", "^220 ", "--timeout", 3000,
                   "127.0.0.1", port)
        eq(r.rc, 1, "echoed header " + version + " (%r)" % r)
        check("sent the PROXY header back" in r.err, "no hint: %r" % r)


@test
def silent_server_times_out():
    ls = _tcp_listener()
    _serve(ls, lambda c: time.sleep(2))
    port = ls.getsockname()[1]
    r = ppsend("--expect", "^220 ", "--timeout", 300, "127.0.0.1", port,
               timeout=5)
    eq(r.rc, 1, "timeout (%r)" % r)
    check("no line from the server within 300 ms" in r.err, "msg: %r" % r)
    check(r.elapsed < 1.8, "did not stop at the timeout: %.2fs" % r.elapsed)


@test
def relay_timeout_after_stdin():
    ls = _tcp_listener()
    _serve(ls, lambda c: (c.recv(4096), c.sendall(b"banner\n"),
                          time.sleep(2)))
    port = ls.getsockname()[1]
    r = ppsend("--timeout", 300, "127.0.0.1", port, timeout=5)
    eq(r.rc, 0, "relay --timeout (%r)" % r)
    eq(r.out, b"banner\n", "relayed bytes")
    check(r.elapsed < 1.8, "did not stop at the timeout: %.2fs" % r.elapsed)


@test
def connection_refused():
    port = pp.free_port()
    r = ppsend("--expect", "x", "127.0.0.1", port)
    eq(r.rc, 2, "refused (%r)" % r)
    check("Connection refused" in r.err and "nothing listens" in r.err,
          "msg: %r" % r)


@test
def usage_errors():
    bad = [
        [],
        ["127.0.0.1"],
        ["--tlv", "nosuch=1", "h", "1"],
        ["--tlv", "authority", "h", "1"],
        ["--tlv", "0x100=1", "h", "1"],
        ["--tlv", "alpn=0x123", "h", "1"],
        ["-1", "--tlv", "alpn=h2", "h", "1"],
        ["-1", "--local", "h", "1"],
        ["-2", "--unknown", "h", "1"],
        ["-1", "--udp", "h", "1"],
        ["--draft", "--crc32c", "h", "1"],
        ["--src", "192.0.2.1", "h", "1"],
        ["--src", "192.0.2.1:70000", "h", "1"],
        ["--src", "192.0.2.1:1", "--dst", "[2001:db8::1]:1", "h", "1"],
        ["--delay", "10", "h", "1"],
        ["--expect", "(", "h", "1"],
        ["--timeout", "0", "h", "1"],
        ["--nosuch", "h", "1"],
        ["--udp", "--split", "3", "h", "1"],
        ["--spp", "-1", "h", "1"],
        ["--spp", "-2", "h", "1"],
        ["--spp", "--local", "h", "1"],
        ["--spp", "--tlv", "alpn=h2", "h", "1"],
        ["--spp", "--crc32c", "h", "1"],
        ["--spp", "--split", "3", "h", "1"],
    ]
    for args in bad:
        r = ppsend(*args)
        eq(r.rc, EX_USAGE, "ppsend %s (%r)" % (" ".join(args), r))
        check(r.err.startswith("ppsend: ") and "--help" in r.err,
              "ppsend %s: message %r" % (" ".join(args), r.err))
    r = ppsend("--help")
    eq(r.rc, 0, "--help")
    for opt in ("--src", "--dst", "--local", "--unknown", "--tlv",
                "--crc32c", "--draft", "--split", "--delay", "--bind",
                "--hexdump", "--udp", "--spp", "--timeout", "--expect"):
        check(opt.encode() in r.out, "--help lacks %s" % opt)
    r = ppsend("--version")
    eq(r.rc, 0, "--version")
    check(r.out.startswith(b"ppsend "), "--version: %r" % r.out)


# ===== (b) HAProxy accept-proxy =====

# What HAProxy 2.6 took from the header: client and frontend (destination)
# addresses, and two of the TLVs it exposes as sample fetches.
HAPROXY_LOG = ("pplog client=%ci:%cp front=%fi:%fp "
               "authority=%[fc_pp_authority] uid=%[fc_pp_unique_id]")


def start_haproxy():
    """HAProxy in the foreground: a mode tcp frontend with accept-proxy on
    127.0.0.1, logging on stdout the client and frontend addresses it took
    from the header, and the authority and unique-id TLVs; forwarding to an
    echo backend in this process.  Returns (proc, port)."""
    if not os.access(HAPROXY, os.X_OK):
        raise Skip("no %s" % HAPROXY)
    back = _tcp_listener()

    def echo(c):
        c.sendall(b"backend hello\n")
        while True:
            data = c.recv(4096)
            if not data:
                return
            c.sendall(data)
    _serve(back, echo)
    port = pp.free_port()
    d = pp.tempdir()
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:%d accept-proxy
    option logasap
    log-format "%s"
    default_backend be
backend be
    server echo 127.0.0.1:%d
""" % (port, HAPROXY_LOG, back.getsockname()[1]))
    proc = pp.Proc([HAPROXY, "-db", "-f", cfg], preload=False,
                   name="haproxy")
    pp.wait_listening(proc, port)
    return proc, port


def haproxy_saw(proc, client, front, what, **tlvs):
    _, line = proc.wait_line(r"^pplog client=%s front=%s " % (
        re.escape(client), re.escape(front)), timeout=5)
    for key, value in tlvs.items():
        check("%s=%s" % (key, value) in line.split(),
              "%s: haproxy log %r lacks %s=%s" % (what, line, key, value))


def through_haproxy(proc, port, version, src, dst, args, what, **tlvs):
    """ppsend VERSION --src SRC --dst DST ARGS through haproxy gets the
    backend's greeting, and haproxy logs src, dst and tlvs."""
    r = ppsend(version, "--src", src, "--dst", dst, *args, "--expect",
               "^backend hello$", "127.0.0.1", port)
    eq(r.rc, 0, "through haproxy (%r)" % r)
    haproxy_saw(proc, src, dst, what, **tlvs)


def haproxy_refuses(proc, port, args, what, log):
    """ppsend -2 ARGS through haproxy is refused (exit 2), and haproxy
    logs a line matching log."""
    r = ppsend("-2", *args, "--expect", "^backend", "127.0.0.1", port)
    eq(r.rc, 2, "%s through haproxy (%r)" % (what, r))
    proc.wait_line(log, timeout=5)


@test
def haproxy_v1():
    proc, port = start_haproxy()
    through_haproxy(proc, port, "-1", "192.0.2.50:50000", "198.51.100.50:25",
                    (), "v1")
    r = ppsend("-1", "--src", "[2001:db8::50]:50001", "--dst",
               "[2001:db8::51]:443", "127.0.0.1", port, stdin=b"six\n")
    eq(r.rc, 0, "v1 TCP6 through haproxy (%r)" % r)
    eq(r.out, b"backend hello\nsix\n", "relay through haproxy")
    haproxy_saw(proc, "2001:db8::50:50001", "2001:db8::51:443", "v1 TCP6")


@test
def haproxy_v2():
    proc, port = start_haproxy()
    through_haproxy(proc, port, "-2", "192.0.2.51:50002",
                    "198.51.100.51:587", (), "v2", authority="-")
    # HAProxy peeks at the header once: one that arrives in two segments
    # is refused (the manual says so under --split).
    haproxy_refuses(proc, port, ("--split", 14, "--delay", 100),
                    "split header", "Truncated PROXY protocol header")


@test
def haproxy_v2_tlvs_crc32c():
    proc, port = start_haproxy()
    through_haproxy(proc, port, "-2", "192.0.2.52:50003",
                    "198.51.100.52:443",
                    ("--tlv", "authority=www.example", "--tlv",
                     "unique-id=req-7", "--tlv", "ssl-version=TLSv1.3",
                     "--tlv", "ssl-cn=client", "--tlv", "alpn=h2",
                     "--crc32c"), "v2 TLVs CRC32C", authority="www.example",
                    uid="req-7")
    # HAProxy verifies the CRC32C TLV: a zero one is rejected.
    haproxy_refuses(proc, port, ("--tlv", "3=0x00000000"), "bad CRC",
                    "invalid PROXY protocol header")


@test
def haproxy_local_and_unknown():
    proc, port = start_haproxy()
    for args in (["--local"], ["--unknown"]):
        r = ppsend(*args, "--hexdump", "--expect", "^backend hello$",
                   "127.0.0.1", port)
        eq(r.rc, 0, "%s through haproxy (%r)" % (args[0], r))
        local, remote = r.endpoints()
        haproxy_saw(proc, local, remote, args[0])


# ===== (c) UDP =====

class UdpReceiver:
    """A UDP socket that parses the v2 header of each datagram, records
    (real source, parsed header, payload) and answers 'ok SRC PAYLOAD' to
    valid ones (nothing with answer=False)."""

    def __init__(self, answer=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.errors = []
        self.answer = answer
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        defer(self.close)

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()

    def run(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                h, payload = parse_v2(data)
            except ValueError as e:
                self.errors.append(str(e))
                continue
            self.got.append((peer, h, payload))
            if self.answer:
                self.sock.sendto(b"ok %s " % h.get("src", "-").encode() +
                                 payload, peer)


def spp_decode(data):
    """Client and proxy of an SPP header, as text; ValueError if none."""
    if len(data) < 38 or data[:2] != b"\x56\xec":
        raise ValueError("no SPP header: %r" % data[:38])

    def addr(a, port):
        if a[:12] == b"\0" * 10 + b"\xff\xff":
            return "%s:%d" % (socket.inet_ntoa(a[12:]), port)
        return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, a), port)
    cport, pport = struct.unpack("!HH", data[34:38])
    return addr(data[2:18], cport), addr(data[18:34], pport)


def udp_receiver_once(host, answer):
    """A UDP socket on host that takes one datagram, keeps it in got and
    replies answer(datagram), on a thread.  Returns (port, got, thread)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    defer(sock.close)
    sock.settimeout(5 * SLOW)
    got = []

    def serve():
        try:
            data, peer = sock.recvfrom(65535)
        except OSError:
            return
        got.append(data)
        sock.sendto(answer(data), peer)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return sock.getsockname()[1], got, t


@test
def spp_header_bytes_and_reply_decoded():
    # A receiver of this file checks the 38 bytes field by field and
    # answers with an SPP header of its own (as EdgeOne expects of an
    # origin), which ppsend decodes and removes.
    port, got, t = udp_receiver_once(
        "127.0.0.1", lambda data: data[:38] + b"pong " + data[38:])
    r = ppsend("--spp", "--hexdump", "--timeout", 500, "--src",
               "192.0.2.7:40000", "--dst", "198.51.100.1:27015",
               "127.0.0.1", port, stdin=b"ping")
    t.join(5 * SLOW)
    eq(r.rc, 0, "exit status (%r)" % r)
    check(got, "the receiver got nothing: %r" % r)
    eq(len(got[0]), 38 + 4, "datagram length")
    eq(got[0][:2], b"\x56\xec", "magic")
    eq(spp_decode(got[0]), ("192.0.2.7:40000", "198.51.100.1:27015"),
       "client and proxy")
    eq(got[0][38:], b"ping", "payload")
    eq(r.header(), got[0][:38], "--hexdump shows the bytes sent")
    check("38-byte Simple Proxy Protocol (SPP) header" in r.err,
          "hexdump line: %r" % r.err)
    check("reply SPP header: client 192.0.2.7:40000 proxy "
          "198.51.100.1:27015" in r.err, "decoded reply: %r" % r.err)
    eq(r.out, b"pong ping", "the reply's payload on stdout")


@test(ipv6=True)
def spp_ipv6_client():
    port, got, t = udp_receiver_once("::1", lambda data: b"bare")
    r = ppsend("--spp", "--timeout", 500, "--src", "[2001:db8::7]:1",
               "--dst", "[2001:db8::1]:2", "::1", port, stdin=b"x")
    t.join(5 * SLOW)
    eq(r.rc, 0, "exit status (%r)" % r)
    check(got, "the receiver got nothing: %r" % r)
    eq(spp_decode(got[0]), ("[2001:db8::7]:1", "[2001:db8::1]:2"),
       "client and proxy")
    check("reply without an SPP header" in r.err, "said so: %r" % r.err)
    eq(r.out, b"bare", "a bare reply as it came")


def parse_v2(data):
    """Parses a final-layout v2 header; ValueError when it is not one."""
    if len(data) < 16 or data[:12] != V2_SIG:
        raise ValueError("no v2 signature: %r" % data[:16])
    ver_cmd, fam, length = data[12], data[13], struct.unpack(
        "!H", data[14:16])[0]
    if ver_cmd >> 4 != 2 or ver_cmd & 15 > 1:
        raise ValueError("version/command byte %#x" % ver_cmd)
    end = 16 + length
    if end > len(data):
        raise ValueError("length %d past the datagram" % length)
    h = {"cmd": ver_cmd & 15, "fam": fam >> 4, "tp": fam & 15, "tlvs": []}
    body = data[16:end]
    if fam >> 4 == 1:
        if len(body) < 12:
            raise ValueError("short INET block")
        h["src"] = "%s:%d" % (socket.inet_ntop(socket.AF_INET, body[0:4]),
                              struct.unpack("!H", body[8:10])[0])
        h["dst"] = "%s:%d" % (socket.inet_ntop(socket.AF_INET, body[4:8]),
                              struct.unpack("!H", body[10:12])[0])
        q = 12
    elif fam >> 4 == 2:
        if len(body) < 36:
            raise ValueError("short INET6 block")
        h["src"] = "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6,
                                                 body[0:16]),
                                struct.unpack("!H", body[32:34])[0])
        h["dst"] = "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6,
                                                 body[16:32]),
                                struct.unpack("!H", body[34:36])[0])
        q = 36
    else:
        q = 0
    while q < len(body):
        if q + 3 > len(body):
            raise ValueError("truncated TLV")
        t, n = body[q], struct.unpack("!H", body[q + 1:q + 3])[0]
        if q + 3 + n > len(body):
            raise ValueError("TLV past the end")
        h["tlvs"].append((t, body[q + 3:q + 3 + n]))
        q += 3 + n
    for t, v in h["tlvs"]:
        if t == pp.TLV_CRC32C:
            off = data.index(bytes([t]) + b"\x00\x04" + v, 16)
            zeroed = data[:off + 3] + b"\0\0\0\0" + data[off + 7:end]
            if struct.unpack("!I", v)[0] != pp.crc32c(zeroed):
                raise ValueError("CRC32C mismatch")
            h["crc"] = True
    return h, data[end:]


@test
def udp_v2_header_and_reply():
    rx = UdpReceiver()
    r = ppsend("--udp", "-2", "--src", "192.0.2.60:5353", "--dst",
               "198.51.100.60:53", "--tlv", "authority=dns.example",
               "--crc32c", "--hexdump", "--timeout", 500, "127.0.0.1",
               rx.port,
               stdin=b"query")
    eq(r.rc, 0, "udp (%r)" % r)
    eq(r.out, b"ok 192.0.2.60:5353 query", "reply on stdout")
    check(not rx.errors, "receiver: %r" % rx.errors)
    eq(len(rx.got), 1, "datagrams")
    peer, h, payload = rx.got[0]
    eq((h["cmd"], h["fam"], h["tp"]), (1, 1, 2), "PROXY INET DGRAM")
    eq(h["dst"], "198.51.100.60:53", "destination")
    eq(h["tlvs"][0], (pp.TLV_AUTHORITY, b"dns.example"), "first TLV")
    check(h.get("crc"), "no CRC32C TLV")
    eq(payload, b"query", "payload")
    eq(r.endpoints()[0], "%s:%d" % peer, "real source in --hexdump")


@test
def udp_defaults_local_and_expect():
    rx = UdpReceiver()
    r = ppsend("--udp", "--hexdump", "--expect", "^ok ", "127.0.0.1",
               rx.port, stdin=b"q")
    eq(r.rc, 0, "udp --expect (%r)" % r)
    peer, h, payload = rx.got[0]
    eq(h["src"], "%s:%d" % peer, "default source = the real one")
    eq(h["dst"], "127.0.0.1:%d" % rx.port, "default destination")
    # An empty stdin still sends one datagram: the header alone.
    r = ppsend("--udp", "--local", "--timeout", 500, "127.0.0.1", rx.port,
               stdin=b"")
    eq(r.rc, 0, "udp --local (%r)" % r)
    peer, h, payload = rx.got[1]
    eq((h["cmd"], h["fam"], h["tp"], payload), (0, 0, 0, b""), "LOCAL")


@test
def udp_no_reply():
    rx = UdpReceiver(answer=False)
    r = ppsend("--udp", "--timeout", 300, "127.0.0.1", rx.port,
               stdin=b"q", timeout=5)
    eq(r.rc, 2, "no reply (%r)" % r)
    check("no reply within 300 ms" in r.err, "msg: %r" % r)
    eq(len(rx.got), 1, "datagram sent")


@test
def udp_through_the_shim():
    # tests/helpers/udpsrv under ppshim: it reports the source the shim
    # gave it and echoes "src=ADDR:PORT DATA" back through the shim.
    udpsrv = os.path.join(pp.BUILDDIR, "tests", "helpers", "udpsrv")
    if not os.access(udpsrv, os.X_OK):
        raise Skip("no %s" % udpsrv)
    port = pp.free_port()
    srv = pp.Proc([udpsrv, "-l", "127.0.0.1", "-p", str(port)],
                  env={"PP_PORTS": "%d/udp" % port,
                       "PP_ALLOW": "127.0.0.1"}, name="udpsrv")
    srv.wait_line("^listening ", timeout=10)
    r = ppsend("--udp", "--src", "192.0.2.80:5353", "--dst",
               "198.51.100.80:53", "--tlv", "authority=dns.example",
               "--crc32c", "--timeout", 500, "127.0.0.1", port,
               stdin=b"query")
    eq((r.rc, r.out), (0, b"src=192.0.2.80:5353 query"), "reply (%r)" % r)
    srv.wait_line(r"^dgram src=192\.0\.2\.80:5353 len=5 data=query")
    r = ppsend("--udp", "--local", "--hexdump", "--timeout", 500,
               "127.0.0.1", port, stdin=b"hc")
    eq((r.rc, r.out), (0, b"src=%s hc" % r.endpoints()[0].encode()),
       "LOCAL (%r)" % r)
    # Dropped: an untrusted source, a wrong checksum.
    for args in (["--bind", "127.0.0.2"], ["--tlv", "3=0x00000000"]):
        r = ppsend("--udp", "--timeout", 300, *args, "127.0.0.1", port,
                   stdin=b"drop")
        eq(r.rc, 2, "%s (%r)" % (args, r))
        check("no reply within 300 ms" in r.err, "msg: %r" % r)
    check(not [ln for ln in srv.lines() if "data=drop" in ln],
          "dropped datagrams reached the server: %r" % srv.lines())


if __name__ == "__main__":
    if not os.access(PPSEND, os.X_OK):
        pp.skip_all("ppsend not built: %s" % PPSEND)
    pp.main("ppsend")

#!/usr/bin/env python3
"""test_peers.py - real PROXY protocol senders and a real server.

Senders: HAProxy (send-proxy, send-proxy-v2 with CRC32C, UNIQUE_ID,
AUTHORITY and SSL TLVs, and its LOCAL health checks) and curl
--haproxy-protocol.  Servers under the shim: tests/helpers/srv and nginx
(an HTTP server that knows nothing about PROXY here: no proxy_protocol in
its configuration).  Each program is started by the test on loopback high
ports, with its files in a temporary directory, and stopped by PID.  A test
whose program is not installed is skipped.

The client that HAProxy relays binds 127.0.0.5 (curl binds 127.0.0.6), so
the address the server reports can only come from the header.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import pptest as pp  # noqa: E402
from pptest import (SLOW, check, eq, exchange,  # noqa: E402
                    expect_conn, free_port, start_srv, test, wait_listening)

CLIENT = "127.0.0.5"
CURL_CLIENT = "127.0.0.6"


def curl_bin():
    return pp.find("curl", "/usr/bin/curl")


# ===== HAProxy =====

def HAProxy(backend, checks=False):
    """HAProxy in the foreground (-db), frontends v1 and v2 (and chk with
    health checks) relaying to backend (host:port)."""
    fronts = [("fv1", "send-proxy", []),
              ("fv2", "send-proxy-v2 proxy-v2-options "
               "crc32c,unique-id,authority,ssl",
               ["unique-id-format %{+X}o%ci:%cp_%fi:%fp_%Ts_%rt"])]
    if checks:
        fronts.append(("fchk", "send-proxy-v2 check check-send-proxy "
                       "inter 100ms", []))
    return pp.HAProxy(backend, fronts)


def srv_behind_haproxy(*args, checks=False, **env):
    e = {"PP_PORTS": "{port}", "PP_ALLOW": "127.0.0.1"}
    e.update(env)
    srv = start_srv(*args, env=e)
    return srv, HAProxy("127.0.0.1:%d" % srv.port, checks=checks)


@test
def haproxy_send_proxy_v1_to_srv():
    srv, hap = srv_behind_haproxy()
    payload = os.urandom(65536)
    r = exchange(hap.target("fv1"), payload, src=CLIENT, timeout=10)
    expect_conn(srv, r, peer="%s:%d" % (CLIENT, r.local[1]),
                sock="127.0.0.1:%d" % hap.ports["fv1"], fam="AF_INET",
                payload=payload)


@test
def haproxy_send_proxy_v2_tlvs_to_srv():
    srv, hap = srv_behind_haproxy("-b")
    payload = os.urandom(65536)
    for _ in range(3):
        r = exchange(hap.target("fv2"), payload, src=CLIENT, timeout=10)
        expect_conn(srv, r, peer="%s:%d" % (CLIENT, r.local[1]),
                    sock="127.0.0.1:%d" % hap.ports["fv2"], fam="AF_INET",
                    payload=payload)


@test(timeout=40)
def haproxy_health_checks_are_local():
    # HAProxy's health checks with check-send-proxy carry a v2 LOCAL
    # header: accepted with the real addresses, while relayed clients keep
    # getting theirs.
    srv, hap = srv_behind_haproxy("-q", checks=True)
    srv.wait_line(r"^conn .*peer=127\.0\.0\.1:", timeout=5)
    for _ in range(3):
        r = exchange(hap.target("fchk"), b"relayed", src=CLIENT, timeout=10)
        check(r.rest == b"relayed", "relayed client: %r" % r)
        time.sleep(0.2)
    # What accept returned: HAProxy closes its checks with an RST, so by
    # the time srv asks getpeername the kernel may say ENOTCONN.
    peers = [pp.parse_conn(ln)["acc"] for ln in srv.conn_lines()]
    checks = [p for p in peers if p.startswith("127.0.0.1:")]
    relayed = [p for p in peers if p.startswith(CLIENT + ":")]
    check(len(checks) >= 3, "health checks seen: %r" % peers)
    eq(len(relayed), 3, "relayed clients seen as %s (%r)" % (CLIENT, peers))
    check(set(peers) == set(checks) | set(relayed),
          "unexpected peers: %r" % peers)
    check(srv.alive(), "srv died")


# ===== nginx =====


class Nginx:
    """nginx under the shim, one process, its files in a temporary
    directory; its own configuration knows nothing about PROXY."""

    def __init__(self, ipv6=False, **env):
        self.tmp = pp.tempdir()
        self.port = free_port()
        listen = ["127.0.0.1:%d" % self.port]
        if ipv6:
            listen.append("[::1]:%d" % self.port)
        e = {"PP_PORTS": str(self.port)}
        e.update(env)
        # nginx leaks a little at exit by design: under valgrind only
        # memory errors count.
        self.proc = pp.nginx(self.tmp, pp.nginx_http(
            self.tmp, "$remote_addr $remote_port $server_addr $server_port "
            '"$request" $status', listen), env=e, leak_check="no")
        wait_listening(self.proc, self.port)

    def access_line(self, pattern, timeout=5):
        """Waits for an access log line matching pattern."""
        path = os.path.join(self.tmp, "access.log")
        deadline = time.monotonic() + timeout * SLOW
        lines = []
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
            for line in lines:
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise pp.Fail("nginx access log has no line matching %r: %r" % (
            pattern, lines[-5:]))


def http_get(target, src=None, timeout=10):
    r = exchange(target, b"GET / HTTP/1.0\r\nHost: test\r\n\r\n", src=src,
                 timeout=timeout)
    head, _, body = r.data.partition(b"\r\n\r\n")
    return r, head.split(b"\r\n")[0].decode(errors="replace"), body


@test(timeout=40)
def haproxy_to_nginx():
    ng = Nginx(PP_ALLOW="127.0.0.1")
    hap = HAProxy("127.0.0.1:%d" % ng.port)
    for front in ("fv1", "fv2"):
        r, status, body = http_get(hap.target(front), src=CLIENT)
        check(" 200 " in status + " ", "%s: status %r (%r)" % (front, status,
                                                               r))
        eq(body, b"hello %s %d\n" % (CLIENT.encode(), r.local[1]),
           front + ": body")
        # $server_port is nginx's own listen port: nginx asks getsockname
        # only for wildcard listeners.
        ng.access_line(r"^%s %d 127\.0\.0\.1 \d+ \"GET / HTTP/1\.0\" 200$" % (
            re.escape(CLIENT), r.local[1]))


@test(timeout=40)
def nginx_refuses_untrusted_header():
    ng = Nginx(PP_ALLOW="127.0.0.1")
    r, status, body = http_get(("127.0.0.1", ng.port), src="127.0.0.7")
    check(r.refused, "untrusted client reached nginx: %r" % r)
    r = exchange(("127.0.0.1", ng.port),
                 pp.v1(src="192.0.2.44", sport=4444) +
                 b"GET / HTTP/1.0\r\n\r\n")
    check(b"hello 192.0.2.44 4444" in r.data, "trusted: %r" % r)


# ===== curl --haproxy-protocol =====

def curl(url, *args):
    argv = [curl_bin(), "-sS", "-m", str(10 * SLOW), "--haproxy-protocol"]
    argv += list(args) + [url]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=pp.child_env(preload=False), timeout=20 * SLOW)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


@test(timeout=40)
def curl_to_nginx_ipv4():
    ng = Nginx()
    rc, out, err = curl("http://127.0.0.1:%d/" % ng.port, "--interface",
                        CURL_CLIENT, "-w", " code=%{http_code}")
    check(rc == 0 and "code=200" in out, "curl rc=%d %r %r" % (rc, out, err))
    check(out.startswith("hello %s " % CURL_CLIENT), "body %r" % out)
    ng.access_line(r"^%s \d+ 127\.0\.0\.1 %d \"GET / HTTP/1\.1\" 200$" % (
        re.escape(CURL_CLIENT), ng.port))


@test(timeout=40, ipv6=True)
def curl_to_nginx_ipv6():
    ng = Nginx(ipv6=True)
    rc, out, err = curl("http://[::1]:%d/" % ng.port, "-g", "-w",
                        " code=%{http_code}")
    check(rc == 0 and "code=200" in out, "curl rc=%d %r %r" % (rc, out, err))
    check(out.startswith("hello ::1 "), "body %r" % out)
    ng.access_line(r"^::1 \d+ ::1 %d \"GET / HTTP/1\.1\" 200$" % ng.port)


def curl_to_srv(host, url_host, extra):
    # srv -r: reads the request, answers with its conn line and what it
    # read, closes; curl takes that as an HTTP/0.9 body.  curl advertises
    # its own addresses, so what shows the header was stripped is that the
    # request came first.
    srv = start_srv("-r", env={"PP_PORTS": "{port}"}, host=host)
    rc, out, err = curl("http://%s:%d/" % (url_host, srv.port), "--http0.9",
                        *extra)
    check(rc == 0, "curl rc=%d %r %r" % (rc, out, err))
    fields = pp.parse_conn(out.splitlines()[0] if out else "")
    check(fields is not None, "curl got %r" % out)
    lines = out.splitlines()
    check(len(lines) > 1 and lines[1].startswith("GET / HTTP/1.1"),
          "srv did not read the request first: %r" % out)
    srv.wait_line("^" + re.escape(out.splitlines()[0]) + "$")
    return fields, srv


@test(timeout=30)
def curl_to_srv_ipv4():
    fields, srv = curl_to_srv("127.0.0.1", "127.0.0.1",
                              ["--interface", CURL_CLIENT])
    check(fields["peer"].startswith(CURL_CLIENT + ":"), "peer %r" % fields)
    eq(fields["sock"], "127.0.0.1:%d" % srv.port, "sock")


@test(timeout=30, ipv6=True)
def curl_to_srv_ipv6():
    fields, srv = curl_to_srv("::1", "[::1]", ["-g"])
    check(fields["peer"].startswith("[::1]:"), "peer %r" % fields)
    eq(fields["sock"], "[::1]:%d" % srv.port, "sock")


if __name__ == "__main__":
    pp.main("test_peers")

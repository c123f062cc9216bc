#!/usr/bin/env python3
"""sockserv.py: Python servers the integration tests run under LD_PRELOAD.

Like srv, it knows nothing about the PROXY protocol and prints
"listening port=N" once it listens.  Modes:

  sockserv.py serve HOST PORT
      A socketserver.TCPServer (serve_forever: a blocking listener watched
      by a selector, then accept).  Each connection gets, on stdout and to
      the client, "conn acc=ADDR peer=ADDR sock=ADDR" (what accept,
      getpeername and getsockname said), then an echo until EOF.  An
      accept that takes over 100 ms prints "slow-accept ms=N".

  sockserv.py rcvtimeo HOST PORT MS
      A blocking listener with SO_RCVTIMEO of MS milliseconds; accept in a
      loop, and for each call "accept ms=N conn peer=ADDR" or
      "accept ms=N errno=NAME".

  sockserv.py daemonize HOST PORT
      A listener, then the standard descriptors closed and a fork, as a
      daemon does before it reopens them on /dev/null: the child prints
      "reopened fds=A,B,C" (what three opens of /dev/null returned:
      0,1,2 unless something else took those numbers), then serves one
      connection: "conn peer=ADDR".

SIGTERM ends it.
"""
import os

import errno
import socket
import socketserver
import struct
import sys
import time


def fmt(addr):
    if len(addr) == 2:
        return "%s:%d" % addr
    return "[%s]:%d" % addr[:2]


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        line = "conn acc=%s peer=%s sock=%s" % (
            fmt(self.client_address), fmt(s.getpeername()),
            fmt(s.getsockname()))
        out(line)
        s.sendall(line.encode() + b"\n")
        while True:
            data = s.recv(65536)
            if not data:
                break
            s.sendall(data)


class Server(socketserver.TCPServer):
    allow_reuse_address = True

    def __init__(self, host, port):
        self.address_family = socket.AF_INET6 if ":" in host else \
            socket.AF_INET
        super().__init__((host, port), Handler)

    def get_request(self):
        # Called once the selector said the listener is readable.
        t0 = time.monotonic()
        try:
            return super().get_request()
        finally:
            dt = time.monotonic() - t0
            if dt > 0.1:
                out("slow-accept ms=%d" % (dt * 1000))


def serve(host, port):
    srv = Server(host, int(port))
    out("listening port=%d" % srv.server_address[1])
    srv.serve_forever(poll_interval=5)


def rcvtimeo(host, port, ms):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(64)
    ms = int(ms)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                  struct.pack("ll", ms // 1000, (ms % 1000) * 1000))
    out("listening port=%d" % ls.getsockname()[1])
    while True:
        t0 = time.monotonic()
        try:
            c, addr = ls.accept()
        except OSError as e:
            out("accept ms=%d errno=%s" % ((time.monotonic() - t0) * 1000,
                                           errno.errorcode.get(e.errno,
                                                               e.errno)))
            continue
        out("accept ms=%d conn peer=%s" % ((time.monotonic() - t0) * 1000,
                                           fmt(addr)))
        c.sendall(b"conn peer=%s\n" % fmt(addr).encode())
        c.close()


def daemonize(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(64)
    report = os.dup(1)

    def say(line):
        os.write(report, line.encode() + b"\n")
    say("listening port=%d" % ls.getsockname()[1])
    for fd in (0, 1, 2):
        os.close(fd)
    pid = os.fork()
    if pid != 0:
        os.waitpid(pid, 0)
        os._exit(0)
    fds = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    say("reopened fds=%s" % ",".join(str(fd) for fd in fds))
    c, addr = ls.accept()
    say("conn peer=%s" % fmt(addr))
    c.sendall(b"conn peer=%s\n" % fmt(addr).encode())
    c.close()
    os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "rcvtimeo":
        rcvtimeo(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "daemonize":
        daemonize(sys.argv[2], sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)

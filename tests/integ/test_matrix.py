#!/usr/bin/env python3
"""test_matrix.py - the legacy daemon matrix: mail, FTP and IMAP/POP
daemons without PROXY support, behind HAProxy, under the shim.

Each test starts one real Debian daemon on a loopback port under the
library, with its configuration, state and logs in a temporary directory,
and a real HAProxy in front of it (test_daemons.HAProxy: send-proxy and
send-proxy-v2).  For version 1 and then version 2 it logs in or sends a
message with the daemon's own protocol (ftplib, smtplib, poplib,
imaplib) and finds the advertised client in the daemon's OWN log (and in
the Received: header for mail).  Then:

  - a header from an untrusted source (127.0.0.7, in neither PP_ALLOW nor
    PP_DIRECT) is refused before the daemon sees it, and the daemon's log
    never names that source;
  - a monitoring client in PP_DIRECT (127.0.0.9) connects without a header
    and gets the daemon's banner, logged as itself.

The daemons:

  - pure-ftpd, standalone (fork per connection), passive mode with
    PP_SOCKNAME=real and =proxied; its altlog (xferlog format);
  - proftpd, standalone (fork per connection), passive mode; its system
    log (stderr with --nodaemon), TransferLog and ExtendedLog;
  - OpenSMTPD (smtpd -d -v, logging to stderr), a message delivered to a
    maildir with its Received: header.  OpenSMTPD 6.8 has native PROXY
    version 2 support (listen on ... proxy-v2); the test uses the shim
    and not that option;
  - Courier's POP3 server, started as Debian does (pop3d start: env -i,
    the library's variables in /etc/courier/pop3d, courierlogger), with
    its own authdaemond; couriertcpd forks and executes the login program
    per connection: login, STAT;
  - Cyrus IMAP: its master process listens and preforks imapd, which
    accepts; login, SELECT, and a connection parked without its header;
  - inetutils-ftpd executed per connection by openbsd-inetd: the launcher
    preloaded, the connection handed over to ftpd;
  - nginx with a master and two workers that accept: the response and
    the access log.

Daemons that conflict with packages the suite installs (pure-ftpd, proftpd
and inetutils-ftpd with vsftpd, OpenSMTPD with exim4, openbsd-inetd with
xinetd) are not installed: tests/fetch-daemons.sh unpacks them into
/opt/ppshim-test/PKG (PPSHIM_TEST_OPT), and they run from there.  Daemons
that log to syslog only (Cyrus, inetutils-ftpd, Courier through
courierlogger) or that have compiled-in paths (OpenSMTPD's queue,
Courier's configuration) run in a private mount namespace: /dev/log is a
datagram socket the test reads, private directories are mounted over the
compiled-in ones, and name lookups go to /etc/hosts only (no_dns).  A host
where unshare(1) cannot do that skips them with the reason
(caps.mountns).

The last test checks that the README's "Servers tested" table and the
daemon tests of this file and of test_daemons.py name each other.

The daemons need root.  A daemon that is not installed or unpacked, or a
host that is not root, skips with the reason.  Daemons run without
valgrind under make valgrind (set-user-ID changes and executed children).

Run by make check; by hand, as root, from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_matrix.py [NAME...]
"""

import ast
import ftplib
import imaplib
import os
import poplib
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import caps  # noqa: E402
import pptest as pp  # noqa: E402
from pptest import SLOW, Fail, Proc, Skip, check, eq, test  # noqa: E402
from pptest import free_port, wait_listening  # noqa: E402

_OWN = len(pp._tests)
from test_daemons import (BACK, CLIENT, FRONT, UNPACKED,  # noqa: E402
                          VERSIONS, FtpClient, HAProxy, daemon_tmp, find,
                          free_port_range, need_root, read_text, subdir,
                          user_ids, write)
from test_daemons import unpacked as daemons_unpacked  # noqa: E402
del pp._tests[_OWN:]  # test_daemons' tests run from their own file

UNTRUSTED = "127.0.0.7"   # in neither PP_ALLOW nor PP_DIRECT
MONITOR = "127.0.0.9"     # in PP_DIRECT: no header, served as itself
OPT = UNPACKED
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
USER, PASSWORD = "ppuser", "pp-Secret-42"


def matrix_env(port, **extra):
    """The daemon's configuration: one PROXY-only port, HAProxy's source
    trusted, a monitoring host served without a header."""
    env = {"PP_PORTS": str(port), "PP_ALLOW": BACK, "PP_DIRECT": MONITOR,
           "PP_LOG": "info"}
    env.update(extra)
    return env


def unpacked(package, relpath):
    """A program of a package unpacked into OPT/package (never an
    installed copy: the tests use the package's own files there), or
    Skip."""
    return daemons_unpacked(package, relpath, installed=False)


def unpacked_libs(package):
    """LD_LIBRARY_PATH for the libraries unpacked with package (those of
    its dependencies that are not installed)."""
    root = os.path.join(OPT, package, "usr", "lib")
    dirs = [os.path.join(root, d) for d in sorted(os.listdir(root))
            if d.endswith("-linux-gnu")] if os.path.isdir(root) else []
    return ":".join(dirs)


def start(argv, port, env, name, cwd=None):
    """A daemon under the shim, waited for until it listens on port."""
    proc = Proc(argv, env=env, valgrind=False, name=name, cwd=cwd)
    wait_listening(proc, port, timeout=20)
    return proc


def untrusted_refused(port, logs):
    """A header from a source in neither list is refused before the daemon
    sees anything, and no log names that source.  logs: a function
    returning the daemon's log text."""
    header = pp.v1(src=CLIENT, dst=BACK, sport=40001, dport=port)
    for data in (header, b"QUIT\r\n"):
        r = pp.exchange((BACK, port), data, src=UNTRUSTED, timeout=5)
        check(r.refused, "untrusted source %s: %r" % (UNTRUSTED, r))
    time.sleep(0.3)
    # The library's own lines (ppshim[PID]: refused ...) excepted.
    seen = [ln for ln in logs().splitlines()
            if UNTRUSTED in ln and "ppshim[" not in ln]
    check(not seen, "the daemon logged the untrusted source: %r" % seen)


def monitor_banner(port, prefix, bye=b"QUIT\r\n"):
    """A PP_DIRECT client without a header gets the banner.  Returns the
    client's port."""
    with pp.connect((BACK, port), src=MONITOR, timeout=10) as s:
        cport = s.getsockname()[1]
        banner = pp.read_line(s, timeout=10)
        check(banner.startswith(prefix), "monitoring client: banner %r, "
              "want %r" % (banner, prefix))
        s.sendall(bye)
        pp.wait_closed(s, 1)
    return cport


def wait_count(get_text, pattern, count, what, timeout=10):
    """Waits until count lines of get_text() match pattern (no more: a
    surplus fails too).  Returns the matches."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout * SLOW
    while True:
        found = [m for m in map(rx.search, get_text().splitlines()) if m]
        if len(found) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(len(found) == count, "%s: %d lines matching %r, want %d:%s" % (
        what, len(found), pattern, count, log_tail(get_text(), 15)))
    return found


def log_tail(text, n=10):
    return "\n  " + "\n  ".join(text.splitlines()[-n:])


# ===== A private syslog: /dev/log in a mount namespace =====

def no_dns(tmp):
    """Bind mounts that keep a daemon's name lookups on the host: an
    nsswitch.conf whose hosts are looked up in /etc/hosts only (a client
    not there is not found, and logged by address), and a resolv.conf for
    resolvers of their own (OpenSMTPD's) that asks a name server on
    loopback where none listens."""
    text = read_text("/etc/nsswitch.conf")
    text = re.sub(r"(?m)^hosts:.*$", "hosts: files", text)
    if not re.search(r"(?m)^hosts:", text):
        text += "hosts: files\n"
    nss = write(os.path.join(tmp, "nsswitch.conf"), text, 0o644)
    resolv = write(os.path.join(tmp, "resolv.conf"),
                   "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
                   0o644)
    return [(nss, "/etc/nsswitch.conf"), (resolv, "/etc/resolv.conf")]


class Syslog:
    """A datagram socket collecting syslog lines, and the shell prologue
    that makes it /dev/log in a private mount namespace (unshare -m): /dev
    becomes a tmpfs holding the usual device nodes (bind-mounted from the
    real /dev) and log, a link to the socket.  binds: (source, target)
    pairs mounted in the namespace too."""

    def __init__(self, tmp, binds=()):
        pp.require(caps.mountns)
        unshare = find("unshare", "/usr/bin/unshare")
        self.path = os.path.join(tmp, "log.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.lines = []
        self.lock = threading.Lock()
        self.done = False
        pp.defer(self.close)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        old = os.path.join(tmp, "olddev")
        os.mkdir(old)
        mounts = ["mount --make-rprivate /",
                  "mount --rbind /dev %s" % old,
                  "mount -t tmpfs -o mode=755 ppshim-dev /dev"]
        for n in ("null", "zero", "full", "random", "urandom", "tty"):
            mounts.append("touch /dev/%s && mount --bind %s/%s /dev/%s" % (
                n, old, n, n))
        mounts += ["mkdir /dev/pts /dev/shm",
                   "mount --rbind %s/pts /dev/pts" % old,
                   "mount -t tmpfs -o mode=1777 ppshim-shm /dev/shm",
                   "ln -s /proc/self/fd /dev/fd",
                   "ln -s %s /dev/log" % self.path]
        for src, dst in binds:
            mounts.append("mount --bind %s %s" % (src, dst))
        self.prologue = " && ".join(mounts)
        self.unshare = unshare
        self._probe()

    def _read(self):
        self.sock.settimeout(0.2)
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.lines.append(data.decode(errors="replace").rstrip(
                    "\n\0"))

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()

    def argv(self, argv):
        """argv run in the namespace, after the prologue, by exec."""
        foreign = pp.foreign_program(argv[0])
        if foreign:
            raise Skip("cannot preload the library: " + foreign)
        return [self.unshare, "-m", "/bin/sh", "-c",
                self.prologue + ' && exec "$@"', "sh"] + list(argv)

    def _probe(self):
        p = subprocess.run(self.argv(["/usr/bin/logger", "-u", "/dev/log",
                                      "ppshim-probe"]),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "ppshim-probe" in self.text():
                with self.lock:
                    self.lines.clear()
                return
            time.sleep(0.05)
        raise Skip("no private /dev/log in a mount namespace here "
                   "(unshare -m: %s)" % p.stdout.decode(
                       errors="replace").strip()[-200:])

    def text(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait(self, pattern, timeout=10, what="syslog"):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            for line in self.text().splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                raise Fail("%s has no line matching %r within %ss:%s" % (
                    what, pattern, timeout * SLOW, log_tail(self.text(), 15)))
            time.sleep(0.05)


# ===== FTP: pure-ftpd, proftpd, inetutils-ftpd =====

class FtpHome:
    """A home directory owned by user ftp holding one file, and the
    passive port range."""

    def __init__(self):
        self.tmp = daemon_tmp()
        self.owner = user_ids("ftp")
        self.home = subdir(self.tmp, "home", 0o755, self.owner)
        self.name = "hello.bin"
        self.content = os.urandom(200000)
        path = os.path.join(self.home, self.name)
        with open(path, "wb") as f:
            f.write(self.content)
        os.chmod(path, 0o644)
        os.chown(path, *self.owner)
        self.pasv = free_port_range(20)


def ftp_login_through(target, home, logs, user=USER, password=PASSWORD):
    """A login, a passive listing and a passive download through target
    from CLIENT.  Returns (passive addresses, client port)."""
    # pure-ftpd's PASS takes 3 s of CPU here (its password hash): on a
    # loaded machine, several times that.
    ftp = FtpClient(source_address=(CLIENT, 0), timeout=40 * SLOW)
    try:
        welcome = ftp.connect(*target)
        check(welcome.startswith("220"), "banner %r" % welcome)
        cport = ftp.sock.getsockname()[1]
        ftp.login(user, password)
        listing = []
        ftp.retrlines("LIST", listing.append)
        check(any(line.endswith(" " + home.name) for line in listing),
              "LIST: %r" % listing)
        got = bytearray()
        ftp.retrbinary("RETR " + home.name, got.extend)
        check(bytes(got) == home.content, "RETR: got %d bytes, want %d" % (
            len(got), len(home.content)))
        ftp.quit()
    except ftplib.all_errors + (EOFError,) as e:
        raise Fail("FTP through %s:%d: %s: %s%s" % (
            target[0], target[1], type(e).__name__, e, log_tail(logs())))
    finally:
        ftp.close()
    return ftp.pasv, cport


def xferlog_lines(path, client, home, count, what):
    """Waits for count xferlog lines (wu-ftpd format) of downloads by
    client, and for no line naming another host."""
    rx = re.compile(r"^\w{3} \w{3} +\d+ [\d:]+ \d{4} \d+ (\S+) %d \S*%s "
                    r"b _ o r %s ftp " % (len(home.content),
                                          re.escape(home.name),
                                          re.escape(USER)))
    deadline = time.monotonic() + 10 * SLOW
    while True:
        hosts = [m.group(1) for m in map(rx.match, read_text(
            path).splitlines()) if m]
        if len(hosts) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    eq(hosts, [client] * count, "the hosts of the downloads in %s" % what)


# ----- pure-ftpd -----

def pureftpd_setup(home):
    """A PureDB of one virtual user (mapped to user ftp), made with the
    unpacked pure-pw."""
    pure_pw = unpacked("pure-ftpd", "/usr/bin/pure-pw")
    pdb = os.path.join(home.tmp, "pureftpd.pdb")
    p = subprocess.run([pure_pw, "useradd", USER, "-u", "ftp", "-g", "ftp",
                        "-d", home.home, "-f",
                        os.path.join(home.tmp, "pureftpd.passwd"), "-m",
                        "-F", pdb], input=("%s\n%s\n" % (
                            PASSWORD, PASSWORD)).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    check(p.returncode == 0 and os.path.isfile(pdb), "pure-pw: %r" % p.stdout)
    return pdb


def pureftpd_standalone(sockname):
    need_root("pure-ftpd")
    if pp.ASAN_LIB:
        # Its session processes run with RLIMIT_DATA at 70 MiB: the ASan
        # runtime cannot map its shadow memory there ("Failed to mmap")
        # and the session dies, with or without this library.
        raise Skip("pure-ftpd limits its sessions' data size, which the "
                   "ASan runtime cannot live with")
    pureftpd = unpacked("pure-ftpd", "/usr/sbin/pure-ftpd")
    home = FtpHome()
    pdb = pureftpd_setup(home)
    port = free_port(BACK)
    altlog = os.path.join(home.tmp, "xferlog")
    argv = [pureftpd, "--bind", "%s,%d" % (BACK, port), "--ipv4only",
            "--login", "puredb:" + pdb, "--noanonymous", "--chrooteveryone",
            "--dontresolve", "--minuid", "1", "--syslogfacility", "none",
            "--altlog", "xferlog:" + altlog, "--maxidletime", "1",
            "--passiveportrange", "%d:%d" % home.pasv]
    proc = start(argv, port, matrix_env(port, PP_SOCKNAME=sockname),
                 "pure-ftpd")
    def logs():
        return read_text(altlog) + "\n".join(proc.lines("err"))

    hap = HAProxy(port)
    for version in VERSIONS:
        pasv, cport = ftp_login_through(hap.target(version), home, logs)
        # pure-ftpd announces the address getsockname gives: its own
        # (real) or HAProxy's frontend (proxied).  The client's data
        # connection is checked against the control connection's
        # (advertised) client.
        want = BACK if sockname == "real" else FRONT
        eq(pasv, [want, want], "%s: passive address" % version)
        xferlog_lines(altlog, CLIENT, home, VERSIONS.index(version) + 1,
                      "pure-ftpd's altlog")
    untrusted_refused(port, logs)
    monitor_banner(port, "220")
    check(proc.alive(), "pure-ftpd died%s" % proc.tail())


@test(timeout=90)
def pureftpd_standalone_sockname_real():
    pureftpd_standalone("real")


@test(timeout=90)
def pureftpd_standalone_sockname_proxied():
    pureftpd_standalone("proxied")


# ----- proftpd -----

PROFTPD_CFG = """\
ServerType standalone
ServerName "ppshim test"
DefaultServer on
UseIPv6 off
DefaultAddress {back}
SocketBindTight on
Port {port}
User ftp
Group nogroup
Umask 022
MaxInstances 30
PidFile {tmp}/proftpd.pid
ScoreboardFile {tmp}/proftpd.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
UseFtpUsers off
RequireValidShell off
AuthOrder mod_auth_file.c
AuthUserFile {tmp}/passwd
AuthGroupFile {tmp}/group
DefaultRoot ~
PassivePorts {pasv_min} {pasv_max}
AllowForeignAddress off
TimeoutIdle 60
TimeoutLogin 30
SystemLog {tmp}/proftpd.log
SyslogLevel info
TransferLog {tmp}/xferlog
LogFormat ppauth "%a %u %S"
ExtendedLog {tmp}/auth.log AUTH ppauth
"""


def crypt_password(password):
    openssl = find("openssl", "/usr/bin/openssl")
    p = subprocess.run([openssl, "passwd", "-6", password],
                       stdout=subprocess.PIPE, timeout=30, check=True)
    return p.stdout.decode().strip()


def no_early_open_under_asan(what):
    """Skips under the ASan build when one of the daemon's libraries calls
    open() from its constructor (libcap-ng, libselinux): that constructor
    can run before the ASan runtime's own, and the instrumented open hook
    then touches shadow memory that is not mapped yet.  The plain build
    serves such calls (the early hooks take the raw system call)."""
    if pp.ASAN_LIB:
        raise Skip("the libraries of %s call open() from their "
                   "constructors, before the ASan runtime initialises" % what)


@test(timeout=90)
def proftpd_standalone():
    need_root("proftpd")
    no_early_open_under_asan("proftpd (libcap-ng)")
    proftpd = unpacked("proftpd-core", "/usr/sbin/proftpd")
    home = FtpHome()
    uid, gid = home.owner
    write(os.path.join(home.tmp, "passwd"), "%s:%s:%d:%d::%s:/bin/false\n" % (
        USER, crypt_password(PASSWORD), uid, gid, home.home), 0o600)
    write(os.path.join(home.tmp, "group"), "ftp:x:%d:\n" % gid, 0o600)
    port = free_port(BACK)
    conf = write(os.path.join(home.tmp, "proftpd.conf"), PROFTPD_CFG.format(
        back=BACK, port=port, tmp=home.tmp, pasv_min=home.pasv[0],
        pasv_max=home.pasv[1]), 0o644)
    xferlog = os.path.join(home.tmp, "xferlog")
    authlog = os.path.join(home.tmp, "auth.log")

    def logs():
        return "\n".join(proc.lines("err")) + read_text(xferlog) + \
            read_text(authlog)

    env = matrix_env(port, PP_SOCKNAME="real",
                     LD_LIBRARY_PATH=unpacked_libs("proftpd-core"))
    proc = start([proftpd, "--nodaemon", "--config", conf], port, env,
                 "proftpd")
    hap = HAProxy(port)
    start_at = 0
    for version in VERSIONS:
        pasv, cport = ftp_login_through(hap.target(version), home, logs)
        eq(pasv, [BACK, BACK], "%s: passive address" % version)
        xferlog_lines(xferlog, CLIENT, home, VERSIONS.index(version) + 1,
                      "proftpd's TransferLog")
        # With --nodaemon, what goes to the SystemLog goes to stderr.
        start_at, _ = proc.wait_line(
            r"\(%s\[%s\]\): USER %s: Login successful" % (
                re.escape(CLIENT), re.escape(CLIENT), USER),
            start=start_at, stream="err")
        start_at += 1
        wait_count(lambda: read_text(authlog), r"^%s %s " % (
            re.escape(CLIENT), USER), VERSIONS.index(version) + 1,
            "proftpd's ExtendedLog")
    untrusted_refused(port, logs)
    monitor_banner(port, "220")
    proc.wait_line(r"\(%s\[%s\]\): FTP session opened" % (
        re.escape(MONITOR), re.escape(MONITOR)), stream="err")
    check(proc.alive(), "proftpd died%s" % proc.tail())


# ----- inetutils-ftpd executed by openbsd-inetd -----

@test(timeout=90)
def inetutils_ftpd_under_openbsd_inetd():
    # The launcher preloaded: inetd's accept strips the header, and the
    # ftpd it executes per connection takes the addresses by hand-over.
    need_root("inetd")
    no_early_open_under_asan("ftpd (libcap-ng, through libaudit)")
    inetd = unpacked("openbsd-inetd", "/usr/sbin/inetd")
    ftpd = unpacked("inetutils-ftpd", "/usr/sbin/ftpd")
    if not os.path.isdir("/srv/ftp"):
        raise Skip("no /srv/ftp to mount the anonymous FTP root on")
    home = FtpHome()
    # ftpd logs to syslog only, looks up the client's name, and serves
    # anonymous users from the home of user ftp (/srv/ftp): a private
    # /dev/log, resolver and /srv/ftp.
    ns = Syslog(home.tmp, binds=[(home.home, "/srv/ftp")] +
                no_dns(home.tmp))
    port = free_port(BACK)
    # inetd executes its servers with an environment of its own, without
    # LD_PRELOAD: env puts the library back in ftpd, which takes the
    # connection by hand-over.  PP_SOCKNAME=real, set for inetd, reaches
    # ftpd through the environment, and ftpd's getsockname answers by it.
    preload = "LD_PRELOAD=" + pp.child_env()["LD_PRELOAD"]
    if pp.ASAN_LIB:
        # ftpd runs ls in the anonymous chroot, where LeakSanitizer finds
        # no /proc and writes its complaint into the listing.
        preload += " ASAN_OPTIONS=detect_leaks=0"
    conf = write(os.path.join(home.tmp, "inetd.conf"),
                 "%s:%d stream tcp nowait root /usr/bin/env env "
                 "%s %s -l -A\n" % (BACK, port, preload, ftpd), 0o644)
    proc = start(ns.argv([inetd, "-d", "-R", "100000", conf]), port,
                 matrix_env(port, PP_SOCKNAME="real"), "inetd")

    def logs():
        return ns.text() + "\n".join(proc.lines("err"))

    hap = HAProxy(port)
    for version in VERSIONS:
        pasv, cport = ftp_login_through(hap.target(version), home, logs,
                                        user="anonymous",
                                        password="ppshim@ppshim.test")
        eq(pasv, [BACK, BACK], "%s: passive address" % version)
    # ftpd's own syslog lines (its PID, not inetd's) name the client.
    wait_count(ns.text, r" ftpd\[\d+\]: ANONYMOUS FTP LOGIN FROM %s$" %
               re.escape(CLIENT), len(VERSIONS), "ftpd's logins in syslog")
    froms = wait_count(ns.text, r" ftpd\[\d+\]: connection from (\S+)$",
                       len(VERSIONS), "ftpd's connections in syslog")
    eq([m.group(1) for m in froms], [CLIENT] * len(VERSIONS),
       "clients in ftpd's syslog lines")
    untrusted_refused(port, logs)
    monitor_banner(port, "220")
    ns.wait(r" ftpd\[\d+\]: connection from %s$" % re.escape(MONITOR),
            what="ftpd syslog")
    check(proc.alive(), "inetd died%s" % proc.tail())


# ===== SMTP: OpenSMTPD =====

SMTPD_CFG = """\
table domains {{ "ppshim.test" }}
table clients {{ "{client}", "{monitor}" }}
table vusers {{ "postmaster@ppshim.test" = "{user}" }}
listen on {back} port {port} hostname ppshim.test
action "deliver" maildir "{tmp}/Maildir" virtual <vusers>
match from src <clients> for domain <domains> action "deliver"
"""


def maildir_message(maildir, subject, timeout=10, extra=lambda: ""):
    """The text of the message with subject delivered to maildir/new."""
    deadline = time.monotonic() + timeout * SLOW
    new = os.path.join(maildir, "new")
    while True:
        for name in sorted(os.listdir(new)) if os.path.isdir(new) else ():
            text = read_text(os.path.join(new, name)).replace("\r\n", "\n")
            if "Subject: %s\n" % subject in text:
                return text
        if time.monotonic() > deadline:
            raise Fail("no message %r delivered to %s%s" % (
                subject, new, extra()))
        time.sleep(0.05)


def smtp_send(target, subject, src=CLIENT):
    """A message to postmaster@ppshim.test through target from src with
    smtplib.  Returns the client's port."""
    rcpt = "postmaster@ppshim.test"
    msg = ("From: sender@example.org\r\nTo: %s\r\nSubject: %s\r\n\r\n"
           "Hello through the balancer.\r\n" % (rcpt, subject))
    try:
        with smtplib.SMTP(target[0], target[1], local_hostname="client.test",
                          source_address=(src, 0),
                          timeout=10 * SLOW) as smtp:
            cport = smtp.sock.getsockname()[1]
            refused = smtp.sendmail("sender@example.org", [rcpt], msg)
    except (smtplib.SMTPException, OSError) as e:
        raise Fail("SMTP through %s:%d: %s: %s" % (
            target[0], target[1], type(e).__name__, e))
    eq(refused, {}, "refused recipients")
    return cport


@test(timeout=90)
def opensmtpd_through_haproxy():
    need_root("smtpd")
    no_early_open_under_asan("smtpd (libcap-ng)")
    smtpd = unpacked("opensmtpd", "/usr/sbin/smtpd")
    user_ids("opensmtpd")
    user_ids("opensmtpq")
    owner = user_ids("nobody")
    tmp = daemon_tmp()
    maildir = subdir(tmp, "Maildir", 0o700, owner)
    spool = subdir(tmp, "spool", 0o755)
    # smtpd's queue (/var/spool/smtpd) and its delivery agents
    # (/usr/libexec/opensmtpd) are compiled-in paths: private ones in a
    # mount namespace.  Its resolver asks a name server on loopback that
    # is not there: the reverse lookup of each client fails at once.
    # The same in the other tests of this file (no_dns).
    libexec = subdir(tmp, "libexec", 0o755)
    os.symlink(os.path.join(OPT, "opensmtpd/usr/libexec/opensmtpd"),
               os.path.join(libexec, "opensmtpd"))
    ns = Syslog(tmp, binds=[(spool, "/var/spool"),
                            (libexec, "/usr/libexec")] + no_dns(tmp))
    port = free_port(BACK)
    conf = write(os.path.join(tmp, "smtpd.conf"), SMTPD_CFG.format(
        back=BACK, port=port, tmp=tmp, client=CLIENT, monitor=MONITOR,
        user="nobody"), 0o644)
    proc = start(ns.argv([smtpd, "-d", "-v", "-f", conf]), port,
                 matrix_env(port), "smtpd")

    def logs():
        return "\n".join(proc.lines("err") + proc.lines())

    hap = HAProxy(port)
    at = 0
    for version in VERSIONS:
        subject = "ppshim %s %d" % (version, random.randint(0, 1 << 30))
        smtp_send(hap.target(version), subject)
        text = maildir_message(maildir, subject,
                               extra=lambda: log_tail(logs(), 30))
        m = re.search(r"(?m)^Received: .*(?:\n[ \t].*)*", text)
        check(m is not None, "no Received: in %r" % text)
        check(m.group(0).startswith("Received: from client.test (<unknown> "
                                     "[%s])\n" % CLIENT),
              "%s: %r" % (version, m.group(0)))
        at, _ = proc.wait_line(r"smtp connected address=%s host=" %
                               re.escape(CLIENT), start=at, stream="err")
        at += 1
    untrusted_refused(port, logs)
    monitor_banner(port, "220 ppshim.test ESMTP OpenSMTPD")
    proc.wait_line(r"smtp connected address=%s host=" % re.escape(MONITOR),
                   stream="err")
    check(proc.alive(), "smtpd died%s" % proc.tail())


# ===== POP3: Courier through couriertcpd =====

COURIER = "/usr/lib/courier/courier"


def nsenter(holder, argv):
    """argv run in the mount namespace of the process holder."""
    foreign = pp.foreign_program(argv[0])
    if foreign:
        raise Skip("cannot preload the library: " + foreign)
    return [find("nsenter", "/usr/bin/nsenter"), "-t", str(holder.pid),
            "-m", "--"] + list(argv)


class Pop3(poplib.POP3):
    """poplib from CLIENT."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(CLIENT, 0))


def make_maildir(home, owner):
    maildir = subdir(home, "Maildir", 0o700, owner)
    for name in ("new", "cur", "tmp"):
        subdir(maildir, name, 0o700, owner)
    return maildir


COURIER_POP3D_ADD = """
# ppshim: {port} on loopback, behind HAProxy (set -a: all exported)
PORT={port}
ADDRESS={back}
TCPDOPTS="-nodnslookup -noidentlookup"
LD_PRELOAD={preload}
PP_PORTS={port}
PP_ALLOW={back}
PP_DIRECT={monitor}
PP_LOG_TARGET=syslog
"""


def stop_pidfile(path, what):
    """SIGTERM to the process whose PID is in path, waited for."""
    try:
        pid = int(read_text(path).split()[0])
    except (IndexError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5 * SLOW
    while os.path.exists("/proc/%d" % pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise Fail("%s (%d) did not stop on SIGTERM" % (what, pid))
        time.sleep(0.05)


def children(pid):
    """The PIDs of pid's children."""
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        text = read_text("/proc/%d/task/%s/children" % (pid, task))
        kids += [int(x) for x in text.split()]
    return kids


@test(timeout=90)
def courier_pop3_couriertcpd():
    # Started the Debian way, /usr/sbin/pop3d start (what
    # courier-pop.service runs): its env -i drops the caller's environment,
    # and the variables set in /etc/courier/pop3d (sourced with set -a)
    # reach courierlogger and couriertcpd.  couriertcpd accepts, forks and
    # executes courierpop3login for each connection; the daemons' stderr
    # goes to syslog through courierlogger.
    need_root("couriertcpd")
    pop3d = find("pop3d", "/usr/sbin/pop3d")
    find("couriertcpd", "/usr/sbin/couriertcpd")
    authdaemond = find("authdaemond",
                       "/usr/lib/courier/courier-authlib/authdaemond")
    makeuserdb = find("makeuserdb", "/usr/sbin/makeuserdb")
    for prog in ("courierpop3login", "courierpop3d"):
        find(prog, os.path.join(COURIER, prog))
    for path in ("/etc/courier/pop3d", "/run/courier", "/var/lib/courier"):
        if not os.path.exists(path):
            raise Skip("courier-pop is not installed (no %s)" % path)
    courier = user_ids("courier")
    owner = user_ids("ftp")
    tmp = daemon_tmp()
    home = subdir(tmp, "home", 0o755, owner)
    maildir = make_maildir(home, owner)
    with open(os.path.join(maildir, "new", "1.ppshim"), "w") as f:
        f.write("From: a@ppshim.test\nSubject: waiting\n\nHello.\n")
    os.chown(os.path.join(maildir, "new", "1.ppshim"), *owner)
    port = free_port(BACK)
    # Courier's configuration, its run and state directories are
    # compiled-in paths: private ones in a mount namespace, with a user
    # database of one user and the lines above added to pop3d.
    etc = os.path.join(tmp, "etc-courier")
    shutil.copytree("/etc/courier", etc, symlinks=True)
    rc = read_text(os.path.join(etc, "authdaemonrc"))
    rc = re.sub(r'(?m)^authmodulelist=.*$', 'authmodulelist="authuserdb"', rc)
    rc = re.sub(r'(?m)^daemons=.*$', 'daemons=2', rc)
    write(os.path.join(etc, "authdaemonrc"), rc, 0o660)
    write(os.path.join(etc, "userdb"), "%s\tuid=%d|gid=%d|home=%s|"
          "mail=%s|systempw=%s\n" % (USER, owner[0], owner[1], home, maildir,
                                     crypt_password(PASSWORD)), 0o600)
    with open(os.path.join(etc, "pop3d"), "a") as f:
        f.write(COURIER_POP3D_ADD.format(
            port=port, back=BACK, monitor=MONITOR,
            preload=pp.child_env()["LD_PRELOAD"]))
    run = subdir(tmp, "run-courier", 0o775)
    subdir(run, "authdaemon", 0o750, courier)
    state = subdir(tmp, "lib-courier", 0o750, courier)
    ns = Syslog(tmp, binds=[(etc, "/etc/courier"), (run, "/run/courier"),
                            (state, "/var/lib/courier")] + no_dns(tmp))
    # The namespace's first process: authdaemond, in the foreground.
    auth = Proc(ns.argv(["/bin/sh", "-c", '"$0" && exec "$1"', makeuserdb,
                         authdaemond]), preload=False, name="authdaemond")
    sock = os.path.join(run, "authdaemon", "socket")
    deadline = time.monotonic() + 10 * SLOW
    while not os.path.exists(sock):
        check(auth.alive(), "authdaemond exited%s" % auth.tail())
        check(time.monotonic() < deadline, "no %s%s" % (sock, auth.tail()))
        time.sleep(0.05)
    pidfile = os.path.join(run, "pop3d.pid")
    pp.defer(stop_pidfile, pidfile, "courierlogger")
    p = subprocess.run(nsenter(auth, [pop3d, "start"]),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=pp.child_env(
                           preload=False), timeout=30 * SLOW)
    check(p.returncode == 0, "pop3d start: %d %r" % (p.returncode,
                                                      p.stdout[-500:]))
    deadline = time.monotonic() + 10 * SLOW
    while port not in pp.listening_ports():
        check(time.monotonic() < deadline, "nothing listens on %d:%s" % (
            port, log_tail(ns.text())))
        time.sleep(0.05)
    logger = int(read_text(pidfile).split()[0])
    tcpd = [k for k in children(logger)
            if "couriertcpd" in read_text("/proc/%d/cmdline" % k)]
    check(len(tcpd) == 1, "courierlogger %d: children %r" % (
        logger, children(logger)))

    def logs():
        return ns.text() + "\n".join(auth.lines("err"))

    hap = HAProxy(port)
    ip = r"ip=\[(?:::ffff:)?%s\]" % re.escape(CLIENT)
    for version in VERSIONS:
        host, hport = hap.target(version)
        try:
            pop = Pop3(host, hport, timeout=10 * SLOW)
            cport = pop.sock.getsockname()[1]
            check(pop.getwelcome().startswith(b"+OK"),
                  "banner %r" % pop.getwelcome())
            pop.user(USER)
            pop.pass_(PASSWORD)
            count, size = pop.stat()
            eq(count, 1, "%s: messages" % version)
            pop.quit()
        except (poplib.error_proto, OSError) as e:
            raise Fail("POP3 through %s:%d: %s: %s%s" % (
                host, hport, type(e).__name__, e, log_tail(logs(), 20)))
        ns.wait(r" pop3d: LOGIN, user=%s, %s, port=\[%d\]" % (
            USER, ip, cport), what="pop3d syslog")
    untrusted_refused(port, logs)
    monitor_banner(port, "+OK")
    ns.wait(r" pop3d: Connection, ip=\[(?:::ffff:)?%s\]" % re.escape(
        MONITOR), what="pop3d syslog")
    check(os.path.exists("/proc/%d" % tcpd[0]), "couriertcpd died:%s" %
          log_tail(logs()))
    stop_pidfile(pidfile, "courierlogger")
    deadline = time.monotonic() + 5 * SLOW
    while os.path.exists("/proc/%d" % tcpd[0]):
        check(time.monotonic() < deadline, "couriertcpd outlived "
              "courierlogger")
        time.sleep(0.05)


# ===== IMAP: Cyrus =====

CYRUS_IMAPD_CONF = """\
configdirectory: {tmp}/lib
partition-default: {tmp}/spool
defaultpartition: default
servername: ppshim.test
admins: ppadmin
allowplaintext: yes
sasl_mech_list: PLAIN
# Any password: this configuration is for the test only.
sasl_pwcheck_method: alwaystrue
autocreate_quota: 0
statuscache: no
idlesocket: {tmp}/run/idle
notifysocket: {tmp}/run/notify
lmtpsocket: {tmp}/run/lmtp
mboxname_lockpath: {tmp}/run/lock
proc_path: {tmp}/run/proc
"""

CYRUS_CONF = """\
START {{
  recover cmd="ctl_cyrusdb -r -C {conf}"
}}
SERVICES {{
  imap cmd="imapd -C {conf}" listen="{back}:{port}" prefork=2 maxchild=10
}}
EVENTS {{
}}
DAEMON {{
}}
"""


class Imap4(imaplib.IMAP4):
    """imaplib from CLIENT."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(CLIENT, 0))


def lib_readable_by(ids, name):
    """Skip unless user name, with ids (uid, gid), can open the library:
    tried for real, in a child that becomes that user (its supplementary
    groups included); when it cannot, the child names the first
    directory on the way it may not search."""
    uid, gid = ids
    path = os.path.realpath(pp.LIB)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.initgroups(name, gid)
            os.setgid(gid)
            os.setuid(uid)
            try:
                os.close(os.open(path, os.O_RDONLY))
                os._exit(0)
            except OSError:
                pass
            where = path
            parts = path.split("/")
            for i in range(2, len(parts)):
                p = "/".join(parts[:i])
                if not os.access(p, os.X_OK):
                    where = p
                    break
            os.write(wfd, where.encode())
        finally:
            os._exit(1)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        where = r.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        mode = os.stat(where).st_mode & 0o777 if where else 0
        raise Skip("user %s cannot reach the library (%s, mode %o)"
                   % (name, where or path, mode))


@test(timeout=120)
def cyrus_imapd_master_prefork():
    # Cyrus's master listens and preforks imapd processes, which accept
    # on the socket they inherit: the library is in each of them.
    need_root("cyrus master")
    master = find("cyrmaster", "/usr/sbin/cyrmaster",
                  "/usr/lib/cyrus/bin/master")
    find("imapd", "/usr/lib/cyrus/bin/imapd")
    cyrus = user_ids("cyrus")
    # The master execs imapd as cyrus, whose loader must read the library.
    lib_readable_by(cyrus, "cyrus")
    tmp = daemon_tmp()
    for name in ("lib", "lib/db", "lib/socket", "lib/proc", "spool",
                 "run"):
        subdir(tmp, name, 0o750, cyrus)
    port = free_port(BACK)
    conf = write(os.path.join(tmp, "imapd.conf"),
                 CYRUS_IMAPD_CONF.format(tmp=tmp), 0o644)
    write(os.path.join(tmp, "cyrus.conf"), CYRUS_CONF.format(
        conf=conf, back=BACK, port=port), 0o644)
    # Cyrus logs to syslog only; it looks each client's name up: a private
    # /dev/log, and name lookups in /etc/hosts only.
    ns = Syslog(tmp, binds=no_dns(tmp))
    proc = Proc(ns.argv([master, "-C", conf, "-M",
                         os.path.join(tmp, "cyrus.conf"), "-p",
                         os.path.join(tmp, "run", "master.pid")]),
                env=matrix_env(port, PP_TIMEOUT_MS="20000"), valgrind=False,
                name="cyrus master")
    try:
        wait_listening(proc, port, timeout=20)
    except Fail as e:
        raise Fail("%s%s" % (e, log_tail(ns.text(), 15)))

    def logs():
        return ns.text() + "\n".join(proc.lines("err"))

    hap = HAProxy(port)
    # A connection from the trusted proxy whose header has not come yet
    # is parked in one imapd's accept: the other preforked imapd serves
    # the clients meanwhile, and the parked one is still waiting after.
    parked = pp.connect((BACK, port), src=BACK, timeout=10)
    pp.defer(parked.close)
    time.sleep(0.2)
    for version in VERSIONS:
        host, hport = hap.target(version)
        try:
            imap = Imap4(host, hport, timeout=10 * SLOW)
            imap.login(USER, PASSWORD)
            typ, data = imap.select("INBOX")
            eq(typ, "OK", "%s: SELECT INBOX %r" % (version, data))
            imap.logout()
        except (imaplib.IMAP4.error, OSError) as e:
            raise Fail("IMAP through %s:%d: %s: %s%s" % (
                host, hport, type(e).__name__, e, log_tail(logs(), 20)))
    status, _, data = pp.wait_closed(parked, 0.05)
    eq((status, data), ("timeout", b""), "the parked connection")
    parked.close()
    # imapd's own login lines name the client, once per version.
    wait_count(ns.text, r" cyrus/imap\[\d+\]: login: \S* ?\[%s\] %s "
               r"plaintext User logged in" % (re.escape(CLIENT), USER),
               len(VERSIONS), "imapd's logins in syslog")
    untrusted_refused(port, logs)
    monitor_banner(port, "* OK", bye=b"a LOGIN %s %s\r\nb LOGOUT\r\n" % (
        USER.encode(), PASSWORD.encode()))
    ns.wait(r" cyrus/imap\[\d+\]: login: \S* ?\[%s\] %s plaintext" % (
        re.escape(MONITOR), USER), what="cyrus syslog")
    check(proc.alive(), "cyrus master died%s" % proc.tail())


# ===== HTTP: nginx, master and workers =====


def http_get(target, src):
    """GET / from src; returns (status line, body, client port)."""
    with pp.connect(target, src=src, timeout=10) as s:
        cport = s.getsockname()[1]
        s.sendall(b"GET / HTTP/1.0\r\nHost: ppshim.test\r\n\r\n")
        status, _, data = pp.wait_closed(s, 10 * SLOW)
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(errors="replace"), body, cport


@test(timeout=90)
def nginx_master_workers():
    # nginx as Debian runs it: a master that forks worker processes, which
    # accept; the master read the library's configuration, the workers
    # inherit it (nginx empties the workers' environment).
    pp.find("nginx", "/usr/sbin/nginx")
    need_root("nginx (workers as nobody)")
    tmp = daemon_tmp()
    port = free_port(BACK)
    proc = pp.nginx(tmp, pp.nginx_http(
        tmp, '$remote_addr $remote_port "$request" $status',
        ["%s:%d" % (BACK, port)]), workers=2, mode=0o644,
        env=matrix_env(port), valgrind=False)
    wait_listening(proc, port, timeout=20)
    access = os.path.join(tmp, "access.log")
    deadline = time.monotonic() + 10 * SLOW
    while len(children(proc.pid)) < 2:
        check(time.monotonic() < deadline, "nginx started no workers%s" %
              proc.tail())
        time.sleep(0.05)
    hap = HAProxy(port)
    for version in VERSIONS:
        status, body, cport = http_get(hap.target(version), CLIENT)
        check(" 200 " in status + " ", "%s: status %r" % (version, status))
        eq(body, b"hello %s %d\n" % (CLIENT.encode(), cport),
           "%s: body" % version)
        wait_count(lambda: read_text(access), r"^%s %d \"GET / HTTP/1\.0\" "
                   r"200$" % (re.escape(CLIENT), cport), 1,
                   "nginx's access log")
    untrusted_refused(port, lambda: read_text(access) + read_text(
        os.path.join(tmp, "error.log")))
    status, body, cport = http_get((BACK, port), MONITOR)
    eq(body, b"hello %s %d\n" % (MONITOR.encode(), cport), "monitor: body")
    wait_count(lambda: read_text(access), r"^%s %d " % (
        re.escape(MONITOR), cport), 1, "nginx's access log")
    check(proc.alive(), "nginx died%s" % proc.tail())


# ===== The README's "Servers tested" table =====

# Files whose every test is a daemon test, named by a row of the table,
# but for these (test: why no row).
ALL_NAMED = ("test_daemons.py", "test_matrix.py")
NOT_DAEMONS = {
    "readme_servers_table_matches_tests": "this check",
    "holdup_select_server": "the project's own test server "
                            "(tests/helpers/srv -m selectblock)",
}


def registered_tests(path):
    """The names of the functions decorated with @test in path."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            if isinstance(target, ast.Name) and target.id == "test":
                names.append(node.name)
    return names


def readme_rows():
    """The rows of the README's "Servers tested" table, as lists of
    cells."""
    text = read_text(os.path.join(TOP, "README.md"))
    m = re.search(r"(?ms)^## Servers tested\n(.*?)(?=^## )", text)
    check(m is not None, "README.md has no section \"Servers tested\"")
    lines = [ln for ln in m.group(1).splitlines() if ln.startswith("|")]
    check(len(lines) > 2, "no table under \"Servers tested\"")
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    eq(header, ["Daemon", "Version", "Process shape", "v1/v2",
                "What the test asserts", "Tests"], "the table's columns")
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        check(len(cells) == len(header) and all(cells),
              "README row with %d cells or an empty one: %r" % (len(cells),
                                                                line))
        rows.append(cells)
    return rows


def package_version(package):
    """The version of package installed, or unpacked by
    tests/fetch-daemons.sh, or None."""
    p = subprocess.run(["dpkg-query", "-W", "-f", "${Status} ${Version}",
                        package], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=30)
    out = p.stdout.decode().split()
    if p.returncode == 0 and "installed" in out and len(out) >= 4:
        return out[-1]
    try:
        for name in os.listdir(OPT):
            for line in read_text(os.path.join(OPT, name,
                                               ".fetched")).split():
                if line.startswith(package + "="):
                    return line.split("=", 1)[1]
    except OSError:
        pass
    return None


@test(timeout=60)
def readme_servers_table_matches_tests():
    # Every row names tests that exist; every daemon test is in a row;
    # every version is the one on this machine, where it is there.
    rows = readme_rows()
    tests = {}
    for name in os.listdir(HERE):
        if name.startswith("test_") and name.endswith(".py"):
            tests[name] = set(registered_tests(os.path.join(HERE, name)))
    named = {}
    for row in rows:
        current = None
        for token in re.findall(r"`([^`]+)`", row[5]):
            if token.endswith(".py"):
                check(token in tests, "%s: no file %s" % (row[0], token))
                current = token
                continue
            check(current is not None, "%s: test %s before its file" % (
                row[0], token))
            check(token in tests[current], "%s: %s has no test %s" % (
                row[0], current, token))
            named.setdefault(current, set()).add(token)
        check(current is not None, "%s: no test named" % row[0])
    for name in ALL_NAMED:
        missing = tests[name] - named.get(name, set()) - set(NOT_DAEMONS)
        check(not missing, "tests of %s in no row of the README's table: %s"
              % (name, ", ".join(sorted(missing))))
    checked = 0
    for row in rows:
        pairs = re.findall(r"`([a-z0-9][a-z0-9.+-]*)` ([0-9][^ ,]*)", row[1])
        check(pairs, "%s: no `package` version in %r" % (row[0], row[1]))
        for package, upstream in pairs:
            have = package_version(package)
            if have is None:
                continue
            have = have.split(":", 1)[-1]
            check(have.startswith(upstream), "%s: README says %s %s, this "
                  "machine has %s" % (row[0], package, upstream, have))
            checked += 1
    check(checked > 0 or not os.path.isdir("/var/lib/dpkg"),
          "no version of the table could be checked")


if __name__ == "__main__":
    pp.main("test_matrix")

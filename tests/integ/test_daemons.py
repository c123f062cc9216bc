#!/usr/bin/env python3
"""test_daemons.py - legacy daemons behind HAProxy, under the shim.

Real Debian daemons that know nothing about the PROXY protocol, each run
under the library on loopback high ports with its configuration and files
in a temporary directory, behind a real HAProxy (mode tcp) that sends
version 1 (send-proxy) and version 2 (send-proxy-v2) headers:

  - vsftpd standalone (listen=YES), with PP_SOCKNAME=real and =proxied:
    login, passive listing and download, vsftpd's own check that the data
    connection comes from the control connection's client, its logs; and
    what each PP_SOCKNAME does when the advertised destination is not a
    local address (a load balancer on another host);
  - vsftpd in inetd mode (listen=NO) under a preloaded tcpserver and a
    preloaded xinetd: the addresses reach the vsftpd they execute for
    each connection through the hand-over;
  - exim4 (daemon-light) with a configuration of its own: no banner
    before the header, a message accepted and delivered, the client in
    the main log and the Received: header; also behind nginx (stream,
    proxy_protocol on) and stunnel (protocol = proxy, SMTPS);
  - OpenSSH's sshd, which executes itself again for each connection: the
    re-executed process logs the client, for a raw connection and for a
    real ssh client that fails to authenticate.
  - daemons that wait with select/poll before a blocking accept: xinetd
    and openbsd-inetd (two services, one PROXY-only, whoami executed per
    connection), sendmail (an MTA port PROXY-only, an MSA port not),
    Python's socketserver and srv -m selectblock: one bad connection
    (an untrusted byte, a silent trusted client, a health check that
    connects and closes) holds up none of their other clients (the
    holdup_* tests; see "One bad connection holds up no one" below).

The client HAProxy relays binds 127.0.0.5, HAProxy listens on 127.0.0.2
and connects from 127.0.0.1, the daemons listen on 127.0.0.1 and trust
only 127.0.0.1 (PP_ALLOW): any 127.0.0.5 a daemon reports came from a
header.  Nothing leaves loopback: no DNS, no ident, no reverse lookups.

The daemons need root (vsftpd and sshd drop privileges themselves; exim
accepts -C from root only).  openbsd-inetd and sendmail conflict with
xinetd and exim4 as Debian packages: .ci/run unpacks them under
/opt/ppshim-test (PPSHIM_TEST_OPT), where the tests look for them
when they are not installed.  A test whose daemon is not installed, or that
is not run as root, is skipped with the reason.  Daemons run without
valgrind under make valgrind: they execute setuid, sandboxed and
re-executed children that memcheck cannot follow.  The vsftpd tests skip
in sanitizer builds: vsftpd's address-space limit leaves no room for the
ASan runtime.

Run by make check; by hand, as root, from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_daemons.py [NAME...]
"""

import ftplib
import os
import pwd
import random
import re
import shutil
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import caps  # noqa: E402
import pptest as pp  # noqa: E402
from pptest import (SLOW, Fail, Proc, Skip, check, eq, find, write,  # noqa: E402
                    free_port, test, wait_listening)

CLIENT = "127.0.0.5"    # the client that HAProxy relays
FRONT = "127.0.0.2"     # HAProxy's frontends
BACK = "127.0.0.1"      # the daemons; HAProxy's source towards them
VERSIONS = ("v1", "v2")

# ===== Small helpers =====


def need_root(what):
    if os.geteuid() != 0:
        raise Skip("%s must be started by root" % what)


def user_ids(name):
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise Skip("no user %s" % name)
    return pw.pw_uid, pw.pw_gid


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def daemon_tmp():
    """A temporary directory that daemons which drop privileges can
    traverse (mkdtemp makes it 0700)."""
    tmp = pp.tempdir()
    os.chmod(tmp, 0o755)
    return tmp


def subdir(tmp, name, mode=0o755, owner=None):
    path = os.path.join(tmp, name)
    os.mkdir(path)
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)
    return path


def wait_file_line(path, pattern, timeout=5, what=None):
    """Waits until a line of the file at path matches pattern; returns
    it."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout * SLOW
    while True:
        lines = read_text(path).splitlines()
        for line in lines:
            if rx.search(line):
                return line
        if time.monotonic() > deadline:
            raise Fail("%s has no line matching %r within %ss; last lines:"
                       "\n  %s" % (what or path, pattern, timeout * SLOW,
                                   "\n  ".join(lines[-12:])))
        time.sleep(0.05)


def free_port_range(count, host=BACK):
    """count consecutive ports, all free now, below both the ephemeral
    range and the ports free_port hands out."""
    for _ in range(100):
        base = random.randint(10000, 20000 - count)
        if all(port_free(host, p) for p in range(base, base + count)):
            return base, base + count - 1
    raise Fail("no free port range")


def port_free(host, port):
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def shim_env(port, **extra):
    """The daemon's configuration: one PROXY-only port, one trusted
    proxy."""
    env = {"PP_PORTS": str(port), "PP_ALLOW": BACK, "PP_LOG": "info"}
    env.update(extra)
    return env


def start_daemon(argv, port, env, name, cwd=None):
    """A daemon under the shim, waited for until it listens on port."""
    proc = Proc(argv, env=env, valgrind=False, name=name, cwd=cwd)
    wait_listening(proc, port)
    return proc


# ===== HAProxy =====

class HAProxy(pp.HAProxy):
    """HAProxy in the foreground: frontend v1 (send-proxy) and v2
    (send-proxy-v2) on FRONT, relaying to the daemon's port on BACK."""

    def __init__(self, port):
        super().__init__("%s:%d" % (BACK, port), [
            ("v1", "send-proxy", []),
            ("v2", "send-proxy-v2 proxy-v2-options crc32c", [])],
            host=FRONT, source=BACK, timeout=60)


# ===== FTP =====

VSFTPD_CFG = """\
{listen}
anonymous_enable=YES
anon_root={tmp}/root
no_anon_password=YES
ftp_username=ftp
local_enable=NO
write_enable=NO
secure_chroot_dir={tmp}/empty
pasv_enable=YES
pasv_min_port={pasv_min}
pasv_max_port={pasv_max}
pasv_promiscuous=NO
port_enable=NO
connect_from_port_20=NO
xferlog_enable=YES
xferlog_file={tmp}/xferlog
vsftpd_log_file={tmp}/vsftpd.log
log_ftp_protocol=YES
dual_log_enable=YES
syslog_enable=NO
idle_session_timeout=60
data_connection_timeout=30
"""

VSFTPD_STANDALONE = """\
listen=YES
listen_ipv6=NO
listen_address={back}
listen_port={port}
background=NO"""

VSFTPD_INETD = "listen=NO\nlisten_ipv6=NO"

FTP_FILE = "hello.bin"


class FtpTree:
    """A vsftpd configuration in a temporary directory: an anonymous root
    holding one file, a passive port range, the logs."""

    def __init__(self, standalone, port):
        self.tmp = daemon_tmp()
        root = subdir(self.tmp, "root")
        subdir(self.tmp, "empty")
        self.content = os.urandom(300000)
        with open(os.path.join(root, FTP_FILE), "wb") as f:
            f.write(self.content)
        os.chmod(os.path.join(root, FTP_FILE), 0o644)
        pasv_min, pasv_max = free_port_range(20)
        listen = VSFTPD_STANDALONE if standalone else VSFTPD_INETD
        self.conf = write(os.path.join(self.tmp, "vsftpd.conf"),
                          VSFTPD_CFG.format(
                              listen=listen.format(back=BACK, port=port),
                              tmp=self.tmp, pasv_min=pasv_min,
                              pasv_max=pasv_max), 0o600)
        self.log = os.path.join(self.tmp, "vsftpd.log")
        self.xferlog = os.path.join(self.tmp, "xferlog")


def vsftpd_bin():
    need_root("vsftpd")
    if pp.ASAN_LIB:
        # Its session processes run under RLIMIT_AS of about 100 MB: the
        # ASan runtime cannot map its shadow memory there ("Failed to
        # mmap") and the session dies, with or without this library.
        raise Skip("vsftpd limits its sessions' address space, which the "
                   "ASan runtime cannot live with")
    user_ids("ftp")
    return find("vsftpd", "/usr/sbin/vsftpd")


class FtpClient(ftplib.FTP):
    """ftplib, following the address of the 227 reply (as FTP clients
    other than ftplib do) and remembering it."""

    trust_server_pasv_ipv4_address = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pasv = []

    def makepasv(self):
        host, port = super().makepasv()
        self.pasv.append(host)
        return host, port

    def connect_with_header(self, target, header, src):
        """Connects from src to target and sends header first, as a proxy
        would; then reads the banner as FTP.connect does."""
        self.sock = pp.connect(target, src=src, timeout=10)
        self.sock.sendall(header)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def ftp_client():
    return FtpClient(source_address=(CLIENT, 0), timeout=10 * SLOW)


def ftp_session(ftp, tree):
    """Anonymous login, a passive listing and a passive download on a
    connected FtpClient.  Returns the listing."""
    ftp.login()
    listing = []
    ftp.retrlines("LIST", listing.append)
    check(any(line.endswith(" " + FTP_FILE) for line in listing),
          "LIST: %r" % listing)
    got = bytearray()
    ftp.retrbinary("RETR " + FTP_FILE, got.extend)
    check(bytes(got) == tree.content, "RETR: got %d bytes, want %d" % (
        len(got), len(tree.content)))
    ftp.quit()
    return listing


def ftp_through(target, tree):
    """One FTP session through HAProxy from CLIENT.  Returns the passive
    addresses vsftpd announced and the client's port."""
    ftp = ftp_client()
    try:
        welcome = ftp.connect(*target)
        check(welcome.startswith("220"), "banner %r" % welcome)
        cport = ftp.sock.getsockname()[1]
        ftp_session(ftp, tree)
    except ftplib.all_errors + (EOFError,) as e:
        raise Fail("FTP through %s:%d: %s: %s%s" % (
            target[0], target[1], type(e).__name__, e, log_tail(tree.log)))
    finally:
        ftp.close()
    return ftp.pasv, cport


def log_tail(path, n=6):
    lines = read_text(path).splitlines()[-n:]
    return "".join("\n  %s: %s" % (os.path.basename(path), ln)
                   for ln in lines)


def check_vsftpd_logs(tree, sessions):
    """vsftpd's own log and its xferlog name CLIENT, and only CLIENT."""
    want = 'Client "%s"' % CLIENT
    for pattern in ("CONNECT: ", "OK LOGIN: ", "OK DOWNLOAD: "):
        line = wait_file_line(tree.log, pattern + re.escape(want),
                              what="vsftpd.log")
        check(FTP_FILE in line or pattern != "OK DOWNLOAD: ", line)
    clients = re.findall(r'CONNECT: Client "([^"]*)"', read_text(tree.log))
    eq(clients, [CLIENT] * sessions, "clients in vsftpd.log")
    wait_file_line(tree.xferlog, r" %s %d /%s b " % (
        re.escape(CLIENT), len(tree.content), re.escape(FTP_FILE)),
        what="xferlog")


def vsftpd_standalone(sockname):
    vsftpd = vsftpd_bin()
    port = free_port(BACK)
    tree = FtpTree(True, port)
    proc = start_daemon([vsftpd, tree.conf], port,
                        shim_env(port, PP_SOCKNAME=sockname), "vsftpd")
    hap = HAProxy(port)
    for version in VERSIONS:
        pasv, _ = ftp_through(hap.target(version), tree)
        # vsftpd announces, and binds its passive listener to, the address
        # getsockname gives for the control connection: the advertised
        # destination (HAProxy's frontend) or its own.
        want = FRONT if sockname == "proxied" else BACK
        eq(pasv, [want, want], "%s: passive address" % version)
    check_vsftpd_logs(tree, len(VERSIONS))
    check(proc.alive(), "vsftpd died%s" % proc.tail())
    return proc


@test(timeout=60)
def vsftpd_standalone_sockname_real():
    vsftpd_standalone("real")


@test(timeout=60)
def vsftpd_standalone_sockname_proxied():
    vsftpd_standalone("proxied")


# What a load balancer on another host advertises as the destination: its
# own address, which is not local here (TEST-NET-1, never contacted).
LB_ADDRESS = "192.0.2.21"


def ftp_with_header(port, sockname):
    """vsftpd under the shim, reached as a remote load balancer would: the
    header comes from BACK and advertises CLIENT -> LB_ADDRESS:21."""
    vsftpd = vsftpd_bin()
    tree = FtpTree(True, port)
    proc = start_daemon([vsftpd, tree.conf], port,
                        shim_env(port, PP_SOCKNAME=sockname), "vsftpd")
    ftp = ftp_client()
    header = pp.v1(src=CLIENT, dst=LB_ADDRESS, sport=40000, dport=21)
    try:
        welcome = ftp.connect_with_header((BACK, port), header, BACK)
    except ftplib.all_errors + (EOFError,) as e:
        raise Fail("FTP: %s: %s" % (type(e).__name__, e))
    check(welcome.startswith("220"), "banner %r" % welcome)
    return tree, proc, ftp


@test(timeout=60)
def vsftpd_remote_balancer_sockname_real():
    port = free_port(BACK)
    tree, proc, ftp = ftp_with_header(port, "real")
    try:
        ftp_session(ftp, tree)
    except ftplib.all_errors + (EOFError,) as e:
        raise Fail("FTP: %s: %s%s" % (type(e).__name__, e,
                                      log_tail(tree.log)))
    finally:
        ftp.close()
    eq(ftp.pasv, [BACK, BACK], "passive address")
    check_vsftpd_logs(tree, 1)


@test(timeout=60)
def vsftpd_remote_balancer_sockname_proxied():
    port = free_port(BACK)
    tree, proc, ftp = ftp_with_header(port, "proxied")
    try:
        try:
            ftp.login()
        except ftplib.all_errors + (EOFError,) as e:
            raise Fail("FTP login: %s: %s%s" % (type(e).__name__, e,
                                                log_tail(tree.log)))
        # vsftpd binds its passive listener to LB_ADDRESS: the session
        # ends with "500 OOPS: vsf_sysutil_bind".
        try:
            ftp.retrlines("LIST", lambda line: None)
        except ftplib.all_errors + (EOFError,) as e:
            check(str(e).startswith("500 OOPS: vsf_sysutil_bind"),
                  "PASV: %s: %s" % (type(e).__name__, e))
        else:
            raise Fail("passive mode worked with a non-local destination")
    finally:
        ftp.close()
    wait_file_line(tree.log, 'CONNECT: Client "%s"' % re.escape(CLIENT),
                   what="vsftpd.log")
    check(proc.alive(), "vsftpd died%s" % proc.tail())


@test(timeout=60)
def vsftpd_inetd_under_tcpserver():
    # tcpserver is preloaded: its accept reads the header, it logs the
    # client, and the vsftpd it executes for each connection (listen=NO,
    # the socket on fds 0 and 1) gets the addresses by hand-over.
    vsftpd = vsftpd_bin()
    tcpserver = find("tcpserver", "/usr/bin/tcpserver")
    port = free_port(BACK)
    tree = FtpTree(False, port)
    proc = start_daemon([tcpserver, "-v", "-R", "-H", "-l0", BACK,
                         str(port), vsftpd, tree.conf], port, shim_env(port),
                        "tcpserver")
    hap = HAProxy(port)
    for version in VERSIONS:
        pasv, cport = ftp_through(hap.target(version), tree)
        eq(pasv, [FRONT, FRONT], "%s: passive address" % version)
        # tcpserver's log: the local address from getsockname (the port it
        # prints is its listener's), the client from accept.
        proc.wait_line(r"^tcpserver: ok \d+ 0:%s:%d :%s::%d$" % (
            re.escape(FRONT), port, re.escape(CLIENT), cport), stream="err")
    check_vsftpd_logs(tree, len(VERSIONS))


def xinetd_conf(tmp, services, defaults=""):
    """An xinetd configuration logging to tmp/xinetd.log, with the lines
    defaults added to its defaults; services are (name, port, server,
    more lines) run as root for each TCP connection to BACK:port."""
    text = """\
defaults
{
    log_type = FILE %s/xinetd.log
    log_on_success = PID HOST
    log_on_failure = HOST
%s}
""" % (tmp, defaults)
    for name, port, server, more in services:
        text += """
service %s
{
    type = UNLISTED
    flags = IPv4
    socket_type = stream
    protocol = tcp
    wait = no
    user = root
    bind = %s
    port = %d
    server = %s
%s}
""" % (name, BACK, port, server, more)
    return text


@test(timeout=60)
def vsftpd_inetd_under_xinetd():
    # The same with xinetd preloaded; xinetd logs the client too.
    vsftpd = vsftpd_bin()
    xinetd = find("xinetd", "/usr/sbin/xinetd")
    port = free_port(BACK)
    tree = FtpTree(False, port)
    service = ("ftp", port, vsftpd, "    server_args = %s\n" % tree.conf)
    conf = write(os.path.join(tree.tmp, "xinetd.conf"),
                 xinetd_conf(tree.tmp, [service]))
    start_daemon([xinetd, "-dontfork", "-f", conf, "-pidfile",
                  os.path.join(tree.tmp, "xinetd.pid")], port,
                 shim_env(port), "xinetd")
    hap = HAProxy(port)
    for version in VERSIONS:
        pasv, _ = ftp_through(hap.target(version), tree)
        eq(pasv, [FRONT, FRONT], "%s: passive address" % version)
    check_vsftpd_logs(tree, len(VERSIONS))
    log = read_text(os.path.join(tree.tmp, "xinetd.log"))
    eq(re.findall(r"START: ftp pid=\d+ from=(\S+)", log),
       [CLIENT] * len(VERSIONS), "clients in xinetd.log")


# ===== SMTP =====

EXIM_CFG = """\
primary_hostname = ppshim.test
qualify_domain = ppshim.test
domainlist local_domains = ppshim.test
local_interfaces = <; {back}
daemon_smtp_ports = {port}
spool_directory = {tmp}/spool
log_file_path = {tmp}/log/%slog
pid_file_path = {tmp}/exim.pid
log_selector = +smtp_connection +incoming_port
# Nothing leaves loopback: no DNS, no ident, no TLS.
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
tls_advertise_hosts =
# The environment is emptied at start: LD_PRELOAD and PP_* included.
keep_environment =
acl_smtp_rcpt = acl_rcpt

begin acl
acl_rcpt:
  accept domains = +local_domains
  deny message = relay not permitted

begin routers
to_file:
  driver = accept
  domains = +local_domains
  transport = to_file

begin transports
to_file:
  driver = appendfile
  file = {tmp}/mail/inbox
  user = {user}
  mode = 0644
"""

EXIM_USERS = ("Debian-exim", "exim", "mail")


class Exim:
    """exim as a daemon (-bdf) with its own configuration, spool, logs and
    mailboxes in a temporary directory, started by root under the shim."""

    def __init__(self):
        need_root("exim (-C)")
        exim = find("exim4", "/usr/sbin/exim4", "/usr/sbin/exim")
        user = next((u for u in EXIM_USERS if _has_user(u)), None)
        if user is None:
            raise Skip("no exim user (%s)" % ", ".join(EXIM_USERS))
        owner = user_ids(user)
        self.tmp = daemon_tmp()
        for name in ("spool", "log", "mail"):
            subdir(self.tmp, name, 0o750, owner)
        self.port = free_port(BACK)
        self.conf = write(os.path.join(self.tmp, "exim.conf"),
                          EXIM_CFG.format(back=BACK, port=self.port,
                                          tmp=self.tmp, user=user), 0o644)
        self.mainlog = os.path.join(self.tmp, "log", "mainlog")
        self.proc = start_daemon([exim, "-C", self.conf, "-bdf"], self.port,
                                 shim_env(self.port), "exim")

    @property
    def mailbox(self):
        return os.path.join(self.tmp, "mail", "inbox")


def _has_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def send_mail(target, subject, tls=False):
    """A message to postmaster@ppshim.test through target from CLIENT with
    smtplib, over implicit TLS (certificate not verified) when tls.
    Returns the client's port."""
    rcpt = "postmaster@ppshim.test"
    msg = ("From: sender@example.org\r\nTo: %s\r\nSubject: %s\r\n\r\n"
           "Hello through the balancer.\r\n" % (rcpt, subject))
    args = dict(local_hostname="client.test", source_address=(CLIENT, 0),
                timeout=10 * SLOW)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        smtp_class, args["context"] = smtplib.SMTP_SSL, ctx
    else:
        smtp_class = smtplib.SMTP
    try:
        with smtp_class(target[0], target[1], **args) as smtp:
            cport = smtp.sock.getsockname()[1]
            refused = smtp.sendmail("sender@example.org", [rcpt], msg)
    except (smtplib.SMTPException, OSError) as e:
        raise Fail("SMTP through %s:%d: %s: %s" % (
            target[0], target[1], type(e).__name__, e))
    eq(refused, {}, "refused recipients")
    return cport


def received_header(mailbox, subject, timeout=10):
    """The Received: header of the delivered message with subject."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        for message in re.split(r"(?m)^From ", read_text(mailbox)):
            if "Subject: %s\n" % subject in message:
                m = re.search(r"(?m)^Received: .*(?:\n[ \t].*)*", message)
                check(m is not None, "no Received: in %r" % message)
                return m.group(0)
        if time.monotonic() > deadline:
            raise Fail("no message %r delivered to %s:\n%s" % (
                subject, mailbox, read_text(mailbox)[-2000:]))
        time.sleep(0.05)


def mail_through(exim, target, what, tls=False):
    """A message through target from CLIENT: exim's main log and the
    delivered message's Received: header name CLIENT and its port."""
    subject = "ppshim %s %d" % (what, random.randint(0, 1 << 30))
    cport = send_mail(target, subject, tls)
    wait_file_line(exim.mainlog, r"SMTP connection from \[%s\]:%d " % (
        re.escape(CLIENT), cport), what="exim mainlog")
    wait_file_line(exim.mainlog, r"<= sender@example\.org "
                   r"H=\(client\.test\) \[%s\]:%d " % (
                       re.escape(CLIENT), cport), what="exim mainlog")
    received = received_header(exim.mailbox, subject)
    check(received.startswith(
        "Received: from [%s] (port=%d helo=client.test)\n" % (
            CLIENT, cport)), "%s: %r" % (what, received))


@test(timeout=60)
def exim_through_haproxy():
    exim = Exim()
    hap = HAProxy(exim.port)
    for version in VERSIONS:
        mail_through(exim, hap.target(version), version)
    check(exim.proc.alive(), "exim died%s" % exim.proc.tail())


NGINX_STREAM = """\
stream {{
    server {{
        listen {front}:{listen};
        proxy_pass {back}:{port};
        proxy_bind {back};
        proxy_protocol on;
    }}
}}
"""

NGINX_STREAM_MODULES = ("/usr/lib/nginx/modules/ngx_stream_module.so",
                        "/usr/lib64/nginx/modules/ngx_stream_module.so")


def nginx_stream_module(nginx):
    """The load_module line nginx needs for stream {}, or Skip."""
    p = subprocess.run([nginx, "-V"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if "--with-stream" in p.stdout.decode(errors="replace").split():
        return ""  # built in
    for path in NGINX_STREAM_MODULES:
        if os.path.isfile(path):
            return "load_module %s;" % path
    raise Skip("nginx has no stream module (libnginx-mod-stream)")


@test(timeout=60)
def exim_through_nginx_stream():
    # nginx as the sender: stream {} with proxy_protocol on (version 1).
    nginx = find("nginx", "/usr/sbin/nginx")
    load_module = nginx_stream_module(nginx)
    exim = Exim()
    listen = free_port(FRONT)
    proc = pp.nginx(pp.tempdir(), NGINX_STREAM.format(
        front=FRONT, listen=listen, back=BACK, port=exim.port),
        load_module=load_module, preload=False)
    wait_listening(proc, listen)
    mail_through(exim, (FRONT, listen), "nginx")
    check(exim.proc.alive(), "exim died%s" % exim.proc.tail())


STUNNEL_CFG = """\
foreground = yes
pid =
debug = 5
output = {tmp}/stunnel.log

[smtps]
accept = {front}:{listen}
connect = {back}:{port}
local = {back}
cert = {tmp}/cert.pem
key = {tmp}/key.pem
protocol = proxy
"""


def self_signed(tmp):
    openssl = find("openssl", "/usr/bin/openssl")
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-days", "2", "-subj", "/CN=ppshim.test",
                        "-keyout", os.path.join(tmp, "key.pem"),
                        "-out", os.path.join(tmp, "cert.pem")],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    check(p.returncode == 0, "openssl: %r" % p.stdout[-500:])


@test(timeout=60)
def exim_through_stunnel():
    # stunnel as the sender: it terminates TLS (SMTPS) and relays the
    # plain session with a version 1 header (protocol = proxy).
    stunnel = find("stunnel", "/usr/bin/stunnel4", "/usr/bin/stunnel")
    exim = Exim()
    tmp = pp.tempdir()
    self_signed(tmp)
    listen = free_port(FRONT)
    cfg = write(os.path.join(tmp, "stunnel.conf"), STUNNEL_CFG.format(
        tmp=tmp, front=FRONT, listen=listen, back=BACK, port=exim.port))
    proc = Proc([stunnel, cfg], preload=False, name="stunnel")
    wait_listening(proc, listen)
    mail_through(exim, (FRONT, listen), "stunnel", tls=True)
    check(exim.proc.alive(), "exim died%s" % exim.proc.tail())


@test(timeout=60)
def exim_banner_waits_for_header():
    # SMTP servers speak first: exim must not greet the proxy before the
    # header is through, or the proxy would relay a banner that exim sent
    # to the wrong client.
    exim = Exim()
    sport = random.randint(1024, 65535)
    with pp.connect((BACK, exim.port), src=BACK) as s:
        status, _, data = pp.wait_closed(s, 0.5)
        check(status == "timeout" and not data,
              "before the header: %s %r" % (status, data))
        s.sendall(pp.v1(src=CLIENT, dst=BACK, sport=sport, dport=exim.port))
        banner = pp.read_line(s)
        check(banner.startswith("220 ppshim.test ESMTP Exim "),
              "banner %r" % banner)
        s.sendall(b"QUIT\r\n")
        check(pp.read_line(s).startswith("221 "), "no reply to QUIT")
    wait_file_line(exim.mainlog, r"SMTP connection from \[%s\]:%d " % (
        re.escape(CLIENT), sport), what="exim mainlog")
    # A source that is no trusted proxy never reaches exim.
    r = pp.exchange((BACK, exim.port), b"EHLO intruder\r\n",
                    src="127.0.0.7")
    check(r.refused, "untrusted source: %r" % r)
    time.sleep(0.2)
    check("127.0.0.7" not in read_text(exim.mainlog),
          "exim saw the untrusted source")
    check(exim.proc.alive(), "exim died%s" % exim.proc.tail())


# ===== SSH =====

SSHD_CFG = """\
ListenAddress {back}:{port}
HostKey {tmp}/hostkey
PidFile {tmp}/sshd.pid
LogLevel VERBOSE
UsePAM no
UseDNS no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
MaxStartups 64
"""

SSH_USER = "ppshim-nobody"   # no such user: authentication fails


class Sshd:
    """OpenSSH's sshd in the foreground (-D), logging to stderr (-e), with
    its own configuration and host key; it executes itself again (-R) for
    every connection, and that process logs the client."""

    def __init__(self):
        need_root("sshd")
        sshd = find("sshd", "/usr/sbin/sshd")
        keygen = find("ssh-keygen", "/usr/bin/ssh-keygen")
        self.tmp = daemon_tmp()
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f",
                        os.path.join(self.tmp, "hostkey")], check=True,
                       stdin=subprocess.DEVNULL, timeout=30)
        # The privilege separation directory sshd chroots into.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.port = free_port(BACK)
        conf = write(os.path.join(self.tmp, "sshd_config"), SSHD_CFG.format(
            back=BACK, port=self.port, tmp=self.tmp), 0o600)
        self.proc = start_daemon([sshd, "-D", "-e", "-f", conf],
                                 self.port, shim_env(self.port), "sshd")

    def wait_log(self, pattern, timeout=10, start=0):
        return self.proc.wait_line(pattern, timeout=timeout, start=start,
                                   stream="err")


def ssh_banner_exchange(target):
    """Reads sshd's version line through target from CLIENT, sends ours,
    and hangs up.  Returns the client's port."""
    with pp.connect(target, src=CLIENT, timeout=10) as s:
        banner = pp.read_line(s, timeout=10)
        check(banner.startswith("SSH-2.0-OpenSSH"), "banner %r" % banner)
        cport = s.getsockname()[1]
        s.sendall(b"SSH-2.0-ppshim_test\r\n")
        pp.wait_closed(s, 0.2)
    return cport


@test(timeout=60)
def sshd_reexec_logs_client():
    sshd = Sshd()
    hap = HAProxy(sshd.port)
    for version in VERSIONS:
        cport = ssh_banner_exchange(hap.target(version))
        sshd.wait_log(r"^Connection from %s port %d on %s port %d" % (
            re.escape(CLIENT), cport, re.escape(FRONT), hap.ports[version]))
    check(sshd.proc.alive(), "sshd died%s" % sshd.proc.tail())


@test(timeout=60)
def sshd_ssh_client_auth_fails_as_client():
    ssh = find("ssh", "/usr/bin/ssh")
    sshd = Sshd()
    hap = HAProxy(sshd.port)
    env = {k: v for k, v in pp.child_env(preload=False).items()
           if not k.startswith("SSH_")}
    start = 0
    for version in VERSIONS:
        host, port = hap.target(version)
        p = subprocess.run(
            [ssh, "-F", "/dev/null", "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null",
             "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=%d" % (10 * SLOW),
             "-b", CLIENT, "-p", str(port), "-l", SSH_USER, host, "true"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, timeout=30 * SLOW)
        err = p.stderr.decode(errors="replace")
        check(p.returncode == 255 and "Permission denied" in err,
              "%s: ssh rc=%d %r" % (version, p.returncode, err))
        # The monitor, then the sandboxed pre-authentication child.
        start, line = sshd.wait_log(r"^Invalid user %s from %s port (\d+)" % (
            SSH_USER, re.escape(CLIENT)), start=start)
        cport = int(line.rsplit(" ", 1)[1])
        sshd.wait_log(r"^Connection from %s port %d on %s port %d " % (
            re.escape(CLIENT), cport, re.escape(FRONT), port))
        sshd.wait_log(r"^Connection closed by invalid user %s %s port %d "
                      r"\[preauth\]" % (SSH_USER, re.escape(CLIENT), cport),
                      start=start)
        start += 1
    check(sshd.proc.alive(), "sshd died%s" % sshd.proc.tail())

# ===== One bad connection holds up no one =====
#
# The daemons below watch blocking listeners with select/poll and call
# accept when one is readable (xinetd, openbsd-inetd, sendmail, Python's
# socketserver, srv -m selectblock).  A connection that the library
# refuses or parks must not leave such a daemon inside the real blocking
# accept:
# its other listeners, its established clients and its own timers would
# wait for the next connection to arrive.
#
# Each test measures good clients (probes) through HAProxy and, where the
# daemon has them, on a second service that is not PROXY-only and on a
# connection established before the bad one.  First each probe alone
# (its baseline: the daemon's own work per connection, the slowest of
# three), then right after each bad connection, made directly to the
# PROXY-only port and held open while the probes run:
#
#   untrusted_byte  one byte from UNTRUSTED, in neither PP_ALLOW nor
#                   PP_DIRECT;
#   silent_trusted  a PP_ALLOW source that connects and sends nothing;
#   connect_close   a PP_ALLOW source that connects and closes at once
#                   (a load balancer's TCP health check).
#
# Bound: each probe is served within its baseline + 100 ms (times SLOW).
# A probe not served within PROBE_TIMEOUT is reported as held.  A shape
# whose probes were all served but one of them over the bound is measured
# again, up to ATTEMPTS times in all (the machine may be busy: two cores
# shared with other builds); a held probe is not.  The figures are
# printed as TAP comments.
#
# PP_DIRECT names a monitoring address (MONITOR): the library then leaves
# TCP_DEFER_ACCEPT off, so a silent client reaches accept at once, as it
# does on any listener with direct clients.

UNTRUSTED = "127.0.0.9"     # in neither PP_ALLOW nor PP_DIRECT
MONITOR = "127.0.0.3"       # PP_DIRECT
PLAIN = "127.0.0.6"         # the client of the services not PROXY-only
SHAPES = ("untrusted_byte", "silent_trusted", "connect_close")
DELAY_BOUND = 0.1           # seconds over the baseline, times SLOW
PROBE_TIMEOUT = 1.5         # seconds, times SLOW: then the probe is held
SETTLE = 0.05               # between the bad connection and the probes
BASELINE_ROUNDS = 3
ATTEMPTS = 3


class Held(Exception):
    """A probe was not served within PROBE_TIMEOUT."""


def holdup_env(port, **extra):
    return shim_env(port, PP_DIRECT=MONITOR, **extra)


def bad_connection(shape, port):
    """Makes one bad connection of the shape to BACK:port.  Returns the
    socket to close once the probes are done, or None."""
    if shape == "untrusted_byte":
        # The reset that the library sends from accept may come before
        # the byte is out, or even before connect returns: the daemon
        # took the connection all the same.
        s = socket.socket()
        s.bind((UNTRUSTED, 0))
        s.settimeout(PROBE_TIMEOUT * SLOW)
        try:
            s.connect((BACK, port))
            s.send(b"x")
        except (ConnectionResetError, BrokenPipeError):
            pass
        return s
    s = pp.connect((BACK, port), src=BACK)
    if shape == "silent_trusted":
        return s
    s.close()
    return None


def first_line(s, t0, timeout=PROBE_TIMEOUT):
    """Reads the first line from s, until t0 + timeout (times SLOW).
    Raises Held when it did not come by then."""
    buf = b""
    try:
        while b"\n" not in buf:
            left = t0 + timeout * SLOW - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            s.settimeout(left)
            chunk = s.recv(4096)
            if not chunk:
                raise Fail("closed before a line: %r" % buf)
            buf += chunk
    except socket.timeout:
        raise Held("no line within %.1fs" % (timeout * SLOW))
    except ConnectionResetError:
        raise Fail("reset before a line: %r" % buf)
    return buf.partition(b"\n")[0].decode(errors="replace")


def ask(target, src, send=b""):
    """Connects from src to target, sends, reads the first line.  Returns
    (line, the client's port, seconds from connect to the line)."""
    t0 = time.monotonic()
    try:
        s = pp.connect(target, src=src, timeout=PROBE_TIMEOUT)
    except socket.timeout:
        raise Held("connect took over %.1fs" % (PROBE_TIMEOUT * SLOW))
    with s:
        cport = s.getsockname()[1]
        if send:
            s.sendall(send)
        line = first_line(s, t0)
    return line, cport, time.monotonic() - t0


def field(line, key):
    """The value of key=value in a line of words, or None."""
    for word in line.split():
        k, _, v = word.partition("=")
        if k == key:
            return v
    return None


def peer_probe(target, src, send=b"", key="peer"):
    """A probe whose answer names the client in key=HOST:PORT (whoami,
    srv, the socketserver), checked against src and the client's port."""
    def start():
        def finish():
            line, cport, dt = ask(target, src, send)
            eq(field(line, key), "%s:%d" % (src, cport),
               "%s:%d: %s in %r" % (target[0], target[1], key, line))
            return dt
        return finish
    return start


def child_pids(pid):
    """The processes whose parent is pid (from /proc/*/stat)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read_text("/proc/%s/stat" % name)
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            kids.append(int(name))
    return kids


def quiesce(proc, timeout=5):
    """Waits until the daemon has no child left.  A child that exits
    while the daemon is blocked in accept interrupts it (SIGCHLD, EINTR)
    and would hide the hang this test looks for."""
    deadline = time.monotonic() + timeout * SLOW
    while child_pids(proc.pid):
        if time.monotonic() > deadline:
            raise Fail("%s still has children %r after %ss" % (
                proc.name, child_pids(proc.pid), timeout * SLOW))
        time.sleep(0.01)


def measure_holdup(what, port, probes, proc=None):
    """Runs probes (name -> start(); start() returns finish(), which
    returns the seconds its client took) alone, then after each bad
    connection to BACK:port, made once proc (the daemon) has no child.
    Returns what was held or over the bound (nothing when all is
    well)."""
    base = {}
    for name, start in probes:
        try:
            base[name] = max(start()() for _ in range(BASELINE_ROUNDS))
        except Held as e:
            raise Fail("%s: %s: not served without a bad connection: %s" %
                       (what, name, e))
    problems = []
    for shape in SHAPES:
        for attempt in range(1, ATTEMPTS + 1):
            finishers = [(name, start()) for name, start in probes]
            if proc is not None:
                quiesce(proc)
            keep = bad_connection(shape, port)
            time.sleep(SETTLE)
            got = {}
            try:
                for name, finish in finishers:
                    try:
                        got[name] = finish()
                    except Held:
                        got[name] = None
            finally:
                if keep is not None:
                    keep.close()
            over = [n for n, _ in probes if got[n] is None or
                    got[n] > base[n] + DELAY_BOUND * SLOW]
            print("# %s %s (try %d): %s" % (what, shape, attempt, ", ".join(
                "%s %s (alone %.1f ms)" % (
                    n, "held > %.1f s" % (PROBE_TIMEOUT * SLOW)
                    if got[n] is None else "%.1f ms" % (got[n] * 1000),
                    base[n] * 1000) for n, _ in probes)))
            if not over or any(got[n] is None for n in over):
                break
        if over:
            problems.append("%s: %s" % (shape, ", ".join(
                "%s %s" % (n, "held" if got[n] is None else
                           "+%.0f ms" % ((got[n] - base[n]) * 1000))
                for n in over)))
    sys.stdout.flush()
    return ["%s %s" % (what, p) for p in problems]


def check_holdups(problems):
    check(not problems, "after a bad connection (bound: %.0f ms over the "
          "time alone): %s" % (DELAY_BOUND * SLOW * 1000,
                               "; ".join(problems)))


def haproxy_probe(hap, version, send=b""):
    return ("%s through haproxy" % version,
            peer_probe(hap.target(version), CLIENT, send))


# ----- srv -m selectblock: a select loop over blocking listeners -----


def established_probe(srv, target):
    """A client through HAProxy whose connection srv accepted before the
    bad connection; measured from its request to srv's answer."""
    def start():
        s = pp.connect(target, src=CLIENT, timeout=PROBE_TIMEOUT)
        cport = s.getsockname()[1]
        try:
            srv.wait_line(r"^conn .* peer=%s:%d " % (re.escape(CLIENT),
                                                      cport))
        except BaseException:
            s.close()
            raise

        def finish():
            with s:
                t0 = time.monotonic()
                s.sendall(b"ping\n")
                line = first_line(s, t0)
                eq(field(line, "peer"), "%s:%d" % (CLIENT, cport),
                   "established client: peer in %r" % line)
                return time.monotonic() - t0
        return finish
    return start


@test(timeout=120)
def holdup_select_server():
    # srv -m selectblock: one thread, select over a PROXY-only listener
    # and a plain one (both blocking) and its non-blocking connections.
    srv = pp.start_srv("-m", "selectblock", host=BACK, extra_port=True,
                       env=holdup_env("{port}"))
    hap = HAProxy(srv.port)
    problems = []
    for version in VERSIONS:
        problems += measure_holdup("srv %s" % version, srv.port, [
            ("established %s" % version,
             established_probe(srv, hap.target(version))),
            ("plain port", peer_probe(srv.extra_target, PLAIN, b"hello\n")),
            haproxy_probe(hap, version, b"hello\n")])
    check(srv.alive(), "srv died%s" % srv.tail())
    check_holdups(problems)


# ----- Python's socketserver -----

SOCKETSERVER_PY = r"""
import signal, socketserver, sys, threading, time


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline()
        host, port = self.request.getpeername()[:2]
        self.wfile.write(("peer=%s:%d client_address=%s:%d\n" % (
            host, port, self.client_address[0], self.client_address[1])
            ).encode() + line)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server((sys.argv[1], int(sys.argv[2])), Handler)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
loop = threading.Thread(target=server.serve_forever,
                        kwargs={"poll_interval": 0.05})
loop.start()
print("listening", flush=True)
signal.sigwait({signal.SIGUSR1})
t0 = time.monotonic()
server.shutdown()
print("shutdown ms=%.1f" % ((time.monotonic() - t0) * 1000), flush=True)
server.server_close()
"""


def start_socketserver():
    """A socketserver.ThreadingTCPServer on BACK, serve_forever in a thread
    (poll_interval 50 ms); SIGUSR1 calls shutdown() and prints how long it
    took."""
    port = free_port(BACK)
    tmp = pp.tempdir()
    script = write(os.path.join(tmp, "server.py"), SOCKETSERVER_PY)
    proc = Proc([sys.executable, script, BACK, str(port)],
                env=holdup_env(port), valgrind=False, name="socketserver")
    proc.wait_line("^listening$", timeout=10)
    return proc, port


@test(timeout=120)
def holdup_socketserver():
    proc, port = start_socketserver()
    hap = HAProxy(port)
    problems = []
    for version in VERSIONS:
        target = hap.target(version)
        # The handler names the client twice: getpeername, client_address.
        line, cport, _ = ask(target, CLIENT, b"hello\n")
        eq(field(line, "client_address"), "%s:%d" % (CLIENT, cport),
           "client_address in %r" % line)
        problems += measure_holdup("socketserver %s" % version, port,
                                   [haproxy_probe(hap, version, b"hello\n")])
    check(proc.alive(), "the server died%s" % proc.tail())
    check_holdups(problems)


@test(timeout=120)
def socketserver_shutdown_after_bad_connection():
    # shutdown() waits for serve_forever to see its flag, which it checks
    # between two selects: never if the accept that follows one blocks.
    # Bound: the poll interval (50 ms) + 100 ms, times SLOW; a shutdown
    # over it but not held is tried again (ATTEMPTS), with a new server.
    bound = (0.05 + DELAY_BOUND) * SLOW
    problems = []
    for shape in SHAPES:
        for attempt in range(1, ATTEMPTS + 1):
            ms = shutdown_after(shape)
            print("# socketserver %s (try %d): shutdown() %s" % (
                shape, attempt, "held > %.1f s" % (PROBE_TIMEOUT * SLOW)
                if ms is None else "took %.1f ms" % ms))
            if ms is None or ms <= bound * 1000:
                break
        if ms is None or ms > bound * 1000:
            problems.append("%s: %s" % (shape, "held" if ms is None else
                                        "%.0f ms" % ms))
    check(not problems, "shutdown() after a bad connection (bound %.0f "
          "ms): %s" % (bound * 1000, "; ".join(problems)))


def shutdown_after(shape):
    """A socketserver behind HAProxy serves a client of each version, gets
    a bad connection of the shape, then SIGUSR1: the milliseconds its
    shutdown() took, or None when it did not return."""
    proc, port = start_socketserver()
    hap = HAProxy(port)
    for version in VERSIONS:
        line, cport, _ = ask(hap.target(version), CLIENT, b"hello\n")
        eq(field(line, "peer"), "%s:%d" % (CLIENT, cport), line)
    keep = bad_connection(shape, port)
    time.sleep(SETTLE)
    try:
        proc.p.send_signal(signal.SIGUSR1)
        try:
            _, line = proc.wait_line(r"^shutdown ms=", timeout=PROBE_TIMEOUT)
            ms = float(line.split("=")[1])
        except Fail:
            ms = None
    finally:
        if keep is not None:
            keep.close()
    proc.stop()
    hap.proc.stop()
    return ms


# ----- Launchers: xinetd and openbsd-inetd -----


def whoami_bin():
    path = os.path.join(pp.BUILDDIR, "tests", "helpers", "whoami")
    if not os.access(path, os.X_OK):
        raise Skip("tests/helpers/whoami not built")
    return path


def launcher_probes(hap, version, plain_port):
    """whoami behind the launcher: through HAProxy to the PROXY-only
    service (the advertised client, through the hand-over), and directly
    to the plain service (the real client)."""
    return [("plain service", peer_probe((BACK, plain_port), PLAIN)),
            haproxy_probe(hap, version)]


def launcher_holdups(name, proc, port, plain):
    """Once the launcher proc listens on plain too, the hold-ups of its
    PROXY-only service on port (and of the plain one beside it) for each
    PROXY version; returns the problems measure_holdup found."""
    wait_listening(proc, plain)
    hap = HAProxy(port)
    problems = []
    for version in VERSIONS:
        problems += measure_holdup("%s %s" % (name, version), port,
                                   launcher_probes(hap, version, plain),
                                   proc)
    return problems




@test(timeout=120)
def holdup_xinetd():
    # The launcher setup of libppshim(8): xinetd preloaded, two services,
    # one PROXY-only; whoami, executed per connection, prints what
    # getpeername tells it.  xinetd's other service must keep answering.
    need_root("xinetd (user = root)")
    xinetd = find("xinetd", "/usr/sbin/xinetd")
    whoami = whoami_bin()
    tmp = daemon_tmp()
    port, plain = free_port(BACK), free_port(BACK)
    services = [("ppwhoami", port, whoami, ""),
                ("plainwhoami", plain, whoami, "")]
    conf = write(os.path.join(tmp, "xinetd.conf"), xinetd_conf(
        tmp, services, "    cps = 10000 1\n    instances = UNLIMITED\n"))
    proc = start_daemon([xinetd, "-dontfork", "-f", conf, "-pidfile",
                         os.path.join(tmp, "xinetd.pid")], port,
                        holdup_env(port), "xinetd")
    problems = launcher_holdups("xinetd", proc, port, plain)
    log = read_text(os.path.join(tmp, "xinetd.log"))
    froms = set(re.findall(r"START: ppwhoami pid=\d+ from=(\S+)", log))
    eq(froms, {CLIENT}, "clients of ppwhoami in xinetd.log")
    check(proc.alive(), "xinetd died%s" % proc.tail())
    check_holdups(problems)


# Where .ci/run and tests/fetch-daemons.sh unpack the daemons that
# conflict with the installed ones.
UNPACKED = os.environ.get("PPSHIM_TEST_OPT", "/opt/ppshim-test")


def unpacked(package, relpath, installed=True):
    """A program of a Debian package that cannot be installed next to the
    others (it conflicts with xinetd, exim4 or vsftpd), unpacked with
    dpkg-deb -x into UNPACKED/package; with installed, the installed one
    when there is one.  Skip when there is none."""
    paths = [os.path.join(UNPACKED, package, relpath.lstrip("/"))]
    if installed:
        paths.append(relpath)
    for path in paths:
        if os.access(path, os.X_OK):
            return path
    raise Skip("%s is not%s unpacked in %s (.ci/run does it: "
               "tests/fetch-daemons.sh %s, as root)" % (
                   relpath, " installed nor" if installed else "",
                   os.path.join(UNPACKED, package), package))


@test(timeout=120)
def holdup_openbsd_inetd():
    # openbsd-inetd in the foreground (-d), a private configuration, two
    # services on loopback ports, one PROXY-only.
    need_root("inetd (user root)")
    inetd = unpacked("openbsd-inetd", "/usr/sbin/inetd")
    whoami = whoami_bin()
    tmp = daemon_tmp()
    port, plain = free_port(BACK), free_port(BACK)
    # inetd removes LD_PRELOAD from the environment of the programs it
    # executes: env puts it back, and whoami's library takes the
    # addresses that the preloaded inetd handed over.
    preload = pp.child_env()["LD_PRELOAD"]
    conf = write(os.path.join(tmp, "inetd.conf"), "".join(
        "%s:%d stream tcp nowait root /usr/bin/env env LD_PRELOAD=%s %s\n"
        % (BACK, p, preload, whoami) for p in (port, plain)))
    proc = start_daemon([inetd, "-d", "-R", "100000", conf], port,
                        holdup_env(port), "inetd")
    problems = launcher_holdups("openbsd-inetd", proc, port, plain)
    check(proc.alive(), "inetd died%s" % proc.tail())
    check_holdups(problems)


# ----- sendmail -----

SENDMAIL_MC = """\
divert(-1)
divert(0)dnl
OSTYPE(`linux')dnl
define(`confCF_VERSION', `ppshim')dnl
define(`confSERVICE_SWITCH_FILE', `{tmp}/service.switch')dnl
define(`confHOSTS_FILE', `/etc/hosts')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confDOMAIN_NAME', `ppshim.test')dnl
define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl
define(`confTO_IDENT', `0s')dnl
define(`confREFUSE_LA', `10000')dnl
define(`confQUEUE_LA', `10000')dnl
define(`confDELAY_LA', `0')dnl
define(`confDONT_BLAME_SENDMAIL', `MapInUnsafeDirPath')dnl
define(`QUEUE_DIR', `{tmp}/queue')dnl
define(`STATUS_FILE', `{tmp}/statistics')dnl
define(`ALIAS_FILE', `{tmp}/aliases')dnl
define(`confPID_FILE', `{tmp}/sendmail.pid')dnl
define(`confRECEIVED_HEADER', `from $s (${{client_addr}} port ${{client_port}})
	by $j with $r id $i; $b')dnl
define(`LOCAL_MAILER_PATH', `{tmp}/deliver')dnl
define(`LOCAL_MAILER_ARGS', `deliver $u')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`no_default_msa')dnl
DAEMON_OPTIONS(`Port={port}, Name=MTA, Addr={back}')dnl
DAEMON_OPTIONS(`Port={plain}, Name=MSA, Addr={back}, M=E')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
LOCAL_CONFIG
Cw ppshim.test
"""

SENDMAIL_BIN = "/usr/libexec/sendmail/sendmail"
SENDMAIL_CF_DIR = "/usr/share/sendmail/cf"


class Sendmail:
    """sendmail -bD (a daemon in the foreground) with a configuration
    built with m4 from the package's cf files: two ports on BACK, the MTA
    one PROXY-only, the MSA one plain; hosts from /etc/hosts only, no DNS,
    no ident; local mail appended to a file, with a Received: header that
    names the client's address and port.

    sendmail qualifies the host name before it reads its configuration
    (from DNS, then /etc/hosts) and sleeps a minute when it cannot: it
    runs in a UTS namespace of its own whose host name is qualified."""

    def __init__(self):
        need_root("sendmail")
        self.bin = unpacked("sendmail", SENDMAIL_BIN)
        root = self.bin[:-len(SENDMAIL_BIN)]
        cf_dir = root + SENDMAIL_CF_DIR
        if not os.path.isdir(cf_dir):
            raise Skip("no sendmail cf files in %s (sendmail-cf)" % cf_dir)
        m4 = find("m4", "/usr/bin/m4")
        ok, why = caps.utsns()
        if not ok:
            raise Skip(why)
        unshare = find("unshare", "/usr/bin/unshare")
        self.tmp = daemon_tmp()
        subdir(self.tmp, "queue", 0o700)
        self.port, self.plain = free_port(BACK), free_port(BACK)
        self.mailbox = os.path.join(self.tmp, "inbox")
        write(os.path.join(self.tmp, "deliver"),
              "#!/bin/sh\n{ echo 'From MAILER-DAEMON'; cat; echo; } >> %s\n"
              % self.mailbox, 0o755)
        write(os.path.join(self.tmp, "service.switch"),
              "hosts files\naliases files\n")
        write(os.path.join(self.tmp, "aliases"), "postmaster: root\n")
        mc = write(os.path.join(self.tmp, "sendmail.mc"), SENDMAIL_MC.format(
            tmp=self.tmp, back=BACK, port=self.port, plain=self.plain))
        with open(os.path.join(self.tmp, "sendmail.cf"), "w") as f:
            p = subprocess.run([m4, "-D_CF_DIR_=%s/" % cf_dir,
                                os.path.join(cf_dir, "m4", "cf.m4"), mc],
                               stdout=f, stderr=subprocess.PIPE, timeout=60)
        check(p.returncode == 0, "m4: %r" % p.stderr[-500:])
        self.cf = os.path.join(self.tmp, "sendmail.cf")
        # Debian's sendmail is set-group-ID (for users' submissions): the
        # loader would ignore LD_PRELOAD.  The daemon, started by root,
        # needs no set-group-ID bit: run a copy without it.
        if os.stat(self.bin).st_mode & (stat.S_ISUID | stat.S_ISGID):
            copy = os.path.join(self.tmp, "sendmail")
            shutil.copyfile(self.bin, copy)
            os.chmod(copy, 0o755)
            self.bin = copy
        # unshare executes sh, which executes sendmail: one process, the
        # one stop() ends.
        named = [unshare, "--uts", "sh", "-c",
                 'hostname mail.ppshim.test && exec "$0" "$@"', self.bin,
                 "-C", self.cf]
        p = subprocess.run(named + ["-bi"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        check(p.returncode == 0, "newaliases: %r" % p.stdout[-500:])
        self.proc = Proc(named + ["-bD"], env=holdup_env(self.port),
                         valgrind=False, name="sendmail")
        wait_listening(self.proc, self.port)
        wait_listening(self.proc, self.plain)


def sendmail_banner_probe(target, src):
    """The SMTP greeting through target from src; the client hangs up."""
    def start():
        def finish():
            line, _, dt = ask(target, src)
            check(line.startswith("220 ppshim.test ESMTP Sendmail "),
                  "%s:%d: banner %r" % (target[0], target[1], line))
            return dt
        return finish
    return start


@test(timeout=180)
def holdup_sendmail():
    # sendmail's daemon loop: select over its daemon sockets, accept on
    # the readable one, fork a child for the session.  The MSA port (not
    # PROXY-only) must keep greeting, and the MTA port through HAProxy.
    sm = Sendmail()
    hap = HAProxy(sm.port)
    problems = []
    for version in VERSIONS:
        subject = "ppshim sendmail %s %d" % (version,
                                             random.randint(0, 1 << 30))
        cport = send_mail(hap.target(version), subject)
        received = received_header(sm.mailbox, subject)
        check(re.match(r"Received: from client\.test \(%s port %d\)\s+by "
                       r"ppshim\.test with ESMTP id " % (
                           re.escape(CLIENT), cport), received),
              "%s: %r" % (version, received))
        problems += measure_holdup("sendmail %s" % version, sm.port, [
            ("MSA port", sendmail_banner_probe((BACK, sm.plain), PLAIN)),
            ("%s through haproxy" % version,
             sendmail_banner_probe(hap.target(version), CLIENT))],
            sm.proc)
    check(sm.proc.alive(), "sendmail died%s" % sm.proc.tail())
    check_holdups(problems)


if __name__ == "__main__":
    pp.main("test_daemons")

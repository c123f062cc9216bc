#!/usr/bin/env python3
"""test_ranges.py - scripts/ppshim-ranges: the PP_ALLOW list file written
from a provider's published ranges.

Runs the script from the source tree on the samples in tests/data (an AWS
ip-ranges.json and a plain list) and on small inputs written here: the
selection by service, region and family, the merge, the errors and their
exit statuses, the atomic replacement of the file and --check.  Nothing is
fetched: --url is only pointed at a loopback listener that never answers,
to check that it gives up.

Needs neither the library nor the test server; the runner and its output
are pptest's.
"""

import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pptest as pp  # noqa: E402
from pptest import check, eq, test  # noqa: E402

TOP = os.path.normpath(os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(TOP, "scripts", "ppshim-ranges")
AWS = os.path.join(TOP, "tests", "data", "aws-ip-ranges-sample.json")
LIST = os.path.join(TOP, "tests", "data", "ranges-list-sample.txt")

EX_BAD, EX_USAGE = 1, 2


def ranges(*args, stdin=None, status=0):
    """Runs the script with args; checks its exit status and returns the
    CompletedProcess (text stdout and stderr)."""
    p = subprocess.run([sys.executable, SCRIPT] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=30,
                       stdin=None if stdin is not None else
                       subprocess.DEVNULL)
    eq(p.returncode, status, "exit status of ppshim-ranges %s (stderr %r)"
       % (" ".join(args), p.stderr))
    return p


def entries(text):
    """The entries of a list: its lines that are not comments."""
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def selected(*args, stdin=None):
    """The entries the script prints for args."""
    return entries(ranges(*args, stdin=stdin).stdout)


def error(*args, stdin=None, status=EX_BAD):
    """The script's one-line message for args, which must fail."""
    p = ranges(*args, stdin=stdin, status=status)
    eq(p.stdout, "", "standard output of a failed run")
    return p.stderr.strip().splitlines()[-1]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


# ===== Selection =====

@test
def aws_service_and_region():
    eq(selected("--service", "EC2", "--region", "eu-west-1", AWS),
       ["192.0.2.0/25", "2001:db8:1000::/39"], "EC2 in eu-west-1")
    eq(selected("--service", "CLOUDFRONT", AWS),
       ["198.51.100.0/24", "203.0.113.0/24", "2001:db8:3000::/40"],
       "CLOUDFRONT")
    eq(selected("--region", "GLOBAL", AWS),
       ["198.51.100.0/24", "203.0.113.0/24", "2001:db8:3000::/36"],
       "region GLOBAL")
    eq(selected("--service", "S3", "--region", "eu-west-1", AWS),
       ["192.0.2.128/27", "2001:db8:1200::/40"], "S3 in eu-west-1")


@test
def aws_repeated_filters_and_case():
    eq(selected("--service", "EC2", "--service", "ec2_instance_connect",
                "--region", "eu-central-1", "--region", "US-EAST-1", AWS),
       ["192.0.2.160/27", "198.18.0.0/15", "2001:db8:2000::/40",
        "2001:db8:4000::/40"], "EC2 and EC2_INSTANCE_CONNECT in two regions")


@test
def aws_everything_merged():
    eq(selected(AWS),
       ["3.5.140.0/22", "13.34.37.64/27", "52.94.76.0/22", "192.0.2.0/24",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "2001:db8:1000::/39", "2001:db8:1200::/40", "2001:db8:2000::/35",
        "2001:db8:4000::/36", "2600:1f14:fff:f800::/56"],
       "every entry, merged and sorted")


@test
def ipv4_only_and_ipv6_only():
    eq(selected("--ipv4-only", "--service", "EC2", "--region", "eu-west-1",
                AWS), ["192.0.2.0/25"], "AWS, IPv4 only")
    eq(selected("--ipv6-only", "--service", "EC2", "--region", "eu-west-1",
                AWS), ["2001:db8:1000::/39"], "AWS, IPv6 only")
    eq(selected("--ipv6-only", "--format", "list", LIST), ["2001:db8::/32"],
       "list, IPv6 only")
    eq(selected("--ipv4-only", LIST),
       ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"],
       "list, IPv4 only")
    error("--ipv4-only", "--ipv6-only", AWS, status=EX_USAGE)


@test
def merge_adjacent_and_overlapping():
    text = "\n".join([
        "10.0.1.0/24", "10.0.0.0/24",       # adjacent: 10.0.0.0/23
        "10.0.2.0/23", "10.0.3.0/24",       # overlapping, then /22
        "10.0.3.7", "10.0.3.7/32",          # duplicates inside it
        "10.9.0.0/16", "10.9.128.0/17",     # one inside the other
        "172.16.0.1", "172.16.0.0",         # two hosts: 172.16.0.0/31
        "fd00::/9", "fd80::/9",             # adjacent: fd00::/8
        "2001:db8::1", "2001:db8::1/128",   # duplicates
        "2001:db8::/127",                   # contains them
        ""])
    eq(selected("-", stdin=text),
       ["10.0.0.0/22", "10.9.0.0/16", "172.16.0.0/31", "2001:db8::/127",
        "fd00::/8"], "merged, IPv4 then IPv6")


@test
def plain_list_with_comments():
    eq(selected("--format", "list", LIST),
       ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
        "2001:db8::/32"], "the list sample")
    # Cloudflare's files end without a newline; CRLF lines are read too.
    eq(selected("-", stdin="# c\r\n\r\n  192.0.2.0/24  # x\r\n2001:db8::/32"),
       ["192.0.2.0/24", "2001:db8::/32"], "CRLF and no final newline")
    # A list is not taken for JSON, nor a JSON document for a list.
    check("--service" in error("--service", "EC2", LIST, status=EX_USAGE),
          "--service on a plain list: a usage error")
    check("not an IPv4 or IPv6 address" in
          error("--format", "list", AWS), "JSON read as a list")


@test
def stdin_input():
    with open(AWS) as f:
        eq(selected("--service", "CLOUDFRONT", "-", stdin=f.read()),
           ["198.51.100.0/24", "203.0.113.0/24", "2001:db8:3000::/40"],
           "AWS document on standard input")
    with open(LIST) as f:
        p = ranges("-", stdin=f.read())
    check("# source: standard input (list)\n" in p.stdout,
          "header names standard input: %r" % p.stdout)
    eq(entries(p.stdout)[-1], "2001:db8::/32", "list on standard input")


@test
def header():
    out = ranges("--service", "EC2", "--region", "eu-west-1",
                 "--ipv4-only", AWS).stdout.splitlines()
    eq(out[1:5], ["# source: %s (aws)" % AWS,
                  "# filters: service=EC2 region=eu-west-1 family=IPv4",
                  "# syncToken=1700000000 createDate=2023-11-14-22-13-20",
                  "# entries: 1 (1 IPv4, 0 IPv6)"], "header")
    check(out[0].startswith("# ") and "ppshim-ranges" in out[0],
          "first line names the writer: %r" % out[0])
    out = ranges(LIST).stdout.splitlines()
    eq(out[2:4], ["# filters: none", "# entries: 4 (3 IPv4, 1 IPv6)"],
       "list header")


# ===== Errors =====

@test
def host_bits_name_the_line():
    msg = error("-", stdin="# ok\n10.0.0.0/8\n\n10.0.0.1/8\n")
    eq(msg, "ppshim-ranges: standard input: line 4: '10.0.0.1/8': bits set "
       "beyond the prefix length (the network is 10.0.0.0/8)", "message")
    msg = error("--format", "list", "-", stdin="2001:db8::1/32\n")
    check("line 1: '2001:db8::1/32': bits set" in msg, msg)
    # In an AWS document: the line, the entry and the prefix, even when
    # the filters would not select the entry.
    d = pp.tempdir()
    path = os.path.join(d, "ip-ranges.json")
    write(path, read(AWS).replace('"52.94.76.0/22"', '"52.94.77.0/22"'))
    msg = error("--service", "CLOUDFRONT", path)
    eq(msg, "ppshim-ranges: %s: line 162: prefixes[26]: '52.94.77.0/22': "
       "bits set beyond the prefix length (the network is 52.94.76.0/22)"
       % path, "AWS message")


@test
def bad_entries_refused():
    cases = {
        "10.0.0.0/33": "prefix length out of range (at most 32)",
        "::/129": "prefix length out of range (at most 128)",
        "10.0.0.0/255.0.0.0": "the prefix length is not a number",
        "10.0.0.0/": "the prefix length is not a number",
        "[2001:db8::]/32": "not an IPv4 or IPv6 address",
        "fe80::1%eth0": "not an IPv4 or IPv6 address",
        "10.0.0": "not an IPv4 or IPv6 address",
        "example.com": "not an IPv4 or IPv6 address",
        "10.0.0.0/8,10.1.0.0/16": "one address or CIDR a line",
        "10.0.0.0/8 10.1.0.0/16": "one address or CIDR a line",
    }
    for entry, why in cases.items():
        eq(error("-", stdin="192.0.2.0/24\n" + entry + "\n"),
           "ppshim-ranges: standard input: line 2: '%s': %s" % (entry, why),
           entry)


@test
def bad_documents_refused():
    d = pp.tempdir()
    path = os.path.join(d, "ip-ranges.json")
    write(path, read(AWS)[:300])
    check(error(path).startswith("ppshim-ranges: %s: line 13: not JSON"
                                 % path), "truncated JSON")
    write(path, '{"syncToken": "1"}\n')
    check("not an AWS ip-ranges.json" in error(path), "no prefixes")
    write(path, '{"prefixes": [{"ip_prefix": "192.0.2.0/24"}]}\n')
    eq(error(path), "ppshim-ranges: %s: prefixes[0]: no 'service' string"
       % path, "entry without service")
    write(path, '{"ipv6_prefixes": [{"ipv6_prefix": "192.0.2.0/24", '
          '"service": "EC2", "region": "GLOBAL"}]}\n')
    check(error(path).endswith("'192.0.2.0/24': not an IPv6 prefix"),
          "IPv4 prefix among the IPv6 ones")
    missing = os.path.join(d, "missing.json")
    eq(error(missing), "ppshim-ranges: %s: No such file or directory"
       % missing, "missing file")
    with open(path, "wb") as f:
        f.write(b"192.0.2.0/24\n\xff\n")
    check("not UTF-8" in error(path), "binary input")


@test
def unknown_service_or_region_is_a_usage_error():
    msg = error("--service", "EC3", AWS, status=EX_USAGE)
    check("--service 'EC3': the source has no such value" in msg and
          "CLOUDFRONT" in msg, msg)
    msg = error("--service", "EC2", "--region", "eu-west-9", AWS,
                status=EX_USAGE)
    check("--region 'eu-west-9'" in msg and "eu-west-1" in msg, msg)


@test
def usage_errors():
    for args in ([], [AWS, "--url", "https://192.0.2.1/x"],
                 ["--url", "http://192.0.2.1/ip-ranges.json"],
                 ["--check", AWS], ["--format", "yaml", AWS],
                 ["--max-entries", "0", AWS], ["--timeout", "0", AWS],
                 ["--no-such-option", AWS]):
        error(*args, status=EX_USAGE)


@test
def empty_result_refused():
    msg = error("--ipv6-only", "-", stdin="192.0.2.0/24\n")
    check("nothing selected" in msg and "refused" in msg and
          "--allow-empty" in msg, msg)
    error("-", stdin="# only comments\n\n")
    error("--service", "EC2_INSTANCE_CONNECT", "--region", "GLOBAL", AWS)
    p = ranges("--allow-empty", "-", stdin="# only comments\n")
    eq(entries(p.stdout), [], "--allow-empty: no entry")
    check("# entries: 0 (0 IPv4, 0 IPv6)" in p.stdout, p.stdout)
    d = pp.tempdir()
    out = os.path.join(d, "allow")
    error("--ipv6-only", "-", "-o", out, stdin="192.0.2.0/24\n")
    check(not os.path.exists(out), "an empty list was written")


@test
def too_many_entries_refused():
    # 1025 addresses, none adjacent: more than PP_ALLOW holds.
    text = "".join("10.%d.%d.1\n" % (i // 256, i % 256) for i in range(1025))
    msg = error("-", stdin=text)
    check("1025 entries" in msg and "1024" in msg, msg)
    eq(len(selected("-", stdin=text[:-len("10.4.0.1\n")])), 1024,
       "1024 entries")
    eq(len(selected("--max-entries", "2000", "-", stdin=text)), 1025,
       "--max-entries 2000")
    error("--max-entries", "3", AWS)


# ===== The file =====

@test
def atomic_replacement():
    d = pp.tempdir()
    out = os.path.join(d, "allow")
    ranges("--service", "EC2", AWS, "-o", out)
    os.chmod(out, 0o640)
    before = os.stat(out)
    with open(out) as old:
        ranges("--service", "CLOUDFRONT", AWS, "-o", out)
        after = os.stat(out)
        check(after.st_ino != before.st_ino,
              "the file was rewritten in place, not replaced by rename")
        # A reader that had the old file open still reads it whole.
        text = old.read()
    eq(entries(text), selected("--service", "EC2", AWS),
       "the old file, read after the replacement")
    eq(entries(read(out)), selected("--service", "CLOUDFRONT", AWS),
       "new contents")
    eq(oct(after.st_mode & 0o777), oct(0o640), "mode kept")
    eq(sorted(os.listdir(d)), ["allow"], "files left in the directory")


@test
def reader_never_sees_a_partial_list():
    d = pp.tempdir()
    out = os.path.join(d, "allow")
    runs = [["--service", "EC2", AWS], ["--region", "GLOBAL", AWS]]
    whole = [ranges(*args).stdout for args in runs]
    ranges(*runs[0], "-o", out)
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(read(out))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for i in range(1, 9):
            ranges(*runs[i % 2], "-o", out)
    finally:
        stop.set()
        t.join(10)
    bad = [text for text in seen if text not in whole]
    check(not bad, "%d of %d reads saw another text, first %r" % (
        len(bad), len(seen), bad[:1]))
    check(len(set(seen)) == 2, "the reader saw %d versions" % len(set(seen)))


@test
def new_file_mode_and_symlink():
    d = pp.tempdir()
    out = os.path.join(d, "allow")
    old = os.umask(0o027)
    try:
        ranges(LIST, "-o", out)
    finally:
        os.umask(old)
    eq(oct(os.stat(out).st_mode & 0o777), oct(0o640), "new file: umask")
    # A link is followed: its target is replaced, the link stays.
    link = os.path.join(d, "link")
    os.symlink("allow", link)
    ranges("--ipv6-only", LIST, "-o", link)
    check(os.path.islink(link), "the link was replaced by a file")
    eq(entries(read(out)), ["2001:db8::/32"], "the link's target")
    eq(sorted(os.listdir(d)), ["allow", "link"], "files left")


@test
def unwritable_file_refused():
    d = pp.tempdir()
    out = os.path.join(d, "no-such-dir", "allow")
    eq(error(LIST, "-o", out), "ppshim-ranges: %s: cannot write in %s: No "
       "such file or directory" % (out, os.path.dirname(out)), "message")
    eq(os.listdir(d), [], "files left")


@test
def added_and_removed_counts():
    d = pp.tempdir()
    out = os.path.join(d, "allow")
    eq(ranges("--service", "EC2", "--region", "eu-west-1", AWS, "-o",
              out).stderr,
       "ppshim-ranges: %s: written: 2 entries (a new file)\n" % out,
       "first run")
    eq(ranges("--service", "EC2", "--region", "eu-west-1", "--region",
              "us-east-1", AWS, "-o", out).stderr,
       "ppshim-ranges: %s: written: 4 entries, 2 added, 0 removed\n" % out,
       "a region more")
    eq(ranges("--service", "EC2", "--region", "eu-central-1", AWS, "-o",
              out).stderr,
       "ppshim-ranges: %s: written: 2 entries, 2 added, 4 removed\n" % out,
       "another region")
    # Entries written by hand in another form count as the same.
    write(out, "# by hand\n198.18.0.0/15\n2001:db8:4000:0::/40\n10.0.0.1\n")
    eq(ranges("--service", "EC2", "--region", "eu-central-1", AWS, "-o",
              out).stderr,
       "ppshim-ranges: %s: written: 2 entries, 0 added, 1 removed\n" % out,
       "hand-edited file")


@test
def unchanged_file_left_alone():
    d = pp.tempdir()
    out = os.path.join(d, "allow")
    ranges(LIST, "-o", out)
    before = os.stat(out)
    time.sleep(0.01)
    p = ranges(LIST, "-o", out)
    eq(p.stderr, "ppshim-ranges: %s: unchanged (4 entries)\n" % out,
       "message")
    after = os.stat(out)
    eq((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns),
       "inode and mtime")


@test
def check_mode():
    d = pp.tempdir()
    out = os.path.join(d, "allow")
    args = ["--service", "CLOUDFRONT", AWS, "-o", out]
    p = ranges("--check", *args, status=EX_BAD)
    check("does not exist" in p.stderr, p.stderr)
    check(not os.path.exists(out), "--check wrote the file")
    ranges(*args)
    before = os.stat(out)
    p = ranges("--check", *args)
    check("up to date (3 entries)" in p.stderr, p.stderr)
    # A new syncToken alone changes the header, not the entries.
    src = os.path.join(d, "ip-ranges.json")
    write(src, read(AWS).replace("1700000000", "1700000099"))
    ranges("--check", "--service", "CLOUDFRONT", src, "-o", out)
    # Other entries: exit 1, the file untouched.
    p = ranges("--check", "--service", "EC2", AWS, "-o", out, status=EX_BAD)
    eq(p.stderr, "ppshim-ranges: %s: out of date: 7 entries would be "
       "added, 3 removed\n" % out, "message")
    after = os.stat(out)
    eq((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns),
       "--check changed the file")
    eq(p.stdout, "", "--check printed the list")


@test
def url_gives_up_on_a_silent_server():
    # A loopback listener that accepts and never answers: --url must give
    # up after --timeout (the tests never fetch anything).
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        url = "https://127.0.0.1:%d/ip-ranges.json" % ls.getsockname()[1]
        t0 = time.monotonic()
        msg = error("--url", url, "--timeout", "1")
        elapsed = time.monotonic() - t0
    eq(msg, "ppshim-ranges: %s: cannot fetch: timed out after 1 s" % url,
       "message")
    check(elapsed < 10 * pp.SLOW, "gave up after %.1fs" % elapsed)


@test
def script_and_help():
    check(os.access(SCRIPT, os.X_OK), "%s is not executable" % SCRIPT)
    with open(SCRIPT) as f:
        eq(f.readline(), "#!/usr/bin/env python3\n", "first line")
    p = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    eq(p.returncode, 0, "--help exit status")
    for word in ("--service", "--region", "--ipv4-only", "--ipv6-only",
                 "--format", "--check", "--allow-empty", "--url",
                 "--timeout", "-o FILE", "exit status"):
        check(word in p.stdout, "--help does not mention %s" % word)


def script_problem():
    """Why the tests cannot run here, or None (in place of the runner's
    check for the library and the server, which these tests do not use)."""
    if not os.path.isfile(SCRIPT):
        return "script not found: %s" % SCRIPT
    return None


if __name__ == "__main__":
    pp.environment_problem = script_problem
    pp.check_lib_is_elf = lambda: None
    pp.main("ppshim-ranges")

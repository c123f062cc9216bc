#!/bin/sh
# deb.sh - build the Debian packages (debian/) from a copy of the source
# tree in a temporary directory, check what they hold, run lintian on
# them, unpack them into a throwaway root and run the unpacked wrapper
# with the unpacked library, then the TCP integration tests against the
# packaged (stripped, hardened) library.
#
# Usage: tests/deb.sh [SRCDIR]
#   SRCDIR defaults to the tree this script is in.  From a git checkout the
#   files git knows of (and new ones it does not ignore) are copied;
#   otherwise the whole tree; never the build directories (_ci*, build*)
#   at its top.  OUTDIR, if set, receives the .deb files.
# Exit 0 pass, 1 fail, 77 skip (dpkg-buildpackage or debhelper missing).

set -u

srcdir=${1:-$(cd "$(dirname "$0")/.." && pwd)}
srcdir=$(cd "$srcdir" && pwd)
python=${PYTHON3:-python3}

for tool in dpkg-buildpackage dh dpkg-deb; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not installed (dpkg-dev, debhelper)"
		exit 77
	fi
done

work=$(mktemp -d /tmp/ppshim-deb-XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
version=$(dpkg-parsechangelog -l "$srcdir/debian/changelog" -S Version)
upstream=${version%-*}
tree=$work/ppshim-$upstream
mkdir "$tree" || exit 1

echo "== copy $srcdir to $tree"
if git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$srcdir" ls-files -co --exclude-standard -z |
		grep -zv -e '^_' -e '^build' |
		(cd "$srcdir" && tar --null -T - -cf -) |
		tar -C "$tree" -xf - || exit 1
else
	(cd "$srcdir" && tar --exclude='./_*' --exclude='./build*' -cf - .) |
		tar -C "$tree" -xf - || exit 1
fi

echo "== dpkg-buildpackage -us -uc -b"
if ! (cd "$tree" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1
then
	tail -60 "$work/build.log"
	echo "FAIL: dpkg-buildpackage"
	exit 1
fi
grep -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS):' "$work/build.log"

status=0
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
bin=$work/ppshim_${version}_$arch.deb
lib=$work/libppshim_${version}_$arch.deb

# has DEB PATH: the package lists the file.
has() {
	if dpkg-deb -c "$1" | awk '{ print $6 }' | grep -qx "$2"; then
		echo "ok: $(basename "$1") holds $2"
	else
		echo "FAIL: $(basename "$1") lacks $2"
		status=1
	fi
}

echo "== contents"
for f in ./usr/bin/ppshim ./usr/bin/ppsend \
	./usr/share/man/man1/ppshim.1.gz ./usr/share/man/man1/ppsend.1.gz \
	./usr/share/doc/ppshim/README.md.gz \
	./usr/share/doc/ppshim/cookbook.md.gz \
	./usr/share/doc/ppshim/security.md.gz \
	./usr/share/doc/ppshim/copyright; do
	has "$bin" "$f"
done
for f in "./usr/lib/$ma/libppshim.so" ./usr/share/man/man8/libppshim.8.gz \
	./usr/share/doc/libppshim/copyright; do
	has "$lib" "$f"
done
if dpkg-deb -c "$lib" | grep -E '\.(la|a)$'; then
	echo "FAIL: a libtool archive or static library is packaged"
	status=1
fi
dpkg-deb -f "$lib" Multi-Arch | grep -qx same ||
	{ echo "FAIL: libppshim is not Multi-Arch: same"; status=1; }

# Every remaining lintian tag is either fixed or overridden with its
# reason in debian/*.lintian-overrides, except initial-upload-closes-no-bugs:
# there is no ITP bug to close.
if command -v lintian >/dev/null 2>&1; then
	echo "== lintian"
	if ! lintian --fail-on error,warning --suppress-tags \
		initial-upload-closes-no-bugs -I --pedantic "$bin" "$lib"; then
		echo "FAIL: lintian"
		status=1
	fi
else
	echo "lintian not installed: not run"
fi

echo "== unpack into a throwaway root and run"
root=$work/root
mkdir "$root" || exit 1
dpkg-deb -x "$bin" "$root" && dpkg-deb -x "$lib" "$root" || exit 1
wrapper=$root/usr/bin/ppshim
solib=$root/usr/lib/$ma/libppshim.so
if "$wrapper" --help | grep -q 'default: /usr/\$LIB/libppshim.so'; then
	echo "ok: the wrapper's default library is /usr/\$LIB/libppshim.so"
else
	echo "FAIL: the wrapper's default library is not /usr/\$LIB/..."
	status=1
fi
out=$("$wrapper" --library "$solib" --ports 1 --log error -- \
	sh -c 'grep -c libppshim /proc/$$/maps' 2>&1)
if [ "${out:-0}" -ge 1 ] 2>/dev/null; then
	echo "ok: the unpacked wrapper preloads the unpacked library"
else
	echo "FAIL: the unpacked library is not loaded: $out"
	status=1
fi
out=$("$wrapper" --library "$root/usr/\$LIB/libppshim.so" --ports 1 \
	--log error -- sh -c 'grep -c libppshim /proc/$$/maps' 2>&1)
if [ "${out:-0}" -ge 1 ] 2>/dev/null; then
	echo "ok: ROOT/usr/\$LIB/libppshim.so is found and loaded"
else
	echo "FAIL: ROOT/usr/\$LIB/libppshim.so: $out"
	status=1
fi
"$wrapper" --library "$solib" -- true || {
	echo "FAIL: ppshim -- true"
	status=1
}

# The package build ran make check on a subset, so the test servers exist
# in its tree: run the TCP tests with the packaged library preloaded.
if command -v "$python" >/dev/null 2>&1 &&
	[ -x "$tree/tests/helpers/srv" ]; then
	echo "== test_tcp.py against the packaged library"
	if ! PPSHIM_SRCDIR=$tree PPSHIM_BUILDDIR=$tree PPSHIM_LIB=$solib \
		PYTHONDONTWRITEBYTECODE=1 \
		"$python" "$tree/tests/integ/test_tcp.py"; then
		echo "FAIL: test_tcp.py with the packaged library"
		status=1
	fi
fi

if [ -n "${OUTDIR:-}" ]; then
	mkdir -p "$OUTDIR" && cp "$work"/*.deb "$OUTDIR"/
fi
[ "$status" -eq 0 ] && echo "PASS: the Debian packages"
exit "$status"

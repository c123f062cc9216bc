#!/bin/sh
# abi.sh - build ppshim for another C library or ABI in a throwaway build
# directory, and run the integration tests against that build.
#
#   musl  musl-gcc (Debian's musl-tools): the library, the test servers
#         and ppsend are linked against musl, dynamically (the servers run
#         under /lib/ld-musl-*.so.1).  Runs test_tcp.py, test_udp.py and
#         test_ppsend.py.  No unit tests: Check is a glibc library here.
#   m32   gcc -m32 -D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64 (gcc-multilib):
#         a 32-bit library and test servers with 64-bit time_t.  Checks that
#         the UDP server calls glibc's __recvmsg64 and __recvmmsg64 and the
#         library defines them, then runs test_udp.py and test_tcp.py (the
#         test driver itself stays 64-bit: only the servers load the
#         library).
#
# The integration tests that preload the library into the system's own
# programs (nginx, dnsmasq, shells) skip those: a musl or 32-bit library
# cannot be loaded into them.
#
# Usage: tests/abi.sh musl|m32 [SRCDIR]
#   SRCDIR is a source tree with configure generated (autoreconf -fi);
#   default: the tree this script is in.  BUILDDIR, if set, is used (and
#   kept) instead of a temporary directory.
# Exit 0 pass, 1 fail, 77 skip (the compiler for MODE is not installed;
# or the kernel cannot run what it builds, which is then built all the
# same and fails if it does not compile).

set -u

mode=${1:-}
srcdir=${2:-$(cd "$(dirname "$0")/.." && pwd)}
srcdir=$(cd "$srcdir" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
python=${PYTHON3:-python3}

case $mode in
musl)
	cc=musl-gcc
	cflags="-g -O2"
	xhost=$(uname -m)-pc-linux-musl
	tests="test_tcp test_udp test_ppsend"
	;;
m32)
	cc="gcc -m32"
	cflags="-g -O2 -D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64"
	xhost=i686-pc-linux-gnu
	tests="test_udp test_tcp"
	;;
*)
	echo "usage: $0 musl|m32 [SRCDIR]" >&2
	exit 1
	;;
esac

if [ ! -x "$srcdir/configure" ]; then
	echo "FAIL: $srcdir/configure missing: run autoreconf -fi there"
	exit 1
fi

# Can this compiler build and run a program at all?
probe=$(mktemp -d) || exit 1
printf 'int main(void) { return 0; }\n' >"$probe/t.c"
if ! $cc $cflags -o "$probe/t" "$probe/t.c" >/dev/null 2>&1; then
	rm -rf "$probe"
	echo "SKIP: '$cc' cannot build a program here (not installed?)"
	exit 77
fi
# A kernel that cannot run what it builds (a 32-bit program without
# IA-32 emulation) still gets the build: configured as a cross build,
# compiled with -Werror, then SKIP for the tests alone.
runs=yes
host=
if ! "$probe/t" 2>/dev/null; then
	runs=no
	host=--host=$xhost
fi
rm -rf "$probe"

if [ -n "${BUILDDIR:-}" ]; then
	build=$BUILDDIR
	mkdir -p "$build" || exit 1
else
	build=$(mktemp -d /tmp/ppshim-abi-"$mode"-XXXXXX) || exit 1
	trap 'rm -rf "$build"' EXIT
fi
cd "$build" || exit 1

echo "== configure ($mode: CC='$cc' CFLAGS='$cflags') in $build"
if ! CC=$cc CFLAGS=$cflags "$srcdir/configure" --enable-werror $host \
	>configure.out 2>&1; then
	tail -30 configure.out
	echo "FAIL: configure"
	exit 1
fi
sed -n '/^	ppshim /,$p' configure.out
# The library, the wrapper, ppsend and the servers these tests start (not
# every check program: some need what only glibc has).
echo "== build"
if ! make -j"$jobs" >make.out 2>&1 ||
	! make -j"$jobs" tests/helpers/srv tests/helpers/udpsrv \
		tests/helpers/udpsrv_fortify >>make.out 2>&1; then
	grep -E 'error|warning' make.out | head -40
	tail -20 make.out
	echo "FAIL: make"
	exit 1
fi

if [ "$runs" = no ]; then
	echo "SKIP: the $mode build compiles, but the kernel cannot run" \
		"what '$cc' builds (a 32-bit program on a kernel without" \
		"IA-32 emulation?): its tests did not run"
	exit 77
fi

lib=$build/src/.libs/libppshim.so
status=0

case $mode in
musl)
	interp=$(LC_ALL=C readelf -l tests/helpers/srv 2>/dev/null |
		sed -n 's/.*interpreter: \(.*\)]/\1/p')
	case $interp in
	*ld-musl*) echo "ok: the test server runs under $interp" ;;
	*)
		echo "FAIL: the test server's interpreter is '$interp'"
		status=1
		;;
	esac
	;;
m32)
	for sym in __recvmsg64 __recvmmsg64 __sendmsg64; do
		if nm -D tests/helpers/udpsrv | grep -q " U $sym"; then
			echo "ok: udpsrv calls $sym"
		else
			echo "FAIL: udpsrv does not call $sym: no 64-bit time?"
			status=1
		fi
		if nm -D --defined-only "$lib" | grep -q " $sym\$"; then
			echo "ok: the library defines $sym"
		else
			echo "FAIL: the library does not define $sym"
			status=1
		fi
	done
	;;
esac

PPSHIM_SRCDIR=$srcdir PPSHIM_BUILDDIR=$build PPSHIM_LIB=$lib \
	PYTHONDONTWRITEBYTECODE=1
export PPSHIM_SRCDIR PPSHIM_BUILDDIR PPSHIM_LIB PYTHONDONTWRITEBYTECODE
if ! sh "$srcdir/tests/check-exports.sh"; then
	status=1
fi
for t in $tests; do
	echo "== $t.py against the $mode build"
	"$python" "$srcdir/tests/integ/$t.py"
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		echo "FAIL: $t.py ($mode): exit $rc"
		status=1
	fi
done
[ "$status" -eq 0 ] && echo "PASS: the $mode build"
exit "$status"

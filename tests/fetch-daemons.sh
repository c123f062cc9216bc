#!/bin/sh
# fetch-daemons.sh - unpack Debian daemons the tests need but that cannot be
# installed beside the ones already installed.
#
# Some daemons of the test matrix conflict with daemons the suite also tests
# (pure-ftpd, proftpd and inetutils-ftpd with vsftpd: ftp-server; opensmtpd
# and sendmail with exim4: mail-transport-agent; openbsd-inetd with xinetd:
# inet-superserver).  Installing one would remove the other.  Instead, each
# is downloaded with apt-get download, together with the packages apt would
# install with it, and unpacked with dpkg-deb -x into a directory of its own:
#
#   $PPSHIM_TEST_OPT/PKG/         (default /opt/ppshim-test/PKG)
#       usr/sbin/...              the unpacked files
#       .fetched                  the versions unpacked (written last)
#
# No maintainer script runs; the tests run each daemon from there with a
# private configuration, private state directories and, where the daemon
# needs a library it brought along, LD_LIBRARY_PATH.  System users a daemon
# needs by name (compiled in) are created here, as its postinst would.
#
# .ci/run calls it after its own apt-get install.
#
# Usage, as root:  sh tests/fetch-daemons.sh [PKG...]
# Without arguments, the packages the matrix tests and test_daemons.py
# (openbsd-inetd, sendmail) need.  Idempotent: a package already
# unpacked at the version apt offers is left as it is.
# Exit status: 0 when every package is there, 1 otherwise.
set -u

opt=${PPSHIM_TEST_OPT:-/opt/ppshim-test}
default_pkgs="pure-ftpd proftpd-core opensmtpd inetutils-ftpd openbsd-inetd
	sendmail"

# The packages apt would install with PKG (PKG included), as "name=version".
closure() {
	apt-get install -s --no-install-recommends "$1" 2>/dev/null |
		awk '/^Inst /{v = ($3 ~ /^\[/) ? $4 : $3
			sub(/^\(/, "", v); print $2 "=" v}'
}

# fetch PKG: unpacks PKG and what it pulls in into $opt/PKG.
fetch() {
	pkg=$1
	dir=$opt/$pkg
	want=$(closure "$pkg" | sort)
	if [ -z "$want" ]; then
		# Installed already, or unknown to apt.
		if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
			grep -q 'ok installed'; then
			want="$pkg=$(dpkg-query -W -f='${Version}' "$pkg")"
		else
			echo "fetch $pkg: apt does not offer it" >&2
			return 1
		fi
	fi
	if [ -f "$dir/.fetched" ] && [ "$(cat "$dir/.fetched")" = "$want" ]; then
		echo "fetch $pkg: already unpacked in $dir"
		return 0
	fi
	tmp=$(mktemp -d) || return 1
	# apt's download user must be able to write there.
	chmod 755 "$tmp"
	(
		cd "$tmp" || exit 1
		# shellcheck disable=SC2086
		apt-get download -q -o APT::Sandbox::User=root $want >download.log 2>&1 || {
			cat download.log >&2
			exit 1
		}
		rm -rf "$dir.new"
		mkdir -p "$dir.new" || exit 1
		for deb in ./*.deb; do
			dpkg-deb -x "$deb" "$dir.new" || exit 1
		done
		echo "$want" >"$dir.new/.fetched"
	)
	rc=$?
	rm -rf "$tmp"
	if [ $rc -ne 0 ]; then
		rm -rf "$dir.new"
		echo "fetch $pkg: download or unpack failed" >&2
		return 1
	fi
	rm -rf "$dir"
	mv "$dir.new" "$dir" || return 1
	echo "fetch $pkg: unpacked in $dir:" "$want"
	return 0
}

# system_user NAME HOME: a system user and its group, as the package's
# postinst creates them.
system_user() {
	getent passwd "$1" >/dev/null 2>&1 && return 0
	if command -v adduser >/dev/null 2>&1; then
		adduser --quiet --system --group --no-create-home \
			--disabled-password --home "$2" "$1"
	else
		useradd --system --user-group --no-create-home \
			--home-dir "$2" --shell /usr/sbin/nologin "$1"
	fi
}

if [ "$(id -u)" != 0 ]; then
	echo "fetch-daemons.sh: must run as root" >&2
	exit 1
fi
mkdir -p "$opt" || exit 1
# shellcheck disable=SC2086 # a list of words
[ $# -gt 0 ] || set -- $default_pkgs
status=0
for pkg in "$@"; do
	fetch "$pkg" || status=1
	case $pkg in
	opensmtpd)
		# Compiled-in users; their home is the directory the
		# unprivileged processes chroot into.
		mkdir -p /var/lib/opensmtpd/empty || status=1
		system_user opensmtpd /var/lib/opensmtpd/empty || status=1
		system_user opensmtpq /var/lib/opensmtpd/empty || status=1 ;;
	esac
done
exit $status

#!/bin/sh
# ppshim demo: an unmodified nginx (no proxy_protocol in its config) runs
# under libppshim.so behind HAProxy, which sends a PROXY v2 header.  A
# client connects to HAProxy from 127.0.0.5; nginx's own access log shows
# 127.0.0.5, not HAProxy's 127.0.0.1.  Everything stays on loopback.
#
# Run from the source tree as root on Debian 12 (it installs the build
# dependencies and HAProxy, nginx and curl if they are missing):
#   sudo scripts/demo.sh
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

need=""
for p in build-essential autoconf automake libtool pkg-config haproxy \
	nginx-light curl; do
	dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "demo: missing packages:$need (run as root to install)" >&2
		exit 1
	fi
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $need
fi

echo "== building ppshim"
[ -x configure ] || autoreconf -fi
mkdir -p _demo
cd _demo
[ -f Makefile ] || ../configure -q
make -s -j"$(nproc)" src/libppshim.la >/dev/null
lib=$PWD/src/.libs/libppshim.so
tmp=$(mktemp -d)
cd "$tmp"

nginx_port=18080
haproxy_port=18000
mkdir -p logs
cat > nginx.conf <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 64; }
http {
	access_log $tmp/logs/access.log;
	client_body_temp_path $tmp;
	proxy_temp_path $tmp;
	fastcgi_temp_path $tmp;
	uwsgi_temp_path $tmp;
	scgi_temp_path $tmp;
	server {
		listen 127.0.0.1:$nginx_port;
		location / { return 200 "hello from nginx, you are \$remote_addr\n"; }
	}
}
EOF
cat > haproxy.cfg <<EOF
global
	log stdout format raw local0 err
defaults
	mode tcp
	timeout connect 2s
	timeout client 5s
	timeout server 5s
frontend fe
	bind 127.0.0.1:$haproxy_port
	default_backend be
backend be
	server nginx 127.0.0.1:$nginx_port send-proxy-v2
EOF

cleanup() {
	[ -n "${hpid:-}" ] && kill "$hpid" 2>/dev/null
	[ -n "${npid:-}" ] && kill "$npid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "== starting nginx under ppshim on 127.0.0.1:$nginx_port (PP_PORTS=$nginx_port)"
LD_PRELOAD=$lib PP_PORTS=$nginx_port PP_ALLOW=127.0.0.1 PP_LOG=info \
	nginx -p "$tmp" -c "$tmp/nginx.conf" &
npid=$!
echo "== starting HAProxy on 127.0.0.1:$haproxy_port, send-proxy-v2 to nginx"
haproxy -db -f "$tmp/haproxy.cfg" >/dev/null 2>&1 &
hpid=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$haproxy_port/" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 50 ] || { echo "demo: servers did not start" >&2; exit 1; }
	sleep 0.1
done
: > "$tmp/logs/access.log"

echo "== curl from 127.0.0.5 through HAProxy"
curl -s --interface 127.0.0.5 "http://127.0.0.1:$haproxy_port/"
sleep 0.2
echo "== nginx access log (nginx knows nothing of PROXY; the address is the client's):"
cat "$tmp/logs/access.log"
echo "== ppshim's own line, in nginx's error log (PP_LOG=info):"
grep proxied "$tmp/logs/error.log" | tail -n 1
grep -q '^127\.0\.0\.5 ' "$tmp/logs/access.log"
echo "== demo OK"

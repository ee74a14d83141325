#!/usr/bin/env bash
# An independent check of the peer rows of `npm run bench`: nothing of bench/run.mjs is used.
# The peers are started by hand as docs/06-performance.md describes them, the target is another
# program (python3's http.server serving a file from /dev/shm), and the figures are curl's own
# (%{speed_download}, %{time_starttransfer}). Run it right before or after
# `npm run bench -- --only peers` on a quiet machine and compare the rows; they should agree
# within the machine's noise (the raw row is capped by python's server, the others are not).
#   bash bench/peers-check.sh [MiB=256] [TTFB count=50]
# Needs shadowsocks-libev, shadowsocks-v2ray-plugin, v2ray, curl, openssl, python3 (npm run bench installs them).
set -euo pipefail
MIB="${1:-256}"
TTFB_N="${2:-50}"
for c in ss-server ss-local ss-v2ray-plugin v2ray curl openssl python3; do
  command -v "$c" >/dev/null || { echo "peers-check: $c is missing (npm run bench installs the peers)" >&2; exit 2; }
done
dir="$(mktemp -d /dev/shm/peers-check.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
bg() { "$@" >"$dir/log.$(basename "$1").$RANDOM" 2>&1 & pids+=($!); }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
mkdir "$dir/www"
head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$dir/www/big"
printf x >"$dir/www/one"
T="$(port)"
bg python3 -m http.server "$T" --bind 127.0.0.1 --directory "$dir/www"
wait_port "$T"

# best of three downloads (MB/s, 10^6 B) and the median TTFB (ms) of TTFB_N new connections
measure() {
  local label="$1"; shift
  local best=0 s
  for _ in 1 2 3; do
    s="$(curl -sS -o /dev/null -w '%{speed_download}' "$@" "http://127.0.0.1:$T/big")"
    best="$(python3 -c "print(max($best, $s))")"
  done
  local ttfb=()
  for _ in $(seq 1 "$TTFB_N"); do ttfb+=("$(curl -sS -o /dev/null -w '%{time_starttransfer}' "$@" "http://127.0.0.1:$T/one")"); done
  python3 - "$label" "$best" "${ttfb[@]}" <<'EOF'
import statistics, sys
label, best, *t = sys.argv[1:]
print(f"| {label} | {float(best) / 1e6:.0f} | {statistics.median(float(x) for x in t) * 1000:.2f} |")
EOF
}

echo "peers-check $(date -u '+%F %H:%M') UTC, ${MIB} MiB, TTFB over ${TTFB_N}; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| configuration | 1 stream MB/s | TTFB ms (median) |"
echo "|---|---:|---:|"
measure "raw loopback (curl → python http.server)"

PW="peers-check-$RANDOM$RANDOM"
# Sets L to the SOCKS port. Not called as $(ss_pair …): in a subshell the pids it starts would
# not reach `pids`, and the cleanup would leave the servers running.
ss_pair() { # method, plugin options for the server and the client (empty: none)
  local S; S="$(port)"; L="$(port)"
  local sargs=(-s 127.0.0.1 -p "$S" -k "$PW" -m "$1") largs=(-s 127.0.0.1 -p "$S" -l "$L" -k "$PW" -m "$1" -b 127.0.0.1)
  if [ -n "${2:-}" ]; then sargs+=(--plugin ss-v2ray-plugin --plugin-opts "$2"); largs+=(--plugin ss-v2ray-plugin --plugin-opts "$3"); fi
  bg ss-server "${sargs[@]}"; bg ss-local "${largs[@]}"
  wait_port "$L"; sleep 0.3
}
ss_pair chacha20-ietf-poly1305; measure "ss-libev chacha20-ietf-poly1305" --socks5-hostname "127.0.0.1:$L"
ss_pair aes-256-gcm; measure "ss-libev aes-256-gcm" --socks5-hostname "127.0.0.1:$L"
for mux in 0 1; do
  ss_pair chacha20-ietf-poly1305 "server;tls;host=localhost;cert=$dir/cert.pem;key=$dir/key.pem;mux=$mux;loglevel=none" "tls;host=localhost;cert=$dir/cert.pem;mux=$mux;loglevel=none"
  measure "ss-libev + v2ray-plugin WS+TLS, mux=$mux" --socks5-hostname "127.0.0.1:$L"
done

U="$(cat /proc/sys/kernel/random/uuid)"; VS="$(port)"; VC="$(port)"
cat >"$dir/vs.json" <<EOF
{"log":{"loglevel":"none"},"inbounds":[{"listen":"127.0.0.1","port":$VS,"protocol":"vless","settings":{"clients":[{"id":"$U"}],"decryption":"none"},
 "streamSettings":{"network":"ws","security":"tls","wsSettings":{"path":"/ws"},"tlsSettings":{"certificates":[{"certificateFile":"$dir/cert.pem","keyFile":"$dir/key.pem"}]}}}],
 "outbounds":[{"protocol":"freedom"}]}
EOF
cat >"$dir/vc.json" <<EOF
{"log":{"loglevel":"none"},"inbounds":[{"listen":"127.0.0.1","port":$VC,"protocol":"socks","settings":{"auth":"noauth"}}],
 "outbounds":[{"protocol":"vless","settings":{"vnext":[{"address":"127.0.0.1","port":$VS,"users":[{"id":"$U","encryption":"none"}]}]},
 "streamSettings":{"network":"ws","security":"tls","wsSettings":{"path":"/ws"},"tlsSettings":{"serverName":"localhost","certificates":[{"usage":"verify","certificateFile":"$dir/cert.pem"}]}}}]}
EOF
bg v2ray -config "$dir/vs.json"; bg v2ray -config "$dir/vc.json"
wait_port "$VS"; wait_port "$VC"; sleep 0.3
measure "v2ray VLESS WS+TLS" --socks5-hostname "127.0.0.1:$VC"

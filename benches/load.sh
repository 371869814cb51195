#!/usr/bin/env bash
# Load run on loopback: the release server against nginx serving the same
# PNG bytes, with wrk. Prints cache-hit throughput and latency side by side;
# miss throughput over distinct signed URLs alone, while one client asks
# for a cached image 100 times a second (each answer timed), and beside as
# many hits as wrk can send, with the CPU each process used; the resident
# size while MEMORY_URLS distinct URLs are requested once each; and the
# cold start. Bounded: every wrk run lasts DURATION seconds, the
# memory run at most MEMORY_TIMEOUT seconds.
#
#   bash benches/load.sh   # DURATION=10 CONNECTIONS=32 CACHE_MAX_BYTES=32 MiB
#                          # MEMORY_URLS=20000 MEMORY_TIMEOUT=900 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
SIGNET_PORT=${SIGNET_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
MEMORY_URLS=${MEMORY_URLS:-20000}
MEMORY_TIMEOUT=${MEMORY_TIMEOUT:-900}
CACHE_MAX_BYTES=${CACHE_MAX_BYTES:-33554432}

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need nginx nginx-light
need curl curl

cargo build --release --quiet
work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run unprivileged
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

user=be6a052e-bce8-4c14-8bbb-ea6b6f9941d5
base=TEafv3AfNptmzii4zj2jkc
host=http://127.0.0.1:$SIGNET_PORT

wait_for() { # url, tries of 20 ms
  for _ in $(seq 500); do curl -sf -o /dev/null "$1" && return 0; sleep 0.02; done
  echo "no answer from $1" >&2; return 1
}

# Distinct names for the miss storms and the memory run, signed by the CLI
# signer: 3000 for the storms, MEMORY_URLS others for the memory run.
{ echo text_candidate; for i in $(seq $((3000 + MEMORY_URLS))); do echo "Recipient Number $i"; done; } > "$work/names.csv"
./target/release/signet sign --user $user --template $base --base-url "" --csv "$work/names.csv" --output "$work/signed.csv" 2>/dev/null
cut -d, -f2 "$work/signed.csv" | tail -n +2 > "$work/all.txt"
head -3000 "$work/all.txt" > "$work/paths.txt"
tail -n +3001 "$work/all.txt" > "$work/memory.txt"
first_path=$(head -1 "$work/paths.txt")

# Cold start: process start to the first rendered response.
start=$(date +%s%N)
SIGNET_LISTEN=127.0.0.1:$SIGNET_PORT SIGNET_CACHE_MAX_BYTES=$CACHE_MAX_BYTES \
  ./target/release/signet serve >/dev/null 2>"$work/signet.log" &
signet_pid=$!
pids+=($signet_pid)
wait_for "$host$first_path"
cold_ms=$(( ($(date +%s%N) - start) / 1000000 ))

hit_path=$(sed -n 2p "$work/paths.txt")
mkdir -p "$work/www"
curl -sf -o "$work/www/cert.png" "$host$hit_path"
cat > "$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $work/www;
    location / { types { image/png png; } }
  }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_for "http://127.0.0.1:$NGINX_PORT/cert.png"

run() { wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" 2>&1; }
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else {sub(/s/,"",v); v=v*1000}; print v}'; }

signet_hit=$(run "$host$hit_path")
nginx_hit=$(run "http://127.0.0.1:$NGINX_PORT/cert.png")

cat > "$work/storm.lua" <<LUA
local paths = {}
for line in io.lines("$work/paths.txt") do paths[#paths + 1] = line end
-- Each storm starts at its own offset so the second one misses too.
local i = tonumber(os.getenv("STORM_OFFSET") or "2")
request = function()
  i = i + 1
  if i > #paths then i = 3 end
  return wrk.format("GET", paths[i])
end
LUA
# Renders a stopped wrk left queued still run; each phase starts once the
# server is idle, so it measures only its own load.
field() { curl -sf "$host/healthz" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
idle() { [ "$(field renders_running)" = 0 ] && [ "$(field renders_waiting)" = 0 ]; }
settle() { for _ in $(seq 600); do idle && return 0; sleep 0.1; done; }
settle
alone=$(STORM_OFFSET=2 run -s "$work/storm.lua" "$host")
settle
# The storm alone brought hundreds of new images into a cache of about a
# hundred while nobody asked for the hot one, so it may have been evicted:
# it is fetched again before each storm below, so their hits are hits from
# the first.
curl -sf -o /dev/null "$host$hit_path"

# A storm while one curl process asks for the hot URL 100 times a second
# on one keep-alive connection, recording each answer's time and whether
# it came from the cache.
STORM_OFFSET=1000 run -s "$work/storm.lua" "$host" > "$work/storm-probed.txt" &
storm=$!
probe=()
for _ in $(seq $((DURATION * 100 - 50))); do probe+=(-o /dev/null -w "%{time_total} %header{x-stencil-cache}\n" "$host$hit_path"); done
curl -s --rate 100/s "${probe[@]}" > "$work/probe.txt"
wait $storm
settle
curl -sf -o /dev/null "$host$hit_path"

# A storm beside as many hits as wrk can send on 4 connections; the CPU
# each process used shows how the two cores were shared.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_s() { awk 'NR == 2 {t = 0; for (i = 1; i <= 2; i++) {split($i, p, "m"); t += p[1] * 60 + p[2]}; printf "%.1f", t}' "$1"; }
signet_ticks=$(ticks "$signet_pid")
(STORM_OFFSET=2000 run -s "$work/storm.lua" "$host" > "$work/storm.txt"; times > "$work/storm.cpu") &
storm=$!
(wrk -t1 -c4 -d"${DURATION}s" --latency "$host$hit_path" > "$work/during.txt" 2>&1; times > "$work/during.cpu") &
hits=$!
wait $hits $storm
signet_cpu=$(awk -v t=$(( $(ticks "$signet_pid") - signet_ticks )) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}')
settle
during=$(cat "$work/during.txt")
storm_out=$(cat "$work/storm.txt")
probed_out=$(cat "$work/storm-probed.txt")
rss_kib=$(ps -o rss= -p "$signet_pid" | tr -d ' ')

# Memory: each of MEMORY_URLS distinct URLs (a miss each), until the server
# has rendered them all. The resident size is sampled meanwhile.
cat > "$work/memory.lua" <<LUA
local paths = {}
for line in io.lines("$work/memory.txt") do paths[#paths + 1] = line end
-- wrk calls request() once to check it before the run and drops what it
-- returns, so that first call is not counted as sent.
local sent = -1
request = function()
  sent = sent + 1
  if sent == #paths + 1 then io.open("$work/memory-sent", "w"):close() end
  if sent == 0 or sent > #paths then return wrk.format("GET", "/healthz") end
  return wrk.format("GET", paths[sent])
end
LUA
# wrk has no "stop after N requests": once every URL is sent it marks that
# in a file and asks for /healthz, and the loop stops it (SIGINT, so it
# still prints its summary) once the server is idle.
before=$(field renders_started)
mem_start=$(date +%s%N)
wrk -t1 -c"$CONNECTIONS" -d"${MEMORY_TIMEOUT}s" -s "$work/memory.lua" "$host" > "$work/memory-run.txt" 2>&1 &
mem_wrk=$!
peak=0
while kill -0 $mem_wrk 2>/dev/null; do
  now=$(ps -o rss= -p "$signet_pid" | tr -d ' ')
  [ "${now:-0}" -gt "$peak" ] && peak=$now
  if [ -f "$work/memory-sent" ] && idle; then
    kill -INT $mem_wrk; wait $mem_wrk || true; break
  fi
  sleep 0.5
done
mem_renders=$(( $(field renders_started) - before ))
mem_s=$(( ($(date +%s%N) - mem_start) / 1000000000 ))
mem_end=$(ps -o rss= -p "$signet_pid" | tr -d ' ')

s_rps=$(echo "$signet_hit" | rps); n_rps=$(echo "$nginx_hit" | rps)
s_p99=$(echo "$signet_hit" | p99); n_p99=$(echo "$nginx_hit" | p99)
echo "machine: $(nproc) cores; wrk -t1 -c$CONNECTIONS -d${DURATION}s; PNG $(stat -c %s "$work/www/cert.png") bytes"
echo "cache hit   signet $s_rps req/s, p99 ${s_p99} ms | nginx $n_rps req/s, p99 ${n_p99} ms"
awk -v a="$s_rps" -v b="$n_rps" -v c="$s_p99" -v d="$n_p99" \
  'BEGIN { printf "            throughput ratio %.2fx nginx, p99 ratio %.2fx nginx\n", a/b, c/d }'
non2xx() { awk '/Non-2xx/ {print $NF; f=1} END {if (!f) print 0}'; }
echo "miss storm  $(echo "$alone" | rps) renders/s over distinct URLs alone, $(echo "$alone" | non2xx) non-2xx (wrk -c$CONNECTIONS)"
echo "            $(echo "$probed_out" | rps) renders/s while hits are probed 100 a second, $(echo "$probed_out" | non2xx) non-2xx"
sort -n "$work/probe.txt" | awk '{a[NR]=$1*1000; if ($2 != "hit") m++} END {printf "            probed hits (curl, keep-alive): %d, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d not served from the cache\n", NR, a[int(NR*0.5)], a[int(NR*0.99)], a[NR], m}'
echo "            $(echo "$storm_out" | rps) renders/s beside a hit load, $(echo "$storm_out" | non2xx) non-2xx"
echo "            hits meanwhile: $(echo "$during" | rps) req/s, p50 $(echo "$during" | awk '$1=="50%" {print $2}'), p99 $(echo "$during" | p99) ms (wrk -c4)"
echo "            CPU over those ${DURATION} s (of $((DURATION * $(nproc))) core-s): signet ${signet_cpu} s, wrk storm $(cpu_s "$work/storm.cpu") s, wrk hits $(cpu_s "$work/during.cpu") s"
health=$(curl -sf "$host/healthz")
echo "memory      RSS $((rss_kib / 1024)) MiB after the storms; cache bound $((CACHE_MAX_BYTES / 1048576)) MiB"
echo "            $MEMORY_URLS distinct URLs in ${mem_s} s ($(grep -c . "$work/memory.txt") signed, $mem_renders renders; $(awk '/requests in/ {print $1}' "$work/memory-run.txt") requests with the /healthz ones, $(non2xx < "$work/memory-run.txt") non-2xx, $(awk '/Socket errors/ {print $NF; f=1} END {if (!f) print 0}' "$work/memory-run.txt") timeouts):"
echo "            peak RSS $((peak / 1024)) MiB, at the end $((mem_end / 1024)) MiB; bound + 64 MiB = $((CACHE_MAX_BYTES / 1048576 + 64)) MiB"
echo "            healthz: $health"
echo "cold start  ${cold_ms} ms from process start to the first rendered certificate"

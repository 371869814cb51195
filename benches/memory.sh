#!/usr/bin/env bash
# Memory under the configuration's bound, measured. The release server is
# filled part by part, then loaded at once:
#   1. the image cache: distinct renders of the demo certificate at
#      width 3000 until `cache_bytes` reaches CACHE_MAX_BYTES;
#   2. the base cache: each of several widths asked for twice (the first
#      miss queues the base's build, the second waits for it);
#   3. CONCURRENT requests at once at the largest widths max_pixels admits
#      (25 megapixels, each a different width and name), ROUNDS times.
# It prints the peak resident size (VmHWM) beside the worst case the
# README's formula gives for this configuration. Bounded: curl gives each
# request at most 120 s, and the cache fill at most FILL_MAX requests.
#
#   bash benches/memory.sh   # CONCURRENT=8 ROUNDS=3 CACHE_MAX_BYTES=64 MiB
#                            # BASE_CACHE_MAX_BYTES=64 MiB RENDER_MEMORY_BYTES=512 MiB
set -euo pipefail
cd "$(dirname "$0")/.."
CONCURRENT=${CONCURRENT:-8}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18090}
FILL_MAX=${FILL_MAX:-400}
CACHE_MAX_BYTES=${CACHE_MAX_BYTES:-67108864}
BASE_CACHE_MAX_BYTES=${BASE_CACHE_MAX_BYTES:-67108864}
RENDER_MEMORY_BYTES=${RENDER_MEMORY_BYTES:-536870912}
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

cargo build --release --quiet
user=be6a052e-bce8-4c14-8bbb-ea6b6f9941d5
base=TEafv3AfNptmzii4zj2jkc
host=http://127.0.0.1:$PORT
SIGNET_LISTEN=127.0.0.1:$PORT SIGNET_CACHE_MAX_BYTES=$CACHE_MAX_BYTES \
  SIGNET_BASE_CACHE_MAX_BYTES=$BASE_CACHE_MAX_BYTES SIGNET_RENDER_MEMORY_BYTES=$RENDER_MEMORY_BYTES \
  ./target/release/signet serve >/dev/null 2>/tmp/signet-memory.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 500); do curl -sf -o /dev/null "$host/healthz" && break; sleep 0.02; done
health() { curl -s "$host/healthz" | tr -d '{}"' | tr ',' '\n' | awk -F: -v k="$1" '$1 == k {print $2}'; }
url() { # name width
  ./target/release/signet sign --user $user --template $base --base-url "$host" \
    --set "text_candidate=$1" --option "width=$2" 2>/dev/null
}

n=0
while [ "$(health cache_bytes)" -lt $((CACHE_MAX_BYTES * 95 / 100)) ] && [ $n -lt "$FILL_MAX" ]; do
  n=$((n + 1)); curl -s -o /dev/null -m 120 "$(url "Fill $n" 3000)"
done
echo "cache: $(health cache_bytes) bytes after $n renders"
for width in 2000 2400 2800 2900; do
  for i in 1 2; do curl -s -o /dev/null -m 120 "$(url "Base $width $i" $width)"; done
done
echo "bases: $(health base_entries) kept, $(health base_bytes) bytes"

statuses=()
for round in $(seq "$ROUNDS"); do
  reqs=()
  for i in $(seq "$CONCURRENT"); do
    # 2000×1414 at width w has w × 0.707w pixels: 5946 is the widest
    # under max_pixels (25,000,000).
    curl -s -o /dev/null -m 120 -w '%{http_code}\n' "$(url "Round $round recipient $i" $((5946 - round * 10 - i)))" \
      > "/tmp/signet-memory.$round.$i" &
    reqs+=($!)
  done
  wait "${reqs[@]}"
  for i in $(seq "$CONCURRENT"); do statuses+=("$(cat /tmp/signet-memory.$round.$i)"); done
done
# Renders whose clients gave up still run to their end: wait for them.
for _ in $(seq 600); do [ "$(health renders_running)" = 0 ] && break; sleep 0.1; done
peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
now_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
slots=$(nproc)
mib=$((1024 * 1024))
bound=$(( (CACHE_MAX_BYTES + BASE_CACHE_MAX_BYTES + RENDER_MEMORY_BYTES + slots * BASE_CACHE_MAX_BYTES) / mib + 50 ))
echo "large renders: $((CONCURRENT * ROUNDS)); statuses: $(printf '%s\n' "${statuses[@]}" | sort | uniq -c | tr '\n' ' ')"
echo "peak resident: $((peak_kb / 1024)) MiB; at the end: $((now_kb / 1024)) MiB; bound for this configuration: $bound MiB"
curl -s "$host/healthz"; echo

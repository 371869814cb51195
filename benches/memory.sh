#!/usr/bin/env bash
# The memory worst case the configuration allows, measured: the release
# server with the default limits is sent, all at once, CONCURRENT requests
# for the demo certificate at the largest widths max_pixels admits (each a
# different width and name, so each is a render of its own and a base
# build of its own), then ROUNDS more such waves; the peak resident size
# (VmHWM) is printed beside the bound the README states. Bounded: curl
# gives each request at most 120 s.
#
#   bash benches/memory.sh   # CONCURRENT=8 ROUNDS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
CONCURRENT=${CONCURRENT:-8}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18090}
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

cargo build --release --quiet
user=be6a052e-bce8-4c14-8bbb-ea6b6f9941d5
base=TEafv3AfNptmzii4zj2jkc
SIGNET_LISTEN=127.0.0.1:$PORT ./target/release/signet serve >/dev/null 2>/tmp/signet-memory.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 500); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.02; done

statuses=()
for round in $(seq "$ROUNDS"); do
  reqs=()
  for i in $(seq "$CONCURRENT"); do
    # 2000×1414 at width w has w×(w×0.707) pixels: 5946 is the widest
    # under max_pixels (25,000,000).
    width=$((5946 - round * 10 - i))
    url=$(./target/release/signet sign --user $user --template $base --base-url "http://127.0.0.1:$PORT" \
      --set "text_candidate=Round $round recipient $i" --option "width=$width" 2>/dev/null)
    curl -s -o /dev/null -m 120 -w '%{http_code}\n' "$url" > "/tmp/signet-memory.$round.$i" &
    reqs+=($!)
  done
  wait "${reqs[@]}"
  for i in $(seq "$CONCURRENT"); do statuses+=("$(cat /tmp/signet-memory.$round.$i)"); done
done
peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
now_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "requests: $((CONCURRENT * ROUNDS)); statuses: $(printf '%s\n' "${statuses[@]}" | sort | uniq -c | tr '\n' ' ')"
echo "peak resident: $((peak_kb / 1024)) MiB; at the end: $((now_kb / 1024)) MiB"
curl -s "http://127.0.0.1:$PORT/healthz"; echo

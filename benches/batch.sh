#!/usr/bin/env bash
# Load run of a CSV batch on loopback: the release server on SQLite (or
# PostgreSQL with PG=1, a throwaway cluster from Debian's postgresql,
# fsync on), an account whose limits never bind.
#
# ROWS (10,000) recipients as one CSV body, timed from the POST to the
# batch reading `completed`, three times:
#
#   1. alone;
#   2. with reads of one certificate at a steady RATE (200/s) beside it,
#      their p50/p99 timed from when each was due;
#   3. with wrk reading flat out over CONNECTIONS (4) keep-alive
#      connections (stopped with SIGINT when the batch completes, so its
#      figures cover only the batch's time).
#
# Bounded: each batch must finish within 120 s.
#
#   bash benches/batch.sh    # ROWS=10000 RATE=200 CONNECTIONS=4
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-10000}
CONNECTIONS=${CONNECTIONS:-4}
RATE=${RATE:-200}
PORT=${PORT:-18091}
DATABASE_URL=${DATABASE_URL:-}

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need curl curl
need python3 python3

cargo build --release --quiet
work=$(mktemp -d)
pid=
wrk_pid=
reads_pid=
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null
  [ -n "$reads_pid" ] && kill "$reads_pid" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -d "$work/pg/data" ] && as_pg "$pgbin/pg_ctl" stop -D "$work/pg/data" -m fast >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
if [ "${PG:-}" = 1 ] && [ -z "$DATABASE_URL" ]; then
  need "$pgbin/initdb" postgresql
  chmod 755 "$work"; mkdir -p "$work/pg"; [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
  as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 >/dev/null
  as_pg "$pgbin/pg_ctl" start -D "$work/pg/data" -w -l "$work/pg/log" \
    -o "-c listen_addresses='' -k $work/pg -p 5498 -c max_connections=100" >/dev/null
  DATABASE_URL="postgres://postgres@localhost/postgres?host=$work/pg&port=5498"
fi

user=be6a052e-bce8-4c14-8bbb-ea6b6f9941d5
base=TEafv3AfNptmzii4zj2jkc
host=http://127.0.0.1:$PORT
cat > "$work/signet.toml" <<CONF
listen = "127.0.0.1:$PORT"
templates_dir = "$PWD/templates"
fonts_dir = "$PWD/fonts"
data_dir = "$work/data"
${DATABASE_URL:+database_url = \"$DATABASE_URL\"}

[[users]]
id = "$user"
secrets = ["secretzzzz"]
plan = "custom"
rate_limit_per_minute = 100000000
batch_size = 100000
CONF
key=$(./target/release/signet keys create --config "$work/signet.toml" --user $user --env live --scope '*' 2>/dev/null | grep -o 'sk_live_[A-Za-z0-9]*')
SIGNET_LOG=warn ./target/release/signet serve --config "$work/signet.toml" >/dev/null 2>"$work/signet.log" &
pid=$!
for _ in $(seq 500); do curl -sf -o /dev/null "$host/healthz" && break; sleep 0.02; done

# Three cohorts of new names: a name is measured once and then kept, so
# a batch of names seen before would time the cache, not the checks.
for cohort in 1 2 3; do
  python3 - "$ROWS" "$cohort" > "$work/cohort$cohort.csv" <<'PY'
import sys
rows, cohort = int(sys.argv[1]), sys.argv[2]
print("name,email,course_name,metadata.student")
for i in range(1, rows + 1):
    print(f'"Graduate {i}, Class {cohort} of 2026",g{i}@example.org,Advanced Project Management,S{i:06d}')
PY
done

body='{"template_id":"'$base'","recipient":{"name":"Maria Andersson"},"fields":{"course_name":"Advanced Project Management"}}'
id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body" "$host/v1/certificates" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cat > "$work/read.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $key"
LUA

now_ms() { date +%s%3N; }
# Posts cohort $1 and waits for `completed`; prints the milliseconds taken.
batch() {
  local started batch_id status
  started=$(now_ms)
  batch_id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: text/csv' \
    --data-binary @"$work/cohort$1.csv" "$host/v1/certificates/batch?template_id=$base" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for _ in $(seq 12000); do
    status=$(curl -sf -H "Authorization: Bearer $key" "$host/v1/batches/$batch_id?limit=1" |
      python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["status"], b["completed"], b["failed"])')
    [ "${status%% *}" = completed ] && break
    sleep 0.01
  done
  [ "${status%% *}" = completed ] || { echo "the batch did not finish: $status" >&2; exit 1; }
  echo "$(( $(now_ms) - started )) ${status#* }"
}

# Reads at a steady RATE (as an API sees them beside a batch), each timed
# from when it was due, so a stalled server is not hidden by the reader
# waiting for it; until the file `stop` appears.
cat > "$work/reads.py" <<'PY'
import http.client, sys, threading, time, os
host, port, path, key, rate, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6]
threads, times, lock = 4, [], threading.Lock()
def reader(n):
    conn = http.client.HTTPConnection(host, port)
    due = time.monotonic() + n / rate
    while not os.path.exists(stop):
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        conn.request("GET", path, headers={"Authorization": "Bearer " + key})
        response = conn.getresponse(); response.read()
        assert response.status == 200, response.status
        with lock:
            times.append(time.monotonic() - due)
        due += threads / rate
ts = [threading.Thread(target=reader, args=(n,)) for n in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
times.sort()
q = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000
print(f"{len(times)} {q(0.5):.2f} {q(0.99):.2f}")
PY

read -r alone _ _ < <(batch 1)

python3 "$work/reads.py" 127.0.0.1 "$PORT" "/v1/certificates/$id" "$key" "$RATE" "$work/stop" >"$work/reads.out" &
reads_pid=$!
sleep 0.5
read -r steady _ _ < <(batch 2)
touch "$work/stop"; wait "$reads_pid"; reads_pid=
read -r reads p50 p99 < "$work/reads.out"

wrk -t1 -c"$CONNECTIONS" -d120s --latency -s "$work/read.lua" "$host/v1/certificates/$id" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
sleep 0.5 # wrk connected and reading before the batch starts
read -r saturated _ _ < <(batch 3)
kill -INT "$wrk_pid"; wait "$wrk_pid" || true; wrk_pid=

echo "batch load run: $(nproc) cores, $([ -n "$DATABASE_URL" ] && echo PostgreSQL || echo SQLite), $ROWS-row CSV, each batch from POST to completed"
line() { awk -v ms="$2" -v rows="$ROWS" -v name="$1" 'BEGIN {printf "%-40s %6.2f s  %6.0f rows/s\n", name, ms / 1000, rows / (ms / 1000)}'; }
line "batch alone" "$alone"
line "batch, $RATE reads/s beside it" "$steady"
printf '%-40s %6s reads, p50 %s ms, p99 %s ms (from when due)\n' "  those reads" "$reads" "$p50" "$p99"
line "batch, reads on $CONNECTIONS connections flat out" "$saturated"
awk '/Requests\/sec/ {rps = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
  END {printf "%-40s %6s req/s, p50 %s, p99 %s\n", "  those reads", rps, p50, p99}' "$work/wrk.out"

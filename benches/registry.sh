#!/usr/bin/env bash
# Load run of the registry on loopback: the release server on SQLite, or
# on PostgreSQL with PG=1 (a throwaway cluster from Debian's postgresql,
# fsync on, on a unix socket) or DATABASE_URL=postgres://…; an account on a custom plan
# whose limit never binds, and wrk with 32 keep-alive connections:
#
#   1. POST /v1/certificates (every 201 durably committed), a new
#      recipient's name each time;
#   2. GET /v1/certificates/{id} of one certificate;
#   3. GET /c/{id}.png of that certificate (a cache hit) beside the same
#      image by signed URL, so the two hits compare in one run.
#
# Prints requests/s and p50/p99 of each. Bounded: each wrk run lasts
# DURATION seconds.
#
#   bash benches/registry.sh    # DURATION=10 CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18090}
DATABASE_URL=${DATABASE_URL:-}

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need curl curl
need python3 python3

cargo build --release --quiet
work=$(mktemp -d)
pid=
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
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
    -o "-c listen_addresses='' -k $work/pg -p 5499 -c max_connections=100" >/dev/null
  DATABASE_URL="postgres://postgres@localhost/postgres?host=$work/pg&port=5499"
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
batch_size = 1000
CONF
key=$(./target/release/signet keys create --config "$work/signet.toml" --user $user --env live --scope '*' 2>/dev/null | grep -o 'sk_live_[A-Za-z0-9]*')
RUST_LOG=warn ./target/release/signet serve --config "$work/signet.toml" >/dev/null 2>"$work/signet.log" &
pid=$!
for _ in $(seq 500); do curl -sf -o /dev/null "$host/healthz" && break; sleep 0.02; done

run() { wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" 2>&1; }
report() { # name, wrk output
  awk -v name="$1" '
    /Requests\/sec/ {rps = $2}
    $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
    /Non-2xx/ {bad = $NF}
    END {printf "%-34s %10s req/s   p50 %8s   p99 %8s%s\n", name, rps, p50, p99, (bad ? "   non-2xx " bad : "")}' <<<"$2"
}

body='{"template_id":"'$base'","recipient":{"name":"Maria Andersson","email":"maria@example.org"},"fields":{"course_name":"Advanced Project Management"},"metadata":{"crm":"003XX000004TmiQ"}}'
# Every create names another recipient (as a real cohort does), with the
# same course: names are checked and measured afresh, fields repeat.
cat > "$work/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
local i = 0
request = function()
  i = i + 1
  local body = '{"template_id":"$base","recipient":{"name":"Recipient ' .. i .. ' Andersson","email":"r' .. i .. '@example.org"},"fields":{"course_name":"Advanced Project Management"},"metadata":{"crm":"003XX000004TmiQ"}}'
  return wrk.format(nil, nil, nil, body)
end
LUA
create=$(run -s "$work/create.lua" "$host/v1/certificates")

id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body" "$host/v1/certificates" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cat > "$work/read.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $key"
LUA
read=$(run -s "$work/read.lua" "$host/v1/certificates/$id")

curl -sf -o /dev/null "$host/c/$id.png"
record_hit=$(run "$host/c/$id.png")
signed=$(./target/release/signet sign --user $user --template $base --base-url "$host" --set text_candidate="Maria Andersson" --set text_course="Advanced Project Management" 2>/dev/null | tail -1)
curl -sf -o /dev/null "$signed"
signed_hit=$(run "$signed")

echo "registry load run: $(nproc) cores, $([ -n "$DATABASE_URL" ] && echo PostgreSQL || echo SQLite), $CONNECTIONS connections, ${DURATION}s each"
report "POST /v1/certificates" "$create"
report "GET /v1/certificates/{id}" "$read"
report "GET /c/{id}.png (hit)" "$record_hit"
report "signed URL, same image (hit)" "$signed_hit"

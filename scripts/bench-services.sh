#!/usr/bin/env bash
# Benchmark of the services as a student runs them: `edm broker`, MariaDB and dynalite
# (DynamoDB API) as servers, and the four saga services as separate `edm` processes.
# Prints what they cost:
#   - idle: CPU of the four services and of the broker over IDLE_SECONDS with no orders;
#   - load: ORDERS orders placed through the order service's HTTP API, CONCURRENCY at a
#     time (decline rate 0.2), then CPU per saga of each process (its user + system time
#     over the run, divided by the sagas).
# Usage: scripts/bench-services.sh [ORDERS] [CONCURRENCY] [IDLE_SECONDS]
#   KAFKA=host:port uses that broker instead of starting `edm broker`;
#   PROFILE=<service> also records a CPU profile of that process during the load
#   (perf record, into /tmp/edm-bench-<service>.perf; read it with perf report -i).
# Needs a release build (cargo build --release), MariaDB as scripts/test-servers.sh starts it,
# and Node.js for dynalite (installed with npm into /var/tmp/edm-dynalite when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS=${1:-2000}
CONCURRENCY=${2:-32}
IDLE_SECONDS=${3:-30}
EDM=${EDM_BIN:-${CARGO_TARGET_DIR:-/var/tmp/edm-target}/release/edm}
WORK=$(mktemp -d /tmp/edm-bench-XXXXXX)
KAFKA_PORT=29392
DYNALITE_PORT=24567
ORDER_PORT=28080
RUN=bench$RANDOM

log() { printf '[bench] %s\n' "$*" >&2; }
[ -x "$EDM" ] || { log "no release build at $EDM: run cargo build --release"; exit 1; }

# Servers: MariaDB from the test script, dynalite from npm, edm's broker.
scripts/test-servers.sh start-mysql >/dev/null
if [ ! -f /var/tmp/edm-dynalite/node_modules/dynalite/cli.js ]; then
  log "installing dynalite 4.0.0 (npm)"
  (mkdir -p /var/tmp/edm-dynalite && cd /var/tmp/edm-dynalite && npm install --silent dynalite@4.0.0)
fi
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
node /var/tmp/edm-dynalite/node_modules/dynalite/cli.js --host 127.0.0.1 --port $DYNALITE_PORT \
  --createTableMs 0 >"$WORK/dynalite.log" 2>&1 &
pids+=($!)
if [ -n "${KAFKA:-}" ]; then
  broker=
else
  "$EDM" broker --listen 127.0.0.1:$KAFKA_PORT >"$WORK/broker.log" 2>&1 &
  broker=$!
  pids+=($broker)
fi

export EDM_BOOTSTRAP_SERVERS=${KAFKA:-127.0.0.1:$KAFKA_PORT}
export EDM_MYSQL_URL=mysql://root:inventorypw@127.0.0.1:${EDM_TEST_MYSQL_PORT:-23306}/edm_$RUN
export EDM_DYNAMODB_ENDPOINT=http://127.0.0.1:$DYNALITE_PORT
export EDM_ORDERS_TABLE=order_$RUN
export EDM_ORDER_SERVICE_LISTEN=127.0.0.1:$ORDER_PORT
sleep 1
"$EDM" setup >/dev/null
"$EDM" create-topics >/dev/null

declare -A service
start() { # name args...
  local name=$1; shift
  "$EDM" "$@" >"$WORK/$name.log" 2>&1 &
  service[$name]=$!
  pids+=($!)
}
start order-service order-service
start inventory-consumer inventory-consumer
start payment-consumer payment-consumer --decline-rate 0.2
start order-consumer order-consumer
for name in inventory-consumer payment-consumer order-consumer; do
  until grep -q "partitions assigned" "$WORK/$name.log"; do sleep 0.1; done
done
until (exec 3<>/dev/tcp/127.0.0.1/$ORDER_PORT) 2>/dev/null; do sleep 0.1; done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks
hz=$(getconf CLK_TCK)
snapshot() {
  for name in "${!service[@]}"; do echo "$name $(ticks "${service[$name]}")"; done
  [ -z "$broker" ] || echo "broker $(ticks "$broker")"
}

sleep 2 # let start-up settle
before=$(snapshot)
log "idle for ${IDLE_SECONDS} s"
sleep "$IDLE_SECONDS"
after=$(snapshot)
echo "idle, ${IDLE_SECONDS} s with no orders (share of one core):"
join <(sort <<<"$before") <(sort <<<"$after") |
  awk -v s="$IDLE_SECONDS" -v hz="$hz" '{d=($3-$2)/hz; t+=($1!="broker")?d:0; printf "  %-20s %6.2f %%\n", $1, 100*d/s}
       END {printf "  %-20s %6.2f %%\n", "four services", 100*t/s}'

log "placing $ORDERS orders, $CONCURRENCY at a time"
if [ -n "${PROFILE:-}" ]; then
  perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "${service[$PROFILE]}" \
    -o "/tmp/edm-bench-$PROFILE.perf" >/dev/null 2>&1 &
  profiler=$!
  sleep 1
fi
before=$(snapshot)
started=$(date +%s.%N)
python3 - "$ORDER_PORT" "$ORDERS" "$CONCURRENCY" <<'PY'
import http.client, json, sys
from concurrent.futures import ThreadPoolExecutor
port, orders, concurrency = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def place(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = {"order": {"user_id": f"user-{n}", "name": "Hong Gil Dong", "addr": "Seoul",
                      "tel": "01012341234", "email": "hong@gil.com"},
            "inventory": {"id": 1 + n % 5, "quantity": 1}}
    conn.request("POST", "/v1/order", json.dumps(body), {"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()
    return status
with ThreadPoolExecutor(concurrency) as pool:
    statuses = list(pool.map(place, range(orders)))
refused = sum(1 for s in statuses if s != 200)
if refused:
    sys.exit(f"{refused} orders refused")
PY
# Every saga ends with one line of the order consumer.
until [ "$(grep -c 'order is now' "$WORK/order-consumer.log")" -ge "$ORDERS" ]; do sleep 0.1; done
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
after=$(snapshot)
if [ -n "${PROFILE:-}" ]; then kill -INT "$profiler"; wait "$profiler" || true; fi
echo "load, $ORDERS orders ($CONCURRENCY in flight) in ${elapsed} s (CPU per saga):"
join <(sort <<<"$before") <(sort <<<"$after") |
  awk -v n="$ORDERS" -v hz="$hz" '{d=($3-$2)/hz; t+=($1!="broker")?d:0; printf "  %-20s %6.3f ms\n", $1, 1000*d/n}
       END {printf "  %-20s %6.3f ms\n", "four services", 1000*t/n}'
mariadb -uroot -pinventorypw -h127.0.0.1 -P"${EDM_TEST_MYSQL_PORT:-23306}" -e "DROP DATABASE edm_$RUN" 2>/dev/null || true
rm -rf "$WORK"

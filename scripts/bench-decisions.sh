#!/usr/bin/env bash
# What a long history of payment decisions costs a payment consumer's start: fills
# `payment.decisions` with N decisions (default 1,000,000), then starts `edm
# payment-consumer` and reports how long it took to read them all and its memory.
#
#   scripts/bench-decisions.sh [N]
#
# On `edm broker` (release build, started here) unless EDM_BOOTSTRAP_SERVERS names a
# broker (e.g. the test script's Apache Kafka, 127.0.0.1:29192). Needs a release build
# (cargo build --release: about 8 minutes the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/edm-target}
cargo build --release --locked --bin edm --example fill_decisions >&2
EDM=$CARGO_TARGET_DIR/release/edm
RUN=bench$(date +%s)
export EDM_TOPIC_PREFIX=$RUN-
if [ -z "${EDM_BOOTSTRAP_SERVERS:-}" ]; then
  PORT=${BENCH_BROKER_PORT:-39492}
  "$EDM" broker --listen 127.0.0.1:$PORT >/tmp/$RUN-broker.log 2>&1 &
  BROKER=$!
  trap 'kill $BROKER 2>/dev/null || true' EXIT
  export EDM_BOOTSTRAP_SERVERS=127.0.0.1:$PORT
  until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.1; done
fi
echo "== filling ${EDM_TOPIC_PREFIX}payment.decisions with $N decisions on $EDM_BOOTSTRAP_SERVERS" >&2
"$CARGO_TARGET_DIR/release/examples/fill_decisions" "$N"

echo "== starting edm payment-consumer" >&2
LOG=/tmp/$RUN-payment.log
start=$(date +%s.%N)
RUST_LOG=info "$EDM" payment-consumer --pg-ok true >"$LOG" 2>&1 &
PID=$!
until grep -q "payment consumer started" "$LOG"; do
  kill -0 $PID 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.05
done
end=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
kill -INT $PID; wait $PID || true
known=$(grep -o 'known_decisions=[0-9]*' "$LOG" | head -1)
printf 'decisions read at start: %s; time to start: %.2f s; peak RSS: %d MB\n' \
  "${known#known_decisions=}" "$(echo "$end - $start" | bc)" "$((rss / 1024))"

#!/usr/bin/env bash
# What the web view costs a load run: `edm lab --orders ORDERS --concurrency CONCURRENCY`
# without the view, and with `--ui` and one headless Chromium showing the page (the Sagas
# tab, live), in alternate runs on the same machine. Each run's throughput (sagas/s) and
# the lab process's CPU time over the run (its services, its embedded broker, and the
# view's server side; the browser's own CPU is reported apart) come from the load report.
# Prints each run, then the medians and the view's added CPU per saga.
# Usage: scripts/bench-view.sh [ORDERS] [CONCURRENCY] [PAIRS]
# Needs a release build (cargo build --release) and Chromium (scripts/test-servers.sh
# installs Debian's; EDM_TEST_CHROMIUM names another).
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS=${1:-20000}
CONCURRENCY=${2:-64}
PAIRS=${3:-3}
EDM=${EDM_BIN:-${CARGO_TARGET_DIR:-/var/tmp/edm-target}/release/edm}
CHROMIUM=${EDM_TEST_CHROMIUM:-$(command -v chromium || true)}
PORT=28888
WORK=$(mktemp -d /tmp/edm-bench-view-XXXXXX)

log() { printf '[bench-view] %s\n' "$*" >&2; }
[ -x "$EDM" ] || { log "no release build at $EDM: run cargo build --release"; exit 1; }
[ -n "$CHROMIUM" ] || { log "no Chromium: run scripts/test-servers.sh start, or set EDM_TEST_CHROMIUM"; exit 1; }

browser=
lab=
cleanup() {
  [ -n "$browser" ] && kill "$browser" 2>/dev/null || true
  [ -n "$lab" ] && kill -INT "$lab" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The lab runs on its own (embedded broker, SQLite stores): no server of this machine's
# environment is used.
unset EDM_BOOTSTRAP_SERVERS EDM_MYSQL_URL EDM_DYNAMODB_ENDPOINT EDM_ORDERS_TABLE

# CPU seconds (user + system) used so far by the processes whose command line has $1.
cpu_of() {
  local ticks=0 pid
  for pid in $(pgrep -f -- "$1" || true); do
    if [ -r "/proc/$pid/stat" ]; then
      ticks=$((ticks + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    fi
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# One run; writes "sagas/s cpu_seconds browser_cpu_seconds" to $WORK/result.
run() {
  local with_view=$1 out="$WORK/run-$2.log" profile="$WORK/chromium-$2" browser_cpu=-
  if [ "$with_view" = yes ]; then
    "$EDM" lab --orders "$ORDERS" --concurrency "$CONCURRENCY" --ui --listen "127.0.0.1:$PORT" >"$out" 2>&1 &
    lab=$!
    until grep -q "web view of the sagas" "$out"; do
      kill -0 "$lab" 2>/dev/null || { log "the lab ended early:"; cat "$out" >&2; exit 1; }
      sleep 0.05
    done
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
      --disable-component-update --disable-sync --remote-debugging-port=0 \
      --user-data-dir="$profile" "http://127.0.0.1:$PORT/" >"$WORK/chromium-$2.log" 2>&1 &
    browser=$!
    until grep -q "the web view stays" "$out"; do
      kill -0 "$lab" 2>/dev/null || { log "the lab ended early:"; cat "$out" >&2; exit 1; }
      sleep 0.2
    done
    browser_cpu=$(cpu_of "$profile")
    kill -INT "$lab"; wait "$lab" || { log "the lab failed:"; cat "$out" >&2; exit 1; }
    kill "$browser" 2>/dev/null || true; wait "$browser" 2>/dev/null || true
    lab= browser=
  else
    "$EDM" lab --orders "$ORDERS" --concurrency "$CONCURRENCY" >"$out" 2>&1 \
      || { log "the lab failed:"; cat "$out" >&2; exit 1; }
  fi
  local rate cpu
  rate=$(awk '/^throughput/ {print $2}' "$out")
  cpu=$(awk '/^cpu/ {print $2}' "$out")
  grep -q "✓ every order final" "$out" || { log "books broken:"; cat "$out" >&2; exit 1; }
  echo "$rate $cpu $browser_cpu" >"$WORK/result"
}

log "$PAIRS pairs of runs, $ORDERS orders, concurrency $CONCURRENCY, $EDM"
printf '%-5s %-9s %10s %10s %12s\n' pair view sagas/s "cpu s" "browser s"
for pair in $(seq 1 "$PAIRS"); do
  # Alternate which goes first, so that neither always runs on a warmer machine.
  if [ $((pair % 2)) -eq 1 ]; then order="no yes"; else order="yes no"; fi
  for view in $order; do
    run "$view" "$pair-$view"
    read -r rate cpu browser_cpu <"$WORK/result"
    printf '%-5s %-9s %10s %10s %12s\n' "$pair" "$view" "$rate" "$cpu" "$browser_cpu" | tee -a "$WORK/runs.txt"
  done
done

awk -v orders="$ORDERS" '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $2 == "no"  { nr[++n] = $3; nc[n] = $4 }
  $2 == "yes" { yr[++y] = $3; yc[y] = $4; yb[y] = $5 }
  END {
    r0 = median(nr, n); c0 = median(nc, n); r1 = median(yr, y); c1 = median(yc, y); b1 = median(yb, y)
    printf "median without the view: %.0f sagas/s, %.2f s CPU\n", r0, c0
    printf "median with the view:    %.0f sagas/s, %.2f s CPU (browser %.2f s)\n", r1, c1, b1
    printf "the view: throughput x%.3f, CPU +%.1f %% (%.3f ms per saga)\n",
      r1 / r0, 100 * (c1 - c0) / c0, 1000 * (c1 - c0) / orders
  }' "$WORK/runs.txt"
log "logs in $WORK"

#!/usr/bin/env bash
# The project's test command, for a fresh machine as much as for a developer's:
#   1. builds edm, installs what is missing and starts real servers on 127.0.0.1
#      (`edm broker` for Kafka, moto for DynamoDB, MariaDB for MySQL: scripts/test-servers.sh),
#   2. checks formatting and lints (skip with EDM_SKIP_LINT=1),
#   3. runs `cargo test` against those servers (extra arguments go to cargo test),
#   4. stops the servers it started.
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds are slow on small machines: keep them outside the clone so that later runs
# (and CI on the same machine) reuse them.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/edm-target}

echo "== cargo build (edm, whose broker the tests run against)" >&2
cargo build --locked --bin edm
scripts/test-servers.sh start
trap 'scripts/test-servers.sh stop' EXIT
eval "$(scripts/test-servers.sh env)"

if [ "${EDM_SKIP_LINT:-0}" != 1 ]; then
  echo "== cargo fmt --check" >&2
  cargo fmt --check
  echo "== cargo clippy --all-targets -- -D warnings" >&2
  cargo clippy --all-targets --locked -- -D warnings
fi
echo "== cargo test" >&2
cargo test --locked "$@"

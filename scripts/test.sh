#!/usr/bin/env bash
# The project's test command, for a fresh machine as much as for a developer's:
#   1. builds edm, installs what is missing and starts real servers on 127.0.0.1
#      (`edm broker` and Apache Kafka for Kafka, moto for DynamoDB, MariaDB for MySQL:
#      scripts/test-servers.sh),
#   2. checks formatting and lints (skip with EDM_SKIP_LINT=1),
#   3. runs `cargo test` on `edm broker`: every unit and integration test, the
#      conformance suite (tests/conformance.rs, which talks to both brokers) included,
#   4. runs the integration tests again on Apache Kafka, the broker the course's compose
#      stack runs (the conformance suite, whose tests are named `both_brokers_…`, is
#      not run twice),
#   5. fuzzes edm broker's request path for 60 s (scripts/fuzz.sh; skip with
#      EDM_SKIP_FUZZ=1),
#   6. stops the servers it started.
# Extra arguments go to both `cargo test` runs (e.g. `--test saga`). EDM_TEST_BROKERS
# chooses the passes: "edm apache-kafka" (the default), "edm" or "apache-kafka".
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds are slow on small machines: keep them outside the clone so that later runs
# (and CI on the same machine) reuse them.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/edm-target}

echo "== cargo build (edm, whose broker the tests run against)" >&2
cargo build --locked --bin edm
scripts/test-servers.sh start
trap 'scripts/test-servers.sh stop' EXIT

if [ "${EDM_SKIP_LINT:-0}" != 1 ]; then
  echo "== cargo fmt --check" >&2
  cargo fmt --check
  echo "== cargo clippy --all-targets -- -D warnings" >&2
  cargo clippy --all-targets --locked -- -D warnings
fi

for broker in ${EDM_TEST_BROKERS:-edm apache-kafka}; do
  eval "$(EDM_TEST_BROKER=$broker scripts/test-servers.sh env)"
  case "$broker" in
    edm)
      echo "== cargo test, on edm broker ($EDM_TEST_BOOTSTRAP_SERVERS)" >&2
      cargo test --locked "$@"
      ;;
    apache-kafka)
      echo "== cargo test -p edm --test '*', on Apache Kafka ($EDM_TEST_BOOTSTRAP_SERVERS)" >&2
      cargo test --locked -p edm --test '*' "$@" -- --skip both_brokers
      ;;
  esac
done

if [ "${EDM_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh 60
fi

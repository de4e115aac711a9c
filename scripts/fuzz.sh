#!/usr/bin/env bash
# Fuzzes edm broker's request path (fuzz/fuzz_targets/request.rs) with libFuzzer for a
# fixed time, starting from the seed corpus of real clients' requests in
# fuzz/corpus/request (recorded with fuzz/capture.py). The test command runs it for 60 s;
# longer: `scripts/fuzz.sh 600`. A crash leaves its input in fuzz/artifacts/request/ and
# fails the script: turn it into a regression test (crates/edm-broker/tests/hostile.rs).
#
# Installs cargo-fuzz when missing. libFuzzer needs unstable compiler flags: on a stable
# toolchain RUSTC_BOOTSTRAP=1 allows them. No sanitizer (the broker has no unsafe code of
# its own): what the fuzzer looks for is a panic, an abort or an allocation past
# -malloc_limit_mb.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
export CARGO_TARGET_DIR=${EDM_FUZZ_TARGET_DIR:-/var/tmp/edm-fuzz-target}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz" >&2
  CARGO_TARGET_DIR=/var/tmp/cargo-fuzz-build cargo install cargo-fuzz --locked --version 0.13.2
fi
# Work on a copy of the corpus: what the fuzzer adds stays out of the clone.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp fuzz/corpus/request/* "$work"/
echo "== fuzzing edm broker's request path for ${seconds}s" >&2
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none request "$work" -- \
  -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -timeout=10 -print_final_stats=1 2>&1 | { grep -v "^#[0-9]*\s*\(NEW\|REDUCE\|pulse\)" || true; } | tail -30

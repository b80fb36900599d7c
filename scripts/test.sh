#!/usr/bin/env bash
# The one command that runs every test of the workspace (see README.md).
#
# 1. Regenerates kafka-protocol's messages when Kafka's message definitions are beside
#    the project (../shared/reference) and fails on any difference from what is
#    checked in.
# 2. Checks formatting and clippy.
# 3. Runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy -q --workspace --all-targets -- -D warnings
echo "== cargo test (integration suites against the in-process fake cluster)"
(unset KAFKA_BOOTSTRAP KAFKA_QUIRKS; cargo test -q --workspace)

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
cargo test -q -p kafka-producer --test producer -- against_the_named_cluster
cargo test -q -p kafka-producer --test readback --test transactions
cargo test -q -p kafka-consumer --test consumer --test interop
cargo test -q -p kafka-group --test group --test interop
cargo test -q -p kafka-group --test consumer_protocol -- on_kafka_bootstrap
cargo test -q -p kafka-test --test interop transactions_against_the_named_cluster
cargo test -q -p kafka-examples --test examples_run

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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy -q --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test -q --workspace

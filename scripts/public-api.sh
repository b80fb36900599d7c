#!/usr/bin/env bash
# The public-API guard: lists the public items of every published crate (from rustdoc's
# JSON output, by scripts/public_api.py) and compares each list with the one checked
# in as CRATE/public-api.txt. A difference fails, so that every change of public API
# is deliberate and shows in review.
#
#   scripts/public-api.sh            check (part of scripts/test.sh)
#   scripts/public-api.sh --bless    rewrite the checked-in lists; commit them with the
#                                    change that made them
#
# rustdoc's JSON output is unstable: it needs `-Z unstable-options`, which a stable
# toolchain accepts under RUSTC_BOOTSTRAP=1 (here only, in a target directory of its
# own so that the flag does not invalidate the main build). Its format changes between
# Rust releases (format_version, checked below); the lists were made with the Rust in
# scripts/test.sh's header, and a new toolchain may need a --bless that changes only
# the rendering.
set -euo pipefail
cd "$(dirname "$0")/.."

bless=false
case "${1:-}" in
  --bless) bless=true ;;
  "") ;;
  *) echo "usage: $0 [--bless]" >&2; exit 2 ;;
esac

crates=(kafka-protocol kafka-net kafka-producer kafka-consumer kafka-group kafka-test)
target=target/public-api
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
changed=()
for crate in "${crates[@]}"; do
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$target \
    cargo rustdoc -q -p "$crate" --lib -- -Z unstable-options --output-format json
  json=$target/doc/${crate//-/_}.json
  python3 scripts/public_api.py "$json" >"$out/$crate.txt"
  if $bless; then
    cp "$out/$crate.txt" "$crate/public-api.txt"
    echo "   $crate: $(wc -l <"$crate/public-api.txt") items written to $crate/public-api.txt"
  elif ! diff -u "$crate/public-api.txt" "$out/$crate.txt" >"$out/$crate.diff" 2>&1; then
    head -60 "$out/$crate.diff"
    changed+=("$crate")
  else
    echo "   $crate: $(wc -l <"$out/$crate.txt") items, unchanged"
  fi
done
if [ ${#changed[@]} -gt 0 ]; then
  echo "the public API of ${changed[*]} changed (diff above: - checked in, + now)." >&2
  echo "If that is deliberate, run scripts/public-api.sh --bless and commit the" >&2
  echo "updated */public-api.txt with the change." >&2
  exit 1
fi

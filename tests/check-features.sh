#!/usr/bin/env bash
# A user who needs only some providers builds with `--no-default-features --features X`;
# each such build (and the one with no provider at all) must compile without a warning,
# every target included. Cargo replays cached warnings, so a second run still sees them.
#
# Usage: tests/check-features.sh CONFIG...   (CONFIG: "none", or a feature list like
# "postgres" or "postgres,redis")
set -euo pipefail
cd "$(dirname "$0")/.."
cargo="${CARGO:-cargo}"

for config in "$@"; do
  features=""
  [[ "$config" == none ]] || features="$config"
  echo "check-features: cargo check --all-targets --no-default-features --features \"$features\""
  if ! out="$("$cargo" check --all-targets --no-default-features --features "$features" \
      --message-format short 2>&1)"; then
    echo "$out" >&2
    echo "check-features: FAIL: providers \"$config\" do not compile" >&2
    exit 1
  fi
  if grep -Eq '(^|: )warning' <<<"$out"; then
    grep -E '(^|: )warning' <<<"$out" >&2
    echo "check-features: FAIL: providers \"$config\" compile with warnings" >&2
    exit 1
  fi
done
echo "check-features: ok: $*"

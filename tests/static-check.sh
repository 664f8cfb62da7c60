#!/usr/bin/env bash
# Checks that a release binary is what `make static` promises: statically linked (no
# interpreter, no NEEDED libraries), stripped, under the size budget, and able to run on
# a machine with no libraries at all (an empty chroot, when we are root).
#
# Usage: tests/static-check.sh BINARY [MAX_BYTES]
set -euo pipefail

bin="${1:?usage: tests/static-check.sh BINARY [MAX_BYTES]}"
max_bytes="${2:-}"
fail() { echo "static-check: FAIL: $*" >&2; exit 1; }
ok() { echo "static-check: ok: $*"; }

[[ -x "$bin" ]] || fail "$bin does not exist or is not executable; run \`make static\`"
for tool in file readelf; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install file binutils)"
done

kind="$(file -b "$bin")"
[[ "$kind" == *"static-pie linked"* || "$kind" == *"statically linked"* ]] \
  || fail "file says it is not statically linked: $kind"
[[ "$kind" == *", stripped"* ]] || fail "file says it is not stripped: $kind"
ok "file: ${kind%%, BuildID*}"

if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
  fail "it asks for a program interpreter: $(readelf -l "$bin" | grep interpreter)"
fi
needed="$(readelf -d "$bin" | grep '(NEEDED)' || true)"
[[ -z "$needed" ]] || fail "it needs shared libraries:"$'\n'"$needed"
ok "readelf: no interpreter, no NEEDED libraries"

# ldd exits non-zero for "not a dynamic executable"; either wording means static.
ldd_out="$(ldd "$bin" 2>&1 || true)"
[[ "$ldd_out" == *"statically linked"* || "$ldd_out" == *"not a dynamic executable"* ]] \
  || fail "ldd lists libraries: $ldd_out"
ok "ldd: $(echo "$ldd_out" | head -n 1 | sed 's/^[[:space:]]*//')"

size="$(stat -c %s "$bin")"
if [[ -n "$max_bytes" ]]; then
  (( size < max_bytes )) || fail "$size bytes is over the budget of $max_bytes bytes"
  ok "size: $size bytes (budget $max_bytes)"
else
  ok "size: $size bytes"
fi

# The proof that matters: it runs where there is nothing but itself.
if [[ $(id -u) -eq 0 ]] && command -v chroot >/dev/null; then
  jail="$(mktemp -d "${TMPDIR:-/tmp}/ska-static-check.XXXXXX")"
  trap 'rm -rf "$jail"' EXIT
  cp "$bin" "$jail/sikkerkey-agent"
  version="$(chroot "$jail" /sikkerkey-agent --version)" \
    || fail "it does not run in an empty chroot"
  [[ "$version" == sikkerkey-agent\ * ]] || fail "unexpected --version output in the chroot: $version"
  ok "runs in an empty chroot: $version"
elif [[ -n "${CI:-}" ]]; then
  fail "CI must run this as root so the empty-chroot check can run"
else
  echo "static-check: SKIPPED the empty-chroot run: not root" >&2
fi

# The official SikkerKey CLI (npm @sikkerkey/cli-linux-x64@4.2.0), for one purpose: running
# its agent against our fake control plane proves the fake speaks the real protocol.
# Cached between runs; exported as SKA_OFFICIAL_AGENT. Sourced by run.sh.

OFFICIAL_VERSION=4.2.0

start_official() {
  local cache
  cache="$(cache_dir)/official-$OFFICIAL_VERSION"
  local bin="$cache/node_modules/@sikkerkey/cli-linux-x64/sikkerkey"
  if [[ ! -x "$bin" ]]; then
    command -v npm >/dev/null 2>&1 || ensure_packages npm
    mkdir -p "$cache"
    log "installing @sikkerkey/cli-linux-x64@$OFFICIAL_VERSION with npm"
    (cd "$cache" && npm install --no-audit --no-fund --silent "@sikkerkey/cli-linux-x64@$OFFICIAL_VERSION" >&2)
  fi
  [[ -x "$bin" ]] || { log "official CLI binary missing after install"; return 1; }
  export SKA_OFFICIAL_AGENT="$bin"
}

stop_official() { :; }

# Redis for the tests: only the server binary. Each Redis test starts its own
# redis-server on a free port in a temp dir (with or without an ACL file or a config
# file), because persistence and the default user's password are server-wide and must
# not be shared between tests. Sourced by run.sh.

start_redis() {
  command -v redis-server >/dev/null || ensure_packages redis-server
  local server version
  server="$(command -v redis-server)"
  version="$("$server" --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')"
  if [[ "${version%%.*}" -lt 6 ]]; then
    log "redis-server $version has no ACL support; the tests need Redis 6 or later"; return 1
  fi
  export SKA_REDIS_SERVER="$server"
  # The TLS tests start redis-server on a tls-port with the run's certificates.
  ensure_test_ca
  log "Redis $version at $server (each test starts its own server)"
  register_server redis "Redis $version" "$(debian_package redis-server)"
}

stop_redis() {
  :
}

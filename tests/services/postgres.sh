# PostgreSQL for the tests: a throwaway cluster that demands scram-sha-256 for every TCP
# login (the machine's own cluster may trust 127.0.0.1, which would make every "verify by
# logging in" check meaningless). Sourced by run.sh.

start_postgres() {
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    ensure_packages postgresql
    bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  local dir="$SKA_SERVICES_DIR/postgres" port pass
  port="$(free_port)"
  pass="$(random_password)"
  mkdir -p "$dir"
  init_scram_cluster "$bindir" "$dir" "$pass" || return 1
  as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256 -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; return 1; }
  PG_BINDIR="$bindir"
  export SKA_PG_HOST=127.0.0.1 SKA_PG_PORT="$port" SKA_PG_ADMIN_USER=ska_admin SKA_PG_ADMIN_PASS="$pass"
  # Prove the cluster refuses a wrong password before any test relies on it.
  if PGPASSWORD="wrong-$pass" "$bindir/psql" -h 127.0.0.1 -p "$port" -U ska_admin -d postgres -c 'select 1' >/dev/null 2>&1; then
    log "PostgreSQL test cluster accepts a wrong password"; return 1
  fi
  PGPASSWORD="$pass" "$bindir/psql" -h 127.0.0.1 -p "$port" -U ska_admin -d postgres -qtAc 'select 1' >/dev/null
  log "PostgreSQL on 127.0.0.1:$port (scram-sha-256)"
  register_server postgres "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}')" "$(debian_package postgresql)"
  start_postgres_tls
}

stop_postgres() {
  stop_postgres_tls
  stop_cluster "$SKA_SERVICES_DIR/postgres"
}

# Runs a command as the postgres user when we are root (initdb and the server refuse to run
# as root), as ourselves otherwise.
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# initdb of a cluster in $2/data whose superuser ska_admin has password $3 and whose every
# login, local or TCP, demands scram-sha-256. Files already in $2 (certificates) are handed
# to the server's user with it.
init_scram_cluster() {
  local bindir="$1" dir="$2" pass="$3" quiet=()
  # --no-instructions is new in PostgreSQL 14.
  "$bindir/initdb" --help | grep -q -- --no-instructions && quiet=(--no-instructions)
  printf '%s\n' "$pass" > "$dir/pwfile"
  [[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$dir"
  as_postgres "$bindir/initdb" -D "$dir/data" -U ska_admin --pwfile="$dir/pwfile" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 "${quiet[@]}" >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  rm -f "$dir/pwfile"
}

# Stops the cluster in $1/data at once; nothing in a test cluster needs a clean shutdown.
stop_cluster() {
  as_postgres "$PG_BINDIR/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1 || true
}

# A second PostgreSQL cluster for the TLS tests: ssl = on with the run's test CA, and a
# pg_hba.conf that rejects every TCP login without TLS (hostnossl ... reject), so a role
# that logs in at all has logged in over TLS. Members of the group ska_mtls must also
# present a client certificate signed by the test CA; members of ska_pwauth log in with
# the pg_hba method "password" (the server asks for the password in clear, over TLS). The main cluster (postgres.sh) stays
# plaintext-only: it is the server that `require` must refuse. Started by start_postgres.

start_postgres_tls() {
  ensure_test_ca || return 1
  local bindir="$PG_BINDIR" dir="$SKA_SERVICES_DIR/postgres-tls" port pass
  port="$(free_port)"
  pass="$(random_password)"
  mkdir -p "$dir"
  copy_test_certs "$dir"
  init_scram_cluster "$bindir" "$dir" "$pass" || return 1
  as_postgres tee "$dir/data/pg_hba.conf" >/dev/null <<'HBA'
local     all  +ska_pwauth            password
local     all  all                    scram-sha-256
hostnossl all  all       0.0.0.0/0    reject
hostnossl all  all       ::/0         reject
hostssl   all  +ska_mtls 127.0.0.1/32 scram-sha-256 clientcert=verify-ca
hostssl   all  +ska_pwauth 127.0.0.1/32 password
hostssl   all  all       127.0.0.1/32 scram-sha-256
hostssl   all  all       ::1/128      scram-sha-256
HBA
  as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256 -c max_connections=100 -c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key -c ssl_ca_file=$dir/ca.pem -c log_connections=on" start >&2 \
    || { cat "$dir/server.log" >&2; return 1; }
  PG_TLS_DIR="$dir"
  export SKA_PGTLS_HOST=127.0.0.1 SKA_PGTLS_PORT="$port" SKA_PGTLS_ADMIN_USER=ska_admin SKA_PGTLS_ADMIN_PASS="$pass" \
    SKA_PGTLS_SOCKET_DIR="$dir"
  # Prove the cluster refuses plaintext and accepts a verified TLS login before any test relies on it.
  if PGPASSWORD="$pass" PGSSLMODE=disable "$bindir/psql" -h 127.0.0.1 -p "$port" -U ska_admin -d postgres -c 'select 1' >/dev/null 2>&1; then
    log "the PostgreSQL TLS cluster accepts a plaintext login"; return 1
  fi
  PGPASSWORD="$pass" PGSSLMODE=verify-full PGSSLROOTCERT="$SKA_TLS_CA" "$bindir/psql" -h 127.0.0.1 -p "$port" \
    -U ska_admin -d postgres -qtAc 'CREATE ROLE ska_mtls NOLOGIN; CREATE ROLE ska_pwauth NOLOGIN' >/dev/null \
    || { log "the PostgreSQL TLS cluster refuses a verify-full login"; tail -n 20 "$dir/server.log" >&2; return 1; }
  log "PostgreSQL (TLS only) on 127.0.0.1:$port"
}

stop_postgres_tls() {
  [[ -n "${PG_TLS_DIR:-}" ]] || return 0
  stop_cluster "$PG_TLS_DIR"
}

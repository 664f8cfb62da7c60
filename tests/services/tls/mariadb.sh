# A second MariaDB for the TLS tests: ssl_cert/ssl_key/ssl_ca from the run's test CA, and
# an admin account that REQUIRE SSL, so the admin logs in over TLS or not at all (the
# tests make their managed users REQUIRE SSL too). The main MariaDB (mariadb.sh) stays
# plaintext-only: it is the server that `require` must refuse. Started by start_mariadb.

start_mariadb_tls() {
  ensure_test_ca || return 1
  local dir="$SKA_SERVICES_DIR/mariadb-tls" port pass me as_user=()
  port="$(free_port)"
  pass="$(random_password)"
  me="$(id -un)"
  mkdir -p "$dir"
  cp "$SKA_TLS_SERVER_CERT" "$dir/server.pem"
  cp "$SKA_TLS_SERVER_KEY" "$dir/server.key"
  cp "$SKA_TLS_CA" "$dir/ca.pem"
  if [[ $(id -u) -eq 0 ]]; then
    chown -R mysql:mysql "$dir"
    as_user=(--user=mysql)
  fi
  chmod 600 "$dir/server.key"
  mariadb-install-db --no-defaults "${as_user[@]}" --datadir="$dir/data" --skip-test-db \
    --skip-name-resolve --auth-root-authentication-method=socket --auth-root-socket-user="$me" \
    >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; return 1; }
  mariadbd --no-defaults "${as_user[@]}" --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --skip-name-resolve --max-connections=200 --innodb-buffer-pool-size=16M \
    --performance-schema=OFF --ssl-cert="$dir/server.pem" --ssl-key="$dir/server.key" \
    --ssl-ca="$dir/ca.pem" >/dev/null 2>&1 &
  MARIADB_TLS_DIR="$dir"
  if ! wait_for "mariadb --no-defaults -S '$dir/mysqld.sock' -u '$me' -e 'SELECT 1'" 60; then
    log "MariaDB (TLS) did not start; its log:"; cat "$dir/error.log" >&2; return 1
  fi
  # The password goes through stdin, never argv.
  mariadb --no-defaults -S "$dir/mysqld.sock" -u "$me" <<SQL
CREATE USER 'ska_admin'@'%' IDENTIFIED BY '$pass' REQUIRE SSL;
GRANT ALL PRIVILEGES ON *.* TO 'ska_admin'@'%' WITH GRANT OPTION;
SQL
  export SKA_MYSQLTLS_HOST=127.0.0.1 SKA_MYSQLTLS_PORT="$port" SKA_MYSQLTLS_ADMIN_USER=ska_admin SKA_MYSQLTLS_ADMIN_PASS="$pass"
  # Prove the server has TLS on and refuses the admin without it before any test relies on it.
  if MYSQL_PWD="$pass" mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u ska_admin --skip-ssl -e 'SELECT 1' >/dev/null 2>&1; then
    log "the MariaDB TLS server lets the REQUIRE SSL admin in without TLS"; return 1
  fi
  MYSQL_PWD="$pass" mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u ska_admin \
    --ssl --ssl-ca="$SKA_TLS_CA" --ssl-verify-server-cert -e 'SELECT 1' >/dev/null \
    || { log "the MariaDB TLS admin cannot log in over verified TLS"; cat "$dir/error.log" >&2; return 1; }
  log "MariaDB (TLS, admin REQUIRE SSL) on 127.0.0.1:$port"
}

stop_mariadb_tls() {
  [[ -n "${MARIADB_TLS_DIR:-}" ]] || return 0
  local pid
  pid="$(cat "$MARIADB_TLS_DIR/mysqld.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2>/dev/null || true
  wait_for "! kill -0 $pid" 30 || kill -9 "$pid" 2>/dev/null || true
}

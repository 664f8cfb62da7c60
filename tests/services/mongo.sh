# MongoDB for the tests: a throwaway server with authentication on, and an admin whose
# name and password hold the characters that break connection URIs (@ : / % ?). Sourced
# by run.sh.
#
# The server is a real `mongod` when one is on PATH or named by SKA_MONGOD; otherwise
# SecantusDB, a MongoDB-compatible server (wire protocol, SCRAM-SHA-256, user commands)
# installed from PyPI into a cached virtualenv. SecantusDB is GPL-2.0: it only ever runs
# as a separate process and is never a dependency of the crate. The first admin is
# created by lib/mongo_admin.py, which reads its credentials from the environment.

SKA_SECANTUSDB_VERSION="0.7.0b3"

# Brings up a test server: the command "${@:4}" as $1 on port $2, logging to
# $3/server.log, first without authentication while lib/mongo_admin.py creates the admin,
# then for good with --auth once the script has shown that the server refuses a wrong
# password (and plaintext, for a TLS-only server). The script reads MONGO_ADMIN_USER,
# MONGO_ADMIN_PASS and, for a TLS-only server, MONGO_TLS_CA from the caller's
# environment. The server's PID is left in LAUNCHED_PID, also after a failure.
mongo_bring_up() {
  local name="$1" port="$2" log_file="$3/server.log"
  shift 3
  local admin=(env MONGO_PORT="$port" "$MONGO_VENV/bin/python" "$here/lib/mongo_admin.py")
  launch_listening "$name" "$port" "$log_file" "$@" || return 1
  if ! "${admin[@]}" create; then
    tail -n 50 "$log_file" >&2
    return 1
  fi
  stop_child "$LAUNCHED_PID"
  launch_listening "$name" "$port" "$log_file" "$@" --auth || return 1
  "${admin[@]}" check || { tail -n 50 "$log_file" >&2; return 1; }
}

start_mongo() {
  MONGO_DIR="$SKA_SERVICES_DIR/mongo"
  MONGO_PORT="$(free_port)"
  mkdir -p "$MONGO_DIR/data"
  local mongod="${SKA_MONGOD:-$(command -v mongod || true)}"
  if [[ -n "$mongod" ]]; then
    MONGO_VENV="$(cached_venv pymongo-4 pymongo --pre 'pymongo>=4,<5')" || return 1
    MONGO_NAME="mongod $("$mongod" --version 2>/dev/null | sed -n 1p)"
    MONGO_SERVER=("$mongod" --bind_ip 127.0.0.1 --port "$MONGO_PORT" --dbpath "$MONGO_DIR/data")
  else
    MONGO_VENV="$(cached_venv "secantusdb-$SKA_SECANTUSDB_VERSION" pymongo --pre "SecantusDB==$SKA_SECANTUSDB_VERSION")" || return 1
    MONGO_NAME="SecantusDB $SKA_SECANTUSDB_VERSION"
    MONGO_SERVER=("$MONGO_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$MONGO_PORT"
      --storage-path "$MONGO_DIR/data" --standalone --log-level WARNING)
  fi

  local user pass
  user="ska:adm@in/%?"
  pass="$(random_password)@:/%?'\"ø"
  export SKA_MONGO_ADMIN_USER="$user" SKA_MONGO_ADMIN_PASS="$pass"
  local rc=0
  MONGO_ADMIN_USER="$user" MONGO_ADMIN_PASS="$pass" \
    mongo_bring_up "$MONGO_NAME" "$MONGO_PORT" "$MONGO_DIR" "${MONGO_SERVER[@]}" || rc=$?
  MONGO_PID=$LAUNCHED_PID
  [[ $rc -eq 0 ]] || return 1
  export SKA_MONGO_HOST=127.0.0.1 SKA_MONGO_PORT="$MONGO_PORT" SKA_MONGO_SERVER="$MONGO_NAME"
  log "$MONGO_NAME on 127.0.0.1:$MONGO_PORT (auth on)"
  if [[ "$MONGO_NAME" == SecantusDB* ]]; then
    register_server mongo "$MONGO_NAME (a MongoDB-compatible server in Python)" "PyPI SecantusDB"
  else
    register_server mongo "$MONGO_NAME" "$mongod"
  fi
  start_mongo_tls
}

stop_mongo() {
  stop_mongo_tls
  stop_child "${MONGO_PID:-}"
}

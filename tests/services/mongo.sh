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

# Starts the server in $MONGO_DIR on $MONGO_PORT, with --auth when $1 is "auth".
mongo_launch() {
  local args=("${MONGO_SERVER[@]}") rc=0
  if [[ "${1:-}" == "auth" ]]; then args+=(--auth); fi
  launch_listening "$MONGO_NAME" "$MONGO_PORT" "$MONGO_DIR/server.log" "${args[@]}" || rc=$?
  MONGO_PID=$LAUNCHED_PID
  return $rc
}

# Stops the server this script started, politely first.
mongo_halt() {
  stop_child "${MONGO_PID:-}"
  MONGO_PID=""
}

# The first admin, or the proof that the server checks passwords (lib/mongo_admin.py,
# `create` or `check`), for the test server; the credentials go through the environment.
mongo_admin() {
  MONGO_PORT="$MONGO_PORT" MONGO_ADMIN_USER="$SKA_MONGO_ADMIN_USER" MONGO_ADMIN_PASS="$SKA_MONGO_ADMIN_PASS" \
    "$MONGO_VENV/bin/python" "$here/lib/mongo_admin.py" "$@"
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

  # Without auth first, to create the admin; then for good with auth on.
  mongo_launch || return 1
  mongo_admin create || { tail -n 50 "$MONGO_DIR/server.log" >&2; return 1; }
  mongo_halt
  mongo_launch auth || return 1

  # Prove the server checks passwords before any test relies on it.
  mongo_admin check || { tail -n 50 "$MONGO_DIR/server.log" >&2; return 1; }
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
  mongo_halt
}

# A second MongoDB-compatible server for the TLS tests, speaking TLS only, with the run's
# certificates and authentication on. SecantusDB takes --tls-cert-file/--tls-key-file/
# --tls-ca-file; a real mongod (SKA_MONGOD) gets --tlsMode requireTLS. The main server
# (mongo.sh) stays plaintext-only: it is the server that `require` must refuse. Started
# by start_mongo, after it has chosen the server and its virtualenv.

# lib/mongo_admin.py (`create` or `check`) against the TLS server, verified with the test CA.
mongo_tls_admin() {
  MONGO_PORT="$MONGO_TLS_PORT" MONGO_TLS_CA="$SKA_TLS_CA" MONGO_ADMIN_USER="$SKA_MONGOTLS_ADMIN_USER" \
    MONGO_ADMIN_PASS="$SKA_MONGOTLS_ADMIN_PASS" "$MONGO_VENV/bin/python" "$here/lib/mongo_admin.py" "$@"
}

mongo_tls_launch() {
  local args=()
  if [[ "$MONGO_NAME" == SecantusDB* ]]; then
    args=("$MONGO_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$MONGO_TLS_PORT"
      --storage-path "$MONGO_TLS_DIR/data" --standalone --log-level WARNING
      --tls-cert-file "$SKA_TLS_SERVER_CERT" --tls-key-file "$SKA_TLS_SERVER_KEY" --tls-ca-file "$SKA_TLS_CA")
  else
    cat "$SKA_TLS_SERVER_CERT" "$SKA_TLS_SERVER_KEY" > "$MONGO_TLS_DIR/server-combined.pem"
    args=("${MONGO_SERVER[0]}" --bind_ip 127.0.0.1 --port "$MONGO_TLS_PORT" --dbpath "$MONGO_TLS_DIR/data"
      --tlsMode requireTLS --tlsCertificateKeyFile "$MONGO_TLS_DIR/server-combined.pem" --tlsCAFile "$SKA_TLS_CA"
      --tlsAllowConnectionsWithoutCertificates)
  fi
  if [[ "${1:-}" == "auth" ]]; then args+=(--auth); fi
  local rc=0
  launch_listening "$MONGO_NAME (TLS)" "$MONGO_TLS_PORT" "$MONGO_TLS_DIR/server.log" "${args[@]}" || rc=$?
  MONGO_TLS_PID=$LAUNCHED_PID
  return $rc
}

stop_mongo_tls() {
  stop_child "${MONGO_TLS_PID:-}"
  MONGO_TLS_PID=""
}

start_mongo_tls() {
  ensure_test_ca || return 1
  MONGO_TLS_DIR="$SKA_SERVICES_DIR/mongo-tls"
  MONGO_TLS_PORT="$(free_port)"
  mkdir -p "$MONGO_TLS_DIR/data"
  local pass
  pass="$(random_password)"
  export SKA_MONGOTLS_ADMIN_USER=ska_admin SKA_MONGOTLS_ADMIN_PASS="$pass"

  mongo_tls_launch || return 1
  mongo_tls_admin create || { tail -n 50 "$MONGO_TLS_DIR/server.log" >&2; return 1; }
  stop_mongo_tls
  mongo_tls_launch auth || return 1

  # Prove the server checks passwords over TLS and refuses plaintext before any test relies on it.
  mongo_tls_admin check || { tail -n 50 "$MONGO_TLS_DIR/server.log" >&2; return 1; }
  export SKA_MONGOTLS_HOST=127.0.0.1 SKA_MONGOTLS_PORT="$MONGO_TLS_PORT"
  log "$MONGO_NAME (TLS only) on 127.0.0.1:$MONGO_TLS_PORT (auth on)"
}

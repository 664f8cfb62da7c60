# A second MongoDB-compatible server for the TLS tests, speaking TLS only, with the run's
# certificates and authentication on. SecantusDB takes --tls-cert-file/--tls-key-file/
# --tls-ca-file; a real mongod (SKA_MONGOD) gets --tlsMode requireTLS. The main server
# (mongo.sh) stays plaintext-only: it is the server that `require` must refuse. Started
# by start_mongo, after it has chosen the server and its virtualenv.

stop_mongo_tls() {
  stop_child "${MONGO_TLS_PID:-}"
  MONGO_TLS_PID=""
}

start_mongo_tls() {
  ensure_test_ca || return 1
  MONGO_TLS_DIR="$SKA_SERVICES_DIR/mongo-tls"
  MONGO_TLS_PORT="$(free_port)"
  mkdir -p "$MONGO_TLS_DIR/data"
  local pass server=()
  pass="$(random_password)"
  export SKA_MONGOTLS_ADMIN_USER=ska_admin SKA_MONGOTLS_ADMIN_PASS="$pass"
  if [[ "$MONGO_NAME" == SecantusDB* ]]; then
    server=("$MONGO_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$MONGO_TLS_PORT"
      --storage-path "$MONGO_TLS_DIR/data" --standalone --log-level WARNING
      --tls-cert-file "$SKA_TLS_SERVER_CERT" --tls-key-file "$SKA_TLS_SERVER_KEY" --tls-ca-file "$SKA_TLS_CA")
  else
    cat "$SKA_TLS_SERVER_CERT" "$SKA_TLS_SERVER_KEY" > "$MONGO_TLS_DIR/server-combined.pem"
    server=("${MONGO_SERVER[0]}" --bind_ip 127.0.0.1 --port "$MONGO_TLS_PORT" --dbpath "$MONGO_TLS_DIR/data"
      --tlsMode requireTLS --tlsCertificateKeyFile "$MONGO_TLS_DIR/server-combined.pem" --tlsCAFile "$SKA_TLS_CA"
      --tlsAllowConnectionsWithoutCertificates)
  fi
  local rc=0
  MONGO_TLS_CA="$SKA_TLS_CA" MONGO_ADMIN_USER=ska_admin MONGO_ADMIN_PASS="$pass" \
    mongo_bring_up "$MONGO_NAME (TLS)" "$MONGO_TLS_PORT" "$MONGO_TLS_DIR" "${server[@]}" || rc=$?
  MONGO_TLS_PID=$LAUNCHED_PID
  [[ $rc -eq 0 ]] || return 1
  export SKA_MONGOTLS_HOST=127.0.0.1 SKA_MONGOTLS_PORT="$MONGO_TLS_PORT"
  log "$MONGO_NAME (TLS only) on 127.0.0.1:$MONGO_TLS_PORT (auth on)"
}

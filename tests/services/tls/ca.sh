# TLS material for the tests, made fresh for every run with openssl: a CA, a second CA
# that signed nothing the servers present (the "wrong CA"), a server certificate for
# IP 127.0.0.1 and the name ska-db.test (so "localhost", which reaches the same servers,
# is a wrong host name), and a client certificate for mutual TLS. Sourced by run.sh;
# every TLS-enabled service calls ensure_test_ca first.

# Prints openssl's output only when it fails.
tls_openssl() {
  local out
  if ! out="$(openssl "$@" 2>&1)"; then
    log "openssl $1 failed: $out"; return 1
  fi
}

# A P-256 key in $1 and a certificate in $2 for subject $3 signed by CA $4 (key $5) with
# the extensions in $6; self-signed when $4 is empty.
tls_issue() {
  local key="$1" cert="$2" subject="$3" ca="$4" ca_key="$5" ext="$6"
  tls_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" || return 1
  printf '%b' "$ext" > "$cert.ext"
  if [[ -z "$ca" ]]; then
    tls_openssl req -x509 -new -key "$key" -subj "$subject" -days 2 -out "$cert" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" || return 1
  else
    tls_openssl req -new -key "$key" -subj "$subject" -out "$cert.csr" || return 1
    tls_openssl x509 -req -in "$cert.csr" -CA "$ca" -CAkey "$ca_key" -CAcreateserial \
      -days 2 -extfile "$cert.ext" -out "$cert" || return 1
  fi
  rm -f "$cert.ext" "$cert.csr"
}

# The run's server certificate, key (0600) and CA, copied into $1 as server.pem,
# server.key and ca.pem, for a server that reads them from its own directory.
copy_test_certs() {
  cp "$SKA_TLS_SERVER_CERT" "$1/server.pem"
  cp "$SKA_TLS_SERVER_KEY" "$1/server.key"
  cp "$SKA_TLS_CA" "$1/ca.pem"
  chmod 600 "$1/server.key"
}

ensure_test_ca() {
  [[ -n "${SKA_TLS_CA:-}" ]] && return 0
  command -v openssl >/dev/null || ensure_packages openssl || return 1
  local d="$SKA_SERVICES_DIR/tls" tag
  tag="$(random_password | head -c 8)"
  mkdir -p "$d"
  tls_issue "$d/ca.key" "$d/ca.pem" "/CN=sikkerkey-agent test CA $tag" "" "" "" || return 1
  tls_issue "$d/wrong-ca.key" "$d/wrong-ca.pem" "/CN=sikkerkey-agent unrelated CA $tag" "" "" "" || return 1
  tls_issue "$d/server.key" "$d/server.pem" "/CN=ska-db.test" "$d/ca.pem" "$d/ca.key" \
    'subjectAltName=IP:127.0.0.1,DNS:ska-db.test\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' || return 1
  tls_issue "$d/client.key" "$d/client.pem" "/CN=ska-tls-client" "$d/ca.pem" "$d/ca.key" \
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' || return 1
  # Readable by the servers, which may run as their own users; the directory is per run.
  chmod 644 "$d"/*.pem "$d"/*.key
  # The client key is read by the agent only, which refuses a key others may read.
  chmod 600 "$d/client.key"
  export SKA_TLS_DIR="$d" SKA_TLS_CA="$d/ca.pem" SKA_TLS_WRONG_CA="$d/wrong-ca.pem" \
    SKA_TLS_SERVER_CERT="$d/server.pem" SKA_TLS_SERVER_KEY="$d/server.key" \
    SKA_TLS_CLIENT_CERT="$d/client.pem" SKA_TLS_CLIENT_KEY="$d/client.key" \
    SKA_TLS_GOOD_HOST=127.0.0.1 SKA_TLS_WRONG_HOST=localhost
  log "TLS: test CA $d/ca.pem (server certificate for 127.0.0.1 and ska-db.test)"
}

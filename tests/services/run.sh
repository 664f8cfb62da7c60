#!/usr/bin/env bash
# Starts every service the tests need as a throwaway instance on a free port, runs the
# given command with SKA_* variables pointing at them, and stops them all on exit.
#
# Each tests/services/<name>.sh defines start_<name> (install the server when missing,
# start it, export SKA_<NAME>_* variables) and stop_<name>. A service that cannot start
# fails the run: under CI a missing database is an error, never a silent skip.
#
# Usage: tests/services/run.sh [--only NAME[,NAME]] COMMAND [ARGS...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
only=""
if [[ "${1:-}" == "--only" ]]; then only="$2"; shift 2; fi

SKA_SERVICES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ska-services.XXXXXX")"
chmod 755 "$SKA_SERVICES_DIR"
export SKA_SERVICES_DIR

log() { echo "[services] $*" >&2; }

# Which server each group of tests ran against, for the support table that `make test`
# prints at the end (tests/support-table.sh): one line per server, KEY<TAB>product and
# version<TAB>where it came from.
SKA_RESULTS_DIR="${SKA_RESULTS_DIR:-$here/../../target/test-matrix}"
mkdir -p "$SKA_RESULTS_DIR"
SKA_RESULTS_DIR="$(cd "$SKA_RESULTS_DIR" && pwd)"
: > "$SKA_RESULTS_DIR/servers.tsv"
export SKA_RESULTS_DIR
register_server() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$SKA_RESULTS_DIR/servers.tsv"
}

# "Debian <codename> <package>": where a server from this machine's own release came from.
debian_package() {
  local codename
  codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
  echo "Debian ${codename:-stable} $1"
}

# A TCP port nothing listens on, from the ephemeral range's lower neighbours.
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"; return 0
    fi
  done
  log "no free port found"; return 1
}

# A random alphanumeric password.
random_password() {
  head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24
}

# Where downloads are kept between runs (server binaries, virtualenvs, npm packages).
cache_dir() {
  local cache="${SKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sikkerkey-agent-tests}"
  mkdir -p "$cache"
  echo "$cache"
}

# apt/dpkg is shared with whatever else runs on the machine: wait for its lock, not fail.
APT_GET=(apt-get -o DPkg::Lock::Timeout=600)

apt_updated=""
# apt-get install, once per run, only for packages that are missing.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    log "missing packages ${missing[*]} and not root: install them first"; return 1
  fi
  if [[ -z "$apt_updated" ]]; then DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" update -qq >&2; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Waits up to $2 seconds for command $1 to succeed.
wait_for() {
  local cmd="$1" seconds="$2"
  for _ in $(seq 1 $(( seconds * 10 ))); do
    if eval "$cmd" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Starts "$@" in the background with its output appended to $3 and waits up to 60 s for
# 127.0.0.1:$2 to accept connections. The PID is left in LAUNCHED_PID either way, so a
# start that failed can still be stopped; $1 names the server in the error.
launch_listening() {
  local name="$1" port="$2" log_file="$3"
  shift 3
  "$@" >>"$log_file" 2>&1 &
  LAUNCHED_PID=$!
  if ! wait_for "(exec 3<>/dev/tcp/127.0.0.1/$port)" 60; then
    log "$name did not start listening on 127.0.0.1:$port"
    tail -n 50 "$log_file" >&2
    return 1
  fi
}

# Stops our child process $1 (none when empty), politely first: SIGTERM, up to 10 s to
# exit, then SIGKILL.
stop_child() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Prints the path of a cached virtualenv named $1 in which Python can import module $2,
# creating it once with `pip install` of the remaining arguments (under a lock, so
# parallel runs do not install over each other).
cached_venv() {
  local name="$1" module="$2" cache venv
  shift 2
  cache="$(cache_dir)"
  venv="$cache/$name"
  (
    flock 9
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import $module" 2>/dev/null; then
      command -v python3 >/dev/null || ensure_packages python3
      python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_packages python3-venv
      log "installing $* into $venv"
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
    fi
  ) 9>"$cache/.$name.lock" || return 1
  echo "$venv"
}

started=()
cleanup() {
  local rc=$?
  for (( i=${#started[@]}-1; i>=0; i-- )); do "stop_${started[$i]}" || true; done
  rm -rf "$SKA_SERVICES_DIR"
  exit $rc
}
trap cleanup EXIT INT TERM

# Helpers the services share (the test CA, TLS-enabled variants of the servers, server
# builds from package registries).
for file in "$here"/tls/*.sh "$here"/lib/*.sh; do
  # shellcheck source=/dev/null
  source "$file"
done

# Every service's functions first (one may use another's helpers), then the starts.
names=()
for file in "$here"/*.sh; do
  name="$(basename "$file" .sh)"
  [[ "$name" == "run" ]] && continue
  # shellcheck source=/dev/null
  source "$file"
  names+=("$name")
done

for name in "${names[@]}"; do
  if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
  log "starting $name"
  # Stopped on exit even when it fails half-way: whatever it did start must go.
  started+=("$name")
  "start_$name"
done

log "services up: ${started[*]}"
"$@"

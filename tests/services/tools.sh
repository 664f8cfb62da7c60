# Tools the operations tests (tests/it/systemd.rs, tests/it/ops.rs) run, installed when
# missing: `systemd-analyze` (package systemd; it rates a unit file offline, without a
# running systemd), `strace` (which system calls and socket families a real rotation
# uses), `script` (a real pty for the password prompt) and Python's prometheus_client
# (parses `list -o prometheus`) in a cached virtualenv, and zsh, fish and groff (check the
# generated completions and man page). Sourced by run.sh.

# Prints the path of a virtualenv holding prometheus_client, creating it once.
tools_venv() {
  local cache venv
  cache="${SKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sikkerkey-agent-tests}"
  venv="$cache/prometheus-client"
  mkdir -p "$cache"
  (
    flock 9
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
      command -v python3 >/dev/null || ensure_packages python3
      python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_packages python3-venv
      log "installing prometheus_client into $venv"
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install -q --disable-pip-version-check "prometheus_client>=0.20" >&2
    fi
  ) 9>"$cache/.prometheus-client.lock" || return 1
  echo "$venv"
}

start_tools() {
  command -v systemd-analyze >/dev/null || ensure_packages systemd
  command -v strace >/dev/null || ensure_packages strace
  command -v script >/dev/null || ensure_packages bsdutils
  command -v stty >/dev/null || ensure_packages coreutils
  # The completion scripts are checked by the shells they are for; the man page by groff.
  command -v zsh >/dev/null || ensure_packages zsh
  command -v fish >/dev/null || ensure_packages fish
  command -v groff >/dev/null || ensure_packages groff-base
  SKA_SYSTEMD_ANALYZE="$(command -v systemd-analyze)"
  SKA_STRACE="$(command -v strace)"
  SKA_SCRIPT="$(command -v script)"
  SKA_PROM_PYTHON="$(tools_venv)/bin/python"
  SKA_ZSH="$(command -v zsh)"
  SKA_FISH="$(command -v fish)"
  SKA_GROFF="$(command -v groff)"
  export SKA_SYSTEMD_ANALYZE SKA_STRACE SKA_SCRIPT SKA_PROM_PYTHON SKA_ZSH SKA_FISH SKA_GROFF
}

stop_tools() { :; }

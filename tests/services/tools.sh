# Tools the operations tests (tests/it/systemd.rs, tests/it/ops.rs) run, installed when
# missing: `systemd-analyze` (package systemd; it rates a unit file offline, without a
# running systemd), `strace` (which system calls and socket families a real rotation
# uses), `script` (a real pty for the password prompt), Python's prometheus_client
# (parses `list -o openmetrics`) in a cached virtualenv, `promtool` (package prometheus:
# lints `list -o prometheus`) and node_exporter (package prometheus-node-exporter: its
# textfile collector reads the file as it would in production), and zsh, fish and groff
# (check the generated completions and man page). Sourced by run.sh.

start_tools() {
  command -v systemd-analyze >/dev/null || ensure_packages systemd
  command -v strace >/dev/null || ensure_packages strace
  command -v script >/dev/null || ensure_packages bsdutils
  command -v stty >/dev/null || ensure_packages coreutils
  # The completion scripts are checked by the shells they are for; the man page by groff.
  command -v zsh >/dev/null || ensure_packages zsh
  command -v fish >/dev/null || ensure_packages fish
  command -v groff >/dev/null || ensure_packages groff-base
  command -v promtool >/dev/null || ensure_packages prometheus
  command -v prometheus-node-exporter >/dev/null || ensure_packages prometheus-node-exporter
  SKA_SYSTEMD_ANALYZE="$(command -v systemd-analyze)"
  SKA_STRACE="$(command -v strace)"
  SKA_SCRIPT="$(command -v script)"
  SKA_PROM_PYTHON="$(cached_venv prometheus-client prometheus_client "prometheus_client>=0.20")/bin/python"
  SKA_ZSH="$(command -v zsh)"
  SKA_FISH="$(command -v fish)"
  SKA_GROFF="$(command -v groff)"
  SKA_PROMTOOL="$(command -v promtool)"
  SKA_NODE_EXPORTER="$(command -v prometheus-node-exporter)"
  SKA_SYSTEMCTL="$(command -v systemctl)"
  export SKA_SYSTEMD_ANALYZE SKA_STRACE SKA_SCRIPT SKA_PROM_PYTHON SKA_ZSH SKA_FISH SKA_GROFF \
    SKA_PROMTOOL SKA_NODE_EXPORTER SKA_SYSTEMCTL
}

stop_tools() { :; }

#!/usr/bin/env bash
# The support table: which server versions the tests ran against, and with what result.
# Reads what `make test` left in the results directory ($1, default target/test-matrix):
# servers.tsv (written by tests/services/run.sh: key, product and version, source) and
# test-output.txt (cargo test's output). Each test is counted for the server its name
# says: matrix::<key>::... for the matrix's servers, and the base modules for the base
# servers (postgres, mariadb, redis, mongo). Prints a Markdown table and saves it as
# support-table.md beside its inputs.
#
# A server that tests exist for but that did not start is listed as such: its tests
# failed (under CI) or skipped (elsewhere), and the table says so rather than counting
# them as passed.
set -euo pipefail
dir="${1:-$(dirname "$0")/../target/test-matrix}"
servers="$dir/servers.tsv"
output="$dir/test-output.txt"
[[ -f "$output" ]] || { echo "support-table: no test output at $output" >&2; exit 1; }
touch "$servers"

awk -F'\t' '
  # The base modules, by the server they run against.
  function base_key(name) {
    if (name ~ /^(postgres|postgres_provider|pg_privileges|hung_database|tls::postgres)::/ || name ~ /^statement_logs::postgres/) return "postgres"
    if (name ~ /^(mysql|mysql_localhost|tls::mysql)::/ || name ~ /^statement_logs::mariadb/) return "mariadb"
    if (name ~ /^(redis|tls::redis)::/) return "redis"
    if (name ~ /^(mongodb|tls::mongodb)::/) return "mongo"
    return ""
  }
  FNR == NR { product[$1] = $2; source[$1] = $3; order[++n] = $1; next }
  /^test .* \.\.\. / {
    name = $0; sub(/^test /, "", name); sub(/ \.\.\. .*$/, "", name)
    result = $0; sub(/^.* \.\.\. /, "", result)
    key = ""
    if (name ~ /^matrix::/) { split(name, part, "::"); key = part[2] } else { key = base_key(name) }
    if (key == "") next
    if (!(key in seen)) { seen[key] = 1; if (!(key in product)) extra[++m] = key }
    total[key]++
    if (result ~ /^ok/) passed[key]++
    else if (result ~ /^FAILED/) failed[key]++
    else if (result ~ /^ignored/) ignored[key]++
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]
      printf "| %s | %s | %d | %d | %d | %d |\n", product[k], source[k], total[k], passed[k], failed[k], ignored[k]
    }
    for (i = 1; i <= m; i++) {
      k = extra[i]
      printf "| %s: NOT STARTED (its tests skipped or failed) | - | %d | %d | %d | %d |\n", k, total[k], passed[k], failed[k], ignored[k]
    }
  }
' "$servers" FS=' ' "$output" | sort -V > "$dir/support-table.rows"
{
  printf 'Support table (%s): tests per server version, from this run\n\n' "$(date -u +%F)"
  echo "| server | from | tests | passed | failed | ignored |"
  echo "|---|---|---:|---:|---:|---:|"
  cat "$dir/support-table.rows"
} | tee "$dir/support-table.md"
rm -f "$dir/support-table.rows"

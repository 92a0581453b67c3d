#!/usr/bin/env bash
# Create .venv and install agentmem with every extra and the dev tools.
# Only packages are downloaded (from the configured package registries); nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install -qq --disable-pip-version-check "$@"; }

# The CPU build of torch must come first: sentence-transformers (the `local` extra) would otherwise pull
# the newest torch with several GB of CUDA packages.
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  pip_install "torch==2.13.0"
fi
stamp="$VENV/.agentmem-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  pip_install -e ".[all,dev]"
  touch "$stamp"
fi

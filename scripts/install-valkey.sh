#!/usr/bin/env bash
# Install valkey-server (Valkey 8) from Debian bookworm-backports.
#
# The apt source entry is derived from the machine's own Debian source file, so
# no mirror host is named here: we copy the URI the machine already uses for
# "bookworm" and add the "bookworm-backports" suite next to it.
set -euo pipefail

if command -v valkey-server >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != "0" ]; then
  cat >&2 <<'MSG'
valkey-server is not installed and this script is not running as root.
Install it once, as root, from Debian bookworm-backports:
    echo 'deb <your Debian mirror> bookworm-backports main' > /etc/apt/sources.list.d/backports.list
    apt-get update && apt-get install -y -t bookworm-backports valkey-server
(or put any valkey-server >= 8.0 on PATH, or point the tests at a running
server with: make test PYTEST_ARGS="--valkey-url valkey://host:port")
MSG
  exit 1
fi

target=/etc/apt/sources.list.d/agentmem-bookworm-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822 format: take the URIs of the stanza whose Suites include "bookworm".
    uri=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) { print u; exit } u=""; s=""; next }
      /^URIs:/   { u=$2 }
      /^Suites:/ { $1=""; s=$0 }
      END { if (u != "" && s ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) print u }
    ' /etc/apt/sources.list.d/debian.sources | head -n1)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    # one-line format: "deb [opts] URI bookworm main ..."
    uri=$(awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1)=="bookworm") { print $i; exit } } }' /etc/apt/sources.list)
  fi
  if [ -z "$uri" ]; then
    echo "could not find a Debian bookworm source entry to derive bookworm-backports from" >&2
    exit 1
  fi
  cat > "$target" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -t bookworm-backports valkey-server >/dev/null
# The package starts a system service; the tests run their own throwaway server.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now valkey-server >/dev/null 2>&1 || true; fi
command -v valkey-server

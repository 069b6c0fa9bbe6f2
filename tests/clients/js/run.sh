#!/usr/bin/env bash
# Runs the JS graph-client life test against a running gcemu.
#   tests/clients/js/run.sh http://127.0.0.1:5080
# Needs node 20+ and npm; installs exactly what package-lock.json pins into ./node_modules.
set -euo pipefail
cd "$(dirname "$0")"

url="${1:-${GCEMU_URL:-}}"
if [ -z "$url" ]; then
    echo "usage: $0 GCEMU_URL   (the emulator's root, for example http://127.0.0.1:5080)" >&2
    exit 2
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "node 20 or newer is needed, found $(node --version)" >&2
    exit 2
fi

npm ci --no-audit --no-fund --loglevel=error >/dev/null
GCEMU_URL="$url" npm test --silent

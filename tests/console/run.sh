#!/usr/bin/env bash
# End-to-end test of gcemu's web console in headless Chromium.
#   tests/console/run.sh [GCEMU_BINARY]        default target/release/gcemu
# Installs Debian's chromium with apt-get when it is missing (as root), installs the pinned
# playwright-core (no browser download) with npm ci, starts the binary on a free loopback port
# with an in-memory store, and runs console.test.mjs against it. Screenshots go to
# ${GCEMU_ARTIFACTS:-target/ci-artifacts} (relative to the repository root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="${1:-$root/target/release/gcemu}"
case "$binary" in /*) ;; *) binary="$PWD/$binary" ;; esac
artifacts="${GCEMU_ARTIFACTS:-target/ci-artifacts}"
case "$artifacts" in /*) ;; *) artifacts="$root/$artifacts" ;; esac

if [ ! -x "$binary" ]; then
    echo "run.sh: no gcemu binary at $binary (build it first, or pass its path)" >&2
    exit 2
fi
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "run.sh: node 20 or newer is needed" >&2
    exit 2
fi

if ! command -v chromium >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "installing chromium with apt-get"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "run.sh: chromium is not installed (apt-get install chromium, as root)" >&2
        exit 2
    fi
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

mkdir -p "$artifacts"
log="$(mktemp)"
"$binary" serve --in-memory --listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

# Wait up to 30 s for the "ready on http://127.0.0.1:PORT" line.
url=""
for _ in $(seq 1 300); do
    if ! kill -0 "$server" 2>/dev/null; then
        echo "run.sh: gcemu exited before it was ready:" >&2
        cat "$log" >&2
        exit 1
    fi
    url="$(grep -o 'ready on http://[0-9.]*:[0-9]*' "$log" | head -n1 | sed 's/^ready on //' || true)"
    [ -n "$url" ] && break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "run.sh: gcemu did not say 'ready on' within 30 s:" >&2
    cat "$log" >&2
    exit 1
fi
echo "gcemu ready on $url"

GCEMU_ARTIFACTS="$artifacts" node "$here/console.test.mjs" "$url"

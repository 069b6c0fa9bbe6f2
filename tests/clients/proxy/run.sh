#!/usr/bin/env bash
# Runs the proxy-mode client tests: a connector written like Microsoft's Node samples (connector.mjs)
# and one on the Python SDK (connector.py), both unchanged, with https_proxy / HTTPS_PROXY pointed at
# gcemu. Starts its own gcemu from BINARY:
#   tests/clients/proxy/run.sh target/release/gcemu
# (`BINARY serve --in-memory --listen 127.0.0.1:0 --proxy 127.0.0.1:0`), downloads gcemu's CA over
# plain http from GET /_emulator/ca.pem on the listener, then runs
#   1. connector.mjs trusting the CA with NODE_EXTRA_CA_CERTS (a fresh app id and secret, lenient mode),
#   2. connector.mjs with NODE_TLS_REJECT_UNAUTHORIZED=0 instead, as the samples' `:proxy` scripts run
#      under Dev Proxy (the tenant's default application this time),
#   3. connector.py with REQUESTS_CA_BUNDLE and SSL_CERT_FILE (a tenant named by its domain).
# Each run gets a new tenant. npm ci and the venv install happen first, with no proxy set. Needs node 20+,
# npm, curl and python3 (3.9+; the venv is tests/clients/python's, see venv.sh). Exits non-zero if any
# run fails, after printing the end of gcemu's log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary="${1:-}"
if [ -z "$binary" ] || [ "$#" -gt 1 ]; then
    echo "usage: $0 GCEMU_BINARY   (e.g. target/release/gcemu)" >&2
    exit 2
fi
if [ ! -x "$binary" ]; then
    echo "run.sh: $binary is not an executable" >&2
    exit 2
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "run.sh: node 20 or newer is needed, found $(node --version)" >&2
    exit 2
fi

# No proxy of the caller's may leak into the installs or the runs; the runs get only gcemu's.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
unset AZURE_AUTHORITY_HOST AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET

# Installs first (they talk to the registries).
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# shellcheck source=../python/venv.sh
. "$here/../python/venv.sh"
gcemu_python_venv

work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$binary" serve --in-memory --listen 127.0.0.1:0 --proxy 127.0.0.1:0 >"$work/stdout" 2>"$work/log" &
server=$!
listener=""
proxy=""
for _ in $(seq 1 150); do
    line=$(grep -m1 'ready on' "$work/stdout" 2>/dev/null || true)
    if [ -n "$line" ]; then
        listener=$(printf '%s\n' "$line" | grep -o 'ready on http://[0-9.:]*' | sed 's/^ready on //' || true)
        proxy=$(printf '%s\n' "$line" | grep -o 'proxy on \(http://\)\?[0-9.:]*' | sed 's/^proxy on \(http:\/\/\)\?//' || true)
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ -z "$listener" ] || [ -z "$proxy" ]; then
    echo "run.sh: gcemu did not print a ready line with an http listener and 'proxy on HOST:PORT'; its output:" >&2
    cat "$work/stdout" "$work/log" >&2
    exit 1
fi
proxy_url="http://$proxy"
echo "gcemu on $listener, proxy on $proxy_url"

if ! curl -fsS --noproxy '*' --max-time 10 "$listener/_emulator/ca.pem" -o "$work/ca.pem" 2>"$work/curl.err"; then
    echo "run.sh: GET $listener/_emulator/ca.pem failed: $(cat "$work/curl.err")" >&2
    exit 1
fi
if ! grep -q 'BEGIN CERTIFICATE' "$work/ca.pem"; then
    echo "run.sh: $listener/_emulator/ca.pem is not a PEM certificate:" >&2
    head -c 300 "$work/ca.pem" >&2
    exit 1
fi

uuid() { cat /proc/sys/kernel/random/uuid; }
failed=()

echo
echo "== 1. connector.mjs, https_proxy + NODE_EXTRA_CA_CERTS (a new application, lenient mode)"
if ! (cd "$here" && env -u NODE_TLS_REJECT_UNAUTHORIZED \
    https_proxy="$proxy_url" HTTPS_PROXY="$proxy_url" NODE_EXTRA_CA_CERTS="$work/ca.pem" \
    AZURE_TENANT_ID="$(uuid)" AZURE_CLIENT_ID="$(uuid)" AZURE_CLIENT_SECRET="secret-$(uuid)" \
    node connector.mjs); then
    failed+=("connector.mjs with NODE_EXTRA_CA_CERTS")
fi

echo
echo "== 2. connector.mjs, https_proxy + NODE_TLS_REJECT_UNAUTHORIZED=0 (the tenant's default application)"
if ! (cd "$here" && env -u NODE_EXTRA_CA_CERTS \
    https_proxy="$proxy_url" HTTPS_PROXY="$proxy_url" NODE_TLS_REJECT_UNAUTHORIZED=0 NODE_NO_WARNINGS=1 \
    AZURE_TENANT_ID="$(uuid)" AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000000a1 AZURE_CLIENT_SECRET=gcemu-default-secret \
    node connector.mjs); then
    failed+=("connector.mjs with NODE_TLS_REJECT_UNAUTHORIZED=0")
fi

echo
echo "== 3. connector.py, HTTPS_PROXY + REQUESTS_CA_BUNDLE/SSL_CERT_FILE (a tenant named by its domain)"
if ! env https_proxy="$proxy_url" HTTPS_PROXY="$proxy_url" REQUESTS_CA_BUNDLE="$work/ca.pem" SSL_CERT_FILE="$work/ca.pem" \
    AZURE_TENANT_ID="contoso$(uuid | cut -c1-8).onmicrosoft.com" AZURE_CLIENT_ID="$(uuid)" AZURE_CLIENT_SECRET="secret-$(uuid)" \
    "$venv/bin/python" "$here/connector.py" --listener "$listener"; then
    failed+=("connector.py")
fi

echo
if [ "${#failed[@]}" -ne 0 ]; then
    echo "run.sh: failed: ${failed[*]}"
    echo "gcemu's log (last 40 lines):"
    tail -40 "$work/log"
    exit 1
fi
echo "run.sh: all three proxy runs passed"

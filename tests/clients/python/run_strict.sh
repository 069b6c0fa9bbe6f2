#!/usr/bin/env bash
# Runs strict_identity.py: azure-identity and msgraph-sdk against gcemu as identity provider, in
# strict auth mode over https. Starts its own gcemu from BINARY:
#   tests/clients/python/run_strict.sh target/release/gcemu
# (`BINARY serve --in-memory --listen 127.0.0.1:0 --auth strict --tls`), fetches the CA certificate
# from GET /_emulator/ca.pem, and trusts it for the Python process only (REQUESTS_CA_BUNDLE for
# requests/MSAL, SSL_CERT_FILE for httpx and aiohttp). Uses the venv run.sh uses (venv.sh).
# Exits with the script's status; on failure it prints the end of gcemu's log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary="${1:-}"
if [ -z "$binary" ] || [ "$#" -gt 1 ]; then
    echo "usage: $0 GCEMU_BINARY   (e.g. target/release/gcemu)" >&2
    exit 2
fi
if [ ! -x "$binary" ]; then
    echo "run_strict.sh: $binary is not an executable" >&2
    exit 2
fi

# The venv first (the first install takes a minute or two), with no CA variables set: pip talks to PyPI.
# shellcheck source=venv.sh
. "$here/venv.sh"
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

"$binary" serve --in-memory --listen 127.0.0.1:0 --auth strict --tls >"$work/stdout" 2>"$work/log" &
server=$!
url=""
for _ in $(seq 1 150); do
    url=$(grep -o 'https://[0-9.:]*' "$work/stdout" 2>/dev/null | head -1 || true)
    [ -n "$url" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "run_strict.sh: gcemu did not print an https ready line; its output:" >&2
    cat "$work/stdout" "$work/log" >&2
    exit 1
fi
echo "gcemu (strict, TLS) on $url"

# The CA is what makes the server's certificate trustworthy, so this one fetch cannot verify it.
if ! curl -fsS -k --max-time 10 "$url/_emulator/ca.pem" -o "$work/ca.pem" 2>"$work/curl.err"; then
    echo "run_strict.sh: GET $url/_emulator/ca.pem failed: $(cat "$work/curl.err")" >&2
    exit 1
fi
if ! grep -q 'BEGIN CERTIFICATE' "$work/ca.pem"; then
    echo "run_strict.sh: $url/_emulator/ca.pem is not a PEM certificate:" >&2
    head -c 300 "$work/ca.pem" >&2
    exit 1
fi

status=0
REQUESTS_CA_BUNDLE="$work/ca.pem" SSL_CERT_FILE="$work/ca.pem" \
    "$venv/bin/python" "$here/strict_identity.py" "$url" || status=$?
if [ "$status" -ne 0 ]; then
    echo "gcemu's log (last 30 lines):"
    tail -30 "$work/log"
fi
exit "$status"

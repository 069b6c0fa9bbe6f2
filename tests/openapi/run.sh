#!/usr/bin/env bash
# Checks gcemu's OpenAPI document against a running gcemu:
#   tests/openapi/run.sh http://127.0.0.1:5080
# 1. fetches /_emulator/openapi.json and validates it as OpenAPI (openapi-spec-validator);
# 2. loads fixtures/sample-tenant.json (replacing the default tenant) and runs schemathesis
#    against the document: no 5xx, every response matching its documented status, content
#    type, headers and schema. Two passes: the first leaves out the operations that empty or
#    replace state (reset, fixtures, connection deletes, the clock), the second runs them too.
#    POST /_emulator/faults is never run: a rule it creates answers later requests with any
#    status (5xx included) or delays them up to a minute, which would make the rest meaningless.
# Bounded: $GCEMU_OPENAPI_EXAMPLES cases per operation and pass (default 25), and each pass
# stops after $GCEMU_OPENAPI_TIMEOUT seconds (default 300) as a failure.
# The venv lives in $GCEMU_OPENAPI_VENV (default tests/openapi/.venv); requirements.txt is
# installed into it once and again only when that file changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
url="${1:-${GCEMU_URL:-}}"
if [ -z "$url" ]; then
    echo "usage: $0 BASE_URL   (e.g. http://127.0.0.1:5080; or set GCEMU_URL)" >&2
    exit 2
fi
url="${url%/}"
case "$url" in
    http://127.*|http://localhost[:/]*|http://localhost|http://\[::1\]*) ;;
    *) echo "run.sh: only a gcemu on this machine (127.0.0.0/8, localhost, [::1]) is fuzzed, not $url" >&2; exit 2 ;;
esac
venv="${GCEMU_OPENAPI_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
examples="${GCEMU_OPENAPI_EXAMPLES:-25}"
pass_timeout="${GCEMU_OPENAPI_TIMEOUT:-300}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "run.sh: $python is missing or older than 3.11 (schemathesis needs it)" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian/Ubuntu ship ensurepip separately; install it the way .ci/run installs its tools.
        rm -rf "$venv"
        if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            ver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$ver-venv" >/dev/null 2>&1 ||
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        fi
        "$python" -m venv "$venv"
    fi
fi
stamp="$venv/.gcemu-requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "installing tests/openapi/requirements.txt into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One small client for the three setup calls (no curl needed).
"$venv/bin/python" - "$url" "$root/fixtures/sample-tenant.json" "$work" <<'PY'
import json, sys, urllib.request
url, fixtures, work = sys.argv[1:4]
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()
open(f"{work}/openapi.json", "wb").write(call("GET", "/_emulator/openapi.json"))
call("POST", "/_emulator/fixtures", json.load(open(fixtures)))
token = json.loads(call("POST", "/_emulator/token", {"user": "amara.okafor@contoso.com"}))
open(f"{work}/token", "w").write(token["access_token"])
PY

echo "openapi-spec-validator"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
fuzz() {  # fuzz NAME EXCLUDED_OPERATION_IDS_REGEX
    echo "schemathesis: $1"
    # From the temporary folder, so schemathesis' own files (.schemathesis/) land there.
    (cd "$work" && timeout --kill-after=10 "$pass_timeout" \
        "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$work/openapi.json" \
        --url "$url" \
        --header "Authorization: Bearer $(cat "$work/token")" \
        --checks "$checks" \
        --exclude-operation-id-regex "$2" \
        --max-examples "$examples" \
        --request-timeout 30 \
        --seed "${GCEMU_OPENAPI_SEED:-20240501}" \
        --no-color)
}
fuzz "operations that keep the sample tenant" \
    '^(addFault|reset|loadFixtures|advanceClock|(v1_0|beta)_deleteConnection)$'
fuzz "every operation but POST /_emulator/faults" '^addFault$'

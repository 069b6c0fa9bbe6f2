#!/usr/bin/env bash
# Runs the Python Graph SDK client tests (connector_life.py, then retry_handler.py) against a
# running gcemu.
#   tests/clients/python/run.sh http://127.0.0.1:5080
# The venv lives in $GCEMU_CLIENT_VENV (default tests/clients/python/.venv); requirements.txt is
# installed into it once and reinstalled only when that file changes. $PYTHON picks the interpreter
# that creates the venv (default python3, 3.9 or newer).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${1:-${GCEMU_URL:-}}"
if [ -z "$url" ]; then
    echo "usage: $0 BASE_URL   (e.g. http://127.0.0.1:5080; or set GCEMU_URL)" >&2
    exit 2
fi
venv="${GCEMU_CLIENT_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    echo "run.sh: $python is missing or older than 3.9" >&2
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
    echo "installing tests/clients/python/requirements.txt into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

"$venv/bin/python" "$here/connector_life.py" "$url"
exec "$venv/bin/python" "$here/retry_handler.py" "$url"

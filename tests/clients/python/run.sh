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
# shellcheck source=venv.sh
. "$here/venv.sh"
gcemu_python_venv

"$venv/bin/python" "$here/connector_life.py" "$url"
exec "$venv/bin/python" "$here/retry_handler.py" "$url"

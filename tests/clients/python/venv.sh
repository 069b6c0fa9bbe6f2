# Sourced by run.sh and run_strict.sh: makes the virtual environment both use and sets $venv to it.
# The venv lives in $GCEMU_CLIENT_VENV (default tests/clients/python/.venv); requirements.txt is
# installed into it once and reinstalled only when that file changes. $PYTHON picks the interpreter
# that creates the venv (default python3, 3.9 or newer).

gcemu_python_venv() {
    local here python ver stamp want
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    venv="${GCEMU_CLIENT_VENV:-$here/.venv}"
    python="${PYTHON:-python3}"

    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
        echo "$0: $python is missing or older than 3.9" >&2
        return 1
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
            "$python" -m venv "$venv" || return 1
        fi
    fi

    stamp="$venv/.gcemu-requirements.sha256"
    want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        echo "installing tests/clients/python/requirements.txt into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt" ||
            return 1
        echo "$want" >"$stamp"
    fi
}

# Shared by bin/start and bin/test: a project virtualenv that reinstalls only when pyproject.toml changes.
PYTHON=${PYTHON:-python3}

venv_install() {
    local extras=${1:-}
    local stamp=".venv/.installed${extras:+-$extras}"
    local want
    want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ ! -x .venv/bin/python ]; then
        echo "Creating .venv ..."
        "$PYTHON" -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "Installing dependencies${extras:+ ($extras)} into .venv ..."
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
        if [[ "$extras" == *gpu* ]] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
            # The CPU build of torch (this machine keeps its wheel on disk); a bare range would pull a multi-GB CUDA build.
            .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
        fi
        .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
        echo "$want" > "$stamp"
    fi
}

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
        .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
        echo "$want" > "$stamp"
    fi
}

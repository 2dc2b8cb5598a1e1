# Sourced by the other scripts: creates .venv, installs the pinned Python tools,
# and builds the extension into it. Idempotent: a second run only rebuilds what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${WFPSIM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"

stamp="$VENV/.wfpsim-requirements"
if ! cmp -s requirements-dev.txt "$stamp" 2>/dev/null; then
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -r requirements-dev.txt
    cp requirements-dev.txt "$stamp"
fi

# Build the Rust extension (release: the benches and the replay measure it) into the venv.
# pipefail (set above) makes a failed build fail this script; grep only trims the chatter.
PIP_QUIET=2 maturin develop --release --quiet 2>&1 | { grep -vE "^(📦|✏️|🛠|🍹|🐍|🔗|📡) " || true; }
python -c "import wfpsim._core" || { echo "error: the wfpsim extension did not build" >&2; exit 1; }

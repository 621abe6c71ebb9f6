#!/usr/bin/env bash
# Create benchmarks/.venv-peers: activelabel (editable, from this repo) plus the peer libraries
# that benchmarks/query_speed.py compares against (modAL, small-text, scikit-activeml).
# Usage: bash benchmarks/setup_peers.sh   (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install -e "$repo"
"${pip[@]}" install -r "$here/requirements-peers.txt"
"$venv/bin/python" - <<'PY'
import modAL, skactiveml, small_text  # noqa: F401  (fails loudly if a peer does not import)
from importlib.metadata import version
for name in ("activelabel", "modAL-python", "small-text", "scikit-activeml", "numpy", "scikit-learn"):
    print(f"{name}=={version(name)}")
PY
echo "peer environment ready: $venv"

#!/usr/bin/env bash
# One command: build gyre (release), set up the Python baseline (+ cleanlab), run the
# "find failures" benchmark (slices vs sliceline, label-issues vs cleanlab). RUNS=N for medians.
# Optional arguments pick parts: a (Adult slices), b (KDD Cup 99 slices), c (label issues).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
cargo build --release -q
"$here/setup.sh"
"$here/.venv/bin/pip" install -q --disable-pip-version-check cleanlab
"$here/.venv/bin/python" "$here/look.py" "$@"

#!/usr/bin/env bash
# One command: build gyre (release), set up the Python baseline, run the one-turn loop benchmark.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
cargo build --release -q
"$here/setup.sh"
"$here/.venv/bin/python" "$here/loop.py" "$@"

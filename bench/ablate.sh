#!/usr/bin/env bash
# One command: build gyre (release), then time `gyre ablate` of 3 edits on Adult against the
# three retrains done one after another (see bench/ablate.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
cargo build --release -q
python3 "$here/ablate.py" "$@"

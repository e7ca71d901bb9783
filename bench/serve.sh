#!/usr/bin/env bash
# One command: build gyre (release), install wrk (Debian) and the Python baseline, then load-test
# gyre serve against a FastAPI + LightGBM server on loopback.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk
fi
cargo build --release -q
cargo build --release -q -p gyre-server --example pace --example http_floor
"$here/setup.sh"
"$here/.venv/bin/python" "$here/serve.py" "$@"

#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: a demo project, a third run trained like the champion,
# `gyre ui`, and the browser test's script (tests/browser/ui_e2e.py) with --screenshots.
# Needs chromium and Playwright for Python (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
G="$PWD/target/release/gyre"
D="$(mktemp -d)"
trap 'kill $UI 2>/dev/null || true; rm -rf "$D"' EXIT
"$G" demo --dir "$D/p" >/dev/null
base=$("$G" --project "$D/p" aliases --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["aliases"][0]["run"])')
worse=$("$G" --project "$D/p" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][-1]["run"])')
version=$("$G" --project "$D/p" show "$base" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
same=$("$G" --project "$D/p" train --version "$version" -p num_iterations=200 -p learning_rate=0.05 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])')
"$G" --project "$D/p" ui --addr 127.0.0.1:0 --json > "$D/ready" &
UI=$!
for _ in $(seq 50); do [ -s "$D/ready" ] && break; sleep 0.1; done
addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["addr"])' "$D/ready")
python3 crates/gyre-cli/tests/browser/ui_e2e.py "$addr" "$base" "$worse" "$same" --screenshots docs/screenshots

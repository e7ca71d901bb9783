#!/usr/bin/env python3
"""Derived features on flights-3m (issue 26): the hour of day and the day of week computed from
the time column by `gyre edit add-feature`, the time each edit takes on 3M rows, and the AUC and
the turn before and after.

Usage: python3 bench/derive.py [FLIGHTS_PARQUET] [RUNS]
  FLIGHTS_PARQUET defaults to ../shared/data/flights3m/flights-3m.parquet; RUNS (default 3) is how
  many times each edit is timed (each time on a fresh copy of the project, medians reported).
Needs pyarrow and a release build (cargo build --release).

The label is `late` (delay > 15 minutes) or `on_time`; features distance, origin, destination;
the latest 20% by time is held out (--time-column date). Both runs: gbdt, 100 trees.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GYRE = os.path.join(ROOT, "target", "release", "gyre")
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data", "flights3m", "flights-3m.parquet")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
FEATURES = [
    ("hour", "EXTRACT(hour FROM date)", "departures later in the day inherit the day's delays"),
    ("weekday", "EXTRACT(dow FROM date)", "traffic follows the week"),
]


def gyre(project, *args):
    t0 = time.perf_counter()
    out = subprocess.run([GYRE, "--project", project, *args, "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"gyre {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout), seconds


def main():
    if not os.path.exists(SRC):
        sys.exit(f"{SRC} not found (pass the flights-3m Parquet file)")
    raw = pq.read_table(SRC)
    late = pc.if_else(pc.greater(raw["delay"], 15), "late", "on_time")
    table = pa.table({
        "date": raw["date"],
        "distance": raw["distance"],
        "origin": raw["origin"],
        "destination": raw["destination"],
        "late": late,
    })
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "flights-late.parquet")
        pq.write_table(table, data)
        base = os.path.join(d, "base")
        subprocess.run([GYRE, "init", base], check=True, capture_output=True)
        gyre(base, "import", data, "--target", "late", "--time-column", "date")
        before, train_before = gyre(base, "train", "-p", "num_iterations=100")
        edit_s = {name: [] for name, _, _ in FEATURES}
        for _ in range(RUNS):
            p = os.path.join(d, "copy")
            shutil.rmtree(p, ignore_errors=True)
            shutil.copytree(base, p)
            for name, expr, why in FEATURES:
                _, s = gyre(p, "edit", "add-feature", name, "--expr", expr, "--why", why)
                edit_s[name].append(s)
        after, train_after = gyre(p, "train", "-p", "num_iterations=100")
        # The first load of the new version computes its derived columns and keeps them; the
        # next reads them back.
        cached, train_cached = gyre(p, "train", "-p", "num_iterations=100")
        auc = lambda r: r["metrics"]["holdout"]["auc"]
        print(f"flights-3m, {table.num_rows:,} rows, gbdt 100 trees, latest 20% held out")
        print(f"  AUC without hour and weekday: {auc(before):.4f}")
        print(f"  AUC with them:                {auc(after):.4f}")
        for name, expr, _ in FEATURES:
            s = edit_s[name]
            print(f"  gyre edit add-feature {name} --expr \"{expr}\": median {statistics.median(s):.2f} s "
                  f"(runs {', '.join(f'{x:.2f}' for x in s)})")
        for label, r, s in [("before", before, train_before), ("after", after, train_after),
                            ("after, derived columns kept", cached, train_cached)]:
            t = r["timings"]
            print(f"  gyre train {label}: {s:.2f} s as a process (load {t['load_s']:.3f} s, "
                  f"train {t['train_s']:.2f} s, evaluate {t['evaluate_s']:.3f} s)")


if __name__ == "__main__":
    main()

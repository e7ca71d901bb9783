"""Benchmark: one turn of the model-iteration loop, gyre (separate processes) vs the usual Python stack.

Usage: bench/loop.sh [--flights PATH]   (builds gyre in release and the venv first)
       RUNS=3 FLIGHTS_RUNS=1 bench/.venv/bin/python bench/loop.py [--flights PATH]
--flights defaults to ../shared/data/flights3m/flights-3m.parquet; the part is skipped with a message
when the file is missing (or with --flights '').

The turn, the same work on both sides, each stage timed separately:
  1. edit      exclude training rows (Adult: age < 18), relabel 50 listed training rows
               gyre: `gyre edit exclude`, `gyre edit relabel` (two processes)
               Python: pandas on a copy, the edited training data written to Parquet, the edit
               logged to MLflow
  2. train     gyre: `gyre train --json` (it also evaluates on the holdout and finds the top slices)
               Python: LightGBM on the edited training rows, predictions on the holdout rows, the
               model saved as an MLflow artifact
  3. evaluate  gyre: inside `gyre train`, counted as 0
               Python: AUC, accuracy, log loss, F1 with scikit-learn; metrics and per-example
               predictions logged to MLflow
  4. slices    gyre: `gyre slices latest --k 10 --json`
               Python: sliceline.Slicefinder(alpha 0.95, k 10, max_l 3, min_sup 32) on the holdout
               0/1 errors, numeric columns in quantile bins (qcut q=5)
  5. diff      gyre: `gyre diff champion latest --json`
               Python: flips, McNemar exact (scipy binomtest), 1000-resample paired bootstrap 95%
               interval of the AUC delta (numpy), logged to MLflow
Before each turn, not timed, each side sets up a fresh temp dir: gyre init, import, train, promote the
champion; Python (bench/loop_python.py, one process) loads the data, trains the champion, keeps its
holdout predictions and logs it to MLflow (SQLite backend), then runs the timed turn in the same process.

Each gyre command's wall time is measured around it with perf_counter; gyre's peak memory comes
from a second turn on a fresh project with every command under /usr/bin/time (%M; the max over
the turn's processes), so that tool's own start and wait are not in the times (until 2026-11-27
the timed turn itself ran under it). The Python process runs under /usr/bin/time (its stages
are timed inside it), and also reports the peak RSS of the turn alone (VmHWM reset after setup).
Prints per-stage medians, the totals, python/gyre, gyre's training time, and both AUCs.

- Adult: 200 trees, learning_rate 0.05 (num_leaves 31), train/test split from the file; RUNS runs (default 3).
- flights-3m: target delay > 15 (`late`/`on_time`); distance, origin, destination, hour, weekday;
  the latest 20% by date held out; 100 trees, learning_rate 0.1; exclude distance < 100, relabel 50
  on-time training rows to late; FLIGHTS_RUNS runs (default 1).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GYRE = os.path.join(ROOT, "target", "release", "gyre")
PY = os.path.join(HERE, ".venv", "bin", "python")
RUNS = int(os.environ.get("RUNS", "3"))
FLIGHTS_RUNS = int(os.environ.get("FLIGHTS_RUNS", "1"))
STAGES = ["edit", "train", "evaluate", "slices", "diff"]


def mem_limit():
    """Address-space cap for the Python process (bytes): PY_MEM_LIMIT_GB, default 80% of RAM, so that
    a blow-up (sliceline at scale) ends in a MemoryError instead of the OOM killer."""
    gb = os.environ.get("PY_MEM_LIMIT_GB")
    if gb:
        return int(float(gb) * 2**30)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8)


def timed(cmd, limit=None):
    """Run one process under GNU time: (wall seconds, peak RSS MiB, stdout)."""
    pre = (lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))) if limit else None
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True, preexec_fn=pre)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-3000:]}")
    rss = int(out.stderr.strip().splitlines()[-1].split()[1]) / 1024
    return wall, rss, out.stdout


def run(cmd):
    """Run one process: (wall seconds, no peak memory, stdout); for the timed gyre turn."""
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return wall, 0.0, out.stdout


def gyre_turn(w):
    """The turn twice on fresh projects: timed as plain processes, then under GNU time for each
    process's peak memory (whose own start and wait would otherwise be counted in every gyre
    command's time). Returns stage seconds from the first and the peak from the second."""
    timed_turn = one_gyre_turn(w, run)
    timed_turn["peak_mib"] = one_gyre_turn(w, timed)["peak_mib"]
    return timed_turn


def one_gyre_turn(w, timed):
    """Set up a gyre project (not timed), then one turn, each command run by `timed`. Returns
    stage seconds and facts."""
    with tempfile.TemporaryDirectory() as d:
        g = [GYRE, "--project", d]
        train = ["train", "-p", f"num_iterations={w['rounds']}", "-p", f"learning_rate={w['learning_rate']}", "--json"]
        subprocess.run([GYRE, "init", d], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(g + ["import", w["data"], "--target", w["target"], "--split-column", w["split_column"]],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(g + train, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(g + ["promote", "latest", "--why", "baseline", "--force"], check=True, stdout=subprocess.DEVNULL)

        t, rss = {}, []
        a = timed(g + ["edit", "exclude", "--where", w["exclude"], "--why", w["exclude_why"]])
        b = timed(g + ["edit", "relabel", "--rows", ",".join(map(str, w["relabel_rows"])),
                       "--to", w["relabel_to"], "--why", "checked by hand"])
        t["edit"] = a[0] + b[0]
        rss += [a[1], b[1]]
        wall, r, out = timed(g + train)
        t["train"] = wall
        rss.append(r)
        run = json.loads(out)
        t["evaluate"] = 0.0  # inside `gyre train`
        wall, r, out = timed(g + ["slices", "latest", "--k", "10", "--json"])
        t["slices"] = wall
        rss.append(r)
        slices = json.loads(out)
        wall, r, out = timed(g + ["diff", "champion", "latest", "--json"])
        t["diff"] = wall
        rss.append(r)
        diff = json.loads(out)
    return {"stages": t, "auc": run["metrics"]["holdout"]["auc"], "train_s": run["timings"]["train_s"],
            "train_timings": run["timings"], "peak_mib": max(rss), "slices": len(slices["slices"]),
            "negative_flips": diff["flips"]["negative"], "positive_flips": diff["flips"]["positive"],
            "mcnemar_p": diff["mcnemar_p"], "auc_delta_ci95": diff["metrics"]["auc"]["ci95"]}


def python_turn(w):
    """Run bench/loop_python.py in a fresh temp dir: its stage seconds, AUC and peak memory."""
    with tempfile.TemporaryDirectory() as d:
        cfg = dict(w, dir=d)
        path = os.path.join(d, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        wall, rss, out = timed([PY, os.path.join(HERE, "loop_python.py"), path], mem_limit())
    r = json.loads(out.strip().splitlines()[-1])
    r["process_s"], r["peak_mib"] = wall, rss
    return r


def report(name, w, runs, rows):
    g, p = [], []
    for i in range(runs):
        g.append(gyre_turn(w))
        p.append(python_turn(w))
        print(f"  run {i + 1}/{runs}: gyre {sum(g[-1]['stages'].values()):.3f} s, "
              f"python {sum(p[-1]['stages'].values()):.3f} s", flush=True)
    med = statistics.median
    gt = [sum(x["stages"].values()) for x in g]
    pt = [sum(x["stages"].values()) for x in p]
    print(f"{name}: {rows[0]:,} train rows, {rows[1]:,} holdout rows, {runs} run(s), medians in seconds")
    print(f"  {'stage':10} {'gyre':>9} {'python':>9}")
    for s in STAGES:
        gs = med(x["stages"][s] for x in g)
        note = "  (gyre: inside `gyre train`, counted as 0)" if s == "evaluate" else ""
        print(f"  {s:10} {gs:9.3f} {med(x['stages'][s] for x in p):9.3f}{note}")
    print(f"  {'total':10} {med(gt):9.3f} {med(pt):9.3f}   (runs: gyre {', '.join(f'{x:.3f}' for x in gt)};"
          f" python {', '.join(f'{x:.3f}' for x in pt)})")
    print(f"  python/gyre turn time: {med(pt) / med(gt):.1f}x")
    failed = sorted({k for x in p for k in x.get("failed", {})})
    if failed:
        print(f"  PYTHON FAILED: " + "; ".join(f"{k}: {x['failed'][k]}" for x in p for k in x.get("failed", {}))
              + f" (cap {mem_limit() / 2**30:.1f} GiB); the totals above include the time up to the failure")
        rest = [s for s in STAGES if s not in failed]
        g2 = med(sum(x["stages"][s] for s in rest) for x in g)
        p2 = med(sum(x["stages"][s] for s in rest) for x in p)
        print(f"  without {', '.join(failed)}: gyre {g2:.3f} s, python {p2:.3f} s, python/gyre {p2 / g2:.1f}x")
    train_s = med(x["train_s"] for x in g)
    # Each run's own ratio, then their median: a run whose fit the VM slowed moves its total and
    # its train_s together, which a ratio of two separate medians would pull apart.
    ratios = [(t - x["train_s"]) / x["train_s"] for t, x in zip(gt, g)]
    print(f"  gyre train_s (in-process training, timings.train_s): {train_s:.3f} s;"
          f" outside training, median of each run's (total - train_s)/train_s: {med(ratios):.2f}"
          f" (runs: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"  gyre train timings (last run): " + ", ".join(f"{k} {v:.3f}" for k, v in g[-1]["train_timings"].items()))
    print(f"  peak memory: gyre {med(x['peak_mib'] for x in g):.0f} MiB (max over the turn's processes);"
          f" python {med(x['peak_mib'] for x in p):.0f} MiB (whole process incl. setup),"
          f" turn alone {med(x['turn_peak_mib'] or float('nan') for x in p):.0f} MiB;"
          f" python process wall incl. imports+setup {med(x['process_s'] for x in p):.1f} s")
    ga, pa = g[-1]["auc"], p[-1]["auc"]
    print(f"  holdout AUC of the new model: gyre {ga:.5f}, python {pa:.5f}, difference {ga - pa:+.5f}"
          f" ({'within' if abs(ga - pa) <= 0.002 else 'NOT within'} 0.002)")
    print(f"  diff vs champion (last run): gyre flips -{g[-1]['negative_flips']}/+{g[-1]['positive_flips']}"
          f" McNemar p {g[-1]['mcnemar_p']:.3f} AUC delta CI [{g[-1]['auc_delta_ci95'][0]:+.5f}, {g[-1]['auc_delta_ci95'][1]:+.5f}];"
          f" python flips -{p[-1]['negative_flips']}/+{p[-1]['positive_flips']} McNemar p {p[-1]['mcnemar_p']:.3f}"
          f" AUC delta CI [{p[-1]['auc_delta_ci95'][0]:+.5f}, {p[-1]['auc_delta_ci95'][1]:+.5f}]")
    print(f"  slices found: gyre {g[-1]['slices']}, python {p[-1]['slices']}", flush=True)


def adult():
    path = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
    df = pd.read_csv(path, na_values=["?"])
    ids = df.index[(df["split"] == "train") & (df["income"] == "<=50K") & (df["age"] >= 18)][:50].tolist()
    w = dict(data=path, target="income", positive=">50K", split_column="split", holdout="test",
             numeric=["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"],
             rounds=200, learning_rate=0.05, exclude="age < 18", exclude_why="minors are out of scope", relabel_rows=ids, relabel_to=">50K")
    te = int((df["split"] == "test").sum())
    report("adult", w, RUNS, (len(df) - te, te))


def flights(src):
    if not src:
        print("skipping flights-3m (--flights '')")
        return
    if not os.path.exists(src):
        print(f"skipping flights-3m: {src} not found (pass --flights path/to/flights-3m.parquet)")
        return
    raw = pd.read_parquet(src)
    date = pd.to_datetime(raw["date"])
    out = pd.DataFrame({
        "distance": raw["distance"].astype(float),
        "origin": raw["origin"].astype(str),
        "destination": raw["destination"].astype(str),
        "hour": date.dt.hour,
        "weekday": date.dt.dayofweek,
    })
    order = np.argsort(date.values, kind="stable")
    holdout = np.zeros(len(out), dtype=bool)
    holdout[order[int(len(out) * 0.8):]] = True
    out["late"] = np.where(raw["delay"] > 15, "late", "on_time")
    out["split"] = np.where(holdout, "holdout", "train")
    del raw, date
    ids = out.index[(out["split"] == "train") & (out["late"] == "on_time") & (out["distance"] >= 100)][:50].tolist()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "flights-late.parquet")
        out.to_parquet(path)
        rows = (int((~holdout).sum()), int(holdout.sum()))
        del out
        # LightGBM's positive class is `late`; gyre's classes sort as [late, on_time], so gyre's AUC
        # is for on_time, which is the same number (AUC is symmetric under swapping the classes).
        w = dict(data=path, target="late", positive="late", split_column="split", holdout="holdout",
                 numeric=["distance", "hour", "weekday"], rounds=100, learning_rate=0.1,
                 exclude="distance < 100", exclude_why="short hops are out of scope", relabel_rows=ids, relabel_to="late")
        report("flights-3m", w, FLIGHTS_RUNS, rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="One turn of the loop: gyre vs pandas+LightGBM+MLflow+sliceline+scipy")
    ap.add_argument("--flights", default=os.path.join(ROOT, "..", "shared", "data", "flights3m", "flights-3m.parquet"),
                    help="flights-3m Parquet file ('' to skip)")
    args = ap.parse_args()
    adult()
    flights(args.flights)

"""Benchmark: gyre's gbdt vs LightGBM, same data, same split, same parameters, same threads.

Usage: bench/train.sh [runs]   (builds gyre in release and the venv first)

For each dataset, alternates a `gyre train --json` process (reporting its in-process training time,
`timings.train_s`, and the whole process's wall time) with an in-process `lightgbm.train` (timed
including Dataset construction, as gyre's time includes binning). Prints medians and holdout AUC.

- Adult: 200 trees, learning_rate 0.05, num_leaves 31 (train/test split from the file).
- flights-3m: target delay > 15; features distance, origin, destination, hour, day of week;
  the latest 20% by time held out; 100 trees, learning_rate 0.1, num_leaves 31.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GYRE = os.path.join(ROOT, "target", "release", "gyre")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
THREADS = 2
FLIGHTS = os.environ.get("FLIGHTS", os.path.join(ROOT, "..", "shared", "data", "flights3m", "flights-3m.parquet"))


def gyre(project, *args):
    out = subprocess.run([GYRE, "--project", project, *args, "--json"], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def compare(name, path, import_args, gyre_params, lgb_frame, lgb_params, rounds):
    df, y, tr, te = lgb_frame
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([GYRE, "init", d], check=True, stdout=subprocess.DEVNULL)
        gyre(d, "import", path, *import_args)
        g_train, g_wall, l_train = [], [], []
        g_auc = l_auc = None
        for _ in range(RUNS):
            t = time.perf_counter()
            r = gyre(d, "train", *sum((["-p", p] for p in gyre_params), []))
            g_wall.append(time.perf_counter() - t)
            g_train.append(r["timings"]["train_s"])
            g_auc = r["metrics"]["holdout"]["auc"]
            t = time.perf_counter()
            model = lgb.train(lgb_params, lgb.Dataset(df[tr], y[tr]), num_boost_round=rounds)
            l_train.append(time.perf_counter() - t)
            l_auc = roc_auc_score(y[te], model.predict(df[te], num_threads=THREADS))
    med = statistics.median
    print(f"{name}: {tr.sum():,} train rows, {te.sum():,} holdout rows, {THREADS} threads, {RUNS} runs")
    print(f"  gyre gbdt   train {med(g_train):6.3f} s (runs {', '.join(f'{x:.3f}' for x in g_train)})"
          f"  whole `gyre train` process {med(g_wall):6.3f} s  AUC {g_auc:.5f}")
    print(f"  LightGBM {lgb.__version__} train {med(l_train):6.3f} s (runs {', '.join(f'{x:.3f}' for x in l_train)})"
          f"  AUC {l_auc:.5f}")
    print(f"  LightGBM/gyre training time: {med(l_train) / med(g_train):.2f}x   AUC gyre - LightGBM: {g_auc - l_auc:+.5f}")


def adult():
    path = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
    df = pd.read_csv(path, na_values=["?"])
    y = (df.pop("income") == ">50K").astype(int).values
    split = df.pop("split").values
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype("category")
    params = dict(objective="binary", learning_rate=0.05, num_leaves=31, num_threads=THREADS, verbose=-1, seed=0)
    compare("adult", path, ["--target", "income", "--split-column", "split"],
            ["num_iterations=200", "learning_rate=0.05", "num_leaves=31"],
            (df, y, split == "train", split == "test"), params, 200)


def flights():
    if not os.path.exists(FLIGHTS):
        print(f"skipping flights-3m: {FLIGHTS} not found (set FLIGHTS=path/to/flights-3m.parquet)")
        return
    raw = pd.read_parquet(FLIGHTS)
    date = pd.to_datetime(raw["date"])
    df = pd.DataFrame({
        "distance": raw["distance"].astype(float),
        "origin": raw["origin"].astype("category"),
        "destination": raw["destination"].astype("category"),
        "hour": date.dt.hour,
        "weekday": date.dt.dayofweek,
    })
    y = (raw["delay"] > 15).astype(int).values
    order = np.argsort(date.values, kind="stable")
    holdout = np.zeros(len(df), dtype=bool)
    holdout[order[int(len(df) * 0.8):]] = True
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "flights-late.parquet")
        out = df.copy()
        out["origin"] = out["origin"].astype(str)
        out["destination"] = out["destination"].astype(str)
        out["late"] = np.where(y == 1, "late", "on_time")
        out["split"] = np.where(holdout, "holdout", "train")
        out.to_parquet(path)
        params = dict(objective="binary", learning_rate=0.1, num_leaves=31, num_threads=THREADS, verbose=-1, seed=0)
        # LightGBM's positive class is `late`; gyre's classes sort as [late, on_time], so gyre's AUC
        # is for on_time, which is the same number (AUC is symmetric under swapping the classes).
        compare("flights-3m", path, ["--target", "late", "--split-column", "split"],
                ["num_iterations=100", "learning_rate=0.1", "num_leaves=31"],
                (df, y, ~holdout, holdout), params, 100)


if __name__ == "__main__":
    adult()
    flights()

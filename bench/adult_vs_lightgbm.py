"""Benchmark: LightGBM on Adult (train split), the reference for examples/bench_adult.rs.

Run: .venv/bin/python bench/adult_vs_lightgbm.py [runs]
Same settings as the Rust side: 200 trees, learning_rate 0.05, num_leaves 31, other params default,
2 threads, categorical columns passed as pandas category. Timing includes Dataset construction
(binning), as gyre's fit includes binning.
"""
import os, sys, time
import numpy as np, pandas as pd, lightgbm as lgb
from sklearn.metrics import roc_auc_score

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
df = pd.read_csv(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "adult", "adult.csv.gz"), na_values=["?"], skipinitialspace=True)
y = (df.pop("income").str.startswith(">50K")).astype(int).values
split = df.pop("split").values
for c in df.columns:
    if not pd.api.types.is_numeric_dtype(df[c]):
        df[c] = df[c].astype("category")
tr, te = split == "train", split == "test"
params = dict(objective="binary", learning_rate=0.05, num_leaves=31, num_threads=int(os.environ.get("THREADS", "2")), verbose=-1, seed=1)
times, model = [], None
for _ in range(runs):
    t = time.perf_counter()
    model = lgb.train(params, lgb.Dataset(df[tr], y[tr]), num_boost_round=200)
    times.append(time.perf_counter() - t)
times.sort()
t = time.perf_counter()
p = model.predict(df[te], num_threads=params["num_threads"])
pred_s = time.perf_counter() - t
print(f"lightgbm {lgb.__version__}: train rows {tr.sum()} | fit median {times[runs // 2]:.3f}s "
      f"(min {times[0]:.3f}s, max {times[-1]:.3f}s, {runs} runs) | test AUC {roc_auc_score(y[te], p):.5f} "
      f"| predict {pred_s * 1e6 / te.sum():.2f} us/row | {params['num_threads']} threads")

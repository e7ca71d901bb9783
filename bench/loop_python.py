"""One turn of the model-iteration loop with the usual Python stack, in one process.

Usage: bench/.venv/bin/python bench/loop_python.py CONFIG.json   (bench/loop.py writes the config and runs it)

Stack: pandas (data and edits), LightGBM (training), scikit-learn (metrics), MLflow with a SQLite
tracking backend (runs, params, metrics, artifacts), sliceline (SliceLine failure slices), scipy and
numpy (McNemar, paired bootstrap).

Setup, not timed: load the data, train the champion, keep its holdout predictions, log it to MLflow.
Then the timed turn, stage by stage (time.perf_counter around each):
  edit      exclude training rows matching a predicate, relabel listed rows; write the edited
            training data to Parquet (a data version) and log the edit to MLflow
  train     LightGBM on the edited training rows, predict the holdout rows, save the model
            as an MLflow artifact (gyre train stores its model too)
  evaluate  AUC, accuracy, log loss, F1 with scikit-learn; log metrics and per-example predictions
  slices    sliceline.Slicefinder on the holdout 0/1 errors (numeric columns in quantile bins)
  diff      flips vs the champion, McNemar exact (scipy binomtest), 1000-resample paired bootstrap
            95% interval of the AUC delta (numpy, seeded); log the comparison to MLflow
Prints one JSON object on stdout (last line): stage seconds, AUCs, peak memory of the turn.

The config (JSON) has: dir, data (CSV or Parquet), target, positive, split_column, holdout (its value
in the split column), numeric (numeric feature columns), rounds, learning_rate, exclude (a pandas
query predicate, e.g. "age < 18"), exclude_why, relabel_rows (0-based row indices in the file), relabel_to.
"""
import json
import logging
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sliceline.slicefinder import Slicefinder

THREADS = 2


def peak_rss_mib():
    """This process's peak resident set size since the last reset (VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the turn's peak excludes setup's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def load(cfg):
    path = cfg["data"]
    if path.endswith(".parquet"):
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, na_values=["?"])
    for c in df.columns:
        if c in (cfg["target"], cfg["split_column"]):
            continue
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype("category")  # categories from the whole file: same codes in every split
    return df


def features(cfg, df):
    return [c for c in df.columns if c not in (cfg["target"], cfg["split_column"])]


def params(cfg):
    return dict(objective="binary", learning_rate=cfg["learning_rate"], num_leaves=31,
                num_threads=THREADS, verbose=-1, seed=0)


def numpy_auc(order, ties_start, y_sorted, w):
    """Weighted AUC (Mann-Whitney with ties counted half) from a precomputed sort by score.

    order: indices sorting the scores ascending; ties_start: group id of each sorted position
    (equal scores share one); y_sorted: 0/1 labels in that order; w: per-row weights (bootstrap counts).
    """
    ws = w[order]
    pos = np.bincount(ties_start, weights=ws * y_sorted)
    neg = np.bincount(ties_start, weights=ws * (1 - y_sorted))
    below = np.cumsum(neg) - neg
    p, n = pos.sum(), neg.sum()
    return float((pos * (below + 0.5 * neg)).sum() / (p * n))


def sorted_groups(scores):
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    groups = np.concatenate(([0], np.cumsum(s[1:] != s[:-1])))
    return order, groups


def main():
    cfg = json.load(open(sys.argv[1]))
    d = cfg["dir"]
    target, split = cfg["target"], cfg["split_column"]

    # ---- setup (not timed) ----
    mlflow.set_tracking_uri(f"sqlite:///{os.path.join(d, 'mlflow.db')}")
    exp = mlflow.create_experiment("loop", artifact_location=f"file://{os.path.join(d, 'mlartifacts')}")
    mlflow.set_experiment(experiment_id=exp)
    df = load(cfg)
    feats = features(cfg, df)
    te = (df[split] == cfg["holdout"]).values
    y_te = (df.loc[te, target] == cfg["positive"]).astype(int).values
    x_te = df.loc[te, feats]
    tr = ~te
    champ = lgb.train(params(cfg), lgb.Dataset(df.loc[tr, feats], (df.loc[tr, target] == cfg["positive"]).astype(int).values),
                      num_boost_round=cfg["rounds"])
    p_champ = champ.predict(x_te, num_threads=THREADS)
    with mlflow.start_run(run_name="champion") as run:
        mlflow.log_params({"rounds": cfg["rounds"], "learning_rate": cfg["learning_rate"], "num_leaves": 31})
        mlflow.log_metric("auc", roc_auc_score(y_te, p_champ))
        mpath = os.path.join(d, "champion.txt")
        champ.save_model(mpath)
        mlflow.log_artifact(mpath)
        champion_id = run.info.run_id
    reset_ok = reset_peak_rss()
    t = {}

    # ---- 1. edit ----
    t0 = time.perf_counter()
    e = df.copy()
    drop = (e[split] != cfg["holdout"]).values & e.eval(cfg["exclude"]).values
    e = e[~drop]
    e.loc[cfg["relabel_rows"], target] = cfg["relabel_to"]
    version = os.path.join(d, "train-v2.parquet")
    e_tr = e[e[split] != cfg["holdout"]]
    e_tr.to_parquet(version)
    mlflow.start_run(run_name="candidate")
    mlflow.log_params({"edit_exclude": cfg["exclude"], "edit_relabel_rows": len(cfg["relabel_rows"]),
                       "edit_relabel_to": cfg["relabel_to"], "rounds": cfg["rounds"],
                       "learning_rate": cfg["learning_rate"], "num_leaves": 31})
    mlflow.set_tags({"data_version": version, "edit_why": cfg["exclude_why"] + "; checked by hand",
                     "champion_run": champion_id, "excluded_rows": int(drop.sum())})
    t["edit"] = time.perf_counter() - t0

    # ---- 2. train ----
    t0 = time.perf_counter()
    model = lgb.train(params(cfg), lgb.Dataset(e_tr[feats], (e_tr[target] == cfg["positive"]).astype(int).values),
                      num_boost_round=cfg["rounds"])
    p = model.predict(x_te, num_threads=THREADS)
    mpath = os.path.join(d, "candidate.txt")
    model.save_model(mpath)
    mlflow.log_artifact(mpath)
    t["train"] = time.perf_counter() - t0

    # ---- 3. evaluate ----
    t0 = time.perf_counter()
    pred = (p >= 0.5).astype(int)
    metrics = {"auc": roc_auc_score(y_te, p), "accuracy": accuracy_score(y_te, pred),
               "log_loss": log_loss(y_te, p), "f1": f1_score(y_te, pred)}
    mlflow.log_metrics(metrics)
    ppath = os.path.join(d, "predictions.parquet")
    pd.DataFrame({"row_id": np.flatnonzero(te), "label": y_te, "score": p, "prediction": pred}).to_parquet(ppath)
    mlflow.log_artifact(ppath)
    t["evaluate"] = time.perf_counter() - t0

    # ---- 4. slices ----
    t0 = time.perf_counter()
    errors = (pred != y_te).astype(int)
    cols = {}
    for c in feats:
        if c in cfg["numeric"]:
            cols[c] = pd.qcut(x_te[c], q=5, duplicates="drop").astype(str)
        else:
            cols[c] = x_te[c].astype(str).where(x_te[c].notna(), "missing")
    xs = pd.DataFrame(cols)
    sf = Slicefinder(alpha=0.95, k=10, max_l=3, min_sup=32, verbose=False)
    failed = {}
    try:
        sf.fit(xs, errors)
        slices = sf.top_slices_statistics_
    except MemoryError:  # sliceline's sparse products can outgrow memory (loop.py caps the address space)
        slices, failed["slices"] = [], f"MemoryError after {time.perf_counter() - t0:.1f} s"
    del xs, sf
    t["slices"] = time.perf_counter() - t0

    # ---- 5. diff ----
    t0 = time.perf_counter()
    pred0 = (p_champ >= 0.5).astype(int)
    right0, right1 = pred0 == y_te, pred == y_te
    neg_flips = int((right0 & ~right1).sum())
    pos_flips = int((~right0 & right1).sum())
    mcnemar_p = binomtest(neg_flips, neg_flips + pos_flips, 0.5).pvalue if neg_flips + pos_flips else 1.0
    o0, g0 = sorted_groups(p_champ)
    o1, g1 = sorted_groups(p)
    y0, y1 = y_te[o0].astype(float), y_te[o1].astype(float)
    n = len(y_te)
    rng = np.random.default_rng(0)
    deltas = np.empty(1000)
    for i in range(1000):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        deltas[i] = numpy_auc(o1, g1, y1, w) - numpy_auc(o0, g0, y0, w)
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    auc0 = roc_auc_score(y_te, p_champ)
    comparison = {"base": champion_id, "auc_base": auc0, "auc_candidate": metrics["auc"],
                  "auc_delta": metrics["auc"] - auc0, "auc_delta_ci95": [lo, hi],
                  "negative_flips": neg_flips, "positive_flips": pos_flips, "mcnemar_p": mcnemar_p}
    mlflow.log_metrics({"auc_delta": comparison["auc_delta"], "auc_delta_ci95_lo": lo, "auc_delta_ci95_hi": hi,
                        "negative_flips": neg_flips, "positive_flips": pos_flips, "mcnemar_p": mcnemar_p})
    mlflow.log_dict(comparison, "comparison.json")
    mlflow.end_run()
    t["diff"] = time.perf_counter() - t0

    print(json.dumps({"stages": t, "auc": metrics["auc"], "auc_champion": auc0, "auc_delta_ci95": [lo, hi],
                      "negative_flips": neg_flips, "positive_flips": pos_flips, "mcnemar_p": mcnemar_p,
                      "excluded_rows": int(drop.sum()), "slices": len(slices), "failed": failed,
                      "turn_peak_mib": peak_rss_mib() if reset_ok else None}))


if __name__ == "__main__":
    main()

"""Benchmark: gyre's "find failures" tools vs the Python ones, side by side.

Usage: bench/look.sh            (builds gyre in release and the venv first)
       RUNS=5 bench/look.sh     (medians over RUNS; default 3)

A. Slice finding on Adult's holdout: `gyre slices latest --k 10 --json` (whole process wall time and
   the in-process `timings.slices_s`) vs the `sliceline` package's Slicefinder(alpha=0.95, k=10,
   max_l=3, min_sup=32) fitted on the same 0/1 error vector (gyre's own holdout predictions) and the
   same holdout rows, numeric features binned with pandas qcut(q=5, duplicates='drop'), missing as "NA".
   Only Slicefinder.fit is timed.
B. Slice finding at scale: KDD Cup 99 10% (494,021 rows, 41 features, 23 classes), half held out
   (~247k holdout rows), 10 trees; `gyre slices` timed as in A. Python sliceline runs only on a
   SAMPLE (default 20,000 rows) of the same holdout, in a child process capped at SLICELINE_CAP_S
   (default 300 s).
C. Label issues on Adult with 3% of the train labels flipped (numpy default_rng(0)):
   `gyre label-issues latest --json` (5 folds; first call, then a second, cached call) vs LightGBM
   out-of-fold probabilities (StratifiedKFold(5, shuffle=True, random_state=0), 200 rounds,
   learning_rate 0.05, num_leaves 31, 2 threads) + cleanlab.filter.find_label_issues (defaults).
   Precision and recall against the planted flips; label-issues time vs one `gyre train` process.

Every repeat of C uses a fresh project so that gyre's label-issues cache starts empty.
"""
import gzip
import json
import multiprocessing as mp
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GYRE = os.environ.get("GYRE", os.path.join(ROOT, "target", "release", "gyre"))
RUNS = int(os.environ.get("RUNS", "3"))
THREADS = 2
ADULT = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
KDD = os.environ.get("KDD", os.path.join(ROOT, "..", "shared", "data", "kddcup99-10pct",
                                         "kddcup.data_10_percent.gz"))
KDD_SAMPLE = int(os.environ.get("KDD_SAMPLE", "20000"))
SLICELINE_CAP_S = float(os.environ.get("SLICELINE_CAP_S", "300"))
KDD_COLUMNS = (
    "duration,protocol_type,service,flag,src_bytes,dst_bytes,land,wrong_fragment,urgent,hot,"
    "num_failed_logins,logged_in,num_compromised,root_shell,su_attempted,num_root,num_file_creations,"
    "num_shells,num_access_files,num_outbound_cmds,is_host_login,is_guest_login,count,srv_count,"
    "serror_rate,srv_serror_rate,rerror_rate,srv_rerror_rate,same_srv_rate,diff_srv_rate,"
    "srv_diff_host_rate,dst_host_count,dst_host_srv_count,dst_host_same_srv_rate,"
    "dst_host_diff_srv_rate,dst_host_same_src_port_rate,dst_host_srv_diff_host_rate,"
    "dst_host_serror_rate,dst_host_srv_serror_rate,dst_host_rerror_rate,dst_host_srv_rerror_rate,label"
).split(",")
ALPHA, K, MAX_L, MIN_SUP = 0.95, 10, 3, 32
med = statistics.median


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


def runs_str(xs, fmt="{:.3f}"):
    return ", ".join(fmt.format(x) for x in xs)


def gyre(*args, show=True):
    """Runs gyre with --json; returns (parsed JSON, wall seconds)."""
    cmd = [GYRE, *args, "--json"]
    if show:
        print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"gyre failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout), wall


def new_project(d):
    cmd = [GYRE, "init", d]
    print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def binned(frame):
    """Every column as strings: numerics in qcut(q=5, duplicates='drop') bins, missing as "NA"."""
    out = pd.DataFrame(index=frame.index)
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s):
            try:
                b = pd.qcut(s, q=5, duplicates="drop")
            except ValueError:
                b = pd.Series(np.nan, index=s.index)
            # A constant column has a single bin edge and qcut leaves every value NaN: keep the value.
            v = b.astype(object).map(str).where(b.notna(), s.astype(object).map(str))
        else:
            v = s.astype(object).map(str)
        out[c] = v.where(s.notna(), "NA").astype(object)
    return out


def sliceline_fit(X, errors):
    """Fits Slicefinder; returns (fit seconds, top slices as [(predicate, size, error, score)])."""
    from sliceline.slicefinder import Slicefinder
    sf = Slicefinder(alpha=ALPHA, k=K, max_l=MAX_L, min_sup=MIN_SUP, verbose=False)
    t = time.perf_counter()
    sf.fit(X, errors)
    secs = time.perf_counter() - t
    top = []
    for vals, st in zip(sf.top_slices_, sf.top_slices_statistics_):
        pred = " AND ".join(f"{c} = {v!r}" for c, v in zip(X.columns, vals) if v is not None)
        top.append((pred, int(st["slice_size"]), float(st["slice_average_error"]), float(st["slice_score"])))
    return secs, top


def _sliceline_child(X, errors, q):
    try:
        q.put(("ok", sliceline_fit(X, errors)))
    except Exception:  # noqa: BLE001
        import traceback
        q.put(("error", traceback.format_exc()))


def sliceline_capped(X, errors, cap):
    """sliceline_fit in a child process (fork), killed after `cap` seconds. None on timeout."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_sliceline_child, args=(X, errors, q))
    p.start()
    try:
        status, res = q.get(timeout=cap)
    except Exception:  # queue.Empty: timed out
        p.terminate()
        p.join()
        return None
    p.join()
    if status != "ok":
        raise RuntimeError(res)
    return res


def print_gyre_slices(slices, n=3):
    for i, s in enumerate(slices[:n], 1):
        print(f"    {i}. size {s['size']:>6}  error {s['error']:.3f}  score {s['score']:.3f}  {s['predicate']}")


def print_py_slices(top, n=3):
    for i, (pred, size, err, score) in enumerate(top[:n], 1):
        print(f"    {i}. size {size:>6}  error {err:.3f}  score {score:.3f}  {pred}")


def drop_cached_slices(d):
    """`gyre train` caches the default slice search of its run: delete the cached objects, so that
    `gyre slices` searches again (a cache entry whose object is gone is a miss)."""
    import sqlite3
    con = sqlite3.connect(os.path.join(d, ".gyre", "gyre.db"))
    try:
        objects = [r[0] for r in con.execute("SELECT object FROM caches WHERE kind = 'slices'")]
    finally:
        con.close()
    for o in objects:
        path = os.path.join(d, ".gyre", "objects", o[:2], o[2:])
        if os.path.exists(path):
            os.remove(path)


def time_gyre_slices(d):
    """The search itself, RUNS times (each run deletes the cached result first)."""
    walls, ins, res = [], [], None
    for i in range(RUNS):
        drop_cached_slices(d)
        res, wall = gyre("--project", d, "slices", "latest", "--k", str(K), show=(i == 0))
        assert not res["cached"], "the slice search was read from the cache"
        walls.append(wall)
        ins.append(res["timings"]["slices_s"])
    return res, walls, ins


def holdout_errors(d):
    """gyre's holdout predictions: (row ids, 0/1 errors)."""
    path = os.path.join(d, "p.csv")
    gyre("--project", d, "predictions", "latest", "--out", path)
    p = pd.read_csv(path, keep_default_na=False, dtype={"label": str, "prediction": str})
    return p["row_id"].to_numpy(), (p["label"] != p["prediction"]).to_numpy().astype(int)


# ---------------------------------------------------------------------------------------------- A
def part_a():
    print(f"\n== A. Slice finding on Adult's holdout (k={K}, max level {MAX_L}, min support {MIN_SUP}, "
          f"alpha {ALPHA}; {RUNS} runs) ==", flush=True)
    with tempfile.TemporaryDirectory() as d:
        new_project(d)
        gyre("--project", d, "import", ADULT, "--target", "income", "--split-column", "split")
        tr, _ = gyre("--project", d, "train", "-p", "num_iterations=200", "-p", "learning_rate=0.05")
        res, walls, ins = time_gyre_slices(d)
        rows, errors = holdout_errors(d)

    df = pd.read_csv(ADULT, na_values=["?"])
    hold = np.flatnonzero((df["split"] == "test").to_numpy())
    assert np.array_equal(rows, hold), "gyre's holdout rows are not the file's test rows"
    X = binned(df.drop(columns=["income", "split"]).iloc[hold].reset_index(drop=True))
    py_secs, top = [], None
    for _ in range(RUNS):
        s, top = sliceline_fit(X, errors)
        py_secs.append(s)

    from importlib.metadata import version
    print(f"  holdout rows {len(rows):,}, errors {errors.sum():,} (average error {errors.mean():.4f}; "
          f"gyre reports {res['average_error']:.4f}); holdout AUC {tr['metrics']['holdout']['auc']:.5f}")
    print(f"  gyre slices        in-process {med(ins):7.3f} s (runs {runs_str(ins)})   "
          f"whole process {med(walls):7.3f} s (runs {runs_str(walls)})")
    print(f"  sliceline {version('sliceline')} fit {med(py_secs):7.3f} s (runs {runs_str(py_secs)})   "
          f"[{X.shape[1]} features, qcut(q=5) bins]")
    print(f"  sliceline fit / gyre in-process: {med(py_secs) / med(ins):.1f}x;   "
          f"/ gyre whole process: {med(py_secs) / med(walls):.1f}x")
    print("  gyre top 3:")
    print_gyre_slices(res["slices"])
    print("  sliceline top 3:")
    print_py_slices(top)
    return dict(gyre_in=med(ins), gyre_wall=med(walls), py=med(py_secs))


# ---------------------------------------------------------------------------------------------- B
def part_b():
    print(f"\n== B. Slice finding at scale: KDD Cup 99 10%, --holdout 0.5 --seed 0, 10 trees ({RUNS} runs) ==",
          flush=True)
    if not os.path.exists(KDD):
        print(f"  skipping: {KDD} not found (set KDD=path/to/kddcup.data_10_percent.gz)")
        return None
    with tempfile.TemporaryDirectory() as d:
        csv = os.path.join(d, "kddcup.csv")
        with gzip.open(KDD, "rb") as src, open(csv, "wb") as dst:
            dst.write((",".join(KDD_COLUMNS) + "\n").encode())
            shutil.copyfileobj(src, dst)
        proj = os.path.join(d, "proj")
        new_project(proj)
        imp, _ = gyre("--project", proj, "import", csv, "--target", "label", "--holdout", "0.5", "--seed", "0")
        t = time.perf_counter()
        tr, train_wall = gyre("--project", proj, "train", "-p", "num_iterations=10")
        res, walls, ins = time_gyre_slices(proj)
        rows, errors = holdout_errors(proj)
        print(f"  {imp['rows']:,} rows, {len(imp['classes'])} classes, task {imp['task']}; "
              f"train {tr['rows']['train']:,} / holdout {tr['rows']['holdout']:,}; "
              f"`gyre train` process {train_wall:.2f} s; holdout accuracy "
              f"{tr['metrics']['holdout'].get('accuracy', float('nan')):.5f}")
        print(f"  holdout rows {res['rows']:,}, errors {errors.sum():,} (average error {res['average_error']:.5f})")
        print(f"  gyre slices  in-process {med(ins):7.3f} s (runs {runs_str(ins)})   "
              f"whole process {med(walls):7.3f} s (runs {runs_str(walls)})   "
              f"[goal: < 5 s for ~500k rows x 40 features]")
        print(f"  gyre found {len(res['slices'])} slices; top 3:")
        print_gyre_slices(res["slices"])

        df = pd.read_csv(csv)
    rng = np.random.default_rng(0)
    n = min(KDD_SAMPLE, len(rows))
    pick = np.sort(rng.choice(len(rows), size=n, replace=False))
    X = binned(df.drop(columns=["label"]).iloc[rows[pick]].reset_index(drop=True))
    e = errors[pick]
    print(f"  sliceline on a seeded sample (default_rng(0)) of {n:,} of the {len(rows):,} holdout rows "
          f"({e.sum():,} errors), {X.shape[1]} features; capped at {SLICELINE_CAP_S:.0f} s per fit", flush=True)
    py_secs, top = [], None
    for i in range(RUNS):
        r = sliceline_capped(X, e, SLICELINE_CAP_S)
        if r is None:
            print(f"  sliceline fit #{i + 1} did not finish within {SLICELINE_CAP_S:.0f} s: skipped")
            break
        py_secs.append(r[0])
        top = r[1]
        if r[0] > 60:  # one slow fit is enough
            break
    if py_secs:
        print(f"  sliceline fit on {n:,} rows {med(py_secs):7.3f} s (runs {runs_str(py_secs)}); "
              f"gyre on all {len(rows):,} rows in-process {med(ins):.3f} s")
        print("  sliceline top 3 (sample):")
        print_py_slices(top)
    return dict(gyre_in=med(ins), gyre_wall=med(walls), py=med(py_secs) if py_secs else None, py_rows=n)


# ---------------------------------------------------------------------------------------------- C
def noisy_adult(path, frac=0.03):
    """A copy of Adult with `frac` of the train rows' labels flipped; returns the flipped row ids."""
    raw = pd.read_csv(ADULT, dtype=str, keep_default_na=False)
    train = np.flatnonzero((raw["split"] == "train").to_numpy())
    rng = np.random.default_rng(0)
    flipped = np.sort(rng.choice(train, size=int(round(frac * len(train))), replace=False))
    inc = raw["income"].to_numpy().copy()
    inc[flipped] = np.where(inc[flipped] == ">50K", "<=50K", ">50K")
    raw["income"] = inc
    raw.to_csv(path, index=False, compression="gzip")
    return flipped, len(train)


def pr(found, planted):
    found, planted = set(map(int, found)), set(map(int, planted))
    tp = len(found & planted)
    return tp, (tp / len(found) if found else float("nan")), tp / len(planted)


def cleanlab_oof(path):
    import cleanlab.filter
    import lightgbm as lgb
    from sklearn.model_selection import StratifiedKFold
    df = pd.read_csv(path, na_values=["?"])
    tr = np.flatnonzero((df["split"] == "train").to_numpy())
    y_all = (df.pop("income") == ">50K").astype(int).to_numpy()
    df.pop("split")
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype("category")
    X, y = df.iloc[tr].reset_index(drop=True), y_all[tr]
    params = dict(objective="binary", learning_rate=0.05, num_leaves=31, num_threads=THREADS, verbose=-1, seed=0)
    t = time.perf_counter()
    p = np.zeros(len(y))
    for fit, val in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        m = lgb.train(params, lgb.Dataset(X.iloc[fit], y[fit]), num_boost_round=200)
        p[val] = m.predict(X.iloc[val], num_threads=THREADS)
    pred_probs = np.column_stack([1 - p, p])
    t_oof = time.perf_counter() - t
    mask = cleanlab.filter.find_label_issues(y, pred_probs)
    total = time.perf_counter() - t
    # Ranked by self-confidence, for precision at k = number of planted flips.
    ranked = cleanlab.filter.find_label_issues(y, pred_probs, return_indices_ranked_by="self_confidence")
    return tr[np.flatnonzero(mask)], tr[ranked], t_oof, total


def part_c():
    print(f"\n== C. Label issues on Adult with 3% of train labels flipped (default_rng(0)); {RUNS} runs ==",
          flush=True)
    import cleanlab
    g_first, g_second, g_train, py_oof, py_total = [], [], [], [], []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "adult_noisy.csv.gz")
        flipped, n_train = noisy_adult(path)
        print(f"  planted {len(flipped):,} flips among {n_train:,} train rows (row ids {flipped[:5].tolist()} ...)")
        for i in range(RUNS):
            proj = os.path.join(d, f"proj{i}")
            show = i == 0
            if show:
                new_project(proj)
            else:
                subprocess.run([GYRE, "init", proj], check=True, stdout=subprocess.DEVNULL)
            gyre("--project", proj, "import", path, "--target", "income", "--split-column", "split", show=show)
            tr, tw = gyre("--project", proj, "train", "-p", "num_iterations=200", "-p", "learning_rate=0.05",
                          show=show)
            li, w1 = gyre("--project", proj, "label-issues", "latest", show=show)
            li2, w2 = gyre("--project", proj, "label-issues", "latest", show=show)
            if li["cached"] or not li2["cached"]:
                print(f"  warning: run {i + 1}: first call cached={li['cached']}, second cached={li2['cached']}")
            g_train.append(tw)
            g_first.append(w1)
            g_second.append(w2)
        issues = li["issues"]
        g_rows = [x["row"] for x in issues]  # ordered most suspicious first
        g_tp, g_p, g_r = pr(g_rows, flipped)
        g_tpk, g_pk, _ = pr(g_rows[:len(flipped)], flipped)

        for _ in range(RUNS):
            c_rows, c_ranked, t_oof, total = cleanlab_oof(path)
            py_oof.append(t_oof)
            py_total.append(total)
    c_tp, c_p, c_r = pr(c_rows, flipped)
    c_tpk, c_pk, _ = pr(c_ranked[:len(flipped)], flipped)
    import lightgbm as lgb

    kf = len(flipped)
    print(f"  gyre: {li['rows']:,} train rows, {li['folds']} folds, flagged {li['flagged']:,}; "
          f"`gyre train` process {med(g_train):.3f} s (runs {runs_str(g_train)}), train_s "
          f"{tr['timings']['train_s']:.3f}")
    print(f"  cleanlab {cleanlab.__version__} + LightGBM {lgb.__version__}: OOF {med(py_oof):.3f} s "
          f"(runs {runs_str(py_oof)}), OOF + find_label_issues {med(py_total):.3f} s (runs {runs_str(py_total)})")
    print()
    hdr = f"  {'':38} {'gyre label-issues':>20} {'LightGBM OOF + cleanlab':>26}"
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    row = lambda name, a, b: print(f"  {name:38} {a:>20} {b:>26}")  # noqa: E731
    row("time, first call (s)", f"{med(g_first):.3f}", f"{med(py_total):.3f}")
    row("time, second call (cached) (s)", f"{med(g_second):.3f}", "-")
    row("time / one `gyre train` process", f"{med(g_first) / med(g_train):.2f}x", f"{med(py_total) / med(g_train):.2f}x")
    row("flagged", f"{len(g_rows):,}", f"{len(c_rows):,}")
    row("true flips among flagged", f"{g_tp:,}", f"{c_tp:,}")
    row("precision", f"{g_p:.3f}", f"{c_p:.3f}")
    row(f"recall (of {kf:,} planted)", f"{g_r:.3f}", f"{c_r:.3f}")
    row(f"precision at top {kf:,}", f"{g_pk:.3f}", f"{c_pk:.3f}")
    print(f"  label-issues within 5x of one train (goal): {'yes' if med(g_first) <= 5 * med(g_train) else 'NO'} "
          f"({med(g_first) / med(g_train):.2f}x)")
    return dict(g_first=med(g_first), g_train=med(g_train), g_p=g_p, g_r=g_r, c_p=c_p, c_r=c_r)


if __name__ == "__main__":
    parts = sys.argv[1:] or ["a", "b", "c"]
    print(f"gyre: {GYRE}\nRUNS={RUNS}, {THREADS} threads for LightGBM, {os.cpu_count()} CPUs; "
          f"load average at start: {loadavg()}", flush=True)
    for p in parts:
        {"a": part_a, "b": part_b, "c": part_c}[p.lower()]()
    print(f"\nload average at end: {loadavg()}")

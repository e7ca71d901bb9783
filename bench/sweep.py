"""Benchmark: a 32-trial sweep on Adult with successive halving (issue 23), gyre's local executor
against Ray Tune with LightGBM and its ASHA scheduler, and the overhead of a unit on Ray.

Usage: python3 bench/sweep.py [RUNS]        (after cargo build --release; pip install
       'ray[default,tune]==2.60.0' lightgbm pandas)
  RUNS  runs per side, alternating (default 3); medians are reported

The search, on both sides: num_leaves in {15, 31, 63}, learning_rate log-uniform in
[0.01, 0.2], 32 trials (the 32 configurations gyre draws, given to Ray Tune as a grid, so both
halve the same candidates), up to 300 trees, ASHA with grace 11 trees and reduction factor 3 (gyre:
rungs at 11, 33, 100 trees on a fifth of the training rows, the survivors fit at 300 trees on
every training row). Both sides score rungs on a fifth of the training rows and end with the
best configuration's model fit on every training row and its AUC on the holdout.

1. gyre: `gyre sweep ... --json` on a fresh project (init and import not timed); the wall time
   of the command, which ends with the best trial's run recorded; its holdout AUC.
2. Ray Tune: tune.Tuner over a LightGBM trainable (one thread, one CPU per trial; validation
   AUC reported every tree; ASHAScheduler on the tree count) on a local Ray (2 CPUs, started
   once, its start-up reported apart), then the best configuration refit on every training row
   at 300 trees and scored on the holdout: the wall time from the Tuner's start to that AUC.
3. The overhead of a unit on Ray: the same 8-trial sweep and a 5-fold label-issues, with
   --executor ray on a Ray head started here (token auth on; the project embedded, which a
   cluster on this machine reaches) and with the local executor, alternating; (ray - local) /
   units. The gyre binary is uploaded once, before the timed runs.
"""
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GYRE = os.path.join(ROOT, "target", "release", "gyre")
ADULT = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SPACE = ["-p", "num_leaves=15,31,63", "-p", "learning_rate=0.01..0.2:log", "-p", "num_iterations=300"]


def gyre(args, cwd, env=None, check=True):
    p = subprocess.run([GYRE, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"gyre {args} failed: {p.stderr}")
    return p


def fresh_project(parent):
    d = os.path.join(parent, "p")
    gyre(["init", d], parent)
    gyre(["import", ADULT, "--target", "income", "--split-column", "split"], d)
    return d


def gyre_sweep(seed):
    with tempfile.TemporaryDirectory() as parent:
        d = fresh_project(parent)
        t0 = time.perf_counter()
        out = gyre(["sweep", *SPACE, "--trials", "32", "--seed", str(seed), "--json"], d)
        wall = time.perf_counter() - t0
        r = json.loads(out.stdout)
        configs = [{k: float(v) if k == "learning_rate" else int(v) for k, v in t["params"]
                    if k in ("num_leaves", "learning_rate")} for t in r["sweep"]["trials"]]
        return wall, r["ranking"][0]["metric"], r["sweep"]["units"], r["ranking"][0]["params"], configs


def tune_data():
    import pandas as pd

    df = pd.read_csv(ADULT)
    target = (df["income"] == ">50K").astype(int)
    x = df.drop(columns=["income", "split"])
    for c in x.columns:
        if not pd.api.types.is_numeric_dtype(x[c]):
            x[c] = x[c].astype("category")
    train = df["split"] == "train"
    xt, yt = x[train], target[train]
    rng = __import__("numpy").random.default_rng(0)
    val = rng.random(len(xt)) < 0.2
    return xt, yt, val, x[~train], target[~train]


def ray_tune(seed, data, configs):
    import lightgbm as lgb
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from sklearn.metrics import roc_auc_score

    xt, yt, val, xh, yh = data

    def trainable(config, xt=None, yt=None, val=None):
        dtrain = lgb.Dataset(xt[~val], yt[~val])
        dval = lgb.Dataset(xt[val], yt[val], reference=dtrain)

        def report(env):
            auc = env.evaluation_result_list[0][2]
            tune.report({"auc": auc, "trees": env.iteration + 1})

        config = config["trial"]
        params = {"objective": "binary", "metric": "auc", "num_leaves": config["num_leaves"],
                  "learning_rate": config["learning_rate"], "num_threads": 1, "verbose": -1, "seed": seed}
        lgb.train(params, dtrain, num_boost_round=300, valid_sets=[dval], callbacks=[report])

    t0 = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, xt=xt, yt=yt, val=val), {"cpu": 1}),
        # The configurations gyre drew, so that both sides halve the same 32 candidates.
        param_space={"trial": tune.grid_search(configs)},
        tune_config=tune.TuneConfig(
            metric="auc", mode="max", num_samples=1,
            scheduler=ASHAScheduler(time_attr="trees", max_t=300, grace_period=11, reduction_factor=3),
        ),
        run_config=tune.RunConfig(verbose=0, storage_path=tempfile.mkdtemp()),
    )
    best = tuner.fit().get_best_result(metric="auc", mode="max", scope="all").config["trial"]
    params = {"objective": "binary", "num_leaves": best["num_leaves"], "learning_rate": best["learning_rate"],
              "num_threads": 2, "verbose": -1, "seed": seed}
    model = lgb.train(params, lgb.Dataset(xt, yt), num_boost_round=300)
    auc = roc_auc_score(yh, model.predict(xh))
    return time.perf_counter() - t0, auc, best


def ray_head():
    token = secrets.token_hex(16)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    port = 28265
    subprocess.run(["ray", "start", "--head", "--num-cpus", "2", "--disable-usage-stats", "--dashboard-host",
                    "127.0.0.1", "--dashboard-port", str(port), "--port", "26399", "--ray-client-server-port", "26401"],
                   env=env, check=True, capture_output=True)
    return f"http://127.0.0.1:{port}", token


def overhead():
    url, token = ray_head()
    env_ray = dict(os.environ, GYRE_RAY_URL=url, RAY_AUTH_TOKEN=token)
    out = {}
    try:
        with tempfile.TemporaryDirectory() as parent:
            d = fresh_project(parent)
            gyre(["train", "-p", "num_iterations=100"], d)
            # The upload, untimed: a first unit on Ray.
            gyre(["--executor", "ray", "label-issues", "latest", "--folds", "2"], d, env_ray)
            times = {"ray": {"sweep": [], "label-issues": []}, "local": {"sweep": [], "label-issues": []}}
            units = {}
            for i in range(RUNS):
                for side in ["local", "ray"]:
                    env = env_ray if side == "ray" else None
                    seed = 100 + 2 * i + (side == "ray")
                    t0 = time.perf_counter()
                    r = json.loads(gyre(["--executor", side, "sweep", *SPACE, "--trials", "8", "--seed", str(seed),
                                         "--json"], d, env).stdout)
                    times[side]["sweep"].append(time.perf_counter() - t0)
                    units["sweep"] = r["sweep"]["units"]
                    # Label-issues folds of a run trained for this round (nothing cached).
                    gyre(["train", "-p", "num_iterations=100", "--seed", str(seed)], d)
                    t0 = time.perf_counter()
                    gyre(["--executor", side, "label-issues", "latest", "--folds", "5"], d, env)
                    times[side]["label-issues"].append(time.perf_counter() - t0)
                    units["label-issues"] = 5
            for what in ["sweep", "label-issues"]:
                loc = statistics.median(times["local"][what])
                ray = statistics.median(times["ray"][what])
                out[what] = (loc, ray, (ray - loc) / units[what], units[what])
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True)
    return out


def main():
    if not os.path.exists(GYRE):
        raise SystemExit("build first: cargo build --release")
    import ray

    data = tune_data()
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t0
    g, t = [], []
    for i in range(RUNS):
        g.append(gyre_sweep(i))
        t.append(ray_tune(i, data, g[-1][4]))
        print(f"run {i}: gyre {g[-1][0]:.2f} s AUC {g[-1][1]:.5f} ({g[-1][3]}); "
              f"Ray Tune + LightGBM {t[-1][0]:.2f} s AUC {t[-1][1]:.5f} ({t[-1][2]})", flush=True)
    ray.shutdown()
    gw, tw = statistics.median(x[0] for x in g), statistics.median(x[0] for x in t)
    print(f"\n32-trial ASHA sweep on Adult, wall time to the best trial's holdout AUC (median of {RUNS}):")
    print(f"  gyre sweep (local executor): {gw:.2f} s, best AUC {statistics.median(x[1] for x in g):.5f}, "
          f"{g[0][2]} units")
    print(f"  Ray Tune + LightGBM (ASHA):  {tw:.2f} s, best AUC {statistics.median(x[1] for x in t):.5f} "
          f"(+ {ray_start:.1f} s to start Ray)")
    print(f"  gyre is {tw / gw:.1f}x faster")
    o = overhead()
    print(f"\nOn Ray (a head on this machine, token auth) against the local executor (median of {RUNS}):")
    for what, (loc, ray_s, per, n) in o.items():
        print(f"  {what}: local {loc:.2f} s, ray {ray_s:.2f} s over {n} units: {per:.2f} s overhead per unit")


if __name__ == "__main__":
    main()

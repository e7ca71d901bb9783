"""Benchmark: `gyre ablate` of 3 edits on Adult against the sequential work it replaces.

Usage: bench/ablate.sh [runs]   (builds gyre in release first; default 5 runs)
       python3 bench/ablate.py [runs]

The project: Adult imported with its own train/test split, then three edits (the run being
ablated trains on all three):
  exclude --where "age < 20"; weight --where "sex = 'Female'" --by 2; drop-feature fnlwgt.
Ablating it retrains the same learner (200 trees, learning rate 0.05), params and seed on each
version without one edit, predicts the holdout, and compares with the run.

The baseline is the same three retrains done by hand, one after another: three more projects,
each holding two of the three edits (the versions ablate trains), trained with the same seed.
Each run, in this order, with a new seed each time (so no ablation comes from the cache):
  1. `gyre train` of the ablated project on both cores (its `timings.train_s`: a two-thread fit);
  2. `gyre ablate latest` as a process, wall time (3 retrains on 2 cores, one thread each);
  3. the three variant projects trained one after another with RAYON_NUM_THREADS=1 (their
     `timings.train_s`: the one-thread fits that ablate runs) and with both cores.

The issue's goal: ablate within 1.5x of "3 sequential trains divided by the cores used". Printed
for two readings of a train:
  - a one-core train (the sequential work ablate spreads over the cores): 1.5 x sum(one-thread
    fits of the three variants) / 2;
  - a two-core train of the ablated run (a train that already used both cores, divided by the
    cores once more): 1.5 x 3 x train_s / 2.
Medians over the runs; the machine's core count is taken from os.cpu_count().
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GYRE = os.path.join(ROOT, "target", "release", "gyre")
ADULT = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
PARAMS = ["-p", "num_iterations=200", "-p", "learning_rate=0.05"]
EDITS = [
    ["exclude", "--where", "age < 20"],
    ["weight", "--where", "sex = 'Female'", "--by", "2"],
    ["drop-feature", "fnlwgt"],
]


def gyre(project, *args, threads=None):
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    out = subprocess.run([GYRE, "--project", project, *args, "--json"], check=True,
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def project(path, edits):
    subprocess.run([GYRE, "init", path], check=True, capture_output=True)
    gyre(path, "import", ADULT, "--target", "income", "--split-column", "split")
    for e in edits:
        gyre(path, "edit", *e, "--why", "ablate benchmark")


def train_s(path, seed, threads=None):
    return gyre(path, "train", *PARAMS, "--seed", str(seed), threads=threads)["timings"]["train_s"]


def main():
    cores = os.cpu_count()
    work = tempfile.mkdtemp(prefix="gyre-ablate-bench-")
    try:
        main_project = os.path.join(work, "all")
        project(main_project, EDITS)
        variants = []
        for i in range(len(EDITS)):
            path = os.path.join(work, f"without-{i}")
            project(path, [e for j, e in enumerate(EDITS) if j != i])
            variants.append(path)
        rows = []
        for r in range(RUNS):
            seed = 1000 + r
            fit2 = train_s(main_project, seed)
            t = time.perf_counter()
            report = gyre(main_project, "ablate", "latest")
            ablate = time.perf_counter() - t
            assert not any(e["cached"] for e in report["edits"]), "a retrain came from the cache"
            one = [train_s(v, seed, threads=1) for v in variants]
            two = [train_s(v, seed) for v in variants]
            row = {"ablate_s": ablate, "train_s": fit2, "variants_1thread_s": sum(one),
                   "variants_2thread_s": sum(two)}
            rows.append(row)
            print(f"run {r + 1}: ablate {ablate:.3f} s | run's fit on {cores} threads {fit2:.3f} s |"
                  f" variants' fits one after another: 1 thread {sum(one):.3f} s,"
                  f" {cores} threads {sum(two):.3f} s", flush=True)
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        goal_one = 1.5 * med["variants_1thread_s"] / cores
        goal_two = 1.5 * len(EDITS) * med["train_s"] / cores
        print(f"\nmedians of {RUNS} runs ({cores} cores):")
        print(f"  gyre ablate (3 edits, process wall)        {med['ablate_s']:.3f} s")
        print(f"  3 variant fits one after another, 1 thread  {med['variants_1thread_s']:.3f} s"
              f"  -> goal 1.5 x that / {cores} = {goal_one:.3f} s:"
              f" ablate is {med['ablate_s'] / goal_one:.2f}x of it")
        print(f"  3 variant fits one after another, {cores} threads {med['variants_2thread_s']:.3f} s"
              f"  (ablate is {med['variants_2thread_s'] / med['ablate_s']:.2f}x faster)")
        print(f"  3 x the run's {cores}-thread fit ({med['train_s']:.3f} s) -> 1.5 x 3 x that / {cores}"
              f" = {goal_two:.3f} s: ablate is {med['ablate_s'] / goal_two:.2f}x of it")
        print(json.dumps({"runs": rows, "medians": med, "cores": cores}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""`gyre ui` server-side render times (issue 18), release build.

Usage: python3 bench/ui.py [GYRE] [--runs N] [--flights PARQUET]
  GYRE defaults to target/release/gyre. Three parts:
  1. Every page on the Adult demo project (with a prediction log of 2,000 served rows): the
     median of 7 timed requests per page after one warm-up, through real HTTP on loopback.
  2. The runs page with N runs in the project (default 100,000; copies of the demo's runs with
     seeded random metrics and params, inserted straight into the SQLite file): the newest page,
     sorted by a metric, and filtered by a metric and a param. Also `gyre runs --sort` (a process).
  3. With --flights: the diff page on flights-3m (two gbdt runs, 100 and 60 trees; the latest
     20% of 3M rows held out by time, about 600k rows).
Goals: every page under 100 ms; the runs page under 100 ms at 100,000 runs; the flights diff
under 1 s.
"""
import gzip
import http.client
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]


def flag(name, default):
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i : i + 2]
        return v
    return default


N_RUNS = int(flag("--runs", "100000"))
FLIGHTS = flag("--flights", None)
GYRE = os.path.abspath(args[0]) if args else os.path.join(ROOT, "target", "release", "gyre")


def gyre(project, *a):
    out = subprocess.run([GYRE, "--project", project, *a, "--json"], capture_output=True, text=True)
    if out.returncode not in (0, 1):
        sys.exit(f"gyre {' '.join(a)} failed: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else None


def start(project, *cmd):
    p = subprocess.Popen([GYRE, "--project", project, *cmd, "--addr", "127.0.0.1:0", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = json.loads(p.stdout.readline())
    host, port = ready["addr"].rsplit(":", 1)
    return p, host, int(port)


def timed(host, port, path, n=7):
    def once():
        c = http.client.HTTPConnection(host, port, timeout=120)
        t = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        s = time.perf_counter() - t
        c.close()
        if r.status != 200:
            sys.exit(f"{path}: {r.status} {body[:300]!r}")
        return s
    once()  # warm-up: caches of slices, label issues, decoded tables
    return statistics.median(once() for _ in range(n))


def serve_traffic(project, rows=2000):
    p, host, port = start(project, "serve")
    adult = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
    import csv
    reader = csv.DictReader(gzip.open(adult, "rt"))
    batch = []
    for i, r in enumerate(reader):
        if i >= rows:
            break
        r.pop("income", None)
        r.pop("split", None)
        batch.append({k: (float(v) if v.replace(".", "", 1).isdigit() else v) for k, v in r.items()})
    for k in range(0, len(batch), 100):
        c = http.client.HTTPConnection(host, port)
        c.request("POST", "/v1/predict", json.dumps({"rows": batch[k:k + 100]}),
                  {"Content-Type": "application/json"})
        c.getresponse().read()
        c.close()
    p.terminate()
    p.wait()


def main():
    work = tempfile.mkdtemp()
    try:
        demo = os.path.join(work, "demo")
        subprocess.run([GYRE, "demo", "--dir", demo], check=True, capture_output=True)
        serve_traffic(demo)
        champion = gyre(demo, "aliases")["aliases"][0]["run"]
        latest = gyre(demo, "runs")["runs"][-1]["run"]
        p, host, port = start(demo, "ui")
        pages = ["/", "/runs", f"/runs/{latest}", f"/diff/{champion}/{latest}",
                 f"/review/{champion}", "/findings", "/data", "/rows/5", "/monitor", "/journal"]
        print(f"gyre ui on the Adult demo ({GYRE}), median of 7 requests per page:")
        worst = 0.0
        for path in pages:
            s = timed(host, port, path)
            worst = max(worst, s)
            print(f"  {path:<34} {s * 1000:7.1f} ms")
        print(f"  slowest page: {worst * 1000:.1f} ms (goal < 100 ms)")
        p.terminate()
        p.wait()

        many = os.path.join(work, "many")
        shutil.copytree(demo, many)
        db = sqlite3.connect(os.path.join(many, ".gyre", "gyre.db"))
        cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
        base = dict(zip(cols, db.execute("SELECT * FROM runs LIMIT 1").fetchone()))
        rng = random.Random(18)
        metrics = json.loads(base["metrics"])
        params = json.loads(base["params"])
        rows = []
        for i in range(N_RUNS):
            m = json.loads(json.dumps(metrics))
            m["holdout"]["auc"] = 0.85 + 0.1 * rng.random()
            pr = dict(params, num_leaves=rng.choice([7, 15, 31, 63, 127]),
                      learning_rate=round(rng.uniform(0.01, 0.2), 4))
            r = dict(base, id=f"{i:012x}", metrics=json.dumps(m), params=json.dumps(pr),
                     seed=rng.randrange(1000), seed_group=None,
                     created_at=f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00.{i % 1000:03d}Z")
            rows.append(tuple(r[c] for c in cols))
        before = db.execute("SELECT max(rowid) FROM runs").fetchone()[0]
        db.executemany(f"INSERT INTO runs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)
        # What gyre's insert_run writes beside each run (migration 7): its metrics and params.
        for prefix, json_col, path in (("metrics.", "metrics", "$.holdout"), ("params.", "params", "$")):
            db.execute(f"""INSERT INTO run_values (run, field, num, text)
                SELECT r.id, '{prefix}' || j.key,
                       CASE WHEN j.type IN ('integer','real','true','false') THEN j.value END,
                       CASE WHEN j.type NOT IN ('integer','real','true','false') THEN j.value END
                FROM runs r, json_each(r.{json_col}, '{path}') j
                WHERE r.rowid > {before}""")
        for field, col in (("run.dataset", "dataset"), ("run.version", "version"), ("run.learner", "learner"), ("run.who", "created_by")):
            db.execute(f"INSERT INTO run_values (run, field, num, text) SELECT id, '{field}', NULL, {col} FROM runs WHERE rowid > {before}")
        db.execute(f"INSERT INTO run_values (run, field, num, text) SELECT id, 'run.seed', seed, NULL FROM runs WHERE rowid > {before}")
        db.commit()
        db.close()
        p, host, port = start(many, "ui")
        total = N_RUNS + 2
        print(f"\nthe runs page with {total:,} runs:")
        for path in ["/runs", "/runs?sort=-auc", "/runs?sort=-auc&where=auc%20%3E%3D%200.9%2C%20num_leaves%20%3D%2031",
                     "/runs?sort=learning_rate&where=learner%20%3D%20gbdt&offset=50000"]:
            s = timed(host, port, path)
            print(f"  {path:<90} {s * 1000:7.1f} ms")
        p.terminate()
        p.wait()
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([GYRE, "--project", many, "runs", "--sort", "-auc", "--where", "num_leaves = 31", "--json"],
                           check=True, capture_output=True)
            ts.append(time.perf_counter() - t)
        print(f"  gyre runs --sort -auc --where 'num_leaves = 31' (a process): {statistics.median(ts) * 1000:.1f} ms")

        if FLIGHTS:
            import pyarrow as pa
            import pyarrow.compute as pc
            import pyarrow.parquet as pq
            raw = pq.read_table(FLIGHTS)
            late = pc.if_else(pc.greater(raw["delay"], 15), "late", "on_time")
            table = pa.table({"date": raw["date"], "distance": raw["distance"], "origin": raw["origin"],
                              "destination": raw["destination"], "late": late})
            data = os.path.join(work, "flights.parquet")
            pq.write_table(table, data)
            fl = os.path.join(work, "flights")
            subprocess.run([GYRE, "init", fl], check=True, capture_output=True)
            gyre(fl, "import", data, "--target", "late", "--time-column", "date")
            a = gyre(fl, "train", "-p", "num_iterations=100")["run"]
            b = gyre(fl, "train", "-p", "num_iterations=60")["run"]
            p, host, port = start(fl, "ui")
            s = timed(host, port, f"/diff/{a}/{b}", n=3)
            rows = gyre(fl, "diff", a, b)["rows"]
            print(f"\nthe diff page on flights-3m ({rows:,} holdout rows): {s * 1000:.0f} ms (goal < 1 s)")
            p.terminate()
            p.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()

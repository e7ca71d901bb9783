"""Benchmark: the team store (PostgreSQL + S3-compatible objects on loopback) against the
embedded store (SQLite + object files), issue 21.

Usage: python3 bench/team_store.py [RUNS] [N_RUNS]      (after cargo build --release)
  RUNS    turns of the loop per store, alternating (default 5)
  N_RUNS  runs put in the store for the listing part (default 100000)

Starts, for itself: a throwaway PostgreSQL cluster (Debian's binaries, a temp dir, a free port,
fsync on: a real database's durability) and moto's S3 server. Needs `postgresql` and
`pip install 'moto[server]'`.

1. One turn of the loop on Adult, as bench/loop.py times it (gyre processes: two edits, a
   train of 200 trees at learning_rate 0.05, slices, diff against the champion), on a fresh
   project of each store, alternating; not timed: init, import, the champion's train and
   promote (these fill the cache of the team project's directory: the table read by the edits
   and the train, the champion's predictions read by diff). Per-stage medians and the ratio.
2. `gyre runs` with N_RUNS runs in the team store: a project of that many runs is made on
   the embedded store (as bench/ui.py makes one) and moved with `gyre store copy`; then the
   newest page, sorted by a metric, and filtered by a metric and a param, each as a process,
   median of 7, and `gyre store copy` itself.
"""
import json
import os
import random
import shutil
import socket
import sqlite3
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
N_RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
PASSWORD = "bench-password"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pg_bin():
    """Debian's newest server binaries (initdb, postgres, psql side by side), else PATH's."""
    if os.path.isdir("/usr/lib/postgresql"):
        versions = sorted(int(v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
        if versions:
            return f"/usr/lib/postgresql/{versions[-1]}/bin"
    return os.path.dirname(shutil.which("initdb"))


def as_postgres(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.getuid() == 0 else cmd


def start_postgres(work):
    """A cluster in `work/pg` on a free port: (process, port)."""
    d = os.path.join(work, "pg")
    os.makedirs(d)
    pw = os.path.join(work, "pw")
    with open(pw, "w") as f:
        f.write(PASSWORD)
    if os.getuid() == 0:
        shutil.chown(d, "postgres", "postgres")
        shutil.chown(pw, "postgres", "postgres")
        shutil.chown(work, "postgres", "postgres")
    b = pg_bin()
    subprocess.run(as_postgres([f"{b}/initdb", "-D", f"{d}/data", "-U", "gyre", "--auth-host=scram-sha-256",
                                "--auth-local=trust", f"--pwfile={pw}", "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, capture_output=True)
    port = free_port()
    p = subprocess.Popen(as_postgres([f"{b}/postgres", "-D", f"{d}/data", "-p", str(port), "-k", d,
                                      "-c", "listen_addresses=127.0.0.1"]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run([f"{b}/psql", "-h", d, "-p", str(port), "-U", "gyre", "-d", "postgres", "-c", "SELECT 1"],
                          capture_output=True).returncode == 0:
            return p, port, d
        time.sleep(0.05)
    raise SystemExit("postgres did not start")


def psql(sock, port, sql):
    subprocess.run([f"{pg_bin()}/psql", "-h", sock, "-p", str(port), "-U", "gyre", "-d", "postgres", "-c", sql],
                   check=True, capture_output=True)


def start_s3():
    port = free_port()
    p = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return p, port


def make_bucket(port, name):
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/{name}", method="PUT")).read()


def run(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return wall, out.stdout


def turn(env, init_args):
    """One Adult turn on a fresh project made by `gyre init DIR *init_args`: stage seconds."""
    with tempfile.TemporaryDirectory() as d:
        g = [GYRE, "--project", d]
        train = ["train", "-p", "num_iterations=200", "-p", "learning_rate=0.05", "--json"]
        run([GYRE, "init", d] + init_args, env)
        run(g + ["import", ADULT, "--target", "income", "--split-column", "split"], env)
        run(g + train, env)
        run(g + ["promote", "latest", "--why", "baseline", "--force"], env)
        t = {}
        a, _ = run(g + ["edit", "exclude", "--where", "age < 18", "--why", "too young"], env)
        b, _ = run(g + ["edit", "relabel", "--rows", ",".join(str(i) for i in range(0, 500, 10)),
                        "--to", ">50K", "--why", "checked by hand"], env)
        t["edit"] = a + b
        t["train"], out = run(g + train, env)
        auc = json.loads(out)["metrics"]["holdout"]["auc"]
        t["slices"], _ = run(g + ["slices", "latest", "--k", "10", "--json"], env)
        t["diff"], _ = run(g + ["diff", "champion", "latest", "--json"], env)
        t["total"] = sum(t.values())
        return t, auc


def fill_runs(project, n):
    """Adds n runs to an embedded project's SQLite file, with their run_values (bench/ui.py)."""
    db = sqlite3.connect(os.path.join(project, ".gyre", "gyre.db"))
    cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    base = dict(zip(cols, db.execute("SELECT * FROM runs LIMIT 1").fetchone()))
    rng = random.Random(21)
    metrics, params = json.loads(base["metrics"]), json.loads(base["params"])
    rows = []
    for i in range(n):
        m = json.loads(json.dumps(metrics))
        m["holdout"]["auc"] = 0.85 + 0.1 * rng.random()
        pr = dict(params, num_leaves=rng.choice([7, 15, 31, 63, 127]), learning_rate=round(rng.uniform(0.01, 0.2), 4))
        r = dict(base, id=f"{i:012x}", metrics=json.dumps(m), params=json.dumps(pr), seed=rng.randrange(1000),
                 seed_group=None, created_at=f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00.{i % 1000:03d}Z")
        rows.append(tuple(r[c] for c in cols))
    before = db.execute("SELECT max(rowid) FROM runs").fetchone()[0]
    db.executemany(f"INSERT INTO runs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)
    for prefix, col, path in (("metrics.", "metrics", "$.holdout"), ("params.", "params", "$")):
        db.execute(f"""INSERT INTO run_values (run, field, num, text)
            SELECT r.id, '{prefix}' || j.key,
                   CASE WHEN j.type IN ('integer','real','true','false') THEN j.value END,
                   CASE WHEN j.type NOT IN ('integer','real','true','false') THEN j.value END
            FROM runs r, json_each(r.{col}, '{path}') j WHERE r.rowid > {before}""")
    for field, col in (("run.dataset", "dataset"), ("run.version", "version"), ("run.learner", "learner"),
                       ("run.who", "created_by")):
        db.execute(f"INSERT INTO run_values (run, field, num, text) SELECT id, '{field}', NULL, {col} "
                   f"FROM runs WHERE rowid > {before}")
    db.execute(f"INSERT INTO run_values (run, field, num, text) SELECT id, 'run.seed', seed, NULL FROM runs "
               f"WHERE rowid > {before}")
    db.commit()
    db.close()


def print_turns(stages, aucs):
    print(f"\none turn of the loop on Adult, median of {RUNS} (seconds), warm cache:")
    print(f"  {'stage':<8} {'embedded':>9} {'team':>9} {'team/embedded':>14}")
    for s in ["edit", "train", "slices", "diff", "total"]:
        e = statistics.median(t[s] for t in stages["embedded"])
        m = statistics.median(t[s] for t in stages["team"])
        print(f"  {s:<8} {e:9.3f} {m:9.3f} {m / e:13.2f}x")
    print(f"  AUC: embedded {aucs['embedded'][0]:.5f}, team {aucs['team'][0]:.5f}")


def median_ms(cmd, env, n=7):
    return statistics.median(run(cmd, env)[0] for _ in range(n)) * 1000


def main():
    work = tempfile.mkdtemp()
    os.chmod(work, 0o755)
    pg, pg_port, sock = start_postgres(work)
    s3, s3_port = start_s3()
    env = dict(os.environ, PGPASSWORD=PASSWORD, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}", AWS_REGION="us-east-1")
    make_bucket(s3_port, "bench")
    try:
        print(f"gyre {GYRE}; PostgreSQL on 127.0.0.1:{pg_port} (fsync on), moto S3 on 127.0.0.1:{s3_port}")
        stages = {"embedded": [], "team": []}
        aucs = {"embedded": [], "team": []}
        for i in range(RUNS):
            psql(sock, pg_port, f"CREATE DATABASE turn{i}")
            for store in (["embedded", "team"] if i % 2 == 0 else ["team", "embedded"]):
                args = [] if store == "embedded" else [
                    "--store", f"postgres://gyre@127.0.0.1:{pg_port}/turn{i}", "--objects", f"s3://bench/turn{i}"]
                t, auc = turn(env, args)
                stages[store].append(t)
                aucs[store].append(auc)
        if RUNS:
            print_turns(stages, aucs)


        local = os.path.join(work, "many")
        run([GYRE, "init", local], env)
        run([GYRE, "--project", local, "import", ADULT, "--target", "income", "--split-column", "split"], env)
        run([GYRE, "--project", local, "train", "-p", "num_iterations=20"], env)
        fill_runs(local, N_RUNS)
        psql(sock, pg_port, "CREATE DATABASE many")
        shared = os.path.join(work, "many-team")
        copy_s, _ = run([GYRE, "--project", local, "store", "copy", shared, "--store",
                         f"postgres://gyre@127.0.0.1:{pg_port}/many", "--objects", "s3://bench/many", "--json"], env)
        print(f"\n{N_RUNS + 1:,} runs: gyre store copy (embedded -> team) {copy_s:.1f} s")
        for name, args in [("newest page", ["runs"]),
                           ("sorted by auc", ["runs", "--sort", "-auc"]),
                           ("auc >= 0.9, num_leaves = 31, by auc", ["runs", "--sort", "-auc", "--where",
                                                                    "auc >= 0.9, num_leaves = 31"])]:
            e = median_ms([GYRE, "--project", local] + args + ["--json"], env)
            m = median_ms([GYRE, "--project", shared] + args + ["--json"], env)
            print(f"  gyre {' '.join(args):<55} embedded {e:6.1f} ms   team {m:6.1f} ms  ({name})")
        if os.environ.get("KEEP"):
            print(f"kept: psql -h {sock} -p {pg_port} -U gyre -d many; project {shared}; Enter ends")
            input()
    finally:
        pg.terminate()
        s3.terminate()
        pg.wait()
        s3.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

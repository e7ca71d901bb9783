"""Benchmark: the loop through `gyre server` on loopback against a local project, and serving
replicas shipping their log to it (issue 22).

Usage: python3 bench/team_server.py [RUNS] [REQUESTS]      (after cargo build --release)
  RUNS      turns of the loop per side, alternating (default 5)
  REQUESTS  one-row requests per replica in the replica part (default 3000)

1. One turn of the loop on Adult as bench/team_store.py times it (two edits, a train of 200
   trees at learning_rate 0.05, slices, diff against the champion; each a gyre process), on a
   fresh local project and on a fresh clone of a fresh `gyre server` project, alternating. Not
   timed: init or clone, import, the champion's train and promote (these warm the clone's
   cache: the table the edits and the train read, the champion's predictions diff reads).
   With TEAM=1 the server's own project is on the team store (PostgreSQL + moto, started here
   as bench/team_store.py starts them).
2. Three `gyre serve --remote` replicas of the server's champion, each sent REQUESTS one-row
   requests by 4 client threads; replica 1 is stopped (SIGTERM) and started again halfway.
   Then `gyre monitor` in a clone counts the predictions the team's log holds: it must equal
   the answers the clients got, with no id twice. Reports the answers per second and how long
   after the last answer the team's log held them all.
"""
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import team_store as ts  # noqa: E402  (its PostgreSQL, S3 and run helpers)

GYRE = ts.GYRE
ADULT = ts.ADULT
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
ROW = {"age": 40, "workclass": "Private", "fnlwgt": 100000, "education": "Bachelors", "education_num": 13,
       "marital_status": "Never-married", "occupation": None, "relationship": None, "race": None, "sex": "Male",
       "capital_gain": 0, "capital_loss": 0, "hours_per_week": 40, "native_country": None}


def spawn_ready(cmd, env, cwd=None):
    """A long-lived gyre whose first stdout line is JSON with `addr`: (process, ready)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=cwd)
    line = p.stdout.readline()
    return p, json.loads(line)


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait()


def turn(env, make):
    """One Adult turn on a fresh project made by make(dir): stage seconds, AUC."""
    with tempfile.TemporaryDirectory() as parent:
        d = os.path.join(parent, "p")
        make(d)
        g = [GYRE, "--project", d]
        train = ["train", "-p", "num_iterations=200", "-p", "learning_rate=0.05", "--json"]
        ts.run(g + ["import", ADULT, "--target", "income", "--split-column", "split"], env)
        ts.run(g + train, env)
        ts.run(g + ["promote", "latest", "--why", "baseline", "--force"], env)
        t = {}
        a, _ = ts.run(g + ["edit", "exclude", "--where", "age < 18", "--why", "too young"], env)
        b, _ = ts.run(g + ["edit", "relabel", "--rows", ",".join(str(i) for i in range(0, 500, 10)),
                           "--to", ">50K", "--why", "checked by hand"], env)
        t["edit"] = a + b
        t["train"], out = ts.run(g + train, env)
        auc = json.loads(out)["metrics"]["holdout"]["auc"]
        t["slices"], _ = ts.run(g + ["slices", "latest", "--k", "10", "--json"], env)
        t["diff"], _ = ts.run(g + ["diff", "champion", "latest", "--json"], env)
        t["total"] = sum(t.values())
        return t, auc


class Server:
    """`gyre server` for a fresh project in `work`, with a maintainer's token."""

    def __init__(self, work, env, init_args):
        self.dir = tempfile.mkdtemp(dir=work)
        ts.run([GYRE, "init", self.dir] + init_args, env)
        out = ts.run([GYRE, "--project", self.dir, "server", "user", "add", "bench", "--role", "maintainer",
                      "--json"], env)[1]
        self.token = json.loads(out)["token"]
        self.env = env
        self.proc, ready = spawn_ready([GYRE, "--project", self.dir, "server", "--addr", "127.0.0.1:0", "--json"],
                                       env)
        self.url = "http://" + ready["addr"]

    def client_env(self):
        return dict(self.env, GYRE_TOKEN=self.token)

    def stop(self):
        stop(self.proc)


def predict_load(addr, n, answered, lock):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"rows": [ROW]})
    got = []
    for _ in range(n):
        try:
            conn.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status == 200:
                got.extend(p["id"] for p in json.loads(data)["predictions"])
        except (OSError, http.client.HTTPException):
            # The replica is restarting: this request was not answered.
            conn.close()
            time.sleep(0.05)
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
    with lock:
        answered.extend(got)


def replicas(server, work):
    env = server.client_env()
    clone = os.path.join(work, "watch")
    ts.run([GYRE, "clone", server.url, clone], env)
    g = [GYRE, "--project", clone]
    ts.run(g + ["import", ADULT, "--target", "income", "--split-column", "split"], env)
    ts.run(g + ["train", "-p", "num_iterations=100"], env)
    ts.run(g + ["promote", "latest", "--why", "serve it"], env)
    dirs = [os.path.join(work, f"replica{i}") for i in range(3)]
    ports = [ts.free_port() for _ in range(3)]

    def start(i):
        # A fixed port: the restarted replica is where its clients were sending.
        return spawn_ready([GYRE, "serve", "--remote", server.url, "--dir", dirs[i], "--addr",
                            f"127.0.0.1:{ports[i]}", "--json"], env)

    procs = [start(i) for i in range(3)]
    answered, lock = [], threading.Lock()
    t0 = time.perf_counter()
    threads = []
    for i, (_, ready) in enumerate(procs):
        for _ in range(4):
            th = threading.Thread(target=predict_load, args=(ready["addr"], REQUESTS // 4, answered, lock))
            th.start()
            threads.append((i, th))
    # Halfway, replica 1 stops and starts again (same directory: same name, same log).
    time.sleep(0.3)
    stop(procs[1][0])
    procs[1] = start(1)

    for _, th in threads:
        th.join()
    wall = time.perf_counter() - t0
    done = time.perf_counter()
    # Until the team's log holds every answer (replicas ship every 250 ms).
    while True:
        m = json.loads(ts.run(g + ["monitor", "--json"], env)[1])
        if m["predictions"] >= len(answered) or time.perf_counter() - done > 30:
            break
        time.sleep(0.1)
    lag = time.perf_counter() - done
    for p, _ in procs:
        stop(p)
    m = json.loads(ts.run(g + ["monitor", "--json"], env)[1])
    print(f"\n3 replicas, {len(answered):,} answers in {wall:.1f} s ({len(answered) / wall:,.0f} answers/s through "
          f"Python clients), replica 1 restarted midway")
    print(f"  team monitor: {m['predictions']:,} predictions; answers {len(answered):,}; "
          f"distinct ids {len(set(answered)):,}; all in the team's log {lag:.2f} s after the last answer")
    ok = m["predictions"] == len(answered) == len(set(answered))
    print(f"  every prediction once: {'yes' if ok else 'NO'}")


def main():
    work = tempfile.mkdtemp()
    os.chmod(work, 0o755)
    env = dict(os.environ)
    env.pop("GYRE_TOKEN", None)
    services = []
    init_args = []
    if os.environ.get("TEAM"):
        pg, pg_port, sock = ts.start_postgres(work)
        s3, s3_port = ts.start_s3()
        services = [pg, s3]
        env.update(PGPASSWORD=ts.PASSWORD, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}", AWS_REGION="us-east-1")
        ts.make_bucket(s3_port, "bench")
    try:
        stages = {"local": [], "server": []}
        aucs = {"local": [], "server": []}
        print(f"gyre {GYRE}; the server's project on the {'team' if services else 'embedded'} store")
        for i in range(RUNS):
            if services:
                ts.psql(sock, pg_port, f"CREATE DATABASE turn{i}")
                init_args = ["--store", f"postgres://gyre@127.0.0.1:{pg_port}/turn{i}", "--objects",
                             f"s3://bench/turn{i}"]
            server = Server(work, env, init_args)
            try:
                for side in (["local", "server"] if i % 2 == 0 else ["server", "local"]):
                    if side == "local":
                        t, auc = turn(env, lambda d: ts.run([GYRE, "init", d], env))
                    else:
                        cenv = server.client_env()
                        t, auc = turn(cenv, lambda d: ts.run([GYRE, "clone", server.url, d], cenv))
                    stages[side].append(t)
                    aucs[side].append(auc)
            finally:
                server.stop()
        if RUNS:
            print(f"\none turn of the loop on Adult, median of {RUNS} (seconds), warm cache:")
            print(f"  {'stage':<8} {'local':>9} {'server':>9} {'server/local':>13}")
            for s in ["edit", "train", "slices", "diff", "total"]:
                a = statistics.median(t[s] for t in stages["local"])
                b = statistics.median(t[s] for t in stages["server"])
                print(f"  {s:<8} {a:9.3f} {b:9.3f} {b / a:12.2f}x")
            print(f"  AUC: local {aucs['local'][0]:.5f}, server {aucs['server'][0]:.5f}")
        if services:
            ts.psql(sock, pg_port, "CREATE DATABASE replicas")
            init_args = ["--store", f"postgres://gyre@127.0.0.1:{pg_port}/replicas", "--objects",
                         "s3://bench/replicas"]
        server = Server(work, env, init_args)
        try:
            replicas(server, work)
        finally:
            server.stop()
    finally:
        for s in services:
            s.terminate()
            s.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()

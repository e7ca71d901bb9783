"""A serving replica of the team server against `gyre serve` on the project itself, at saturation
(issue 22): what following the server and shipping the log cost a replica's throughput.

Usage: python3 bench/replica_serve.py [rounds] [seconds]   (after cargo build --release; wrk)

bench/serve.py's project (the Adult champion of 200 trees) and request bodies (the first 2,000
holdout rows, one row per request). The project is served by `gyre server`; each round runs, in
turn, `gyre serve` in the project's own directory (local: its log is the team's) and
`gyre serve --remote` (a replica: the champion loaded through the server, its log shipped to it
every 250 ms), each warmed up for 2 s, then measured with `wrk -t1 -c64`. Prints each round and
the medians, and how many predictions the team's monitor holds from both (the correctness of
shipping, every answer once, is bench/team_server.py's and the tests').
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

PORT = 18475


def start(cmd, env, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    serve.wait_port(port, p)
    return p


def stop(p):
    p.send_signal(signal.SIGINT)
    p.wait()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    work = tempfile.mkdtemp(prefix="gyre-replica-bench-")
    env = dict(os.environ)
    env.pop("GYRE_TOKEN", None)
    try:
        project = serve.champion_project(work)
        body = serve.write_bodies(work)
        token = serve.gyre(project, "server", "user", "add", "replica", "--role", "member")["token"]
        server_port = PORT + 1
        server = start([serve.GYRE, "--project", project, "server", "--addr", f"127.0.0.1:{server_port}"], env,
                       server_port)
        renv = dict(env, GYRE_TOKEN=token)
        replica_dir = os.path.join(work, "replica")
        kinds = {
            "local": ([serve.GYRE, "--project", project, "serve", "--addr", f"127.0.0.1:{PORT}"], env),
            "replica": ([serve.GYRE, "serve", "--remote", f"http://127.0.0.1:{server_port}", "--dir", replica_dir,
                         "--addr", f"127.0.0.1:{PORT}"], renv),
        }
        rps = {k: [] for k in kinds}
        p99 = {k: [] for k in kinds}
        for r in range(rounds):
            for name, (cmd, e) in kinds.items():
                p = start(cmd, e, PORT)
                serve.wrk(PORT, body, 64, 0, 2)
                m = serve.wrk(PORT, body, 64, 0, seconds)
                stop(p)
                rps[name].append(m["rps"])
                p99[name].append(m["p99_ms"])
                print(f"round {r + 1} {name:<8} {m['rps']:>9,.0f} req/s  p99 {m['p99_ms']:.2f} ms  "
                      f"non-2xx {m['non_2xx']}")
        time.sleep(1)
        mon = serve.gyre(project, "monitor")
        stop(server)
        print(f"\nmedians of {rounds} rounds of {seconds} s (plus 2 s of warm-up each), wrk -t1 -c64:")
        for name in kinds:
            print(f"  {name:<8} {statistics.median(rps[name]):>9,.0f} req/s  p99 {statistics.median(p99[name]):.2f} ms")
        ratio = statistics.median(rps["replica"]) / statistics.median(rps["local"])
        print(f"  replica/local: {ratio:.3f}")
        print(f"  the team's monitor holds {mon['predictions']:,} predictions from both kinds")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

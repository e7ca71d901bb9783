"""Two gyre builds side by side at saturation: which serves more one-row requests a second.

Usage: python3 bench/serve_ab.py OLD_GYRE NEW_GYRE [rounds] [seconds]   (defaults 4 rounds of 5 s)

For comparing a change with the build before it (build both, copy the old binary aside). The
project, model and request bodies are bench/serve.py's (the first 2,000 Adult holdout rows in
turn); each round starts each build in turn on a fresh prediction log, warms it up for 2 s, then
measures with `wrk -t1 -c64`, and weighs the prediction log it wrote (bytes on disk per logged
prediction, as the build's own `gyre monitor` counts them). Prints each round and the medians.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import json
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

PORT = 18474


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    builds = {"old": sys.argv[1], "new": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    work = tempfile.mkdtemp(prefix="gyre-serve-ab-")
    try:
        project = serve.champion_project(work)
        body = serve.write_bodies(work)
        log = os.path.join(project, ".gyre", "log.db")
        rps = {name: [] for name in builds}
        per_prediction = {name: [] for name in builds}
        for r in range(rounds):
            for name, binary in builds.items():
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(log + suffix):
                        os.remove(log + suffix)
                proc = subprocess.Popen(
                    [binary, "--project", project, "serve", "--addr", f"127.0.0.1:{PORT}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    serve.wait_port(PORT, proc)
                    serve.wrk(PORT, body, serve.SAT_CONNS, 0, 2)  # warm-up
                    time.sleep(1.0)
                    sat = serve.wrk(PORT, body, serve.SAT_CONNS, 0, seconds)
                finally:
                    proc.terminate()
                    proc.wait()
                if sat["non_2xx"]:
                    raise SystemExit(f"{name} answered {sat['non_2xx']} errors")
                rps[name].append(sat["rps"])
                size = sum(os.path.getsize(log + x) for x in ("", "-wal") if os.path.exists(log + x))
                logged = json.loads(subprocess.run(
                    [binary, "--project", project, "monitor", "--json"], check=True,
                    capture_output=True, text=True).stdout)["predictions"]
                per_prediction[name].append(size / max(logged, 1))
                print(f"round {r + 1} {name}: {sat['rps']:8.0f} req/s, log {size / 1e6:.1f} MB for"
                      f" {logged} predictions ({size / max(logged, 1):.0f} bytes each)", flush=True)
        old, new = (statistics.median(rps[n]) for n in builds)
        print(f"medians: old {old:.0f}, new {new:.0f} req/s ({new / old - 1:+.1%}); log bytes per"
              f" prediction: old {statistics.median(per_prediction['old']):.0f},"
              f" new {statistics.median(per_prediction['new']):.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

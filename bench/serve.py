"""Benchmark: `gyre serve` against a FastAPI + LightGBM server (serve_python.py), one-row
prediction requests over loopback, measured with wrk (Debian's wrk 4.1).

Usage: bench/serve.sh [runs] [seconds]   (defaults 3 runs of 10 s per measurement)

Both servers serve a model of Adult trained the same way (200 trees, learning rate 0.05, 31
leaves) and answer the same JSON requests: one holdout row each, the first 2,000 holdout rows in
turn (bench/wrk_predict.lua and pace both cycle through them). Until 2026-11-27 every request
carried the same row, which flattered gyre by about 18% (one path through the trees, one row
repeated in its compressed log) and Python by about 3%. For each run, alternating the
servers, after a 2 s warm-up at saturation and a 3 s pause:

- fixed rate, even: 5,000 requests/s evenly spaced over 4 keep-alive connections, by our
  open-loop generator (crates/gyre-server/examples/pace.rs), latency counted from each request's
  scheduled time (as wrk2 does);
- fixed rate, wrk: Debian's wrk 4 has no rate option; 14 connections each pausing 2 ms (its
  timers count whole milliseconds, so requests leave in bursts at each tick) give about 5,000/s;
- saturation: wrk with 64 connections, no pause.

A third server, the HTTP floor (crates/gyre-server/examples/http_floor.rs: axum and hyper in
gyre's runtime shape, answering a constant body without any work), is measured at saturation
only, after the same warm-up: what the HTTP stack alone answers on this machine, so gyre's
figure can be read as the floor minus the cost of the model, the log and the bookkeeping.

wrk runs one thread (`-t1`) so that it takes one core at most of the two. gyre logs every
prediction to its SQLite prediction log; the Python server logs nothing.
Prints throughput, p50 and p99 latency per measurement and their medians.
"""
import gzip
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GYRE = os.path.join(ROOT, "target", "release", "gyre")
ADULT = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
RUNS, SECONDS = 3, 10  # defaults; main() reads them from the command line
RATE, RATE_CONNS, RATE_DELAY_MS, SAT_CONNS = 5000, 14, 2, 64
BODIES = 2000
PACE = os.path.join(ROOT, "target", "release", "examples", "pace")
FLOOR = os.path.join(ROOT, "target", "release", "examples", "http_floor")
GYRE_PORT, PY_PORT, FLOOR_PORT = 18471, 18472, 18473


def gyre(project, *args):
    out = subprocess.run([GYRE, "--project", project, *args, "--json"], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def wait_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def pace(port, body, rate, seconds):
    out = subprocess.run([PACE, f"127.0.0.1:{port}", body, str(rate), str(seconds), "4"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def wrk(port, body, conns, delay_ms, seconds):
    env = dict(os.environ, BODY_FILE=body, DELAY_MS=str(delay_ms))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
         "-s", os.path.join(HERE, "wrk_predict.lua"), f"http://127.0.0.1:{port}/v1/predict"],
        env=env, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99,
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else ""}


def main():
    global RUNS, SECONDS
    RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else SECONDS
    work = tempfile.mkdtemp(prefix="gyre-serve-bench-")
    try:
        run_all(work)
    finally:
        # The log of a full run holds millions of predictions: never leave it behind.
        shutil.rmtree(work, ignore_errors=True)


def champion_project(work):
    """An Adult project in `work` whose champion is the benchmark's model."""
    project = os.path.join(work, "p")
    subprocess.run([GYRE, "init", project], check=True, capture_output=True)
    gyre(project, "import", ADULT, "--target", "income", "--split-column", "split")
    run = gyre(project, "train", "-p", "num_iterations=200", "-p", "learning_rate=0.05",
               "-p", "num_leaves=31")["run"]
    gyre(project, "promote", run, "--why", "serve benchmark")
    return project


def write_bodies(work):
    """The request bodies, one per line: the first BODIES holdout rows, one row per request."""
    bodies = []
    with gzip.open(ADULT, "rt") as f:
        header = f.readline().strip().split(",")
        for line in f:
            values = line.strip().split(",")
            if values[-1] != "test":
                continue
            row = {}
            for k, v in zip(header, values):
                if k in ("income", "split"):
                    continue
                row[k] = None if v == "?" else (float(v) if re.fullmatch(r"-?[\d.]+", v) else v)
            bodies.append(json.dumps({"rows": [row]}))
            if len(bodies) == BODIES:
                break
    body = os.path.join(work, "bodies.jsonl")
    with open(body, "w") as f:
        f.write("\n".join(bodies) + "\n")
    return body


def run_all(work):
    project = champion_project(work)
    body = write_bodies(work)

    servers = {
        "gyre": lambda: subprocess.Popen(
            [GYRE, "--project", project, "serve", "--addr", f"127.0.0.1:{GYRE_PORT}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "python": lambda: subprocess.Popen(
            [os.path.join(HERE, ".venv", "bin", "python"), "-m", "uvicorn", "serve_python:app",
             "--port", str(PY_PORT), "--workers", "2", "--log-level", "warning",
             "--no-access-log"],
            cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    ports = {"gyre": GYRE_PORT, "python": PY_PORT}
    results = {name: {"even": [], "rate": [], "saturation": []} for name in servers}
    floor = []
    for r in range(RUNS):
        for name, start in servers.items():
            proc = start()
            try:
                wait_port(ports[name], proc)
                time.sleep(1.0 if name == "gyre" else 3.0)  # uvicorn workers train first
                wrk(ports[name], body, SAT_CONNS, 0, 2)  # warm-up
                time.sleep(3.0)  # let gyre's log writer commit the warm-up's records
                even = pace(ports[name], body, RATE, SECONDS)
                fixed = wrk(ports[name], body, RATE_CONNS, RATE_DELAY_MS, SECONDS)
                sat = wrk(ports[name], body, SAT_CONNS, 0, SECONDS)
            finally:
                proc.terminate()
                proc.wait()
            results[name]["even"].append(even)
            results[name]["rate"].append(fixed)
            results[name]["saturation"].append(sat)
            print(f"run {r + 1} {name:6}  even 5k/s: {even['rps']:6.0f} req/s p50 {even['p50_ms']:.3f} ms"
                  f" p99 {even['p99_ms']:.3f} ms missed {even['missed']}  |  wrk ~5k/s: {fixed['rps']:6.0f} req/s  p50 {fixed['p50_ms']:.3f} ms"
                  f"  p99 {fixed['p99_ms']:.3f} ms  |  saturation: {sat['rps']:8.0f} req/s"
                  f"  p50 {sat['p50_ms']:.3f} ms  p99 {sat['p99_ms']:.3f} ms"
                  f"  non-2xx {even['non_2xx'] + fixed['non_2xx'] + sat['non_2xx']}", flush=True)
        proc = subprocess.Popen([FLOOR, f"127.0.0.1:{FLOOR_PORT}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_port(FLOOR_PORT, proc)
            wrk(FLOOR_PORT, body, SAT_CONNS, 0, 2)  # warm-up
            time.sleep(3.0)
            sat = wrk(FLOOR_PORT, body, SAT_CONNS, 0, SECONDS)
        finally:
            proc.terminate()
            proc.wait()
        floor.append(sat)
        print(f"run {r + 1} http floor (no work)  saturation: {sat['rps']:8.0f} req/s"
              f"  p50 {sat['p50_ms']:.3f} ms  p99 {sat['p99_ms']:.3f} ms"
              f"  non-2xx {sat['non_2xx']}  socket errors {sat['socket_errors'] or 'none'}",
              flush=True)
        if sat["non_2xx"]:
            raise SystemExit("the HTTP floor answered errors: its throughput would mislead")
    logged = gyre(project, "monitor")["predictions"]
    med = lambda name, mode, key: statistics.median(x[key] for x in results[name][mode])
    print("\nmedians")
    for name in servers:
        print(f"  {name:6}  even 5k/s: {med(name, 'even', 'rps'):6.0f} req/s p50 {med(name, 'even', 'p50_ms'):.3f} ms"
              f" p99 {med(name, 'even', 'p99_ms'):.3f} ms  |  wrk ~5k/s: {med(name, 'rate', 'rps'):6.0f} req/s  p50 {med(name, 'rate', 'p50_ms'):.3f} ms"
              f"  p99 {med(name, 'rate', 'p99_ms'):.3f} ms  |  saturation {med(name, 'saturation', 'rps'):8.0f} req/s"
              f"  p99 {med(name, 'saturation', 'p99_ms'):.3f} ms")
    floor_rps = statistics.median(x["rps"] for x in floor)
    print(f"  http floor (no work)  saturation {floor_rps:8.0f} req/s")
    ratio = med("gyre", "saturation", "rps") / med("python", "saturation", "rps")
    print(f"  throughput at saturation, gyre/python: {ratio:.1f}x;"
          f" gyre/http floor: {med('gyre', 'saturation', 'rps') / floor_rps:.2f};"
          f" http floor/python: {floor_rps / med('python', 'saturation', 'rps'):.1f}x")
    print(f"  predictions in gyre's log: {logged}")
    print(json.dumps({"results": results, "floor": floor, "ratio": ratio, "logged": logged}))


if __name__ == "__main__":
    main()

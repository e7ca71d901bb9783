"""Issue 19's benchmarks: what gyre adds around a command learner, and serving an ONNX model.

Usage: python3 bench/any_model.py [rounds] [seconds]   (defaults 5 rounds, 5 s of load)

1. Overhead around a command learner on Adult (32,561 training rows, 16,281 holdout rows):
   `gyre train --learner NAME --json` as a process, `rounds` times each for `prior`
   (bench/learners/prior.py: reads the files, predicts the class shares) and `sklearn`
   (examples/learners/sklearn_hgb.py, 100 iterations). The run's timings say how long the
   command itself took (`command_s`, from start to exit), how long gyre took to write its
   inputs (`inputs_s`) and to read and check its outputs (`outputs_s`); the rest of the wall
   time is the process start, loading the version, evaluating, slicing, storing and committing
   the run (what every run pays; gbdt's is shown for comparison as wall - train_s).
2. Serving: the same project's gbdt run (200 trees) and sklearn run (its ONNX pipeline in
   onnxruntime), each as the champion in turn, at saturation with `wrk -t1 -c64` on one-row
   requests (bench/serve.py's bodies: 2,000 Adult holdout rows in turn): req/s, p50, p99.

Needs a release build (cargo build --release), wrk, and Python with scikit-learn, skl2onnx,
onnxruntime, pandas, pyarrow (.ci/run's pins). Prints medians.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

PORT = 18475
GYRE = serve.GYRE
ROOT = serve.ROOT


def gyre_json(project, *args):
    t = time.perf_counter()
    out = subprocess.run([GYRE, "--project", project, *args, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out), time.perf_counter() - t


def project(work):
    p = os.path.join(work, "p")
    subprocess.run([GYRE, "init", p], check=True, capture_output=True)
    gyre_json(p, "import", serve.ADULT, "--target", "income", "--split-column", "split")
    with open(os.path.join(p, "gyre.toml"), "a") as f:
        f.write(f'\n[learners.prior]\ncommand = "python3 {ROOT}/bench/learners/prior.py"\n')
        f.write(f'\n[learners.sklearn]\ncommand = "python3 {ROOT}/examples/learners/sklearn_hgb.py"\n')
    return p


def ms(x):
    return f"{1000 * x:.1f} ms"


def overhead(p, rounds):
    print("overhead around a command learner, Adult (medians of %d runs)" % rounds)
    rows = {}
    for name, args in [("gbdt", ["-p", "num_iterations=200", "-p", "learning_rate=0.05"]),
                       ("prior", ["--learner", "prior"]),
                       ("sklearn", ["--learner", "sklearn", "-p", "max_iter=100", "--seed", "3"])]:
        walls, cmd, inputs, outputs, train = [], [], [], [], []
        for _ in range(rounds):
            r, wall = gyre_json(p, "train", *args)
            t = r["timings"]
            walls.append(wall)
            train.append(t["train_s"])
            cmd.append(t.get("command_s", 0.0))
            inputs.append(t.get("inputs_s", 0.0))
            outputs.append(t.get("outputs_s", 0.0))
        med = statistics.median
        rows[name] = r["run"]
        if name == "gbdt":
            print(f"  gbdt:    wall {ms(med(walls))}, fit {ms(med(train))}, "
                  f"everything but the fit {ms(med([w - f for w, f in zip(walls, train)]))}")
        else:
            around = [w - c for w, c in zip(walls, cmd)]
            proto = [a + b for a, b in zip(inputs, outputs)]
            print(f"  {name:8} wall {ms(med(walls))}, the command {ms(med(cmd))}; gyre around it "
                  f"{ms(med(around))}, of which writing inputs {ms(med(inputs))} + reading and "
                  f"checking outputs {ms(med(outputs))} = {ms(med(proto))} "
                  f"({100 * med(proto) / med(cmd):.1f}% of the command's time)")
    return rows


def serving(p, runs, seconds):
    body = serve.write_bodies(os.path.dirname(p))
    print(f"serving one-row requests at saturation (wrk -t1 -c{serve.SAT_CONNS}, {seconds} s)")
    results = {}
    for name in ("gbdt", "sklearn"):
        proc = subprocess.Popen([GYRE, "--project", p, "serve", "--addr", f"127.0.0.1:{PORT}",
                                 "--run", runs[name]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            serve.wait_port(PORT, proc)
            serve.wrk(PORT, body, serve.SAT_CONNS, 0, 2)  # warm-up
            time.sleep(1.0)
            r = serve.wrk(PORT, body, serve.SAT_CONNS, 0, seconds)
        finally:
            proc.terminate()
            proc.wait()
        if r["non_2xx"]:
            raise SystemExit(f"{name} answered {r['non_2xx']} errors")
        results[name] = r
        print(f"  {name:8} {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
    print(f"  sklearn/ONNX at {results['sklearn']['rps'] / results['gbdt']['rps']:.2f}x gbdt's req/s")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    work = tempfile.mkdtemp(prefix="gyre-any-model-")
    try:
        p = project(work)
        runs = overhead(p, rounds)
        serving(p, runs, seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

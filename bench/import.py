"""Benchmark: `gyre import` as a process vs pandas read_csv + to_parquet, side by side.

Usage: bench/import.sh  (builds the release binary and the venv first)
Prints the median wall time and peak memory (max RSS) over several runs of each.
"""
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GYRE = os.path.join(ROOT, "target", "release", "gyre")
PY = os.path.join(HERE, ".venv", "bin", "python")
RUNS = int(os.environ.get("RUNS", "5"))


def timed(cmd, cwd):
    """Wall seconds and peak RSS (MiB) of one process, via GNU time."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M"] + cmd,
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
    )
    wall, rss = out.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def bench(name, path, gyre_args):
    g, p = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([GYRE, "init", d], check=True, stdout=subprocess.DEVNULL)
            g.append(timed([GYRE, "import", path] + gyre_args + ["--json"], d))
            p.append(timed([PY, os.path.join(HERE, "pandas_import.py"), path, os.path.join(d, "o.parquet")], d))
    for who, xs in (("gyre import", g), ("pandas read_csv+to_parquet", p)):
        print(f"{name:10} {who:28} median {statistics.median(x[0] for x in xs):6.2f} s"
              f"  peak {statistics.median(x[1] for x in xs):7.0f} MiB  (runs: {', '.join(f'{x[0]:.2f}' for x in xs)})")
    ratio = statistics.median(x[0] for x in p) / statistics.median(x[0] for x in g)
    print(f"{name:10} pandas/gyre time ratio: {ratio:.1f}x")


if __name__ == "__main__":
    adult = os.path.join(ROOT, "data", "adult", "adult.csv.gz")
    bench("adult", adult, ["--target", "income", "--split-column", "split"])
    flights = os.path.join(ROOT, "..", "shared", "data", "flights3m", "flights-3m.csv.gz")
    if len(sys.argv) > 1:
        flights = sys.argv[1]
    if os.path.exists(flights):
        bench("flights3m", flights, ["--target", "delay", "--time-column", "date"])
    else:
        print(f"skipping flights3m: {flights} not found (pass its path as the first argument)")

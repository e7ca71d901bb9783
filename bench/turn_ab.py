"""Two gyre builds side by side on one turn of the loop (bench/loop.py's gyre side, Adult).

Usage: python3 bench/turn_ab.py OLD_GYRE NEW_GYRE [rounds]   (default 6 rounds)

For measuring a change against the build before it on a noisy machine: each round sets up a
fresh project per build (init, import, train 200 trees, promote; not timed), then times the
turn as separate processes (edit exclude + edit relabel 50 rows, train, slices, diff), the
builds alternating and swapping order every round. Prints each round and the medians: the turn,
`train_s` (the fit inside `gyre train`), the rest of the turn (overhead), its ratio to `train_s`
(bench/loop.py's "outside training"), each stage, and the in-process timings each build's
`--json` reports for `train` and `diff`.
"""
import csv
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
if len(sys.argv) < 3:
    raise SystemExit(__doc__)
bins = sys.argv[1:3]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
adult = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'adult', 'adult.csv.gz')
r = csv.DictReader(gzip.open(adult, 'rt'))
ids = [i for i, x in enumerate(r) if x['split'] == 'train' and x['income'] == '<=50K' and x['age'] != '?' and int(x['age']) >= 18][:50]
train = ["train", "-p", "num_iterations=200", "-p", "learning_rate=0.05", "--json"]
res = {b: [] for b in bins}
def run(cmd):
    t = time.perf_counter(); out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out
for i in range(rounds):
    for b in (bins if i % 2 == 0 else bins[::-1]):
        d = tempfile.mkdtemp()
        g = [b, '--project', d]
        subprocess.run([b, 'init', d], check=True, capture_output=True)
        subprocess.run(g + ['import', adult, '--target', 'income', '--split-column', 'split'], check=True, capture_output=True)
        subprocess.run(g + train, check=True, capture_output=True)
        subprocess.run(g + ['promote', 'latest', '--why', 'b', '--force'], check=True, capture_output=True)
        st = {}
        st['edit'] = run(g + ['edit', 'exclude', '--where', 'age < 18', '--why', 'm'])[0] + run(g + ['edit', 'relabel', '--rows', ','.join(map(str, ids)), '--to', '>50K', '--why', 'c'])[0]
        st['train'], out = run(g + train)
        tt = json.loads(out)['timings']
        tr = tt['train_s']
        st['slices'] = run(g + ['slices', 'latest', '--k', '10', '--json'])[0]
        st['diff'], out = run(g + ['diff', 'champion', 'latest', '--json'])
        dt = json.loads(out)['timings']
        # In-process timings of both builds' --json (those a build does not report are left out).
        inner = {f"train.{k}": v for k, v in tt.items() if k != 'train_s'}
        inner.update({f"diff.{k}": v for k, v in dt.items()})
        total = sum(st.values())
        res[b].append((total, tr, st, inner))
        shutil.rmtree(d)
        print(f"round {i+1} {b}: total {total:.3f} train_s {tr:.3f} overhead {(total-tr)*1000:.0f} ms ({(total-tr)/tr:.2f}x) " + ' '.join(f"{k} {v*1000:.0f}" for k, v in st.items()), flush=True)
med = statistics.median
for b in bins:
    t = res[b]
    print(f"{b}: total {med(x[0] for x in t):.3f} s, train_s {med(x[1] for x in t):.3f} s, overhead {med((x[0]-x[1]) for x in t)*1000:.0f} ms, ratio {med((x[0]-x[1])/x[1] for x in t):.2f}x; " + ', '.join(f"{k} {med(x[2][k] for x in t)*1000:.0f} ms" for k in t[0][2]))
    print("  in-process: " + ', '.join(f"{k} {med(x[3][k] for x in t)*1000:.1f} ms" for k in sorted(t[0][3])))

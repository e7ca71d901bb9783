"""CPU time per request, of the server and of wrk, at saturation: where a build's throughput goes.

Usage: python3 bench/serve_cpu.py SERVER...   (each a gyre binary, or `floor` for the HTTP floor)

bench/serve.py's project, model and request bodies (the first 2,000 Adult holdout rows in
turn). Each server in the order given: start it, warm it up for 2 s, then one `wrk -t1 -c64`
run of 5 s, reading the server's CPU time (all its threads, from /proc) and wrk's (from
getrusage of the finished child) before and after. On two cores shared by the server and wrk,
throughput is about 2 cores divided by the sum of the two per-request figures, so the server's
figure minus the floor's is what the model, the log and the bookkeeping cost per request.
Repeat a server in the list to see the noise.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

PORT = 18476
SECONDS = 5


def cpu_s(pid):
    """User plus system CPU seconds of process `pid`, its exited threads included."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    work = tempfile.mkdtemp(prefix="gyre-serve-cpu-")
    try:
        project = serve.champion_project(work)
        body = serve.write_bodies(work)
        for name in sys.argv[1:]:
            if name == "floor":
                cmd = [serve.FLOOR, f"127.0.0.1:{PORT}"]
            else:
                cmd = [name, "--project", project, "serve", "--addr", f"127.0.0.1:{PORT}"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                serve.wait_port(PORT, proc)
                serve.wrk(PORT, body, serve.SAT_CONNS, 0, 2)  # warm-up
                server0, wrk0 = cpu_s(proc.pid), children_s()
                sat = serve.wrk(PORT, body, serve.SAT_CONNS, 0, SECONDS)
                server1, wrk1 = cpu_s(proc.pid), children_s()
            finally:
                proc.terminate()
                proc.wait()
            if sat["non_2xx"] or sat["socket_errors"]:
                raise SystemExit(f"{name} answered errors: {sat}")
            # About the requests answered: wrk's rate times the run's length (wrk's own count
            # differs by the requests in flight at the end, a few dozen of some 300,000).
            n = sat["rps"] * SECONDS
            print(f"{name}: {sat['rps']:.0f} req/s; CPU per request: server"
                  f" {(server1 - server0) / n * 1e6:.1f} us, wrk {(wrk1 - wrk0) / n * 1e6:.1f} us",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

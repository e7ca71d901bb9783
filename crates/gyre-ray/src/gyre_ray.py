"""gyre's wrapper on a Ray cluster: one Ray task per unit of work, each running `gyre worker`.

gyre (the driver, on the user's machine) submits this script as a Ray job through the Jobs REST
API, with the units in GYRE_UNITS (a JSON list) and the project in GYRE_PROJECT_TOML (the
gyre.toml of a project on the team store or a team server's clone) or GYRE_PROJECT_DIR (an
embedded project's directory, for a cluster on the same machine). A worker reads its unit's
inputs from the project's store and writes its result there; nothing goes through Ray's object
store but each task's short report.

A gyre worker killed mid-unit (its process ended by a signal) is started again, up to
GYRE_ATTEMPTS times: units are idempotent, named by their inputs. Ray retries a task whose Ray
worker died (max_retries). A unit that fails for good (gyre exits with an error) fails the job:
its error goes to the last line of the job's logs, after GYRE-FAILED.
"""

import atexit
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import ray

UNITS = json.loads(os.environ["GYRE_UNITS"])
ATTEMPTS = int(os.environ.get("GYRE_ATTEMPTS", "3"))
HERE = os.path.dirname(os.path.abspath(__file__))


class UnitFailed(Exception):
    """A unit whose gyre worker exited with an error: retrying gives the same error."""


def gyre_binary():
    path = os.environ.get("GYRE_BIN") or os.path.join(HERE, "gyre")
    mode = os.stat(path).st_mode
    if not mode & stat.S_IXUSR:
        # A working_dir package loses the executable bit when Ray unpacks it.
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


_PROJECT = None


def project_dir():
    """The project as this worker opens it: the shared directory, or a directory of this Ray
    worker process holding gyre.toml (its object cache stays warm for the next unit the process
    runs, and goes when the process ends)."""
    global _PROJECT
    shared = os.environ.get("GYRE_PROJECT_DIR")
    if shared:
        return shared
    if _PROJECT is None:
        d = tempfile.mkdtemp(prefix="gyre-worker-")
        os.mkdir(os.path.join(d, ".gyre"))
        with open(os.path.join(d, "gyre.toml"), "w") as f:
            f.write(os.environ["GYRE_PROJECT_TOML"])
        atexit.register(shutil.rmtree, d, True)
        _PROJECT = d
    return _PROJECT


@ray.remote(num_cpus=1, max_retries=2)
def run_unit(unit):
    gyre = gyre_binary()
    project = project_dir()
    started = time.time()
    attempts = []
    for attempt in range(1, ATTEMPTS + 1):
        p = subprocess.run(
            [gyre, "--project", project, "--json", "worker", json.dumps(unit, separators=(",", ":"))],
            capture_output=True,
            text=True,
        )
        if p.returncode == 0:
            return {
                "unit": unit,
                "attempts": attempt,
                "killed": attempts,
                "seconds": time.time() - started,
                "report": json.loads(p.stdout or "null"),
            }
        if p.returncode < 0:
            # Killed by a signal (the OOM killer, a preempted node, an operator): start again.
            attempts.append(-p.returncode)
            print(
                "GYRE-RETRY " + json.dumps({"unit": unit, "signal": -p.returncode, "attempt": attempt}),
                flush=True,
            )
            continue
        raise UnitFailed(json.dumps({"unit": unit, "status": p.returncode, "stderr": p.stderr[-4000:]}))
    raise UnitFailed(
        json.dumps({"unit": unit, "status": None, "stderr": f"killed {len(attempts)} times (signals {attempts})"})
    )


def main():
    ray.init()
    pending = {run_unit.remote(u): u for u in UNITS}
    done = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            unit = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - every failure ends the job with its words
                cause = e.cause if hasattr(e, "cause") and e.cause is not None else e
                text = str(cause)
                try:
                    failure = json.loads(text.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    failure = {"unit": unit, "status": None, "stderr": text[-4000:]}
                for other in pending:
                    ray.cancel(other, force=True)
                print("GYRE-FAILED " + json.dumps(failure), flush=True)
                sys.exit(1)
            done.append(result)
            print("GYRE-DONE " + json.dumps({"unit": unit, "attempts": result["attempts"]}), flush=True)
    retries = sum(r["attempts"] - 1 for r in done)
    print("GYRE-SUMMARY " + json.dumps({"units": len(done), "retries": retries}), flush=True)


if __name__ == "__main__":
    main()

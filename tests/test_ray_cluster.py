"""`--replicas` joining an existing Ray cluster through RAY_ADDRESS (the multi-node path).

A local head started with `ray start --head` on 127.0.0.1 stands in for a cluster: the harness
must join it (not start its own), place its replicas there and write one engine's records.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import assert_same_records, read_records

from evalharness.engines.served import free_port

CORES = len(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rayt")  # short: Ray's socket paths must fit 107 bytes
    # Ray 2.60 clusters use token authentication: a token of the test's own, so that nothing
    # depends on (or writes) ~/.ray/auth_token; the driver gets the same two variables
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    ray_bin = Path(sys.executable).with_name("ray")
    log = open(tmp_path_factory.mktemp("ray") / "head.log", "w")  # noqa: SIM115
    # --block keeps `ray start` in the foreground, so its process group is the cluster:
    # stopping it stops every Ray process it started and nothing else on the machine
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--num-cpus", str(max(CORES, 2)), "--include-dashboard", "false",
         "--disable-usage-stats", "--temp-dir", temp],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **auth})
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, f"ray start exited; see {log.name}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    yield f"127.0.0.1:{port}", auth, Path(temp)
    # SIGTERM makes the head drain for up to 30 s; the test's cluster has nothing to drain
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    log.close()
    shutil.rmtree(temp, ignore_errors=True)


def _eval(results, model):
    from evalharness.runner import EvalOptions, run_eval

    opts = EvalOptions(models=model.name, task="add_sweep", budgets=(4, 16, 64), limit=16,
                       engine="hf", results=results, progress=False,
                       engine_options={"dtype": "float32"})
    return run_eval(opts, log=lambda *_: None)[0]


def test_two_replicas_on_a_joined_ray_cluster_write_one_engines_records(
        ray_head, largest, tmp_path):
    address, auth, temp = ray_head
    one = _eval(tmp_path / "one", largest)
    # the CLI in its own process, as a user runs it: Ray reads RAY_AUTH_MODE once per process
    env = {**os.environ, "RAY_ADDRESS": address, **auth}
    res = subprocess.run(
        [sys.executable, "-m", "evalharness.cli", "eval", "--model", largest.name, "--task",
         "add_sweep", "--budgets", "4,16,64", "--limit", "16", "--engine", "hf", "--dtype",
         "float32", "--replicas", "2", "--results", str(tmp_path / "two"), "--no-score",
         "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (two,) = list((tmp_path / "two" / "runs").iterdir())
    assert one.dir.name == two.name  # replicas do not change the run id
    # its two replicas ran on the cluster we started (their worker logs are in its session),
    # not on a local Ray of its own
    workers = list(temp.glob("session_*/logs/python-core-worker-*.log"))
    assert len(workers) >= 2, sorted(p.name for p in temp.glob("session_*/logs/*"))
    a, b = read_records(one.dir), read_records(two)
    assert len(a) == 16 * 3
    assert_same_records(a, b, tol=1e-4)
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["replicas"] == 2 and manifest["status"] == "complete"

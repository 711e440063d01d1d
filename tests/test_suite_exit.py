"""The test session always ends: a thread that would hold the interpreter's exit is reported
(every thread's stack) and the process exits with the session's own status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

HOLDS_EXIT = """
import threading, time

def test_leaves_a_thread_that_never_ends():
    threading.Thread(target=time.sleep, args=(600,), name="holder").start()
    assert {outcome}
"""


@pytest.mark.parametrize("outcome,status", [("True", 0), ("False", 1)])
def test_a_session_held_at_exit_ends_with_its_own_status_and_the_stacks(
        tmp_path, outcome, status):
    (tmp_path / "test_holder.py").write_text(HOLDS_EXIT.format(outcome=outcome))
    env = {**os.environ, "PYTHONPATH": str(HERE), "EVALHARNESS_TEST_EXIT_GRACE": "3"}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "exit_guard", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_holder.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == status, res.stdout[-2000:] + res.stderr[-2000:]
    assert "has not exited 3 s after the session ended" in res.stderr
    assert "in _shutdown" in res.stderr  # the main thread, waiting to join the holder


def test_a_session_that_exits_cleanly_prints_nothing_extra(tmp_path):
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    env = {**os.environ, "PYTHONPATH": str(HERE), "EVALHARNESS_TEST_EXIT_GRACE": "3"}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "exit_guard", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_ok.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "exit guard" not in res.stderr

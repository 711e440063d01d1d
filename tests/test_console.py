"""The command line is quiet by default: our lines and the summary table, not the engines'."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.vllm
def test_a_vllm_run_prints_our_lines_only_and_the_table_last(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("VLLM_LOGGING_LEVEL", "TRANSFORMERS_VERBOSITY", "TORCH_CPP_LOG_LEVEL")}
    res = subprocess.run(
        [sys.executable, "-m", "evalharness.cli", "eval", "--model", "zoo/arith-h8-s0",
         "--task", "add5", "--budgets", "16", "--limit", "3", "--engine", "vllm",
         "--results", str(tmp_path), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    for noise in ("nanobind", "leaked", " INFO ", " WARNING ", "FutureWarning", "NUMA"):
        assert noise not in out, (noise, out[-3000:])
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) < 15, res.stdout
    assert lines[0].startswith("run: ")
    assert "complete" in lines[-2] and "add5" in lines[-2]  # the table's row, then its border


def test_verbose_flags_raise_the_engines_log_levels_and_the_environment_wins():
    code = ("import os, sys; from evalharness.console import set_verbosity; "
            "set_verbosity(int(sys.argv[1])); "
            "print(os.environ['VLLM_LOGGING_LEVEL'], os.environ['TRANSFORMERS_VERBOSITY'])")
    env = {k: v for k, v in os.environ.items()
           if k not in ("VLLM_LOGGING_LEVEL", "TRANSFORMERS_VERBOSITY")}

    def levels(v: int, **extra: str) -> str:
        return subprocess.run([sys.executable, "-c", code, str(v)], env={**env, **extra},
                              capture_output=True, text=True, check=True).stdout.split()

    assert levels(0) == ["ERROR", "error"]
    assert levels(1) == ["WARNING", "warning"]
    assert levels(2) == ["INFO", "info"]
    assert levels(0, VLLM_LOGGING_LEVEL="DEBUG")[0] == "DEBUG"


def test_minus_v_reaches_the_command_line():
    res = subprocess.run([sys.executable, "-m", "evalharness.cli", "-vv", "zoo", "list"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr

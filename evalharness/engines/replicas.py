"""Data-parallel engine replicas on Ray: N copies of one engine share every call.

Each replica is a Ray actor that builds an ordinary engine (`load_engine`) from plain settings
and owns it. `ReplicatedEngine` speaks the same `Engine` protocol as the engine it copies: a
`generate`/`score` call is split into one shard per replica (balanced by token work), the shards
run at the same time, and the results come back in request order. The driver stays the only
writer of the run store, so resume, dedup and locking are unchanged.

Every row already carries its own seed (per-row generators in transformers, per-request seeds
in vLLM), so which replica runs a request does not change its result.

Resources: on a CUDA machine each replica takes `tensor_parallel_size` GPUs; on CPUs the
process's cores are split into one contiguous group per replica (torch threads for the
transformers engine, `VLLM_CPU_OMP_THREADS_BIND` for vLLM). `RAY_ADDRESS` joins an existing
cluster instead of starting a local one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

from evalharness.engines.base import EngineError, cuda_available
from evalharness.types import Completion, GenRequest, ScoreResult

# Settings a replica needs in its own process (a joined cluster does not share our shell).
_ENV_PREFIXES = ("HF_", "VLLM_", "TRANSFORMERS_", "TOKENIZERS_", "EVALHARNESS_")


class _Replica:
    """One replica: a Ray actor process that holds one engine at a time."""

    def __init__(self, cores: list[int]) -> None:
        if cores:
            import torch

            torch.set_num_threads(len(cores))
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cores))
        self.engine: Any = None

    def load(self, kind: str, model: str, options: dict[str, Any]) -> tuple:
        from evalharness.engines import load_engine

        self.close()
        self.engine = e = load_engine(kind, model, **options)
        return e.name, e.version, e.tokenizer, e.max_model_len, e.settings

    def generate(self, requests: list[GenRequest]) -> list[list[Completion]]:
        return self.engine.generate(requests)

    def score(self, pairs: list[tuple[list[int], list[int]]]) -> list[ScoreResult]:
        return self.engine.score(pairs)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


# Actor processes outlive one model: the next model of a multi-model run loads into the same
# replicas instead of paying process start-up and imports again (keyed by placement).
_ACTORS: dict[tuple, list[Any]] = {}


def core_groups(cores: Sequence[int], replicas: int) -> list[list[int]]:
    """Split the cores into `replicas` contiguous groups as even as possible."""
    cores = sorted(cores)
    if replicas > len(cores):
        raise EngineError(f"{replicas} replicas on {len(cores)} CPU cores: use at most "
                          f"{len(cores)} (each replica needs a core of its own)")
    size, extra = divmod(len(cores), replicas)
    groups, start = [], 0
    for r in range(replicas):
        end = start + size + (r < extra)
        groups.append(list(cores[start:end]))
        start = end
    return groups


def shard(costs: Sequence[int], replicas: int) -> list[list[int]]:
    """Contiguous index ranges of about equal total cost, one per replica.

    Contiguous, not interleaved: the sweep lists requests problem by problem in every phase
    (traces, then answers after each budget's cut, then scores), so one problem's requests
    mostly land on the same replica each time, where vLLM's prefix cache already holds them.
    """
    total = sum(costs) or 1
    parts: list[list[int]] = [[] for _ in range(replicas)]
    done = 0
    for k, c in enumerate(costs):
        # an item goes where the middle of its cost falls on the cumulative scale
        parts[min(replicas - 1, int((done + c / 2) * replicas / total))].append(k)
        done += c
    return parts


class ReplicatedEngine:
    """`replicas` copies of the `kind` engine for `model`, each in its own Ray actor."""

    def __init__(self, kind: str, model: str, replicas: int, **options: Any) -> None:
        from evalharness.engines import check_options, resolve_engine_kind

        if replicas < 2:
            raise EngineError("ReplicatedEngine needs replicas >= 2; use load_engine for one")
        kind = resolve_engine_kind(kind)
        check_options(kind, options)  # before starting any process
        try:
            import ray
        except ImportError as e:
            raise EngineError("--replicas needs Ray: `make install` or `pip install ray`") from e
        self.replicas = replicas
        gpus = int(options.get("tensor_parallel_size", 1)) if cuda_available() else 0
        joined = bool(os.environ.get("RAY_ADDRESS"))
        # Pin CPU replicas to this machine's cores; GPUs and a joined cluster: Ray places them.
        groups: list[list[int]] = [[] for _ in range(replicas)] if gpus or joined else (
            core_groups(sorted(os.sched_getaffinity(0)), replicas))
        env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
        if not ray.is_initialized():
            _ACTORS.clear()  # handles from an earlier, shut-down Ray session are dead
            # A local cluster sized to this process's cores, quiet; RAY_ADDRESS joins one instead.
            # address="local" always starts a new one: without it ray.init() first looks for a
            # running cluster through /tmp/ray/ray_current_cluster, and a stale file (a cluster
            # stopped without cleaning up) made it try to join that one and fail
            local = {} if joined else {
                "address": "local", "num_cpus": sum(map(len, groups)) or None,
                "include_dashboard": False}
            try:
                ray.init(log_to_driver=False, runtime_env={"env_vars": env}, **local)
            except ConnectionError as e:
                # Ray >= 2.5x clusters require a token by default; a driver without
                # RAY_AUTH_MODE=token is refused with nothing but "failed to connect"
                raise EngineError(
                    f"could not join the Ray cluster at RAY_ADDRESS={os.environ['RAY_ADDRESS']} "
                    f"({_line(e)}): check the address, and for a cluster with token "
                    "authentication set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or "
                    "~/.ray/auth_token)") from None
            if not joined:
                _clean_up_with_this_process()
        key = (tuple(map(tuple, groups)), gpus)
        if key not in _ACTORS:
            actor = ray.remote(_Replica)
            _ACTORS[key] = [actor.options(num_cpus=len(g) or 1, num_gpus=gpus).remote(g)
                            for g in groups]
        self.actors = _ACTORS[key]
        try:
            infos = ray.get([a.load.remote(kind, model, options) for a in self.actors])
        except ray.exceptions.RayActorError as e:
            _ACTORS.pop(key, None)
            raise EngineError(f"a replica process died while loading {model}: {e}") from None
        except ray.exceptions.RayTaskError as e:
            self.close()
            why = str(e.cause) if isinstance(e.cause, EngineError) else repr(e.cause)
            raise EngineError(f"a replica failed to load {model}: {why}") from None
        self.name, self.version, self.tokenizer, self.max_model_len, self.settings = infos[0]

    def _fan_out(self, method: str, items: Sequence[Any], costs: Sequence[int]) -> list[Any]:
        import ray

        parts = [p for p in shard(costs, self.replicas) if p]
        calls = [getattr(a, method).remote([items[k] for k in p])
                 for a, p in zip(self.actors, parts, strict=False)]
        out: list[Any] = [None] * len(items)
        for p, res in zip(parts, ray.get(calls), strict=True):
            for k, r in zip(p, res, strict=True):
                out[k] = r
        return out

    def generate(self, requests: Sequence[GenRequest]) -> list[list[Completion]]:
        return self._fan_out("generate", requests,
                             [r.n * (len(r.prompt_ids) + r.max_tokens) for r in requests])

    def score(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[ScoreResult]:
        return self._fan_out("score", pairs, [len(c) + len(t) for c, t in pairs])

    def close(self) -> None:
        """Release the model in every replica; the actor processes stay for the next model."""
        import ray

        actors, self.actors = getattr(self, "actors", []), []
        if not ray.is_initialized():  # shut down (a signal, atexit): nothing left to release
            _ACTORS.clear()
            return
        try:
            ray.get([a.close.remote() for a in actors], timeout=120)
        except Exception:  # noqa: BLE001 - a dead replica has nothing left to release
            for key, group in list(_ACTORS.items()):
                if group is actors:
                    _ACTORS.pop(key)
                    for a in group:
                        ray.kill(a)


def _line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


# -- clean-up: no Ray process outlives the driver ----------------------------------------------
# A local Ray started by ray.init fate-shares its GCS and raylet with the driver (the kernel
# kills them with it), and the actors exit once their raylet is gone; but its dashboard and
# runtime-env agents first try to report the raylet's death to the dead GCS and linger for a
# minute or more, and a SIGTERM'd driver never runs Ray's atexit shutdown. So: signal handlers
# that shut Ray down, and a watchdog process that kills what is left when the driver dies.
_WATCHDOG = """
import sys, time
import psutil
try:
    driver = psutil.Process(int(sys.argv[1]))
except psutil.Error:
    sys.exit(0)
me, seen = psutil.Process(), {}
def alive():
    try:
        return driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
while alive():
    try:  # remember every descendant (Process objects know their start time: no pid reuse)
        for p in driver.children(recursive=True):
            if p.pid != me.pid:
                seen.setdefault(p.pid, p)
    except psutil.Error:
        pass
    time.sleep(0.5)
for p in seen.values():
    try:
        if p.is_running():
            p.kill()
    except psutil.Error:
        pass
"""
_CLEANUP_INSTALLED = False


def _clean_up_with_this_process() -> None:
    """Once per driver process: signal handlers that shut Ray down, and the watchdog."""
    global _CLEANUP_INSTALLED
    if _CLEANUP_INSTALLED:
        return
    _CLEANUP_INSTALLED = True
    # Its own session, so a Ctrl-C to the terminal's process group does not stop it first.
    subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid())],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; the watchdog remains
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if previous is signal.SIG_IGN:
            continue
        signal.signal(sig, _shutdown_then(previous))


def _shutdown_then(previous: Any) -> Any:
    def handler(signum: int, frame: Any) -> None:
        import ray

        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001 - the signal's own effect must still happen
            pass
        _ACTORS.clear()
        if callable(previous):  # e.g. Python's SIGINT handler: KeyboardInterrupt as before
            previous(signum, frame)
        else:  # the default action (SIGTERM: exit), as if we had never been here
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler

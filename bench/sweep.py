"""One-pass budget sweep vs. one generation per budget, measured side by side in one run.

    .venv/bin/python bench/sweep.py [--engine hf|vllm] [--model zoo/arith-h128-s0] [--limit 305]

Prints wall time of both ways over the same problems and budgets, and their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from evalharness.engines import load_engine
from evalharness.formats import FORMATS
from evalharness.sweep import SweepConfig, Sweeper
from evalharness.tasks import load_task
from evalharness.zoo import resolve_models


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="hf")
    ap.add_argument("--model", default="zoo/arith-h128-s0")
    ap.add_argument("--task", default="add_sweep")
    ap.add_argument("--limit", type=int, default=305)
    ap.add_argument("--budgets", default="0,8,16,32,64,128")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    ref = resolve_models(args.model)[0]
    opts = {"dtype": "float32", "max_model_len": 512} if args.engine == "vllm" else {}
    engine = load_engine(args.engine, ref.path, **opts)
    task = load_task(args.task, limit=args.limit)
    probs = list(task.problems)
    prompts = [engine.tokenizer.encode(p.prompt + "<think>") for p in probs]
    cfg = SweepConfig(tuple(int(b) for b in args.budgets.split(",")))
    meta = {"run_id": "bench", "model": ref.name, "task": task.name}

    def timed(c: SweepConfig) -> float:
        t0 = time.perf_counter()
        for _ in Sweeper(engine, FORMATS["zoo"], c).run(probs, prompts, meta):
            pass
        return time.perf_counter() - t0

    timed(dataclasses.replace(cfg, budgets=(8,)))  # warm-up (vLLM's first call compiles)
    one, ind = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        one.append(timed(cfg))
        ind.append(timed(dataclasses.replace(cfg, sweep="independent")))
    o, i = min(one), min(ind)
    print(f"engine={engine.name} model={ref.name} problems={len(probs)} budgets={cfg.budgets}")
    print(f"one-pass sweep : {o:7.2f} s")
    print(f"independent    : {i:7.2f} s")
    print(f"speed-up       : {i / o:7.2f}x  (independent / one-pass)")
    engine.close()


if __name__ == "__main__":
    main()

"""Plots: every figure function on analysis output of a small, realistic fake results folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evalharness.types import SampleRecord

# Three sizes of a tiny model family, params as the zoo reports them.
FAKE_MODELS = {"arith-h16": 21_000, "arith-h48": 120_000, "arith-h128": 700_000}
FAKE_BUDGETS = [0, 4, 8, 16, 32, 64, 128]
FAKE_TASK = "add_sweep"


def _per_token_hit(params: int, budget: int, needed: int) -> float:
    """Per-token chance of emitting the right answer token: grows smoothly with size and with
    the share of the needed thinking that the budget allows."""
    skill = 1 / (1 + math.exp(-2.0 * (math.log10(params) - 4.7)))  # 0.32 .. 0.91
    done = min(1.0, budget / needed)
    return 0.1 + 0.9 * skill * (0.3 + 0.7 * done)


def write_fake_results(
    root: Path,
    *,
    problems: int = 24,
    seed: int = 0,
    models: dict[str, int] | None = None,
    sampled_n: int = 6,
) -> Path:
    """Write ``root/runs/<run_id>/{manifest.json,samples.jsonl}``: for each model a greedy budget
    sweep (n=1) and a sampled run (n=`sampled_n`, two budgets). Returns ``root``."""
    rng = np.random.default_rng(seed)
    models = FAKE_MODELS if models is None else models
    probs = []
    for i in range(problems):
        d = 1 + i % 6
        a, b = int(rng.integers(10 ** (d - 1), 10**d)), int(rng.integers(10 ** (d - 1), 10**d))
        probs.append((f"add-{a}+{b}", f"{a}+{b}=", str(a + b), 9 * d))
    runs = []
    for model, params in models.items():
        runs.append((model, params, f"{model}-greedy", FAKE_BUDGETS, 1, 0.0))
        if sampled_n > 1:
            runs.append((model, params, f"{model}-n{sampled_n}", [16, 128], sampled_n, 0.8))
    for model, params, run_id, budgets, n, temp in runs:
        run_dir = root / "runs" / run_id
        run_dir.mkdir(parents=True)
        sweep = {
            "budgets": budgets,
            "n": n,
            "temperature": temp,
            "top_p": 1.0,
            "seed": 0,
            "mode": "truncate",
            "max_extensions": 0,
            "max_answer_tokens": 16,
            "sweep": "one-pass",
        }
        manifest = {
            "run_id": run_id,
            "model": model,
            "model_path": f"/zoo/{model}",
            "params": params,
            "family": "arith",
            "task": FAKE_TASK,
            "answer_type": "integer",
            "n_problems": len(probs),
            "settings": {"model": model, "task": FAKE_TASK, "sweep": sweep, "engine": "hf"},
            "engine": "hf",
            "engine_version": "4.57.0",
            "git_commit": "0" * 40,
            "started": "2026-11-23T14:00:00Z",
            "finished": "2026-11-23T14:01:00Z",
            "status": "complete",
        }
        (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
        with open(run_dir / "samples.jsonl", "w") as f:
            for pid, prompt, ref, needed in probs:
                for s in range(n):
                    natural = needed + int(rng.integers(0, 3))
                    thinking_full = "1+2+0=03;" * (natural // 9 + 1)
                    for t in budgets:
                        used = min(t, natural)
                        h = _per_token_hit(params, t, needed)
                        hits = [bool(x) for x in rng.random(len(ref)) < h]
                        lps = [
                            float(np.log(h) + rng.normal(0, 0.1))
                            if hit
                            else float(np.log(1 - h) - 1.0 + rng.normal(0, 0.3))
                            for hit in hits
                        ]
                        answer = (
                            ref
                            if all(hits)
                            else "".join(
                                c if hit else str((int(c) + 1) % 10) for c, hit in zip(ref, hits, strict=True)
                            )
                        )
                        if pid.endswith("1") and s == 0 and t == budgets[-1]:
                            answer = answer + " <script>alert('x')</script>"
                        rec = SampleRecord(
                            run_id=run_id,
                            model=model,
                            task=FAKE_TASK,
                            problem_id=pid,
                            sample=s,
                            seed=1000 * s + 7,
                            budget=t,
                            extensions=0,
                            thinking_tokens=used,
                            natural_thinking_tokens=natural,
                            cut=t < natural,
                            thinking=thinking_full[:used],
                            answer=answer,
                            answer_ids=[int(c) + 3 for c in answer if c.isdigit()],
                            answer_logprobs=[-0.1] * len(ref),
                            reference=ref,
                            ref_ids=[int(c) + 3 for c in ref],
                            ref_logprobs=lps,
                            ref_hits=hits,
                            prompt_tokens=len(prompt),
                            generated_tokens=used + 2 + len(ref),
                            finish_reason="stop",
                            time_s=0.01,
                        )
                        f.write(json.dumps(rec.to_json()) + "\n")
    return root


@pytest.fixture(scope="module")
def fake_results(tmp_path_factory) -> Path:
    return write_fake_results(tmp_path_factory.mktemp("results"))

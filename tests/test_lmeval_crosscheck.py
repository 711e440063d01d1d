"""Log-likelihood cross-check: our `score` (both engines) equals lm-eval's HF backend.

lm-eval's `loglikelihood` takes (context, continuation) *strings* and tokenizes them itself
(`TemplateLM._encode_pair`: trailing whitespace of the context moves to the continuation, the
whole string is encoded and split at the context's length; an empty context becomes the prefix
token, BOS or else EOS). We build our token pairs the same way, check that they are exactly the
tokens lm-eval scores, and compare sum(log p) within 1e-4 and is_greedy with all(hits).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ADD5 = [json.loads(x) for x in
        (Path(__file__).resolve().parents[1] / "tasks/data/add5.jsonl").read_text().splitlines()]
TOL = 1e-4


def string_pairs() -> list[tuple[str, str]]:
    """Varied (context, continuation) pairs: in-distribution traces and odd spacing/specials."""
    pairs = []
    for k, r in enumerate(ADD5[:16]):
        head = r["prompt"] + "<think>"
        think, ans = r["thinking"], r["answer"]
        cut = (k * 7) % (len(think) + 1)  # cut the scratchpad at various points
        if k % 4 == 0:  # the whole answer after the scratchpad, ending in <eos>
            pairs.append((head + think + "</think>", ans + "<eos>"))
        elif k % 4 == 1:  # the rest of the scratchpad and the answer
            pairs.append((head + think[:cut], think[cut:] + "</think>" + ans))
        elif k % 4 == 2:  # a wrong answer (low log-prob, not greedy)
            pairs.append((head + think + "</think>", str(int(ans) + 1)))
        else:  # the scratchpad's next step only (likely greedy)
            pairs.append((head + think[:cut], think[cut : cut + 9]))
    pairs += [
        ("12345+54321=", "<think>"),  # one token
        ("Question: what is 2+2? Answer: ", "4"),  # trailing space moves to the continuation
        ("Question: what is 2+2?\n\n", "Answer: 4"),  # trailing newlines move too
        ("Janet's ducks lay 16 eggs per day.", " She eats three for breakfast."),
        ("The final answer is", " \\boxed{18}."),
        ("", "12+34=<think>"),  # empty context: lm-eval conditions on the prefix token (EOS)
        ("a", "b c\td"),
        ("99999+1=<think>9+1+0=10;", "9+0+1=10;9+0+1=10;9+0+1=10;9+0+1=10;</think>100000<eos>"),
    ]
    return pairs


PAIRS = string_pairs()


def encode_pair(tok, context: str, continuation: str, prefix_id: int) -> tuple[list[int], list[int]]:
    """Token ids exactly as lm-eval 0.4's HFLM.loglikelihood builds them for a causal model."""
    if context == "":
        cont = tok.encode(continuation, add_special_tokens=False)
        return ([prefix_id], cont) if cont[0] != prefix_id else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tok.encode(context + continuation)
    ctx = tok.encode(context)
    return ctx, whole[len(ctx) :]


@pytest.fixture(scope="module")
def lmeval_hf(largest):
    pytest.importorskip("accelerate", reason="lm-eval's HF backend needs accelerate (lm-eval[hf])")
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=largest.path, backend="causal", device="cpu", dtype="float32",
                batch_size=16)


@pytest.fixture(scope="module")
def lmeval_results(lmeval_hf):
    from lm_eval.api.instance import Instance

    reqs = [Instance("loglikelihood", {}, (c, x), k) for k, (c, x) in enumerate(PAIRS)]
    out = lmeval_hf.loglikelihood(reqs, disable_tqdm=True)
    assert len(out) == len(PAIRS)
    return [(float(lp), bool(g)) for lp, g in out]


@pytest.fixture(scope="module")
def token_pairs(lmeval_hf):
    tok = lmeval_hf.tokenizer
    ours = [encode_pair(tok, c, x, lmeval_hf.prefix_token_id) for c, x in PAIRS]
    # the same tokens lm-eval scores (its own encoder, for the non-empty contexts)
    for (c, x), (ctx, cont) in zip(PAIRS, ours, strict=True):
        assert cont, (c, x)
        if c:
            want = lmeval_hf._encode_pair(c, x)
            assert (ctx, cont) == (list(want[0]), list(want[1])), (c, x)
    return ours


def test_pairs_are_varied_enough(lmeval_results):
    assert len(PAIRS) >= 20
    greedy = [g for _, g in lmeval_results]
    assert any(greedy) and not all(greedy)  # both outcomes of is_greedy are exercised
    assert len({round(lp, 3) for lp, _ in lmeval_results}) > 15


def check(engine, token_pairs, lmeval_results):
    got = engine.score(token_pairs)
    assert len(got) == len(token_pairs)
    bad = []
    for k, (res, (lp, greedy), (_, cont)) in enumerate(
        zip(got, lmeval_results, token_pairs, strict=True)
    ):
        assert len(res.logprobs) == len(cont) == len(res.hits), PAIRS[k]
        ours = sum(res.logprobs)
        if abs(ours - lp) > TOL or all(res.hits) != greedy:
            bad.append((PAIRS[k], ours, lp, all(res.hits), greedy))
    assert not bad, f"{len(bad)} of {len(PAIRS)} pairs differ from lm-eval: {bad[:5]}"


def test_hf_engine_score_equals_lmeval_loglikelihood(hf_largest, token_pairs, lmeval_results):
    check(hf_largest, token_pairs, lmeval_results)


def test_hf_engine_score_is_batch_independent(hf_largest, token_pairs, lmeval_results):
    # one pair at a time (no padding) gives the same numbers as the padded batch
    for k in (0, 5, 17, len(token_pairs) - 1):
        (res,) = hf_largest.score([token_pairs[k]])
        assert sum(res.logprobs) == pytest.approx(lmeval_results[k][0], abs=TOL)


@pytest.mark.vllm
def test_vllm_engine_score_equals_lmeval_loglikelihood(vllm_largest, token_pairs, lmeval_results):
    check(vllm_largest, token_pairs, lmeval_results)

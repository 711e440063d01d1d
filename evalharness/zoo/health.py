"""A checkpoint's health: where in the scratchpad a zoo model's teacher-forced predictions fail.

v2 showed that a failing zoo seed misses one specific copy lookup (an operand digit at one step,
or an answer digit copied from the first steps), never the arithmetic. Exact match hides which;
this check names it. For fresh sums of each digit count it teacher-forces the gold trace and
reports, per scratchpad step k and field, the share of problems whose greedy prediction of that
field is wrong: ``k3y`` = operand b's digit at step 3, ``k0c`` = carry in, ``k0s`` = the step's
two-digit sum, ``a0`` = the answer's units digit, ``end`` = ``</think>`` and ``<eos>``.
"""

from __future__ import annotations

import numpy as np
import torch

from evalharness import synth
from evalharness.zoo.tokenizer import END_THINK, THINK

DIGITS = tuple(range(3, 9))
PER_DIGITS = 100
SEED = 2024
# Field of each character of a 9-character step "x+y+c=ss;" (None: fixed punctuation).
STEP_FIELDS = ("x", None, "y", None, "c", None, "s", "s", None)
# A lookup that fails on more than this share of sums it should handle is a broken circuit.
FLAG_ERROR = 0.10
FLAG_MAX_DIGITS = 6


def fresh_sums(digits: int, n: int = PER_DIGITS, seed: int = SEED) -> list[synth.Arith]:
    return synth.heldout_set("add", [digits] * n, seed + digits)


def _labels(p: synth.Arith, tok) -> tuple[list[int], list[str | None]]:
    """Token ids of the whole gold trace, and the field each target position belongs to."""
    prompt = tok.encode(p.prompt + THINK)
    think = tok.encode(p.thinking)
    answer = tok.encode(p.answer)
    ids = prompt + think + [tok.convert_tokens_to_ids(END_THINK)] + answer + [tok.eos_token_id]
    fields: list[str | None] = [None] * len(prompt)
    fields += [None if STEP_FIELDS[i % 9] is None else f"k{i // 9}{STEP_FIELDS[i % 9]}"
               for i in range(len(think))]
    fields += ["end"]
    fields += [f"a{len(answer) - 1 - i}" for i in range(len(answer))]
    fields += ["end"]
    return ids, fields


@torch.no_grad()
def step_errors(model, tok, problems: list[synth.Arith]) -> dict[str, float]:
    """Share of `problems` whose greedy teacher-forced prediction is wrong, per field."""
    wrong: dict[str, int] = {}
    seen: dict[str, int] = {}
    for p in problems:
        ids, fields = _labels(p, tok)
        logits = model(input_ids=torch.tensor([ids])).logits[0]
        pred = logits[:-1].argmax(-1).tolist()
        bad: dict[str, bool] = {}
        for pos in range(1, len(ids)):
            f = fields[pos]
            if f is not None:
                bad[f] = bad.get(f, False) or pred[pos - 1] != ids[pos]
        for f, b in bad.items():
            seen[f] = seen.get(f, 0) + 1
            wrong[f] = wrong.get(f, 0) + int(b)
    return {f: wrong[f] / seen[f] for f in seen}


def health(model, tok, digits: tuple[int, ...] = DIGITS, n: int = PER_DIGITS) -> dict:
    """Per digit count: every field's error; the worst field; and whether the checkpoint is
    flagged (some field above `FLAG_ERROR` on sums of at most `FLAG_MAX_DIGITS` digits)."""
    model.eval()
    per = {str(d): step_errors(model, tok, fresh_sums(d, n)) for d in digits}
    worst = {d: max(errs.items(), key=lambda kv: kv[1]) for d, errs in per.items()}
    broken = sorted({f"{f}@{d}" for d, errs in per.items() if int(d) <= FLAG_MAX_DIGITS
                     for f, e in errs.items() if e > FLAG_ERROR})
    return {
        "problems_per_digits": n,
        "errors": {d: {f: round(e, 4) for f, e in errs.items()} for d, errs in per.items()},
        "worst": {d: {"field": f, "error": round(e, 4)} for d, (f, e) in worst.items()},
        "flagged": bool(broken),
        "broken": broken,
    }


@torch.no_grad()
def heldout_loss(model, tok, problems: list[synth.Arith]) -> float:
    """Mean teacher-forced log-loss per token of the gold thinking, `</think>`, answer and
    `<eos>` (the tokens training puts loss on) over a fixed set: the loss axis of scaling laws."""
    model.eval()
    total, count = 0.0, 0
    for p in problems:
        ids, fields = _labels(p, tok)
        prompt_len = len(tok.encode(p.prompt + THINK))
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
        target = torch.tensor(ids[1:])
        tok_logp = logp.gather(1, target[:, None])[:, 0][prompt_len - 1:]
        total -= float(tok_logp.sum())
        count += len(tok_logp)
    return total / count


def heldout_loss_set(n: int = 256, seed: int = SEED + 100) -> list[synth.Arith]:
    """A fixed mix of sums (1-8 digits) and products, never the training stream's sample."""
    rng = np.random.default_rng(seed)
    return [synth.sample(rng, "mul" if i % 7 == 0 else "add", 1 + i % synth.MAX_DIGITS)
            for i in range(n)]

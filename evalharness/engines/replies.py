"""Validation of a served model's replies, before anything in them becomes a record.

A server is something we do not control (a colleague's endpoint, a proxy, a quantised server):
an answer that is *wrong* rather than an error must not be written as a good record. Each check
returns what a record needs or raises `BadReply` saying what is wrong; the served engine retries
such replies and then makes an error record or stops. Pure functions: the property test
(tests/test_served_replies.py) drives them with randomly damaged replies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from evalharness.engines.base import strip_stop
from evalharness.types import Completion, GenRequest, ScoreResult

# Log-probs are <= 0; a server computing in low precision may round a near-certain token's
# log-prob a hair above 0, which is harmless. Anything further above 0 is not a log-probability.
LOGPROB_TOL = 1e-4


class BadReply(ValueError):
    """Why one reply cannot be used. `stop`: retried, but if it persists the run stops (a
    reply for another model: every request would fail the same way) instead of becoming an
    error record. `retry=False`: a well-formed answer that will not change when asked again
    (the start-up probe's "this server has no such field")."""

    def __init__(self, why: str, stop: bool = False, retry: bool = True) -> None:
        super().__init__(why)
        self.stop, self.retry = stop, retry


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _logprob(v: Any, what: str) -> float:
    """A log-prob from a reply, or BadReply: a number, finite, <= 0 (within LOGPROB_TOL)."""
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise BadReply(f"{what} is {v!r:.40}, not a number")
    if not math.isfinite(v) or v > LOGPROB_TOL:
        raise BadReply(f"{what} is {v!r}, not a log-probability (finite, <= 0)")
    return float(v)


def _token(v: Any, vocab: int, what: str) -> int:
    if not _is_int(v) or not 0 <= v < vocab:
        raise BadReply(f"{what} {v!r:.40} is not a token id of the tokenizer (0..{vocab - 1})")
    return v


def check_model(reply: Any, names: frozenset[str]) -> None:
    """The reply names a model the server listed under the requested model's root (vLLM
    answers with its first served name when asked by an alias)."""
    if not isinstance(reply, dict):
        raise BadReply(f"the reply is a JSON {type(reply).__name__}, not an object")
    if not isinstance(reply.get("model"), str) or reply["model"] not in names:
        want = " or ".join(repr(n) for n in sorted(names))
        raise BadReply(f"the reply is for model {reply.get('model')!r:.80}, not {want}",
                       stop=True)


def check_choices(reply: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The reply's choices in index order: exactly `n`, with indices 0..n-1 once each."""
    choices = reply.get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise BadReply("the reply has no list of choices")
    if len(choices) != n:
        raise BadReply(f"the reply has {len(choices)} choices for n={n}")
    idx = [c.get("index") for c in choices]
    if not all(_is_int(i) for i in idx) or sorted(idx) != list(range(n)):
        raise BadReply(f"the reply's choice indices are {idx!r:.80}, not 0..{n - 1}")
    return sorted(choices, key=lambda c: c["index"])


def _generated_ids(choice: dict[str, Any], vocab: int) -> list[int]:
    """The generated token ids: vLLM's `token_ids`, else `token_id:123` strings in logprobs."""
    if choice.get("token_ids") is not None:
        ids = choice["token_ids"]
        if not isinstance(ids, list):
            raise BadReply("token_ids is not a list")
    else:
        tokens = (choice.get("logprobs") or {}).get("tokens") if isinstance(
            choice.get("logprobs"), dict) else None
        if not isinstance(tokens, list) or not all(
                isinstance(t, str) and t.startswith("token_id:") for t in tokens):
            # the same answer every time: the server lacks the feature, retrying cannot help
            raise BadReply("the server returns neither token_ids nor tokens as token ids "
                           "(return_tokens_as_token_ids): the openai engine needs one of them",
                           stop=True)
        try:
            ids = [int(t.split(":", 1)[1]) for t in tokens]
        except ValueError:
            raise BadReply("a token is not token_id:<int>") from None
    return [_token(t, vocab, "generated token") for t in ids]


def check_generation(reply: Any, request: GenRequest, names: frozenset[str], vocab: int,
                     stops: set[int], decode: Callable[[list[int]], str]) -> list[Completion]:
    """The `request.n` completions of a generation reply, or BadReply naming what is wrong."""
    check_model(reply, names)
    out = []
    for c in check_choices(reply, request.n):
        ids = _generated_ids(c, vocab)
        lp = c.get("logprobs")
        raw = lp.get("token_logprobs") if isinstance(lp, dict) else None
        if not isinstance(raw, list) or len(raw) != len(ids):
            n_lp = len(raw) if isinstance(raw, list) else "no"
            raise BadReply(f"{n_lp} log-probs for {len(ids)} generated tokens")
        lps = [_logprob(v, "a generated token's log-prob") for v in raw]
        reason = c.get("finish_reason")
        if reason not in ("stop", "length"):
            # kept verbatim in the error line: "abort" is not "cut by max tokens"
            raise BadReply(f"finish_reason {reason!r:.40} (not stop or length)")
        if len(ids) > request.max_tokens:
            raise BadReply(f"{len(ids)} tokens generated, {request.max_tokens} asked")
        if any(t in stops for t in ids[:-1]):
            raise BadReply("a stop token inside the generation (the server did not stop at it)")
        on_stop = bool(ids) and ids[-1] in stops
        full = len(ids) == request.max_tokens
        kept, kept_lps, stop_id = strip_stop(ids, lps, stops)
        text = decode(kept)
        # The label follows from the tokens wherever they say it, so a reply cannot relabel a
        # cut as a stop or back. A stop token as the last allowed token is "length": vLLM's
        # scheduler checks the length first (the in-process engine says so too).
        if on_stop:
            reason = "length" if full else "stop"
        elif any(s in text for s in request.stop_strs):
            reason = "stop"
        elif full:
            reason = "length"
        elif reason == "length":
            raise BadReply(f"finish_reason 'length' after {len(ids)} of {request.max_tokens} "
                           "tokens (a cut the request did not ask for)")
        out.append(Completion(kept, text, kept_lps, reason, stop_id))
    return out


def check_score(reply: Any, ids: list[int], n_ctx: int, via: str, names: frozenset[str],
                vocab: int,
                probe: bool = False) -> ScoreResult:
    """Teacher-forced log-probs of `ids[n_ctx:]` from a prompt-log-prob reply, or BadReply.

    `probe`: a reply without the route's field at all says the server lacks the route (not
    retried: the probe then tries the other route)."""
    check_model(reply, names)
    (choice,) = check_choices(reply, 1)
    cont = ids[n_ctx:]
    if via == "prompt_logprobs":
        plp = choice.get("prompt_logprobs")
        if plp is None:
            raise BadReply("the reply has no prompt_logprobs", retry=not probe)
        if not isinstance(plp, list) or len(plp) != len(ids):
            got = len(plp) if isinstance(plp, list) else type(plp).__name__
            raise BadReply(f"{got} prompt log-prob entries for a {len(ids)}-token prompt")
        lps, hits = [], []
        for t, d in zip(cont, plp[n_ctx:], strict=True):
            e = d.get(str(t)) if isinstance(d, dict) else None
            if not isinstance(e, dict):
                raise BadReply(f"no prompt log-prob for token {t}")
            for other in d.values():  # the top alternative too: it decides nothing, but a
                if isinstance(other, dict):  # server that sends NaN there is not to be trusted
                    _logprob(other.get("logprob"), "a prompt log-prob")
                else:
                    raise BadReply("a prompt log-prob entry is not an object")
            rank = e.get("rank")
            if not _is_int(rank) or not 1 <= rank <= vocab:
                raise BadReply(f"prompt token rank {rank!r:.40} is not in 1..{vocab}")
            lps.append(_logprob(e.get("logprob"), "a prompt log-prob"))
            hits.append(rank == 1)
        return ScoreResult(lps, hits)
    lp = choice.get("logprobs")
    vals = lp.get("token_logprobs") if isinstance(lp, dict) else None
    tops = lp.get("top_logprobs") if isinstance(lp, dict) else None
    if not isinstance(vals, list) or not isinstance(tops, list):
        raise BadReply("the reply has no echoed prompt log-probs", retry=not probe)
    if len(vals) < len(ids):
        # a server that ignores echo returns the generated token's log-prob only
        raise BadReply(f"{len(vals)} echoed log-probs for a {len(ids)}-token prompt",
                       retry=not probe)
    tokens = lp.get("tokens")
    # the prompt's entries, then the one generated token (max_tokens=1), in lists of one
    # length: a list a server cut or padded would shift every position after it
    lens = {len(vals), len(tops)} | ({len(tokens)} if isinstance(tokens, list) else set())
    if len(lens) > 1 or len(vals) > len(ids) + 1:
        raise BadReply(f"echoed lists of lengths {sorted(lens)} for a {len(ids)}-token prompt")
    if isinstance(tokens, list) and all(
            isinstance(t, str) and t.startswith("token_id:") for t in tokens[:len(ids)]):
        if [t.split(":", 1)[1] for t in tokens[n_ctx:len(ids)]] != [str(t) for t in cont]:
            raise BadReply("the echoed prompt is not the one sent")
    out_lps, hits = [], []
    for v, top in zip(vals[n_ctx:len(ids)], tops[n_ctx:len(ids)], strict=True):
        x = _logprob(v, "an echoed prompt log-prob")
        if not isinstance(top, dict) or not top:
            raise BadReply("an echoed prompt position has no top log-probs")
        best = max(_logprob(u, "a top log-prob") for u in top.values())
        out_lps.append(x)
        # the argmax is the top alternative; the actual token is a hit if it is as likely
        hits.append(x >= best - 1e-6)
    return ScoreResult(out_lps, hits)


def _preview(raw: bytes) -> str:
    text = " ".join(raw[:200].decode("utf-8", "replace").split())
    return repr(text[:60]) if text else "an empty body"



"""Budget forcing and the one-pass budget sweep (see ARCHITECTURE.md).

Generation is causal: the first T thinking tokens of a run with budget T_max are the tokens a
run with budget T would produce. So per (problem, sample) we generate thinking ONCE at the
largest budget, then for every budget T build ``prompt + thinking[:T] + end (+ cue)`` and only
generate the short answer and teacher-force the reference after that same prefix.
``--sweep independent`` does the naive thing (one thinking generation per budget) and exists for
benchmarks and the equivalence test.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from evalharness.engines.base import Engine
from evalharness.formats import ReasoningFormat
from evalharness.types import GenRequest, Problem, SampleRecord

MODES = ("truncate", "extend")
SWEEPS = ("one-pass", "independent")


@dataclass(frozen=True)
class SweepConfig:
    budgets: tuple[int, ...]
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    mode: str = "truncate"
    max_extensions: int = 0  # extend mode: up to k "Wait" extensions (levels 0..k are recorded)
    max_answer_tokens: int = 16  # <= 0: the task's default
    sweep: str = "one-pass"

    def __post_init__(self) -> None:
        if self.budgets and min(self.budgets) < 0:  # empty: the task's defaults fill it in
            raise ValueError("budgets must be non-negative integers")
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.n > 1 and self.temperature == 0:
            raise ValueError("n > 1 needs sampling: set --temperature > 0 (greedy gives n copies)")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose {' or '.join(MODES)}")
        if self.sweep not in SWEEPS:
            raise ValueError(f"unknown sweep {self.sweep!r}; choose {' or '.join(SWEEPS)}")
        if self.mode == "extend" and self.max_extensions < 1:
            raise ValueError("extend mode needs --max-extensions >= 1")

    @property
    def levels(self) -> int:
        return self.max_extensions + 1 if self.mode == "extend" else 1

    def rows_per_unit(self) -> int:
        return len(set(self.budgets)) * self.levels


@dataclass
class Trace:
    """One sample's thinking: tokens (with any extension text inserted), natural end points."""

    ids: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # len(ids) at each natural think-end
    eos_at: int | None = None  # thinking ended with <eos> instead of the end marker
    error: str | None = None


def _continuations(p: Problem) -> list[str]:
    """The strings scored for each option: the task's own (lm-eval's delimiter + choice), else
    a space and the option text."""
    if not p.choices:
        return []
    return list(p.meta.get("choice_continuations") or [" " + c for c in p.choices])


def unit_seed(seed: int, problem_id: str) -> int:
    """A per-problem seed that does not depend on batch composition or problem order."""
    h = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


class Sweeper:
    def __init__(self, engine: Engine, fmt: ReasoningFormat, cfg: SweepConfig) -> None:
        self.engine, self.fmt, self.cfg = engine, fmt, cfg
        tok = engine.tokenizer
        self.tok = tok
        self.eos = tok.eos_token_id
        self.end_ids = tok.encode(fmt.think_end, add_special_tokens=False)
        self.cue_ids = tok.encode(fmt.answer_cue, add_special_tokens=False) if fmt.answer_cue else []
        self.ext_ids = tok.encode(fmt.extension, add_special_tokens=False) if fmt.extension else []
        if cfg.mode == "extend" and not self.ext_ids:
            raise ValueError(f"format {fmt.name!r} has no extension string; pass --extension")
        # A single-token marker stops generation by id; a multi-token one (plain CoT cue) by text.
        self.stop_ids = (self.end_ids[0],) if len(self.end_ids) == 1 else ()
        self.stop_strs = () if len(self.end_ids) == 1 else (fmt.think_end,)

    # -- thinking ----------------------------------------------------------------------------
    def _split_marker(self, ids: list[int]) -> tuple[list[int], bool]:
        """For text markers: the tokens before the marker, and whether the marker was there."""
        if not self.stop_strs:
            return ids, False
        text = self.tok.decode(ids, skip_special_tokens=False)
        at = text.find(self.fmt.think_end)
        if at < 0:
            return ids, False
        lo, hi = 0, len(ids)  # largest k whose decoded text ends before the marker starts
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(self.tok.decode(ids[:mid], skip_special_tokens=False)) <= at:
                lo = mid
            else:
                hi = mid - 1
        return ids[:lo], True

    def _absorb(self, trace: Trace, comp) -> bool:
        """Append a completion to a trace; True if thinking ended naturally with the marker."""
        if comp.finish_reason.startswith("error"):
            trace.error = comp.finish_reason
            return False
        ids, marker = self._split_marker(list(comp.token_ids))
        trace.ids += ids
        if comp.stop_id is not None and comp.stop_id in self.stop_ids or marker:
            trace.ends.append(len(trace.ids))
            return True
        if comp.stop_id == self.eos:
            trace.eos_at = len(trace.ids)
        return False

    def think(self, prompts: Sequence[list[int]], seeds: Sequence[int], t_max: int) -> list[list[Trace]]:
        cfg = self.cfg
        reqs = [GenRequest(p, t_max, cfg.temperature, cfg.top_p, s, cfg.n, self.stop_ids,
                           self.stop_strs) for p, s in zip(prompts, seeds, strict=True)]
        traces = [[Trace() for _ in range(cfg.n)] for _ in prompts]
        open_: list[tuple[int, int]] = []
        for i, comps in enumerate(self.engine.generate(reqs)):
            for j, c in enumerate(comps):
                if self._absorb(traces[i][j], c):
                    open_.append((i, j))
        # extend mode: replace each natural end by the extension text and keep thinking
        for k in range(1, cfg.levels):
            open_ = [(i, j) for i, j in open_ if len(traces[i][j].ids) + len(self.ext_ids) < t_max]
            if not open_:
                break
            for i, j in open_:
                traces[i][j].ids += self.ext_ids
            reqs = [GenRequest(prompts[i] + traces[i][j].ids, t_max - len(traces[i][j].ids),
                               cfg.temperature, cfg.top_p, seeds[i] * 31 + 1000 * k + j, 1,
                               self.stop_ids, self.stop_strs) for i, j in open_]
            still = []
            for (i, j), comps in zip(open_, self.engine.generate(reqs), strict=True):
                if self._absorb(traces[i][j], comps[0]):
                    still.append((i, j))
            open_ = still
        for row in traces:
            for t in row:
                del t.ids[t_max:]
        return traces

    # -- per budget: prefix, answer, reference log-probs -------------------------------------
    def _prefix(self, prompt: list[int], trace: Trace, budget: int, level: int):
        """(prefix ids, thinking used, natural length or None, cut?) for one (budget, level)."""
        natural = level < len(trace.ends)
        limit = trace.ends[level] if natural else (trace.eos_at or len(trace.ids))
        if natural and limit <= budget:
            return prompt + trace.ids[:limit] + self.end_ids, limit, limit, False
        if not natural and trace.eos_at is not None and limit <= budget:
            return prompt + trace.ids[:limit] + self.end_ids + self.cue_ids, limit, None, False
        used = min(budget, limit)
        return prompt + trace.ids[:used] + self.end_ids + self.cue_ids, used, (limit if natural else None), True

    def run(
        self, problems: Sequence[Problem], prompts: Sequence[list[int]], meta: dict
    ) -> Iterator[list[SampleRecord]]:
        """Yield, per (problem, sample), all of its records (one per budget and level)."""
        cfg = self.cfg
        t0 = time.time()
        seeds = [unit_seed(cfg.seed, p.id) for p in problems]
        budgets = sorted(set(cfg.budgets))
        if cfg.sweep == "one-pass":
            plan = {b: None for b in budgets}
            traces = self.think(prompts, seeds, max(budgets))
        else:  # one generation per budget, for benchmarks and the equivalence test
            plan = {b: self.think(prompts, seeds, b) for b in budgets}
            traces = None
        keys, prefixes = [], {}
        for i in range(len(problems)):
            for j in range(cfg.n):
                for b in budgets:
                    for level in range(cfg.levels):
                        tr = traces[i][j] if traces is not None else plan[b][i][j]
                        pre = self._prefix(prompts[i], tr, b, level)
                        keys.append((i, j, b, level, pre, tr.error))
                        prefixes.setdefault((i, j, tuple(pre[0])), None)
        # answers and scores once per distinct prefix (budgets past the natural end share one)
        plist = [k for k in prefixes if len(k[2]) > 0]
        ans_reqs = [GenRequest(list(pre), cfg.max_answer_tokens, cfg.temperature, cfg.top_p,
                               seeds[i] * 7919 + len(pre) + j, 1, ()) for i, j, pre in plist]
        answers = [c[0] for c in self.engine.generate(ans_reqs)]
        refs = [self.tok.encode(p.reference, add_special_tokens=False) for p in problems]
        pairs = [(list(pre), refs[i]) for i, _, pre in plist]
        # multiple choice: each option's continuation (lm-eval's target_delimiter + choice) is
        # scored after every prefix (budget-dependent Brier) and once after the bare prompt
        # (lm-eval's context: acc / acc_norm comparable with lm-eval's own numbers)
        conts = [[self.tok.encode(c, add_special_tokens=False) for c in _continuations(p)]
                 for p in problems]
        choice_rows: list[tuple[int, int]] = []
        for k, (i, _, pre) in enumerate(plist):
            for c in conts[i]:
                choice_rows.append((k, len(pairs)))
                pairs.append((list(pre), c))
        prompt_choice_at: dict[int, int] = {}
        for i, cs in enumerate(conts):
            if cs:
                prompt_choice_at[i] = len(pairs)
                pairs.extend((list(prompts[i]), c) for c in cs)
        gold_split = {}
        for i, p in enumerate(problems):
            if p.gold_thinking is not None:
                think = self.tok.encode(p.gold_thinking, add_special_tokens=False) + self.end_ids
                ans = refs[i] + [self.eos]
                gold_split[i] = (len(pairs), len(think))
                pairs.append((prompts[i], think + ans))
        scores = self.engine.score(pairs)
        choice_lp: dict[int, list[float]] = {}
        for k, at in choice_rows:
            choice_lp.setdefault(k, []).append(sum(scores[at].logprobs))
        by_prefix = {key: (answers[k], scores[k], choice_lp.get(k)) for k, key in enumerate(plist)}
        elapsed = (time.time() - t0) / max(1, len(problems) * cfg.n)
        top = budgets[-1]
        unit: list[SampleRecord] = []
        for i, j, b, level, (pre, used, natural, cut), err in keys:
            ans, sc, clp = by_prefix[(i, j, tuple(pre))]
            gold = {}
            if i in gold_split and j == 0 and b == top and level == 0:
                at, n_think = gold_split[i]
                g = scores[at]
                gold = dict(gold_think_hits=g.hits[:n_think], gold_think_logprobs=g.logprobs[:n_think],
                            gold_answer_hits=g.hits[n_think:], gold_answer_logprobs=g.logprobs[n_think:])
            if i in prompt_choice_at:
                at = prompt_choice_at[i]
                gold.update(
                    prompt_choice_logprobs=[sum(scores[at + c].logprobs) for c in range(len(conts[i]))],
                    choice_chars=[len(c) for c in problems[i].choices],
                )
            forced = len(pre) - len(prompts[i]) - used
            unit.append(SampleRecord(
                run_id=meta["run_id"], model=meta["model"], task=meta["task"],
                problem_id=problems[i].id, sample=j, seed=seeds[i], budget=b, extensions=level,
                thinking_tokens=used, natural_thinking_tokens=natural, cut=cut,
                thinking=self.tok.decode(pre[len(prompts[i]) : len(prompts[i]) + used],
                                         skip_special_tokens=False),
                answer=ans.text, answer_ids=list(ans.token_ids), answer_logprobs=list(ans.logprobs),
                reference=problems[i].reference, ref_ids=refs[i], ref_logprobs=sc.logprobs,
                ref_hits=sc.hits, prompt_tokens=len(prompts[i]),
                generated_tokens=used + forced + len(ans.token_ids),
                finish_reason=err or ans.finish_reason, time_s=round(elapsed, 5),
                choice_logprobs=clp, **gold,
            ))
            if len(unit) == cfg.rows_per_unit():
                yield unit
                unit = []

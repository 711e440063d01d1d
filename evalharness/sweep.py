"""Budget forcing and the one-pass budget sweep (see ARCHITECTURE.md).

Generation is causal: the first T thinking tokens of a run with budget T_max are the tokens a
run with budget T would produce. So per (problem, sample) we generate thinking ONCE at the
largest budget, then for every budget T build ``prompt + thinking[:T] + end (+ cue)`` and only
generate the short answer and teacher-force the reference after that same prefix.
``--sweep independent`` does the naive thing (one thinking generation per budget) and exists for
benchmarks and the equivalence test.

`Sweeper.run` goes plan -> think -> prefixes -> score -> answer -> records. The plan
(`plan_sweep`: which (problem, sample) units, which budget and level slots, which thinking to
generate) and the prefixes (`cut_prefix`) are plain functions of plain inputs, tested without a
model; the other steps are one engine call each.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalharness.engines.base import Engine
from evalharness.formats import ReasoningFormat
from evalharness.progress import Progress, call_with_progress, generated_tokens, scored_tokens
from evalharness.spec import GenerationSpec, Plan
from evalharness.types import GenRequest, Problem, SampleRecord


@dataclass(frozen=True)
class SweepConfig:
    """One sweep call: the run's generation settings plus the budgets and samples to make."""

    budgets: tuple[int, ...]
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    mode: str = "truncate"
    max_extensions: int = 0  # extend mode: up to k "Wait" extensions (levels 0..k are recorded)
    max_answer_tokens: int = 16
    sweep: str = "one-pass"

    def __post_init__(self) -> None:
        Plan(self.budgets, self.n)  # the same checks as a run's plan and generation spec
        self.generation()
        if self.n > 1 and self.temperature == 0:
            raise ValueError("n > 1 needs sampling: set --temperature > 0 (greedy gives n copies)")

    @classmethod
    def of(cls, gen: GenerationSpec, plan: Plan) -> SweepConfig:
        return cls(tuple(plan.budgets), plan.n, gen.temperature, gen.top_p, gen.seed, gen.mode,
                   gen.max_extensions, gen.max_answer_tokens, gen.sweep)

    def generation(self, extend_t_max: int | None = None) -> GenerationSpec:
        return GenerationSpec(self.temperature, self.top_p, self.seed, self.mode,
                              self.max_extensions, self.max_answer_tokens, self.sweep,
                              extend_t_max if self.mode == "extend" else None)

    @property
    def levels(self) -> int:
        return self.max_extensions + 1 if self.mode == "extend" else 1


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


def unit_seed(seed: int, problem_id: str, sample: int = 0) -> int:
    """A per-(problem, sample) seed that depends on neither batch composition, problem order,
    nor how many samples were asked for: sample 5 of `--n 8` is sample 5 of `--n 6`."""
    key = f"{seed}:{problem_id}" if sample == 0 else f"{seed}:{problem_id}#{sample}"
    h = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


# -- the plan: which records to make and which thinking they are cut from (no model needed) --


@dataclass(frozen=True)
class Slot:
    """One record to make: a budget and extension level of one (problem, sample)."""

    budget: int
    level: int
    fits: bool  # prompt + thinking[:budget] + marker + cue + answer fit the model's context


@dataclass(frozen=True)
class Unit:
    """One (problem, sample) with records still missing; its records are written together."""

    problem: int  # index into the call's problems
    sample: int
    seed: int
    slots: tuple[Slot, ...]  # sorted by (budget, level): the order its records are written


@dataclass(frozen=True)
class Thought:
    """One thinking generation: a unit's thinking up to `t_max` tokens, cut for `budgets`."""

    unit: int  # index into SweepPlan.units
    t_max: int
    budgets: tuple[int, ...]


@dataclass(frozen=True)
class SweepPlan:
    """Everything one sweep call will make, decided before any model call."""

    units: tuple[Unit, ...]
    thoughts: tuple[Thought, ...]

    def problems(self) -> list[int]:
        """The problems with at least one unit, in order."""
        return sorted({u.problem for u in self.units})


def plan_sweep(cfg: SweepConfig, problem_ids: Sequence[str], prompt_lens: Sequence[int],
               need: Sequence[set[tuple[int, int, int]]] | None = None,
               context: int | None = None, overhead: int = 0) -> SweepPlan:
    """What one sweep call makes: a unit per (problem, sample) with something in `need`, its
    slots, and the thinking generations its prefixes are cut from.

    `need[i]`: the (sample, budget, level) keys still missing for problem i (every key of
    `cfg` when None: a fresh run). `context`: the model's context length (None: unbounded);
    `overhead`: the tokens after the thinking (marker, cue, answer). A budget that cannot fit
    gets a slot with fits=False (an error record of its own); the thinking of the budgets that
    fit runs to the largest of them, in extend mode to the sweep's largest budget or not at
    all (an extension may run up to it).
    """
    budgets = sorted(set(cfg.budgets))
    if need is None:
        every = {(j, b, lv) for j in range(cfg.n) for b in budgets for lv in range(cfg.levels)}
        need = [every] * len(problem_ids)
    units: list[Unit] = []
    thoughts: list[Thought] = []
    for i, j in sorted({(i, j) for i, keys in enumerate(need) for j, _, _ in keys}):
        fit = {b for b in budgets if context is None or prompt_lens[i] + b + overhead <= context}
        if cfg.mode == "extend" and budgets[-1] not in fit:
            fit = set()
        wanted = sorted({(b, lv) for jj, b, lv in need[i] if jj == j})
        units.append(Unit(i, j, unit_seed(cfg.seed, problem_ids[i], j),
                          tuple(Slot(b, lv, b in fit) for b, lv in wanted)))
        fitting = sorted({b for b, _ in wanted if b in fit})
        thoughts += _thoughts(cfg, len(units) - 1, fitting, budgets[-1])
    return SweepPlan(tuple(units), tuple(thoughts))


def _thoughts(cfg: SweepConfig, unit: int, fitting: list[int], largest: int) -> list[Thought]:
    """A unit's thinking generations: one-pass, one up to its largest fitting budget (extend
    mode: the sweep's largest); independent, one per budget (benchmarks, equivalence test)."""
    if not fitting:
        return []
    if cfg.sweep != "one-pass":
        return [Thought(unit, b, (b,)) for b in fitting]
    return [Thought(unit, largest if cfg.mode == "extend" else fitting[-1], tuple(fitting))]


@dataclass(frozen=True)
class Prefix:
    """What a record's answer follows: prompt + thinking[:used] + marker (+ answer cue)."""

    ids: tuple[int, ...]
    used: int  # thinking tokens kept
    natural: int | None  # the natural thinking length, reported only within the budget
    cut: bool  # thinking was cut at the budget


def cut_prefix(prompt: Sequence[int], trace: Trace, budget: int, level: int,
               end_ids: Sequence[int], cue_ids: Sequence[int]) -> Prefix:
    """The prefix of one (budget, level) cut from a trace.

    The natural length is reported only where it falls within the budget, so a record does
    not depend on how far past its budget the trace happened to be generated. A natural end
    needs no cue; a cut, or an <eos> end, gets marker + cue to force the answer."""
    prompt, end_ids, cue_ids = list(prompt), list(end_ids), list(cue_ids)
    natural = level < len(trace.ends)
    limit = trace.ends[level] if natural else (trace.eos_at or len(trace.ids))
    if natural and limit <= budget:
        return Prefix(tuple(prompt + trace.ids[:limit] + end_ids), limit, limit, False)
    if not natural and trace.eos_at is not None and limit <= budget:
        return Prefix(tuple(prompt + trace.ids[:limit] + end_ids + cue_ids), limit, None, False)
    used = min(budget, limit)
    return Prefix(tuple(prompt + trace.ids[:used] + end_ids + cue_ids), used, None, True)


@dataclass(frozen=True)
class Cut:
    """One slot after thinking: its prefix, or the error its record carries instead."""

    prefix: Prefix | None
    error: str | None = None


@dataclass(frozen=True)
class Scored:
    """The one scoring pass, read back: per distinct prefix and per problem."""

    refs: list[Any]  # per distinct prefix: the reference's Score after it
    choices: list[list[float] | None]  # per distinct prefix: each option's log-likelihood
    prompt_choice: dict[int, dict[str, Any]]  # per problem: the options after the bare prompt
    gold: dict[int, dict[str, Any]]  # per problem: the gold trace's scores

    def extra(self, unit: Unit, slot: Slot) -> dict[str, Any]:
        """A record's per-problem fields: the gold trace on sample 0, level 0 of every budget
        (a record must not depend on which other budgets its run asked for); the options
        after the bare prompt on every record."""
        out = dict(self.gold[unit.problem]) if (
            unit.problem in self.gold and unit.sample == 0 and slot.level == 0) else {}
        out.update(self.prompt_choice.get(unit.problem, {}))
        return out


class Sweeper:
    def __init__(self, engine: Engine, fmt: ReasoningFormat, cfg: SweepConfig,
                 progress: Progress | None = None) -> None:
        self.engine, self.fmt, self.cfg = engine, fmt, cfg
        self.progress = progress or Progress(disable=True)
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

    def think(self, prompts: Sequence[list[int]], seeds: Sequence[int],
              t_max: Sequence[int]) -> list[Trace]:
        """One thinking trace per request (one sample each), each up to its own budget."""
        with self.progress.phase("thinking", sum(t_max)) as tick:
            return self._think(prompts, seeds, t_max, tick)

    def _think(self, prompts, seeds, t_max, tick) -> list[Trace]:
        cfg = self.cfg
        reqs = [GenRequest(p, t, cfg.temperature, cfg.top_p, s, 1, self.stop_ids, self.stop_strs,
                           logprobs=False) for p, s, t in zip(prompts, seeds, t_max, strict=True)]
        traces = [Trace() for _ in prompts]
        open_: list[int] = []
        for i, comps in enumerate(self._generate(reqs, tick)):
            if self._absorb(traces[i], comps[0]):
                open_.append(i)
        # extend mode: replace each natural end by the extension text and keep thinking
        for k in range(1, cfg.levels):
            open_ = [i for i in open_ if len(traces[i].ids) + len(self.ext_ids) < t_max[i]]
            if not open_:
                break
            for i in open_:
                traces[i].ids += self.ext_ids
            reqs = [GenRequest(prompts[i] + traces[i].ids, t_max[i] - len(traces[i].ids),
                               cfg.temperature, cfg.top_p, seeds[i] * 31 + 1000 * k, 1,
                               self.stop_ids, self.stop_strs, logprobs=False) for i in open_]
            still = []
            for i, comps in zip(open_, self._generate(reqs, tick), strict=True):
                if self._absorb(traces[i], comps[0]):
                    still.append(i)
            open_ = still
        for t, limit in zip(traces, t_max, strict=True):
            del t.ids[limit:]
        return traces

    def _generate(self, reqs, tick):
        return call_with_progress(self.engine.generate, reqs, tick, generated_tokens)

    def _continuation(self, context: str, cont: str) -> list[int]:
        """The tokens of `cont` after `context` as lm-eval splits them: encode the two
        together and keep what follows the context's tokens (a trailing space of the
        context moves into the continuation)."""
        n_space = len(context) - len(context.rstrip())
        if n_space:
            context, cont = context[:-n_space], context[-n_space:] + cont
        whole = self.tok.encode(context + cont, add_special_tokens=False)
        return whole[len(self.tok.encode(context, add_special_tokens=False)):]

    def _context(self) -> int | None:
        return getattr(self.engine, "max_model_len", None)

    def _overhead(self) -> int:
        """Tokens a record needs after its thinking: marker, answer cue, answer."""
        return len(self.end_ids) + len(self.cue_ids) + self.cfg.max_answer_tokens

    def _encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def run(
        self, problems: Sequence[Problem], prompts: Sequence[list[int]], meta: dict,
        need: Sequence[set[tuple[int, int, int]]] | None = None,
    ) -> Iterator[list[SampleRecord]]:
        """Yield, per (problem, sample), its records (one per budget and level).

        `need[i]`, where given, is the set of (sample, budget, level) keys still missing for
        problem i: only those records are made (a resumed or extended run). A budget whose
        prompt + thinking + answer cannot fit the context gives error records of its own; the
        thinking of the budgets that fit is generated up to the largest of them.
        """
        t0 = time.time()
        plan = plan_sweep(self.cfg, [p.id for p in problems], [len(p) for p in prompts], need,
                          self._context(), self._overhead())
        traces = self._think_plan(plan, prompts)
        cuts = self._cut(plan, prompts, traces)
        # answers and scores once per distinct prefix (budgets past the natural end share one)
        distinct = list(dict.fromkeys((u, c.prefix.ids) for u, row in enumerate(cuts)
                                      for c in row if c.prefix is not None))
        refs = {i: self._encode(problems[i].reference) for i in plan.problems()}
        scored = self._score(plan, problems, prompts, refs, distinct)
        answers = self._answer(plan, distinct)
        made = {key: (answers[k], scored.refs[k], scored.choices[k])
                for k, key in enumerate(distinct)}
        elapsed = (time.time() - t0) / max(1, len(plan.units))
        for u, (unit, row) in enumerate(zip(plan.units, cuts, strict=True)):
            i = unit.problem
            yield [self._record(meta, problems[i], prompts[i], refs[i], unit, slot, cut,
                                scored.extra(unit, slot), elapsed,
                                made[(u, cut.prefix.ids)] if cut.prefix else None)
                   for slot, cut in zip(unit.slots, row, strict=True)]

    # -- the steps of `run`, in order -----------------------------------------------------------
    def _think_plan(self, plan: SweepPlan, prompts: Sequence[list[int]]) -> dict[tuple[int, int], Trace]:
        """The plan's thinking, generated in one batch, by (unit, budget) it is cut for."""
        units = plan.units
        made = self.think([prompts[units[t.unit].problem] for t in plan.thoughts],
                          [units[t.unit].seed for t in plan.thoughts],
                          [t.t_max for t in plan.thoughts])
        return {(t.unit, b): tr for t, tr in zip(plan.thoughts, made, strict=True)
                for b in t.budgets}

    def _cut(self, plan: SweepPlan, prompts: Sequence[list[int]],
             traces: dict[tuple[int, int], Trace]) -> list[list[Cut]]:
        """Per unit and slot: the prefix its answer follows, or why its record is an error."""
        out = []
        for u, unit in enumerate(plan.units):
            prompt, row = prompts[unit.problem], []
            for slot in unit.slots:
                if not slot.fits:
                    row.append(Cut(None, self._overflow(len(prompt), slot.budget)))
                    continue
                tr = traces[(u, slot.budget)]
                row.append(Cut(None, tr.error) if tr.error is not None else Cut(
                    cut_prefix(prompt, tr, slot.budget, slot.level, self.end_ids, self.cue_ids)))
            out.append(row)
        return out

    def _overflow(self, prompt_len: int, budget: int) -> str:
        return (f"error: prompt ({prompt_len}) + budget ({budget}) + answer "
                f"({self.cfg.max_answer_tokens}) tokens exceed the context ({self._context()})")

    def _score(self, plan: SweepPlan, problems: Sequence[Problem], prompts: Sequence[list[int]],
               refs: dict[int, list[int]], distinct: list[tuple[int, tuple[int, ...]]]) -> Scored:
        """Teacher-force in one engine call: the reference after every distinct prefix; for
        multiple choice each option's continuation (lm-eval's target_delimiter + choice) after
        every prefix (budget-dependent Brier) and once after the bare prompt (lm-eval's
        context: acc / acc_norm comparable with lm-eval's own numbers); the gold trace after
        the prompt, once per problem whose sample 0 is made."""
        units, active = plan.units, plan.problems()
        pairs = [(list(ids), refs[units[u].problem]) for u, ids in distinct]
        options = {i: _continuations(problems[i]) for i in active}
        # after a thinking prefix the context text is not what precedes the option: encode alone
        conts = {i: [self._encode(c) for c in options[i]] for i in active}
        choice_at = []
        for u, ids in distinct:
            choice_at.append(len(pairs))
            pairs += [(list(ids), c) for c in conts[units[u].problem]]
        prompt_at = {}
        for i in (i for i in active if options[i]):
            prompt_at[i] = len(pairs)
            ctx = self._encode(problems[i].prompt)
            pairs += [(ctx, self._continuation(problems[i].prompt, c)) for c in options[i]]
        gold_at = {}
        sample0 = {u.problem for u in units if u.sample == 0}
        for i in (i for i in active if problems[i].gold_thinking is not None and i in sample0):
            think = self._encode(problems[i].gold_thinking) + self.end_ids
            ans = refs[i] + [self.eos]
            gold_at[i] = (len(pairs), len(think), [self.tok.decode([t]) for t in think + ans])
            pairs.append((list(prompts[i]), think + ans))
        scores = self._score_pairs(pairs)

        def option_lps(at: int, i: int) -> list[float]:
            return [sum(scores[at + c].logprobs) for c in range(len(conts[i]))]

        gold = {}
        for i, (at, n, texts) in gold_at.items():
            g = scores[at]
            gold[i] = dict(gold_think_hits=g.hits[:n], gold_think_logprobs=g.logprobs[:n],
                           gold_answer_hits=g.hits[n:], gold_answer_logprobs=g.logprobs[n:],
                           gold_think_tokens=texts[:n], gold_answer_tokens=texts[n:])
        return Scored(
            refs=scores[:len(distinct)],
            choices=[option_lps(at, units[u].problem) or None
                     for (u, _), at in zip(distinct, choice_at, strict=True)],
            prompt_choice={i: dict(prompt_choice_logprobs=option_lps(at, i),
                                   choice_chars=[len(c) for c in problems[i].choices])
                           for i, at in prompt_at.items()},
            gold=gold)

    def _score_pairs(self, pairs: list[tuple[list[int], list[int]]]) -> list:
        if not pairs:
            return []
        with self.progress.phase("scoring", scored_tokens(pairs)) as tick:
            return call_with_progress(self.engine.score, pairs, tick, lambda _: scored_tokens(pairs))

    def _answer(self, plan: SweepPlan, distinct: list[tuple[int, tuple[int, ...]]]) -> list:
        """The answer after each distinct prefix.

        Answers after scoring: the prefix cache then holds no generated answer, so a scored
        continuation cannot be found in it. Answered first, a correct answer put the
        reference's own tokens into the cache, those pairs came back without their log-probs
        and were scored again with no cache at all (SmolLM2, 64 GSM8K problems, budgets
        0..256: 21 of 379 pairs, 6.6 s of the one-pass sweep's 89 s)."""
        cfg = self.cfg
        reqs = [GenRequest(list(ids), cfg.max_answer_tokens, cfg.temperature, cfg.top_p,
                           plan.units[u].seed * 7919 + len(ids), 1, (), self.fmt.answer_stop)
                for u, ids in distinct]
        if not reqs:
            return []
        with self.progress.phase("answers", len(reqs) * cfg.max_answer_tokens) as tick:
            return [c[0] for c in self._generate(reqs, tick)]

    def _record(self, meta: dict, problem: Problem, prompt: list[int], ref_ids: list[int],
                unit: Unit, slot: Slot, cut: Cut, extra: dict[str, Any], elapsed: float,
                made: tuple[Any, Any, list[float] | None] | None) -> SampleRecord:
        """One record: from its prefix's (answer, reference score, option log-likelihoods),
        or an error record where it has no prefix."""
        if cut.prefix is None or made is None:
            return self._error_record(meta, problem, ref_ids, prompt, unit, slot,
                                      str(cut.error), elapsed, extra)
        pre, (ans, sc, choices) = cut.prefix, made
        forced = len(pre.ids) - len(prompt) - pre.used
        return SampleRecord(
            run_id=meta["run_id"], model=meta["model"], task=meta["task"],
            problem_id=problem.id, sample=unit.sample, seed=unit.seed, budget=slot.budget,
            extensions=slot.level, thinking_tokens=pre.used, natural_thinking_tokens=pre.natural,
            cut=pre.cut,
            thinking=self.tok.decode(list(pre.ids[len(prompt) : len(prompt) + pre.used]),
                                     skip_special_tokens=False),
            answer=ans.text, answer_ids=list(ans.token_ids),
            answer_logprobs=list(ans.logprobs), reference=problem.reference,
            ref_ids=ref_ids, ref_logprobs=sc.logprobs, ref_hits=sc.hits,
            prompt_tokens=len(prompt), generated_tokens=pre.used + forced + len(ans.token_ids),
            finish_reason=ans.finish_reason, time_s=round(elapsed, 5),
            choice_logprobs=choices, **extra,
        )

    def _error_record(self, meta: dict, problem: Problem, ref_ids: list[int], prompt: list[int],
                      unit: Unit, slot: Slot, err: str, elapsed: float,
                      extra: dict[str, Any]) -> SampleRecord:
        return SampleRecord(
            run_id=meta["run_id"], model=meta["model"], task=meta["task"], problem_id=problem.id,
            sample=unit.sample, seed=unit.seed, budget=slot.budget, extensions=slot.level,
            thinking_tokens=0, natural_thinking_tokens=None, cut=False, thinking="", answer="",
            answer_ids=[], answer_logprobs=[], reference=problem.reference, ref_ids=ref_ids,
            ref_logprobs=[], ref_hits=[], prompt_tokens=len(prompt), generated_tokens=0,
            finish_reason=err, time_s=round(elapsed, 5),
            **{k: v for k, v in extra.items() if k.startswith("prompt_") or k == "choice_chars"},
        )

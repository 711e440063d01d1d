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


def unit_seed(seed: int, problem_id: str, sample: int = 0) -> int:
    """A per-(problem, sample) seed that depends on neither batch composition, problem order,
    nor how many samples were asked for: sample 5 of `--n 8` is sample 5 of `--n 6`."""
    key = f"{seed}:{problem_id}" if sample == 0 else f"{seed}:{problem_id}#{sample}"
    h = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


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

    # -- per budget: prefix, answer, reference log-probs -------------------------------------
    def _prefix(self, prompt: list[int], trace: Trace, budget: int, level: int):
        """(prefix ids, thinking used, natural length or None, cut?) for one (budget, level).

        The natural length is reported only where it falls within the budget, so a record
        does not depend on how far past its budget the trace happened to be generated."""
        natural = level < len(trace.ends)
        limit = trace.ends[level] if natural else (trace.eos_at or len(trace.ids))
        if natural and limit <= budget:
            return prompt + trace.ids[:limit] + self.end_ids, limit, limit, False
        if not natural and trace.eos_at is not None and limit <= budget:
            return prompt + trace.ids[:limit] + self.end_ids + self.cue_ids, limit, None, False
        used = min(budget, limit)
        return prompt + trace.ids[:used] + self.end_ids + self.cue_ids, used, None, True

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

    def _fits(self, prompt_len: int, budget: int) -> bool:
        """Whether prompt + thinking[:budget] + marker + cue + answer fit the model's context."""
        ctx = getattr(self.engine, "max_model_len", None)
        need = prompt_len + budget + len(self.end_ids) + len(self.cue_ids) + self.cfg.max_answer_tokens
        return ctx is None or need <= ctx

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
        cfg = self.cfg
        t0 = time.time()
        budgets = sorted(set(cfg.budgets))
        if need is None:
            need = [{(j, b, lv) for j in range(cfg.n) for b in budgets for lv in range(cfg.levels)}
                    for _ in problems]
        # one work item per (problem, sample) with something missing
        items = sorted({(i, j) for i, keys in enumerate(need) for j, _, _ in keys})
        wanted = {(i, j): sorted({(b, lv) for jj, b, lv in need[i] if jj == j}) for i, j in items}
        seeds = {(i, j): unit_seed(cfg.seed, problems[i].id, j) for i, j in items}
        fits = {(i, b) for i, _ in items for b in budgets if self._fits(len(prompts[i]), b)}
        if cfg.mode == "extend":  # the trace runs to the largest budget or not at all
            fits = {(i, b) for i, b in fits if (i, budgets[-1]) in fits}
        top = {it: max((b for b, _ in wanted[it] if (it[0], b) in fits), default=None)
               for it in items}
        if cfg.mode == "extend":
            top = {it: budgets[-1] if t is not None else None for it, t in top.items()}
        traces: dict = {}
        if cfg.sweep == "one-pass":
            gen = [it for it in items if top[it] is not None]
            made = self.think([prompts[i] for i, _ in gen], [seeds[it] for it in gen],
                              [top[it] for it in gen])
            traces = {(i, j, b): tr for (i, j), tr in zip(gen, made, strict=True)
                      for b in budgets}
        else:  # one generation per budget, for benchmarks and the equivalence test
            gen = [(i, j, b) for i, j in items for b in sorted({b for b, _ in wanted[(i, j)]})
                   if (i, b) in fits]
            made = self.think([prompts[i] for i, _, _ in gen], [seeds[(i, j)] for i, j, _ in gen],
                              [b for _, _, b in gen])
            traces = dict(zip(gen, made, strict=True))
        keys, prefixes = [], {}
        for i, j in items:
            for b, level in wanted[(i, j)]:
                if (i, b) not in fits:
                    room = getattr(self.engine, "max_model_len", None)
                    err = (f"error: prompt ({len(prompts[i])}) + budget ({b}) + answer "
                           f"({cfg.max_answer_tokens}) tokens exceed the context ({room})")
                    keys.append((i, j, b, level, None, err))
                    continue
                tr = traces[(i, j, b)]
                pre = self._prefix(prompts[i], tr, b, level)
                keys.append((i, j, b, level, pre, tr.error))
                if tr.error is None:
                    prefixes.setdefault((i, j, tuple(pre[0])), None)
        # answers and scores once per distinct prefix (budgets past the natural end share one)
        plist = list(prefixes)
        refs = [self.tok.encode(p.reference, add_special_tokens=False) for p in problems]
        pairs = [(list(pre), refs[i]) for i, _, pre in plist]
        # multiple choice: each option's continuation (lm-eval's target_delimiter + choice) is
        # scored after every prefix (budget-dependent Brier) and once after the bare prompt
        # (lm-eval's context: acc / acc_norm comparable with lm-eval's own numbers)
        active = sorted({i for i, _ in items})
        options = {i: _continuations(problems[i]) for i in active}
        # after a thinking prefix the context text is not what precedes the option: encode alone
        conts = {i: [self.tok.encode(c, add_special_tokens=False) for c in options[i]]
                 for i in active}
        lm_ctx = {i: self.tok.encode(problems[i].prompt, add_special_tokens=False)
                  for i in active if options[i]}
        lm_conts = {i: [self._continuation(problems[i].prompt, c) for c in options[i]]
                    for i in lm_ctx}
        choice_rows: list[tuple[int, int]] = []
        for k, (i, _, pre) in enumerate(plist):
            for c in conts[i]:
                choice_rows.append((k, len(pairs)))
                pairs.append((list(pre), c))
        prompt_choice_at: dict[int, int] = {}
        for i in lm_ctx:
            prompt_choice_at[i] = len(pairs)
            pairs.extend((lm_ctx[i], c) for c in lm_conts[i])
        gold_split = {}
        for i in active:
            p = problems[i]
            if p.gold_thinking is not None and any(j == 0 for ii, j in items if ii == i):
                think = self.tok.encode(p.gold_thinking, add_special_tokens=False) + self.end_ids
                ans = refs[i] + [self.eos]
                gold_split[i] = (len(pairs), len(think), [self.tok.decode([t]) for t in think + ans])
                pairs.append((list(prompts[i]), think + ans))
        scores = []
        if pairs:
            with self.progress.phase("scoring", scored_tokens(pairs)) as tick:
                scores = call_with_progress(self.engine.score, pairs, tick,
                                            lambda _: scored_tokens(pairs))
        # Answers after scoring: the prefix cache then holds no generated answer, so a scored
        # continuation cannot be found in it. Answered first, a correct answer put the
        # reference's own tokens into the cache, those pairs came back without their log-probs
        # and were scored again with no cache at all (SmolLM2, 64 GSM8K problems, budgets
        # 0..256: 21 of 379 pairs, 6.6 s of the one-pass sweep's 89 s).
        ans_reqs = [GenRequest(list(pre), cfg.max_answer_tokens, cfg.temperature, cfg.top_p,
                               seeds[(i, j)] * 7919 + len(pre), 1, (), self.fmt.answer_stop)
                    for i, j, pre in plist]
        answers = []
        if ans_reqs:
            with self.progress.phase("answers", len(ans_reqs) * cfg.max_answer_tokens) as tick:
                answers = [c[0] for c in self._generate(ans_reqs, tick)]
        choice_lp: dict[int, list[float]] = {}
        for k, at in choice_rows:
            choice_lp.setdefault(k, []).append(sum(scores[at].logprobs))
        by_prefix = {key: (answers[k], scores[k], choice_lp.get(k)) for k, key in enumerate(plist)}
        elapsed = (time.time() - t0) / max(1, len(items))
        unit: list[SampleRecord] = []
        for n_key, (i, j, b, level, pre_info, err) in enumerate(keys):
            extra: dict = {}
            if i in gold_split and j == 0 and level == 0:
                at, n_think, texts = gold_split[i]
                g = scores[at]
                extra = dict(gold_think_hits=g.hits[:n_think], gold_think_logprobs=g.logprobs[:n_think],
                             gold_answer_hits=g.hits[n_think:], gold_answer_logprobs=g.logprobs[n_think:],
                             gold_think_tokens=texts[:n_think], gold_answer_tokens=texts[n_think:])
            if i in prompt_choice_at:
                at = prompt_choice_at[i]
                extra.update(
                    prompt_choice_logprobs=[sum(scores[at + c].logprobs) for c in range(len(conts[i]))],
                    choice_chars=[len(c) for c in problems[i].choices],
                )
            if err is not None:
                unit.append(self._error_record(meta, problems[i], refs[i], prompts[i], j,
                                               seeds[(i, j)], b, level, err, elapsed, extra))
            else:
                pre, used, natural, cut = pre_info
                ans, sc, clp = by_prefix[(i, j, tuple(pre))]
                forced = len(pre) - len(prompts[i]) - used
                unit.append(SampleRecord(
                    run_id=meta["run_id"], model=meta["model"], task=meta["task"],
                    problem_id=problems[i].id, sample=j, seed=seeds[(i, j)], budget=b,
                    extensions=level, thinking_tokens=used, natural_thinking_tokens=natural,
                    cut=cut,
                    thinking=self.tok.decode(pre[len(prompts[i]) : len(prompts[i]) + used],
                                             skip_special_tokens=False),
                    answer=ans.text, answer_ids=list(ans.token_ids),
                    answer_logprobs=list(ans.logprobs), reference=problems[i].reference,
                    ref_ids=refs[i], ref_logprobs=sc.logprobs, ref_hits=sc.hits,
                    prompt_tokens=len(prompts[i]), generated_tokens=used + forced + len(ans.token_ids),
                    finish_reason=ans.finish_reason, time_s=round(elapsed, 5),
                    choice_logprobs=clp, **extra,
                ))
            last = n_key + 1 == len(keys) or keys[n_key + 1][:2] != (i, j)
            if last:
                yield unit
                unit = []

    def _error_record(self, meta, problem, ref_ids, prompt, j, seed, b, level, err, elapsed,
                      extra) -> SampleRecord:
        return SampleRecord(
            run_id=meta["run_id"], model=meta["model"], task=meta["task"], problem_id=problem.id,
            sample=j, seed=seed, budget=b, extensions=level, thinking_tokens=0,
            natural_thinking_tokens=None, cut=False, thinking="", answer="", answer_ids=[],
            answer_logprobs=[], reference=problem.reference, ref_ids=ref_ids, ref_logprobs=[],
            ref_hits=[], prompt_tokens=len(prompt), generated_tokens=0, finish_reason=err,
            time_s=round(elapsed, 5), **{k: v for k, v in extra.items() if k.startswith("prompt_")
                                         or k == "choice_chars"},
        )

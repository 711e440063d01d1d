"""The sweep's plan and prefixes on plain inputs: no model, no tokenizer."""

from evalharness.sweep import (
    Prefix,
    Slot,
    SweepConfig,
    Thought,
    Trace,
    cut_prefix,
    plan_sweep,
    unit_seed,
)

IDS = ["p0", "p1"]


def test_a_fresh_run_plans_every_sample_and_one_thought_up_to_the_largest_budget():
    cfg = SweepConfig((32, 0, 8, 8), n=2, temperature=0.7, seed=3)
    plan = plan_sweep(cfg, IDS, [5, 5])
    assert [(u.problem, u.sample) for u in plan.units] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [u.seed for u in plan.units] == [unit_seed(3, p, j) for p in IDS for j in (0, 1)]
    assert all(u.slots == (Slot(0, 0, True), Slot(8, 0, True), Slot(32, 0, True))
               for u in plan.units)
    assert plan.thoughts == tuple(Thought(u, 32, (0, 8, 32)) for u in range(4))
    assert plan.problems() == [0, 1]


def test_a_resumed_run_plans_only_the_missing_records_and_thinks_only_as_far_as_they_need():
    cfg = SweepConfig((0, 8, 32), n=2, temperature=0.7)
    need = [set(), {(1, 0, 0), (1, 8, 0)}]  # problem 0 done; problem 1 lacks sample 1 at 0, 8
    plan = plan_sweep(cfg, IDS, [5, 5], need)
    assert [(u.problem, u.sample) for u in plan.units] == [(1, 1)]
    assert plan.units[0].slots == (Slot(0, 0, True), Slot(8, 0, True))
    assert plan.thoughts == (Thought(0, 8, (0, 8)),)
    assert plan.problems() == [1]


def test_a_budget_past_the_context_gets_an_error_slot_and_thinking_stops_at_the_largest_that_fits():
    cfg = SweepConfig((0, 8, 32))
    # prompt 10 + budget + overhead 4 must fit 30: budgets 0 and 8 do, 32 does not
    plan = plan_sweep(cfg, IDS, [10, 30], context=30, overhead=4)
    assert plan.units[0].slots == (Slot(0, 0, True), Slot(8, 0, True), Slot(32, 0, False))
    assert plan.units[1].slots == (Slot(0, 0, False), Slot(8, 0, False), Slot(32, 0, False))
    assert plan.thoughts == (Thought(0, 8, (0, 8)),)  # problem 1 fits nothing: no thinking


def test_extend_mode_thinks_up_to_the_largest_budget_or_not_at_all():
    cfg = SweepConfig((8, 32), mode="extend", max_extensions=2)
    plan = plan_sweep(cfg, IDS, [5, 5], [{(0, 8, 1)}, set()])
    assert plan.units[0].slots == (Slot(8, 1, True),)
    assert plan.thoughts == (Thought(0, 32, (8,)),)  # an extension may run up to budget 32
    fresh = plan_sweep(cfg, IDS, [5, 20], context=50, overhead=4)  # 20 + 32 + 4 > 50
    assert [s.level for s in fresh.units[0].slots] == [0, 1, 2, 0, 1, 2]
    assert not any(s.fits for s in fresh.units[1].slots)  # 8 fits, but not its extensions' room
    assert [t.unit for t in fresh.thoughts] == [0]


def test_an_independent_sweep_plans_one_thought_per_budget():
    cfg = SweepConfig((0, 8, 32), sweep="independent")
    plan = plan_sweep(cfg, IDS[:1], [5], context=40, overhead=4)
    assert plan.thoughts == (Thought(0, 0, (0,)), Thought(0, 8, (8,)))


def test_a_natural_end_within_the_budget_stands_and_past_it_thinking_is_cut_with_the_cue():
    trace = Trace(ids=[1, 2, 3, 4, 5, 6], ends=[4])
    end, cue = [90], [91, 92]
    assert cut_prefix([7], trace, 8, 0, end, cue) == Prefix((7, 1, 2, 3, 4, 90), 4, 4, False)
    assert cut_prefix([7], trace, 2, 0, end, cue) == Prefix((7, 1, 2, 90, 91, 92), 2, None, True)
    # level 1 has no natural end: cut at the budget, or at the trace's end
    assert cut_prefix([7], trace, 5, 1, end, cue) == Prefix((7, 1, 2, 3, 4, 5, 90, 91, 92), 5, None, True)
    assert cut_prefix([7], trace, 9, 1, end, cue).used == 6


def test_thinking_that_ended_with_eos_is_not_cut_but_still_gets_the_cue():
    trace = Trace(ids=[1, 2, 3], eos_at=3)
    assert cut_prefix([7], trace, 8, 0, [90], [91]) == Prefix((7, 1, 2, 3, 90, 91), 3, None, False)
    assert cut_prefix([7], trace, 2, 0, [90], [91]) == Prefix((7, 1, 2, 90, 91), 2, None, True)


# -- the whole loop on a scripted engine: what run() makes of the plan -----------------------
class CharTokenizer:
    """One token per character; </think> is one token (id 1), <eos> id 0."""

    eos_token_id = 0

    def encode(self, text, add_special_tokens=False):
        ids, rest = [], text
        while rest:
            if rest.startswith("</think>"):
                ids.append(1)
                rest = rest[len("</think>"):]
            else:
                ids.append(ord(rest[0]) + 10)
                rest = rest[1:]
        return ids

    def decode(self, ids, skip_special_tokens=False):
        return "".join("</think>" if i == 1 else "<eos>" if i == 0 else chr(i - 10) for i in ids)


class ScriptedEngine:
    """Thinks `THOUGHT` then ends thinking; answers "42"; scores every token at -1."""

    THOUGHT = "abcdef"

    def __init__(self, max_model_len=None):
        self.tokenizer, self.max_model_len, self.scored = CharTokenizer(), max_model_len, []

    def generate(self, reqs):
        from evalharness.types import Completion

        out = []
        for r in reqs:
            if r.stop_ids:  # thinking: up to the budget, ending naturally after THOUGHT
                ids = self.tokenizer.encode(self.THOUGHT)[: r.max_tokens]
                done = len(ids) == len(self.THOUGHT)
                out.append([Completion(ids, "", [], "stop" if done else "length",
                                       1 if done else None)])
            else:
                out.append([Completion([62, 60], "42", [-0.5, -0.5], "stop", 0)])
        return out

    def score(self, pairs):
        from evalharness.types import ScoreResult

        self.scored += pairs
        return [ScoreResult([-1.0] * len(c), [True] * len(c)) for _, c in pairs]


def _sweep(engine, cfg, problems, need=None):
    from evalharness.formats import FORMATS
    from evalharness.sweep import Sweeper

    prompts = [engine.tokenizer.encode(p.prompt) for p in problems]
    meta = {"run_id": "r", "model": "m", "task": "t"}
    return list(Sweeper(engine, FORMATS["zoo"], cfg).run(problems, prompts, meta, need))


def test_run_yields_one_unit_per_sample_and_scores_each_distinct_prefix_once():
    from evalharness.types import Problem

    engine = ScriptedEngine()
    problems = [Problem("p0", "1+1=", "2"), Problem("p1", "2+2=", "4")]
    units = _sweep(engine, SweepConfig((2, 8, 16)), problems)
    assert [[(r.problem_id, r.budget) for r in u] for u in units] == [
        [("p0", 2), ("p0", 8), ("p0", 16)], [("p1", 2), ("p1", 8), ("p1", 16)]]
    r2, r8, r16 = units[0]
    assert (r2.thinking, r2.cut, r2.natural_thinking_tokens) == ("ab", True, None)
    assert (r8.thinking, r8.cut, r8.natural_thinking_tokens) == ("abcdef", False, 6)
    assert r16.thinking == r8.thinking and r16.answer == "42"
    assert r2.generated_tokens == 2 + 1 + 2  # thinking + forced marker + answer
    # budgets 8 and 16 share the natural-end prefix: 2 distinct prefixes per problem
    assert len(engine.scored) == 4


def test_a_budget_past_the_context_gives_an_error_record_beside_those_that_fit():
    from evalharness.types import Problem

    engine = ScriptedEngine(max_model_len=4 + 8 + 1 + 16)  # prompt + 8 + marker + answer
    (unit,) = _sweep(engine, SweepConfig((8, 9)), [Problem("p0", "1+1=", "2")])
    fits, over = unit
    assert fits.finish_reason == "stop" and fits.answer == "42"
    assert over.finish_reason.startswith("error: prompt (4) + budget (9)") and over.answer == ""

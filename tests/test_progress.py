"""Token progress bars: counts, rate and ETA from a fake clock, silence, engines' callbacks."""

import io

import pytest

from evalharness.progress import Progress, call_with_progress, generated_tokens
from evalharness.types import GenRequest


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_bar_shows_tokens_rate_and_eta_from_the_clock(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out, clock = TTY(), FakeClock()
    progress = Progress(stream=out, clock=clock, interval=0)
    with progress.phase("thinking", total_tokens=1000) as tick:
        clock.t += 2
        tick(200)
        assert tick.line() == "thinking  20% 200/1,000 tok 100 tok/s ETA 0:08"
        clock.t += 2
        tick(1100)  # past the estimate: the total follows
    assert tick.done == tick.total == 1300
    assert "thinking 100% 1,300/1,300 tok" in out.getvalue()
    assert out.getvalue().endswith("\n")


def test_bar_redraws_at_most_once_per_interval(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out, clock = TTY(), FakeClock()
    with Progress(stream=out, clock=clock, interval=1.0).phase("answers", 50) as tick:
        for _ in range(50):
            clock.t += 0.1
            tick(1)
    assert 4 <= out.getvalue().count("answers") <= 7  # 5 s of ticks, one draw a second + close


@pytest.mark.parametrize("case", ["disable", "ci", "not a tty"])
def test_bar_is_silent_when_disabled_in_ci_or_off_a_terminal(case, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out = io.StringIO() if case == "not a tty" else TTY()
    if case == "ci":
        monkeypatch.setenv("CI", "true")
    with Progress(disable=case == "disable", stream=out, interval=0).phase("scoring", 10) as tick:
        tick(10)
    assert out.getvalue() == ""
    assert tick.done == 10  # still counted


def test_engines_without_the_hook_tick_once_per_call():
    def generate(requests):  # like the Ray replica engine: no progress argument
        return [["a" * len(r)] for r in requests]

    ticks: list[int] = []
    res = call_with_progress(generate, ["ab", "cde"], ticks.append,
                             lambda out: sum(len(c[0]) for c in out))
    assert res == [["aa"], ["aaa"]] and ticks == [5]


def test_hf_engine_ticks_every_decode_step(hf_largest):
    tok = hf_largest.tokenizer
    reqs = [GenRequest(tok.encode(p + "<think>"), m) for p, m in [("12+34=", 3), ("5+6=", 9),
                                                                   ("81+7=", 17)]]
    ticks: list[int] = []
    with Progress(disable=True).phase("thinking", sum(r.max_tokens for r in reqs)) as bar:
        out = call_with_progress(hf_largest.generate, reqs, lambda n: (ticks.append(n), bar(n)),
                                 generated_tokens)
    assert sum(ticks) == bar.done == generated_tokens(out)
    assert len(ticks) > 1 and max(ticks) <= len(reqs)


@pytest.mark.vllm
def test_vllm_bar_total_equals_generated_tokens(largest, vllm_pool):
    eng = vllm_pool.get(largest.path)
    tok = eng.tokenizer
    reqs = [GenRequest(tok.encode(p + "<think>"), m, temperature=t, seed=1, n=n)
            for p, m, t, n in [("12+34=", 60, 0.0, 1), ("5+6=", 4, 0.0, 1), ("7+8=", 30, 1.0, 2)]]
    with Progress(disable=True).phase("thinking", sum(r.max_tokens * r.n for r in reqs)) as bar:
        out = eng.generate(reqs, progress=bar)
    assert bar.done == generated_tokens(out) > 0
    assert out == eng.generate(reqs)  # the progress path decodes exactly what generate does
    pairs = [([3, 4, 5], [6, 7]), ([3] * 600, [4])]
    with Progress(disable=True).phase("scoring", 3) as sbar:
        eng.score(pairs, progress=sbar)
    assert sbar.done == 3

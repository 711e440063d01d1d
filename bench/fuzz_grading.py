"""Fuzz answer extraction and grading with adversarial model outputs; report the slowest calls.
Goal: no exception, and no call slower than `answers.GRADE_TIME_LIMIT_S` (6 s).

    .venv/bin/python bench/fuzz_grading.py [--inputs 100000] [--big 2] [--seed 0]

Every input goes through extract_answer -> grade (against a reference of its type, some of them
absurd too) -> canonical_answer, for each answer type in turn. The inputs (`adversarial`) mix
answer-shaped text around absurd numbers (huge exponents, 10^4-digit runs, \\frac of huge
numbers), soups of LaTeX/cue fragments, long repeats (unclosed \\boxed{, braces, spaces, "1a"),
unicode (lone surrogates, NUL, U+2028); `--big` per type are 1 MB, 1% are 10-200 kB.
math-verify runs for real (its worker process, deadline and all), so "math" dominates the time.
The tests import `adversarial` and `REFERENCES` from here.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalharness.scoring import answers, mathverify  # noqa: E402

TYPES = ("integer", "number", "math", "string", "choice")
BIG_SIZE = 1 << 20

FRAGMENTS = [
    "\\boxed{", "\\fbox{", "\\boxed ", "{", "}", "{{{{", "}}}}", "$", "$$", "\\$", "\\(", "\\)",
    "\\[", "\\]", "answer is", "The answer is ", "Answer:", "ANSWER: ", "final answer is $",
    "####", "#### ", "\n", " ", "\t", "   ", "(B)", "B.", " C ", "(e)", "**", "Option D",
    "1,234", "-3.5", "0.333333", "1/3", "\\frac{1}{2}", "\\dfrac12", "\\frac{", "}{", "=", "x = ",
    ".", ". ", ",", "%", "e", "E", "1e5000", "1e100000000", "1e-99999", "9e9999999", "95E821541433",
    "\\sqrt{", "\\left(", "\\right)", "\\text{", "\\mathrm{", "^", "^{", "_", "\\pi", "\\infty",
    "\\{", "\\}", "(", ")", "[", "]", "!", "\\binom{", "9^{9^{9}}", "10^{10^{10}}", "x^x^x^x",
    "(x+1)^{1000}", "10000000!", "é", "∑", "😀", "\u2212", "\u00b0", "\u2028", "\u00a0", "\x00",
    "\ud800", "1a", "a1", "abc", "dollars", "apples.", "\\circ", "~", "\\,", "\\!",
]
# What long inputs repeat: each one stresses some path (boxes, cues, ####, numbers, letters).
REPEATS = [
    "\\boxed{", "{", "}", "1", "9", "a", " ", "\n", "answer is ", "#### ", "(A) ", "1,", "1e",
    ".", "$", "\\frac{", "^{", "(", "é", "1a", "\\text{", " \n",
]
WRAPS = [
    "{}", "The answer is {}.", "\\boxed{{{}}}", "#### {}", "$ {} $", "x = {}", "{} dollars",
    "({})", "answer: {}\n", "\\boxed{{\\frac{{{}}}{{7}}}}",
]
REFERENCES = {
    "integer": ["72", "1234", "-5", "1e5000", "0", "1e100000000"],
    "number": ["0.5", "1/3", "1e5000", "3.14159", "\\frac{1}{3}"],
    "math": ["\\frac{1}{2}", "(0,1]", "x^2+1", "1e5000", "2\\pi", "9^{9^{9}}"],
    "string": ["Paris", "new york", "1e5000"],
    "choice": ["B", "(C)", "Z"],
}


def _digits(rng: random.Random, k: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(k))


def _number(rng: random.Random) -> str:
    """An absurd number: digit runs log-uniform up to 10^4, exponents up to 12 digits."""

    def size() -> int:
        return int(10 ** rng.uniform(0, rng.choice([1, 2, 4])))

    s = rng.choice(["", "-", "+", "\u2212"]) + _digits(rng, size())
    if rng.random() < 0.4:
        s += "." + _digits(rng, size())
    if rng.random() < 0.4:
        s += (
            rng.choice("eE")
            + rng.choice(["", "-", "+"])
            + _digits(rng, rng.choice([1, 3, 5, 9, 12]))
        )
    if rng.random() < 0.2:
        s += "/" + _digits(rng, size())
    if rng.random() < 0.2:
        s = f"\\frac{{{_digits(rng, size())}}}{{{_digits(rng, size())}}}"
    return s


def adversarial(rng: random.Random, max_repeat: int = 2000) -> str:
    """One adversarial model output (up to ~40 kB)."""
    mode = rng.random()
    if mode < 0.35:  # a soup of fragments
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 30)))
    if mode < 0.55:  # a long repeat, in an answer cue or a box or bare
        body = rng.choice(REPEATS + FRAGMENTS) * rng.randint(1, max_repeat)
        head = rng.choice(["", "The answer is ", "\\boxed{", "#### ", "1"])
        return head + body + rng.choice(["", "!", "5", "}", ".", "a"])
    if mode < 0.8:  # an answer-shaped text around an absurd number
        return rng.choice(WRAPS).format(_number(rng))
    out = []  # mixed letters and digits, nested and unbalanced brackets
    for _ in range(rng.randint(1, 40)):
        r = rng.random()
        if r < 0.3:
            out.append(rng.choice("{}()[]") * rng.randint(1, 12))
        elif r < 0.6:
            out.append(rng.choice(["1", "a", "1a", "a1", "9", "z", "A"]) * rng.randint(1, 50))
        else:
            out.append(rng.choice(FRAGMENTS))
    return "".join(out)


def sized(rng: random.Random, size: int) -> str:
    """An adversarial text of about `size` characters: repeats, alternations, padded answers."""
    kind = rng.randrange(4)
    if kind == 0:
        unit = rng.choice(REPEATS)
        return (unit * (size // len(unit) + 1))[:size]
    if kind == 1:  # the quadratic-regex shape: digits, then letters, then a spoiler
        half = size // 2
        return rng.choice("19") * half + rng.choice("az") * (size - half - 1) + "!"
    if kind == 2:
        a, b = rng.sample(REPEATS, 2)
        return ((a + b) * (size // len(a + b) + 1))[:size]
    pad = rng.choice([" ", "\n", "x", "{"])
    return rng.choice(WRAPS).format(pad * size + _number(rng))


def _inputs(n: int, big: int, seed: int):
    rng = random.Random(seed)
    for i in range(n):
        kind = TYPES[i % len(TYPES)]
        if i // len(TYPES) < big:
            text = sized(rng, BIG_SIZE)
        elif rng.random() < 0.01:
            text = sized(rng, int(10 ** rng.uniform(4, 5.3)))  # 10-200 kB
        else:
            text = adversarial(rng)
        yield kind, text, rng.choice(REFERENCES[kind])


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _timed(fn, *args) -> tuple[object, float, int]:
    """fn(*args), its wall time, and 1 if it raised (the functions promise never to)."""
    t = time.perf_counter()
    try:
        out, raised = fn(*args), 0
    except Exception:
        out, raised = None, 1
    return out, time.perf_counter() - t, raised


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="in all, split over the types")
    ap.add_argument("--big", type=int, default=2, help="1 MB inputs per answer type")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    errors = _Errors()
    logging.getLogger(answers.__name__).addHandler(errors)
    logging.getLogger(answers.__name__).setLevel(logging.ERROR)
    logging.getLogger(mathverify.__name__).setLevel(logging.ERROR)  # the deadline's warnings
    slowest: list[tuple[float, str, str, int, str]] = []  # min-heap of the 5 slowest calls
    per_type = {k: [0, 0.0, 0.0] for k in TYPES}  # inputs, seconds, slowest call
    exceptions = 0
    t_all = time.perf_counter()
    for kind, text, ref in _inputs(args.inputs, args.big, args.seed):
        pred, t_extract, e1 = _timed(answers.extract_answer, text, kind)
        _, t_grade, e2 = _timed(answers.grade, pred, ref, kind)
        _, t_canon, e3 = _timed(answers.canonical_answer, pred, kind)
        exceptions += e1 + e2 + e3
        for name, dt in (("extract_answer", t_extract), ("grade", t_grade),
                         ("canonical_answer", t_canon)):
            per_type[kind][1] += dt
            per_type[kind][2] = max(per_type[kind][2], dt)
            item = (dt, name, kind, len(text), repr(text[:60]))
            if len(slowest) < 5:
                heapq.heappush(slowest, item)
            elif dt > slowest[0][0]:
                heapq.heapreplace(slowest, item)
        per_type[kind][0] += 1
    total = time.perf_counter() - t_all

    n = sum(v[0] for v in per_type.values())
    print(f"inputs: {n:,} ({args.big} of {BIG_SIZE:,} chars per type); "
          f"calls: {3 * n:,}; total {total:.1f} s")
    print(f"{'type':>8} {'inputs':>8} {'seconds':>8} {'mean us':>8} {'max s':>7}")
    for kind, (count, secs, worst) in per_type.items():
        print(
            f"{kind:>8} {count:>8,} {secs:>8.1f} {1e6 * secs / max(count, 1):>8.0f} {worst:>7.3f}"
        )
    print("slowest calls:")
    print(f"{'seconds':>8}  {'call':<16} {'type':<8} {'length':>9}  first 60 chars")
    for dt, name, kind, length, head in sorted(slowest, reverse=True):
        print(f"{dt:>8.3f}  {name:<16} {kind:<8} {length:>9,}  {head}")
    limit = answers.GRADE_TIME_LIMIT_S
    worst = max(slowest)[0] if slowest else 0.0
    verdict = "OK" if worst <= limit else "OVER"
    events = ", ".join(f"{k} {v}" for k, v in sorted(answers.mv_events.items())) or "none"
    print(f"math-verify worker processes: {events}")
    print(f"slowest call {worst:.3f} s (bound {limit:.0f} s: {verdict}); exceptions raised: "
          f"{exceptions}; errors logged: {len(errors.records)}")


if __name__ == "__main__":
    main()

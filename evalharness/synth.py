"""Synthetic reasoning tasks whose thinking is a fixed-width, right-to-left scratchpad.

Every digit step has the same width (e.g. ``7+8+1=16;``) so each dependency sits at a fixed
distance from where it is needed: small transformers learn it, and the thinking length grows
linearly with the digit count, which lets a held-out set control how much thinking is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPS = ("add", "mul")
MAX_DIGITS = 8


@dataclass(frozen=True)
class Arith:
    """One arithmetic problem. For ``mul`` the second operand is a single digit."""

    op: str
    a: int
    b: int

    @property
    def id(self) -> str:
        sym = "+" if self.op == "add" else "*"
        return f"{self.op}-{self.a}{sym}{self.b}"

    @property
    def prompt(self) -> str:
        return f"{self.a}{'+' if self.op == 'add' else '*'}{self.b}="

    @property
    def answer(self) -> str:
        return str(self.a + self.b if self.op == "add" else self.a * self.b)

    @property
    def digits(self) -> int:
        return len(str(max(self.a, self.b) if self.op == "add" else self.a))

    @property
    def thinking(self) -> str:
        """Right-to-left digit steps, each ``x?y+c=ss;`` (9 characters)."""
        if self.op == "add":
            n = max(len(str(self.a)), len(str(self.b)))
            da, db = str(self.a).zfill(n)[::-1], str(self.b).zfill(n)[::-1]
            steps, c = [], 0
            for x, y in zip(da, db, strict=True):
                s = int(x) + int(y) + c
                steps.append(f"{x}+{y}+{c}={s:02d};")
                c = s // 10
            return "".join(steps)
        steps, c = [], 0
        for x in str(self.a)[::-1]:
            s = int(x) * self.b + c
            steps.append(f"{x}*{self.b}+{c}={s:02d};")
            c = s // 10
        return "".join(steps)


def sample_operand(rng: np.random.Generator, digits: int) -> int:
    lo = 0 if digits == 1 else 10 ** (digits - 1)
    return int(rng.integers(lo, 10**digits))


def sample(rng: np.random.Generator, op: str, digits: int) -> Arith:
    if op == "add":
        return Arith("add", sample_operand(rng, digits), sample_operand(rng, digits))
    if op == "mul":
        return Arith("mul", sample_operand(rng, digits), int(rng.integers(2, 10)))
    raise ValueError(f"unknown op {op!r}; choose from {OPS}")


def heldout_set(op: str, digits: Iterable[int], seed: int) -> list[Arith]:
    """One distinct problem per entry of `digits` (its digit count), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    out: dict[str, Arith] = {}
    for d in digits:
        while (p := sample(rng, op, d)).id in out:
            pass
        out[p.id] = p
    return list(out.values())


# Digit counts for the budget-sweep set: frequency ~ 1/d (1 digit capped, there are only 100
# one-digit sums), so log(needed thinking length) = log(9d) is roughly uniform over 9..72 tokens.
LOG_UNIFORM_COUNTS = {1: 50, 2: 70, 3: 50, 4: 40, 5: 30, 6: 25, 7: 20, 8: 20}


def log_uniform_digits() -> list[int]:
    return [d for d, k in LOG_UNIFORM_COUNTS.items() for _ in range(k)]


def write_jsonl(problems: Iterable[Arith], path: Path) -> None:
    with open(path, "w") as f:
        for p in problems:
            row = {"id": p.id, "prompt": p.prompt, "answer": p.answer, "thinking": p.thinking,
                   "op": p.op, "digits": p.digits}
            f.write(json.dumps(row) + "\n")


def read_jsonl_ids(paths: Iterable[Path]) -> set[str]:
    ids: set[str] = set()
    for path in paths:
        with open(path) as f:
            ids.update(json.loads(line)["id"] for line in f if line.strip())
    return ids


def training_stream(seed: int, exclude: set[str], mul_share: float = 0.2) -> Iterator[Arith]:
    """Endless fresh training problems, uniform in 1..8 digits, never a held-out problem."""
    rng = np.random.default_rng(seed)
    while True:
        op = "mul" if rng.random() < mul_share else "add"
        p = sample(rng, op, int(rng.integers(1, MAX_DIGITS + 1)))
        if p.id not in exclude:
            yield p
# The fixed held-out sets committed under tasks/data/ (never trained on): name -> (op, digits, seed).
HELDOUT: dict[str, tuple[str, list[int], int]] = {
    "add5": ("add", [5] * 500, 1001),
    "add_sweep": ("add", log_uniform_digits(), 1002),
    "mul": ("mul", [d for d in range(1, MAX_DIGITS + 1) for _ in range(40)], 1003),
}


def write_heldout_sets(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (op, digits, seed) in HELDOUT.items():
        path = directory / f"{name}.jsonl"
        write_jsonl(heldout_set(op, digits, seed), path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# add_mc: multiple-choice sums (tasks/add_mc.yaml). Not a held-out set (the zoo may have seen
# these sums in training): it measures how a model ranks the right sum against near misses.

ADD_MC_SEED = 1004
ADD_MC_SIZE = 200
ADD_MC_LETTERS = "ABCD"


def _dropped_carry(a: int, b: int, rng: np.random.Generator) -> int | None:
    """a + b with one carry forgotten (the column's tens digit never reaches the next column),
    or None when the sum has no carry."""
    n = max(len(str(a)), len(str(b)))
    da, db = str(a).zfill(n)[::-1], str(b).zfill(n)[::-1]
    carries, c = [], 0
    for k, (x, y) in enumerate(zip(da, db, strict=True)):
        s = int(x) + int(y) + c
        c = s // 10
        if c:
            carries.append(k)
    if not carries:
        return None
    return a + b - 10 ** (int(rng.choice(carries)) + 1)


def _digit_off(total: int, rng: np.random.Generator) -> int:
    """``total`` with one digit one higher or lower (the leading digit never becomes 0)."""
    s = str(total)
    while True:
        k = int(rng.integers(len(s)))
        step = int(rng.choice([-1, 1]))
        d = int(s[k]) + step
        if 0 <= d <= 9 and not (k == 0 and d == 0):
            return int(s[:k] + str(d) + s[k + 1 :])


def add_mc_rows(n: int = ADD_MC_SIZE, seed: int = ADD_MC_SEED) -> list[dict]:
    """``n`` 3- to 5-digit sums with four options: the sum, a dropped-carry miss where the sum
    has a carry, and one-digit-off misses; the right option's position cycles A-D in a shuffled
    order so every letter is the answer equally often (n divisible by 4)."""
    rng = np.random.default_rng(seed)
    positions = rng.permutation(np.arange(n) % len(ADD_MC_LETTERS))
    rows, seen = [], set()
    for i in range(n):
        digits = 3 + i % 3
        while True:
            p = sample(rng, "add", digits)
            if p.id not in seen:
                break
        seen.add(p.id)
        total = p.a + p.b
        wrong: list[int] = []
        miss = _dropped_carry(p.a, p.b, rng)
        if miss is not None:
            wrong.append(miss)
        while len(wrong) < len(ADD_MC_LETTERS) - 1:
            w = _digit_off(total, rng)
            if w != total and w not in wrong:
                wrong.append(w)
        order = [int(x) for x in rng.permutation(wrong)]
        pos = int(positions[i])
        options = order[:pos] + [total] + order[pos:]
        rows.append({"id": f"add_mc-{p.a}+{p.b}", "question": f"{p.a}+{p.b}=",
                     "choices": [str(x) for x in options], "answer": ADD_MC_LETTERS[pos],
                     "digits": digits})
    return rows


def _write_rows(directory: Path, name: str, rows: Iterable[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def write_add_mc(directory: Path) -> Path:
    return _write_rows(directory, "add_mc.jsonl", add_mc_rows())


# ---------------------------------------------------------------------------------------------
# chat_arith: small sums and differences asked in words (tasks/chat_arith.yaml), for a real chat
# model. The zoo's "a+b=" prompt and bare-number answers give a chat model nothing it reads as a
# question (SmolLM2-135M-Instruct gave no extractable answer there), and with two two-digit
# operands it was almost never right; a one-digit second operand keeps the task within what a
# 135M model partly solves, so its accuracy can move with the thinking budget.

CHAT_ARITH_SEED = 1005
CHAT_ARITH_SIZE = 200


def chat_arith_rows(n: int = CHAT_ARITH_SIZE, seed: int = CHAT_ARITH_SEED) -> list[dict]:
    """``n`` distinct problems "What is a + b?" / "What is a - b?", alternating the operation;
    b has one digit, a one digit (difficulty 1) or two (difficulty 2) for alternate pairs of
    problems; a difference is never negative."""
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    for i in range(n):
        op, sym = ("add", "+") if i % 2 == 0 else ("sub", "-")
        digits = 1 + (i // 2) % 2
        while True:
            a, b = sample_operand(rng, digits), sample_operand(rng, 1)
            if op == "sub" and b > a:  # only one-digit pairs can be out of order
                a, b = b, a
            pid = f"{op}-{a}{sym}{b}"
            if pid not in seen:
                break
        seen.add(pid)
        rows.append({"id": pid, "question": f"What is {a} {sym} {b}?",
                     "answer": str(a + b if op == "add" else a - b), "op": op, "digits": digits})
    return rows


def write_chat_arith(directory: Path) -> Path:
    return _write_rows(directory, "chat_arith.jsonl", chat_arith_rows())

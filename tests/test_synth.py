from pathlib import Path

import numpy as np

from evalharness import synth

TASKS_DATA = Path(__file__).resolve().parents[1] / "tasks" / "data"


def test_addition_scratchpad_is_right_to_left_with_carries():
    p = synth.Arith("add", 958, 67)
    assert p.thinking == "8+7+0=15;5+6+1=12;9+0+1=10;"
    assert p.answer == "1025"
    assert p.prompt == "958+67="


def test_multiplication_scratchpad_carries_partial_products():
    p = synth.Arith("mul", 457, 8)
    assert p.thinking == "7*8+0=56;5*8+5=45;4*8+4=36;"
    assert p.answer == str(457 * 8)


def test_every_step_has_the_same_width():
    rng = np.random.default_rng(0)
    for d in range(1, synth.MAX_DIGITS + 1):
        for op in synth.OPS:
            p = synth.sample(rng, op, d)
            assert len(p.thinking) == 9 * d
            assert p.digits == d


def test_committed_heldout_sets_are_reproducible_from_their_seeds(tmp_path):
    paths = synth.write_heldout_sets(tmp_path)
    for p in paths:
        assert p.read_bytes() == (TASKS_DATA / p.name).read_bytes(), p.name


def test_training_stream_never_yields_a_heldout_problem():
    held = synth.read_jsonl_ids(TASKS_DATA / f"{name}.jsonl" for name in synth.HELDOUT)
    assert len(held) == 500 + 305 + 320
    stream = synth.training_stream(0, held)
    seen = [next(stream).id for _ in range(20000)]
    assert not held.intersection(seen)
    # and the exclusion is doing work: without it, short held-out sums do come up
    unfiltered = synth.training_stream(0, set())
    assert held.intersection(next(unfiltered).id for _ in range(20000))


def test_heldout_sweep_set_is_roughly_log_uniform_in_thinking_length():
    # per octave of needed thinking length (9*d tokens): [9,18), [18,36), [36,72]
    counts = synth.LOG_UNIFORM_COUNTS
    octaves = [sum(k for d, k in counts.items() if lo <= 9 * d < hi)
               for lo, hi in [(9, 18), (18, 36), (36, 73)]]
    assert octaves[1] / octaves[2] > 0.8 and octaves[2] / octaves[1] > 0.8
    # the first octave is one digit count with only 100 distinct sums: capped at half of them
    assert octaves[0] == 50

from __future__ import annotations

import itertools
import random
from collections import Counter

import numpy as np
import pytest

from evalharness.metrics import (
    best_of_k,
    majority_at_k,
    pass_at_k,
)
from evalharness.stats import bootstrap_ci, bootstrap_means


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    flags = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(flags[i] for i in s) for s in subsets) / len(subsets)


def brute_majority(answers, flags, k: int) -> float:
    """Plurality vote over every k-subset; None abstains; ties split uniformly."""
    correct = {}
    for a, f in zip(answers, flags, strict=True):
        if a is not None:
            correct[a] = correct.get(a, False) or f
    subsets = list(itertools.combinations(range(len(answers)), k))
    total = 0.0
    for subset in subsets:
        votes = Counter(answers[i] for i in subset if answers[i] is not None)
        if votes:
            top = max(votes.values())
            winners = [a for a, v in votes.items() if v == top]
            total += sum(correct[w] for w in winners) / len(winners)
    return total / len(subsets)


def brute_best_of(scores, flags, k: int) -> float:
    """Highest score in every k-subset, ties split uniformly; NaN ranks last."""
    s = [-np.inf if np.isnan(x) else x for x in scores]
    subsets = list(itertools.combinations(range(len(s)), k))
    total = 0.0
    for subset in subsets:
        top = max(s[i] for i in subset)
        best = [i for i in subset if s[i] == top]
        total += sum(flags[i] for i in best) / len(best)
    return total / len(subsets)


def test_pass_at_k_matches_enumeration_of_all_subsets():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_broadcasts_and_is_nan_beyond_n():
    out = pass_at_k(np.array([10, 10, 4]), np.array([0, 3, 4]), np.array([[1], [5]]))
    assert out.shape == (2, 3)
    assert out[0, 0] == 0.0 and out[0, 2] == 1.0
    assert out[0, 1] == pytest.approx(0.3)
    assert np.isnan(out[1, 2])  # k = 5 > n = 4


def test_pass_at_k_stays_accurate_for_large_n():
    # Chen et al.'s product form, computed directly, as the reference.
    n, c, k = 2000, 3, 700
    expected = 1 - np.prod(1 - k / np.arange(n - c + 1, n + 1))
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-10)
    assert pass_at_k(10_000, 1, 1) == pytest.approx(1e-4, rel=1e-9)


def test_pass_at_k_rejects_bad_input():
    with pytest.raises(ValueError):
        pass_at_k(5, 2, 0)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_majority_at_k_matches_enumeration_with_ties_and_abstentions():
    rng = random.Random(1)
    for _ in range(250):
        n = rng.randint(1, 9)
        answers = [rng.choice(["a", "b", "c", "d", None]) for _ in range(n)]
        right = set(rng.sample(["a", "b", "c"], rng.randint(0, 2)))  # 0-2 correct classes
        flags = [a in right for a in answers]
        for k in range(1, n + 1):
            assert majority_at_k(answers, flags, k) == pytest.approx(
                brute_majority(answers, flags, k), abs=1e-12
            ), (answers, flags, k)


def test_majority_at_k_is_expected_value_not_first_k():
    # First 3 samples are all wrong, but a random 3-subset usually has 2+ "x" votes.
    answers = ["y", "z", "w", "x", "x", "x", "x"]
    flags = [a == "x" for a in answers]
    assert majority_at_k(answers, flags, 3) == pytest.approx(brute_majority(answers, flags, 3))
    assert majority_at_k(answers, flags, 3) > 0.6


def test_majority_at_k_edge_cases():
    assert majority_at_k(["a"] * 5, [True] * 5, 3) == pytest.approx(1.0)
    assert majority_at_k([None] * 4, [False] * 4, 2) == 0.0
    assert np.isnan(majority_at_k(["a", "b"], [True, False], 3))
    assert majority_at_k(["a", "b"], [True, False], 2) == pytest.approx(0.5)  # a tie


def test_majority_at_k_does_not_overflow_for_thousands_of_samples():
    # C(1101, 550) is ~1e330, beyond float64: only the rescaled computation survives this.
    # Three classes of equal size: by symmetry each wins a third of the votes.
    answers = ["right"] * 367 + ["x"] * 367 + ["y"] * 367
    flags = [a == "right" for a in answers]
    assert majority_at_k(answers, flags, 1051) == pytest.approx(1 / 3, abs=1e-9)
    lopsided = ["right"] * 700 + ["wrong"] * 400
    value = majority_at_k(lopsided, [a == "right" for a in lopsided], 1051)
    assert value == pytest.approx(1.0, abs=1e-12)


def test_best_of_k_matches_enumeration_with_ties_and_nan_scores():
    rng = np.random.default_rng(3)
    for _ in range(150):
        n = int(rng.integers(1, 8))
        scores = rng.choice([-0.1, -0.5, -1.0, np.nan], n)
        flags = list(rng.random(n) < 0.5)
        for k in range(1, n + 1):
            assert best_of_k(scores, flags, k) == pytest.approx(
                brute_best_of(list(scores), flags, k), abs=1e-12
            )


def test_best_of_k_picks_the_most_confident_sample_at_k_equals_n():
    assert best_of_k([-2.0, -0.1, -3.0], [False, True, False], 3) == pytest.approx(1.0)
    assert best_of_k([-2.0, -0.1, -3.0], [True, False, True], 3) == pytest.approx(0.0)


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_more_problems():
    rng = np.random.default_rng(0)
    small = rng.random(30)
    large = rng.random(3000)
    ci_small, ci_large = bootstrap_ci(small, seed=1), bootstrap_ci(large, seed=1)
    assert ci_small.estimate == pytest.approx(small.mean())
    assert ci_small.lo < ci_small.estimate < ci_small.hi
    assert ci_large.hi - ci_large.lo < (ci_small.hi - ci_small.lo) / 5


def test_bootstrap_ci_is_reproducible_and_supports_other_statistics():
    values = np.arange(50, dtype=float)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    med = bootstrap_ci(values, stat=np.median, n_boot=300, seed=7)
    assert med.estimate == 24.5 and med.lo < 24.5 < med.hi


def test_bootstrap_ci_covers_the_true_mean_at_roughly_the_nominal_rate():
    rng = np.random.default_rng(5)
    hits = 0
    for rep in range(200):
        ci = bootstrap_ci(rng.binomial(1, 0.3, 200), n_boot=400, seed=rep)
        hits += ci.lo <= 0.3 <= ci.hi
    assert 0.9 <= hits / 200 <= 0.99


def test_bootstrap_means_ignores_missing_cells_per_column():
    values = np.array([[1.0, np.nan], [3.0, 5.0], [5.0, 5.0]])
    reps = bootstrap_means(values, n_boot=200, seed=0)
    assert reps.shape == (200, 2)
    assert np.nanmin(reps[:, 1]) == 5.0 and np.nanmax(reps[:, 1]) == 5.0
    assert np.all((reps[:, 0] >= 1) & (reps[:, 0] <= 5))

"""TODO docstring: metrics."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import lru_cache

import numpy as np
from scipy.signal import convolve2d
from scipy.special import gammaln


def _log_comb(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


_PRODUCT_TERMS = 256  # beyond this many factors the log-gamma form is used (see pass_at_k)


def pass_at_k(n, c, k):
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), broadcast over arrays.

    The ratio is evaluated as a product, never as binomials: C(n-c, k) / C(n, k) equals both
    prod_{i<c} (1 - k/(n-i)) and prod_{j<k} (1 - c/(n-j)); we sum log1p of the shorter one
    (min(c, k) factors, vectorised over elements) and return -expm1(sum), so a pass@k of 1e-4
    keeps full precision. Only when both c and k exceed 256 (then pass@k is ~1 and precision is
    not at stake) does it switch to the equivalent log-gamma closed form. Returns NaN where
    k > n (undefined) and 1 where fewer than k samples are wrong.
    """
    n, c, k = np.broadcast_arrays(
        np.asarray(n, dtype=float), np.asarray(c, dtype=float), np.asarray(k, dtype=float)
    )
    if np.any(k < 1):
        raise ValueError("k must be >= 1")
    if np.any((c < 0) | (c > n)):
        raise ValueError("need 0 <= c <= n")
    wrong = n - c
    live = (wrong >= k) & (k <= n)  # elsewhere the answer is 1 or NaN, no product needed
    terms = np.where(live, np.minimum(c, k), 0).astype(np.int64)
    other = np.where(c <= k, k, c)  # the factor's numerator for the shorter product
    short = terms <= _PRODUCT_TERMS
    log_ratio = np.zeros(n.shape)
    for j in range(int(terms[short].max(initial=0))):
        on = short & (j < terms)
        log_ratio[on] += np.log1p(-other[on] / (n[on] - j))
    long = live & ~short
    if long.any():
        nl, wl, kl = n[long], wrong[long], k[long]
        log_ratio[long] = (
            gammaln(wl + 1) - gammaln(wl - kl + 1) - gammaln(nl + 1) + gammaln(nl - kl + 1)
        )
    out = np.where(wrong < k, 1.0, -np.expm1(log_ratio))
    out = np.where(k > n, np.nan, out)
    return out if out.ndim else float(out)


def _vote_classes(answers: Sequence[Hashable | None], correct_flags: Sequence[bool]):
    """(counts of correct classes, counts of wrong classes, abstentions) from raw votes."""
    counts: dict[Hashable, int] = {}
    correct: dict[Hashable, bool] = {}
    abstain = 0
    for answer, flag in zip(answers, correct_flags, strict=True):
        if answer is None or answer != answer:  # None / NaN: no answer, no vote
            abstain += 1
            continue
        counts[answer] = counts.get(answer, 0) + 1
        correct[answer] = correct.get(answer, False) or bool(flag)
    right = tuple(sorted((v for a, v in counts.items() if correct[a]), reverse=True))
    wrong = tuple(sorted((v for a, v in counts.items() if not correct[a]), reverse=True))
    return right, wrong, abstain


def majority_at_k(
    answers: Sequence[Hashable | None], correct_flags: Sequence[bool], k: int
) -> float:
    """Expected accuracy of a plurality vote over a uniformly random k-subset of the samples.

    `answers` are the (canonicalised) answers of the n samples, `correct_flags` whether each
    is correct. Equal answers form one class; None means "no answer" and casts no vote; a
    subset without any vote counts as wrong; ties are broken uniformly at random. Exact (see
    `majority_at_k_counts`); NaN if k > n.
    """
    right, wrong, abstain = _vote_classes(answers, correct_flags)
    return majority_at_k_counts(right, wrong, abstain, k)


@lru_cache(maxsize=65536)
def majority_at_k_counts(
    correct_counts: tuple[int, ...], wrong_counts: tuple[int, ...], abstain: int, k: int
) -> float:
    """Expected majority@k from class sizes only (cached: many problems share a profile).

    For a class a of size n_a to win with x votes, each other class b must get y_b <= x votes;
    if t of them also get x, a wins the tie with probability 1/(1+t). So

        P(a wins) = sum_x C(n_a, x) * [z^(k-x)] sum_t (1/(1+t)) [w^t]
                    prod_{b != a} (sum_{y<x} C(n_b, y) z^y + C(n_b, x) z^x w) * (1+z)^abstain
                    / C(n, k),

    a polynomial product in (z = subset size, w = ties) done with small 2-D convolutions.
    Classes of equal size and correctness have equal win probability, so each distinct size
    is evaluated once. Binomials are scaled by q^y with q = C(n, k)^(-1/k) so that the
    normaliser is 1 and nothing overflows for n in the thousands.
    """
    n = sum(correct_counts) + sum(wrong_counts) + abstain
    if k < 1:
        raise ValueError("k must be >= 1")
    if k > n:
        return float("nan")
    if not correct_counts:
        return 0.0
    log_q = -float(_log_comb(np.float64(n), np.float64(k))) / k
    classes = list(correct_counts) + list(wrong_counts)
    m = len(classes)

    def scaled(size: int, upto: int) -> np.ndarray:
        y = np.arange(min(size, upto) + 1, dtype=float)
        return np.exp(_log_comb(np.float64(size), y) + y * log_q)

    abstain_poly = scaled(abstain, k)[:, None]  # abstentions never tie
    total = 0.0
    for size, mult in _distinct_with_multiplicity(correct_counts):
        # The other classes: all but one instance of this size among the correct ones.
        others = list(classes)
        others.remove(size)
        rest = n - size
        for x in range(1, min(size, k) + 1):
            if x > k - x:
                # An outright majority: the others hold fewer votes whatever they are, so this
                # is the plain hypergeometric term.
                if k - x <= rest:
                    total += mult * float(
                        np.exp(
                            _log_comb(np.float64(size), np.float64(x))
                            + _log_comb(np.float64(rest), np.float64(k - x))
                            - _log_comb(np.float64(n), np.float64(k))
                        )
                    )
                continue
            if sum(min(o, x) for o in others) + abstain < k - x:
                continue  # the others cannot absorb k - x votes without out-voting x
            dp = np.zeros((k - x + 1, m), dtype=float)  # [selected so far, ties]
            dp[0, 0] = 1.0
            for other in others:
                kernel = np.zeros((min(other, x) + 1, 2))
                coefs = scaled(other, x)
                kernel[: min(other, x - 1) + 1, 0] = coefs[:x]
                if other >= x:
                    kernel[x, 1] = coefs[x]
                dp = convolve2d(dp, kernel)[: k - x + 1, :m]
            dp = convolve2d(dp, abstain_poly)[: k - x + 1, :m]
            tie_weight = 1.0 / (1.0 + np.arange(m))
            total += mult * scaled(size, x)[x] * float(dp[k - x] @ tie_weight)
    return float(min(max(total, 0.0), 1.0))


def _distinct_with_multiplicity(values: tuple[int, ...]) -> list[tuple[int, int]]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return sorted(out.items())


def best_of_k(scores: Sequence[float], correct_flags: Sequence[bool], k: int) -> float:
    """Expected accuracy of picking the highest-scoring sample from a random k-subset.

    The score is the model's own confidence (mean log-prob of its answer tokens); NaN scores
    (empty answers) rank last. With samples sorted by score, the top of a random k-subset is
    the sample of rank r (0-based) with probability C(n-1-r, k-1) / C(n, k). Samples with
    equal scores are a uniform tie, which by symmetry is the same as giving each of them the
    tie group's mean correctness. NaN if k > n.
    """
    s = np.asarray(scores, dtype=float)
    c = np.asarray(correct_flags, dtype=float)
    n = s.size
    if k < 1:
        raise ValueError("k must be >= 1")
    if k > n:
        return float("nan")
    s = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-s, kind="stable")
    s, c = s[order], c[order]
    _, group, group_size = np.unique(s, return_inverse=True, return_counts=True)
    c = (np.bincount(group, weights=c) / group_size)[group]
    return float(best_of_k_weights(np.full(n, n), np.arange(n), k) @ c)


def best_of_k_weights(n: np.ndarray, rank: np.ndarray, k: int) -> np.ndarray:
    """P(the sample of 0-based `rank` among `n` is the best of a random k-subset)."""
    n = np.asarray(n, dtype=float)
    rank = np.asarray(rank, dtype=float)
    rest = n - 1 - rank
    with np.errstate(invalid="ignore"):
        w = np.exp(_log_comb(rest, np.float64(k - 1)) - _log_comb(n, np.float64(k)))
    return np.where((rest >= k - 1) & (k <= n), w, 0.0)


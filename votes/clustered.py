"""The headline verdict of a pair of methods, clustered by query and safe to watch after every vote.

Votes on one query are not independent (some queries favour one method whatever the model), so
each query counts once:

- The estimate is the mean over queries of each query's share of decisive votes won by B: every
  query weighs the same, however often it was voted on. Its 95% interval is a Wilson score
  interval with an effective number of votes (Korn & Graubard 1998): n_eff = p(1-p) / Var(mean),
  the variance taken from the spread between queries, kept between the number of queries (a
  [0,1] share never varies more than a coin) and the number of decisive votes, with a Student t
  quantile on (queries - 1) degrees of freedom.
- "Significant" comes from an always-valid sequential test by betting (Waudby-Smith & Ramdas
  2023) over queries. A query enters a bettor once, when it reaches its m-th decisive vote, with
  its share of those m votes; later votes on it never move it again. There are three bettors, for
  m = 1, 3 and 10, so the test works with one vote per query and with many. Under "no difference"
  (queries independent, each as likely to favour A as B however much they differ, and the order in
  which queries are voted on not steered by who won) every entry of bettor m has mean 1/2 given
  bettor m's earlier entries, so each bettor's wealth is a test martingale in its own filtration
  and, by Ville's inequality, ever reaches 6/alpha with probability at most alpha/6. The three
  bettors see the data through different filtrations (bettor 3 sees a query that bettor 1 has
  already seen), so their average is no test martingale and Ville's inequality does not cover it;
  instead "better" is said when any one bettor, in either direction, reaches 6/alpha: a union
  bound over 3 bettors x 2 directions gives alpha in all, however often the test is looked at.
  The p-value shown is min(1, 6 / the largest wealth so far).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

FINALISE_AT = (1, 3, 10)  # a query enters the sequential test at its 1st, 3rd and 10th decisive vote
MAX_BET = 1.5  # bets stay in [0, 2) so that wealth never reaches zero


def wilson_interval(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed on n (possibly fractional) trials."""
    if n <= 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n))
    # exact at the ends (0 and 1 are bounds, not rounding), and the estimate always inside
    return (min(p, max(0.0, centre - half)) if p > 0 else 0.0, max(p, min(1.0, centre + half)) if p < 1 else 1.0)


def query_shares(queries: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """Per query (in sorted order of the ids): the share of its decisive votes that B won."""
    _, inverse = np.unique(queries, return_inverse=True)
    return np.bincount(inverse, weights=outcomes) / np.bincount(inverse)


@dataclass
class Headline:
    estimate: float | None  # mean over queries of B's share of decisive votes
    ci_low: float
    ci_high: float
    queries: int
    effective_votes: float
    sequential_p_value: float
    direction: int  # +1: B better, -1: A better, 0: no verdict
    significant: bool
    favours: int = 0  # the sequential p-value's own direction (+1: B, -1: A, 0: not reached), verdict or not


def headline_interval(shares: np.ndarray, decisive: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(low, high, effective votes) for the mean of per-query shares; see the module docstring."""
    q = len(shares)
    var = float(shares.var(ddof=1)) if q >= 2 else 0.0
    return interval_from_moments(float(shares.mean()) if q else 0.0, var, q, decisive, confidence)


def interval_from_moments(mean: float, sample_var: float, q: int, decisive: int,
                          confidence: float = 0.95) -> tuple[float, float, float]:
    """The same interval from the mean and sample variance of q per-query shares."""
    if q == 0:
        return (0.0, 1.0, 0.0)
    z = float(student_t.ppf(0.5 + confidence / 2, max(q - 1, 1)))
    n_eff = float(q)
    if q >= 2 and 0.0 < mean < 1.0:
        var_of_mean = sample_var / q
        n_eff = float(decisive) if var_of_mean <= 1e-15 else min(max(mean * (1 - mean) / var_of_mean, q), decisive)
    low, high = wilson_interval(mean, n_eff, z)
    return (low, high, n_eff)


def headline_path(queries, outcomes, confidence: float = 0.95) -> np.ndarray:
    """(estimate, low, high) after each decisive vote in time order, for the Results figure."""
    wins: dict = {}
    total = squares = 0.0
    out = np.empty((len(outcomes), 3))
    for i, (q, o) in enumerate(zip(queries, outcomes)):
        w, n = wins.get(q, (0.0, 0))
        if n:
            old = w / n
            total, squares = total - old, squares - old * old
        w, n = w + o, n + 1
        wins[q] = (w, n)
        share = w / n
        total, squares = total + share, squares + share * share
        k = len(wins)
        mean = total / k
        var = max((squares - k * mean * mean) / (k - 1), 0.0) if k > 1 else 0.0
        low, high, _ = interval_from_moments(mean, var, k, i + 1, confidence)
        out[i] = (mean, low, high)
    return out


def _within_query(queries: np.ndarray, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each vote (in time order): its rank among its query's decisive votes, and the wins
    of B in that query up to and including it."""
    order = np.argsort(queries, kind="stable")
    sorted_q, sorted_o = queries[order], outcomes[order]
    n = len(queries)
    at = np.arange(n)
    start = np.maximum.accumulate(np.where(np.r_[True, sorted_q[1:] != sorted_q[:-1]], at, 0))
    running = np.cumsum(sorted_o)
    rank, wins = np.empty(n, np.int64), np.empty(n)
    rank[order] = at - start + 1
    wins[order] = running - (running[start] - sorted_o[start])
    return rank, wins


BETTORS = len(FINALISE_AT) * 2  # bettors x directions, each at alpha / BETTORS (a union bound)


def betting_log_wealth(x: np.ndarray) -> np.ndarray:
    """Log wealth after each observation of a bettor on "mean above 1/2" for x in [0, 1]: each
    bet lambda in [0, MAX_BET] is chosen from past observations only (aGRAPA), so under mean 1/2
    the wealth prod(1 + lambda (x - 1/2)) is a nonnegative martingale. The bets depend on past
    observations only, never on the wealth, so they are computed from running sums at once.
    Works on the last axis: one row per simulated arena is fine."""
    y = np.asarray(x, float) - 0.5
    n = y.shape[-1]
    seen = np.arange(n)
    past_sum = np.cumsum(y, axis=-1) - y
    past_sq = np.cumsum(y * y, axis=-1) - y * y
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(seen > 0, past_sum / np.maximum(seen, 1), 0.0)
        var = np.maximum(np.where(seen > 0, past_sq / np.maximum(seen, 1), 0.0) - mean * mean, 0.0)
        bet = np.where(mean > 0, np.clip(mean / (var + mean * mean + 1e-12), 0.0, MAX_BET), 0.0)
    bet = np.where(seen == 0, 0.5, bet)
    return np.cumsum(np.log1p(bet * y), axis=-1)


def sequential_test(queries, outcomes, finalise_at=FINALISE_AT) -> tuple[float, int]:
    """Always-valid p-value and direction (+1: B better, -1: A better, 0: none) from decisive votes
    in time order: `queries` (hashable ids) and `outcomes` (1 when B won). The p-value is the
    smallest alpha at which the test would have rejected at any moment so far: BETTORS over the
    largest wealth any bettor ever reached in that direction (see the module docstring)."""
    outcomes = np.asarray(outcomes, float)
    if not len(outcomes):
        return (1.0, 0)
    _, codes = np.unique(np.asarray(queries, dtype=object).astype(str), return_inverse=True)
    rank, wins = _within_query(codes, outcomes)
    best = [0.0, 0.0]  # largest log wealth ever, B better and A better
    for m in finalise_at:
        share = wins[rank == m] / m
        if len(share):
            best[0] = max(best[0], float(betting_log_wealth(share).max()))
            best[1] = max(best[1], float(betting_log_wealth(1 - share).max()))
    p_b, p_a = (min(1.0, BETTORS * math.exp(-w)) for w in best)
    if min(p_b, p_a) >= 1.0:
        return (1.0, 0)
    return (p_b, 1) if p_b <= p_a else (p_a, -1)


def headline(queries, outcomes, alpha: float = 0.05, confidence: float = 0.95) -> Headline:
    """The clustered estimate, its interval and the always-valid verdict from decisive votes in
    time order (1 = B won)."""
    outcomes = np.asarray(outcomes, float)
    if not len(outcomes):
        return Headline(None, 0.0, 1.0, 0, 0.0, 1.0, 0, False)
    keys = np.asarray(queries, dtype=object).astype(str)
    shares = query_shares(keys, outcomes)
    low, high, n_eff = headline_interval(shares, len(outcomes), confidence)
    p, direction = sequential_test(keys, outcomes)
    mean = float(shares.mean())
    # A verdict never contradicts the estimate (a burst long ago in the other direction): stricter, still valid.
    significant = p <= alpha and (mean - 0.5) * direction > 0
    return Headline(mean, low, high, len(shares), n_eff, p, direction if significant else 0,
                    significant, direction)

"""Sides confounded with the methods or with time: when a pull to one side can pass for a difference.

The arena draws the sides at random, so a pull to the left (an annotator's habit) adds noise but no
bias. Imported votes need not have been drawn so. Two checks per pair of methods, on its decisive
votes:

- methods: B was (almost) never on one side (under RARE_SIDE of the votes), a split that sides
  drawn at random give with probability under NOT_RANDOM_P (a few votes can fall one way by chance,
  and then the arena's random draw keeps the test valid). Then B's wins and a pull to that side
  cannot be told apart (no model can: the side term is not identifiable).
- sides not drawn at random, in general: B's share of the left is uneven overall (a binomial
  test) or changes between strata (each annotator's votes in TIME_BLOCKS blocks of the pair's time
  order; a chi-square test), at p < NOT_RANDOM_SIDES_P / 2 each; and B's lead does not stand once
  the pull may differ per stratum: in a logistic model of "left picked" with one intercept per
  stratum and B's side, B's effect has a 99% Wald interval (CLEAR_P) that holds 0 or points the other way
  than B's share of wins. A pull that follows the sides is indistinguishable from a difference (a
  test of the pulls has no power exactly then), so only an effect that stands within strata counts.
  Random sides trip the side tests at most about 1% of the time, so the always-valid test keeps its
  promise; the Wald gate only takes "better" away. bench/confounds_simulation.py (300 votes watched
  every 20): false "better" 46% -> 3.5% with a puller voting first while B is mostly on the left,
  34% -> 1.5% with sides drifting over time, random sides unchanged; a real effect is still called.

A flagged pair gets no "better" (summary.verdict) and a sentence saying why.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from scipy.stats import binomtest, chi2, chi2_contingency, norm

from clip_arena.votes.stats import in_time_order, winner

RARE_SIDE = 0.1
NOT_RANDOM_P = 0.001
TIME_BLOCKS = 4
NOT_RANDOM_SIDES_P = 0.01  # split over the two side tests (uneven overall, changing between strata)
MIN_FOR_STRATA = 10
CLEAR_P = 0.01  # the adjusted effect's two-sided level: it is looked at after every vote
RIDGE = 1e-3  # keeps a stratum where every pick went one way finite


def side_counts(votes: list[dict], b: str) -> tuple[int, int]:
    """Decisive votes with B on the left, on the right."""
    decisive = [v for v in votes if winner(v) is not None]
    on_left = sum(v["method_left"] == b for v in decisive)
    return on_left, len(decisive) - on_left


def _logistic_nll(params: np.ndarray, design: np.ndarray, y: np.ndarray) -> float:
    """-log-likelihood of logit P(left picked) = design @ params (a ridge keeps a stratum where
    every pick went one way finite)."""
    z = design @ params
    return float(-(y * log_expit(z) + (1 - y) * log_expit(-z)).sum() + RIDGE * (params ** 2).sum())


def _logistic_grad(params: np.ndarray, design: np.ndarray, y: np.ndarray) -> np.ndarray:
    return design.T @ (expit(design @ params) - y) + 2 * RIDGE * params


def _fit(design: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(-log-likelihood, B's effect beta (the last column), its standard error)."""
    res = minimize(_logistic_nll, np.zeros(design.shape[1]), args=(design, y), jac=_logistic_grad, method="BFGS")
    p = expit(design @ res.x)
    hess = design.T @ (design * (p * (1 - p))[:, None]) + 2 * RIDGE * np.eye(design.shape[1])
    return float(res.fun), float(res.x[-1]), float(np.sqrt(np.linalg.inv(hess)[-1, -1]))


def side_adjusted(votes: list[dict], b: str) -> dict | None:
    """The second check of the module docstring on one pair's votes; None when too few to test."""
    decisive = [v for v in in_time_order(votes) if winner(v) is not None]
    if len(decisive) < MIN_FOR_STRATA:
        return None
    block = np.minimum(np.arange(len(decisive)) * TIME_BLOCKS // len(decisive), TIME_BLOCKS - 1)
    keys = {}
    strata = np.array([keys.setdefault((v["annotator"], int(k)), len(keys)) for v, k in zip(decisive, block)])
    x = np.array([1.0 if v["method_left"] == b else -1.0 for v in decisive])
    y = np.array([1.0 if winner(v) == v["method_left"] else 0.0 for v in decisive])
    table = np.zeros((len(keys), 2))
    np.add.at(table, (strata, (x < 0).astype(int)), 1)
    uneven_p = float(binomtest(int(table[:, 0].sum()), len(x)).pvalue)
    change_p = float(chi2_contingency(table)[1]) if (table.sum(axis=0) > 0).all() else 1.0
    pooled, beta, se = _fit(np.c_[np.ones(len(x)), x], y)
    apart, beta_s, se_s = _fit(np.c_[np.eye(len(keys))[strata], x], y)
    b_share = float(np.mean([winner(v) == b for v in decisive]))
    # B's lead stands once the pull may differ per stratum: the adjusted effect is clear and agrees
    clear = abs(beta_s) > norm.ppf(1 - CLEAR_P / 2) * se_s and beta_s * (b_share - 0.5) > 0
    return {"strata": len(keys), "sides_uneven_p": uneven_p, "sides_change_p": change_p,
            "pull_change_p": float(chi2.sf(max(0.0, 2 * (pooled - apart)), max(len(keys) - 1, 1))),
            "effect": beta, "effect_se": se, "effect_per_stratum": beta_s, "effect_per_stratum_se": se_s,
            "confounded": min(uneven_p, change_p) < NOT_RANDOM_SIDES_P / 2 and not clear}


def pair_confounds(votes: list[dict], a: str, b: str) -> dict:
    """{"confounded", "reasons": [sentences], "b_left", "b_right", "adjusted"} for one pair's votes."""
    mine = [v for v in votes if {v["method_left"], v["method_right"]} == {a, b}]
    left, right = side_counts(mine, b)
    reasons = []
    n = left + right
    if n and min(left, right) < RARE_SIDE * n and binomtest(left, n).pvalue < NOT_RANDOM_P:
        rare = "left" if left < right else "right"
        reasons.append(f"{b} was on the {rare} in only {min(left, right)} of {n} decisive votes, so its "
                       f"wins cannot be told from a pull to one side; no method is called better. Vote with sides "
                       f"drawn at random (the arena does).")
    adjusted = side_adjusted(mine, b)
    if adjusted and adjusted["confounded"] and not reasons:
        how = ("changed over time or between annotators" if adjusted["sides_change_p"] <= adjusted["sides_uneven_p"]
               else f"were uneven ({b} on the left in {left} of {n})")
        p = min(adjusted["sides_change_p"], adjusted["sides_uneven_p"])
        margin = norm.ppf(1 - CLEAR_P / 2) * adjusted["effect_per_stratum_se"]
        reasons.append(f"the sides were not drawn at random: they {how} (p {p:.2g}), "
                       f"and once a pull to the left may differ per annotator and period, {b}'s lead is not clear "
                       f"(log-odds {adjusted['effect_per_stratum']:.2f} ± {margin:.2f}): "
                       "the pull can pass for a difference; no method is called better. Vote with sides drawn at random.")
    return {"confounded": bool(reasons), "reasons": reasons, "b_left": left, "b_right": right, "adjusted": adjusted}


def confounds(votes: list[dict], pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """pair_confounds for each (a, b)."""
    by_pair: dict[frozenset, list[dict]] = defaultdict(list)
    for v in votes:
        by_pair[frozenset((v["method_left"], v["method_right"]))].append(v)
    return {(a, b): pair_confounds(by_pair[frozenset((a, b))], a, b) for a, b in pairs}

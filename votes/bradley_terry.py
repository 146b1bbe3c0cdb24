"""Bradley-Terry strengths of two or more methods, with intervals from a bootstrap over queries.

The fit maximises the log-likelihood with a weak ridge penalty (choix's convention: the penalised
objective -loglik + PENALTY * sum(theta^2), the same as a Gaussian prior of sd 7 on the log-
strengths) by Newton's method with a backtracking line search, and checks that it converged (the
gradient vanishes): a method that won every vote gets a large but finite strength instead of one
that depends on an iteration count. tests/test_stats.py checks it against choix.opt_pairwise.
A tie counts as half a win each way; both-bad votes carry no preference. Methods that fall into
groups never compared with each other have no common scale: then no strengths, a warning.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from clip_arena.votes.choices import Choice

PENALTY = 0.01
MAX_STEPS = 200
GRADIENT_TOL = 1e-9


def _comparisons(votes: list[dict], methods: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per vote with a preference: (query code, winner index, loser index, weight)."""
    idx = {m: i for i, m in enumerate(methods)}
    queries = {q: i for i, q in enumerate(sorted({v["query_id"] for v in votes}))}  # codes not tied to vote order
    rows = []
    for v in votes:
        left, right = idx[v["method_left"]], idx[v["method_right"]]
        q = queries[v["query_id"]]
        if v["choice"] == Choice.LEFT.value:
            rows.append((q, left, right, 1.0))
        elif v["choice"] == Choice.RIGHT.value:
            rows.append((q, right, left, 1.0))
        elif v["choice"] == Choice.TIE.value:
            rows += [(q, left, right, 0.5), (q, right, left, 0.5)]
    arr = np.array(rows, dtype=float).reshape(-1, 4)
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64), arr[:, 3]


def _objective(theta: np.ndarray, wins: np.ndarray) -> float:
    diff = theta[None, :] - theta[:, None]  # diff[i, j] = theta_j - theta_i
    return float((wins * np.logaddexp(0.0, diff)).sum() + PENALTY * (theta ** 2).sum())


def log_strengths(wins: np.ndarray) -> np.ndarray:
    """Penalised maximum-likelihood log-strengths from wins[i, j] = (weighted) wins of i over j;
    RuntimeError when Newton's method does not converge."""
    k = len(wins)
    theta = np.zeros(k)
    games = wins + wins.T
    for _ in range(MAX_STEPS):
        p_loss = expit(theta[None, :] - theta[:, None])  # P(i loses to j)
        # d/dtheta_i: -sum_j wins_ij P(i loses to j) + sum_j wins_ji P(j loses to i)
        grad = -(wins * p_loss).sum(axis=1) + (wins.T * (1 - p_loss)).sum(axis=1) + 2 * PENALTY * theta
        if np.abs(grad).max() < GRADIENT_TOL * max(1.0, games.sum()):
            return theta
        weight = games * p_loss * (1 - p_loss)
        hess = np.diag(weight.sum(axis=1) + 2 * PENALTY) - weight
        step = np.linalg.solve(hess, grad)
        f0, t = _objective(theta, wins), 1.0
        while _objective(theta - t * step, wins) > f0 - 1e-4 * t * grad @ step and t > 1e-10:
            t /= 2
        theta = theta - t * step
    raise RuntimeError("Bradley-Terry fit did not converge")


def _fit(wins: np.ndarray) -> np.ndarray:
    """Strengths summing to 1."""
    theta = log_strengths(wins)
    s = np.exp(theta - theta.max())
    return s / s.sum()


def groups(wins: np.ndarray, methods: list[str]) -> list[list[str]]:
    """Methods connected by at least one comparison (a tie or a win), as groups."""
    n, labels = connected_components((wins + wins.T) > 0, directed=False)
    return [[m for m, label in zip(methods, labels) if label == g] for g in range(n)]


def votes_seed(votes: list[dict]) -> int:
    """A bootstrap seed drawn from the votes themselves: the same votes give the same intervals on
    every refresh of the Results tab and in `clip-arena stats`; one more vote draws new ones."""
    keys = sorted(f"{v.get('vote_id', '')}|{v['query_id']}|{v['method_left']}|{v['method_right']}|{v['choice']}"
                  for v in votes)
    return int.from_bytes(hashlib.blake2b("\n".join(keys).encode(), digest_size=8).digest(), "big")


def bradley_terry(votes: list[dict], methods: list[str], resamples: int = 200, seed: int | None = None) -> dict:
    """{"rows": [{"method", "strength", "ci", "votes"}] best first, or None with a "warning"}.
    Intervals: 95% percentile bootstrap resampling whole queries (the votes of one query are not
    independent), with the same fit; seeded from the votes unless `seed` is given."""
    k = len(methods)
    queries, win, lose, weight = _comparisons(votes, methods)
    wins = np.zeros((k, k))
    np.add.at(wins, (win, lose), weight)
    split = groups(wins, methods)
    if len(split) > 1:
        named = "; ".join(", ".join(g) for g in split)
        return {"rows": None, "warning": f"No common scale: these groups of methods were never compared with "
                                         f"each other ({named}); compare them in the arena first."}
    try:
        strength = _fit(wins)
    except RuntimeError:
        return {"rows": None, "warning": "The Bradley-Terry fit did not converge; no strengths are shown."}
    draws = []
    if resamples and len(queries):
        rng = np.random.default_rng(votes_seed(votes) if seed is None else seed)
        n_queries = int(queries.max()) + 1
        for _ in range(resamples):
            times = np.bincount(rng.integers(0, n_queries, n_queries), minlength=n_queries)
            sample = np.zeros((k, k))
            np.add.at(sample, (win, lose), weight * times[queries])
            try:
                draws.append(_fit(sample))
            except RuntimeError:
                continue  # a resample that does not converge is left out (and counted)
    draws = np.array(draws).reshape(-1, k)
    votes_per = {m: sum(1 for v in votes if m in (v["method_left"], v["method_right"])) for m in methods}
    rows = []
    for i, m in enumerate(methods):
        ci = (float(np.percentile(draws[:, i], 2.5)), float(np.percentile(draws[:, i], 97.5))) if len(draws) else None
        rows.append({"method": m, "strength": float(strength[i]), "ci": ci, "votes": votes_per[m]})
    rows.sort(key=lambda r: -r["strength"])
    return {"rows": rows, "warning": None, "resamples": len(draws), "resamples_failed": resamples - len(draws)
            if resamples and len(queries) else 0}

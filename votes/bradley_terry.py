"""Bradley-Terry strengths of two or more methods: Davidson's model for ties, a side term for a pull
to the left, each query weighed once, with intervals that never collapse.

The model, for a vote with method i on the left and j on the right (pi = exp(theta)):
  P(left wins) = pi_i e^h / D, P(right wins) = pi_j / D, P(tie) = nu sqrt(pi_i e^h pi_j) / D,
  D = pi_i e^h + pi_j + nu sqrt(pi_i e^h pi_j)
(Davidson 1970 with a home advantage h: without ties it is P(left wins) = sigmoid(s_i - s_j + h)).
Both-bad votes carry no preference. Each vote weighs 1 / (the votes on its query for that pair),
so every query counts once per pair, as in the headline. The fit maximises the weighted log-
likelihood with a weak ridge penalty (PENALTY * sum of squares of theta, h and log nu: a Gaussian
prior of sd 7; the objective is convex) by Newton's method with the analytic gradient and Hessian,
and checks that it converged. choix has no tie or side model: tests/bt_reference.py writes the same
likelihood vote by vote for scipy.optimize, and without ties or sides the fit is checked against
choix. h is fitted only when the sides can tell it from the strengths (pairs always shown the same
way round cannot): otherwise h = 0 and `side.identifiable` is false (votes.confounds flags it).

Intervals: a 95% percentile bootstrap over queries when there are at least MIN_QUERIES and it
varies; else (one query, or every vote a tie) a Bayesian interval under the same weak prior, from
the Laplace approximation to the posterior: `interval_method` says which.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from clip_arena.votes.choices import Choice

PENALTY = 0.01
GRADIENT_TOL = 1e-9
MAX_STEPS = 200
MIN_QUERIES = 10  # fewer queries than this: the bootstrap has too little to resample
LAPLACE_DRAWS = 4000
OUTCOME = {Choice.LEFT.value: 0, Choice.RIGHT.value: 1, Choice.TIE.value: 2}
INTERVAL_NOTES = {
    "bootstrap": "95% intervals from a bootstrap over queries",
    "bayes": "95% Bayesian intervals (the weak prior, Laplace approximation): a bootstrap over queries had "
             f"nothing to resample (under {MIN_QUERIES} queries, or every resample the same)",
}


def _comparisons(votes: list[dict], methods: list[str]):
    """Per vote with an outcome: (query code, left index, right index, outcome 0/1/2, weight)."""
    idx = {m: i for i, m in enumerate(methods)}
    kept = [v for v in votes if v["choice"] in OUTCOME]
    queries = {q: i for i, q in enumerate(sorted({v["query_id"] for v in kept}))}  # codes not tied to vote order
    per = {}
    for v in kept:
        key = (v["query_id"], frozenset((v["method_left"], v["method_right"])))
        per[key] = per.get(key, 0) + 1
    rows = [(queries[v["query_id"]], idx[v["method_left"]], idx[v["method_right"]], OUTCOME[v["choice"]],
             1.0 / per[(v["query_id"], frozenset((v["method_left"], v["method_right"])))]) for v in kept]
    arr = np.array(rows, dtype=float).reshape(-1, 5)
    ints = arr[:, :4].astype(np.int64)
    return ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3], arr[:, 4]


def _logsumexp3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """log(e^a + e^b + e^c) elementwise; c may be -inf (no ties). scipy's logsumexp is far slower
    on the short arrays the bootstrap refits."""
    top = np.maximum(np.maximum(a, b), c)
    return top + np.log(np.exp(a - top) + np.exp(b - top) + np.exp(c - top))


class Model:
    """The weighted penalised likelihood of one set of comparisons; parameters theta (k), h, log nu."""

    def __init__(self, k, left, right, outcome, weight, fit_side: bool, fit_ties: bool):
        self.k, self.left, self.right, self.outcome, self.weight = k, left, right, outcome, weight
        self.fit_side, self.fit_ties = fit_side, fit_ties

    def free(self) -> np.ndarray:
        return np.r_[np.ones(self.k, bool), self.fit_side, self.fit_ties]

    def _logits(self, params):
        theta, h, lognu = params[:self.k], params[self.k] if self.fit_side else 0.0, params[self.k + 1]
        a, b = theta[self.left] + h, theta[self.right]
        c = lognu + (a + b) / 2 if self.fit_ties else np.full_like(a, -np.inf)
        return a, b, c

    def nll(self, params: np.ndarray, weight: np.ndarray | None = None) -> float:
        w = self.weight if weight is None else weight
        a, b, c = self._logits(params)
        log_d = _logsumexp3(a, b, c)
        picked = np.choose(self.outcome, [a, b, c])
        return float(-(w * (picked - log_d)).sum() + PENALTY * (params[self.free()] ** 2).sum())

    def grad(self, params: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        w = self.weight if weight is None else weight
        a, b, c = self._logits(params)
        log_d = _logsumexp3(a, b, c)
        pa, pb, pc = np.exp(a - log_d), np.exp(b - log_d), np.exp(c - log_d)
        ga = w * (pa - (self.outcome == 0))
        gb = w * (pb - (self.outcome == 1))
        gc = w * (pc - (self.outcome == 2))
        g_left, g_right = ga + gc / 2, gb + gc / 2  # c = log nu + (a + b) / 2
        g = np.zeros(self.k + 2)
        np.add.at(g, self.left, g_left)
        np.add.at(g, self.right, g_right)
        g[self.k] = g_left.sum() if self.fit_side else 0.0
        g[self.k + 1] = gc.sum() if self.fit_ties else 0.0
        return g + 2 * PENALTY * params * self.free()

    def _jacobian(self) -> np.ndarray:
        """d(a, b, c) / d(params) per vote: (votes, 3, k + 2)."""
        if getattr(self, "_jac", None) is None:
            n, k, at = len(self.left), self.k, np.arange(len(self.left))
            jac = np.zeros((n, 3, k + 2))
            jac[at, 0, self.left] = 1.0
            jac[at, 1, self.right] = 1.0
            if self.fit_side:
                jac[:, 0, k] = 1.0
            if self.fit_ties:
                jac[:, 2] = (jac[:, 0] + jac[:, 1]) / 2
                jac[:, 2, k + 1] = 1.0
            self._jac = jac
        return self._jac

    def hessian(self, params: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """Analytic, over the free parameters: sum of w J^T (diag p - p p^T) J, plus the penalty."""
        w = self.weight if weight is None else weight
        a, b, c = self._logits(params)
        p = np.exp(np.stack([a, b, c], axis=1) - _logsumexp3(a, b, c)[:, None])
        inner = w[:, None, None] * (p[:, :, None] * np.eye(3) - p[:, :, None] * p[:, None, :])
        jac = self._jacobian()
        full = np.einsum("nip,nij,njq->pq", jac, inner, jac) + 2 * PENALTY * np.diag(self.free().astype(float))
        free = np.flatnonzero(self.free())
        return full[np.ix_(free, free)]

    def fit(self, start: np.ndarray | None = None, weight: np.ndarray | None = None) -> np.ndarray:
        """The penalised maximum by Newton's method with a backtracking line search (the objective
        is convex); RuntimeError when it does not converge."""
        x = np.zeros(self.k + 2) if start is None else start.copy()
        if not self.fit_side:
            x[self.k] = 0.0
        if not self.fit_ties:
            x[self.k + 1] = 0.0
        free = np.flatnonzero(self.free())
        scale = max(1.0, float((self.weight if weight is None else weight).sum()))
        for _ in range(MAX_STEPS):
            grad = self.grad(x, weight)
            if np.abs(grad).max() < GRADIENT_TOL * scale:
                return x
            step = np.zeros_like(x)
            step[free] = np.linalg.solve(self.hessian(x, weight), grad[free])
            f0, t = self.nll(x, weight), 1.0
            slack = 1e-12 * max(1.0, abs(f0))  # at the optimum, rounding alone can refuse every step
            while self.nll(x - t * step, weight) > f0 - 1e-4 * t * grad @ step + slack and t > 1e-10:
                t /= 2
            x = x - t * step
        raise RuntimeError("Bradley-Terry fit did not converge")


def side_identifiable(k: int, left: np.ndarray, right: np.ndarray) -> bool:
    """Can the sides tell a pull to the left from the strengths? Not when the column of ones (h)
    lies in the span of the strength differences the votes compare (each pair always shown the
    same way round, or a chain of such pairs)."""
    rows = np.unique(np.c_[left, right], axis=0)
    x = np.zeros((len(rows), k))
    x[np.arange(len(rows)), rows[:, 0]] += 1
    x[np.arange(len(rows)), rows[:, 1]] -= 1
    return bool(len(rows)) and np.linalg.matrix_rank(np.c_[x, np.ones(len(rows))]) > np.linalg.matrix_rank(x)


def _strengths(theta: np.ndarray) -> np.ndarray:
    """Strengths summing to 1 (rows of theta draws too)."""
    s = np.exp(theta - theta.max(axis=-1, keepdims=True))
    return s / s.sum(axis=-1, keepdims=True)


def log_strengths(wins: np.ndarray) -> np.ndarray:
    """Penalised maximum-likelihood log-strengths of the plain model from wins[i, j] = (weighted)
    wins of i over j (no sides, no ties)."""
    i, j = np.nonzero(wins)
    model = Model(len(wins), i, j, np.zeros(len(i), np.int64), wins[i, j], False, False)
    return model.fit()[:len(wins)]


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


def _percentiles(draws: np.ndarray) -> list[tuple[float, float]]:
    return [(float(lo), float(hi)) for lo, hi in zip(*np.percentile(draws, [2.5, 97.5], axis=0))]


def _bootstrap(model: Model, best: np.ndarray, queries: np.ndarray, weight: np.ndarray, inverse: np.ndarray,
               resamples: int, rng) -> tuple[np.ndarray, int]:
    """Parameter draws from resampling whole queries (the votes of one query are not independent);
    `inverse` maps each vote to its (left, right, outcome) row of the model."""
    draws, n_queries = [], int(queries.max()) + 1
    for _ in range(resamples):
        times = np.bincount(rng.integers(0, n_queries, n_queries), minlength=n_queries)
        try:
            draws.append(model.fit(best, np.bincount(inverse, weight * times[queries], len(model.weight))))
        except RuntimeError:
            continue  # a resample that does not converge is left out (and counted)
    return np.array(draws).reshape(-1, model.k + 2), resamples - len(draws)


def _laplace(model: Model, best: np.ndarray, rng) -> np.ndarray:
    """Draws from the normal approximation to the posterior (the penalty as a weak Gaussian prior)."""
    free = np.flatnonzero(model.free())
    cov = np.linalg.inv(model.hessian(best))
    draws = np.tile(best, (LAPLACE_DRAWS, 1))
    draws[:, free] = rng.multivariate_normal(best[free], (cov + cov.T) / 2, LAPLACE_DRAWS, method="eigh")
    return draws


def bradley_terry(votes: list[dict], methods: list[str], resamples: int = 200, seed: int | None = None) -> dict:
    """{"rows": [{"method", "strength", "ci", "votes"}] best first, or None with a "warning"; and the
    model's side term, tie parameter, weighting and `interval_method`. Seeded from the votes unless
    `seed` is given."""
    k = len(methods)
    queries, left, right, outcome, weight = _comparisons(votes, methods)
    wins = np.zeros((k, k))
    np.add.at(wins, (left, right), 1.0)
    split = groups(wins, methods)
    if len(split) > 1:
        named = "; ".join(", ".join(g) for g in split)
        return {"rows": None, "warning": f"No common scale: these groups of methods were never compared with "
                                         f"each other ({named}); compare them in the arena first."}
    decisive = bool((outcome != OUTCOME[Choice.TIE.value]).any())
    # ties alone say nothing of a pull to one side, nor of how often equal methods tie (nu runs off to infinity)
    identifiable = decisive and side_identifiable(k, left, right)
    # the likelihood depends only on the weight of each (left, right, outcome): fit on those
    combos, inverse = np.unique(np.c_[left, right, outcome], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    model = Model(k, combos[:, 0], combos[:, 1], combos[:, 2], np.bincount(inverse, weight, len(combos)),
                  identifiable, bool((outcome == 2).any()))
    try:
        best = model.fit()
    except RuntimeError:
        return {"rows": None, "warning": "The Bradley-Terry fit did not converge; no strengths are shown."}
    rng = np.random.default_rng(votes_seed(votes) if seed is None else seed)
    draws, failed, method = np.empty((0, k + 2)), 0, None
    n_queries = len(np.unique(queries))
    if resamples and n_queries >= MIN_QUERIES:
        draws, failed = _bootstrap(model, best, queries, weight, inverse, resamples, rng)
        method = "bootstrap"
        spread = _strengths(draws[:, :k]).std(axis=0) if len(draws) else np.zeros(k)
        if not len(draws) or spread.min() < 1e-9:  # every resample the same (all ties, one outcome)
            draws, method = np.empty((0, k + 2)), None
    if resamples and method is None:
        draws, method = _laplace(model, best, rng), "bayes"
    strength = _strengths(best[:k])
    cis = _percentiles(_strengths(draws[:, :k])) if len(draws) else [None] * k
    votes_per = {m: sum(1 for v in votes if m in (v["method_left"], v["method_right"])) for m in methods}
    rows = [{"method": m, "strength": float(strength[i]), "ci": cis[i], "votes": votes_per[m]}
            for i, m in enumerate(methods)]
    rows.sort(key=lambda r: -r["strength"])
    return {"rows": rows, "warning": None, "resamples": len(draws) if method == "bootstrap" else 0,
            "resamples_failed": failed, "interval_method": method,
            "interval_note": INTERVAL_NOTES.get(method, "no interval (no resamples asked for)"),
            "queries": n_queries, "side": _side(best, draws, model, decisive),
            "ties": _ties(best, draws, model, decisive),
            "weighting": "each vote weighs 1 / (votes on its query for that pair): every query counts once, "
                         "as in the headline"}


def _side(best: np.ndarray, draws: np.ndarray, model: Model, decisive: bool = True) -> dict:
    """The side term h and what it means: the share of left picks between two equal methods;
    `reason` says why it cannot be estimated when it cannot."""
    k = model.k
    if not model.fit_side:
        reason = ("no decisive votes: ties and both-bad votes say nothing of a pull to one side" if not decisive
                  else "every pair was shown the same way round")
        return {"identifiable": False, "h": None, "ci": None, "left_share": None, "left_share_ci": None,
                "reason": reason}
    ci = _percentiles(draws[:, [k]])[0] if len(draws) else None
    return {"identifiable": True, "h": float(best[k]), "ci": ci, "left_share": float(expit(best[k])),
            "left_share_ci": None if ci is None else (float(expit(ci[0])), float(expit(ci[1])))}


def _ties(best: np.ndarray, draws: np.ndarray, model: Model, decisive: bool = True) -> dict:
    """Davidson's nu and the tie rate it implies between two equal methods: nu / (2 + nu). With
    ties but no decisive vote nu has no finite estimate (only the prior holds it): None, and why."""
    k = model.k
    if not model.fit_ties:
        return {"nu": 0.0, "ci": None, "tie_rate_if_equal": 0.0, "tie_rate_ci": None}
    if not decisive:
        return {"nu": None, "ci": None, "tie_rate_if_equal": None, "tie_rate_ci": None,
                "reason": "no decisive votes: with ties only, nu grows without bound"}
    nu = float(np.exp(best[k + 1]))
    ci = tuple(float(np.exp(x)) for x in _percentiles(draws[:, [k + 1]])[0]) if len(draws) else None
    return {"nu": nu, "ci": ci, "tie_rate_if_equal": nu / (2 + nu),
            "tie_rate_ci": None if ci is None else (ci[0] / (2 + ci[0]), ci[1] / (2 + ci[1]))}

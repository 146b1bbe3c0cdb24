"""An independent reference for votes/bradley_terry.py: the same penalised likelihood (Davidson's
ties, a side term, each query weighed once per pair), written vote by vote in plain Python and
maximised by scipy.optimize with numerical gradients."""

import math
from collections import Counter

import numpy as np
from scipy import optimize

from clip_arena.votes.bradley_terry import PENALTY


def davidson_reference(votes, methods, side=True, ties=True):
    """(strengths summing to 1, h, nu) maximising the penalised log-likelihood."""
    idx = {m: i for i, m in enumerate(methods)}
    kept = [v for v in votes if v["choice"] in ("left", "right", "tie")]
    per = Counter((v["query_id"], frozenset((v["method_left"], v["method_right"]))) for v in kept)
    k = len(methods)

    def nll(x):
        theta, h, lognu = x[:k], (x[k] if side else 0.0), (x[k + 1] if ties else -math.inf)
        total = PENALTY * (sum(t * t for t in theta) + (h * h if side else 0) + (lognu * lognu if ties else 0))
        for v in kept:
            w = 1 / per[(v["query_id"], frozenset((v["method_left"], v["method_right"])))]
            left = math.exp(theta[idx[v["method_left"]]] + h)
            right = math.exp(theta[idx[v["method_right"]]])
            tie = math.exp(lognu) * math.sqrt(left * right) if ties else 0.0
            mine = {"left": left, "right": right, "tie": tie}[v["choice"]]
            total -= w * math.log(mine / (left + right + tie))
        return total

    x = optimize.minimize(nll, np.zeros(k + 2), method="BFGS", options={"gtol": 1e-9}).x
    s = np.exp(x[:k] - x[:k].max())
    return s / s.sum(), (x[k] if side else 0.0), (math.exp(x[k + 1]) if ties else 0.0)

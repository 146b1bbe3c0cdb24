"""Statistics of arena votes (DESIGN.md, "Statistics"). Plain functions over vote dicts.

For a pair of methods A < B (alphabetical) with W_A and W_B decisive wins, T ties, X both-bad:
win rate of B = W_B / (W_A + W_B) with a 95% Wilson interval, exact two-sided sign test
binomtest(W_B, W_A + W_B, 0.5), tie and both-bad rates over all votes, position bias
binomtest(left picks, decisive), per-query majority, power, and an always-valid sequential test.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import binomtest, norm
from scipy.special import betaln

from votes.choices import Choice

ALPHA = 0.05


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def sign_test(k: int, n: int) -> float:
    return float(binomtest(k, n, 0.5).pvalue) if n else 1.0


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def sequential_p_value(outcomes: list[int]) -> float:
    """Always-valid p-value for H0: P(B wins) = 1/2 from a sequence of decisive outcomes
    (1 = B won). The beta(1,1)-mixture likelihood ratio is a martingale under H0, so by Ville's
    inequality P(sup_n LR_n >= 1/alpha) <= alpha: p = min(1, 1 / max_n LR_n) may be watched after
    every vote without inflating false positives."""
    wins = np.cumsum(outcomes)
    n = np.arange(1, len(outcomes) + 1)
    log_lr = betaln(1 + wins, 1 + n - wins) - betaln(1, 1) + n * math.log(2)
    return float(min(1.0, math.exp(-max(0.0, float(log_lr.max()))))) if len(outcomes) else 1.0


def votes_needed(win_rate: float, decisive: int, power: float = 0.8, alpha: float = ALPHA) -> int | None:
    """Further decisive votes for `power` to detect the observed win rate with a two-sided sign
    test (normal approximation); None when the observed effect is nil."""
    effect = abs(win_rate - 0.5)
    if decisive == 0 or effect < 1e-9:
        return None
    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    n = ((z_a * 0.5 + z_b * math.sqrt(win_rate * (1 - win_rate))) / effect) ** 2
    return max(0, math.ceil(n) - decisive)


def winner(vote: dict) -> str | None:
    """The method a vote prefers; None for ties and both-bad."""
    if vote["choice"] == Choice.LEFT.value:
        return vote["method_left"]
    if vote["choice"] == Choice.RIGHT.value:
        return vote["method_right"]
    return None


@dataclass
class PairStats:
    method_a: str
    method_b: str
    votes: int
    wins_a: int
    wins_b: int
    ties: int
    both_bad: int
    decisive: int
    win_rate_b: float | None
    ci_low: float
    ci_high: float
    p_value: float
    sequential_p_value: float
    tie_rate: float
    tie_ci: tuple[float, float]
    both_bad_rate: float
    both_bad_ci: tuple[float, float]
    left_picks: int
    position_bias_p: float
    queries: int
    query_wins_a: int
    query_wins_b: int
    query_p_value: float
    votes_needed_80: int | None
    breakdown: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def pair_stats(votes: list[dict], a: str, b: str) -> PairStats:
    """Statistics of the live votes comparing methods a and b (in vote order)."""
    mine = [v for v in votes if {v["method_left"], v["method_right"]} == {a, b}]
    counts = Counter(v["choice"] for v in mine)
    winners = [winner(v) for v in mine]
    wins_a, wins_b = winners.count(a), winners.count(b)
    decisive = wins_a + wins_b
    n = len(mine)
    low, high = wilson(wins_b, decisive)
    per_query: dict[str, int] = defaultdict(int)
    for v, w in zip(mine, winners):
        if w is not None:
            per_query[v["query_id"]] += 1 if w == b else -1
    q_b = sum(1 for s in per_query.values() if s > 0)
    q_a = sum(1 for s in per_query.values() if s < 0)
    win_rate = wins_b / decisive if decisive else None
    return PairStats(
        method_a=a, method_b=b, votes=n, wins_a=wins_a, wins_b=wins_b, ties=counts[Choice.TIE.value],
        both_bad=counts[Choice.BOTH_BAD.value], decisive=decisive, win_rate_b=win_rate, ci_low=low, ci_high=high,
        p_value=sign_test(wins_b, decisive),
        sequential_p_value=sequential_p_value([1 if w == b else 0 for w in winners if w is not None]),
        tie_rate=counts[Choice.TIE.value] / n if n else 0.0, tie_ci=wilson(counts[Choice.TIE.value], n),
        both_bad_rate=counts[Choice.BOTH_BAD.value] / n if n else 0.0,
        both_bad_ci=wilson(counts[Choice.BOTH_BAD.value], n),
        left_picks=counts[Choice.LEFT.value], position_bias_p=sign_test(counts[Choice.LEFT.value], decisive),
        queries=len({v["query_id"] for v in mine}), query_wins_a=q_a, query_wins_b=q_b,
        query_p_value=sign_test(q_b, q_a + q_b),
        votes_needed_80=votes_needed(win_rate, decisive) if win_rate is not None else None,
    )


def breakdown(votes: list[dict], a: str, b: str, labels: dict[str, str]) -> list[dict]:
    """Per metadata value (query_id -> value): wins, win rate of b with Wilson CI, sign test,
    Holm-adjusted across values."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for v in votes:
        if {v["method_left"], v["method_right"]} == {a, b}:
            groups[str(labels.get(v["query_id"], "(none)"))].append(v)
    rows = []
    for value, group in sorted(groups.items()):
        ws = [winner(v) for v in group]
        wa, wb = ws.count(a), ws.count(b)
        low, high = wilson(wb, wa + wb)
        rows.append({"value": value, "votes": len(group), "wins_a": wa, "wins_b": wb,
                     "win_rate_b": wb / (wa + wb) if wa + wb else None, "ci_low": low, "ci_high": high,
                     "p_value": sign_test(wb, wa + wb)})
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = adjusted
    return rows


def bradley_terry(votes: list[dict], methods: list[str], iterations: int = 200) -> dict[str, float]:
    """Bradley-Terry strengths (normalised to sum 1) by Hunter's MM algorithm; a tie counts as half
    a win for each side; both-bad votes carry no preference."""
    idx = {m: i for i, m in enumerate(methods)}
    k = len(methods)
    wins = np.zeros((k, k))
    for v in votes:
        left, right = idx[v["method_left"]], idx[v["method_right"]]
        if v["choice"] == Choice.LEFT.value:
            wins[left, right] += 1
        elif v["choice"] == Choice.RIGHT.value:
            wins[right, left] += 1
        elif v["choice"] == Choice.TIE.value:
            wins[left, right] += 0.5
            wins[right, left] += 0.5
    games = wins + wins.T
    p = np.ones(k) / k
    for _ in range(iterations):
        denom = np.array([sum(games[i, j] / (p[i] + p[j]) for j in range(k) if j != i and games[i, j]) for i in range(k)])
        total = wins.sum(axis=1)
        p = np.where(denom > 0, total / np.where(denom > 0, denom, 1), p)
        p = np.maximum(p, 1e-12)
        p /= p.sum()
    return {m: float(p[idx[m]]) for m in methods}


def bradley_terry_bootstrap(votes: list[dict], methods: list[str], resamples: int = 200,
                            seed: int = 0) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    draws = defaultdict(list)
    for _ in range(resamples):
        sample = [votes[i] for i in rng.integers(0, len(votes), len(votes))]
        for m, s in bradley_terry(sample, methods, iterations=100).items():
            draws[m].append(s)
    return {m: (float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))) for m, d in draws.items()}


def annotator_agreement(votes: list[dict]) -> dict:
    """Per-annotator counts, and how often two annotators who judged the same query (and pair)
    preferred the same method (ties and both-bad count as a shared 'no preference')."""
    per_annotator = Counter(v["annotator"] for v in votes)
    by_query: dict[tuple, dict[str, str]] = defaultdict(dict)
    for v in votes:
        key = (v["query_id"], tuple(sorted((v["method_left"], v["method_right"]))))
        by_query[key][v["annotator"]] = winner(v) or "none"
    agree = pairs = 0
    for judged in by_query.values():
        outcomes = list(judged.values())
        for i in range(len(outcomes)):
            for j in range(i + 1, len(outcomes)):
                pairs += 1
                agree += outcomes[i] == outcomes[j]
    return {"per_annotator": dict(per_annotator), "shared_pairs": pairs,
            "agreement": agree / pairs if pairs else None}

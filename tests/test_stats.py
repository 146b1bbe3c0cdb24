"""Statistics checked against textbook formulas and scipy, edge cases, and a simulation of
watching the p-value after every vote."""

import math

import numpy as np
import pytest
from scipy import optimize
from scipy.stats import binom, binomtest

from votes.stats import (bradley_terry, holm, pair_stats, sequential_p_value, votes_needed, wilson)
from votes.summary import summarize, verdict


def vote(choice, left="base", right="finetuned", query="q1", annotator="ann"):
    return {"choice": choice, "method_left": left, "method_right": right, "query_id": query,
            "annotator": annotator, "undone_at": None}


def textbook_wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def exact_two_sided(k, n):
    """Sum of the probabilities of outcomes no more likely than k, under p = 1/2."""
    probs = [math.comb(n, i) / 2 ** n for i in range(n + 1)]
    return min(1.0, sum(q for q in probs if q <= probs[k] * (1 + 1e-7)))


@pytest.mark.parametrize("k,n", [(62, 98), (0, 10), (10, 10), (3, 7), (500, 1000)])
def test_wilson_and_sign_test_match_textbook(k, n):
    assert wilson(k, n) == pytest.approx(textbook_wilson(k, n), abs=1e-9)
    votes = [vote("right")] * k + [vote("left")] * (n - k)
    stats = pair_stats(votes, "base", "finetuned")
    assert stats.p_value == pytest.approx(exact_two_sided(k, n), rel=1e-6)


def test_holm_matches_hand_computation():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_pair_counts_rates_and_position_bias():
    votes = ([vote("right")] * 30 + [vote("left", "finetuned", "base")] * 20   # finetuned wins 50
             + [vote("left")] * 15 + [vote("tie")] * 10 + [vote("both_bad")] * 5)
    s = pair_stats(votes, "base", "finetuned")
    assert (s.wins_a, s.wins_b, s.ties, s.both_bad, s.decisive, s.votes) == (15, 50, 10, 5, 65, 80)
    assert s.win_rate_b == pytest.approx(50 / 65)
    assert (s.ci_low, s.ci_high) == pytest.approx(textbook_wilson(50, 65))
    assert s.tie_rate == pytest.approx(10 / 80) and s.tie_ci == pytest.approx(textbook_wilson(10, 80))
    assert s.both_bad_rate == pytest.approx(5 / 80)
    assert s.left_picks == 35  # 20 + 15 picks of the left side among 65 decisive
    assert s.position_bias_p == pytest.approx(binomtest(35, 65, 0.5).pvalue)


def test_edge_cases_no_votes_all_ties_one_method_always_wins():
    empty = summarize([], [])
    assert empty["votes"] == 0 and empty["pairs"] == []
    ties = pair_stats([vote("tie")] * 12, "base", "finetuned")
    assert ties.decisive == 0 and ties.win_rate_b is None and ties.p_value == 1.0 and ties.tie_rate == 1.0
    assert "No decisive votes" in verdict(ties.as_dict())
    sweep = pair_stats([vote("right")] * 12, "base", "finetuned")
    assert sweep.win_rate_b == 1.0 and sweep.p_value == pytest.approx(2 * 0.5 ** 12)
    assert sweep.ci_high == pytest.approx(1.0) and sweep.ci_low == pytest.approx(textbook_wilson(12, 12)[0])


def test_per_query_majority_counts_each_query_once():
    votes = [vote("right", query="q1"), vote("right", query="q1"), vote("left", query="q1"),
             vote("left", query="q2"), vote("right", query="q3"), vote("left", query="q3")]
    s = pair_stats(votes, "base", "finetuned")
    assert (s.query_wins_b, s.query_wins_a, s.queries) == (1, 1, 3)  # q3 is a draw


def test_undone_votes_never_count():
    live, undone = vote("right"), {**vote("left"), "undone_at": "2026-01-01T00:00:00"}
    result = summarize([live, undone], [{"status": "skipped"}, {"status": "auto_skipped"}, {"status": "voted"}])
    assert result["votes"] == 1 and result["undone"] == 1 and result["pairs"][0]["wins_b"] == 1
    assert result["rounds"] == {"total": 3, "skipped": 1, "auto_skipped": 1}


def test_votes_needed_gives_about_80_percent_exact_power():
    def power(n, p):
        ks = np.arange(n + 1)
        reject = [binomtest(int(k), n, 0.5).pvalue < 0.05 for k in ks]
        return float(binom.pmf(ks, n, p)[reject].sum())

    decisive = 40
    total = decisive + votes_needed(0.6, decisive)
    assert 0.75 <= power(total, 0.6) <= 0.85
    assert power(int(total * 0.6), 0.6) < 0.7
    assert votes_needed(0.5, 40) is None


def test_sequential_test_is_safe_to_watch_and_fixed_test_is_not():
    """2,000 arenas of 300 votes under H0; the p-value looked at after every vote."""
    rng = np.random.default_rng(0)
    arenas, votes = 2000, 300
    outcomes = rng.integers(0, 2, (arenas, votes))
    seq = np.array([sequential_p_value(list(row)) for row in outcomes])
    seq_rate = float(np.mean(seq <= 0.05))
    wins = np.cumsum(outcomes, axis=1)
    n = np.arange(1, votes + 1)
    fixed_p = np.minimum(1.0, 2 * np.minimum(binom.cdf(wins, n, 0.5), binom.sf(wins - 1, n, 0.5)))
    fixed_rate = float(np.mean((fixed_p <= 0.05).any(axis=1)))
    assert seq_rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / arenas)
    assert fixed_rate > 0.15 and fixed_rate > 2 * seq_rate  # peeking inflates the fixed test


def test_sequential_test_detects_a_real_effect():
    outcomes = list(np.random.default_rng(1).random(300) < 0.7)
    assert sequential_p_value(outcomes) < 0.01


def test_bradley_terry_matches_maximum_likelihood():
    rng = np.random.default_rng(2)
    strengths = {"a": 1.0, "b": 2.0, "c": 4.0}
    votes = []
    for _ in range(3000):
        x, y = rng.choice(list(strengths), 2, replace=False)
        r = rng.random()
        p_x = strengths[x] / (strengths[x] + strengths[y])
        choice = "tie" if r < 0.1 else "left" if r < 0.1 + 0.9 * p_x else "right"
        votes.append(vote(choice, x, y))
    methods = ["a", "b", "c"]
    ours = bradley_terry(votes, methods)

    def nll(theta):  # independent reference: direct likelihood, ties as half a win each way
        s = dict(zip(methods, np.exp(np.r_[0.0, theta])))
        total = 0.0
        for v in votes:
            i, j = v["method_left"], v["method_right"]
            w = {"left": (1, 0), "right": (0, 1), "tie": (0.5, 0.5)}.get(v["choice"], (0, 0))
            total -= w[0] * math.log(s[i] / (s[i] + s[j])) + w[1] * math.log(s[j] / (s[i] + s[j]))
        return total

    theta = optimize.minimize(nll, np.zeros(2), method="BFGS").x
    ref = np.exp(np.r_[0.0, theta])
    ref /= ref.sum()
    assert [ours[m] for m in methods] == pytest.approx(list(ref), abs=2e-3)
    assert ours["c"] > ours["b"] > ours["a"]


def test_three_methods_get_bradley_terry_and_holm():
    votes = [vote("right", "a", "b"), vote("right", "b", "c"), vote("left", "c", "a"), vote("tie", "a", "c")] * 5
    result = summarize(votes, [], bootstrap=20)
    assert [r["method"] for r in result["bradley_terry"]][0] == "c"
    assert all("p_holm" in p for p in result["pairs"]) and len(result["pairs"]) == 3


def test_annotator_agreement():
    votes = [vote("right", query="q1", annotator="x"), vote("right", query="q1", annotator="y"),
             vote("left", query="q2", annotator="x"), vote("tie", query="q2", annotator="y")]
    agreement = summarize(votes, [])["annotators"]
    assert agreement["per_annotator"] == {"x": 2, "y": 2}
    assert agreement["shared_pairs"] == 2 and agreement["agreement"] == 0.5


def test_verdict_sentence():
    votes = [vote("right")] * 62 + [vote("left")] * 36 + [vote("tie")] * 14
    text = verdict(pair_stats(votes, "base", "finetuned").as_dict())
    assert text.startswith("finetuned wins 63% of decisive votes (95% CI")
    assert "98 decisive of 112 votes; significant at 0.05" in text

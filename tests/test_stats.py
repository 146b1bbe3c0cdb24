"""Statistics checked against textbook formulas and scipy, edge cases, and simulations of arenas
with query effects watched after every vote."""

import math
import re

import choix
import numpy as np
import pytest
from scipy.stats import binom, binomtest, fisher_exact

from bt_reference import davidson_reference
from clip_arena.votes.bradley_terry import PENALTY
from clip_arena.votes.clustered import headline, headline_interval, headline_path, sequential_test, wilson_interval
from clip_arena.votes.plan import always_valid_power
from clip_arena.votes.stats import holm, in_time_order, pair_stats, sign_test_power, votes_needed, wilson
from clip_arena.votes.summary import summarize, verdict


def vote(choice, left="base", right="finetuned", query="q1", annotator="ann", t=None, **extra):
    return {"choice": choice, "method_left": left, "method_right": right, "query_id": query,
            "annotator": annotator, "undone_at": None, "created_at": t or "2026-01-01T00:00:00+00:00",
            "results_left": '["x1"]', "results_right": '["x2"]', "display_ms": 1000, **extra}


def balanced(votes):
    """The same votes with every other one shown the other way round (the same method wins), as the
    arena's random sides give: one method always on one side is confounded with a pull to that side."""
    flip = {"left": "right", "right": "left"}
    return [v if i % 2 else {**v, "method_left": v["method_right"], "method_right": v["method_left"],
                             "results_left": v["results_right"], "results_right": v["results_left"],
                             "choice": flip.get(v["choice"], v["choice"])} for i, v in enumerate(votes)]


def textbook_wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def exact_two_sided(k, n):
    """Sum of the probabilities of outcomes no more likely than k, under p = 1/2."""
    probs = [math.comb(n, i) / 2 ** n for i in range(n + 1)]
    return min(1.0, sum(q for q in probs if q <= probs[k] * (1 + 1e-7)))


def exact_power(n, p, alpha=0.05):
    """Reference: reject where scipy's binomtest p <= alpha, sum the binomial probabilities there."""
    ks = np.arange(n + 1)
    reject = np.array([binomtest(int(k), n, 0.5).pvalue <= alpha for k in ks])
    return float(binom.pmf(ks, n, p)[reject].sum())


@pytest.mark.parametrize("k,n", [(62, 98), (0, 10), (10, 10), (3, 7), (500, 1000)])
def test_wilson_and_sign_test_match_textbook(k, n):
    assert wilson(k, n) == pytest.approx(textbook_wilson(k, n), abs=1e-9)
    assert wilson_interval(k / n, n, 1.959963984540054) == pytest.approx(textbook_wilson(k, n), abs=1e-9)
    votes = [vote("right")] * k + [vote("left")] * (n - k)
    stats = pair_stats(votes, "base", "finetuned")
    assert stats.p_value == pytest.approx(exact_two_sided(k, n), rel=1e-6)


def test_holm_matches_hand_computation():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_pair_counts_rates_and_position_bias_within_sides():
    votes = ([vote("right")] * 30 + [vote("left", "finetuned", "base")] * 20   # finetuned wins 50
             + [vote("left")] * 15 + [vote("tie")] * 10 + [vote("both_bad")] * 5)
    s = pair_stats(votes, "base", "finetuned")
    assert (s.wins_a, s.wins_b, s.ties, s.both_bad, s.decisive, s.votes) == (15, 50, 10, 5, 65, 80)
    assert s.win_rate_b == pytest.approx(50 / 65)
    assert (s.ci_low, s.ci_high) == pytest.approx(textbook_wilson(50, 65))
    assert s.tie_rate == pytest.approx(10 / 80) and s.tie_ci == pytest.approx(textbook_wilson(10, 80))
    assert s.both_bad_rate == pytest.approx(5 / 80)
    assert s.left_picks == 35  # 20 + 15 picks of the left side among 65 decisive
    # finetuned on the left: 20 wins of 20; on the right: 30 wins of 45
    assert s.position_bias_p == pytest.approx(fisher_exact([[20, 0], [30, 15]]).pvalue)


def test_a_better_method_shown_mostly_on_the_left_is_not_position_bias():
    """Fails on main: main tested left picks against 50% (p ~ 1e-6 here)."""
    votes = ([vote("left", "finetuned", "base")] * 490 + [vote("right", "finetuned", "base")] * 210
             + [vote("right")] * 210 + [vote("left")] * 90)  # finetuned wins 70% on either side, left 70% of the time
    s = pair_stats(votes, "base", "finetuned")
    assert s.left_picks == 580 and binomtest(580, 1000).pvalue < 1e-5
    assert s.position_bias_p == pytest.approx(1.0)
    assert s.position_bias["left_rate"] == pytest.approx(0.5)
    # a real bias: the left side wins 70% whoever sits there
    biased = ([vote("left", "finetuned", "base")] * 70 + [vote("right", "finetuned", "base")] * 30
              + [vote("left")] * 70 + [vote("right")] * 30)
    bias = pair_stats(biased, "base", "finetuned").position_bias
    assert bias["p_value"] == pytest.approx(fisher_exact([[70, 30], [30, 70]]).pvalue) and bias["p_value"] < 1e-6
    assert bias["left_rate"] == pytest.approx(0.7)


def test_edge_cases_no_votes_all_ties_one_method_always_wins():
    empty = summarize([], [])
    assert empty["votes"] == 0 and empty["pairs"] == []
    ties = pair_stats([vote("tie")] * 12, "base", "finetuned")
    assert ties.decisive == 0 and ties.win_rate_b is None and ties.p_value == 1.0 and ties.tie_rate == 1.0
    assert "No decisive votes" in verdict(ties.as_dict())
    sweep = pair_stats([vote("right", query=f"q{i}") for i in range(12)], "base", "finetuned")
    assert sweep.win_rate_b == 1.0 and sweep.p_value == pytest.approx(2 * 0.5 ** 12)
    assert sweep.ci_high == pytest.approx(1.0) and sweep.ci_low == pytest.approx(textbook_wilson(12, 12)[0])
    assert sweep.headline["ci_high"] == 1.0 and sweep.headline["ci_low"] < 1.0


def test_per_query_majority_counts_each_query_once():
    votes = [vote("right", query="q1"), vote("right", query="q1"), vote("left", query="q1"),
             vote("left", query="q2"), vote("right", query="q3"), vote("left", query="q3")]
    s = pair_stats(votes, "base", "finetuned")
    assert (s.query_wins_b, s.query_wins_a, s.queries) == (1, 1, 3)  # q3 is a draw
    # the headline: the mean of per-query shares 2/3, 0, 1/2
    assert s.headline["estimate"] == pytest.approx((2 / 3 + 0 + 0.5) / 3) and s.headline["queries"] == 3


def test_undone_votes_never_count():
    live, undone = vote("right"), {**vote("left"), "undone_at": "2026-01-01T00:00:00"}
    result = summarize([live, undone], [{"status": "skipped"}, {"status": "auto_skipped"}, {"status": "voted"}])
    assert result["votes"] == 1 and result["undone"] == 1 and result["pairs"][0]["wins_b"] == 1
    assert result["rounds"] == {"total": 3, "skipped": 1, "auto_skipped": 1}


# -- votes still needed: exact power --------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 4, 5, 6, 17, 40, 101])
@pytest.mark.parametrize("p", [0.55, 0.7, 0.95])
def test_sign_test_power_matches_scipy_binomtest(n, p):
    assert sign_test_power(np.array([n]), p)[0] == pytest.approx(exact_power(n, p), abs=1e-12)


@pytest.mark.parametrize("rate", [0.505, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 0.35])
def test_votes_needed_reaches_the_target_power_exactly_and_stays_there(rate):
    """Fails on main (normal approximation): between 0.505 and 0.8 its answer had 0.67-0.81 power."""
    decisive = 10
    total = decisive + votes_needed(rate, decisive)
    p = 0.5 + abs(rate - 0.5)
    if total < 1000:  # the brute-force reference is slow beyond
        assert exact_power(total, p) >= 0.8
        assert exact_power(total - 1, p) < 0.8  # the smallest count from which on power stays above
    # sign_test_power is checked against the brute-force reference above
    assert sign_test_power(np.arange(total, total + 300), p).min() >= 0.8
    assert sign_test_power(np.array([total - 1]), p)[0] < 0.8


def test_votes_needed_after_one_and_after_five_unanimous_votes():
    """Fails on main: after 1 of 1 it asked for 3 more (4 votes can never reject), after 5 of 5 for 0."""
    one = pair_stats([vote("right")], "base", "finetuned")
    five = pair_stats([vote("right", query=f"q{i}") for i in range(5)], "base", "finetuned")
    for s in (one, five):
        plan = s.votes_needed
        total = s.decisive + plan["more_votes"]
        assert plan["more_votes"] >= 1 and exact_power(total, plan["win_rate"]) >= 0.8
        assert s.votes_needed_80 == plan["more_votes"]
    assert exact_power(5, 1.0) == 0.0  # 5 of 5 is p = 0.0625


def test_min_effect_sets_the_planned_difference():
    """Votes still needed are planned for the always-valid test that gives the verdict, in new
    queries: the simulated share of arenas in which it has fired reaches 80% exactly there. Fails
    before this change: it planned a fixed-size sign test, about half the votes the verdict needs."""
    votes = [vote("right", query=f"q{i}") for i in range(30)] + [vote("left", query=f"q{i}") for i in range(30, 50)]
    s = pair_stats(votes, "base", "finetuned", min_effect=0.55)
    assert s.votes_needed["win_rate"] == pytest.approx(0.55) and s.votes_needed["source"] == "min_effect"
    assert s.votes_needed["test"] == "always-valid"
    total = s.headline["queries"] + s.votes_needed["more_votes"]
    assert 0.8 <= always_valid_power(0.55, total, 0.05) <= 0.83  # 80%, the simulation's own error counted against it
    assert s.votes_needed["power_at_total"] >= 0.8
    assert total > 1.5 * (s.decisive + votes_needed(0.55, s.decisive))  # the fixed-size sign test promised far fewer
    level = pair_stats([vote("right", query="a"), vote("left", query="b")], "base", "finetuned")
    assert level.votes_needed["source"] == "fallback" and level.votes_needed["win_rate"] == 0.55
    assert "would tell a 55/45 difference" in verdict(level.as_dict())


# -- the clustered headline, watched after every vote ---------------------------------------------

def simulate(rng, queries=30, per_query=10, mean=0.5, concentration=4.0):
    """An arena with query effects: each query's own win rate from Beta(mean * c, (1 - mean) * c)
    (c = 4: queries differ a lot, sd 0.22), votes in passes over the queries (least-voted first,
    as the arena picks them)."""
    p = rng.beta(mean * concentration, (1 - mean) * concentration, queries)
    order = np.concatenate([rng.permutation(queries) for _ in range(per_query)])
    return order, (rng.random(len(order)) < p[order]).astype(float)


def test_headline_is_safe_to_watch_with_query_effects_and_covers_the_truth():
    """30 queries x 10 votes with strong query effects and no real difference, the verdict looked
    at after every vote; the same arenas at a true 60/40 difference. Fails on main: its per-vote
    sign test and sequential test both called 'significant' far more often than 5%."""
    rng = np.random.default_rng(14)
    arenas = 1500
    false_pos = covered = naive_fixed = 0
    for _ in range(arenas):
        q, o = simulate(rng)
        p, _ = sequential_test(q, o)  # the smallest alpha it would ever have rejected at, over all 300 looks
        false_pos += p <= 0.05
        low, high, _ = headline_interval(np.bincount(q, o) / np.bincount(q), len(o))
        covered += low <= 0.5 <= high
        naive_fixed += binomtest(int(o.sum()), len(o)).pvalue <= 0.05  # one look only, and still wrong
    error = 3 * math.sqrt(0.05 * 0.95 / arenas)
    assert false_pos / arenas <= 0.05 + error
    assert covered / arenas >= 0.93
    assert naive_fixed / arenas > 0.15  # the simulation has real query effects
    power = covered60 = 0
    for _ in range(arenas // 3):
        q, o = simulate(rng, mean=0.6)
        p, direction = sequential_test(q, o)
        power += p <= 0.05 and direction == 1
        low, high, _ = headline_interval(np.bincount(q, o) / np.bincount(q), len(o))
        covered60 += low <= 0.6 <= high
    assert covered60 / (arenas // 3) >= 0.93
    assert power / (arenas // 3) > 0.08  # about 0.15 (README); far above the false-positive rate


def test_headline_detects_a_real_difference_with_one_vote_per_query():
    rng = np.random.default_rng(1)
    outcomes = (rng.random(400) < 0.65).astype(float)
    h = headline([f"q{i}" for i in range(400)], outcomes)
    assert h.significant and h.direction == 1 and h.sequential_p_value < 0.001
    assert (h.ci_low, h.ci_high) == pytest.approx(textbook_wilson(int(outcomes.sum()), 400, z=h_z(400)), abs=1e-9)


def h_z(queries):
    from scipy.stats import t
    return t.ppf(0.975, queries - 1)


def test_headline_interval_is_a_cluster_robust_wilson_interval():
    shares = np.array([1.0, 0.8, 0.6, 0.9, 0.2, 0.7])
    low, high, n_eff = headline_interval(shares, 30)
    mean, var_of_mean = shares.mean(), shares.var(ddof=1) / len(shares)
    assert n_eff == pytest.approx(mean * (1 - mean) / var_of_mean)
    assert (low, high) == pytest.approx(wilson_interval(mean, n_eff, h_z(6)))
    # never narrower than independent votes, never wider than one coin per query
    assert headline_interval(np.array([0.6] * 10), 100)[2] == 100
    assert headline_interval(np.array([0.0, 1.0] * 5), 100)[2] == 10
    path = headline_path(["a", "b", "a", "c"], [1, 0, 0, 1])
    assert path[-1, 0] == pytest.approx((0.5 + 0 + 1) / 3)
    assert tuple(path[-1, 1:]) == pytest.approx(headline_interval(np.array([0.5, 0.0, 1.0]), 4)[:2])


def test_repeated_queries_do_not_make_a_verdict():
    """20 queries lean to finetuned 7-3, 10 lean to base 7-3: per vote 170 of 300 (sign test
    p = 0.02); by query the evidence is thin. Fails on main: its verdict said 'significant'."""
    rng = np.random.default_rng(7)
    sequences = [rng.permutation(["right"] * (7 if i < 20 else 3) + ["left"] * (3 if i < 20 else 7)) for i in range(30)]
    order = [(j, i) for j in range(10) for i in rng.permutation(30)]  # in passes over the queries, as the arena asks
    votes = balanced([vote(sequences[i][j], query=f"q{i}", t=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z")
                      for n, (j, i) in enumerate(order)])
    pair = summarize(votes, [])["pairs"][0]
    assert pair["p_value"] < 0.05
    assert pair["plain"].startswith("No clear winner yet: finetuned leads with")
    assert "significant" not in pair["plain"]


def test_plain_verdict_names_the_better_method_first():
    votes = balanced([vote("right", query=f"q{i}") for i in range(62)] + [vote("left", query=f"r{i}") for i in range(36)])
    pair = summarize(votes, [])["pairs"][0]
    assert pair["plain"].startswith("finetuned is better: it wins 63% of the time, query by query (95% CI")
    worse = balanced([vote("left", query=f"q{i}") for i in range(62)] + [vote("right", query=f"r{i}") for i in range(36)])
    assert summarize(worse, [])["pairs"][0]["plain"].startswith("base is better: it wins 63%")


def test_votes_are_ordered_by_parsed_time_not_text():
    """An import mixing offsets: text order puts 09:00Z before 10:00+02:00 (08:00Z). Fails on main."""
    times = ["2026-01-01T09:00:00+00:00", "2026-01-01T10:00:00+02:00", "2026-01-01T08:30:00", "2026-01-01T07:00:00Z"]
    ordered = [v["created_at"] for v in in_time_order([vote("right", t=t) for t in times])]
    assert ordered == [times[3], times[1], times[2], times[0]]
    # the sequential test sees votes in time order whatever order the list came in
    rng = np.random.default_rng(3)
    votes = [vote("right" if rng.random() < 0.7 else "left", query=f"q{i}",
                  t=f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00+00:00") for i in range(120)]
    shifted = [{**v, "created_at": v["created_at"].replace("T0", "T1").replace("+00:00", "+10:00")}
               if i % 2 else v for i, v in enumerate(votes)]  # the same instants, other offsets
    expected = pair_stats(votes, "base", "finetuned").sequential_p_value
    assert pair_stats(shifted, "base", "finetuned").sequential_p_value == expected
    assert pair_stats(list(reversed(votes)), "base", "finetuned").sequential_p_value == expected


# -- Bradley-Terry ---------------------------------------------------------------------------------

def bt(result):
    return {r["method"]: r["strength"] for r in result["bradley_terry"]}


def test_bradley_terry_matches_maximum_likelihood():
    rng = np.random.default_rng(2)
    strengths = {"a": 1.0, "b": 2.0, "c": 4.0}
    votes = []
    for i in range(3000):
        x, y = rng.choice(list(strengths), 2, replace=False)
        r = rng.random()
        p_x = strengths[x] / (strengths[x] + strengths[y])
        choice = "tie" if r < 0.1 else "left" if r < 0.1 + 0.9 * p_x else "right"
        votes.append(vote(choice, x, y, query=f"q{i % 300}"))
    methods = ["a", "b", "c"]
    result = summarize(votes, [], bootstrap=50)
    ours = bt(result)
    # Davidson's ties, the side term and each query weighed once: the same likelihood written vote by vote
    ref, h, nu = davidson_reference(votes, methods)
    assert [ours[m] for m in methods] == pytest.approx(list(ref), abs=1e-4)
    model = result["bradley_terry_model"]
    assert model["side"]["h"] == pytest.approx(h, abs=1e-4) and model["ties"]["nu"] == pytest.approx(nu, rel=1e-4)
    assert [r["method"] for r in result["bradley_terry"]] == ["c", "b", "a"]
    for r in result["bradley_terry"]:
        assert r["ci"][0] <= r["strength"] <= r["ci"][1]


def test_bradley_terry_converges_on_a_long_chain():
    """16 methods compared only with their neighbours. Fails on main: 200 MM iterations missed the
    maximum by 5-40%."""
    rng = np.random.default_rng(5)
    methods = [f"m{i:02d}" for i in range(16)]
    votes = []
    for i in range(15):
        for j in range(40):
            p_later = 1 / (1 + math.exp(-0.4))  # each method a little better than the one before
            votes.append(vote("right" if rng.random() < p_later else "left", methods[i], methods[i + 1],
                              query=f"q{i}-{j}"))
    # each pair always the same way round: no side term can be fitted, and without ties the model is
    # plain Bradley-Terry, which choix fits independently
    result = summarize(votes, [], bootstrap=0)
    assert result["bradley_terry_model"]["side"]["identifiable"] is False
    ours = bt(result)
    ref = choix_reference(votes, methods)
    assert [ours[m] for m in methods] == pytest.approx(list(ref), rel=1e-5)
    assert ours["m15"] / ours["m00"] > 300  # the chain's ends stay far apart (the truth is e^6 = 403)


def choix_reference(votes, methods):
    """choix's penalised maximum likelihood with the same penalty; ties as half a win each way
    (every vote doubled, a tie as one win each way, so the penalty doubles too)."""
    idx = {m: i for i, m in enumerate(methods)}
    data = []
    for v in votes:
        left, right = idx[v["method_left"]], idx[v["method_right"]]
        data += {"left": [(left, right)] * 2, "right": [(right, left)] * 2,
                 "tie": [(left, right), (right, left)]}.get(v["choice"], [])
    theta = choix.opt_pairwise(len(methods), data, alpha=2 * PENALTY)
    s = np.exp(theta)
    return s / s.sum()


def test_bradley_terry_sweep_is_finite_and_inside_its_interval():
    """One method wins every vote. Fails on main: the estimate fell outside its own interval."""
    votes = ([vote("right", "a", "c", query=f"q{i}") for i in range(10)]
             + [vote("right", "b", "c", query=f"r{i}") for i in range(10)]
             + [vote("left", "a", "b", query=f"s{i}") for i in range(6)] + [vote("right", "a", "b", query="t")] * 4)
    result = summarize(votes, [], bootstrap=100)
    assert result["bradley_terry"][0]["method"] == "c"
    for r in result["bradley_terry"]:
        assert 0 < r["strength"] < 1 and r["ci"][0] <= r["strength"] <= r["ci"][1]
    ref, h, _ = davidson_reference(votes, ["a", "b", "c"], ties=False)  # the a-b-c cycle tells the side term
    assert [bt(result)[m] for m in "abc"] == pytest.approx(list(ref), rel=1e-3, abs=1e-6)


def test_bradley_terry_refuses_disconnected_groups():
    """a-b and c-d never met: no common scale. Fails on main: it printed strengths."""
    votes = [vote("right", "a", "b", query="q1"), vote("left", "c", "d", query="q2")] * 5
    result = summarize(votes, [], bootstrap=10)
    assert result["bradley_terry"] is None
    assert "a, b; c, d" in result["bradley_terry_warning"]


def test_two_methods_get_a_leaderboard_and_three_get_holm():
    two = summarize([vote("right", query=f"q{i}") for i in range(8)] + [vote("left", query="z")], [], bootstrap=20)
    assert [r["method"] for r in two["bradley_terry"]] == ["finetuned", "base"]
    assert two["bradley_terry"][0]["votes"] == 9
    votes = [vote("right", "a", "b"), vote("right", "b", "c"), vote("left", "c", "a"), vote("tie", "a", "c")] * 5
    result = summarize(votes, [], bootstrap=20)
    assert [r["method"] for r in result["bradley_terry"]][0] == "c"
    assert all("p_holm" in p for p in result["pairs"]) and len(result["pairs"]) == 3


# -- annotators, blind votes -----------------------------------------------------------------------

def test_annotator_agreement():
    votes = [vote("right", query="q1", annotator="x"), vote("right", query="q1", annotator="y"),
             vote("left", query="q2", annotator="x"), vote("tie", query="q2", annotator="y")]
    agreement = summarize(votes, [])["annotators"]
    assert agreement["per_annotator"] == {"x": 2, "y": 2}
    assert agreement["shared_pairs"] == 2 and agreement["agreement"] == 0.5
    table = {r["annotator"]: r for r in agreement["table"]}
    assert table["x"]["agreement"] == 0.5 and table["x"]["shared"] == 2 and table["x"]["median_ms"] == 1000


def test_gold_rounds_measure_self_consistency():
    """The same lists shown again with the sides swapped: x picks the same method both times, y
    picks the same side both times (so the other method)."""
    def shown(choice, annotator, swapped, t):
        left, right, rl, rr = ("finetuned", "base", '["b1"]', '["a1"]') if swapped else ("base", "finetuned", '["a1"]', '["b1"]')
        return vote(choice, left, right, query="g", annotator=annotator, t=t, results_left=rl, results_right=rr)

    votes = [shown("right", "x", False, "2026-01-01T10:00:00Z"), shown("left", "x", True, "2026-01-01T11:00:00Z"),
             shown("right", "y", False, "2026-01-01T10:00:00Z"), shown("right", "y", True, "2026-01-01T11:00:00Z"),
             shown("left", "y", False, "2026-01-01T12:00:00Z")]  # a third showing, not swapped: no pair
    table = {r["annotator"]: r for r in summarize(votes, [])["annotators"]["table"]}
    assert (table["x"]["gold_pairs"], table["x"]["gold_consistent"], table["x"]["self_consistency"]) == (1, 1, 1.0)
    assert (table["y"]["gold_pairs"], table["y"]["gold_consistent"], table["y"]["self_consistency"]) == (1, 0, 0.0)
    assert table["y"]["left_rate"] == pytest.approx(1 / 3)


def test_excluded_annotators_and_non_blind_votes_leave_the_verdict():
    votes = (balanced([vote("right", query=f"q{i}", annotator="good") for i in range(10)]
                      + [vote("left", query=f"r{i}", annotator="spammer") for i in range(30)])
             + [vote("left", query=f"s{i}", annotator="good", blind=False) for i in range(4)]
             + [vote("left", query="u", annotator="good", blind="false")])
    everyone = summarize(votes, [])
    assert everyone["votes"] == 40 and everyone["non_blind"]["votes"] == 5
    assert everyone["non_blind"]["pairs"][0]["win_rate_b"] == 0.0 and not everyone["non_blind"]["counted"]
    assert re.match(r"(base is better|No clear winner yet: base leads)", everyone["pairs"][0]["plain"])
    kept = summarize(votes, [], exclude_annotators=["spammer"])
    assert kept["votes"] == 10 and kept["excluded_votes"] == 30 and kept["excluded_annotators"] == ["spammer"]
    assert kept["pairs"][0]["wins_b"] == 10 and kept["pairs"][0]["wins_a"] == 0
    assert kept["pairs"][0]["plain"].startswith("finetuned is better: it wins 100%")
    assert {r["annotator"]: r["excluded"] for r in kept["annotators"]["table"]} == {"spammer": True, "good": False}
    counted = summarize(votes, [], include_non_blind=True)
    assert counted["votes"] == 45 and counted["non_blind"]["counted"]


# -- hostile input ---------------------------------------------------------------------------------

from datetime import datetime, timedelta, timezone  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

from clip_arena.votes.stats import is_blind, vote_time  # noqa: E402


@given(st.text(max_size=40))
def test_any_time_text_parses_to_an_aware_utc_time_or_sorts_last(text):
    t = vote_time({"created_at": text})
    assert t.tzinfo is not None and t.utcoffset() == timedelta(0)


@given(st.lists(st.tuples(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
                          st.integers(-14 * 60, 14 * 60)), max_size=30))
def test_votes_sort_by_instant_whatever_their_offsets(stamps):
    votes = [vote("right", t=moment.replace(tzinfo=timezone(timedelta(minutes=offset))).isoformat())
             for moment, offset in stamps]
    ordered = in_time_order(votes)
    assert sorted(map(id, ordered)) == sorted(map(id, votes))
    instants = [datetime.fromisoformat(v["created_at"]).timestamp() for v in ordered]
    assert instants == sorted(instants)


@given(st.one_of(st.booleans(), st.none(), st.text(max_size=8), st.integers()))
def test_blind_field_of_any_shape(value):
    expected = not (value is False or value == 0 or (isinstance(value, str) and value.strip().lower() in
                                                     ("false", "0", "no")))
    assert is_blind({"blind": value}) == expected and is_blind({})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=60))
def test_headline_is_symmetric_and_its_interval_holds_the_estimate(decided):
    queries = [f"q{q}" for q, _ in decided]
    outcomes = [float(o) for _, o in decided]
    h = headline(queries, outcomes)
    flipped = headline(queries, [1 - o for o in outcomes])
    assert 0 <= h.ci_low <= h.estimate <= h.ci_high <= 1
    assert 0 < h.sequential_p_value <= 1
    assert flipped.sequential_p_value == pytest.approx(h.sequential_p_value)
    assert flipped.direction == -h.direction and flipped.estimate == pytest.approx(1 - h.estimate)


@given(st.text(max_size=12))
def test_min_effect_option_takes_a_win_rate_or_says_why_not(text):
    import argparse

    from clip_arena.cli.stats import _win_rate

    try:
        value = _win_rate(text)
    except argparse.ArgumentTypeError as err:
        assert str(err)
    else:
        assert 0 < value < 1 and value != 0.5


def test_sequential_p_value_is_a_union_bound_over_bettors_each_valid_in_its_own_filtration():
    """Each bettor (a query entering at its 1st, 3rd or 10th decisive vote) is a test martingale
    only in its own filtration, so their average is not one: the p-value is 6 (3 bettors x 2
    directions) over the largest wealth any single bettor reached, computed here by a plain loop.
    Fails before this change: it averaged the three wealths (about 3 alpha, not alpha)."""
    def wealth_path(x):
        out, w, past = [], 1.0, []
        for xi in x:
            if not past:
                bet = 0.5
            else:
                mean = float(np.mean(past))
                var = float(np.mean(np.square(past))) - mean * mean
                bet = min(max(mean / (max(var, 0.0) + mean * mean + 1e-12), 0.0), 1.5) if mean > 0 else 0.0
            w *= 1 + bet * (xi - 0.5)
            out.append(w)
            past.append(xi - 0.5)
        return out

    rng = np.random.default_rng(3)
    queries = np.concatenate([rng.permutation(12) for _ in range(10)])
    outcomes = (rng.random(len(queries)) < np.where(queries < 9, 0.8, 0.4)[queries]).astype(float)
    best = 0.0
    for m in (1, 3, 10):
        shares = []
        for i, q in enumerate(queries):
            mine = outcomes[:i + 1][queries[:i + 1] == q]
            if len(mine) == m:
                shares.append(mine.mean())
        best = max(best, *wealth_path(shares))
    p, direction = sequential_test(queries, outcomes)
    assert direction == 1 and p == pytest.approx(min(1.0, 6 / best), rel=1e-9)

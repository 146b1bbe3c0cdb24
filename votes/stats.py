"""Statistics of arena votes (DESIGN.md, "Statistics"). Plain functions over vote dicts.

For a pair of methods A < B (alphabetical) with W_A and W_B decisive wins, T ties, X both-bad.
Per vote (as if every vote were independent): win rate of B = W_B / (W_A + W_B) with a 95% Wilson
interval and the exact two-sided sign test binomtest(W_B, W_A + W_B, 0.5). Clustered by query and
safe to watch: votes.clustered. Tie and both-bad rates over all votes; position bias within each
side assignment (Fisher's exact test); per-query majority. The verdict's test and the votes it
still needs: votes.plan (the always-valid test, or with a plan the more powerful of it and a
group-sequential test; alpha shared by all pairs of methods).
"""

from __future__ import annotations

import math
from functools import lru_cache
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np
from scipy.stats import binom, binomtest, fisher_exact, norm

from clip_arena.votes.choices import Choice
from clip_arena.votes.clustered import headline
from clip_arena.votes import plan as planning

ALPHA = 0.05
POWER = 0.8
FALLBACK_EFFECT = 0.55  # the difference planned for when the observed one is nil: 55/45
LARGEST_PLANNED = 0.75  # an observed split beyond 75/25 (a few early votes) is planned for as 75/25


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


def _critical(n: np.ndarray, alpha: float) -> np.ndarray:
    """The largest count c with 2 * P(Bin(n, 1/2) <= c) <= alpha (-1 when none), per n: a normal
    guess corrected by exact binomial tails (faster than binom.ppf on long arrays)."""
    c = np.floor(n / 2 - norm.ppf(1 - alpha / 2) * np.sqrt(n) / 2).astype(np.int64)
    c = np.clip(c, -1, n)
    for _ in range(n.size and 50):
        up = 2 * binom.cdf(c + 1, n, 0.5) <= alpha
        down = (c >= 0) & (2 * binom.cdf(c, n, 0.5) > alpha)
        if not (up.any() or down.any()):
            break
        c = c + up - down
    return c


def sign_test_power(n: np.ndarray, win_rate: float, alpha: float = ALPHA) -> np.ndarray:
    """Exact power of the two-sided sign test at alpha on n decisive votes (an array of sizes)
    when B truly wins with probability `win_rate`. It rejects when min(k, n-k) <= c, c the largest
    count with 2 * P(Bin(n, 1/2) <= c) <= alpha (the two-sided binomtest p-value at p = 1/2)."""
    n = np.asarray(n, np.int64)
    c = _critical(n, alpha)
    lower = np.where(c >= 0, binom.cdf(c, n, win_rate), 0.0)
    upper = np.where(c >= 0, binom.sf(n - c - 1, n, win_rate), 0.0)
    return lower + upper


@lru_cache(maxsize=512)  # the Results tab asks again every 10 seconds
def _total_needed(win_rate: float, power: float, alpha: float, most: int) -> int | None:
    """The smallest n from which on the exact power stays at `power` or more (checked up to a
    generous bound past the normal approximation); None beyond `most`."""
    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    guess = ((z_a * 0.5 + z_b * math.sqrt(win_rate * (1 - win_rate))) / (win_rate - 0.5)) ** 2
    start = max(1, int(0.7 * guess) - 20)  # exact power is below the target well before the guess
    top = int(min(most, max(1.5 * guess, guess + 200)))
    while True:
        n = np.arange(start, top + 1)
        short = np.flatnonzero(sign_test_power(n, win_rate, alpha) < power)
        if start > 1 and not (len(short) and short[0] == 0):
            start = 1  # the window began above the target: look from the start
        elif len(short) and short[-1] == len(n) - 1:  # still short at the top
            if top >= most:
                return None
            top = min(most, 2 * top)
        else:
            return int(n[short[-1]] + 1) if len(short) else int(n[0])


def votes_needed(win_rate: float, decisive: int, power: float = POWER, alpha: float = ALPHA,
                 most: int = 200_000) -> int | None:
    """Further decisive votes after which the exact power of the two-sided sign test to detect a
    true win rate `win_rate` is at least `power`, and stays so for every larger number of votes
    (exact power zig-zags with n). None for a nil effect, or when more than `most` votes in all
    would be needed."""
    effect = abs(win_rate - 0.5)
    if effect < 1e-9:
        return None
    total = _total_needed(0.5 + effect, power, alpha, most)
    return None if total is None else max(0, total - decisive)


def winner(vote: dict) -> str | None:
    """The method a vote prefers; None for ties and both-bad."""
    if vote["choice"] == Choice.LEFT.value:
        return vote["method_left"]
    if vote["choice"] == Choice.RIGHT.value:
        return vote["method_right"]
    return None


def vote_time(vote: dict) -> datetime:
    """A vote's time as an aware UTC datetime (naive stamps are UTC): imports may mix offsets,
    so votes are never ordered by the text of their stamps."""
    try:
        stamp = datetime.fromisoformat(str(vote.get("created_at") or ""))
    except ValueError:
        return datetime.max.replace(tzinfo=timezone.utc)
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)


def in_time_order(votes: list[dict]) -> list[dict]:
    """Votes by their parsed time; equal times keep their given order."""
    return [v for _, v in sorted(enumerate(votes), key=lambda iv: (vote_time(iv[1]), iv[0]))]


def is_blind(vote: dict) -> bool:
    """Votes without the field are blind (older stores and CSVs)."""
    value = vote.get("blind", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no")
    return value is None or bool(value)


def position_bias_test(votes: list[dict], b: str) -> dict:
    """Position bias within each side assignment: does B win more often when shown on the left
    than when shown on the right? Fisher's exact test on that 2x2 table is valid however unevenly
    the sides were assigned (a plain test of left picks against 50% is not: a better method shown
    mostly on the left looks like bias). `left_rate` is the share of left picks the methods' sides
    alone would explain: the mean of B's win rate on the left and A's win rate on the left.
    When B was never on one side (or no vote was decisive) nothing can be tested: p_value None and
    `untestable` says why (a p of 1 would read as "no bias")."""
    table = np.zeros((2, 2), np.int64)  # rows: B left, B right; columns: B won, A won
    for v in votes:
        w = winner(v)
        if w is not None:
            table[0 if v["method_left"] == b else 1, 0 if w == b else 1] += 1
    p = float(fisher_exact(table).pvalue) if table.sum(axis=1).all() else None
    rates = [table[i, 0] / table[i].sum() if table[i].sum() else None for i in (0, 1)]
    left_rate = (rates[0] + 1 - rates[1]) / 2 if None not in rates else None
    missing = [side for side, row in zip(("left", "right"), table) if not row.sum()]
    untestable = (None if p is not None else "no decisive votes" if len(missing) == 2 else
                  f"{b} was never shown on the {missing[0]} in a decisive vote")
    return {"b_left_votes": int(table[0].sum()), "b_left_wins": int(table[0, 0]),
            "b_right_votes": int(table[1].sum()), "b_right_wins": int(table[1, 0]),
            "left_rate": None if left_rate is None else float(left_rate), "p_value": p, "untestable": untestable}


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
    # per vote, as if votes were independent:
    win_rate_b: float | None
    ci_low: float
    ci_high: float
    p_value: float
    # clustered by query, always valid (the headline):
    headline: dict
    sequential_p_value: float
    tie_rate: float
    tie_ci: tuple[float, float]
    both_bad_rate: float
    both_bad_ci: tuple[float, float]
    left_picks: int
    position_bias_p: float | None  # None: cannot be tested (position_bias['untestable'] says why)
    position_bias: dict
    queries: int
    query_wins_a: int
    query_wins_b: int
    query_p_value: float
    votes_needed: dict
    votes_needed_80: int | None
    decision: dict = field(default_factory=dict)
    breakdown: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def target_rate(win_rate: float | None, min_effect: float | None) -> tuple[float, str]:
    """The win rate votes are planned for: `min_effect` when given, else the observed one (at most
    75/25: planning for less asks for more votes, so the power at the observed rate is still at least
    the target), else 55/45 when nothing leads."""
    if min_effect is not None:
        target, source = min_effect, "min_effect"
    elif win_rate is not None and abs(win_rate - 0.5) > 1e-9:
        # on a grid of whole percents, rounded towards 50/50 (more votes, never fewer): the Results
        # tab asks on every refresh, and each new rate would cost a new simulation
        target = max(math.floor(100 * min(abs(win_rate - 0.5), LARGEST_PLANNED - 0.5) + 1e-9) / 100, 0.01)
        target, source = 0.5 + target, "observed"
    else:
        target, source = FALLBACK_EFFECT, "fallback"
    return 0.5 + abs(target - 0.5), source


def plan(win_rate: float | None, entries: int, min_effect: float | None = None, power: float = POWER,
         alpha: float = ALPHA, decision: dict | None = None) -> dict:
    """Votes still needed, on new queries, for the test that gives the verdict (`decision`, from
    votes.plan.choose_test; the always-valid test at `alpha` when absent) to call the better method
    better with chance `power`, if its true win rate is the target (target_rate). `entries`: the
    queries already in the test (each counts once)."""
    target, source = target_rate(win_rate, min_effect)
    decision = decision or {"test": planning.ALWAYS_VALID, "alpha": alpha}
    if decision["test"] == planning.GROUP_SEQUENTIAL:
        n = decision["entries_max"]
        more = planning.group_sequential_more(target, n, decision["alpha"], entries, decision.get("lead", 0), power)
        at_total = None if more is None else power  # at least `power` by construction
    else:
        total = planning.always_valid_needed(target, decision["alpha"], power)
        more = None if total is None else max(0, total - entries)
        at_total = None if total is None else planning.always_valid_power(target, total, decision["alpha"])
    return {"win_rate": target, "power": power, "more_votes": more, "power_at_total": at_total,
            "source": source, "test": decision["test"], "queries_in_test": entries}


def _decide(head, first_votes: list[float], family: int, the_plan: planning.Plan | None,
            alpha: float) -> dict:
    """Which test gives the verdict (fixed by the plan and the family alone) and what it says."""
    if the_plan is None:
        chosen = planning.choose_test(None, family)
        chosen["alpha"] = alpha / max(family, 1)
    else:
        chosen = planning.choose_test(the_plan, family)
    chosen["significant"], chosen["direction"] = head.significant, head.direction
    if chosen["test"] == planning.GROUP_SEQUENTIAL:
        gs = planning.group_sequential_test(first_votes, the_plan.entries(), chosen["alpha"])
        # as the headline: a verdict never contradicts the estimate (stricter, still valid)
        agrees = head.estimate is not None and (head.estimate - 0.5) * gs["direction"] > 0
        chosen.update(max_votes=the_plan.max_votes, lead=gs["lead"], entries=gs["entries"],
                      significant=gs["significant"] and agrees, direction=gs["direction"] if agrees else 0)
    return chosen


def verdict_test(queries, outcomes, family: int = 1, the_plan: planning.Plan | None = None,
                 alpha: float = ALPHA):
    """The clustered headline, the verdict's decision and each query's first decisive vote, from
    decisive votes in time order (1 = B won): what pair_stats reports, and what the simulation
    bench runs on thousands of arenas."""
    pair_alpha = (the_plan.alpha if the_plan else alpha) / max(family, 1)
    head = headline(queries, outcomes, alpha=pair_alpha)
    seen: set = set()
    first_votes = [o for q, o in zip(queries, outcomes) if not (q in seen or seen.add(q))]
    return head, _decide(head, first_votes, family, the_plan, alpha), first_votes


def pair_stats(votes: list[dict], a: str, b: str, min_effect: float | None = None, alpha: float = ALPHA,
               family: int = 1, the_plan: planning.Plan | None = None) -> PairStats:
    """Statistics of the live votes comparing methods a and b (ordered by time here). `family`: the
    number of pairs of methods sharing alpha (or the plan's alpha); `the_plan`: the evaluation plan."""
    mine = in_time_order([v for v in votes if {v["method_left"], v["method_right"]} == {a, b}])
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
    decided = [(v["query_id"], 1 if w == b else 0) for v, w in zip(mine, winners) if w is not None]
    pair_alpha = (the_plan.alpha if the_plan else alpha) / max(family, 1)
    head, decision, first_votes = verdict_test([q for q, _ in decided], [o for _, o in decided], family, the_plan,
                                               alpha)
    from_plan = min_effect is None and the_plan is not None
    if from_plan:
        min_effect = the_plan.effect
    needed = plan(head.estimate, len(first_votes), min_effect, POWER, pair_alpha, decision)
    if from_plan:
        needed["source"] = "plan"
    observed = needed if min_effect is None else plan(head.estimate, len(first_votes), None, POWER, pair_alpha,
                                                      decision)
    bias = position_bias_test(mine, b)
    return PairStats(
        method_a=a, method_b=b, votes=n, wins_a=wins_a, wins_b=wins_b, ties=counts[Choice.TIE.value],
        both_bad=counts[Choice.BOTH_BAD.value], decisive=decisive, win_rate_b=win_rate, ci_low=low, ci_high=high,
        p_value=sign_test(wins_b, decisive), headline=asdict(head), sequential_p_value=head.sequential_p_value,
        tie_rate=counts[Choice.TIE.value] / n if n else 0.0, tie_ci=wilson(counts[Choice.TIE.value], n),
        both_bad_rate=counts[Choice.BOTH_BAD.value] / n if n else 0.0,
        both_bad_ci=wilson(counts[Choice.BOTH_BAD.value], n),
        left_picks=counts[Choice.LEFT.value], position_bias_p=bias["p_value"], position_bias=bias,
        queries=len({v["query_id"] for v in mine}), query_wins_a=q_a, query_wins_b=q_b,
        query_p_value=sign_test(q_b, q_a + q_b), votes_needed=needed,
        votes_needed_80=observed["more_votes"], decision=decision,
    )


def breakdown(votes: list[dict], a: str, b: str, labels: dict[str, str]) -> list[dict]:
    """Per metadata value (query_id -> value): wins, win rate of b with Wilson CI, sign test,
    Holm-adjusted across values (per vote: within a value, queries may repeat)."""
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

"""How the Results verdict behaves on simulated arenas, through the verdict's own code
(votes.stats.verdict_test: the clustered headline, the always-valid test, the plan's test, alpha
shared by all pairs of methods).

Three parts:

- headline: per setting (queries x votes x concentration), with no difference the false-positive
  rate of the headline test looked at after every vote and its interval's coverage; at a true
  60/40 difference its power and coverage; beside the per-vote sign test looked at once.
- family: 2, 4 and 6 equal methods (every pair judged), watched after every vote: the share of
  arenas in which ANY pair says "better" (the table's false "better" rate), without and with a
  plan, under strong query effects, biased annotators (one of three picks the left side 40% of
  the time whatever it sees), unbalanced sides (the later method on the right in 85% of votes)
  and time-varying sides (on the left in the first half, on the right in the second); and the
  coverage of the pairs' 95% intervals.
- plan: for plans at 55/45 to 70/30 and 1 or 6 pairs, the power of both tests at the plan, the
  test the plan picks, the votes it promises, and the share of arenas (votes on new queries, query
  effects) in which the verdict has fired by then: at least 80% is the promise.

Each query's own win rate is drawn from Beta(mean * c, (1 - mean) * c) (c = 4: queries differ a
lot, sd 0.22; c = 1e6: they do not); votes come in passes over the queries, least-voted first,
as the arena asks for them.

    python bench/stats_simulation.py                     # all parts, 500 arenas each (several minutes)
    python bench/stats_simulation.py --part plan --arenas 2000
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.votes.clustered import headline_interval, sequential_test  # noqa: E402
from clip_arena.votes.plan import Plan, always_valid_power, choose_test, group_sequential_power  # noqa: E402
from clip_arena.votes.stats import plan as votes_needed, verdict_test  # noqa: E402

ALPHA = 0.05


def simulate(rng, queries, per_query, mean, concentration):
    p = rng.beta(mean * concentration, (1 - mean) * concentration, queries)
    order = np.concatenate([rng.permutation(queries) for _ in range(per_query)])
    return order, (rng.random(len(order)) < p[order]).astype(float)


def headline_part(arenas: int, settings: list[str]) -> None:
    print("== headline: one pair ==")
    for setting in settings:
        q_n, v_n, c = setting.split("x")
        rng = np.random.default_rng(2026)
        row = []
        for mean in (0.5, 0.6):
            hits = covered = baseline = 0
            for _ in range(arenas):
                q, o = simulate(rng, int(q_n), int(v_n), mean, float(c))
                p, direction = sequential_test(q, o)
                hits += p <= ALPHA and (mean == 0.5 or direction == 1)
                low, high, _ = headline_interval(np.bincount(q, o) / np.bincount(q), len(o))
                covered += low <= mean <= high
                baseline += binomtest(int(o.sum()), len(o)).pvalue <= ALPHA
            row.append((hits / arenas, covered / arenas, baseline / arenas))
        (fp, cov0, base0), (power, cov60, base60) = row
        print(f"{q_n} queries x {v_n} votes, concentration {c}: no difference, watched after every vote: "
              f"false positives {fp:.3f} (per-vote sign test looked at once: {base0:.3f}), coverage {cov0:.3f}; "
              f"60/40: power {power:.3f} (per-vote sign test once: {base60:.3f}), coverage {cov60:.3f}", flush=True)


SCENARIOS = {
    "query effects": dict(pull=0.0, sides="random"),
    "biased annotators": dict(pull=0.4, sides="random"),
    "unbalanced sides": dict(pull=0.4, sides="unbalanced"),
    "time-varying sides": dict(pull=0.4, sides="time"),
}


def pair_votes(rng, queries: int, per_query: int, pull: float, sides: str):
    """One pair of equal methods: (query, B won) in time order. Three annotators take turns; the
    first picks the left side with chance `pull` whatever it sees."""
    p = rng.beta(2, 2, queries)  # strong query effects, no difference on average
    order = np.concatenate([rng.permutation(queries) for _ in range(per_query)])
    n = len(order)
    if sides == "random":
        b_left = rng.random(n) < 0.5
    elif sides == "unbalanced":
        b_left = rng.random(n) < 0.15
    else:  # time-varying: B on the left first, then on the right
        b_left = np.arange(n) < n // 2
    judged = rng.random(n) < p[order]
    biased = (np.arange(n) % 3 == 0) & (rng.random(n) < pull)
    won = np.where(biased, b_left, judged)
    return order, won.astype(float)


def family_part(arenas: int, queries: int, per_query: int) -> None:
    print(f"== family: equal methods, every pair {queries} queries x {per_query} votes, watched after every vote; "
          f"alpha {ALPHA} for the whole table ==")
    the_plan = Plan(0.6, queries * per_query, ALPHA, queries=queries)
    for name, kw in SCENARIOS.items():
        for methods in (2, 4, 6):
            pairs = methods * (methods - 1) // 2
            rng = np.random.default_rng(7 + methods)
            wrong = wrong_plan = covered = intervals = 0
            for _ in range(arenas):
                any_better = any_better_plan = False
                for _pair in range(pairs):
                    q, o = pair_votes(rng, queries, per_query, **kw)
                    head, decision, _ = verdict_test(q, o, pairs)
                    any_better |= decision["significant"]
                    any_better_plan |= verdict_test(q, o, pairs, the_plan)[1]["significant"]
                    covered += head.ci_low <= 0.5 <= head.ci_high
                    intervals += 1
                wrong += any_better
                wrong_plan += any_better_plan
            print(f"{name}, {methods} methods ({pairs} pairs): false 'better' anywhere in the table "
                  f"{wrong / arenas:.3f} (with a 60/40 plan: {wrong_plan / arenas:.3f}); "
                  f"interval coverage {covered / intervals:.3f}", flush=True)


def plan_part(arenas: int) -> None:
    print("== plan: does the verdict fire by the votes the plan promised? (votes on new queries, query effects) ==")
    for effect, max_votes in ((0.55, 2000), (0.6, 400), (0.65, 250), (0.7, 150)):
        for pairs in (1, 6):
            the_plan = Plan(effect, max_votes, ALPHA)
            decision = choose_test(the_plan, pairs)
            decision.update(max_votes=max_votes, lead=0)
            alpha = decision["alpha"]
            rows = []
            for label, dec, plan in (("plan", decision, the_plan), ("no plan", None, None)):
                promised = votes_needed(None, 0, min_effect=effect, alpha=alpha, decision=dec)["more_votes"]
                if promised is None:
                    rows.append(f"{label}: more than can be planned")
                    continue
                rng = np.random.default_rng(31)
                fired = 0
                for _ in range(arenas):
                    q, o = simulate(rng, promised, 1, effect, 4.0)  # one vote on each new query
                    d = verdict_test(q, o, pairs, plan)[1]
                    fired += d["significant"] and d["direction"] == 1
                test = dec["test"] if dec else "always-valid"
                share = fired / arenas
                exact = (f", exact {group_sequential_power(effect, promised, alpha, max_votes):.3f}"
                         if test == "group-sequential" else "")
                rows.append(f"{label} ({test}): {promised} votes promised, fired by then in {share:.3f} "
                            f"(+-{2 * np.sqrt(share * (1 - share) / arenas):.3f}{exact})")
            gs = group_sequential_power(effect, max_votes, alpha)
            av = always_valid_power(effect, max_votes, alpha)
            print(f"{round(100 * effect)}/{round(100 * (1 - effect))}, at most {max_votes} votes, {pairs} pair(s): "
                  f"power at the plan group-sequential {gs:.3f}, always-valid {av:.3f} -> {decision['test']}; "
                  + "; ".join(rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arenas", type=int, default=500)
    parser.add_argument("--part", nargs="+", choices=["headline", "family", "plan"],
                        default=["headline", "family", "plan"])
    parser.add_argument("--settings", nargs="+", default=["30x10x4", "30x10x10", "30x10x1e6", "100x3x4", "300x1x4"],
                        help="headline part: QUERIESxVOTESxCONCENTRATION")
    parser.add_argument("--family-votes", default="40x5", help="family part: QUERIESxVOTES per pair")
    args = parser.parse_args()
    if "headline" in args.part:
        headline_part(args.arenas, args.settings)
    if "family" in args.part:
        q, v = (int(x) for x in args.family_votes.split("x"))
        family_part(args.arenas, q, v)
    if "plan" in args.part:
        plan_part(args.arenas)


if __name__ == "__main__":
    main()

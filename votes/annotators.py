"""Annotator quality: per annotator, votes, time to vote, position bias, agreement with the others
and self-consistency on gold rounds.

A gold pair needs no column of its own: the same annotator judged the same query with the same
two result lists, sides swapped. A consistent annotator prefers the same method both times (or
has no preference both times).
"""

from __future__ import annotations

import json
from collections import defaultdict

import krippendorff  # light (numpy only): imported here, before serving, never first in a request thread
import numpy as np
from scipy.stats import fisher_exact

from clip_arena.votes.stats import in_time_order, winner


def _outcome(v: dict) -> str:
    return winner(v) or "none"  # a method's name, or no preference (tie, both bad)


def _pair(v: dict) -> tuple[str, str]:
    return tuple(sorted((v["method_left"], v["method_right"])))


def gold_pairs(votes: list[dict]) -> list[tuple[dict, dict]]:
    """(first, repeat) vote pairs: same annotator, query and lists, sides swapped, in time order."""
    seen: dict[tuple, dict] = {}
    found = []
    for v in in_time_order(votes):
        lists = (v["method_left"], _norm(v["results_left"])), (v["method_right"], _norm(v["results_right"]))
        key = (v["annotator"], v["query_id"], frozenset(lists))
        first = seen.get(key)
        if first is None:
            seen[key] = v
        elif first["method_left"] == v["method_right"] and first["method_right"] == v["method_left"]:
            found.append((first, v))
            del seen[key]  # a third showing pairs with a fourth
    return found


def _norm(results) -> tuple:
    return tuple(json.loads(results)) if isinstance(results, str) else tuple(results or ())


def _side_bias(votes: list[dict]) -> tuple[float | None, float | None]:
    """Share of left picks among decisive votes, and Fisher's exact p within side assignment
    (the later method of each pair on the left or on the right; sides are drawn at random, so
    pooling pairs keeps the test valid)."""
    table = np.zeros((2, 2), np.int64)
    left = decisive = 0
    for v in votes:
        w = winner(v)
        if w is None:
            continue
        later = _pair(v)[1]
        table[0 if v["method_left"] == later else 1, 0 if w == later else 1] += 1
        decisive += 1
        left += w == v["method_left"]
    p = float(fisher_exact(table).pvalue) if table.sum(axis=1).all() else None  # None: cannot be tested
    return (left / decisive if decisive else None), p


def annotator_table(votes: list[dict], excluded: set[str] = frozenset(), flags: dict | None = None) -> list[dict]:
    """One row per annotator, most votes first; `flagged`: their votes in `flags` (too fast)."""
    flags = flags or {}
    by_annotator: dict[str, list[dict]] = defaultdict(list)
    for v in votes:
        by_annotator[v["annotator"]].append(v)
    # what each annotator said on each (query, pair), to compare with the others
    said: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for v in votes:
        said[(v["query_id"], _pair(v))][v["annotator"]].append(_outcome(v))
    gold = defaultdict(lambda: [0, 0])
    for first, repeat in gold_pairs(votes):
        gold[first["annotator"]][0] += 1
        gold[first["annotator"]][1] += _outcome(first) == _outcome(repeat)
    rows = []
    for name, mine in by_annotator.items():
        agree = shared = 0
        for judged in said.values():
            if name not in judged:
                continue
            for other, outcomes in judged.items():
                if other != name:
                    for a in judged[name]:
                        for b in outcomes:
                            shared += 1
                            agree += a == b
        times = [v["display_ms"] for v in mine if v.get("display_ms") is not None]
        left_rate, bias_p = _side_bias(mine)
        pairs, consistent = gold[name]
        rows.append({
            "annotator": name, "votes": len(mine), "decisive": sum(winner(v) is not None for v in mine),
            "median_ms": float(np.median(times)) if times else None, "left_rate": left_rate,
            "position_bias_p": bias_p, "agreement": agree / shared if shared else None, "shared": shared,
            "gold_pairs": pairs, "gold_consistent": consistent,
            "self_consistency": consistent / pairs if pairs else None, "excluded": name in excluded,
            "flagged": sum(v.get("vote_id") in flags for v in mine),
        })
    rows.sort(key=lambda r: (-r["votes"], r["annotator"]))
    return rows


def annotator_agreement(votes: list[dict]) -> dict:
    """Per-annotator counts, and how often two votes by different annotators on the same query
    (and pair) said the same thing (ties and both-bad count as a shared 'no preference'): the
    same count the annotator table gives per annotator."""
    per_annotator: dict[str, int] = defaultdict(int)
    by_query: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for v in votes:
        per_annotator[v["annotator"]] += 1
        by_query[(v["query_id"], _pair(v))][v["annotator"]].append(_outcome(v))
    agree = pairs = 0
    for judged in by_query.values():
        names = list(judged)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                for a in judged[names[i]]:
                    for b in judged[names[j]]:
                        pairs += 1
                        agree += a == b
    return {"per_annotator": dict(per_annotator), "shared_pairs": pairs,
            "agreement": agree / pairs if pairs else None}


# -- chance-corrected agreement and the verdict without each annotator ------------------------------

ORDINAL = {"a": 0, None: 1, "b": 2}  # prefers the pair's first method < no preference < prefers the second


def _units(votes: list[dict]) -> np.ndarray:
    """Value counts per judged unit (a query and a pair of methods), one judgement per annotator
    (their first in time): columns prefer A, no preference, prefer B (A, B in alphabetical order)."""
    first: dict[tuple, dict[str, int]] = defaultdict(dict)
    for v in in_time_order(votes):
        a, b = _pair(v)
        w = winner(v)
        first[(v["query_id"], (a, b))].setdefault(v["annotator"], ORDINAL["a" if w == a else "b" if w == b else None])
    counts = np.zeros((len(first), 3))
    for row, said in enumerate(first.values()):
        for value in said.values():
            counts[row, value] += 1
    return counts


def _alpha(counts: np.ndarray) -> float | None:
    pairable = counts[counts.sum(axis=1) >= 2]
    if not len(pairable) or (pairable.sum(axis=0) > 0).sum() < 2:
        return None  # nothing judged twice, or one value only: agreement is undefined
    return float(krippendorff.alpha(value_counts=pairable, level_of_measurement="ordinal"))


def krippendorff_alpha(votes: list[dict], resamples: int = 200, seed: int = 0) -> dict:
    """Krippendorff's alpha (ordinal: prefer A < no preference < prefer B) between annotators over
    the units two or more of them judged, with a 95% percentile bootstrap over those units. 1 is
    perfect agreement, 0 what chance alone gives; None when no unit was judged by two annotators."""
    counts = _units(votes)
    pairable = counts[counts.sum(axis=1) >= 2]
    alpha = _alpha(pairable)
    out = {"alpha": alpha, "ci": None, "units": int(len(pairable)), "level": "ordinal"}
    if alpha is None or not resamples:
        return out
    rng = np.random.default_rng(seed)
    draws = [_alpha(pairable[rng.integers(0, len(pairable), len(pairable))]) for _ in range(resamples)]
    draws = [d for d in draws if d is not None and np.isfinite(d)]
    if draws:
        out["ci"] = (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))
    return out


def leave_one_out(votes: list[dict], pairs: list[tuple[str, str, float | None]]) -> list[dict]:
    """For each annotator: each pair's clustered estimate (B's mean share of decisive votes over
    queries, the headline's) with that annotator's votes left out, and whether it stays on the same
    side of 50% as with everyone (`holds`; None when either is level or missing). `pairs`: (a, b,
    the estimate with everyone)."""
    from clip_arena.votes.clustered import query_shares

    rows = []
    for name in sorted({v["annotator"] for v in votes}):
        rest = [v for v in votes if v["annotator"] != name]
        out = []
        for a, b, full in pairs:
            decided = [(str(v["query_id"]), 1.0 if winner(v) == b else 0.0) for v in rest
                       if {v["method_left"], v["method_right"]} == {a, b} and winner(v) is not None]
            est = float(query_shares(np.array([q for q, _ in decided], dtype=object),
                                     np.array([o for _, o in decided])).mean()) if decided else None
            holds = (None if est is None or full is None or est == 0.5 or full == 0.5
                     else bool((est - 0.5) * (full - 0.5) > 0))
            out.append({"method_a": a, "method_b": b, "estimate": est, "holds": holds})
        rows.append({"annotator": name, "left_out_votes": len(votes) - len(rest), "pairs": out})
    return rows

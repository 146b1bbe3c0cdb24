"""Annotator quality: per annotator, votes, time to vote, position bias, agreement with the others
and self-consistency on gold rounds.

A gold pair needs no column of its own: the same annotator judged the same query with the same
two result lists, sides swapped. A consistent annotator prefers the same method both times (or
has no preference both times).
"""

from __future__ import annotations

import json
from collections import defaultdict

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


def _side_bias(votes: list[dict]) -> tuple[float | None, float]:
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
    p = float(fisher_exact(table).pvalue) if table.sum(axis=1).all() else 1.0
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

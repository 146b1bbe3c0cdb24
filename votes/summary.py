"""The whole verdict from a vote store (and optionally its catalog): what `clip-arena stats --json`
prints and the Results tab shows."""

from __future__ import annotations

import itertools

import numpy as np

from votes.stats import (ALPHA, annotator_agreement, bradley_terry, bradley_terry_bootstrap, breakdown, holm,
                         pair_stats)


def summarize(votes_all: list[dict], rounds: list[dict], catalog=None, bootstrap: int = 200) -> dict:
    """Undone votes never count; skipped and auto-skipped rounds are reported beside them."""
    votes = [v for v in votes_all if not v.get("undone_at")]
    methods = sorted({m for v in votes for m in (v["method_left"], v["method_right"])})
    pairs = [pair_stats(votes, a, b) for a, b in itertools.combinations(methods, 2)]
    pairs = [p for p in pairs if p.votes]
    labels = _labels(catalog)
    out_pairs = []
    for p in pairs:
        d = p.as_dict()
        d["breakdown"] = {col: breakdown(votes, p.method_a, p.method_b, mapping) for col, mapping in labels.items()}
        out_pairs.append(d)
    if len(out_pairs) > 1:
        for d, adjusted in zip(out_pairs, holm([d["p_value"] for d in out_pairs])):
            d["p_holm"] = adjusted
    status = {}
    for r in rounds:
        status[r["status"]] = status.get(r["status"], 0) + 1
    result = {
        "votes": len(votes), "undone": len(votes_all) - len(votes), "methods": methods, "pairs": out_pairs,
        "rounds": {"total": len(rounds), "skipped": status.get("skipped", 0),
                   "auto_skipped": status.get("auto_skipped", 0)},
        "annotators": annotator_agreement(votes), "alpha": ALPHA,
    }
    if len(methods) > 2 and votes:
        strengths = bradley_terry(votes, methods)
        intervals = bradley_terry_bootstrap(votes, methods, bootstrap) if bootstrap else {}
        result["bradley_terry"] = [{"method": m, "strength": strengths[m], "ci": intervals.get(m)}
                                   for m in sorted(methods, key=lambda m: -strengths[m])]
    if catalog is not None:
        result["proxy"] = proxy_metrics(catalog, votes)
    return result


def _labels(catalog) -> dict[str, dict[str, str]]:
    if catalog is None:
        return {}
    frame = catalog.frame()
    return {col: dict(zip(frame["image_id"], frame[col].astype(str))) for col in catalog.metadata_columns()
            if 1 < frame[col].nunique() <= 200}


def proxy_metrics(catalog, votes: list[dict]) -> dict | None:
    """Precision@k of same-category neighbours over the arena's queries, per method: an automatic
    check beside the human verdict, computed from the result lists the votes recorded (no search,
    so the Results tab can refresh it cheaply at any catalog size). None without a category column
    or without votes."""
    import json

    if "category" not in catalog.table.column_names or not votes:
        return None
    frame = catalog.frame(["image_id", "category"])
    label = dict(zip(frame["image_id"], frame["category"].astype(str)))
    lists: dict[str, dict[str, list[str]]] = {}  # method -> query -> the list shown for it
    for v in votes:
        for side in ("left", "right"):
            lists.setdefault(v[f"method_{side}"], {}).setdefault(v["query_id"], json.loads(v[f"results_{side}"]))
    out = {}
    for method, by_query in lists.items():
        shares = [np.mean([label.get(i) == label.get(q) for i in ids]) for q, ids in by_query.items() if ids]
        if shares:
            out[method] = {"precision@k": float(np.mean(shares)), "k": max(len(ids) for ids in by_query.values()),
                           "queries": len(shares)}
    return out or None


def verdict(pair: dict, alpha: float = ALPHA) -> str:
    """One sentence a reviewer can repeat."""
    a, b = pair["method_a"], pair["method_b"]
    if not pair["decisive"]:
        return f"No decisive votes yet between {a} and {b} ({pair['votes']} votes)."
    rate = pair["win_rate_b"]
    lead, share = (b, rate) if rate >= 0.5 else (a, 1 - rate)
    low, high = (pair["ci_low"], pair["ci_high"]) if lead == b else (1 - pair["ci_high"], 1 - pair["ci_low"])
    significant = "significant" if pair["p_value"] < alpha else "not significant"
    return (f"{lead} wins {share:.0%} of decisive votes (95% CI {low:.0%}-{high:.0%}), sign test "
            f"p = {_p(pair['p_value'])}, {pair['decisive']} decisive of {pair['votes']} votes; {significant} "
            f"at {alpha:g} (always-valid sequential p = {_p(pair['sequential_p_value'])}).")


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else "< 0.001"

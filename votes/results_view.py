"""The Results tab's logic as plain functions: the verdict text, figures and export files."""

from __future__ import annotations

import json
from pathlib import Path

from core.downloads import new_folder
from votes.figures import cumulative_win_rate, forest, outcome_bars, position_bias
from votes.store import VoteStore
from votes.summary import summarize, verdict
from votes.transfer import export_csv


def pair_label(pair: dict) -> str:
    return f"{pair['method_a']} vs {pair['method_b']}"


def results(store: VoteStore, catalog, chosen: str | None) -> dict:
    votes = store.votes()
    summary = summarize(votes, store.rounds(), catalog, bootstrap=100)
    live = [v for v in votes if not v.get("undone_at")]
    labels = [pair_label(p) for p in summary["pairs"]]
    pair = next((p for p in summary["pairs"] if pair_label(p) == chosen), summary["pairs"][0] if summary["pairs"] else None)
    lines = [verdict(p) for p in summary["pairs"]] or ["No votes yet: vote in the Arena tab."]
    details = []
    if pair:
        details.append(
            f"Ties {pair['ties']} ({pair['tie_rate']:.0%}, CI {pair['tie_ci'][0]:.0%}-{pair['tie_ci'][1]:.0%}), "
            f"both bad {pair['both_bad']} ({pair['both_bad_rate']:.0%}). Per query (majority): "
            f"{pair['method_b']} {pair['query_wins_b']}, {pair['method_a']} {pair['query_wins_a']} of {pair['queries']} "
            f"queries, p = {pair['query_p_value']:.2g}. Position bias p = {pair['position_bias_p']:.2g}."
        )
        if pair["votes_needed_80"] is not None:
            details.append(f"About {pair['votes_needed_80']} more decisive votes give 80% power at the observed effect.")
    rounds = summary["rounds"]
    details.append(f"{summary['votes']} live votes, {summary['undone']} undone; {rounds['skipped']} skipped and "
                   f"{rounds['auto_skipped']} auto-skipped rounds.")
    if summary.get("proxy"):
        k = max(v["k"] for v in summary["proxy"].values())
        details.append(f"Proxy, precision@{k} of same-category neighbours over the arena's queries: " + ", ".join(
            f"{m} {v['precision@k']:.3f}" for m, v in summary["proxy"].items()) + ".")
    agreement = summary["annotators"]
    if agreement["agreement"] is not None:
        details.append(f"Annotators agree on {agreement['agreement']:.0%} of {agreement['shared_pairs']} shared judgements.")
    if summary.get("bradley_terry"):
        details.append("Bradley-Terry: " + ", ".join(f"{r['method']} {r['strength']:.2f}" for r in summary["bradley_terry"]) + ".")
    column = next(iter(pair["breakdown"]), None) if pair else None
    return {
        "verdict": "\n\n".join(f"**{line}**" for line in lines), "details": " ".join(details),
        "pairs": labels, "pair": pair_label(pair) if pair else None,
        "figures": [outcome_bars(pair), cumulative_win_rate(live, pair),
                    forest(pair, column) if column else forest(None, "category"), position_bias(pair)],
        "summary": summary,
    }


def export_files(store: VoteStore, summary: dict) -> tuple[str, str]:
    folder = new_folder("export")
    export_csv(store, folder / "votes.csv")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return str(folder / "votes.csv"), str(folder / "summary.json")

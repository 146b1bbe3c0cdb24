"""The Results tab's logic as plain functions: the verdict text, figures, tables and export files."""

from __future__ import annotations

import json

from clip_arena.core.downloads import new_folder
from clip_arena.votes.figures import cumulative_win_rate, forest, outcome_bars, position_bias
from clip_arena.votes.plan import plan_words, read_plan
from clip_arena.votes.stats import is_blind
from clip_arena.votes.store import VoteStore
from clip_arena.votes.summary import count, model_lines, numbers, summarize
from clip_arena.votes.transfer import export_csv

BOOTSTRAP = 200  # as `clip-arena stats`: the same votes give the same intervals on the web and the CLI
LEADERBOARD_HEADERS = ["rank", "method", "strength", "95% interval", "votes"]
ANNOTATOR_HEADERS = ["annotator", "votes", "median time (s)", "too fast (flagged)", "left picks",
                     "position bias p", "agrees with others", "same on repeats", "in the verdict"]


def pair_label(pair: dict) -> str:
    return f"{pair['method_a']} vs {pair['method_b']}"


LEVEL = 1e-6  # strengths this close are level: neither is ranked above the other


def ranks(rows: list[dict]) -> list[str]:
    """Competition ranks of rows sorted best first; level methods share theirs, written "=1"."""
    out = []
    for i, r in enumerate(rows):
        first = next(j for j in range(i + 1) if abs(rows[j]["strength"] - r["strength"]) < LEVEL)
        level = sum(abs(x["strength"] - r["strength"]) < LEVEL for x in rows) > 1
        out.append(f"={first + 1}" if level else str(first + 1))
    return out


def leaderboard(summary: dict) -> list[list]:
    """Methods, Bradley-Terry strength, its interval and votes, best first (two methods too)."""
    rows = summary.get("bradley_terry") or []
    return [["?" if r.get("confounded_with") else rank, r["method"], f"{r['strength']:.3f}", interval_text(r),
             r["votes"]] for rank, r in zip(ranks(rows), rows)]


def interval_text(row: dict) -> str:
    """A leaderboard row's interval, or why its order cannot be told (sides confounded, summary)."""
    ci = f"{row['ci'][0]:.3f}-{row['ci'][1]:.3f}" if row["ci"] else ""
    if row.get("confounded_with"):
        return (f"{ci}; " if ci else "") + f"order against {', '.join(row['confounded_with'])} cannot be told " \
                                           "(sides confounded)"
    return ci


def annotator_rows(summary: dict) -> list[list]:
    def pct(x):
        return "" if x is None else f"{x:.0%}"

    return [[r["annotator"], r["votes"], "" if r["median_ms"] is None else round(r["median_ms"] / 1000, 1),
             r.get("flagged", 0), pct(r["left_rate"]),
             "cannot be tested" if r["position_bias_p"] is None else f"{r['position_bias_p']:.2g}",
             f"{pct(r['agreement'])} of {r['shared']}" if r["shared"] else "",
             f"{r['gold_consistent']} of {r['gold_pairs']}" if r["gold_pairs"] else "",
             "no (excluded)" if r["excluded"] else "yes"] for r in summary["annotators"]["table"]]


def flagged_line(flagged: dict) -> str:
    """What the flagged votes are and what they weigh: counted, visible, and how to leave them out."""
    n, counted = flagged["votes"], flagged["in_verdict"]
    return (f"{n} vote{'s were' if n != 1 else ' was'} cast faster than the display-time floor and "
            f"{'are' if n != 1 else 'is'} flagged; {counted} of them {'count' if counted != 1 else 'counts'} in the "
            f"verdict. The annotator table shows whose they are: leave out an annotator who votes too fast.")


def results(store: VoteStore, catalog, chosen: str | None, exclude: list[str] | None = None,
            fingerprint: str | None = None) -> dict:
    """`fingerprint`: the served catalog's (votes.fingerprints.of_catalog); votes of others are left out."""
    votes = store.votes()
    plan = read_plan(store.path)  # stated with serve --plan, read on each refresh
    summary = summarize(votes, store.rounds(), catalog, bootstrap=BOOTSTRAP, exclude_annotators=exclude or (),
                        flags=store.flags(), fingerprint=fingerprint, plan=plan)
    counted = [v for v in votes if not v.get("undone_at") and is_blind(v)
               and v["annotator"] not in set(exclude or ())]
    labels = [pair_label(p) for p in summary["pairs"]]
    pair = next((p for p in summary["pairs"] if pair_label(p) == chosen), summary["pairs"][0] if summary["pairs"] else None)
    several = len(summary["pairs"]) > 1
    lines = [f"{pair_label(p)}: {p['plain']}" if several else p["plain"] for p in summary["pairs"]] or [
        "No votes yet: vote in the Arena tab."]
    lines = [summary[k] for k in ("catalog_warning", "catalog_note", "self_vote_note") if summary.get(k)] + lines
    if plan is not None:
        lines.append(f"Plan: {plan_words(plan)}.")
    details = ["\n".join(f"- {line}" for line in numbers(pair).splitlines())] if pair else []
    rounds = summary["rounds"]
    details.append(f"{count(summary['votes'], 'vote')} in the verdict, {summary['undone']} undone; "
                   f"{rounds['skipped']} skipped "
                   f"and {rounds['auto_skipped']} auto-skipped rounds.")
    non_blind = summary["non_blind"]
    if non_blind["votes"]:
        rates = ", ".join(f"{r['method_b']} {r['win_rate_b']:.0%} of {r['wins_a'] + r['wins_b']} decisive against "
                          f"{r['method_a']}" for r in non_blind["pairs"] if r["win_rate_b"] is not None)
        n = non_blind["votes"]
        details.append(f"{n} vote{'s' if n != 1 else ''} cast after the methods were revealed "
                       f"{'are' if n != 1 else 'is'} left out of the verdict"
                       + (f" (on their own: {rates})." if rates else "."))
    if summary["flagged"]["votes"]:
        details.append(flagged_line(summary["flagged"]))
    if summary["excluded_annotators"]:
        details.append(f"Left out of the verdict: {', '.join(summary['excluded_annotators'])} "
                       f"({count(summary['excluded_votes'], 'vote')}).")
    if summary.get("proxy"):
        k = max(v["k"] for v in summary["proxy"].values())
        details.append(f"Proxy, precision@{k} of same-category neighbours over the arena's queries: " + ", ".join(
            f"{m} {v['precision@k']:.3f}" for m, v in summary["proxy"].items()) + ".")
    agreement = summary["annotators"]
    if agreement["agreement"] is not None:
        details.append(f"Annotators agree on {agreement['agreement']:.0%} of {agreement['shared_pairs']} shared judgements.")
    if summary.get("bradley_terry_warning"):
        details.append(summary["bradley_terry_warning"])
    details += model_lines(summary)  # side term, ties, annotators' alpha, each annotator left out
    column = next(iter(pair["breakdown"]), None) if pair else None
    return {
        "verdict": "\n\n".join(f"**{line}**" for line in lines), "details": "\n\n".join(details),
        "pairs": labels, "pair": pair_label(pair) if pair else None,
        "figures": [outcome_bars(pair), cumulative_win_rate(counted, pair),
                    forest(pair, column) if column else forest(None, "category"), position_bias(pair)],
        "leaderboard": leaderboard(summary), "annotators": annotator_rows(summary),
        "annotator_names": [r["annotator"] for r in summary["annotators"]["table"]],
        "summary": summary,
    }


def export_files(store: VoteStore, summary: dict) -> tuple[str, str]:
    folder = new_folder("export")
    export_csv(store, folder / "votes.csv")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return str(folder / "votes.csv"), str(folder / "summary.json")

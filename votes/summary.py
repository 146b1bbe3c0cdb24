"""The whole verdict from a vote store (and optionally its catalog): what `clip-arena stats --json`
prints and the Results tab shows. The plain sentence first, the numbers after it."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np

from clip_arena.votes.annotators import annotator_agreement, annotator_table, krippendorff_alpha, leave_one_out
from clip_arena.votes.bradley_terry import bradley_terry, votes_seed
from clip_arena.votes.confounds import confounds
from clip_arena.votes.fingerprints import compatible, describe, methods_of
from clip_arena.votes.plan import GROUP_SEQUENTIAL, Plan
from clip_arena.votes.stats import ALPHA, breakdown, holm, is_blind, pair_stats, winner


def summarize(votes_all: list[dict], rounds: list[dict], catalog=None, bootstrap: int = 200,
              exclude_annotators=(), min_effect: float | None = None, include_non_blind: bool = False,
              flags: dict[str, str] | None = None, fingerprint: str | None = None, plan: Plan | None = None) -> dict:
    """Undone votes never count; skipped and auto-skipped rounds are reported beside them. Votes
    cast after the annotator saw the methods (blind = false) and votes of excluded annotators are
    left out of the verdict and reported apart. `flags` ({vote_id: reason}, VoteStore.flags()):
    votes cast under the display-time floor, counted and reported, per annotator too. `fingerprint`
    (votes.fingerprints.of_catalog): the catalog the verdict is about; votes cast on another one are
    left out and counted apart. Without it, votes of different catalogs are pooled with a warning.
    `plan` (votes.plan.Plan): the evaluation plan; each pair then gets its stopping rule. "Better" is
    controlled across all pairs of methods together: each pair's test runs at alpha / pairs."""
    flags = flags or {}
    excluded = {a for a in exclude_annotators if a}
    other_catalog, other_methods = [], []
    if fingerprint:  # votes, undone ones and rounds of another catalog are no part of this one's story
        # a method the catalog lacks has no embeddings here: an empty fingerprint must not let it in
        known = set(methods_of(fingerprint)) - {""}
        mine = []
        for v in votes_all:
            if known and not {v["method_left"], v["method_right"]} <= known:
                if not v.get("undone_at"):
                    other_methods.append(v)
            elif compatible(v.get("catalog_fingerprint", ""), fingerprint):
                mine.append(v)
            elif not v.get("undone_at"):
                other_catalog.append(v)
        votes_all = mine
        rounds = [r for r in rounds if compatible(r.get("catalog_fingerprint", ""), fingerprint)]
    live = [v for v in votes_all if not v.get("undone_at")]
    undone = len(votes_all) - len(live)
    # a method against itself (imported before `votes import` refused it) would count as a side pull
    self_votes = sum(v["method_left"] == v["method_right"] for v in live)
    live = [v for v in live if v["method_left"] != v["method_right"]]
    non_blind = [v for v in live if not is_blind(v)]
    votes = [v for v in live if (include_non_blind or is_blind(v)) and v["annotator"] not in excluded]
    methods = sorted({m for v in votes for m in (v["method_left"], v["method_right"])})
    # every pair the arena can show shares alpha, voted on yet or not: the family is fixed from the start
    compared = set(methods) | set(getattr(catalog, "methods", None) or ())
    family = max(len(compared) * (len(compared) - 1) // 2, 1)
    pool, split = _query_pool(catalog)
    if plan is not None and plan.queries is None and pool is not None:  # stats --plan with --catalog
        plan = dataclasses.replace(plan, queries=len(pool))
    pairs = [pair_stats(votes, a, b, min_effect, family=family, the_plan=plan)
             for a, b in itertools.combinations(methods, 2)]
    pairs = [p for p in pairs if p.votes]
    labels = _labels(catalog)
    out_pairs = []
    sides = confounds(votes, [(p.method_a, p.method_b) for p in pairs])
    for p in pairs:
        d = p.as_dict()
        found = sides[(p.method_a, p.method_b)]
        d.update(confounded=found["confounded"], confounds=found["reasons"], sides=found)
        if pool is not None:
            judged = {v["query_id"] for v in votes if {v["method_left"], v["method_right"]} == {p.method_a, p.method_b}}
            d["query_pool"] = {"queries": len(pool), "left": len(pool - judged), "test_split": split}
        d["breakdown"] = {col: breakdown(votes, p.method_a, p.method_b, mapping) for col, mapping in labels.items()}
        if plan is not None:
            d["stopping_rule"] = stopping_rule(d, plan)
        d["plain"] = verdict(d, plan=plan)
        out_pairs.append(d)
    if len(out_pairs) > 1:
        for d, adjusted in zip(out_pairs, holm([d["p_value"] for d in out_pairs])):
            d["p_holm"] = adjusted
    status = {}
    for r in rounds:
        status[r["status"]] = status.get(r["status"], 0) + 1
    result = {
        "votes": len(votes), "undone": undone, "methods": methods, "pairs": out_pairs,
        "rounds": {"total": len(rounds), "skipped": status.get("skipped", 0),
                   "auto_skipped": status.get("auto_skipped", 0)},
        "annotators": {**annotator_agreement(votes), "table": annotator_table(live, excluded, flags)},
        "flagged": {"votes": sum(v.get("vote_id") in flags for v in live),
                    "in_verdict": sum(v.get("vote_id") in flags for v in votes)},
        "excluded_annotators": sorted(excluded), "excluded_votes": sum(v["annotator"] in excluded for v in live),
        "non_blind": _non_blind(non_blind, counted=include_non_blind), "alpha": ALPHA,
        "other_catalog_votes": len(other_catalog), "other_method_votes": len(other_methods),
        "self_votes": self_votes,
        "family": {"pairs": family, "alpha": plan.alpha if plan else ALPHA,
                   "alpha_per_pair": (plan.alpha if plan else ALPHA) / family},
    }
    if plan is not None:
        result["plan"] = plan.as_dict()
    pooled = describe(votes)
    if pooled:
        result["catalog_warning"] = (f"Warning: {pooled}; this verdict pools them. Name the arena's catalog "
                                     "(stats --catalog) to count only the votes cast on it.")
    elif other_catalog or other_methods:
        notes = []
        if other_catalog:
            notes.append(f"{count(len(other_catalog), 'vote')} cast on another catalog (a method with other "
                         f"embeddings) {'are' if len(other_catalog) != 1 else 'is'} left out.")
        if other_methods:
            missing = sorted({m for v in other_methods for m in (v["method_left"], v["method_right"])} - known)
            n = len(other_methods)
            notes.append(f"{count(n, 'vote')} naming method{'s' if len(missing) != 1 else ''} "
                         f"{', '.join(missing)}, which this catalog does not have, {'are' if n != 1 else 'is'} "
                         "left out.")
        result["catalog_note"] = " ".join(notes)
    if self_votes:
        result["self_vote_note"] = (f"{count(self_votes, 'vote')} of a method against itself "
                                    f"{'are' if self_votes != 1 else 'is'} left out: it says nothing about either.")
    if len(methods) >= 2:
        bt = bradley_terry(votes, methods, bootstrap)
        result["bradley_terry"] = bt["rows"]
        result["bradley_terry_model"] = {k: bt.get(k) for k in ("interval_method", "interval_note", "queries",
                                                                 "side", "ties", "weighting", "resamples")}
        if bt["warning"]:
            result["bradley_terry_warning"] = bt["warning"]
        _mark_confounded(result, bt)
    if catalog is not None:
        result["proxy"] = proxy_metrics(catalog, votes)
    _position_ties_annotators(result, votes, bootstrap)
    return result


def _mark_confounded(result: dict, bt: dict) -> None:
    """A pair whose sides are confounded with the methods has no order the votes can tell: the side
    term (a pull to one side) and the strengths trade off, so the fitted order rests on the model's
    assumption (h = 0 when not identifiable, or h from a handful of votes on the rare side) and its
    interval shows only the sampling noise given that assumption. Each such row says so."""
    unsure = [(d["method_a"], d["method_b"]) for d in result["pairs"] if d["confounded"]]
    if not unsure or not bt["rows"]:
        return
    for row in bt["rows"]:
        row["confounded_with"] = sorted({b if a == row["method"] else a for a, b in unsure if row["method"] in (a, b)})
    named = "; ".join(f"{a} vs {b}" for a, b in unsure)
    warning = (f"The leaderboard cannot order {named}: their votes' sides are confounded with the methods, so a "
               "pull to one side and a difference cannot be told apart; those strengths and intervals hold only if "
               "the side term is right (more votes with the same sides cannot settle it: vote with sides drawn at "
               "random).")
    result["bradley_terry_warning"] = " ".join(filter(None, [result.get("bradley_terry_warning"), warning]))


def _position_ties_annotators(result: dict, votes: list[dict], bootstrap: int) -> None:
    """Sides confounded with the methods or time (votes.confounds), said per pair; annotators'
    Krippendorff alpha and the verdict with each annotator left out."""
    pairs = result["pairs"]
    result["confounds"] = [f"{d['method_a']} vs {d['method_b']}: {r}" for d in pairs for r in d["confounds"]]
    result["confounded"] = any(d["confounded"] for d in pairs)
    result["annotators"]["krippendorff"] = krippendorff_alpha(votes, bootstrap, votes_seed(votes) if votes else 0)
    if len(result["annotators"]["per_annotator"]) >= 2:
        result["leave_one_out"] = leave_one_out(votes, [(d["method_a"], d["method_b"], d["headline"]["estimate"])
                                                        for d in pairs])


def _query_pool(catalog) -> tuple[set[str] | None, bool]:
    """The arena's query images (Catalog.query_rows) as image ids, and whether they are the test split."""
    if catalog is None:
        return None, False
    rows, test_split = catalog.query_rows()
    ids = catalog.ids
    return {ids[r] for r in rows}, test_split


def _non_blind(votes: list[dict], counted: bool) -> dict:
    """Votes cast after a reveal: how many, and their own win rates per pair."""
    rows = []
    for a, b in sorted({tuple(sorted((v["method_left"], v["method_right"]))) for v in votes}):
        ws = [winner(v) for v in votes if {v["method_left"], v["method_right"]} == {a, b}]
        wa, wb = ws.count(a), ws.count(b)
        rows.append({"method_a": a, "method_b": b, "votes": len(ws), "wins_a": wa, "wins_b": wb,
                     "win_rate_b": wb / (wa + wb) if wa + wb else None})
    return {"votes": len(votes), "counted": counted, "pairs": rows}


def _labels(catalog) -> dict[str, dict[str, str]]:
    if catalog is None:
        return {}
    frame = catalog.frame()
    return {col: dict(zip(frame["image_id"], frame[col].astype(str))) for col in catalog.metadata_columns()
            if 1 < frame[col].nunique() <= 200}


def proxy_metrics(catalog, votes: list[dict]) -> dict | None:
    """Precision@k of same-category neighbours over the arena's queries, per method: an automatic
    check beside the human verdict, computed from the result lists the votes recorded (no search,
    so the Results tab can refresh it cheaply at any catalog size). A result or a query missing
    from the catalog (or without a category) never matches. None without a category column or
    without votes."""
    if "category" not in catalog.table.column_names or not votes:
        return None
    frame = catalog.frame(["image_id", "category"])
    label = {i: c for i, c in zip(frame["image_id"], frame["category"]) if c is not None and c == c}
    lists: dict[str, dict[str, list[str]]] = {}  # method -> query -> the list shown for it
    for v in votes:
        for side in ("left", "right"):
            lists.setdefault(v[f"method_{side}"], {}).setdefault(v["query_id"], json.loads(v[f"results_{side}"]))
    out = {}
    for method, by_query in lists.items():
        shares = [np.mean([i in label and q in label and label[i] == label[q] for i in ids])
                  for q, ids in by_query.items() if ids]
        if shares:
            out[method] = {"precision@k": float(np.mean(shares)), "k": max(len(ids) for ids in by_query.values()),
                           "queries": len(shares)}
    return out or None


def count(n: int, noun: str) -> str:
    """'1 vote', '2 votes', '1 query', '3 queries'."""
    return f"{n} {noun if n == 1 else noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _range(low: float, high: float) -> str:
    return f"{100 * low:.0f}-{100 * high:.0f}%"


def _decision(pair: dict) -> dict:
    """The verdict's test and what it says (older summaries: the headline's)."""
    return pair.get("decision") or {**pair["headline"], "test": "always-valid"}


def _lead(pair: dict) -> tuple[str, float, float, float]:
    head, a, b = pair["headline"], pair["method_a"], pair["method_b"]
    share, low, high = head["estimate"], head["ci_low"], head["ci_high"]
    return (b, share, low, high) if share >= 0.5 else (a, 1 - share, 1 - high, 1 - low)


def _split(rate: float) -> str:
    return f"{round(100 * rate)}/{round(100 * (1 - rate))}"


def verdict(pair: dict, alpha: float = ALPHA, plan: Plan | None = None) -> str:
    """The plain sentence a product owner can act on: who is better, or what to do next. With a
    plan, its stopping rule follows the first clause."""
    a, b = pair["method_a"], pair["method_b"]
    head, decision = pair["headline"], _decision(pair)
    if not pair["decisive"]:
        return f"No decisive votes yet between {a} and {b} ({count(pair['votes'], 'vote')})."
    lead, share_l, low_l, high_l = _lead(pair)
    queries = count(head['queries'], 'query')
    if pair.get("confounded"):  # votes.confounds: a pull to one side can pass for a difference, so no "better"
        level = f"{a} and {b} are level at 50%" if head["estimate"] == 0.5 else f"{lead} leads with {_pct(share_l)}"
        return f"No verdict: {level} ({queries}), but {pair['confounds'][0]}"
    if decision["significant"]:
        better = f"{lead} is better: it wins {_pct(share_l)} of the time, query by query " \
                 f"(95% CI {_range(low_l, high_l)}, {queries})."
        return better + (f" Plan ({_plan_words(plan)}): {pair['stopping_rule']}." if plan else "")
    status = f"{a} and {b} are level at 50%" if head["estimate"] == 0.5 else f"{lead} leads with {_pct(share_l)}"
    first = f"No clear winner yet: {status} (95% CI {_range(low_l, high_l)}, {queries})"
    if plan is not None:
        return f"{first}. Plan ({_plan_words(plan)}): {pair['stopping_rule']}."
    if head["queries"] == 1:  # each query counts once: no number of votes on it can decide
        return f"{first}; vote on other queries: more votes on this one query cannot decide."
    needed = pair["votes_needed"]
    diff = _split(needed["win_rate"])
    if needed["more_votes"] is None:
        return f"{first}; a {diff} difference would take more votes than can be planned."
    more = needed["more_votes"]
    if more == 0:  # the simulated arenas had fired by now; this one has not yet
        return f"{first}; keep voting on new queries: the lead is not yet strong enough to call safely."
    told = f"about {more} more vote{'' if more == 1 else 's'} on new queries would tell a {diff} difference"
    pool = pair.get("query_pool")
    if pool and more > pool["left"]:  # each query counts once: votes on judged ones add little
        noun = "test split" if pool["test_split"] else "catalog"
        left = f"only {pool['left']} not yet judged" if pool["left"] else "all of them judged already"
        return (f"{first}; {told}, but the {noun} has {pool['queries']} queries, {left}: too few to tell it. "
                "Add query images (a larger test split: clip-arena embed --split) or accept a larger difference.")
    return f"{first}; {told}."


def _plan_words(plan: Plan) -> str:
    return f"{plan.label()} or more, at most {plan.max_votes} votes a pair, alpha {plan.alpha:g}"


def stopping_rule(pair: dict, plan: Plan) -> str:
    """The plan's stopping rule for a pair: 'stop: X is better', 'stop: no difference of 60/40 or
    more is left plausible', 'stop: the plan's N votes are spent ...' or 'keep going, about N more'."""
    decision, head = _decision(pair), pair["headline"]
    if pair.get("confounded"):  # no stop can rest on these votes: a side pull can pass for a difference
        return "keep going with sides drawn at random: these votes' sides are confounded with the methods"
    if pair["decisive"] and decision["significant"]:
        return f"stop: {_lead(pair)[0]} is better"
    # the interval holds neither 60/40 nor 40/60: a difference worth acting on is no longer plausible
    if pair["decisive"] and 1 - plan.effect < head["ci_low"] and head["ci_high"] < plan.effect:
        return f"stop: no difference of {plan.label()} or more is left plausible"
    if pair["decisive"] >= plan.max_votes:
        return f"stop: the plan's {plan.max_votes} votes are spent without a verdict"
    if head["queries"] == 1:
        return "keep going on other queries: more votes on this one query cannot decide"
    needed = pair["votes_needed"]
    more = needed["more_votes"]
    if more is not None and decision["test"] != GROUP_SEQUENTIAL and \
            pair["decisive"] + more > plan.max_votes:  # the betting test needs more than the plan spends
        more = None
    if more is None:
        return (f"keep going, up to the plan's {plan.max_votes} votes; a {plan.label()} difference is unlikely "
                "to be told within them")
    if more == 0:
        return "keep going on new queries: the lead is not yet strong enough to call safely"
    return f"keep going, about {more} more vote{'' if more == 1 else 's'} on new queries"


def numbers(pair: dict) -> str:
    """The numbers under the plain sentence, each labelled with what it assumes."""
    a, b = pair["method_a"], pair["method_b"]
    head, bias, needed = pair["headline"], pair["position_bias"], pair["votes_needed"]
    lines = []
    if pair["decisive"]:
        lines.append(
            f"Clustered by query (each query counts once): {b} wins {_pct(head['estimate'] or 0)} on average over "
            f"{count(head['queries'], 'query')} (95% CI {_range(head['ci_low'], head['ci_high'])}); "
            f"{_sequential(pair)}.")
    lines.append(_test_line(pair))
    lines += [
        _per_vote(pair),
        _per_query(pair),
        f"Ties {pair['ties']} ({_pct(pair['tie_rate'])}, CI {_range(*pair['tie_ci'])}), both bad "
        f"{pair['both_bad']} ({_pct(pair['both_bad_rate'])}, CI {_range(*pair['both_bad_ci'])}).",
    ]
    if bias["left_rate"] is not None:
        lines.append(f"Position bias, within each side assignment: {b} wins {bias['b_left_wins']} of "
                     f"{bias['b_left_votes']} on the left, {bias['b_right_wins']} of {bias['b_right_votes']} on the "
                     f"right; left picked {_pct(bias['left_rate'])} when the methods are even; Fisher's exact "
                     f"p {_p(bias['p_value'])}.")
    elif bias.get("untestable"):
        lines.append(f"Position bias cannot be tested: {bias['untestable']} (no p-value; 1.0 would read as no bias).")
    if pair.get("confounded"):  # a plan for more votes of the same kind would promise what they cannot give
        lines.append("Votes still needed: none can be planned while the sides are confounded with the methods; "
                     "vote with sides drawn at random (the arena does).")
    elif needed["more_votes"] is not None:
        how = ("exact, from the current lead" if needed.get("test") == GROUP_SEQUENTIAL
               else "simulated arenas, from the start")
        lines.append(f"Votes still needed: {needed['more_votes']} more decisive votes on new queries give the "
                     f"verdict's test ({needed.get('test', 'always-valid')}) {_pct(needed['power'])} power at a true "
                     f"{_split(needed['win_rate'])} difference ({needed['source'].replace('_', ' ')}; {how}).")
    return "\n".join(lines)


def _sequential(pair: dict) -> str:
    """The always-valid p-value with the method it favours (it can favour the trailing one: it keeps
    the strongest evidence ever seen), or "not reached" while min(1, 6 / wealth) is still 1."""
    head = pair["headline"]
    favours = head.get("favours", head["direction"])
    if head["sequential_p_value"] >= 1 or not favours:
        return ("always-valid sequential p: not reached (every bettor's wealth is still under 6, so its bound, "
                "6 / wealth, says nothing yet), safe to check after every vote")
    side = pair["method_b"] if favours > 0 else pair["method_a"]
    against = (" (from an earlier run of votes: the estimate now leans the other way, so it gives no verdict)"
               if head["estimate"] is not None and (head["estimate"] - 0.5) * favours < 0 else "")
    return (f"always-valid sequential p {_p(head['sequential_p_value'])} for {side}{against}, safe to check after "
            "every vote")


def _test_line(pair: dict) -> str:
    """Which test says "better", at which alpha, and why that one."""
    d = pair.get("decision") or {}
    family = d.get("family_pairs", 1)
    level = f"alpha {d.get('alpha', ALPHA):.3g}" + (f" (the table's alpha shared by {family} pairs)" if family > 1 else "")
    if d.get("test") == GROUP_SEQUENTIAL:
        power = d["power"]
        return (f"Verdict's test: group-sequential, fitted to the plan, at {level}: better when one method leads by "
                f"{d['boundary']} queries (first decisive votes) within {d['entries_max']}; now "
                f"{'+' if d['lead'] > 0 else ''}{d['lead']} for {b_or_a(pair, d['lead'])} after {d['entries']}. Chosen "
                f"before any vote for its power at the plan: {_pct(power['group-sequential'])} against "
                f"{_pct(power['always-valid'])} for the always-valid test.")
    return f"Verdict's test: always-valid (betting over queries), at {level}."


def b_or_a(pair: dict, lead: int) -> str:
    return pair["method_b"] if lead >= 0 else pair["method_a"]


def _per_query(pair: dict) -> str:
    a, b = pair["method_a"], pair["method_b"]
    if not pair["query_wins_a"] + pair["query_wins_b"]:  # a sign test of 0 against 0 is p = 1 and says nothing
        return (f"Per query (majority): no query of {pair['queries']} has a majority for either method; the sign "
                "test cannot be computed from these votes.")
    return (f"Per query (majority): {b} {pair['query_wins_b']}, {a} {pair['query_wins_a']} of "
            f"{count(pair['queries'], 'query')} (the others tied or had no decisive vote), sign test "
            f"p {_p(pair['query_p_value'])}.")


def _per_vote(pair: dict) -> str:
    a, b = pair["method_a"], pair["method_b"]
    if not pair["decisive"]:
        return (f"Per vote: no decisive votes yet ({pair['votes']} vote{'s' if pair['votes'] != 1 else ''}, "
                "all ties or both bad).")
    rate = pair["win_rate_b"] or 0.0
    lead, wins, share, low, high = ((b, pair["wins_b"], rate, pair["ci_low"], pair["ci_high"]) if rate >= 0.5 else
                                    (a, pair["wins_a"], 1 - rate, 1 - pair["ci_high"], 1 - pair["ci_low"]))
    return (f"Per vote (as if every vote were independent): {lead} wins {_pct(share)} of decisive votes ({wins} of "
            f"{pair['decisive']}, {count(pair['votes'], 'vote')} in all; 95% Wilson CI {_range(low, high)}), sign test "
            f"p {_p(pair['p_value'])}.")


def _p(p: float) -> str:
    """'p = 0.03' style: the comparison sign included."""
    return f"= {p:.2g}" if p >= 0.001 else "< 0.001"


def _ci(ci, fmt: str = "{:.2f}") -> str:
    return "" if ci is None else f" (95% CI {fmt.format(ci[0])} to {fmt.format(ci[1])})"  # bounds may be negative


def model_lines(summary: dict) -> list[str]:
    """Position, ties and annotators under the verdict (Results tab and `clip-arena stats`)."""
    lines = []
    model = summary.get("bradley_terry_model")
    if model and model.get("side"):
        side, ties = model["side"], model["ties"]
        lines.append(f"Leaderboard model: Bradley-Terry with Davidson's ties and a side term; {model['weighting']}; "
                     f"{model['interval_note']}.")
        if side["identifiable"]:
            share = side["left_share_ci"]
            lines.append(f"Side term h = {side['h']:.2f}{_ci(side['ci'])}: between two equal methods the left one wins "
                         f"{_pct(side['left_share'])} of decisive votes" + ("" if share is None else
                         f" ({_range(*share)})") + "; the strengths are adjusted for it.")
        else:
            why = side.get("reason") or "every pair was shown the same way round"
            lines.append(f"Side term: cannot be estimated from these votes ({why}); the strengths assume no pull "
                         "to one side.")
        lines.append(f"Ties (Davidson): nu cannot be estimated from these votes ({ties['reason']})."
                     if ties["nu"] is None
                     else "Ties (Davidson): none, nu = 0." if not ties["nu"] else
                     f"Ties (Davidson): nu = {ties['nu']:.2f}{_ci(ties['ci'])}, a tie in {_pct(ties['tie_rate_if_equal'])} "
                     "of votes between two equal methods.")
    alpha = summary["annotators"].get("krippendorff")
    if alpha and alpha["alpha"] is not None:
        lines.append(f"Annotators' agreement beyond chance: Krippendorff's alpha {alpha['alpha']:.2f}{_ci(alpha['ci'])} "
                     f"over {count(alpha['units'], 'query')} judged by two or more (ordinal: A < no preference < B; 1 is "
                     "perfect, 0 chance).")
    for row in summary.get("leave_one_out") or []:
        said = []
        for p in row["pairs"]:
            if p["estimate"] is None:
                said.append(f"no decisive votes left for {p['method_a']} vs {p['method_b']}")
                continue
            word = {True: "holds", False: "flips", None: "level"}[p["holds"]]
            said.append(f"{p['method_b']} {_pct(p['estimate'])} against {p['method_a']} ({word})")
        lines.append(f"Without {row['annotator']} ({count(row['left_out_votes'], 'vote')}): " + "; ".join(said) + ".")
    return lines

"""Plotly figures of the Results tab, from the summary dict and the vote list.

Counts and shares sit in the axis labels, not above the bars, where they would collide with the
error bars; axes reach a little past 0% and 100% so that markers there are not cut in half."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from clip_arena.votes.clustered import headline_path
from clip_arena.votes.stats import in_time_order, wilson, winner

COLOURS = {"a": "#8d99ae", "b": "#2a9d8f", "tie": "#e9c46a", "both_bad": "#e76f51"}
FULL_RANGE = [-0.04, 1.04]  # 0% and 100% with room for a marker's radius


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, annotations=[dict(text="no votes yet", showarrow=False, x=0.5, y=0.5,
                                                     xref="paper", yref="paper")], height=300)
    return fig


def outcome_bars(pair: dict | None) -> go.Figure:
    if not pair or not pair["votes"]:
        return _empty("Outcomes")
    n = pair["votes"]
    names = [f"{pair['method_a']} better", f"{pair['method_b']} better", "tie", "both bad"]
    counts = [pair["wins_a"], pair["wins_b"], pair["ties"], pair["both_bad"]]
    shares = [c / n for c in counts]
    cis = [wilson(c, n) for c in counts]
    labels = [f"{name}<br>{c} ({s:.0%})" for name, c, s in zip(names, counts, shares)]
    fig = go.Figure(go.Bar(
        x=labels, y=shares, marker_color=[COLOURS["a"], COLOURS["b"], COLOURS["tie"], COLOURS["both_bad"]],
        error_y=dict(type="data", symmetric=False, array=[hi - s for s, (_, hi) in zip(shares, cis)],
                     arrayminus=[s - lo for s, (lo, _) in zip(shares, cis)]),
        hovertemplate="%{x}: %{y:.0%}<extra></extra>",
    ))
    fig.update_layout(title=f"Outcomes of {n} votes (95% Wilson intervals)",
                      yaxis=dict(tickformat=".0%", range=[0, min(1.04, max(hi for _, hi in cis) + 0.06)]),
                      height=340, margin=dict(b=70))
    return fig


def cumulative_win_rate(votes: list[dict], pair: dict | None) -> go.Figure:
    """The headline estimate (each query counts once) and its interval after each decisive vote."""
    if not pair or not pair["decisive"]:
        return _empty("Win rate over time")
    a, b = pair["method_a"], pair["method_b"]
    decided = [(v["query_id"], 1 if w == b else 0) for v in in_time_order(votes)
               if {v["method_left"], v["method_right"]} == {a, b} for w in [winner(v)] if w is not None]
    path = headline_path([q for q, _ in decided], [o for _, o in decided])
    n = np.arange(1, len(decided) + 1)
    fig = go.Figure([
        go.Scatter(x=n, y=path[:, 2], mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"),
        go.Scatter(x=n, y=path[:, 1], mode="lines", fill="tonexty", line=dict(width=0),
                   fillcolor="rgba(42,157,143,0.2)", name="95% interval"),
        go.Scatter(x=n, y=path[:, 0], mode="lines", line=dict(color=COLOURS["b"]), name=f"{b} wins, per query",
                   cliponaxis=False),
    ])
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Win rate of {b} over time, each query counted once", xaxis_title="decisive votes",
                      yaxis=dict(range=FULL_RANGE, tickformat=".0%"), height=340,
                      legend=dict(orientation="h", y=-0.25))
    return fig


def forest(pair: dict | None, column: str) -> go.Figure:
    rows = (pair or {}).get("breakdown", {}).get(column) or []
    rows = [r for r in rows if r["win_rate_b"] is not None]
    if not rows:
        return _empty(f"Win rate by {column}")
    fig = go.Figure(go.Scatter(
        x=[r["win_rate_b"] for r in rows], y=[f"{r['value']} (n={r['wins_a'] + r['wins_b']})" for r in rows],
        mode="markers", marker=dict(size=9, color=COLOURS["b"]), cliponaxis=False,
        error_x=dict(type="data", symmetric=False, array=[r["ci_high"] - r["win_rate_b"] for r in rows],
                     arrayminus=[r["win_rate_b"] - r["ci_low"] for r in rows]),
        customdata=[[r["p_holm"]] for r in rows], hovertemplate="%{x:.0%}, Holm p = %{customdata[0]:.2g}<extra></extra>",
    ))
    fig.add_vline(x=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Win rate of {pair['method_b']} by {column}, per vote (95% CI)",
                      xaxis=dict(range=FULL_RANGE, tickformat=".0%"), height=160 + 28 * len(rows))
    return fig


def position_bias(pair: dict | None) -> go.Figure:
    """B's win rate when shown on the left and when shown on the right: equal without bias."""
    if not pair or not pair["decisive"]:
        return _empty("Position bias")
    bias, b = pair["position_bias"], pair["method_b"]
    sides = [("left", bias["b_left_wins"], bias["b_left_votes"]), ("right", bias["b_right_wins"], bias["b_right_votes"])]
    rates = [w / n if n else 0.0 for _, w, n in sides]
    cis = [wilson(w, n) for _, w, n in sides]
    fig = go.Figure(go.Bar(
        x=[f"{b} on the {side}<br>{w} of {n}" for side, w, n in sides], y=rates, marker_color=["#457b9d", "#a8dadc"],
        error_y=dict(type="data", symmetric=False, array=[hi - r for r, (_, hi) in zip(rates, cis)],
                     arrayminus=[r - lo for r, (lo, _) in zip(rates, cis)]),
        hovertemplate="%{x}: %{y:.0%}<extra></extra>",
    ))
    test = "cannot be tested" if bias["p_value"] is None else f"Fisher p = {bias['p_value']:.2g}"
    fig.update_layout(title=f"Position bias: {b}'s win rate by side ({test})",
                      yaxis=dict(tickformat=".0%", range=[0, 1.04]), height=340, margin=dict(b=70))
    return fig

"""Plotly figures of the Results tab, from the summary dict and the vote list."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from votes.stats import wilson, winner

COLOURS = {"a": "#8d99ae", "b": "#2a9d8f", "tie": "#e9c46a", "both_bad": "#e76f51"}


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, annotations=[dict(text="no votes yet", showarrow=False, x=0.5, y=0.5,
                                                     xref="paper", yref="paper")], height=300)
    return fig


def outcome_bars(pair: dict | None) -> go.Figure:
    if not pair or not pair["votes"]:
        return _empty("Outcomes")
    n = pair["votes"]
    labels = [f"{pair['method_a']} better", f"{pair['method_b']} better", "tie", "both bad"]
    counts = [pair["wins_a"], pair["wins_b"], pair["ties"], pair["both_bad"]]
    shares = [c / n for c in counts]
    cis = [wilson(c, n) for c in counts]
    fig = go.Figure(go.Bar(
        x=labels, y=shares, marker_color=[COLOURS["a"], COLOURS["b"], COLOURS["tie"], COLOURS["both_bad"]],
        error_y=dict(type="data", symmetric=False, array=[hi - s for s, (_, hi) in zip(shares, cis)],
                     arrayminus=[s - lo for s, (lo, _) in zip(shares, cis)]),
        text=[f"{c} ({s:.0%})" for c, s in zip(counts, shares)], textposition="outside", cliponaxis=False,
    ))
    fig.update_layout(title=f"Outcomes of {n} votes (95% Wilson intervals)", yaxis_tickformat=".0%", height=340)
    return fig


def cumulative_win_rate(votes: list[dict], pair: dict | None) -> go.Figure:
    if not pair or not pair["decisive"]:
        return _empty("Win rate over time")
    a, b = pair["method_a"], pair["method_b"]
    outcomes = [1 if w == b else 0 for v in votes if {v["method_left"], v["method_right"]} == {a, b}
                for w in [winner(v)] if w is not None]
    wins = np.cumsum(outcomes)
    n = np.arange(1, len(outcomes) + 1)
    bands = np.array([wilson(int(k), int(m)) for k, m in zip(wins, n)])
    fig = go.Figure([
        go.Scatter(x=n, y=bands[:, 1], mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"),
        go.Scatter(x=n, y=bands[:, 0], mode="lines", fill="tonexty", line=dict(width=0),
                   fillcolor="rgba(42,157,143,0.2)", name="95% interval"),
        go.Scatter(x=n, y=wins / n, mode="lines", line=dict(color=COLOURS["b"]), name=f"{b} win rate"),
    ])
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Cumulative win rate of {b} over decisive votes", xaxis_title="decisive votes",
                      yaxis=dict(range=[0, 1], tickformat=".0%"), height=340)
    return fig


def forest(pair: dict | None, column: str) -> go.Figure:
    rows = (pair or {}).get("breakdown", {}).get(column) or []
    rows = [r for r in rows if r["win_rate_b"] is not None]
    if not rows:
        return _empty(f"Win rate by {column}")
    fig = go.Figure(go.Scatter(
        x=[r["win_rate_b"] for r in rows], y=[f"{r['value']} (n={r['wins_a'] + r['wins_b']})" for r in rows],
        mode="markers", marker=dict(size=9, color=COLOURS["b"]),
        error_x=dict(type="data", symmetric=False, array=[r["ci_high"] - r["win_rate_b"] for r in rows],
                     arrayminus=[r["win_rate_b"] - r["ci_low"] for r in rows]),
        customdata=[[r["p_holm"]] for r in rows], hovertemplate="%{x:.0%}, Holm p = %{customdata[0]:.2g}",
    ))
    fig.add_vline(x=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Win rate of {pair['method_b']} by {column} (95% CI)", xaxis=dict(range=[0, 1], tickformat=".0%"),
                      height=160 + 28 * len(rows))
    return fig


def position_bias(pair: dict | None) -> go.Figure:
    if not pair or not pair["decisive"]:
        return _empty("Position bias")
    left = pair["left_picks"]
    right = pair["decisive"] - left
    fig = go.Figure(go.Bar(x=["left picked", "right picked"], y=[left, right], marker_color=["#457b9d", "#a8dadc"],
                           text=[left, right], textposition="outside", cliponaxis=False))
    fig.update_layout(title=f"Position bias: binomial p = {pair['position_bias_p']:.2g}", height=300)
    return fig

"""Plotly's figure classes are imported lazily, on first use, and two threads drawing their first
figures at once can deadlock in Python's import system (seen: `_DeadlockError` on
narwhals.stable.v2 when the Results tab's refresh raced the model warm-up thread, and the tab showed
"Error"). The app therefore imports what its figures use once, in the main thread, before serving.
tests/test_plot_imports.py checks that every figure the app draws imports nothing more."""

from __future__ import annotations


def import_plotting() -> None:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go
    import plotly.io as pio

    interval = dict(type="data", symmetric=False, array=[0.1], arrayminus=[0.1])
    fig = go.Figure([
        go.Bar(x=[0.5], y=["a"], orientation="h", error_x=interval, text=["a"], textposition="auto",
               marker_color=["#2a9d8f"], marker_line_color="#666", marker_line_width=1, name="a",
               hovertemplate="%{x}"),
        go.Bar(x=["a"], y=[0.5], error_y=interval, marker=dict(color="#8d99ae")),
        go.Scatter(x=[1], y=[0.5], mode="lines+markers", fill="tonexty", line=dict(width=1, color="#000"),
                   error_x=interval, marker=dict(size=8), showlegend=False, hoverinfo="skip"),
        go.Histogram(x=[0.1, 0.2], nbinsx=2, marker_color="#2a9d8f"),
        go.Scatter(x=np.arange(2), y=pd.Series([0.5, 0.6])),  # arrays and frames go through narwhals
    ])
    fig.add_trace(go.Scatter(x=[0], y=[0]))
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey")
    fig.add_vline(x=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(
        title="t", xaxis_title="x", yaxis_title="y", barmode="stack", height=200, showlegend=True,
        margin=dict(l=10, r=10, t=40, b=30), legend=dict(orientation="h", y=-0.2),
        xaxis=dict(range=[0, 1], tickformat=".0%", visible=True), yaxis=dict(range=[0, 1], autorange=False),
        annotations=[dict(text="t", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")],
    )
    fig.to_json()
    pio.to_json(fig)

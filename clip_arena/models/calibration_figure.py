"""The reliability curve of a Calibration as a plotly figure (as the app's other figures are): mean
predicted probability against the observed share of matches per bin of held-out predictions; a
well-calibrated model follows the diagonal. Kept apart from calibration.py, which needs no plotly."""

from __future__ import annotations

import plotly.graph_objects as go


def reliability_figure(calibration) -> go.Figure:
    bins = calibration.reliability
    fig = go.Figure([
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(width=1, color="#8d99ae"), name="perfectly calibrated",
                   hoverinfo="skip"),
        go.Scatter(x=[b["mean_predicted"] for b in bins], y=[b["observed"] for b in bins], mode="lines+markers",
                   line=dict(color="#2a9d8f"), marker=dict(size=[6 + min(12, b["count"] ** 0.5) for b in bins]),
                   text=[f"{b['count']:,} pairs" for b in bins], name=calibration.method,
                   hovertemplate="predicted %{x:.0%}, observed %{y:.0%} (%{text})<extra></extra>"),
    ])
    fig.update_layout(
        title=(f"Reliability of {calibration.name} ({calibration.method}): expected calibration error "
               f"{calibration.ece:.3f} on held-out pairs"),
        xaxis=dict(title="predicted probability of a match", range=[-0.02, 1.02], tickformat=".0%"),
        yaxis=dict(title="observed share of matches", range=[-0.02, 1.02], tickformat=".0%"),
        height=380, legend=dict(orientation="h", y=-0.25), margin=dict(l=10, r=10, t=40, b=30),
    )
    return fig

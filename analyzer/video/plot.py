"""The alignment-over-time figure: the cosine of the ad text (and of each caption line) with the
frames sampled through the video, the cuts between shots as dotted lines. Drawn with the figure
vocabulary core/plot_imports.py imports up front (Scatter lines, vlines, layout)."""

from __future__ import annotations


def alignment_figure(report: dict, height: int = 320):
    """A plotly Figure from analyze_video's report; an empty figure with a title saying why when
    there is nothing to draw (no text, or no CLIP model could run)."""
    import plotly.graph_objects as go

    video = report["video"]
    fig = go.Figure()
    lines = [("ad text", video["alignment"])] + [(c["text"], c["points"]) for c in video.get("caption_alignment", [])]
    for name, points in lines:
        if not points:
            continue
        fig.add_trace(go.Scatter(x=[p["time_s"] for p in points], y=[p["cosine"] for p in points],
                                 mode="lines+markers", name=name if len(name) <= 40 else name[:37] + "...",
                                 marker=dict(size=5), line=dict(width=2),
                                 hovertemplate="%{x:.1f} s: cosine %{y:.3f}"))
    for cut in video.get("cuts", []):
        fig.add_vline(x=cut, line_dash="dot", line_color="grey")
    drawn = bool(fig.data)
    why = None if drawn else (video.get("alignment_reason") or "no text was given: nothing to align")
    fig.update_layout(
        title=("Text-frame alignment over time (dotted: cuts)" if drawn else why),
        xaxis_title="time (s)", yaxis_title="cosine", height=height, showlegend=True,
        margin=dict(l=10, r=10, t=40, b=30), legend=dict(orientation="h", y=-0.2),
        xaxis=dict(range=[0, max(video["duration_s"], 0.1)]),
    )
    return fig

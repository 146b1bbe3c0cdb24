"""The Analyze tab's logic as plain functions: the report as cards (HTML), figures and a JSON file."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import NamedTuple

import plotly.graph_objects as go

from clip_arena.analyzer.content.report import SECTION_NAMES
from clip_arena.analyzer.content.service import run_analysis
from clip_arena.analyzer.model_choice import choose
from clip_arena.analyzer.policy import ImagePolicy
from clip_arena.core.downloads import new_folder
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings

TITLES = {
    "alignment": "Image-text alignment", "labels": "Labels (zero-shot)", "caption": "Caption",
    "objects": "Objects", "ocr": "Text in the image", "sentiment": "Sentiment", "entities": "Entities",
    "image_properties": "Image properties", "text_properties": "Text properties",
    "effectiveness": "Predicted effectiveness",
}
STATUS_COLOURS = {"ok": "#2a9d8f", "degraded": "#e9a23b", "unavailable": "#8d99ae"}
HIDDEN = {"status", "backend", "reason", "lines", "face_boxes", "people_boxes", "categories"}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if not value:
            return "none"
        if all(isinstance(v, dict) for v in value):
            return "; ".join(", ".join(_fmt(x) for x in v.values() if not isinstance(x, list)) for v in value[:10])
        return ", ".join(_fmt(v) for v in value[:20])
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_fmt(v)}" for k, v in value.items() if v not in ([], {}, None)) or "none"
    return str(value)


def _swatches(colours: list[dict]) -> str:
    return "".join(
        f'<span class="an-swatch" title="{html.escape(c["name"])}"><span style="background:{html.escape(c["hex"])}">'
        f'</span>{html.escape(c["hex"])} {html.escape(c["name"])} {100 * c["share"]:.0f}%</span>' for c in colours)


def _rows(sec: dict) -> str:
    rows = []
    for key, value in sec.items():
        if key in HIDDEN or value is None:
            continue
        if key == "dominant_colours":
            shown = _swatches(value)
        elif key == "top":  # zero-shot labels: the best label of each category
            shown = "<br>".join(html.escape(f"{t['category']}: {t['label']} ({t['probability']:.0%})") for t in value)
        elif isinstance(value, dict):
            shown = "<br>".join(html.escape(f"{k.replace('_', ' ')}: {_fmt(v)}") for k, v in value.items()
                                if v not in ([], {}, None)) or "none"
        elif key == "text" and isinstance(value, str):
            shown = html.escape(value).replace("\n", "<br>") or "none"
        else:
            shown = html.escape(_fmt(value))
        rows.append(f"<tr><th>{html.escape(key.replace('_', ' '))}</th><td>{shown}</td></tr>")
    return "<table>" + "".join(rows) + "</table>" if rows else ""


def section_card(name: str, sec: dict, title: str | None = None, body: str | None = None) -> str:
    """One section as a card: its title (TITLES by default), status, backend, values (`body`, by
    default the section's own values as a table) and reason."""
    status = sec["status"]
    title = title if title is not None else TITLES.get(name, name)
    head = (f'<div class="an-head"><b>{html.escape(title)}</b>'
            f'<span class="an-status" style="background:{STATUS_COLOURS.get(status, "#888")}">{status}</span></div>')
    backend = f'<div class="an-backend">backend: {html.escape(sec["backend"])}</div>' if sec.get("backend") else ""
    reason = f'<div class="an-reason">{html.escape(sec["reason"])}</div>' if sec.get("reason") else ""
    return (f'<div class="an-card" data-section="{html.escape(name)}" data-status="{status}">'
            f'{head}{backend}{_rows(sec) if body is None else body}{reason}</div>')


CARD_CSS = """
<style>
.an-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
.an-card{border:1px solid var(--border-color-primary);border-radius:8px;padding:10px 12px}
.an-head{display:flex;justify-content:space-between;align-items:center;margin-bottom:4px}
.an-status{color:#fff;border-radius:10px;padding:1px 8px;font-size:.8em}
.an-backend,.an-reason{font-size:.8em;opacity:.75;margin-top:4px;overflow-wrap:anywhere}
.an-card table{width:100%;font-size:.9em}.an-card th{text-align:left;font-weight:500;padding-right:8px;vertical-align:top}
.an-swatch{display:inline-flex;align-items:center;gap:4px;margin-right:8px}
.an-swatch span{display:inline-block;width:14px;height:14px;border:1px solid #999;border-radius:3px}
</style>"""


def cards_html(report: dict) -> str:
    cards = "".join(section_card(name, sec) for name, sec in report["sections"].items())
    return f'{CARD_CSS}<div class="an-grid" id="an-report">{cards}</div>'


def palette_figure(report: dict) -> go.Figure | None:
    sec = report["sections"].get("image_properties", {})
    colours = sec.get("dominant_colours") or []
    if not colours:
        return None
    fig = go.Figure([go.Bar(x=[c["share"]], y=["palette"], orientation="h", name=f'{c["name"]} {c["hex"]}',
                            marker_color=c["hex"], marker_line_color="#666", marker_line_width=1,
                            hovertemplate=f'{c["name"]} {c["hex"]}: %{{x:.1%}}<extra></extra>')
                     for c in colours])
    fig.update_layout(barmode="stack", title="Dominant colours (share of pixels)", height=220,
                      xaxis=dict(tickformat=".0%", range=[0, 1]), margin=dict(l=10, r=10, t=40, b=30))
    return fig


def labels_figure(report: dict) -> go.Figure | None:
    sec = report["sections"].get("labels", {})
    categories = sec.get("categories") or {}
    if not categories:
        return None
    fig = go.Figure()
    for cat, items in categories.items():
        items = items[:3]
        fig.add_trace(go.Bar(x=[i["probability"] for i in items], y=[f"{cat}: {i['label']}" for i in items],
                             orientation="h", name=cat))
    fig.update_layout(title="Zero-shot labels (probability within each category)", height=120 + 22 * sum(
        min(3, len(v)) for v in categories.values()), xaxis=dict(range=[0, 1]), yaxis=dict(autorange="reversed"),
        margin=dict(l=10, r=10, t=40, b=30), showlegend=False)
    return fig


def summary_line(report: dict) -> str:
    counts = {s: 0 for s in STATUS_COLOURS}
    for sec in report["sections"].values():
        counts[sec["status"]] = counts.get(sec["status"], 0) + 1
    total_ms = sum(report.get("timings_ms", {}).values())
    model = f"{report['model_name']}` (`{report['model']}" if report.get("model_name") else report["model"]
    return (f"{len(report['sections'])} sections with model `{model}`: {counts['ok']} ok, "
            f"{counts['degraded']} degraded (a fallback ran), {counts['unavailable']} unavailable; "
            f"{total_ms / 1000:.1f} s.")


def write_json(report: dict) -> str:
    folder = new_folder("analysis")
    path = folder / "analysis.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return str(path)


def run_analyze(image_file: str | None, image_url: str, text: str, model: str, settings: Settings,
                upload_dir: str | None = None):
    """-> (cards HTML, palette figure, labels figure, JSON file path, summary line)."""
    given = bool(image_file or (image_url or "").strip())
    if not given and not (text or "").strip():
        raise UserError("Add an image, a video or a text (an image and a text together, or a video and its text).")
    chosen = choose(model, settings)  # with a models file: a NAME's spec, on its device and precision
    image = ImagePolicy.for_server(settings).load_from_tab(image_file, image_url, upload_dir) if given else None
    report = run_analysis(image, text or "", chosen.settings, model=chosen.spec)
    if chosen.handle is not None:
        report["model_name"] = chosen.handle.name
    return cards_html(report), palette_figure(report), labels_figure(report), write_json(report), summary_line(report)


assert set(TITLES) == set(SECTION_NAMES)


class TabOutputs(NamedTuple):
    """What the Analyze tab shows after a run: the image outputs, or the video ones (`video`)."""

    cards: str
    palette: go.Figure | None
    labels: go.Figure | None
    download: str | None
    summary: str
    gallery: list | None
    timeline: go.Figure | None
    rubric: str
    video: bool


def run_tab(image_file: str | None, video_file: str | None, url: str, text: str, brand: str, model: str,
            settings: Settings, upload_dir: str | None = None, progress=None) -> TabOutputs:
    """An image (upload, or an image URL or path), or a video (upload, or a URL or path ending in a
    video suffix) with the text: the tab's outputs for whichever was given."""
    from clip_arena.analyzer.batch import is_video_cell

    if image_file and video_file:
        raise UserError("Give an image or a video, not both: clear one of them.")
    if video_file or (not image_file and is_video_cell(url or "")):
        from clip_arena.analyzer.video_view import run_video, video_outputs

        cards, gallery, timeline, rubric, download, summary = video_outputs(
            run_video(video_file, url, text, brand, model, settings, upload_dir, progress))
        return TabOutputs(cards, None, None, download, summary, gallery, timeline, rubric, True)
    cards, palette, labels, download, summary = run_analyze(image_file, url, text, model, settings, upload_dir)
    return TabOutputs(cards, palette, labels, download, summary, None, None, "", False)

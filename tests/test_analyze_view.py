"""The Analyze tab's cards and figures, from a report, without a browser."""

from clip_arena.analyzer.analyze_view import cards_html, labels_figure, palette_figure, summary_line


def report(**extra):
    sections = {
        "ocr": {"status": "ok", "backend": "rapidocr-onnxruntime", "reason": None,
                "text": "<script>alert(1)</script>", "lines": [], "text_area_ratio": 0.1},
        "image_properties": {"status": "ok", "backend": "numpy+opencv", "reason": None,
                             "dominant_colours": [{"hex": "#ff0000", "name": "red", "share": 0.7},
                                                  {"hex": "#0000ff", "name": "blue", "share": 0.3}]},
        "caption": {"status": "unavailable", "backend": None, "reason": "offline & not cached"},
        **extra,
    }
    return {"model": "demo:base", "sections": sections, "timings_ms": {"ocr": 1500.0}}


def test_cards_escape_what_the_image_and_text_contain():
    html = cards_html(report())
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-section="caption" data-status="unavailable"' in html and "offline &amp; not cached" in html


def test_palette_figure_draws_each_colour_with_its_share():
    fig = palette_figure(report())
    assert [(t.marker.color, t.x[0]) for t in fig.data] == [("#ff0000", 0.7), ("#0000ff", 0.3)]
    assert labels_figure(report()) is None  # no labels section, no empty chart


def test_labels_figure_shows_the_top_labels_per_category():
    labels = {"status": "ok", "backend": "clip:x", "reason": None, "top": [], "categories": {
        "colours": [{"label": "red", "probability": 0.9}, {"label": "blue", "probability": 0.1}],
        "moods": [{"label": "calm", "probability": 0.6}]}}
    fig = labels_figure(report(labels=labels))
    assert [list(t.y) for t in fig.data] == [["colours: red", "colours: blue"], ["moods: calm"]]


def test_summary_counts_statuses():
    line = summary_line(report())
    assert "3 sections" in line and "2 ok" in line and "1 unavailable" in line and "1.5 s" in line

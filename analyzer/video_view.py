"""The Analyze tab's video report as plain functions: keyframes with their times, the alignment plot,
the rubric with its evidence, the sections per keyframe and the timeline, and the JSON file."""

from __future__ import annotations

import html
import json
from pathlib import Path

from clip_arena.analyzer.analyze_view import CARD_CSS, STATUS_COLOURS, TITLES, _fmt, _rows, section_card
from clip_arena.core.downloads import new_folder

VIDEO_TITLES = {**TITLES, "audio": "Audio (loudness)", "transcript": "Speech transcript"}
RUBRIC_CSS = """
<style>
.an-rubric{display:grid;gap:8px;margin-bottom:12px}
.an-check{border:1px solid var(--border-color-primary);border-radius:8px;padding:8px 12px}
.an-check b{margin-right:8px}.an-verdict{color:#fff;border-radius:10px;padding:1px 8px;font-size:.8em}
.an-evidence{margin-top:4px}.an-times{font-size:.8em;opacity:.75}
.an-card details{margin-top:4px}.an-card summary{cursor:pointer;font-weight:500}
</style>"""
VERDICTS = {True: ("passed", "#2a9d8f"), False: ("not met", "#d1495b"), None: ("not judged", "#8d99ae")}


def seconds(value) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else "?"


def keyframe_gallery(report: dict) -> list[tuple[str, str]]:
    """(image path, 'time · shot') for each keyframe written to disk, in time order."""
    frames = report["video"].get("keyframes") or []
    return [(k["path"], f"{seconds(k['time_s'])} · shot {k['shot'] + 1}") for k in frames if k.get("path")]


def rubric_html(report: dict) -> str:
    """Each check: its verdict, the evidence it rests on and the times it points to."""
    checks = []
    for c in report["video"].get("rubric") or []:
        word, colour = VERDICTS.get(c.get("passed"), VERDICTS[None])
        times = c.get("times_s") or []
        at = f'<div class="an-times">at {html.escape(", ".join(seconds(t) for t in times[:8]))}</div>' if times else ""
        checks.append(f'<div class="an-check" data-check="{html.escape(str(c["id"]))}" data-verdict="{word}">'
                      f'<b>{html.escape(c["name"])}</b><span class="an-verdict" style="background:{colour}">{word}'
                      f'</span><div class="an-evidence">{html.escape(c["evidence"])}</div>{at}</div>')
    return f'{RUBRIC_CSS}<div class="an-rubric" id="an-rubric">{"".join(checks)}</div>'


def _keyframe_rows(sec: dict) -> str:
    """A keyframe section's values, one collapsible table per keyframe (the first one open)."""
    parts = []
    for i, frame in enumerate(sec.get("keyframes") or []):
        values = {k: v for k, v in frame.items() if k not in ("time_s", "shot")}
        head = f"{seconds(frame.get('time_s'))} · shot {frame.get('shot', 0) + 1}"
        parts.append(f'<details{" open" if i == 0 else ""}><summary>{html.escape(head)}</summary>'
                     f'{_rows(values) or "none"}</details>')
    return "".join(parts)


def video_card(name: str, sec: dict) -> str:
    """A section card (analyze_view.section_card) whose values are per keyframe when they are."""
    return section_card(name, sec, VIDEO_TITLES.get(name, name), _keyframe_rows(sec) if "keyframes" in sec else None)


def timeline_card(video: dict) -> str:
    """The video's facts and what happens when: shots, pace, text on screen, loudness."""
    audio = "yes" if video.get("has_audio") else "no"
    facts = {
        "duration": seconds(video.get("duration_s")),
        "picture": f"{video.get('width')}x{video.get('height')} {video.get('codec') or ''}, "
                   f"{_fmt(video.get('fps'))} fps",
        "audio track": audio,
        "shots": f"{len(video.get('shots') or [])} ({_fmt(video.get('cuts_per_second'))} cuts per second, "
                 f"{seconds(video.get('average_shot_s'))} on average)",
        "cuts at": ", ".join(seconds(t) for t in (video.get("cuts") or [])[:20]) or "none",
        "text on screen (first seen)": "; ".join(f"{t['text']} ({seconds(t['first_s'])})"
                                                 for t in (video.get("text_seen") or [])[:20]) or "none read",
        "loudness": (f"{video['loudness_lufs']:.1f} LUFS integrated" if video.get("loudness_lufs") is not None
                     else "none (no audio track, or silent)"),
        "silence share": _fmt(video.get("silence_share")) if video.get("silence_share") is not None else None,
        "clipping share": _fmt(video.get("clipping_share")) if video.get("clipping_share") is not None else None,
        "frames sampled": f"{_fmt(video.get('sample_fps'))} per second",
    }
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in facts.items() if v is not None)
    return (f'<div class="an-card" data-section="video" data-status="ok"><div class="an-head"><b>Timeline</b>'
            f'</div><table>{rows}</table></div>')


def video_cards_html(report: dict) -> str:
    cards = timeline_card(report["video"]) + "".join(video_card(n, s) for n, s in report["sections"].items())
    return f'{CARD_CSS}<div class="an-grid" id="an-report">{cards}</div>'


def video_summary_line(report: dict) -> str:
    video = report["video"]
    counts = {s: 0 for s in STATUS_COLOURS}
    for sec in report["sections"].values():
        counts[sec["status"]] = counts.get(sec["status"], 0) + 1
    timings = report.get("timings_ms", {})
    total_ms = timings.get("total", sum(timings.values()))  # the parts overlap the total
    return (f"Video of {seconds(video.get('duration_s'))}: {len(video.get('shots') or [])} shots, "
            f"{len(video.get('keyframes') or [])} keyframes analysed. {len(report['sections'])} sections with model "
            f"`{report['model']}`: {counts['ok']} ok, {counts['degraded']} degraded (a fallback ran), "
            f"{counts['unavailable']} unavailable; {total_ms / 1000:.1f} s.")


def without_server_paths(report: dict) -> dict:
    """The report for the browser's download: keyframe and contact-sheet paths by file name only
    (a browser is not told server folders)."""
    out = json.loads(json.dumps(report))
    video = out.get("video", {})
    for frame in video.get("keyframes") or []:
        if frame.get("path"):
            frame["path"] = Path(frame["path"]).name
    if video.get("contact_sheet"):
        video["contact_sheet"] = Path(video["contact_sheet"]).name
    return out


def write_video_json(report: dict) -> str:
    path = new_folder("analysis") / "video_analysis.json"
    path.write_text(json.dumps(without_server_paths(report), ensure_ascii=False, indent=2), encoding="utf-8")
    return str(path)


def run_video(video_file: str | None, video_url: str, text: str, brand: str, model: str, settings,
              upload_dir: str | None = None, progress=None) -> dict:
    """Analyse the uploaded video (or the one at the URL box's address) under the server's policy
    and video caps (lower when hosted); keyframes go to a fresh download folder."""
    from clip_arena.analyzer.model_choice import check_browser_model
    from clip_arena.analyzer.policy import ImagePolicy
    from clip_arena.analyzer.video.limits import VideoLimits
    from clip_arena.analyzer.video.report import analyze_video
    from clip_arena.analyzer.video.source import UploadedVideo
    from clip_arena.core.errors import ImageLoadError, UserError

    model = check_browser_model(model, settings)
    source = UploadedVideo(video_file, upload_dir) if video_file else (video_url or "").strip()
    try:
        report = analyze_video(source, text or "", settings, model=model, brand=(brand or "").strip() or None,
                               progress=progress, policy=ImagePolicy.for_server(settings),
                               frames_dir=new_folder("keyframes"), limits=VideoLimits.for_settings(settings))
    except ImageLoadError as err:  # a VideoLoadError: one sentence
        raise UserError(str(err)) from err
    if settings.effectiveness_model:
        from clip_arena.effectiveness.predict import video_prediction

        report["sections"]["effectiveness"] = video_prediction(
            settings.effectiveness_model, report, source, text or "", (brand or "").strip() or None, settings,
            policy=ImagePolicy.for_server(settings))
    return report


def video_outputs(report: dict):
    """-> (cards HTML, keyframe gallery, alignment figure, rubric HTML, JSON file path, summary line)."""
    from clip_arena.analyzer.video.plot import alignment_figure

    return (video_cards_html(report), keyframe_gallery(report), alignment_figure(report), rubric_html(report),
            write_video_json(report), video_summary_line(report))

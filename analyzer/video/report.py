"""One video and its text -> the report: the image report's form ({"sections": {NAME: {"status",
"backend", "reason", ...}}}) with the image sections run on one keyframe per shot (each value with its
time), plus a `video` section (timeline, shots, text on screen, loudness, alignment, rubric).

The video is read once, as a stream: every frame at a small size for cut detection, frames sampled at a
fixed rate at analysis size for CLIP (in batches) and OCR; never the whole video in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from clip_arena.core.settings import Settings

# progress(fraction 0..1, what is being done)
Progress = Callable[[float, str], None]


def analyze_video(source, text: str, settings: Settings, model: str | None = None, brand: str | None = None,
                  progress: Progress | None = None, policy=None, frames_dir: str | Path | None = None,
                  limits=None) -> dict:
    """Analyse one video creative.

    source: a path, an http(s) URL or the file's bytes, read under `policy` (an ImagePolicy; default:
        the command line's, where a path the user typed is read wherever it is), or an
        `source.UploadedVideo` for a browser upload. Errors are `source.VideoLoadError` (an
        ImageLoadError: `.kind` and one sentence), raised before any analysis.
    text: the ad text; each non-empty line is also scored as a caption over time.
    brand: the brand name to look for on screen (the rubric's Branding check); None: not judged.
    frames_dir: when given, the keyframes (keyframe_<n>.jpg) and the contact sheet (contact_sheet.jpg)
        are written there and their paths are in the report; else the paths are None.
    limits: a limits.VideoLimits (default: limits.VideoLimits.for_settings(settings)).

    Returns (JSON-serialisable):
    {"kind": "video", "model": SPEC, ["model_notice": str,]
     "sections": {
        # image sections, run on each keyframe; the section's status is the best any keyframe got
        "alignment"|"labels"|"caption"|"objects"|"ocr"|"image_properties":
            {"status", "backend", "reason", "keyframes": [{"time_s", "shot", ...that section's values}]},
        # text sections, run once on the text
        "sentiment"|"entities"|"text_properties": {"status", "backend", "reason", ...values},
        "audio": {"status", "backend": "pyloudnorm", "reason", "loudness_lufs", ...},
        "transcript": {"status", "backend", "reason", ["text"]},  # hub tier only; unavailable offline
        "effectiveness": {"status": "unavailable", ...}},
     "video": {
        "duration_s", "fps", "width", "height", "codec", "bitrate", "has_audio", "frames_decoded",
        "shots": [{"index", "start_s", "end_s", "keyframe_s"}],
        "cuts": [time_s, ...], "cuts_per_second", "average_shot_s",
        "text_seen": [{"text", "first_s", "last_s"}],   # OCR lines, first time each was read
        "loudness_lufs": float | None,                  # None without an audio track (or all silent)
        "loudness_curve": [{"time_s", "lufs"}],         # momentary (400 ms) loudness, every 0.5 s
        "silence_share", "clipping_share",              # None without audio
        "sample_fps": float,                            # the rate frames were sampled for CLIP and OCR
        "alignment": [{"time_s", "cosine"}],            # the whole text vs each sampled frame ([] without text)
        "caption_alignment": [{"text", "points": [{"time_s", "cosine"}]}],  # each line, when several
        "rubric": [{"id", "name", "passed": bool | None, "evidence": str, "times_s": [...]}],
        "keyframes": [{"time_s", "shot", "path": str | None}],
        "contact_sheet": str | None},
     "timings_ms": {...}}
    """
    raise NotImplementedError("video analysis: work in progress")


def video_text_similarity(source, text: str, encoder, policy=None, limits=None, sample_fps: float = 1.0) -> dict:
    """For the batch scorer: the cosine of `text` with frames sampled at `sample_fps` (same decoding
    and caps as analyze_video): {"mean_cosine", "max_cosine", "max_s", "frames", "duration_s"}.
    Raises source.VideoLoadError (an ImageLoadError: `.kind`, one sentence) for an unusable video."""
    raise NotImplementedError("video similarity: work in progress")

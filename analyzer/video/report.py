"""One video and its text -> the report: the image report's form ({"sections": {NAME: {"status",
"backend", "reason", ...}}}) with the image sections run on one keyframe per shot (each value with its
time), plus a `video` section (timeline, shots, text on screen, loudness, alignment, rubric).

The video is read once, as a stream: every frame at a small size for cut detection, frames sampled at a
fixed rate at analysis size for CLIP (in batches) and OCR; never the whole video in memory."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from clip_arena.core.settings import Settings

log = logging.getLogger(__name__)

# progress(fraction 0..1, what is being done)
Progress = Callable[[float, str], None]
IMAGE_SECTIONS = ("alignment", "labels", "caption", "objects", "ocr", "image_properties")
TEXT_SECTIONS = ("sentiment", "entities", "text_properties")
CLIP_SIDE = 256  # batch similarity: CLIP sees 224 pixels a side
DECODE_SHARE = 0.75  # of the progress bar: the pass over the video; the rest, the keyframes


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

    from clip_arena.analyzer.video.limits import VideoLimits
    from clip_arena.analyzer.video.source import open_video

    limits = limits or VideoLimits.for_settings(settings)
    report_progress = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    video = open_video(source, policy, limits)  # VideoLoadError before any model loads
    try:
        return _analyze(video, text or "", settings, model, brand, report_progress, frames_dir, limits, started)
    finally:
        video.close()


def _pick_encoder(settings: Settings, model: str | None):
    """(encoder or None, the spec used, a notice, why CLIP could not run): the fallback rule of the
    image analysis (the demo model stands in only for a default that cannot load)."""
    from clip_arena.core.errors import ModelLoadError
    from clip_arena.models.fallback import photo_model

    requested = model or settings.model
    try:
        encoder, picked = photo_model(settings, requested)
    except ModelLoadError as err:
        if settings.model_named or model:
            raise
        return None, requested, None, str(err)
    return encoder, picked.used, picked.notice(), None


def _analyze(video, text, settings, model, brand, progress, frames_dir, limits, started) -> dict:
    from clip_arena.analyzer.content.component import UNAVAILABLE, section
    from clip_arena.analyzer.video import rubric
    from clip_arena.analyzer.video.audio import LoudnessMeter
    from clip_arena.analyzer.video.speech import Speech
    from clip_arena.analyzer.video.decode import VideoReader
    from clip_arena.analyzer.video.shots import ShotDetector, pace
    from clip_arena.analyzer.video.timeline import ANALYSIS_SIDE, AlignmentTrack, KeyframePicker, OcrTrack, Sampler

    timings = {}
    reader = VideoReader(video, limits)  # the header's caps, before the model loads
    info = reader.info
    try:
        encoder, used, notice, clip_missing = _pick_encoder(settings, model)
    except BaseException:
        reader.close()  # a model the user named that cannot load: the command says why
        raise
    timings["open"] = _ms(started)
    rate = limits.sample_rate(info.duration_s or 0.0)  # unknown (animated WebP): the full rate, frames stay capped
    sampler, detector, picker = Sampler(rate), ShotDetector(), KeyframePicker()
    track = AlignmentTrack(encoder) if encoder is not None else None
    ocr = OcrTrack(settings, 1.0 / limits.ocr_fps)
    meter: dict = {}
    speech = Speech(settings)  # asked for now: without a model, no audio is kept for it

    def on_audio(samples, sample_rate, channels):
        if "m" not in meter:
            meter["m"] = LoudnessMeter(sample_rate, channels)
        meter["m"].push(samples)
        speech.push(samples, sample_rate)

    last_t, frames = 0.0, 0
    expected = info.duration_s or 0.0
    with reader:
        for frame in reader.frames(on_audio=on_audio):
            small = frame.small()
            if detector.push(frame.time_s, small):
                picker.cut(frame.time_s)
            starts_shot = frames == 0 or (detector.cuts and detector.cuts[-1] == frame.time_s)
            sampled = sampler.take(frame.time_s)
            if sampled or starts_shot:  # a shot's first frame is a keyframe candidate, not a sample
                image = frame.image(ANALYSIS_SIDE)
                picker.push(frame.time_s, image)
                if sampled and track is not None:
                    track.push(frame.time_s, image)
                ocr.push(frame.time_s, small, lambda: image)
            last_t, frames = frame.time_s, frames + 1
            if expected and frames % 10 == 0:
                progress(DECODE_SHARE * min(1.0, last_t / expected), f"reading the video: {last_t:.0f} s")
    # The video's own length: an audio track that runs on must not stretch the last shot or the pace.
    said = reader.video_stream_s if reader.video_stream_s else info.duration_s
    duration = max(said or 0.0, last_t + (1.0 / info.fps if info.fps else 0.0))
    picker.cut(duration)
    timings["decode"] = _ms(started) - timings["open"]

    shots = detector.shots(duration)
    for shot, (when, _) in zip(shots, picker.keyframes):
        shot.keyframe_s = when
    shot_pace = pace(shots, duration)
    sections, keyframes = _keyframe_sections(picker.keyframes, shots, text, settings, used, encoder, clip_missing,
                                             limits, progress, ocr.section_at)
    sections.update(_text_sections(text, settings))
    audio = meter["m"].result() if "m" in meter else None
    sections["audio"] = _audio_section(info, audio, reader.audio_error)
    sections["transcript"] = speech.section()
    sections["effectiveness"] = section(UNAVAILABLE, None, "no trained model")

    text_seen = ocr.text_seen()
    ocr_ran = ocr.status is not None and ocr.status["status"] != UNAVAILABLE
    objects = sections.get("objects", {})
    checks = [
        rubric.attention(detector.cuts, detector.opening_motion, shot_pace["cuts_per_second"],
                         shot_pace["average_shot_s"]),
        rubric.branding(brand, text_seen, ocr_ran),
        rubric.connection(objects.get("keyframes", []), objects.get("status") not in (None, UNAVAILABLE),
                          objects.get("backend") if objects.get("status") == "degraded" else None),
        rubric.direction(text_seen, text, ocr_ran),
    ]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    alignment = track.cosines(" ".join(lines)) if track is not None and lines else []
    captions = ([{"text": line, "points": track.cosines(line)} for line in lines]
                if track is not None and len(lines) > 1 else [])
    paths = _write_frames(frames_dir, keyframes) if frames_dir else None
    report = {
        "kind": "video", "model": used,
        "sections": sections,
        "video": {
            **{k: v for k, v in info.as_dict().items() if k != "duration_s"},
            "duration_s": round(duration, 3), "frames_decoded": frames,
            "shots": [s.as_dict() for s in shots], "cuts": [round(c, 3) for c in detector.cuts], **shot_pace,
            "text_seen": text_seen,
            "ocr_reads": ocr.reads,
            "loudness_lufs": audio["loudness_lufs"] if audio else None,
            "loudness_curve": audio["loudness_curve"] if audio else [],
            "silence_share": audio["silence_share"] if audio else None,
            "clipping_share": audio["clipping_share"] if audio else None,
            "sample_fps": round(rate, 4),
            "alignment": alignment, "caption_alignment": captions,
            "alignment_reason": None if track is not None else f"no CLIP model could run: {clip_missing}",
            "rubric": checks,
            "keyframes": [{"time_s": round(t, 3), "shot": shot, "path": paths["keyframes"][n] if paths else None}
                          for n, (t, shot, _) in enumerate(keyframes)],
            "contact_sheet": paths["contact_sheet"] if paths else None,
        },
        "timings_ms": {**timings, "total": _ms(started)},
    }
    if notice:
        report["model_notice"] = notice
    progress(1.0, "done")
    return report


def _ms(since: float) -> float:
    return round(1000 * (time.perf_counter() - since), 1)


def spread(n: int, most: int) -> list[int]:
    """`most` of range(n), evenly over it (first and last included); all of them when n <= most."""
    if n <= most:
        return list(range(n))
    if most <= 1:
        return [0][:most]
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def _keyframe_sections(picked, shots, text, settings, used, encoder, clip_missing, limits, progress, ocr_at):
    """The image sections on the keyframes (spread over the whole video when there are more than
    max_keyframes: the first, the last and evenly between), each value with its keyframe's time and shot. Returns (sections, keyframes as
    (time, shot, PIL image) in time order)."""
    import io

    from PIL import Image

    from clip_arena.analyzer.content.component import UNAVAILABLE, section
    from clip_arena.analyzer.content.report import analyze

    chosen = spread(len(picked), limits.max_keyframes)
    keyframes = [(picked[n][0], n, Image.open(io.BytesIO(picked[n][1])).convert("RGB")) for n in chosen]
    vectors = encoder.encode_images([im for _, _, im in keyframes]) if encoder is not None and keyframes else None
    only = set(IMAGE_SECTIONS) if encoder is not None else set(IMAGE_SECTIONS) - {"alignment", "labels"}
    merged: dict[str, dict] = {}
    rank = {"ok": 0, "degraded": 1, "unavailable": 2}
    for k, (t, shot, image) in enumerate(keyframes):
        progress(DECODE_SHARE + (1 - DECODE_SHARE) * k / max(1, len(keyframes)), f"keyframe {k + 1} of {len(keyframes)}")
        read = ocr_at(t)  # the timeline's read of this very picture, when there is one
        one = analyze(image, text, settings, model=used, only=only - {"ocr"} if read else only,
                      image_vector=vectors[k] if vectors is not None else None)
        if read:
            one["sections"]["ocr"] = read
        for name, sec in one["sections"].items():
            values = {key: v for key, v in sec.items() if key not in ("status", "backend", "reason")}
            entry = merged.setdefault(name, {"status": sec["status"], "backend": sec["backend"],
                                             "reason": sec["reason"], "keyframes": []})
            if rank.get(sec["status"], 2) < rank.get(entry["status"], 2):
                entry.update(status=sec["status"], backend=sec["backend"], reason=sec["reason"])
            entry["keyframes"].append({"time_s": round(t, 3), "shot": shot, "status": sec["status"], **values})
    if encoder is None:
        for name in ("alignment", "labels"):
            merged[name] = section(UNAVAILABLE, None, f"no CLIP model could run: {clip_missing}", {"keyframes": []})
    if not keyframes:
        for name in IMAGE_SECTIONS:
            merged.setdefault(name, section(UNAVAILABLE, None, "no keyframe could be decoded", {"keyframes": []}))
    return {name: merged[name] for name in IMAGE_SECTIONS if name in merged}, keyframes


def _text_sections(text: str, settings: Settings) -> dict:
    from clip_arena.analyzer.content.report import analyze

    return analyze(None, text, settings, only=set(TEXT_SECTIONS))["sections"]


def _audio_section(info, audio: dict | None, error: str | None) -> dict:
    from clip_arena.analyzer.content.component import OK, UNAVAILABLE, section

    if not info.has_audio:
        return section(UNAVAILABLE, None, "the video has no audio track", {"loudness_lufs": None})
    if audio is None:
        return section(UNAVAILABLE, None, error or "the audio track holds no samples", {"loudness_lufs": None})
    values = {k: v for k, v in audio.items() if k not in ("reason", "loudness_curve")}
    reason = "; ".join(r for r in (audio.get("reason"), error) if r) or None
    return section(OK if audio["loudness_lufs"] is not None else UNAVAILABLE, "pyloudnorm", reason, values)


def _write_frames(folder, keyframes) -> dict:
    from clip_arena.analyzer.video.timeline import contact_sheet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (t, shot, image) in enumerate(keyframes):
        path = folder / f"keyframe_{n + 1:02d}.jpg"
        image.save(path, format="JPEG", quality=88)
        paths.append(str(path))
    sheet = folder / "contact_sheet.jpg"
    contact_sheet([(t, im) for t, _, im in keyframes]).save(sheet, format="JPEG", quality=88)
    return {"keyframes": paths, "contact_sheet": str(sheet)}


def video_text_similarity(source, text: str, encoder, policy=None, limits=None, sample_fps: float = 1.0) -> dict:
    """For the batch scorer: the cosine of `text` with frames sampled at `sample_fps` (same decoding
    and caps as analyze_video; pass limits=VideoLimits.for_settings(settings) for the deployment's caps): {"mean_cosine", "max_cosine", "max_s", "frames", "duration_s"}.
    Raises source.VideoLoadError (an ImageLoadError: `.kind`, one sentence) for an unusable video."""
    import numpy as np

    from clip_arena.analyzer.video.decode import VideoReader
    from clip_arena.analyzer.video.limits import VideoLimits
    from clip_arena.analyzer.video.source import open_video
    from clip_arena.analyzer.video.timeline import AlignmentTrack, Sampler

    if not (text or "").strip():
        from clip_arena.core.errors import UserError

        raise UserError("No text was given to score the video against.")
    limits = limits or VideoLimits()
    video = open_video(source, policy, limits)
    with VideoReader(video, limits) as reader:
        duration = reader.info.duration_s or limits.max_duration_s
        sampler = Sampler(min(sample_fps, limits.max_samples / max(duration, 1e-6)))
        track = AlignmentTrack(encoder)
        last_t = 0.0
        for frame in reader.frames():
            if sampler.take(frame.time_s):
                track.push(frame.time_s, frame.image(CLIP_SIDE))
            last_t = frame.time_s
    points = track.cosines(text)
    values = np.array([p["cosine"] for p in points])
    best = int(values.argmax())
    return {"mean_cosine": round(float(values.mean()), 4), "max_cosine": round(float(values.max()), 4),
            "max_s": points[best]["time_s"], "frames": len(points),
            "duration_s": round(reader.info.duration_s or last_t, 3)}

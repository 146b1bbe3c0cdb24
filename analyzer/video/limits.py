"""Caps on a video: bytes read, duration, pixels per frame, and how much of it is analysed.
Configurable by environment (CLIP_ARENA_MAX_VIDEO_BYTES, CLIP_ARENA_MAX_VIDEO_SECONDS,
CLIP_ARENA_MAX_VIDEO_PIXELS); a shared deployment (a Space, --hosted) gets lower defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass

from clip_arena.core.hosting import is_hosted
from clip_arena.core.settings import Settings


_UNITS = {"": 1, "b": 1, "kb": 1024, "k": 1024, "mb": 1024 ** 2, "m": 1024 ** 2, "gb": 1024 ** 3, "g": 1024 ** 3}


def _env_number(name: str, default, sizes: bool = False):
    """A positive number from the environment (sizes may say 10mb, 1.5GB); one sentence if it is not."""
    import re

    from clip_arena.core.errors import UserError

    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)", raw)
    unit = match.group(2).lower() if match else None
    if match is None or (unit and not sizes) or unit not in _UNITS:
        hint = " (a number of bytes, or with kb, mb or gb)" if sizes else " (a number)"
        raise UserError(f"{name}={raw!r} is not a positive number{hint}.")
    value = float(match.group(1)) * _UNITS[unit]
    if value <= 0:
        raise UserError(f"{name}={raw!r} is not a positive number.")
    return type(default)(value)


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 512 * 1024 * 1024
    max_duration_s: float = 600.0  # creatives are short; a 10-hour header is refused before decoding
    max_pixels: int = 3840 * 2160  # per frame: 4K decodes, 8K is refused
    sample_fps: float = 2.0  # frames per second scored by CLIP and read by OCR
    max_samples: int = 600  # the sampling rate drops for long videos so at most this many are scored
    ocr_fps: float = 2.0  # OCR at most this often, and only when the picture changed since the last read
    max_keyframes: int = 12  # keyframes given the full image analysis (the other shots keep their times)
    max_fps: float = 240.0  # frames decoded per second of video at most (a stream without timestamps)

    @classmethod
    def for_settings(cls, settings: Settings) -> "VideoLimits":
        hosted = is_hosted(settings)
        base = cls(max_bytes=100 * 1024 * 1024, max_duration_s=180.0, max_pixels=2560 * 1440,
                   max_samples=360, max_keyframes=8) if hosted else cls()
        return cls(
            max_bytes=_env_number("CLIP_ARENA_MAX_VIDEO_BYTES", base.max_bytes, sizes=True),
            max_duration_s=_env_number("CLIP_ARENA_MAX_VIDEO_SECONDS", base.max_duration_s),
            max_pixels=_env_number("CLIP_ARENA_MAX_VIDEO_PIXELS", base.max_pixels),
            sample_fps=base.sample_fps, max_samples=base.max_samples, ocr_fps=base.ocr_fps,
            max_keyframes=base.max_keyframes, max_fps=base.max_fps,
        )

    def sample_rate(self, duration_s: float) -> float:
        """Frames sampled per second: sample_fps, lower for a long video (max_samples)."""
        if duration_s <= 0:
            return self.sample_fps
        return min(self.sample_fps, self.max_samples / duration_s)

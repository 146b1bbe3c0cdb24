"""Probe and decode a video with PyAV, bounded: the header's duration and frame size are checked
before any frame is decoded, frames come one at a time (never the whole video in memory), and decoding
stops at the caps whatever the header said. Every failure is a VideoLoadError in one sentence.

Animated WebP goes through Pillow (FFmpeg's WebP decoder reads still images only)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
from PIL import Image

from clip_arena.analyzer.video.limits import VideoLimits
from clip_arena.analyzer.video.source import VideoInput, VideoLoadError

SMALL = (64, 36)  # the size frames are compared at for cuts and changes (16:9; cuts need no detail)


@dataclass
class VideoInfo:
    duration_s: float | None  # None: the header does not say
    fps: float | None
    width: int
    height: int
    codec: str
    bitrate: int | None  # bits per second, as the container says
    has_audio: bool
    format: str

    def as_dict(self) -> dict:
        return asdict(self)


class Frame:
    """One decoded frame: its time, and the picture at the sizes the analysis asks for (converted
    from the decoder's own format straight to the small size: a full-size RGB copy is never made)."""

    def __init__(self, time_s: float, index: int, av_frame=None, pil: Image.Image | None = None, rotation: int = 0):
        self.time_s, self.index = time_s, index
        self._av, self._pil, self._rotation = av_frame, pil, rotation

    def small(self, size: tuple[int, int] = SMALL) -> np.ndarray:
        """uint8 H x W x 3 at `size` (width, height)."""
        if self._av is not None:
            return self._av.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
        return np.asarray(self._pil.resize(size, Image.Resampling.BILINEAR))

    def image(self, max_side: int) -> Image.Image:
        """RGB, its longer side at most `max_side`, upright."""
        if self._av is not None:
            w, h = self._av.width, self._av.height
            scale = min(1.0, max_side / max(w, h))
            out = self._av.to_image(width=max(2, round(w * scale)), height=max(2, round(h * scale)))
        else:
            out = self._pil.copy()
            out.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        if self._rotation:
            out = out.rotate(self._rotation, expand=True)
        return out


def _fail(name: str, err: Exception, where: str = "") -> VideoLoadError:
    text = str(err).lower()
    if "moov atom not found" in text or "end of file" in text or "truncated" in text:
        return VideoLoadError("truncated", f"{name} is truncated or incomplete (the file ends early{where}).")
    return VideoLoadError("corrupt", f"{name} could not be decoded as a video{where}.")


class VideoReader:
    """with VideoReader(video_input, limits) as r: r.info; for frame in r.frames(): ..."""

    def __init__(self, video: VideoInput, limits: VideoLimits):
        self.video, self.limits, self.name = video, limits, video.name
        self.container, self._webp = None, None
        if video.format == "webp":
            self.info = self._probe_webp()
        else:
            self.info = self._probe_av()
        self._check_caps()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        if self._webp is not None:
            self._webp.close()
        self.video.close()

    # -- probing ---------------------------------------------------------------------------------------
    def _probe_av(self) -> VideoInfo:
        import av

        try:
            self.container = av.open(self.video.file, format=self.video.format, mode="r",
                                     metadata_errors="ignore")
        except av.FFmpegError as err:
            self.video.close()
            raise _fail(self.name, err) from err
        except Exception as err:  # noqa: BLE001 - anything the demuxer trips on is the file's fault
            self.video.close()
            raise VideoLoadError("corrupt", f"{self.name} could not be read as a video.") from err
        c = self.container
        if not c.streams.video:
            self.close()
            what = " (it holds only audio)" if c.streams.audio else ""
            raise VideoLoadError("no_video_stream", f"{self.name} has no video stream{what}.")
        stream = c.streams.video[0]
        ctx = stream.codec_context
        duration = None
        if c.duration is not None and c.duration > 0:
            duration = c.duration / 1_000_000
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        return VideoInfo(duration_s=duration, fps=fps if fps and math.isfinite(fps) else None,
                         width=int(ctx.width or 0), height=int(ctx.height or 0), codec=ctx.name or "unknown",
                         bitrate=int(c.bit_rate) if c.bit_rate else None, has_audio=bool(c.streams.audio),
                         format=self.video.format)

    def _probe_webp(self) -> VideoInfo:
        try:
            image = Image.open(self.video.file)
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
        except Exception as err:  # noqa: BLE001
            self.video.close()
            raise VideoLoadError("corrupt", f"{self.name} could not be read as an animated WebP.") from err
        self._webp = image
        self._check_pixels(width, height)
        if frames > self.limits.max_fps * self.limits.max_duration_s:
            self.close()
            raise VideoLoadError("too_long", f"{self.name} has {frames:,} frames, over the cap.")
        total = 0.0
        for i in range(frames):  # durations come from the frame headers; decoding waits for frames()
            try:
                image.seek(i)
            except Exception as err:  # noqa: BLE001
                self.close()
                raise _fail(self.name, err) from err
            total += (image.info.get("duration") or 100) / 1000
        image.seek(0)
        return VideoInfo(duration_s=total, fps=frames / total if total else None, width=width, height=height,
                         codec="webp", bitrate=None, has_audio=False, format="webp")

    def _check_pixels(self, width: int, height: int) -> None:
        if width * height > self.limits.max_pixels:
            self.close()
            raise VideoLoadError("too_many_pixels", f"{self.name} is {width}x{height} pixels a frame, over the "
                                                    f"{self.limits.max_pixels:,}-pixel cap.")

    def _check_caps(self) -> None:
        info = self.info
        self._check_pixels(info.width, info.height)
        if info.duration_s is not None and info.duration_s > self.limits.max_duration_s:
            self.close()
            raise VideoLoadError("too_long", f"{self.name} is {_clock(info.duration_s)} long, over the "
                                             f"{_clock(self.limits.max_duration_s)} video cap.")

    # -- decoding --------------------------------------------------------------------------------------
    def frames(self) -> Iterator[Frame]:
        """Every frame in order; raises VideoLoadError past the caps or when the stream breaks."""
        cap_s = self.limits.max_duration_s
        max_frames = int(self.limits.max_fps * cap_s) + 1
        source = self._webp_frames() if self._webp is not None else self._av_frames()
        for frame in source:
            if frame.time_s > cap_s + 1 or frame.index >= max_frames:
                raise VideoLoadError("too_long", f"{self.name} runs past the {_clock(cap_s)} video cap "
                                                 "(its header understated its length).")
            yield frame

    def _av_frames(self) -> Iterator[Frame]:
        import av

        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = self.info.fps or 25.0
        rotation = 0
        index = 0
        start = None
        decoded = self.container.decode(stream)
        while True:
            try:
                frame = next(decoded)
            except StopIteration:
                break
            except av.FFmpegError as err:
                if index == 0:
                    raise _fail(self.name, err) from err
                raise _fail(self.name, err, f" after {index / fps:.1f} s") from err
            if frame.width * frame.height > self.limits.max_pixels:
                self._check_pixels(frame.width, frame.height)
            t = frame.time if frame.time is not None else index / fps
            start = t if start is None else start
            if index == 0:
                rotation = int(getattr(frame, "rotation", 0) or 0)
            yield Frame(max(0.0, t - start), index, av_frame=frame, rotation=rotation)
            index += 1
        if index == 0:
            raise VideoLoadError("corrupt", f"{self.name} holds no frame that can be decoded.")

    def _webp_frames(self) -> Iterator[Frame]:
        image, t = self._webp, 0.0
        for i in range(getattr(image, "n_frames", 1)):
            try:
                image.seek(i)
                pil = image.convert("RGB")
            except Exception as err:  # noqa: BLE001
                raise _fail(self.name, err, f" at frame {i}") from err
            yield Frame(t, i, pil=pil)
            t += (image.info.get("duration") or 100) / 1000


def _clock(seconds: float) -> str:
    """75 -> '1 min 15 s', 36000 -> '10 h'."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h} h" if h else "", f"{m} min" if m else "", f"{s} s" if s or not (h or m) else ""]
    return " ".join(p for p in parts if p)

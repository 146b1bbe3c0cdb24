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

TRUNCATED_SHARE = 0.9  # frames ending before this share of the header's duration (less 1 s): truncated
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

    def __init__(self, time_s: float, index: int, av_frame=None, pil: Image.Image | None = None, rotation: int = 0,
                 reformatter=None):
        self.time_s, self.index = time_s, index
        self._av, self._pil, self._rotation = av_frame, pil, rotation
        self._reformatter = reformatter

    def small(self, size: tuple[int, int] = SMALL) -> np.ndarray:
        """uint8 H x W x 3 at `size` (width, height)."""
        if self._av is not None:  # area averaging, with the reader's scaler kept from frame to frame
            return self._reformatter.reformat(self._av, width=size[0], height=size[1], format="rgb24",
                                              interpolation="AREA").to_ndarray()
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
    return VideoLoadError("corrupt", f"{name} could not be decoded as a video{where}: it is corrupt or truncated.")


class VideoReader:
    """with VideoReader(video_input, limits) as r: r.info; for frame in r.frames(): ..."""

    def __init__(self, video: VideoInput, limits: VideoLimits):
        self.video, self.limits, self.name = video, limits, video.name
        self.container, self._webp = None, None
        self.audio_error: str | None = None
        self.video_stream_s: float | None = None
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
            what = " (it holds only audio)" if c.streams.audio else ""
            self.close()
            raise VideoLoadError("no_video_stream", f"{self.name} has no video stream{what}.")
        stream = c.streams.video[0]
        ctx = stream.codec_context
        duration = None
        if c.duration is not None and c.duration > 0:
            duration = c.duration / 1_000_000
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        if stream.duration and stream.time_base:
            self.video_stream_s = float(stream.duration * stream.time_base)
        elif not c.streams.audio:  # Matroska gives only the file's length: the video's, without audio
            self.video_stream_s = duration
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
        # Frame durations are known once each frame is read: frames() fills in the duration.
        return VideoInfo(duration_s=None, fps=None, width=width, height=height, codec="webp", bitrate=None,
                         has_audio=False, format="webp")

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
    def frames(self, on_audio=None) -> Iterator[Frame]:
        """Every frame in order (audio to on_audio, see _av_frames); raises VideoLoadError past the
        caps or when the stream breaks."""
        cap_s = self.limits.max_duration_s
        max_frames = int(self.limits.max_fps * cap_s) + 1
        source = self._webp_frames() if self._webp is not None else self._av_frames(on_audio)
        last = 0.0
        for frame in source:
            if frame.time_s > cap_s + 1 or frame.index >= max_frames:
                raise VideoLoadError("too_long", f"{self.name} runs past the {_clock(cap_s)} video cap "
                                                 "(its header understated its length).")
            last = frame.time_s
            yield frame
        said = self.video_stream_s  # the video stream's own length: the audio may run longer
        if said and last < TRUNCATED_SHARE * said - 1.0:  # FFmpeg ends quietly where the data does
            raise VideoLoadError("truncated", f"{self.name} is truncated: its frames end at {last:.1f} s of the "
                                              f"{said:.1f} s its header gives.")

    def _av_frames(self, on_audio=None) -> Iterator[Frame]:
        """Video frames in order; the audio track's samples (float32, channels x n, at most two
        channels) go to on_audio(samples, rate, channels) from the same pass over the file. A broken
        audio track ends the audio (self.audio_error says why), not the video."""
        import av

        video = self.container.streams.video[0]
        video.thread_type = "AUTO"
        audio = self.container.streams.audio[0] if on_audio and self.container.streams.audio else None
        resample = None
        if audio is not None:
            from clip_arena.analyzer.video.audio import resampler_for

            try:
                resample, channels = resampler_for(audio)
            except Exception as err:  # noqa: BLE001 - an audio layout FFmpeg cannot convert
                self.audio_error, audio = f"the audio track cannot be decoded ({err})", None
        from av.video.reformatter import VideoReformatter

        scaler = VideoReformatter()
        fps = self.info.fps or 25.0
        rotation, index, start = 0, 0, None
        packets = self.container.demux(*([video] + ([audio] if audio is not None else [])))
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as err:
                raise _fail(self.name, err, f" after {index / fps:.1f} s" if index else "") from err
            if packet.stream is not video:
                if audio is None:
                    continue
                try:
                    for chunk in packet.decode():
                        for out in resample.resample(chunk):
                            on_audio(out.to_ndarray(), out.sample_rate, channels)
                except av.FFmpegError as err:
                    self.audio_error, audio = f"the audio track broke off ({err})", None
                continue
            try:
                decoded = packet.decode()
            except av.FFmpegError as err:
                if index == 0:
                    raise _fail(self.name, err) from err
                raise _fail(self.name, err, f" after {index / fps:.1f} s") from err
            for frame in decoded:
                if frame.width * frame.height > self.limits.max_pixels:
                    self._check_pixels(frame.width, frame.height)
                t = frame.time if frame.time is not None else index / fps
                start = t if start is None else start
                if index == 0:
                    rotation = int(getattr(frame, "rotation", 0) or 0)
                yield Frame(max(0.0, t - start), index, av_frame=frame, rotation=rotation, reformatter=scaler)
                index += 1
        if audio is not None:
            for out in resample.resample(None):
                on_audio(out.to_ndarray(), out.sample_rate, channels)
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
        self.info.duration_s = t
        self.info.fps = round(self._webp.n_frames / t, 3) if t else None


def _clock(seconds: float) -> str:
    """75 -> '1 min 15 s', 36000 -> '10 h'."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h} h" if h else "", f"{m} min" if m else "", f"{s} s" if s or not (h or m) else ""]
    return " ".join(p for p in parts if p)

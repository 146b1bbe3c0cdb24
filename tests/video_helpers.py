"""Synthetic video clips for the video tests, written with PyAV: known shots (solid colours or
pictures), known text drawn on known frames, a known sine tone on the audio track."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont



@dataclass
class Shot:
    seconds: float
    colour: tuple[int, int, int] | None = None
    picture: Image.Image | None = None  # drawn centred on the colour
    text: str | None = None  # drawn large from text_from_s (seconds into the shot)
    text_from_s: float = 0.0


@dataclass
class Clip:
    path: Path
    fps: int
    cut_frames: list[int] = field(default_factory=list)  # index of each shot's first frame (after the first)
    text_first_s: dict[str, float] = field(default_factory=dict)
    samples: np.ndarray | None = None  # the tone exactly as written (float32, mono)
    rate: int = 48000


def font(size: int):
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                 "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"):
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def frame_image(shot: Shot, t_in_shot: float, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, shot.colour or (255, 255, 255))
    if shot.picture is not None:
        side = min(size) - 8
        pic = shot.picture.convert("RGBA").resize((side, side))
        image.paste(pic, ((size[0] - side) // 2, (size[1] - side) // 2), pic)
    if shot.text and t_in_shot >= shot.text_from_s:
        draw = ImageDraw.Draw(image)
        px = max(16, size[1] // 4)
        while px > 12 and draw.textbbox((0, 0), shot.text, font=font(px))[2] > size[0] * 0.85:
            px -= 2  # large, and all of it inside the frame
        f = font(px)
        box = draw.textbbox((0, 0), shot.text, font=f)
        x = (size[0] - (box[2] - box[0])) // 2
        y = (size[1] - (box[3] - box[1])) // 2
        draw.rectangle((x - 6, y - 6, x + box[2] - box[0] + 6, y + box[3] + 6), fill=(255, 255, 255))
        draw.text((x - box[0], y - box[1] // 2), shot.text, fill=(0, 0, 0), font=f)
    return image


def write_clip(path: Path, shots: list[Shot], fps: int = 12, size: tuple[int, int] = (160, 120),
               tone_hz: float | None = None, tone_amplitude: float = 0.25, rate: int = 48000,
               codec: str = "libx264", audio_seconds: float | None = None) -> Clip:
    """`audio_seconds`: the audio track's length when it is to differ from the video's."""
    import av

    clip = Clip(Path(path), fps, rate=rate)
    container = av.open(str(path), mode="w")
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    if codec == "libx264":
        stream.options = {"preset": "ultrafast", "crf": "18", "g": str(fps)}
    total_s = sum(s.seconds for s in shots)
    audio = None
    if tone_hz:
        audio = container.add_stream("aac", rate=rate, layout="mono")
        n = int((audio_seconds or total_s) * rate)
        clip.samples = (tone_amplitude * np.sin(2 * np.pi * tone_hz * np.arange(n) / rate)).astype(np.float32)
    index = 0
    for number, shot in enumerate(shots):
        frames = int(round(shot.seconds * fps))
        if number:
            clip.cut_frames.append(index)
        if shot.text:
            clip.text_first_s[shot.text] = (index + int(np.ceil(shot.text_from_s * fps))) / fps
        for k in range(frames):
            frame = av.VideoFrame.from_image(frame_image(shot, k / fps, size))
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
            index += 1
    for packet in stream.encode():
        container.mux(packet)
    if audio is not None:
        chunk = 1024
        for start in range(0, len(clip.samples), chunk):
            part = clip.samples[start:start + chunk]
            frame = av.AudioFrame.from_ndarray(part[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    container.close()
    return clip

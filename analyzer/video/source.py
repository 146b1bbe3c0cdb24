"""Where a video comes from, under the image-source policy (analyzer.policy): a path, a URL, bytes or
a browser upload, opened for PyAV as a file object. The container is recognised from its first bytes
and its demuxer named explicitly, so a playlist or concat script named .mp4 is never followed
(FFmpeg would otherwise open the files or URLs inside it)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from pathlib import Path

from clip_arena.analyzer.fetch import fetch_bytes, is_url
from clip_arena.analyzer.images import _short, not_found, open_regular, resolve_under_roots
from clip_arena.analyzer.policy import BROWSER, ImagePolicy, private_refusal_for_browser
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.sizes import human_bytes

from clip_arena.analyzer.video.limits import VideoLimits

KINDS = "mp4, mov, webm, mkv, animated GIF or WebP"
URL_TIMEOUT_S = 60.0


class VideoLoadError(ImageLoadError):
    """A video that cannot be read safely: `kind` for batch summaries, str(err) one sentence."""


@dataclass(frozen=True)
class UploadedVideo:
    """A file the browser uploaded, read as 'the uploaded video', never by its temporary path;
    `upload_dir`: the folder it must be inside (Gradio's upload folder)."""

    path: str
    upload_dir: str | None = None


@dataclass
class VideoInput:
    """An opened video: `file` a binary file object, `name` for messages, `format` the demuxer."""

    file: io.BufferedIOBase
    name: str
    size: int
    format: str

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sniff(head: bytes) -> str | None:
    """The FFmpeg demuxer for a file's first bytes, or None when it is no container we read."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "mov"  # mp4, mov, m4v, 3gp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # mkv and webm
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def open_video(source, policy: ImagePolicy | None, limits: VideoLimits, fetch_limits=None) -> VideoInput:
    """Open `source` (path, URL, bytes or UploadedVideo) under `policy` and the byte cap, or raise
    VideoLoadError in one sentence."""
    try:
        if isinstance(source, UploadedVideo):
            opened = _open_upload(source, limits)
        elif isinstance(source, (bytes, bytearray)):
            opened = _from_bytes(bytes(source), "the uploaded video", limits)
        else:
            opened = _open_named(source, policy, limits, fetch_limits)
    except VideoLoadError:
        raise
    except ImageLoadError as err:  # the policy's refusals keep their kind, worded for a video
        message = str(err)
        if err.kind == "private_address" and policy is not None and policy.audience == BROWSER:
            message = private_refusal_for_browser(err)  # a web user is not told which address it resolved to
        raise VideoLoadError(err.kind, message.replace("image", "video").replace("Image", "Video")) from err
    head = opened.file.read(16)
    opened.file.seek(0)
    if not head:
        opened.close()
        raise VideoLoadError("empty", f"{opened.name} is empty (0 bytes).")
    fmt = sniff(head)
    if fmt is None:
        opened.close()
        raise VideoLoadError("not_video", f"{opened.name} is not a video file ({KINDS}).")
    opened.format = fmt
    return opened


def _from_bytes(data: bytes, name: str, limits: VideoLimits) -> VideoInput:
    if len(data) > limits.max_bytes:
        raise VideoLoadError("too_large", f"{name} is {human_bytes(len(data))}, over the "
                                          f"{human_bytes(limits.max_bytes)} video cap.")
    return VideoInput(io.BytesIO(data), name, len(data), "")


def _open_named(source, policy: ImagePolicy | None, limits: VideoLimits, fetch_limits) -> VideoInput:
    policy = policy or ImagePolicy(None, argument=True)
    if source is None or not os.fspath(source).strip():
        raise VideoLoadError("missing", "No video was given.")
    text = os.fspath(source).strip()
    if is_url(text):
        base = fetch_limits or policy.limits
        capped = replace(base, max_bytes=limits.max_bytes, timeout_s=max(base.timeout_s, URL_TIMEOUT_S))
        return _from_bytes(fetch_bytes(text, capped), _short(text), limits)
    if policy.argument:
        text = os.path.expanduser(text)
    elif policy.roots is None:
        raise VideoLoadError("local_path_refused", "Local file paths are not read here; give an http(s) URL "
                                                   "or upload the video.")
    name = _short(text)
    if policy.roots is not None:
        real = resolve_under_roots(text, policy.roots)
    else:
        real = Path(text)
        if not real.exists():
            raise not_found(text, under_roots=False)
    return _open_file(real, name, limits)


def _open_upload(upload: UploadedVideo, limits: VideoLimits) -> VideoInput:
    real = Path(upload.path).resolve()
    if upload.upload_dir is not None and not real.is_relative_to(Path(upload.upload_dir).resolve()):
        raise VideoLoadError("outside_roots", "The upload could not be found; upload the video again.")
    try:
        return _open_file(real, "the uploaded video", limits)
    except ImageLoadError as err:
        if err.kind == "not_found":
            raise VideoLoadError("not_found", "The uploaded video has expired; upload it again.") from err
        raise


def _open_file(real: Path, name: str, limits: VideoLimits) -> VideoInput:
    """A regular file only (images.open_regular), at most max_bytes, kept open to be streamed."""
    fd, size = open_regular(real, name, limits.max_bytes, "video", VideoLoadError, "video cap")
    return VideoInput(os.fdopen(fd, "rb"), name, size, "")


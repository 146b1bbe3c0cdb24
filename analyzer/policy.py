"""The one image-source policy: which images a tab or a command may read, and how refusals read.

Every tab (Similarity, Analyze, Batch) and every command (similarity, analyze, score) loads its
images through an ImagePolicy, so they share the same image roots, the same refusals and the same
caps: URLs go through the SSRF-checked fetcher; local paths are read only under the roots, only
regular files, and not at all when there are no roots (a hosted Space by default); uploads are
read from the upload folder only. Messages for a browser never name server folders.

One exception: a path the person running a command typed as its argument (`similarity --image
~/Pictures/cat.png`) is theirs to read, as for every Unix tool, unless they confine it with
--image-root. Data from elsewhere (browser inputs, CSV cells, catalog URIs) keeps the roots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image

from clip_arena.analyzer.fetch import is_url
from clip_arena.analyzer.images import decode_image, load_image, read_regular_file, read_source
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.hosting import is_hosted
from clip_arena.core.settings import FetchLimits, Settings

CLI, BROWSER = "cli", "browser"


def configured_roots(settings: Settings) -> list[str] | None:
    """The image roots of a deployment: as configured; none (local paths off) when hosted and
    nothing was configured; else the working folder."""
    roots = settings.image_roots
    explicit = os.environ.get("CLIP_ARENA_IMAGE_ROOTS") is not None or roots != [os.getcwd()]
    if is_hosted(settings) and not explicit:
        return None
    return list(roots) if roots else None


def private_refusal_for_browser(err: ImageLoadError) -> str:
    """A web user cannot pass --allow-private-urls: say what the server does, and who can change it
    (and not which private address the host resolved to)."""
    host = getattr(err, "host", None)
    where = f"from {host}" if host else "from that address"
    return (f"Refused to fetch {where}: this server does not fetch images from private, loopback or "
            "link-local addresses (whoever runs it can allow them with --allow-private-urls).")


@dataclass(frozen=True)
class ImagePolicy:
    roots: tuple[str, ...] | None  # None: local paths off
    limits: FetchLimits = field(default_factory=FetchLimits)
    audience: str = CLI  # CLI messages name the folders and the option that adds one; browser ones do not
    argument: bool = False  # typed by whoever runs the command: ~ expanded, read anywhere unless roots are given

    @classmethod
    def for_server(cls, settings: Settings) -> "ImagePolicy":
        roots = configured_roots(settings)
        return cls(tuple(roots) if roots else None, settings.limits, BROWSER)

    @classmethod
    def for_cli(cls, settings: Settings, roots: list[str] | None = None) -> "ImagePolicy":
        """For an image path or URL given as a command's argument: any file the user can read, or
        only under `roots` when they give them (--image-root)."""
        chosen = tuple(str(Path(r).expanduser().resolve()) for r in roots) if roots else None
        return cls(chosen, settings.limits, CLI, argument=True)

    def _where(self) -> str:
        if self.audience != CLI or (self.argument and self.roots is None):
            return ""
        if self.roots is None:
            return " (local paths are off; give --image-root DIR to allow a folder)"
        return f" (allowed: {', '.join(self.roots)}; add a folder with --image-root DIR)"

    def load(self, source, target_size: int | None = None, then: Callable[[Image.Image], object] | None = None):
        """An image (or then(image)) from a path, URL, bytes or PIL image, under this policy."""
        return self._under_policy(source, lambda s, roots: load_image(s, self.limits, roots, target_size, then))

    def read(self, source) -> tuple[bytes, str]:
        """(the bytes, the name for messages) of a path, URL or bytes, under this policy, undecoded:
        for the GPU's JPEG decoder."""
        return self._under_policy(source, lambda s, roots: read_source(s, self.limits, roots))

    def _under_policy(self, source, action):
        try:
            if isinstance(source, (bytes, bytearray, Image.Image)):
                return action(source, None)
            if source is None:
                raise ImageLoadError("missing", "No image was given.")
            text = os.fspath(source).strip()
            if not text:
                raise ImageLoadError("missing", "No image was given.")
            if self.argument and not is_url(text):
                text = os.path.expanduser(text)  # the shell leaves ~ alone in --image=~/x.png
            if not is_url(text) and self.roots is None and not self.argument:
                raise ImageLoadError("local_path_refused", "Local file paths are not read here; give an http(s) "
                                                           f"URL or upload the image{self._where()}.")
            return action(text, self.roots)
        except ImageLoadError as err:
            if err.kind == "private_address" and self.audience == BROWSER:
                raise ImageLoadError(err.kind, private_refusal_for_browser(err)) from err
            if err.kind in ("outside_roots", "not_found") and self._where():
                raise ImageLoadError(err.kind, str(err).rstrip(".") + self._where() + ".") from err
            raise
        except (ValueError, TypeError, OSError) as err:  # a cell no check foresaw: still one row's error
            raise ImageLoadError("bad_source", "The image source could not be read.") from err

    def load_upload(self, path: str, upload_dir: str | None = None):
        """A file the browser uploaded (Gradio stores it in its upload folder): capped and read as
        'the uploaded image', never by its temporary path."""
        name = "the uploaded image"
        real = Path(path).resolve()
        if upload_dir is not None and not real.is_relative_to(Path(upload_dir).resolve()):
            raise ImageLoadError("outside_roots", "The upload could not be found; upload the image again.")
        try:
            data = read_regular_file(real, name, self.limits)
        except ImageLoadError as err:
            if err.kind == "not_found":
                raise ImageLoadError("not_found", "The uploaded image has expired; upload it again.") from err
            raise
        return decode_image(data, name, self.limits)

    def load_from_tab(self, image_file: str | None, image_text: str | None, upload_dir: str | None = None):
        """What an image tab gives: an uploaded file, else the URL (or path) box."""
        if image_file:
            return self.load_upload(image_file, upload_dir)
        return self.load(image_text)

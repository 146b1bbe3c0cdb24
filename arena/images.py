"""The catalog images the arena shows, served by catalog row and never by folder.

The web server may serve one folder (Gradio's upload cache); each image a round shows is linked or
copied there under a name made from its row, once. Nothing else of the catalog's folder (the
Parquet, FAISS indices, a votes.db) can reach the browser, and catalog images may live anywhere.
A catalog URL is fetched by the server under the image policy (analyzer.fetch: public addresses
only, except the hosts the owner named with --catalog-hosts), once, into a cache that is not
served, then linked like a local file. A row whose file is missing, cannot be fetched or is not an
image shows a grey placeholder.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import FetchLimits
from clip_arena.index.catalog import Catalog

PLACEHOLDER = "missing.png"
# Gradio's delete_cache removes files of its cache older than its age (by ctime): a copy handed out
# is made anew once it is this old, so a page never links to a deleted file on a long-running server.
REFRESH_S = 30.0
# Images a browser shows inline and that carry no script (SVG can).
SHOWN_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif"}
SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp", "AVIF": ".avif"}


def is_url(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


class CatalogImages:
    def __init__(self, catalog: Catalog, folder: str | Path, limits: FetchLimits | None = None):
        self.catalog = catalog
        self.limits = limits or FetchLimits()
        # One sub-folder per catalog file, so two catalogs' rows never share a name.
        key = hashlib.sha1(str(catalog.path.resolve() if catalog.path else "").encode()).hexdigest()[:12]
        self.folder = Path(folder) / "clip-arena-images" / key
        self.folder.mkdir(parents=True, exist_ok=True)
        # Fetched catalog URLs, kept where no route serves them (the served folder is cleaned by age).
        self.fetched = Path(tempfile.gettempdir()) / "clip-arena-fetched" / key
        self.fetched.mkdir(parents=True, exist_ok=True)
        self._uris = catalog.table.column("image_uri")
        self._served: dict[int, str] = {}
        self._lock = threading.Lock()

    def __call__(self, row: int) -> str:
        """The path of the served copy the page may load for a catalog row."""
        served = self._served.get(row)
        if served is None or not _fresh(served):
            served = self._serve(row)
            with self._lock:
                self._served[row] = served
        return served

    def _serve(self, row: int) -> str:
        uri = self.catalog.resolve_uri(self._uris[row].as_py())
        source = self._fetch(row, uri) if is_url(uri) else Path(uri)
        if source is None:
            return self._placeholder()
        kind = mimetypes.guess_type(source.name)[0]
        if kind not in SHOWN_TYPES or not source.is_file() or not _is_image(source):
            return self._placeholder()
        target = self.folder / f"{row}{source.suffix.lower()}"
        if not _fresh(str(target)):
            _link_or_copy(source, target)
        return str(target)

    def _fetch(self, row: int, url: str) -> Path | None:
        """The catalog URL's image in the fetch cache (fetched once), or None when it cannot be had."""
        from clip_arena.analyzer.fetch import fetch_bytes

        cached = next(iter(sorted(self.fetched.glob(f"{row}.*"))), None)
        if cached is not None:
            return cached
        try:
            data = fetch_bytes(url, self.limits)
            with Image.open(io.BytesIO(data)) as im:
                suffix = SUFFIXES.get(im.format or "")
        except (ImageLoadError, OSError, ValueError, Image.DecompressionBombError):
            return None
        if suffix is None:
            return None
        target = self.fetched / f"{row}{suffix}"
        tmp = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target

    def _placeholder(self) -> str:
        target = self.folder / PLACEHOLDER
        if not _fresh(str(target)):
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".png", delete=False) as tmp:
                Image.new("RGB", (64, 64), (200, 200, 200)).save(tmp, format="PNG")
            os.replace(tmp.name, target)
        return str(target)


def _fresh(served: str) -> bool:
    """A local copy that exists and was made less than REFRESH_S ago."""
    try:
        return time.time() - os.lstat(served).st_ctime < REFRESH_S
    except OSError:
        return False


def _is_image(path: Path) -> bool:
    """The file's header is an image's (a renamed Parquet or database is not)."""
    try:
        with Image.open(path) as im:
            return Image.MIME.get(im.format or "") in SHOWN_TYPES
    except Exception:  # noqa: BLE001 - anything PIL cannot identify is not shown
        return False


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs nothing; across file systems, a copy. Written under a temporary name
    and renamed, so two sessions showing the same row never see half a file."""
    tmp = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
    try:
        os.link(source.resolve(), tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    # rename() between two links of one file does nothing and leaves the temporary name behind
    # (POSIX): remove it, or every refresh of a served copy would leave one more file.
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass

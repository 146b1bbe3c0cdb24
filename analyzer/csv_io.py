"""Reading the batch CSVs: delimiter sniffing and image and caption column detection."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from clip_arena.core.errors import UserError

IMAGE_NAMES = ("image", "image_url", "image_uri", "image_path", "url", "img", "img_url", "path", "file", "filename")
CAPTION_NAMES = ("caption", "text", "title", "description", "prompt", "alt", "alt_text", "label")


def sniff(path: str | os.PathLike) -> tuple[str, list[str]]:
    """(delimiter, header) from the start of a UTF-8 file (with or without BOM)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            sample = f.read(64 * 1024)
    except UnicodeDecodeError as err:
        raise UserError(f"{path.name} is not UTF-8 text; save it as CSV UTF-8.") from err
    except OSError as err:
        raise UserError(f"Cannot read {path}: {err.strerror}.") from err
    if not sample.strip():
        raise UserError(f"{path.name} is empty.")
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter))
    return delimiter, [h.strip() for h in header]


def detect_columns(header: list[str], image_column: str | None = None,
                   caption_column: str | None = None) -> tuple[str, str]:
    """The image and caption columns: as given, else the first header matching a known name."""
    def pick(given, names, what):
        if given:
            if given not in header:
                raise UserError(f"There is no {what} column {given!r}; the columns are: {', '.join(header)}.")
            return given
        lowered = {h.lower(): h for h in header}
        for name in names:
            if name in lowered:
                return lowered[name]
        raise UserError(f"No {what} column found (looked for {', '.join(names[:5])}, ...); the columns are: "
                        f"{', '.join(header)}. Choose one explicitly.")

    return pick(image_column, IMAGE_NAMES, "image"), pick(caption_column, CAPTION_NAMES, "caption")

"""Folders for the files the app hands to the browser (scored CSVs, reports, vote exports).

Each call gets a fresh folder, so the file keeps its plain name; folders untouched for
MAX_AGE_S are removed when a new one is made, so a server that runs for weeks does not fill
its disk."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

MAX_AGE_S = 6 * 3600
ROOT_NAME = "clip-arena-downloads"


def _last_touched(folder: Path) -> float:
    return max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])


def prune(root: Path, max_age_s: float = MAX_AGE_S) -> None:
    cutoff = time.time() - max_age_s
    for folder in root.iterdir():
        try:
            if folder.is_dir() and _last_touched(folder) < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:  # another request pruned it first
            continue


def new_folder(kind: str) -> Path:
    """A new folder under the system's temporary folder, named for `kind` (batch, analysis...)."""
    root = Path(tempfile.gettempdir()) / ROOT_NAME
    root.mkdir(exist_ok=True)
    prune(root)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))

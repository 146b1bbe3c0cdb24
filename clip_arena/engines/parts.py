"""Numbered parts of a long job, each written atomically, so a killed job resumes without redoing
finished parts. A part's file name carries a fingerprint of what it was computed from (its input
rows and the settings), so a part left over from another input or another model is never reused.
No Ray here: the engines store parts through this, and it is tested on its own."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path


def fingerprint(*values) -> str:
    """A short, stable hash of JSON-able values (non-JSON values hashed by their str)."""
    text = json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


class PartStore:
    """A folder of `part-NNNNNN-<fingerprint><suffix>` files beside the output."""

    def __init__(self, folder: str | os.PathLike, suffix: str):
        self.folder, self.suffix = Path(folder), suffix

    @classmethod
    def beside(cls, output: str | os.PathLike, suffix: str) -> "PartStore":
        output = Path(output)
        return cls(output.with_name(output.name + ".parts"), suffix)

    def path(self, index: int, key: str) -> Path:
        return self.folder / f"part-{index:06d}-{key}{self.suffix}"

    def done(self, index: int, key: str) -> bool:
        return self.path(index, key).is_file()

    def write(self, index: int, key: str, data: bytes) -> Path:
        """Write then rename: a part on disk is always whole, whenever the job is killed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(index, key)
        tmp = final.with_name(final.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        return final

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

"""CSV files the app is given or wrote itself (a vote log, a flags file, an import), read within bounds.

Reading never takes more memory than a line's cap, never hangs on something that is not a regular
file (a FIFO, a device, a folder), and never stops at a bad record: each record comes back either as
its cells or as the reason it could not be read (a line over the cap, bad UTF-8, a NUL, a broken
quote), so a caller can refuse the whole file (an import: all or nothing) or skip the record and
say so (a vote log at start: the rest loads).
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from clip_arena.core.errors import UserError

MAX_LINE_BYTES = 1 << 20  # a vote row is a few hundred bytes; 1 MiB is far past any honest one


@dataclass(frozen=True)
class Record:
    line: int  # the physical line the record ends on (1-based; the header is line 1)
    cells: list[str] | None  # None when the record could not be read
    problem: str | None = None


def open_regular(path: str | Path):
    """A binary file object for `path`, refusing (one sentence) anything but a regular file, without
    ever blocking on a FIFO."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise UserError(f"Cannot read {path}: {err.strerror or err}.") from err
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path} is not a regular file.")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _lines(f, problems: list, max_line: int, torn_tail: bool) -> Iterator[tuple[int, str]]:
    """(line number, decoded line) for each physical line; a line that is too long or not UTF-8 is left out and noted in
    `problems` as (line number, reason)."""
    number = 0
    while True:
        raw = f.readline(max_line + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            while (rest := f.readline(1 << 16)) and not rest.endswith(b"\n"):
                pass  # the rest of an over-long line is read past, never held
            problems.append((number, f"line longer than {max_line:,} bytes"))
            continue
        if torn_tail and not raw.endswith(b"\n"):
            return  # a last record cut short by a crash mid-append
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            problems.append((number, "not UTF-8 text"))
            continue
        yield number, text


def read_records(path: str | Path, max_line: int = MAX_LINE_BYTES, torn_tail: bool = False) -> Iterator[Record]:
    """Every record of the CSV at `path`, the header first. `torn_tail`: a last line without its
    newline (a crash mid-append) is left out silently."""
    problems: list[tuple[int, str]] = []
    with open_regular(path) as f:
        last = [0]

        def numbered():
            for number, text in _lines(f, problems, max_line, torn_tail):
                last[0] = number
                yield text

        def noted():  # the lines left out so far, as records, in order
            while problems:
                line, why = problems.pop(0)
                yield Record(line, None, why)

        reader = csv.reader(numbered())
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                yield from noted()
                yield Record(last[0], None, f"not a CSV record ({err})")
                continue
            yield from noted()
            if not cells:
                continue  # a blank line, as edited CSVs often end: no record
            if any("\x00" in c for c in cells):
                yield Record(last[0], None, "a cell holds a NUL character")
                continue
            yield Record(last[0], cells)
        yield from noted()

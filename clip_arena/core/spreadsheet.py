"""CSV cells a spreadsheet would run as formulas (DESIGN: "Bad input and security"), for every
CSV the project writes: batch results and vote exports.

As the OWASP CSV-injection guidance says: a cell that starts with = + - @, a tab, CR or LF (or
their fullwidth and small forms, which some spreadsheets fold to ASCII), even after leading
spaces, gets a leading apostrophe; and every cell is quoted (QUOTE_ALL), so a spreadsheet that
splits on `;` or tab cannot start a new cell in the middle of one (`x;=cmd|' /C calc'!A0`).
"""

from __future__ import annotations

import csv
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n",
                 "\uff1d", "\uff0b", "\uff0d", "\uff20",  # fullwidth ＝ ＋ － ＠
                 "\ufe66", "\ufe62", "\ufe63", "\ufe6b")  # small ﹦ ﹢ ﹣ ﹫
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
WRITER_OPTIONS = {"quoting": csv.QUOTE_ALL, "lineterminator": "\r\n"}


def starts_formula(text: str) -> bool:
    """Would a spreadsheet read this cell as a formula? Plain numbers (-0.12, +3e5) are values."""
    return text.lstrip(" ").startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(text)


def neutralise(value) -> str:
    """A cell starting like a formula gets a leading apostrophe; plain numbers stay."""
    text = "" if value is None else str(value)
    return "'" + text if starts_formula(text) else text


def neutralise_row(values) -> list[str]:
    return [neutralise(v) for v in values]


def safe_writer(f):
    """A csv.writer that quotes every cell; pair it with neutralise_row."""
    return csv.writer(f, **WRITER_OPTIONS)


def restore(text: str) -> str:
    """The inverse of neutralise, for CSVs read back in (vote import)."""
    return text[1:] if text.startswith("'") and starts_formula(text[1:]) else text

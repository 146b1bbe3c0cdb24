"""CSV cells a spreadsheet would run as formulas (DESIGN: "Bad input and security"), for every
CSV the project writes: batch results and vote exports."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@")


def neutralise(value) -> str:
    """A cell starting like a formula gets a leading apostrophe; plain numbers (-0.12) stay."""
    text = "" if value is None else str(value)
    if not text.startswith(FORMULA_START):
        return text
    try:
        float(text)
        return text
    except ValueError:
        return "'" + text


def restore(text: str) -> str:
    """The inverse of neutralise, for CSVs read back in (vote import)."""
    return text[1:] if text.startswith("'") and text[1:2] in FORMULA_START else text

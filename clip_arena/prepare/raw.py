"""Reading the raw catalog CSV: its columns found by name when not given, its rows as plain records.

Produced columns (image_id, title, source_uri, ...) are the prepared catalog's; an input column that
would clash with one of them is kept as `raw_<name>`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clip_arena.core.errors import UserError

CANDIDATES = {
    "id": ("id", "image_id", "product_id", "item_id", "sku"),
    "title": ("title", "name", "product_title", "product_name", "caption", "description"),
    "image": ("image", "image_path", "image_url", "url", "image_uri", "img", "path", "file"),
    "category": ("category", "category_name", "product_type", "group", "department"),
}
OPTIONS = {"id": "--id-column", "title": "--title-column", "image": "--image-column", "category": "--category-column"}
PRODUCED = ("image_id", "image_uri", "source_uri", "title", "clean_title", "caption", "split", "mini_train",
            "duplicate_of", "duplicate_kind", "sha256", "phash", "width", "height", "error_kind", "error",
            "row", "attributes_tier")
MAX_ID_CHARS = 200


@dataclass(frozen=True)
class Columns:
    image: str
    title: str
    id: str | None = None
    category: str | None = None


def find_columns(header: list[str], given: dict[str, str | None]) -> Columns:
    """The given columns (each must exist), else the first candidate name present (case, spaces and
    hyphens aside)."""
    lower = {}
    for name in header:  # "Image Path", "image-path" and "image_path" are the same name
        lower.setdefault(re.sub(r"[\s\-.]+", "_", str(name).strip().lower()), name)
    found = {}
    for role, candidates in CANDIDATES.items():
        name = given.get(role)
        if name is not None:
            if name not in header:
                raise UserError(f"{OPTIONS[role]} {name[:60]!r} is not a column of the CSV; it has "
                                f"{', '.join(map(str, header))[:300]}.")
            found[role] = name
            continue
        found[role] = next((lower[c] for c in candidates if c in lower and lower[c] not in found.values()), None)
    for role in ("image", "title"):
        if found[role] is None:
            raise UserError(f"The CSV has no {role} column (looked for {', '.join(CANDIDATES[role])}); name it with "
                            f"{OPTIONS[role]} COLUMN.")
    return Columns(found["image"], found["title"], found["id"], found["category"])


def read_raw(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"The raw catalog {path} does not exist.") from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise UserError(f"The raw catalog {path} could not be read as CSV: {str(err).splitlines()[0][:160]}.") from None


def records(df: pd.DataFrame, columns: Columns) -> list[dict]:
    """One record per input row: row (its number, from 0), image_id, title, source_uri, category
    and the other columns as metadata. Ids: the id column's, else 'row-<n>'."""
    roles = {columns.image: "source_uri", columns.title: "title"}
    if columns.id:
        roles[columns.id] = "image_id"
    out = []
    for n, rec in enumerate(df.to_dict("records")):
        item = {"row": n}
        for key, value in rec.items():
            key = str(key)
            name = roles.get(key) or (f"raw_{key}" if key in PRODUCED else key)
            item[name] = "" if value is None else str(value)
        item["image_id"] = item.get("image_id", "").strip() if columns.id else f"row-{n + 1}"
        out.append(item)
    return out

"""Drawing a catalog's train/val/test split: seeded (the same inputs give the same split), stratified
by a column when asked, and by group, so that the images of one product or query never straddle
two splits (a test image's twin in training would flatter every fine-tuned model).

Groups are laid out stratum by stratum, each stratum's groups in a seeded order, and each group goes
to the split furthest below its share so far (by images): every stratum gets its shares to about one
group, and so does the whole catalog."""

from __future__ import annotations

import hashlib
import math
import random
import shlex
from collections import Counter
from dataclasses import dataclass

from clip_arena.core.errors import UserError
from clip_arena.index.catalog import SPLITS, Catalog

EXAMPLE = "80/10/10"


def hash_rank(text: str) -> bytes:
    """The sort key of a seeded order that does not depend on the rows' order: sha256 of a seed and
    an id written as text (ids may hold lone surrogates, kept as they are)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class SplitPlan:
    """What `embed --split` was asked for."""

    shares: tuple[float, float, float]  # train, val, test; summing to 1
    text: str = "80/10/10"  # as the user wrote it, for messages
    seed: int = 0
    stratify: str | None = None  # column
    group: str | None = None  # column
    redraw: bool = False  # draw every row again, the split already there included


def embed_split_command(catalog: Catalog) -> str:
    """The `embed` re-run that adds a split to this catalog (draws it again when it has one), its own
    methods and specs filled in."""
    specs = {m: (catalog.meta.get("methods", {}).get(m) or {}).get("spec") or "SPEC" for m in catalog.methods}
    methods = " ".join("--method " + shlex.quote(f"{m}={spec}") for m, spec in specs.items()) or "--method NAME=SPEC"
    return (f"clip-arena embed --images DIR [--metadata CSV] {methods} -o {shlex.quote(str(catalog.path))} "
            f"--split {EXAMPLE}" + (" --resplit" if "split" in catalog.table.column_names else ""))


def parse_shares(text: str) -> tuple[float, float, float]:
    """'80/10/10' -> (0.8, 0.1, 0.1): three percentages, train above 0, summing to 100."""
    usage = f"--split {text[:40]!r} must be three percentages TRAIN/VAL/TEST summing to 100, e.g. 80/10/10"
    parts = text.split("/")
    if len(parts) != 3:
        raise UserError(usage + ".")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UserError(usage + ".") from None
    if not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 100) > 1e-6:
        raise UserError(usage + ".")
    if values[0] <= 0:
        raise UserError(f"--split {text!r} gives train no rows; fine-tuning trains on them.")
    return values[0] / 100, values[1] / 100, values[2] / 100


def _key(value) -> str:
    return "" if value is None else str(value)


def draw(n: int, plan: SplitPlan, strata: list | None = None, groups: list | None = None,
         current: list | None = None, ids: list | None = None) -> list[str]:
    """A split for each of `n` rows. Rows with a value in `current` keep it (unless plan.redraw), and
    the rows of their group join them; the others are drawn. `strata` and `groups`: a value per row
    (None or '' groups a row with nobody). `ids`: unique row ids; given, the draw orders rows by a
    seeded hash of their id rather than by position, so the input's row order does not matter."""
    current = [None] * n if current is None or plan.redraw else [c if c in SPLITS else None for c in current]
    units: dict[tuple, list[int]] = {}
    for row in range(n):
        value = _key(groups[row]) if groups is not None else ""
        units.setdefault(("group", value) if value else ("row", row if ids is None else _key(ids[row])), []).append(row)
    split = list(current)
    by_stratum: dict[str, list[tuple]] = {}
    for key, rows in units.items():
        fixed = Counter(current[r] for r in rows if current[r])
        if fixed:  # a group already (partly) in a split: its new rows join the split most of it is in
            chosen = min(fixed, key=lambda s: (-fixed[s], SPLITS.index(s)))
            for r in rows:
                split[r] = split[r] or chosen
            continue
        values = Counter(_key(strata[r]) for r in rows) if strata is not None else Counter({"": 1})
        stratum = min(values, key=lambda v: (-values[v], v))
        by_stratum.setdefault(stratum, []).append(key)
    rng = random.Random(plan.seed)
    order = sorted(by_stratum)
    rng.shuffle(order)
    counts, total = dict.fromkeys(SPLITS, 0), 0
    for stratum in order:
        keys = sorted(by_stratum[stratum], key=repr)
        if ids is None:
            rng.shuffle(keys)
        else:
            keys.sort(key=lambda k: hash_rank(f"{plan.seed}:{k!r}"))
        for key in keys:
            rows = units[key]
            total += len(rows)
            chosen = max(SPLITS, key=lambda s: (plan.shares[SPLITS.index(s)] * total - counts[s],
                                                -SPLITS.index(s)))
            counts[chosen] += len(rows)
            for r in rows:
                split[r] = chosen
    return split

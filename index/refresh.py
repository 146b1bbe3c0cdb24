"""Re-running `embed` on an existing catalog: which rows keep their vectors, which are embedded, and
what metadata each row carries afterwards. Worked out before any model loads.

- An image already in the catalog (same image_id and image_uri) keeps its vectors: no model call.
  One whose image_uri changed is embedded again, since the path now names another file.
- With a metadata CSV, the metadata follows it on every run: its columns (caption included) replace
  the catalog's, a column gone from the CSV is dropped, an edited value is updated. The split is the
  exception: a catalog's split stays when the CSV has none (`--split ... --resplit` draws it again).
- Without a CSV (--images alone) the catalog's metadata stays as it is, and new images come bare.
- Rows no longer in this run's folder or CSV are kept as they were, unless `prune` (`--prune`).
- `--split` draws a split for the rows that have none (all of them with `--resplit`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from clip_arena.core.errors import UserError
from clip_arena.index.catalog import CAPTION, GROUP_COLUMNS, ID, RESERVED, SPLIT, SUFFIX, URI, Catalog
from clip_arena.index.split import SplitPlan, draw


@dataclass
class RowPlan:
    kept: list[int]  # rows of the old catalog written again with their vectors, in their order
    kept_meta: pa.Table  # those rows' columns without vectors, as they will be written
    new_items: list  # ImageItems to embed: never seen, or their image_uri changed
    columns: list[str]  # metadata columns besides image_id, image_uri and caption, in output order
    reembedded: int = 0
    absent: int = 0  # rows of the old catalog not in this run's inputs (kept unless pruned)
    pruned: int = 0
    updated: int = 0  # kept rows whose metadata changed
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: Counter = field(default_factory=Counter)  # column -> kept rows whose value changed
    refreshed: bool = True  # metadata taken from this run's inputs (a CSV was given)
    split_note: str | None = None

    def metadata_summary(self) -> str:
        """'metadata updated on 40: split added, caption changed on 3, style removed'"""
        if not self.kept:
            return ""
        parts = [f"{c} added" for c in self.added] + [f"{c} changed on {n:,}" for c, n in self.changed.items()
                                                       if c not in self.added and c not in self.removed and n]
        parts += [f"{c} removed" for c in self.removed]
        if not self.updated:
            return "metadata unchanged" if self.refreshed else "metadata kept (no --metadata CSV)"
        return f"metadata updated on {self.updated:,}: " + ", ".join(parts)


def _norm(value):
    return None if value is None or value == "" else value


def item_columns(items: list) -> list[str]:
    columns = sorted({k for it in items for k in it.extra})
    return ([SPLIT] if SPLIT in columns else []) + [c for c in columns if c != SPLIT]


def plan_rows(items: list, uris: list[str], old: Catalog | None, *, refresh: bool = True, prune: bool = False,
              split: SplitPlan | None = None) -> RowPlan:
    """`items` with their stored `uris`, against the catalog already there (`old`, or None)."""
    old_meta_cols = [] if old is None else [f.name for f in old.table.schema
                                            if f.name not in (ID, URI, CAPTION) and not f.name.endswith(SUFFIX)]
    if refresh or old is None:
        columns = item_columns(items)
        if old is not None and SPLIT in old_meta_cols and SPLIT not in columns:
            columns.insert(0, SPLIT)  # the catalog's split stays when the CSV has none
    else:
        columns = ([SPLIT] if SPLIT in old_meta_cols else []) + [c for c in old_meta_cols if c != SPLIT]
        columns += [c for c in item_columns(items) if c not in columns]
    plan = RowPlan([], pa.table({}), [], columns, refreshed=refresh)
    old_values: dict[str, list] = {}
    position: dict[int, int] = {}  # old row -> item index, for rows this run names with the same image_uri
    if old is not None:
        old_ids, old_uris = old.ids, old.table.column(URI).to_pylist()
        index = {image_id: row for row, image_id in enumerate(old_ids)}
        named = set()
        for i, it in enumerate(items):
            row = index.get(it.image_id)
            named.add(it.image_id)
            if row is not None and old_uris[row] == uris[i]:
                position[row] = i
            else:
                plan.new_items.append(it)
                plan.reembedded += row is not None
        absent = [r for r, image_id in enumerate(old_ids) if image_id not in named]
        plan.absent = len(absent)
        plan.pruned = len(absent) if prune else 0
        plan.kept = sorted([*position, *([] if prune else absent)])
        for name in [CAPTION, *old_meta_cols]:
            if name in old.table.column_names:
                values = old.table.column(name).to_pylist()
                old_values[name] = [values[r] for r in plan.kept]
    else:
        plan.new_items = list(items)
    # Every kept row's values, column by column: this run's where it names the row and refreshes.
    values: dict[str, list] = {}
    csv_split = SPLIT in item_columns(items)
    for name in [CAPTION, *columns]:
        before = old_values.get(name, [None] * len(plan.kept))
        after = []
        for row, old_value in zip(plan.kept, before):
            i = position.get(row)
            from_run = refresh and i is not None and (name != SPLIT or csv_split)
            if from_run:
                it = items[i]
                after.append(it.caption if name == CAPTION else it.extra.get(name))
            else:
                after.append(None if old_value is None else old_value if not refresh else str(old_value))
        values[name] = after
    if split is not None:
        plan.split_note = _draw_split(plan, values, columns, split)
    if SPLIT in values and SPLIT not in columns:
        columns.insert(0, SPLIT)
    plan.columns = columns
    _count_changes(plan, old_values, values, old_meta_cols)
    types = {} if (refresh or old is None) else {f.name: f.type for f in old.table.schema}
    arrays = {ID: pa.array([old.ids[r] for r in plan.kept] if old is not None else [], pa.string()),
              URI: pa.array([old_uris[r] for r in plan.kept] if old is not None else [], pa.string())}
    for name in [CAPTION, *columns]:
        arrays[name] = pa.array(values[name], pa.string() if name in (CAPTION, SPLIT) else types.get(name, pa.string()))
    plan.kept_meta = pa.table(arrays)
    return plan


def _count_changes(plan: RowPlan, old_values: dict, values: dict, old_meta_cols: list[str]) -> None:
    if not plan.kept:
        return
    names = [CAPTION, *plan.columns]
    plan.added = [c for c in plan.columns if c not in old_meta_cols]
    plan.removed = [c for c in old_meta_cols if c not in plan.columns]
    changed_rows = set()
    for name in names + plan.removed:
        before = old_values.get(name, [None] * len(plan.kept))
        after = values.get(name, [None] * len(plan.kept))
        rows = {k for k, (a, b) in enumerate(zip(before, after))
                if _norm(None if a is None else str(a)) != _norm(None if b is None else str(b))}
        if rows:
            plan.changed[name] = len(rows)
            changed_rows |= rows
    plan.updated = len(changed_rows)


def _column_values(name: str, values: dict, new_items: list, option: str, columns: list[str]) -> list:
    if name not in values:
        raise UserError(f"{option} {name!r}: the catalog has no such column (it has "
                        f"{', '.join(c for c in columns if c != SPLIT) or 'no metadata columns'}).")
    return values[name] + [it.extra.get(name) for it in new_items]


def _draw_split(plan: RowPlan, values: dict, columns: list[str], split: SplitPlan) -> str:
    """Fill the split of rows without one (every row when split.redraw); say what was done."""
    n_kept = len(plan.kept)
    current = values.get(SPLIT, [None] * n_kept) + [it.extra.get(SPLIT) for it in plan.new_items]
    strata = _column_values(split.stratify, values, plan.new_items, "--split-by", columns) if split.stratify else None
    group = split.group or next((c for c in GROUP_COLUMNS if c in values), None)
    groups = _column_values(group, values, plan.new_items, "--group-by", columns) if group else None
    missing = sum(1 for c in current if not c)
    if not missing and not split.redraw:
        counts = Counter(current)
        return (f"split kept: the catalog already has one ({', '.join(f'{s} {counts[s]:,}' for s in ('train', 'val', 'test') if counts[s])}); "
                "--resplit draws it again")
    drawn = draw(len(current), split, strata, groups, current)
    values[SPLIT] = drawn[:n_kept]
    for it, value in zip(plan.new_items, drawn[n_kept:]):
        it.extra = {**it.extra, SPLIT: value}
    how = [f"seed {split.seed}"] + ([f"stratified by {split.stratify}"] if strata else []) + \
        ([f"grouped by {group}" + ("" if split.group else " (found in the catalog; --group-by to choose another)")]
         if groups else [])
    which = "every row" + (" (--resplit)" if split.redraw else "") if split.redraw or missing == len(current) else \
        f"{missing:,} rows without one (the others keep theirs)"
    return f"split {split.text} drawn for {which}, {', '.join(how)}"

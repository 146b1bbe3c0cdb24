"""Vote export and import as CSV with the DESIGN columns, so votes gathered on several machines
can be merged. Import is all or nothing: one bad row or one known vote id imports nothing."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime
from pathlib import Path

from clip_arena.core.errors import UserError
from clip_arena.core.spreadsheet import neutralise, restore, safe_writer
from clip_arena.votes.choices import Choice
from clip_arena.votes.store import VOTE_COLUMNS, VoteStore

# Files written before the `blind` column have the other columns in the same order: their votes were blind.
LEGACY_COLUMNS = VOTE_COLUMNS[:-1]
BOOL_CELLS = {"true": True, "false": False}


def vote_cell(value) -> str:
    """A vote field as a CSV cell: booleans as true/false, formulas neutralised."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralise(value)


def export_csv(store: VoteStore, path: str | Path) -> int:
    votes = store.votes(include_undone=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = safe_writer(f)  # every cell quoted: a `;`-locale spreadsheet cannot split one
        writer.writerow(VOTE_COLUMNS)
        for v in votes:
            writer.writerow([vote_cell(v[c]) for c in VOTE_COLUMNS])
    return len(votes)


def _check_row(line: int, row: dict) -> tuple:
    def fail(why: str):
        raise UserError(f"Row {line}: {why}; nothing was imported.")

    values = {c: restore(row.get(c) or "") for c in VOTE_COLUMNS}
    blind = BOOL_CELLS.get(values["blind"].strip().lower()) if "blind" in row else True
    if blind is None:
        fail(f"blind {values['blind']!r} is not true or false")
    for required in ("vote_id", "created_at", "round_id", "query_id", "method_left", "method_right", "choice"):
        if not values[required].strip():
            fail(f"{required} is empty")
    if values["choice"] not in {c.value for c in Choice}:
        fail(f"choice {values['choice']!r} is not one of {', '.join(c.value for c in Choice)}")
    for stamp in ("created_at", "undone_at"):
        if values[stamp]:
            try:
                datetime.fromisoformat(values[stamp])
            except ValueError:
                fail(f"{stamp} {values[stamp]!r} is not an ISO date-time")
    for side in ("results_left", "results_right"):
        try:
            parsed = json.loads(values[side])
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            fail(f"{side} must be a JSON array of image ids")
    ints = {}
    for col in ("display_ms", "overlap"):
        try:
            ints[col] = int(values[col]) if values[col] else None
        except ValueError:
            fail(f"{col} {values[col]!r} is not a whole number")
    if ints["overlap"] is None:
        fail("overlap is empty")
    typed = {**values, **ints, "undone_at": values["undone_at"] or None, "blind": int(blind)}
    return tuple(typed[c] for c in VOTE_COLUMNS)


def read_vote_rows(path: str | Path, torn_tail: bool = False) -> list[tuple]:
    """The checked rows of a vote CSV, as tuples of VOTE_COLUMNS. `torn_tail`: a last record cut
    short (no final newline, as a crash mid-append leaves it) is left out instead of refused."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as err:
        raise UserError(f"Cannot read {path}: {err.strerror}.") from err
    except UnicodeDecodeError as err:
        raise UserError(f"{path.name} is not UTF-8 text; save it as CSV UTF-8 and import it again.") from err
    if torn_tail and text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) not in (VOTE_COLUMNS, LEGACY_COLUMNS):
        raise UserError(f"{path} does not have the vote columns in order: {', '.join(VOTE_COLUMNS)} "
                        "(blind may be left out).")
    return [_check_row(line, row) for line, row in enumerate(reader, start=2)]


def import_csv(store: VoteStore, path: str | Path) -> int:
    path = Path(path)
    rows = read_vote_rows(path)
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if row[0] in seen:
            raise UserError(f"Row {line}: vote_id {row[0]} repeats row {seen[row[0]]}; nothing was imported.")
        seen[row[0]] = line
    placeholders = ", ".join("?" * len(VOTE_COLUMNS))
    try:
        with store.transaction() as conn:
            known = {r[0] for r in conn.execute("SELECT vote_id FROM votes")}
            clash = next((i for i, r in enumerate(rows) if r[0] in known), None)
            if clash is not None:
                raise UserError(f"Row {clash + 2}: vote_id {rows[clash][0]} is already in {store.path}; "
                                "nothing was imported.")
            conn.executemany(f"INSERT INTO votes ({', '.join(VOTE_COLUMNS)}) VALUES ({placeholders})", rows)
    except sqlite3.IntegrityError as err:
        raise UserError(f"A round in {path} already has a vote in {store.path} ({err}); nothing was imported.") from err
    return len(rows)


UNDONE_AT = VOTE_COLUMNS.index("undone_at")


def merge_rows(store: VoteStore, rows: list[tuple]) -> tuple[int, int]:
    """Merge vote rows gathered from logs (the same vote may appear more than once: cast, then
    undone) into the store, de-duplicated by vote id: unknown votes are added, a known live vote
    that a row marks undone is marked undone. Returns (votes added, votes marked undone)."""
    latest: dict[str, tuple] = {}
    for row in rows:  # an undone row wins over the live one, whatever the order
        seen = latest.get(row[0])
        if seen is None or (row[UNDONE_AT] and not seen[UNDONE_AT]):
            latest[row[0]] = row
    placeholders = ", ".join("?" * len(VOTE_COLUMNS))
    added = undone = 0
    with store.transaction() as conn:
        known = {r[0]: r[1] for r in conn.execute("SELECT vote_id, undone_at FROM votes")}
        for vote_id, row in latest.items():
            if vote_id not in known:
                # OR IGNORE: a round voted under another vote id (never made by the app) is left as it is.
                cur = conn.execute(f"INSERT OR IGNORE INTO votes ({', '.join(VOTE_COLUMNS)}) VALUES ({placeholders})",
                                   row)
                added += cur.rowcount
            elif row[UNDONE_AT] and not known[vote_id]:
                conn.execute("UPDATE votes SET undone_at = ? WHERE vote_id = ?", (row[UNDONE_AT], vote_id))
                undone += 1
    return added, undone

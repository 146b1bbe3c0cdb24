"""Vote export and import as CSV with the DESIGN columns, so votes gathered on several machines
can be merged. Import is all or nothing: one bad row or one known vote id imports nothing."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from clip_arena.core.bounded_csv import read_records
from clip_arena.core.errors import UserError
from clip_arena.core.spreadsheet import neutralise, restore, safe_writer
from clip_arena.votes.choices import Choice
from clip_arena.votes.names import name_problem
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


# Bounds on what a vote row may carry (anything the app wrote fits far inside them).
ID_MAX = 256  # vote, round, session and query ids, method names
RESULTS_MAX = 64 * 1024  # a JSON list of result image ids
DISPLAY_MS_MAX = 24 * 3600 * 1000  # a day on screen
OVERLAP_MAX = 10_000
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
FUTURE_SLACK = timedelta(days=1)  # clocks differ; a vote from next year would count against a cap for a year


class BadRow(ValueError):
    """Why one vote row cannot be taken (a sentence without the row number)."""


def parse_stamp(name: str, value: str, now: datetime) -> datetime:
    """An aware ISO date-time between 2000 and a day from now, or BadRow."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadRow(f"{name} {value[:40]!r} is not an ISO date-time") from None
    if len(value) <= 10 or when.tzinfo is None:
        raise BadRow(f"{name} {value[:40]!r} needs a time and a time zone (as 2026-01-31T12:00:00+00:00)")
    if not EARLIEST <= when <= now + FUTURE_SLACK:
        raise BadRow(f"{name} {value[:40]!r} is not between 2000 and today")
    return when


def _whole(name: str, value: str, top: int) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 12 or int(value) > top:
        raise BadRow(f"{name} {value[:40]!r} is not a whole number from 0 to {top:,}")
    return int(value)


def check_vote_row(cells: list[str], header: tuple[str, ...], now: datetime | None = None) -> tuple:
    """The row as a tuple of VOTE_COLUMNS, or BadRow saying why not."""
    if len(cells) != len(header):
        raise BadRow(f"it has {len(cells)} cells where the header has {len(header)}")
    values = dict.fromkeys(VOTE_COLUMNS, "")
    values.update({c: restore(v) for c, v in zip(header, cells)})
    blind = BOOL_CELLS.get(values["blind"].strip().lower()) if "blind" in header else True
    if blind is None:
        raise BadRow(f"blind {values['blind'][:40]!r} is not true or false")
    for required in ("vote_id", "created_at", "round_id", "query_id", "method_left", "method_right", "choice"):
        if not values[required].strip():
            raise BadRow(f"{required} is empty")
    for name in ("vote_id", "session_id", "round_id", "query_id", "method_left", "method_right"):
        if len(values[name]) > ID_MAX:
            raise BadRow(f"{name} is longer than {ID_MAX} characters")
    if values["method_left"] == values["method_right"]:  # the arena never shows one; it would count as a win
        raise BadRow(f"method_left and method_right are both {values['method_left'][:40]!r}: a vote of a method "
                     "against itself says nothing about it")
    problem = name_problem(values["annotator"])
    if problem:
        raise BadRow(f"annotator {values['annotator'][:40]!r}: {problem}")
    if values["choice"] not in {c.value for c in Choice}:
        raise BadRow(f"choice {values['choice'][:40]!r} is not one of {', '.join(c.value for c in Choice)}")
    now = now or datetime.now(timezone.utc)
    created = parse_stamp("created_at", values["created_at"], now)
    if values["undone_at"] and parse_stamp("undone_at", values["undone_at"], now) < created:
        raise BadRow("undone_at is before created_at")
    for side in ("results_left", "results_right"):
        parsed = None
        if len(values[side]) <= RESULTS_MAX:
            try:
                parsed = json.loads(values[side])
            except (ValueError, RecursionError):
                pass
        if not isinstance(parsed, list) or not all(isinstance(x, str) and len(x) <= ID_MAX for x in parsed):
            raise BadRow(f"{side} must be a JSON array of image ids")
    ints = {"display_ms": _whole("display_ms", values["display_ms"], DISPLAY_MS_MAX),
            "overlap": _whole("overlap", values["overlap"], OVERLAP_MAX)}
    if ints["overlap"] is None:
        raise BadRow("overlap is empty")
    typed = {**values, **ints, "undone_at": values["undone_at"] or None, "blind": int(blind)}
    return tuple(typed[c] for c in VOTE_COLUMNS)


def read_rows(path: str | Path, headers: tuple[tuple[str, ...], ...], columns: str, check, torn_tail: bool = False,
              skipped: list[str] | None = None) -> list[tuple]:
    """The rows of a CSV the app wrote or was given, read within bounds (core.bounded_csv), each
    through `check(cells, header)` (a tuple, or BadRow). The header must be one of `headers`
    (`columns` says which, for the error). A bad
    row raises UserError (an import is all or nothing), or, given a `skipped` list, is left out with
    a sentence added to it (a log read back at start: one bad row never stops the app).
    `torn_tail`: a last record cut short by a crash is left out."""
    path = Path(path)
    header: tuple[str, ...] | None = None
    rows = []
    for record in read_records(path, torn_tail=torn_tail):
        if header is None:
            header = tuple(record.cells or ())
            if header not in headers:
                raise UserError(f"{path} does not have {columns}.")
            continue
        why = record.problem
        if why is None:
            try:
                rows.append(check(record.cells, header))
                continue
            except BadRow as err:
                why = str(err)
        if skipped is None:
            raise UserError(f"Row {record.line}: {why}; nothing was imported.")
        skipped.append(f"{path.name}, line {record.line}: {why}")
    if header is None:
        raise UserError(f"{path} is empty: it has no header row.")
    return rows


def read_vote_rows(path: str | Path, torn_tail: bool = False, skipped: list[str] | None = None) -> list[tuple]:
    """The checked rows of a vote CSV, as tuples of VOTE_COLUMNS (read_rows)."""
    return read_rows(path, (VOTE_COLUMNS, LEGACY_COLUMNS),
                     f"the vote columns in order: {', '.join(VOTE_COLUMNS)} (blind may be left out)", check_vote_row,
                     torn_tail, skipped)


def import_csv(store: VoteStore, path: str | Path, allow_other_catalog: bool = False) -> int:
    """Add the votes of a vote CSV, all or nothing. Votes of another catalog (a method name that
    stands for other embeddings than in the store's votes, or a CSV that mixes catalogs) are refused
    unless `allow_other_catalog`: pooled, they would make one verdict of two experiments."""
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
            if not allow_other_catalog:
                _check_same_catalog(conn, store.path, path, rows)
            conn.executemany(f"INSERT INTO votes ({', '.join(VOTE_COLUMNS)}) VALUES ({placeholders})", rows)
    except sqlite3.IntegrityError as err:
        raise UserError(f"A round in {path} already has a vote in {store.path} ({err}); nothing was imported.") from err
    return len(rows)


UNDONE_AT = VOTE_COLUMNS.index("undone_at")
FINGERPRINT = VOTE_COLUMNS.index("catalog_fingerprint")


def _check_same_catalog(conn, store_path: Path, csv_path: Path, rows: list[tuple]) -> None:
    from clip_arena.votes.fingerprints import clashes, methods_of

    have = {r[0] for r in conn.execute("SELECT DISTINCT catalog_fingerprint FROM votes")}
    incoming = {r[FINGERPRINT] for r in rows}
    found = clashes(have | incoming)
    if not found:
        return
    method, digests = next(iter(found.items()))
    named = f"method {method}" if method else "the catalog"
    mine = {methods_of(fp).get(method) for fp in have} & digests
    if mine:
        theirs = sorted(d for d in digests if d not in mine)
        where = (f"{csv_path.name} holds votes cast on another catalog: {named} has other embeddings there "
                 f"({', '.join(theirs)}) than in {store_path.name} ({', '.join(sorted(mine))})")
    else:
        where = f"{csv_path.name} mixes votes of {len(digests)} catalogs ({named}: {', '.join(sorted(digests))})"
    raise UserError(f"{where}; nothing was imported. A verdict over both would pool two experiments: import "
                    "into a store of its own (--votes other.db), or pass --allow-other-catalog to pool them "
                    "(stats then warns).")


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

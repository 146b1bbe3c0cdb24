"""The vote store: SQLite in WAL mode with synchronous=FULL, so a vote acknowledged on screen is on disk.

Rows are never deleted: undo stamps `undone_at`. A round can carry at most one vote (UNIQUE
round_id), so a double click or a replayed request cannot count twice. Every browser session and
process opens its own connection; SQLite's locking makes concurrent writers safe.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from clip_arena.core.errors import UserError
from clip_arena.core.version import __version__
from clip_arena.votes.choices import Choice, RoundStatus

VOTE_COLUMNS = ("vote_id", "created_at", "annotator", "session_id", "round_id", "query_id", "method_left",
                "method_right", "results_left", "results_right", "choice", "display_ms", "overlap",
                "catalog_fingerprint", "app_version", "undone_at", "blind")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rounds (
    round_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    annotator TEXT NOT NULL,
    session_id TEXT NOT NULL,
    query_id TEXT NOT NULL,
    method_left TEXT NOT NULL,
    method_right TEXT NOT NULL,
    results_left TEXT NOT NULL,
    results_right TEXT NOT NULL,
    overlap INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s.value) for s in RoundStatus)})),
    catalog_fingerprint TEXT NOT NULL,
    app_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    vote_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    annotator TEXT NOT NULL,
    session_id TEXT NOT NULL,
    round_id TEXT NOT NULL UNIQUE,
    query_id TEXT NOT NULL,
    method_left TEXT NOT NULL,
    method_right TEXT NOT NULL,
    results_left TEXT NOT NULL,
    results_right TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ({", ".join(repr(c.value) for c in Choice)})),
    display_ms INTEGER,
    overlap INTEGER NOT NULL,
    catalog_fingerprint TEXT NOT NULL,
    app_version TEXT NOT NULL,
    undone_at TEXT,
    blind INTEGER NOT NULL DEFAULT 1 CHECK (blind IN (0, 1))
);
CREATE INDEX IF NOT EXISTS votes_session ON votes (session_id, created_at);
CREATE INDEX IF NOT EXISTS votes_annotator ON votes (annotator, created_at);
CREATE TABLE IF NOT EXISTS vote_flags (
    vote_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    flagged_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_query ON votes (query_id);
"""
# Flags (a vote cast faster than the display-time floor) live in a table of their own, so the vote
# rows and the vote CSV keep DESIGN's columns.
FLAG_COLUMNS = ("vote_id", "reason", "flagged_at")
# Stores made before the column existed: every vote in them was cast blind.
ADD_BLIND = "ALTER TABLE votes ADD COLUMN blind INTEGER NOT NULL DEFAULT 1 CHECK (blind IN (0, 1))"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class DuplicateVote(UserError):
    """This round already has a vote."""


@dataclass
class ShownRound:
    """What the store needs to know about a round shown to an annotator."""

    round_id: str
    annotator: str
    session_id: str
    query_id: str
    method_left: str
    method_right: str
    results_left: list[str]
    results_right: list[str]
    overlap: int
    catalog_fingerprint: str
    blind: bool = True  # False when the annotator had seen this round's methods (reveal, then undo)


class VoteStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Called after each commit with what changed: ("votes", row) for a new or undone vote (a dict
        # of VOTE_COLUMNS), ("flags", row) for a flag (FLAG_COLUMNS): the durable vote log listens here.
        self.listeners: list = []
        try:
            self._create()
        except sqlite3.DatabaseError as err:  # a catalog or a CSV given as --votes, a damaged file
            raise UserError(f"{self.path} is not a vote store (an SQLite file written by clip-arena): {err}.") from None

    def _create(self) -> None:
        with self.transaction() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(votes)")}
            if "blind" not in columns:
                conn.execute(ADD_BLIND)

    def _connect(self) -> sqlite3.Connection:
        """One connection per thread (Gradio runs handlers on a thread pool)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT; with synchronous=FULL the commit returns after fsync."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- rounds --------------------------------------------------------------------------
    @staticmethod
    def _insert_round(conn, r: ShownRound, status: RoundStatus) -> None:
        conn.execute(
            "INSERT INTO rounds VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (r.round_id, utc_now(), r.annotator, r.session_id, r.query_id, r.method_left, r.method_right,
             json.dumps(r.results_left), json.dumps(r.results_right), r.overlap, status.value,
             r.catalog_fingerprint, __version__),
        )

    def record_round(self, r: ShownRound, status: RoundStatus = RoundStatus.SHOWN) -> None:
        self.record_rounds([(r, status)])

    def record_rounds(self, rounds: list[tuple[ShownRound, RoundStatus]]) -> None:
        with self.transaction() as conn:
            for r, status in rounds:
                self._insert_round(conn, r, status)

    def set_round_status(self, round_id: str, status: RoundStatus) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE rounds SET status = ? WHERE round_id = ?", (status.value, round_id))

    # -- votes ---------------------------------------------------------------------------
    def record_vote(self, r: ShownRound, choice: Choice | str, display_ms: int | None,
                    then: list[tuple[ShownRound, RoundStatus]] = (), flag: str | None = None) -> str:
        """Store one vote, and the rounds shown next, in one transaction (one fsync); return the
        vote id once it is on disk. A second vote for the same round is refused. `flag`: why the
        vote is flagged for review (kept, counted, and listed in vote_flags)."""
        choice = Choice.parse(choice) if isinstance(choice, str) else choice
        vote_id = uuid.uuid4().hex
        values = (vote_id, utc_now(), r.annotator, r.session_id, r.round_id, r.query_id, r.method_left,
                  r.method_right, json.dumps(r.results_left), json.dumps(r.results_right), choice.value,
                  display_ms, r.overlap, r.catalog_fingerprint, __version__, None, int(bool(r.blind)))
        flag_row = (vote_id, flag, values[1]) if flag else None
        try:
            with self.transaction() as conn:
                conn.execute(
                    f"INSERT INTO votes ({', '.join(VOTE_COLUMNS)}) VALUES ({', '.join('?' * len(VOTE_COLUMNS))})",
                    values)
                conn.execute("UPDATE rounds SET status = ? WHERE round_id = ?", (RoundStatus.VOTED.value, r.round_id))
                for shown, status in then:
                    self._insert_round(conn, shown, status)
                if flag_row:
                    conn.execute("INSERT INTO vote_flags VALUES (?,?,?)", flag_row)
        except sqlite3.IntegrityError as err:
            raise DuplicateVote(f"Round {r.round_id} already has a vote.") from err
        self._tell("votes", {**dict(zip(VOTE_COLUMNS, values)), "blind": bool(r.blind)})
        if flag_row:
            self._tell("flags", dict(zip(FLAG_COLUMNS, flag_row)))
        return vote_id

    def _tell(self, kind: str, row: dict) -> None:
        for listener in self.listeners:
            listener(kind, row)

    def votes_since(self, annotator: str, since: str) -> int:
        """Live votes of this annotator cast at or after the UTC time `since` (ISO text)."""
        row = self._connect().execute(
            "SELECT COUNT(*) FROM votes WHERE annotator = ? AND created_at >= ? AND undone_at IS NULL",
            (annotator, since)).fetchone()
        return row[0]

    def flag_rows(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self._connect().execute(f"SELECT {', '.join(FLAG_COLUMNS)} FROM vote_flags")]

    def merge_flags(self, rows: list[tuple]) -> int:
        """Add flags (FLAG_COLUMNS tuples) not yet known; returns how many were new."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO vote_flags VALUES (?,?,?)", rows)
            return conn.total_changes - before

    def flags(self) -> dict[str, str]:
        """{vote_id: reason} of every flagged vote."""
        return {r[0]: r[1] for r in self._connect().execute("SELECT vote_id, reason FROM vote_flags")}

    def undo_last(self, session_id: str) -> sqlite3.Row | None:
        """Mark this session's latest live vote undone; return it (None if there is none)."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM votes WHERE session_id = ? AND undone_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (session_id,),
            ).fetchone()
            if row is not None:
                undone_at = utc_now()
                conn.execute("UPDATE votes SET undone_at = ? WHERE vote_id = ?", (undone_at, row["vote_id"]))
        if row is not None:
            self._tell("votes", {**_vote(row), "undone_at": undone_at})
        return row

    # -- reading -------------------------------------------------------------------------
    def votes(self, include_undone: bool = True) -> list[dict]:
        """Every vote as a dict of VOTE_COLUMNS; `blind` is a bool."""
        where = "" if include_undone else " WHERE undone_at IS NULL"
        rows = self._connect().execute(f"SELECT {', '.join(VOTE_COLUMNS)} FROM votes{where} ORDER BY created_at, rowid")
        return [_vote(r) for r in rows]

    def rounds(self) -> list[dict]:
        return [dict(r) for r in self._connect().execute("SELECT * FROM rounds ORDER BY created_at, rowid")]

    def votes_per_query(self, annotator: str | None = None) -> dict[str, int]:
        """Live votes per query: everyone's, or one annotator's."""
        where, args = ("AND annotator = ?", (annotator,)) if annotator is not None else ("", ())
        rows = self._connect().execute(
            f"SELECT query_id, COUNT(*) FROM votes WHERE undone_at IS NULL {where} GROUP BY query_id", args)
        return {q: n for q, n in rows}

    def rounds_per_pair(self) -> dict[tuple[str, str], int]:
        rows = self._connect().execute(
            "SELECT method_left, method_right, COUNT(*) FROM rounds GROUP BY method_left, method_right")
        out: dict[tuple[str, str], int] = {}
        for left, right, n in rows:
            key = tuple(sorted((left, right)))
            out[key] = out.get(key, 0) + n
        return out

    def session_votes(self, session_id: str) -> list[dict]:
        rows = self._connect().execute(
            "SELECT * FROM votes WHERE session_id = ? AND undone_at IS NULL ORDER BY created_at, rowid", (session_id,))
        return [_vote(r) for r in rows]

    def auto_skipped(self, fingerprint: str) -> list[tuple[str, str, str]]:
        """(query_id, method_left, method_right) of the identical-list rounds found on this catalog."""
        rows = self._connect().execute(
            "SELECT DISTINCT query_id, method_left, method_right FROM rounds WHERE status = ? AND catalog_fingerprint = ?",
            (RoundStatus.AUTO_SKIPPED.value, fingerprint))
        return [tuple(r) for r in rows]


def _vote(row: sqlite3.Row) -> dict:
    """A vote row as a dict, `blind` as a bool."""
    out = dict(row)
    if "blind" in out:
        out["blind"] = bool(out["blind"])
    return out

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

from core.errors import UserError
from core.version import __version__
from votes.choices import Choice, RoundStatus

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
CREATE INDEX IF NOT EXISTS votes_query ON votes (query_id);
"""
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
                    then: list[tuple[ShownRound, RoundStatus]] = ()) -> str:
        """Store one vote, and the rounds shown next, in one transaction (one fsync); return the
        vote id once it is on disk. A second vote for the same round is refused."""
        choice = Choice.parse(choice) if isinstance(choice, str) else choice
        vote_id = uuid.uuid4().hex
        try:
            with self.transaction() as conn:
                conn.execute(
                    f"INSERT INTO votes ({', '.join(VOTE_COLUMNS)}) VALUES ({', '.join('?' * len(VOTE_COLUMNS))})",
                    (vote_id, utc_now(), r.annotator, r.session_id, r.round_id, r.query_id, r.method_left,
                     r.method_right, json.dumps(r.results_left), json.dumps(r.results_right), choice.value,
                     display_ms, r.overlap, r.catalog_fingerprint, __version__, None, int(bool(r.blind))),
                )
                conn.execute("UPDATE rounds SET status = ? WHERE round_id = ?", (RoundStatus.VOTED.value, r.round_id))
                for shown, status in then:
                    self._insert_round(conn, shown, status)
        except sqlite3.IntegrityError as err:
            raise DuplicateVote(f"Round {r.round_id} already has a vote.") from err
        return vote_id

    def undo_last(self, session_id: str) -> sqlite3.Row | None:
        """Mark this session's latest live vote undone; return it (None if there is none)."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM votes WHERE session_id = ? AND undone_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (session_id,),
            ).fetchone()
            if row is not None:
                conn.execute("UPDATE votes SET undone_at = ? WHERE vote_id = ?", (utc_now(), row["vote_id"]))
        return row

    # -- reading -------------------------------------------------------------------------
    def votes(self, include_undone: bool = True) -> list[dict]:
        """Every vote as a dict of VOTE_COLUMNS; `blind` is a bool."""
        where = "" if include_undone else " WHERE undone_at IS NULL"
        rows = self._connect().execute(f"SELECT {', '.join(VOTE_COLUMNS)} FROM votes{where} ORDER BY created_at, rowid")
        return [_vote(r) for r in rows]

    def rounds(self) -> list[dict]:
        return [dict(r) for r in self._connect().execute("SELECT * FROM rounds ORDER BY created_at, rowid")]

    def votes_per_query(self) -> dict[str, int]:
        rows = self._connect().execute(
            "SELECT query_id, COUNT(*) FROM votes WHERE undone_at IS NULL GROUP BY query_id")
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

"""Votes that survive a restart: every vote is appended to this replica's vote log (the export's
columns) in a local staging folder, and the log is pushed to a durable target that outlives the
machine. SQLite stays the live store on local disk; at start the target is merged back into it.

Two targets behind one interface (VoteTarget):
- FolderTarget: a mounted folder (a storage bucket). Such mounts have no file locking and
  last-writer-wins semantics, so nothing there is ever appended to or rewritten: each push writes
  a new file, named for this replica and a sequence number, written aside and renamed when closed.
- HubTarget: a dataset repo, pushed by huggingface_hub's CommitScheduler; each replica writes
  files of its own (votes-<replica>.csv, flags-<replica>.csv), append-only as the scheduler expects.
"""

from __future__ import annotations

import atexit
import io
import os
import socket
import tempfile
import threading
import uuid
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from pathlib import Path

from clip_arena.core.bounded_csv import read_records
from clip_arena.core.errors import UserError
from clip_arena.core.spreadsheet import restore as restore_cell, safe_writer
from clip_arena.votes.store import FLAG_COLUMNS, VOTE_COLUMNS, VoteStore
from clip_arena.votes.transfer import (ID_MAX, UNDONE_AT, BadRow, merge_rows, parse_stamp, read_rows, read_vote_rows,
                                      vote_cell)

KINDS = {"votes": VOTE_COLUMNS, "flags": FLAG_COLUMNS}
HUB_PREFIXES = ("hf://datasets/", "hf:", "dataset:")  # the longest first


def replica_id() -> str:
    """A name no other replica (or earlier run of this one) writes under."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{uuid.uuid4().hex[:8]}"


class VoteLog:
    """This replica's append-only logs in a local folder: votes-<replica>.csv and flags-<replica>.csv.
    A store listener: each committed vote, undo (the vote again, with undone_at) and flag is one row."""

    def __init__(self, folder: Path, replica: str, lock: threading.Lock | None = None):
        self.folder, self.replica = Path(folder), replica
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = lock or threading.Lock()
        self.after_append = None  # a target's hook (push at once, when it pushes on every vote)
        self.appended = 0

    def path(self, kind: str) -> Path:
        return self.folder / f"{kind}-{self.replica}.csv"

    def append(self, kind: str, row: dict) -> None:
        columns = KINDS[kind]
        buffer = io.StringIO()
        writer = safe_writer(buffer)  # as the export writes: every cell quoted
        with self.lock:
            path = self.path(kind)
            if not path.exists():
                writer.writerow(columns)
            writer.writerow([vote_cell(row.get(c)) for c in columns])
            with open(path, "a", encoding="utf-8", newline="") as f:
                f.write(buffer.getvalue())
            self.appended += 1
        if self.after_append is not None:
            self.after_append()

    def __call__(self, kind: str, row: dict) -> None:
        self.append(kind, row)


class VoteTarget(ABC):
    """Where the vote logs outlive this machine."""

    every_min: float  # minutes between pushes: what a restart can lose (0: every vote is pushed at once)
    log: VoteLog

    def __init__(self):
        self.last_push: datetime | None = None
        self.last_error: str | None = None

    @abstractmethod
    def describe(self) -> str:
        """Where the votes are kept, in words ("the dataset repo team/votes")."""

    @abstractmethod
    def fetch(self) -> list[Path]:
        """The log files the target holds, as local files to merge (raises UserError when unreachable)."""

    @abstractmethod
    def push(self) -> None:
        """Push what the log holds that the target does not, now."""

    def start(self) -> None:
        """Begin pushing every `every_min` minutes (a daemon thread)."""
        if self.every_min <= 0:
            self.log.after_append = self.push
            return
        stop = self._stop = threading.Event()
        atexit.register(self.push)  # a clean stop (a Space restart sends SIGTERM) pushes what is left

        def loop():
            while not stop.wait(self.every_min * 60):
                try:
                    self.push()
                except Exception as err:  # noqa: BLE001 - shown on the page; the next push tries again
                    self.last_error = str(err)

        threading.Thread(target=loop, daemon=True, name="vote-push").start()

    def close(self) -> None:
        """Stop the pushes, after a last one."""
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
        self.push()

    def _pushed(self) -> None:
        self.last_push, self.last_error = datetime.now(timezone.utc), None


class FolderTarget(VoteTarget):
    """A mounted folder: closed files only, each written once by one replica and never touched again."""

    def __init__(self, folder: str | Path, staging: Path, every_min: float = 1.0, replica: str | None = None):
        super().__init__()
        self.folder, self.every_min = Path(folder), every_min
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"Cannot use the vote folder {self.folder}: {err.strerror or err}.") from err
        self.log = VoteLog(staging, replica or replica_id())
        self._offsets = {kind: 0 for kind in KINDS}  # bytes of each log already written to the folder
        self._seq = 0
        self._push_lock = threading.Lock()

    def describe(self) -> str:
        return f"the folder {self.folder}"

    def fetch(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.glob("*.csv") if not p.name.startswith("."))
        except OSError as err:
            raise UserError(f"Cannot read the vote folder {self.folder}: {err.strerror or err}.") from err

    def push(self) -> None:
        with self._push_lock:
            for kind, columns in KINDS.items():
                path = self.log.path(kind)
                with self.log.lock:  # whole rows only: appends happen under this lock
                    if not path.exists():
                        continue
                    with open(path, "rb") as f:
                        f.seek(self._offsets[kind])
                        new = f.read()
                if self._offsets[kind] == 0:  # the header row is already in the log
                    header, new = b"", new
                else:
                    header = (",".join(columns) + "\n").encode()
                if not new.strip() or new == (",".join(columns) + "\n").encode():
                    continue
                self._seq += 1
                name = f"{kind}-{self.log.replica}-{self._seq:06d}.csv"
                self._write_closed(name, header + new)
                self._offsets[kind] += len(new)
            self._pushed()

    def _write_closed(self, name: str, data: bytes) -> None:
        """Written under a hidden name, flushed to disk, then renamed: a reader never sees half a file."""
        hidden = self.folder / f".{name}.part"
        with open(hidden, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(hidden, self.folder / name)


class HubTarget(VoteTarget):
    """A dataset repo on the Hugging Face Hub, pushed by CommitScheduler (every 5 minutes by default)."""

    def __init__(self, repo_id: str, staging: Path, every_min: float = 5.0, replica: str | None = None,
                 api=None, token: str | None = None):
        super().__init__()
        from huggingface_hub import HfApi

        # A commit per vote would hammer the hub: at most one a minute.
        self.repo_id, self.every_min = repo_id, max(every_min, 1.0)
        self.api = api or HfApi(token=token or os.environ.get("HF_TOKEN"))
        # Own folder per replica: the scheduler uploads what is in it, and only this replica writes there.
        replica = replica or replica_id()
        self.log = VoteLog(Path(staging) / replica, replica)
        self.scheduler = None

    def describe(self) -> str:
        return f"the dataset repo {self.repo_id}"

    def _unreachable(self, doing: str, err: Exception) -> UserError:
        why = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return UserError(f"Cannot reach the Hugging Face Hub to {doing} the dataset repo {self.repo_id} ({why}); "
                         "check the repo name, HF_TOKEN and the network, or keep votes in a mounted folder.")

    def fetch(self) -> list[Path]:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise UserError(f"Votes are to be kept in the dataset repo {self.repo_id}, but the hub is off "
                            "(HF_HUB_OFFLINE); unset it or keep votes in a mounted folder.")
        try:
            self.api.create_repo(self.repo_id, repo_type="dataset", private=True, exist_ok=True)
            local = Path(tempfile.mkdtemp(prefix="clip-arena-restore-"))
            self.api.snapshot_download(self.repo_id, repo_type="dataset", allow_patterns=["votes/*.csv"],
                                       local_dir=local)
        except Exception as err:  # noqa: BLE001 - any failure here is "cannot reach"
            raise self._unreachable("read", err) from err
        return sorted((local / "votes").glob("*.csv")) if (local / "votes").is_dir() else []

    def start(self) -> None:
        from huggingface_hub import CommitScheduler

        target = self

        class Scheduler(CommitScheduler):
            def push_to_hub(self):
                try:
                    info = super().push_to_hub()
                except Exception as err:
                    target.last_error = str(err)
                    raise
                target._pushed()
                return info

        try:
            self.scheduler = Scheduler(repo_id=self.repo_id, repo_type="dataset", folder_path=self.log.folder,
                                       path_in_repo="votes", every=self.every_min, private=True,
                                       allow_patterns=["*.csv"], hf_api=self.api)
        except Exception as err:  # noqa: BLE001
            raise self._unreachable("push to", err) from err
        self.log.lock = self.scheduler.lock  # appends and uploads never overlap (the scheduler's advice)

    def push(self) -> None:
        if self.scheduler is not None:
            self.scheduler.trigger().result()

    def close(self) -> None:
        if self.scheduler is not None:
            self.push()
            self.scheduler.stop()


def open_target(spec: str, staging: Path, every_min: float | None = None) -> VoteTarget:
    """`hf:OWNER/NAME` (or dataset:OWNER/NAME, hf://datasets/OWNER/NAME): a dataset repo; else a folder."""
    for prefix in HUB_PREFIXES:
        if spec.startswith(prefix):
            repo = spec[len(prefix):].strip("/")
            if repo.count("/") != 1 or not all(repo.split("/")):
                raise UserError(f"The vote target {spec!r} must name a dataset repo as hf:OWNER/NAME.")
            return HubTarget(repo, staging, 5.0 if every_min is None else every_min)
    return FolderTarget(spec, staging, 1.0 if every_min is None else every_min)


def restore(store: VoteStore, target: VoteTarget) -> dict:
    """Merge what the target holds into the store (vote ids de-duplicate), then log what the store
    holds that the target lacks (votes cast since the last push, before a crash), so it is pushed.
    Nothing the target holds stops a start: a file or row that cannot be read is left out, and
    `skipped` says which and why, one sentence each."""
    files = target.fetch()
    rows, flag_rows, skipped = [], [], []
    for path in files:
        try:
            if path.name.startswith("votes-"):
                rows.extend(read_vote_rows(path, torn_tail=True, skipped=skipped))
            elif path.name.startswith("flags-"):
                flag_rows.extend(read_rows(path, (FLAG_COLUMNS,), f"the flag columns in order: {', '.join(FLAG_COLUMNS)}",
                                           check_flag_row, True, skipped))
        except UserError as err:  # the whole file: not a regular file, no header ...
            skipped.append(f"{path.name}: {str(err).rstrip('.')}")
    added, undone = merge_rows(store, rows)
    flags_added = store.merge_flags(flag_rows)
    # What the target already has: a vote id, and whether it is undone there.
    held: dict[str, bool] = {}
    for row in rows:
        held[row[0]] = held.get(row[0], False) or bool(row[UNDONE_AT])
    held_flags = {r[0] for r in flag_rows}
    sent = 0
    for vote in store.votes(include_undone=True):
        if vote["vote_id"] not in held or (vote["undone_at"] and not held[vote["vote_id"]]):
            target.log.append("votes", vote)
            sent += 1
    for vote_id, reason, flagged_at in store.flag_rows():
        if vote_id not in held_flags:
            target.log.append("flags", {"vote_id": vote_id, "reason": reason, "flagged_at": flagged_at})
    return {"files": len(files), "added": added, "undone": undone, "flags": flags_added, "to_push": sent,
            "skipped": skipped}


FLAG_REASON_MAX = 1000


def check_flag_row(cells: list[str], header: tuple[str, ...]) -> tuple:
    """A flags row as a FLAG_COLUMNS tuple, or BadRow saying why not."""
    if len(cells) != len(header):
        raise BadRow("its cells do not match the header")
    vote_id, reason, flagged_at = (restore_cell(c) for c in cells)
    if not vote_id or len(vote_id) > ID_MAX or len(reason) > FLAG_REASON_MAX:
        raise BadRow("a vote id or reason is empty or too long")
    parse_stamp("flagged_at", flagged_at, datetime.now(timezone.utc))
    return vote_id, reason, flagged_at

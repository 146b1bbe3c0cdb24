"""The VLM tier's state file: every batch and where it stands, so a killed run resumes where it was.

States (the seed's machine, plus what the API reports on the way):

    prepared --upload--> uploaded --create--> in_progress --poll--> completed | failed | expired | cancelled
    prepared --its output written beside it by `vllm run-batch`--> completed
    completed | failed | expired | cancelled --outputs saved, rows not answered requeued--> merged

`in_progress` covers the API's validating, in_progress, finalizing and cancelling (kept in
`api_status`). A batch id is written before anything else happens to it, and `submitting` is set
before the create call, so a resume after a kill between the call and its answer finds the batch on
the server by its input file instead of paying for it twice. The file is replaced atomically
(tmp + os.replace): a kill leaves the old state or the new one, never half of one. No secret is ever
part of it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path

from clip_arena.core.errors import UserError

STATE_VERSION = 1


class Status(str, Enum):
    PREPARED = "prepared"
    UPLOADED = "uploaded"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    MERGED = "merged"


ENDED = (Status.COMPLETED, Status.FAILED, Status.EXPIRED, Status.CANCELLED)
TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    # completed straight away: answered without a server, by `vllm run-batch` on the request file.
    Status.PREPARED: (Status.UPLOADED, Status.COMPLETED),
    # A create call the server refuses for good (a bad file) fails the batch without an API batch.
    Status.UPLOADED: (Status.IN_PROGRESS, Status.FAILED),
    Status.IN_PROGRESS: (Status.IN_PROGRESS, *ENDED),
    **{ended: (Status.MERGED,) for ended in ENDED},
    Status.MERGED: (),
}
# The API's batch statuses and the state each one means here.
API_STATUS = {
    "validating": Status.IN_PROGRESS, "in_progress": Status.IN_PROGRESS, "finalizing": Status.IN_PROGRESS,
    "cancelling": Status.IN_PROGRESS, "completed": Status.COMPLETED, "failed": Status.FAILED,
    "expired": Status.EXPIRED, "cancelled": Status.CANCELLED,
}


class InvalidTransition(RuntimeError):
    pass


@dataclass
class Batch:
    name: str
    request_file: str  # relative to the state file's folder
    custom_ids: list[str]
    attempt: int = 1
    status: Status = Status.PREPARED
    api_status: str | None = None
    file_id: str | None = None
    batch_id: str | None = None
    submitting: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: dict | None = None
    errors: list[str] = field(default_factory=list)
    answers_file: str | None = None  # the parsed results, once merged
    retried_by: str | None = None
    updated_at: float = 0.0

    @classmethod
    def from_json(cls, data: dict) -> "Batch":
        known = {f.name for f in fields(cls)}
        batch = cls(**{k: v for k, v in data.items() if k in known})
        batch.status = Status(batch.status)
        return batch


class BatchState:
    """The batches of one VLM run, saved to `path` on every change."""

    def __init__(self, path: Path, fingerprint: str, batches: list[Batch] | None = None):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.batches: dict[str, Batch] = {b.name: b for b in batches or []}

    @classmethod
    def open(cls, path: Path, fingerprint: str) -> "BatchState":
        """The saved state, or a new empty one when there is none yet."""
        path = Path(path)
        if not path.exists():
            return cls(path, fingerprint)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            batches = [Batch.from_json(b) for b in data["batches"]]
            saved = data["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(f"The VLM state file {path} cannot be read ({err}); move it away to start "
                            "the VLM tier over.") from err
        if saved != fingerprint:
            raise UserError(f"The VLM state file {path} belongs to another model, vocabulary or prompt; "
                            "move it away to start over.")
        return cls(path, fingerprint, batches)

    def save(self) -> None:
        data = {"version": STATE_VERSION, "fingerprint": self.fingerprint,
                "batches": [{**asdict(b), "status": b.status.value} for b in self.batches.values()]}
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def add(self, *batches: Batch) -> None:
        for batch in batches:
            if batch.name in self.batches:
                raise ValueError(f"batch {batch.name} already exists")
            batch.updated_at = time.time()
            self.batches[batch.name] = batch
        self.save()

    def update(self, name: str, status: Status | None = None, **changes) -> Batch:
        """Change one batch (its status only along TRANSITIONS) and save."""
        batch = self.batches[name]
        if status is not None and status != batch.status and status not in TRANSITIONS[batch.status]:
            raise InvalidTransition(f"batch {name}: {batch.status.value} -> {Status(status).value}")
        for key, value in changes.items():
            if not hasattr(batch, key):
                raise AttributeError(key)
            setattr(batch, key, value)
        if status is not None:
            batch.status = Status(status)
        batch.updated_at = time.time()
        self.save()
        return batch

    def active(self) -> list[Batch]:
        return [b for b in self.batches.values() if b.status != Status.MERGED]

    def requested_ids(self) -> set[str]:
        return {cid for b in self.batches.values() for cid in b.custom_ids}

    def next_name(self) -> str:
        return f"batch-{len(self.batches) + 1:05d}"

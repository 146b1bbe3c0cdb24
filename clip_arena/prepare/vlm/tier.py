"""The VLM attribute tier's entry point, which `clip-arena prepare --tier vlm` calls:

    vlm_attributes(rows: pandas.DataFrame, vocab: dict[str, list[str]], workdir: Path, *, model: str,
                   base_url: str | None = None, poll_s: float = 30.0, progress=print,
                   limits: FileLimits = FileLimits(), id_column="id", image_column="image",
                   title_column="title", image_limits: FetchLimits | None = None, max_attempts: int = 3,
                   client: BatchClient | None = None, sleep=time.sleep) -> pandas.DataFrame

`rows` holds a unique id, the image (a resolved local path or an http(s) URL, read under the image
policy's caps, `image_limits`) and the raw title per row; `client` and `sleep` are for tests.
The result is indexed like `rows`, with `clean_title`, each attribute `A` of `vocab` (one of its values
or "unknown") and `A_confidence` (0..1), `attributes_tier` = "vlm:<model>" and `vlm_error` (empty, or
why the row has no answer: an unreadable image, an error line, a failed batch; such a row keeps its
raw title as `clean_title` and "unknown" at confidence 0 everywhere). It writes the request
files, uploads them, creates the batches, polls them until they end (every `poll_s` seconds, backing
off to 10x that), saves each batch's outputs, retries the rows of failed and expired batches (up to
`max_attempts` batches per row) and merges. All of it lives in `workdir/vlm-<fingerprint>/` with a
state file (state.py): called again after a kill, it resumes from there, submits no batch twice and
re-reads the saved results. The API key comes from the environment (client.py); with none, or the
server unreachable, it raises one UserError sentence, after the request files are written (they are
kept for the next run).

Without a batch server (vLLM's own server has no /v1/files or /v1/batches): `vllm run-batch -i
batch-00001.requests.jsonl -o batch-00001.output.jsonl --model ...` beside each request file, then the
same call again: a request file whose output is there is merged from it, and needs no key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import pandas as pd

from clip_arena.core.errors import ImageLoadError, UserError
from clip_arena.core.settings import FetchLimits
from clip_arena.prepare.vlm import requests as rq
from clip_arena.prepare.vlm.client import ApiError, BatchClient, api_key_from_env, check_base_url
from clip_arena.prepare.vlm.parse import merge, read_results
from clip_arena.prepare.vlm.state import API_STATUS, ENDED, Batch, BatchState, Status

LOCAL_STATUS = "answered locally (vllm run-batch)"

ENCODE_CHUNK = 64  # rows whose images are encoded at once: bounded memory on any catalog size
RETRIED = (Status.FAILED, Status.EXPIRED)  # a cancelled batch was someone's decision: not resubmitted


def fingerprint(model: str, vocab: Mapping[str, Sequence[str]]) -> str:
    """What makes two runs' answers interchangeable: same model, vocabulary and request shape."""
    what = {"model": model, "vocab": {k: list(map(str, v)) for k, v in vocab.items()},
            "prompt": rq.SYSTEM_PROMPT, "side": rq.IMAGE_SIDE, "quality": rq.JPEG_QUALITY}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


class _Run:
    def __init__(self, state: BatchState, connect: Callable[[], BatchClient], vocab, progress, limits,
                 max_attempts):
        self.state, self.connect, self.vocab, self.progress = state, connect, vocab, progress
        self.limits, self.max_attempts = limits, max_attempts
        self.folder = state.path.parent
        self._client: BatchClient | None = None

    @property
    def client(self) -> BatchClient:
        """Made at the first call a batch needs, so outputs made without a server need no key."""
        if self._client is None:
            self._client = self.connect()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def local_output(self, batch: Batch) -> Path:
        return self.folder / f"{batch.name}.output.jsonl"

    def names(self) -> Iterator[str]:
        return (f"batch-{i:05d}" for i in itertools.count(len(self.state.batches) + 1))

    def prepare(self, lines) -> None:
        written = rq.write_request_files(lines, self.folder, self.names(), self.limits)
        if written:
            self.state.add(*[Batch(name, path.name, ids) for name, path, ids in written])
            self.progress(f"VLM: {sum(len(i) for _, _, i in written)} requests in {len(written)} request file(s).")

    def step(self, batch: Batch) -> None:
        """Move one batch on by one call to the server (or none)."""
        if batch.status == Status.PREPARED and self.local_output(batch).exists():
            self.state.update(batch.name, Status.COMPLETED, api_status=LOCAL_STATUS)
        elif batch.status == Status.PREPARED:
            uploaded = self.client.upload(self.folder / batch.request_file)
            self.state.update(batch.name, Status.UPLOADED, file_id=uploaded["id"])
        elif batch.status == Status.UPLOADED:
            self.submit(batch)
        elif batch.status == Status.IN_PROGRESS:
            self.poll(batch)
        elif batch.status in ENDED:
            self.finish(batch)

    def submit(self, batch: Batch) -> None:
        if batch.submitting:  # killed during the create call: the batch may exist already
            found = self.client.find_batch(batch.file_id)
            if found:
                self.state.update(batch.name, Status.IN_PROGRESS, batch_id=found["id"], submitting=False,
                                  api_status=found.get("status"))
                self.progress(f"VLM {batch.name}: found on the server as {found['id']}, not submitted again.")
                return
        self.state.update(batch.name, submitting=True)
        try:
            created = self.client.create_batch(batch.file_id, rq.ENDPOINT, {"clip_arena_batch": batch.name})
        except ApiError as err:
            if err.status in (401, 403) or err.status >= 500:
                raise
            self.state.update(batch.name, Status.FAILED, submitting=False, errors=[str(err)])
            return
        self.state.update(batch.name, Status.IN_PROGRESS, batch_id=created["id"], submitting=False,
                          api_status=created.get("status"))
        self.progress(f"VLM {batch.name}: submitted as {created['id']}.")

    def poll(self, batch: Batch) -> None:
        remote = self.client.get_batch(batch.batch_id)
        api_status = remote.get("status")
        status = API_STATUS.get(api_status, Status.IN_PROGRESS)
        errors = [f"{e.get('code')}: {e.get('message')}" for e in ((remote.get("errors") or {}).get("data") or [])
                  if isinstance(e, dict)]
        if api_status != batch.api_status or status != batch.status:
            counts = remote.get("request_counts") or {}
            self.progress(f"VLM {batch.name}: {api_status} ({counts.get('completed', 0)}/{counts.get('total', 0)} "
                          "requests done).")
        self.state.update(batch.name, status, api_status=api_status, request_counts=remote.get("request_counts"),
                          output_file_id=remote.get("output_file_id"), error_file_id=remote.get("error_file_id"),
                          errors=errors or batch.errors)

    def finish(self, batch: Batch) -> None:
        """Save the batch's outputs and parsed answers, requeue what a retry may fix, mark it merged."""
        paths = []
        for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            path = self.folder / f"{batch.name}.{kind}.jsonl"
            if file_id:
                self.client.download(file_id, path)
            if file_id or (batch.api_status == LOCAL_STATUS and path.exists()):
                paths.append(path)
        results, unreadable = read_results(paths, self.vocab)
        why = f"the batch {batch.status.value}" + (f" ({'; '.join(batch.errors)})" if batch.errors else "")
        for custom_id in batch.custom_ids:
            if custom_id not in results:
                # A batch the server refused at creation never ran: the same file would be refused again.
                ran = batch.batch_id is not None
                results[custom_id] = {"error": why, "retry": ran and (batch.status in RETRIED
                                                                      or batch.status == Status.COMPLETED)}
        answers = f"{batch.name}.answers.json"
        _write_json(self.folder / answers, {cid: results[cid] for cid in batch.custom_ids})
        failed = [cid for cid in batch.custom_ids if "answer" not in results[cid]]
        # Only a server's batches are retried here: a local run's rows are for the next local run to answer.
        retried = batch.attempt < self.max_attempts and batch.batch_id is not None
        retry = [cid for cid in failed if results[cid].get("retry")] if retried else []
        retry_name = None
        if retry:
            lines = rq.read_request_lines(self.folder / batch.request_file)
            name = next(self.names())
            (_, path, ids), = rq.write_request_files(((c, lines[c]) for c in retry), self.folder, iter([name]),
                                                     rq.FileLimits(max_bytes=1 << 62, max_requests=1 << 62))
            self.state.batches[name] = Batch(name, path.name, ids, attempt=batch.attempt + 1)
            retry_name = name
        ended = batch.status.value
        self.state.update(batch.name, Status.MERGED, answers_file=answers, retried_by=retry_name)
        note = f"; {len(retry)} retried in {retry_name}" if retry_name else ""
        skipped = f"; {unreadable} unreadable output lines" if unreadable else ""
        self.progress(f"VLM {batch.name}: {ended}, "
                      f"{len(batch.custom_ids) - len(failed)} answered, {len(failed)} without an answer"
                      f"{note}{skipped}.")

    def drive(self, poll_s: float, sleep: Callable[[float], None]) -> None:
        interval = poll_s
        while self.state.active():
            for batch in list(self.state.active()):
                self.step(batch)
            if all(b.status == Status.IN_PROGRESS for b in self.state.active()) and self.state.active():
                sleep(interval)
                interval = min(interval * 1.5, poll_s * 10)

    def results(self) -> dict[str, dict]:
        """Every saved answer, the latest batch's winning unless it has none where an earlier one has."""
        found: dict[str, dict] = {}
        for batch in self.state.batches.values():
            if batch.answers_file:
                for cid, result in json.loads((self.folder / batch.answers_file).read_text("utf-8")).items():
                    if "answer" in result or "answer" not in found.get(cid, {}):
                        found[cid] = result
        return found


def _encoded_lines(rows: pd.DataFrame, positions: list[int], custom_ids: list[str], vocab, model: str,
                   image_column: str, title_column: str, image_limits, limits: rq.FileLimits,
                   errors: dict[str, dict]) -> Iterator[tuple[str, bytes]]:
    """(custom_id, request line) for the rows at `positions`; an unreadable image or a line over the
    per-file cap lands in `errors` instead."""

    def encode(position: int):
        try:
            return rq.image_data_url(rows[image_column].iloc[position], image_limits)
        except ImageLoadError as err:
            return err
        except (OSError, ValueError, TypeError) as err:  # one bad cell never ends the run
            return ImageLoadError("corrupt", f"the image could not be encoded ({type(err).__name__})")

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(positions), ENCODE_CHUNK):
            chunk = positions[start:start + ENCODE_CHUNK]
            for position, url in zip(chunk, pool.map(encode, chunk)):
                custom_id = custom_ids[position]
                if isinstance(url, ImageLoadError):
                    errors[custom_id] = {"error": f"image: {url}", "retry": False}
                    continue
                title = rows[title_column].iloc[position]
                line = rq.encode_line(rq.request_line(custom_id, "" if pd.isna(title) else str(title), url,
                                                      vocab, model))
                if len(line) > limits.max_bytes:
                    errors[custom_id] = {"error": "the request is over the request file's byte cap",
                                         "retry": False}
                    continue
                yield custom_id, line


def vlm_attributes(rows: pd.DataFrame, vocab: dict[str, list[str]], workdir: Path, *, model: str,
                   base_url: str | None = None, poll_s: float = 30.0, progress: Callable[[str], None] = print,
                   limits: rq.FileLimits = rq.FileLimits(), id_column: str = "id", image_column: str = "image",
                   title_column: str = "title", image_limits: FetchLimits | None = None, max_attempts: int = 3,
                   client: BatchClient | None = None, sleep: Callable[[float], None] | None = None) -> pd.DataFrame:
    missing = [c for c in (id_column, image_column, title_column) if c not in rows.columns]
    if missing:
        raise UserError(f"The VLM tier needs the columns {', '.join(missing)}, which the rows do not have.")
    if not vocab:
        raise UserError("The VLM tier needs at least one attribute in the vocabulary.")
    custom_ids = [str(value) for value in rows[id_column]]
    duplicated = pd.Series(custom_ids).duplicated()
    if duplicated.any():
        raise UserError(f"Row ids must be unique for the VLM tier; {custom_ids[int(duplicated.idxmax())]!r} "
                        "is there more than once.")
    check_base_url(base_url)
    key = fingerprint(model, vocab)
    state = BatchState.open(Path(workdir) / f"vlm-{key}" / "state.json", key)

    def connect() -> BatchClient:
        if client is not None:
            return client
        try:
            api_key = api_key_from_env()
        except UserError as err:
            raise UserError(f"{str(err)[:-1]}, and `vllm run-batch` can answer the request files in "
                            f"{state.path.parent} without a server (see the README).") from None
        return BatchClient(base_url, api_key)

    run = _Run(state, connect, vocab, progress, limits, max_attempts)
    try:
        requested = state.requested_ids()
        todo = [i for i, cid in enumerate(custom_ids) if cid not in requested]
        errors: dict[str, dict] = {}
        run.prepare(_encoded_lines(rows, todo, custom_ids, vocab, model, image_column, title_column,
                                   image_limits, limits, errors))
        run.drive(poll_s, sleep or time.sleep)
        results = {**errors, **run.results()}
    finally:
        if client is None:
            run.close()
    return merge(rows, custom_ids, results, vocab, model, title_column)

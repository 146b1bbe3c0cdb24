"""The VLM tier end to end against a fake OpenAI-compatible server replaying a recorded Batch API
exchange (tests/fixtures/openai_batch_exchange.json): every state, a failed and an expired batch and
their retries, kills mid-way and the resume, a 429, no key, no server, and the key never on disk."""

from __future__ import annotations

import copy
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from conftest import free_port, with_project
from PIL import Image

from clip_arena.core.errors import UserError
from clip_arena.prepare.vlm import FileLimits, vlm_attributes
from clip_arena.prepare.vlm.client import BatchClient

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "openai_batch_exchange.json").read_text())
VOCAB = {"style": ["modern", "rustic"], "material": ["wood", "metal"], "colour": ["red", "blue"]}
KEY = "sk-test-CLIPARENA-0123456789abcdef"
HAPPY = ["validating", "in_progress", "finalizing", "completed"]
ENDED = {"completed", "failed", "expired", "cancelled"}


def good_answer(title="Oak dining chair"):
    return {"clean_title": title, "style": "modern", "style_confidence": 0.9, "material": "wood",
            "material_confidence": 0.8, "colour": "red", "colour_confidence": 0.7}


class FakeBatchApi:
    """Files and batches in memory; each GET of a batch moves it one step along its script."""

    def __init__(self):
        self.reset()

    def reset(self, key=KEY):
        self.key, self.files, self.batches = key, {}, {}
        self.scripts: list[list[str]] = []  # per created batch, in order; HAPPY when none is left
        self.faults: dict[tuple[str, str], list[int]] = {}  # (method, path prefix) -> statuses to serve first
        self.answers: dict[str, object] = {}  # custom_id -> answer dict, or an HTTP status for an error line
        self.served: dict[str, list[str]] = {}  # batch id -> statuses served, in order
        self.uploads = self.created = 0
        self.counter = itertools.count(1)
        self.hold_create = False  # keep the create call's answer back until `release` (a kill meanwhile)
        self.created_event, self.release = threading.Event(), threading.Event()

    def handle(self, method, path, headers, body):
        for (m, prefix), statuses in self.faults.items():
            if m == method and path.startswith(prefix) and statuses:
                status = statuses.pop(0)
                return status, {"Retry-After": "2"} if status == 429 else {}, RECORDED["rate_limited"]
        if headers.get("Authorization") != f"Bearer {self.key}":
            return 401, {}, RECORDED["invalid_key"]
        if method == "POST" and path == "/v1/files":
            return 200, {}, self.upload(headers["Content-Type"], body)
        if method == "POST" and path == "/v1/batches":
            batch = self.create(json.loads(body))
            if self.hold_create:
                self.created_event.set()
                self.release.wait(30)
            return 200, {}, batch
        if method == "GET" and path.startswith("/v1/batches?"):
            listing = dict(RECORDED["batch_list"], data=[self.batches[i]["object"] for i in reversed(self.batches)])
            return 200, {}, listing
        if method == "GET" and path.startswith("/v1/batches/"):
            return 200, {}, self.poll(path.rsplit("/", 1)[1])
        if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            return 200, {}, self.files[path.split("/")[3]]["content"]
        return 404, {}, {"error": {"message": "not found"}}

    def upload(self, content_type, body):
        form = BytesParser(policy=policy.default).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        parts = {p.get_param("name", header="content-disposition"): p for p in form.iter_parts()}
        assert parts["purpose"].get_content().strip() == "batch"
        content = parts["file"].get_payload(decode=True)
        self.uploads += 1
        return self.add_file(content, parts["file"].get_filename())

    def add_file(self, content: bytes, filename: str):
        file = dict(RECORDED["file"], id=f"file-fake{next(self.counter):04d}", bytes=len(content), filename=filename)
        self.files[file["id"]] = {"object": file, "content": content}
        return file

    def create(self, request):
        assert request["endpoint"] == "/v1/chat/completions" and request["completion_window"] == "24h"
        self.created += 1
        batch = copy.deepcopy(RECORDED["batch"])
        batch.update(id=f"batch_fake{next(self.counter):04d}", input_file_id=request["input_file_id"],
                     metadata=request.get("metadata") or {})
        script = self.scripts.pop(0) if self.scripts else list(HAPPY)
        self.batches[batch["id"]] = {"object": batch, "script": script, "step": 0}
        self.served[batch["id"]] = [batch["status"]]
        return batch

    def poll(self, batch_id):
        entry = self.batches[batch_id]
        batch = entry["object"]
        if batch["status"] not in ENDED:
            entry["step"] = min(entry["step"] + 1, len(entry["script"]) - 1)
            batch["status"] = entry["script"][entry["step"]]
            batch[f"{batch['status']}_at"] = 1764921700 + entry["step"]
            if batch["status"] in ENDED:
                self.finish(batch)
        self.served[batch_id].append(batch["status"])
        return batch

    def finish(self, batch):
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]]["content"].splitlines() if x.strip()]
        outputs, errors = [], []
        if batch["status"] == "failed":
            batch["errors"] = RECORDED["batch_errors_failed"]
        elif batch["status"] in ("completed", "expired"):
            done = lines if batch["status"] == "completed" else lines[: len(lines) // 2]
            for line in lines:
                if line not in done:
                    errors.append(dict(RECORDED["expired_line"], custom_id=line["custom_id"]))
                    continue
                assert line["body"]["response_format"]["json_schema"]["strict"] is True
                answer = self.answers.get(line["custom_id"], good_answer())
                if isinstance(answer, int):
                    errors.append(dict(copy.deepcopy(RECORDED["request_error_line"]), custom_id=line["custom_id"]))
                    continue
                out = copy.deepcopy(RECORDED["output_line"])
                out["custom_id"] = line["custom_id"]
                out["response"]["body"]["choices"][0]["message"]["content"] = json.dumps(answer)
                outputs.append(out)
        for kind, found in (("output_file_id", outputs), ("error_file_id", errors)):
            if found:
                batch[kind] = self.add_file(b"".join(json.dumps(x).encode() + b"\n" for x in found),
                                            f"{batch['id']}_{kind}.jsonl")["id"]
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}


@pytest.fixture(scope="module")
def server():
    api = FakeBatchApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, payload = api.handle(self.command, self.path, self.headers, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client was killed
                pass

        do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield api, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


@pytest.fixture
def api(server, monkeypatch):
    server[0].reset()
    monkeypatch.setenv("CLIP_ARENA_VLM_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return server


@pytest.fixture
def rows(tmp_path):
    paths = []
    for name, colour in (("a1", "red"), ("b2", "blue"), ("c3", "green")):
        paths.append(tmp_path / f"{name}.png")
        Image.new("RGB", (900, 600), colour).save(paths[-1])
    broken = tmp_path / "bad.jpg"
    broken.write_bytes(b"not a jpeg at all")
    frame = pd.DataFrame({"id": ["a1", "b2", "c3", "bad", "none"], "image": [*map(str, paths), str(broken), None],
                          "title": ["OAK CHAIR!!! FREE SHIPPING", "Stool SKU-123", "Lamp", "Broken", None]})
    return frame.set_axis([10, 20, 30, 40, 50])  # a catalog's index, kept in the result


def run(url, workdir, rows, messages=None, **kwargs):
    kwargs.setdefault("progress", (messages if messages is not None else []).append)
    return vlm_attributes(rows, VOCAB, workdir, model="gpt-4o-mini", base_url=url, poll_s=0, **kwargs)


def state_of(workdir: Path) -> dict:
    (path,) = workdir.glob("vlm-*/state.json")
    return {b["name"]: b for b in json.loads(path.read_text())["batches"]}


def test_every_state_then_merged_columns_and_the_key_never_on_disk(api, rows, tmp_path):
    fake, url = api
    fake.answers = {"b2": dict(good_answer("Bar stool"), material="plastic"), "c3": 400}
    work = tmp_path / "work"
    out = run(url, work, rows, limits=FileLimits(max_requests=2))

    assert list(out.index) == [10, 20, 30, 40, 50]
    assert out.loc[10, "clean_title"] == "Oak dining chair" and out.loc[10, "style"] == "modern"
    assert out.loc[10, "style_confidence"] == pytest.approx(0.9)
    assert (out.loc[20, "material"], out.loc[20, "material_confidence"]) == ("unknown", 0.0)  # not in the vocabulary
    assert "invalid_image" in out.loc[30, "vlm_error"] and out.loc[30, "clean_title"] == "Lamp"
    assert out.loc[40, "vlm_error"].startswith("image:") and out.loc[40, "colour"] == "unknown"
    assert out.loc[50, "vlm_error"].startswith("image:") and out.loc[50, "clean_title"] == ""
    assert set(out["attributes_tier"]) == {"vlm:gpt-4o-mini"}
    # Three readable rows, at most two requests a file: two batches, each through every API status.
    assert fake.created == 2 and all(s[:4] == HAPPY for s in fake.served.values())
    assert {b["status"] for b in state_of(work).values()} == {"merged"}
    for path in (p for p in work.rglob("*") if p.is_file()):
        assert KEY.encode() not in path.read_bytes(), path

    again = run(url, work, rows)  # finished work is read back, not requested again
    assert fake.created == 2 and fake.uploads == 2
    pd.testing.assert_frame_equal(again, out)


def test_a_failed_batch_is_retried_with_the_same_requests(api, rows, tmp_path):
    fake, url = api
    fake.scripts = [["validating", "failed"]]
    messages = []
    out = run(url, tmp_path / "work", rows.iloc[:2], messages)

    state = state_of(tmp_path / "work")
    assert state["batch-00001"]["retried_by"] == "batch-00002" and state["batch-00002"]["attempt"] == 2
    assert state["batch-00001"]["errors"][0].startswith("token_limit_exceeded")
    assert (out["vlm_error"] == "").all() and (out["style"] == "modern").all()
    folder = next((tmp_path / "work").glob("vlm-*"))
    assert (folder / "batch-00001.requests.jsonl").read_bytes() == (folder / "batch-00002.requests.jsonl").read_bytes()
    assert any("failed" in m and "retried in batch-00002" in m for m in messages)


def test_an_expired_batch_keeps_its_answers_and_retries_only_the_rest(api, rows, tmp_path):
    fake, url = api
    fake.scripts = [["validating", "in_progress", "expired"]]
    out = run(url, tmp_path / "work", rows.iloc[:2])
    retry = json.loads(next((tmp_path / "work").glob("vlm-*/batch-00002.requests.jsonl")).read_text())
    assert retry["custom_id"] == "b2" and (out["vlm_error"] == "").all()


def test_a_batch_failing_every_time_is_reported_per_row(api, rows, tmp_path):
    fake, url = api
    fake.scripts = [["validating", "failed"]] * 3
    out = run(url, tmp_path / "work", rows.iloc[:1])
    assert fake.created == 3 and "the batch failed (token_limit_exceeded" in out.loc[10, "vlm_error"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_killed_after_submitting_resumes_without_submitting_again(api, rows, tmp_path):
    fake, url = api

    def die_once_submitted(message):
        if "submitted as" in message:
            raise Killed

    with pytest.raises(Killed):
        run(url, tmp_path / "work", rows.iloc[:2], progress=die_once_submitted)
    assert state_of(tmp_path / "work")["batch-00001"]["status"] == "in_progress"

    out = run(url, tmp_path / "work", rows.iloc[:2])
    assert fake.created == 1 and fake.uploads == 1 and (out["style"] == "modern").all()


CHILD = """
import json, sys
import pandas as pd
from clip_arena.prepare.vlm import vlm_attributes
vlm_attributes(pd.read_csv(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], model="gpt-4o-mini",
               base_url=sys.argv[4], poll_s=0)
"""


def test_a_process_killed_during_the_create_call_is_resumed_without_paying_twice(api, rows, tmp_path):
    fake, url = api
    fake.hold_create = True
    rows.iloc[:2].to_csv(tmp_path / "rows.csv", index=False)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "rows.csv"), json.dumps(VOCAB),
                              str(tmp_path / "work"), url], env=with_project(), stderr=subprocess.PIPE)
    try:
        assert fake.created_event.wait(120), child.stderr.read() if child.poll() is not None else "no batch"
        os.kill(child.pid, signal.SIGKILL)  # the server made the batch; its answer never arrives
    finally:
        child.wait(30)
        fake.release.set()
    assert state_of(tmp_path / "work")["batch-00001"]["submitting"] is True

    messages = []
    out = run(url, tmp_path / "work", rows.iloc[:2], messages)
    assert fake.created == 1 and fake.uploads == 1 and any("not submitted again" in m for m in messages)
    assert (out["vlm_error"] == "").all()


def test_rate_limited_and_server_errors_are_retried_with_backoff(api, rows, tmp_path):
    fake, url = api
    fake.faults = {("POST", "/v1/files"): [429], ("GET", "/v1/batches/"): [503, 503]}
    waits = []
    client = BatchClient(url, KEY, retry_base_s=0.5, sleep=waits.append)
    out = run(url, tmp_path / "work", rows.iloc[:1], client=client)
    assert waits == [2.0, 0.5, 1.0]  # Retry-After, then exponential
    assert out.loc[10, "style"] == "modern"


def test_no_key_is_one_sentence_and_vllm_run_batch_outputs_need_none(api, rows, tmp_path, monkeypatch):
    fake, url = api
    monkeypatch.delenv("CLIP_ARENA_VLM_API_KEY")
    with pytest.raises(UserError) as err:
        run(url, tmp_path / "work", rows)
    message = str(err.value)
    assert "OPENAI_API_KEY" in message and "--tier offline" in message and "vllm run-batch" in message
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")

    # What `vllm run-batch -i batch-00001.requests.jsonl -o batch-00001.output.jsonl` writes, then a run
    # without a key or a server.
    (requests,) = (tmp_path / "work").glob("vlm-*/batch-00001.requests.jsonl")
    outputs = []
    for line in map(json.loads, requests.read_text().splitlines()):
        out = copy.deepcopy(RECORDED["output_line"])
        out["custom_id"] = line["custom_id"]
        out["response"]["body"]["choices"][0]["message"]["content"] = json.dumps(good_answer())
        outputs.append(json.dumps(out))
    requests.with_name("batch-00001.output.jsonl").write_text("\n".join(outputs) + "\n")
    out = run(url, tmp_path / "work", rows)
    assert fake.uploads == 0 and (out.loc[[10, 20, 30], "style"] == "modern").all()
    assert state_of(tmp_path / "work")["batch-00001"]["status"] == "merged"


def test_a_refused_key_is_one_sentence_without_the_key(api, rows, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIP_ARENA_VLM_API_KEY", "sk-wrong")
    with pytest.raises(UserError, match=r"refused the API key \(401\)") as err:
        run(api[1], tmp_path / "work", rows)
    assert "sk-wrong" not in str(err.value)


def test_an_unreachable_server_is_one_sentence():
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(UserError, match="cannot be reached.*--tier offline"):
        BatchClient(closed, KEY, max_retries=2, retry_base_s=0).upload(Path(__file__))


def test_a_server_without_batch_routes_says_so(api, tmp_path):
    fake, url = api
    with pytest.raises(UserError, match="has no /files route.*vllm run-batch"):
        BatchClient(url.replace("/v1", "/chat-only"), KEY).upload(Path(__file__))

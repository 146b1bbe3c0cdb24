"""A thin client of the OpenAI-compatible files and batches API: what the VLM tier needs, no more.

Every call is retried with exponential backoff (honouring Retry-After) on 429, 5xx and connection
errors. The key is read from the environment (CLIP_ARENA_VLM_API_KEY, else OPENAI_API_KEY) and only
ever sent in the Authorization header: it is never written anywhere, nor part of an error message.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx

from clip_arena.core.errors import UserError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_VARIABLES = ("CLIP_ARENA_VLM_API_KEY", "OPENAI_API_KEY")
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


def api_key_from_env(environ=os.environ) -> str:
    for name in KEY_VARIABLES:
        if environ.get(name, "").strip():
            return environ[name].strip()
    raise UserError(f"The VLM tier needs an API key in {KEY_VARIABLES[0]} or {KEY_VARIABLES[1]} and none "
                    "is set; `--tier offline` works without one.")


def check_base_url(base_url: str | None) -> str:
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--vlm-base-url must be an http or https URL, not {url!r}.")
    return url


class ApiError(UserError):
    """The server answered with an error that retrying does not fix."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _server_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        text = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        text = None
    text = " ".join(str(text or response.text or response.reason_phrase).split())
    return text[:300]


class BatchClient:
    def __init__(self, base_url: str | None, api_key: str, *, timeout_s: float = 60.0, max_retries: int = 5,
                 retry_base_s: float = 1.0, retry_cap_s: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = check_base_url(base_url)
        self.max_retries, self.retry_base_s, self.retry_cap_s, self.sleep = (
            max_retries, retry_base_s, retry_cap_s, sleep)
        self._http = httpx.Client(base_url=self.base_url + "/", timeout=timeout_s, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}"}, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("retry-after") if response is not None else None
        try:
            if retry_after is not None:
                return min(max(float(retry_after), 0.0), self.retry_cap_s)
        except ValueError:
            pass
        return min(self.retry_base_s * 2 ** attempt, self.retry_cap_s)

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            response = None
            try:
                response = self._http.request(method, path.lstrip("/"), **kwargs)
            except httpx.TransportError as err:
                if attempt == self.max_retries:
                    raise UserError(f"The VLM server at {self.base_url} cannot be reached "
                                    f"({type(err).__name__}); check --vlm-base-url and the network, or "
                                    "use `--tier offline`, which works without it.") from None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES or attempt == self.max_retries:
                    raise self._error(method, path, response)
            self.sleep(self._wait(attempt, response))
        raise AssertionError("unreachable")

    def _error(self, method: str, path: str, response: httpx.Response) -> ApiError:
        status, text = response.status_code, _server_message(response)
        if status in (401, 403):
            # Not the server's text: it may echo part of the key.
            return ApiError(status, f"The VLM server at {self.base_url} refused the API key ({status}); "
                                    f"check {KEY_VARIABLES[0]} or {KEY_VARIABLES[1]}, or use `--tier offline`.")
        if status in (404, 405) and path.split("/")[1] in ("files", "batches"):
            return ApiError(status, f"The VLM server at {self.base_url} has no {path} route ({status}), so it "
                                    "cannot run batches; point --vlm-base-url at one that has (OpenAI, a LiteLLM "
                                    "proxy) or answer the request files with `vllm run-batch`.")
        return ApiError(status, f"The VLM server at {self.base_url} answered {method} {path} with {status}: "
                                f"{text.rstrip('.')}.")

    def upload(self, path: Path) -> dict:
        """POST /files with purpose=batch: the file object (its id)."""
        with open(path, "rb") as handle:
            return self._call("POST", "/files", data={"purpose": "batch"},
                              files={"file": (Path(path).name, handle, "application/jsonl")}).json()

    def create_batch(self, input_file_id: str, endpoint: str, metadata: dict | None = None) -> dict:
        body = {"input_file_id": input_file_id, "endpoint": endpoint, "completion_window": "24h"}
        if metadata:
            body["metadata"] = metadata
        return self._call("POST", "/batches", json=body).json()

    def get_batch(self, batch_id: str) -> dict:
        return self._call("GET", f"/batches/{batch_id}").json()

    def list_batches(self, page_size: int = 100, max_pages: int = 20) -> Iterator[dict]:
        """The newest batches first, page by page (a resume looks for its own among them)."""
        after = None
        for _ in range(max_pages):
            params = {"limit": page_size, **({"after": after} if after else {})}
            page = self._call("GET", "/batches", params=params).json()
            yield from page.get("data", [])
            if not page.get("has_more") or not page.get("data"):
                return
            after = page.get("last_id") or page["data"][-1]["id"]

    def find_batch(self, input_file_id: str) -> dict | None:
        return next((b for b in self.list_batches() if b.get("input_file_id") == input_file_id), None)

    def download(self, file_id: str, dest: Path) -> Path:
        """GET /files/{id}/content into dest, whole or not at all (tmp + os.replace)."""
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_bytes(self._call("GET", f"/files/{file_id}/content").content)
        os.replace(tmp, dest)
        return dest

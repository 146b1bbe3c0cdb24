"""Batch output and error files -> one result per row, checked against the vocabulary; results -> columns.

Whatever a model or server writes, a row ends with either an answer whose every attribute is one of
its vocabulary's values or "unknown" (a value outside the vocabulary is never training text), with a
confidence in 0..1, or an error sentence saying why it has none. A line that cannot be parsed is
reported and skipped, never a crash.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from clip_arena.prepare.vlm.requests import UNKNOWN, confidence_key

# Per-request error codes the Batch API writes when the batch, not the request, was the problem.
RETRY_CODES = {"batch_expired", "rate_limit_exceeded", "server_error"}


def _error(message: str, retry: bool = False) -> dict:
    return {"error": " ".join(str(message).split())[:500], "retry": retry}


def _confidence(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(number, 0.0), 1.0) if math.isfinite(number) else 0.0


def parse_answer(content: str, vocab: Mapping[str, Sequence[str]]) -> dict:
    """The model's JSON answer -> {"answer": {clean_title, A, A_confidence...}} or {"error": ...}."""
    try:
        data = json.loads(content)
    except (TypeError, ValueError):
        return _error("the answer is not JSON")
    if not isinstance(data, dict):
        return _error("the answer is not a JSON object")
    title = data.get("clean_title")
    answer: dict = {"clean_title": " ".join(title.split()) if isinstance(title, str) else ""}
    for attribute, values in vocab.items():
        by_lower = {str(v).strip().lower(): str(v) for v in values}
        given = data.get(attribute)
        value = by_lower.get(given.strip().lower(), UNKNOWN) if isinstance(given, str) else UNKNOWN
        answer[attribute] = value
        answer[confidence_key(attribute)] = 0.0 if value == UNKNOWN else _confidence(
            data.get(confidence_key(attribute)))
    return {"answer": answer}


def parse_output_line(data: dict, vocab: Mapping[str, Sequence[str]]) -> tuple[str, dict] | None:
    """One line of an output or error file -> (custom_id, result); None without a custom_id."""
    if not isinstance(data, dict) or not isinstance(data.get("custom_id"), str):
        return None
    custom_id = data["custom_id"]
    error = data.get("error")
    if error:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        return custom_id, _error(f"{code or 'error'}: {message}", retry=code in RETRY_CODES)
    response = data.get("response")
    if not isinstance(response, dict):
        return custom_id, _error("the line has neither a response nor an error", retry=True)
    status, body = response.get("status_code"), response.get("body")
    body = body if isinstance(body, dict) else {}
    if status != 200:
        detail = body.get("error")
        code = detail.get("code") if isinstance(detail, dict) else None
        message = detail.get("message") if isinstance(detail, dict) else detail
        retry = isinstance(status, int) and (status == 429 or status >= 500)
        return custom_id, _error(f"HTTP {status}{f' {code}' if code else ''}: {message or 'no message'}",
                                 retry=retry)
    try:
        choice = body["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        return custom_id, _error("the response has no choices")
    if isinstance(message, dict) and message.get("refusal"):
        return custom_id, _error(f"the model refused: {message['refusal']}")
    if choice.get("finish_reason") == "length":
        return custom_id, _error("the answer was cut off at the token limit")
    content = message.get("content") if isinstance(message, dict) else None
    return custom_id, parse_answer(content, vocab)


def read_results(paths: Iterable[Path], vocab: Mapping[str, Sequence[str]]) -> tuple[dict[str, dict], int]:
    """custom_id -> result over output and error files, and how many lines could not be read.
    An answer wins over an error for the same id (a retried request)."""
    results: dict[str, dict] = {}
    unreadable = 0
    for path in paths:
        with open(path, "rb") as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    parsed = parse_output_line(json.loads(raw), vocab)
                except ValueError:
                    parsed = None
                if parsed is None:
                    unreadable += 1
                    continue
                custom_id, result = parsed
                if "answer" in result or "answer" not in results.get(custom_id, {}):
                    results[custom_id] = result
    return results, unreadable


def merge(rows: pd.DataFrame, custom_ids: Sequence[str], results: Mapping[str, dict],
          vocab: Mapping[str, Sequence[str]], model: str, title_column: str = "title") -> pd.DataFrame:
    """The tier's columns, indexed like rows: clean_title, each attribute and its confidence,
    attributes_tier "vlm:<model>", and vlm_error (empty when the row has an answer). A row without an
    answer keeps its input title and gets "unknown" at confidence 0."""
    records = []
    for position, custom_id in enumerate(custom_ids):
        result = results.get(custom_id) or _error("no answer came back for this row")
        answer = result.get("answer")
        title = rows[title_column].iloc[position] if title_column in rows else ""
        title = "" if pd.isna(title) else str(title)
        record = {"clean_title": (answer or {}).get("clean_title") or title}
        for attribute in vocab:
            record[attribute] = answer[attribute] if answer else UNKNOWN
            record[confidence_key(attribute)] = float(answer[confidence_key(attribute)]) if answer else 0.0
        record["attributes_tier"] = f"vlm:{model}"
        record["vlm_error"] = "" if answer else result["error"]
        records.append(record)
    columns = ["clean_title", *[c for a in vocab for c in (a, confidence_key(a))], "attributes_tier", "vlm_error"]
    return pd.DataFrame.from_records(records, index=rows.index, columns=columns)

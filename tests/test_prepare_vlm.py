"""The VLM tier's plain functions: request lines and their schema, splitting under the file limits,
answers checked against the vocabulary whatever the model writes, the state machine and the merge."""

from __future__ import annotations

import base64
import io
import json

import jsonschema
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from clip_arena.core.errors import ImageLoadError, UserError
from clip_arena.prepare.vlm import requests as rq
from clip_arena.prepare.vlm.parse import merge, parse_answer, parse_output_line
from clip_arena.prepare.vlm.state import Batch, BatchState, InvalidTransition, Status

VOCAB = {"style": ["modern", "Rustic"], "material": ["wood", "metal"]}


def test_a_request_line_is_a_batch_chat_completion_with_a_resized_jpeg_and_a_strict_schema(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGBA", (1600, 400), (0, 0, 255, 0)).save(path)
    line = rq.request_line("row-1", "Oak chair", rq.image_data_url(str(path)), VOCAB, "gpt-4o-mini")

    assert (line["method"], line["url"], line["custom_id"]) == ("POST", "/v1/chat/completions", "row-1")
    system, user = line["body"]["messages"]
    assert system["role"] == "system" and "Oak chair" in user["content"][0]["text"]
    url = user["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert (image.format, image.size) == ("JPEG", (512, 128))
    assert image.getpixel((5, 5))[0] > 240  # transparent composited on white

    format_ = line["body"]["response_format"]
    assert format_["type"] == "json_schema" and format_["json_schema"]["strict"] is True
    schema = format_["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])
    assert schema["properties"]["style"]["enum"] == ["modern", "Rustic", "unknown"]
    good = {"clean_title": "Oak chair", "style": "unknown", "style_confidence": 0.2, "material": "wood",
            "material_confidence": 0.9}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "material": "plastic"}, schema)


def test_an_unreadable_image_is_a_sentence_not_a_crash(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ImageLoadError):
        rq.image_data_url(str(tmp_path / "x.jpg"))


def _lines(sizes):
    return [(f"id{i}", b"x" * (size - 1) + b"\n") for i, size in enumerate(sizes)]


def _written(tmp_path, sizes, limits):
    names = (f"f{i}" for i in range(10**6))
    return rq.write_request_files(_lines(sizes), tmp_path, names, limits)


def test_request_files_split_at_the_request_count_and_at_the_byte_cap(tmp_path):
    by_count = _written(tmp_path / "a", [10] * 5, rq.FileLimits(max_bytes=1000, max_requests=2))
    assert [ids for _, _, ids in by_count] == [["id0", "id1"], ["id2", "id3"], ["id4"]]
    by_bytes = _written(tmp_path / "b", [40, 40, 30, 50], rq.FileLimits(max_bytes=100, max_requests=100))
    assert [p.stat().st_size for _, p, _ in by_bytes] == [80, 80]
    assert not list((tmp_path / "b").glob("*.tmp"))
    with pytest.raises(rq.LineTooLarge, match="id0"):
        _written(tmp_path / "c", [101], rq.FileLimits(max_bytes=100, max_requests=100))
    assert rq.FileLimits() == rq.FileLimits(max_bytes=90_000_000, max_requests=45_000)  # under 100 MB / 50,000


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), max_size=40), max_bytes=st.integers(60, 200), max_requests=st.integers(1, 7))
def test_every_split_keeps_every_line_in_order_within_the_limits(tmp_path_factory, sizes, max_bytes, max_requests):
    folder = tmp_path_factory.mktemp("split")
    written = _written(folder, sizes, rq.FileLimits(max_bytes, max_requests))
    assert [i for _, _, ids in written for i in ids] == [f"id{i}" for i in range(len(sizes))]
    for _, path, ids in written:
        assert path.stat().st_size <= max_bytes and 1 <= len(ids) <= max_requests
        assert path.read_bytes() == b"".join(line for cid, line in _lines(sizes) if cid in ids)
    # A file is closed only when the next line would not fit.
    for (_, first, ids), (_, _, nxt) in zip(written, written[1:]):
        assert len(ids) == max_requests or first.stat().st_size + sizes[int(nxt[0][2:])] > max_bytes


scalars = st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=4)
answers = st.fixed_dictionaries({}, optional={
    "clean_title": json_values, "style": st.sampled_from(["modern", "RUSTIC ", "baroque", ""]) | json_values,
    "style_confidence": json_values, "material": json_values, "material_confidence": json_values})


@settings(max_examples=60, deadline=None)
@given(content=answers.map(json.dumps) | st.text(max_size=40) | json_values.map(json.dumps))
def test_whatever_the_model_writes_values_stay_in_the_vocabulary(content):
    result = parse_answer(content, VOCAB)
    if "error" in result:
        return
    answer = result["answer"]
    assert isinstance(answer["clean_title"], str)
    for attribute, values in VOCAB.items():
        assert answer[attribute] in [*values, "unknown"]
        assert 0.0 <= answer[f"{attribute}_confidence"] <= 1.0
        if answer[attribute] == "unknown":
            assert answer[f"{attribute}_confidence"] == 0.0


def test_answers_match_the_vocabulary_whatever_the_case_and_clamp_confidence():
    answer = parse_answer(json.dumps({"clean_title": "  Oak \n chair ", "style": " rustic", "style_confidence": 7,
                                      "material": "plastic", "material_confidence": 0.9}), VOCAB)["answer"]
    assert answer == {"clean_title": "Oak chair", "style": "Rustic", "style_confidence": 1.0,
                      "material": "unknown", "material_confidence": 0.0}


def _line(content=None, status=200, finish="stop", refusal=None, error=None):
    body = {"choices": [{"message": {"content": content, "refusal": refusal}, "finish_reason": finish}]}
    if status != 200:
        body = {"error": {"message": "Bad image", "code": "invalid_image"}}
    return {"custom_id": "r1", "response": None if error else {"status_code": status, "body": body}, "error": error}


@pytest.mark.parametrize(("line", "expected", "retry"), [
    (_line(status=400), "HTTP 400 invalid_image: Bad image", False),
    (_line(status=500), "HTTP 500", True),
    (_line(refusal="I can't help"), "refused", False),
    (_line(content='{"clean_ti', finish="length"), "cut off", False),
    (_line(content="not json"), "not JSON", False),
    (_line(error={"code": "batch_expired", "message": "expired"}), "batch_expired", True),
])
def test_error_lines_say_why_and_whether_a_retry_may_help(line, expected, retry):
    custom_id, result = parse_output_line(line, VOCAB)
    assert custom_id == "r1" and expected in result["error"] and result["retry"] is retry


def test_lines_without_a_custom_id_are_skipped():
    assert parse_output_line({"response": {}}, VOCAB) is None and parse_output_line([], VOCAB) is None


def test_the_state_machine_allows_only_its_transitions_and_survives_a_reload(tmp_path):
    state = BatchState.open(tmp_path / "state.json", "fp1")
    state.add(Batch("batch-00001", "batch-00001.requests.jsonl", ["a", "b"]))
    for status in (Status.UPLOADED, Status.IN_PROGRESS, Status.IN_PROGRESS, Status.FAILED, Status.MERGED):
        state.update("batch-00001", status)
    with pytest.raises(InvalidTransition):
        state.update("batch-00001", Status.IN_PROGRESS)
    state.add(Batch("batch-00002", "batch-00002.requests.jsonl", ["a"], attempt=2))
    with pytest.raises(InvalidTransition):  # no polling without a batch on the server
        state.update("batch-00002", Status.IN_PROGRESS)

    again = BatchState.open(tmp_path / "state.json", "fp1")
    assert [(b.name, b.status) for b in again.batches.values()] == [
        ("batch-00001", Status.MERGED), ("batch-00002", Status.PREPARED)]
    assert again.requested_ids() == {"a", "b"} and [b.name for b in again.active()] == ["batch-00002"]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_state_file_of_another_run_or_damaged_is_a_sentence(tmp_path):
    BatchState(tmp_path / "state.json", "fp1").save()
    with pytest.raises(UserError, match="another model"):
        BatchState.open(tmp_path / "state.json", "fp2")
    (tmp_path / "state.json").write_text('{"batches": [')
    with pytest.raises(UserError, match="cannot be read"):
        BatchState.open(tmp_path / "state.json", "fp1")


def test_merge_keeps_the_rows_index_and_falls_back_to_the_raw_title():
    rows = pd.DataFrame({"title": ["OAK CHAIR", None]}, index=["x", "y"])
    results = {"1": parse_answer(json.dumps({"clean_title": "Oak chair", "style": "modern",
                                             "style_confidence": 0.5}), VOCAB)}
    out = merge(rows, ["1", "2"], results, VOCAB, "m")
    assert list(out.index) == ["x", "y"]
    assert list(out.columns) == ["clean_title", "style", "style_confidence", "material", "material_confidence",
                                 "attributes_tier", "vlm_error"]
    assert out.loc["x", ["clean_title", "style", "material"]].tolist() == ["Oak chair", "modern", "unknown"]
    assert out.loc["y", "clean_title"] == "" and out.loc["y", "vlm_error"] == "no answer came back for this row"
    assert (out["attributes_tier"] == "vlm:m").all()

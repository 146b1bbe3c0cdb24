"""Batch scoring is safe to expose: any cell is one row's error, no written cell starts a formula,
resume survives a half-written row, progress follows rows, and a batch can be cancelled."""

import csv
import socket
import re

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from PIL import Image

import clip_arena.analyzer.fetch as fetch
from clip_arena.analyzer.batch import BatchCancelled, BatchOptions, score_csv
from clip_arena.models import get_encoder

# What a spreadsheet may run: = + - @ tab CR LF and their fullwidth and small forms, after spaces.
FORMULA = re.compile("^ *[=+\\-@\t\r\n\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b]")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def starts_formula(cell: str) -> bool:
    return bool(FORMULA.match(cell)) and not NUMBER.fullmatch(cell)


BAD_CELLS = ["a\x00b.png", "x" * 300 + ".png", "/".join(["d" * 50] * 120), "http://example.com:99999/a.png",
             "http://[::1", "http://" + "a" * 64 + ".com/x.png", "/dev/zero", "http://[::127.0.0.1]/x.png"]


def _write(path, rows, header=("image", "caption")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def encoder(tiny_open_clip_spec):
    return get_encoder(tiny_open_clip_spec)


def test_one_bad_cell_never_kills_the_batch(tmp_path, encoder):
    Image.new("RGB", (20, 20), "green").save(tmp_path / "ok.png")
    rows = [("ok.png", "green")] + [(cell, "x") for cell in BAD_CELLS] + [("ok.png", "green again")]
    src = _write(tmp_path / "in.csv", rows)
    report = score_csv(src, tmp_path / "out.csv", encoder, BatchOptions(image_roots=[str(tmp_path)]))
    out = _read(tmp_path / "out.csv")
    assert len(out) == len(rows) + 1 and report.rows == len(rows)
    assert out[1][-1] == "" and out[-1][-1] == "" and out[-1][1] == "green again"
    errors = [r[-1] for r in out[2:-1]]
    assert all(e for e in errors), errors
    assert errors[-1].startswith("private_address:")


def test_a_short_or_long_row_is_that_rows_error(tmp_path, encoder):
    Image.new("RGB", (20, 20), "green").save(tmp_path / "ok.png")
    (tmp_path / "in.csv").write_text("image,caption\nok.png,green,extra,cells\nok.png\nok.png,fine\n")
    score_csv(tmp_path / "in.csv", tmp_path / "out.csv", encoder, BatchOptions(image_roots=[str(tmp_path)]))
    out = _read(tmp_path / "out.csv")
    assert [r[-1].split(":")[0] for r in out[1:]] == ["bad_row", "missing_caption", ""]


def test_header_and_cells_are_neutralised_and_every_cell_quoted(tmp_path, encoder):
    header = ("image", "caption", "=HYPERLINK(1)", "+note")
    cells = ["\t=1+1", "\r=1", "\n=1", "\uff1dcmd()", "\uff0b1", "x;=cmd|' /C calc'!A0", " =1", "-0.5", "@SUM(1)"]
    src = _write(tmp_path / "in.csv", [("nope.png", c, c, c) for c in cells], header)
    score_csv(src, tmp_path / "out.csv", encoder, BatchOptions(image_roots=[str(tmp_path)]))
    raw = (tmp_path / "out.csv").read_text(encoding="utf-8")
    out = _read(tmp_path / "out.csv")
    assert out[0][2] == "'=HYPERLINK(1)" and out[0][3] == "'+note"
    for row in out:
        for cell in row:
            assert not starts_formula(cell), cell
    assert [r[1] for r in out[1:]][:5] == ["'\t=1+1", "'\r=1", "'\n=1", "'\uff1dcmd()", "'\uff0b1"]
    assert out[8][1] == "-0.5"  # plain numbers stay numbers
    # a ;-locale spreadsheet cannot split a quoted cell: every cell is quoted
    for line in raw.split("\r\n")[1:]:
        if line:
            assert line.startswith('"') and line.endswith('"')
    assert '"x;=cmd|\' /C calc\'!A0"' in raw


def test_resume_cuts_a_half_written_row(tmp_path, encoder):
    Image.new("RGB", (20, 20), "green").save(tmp_path / "ok.png")
    src = _write(tmp_path / "in.csv", [("ok.png", f"caption {i}") for i in range(10)])
    options = BatchOptions(image_roots=[str(tmp_path)], chunk_rows=4)
    score_csv(src, tmp_path / "fresh.csv", encoder, options)
    full = (tmp_path / "fresh.csv").read_bytes()
    lines = full.split(b"\r\n")
    crashed = b"\r\n".join(lines[:6]) + b"\r\n" + lines[6][: len(lines[6]) // 2]  # 5 rows and half of the 6th
    (tmp_path / "out.csv").write_bytes(crashed)
    report = score_csv(src, tmp_path / "out.csv", encoder, BatchOptions(image_roots=[str(tmp_path)], chunk_rows=4,
                                                                        resume=True))
    assert report.skipped_resumed == 5 and report.rows == 5
    assert _read(tmp_path / "out.csv") == _read(tmp_path / "fresh.csv")


def test_progress_follows_rows_not_bytes_read_ahead(tmp_path, encoder):
    Image.new("RGB", (20, 20), "green").save(tmp_path / "ok.png")
    src = _write(tmp_path / "in.csv", [("ok.png", f"caption {i:04d}") for i in range(400)])
    seen = []
    score_csv(src, tmp_path / "out.csv", encoder, BatchOptions(image_roots=[str(tmp_path)], chunk_rows=100),
              lambda fraction, text: seen.append((fraction, text)))
    assert [t for _, t in seen] == [f"{n} rows scored" for n in (100, 200, 300, 400)]
    for (fraction, _), rows in zip(seen, (100, 200, 300, 400)):
        assert fraction == pytest.approx(rows / 400, abs=0.01)


def test_a_running_batch_can_be_cancelled(tmp_path, encoder):
    Image.new("RGB", (20, 20), "green").save(tmp_path / "ok.png")
    src = _write(tmp_path / "in.csv", [("ok.png", f"caption {i}") for i in range(50)])
    chunks = []
    with pytest.raises(BatchCancelled, match="Cancelled after 20 rows"):
        score_csv(src, tmp_path / "out.csv", encoder, BatchOptions(image_roots=[str(tmp_path)], chunk_rows=10),
                  lambda fraction, text: chunks.append(text), should_stop=lambda: len(chunks) >= 1)
    assert len(_read(tmp_path / "out.csv")) == 21  # what was scored is kept for --resume


cell_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.one_of(cell_text, st.sampled_from(BAD_CELLS), cell_text.map(lambda s: "http://" + s)),
                               cell_text), min_size=1, max_size=8),
       header_extra=cell_text)
def test_any_cells_make_one_output_row_each_and_no_formula(tmp_path_factory, monkeypatch, encoder, rows, header_extra):
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [(0, 0, 0, "", ("127.0.0.1", port))])
    folder = tmp_path_factory.mktemp("prop")
    rows = [(image, caption, "=1") for image, caption in rows]
    src = _write(folder / "in.csv", rows, ("image", "caption", header_extra or "x"))
    report = score_csv(src, folder / "out.csv", encoder,
                       BatchOptions(image_roots=[str(folder)], fetch_workers=2, limits=fetch.FetchLimits(timeout_s=0.5)))
    with open(src, newline="", encoding="utf-8") as f:
        expected = [r for r in csv.reader(f)][1:]
    expected = [r for r in expected if r]  # a blank line is no row
    out = _read(folder / "out.csv")
    assert report.rows == len(expected) and len(out) == len(expected) + 1
    for row in out:
        for cell in row:
            assert not starts_formula(cell), cell

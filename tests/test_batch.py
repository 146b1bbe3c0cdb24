"""Batch CSV scoring against a CSV of nasty rows served from 127.0.0.1."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from clip_arena.analyzer.batch import BatchOptions, score_csv
from clip_arena.core.errors import UserError
from clip_arena.core.settings import FetchLimits
from http_server import LocalServer, Route
from clip_arena.models import get_encoder


def _bytes(img, fmt="PNG", **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def server():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (64, 80, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = _bytes(photo, "JPEG")
    with LocalServer() as s:
        s.routes.update({
            "/ok.png": Route(_bytes(Image.new("RGB", (40, 30), "red"))),
            "/html": Route(b"<html>not an image</html>", headers={"Content-Type": "text/html"}),
            "/slow.png": Route(_bytes(Image.new("RGB", (8, 8))), delay_s=3),
            "/moved": Route(status=302, headers={"Location": "/ok.png"}),
            "/bomb.png": Route(_bytes(Image.new("L", (9000, 9000)))),
            "/cut.jpg": Route(jpeg[: len(jpeg) // 2]),
            "/cmyk.jpg": Route(_bytes(Image.new("CMYK", (30, 30), (0, 200, 200, 0)), "JPEG")),
            "/alpha.png": Route(_bytes(Image.new("RGBA", (30, 30), (0, 0, 255, 128)))),
            "/rotated.jpg": Route(_bytes(photo, "JPEG", exif=exif.tobytes())),
        })
        yield s


@pytest.fixture
def nasty_csv(tmp_path, server):
    (tmp_path / "root").mkdir()
    Image.new("RGB", (20, 20), "green").save(tmp_path / "root" / "local.png")
    Image.new("RGB", (20, 20), "white").save(tmp_path / "secret.png")
    u = server.url
    rows = [
        (u("/ok.png"), "a red rectangle", "fine"),
        (u("/html"), "html page", "non-image"),
        (u("/missing.png"), "gone", "404"),
        (u("/slow.png"), "slow", "timeout"),
        (u("/moved"), "a red rectangle", "redirect"),
        (u("/bomb.png"), "huge", "bomb"),
        (u("/cut.jpg"), "cut", "truncated"),
        (u("/cmyk.jpg"), "cyan", "cmyk"),
        (u("/alpha.png"), "blue", "alpha"),
        (u("/rotated.jpg"), "noise", "exif"),
        ("../secret.png", "escape", "traversal"),
        ("ftp://example.com/a.png", "ftp", "scheme"),
        ("local.png", "x" * 3000, "long caption"),
        ("local.png", "a green\nsquare\non two lines", "multi-line"),
        (u("/ok.png"), "=HYPERLINK(\"http://evil\")", "@formula"),
    ]
    path = tmp_path / "nasty.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image_url", "text", "note"])
        w.writerows(rows)
    return path, tmp_path / "root", rows


EXPECTED_ERRORS = {
    "non-image": "not_image", "404": "http_error", "timeout": "timeout", "bomb": "too_many_pixels",
    "truncated": "truncated", "traversal": "outside_roots", "scheme": "bad_scheme",
}


def test_every_bad_row_gets_its_own_error_and_every_good_row_a_score(nasty_csv, tmp_path, tiny_open_clip_spec, server):
    path, root, rows = nasty_csv
    enc = get_encoder(tiny_open_clip_spec)
    options = BatchOptions(image_roots=[str(root)], chunk_rows=4, fetch_workers=8,
                           limits=FetchLimits(allow_private_urls=True, timeout_s=1.0, max_pixels=10_000_000))
    report = score_csv(path, tmp_path / "out.csv", enc, options)
    out = _read(tmp_path / "out.csv")
    assert len(out) == len(rows) and [r["text"] for r in out][:5] == [r[1] for r in rows][:5]  # input order
    assert out[13]["text"] == "a green\nsquare\non two lines"
    for row, (_, _, note) in zip(out, rows):
        if note in EXPECTED_ERRORS:
            assert row["error"].startswith(EXPECTED_ERRORS[note] + ":"), (note, row["error"])
            assert row["cosine"] == ""
        else:
            assert row["error"] == "", (note, row["error"])
            assert -1 <= float(row["cosine"]) <= 1
            assert float(row["similarity"]) == pytest.approx((float(row["cosine"]) + 1) / 2, abs=1e-4)
    assert out[14]["text"].startswith("'=HYPERLINK") and out[14]["note"] == "'@formula"
    assert report.rows == 15 and report.scored == 8 and sum(report.errors.values()) == 7
    assert server.hits.count("/ok.png") == 2  # /ok.png directly once, and once through /moved
    # EXIF orientation applied: the score equals that of the upright image
    upright = Image.open(io.BytesIO(server.routes["/rotated.jpg"].body)).rotate(-90, expand=True)
    expected = float(enc.encode_images([upright])[0] @ enc.encode_texts(["noise"])[0])
    assert float(out[9]["cosine"]) == pytest.approx(expected, abs=0.02)


def test_private_addresses_refused_without_the_opt_out(nasty_csv, tmp_path, tiny_open_clip_spec, server):
    path, root, _ = nasty_csv
    score_csv(path, tmp_path / "out.csv", get_encoder(tiny_open_clip_spec), BatchOptions(image_roots=[str(root)]))
    out = _read(tmp_path / "out.csv")
    urls = [r for r in out if r["image_url"].startswith("http://127.0.0.1")]
    assert urls and all(r["error"].startswith("private_address:") for r in urls)
    assert server.hits == []
    assert out[12]["error"] == ""  # local files under the root still work


def test_resume_continues_without_redoing_finished_rows(nasty_csv, tmp_path, tiny_open_clip_spec, server):
    path, root, _ = nasty_csv
    enc = get_encoder(tiny_open_clip_spec)
    limits = FetchLimits(allow_private_urls=True, timeout_s=1.0, max_pixels=10_000_000)
    calls = []

    def interrupt(fraction, text):
        calls.append(text)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_csv(path, tmp_path / "out.csv", enc, BatchOptions(image_roots=[str(root)], chunk_rows=4, limits=limits),
                  interrupt)
    assert len(_read(tmp_path / "out.csv")) == 8  # two chunks were on disk
    hits_before = len(server.hits)
    report = score_csv(path, tmp_path / "out.csv", enc,
                       BatchOptions(image_roots=[str(root)], chunk_rows=4, limits=limits, resume=True))
    assert report.skipped_resumed == 8 and report.rows == 7
    assert "/html" not in server.hits[hits_before:]  # row 2 was not fetched again
    score_csv(path, tmp_path / "fresh.csv", enc, BatchOptions(image_roots=[str(root)], chunk_rows=4, limits=limits))
    resumed, fresh = _read(tmp_path / "out.csv"), _read(tmp_path / "fresh.csv")
    assert [r["text"] for r in resumed] == [r["text"] for r in fresh]
    assert [r["cosine"] for r in resumed] == [r["cosine"] for r in fresh]


def test_delimiter_bom_and_columns(tmp_path, tiny_open_clip_spec):
    Image.new("RGB", (20, 20), "green").save(tmp_path / "a.png")
    (tmp_path / "semi.csv").write_bytes("\ufeffPicture;Words\na.png;a green square\n".encode("utf-8"))
    enc = get_encoder(tiny_open_clip_spec)
    with pytest.raises(UserError, match="No image column found.*Picture, Words"):
        score_csv(tmp_path / "semi.csv", tmp_path / "o.csv", enc, BatchOptions(image_roots=[str(tmp_path)]))
    assert not (tmp_path / "o.csv").exists()  # a clear error before any work
    report = score_csv(tmp_path / "semi.csv", tmp_path / "o.csv", enc,
                       BatchOptions(image_column="Picture", caption_column="Words", image_roots=[str(tmp_path)]))
    assert report.scored == 1 and _read(tmp_path / "o.csv")[0]["Picture"] == "a.png"
    with pytest.raises(UserError, match="no caption column 'nope'"):
        score_csv(tmp_path / "semi.csv", tmp_path / "o.csv", enc,
                  BatchOptions(image_column="Picture", caption_column="nope"))
    (tmp_path / "latin.csv").write_bytes("image,caption\na.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        score_csv(tmp_path / "latin.csv", tmp_path / "o.csv", enc, BatchOptions())


def test_local_paths_off_without_roots(tmp_path, tiny_open_clip_spec):
    Image.new("RGB", (20, 20), "green").save(tmp_path / "a.png")
    (tmp_path / "in.csv").write_text(f"image,caption\n{tmp_path / 'a.png'},green\n")
    score_csv(tmp_path / "in.csv", tmp_path / "o.csv", get_encoder(tiny_open_clip_spec), BatchOptions(image_roots=None))
    assert _read(tmp_path / "o.csv")[0]["error"].startswith("local_path_refused:")

"""The Batch tab's preview: sorted and filtered over the whole scored file, with thumbnails and
the percentile the Similarity tab reports."""

import base64
import io
from types import SimpleNamespace

import pandas as pd
import pytest
from PIL import Image

from clip_arena.analyzer.batch_view import SHOWS, SORTS, preview_rows, refresh_preview, run_batch, with_thumbnails
from clip_arena.analyzer.similarity import score_image_texts
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings
from clip_arena.models import get_encoder


def scored_csv(tmp_path, cosines, errors):
    path = tmp_path / "scored.csv"
    pd.DataFrame({"url": [f"img{i}.png" for i in range(len(cosines))], "caption": "x",
                  "cosine": ["" if c is None else str(c) for c in cosines], "error": errors}).to_csv(path, index=False)
    return path


def test_preview_sorts_the_whole_file_by_cosine_and_keeps_input_row_numbers(tmp_path):
    cosines = [0.1, None, 0.9, -0.3, 0.5] * 30000  # more rows than one chunk
    errors = ["" if c is not None else "not_found: gone" for c in cosines]
    path = scored_csv(tmp_path, cosines, errors)
    top = preview_rows(path, SORTS[1], SHOWS[0], limit=5)
    assert top["cosine"].tolist() == ["0.9"] * 5 and top["row"].tolist() == [3, 8, 13, 18, 23]
    low = preview_rows(path, SORTS[2], SHOWS[1], limit=3)
    assert low["cosine"].tolist() == ["-0.3"] * 3
    first = preview_rows(path, SORTS[0], SHOWS[0], limit=4)
    assert first["row"].tolist() == [1, 2, 3, 4]


def test_preview_filters_by_error(tmp_path):
    path = scored_csv(tmp_path, [0.2, None, 0.4, None], ["", "not_found: a", "", "decode: b"])
    errors = preview_rows(path, SORTS[0], SHOWS[2])
    assert errors["row"].tolist() == [2, 4] and errors["error"].str.len().gt(0).all()
    assert preview_rows(path, SORTS[1], SHOWS[1])["row"].tolist() == [3, 1]
    with pytest.raises(UserError):
        preview_rows(path, "by colour", SHOWS[0])


def test_thumbnails_and_percentiles_match_the_similarity_tab(tmp_path, tiny_open_clip_spec, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (90, 60), (200, 30, 30)).save(tmp_path / "red.png")
    source = tmp_path / "pairs.csv"
    source.write_text("url,title\nred.png,a red square\nmissing.png,gone\n")
    settings = Settings(model=tiny_open_clip_spec, image_roots=[str(tmp_path)])
    table, _, _, output = run_batch(str(source), "url", "title", tiny_open_clip_spec, settings)
    assert list(table.columns[:2]) == ["row", "thumbnail"] and "percentile" in table.columns
    thumb = table.loc[0, "thumbnail"]
    data = base64.b64decode(thumb.split("base64,", 1)[1].rstrip(")"))
    small = Image.open(io.BytesIO(data))
    assert max(small.size) <= 64 and small.getpixel((small.width // 2, small.height // 2))[0] > 150
    expected = score_image_texts(get_encoder(tiny_open_clip_spec), Image.open(tmp_path / "red.png").convert("RGB"),
                                 ["a red square"])[0]
    assert float(table.loc[0, "percentile"]) == pytest.approx(expected.percentile, abs=0.11)
    assert table.loc[1, "thumbnail"] == "" and table.loc[1, "percentile"] == ""  # the row with an error
    again = refresh_preview(output, "", SORTS[0], SHOWS[2], tiny_open_clip_spec, settings)
    assert again["row"].tolist() == [2]


def test_a_changed_image_leaves_the_row_without_thumbnail(tmp_path, tiny_open_clip_spec):
    rows = pd.DataFrame({"row": [1], "url": [str(tmp_path / "gone.png")], "cosine": ["0.3"], "error": [""]})
    out = with_thumbnails(rows, "url", get_encoder(tiny_open_clip_spec), Settings(image_roots=[str(tmp_path)]))
    assert out.loc[0, "thumbnail"] == "" and out.loc[0, "percentile"] == ""


def test_sorting_and_filtering_the_preview_fetches_no_image_again(tmp_path, tiny_open_clip_spec):
    """The preview's thumbnails and percentiles come from its images; re-sorting a preview used to
    fetch all of them again (up to 50 URLs a click). Fails before the preview kept them."""
    from dataclasses import replace

    from clip_arena.core.settings import FetchLimits
    from http_server import LocalServer, Route

    with LocalServer() as server:
        rows = []
        for i in range(6):
            buf = io.BytesIO()
            Image.new("RGB", (40, 30), (40 * i, 90, 200 - 30 * i)).save(buf, "PNG")
            server.routes[f"/{i}.png"] = Route(buf.getvalue(), headers={"Content-Type": "image/png"})
            rows.append(f"{server.url(f'/{i}.png')},picture {i}")
        source = tmp_path / "pairs.csv"
        source.write_text("url,title\n" + "\n".join(rows) + "\n")
        settings = replace(Settings(model=tiny_open_clip_spec, image_roots=[str(tmp_path)]),
                           limits=FetchLimits(allow_private_urls=True))
        table, _, _, output = run_batch(str(source), "url", "title", tiny_open_clip_spec, settings)
        assert table["thumbnail"].str.startswith("![thumbnail]").all()
        fetched = len(server.hits)
        for sort, show in [(SORTS[1], SHOWS[0]), (SORTS[2], SHOWS[1]), (SORTS[0], SHOWS[0])]:
            again = refresh_preview(output, "url", sort, show, tiny_open_clip_spec, settings)
            assert again["thumbnail"].str.startswith("![thumbnail]").all() and len(again) == 6
        assert len(server.hits) == fetched
        first = refresh_preview(output, "url", SORTS[0], SHOWS[0], tiny_open_clip_spec, settings)
        assert first["percentile"].tolist() == table["percentile"].tolist()


def test_a_preview_of_a_file_that_is_not_a_scored_csv_is_one_sentence(tmp_path, serve_app):
    """On main /on_view with a votes.db or a CSV without an error column gave a traceback and raw
    error text."""
    from gradio_client import Client, handle_file

    from clip_arena.analyzer.batch_view import ResultGone, refresh_preview
    from clip_arena.core.errors import UserError
    from clip_arena.core.settings import Settings

    db = tmp_path / "votes.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(4000))
    plain = tmp_path / "plain.csv"
    plain.write_text("image,caption\na.png,a cat\n")
    settings = Settings(model="demo:base")
    for path in (db, plain):
        with pytest.raises(UserError) as info:
            refresh_preview(str(path), "", "input order", "all rows", "demo:base", settings)
        assert not isinstance(info.value, ResultGone) and str(info.value).count(". ") == 0
    with pytest.raises(ResultGone):
        refresh_preview(str(tmp_path / "gone.csv"), "", "input order", "all rows", "demo:base", settings)
    client = Client(serve_app("--votes", str(tmp_path / "v.db")), verbose=False, download_files=False)
    for path in (db, plain):
        with pytest.raises(Exception) as info:
            client.predict(handle_file(str(path)), None, "input order", "all rows", "demo:base", api_name="/on_view")
        assert "not a scored CSV" in str(info.value) and "Traceback" not in str(info.value)


def test_an_input_with_its_own_row_and_thumbnail_columns_previews(tmp_path):
    """The preview adds `row` and `thumbnail`: an input's own columns of those names stay, renamed."""
    path = tmp_path / "scored.csv"
    pd.DataFrame({"row": ["r7", "r8"], "thumbnail": ["t", "u"], "url": ["a.png", "b.png"], "cosine": ["0.1", "0.4"],
                  "error": ["", ""]}).to_csv(path, index=False)
    top = preview_rows(path, SORTS[1], SHOWS[0])
    assert top["row"].tolist() == [2, 1] and top["input_row"].tolist() == ["r8", "r7"]
    encoder = SimpleNamespace(spec="stand-in", device="cpu")  # never reached: the images do not exist
    shown = with_thumbnails(top, "url", encoder, Settings(image_roots=[str(tmp_path)]))
    assert list(shown.columns[:4]) == ["row", "thumbnail", "input_row", "input_thumbnail"]
    assert shown["input_thumbnail"].tolist() == ["u", "t"]

"""End to end: drop a CSV on the Batch tab, score it, download the scored file."""

import csv

import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def open_batch_tab_with(serve_app, page, tmp_path, model: str, rows: str) -> None:
    """A red and a blue square in the app's folder (its image root), the Batch tab open and a CSV
    with `rows` (under a header url,title) dropped on it."""
    Image.new("RGB", (30, 30), "red").save(tmp_path / "red.png")
    Image.new("RGB", (30, 30), "blue").save(tmp_path / "blue.png")
    source = tmp_path / "upload" / "pairs.csv"
    source.parent.mkdir()
    source.write_text("url,title\n" + rows)
    page.goto(serve_app("--model", model))  # the app runs in tmp_path: its image root
    page.get_by_role("tab", name="Batch CSV").click()
    page.locator("#batch-upload input[type=file]").set_input_files(str(source))


def test_batch_tab_scores_an_uploaded_csv(serve_app, page, tmp_path, tiny_open_clip_spec):
    open_batch_tab_with(serve_app, page, tmp_path, tiny_open_clip_spec,
                        "red.png,a red square\nblue.png,a blue square\nnope.png,missing\n")
    page.locator("#batch-image-col input").first.wait_for()
    page.wait_for_function("() => document.querySelector('#batch-image-col input').value === 'url'")
    assert page.locator("#batch-caption-col input").input_value() == "title"
    page.locator("#batch-run").click()
    page.locator("#batch-summary").get_by_text("Done:").wait_for(timeout=60_000)  # not the progress text
    assert "3 rows, 2 scored, 1 errors" in page.locator("#batch-summary").inner_text()
    assert "not_found" in page.locator("#batch-summary").inner_text()
    page.screenshot(path=str(tmp_path / "batch_done.png"), full_page=True)
    with page.expect_download() as info:
        page.locator("#batch-result a").first.click()
    target = tmp_path / "downloaded.csv"
    info.value.save_as(target)
    with open(target, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["title"] for r in rows] == ["a red square", "a blue square", "missing"]
    assert rows[0]["error"] == "" and -1 <= float(rows[0]["cosine"]) <= 1
    assert rows[2]["error"].startswith("not_found:")


def test_batch_preview_shows_thumbnails_and_sorts_and_filters(serve_app, page, tmp_path, tiny_open_clip_spec):
    open_batch_tab_with(serve_app, page, tmp_path, tiny_open_clip_spec,
                        "red.png,a red square\nnope.png,missing\nblue.png,a blue square\n")
    page.wait_for_function("() => document.querySelector('#batch-image-col input').value === 'url'")
    page.locator("#batch-run").click()
    page.locator("#batch-summary").get_by_text("Done:").wait_for(timeout=60_000)
    preview = page.locator("#batch-preview")
    preview.locator("img[src^='data:image/jpeg']:visible").nth(1).wait_for()  # the two scored rows' thumbnails
    thumbs = preview.locator("img[src^='data:image/jpeg']:visible")  # the table keeps a hidden copy too
    assert thumbs.count() == 2
    assert preview.locator("[data-testid=cell-0-1] img:visible").count() == 1  # row 1: red.png
    assert preview.locator("[data-testid=cell-1-1] img").count() == 0  # row 2: nope.png, an error
    assert "percentile" in preview.inner_text()
    page.locator("#batch-show input").click()
    page.get_by_role("option", name="rows with errors").click()
    page.wait_for_function("() => !document.querySelector('#batch-preview').innerText.includes('a red square')")
    assert "missing" in preview.inner_text() and preview.locator("img[src^='data:image/jpeg']:visible").count() == 0
    page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)

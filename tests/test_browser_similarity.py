"""End to end: the real app in a subprocess, driven by Chromium through Playwright."""

import pytest
from PIL import Image

from tests.browser_helpers import upload_image

pytestmark = pytest.mark.browser


def test_similarity_tab_scores_two_captions(serve_app, page, tiny_open_clip_spec, tmp_path):
    image = tmp_path / "green.png"
    Image.new("RGB", (120, 90), (20, 160, 40)).save(image)
    url = serve_app("--model", tiny_open_clip_spec)
    page.goto(url)
    page.get_by_role("tab", name="Similarity").click()
    upload_image(page, "sim-image", image)
    page.locator("#sim-captions textarea").fill("a green square\na red sports car")
    page.locator("#sim-run").click()
    summary = page.locator("#sim-summary")
    summary.get_by_text("Best match").wait_for()
    cell = lambda r, c: page.locator(f"#sim-table [data-testid=cell-{r}-{c}]").inner_text().strip()  # noqa: E731
    shown = {}
    for r in range(2):
        rank, caption, cosine, similarity = cell(r, 0), cell(r, 1), float(cell(r, 2)), float(cell(r, 3))
        assert rank == str(r + 1) and -1 <= cosine <= 1
        assert similarity == pytest.approx(round((cosine + 1) / 2, 4), abs=1e-4)
        shown[caption] = cosine
    assert page.locator("#sim-table [data-testid=cell-2-0]").count() == 0  # one row per caption
    assert set(shown) == {"a green square", "a red sports car"}
    assert "cosine" in summary.inner_text()


def test_similarity_tab_shows_clear_error_for_missing_image(serve_app, page, tiny_open_clip_spec):
    page.goto(serve_app("--model", tiny_open_clip_spec))
    page.get_by_role("tab", name="Similarity").click()
    page.locator("#sim-captions textarea").fill("a cat")
    page.locator("#sim-run").click()
    page.get_by_text("Add an image").first.wait_for()


def test_a_bad_upload_clears_the_result_and_says_so(serve_app, page, tiny_open_clip_spec, tmp_path):
    image, notes = tmp_path / "green.png", tmp_path / "notes.png"
    Image.new("RGB", (60, 40), (20, 160, 40)).save(image)
    notes.write_text("this is a text file with an image name")
    page.goto(serve_app("--model", tiny_open_clip_spec))
    page.get_by_role("tab", name="Similarity").click()
    page.locator("#sim-url textarea, #sim-url input").first.fill("green.png")  # under the app's image root
    page.locator("#sim-captions textarea").fill("a green square")
    page.locator("#sim-run").click()
    page.locator("#sim-summary").get_by_text("Best match").wait_for()
    upload_image(page, "sim-image", notes)  # an upload wins over the box
    page.locator("#sim-run").click()
    page.locator("#sim-summary").get_by_text("Error:").wait_for()
    page.screenshot(path=str(tmp_path / "bad_upload.png"), full_page=True)
    text = page.locator("#sim-summary").inner_text()
    assert "uploaded image is not an image" in text and "Best match" not in text
    assert "preprocess" not in page.content() and "/tmp/" not in text
    assert page.locator("#sim-table [data-testid=cell-0-0]").count() == 0  # the previous result is gone

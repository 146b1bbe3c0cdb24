"""End to end: the real app in a subprocess, driven by Chromium through Playwright."""

import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def test_similarity_tab_scores_two_captions(serve_app, page, tiny_open_clip_spec, tmp_path):
    image = tmp_path / "green.png"
    Image.new("RGB", (120, 90), (20, 160, 40)).save(image)
    url = serve_app("--model", tiny_open_clip_spec)
    page.goto(url)
    page.get_by_role("tab", name="Similarity").click()
    page.locator("#sim-image input[type=file]").set_input_files(str(image))
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

"""End to end: the Analyze tab in Chromium, with a trained effectiveness model loaded."""

import pytest

from clip_arena.core.settings import Settings
from clip_arena.effectiveness.train import TrainOptions, train
from tests.browser_helpers import upload_image
from tests.drawing import printed_text
from tests.test_effectiveness import write_creatives

pytestmark = pytest.mark.browser


def test_analyze_tab_shows_sections_prediction_and_json(serve_app, page, tiny_open_clip_spec, tmp_path):
    model_file = tmp_path / "ctr.joblib"
    train(write_creatives(tmp_path, rows=40), model_file,
          TrainOptions(target="ctr", model=tiny_open_clip_spec, tabular=[]), Settings())
    image = tmp_path / "ad.png"
    printed_text("SALE 50% OFF").save(image)
    page.goto(serve_app("--model", tiny_open_clip_spec, "--effectiveness-model", str(model_file)))
    page.get_by_role("tab", name="Analyze").click()
    upload_image(page, "an-image", image)
    page.locator("#an-text textarea").fill("Love it! 50% off everything this weekend. Shop now at example.com")
    page.locator("#an-run").click()
    ocr = page.locator('#an-report [data-section="ocr"]')
    ocr.wait_for(timeout=60_000)
    assert "SALE 50% OFF" in ocr.inner_text().upper()
    assert ocr.get_attribute("data-status") == "ok"
    sentiment = page.locator('#an-report [data-section="sentiment"]')
    assert sentiment.get_attribute("data-status") == "degraded" and "positive" in sentiment.inner_text()
    palette = page.locator('#an-report [data-section="image_properties"]').inner_text()
    assert "#ffffff white 9" in palette and " black " in palette and "darkgray" not in palette
    effect = page.locator('#an-report [data-section="effectiveness"]')
    assert effect.get_attribute("data-status") == "ok" and "prediction" in effect.inner_text()
    assert "unavailable" in page.locator('#an-report [data-section="caption"]').inner_text()
    assert "sections with model" in page.locator("#an-summary").inner_text()
    assert page.locator("#an-json a").first.get_attribute("href")  # the JSON report can be downloaded


def test_analyze_tab_asks_for_input(serve_app, page, tiny_open_clip_spec):
    page.goto(serve_app("--model", tiny_open_clip_spec))
    page.get_by_role("tab", name="Analyze").click()
    page.locator("#an-run").click()
    page.get_by_text("Add an image, a video or a text").first.wait_for()

"""End to end in Chromium: the Explore tab searches the demo catalog by text, shows the methods
side by side with scores, and opens an image with its metadata; the photo tabs show the notice
when the demo model stands in for the configured one."""

import re

import pytest

from clip_arena.core.settings import DEFAULT_CATALOG
from clip_arena.index.catalog import read_catalog

pytestmark = pytest.mark.browser

QUERY = "grinning face with smiling eyes"


def test_explore_text_query_returns_the_right_subgroup_with_the_finetuned_method(serve_app, page, tmp_path):
    subgroup = dict(zip(*[read_catalog(DEFAULT_CATALOG).frame()[c] for c in ("caption", "subcategory")]))
    page.goto(serve_app("--votes", str(tmp_path / "votes.db")))  # the bundled demo
    page.get_by_role("tab", name="Explore").click()
    page.locator("#explore-methods").get_by_text("finetuned").wait_for()
    page.locator("#explore-text input, #explore-text textarea").first.fill(QUERY)
    page.locator("#explore-run").click()
    finetuned = page.locator("#explore-gallery-1")  # the catalog's second method
    assert "finetuned" in finetuned.inner_text()
    finetuned.locator("img").nth(7).wait_for(timeout=60_000)
    page.locator("#explore-gallery-0 img").nth(7).wait_for()
    labels = [t.strip() for t in finetuned.locator(".caption-label").all_inner_texts()]
    assert len(labels) == 8
    scores = [float(re.match(r"(-?\d\.\d{3}) · ", t).group(1)) for t in labels]
    assert scores == sorted(scores, reverse=True)  # scores under each image, best first
    names = [t.split(" · ", 1)[1] for t in labels]
    found = [subgroup[n] for n in names]
    assert found[:4] == ["face-smiling"] * 4 and found.count("face-smiling") >= 5, names
    assert "finetuned" in page.locator("#explore-summary").inner_text()
    html = page.content()
    assert str(DEFAULT_CATALOG.parent) not in html  # pixels, not server paths

    finetuned.locator("img").first.click()  # opens the image, and its metadata below
    details = page.locator("#explore-details")
    details.get_by_text("face-smiling").first.wait_for()
    assert "Smileys & Emotion" in details.inner_text() and names[0] in details.inner_text()
    page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)


def test_photo_tabs_show_the_notice_when_the_demo_model_stands_in(serve_app, page, tmp_path):
    page.goto(serve_app("--votes", str(tmp_path / "votes.db")))  # default model: not loadable offline
    for tab, prefix in (("Similarity", "sim"), ("Analyze", "an"), ("Batch CSV", "batch")):
        page.get_by_role("tab", name=tab).click()
        notice = page.locator(f"#{prefix}-model-notice")
        notice.get_by_text("trained on emoji only").wait_for(timeout=60_000)
        assert "point --model at a CLIP checkpoint" in notice.inner_text()
        assert "open_clip:ViT-B-32@openai" in notice.inner_text()

"""The arena as a person judging their own photos sees it, in Chromium at 1280x800: results large
enough to judge (at least ~220 px wide), the seven buttons and the key legend in view without
scrolling, before and after a vote; an enlarged result fills most of the window; and once every
query was judged, a clear stop with a Continue button. On main the results were 115 px wide and the
enlarged view opened inside the same small box."""

import pytest

from catalog_helpers import write_photo_catalog

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 1280, 800


def _in_view(page, selector):
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, (selector, box)
    return box


def _check_layout(page):
    page.evaluate("window.scrollTo(0, 0)")  # everything fits the window from the top of the page
    for side in ("left", "right"):
        widths = [page.locator(f"#arena-{side} img").nth(i).bounding_box()["width"] for i in range(4)]
        assert min(widths) >= 220, (side, widths)
        _in_view(page, f"#arena-{side} img >> nth=3")  # the last result too
    for action in ("left", "right", "tie", "both_bad", "skip", "undo", "finish"):
        _in_view(page, f"#arena-btn-{action}")
    _in_view(page, "#arena-legend")


def test_photos_are_large_and_every_control_in_view_at_1280x800(serve_app, page, tmp_path):
    catalog = write_photo_catalog(tmp_path, n=12, tests=3)
    url = serve_app("--catalog", str(catalog), "--votes", str(tmp_path / "votes.db"))
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    page.goto(url)
    page.locator("#arena-name input, #arena-name textarea").first.fill("judge")
    page.locator("#arena-start").click()
    page.locator("#arena-status").get_by_text("Round 1.").wait_for()
    page.locator("#arena-right img >> nth=3").wait_for()
    _check_layout(page)
    page.screenshot(path=str(tmp_path / "arena-1280x800.png"))

    page.locator("#arena-left img").first.click()  # enlarge: most of the window, not the small box
    preview = page.locator("#arena-left .preview img").first
    preview.wait_for()
    box = preview.bounding_box()
    assert box["width"] >= WIDTH / 2 or box["height"] >= HEIGHT / 2, box
    page.screenshot(path=str(tmp_path / "enlarged.png"))
    page.keyboard.press("Escape")
    page.locator("#arena-left .preview").wait_for(state="detached")

    page.locator('#arena-root[data-arena-ready="yes"]').wait_for(state="attached")
    page.keyboard.press("a")
    page.locator("#arena-status").get_by_text("Round 2.").wait_for()
    page.locator("#arena-message .arena-flash").wait_for()  # the reveal beside the status line
    page.locator("#arena-right img >> nth=3").wait_for()
    _check_layout(page)
    page.screenshot(path=str(tmp_path / "after-vote.png"))

    for number in (3, None):  # the third query, then the stop
        page.locator('#arena-root[data-arena-ready="yes"]').wait_for(state="attached")
        page.keyboard.press("b")
        if number:
            page.locator("#arena-status").get_by_text(f"Round {number}.").wait_for()
    page.locator("#arena-status").get_by_text("You have judged every test query (3)").wait_for()
    assert page.locator("#arena-btn-left").is_disabled()
    page.locator("#arena-start").wait_for()  # the name and category are back, to choose another
    page.screenshot(path=str(tmp_path / "covered.png"))
    page.locator("#arena-continue").click()
    page.locator("#arena-status").get_by_text("Round 4.").wait_for()
    assert page.locator("#arena-continue").is_hidden()

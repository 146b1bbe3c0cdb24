"""End to end: the Results tab reads the verdict of votes already in the store."""

import pytest

from catalog_helpers import ARENA_METHODS
from votes.store import ShownRound, VoteStore

pytestmark = pytest.mark.browser


def test_results_tab_shows_the_verdict(serve_app, page, arena_catalog, tiny_open_clip_spec):
    catalog, db = arena_catalog
    store = VoteStore(db)
    a, b = ARENA_METHODS
    for i, choice in enumerate(["right"] * 14 + ["left"] * 3 + ["tie"] * 2):
        r = ShownRound(f"r{i}", "ann", "s", f"img{i % 10}", a if i % 2 else b, b if i % 2 else a,
                       ["img11"], ["img12"], 0, "fp")
        store.record_round(r)
        store.record_vote(r, choice, 500)
    url = serve_app("--catalog", str(catalog), "--votes", str(db), "--model", tiny_open_clip_spec)
    page.goto(url)
    page.get_by_role("tab", name="Results").click()
    verdict = page.locator("#results-verdict")
    verdict.get_by_text("decisive votes").wait_for()
    text = verdict.inner_text()
    # 14 "right" and 3 "left" picks with sides alternating: count the wins per method as the test does
    wins = {a: 0, b: 0}
    for i, choice in enumerate(["right"] * 14 + ["left"] * 3):
        left, right = (a, b) if i % 2 else (b, a)
        wins[right if choice == "right" else left] += 1
    leader = max(wins, key=wins.get)
    assert text.startswith(f"{leader} wins {round(100 * wins[leader] / 17)}% of decisive votes")
    assert "17 decisive of 19 votes" in text
    assert "2 auto-skipped" not in page.locator("#results-details").inner_text()
    page.locator("#results-outcomes .js-plotly-plot").first.wait_for()

"""End to end: the Results tab reads the verdict of votes already in the store."""

import os
import re

import pytest

from catalog_helpers import ARENA_METHODS
from clip_arena.votes.store import ShownRound, VoteStore

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("CLIP_ARENA_SCREENSHOTS")  # a folder: save what the test saw


def test_results_tab_shows_the_verdict(serve_app, page, arena_catalog, tiny_open_clip_spec):
    catalog, db = arena_catalog
    store = VoteStore(db)
    a, b = ARENA_METHODS
    choices = ["right"] * 14 + ["left"] * 3 + ["tie"] * 2
    for i, choice in enumerate(choices):
        r = ShownRound(f"r{i}", "ann" if i < 15 else "late", "s", f"img{i % 10}", a if i % 2 else b,
                       b if i % 2 else a, ["img11"], ["img12"], 0, "fp")
        store.record_round(r)
        store.record_vote(r, choice, 500)
    # count the wins per method as the test does: sides alternate
    wins = {a: 0, b: 0}
    for i, choice in enumerate(choices[:17]):
        left, right = (a, b) if i % 2 else (b, a)
        wins[right if choice == "right" else left] += 1
    leader = max(wins, key=wins.get)
    url = serve_app("--catalog", str(catalog), "--votes", str(db), "--model", tiny_open_clip_spec)
    page.goto(url)
    assert not page.locator("#results-files").is_visible()
    page.get_by_role("tab", name="Results").click()
    verdict = page.locator("#results-verdict")
    verdict.get_by_text(leader).first.wait_for()
    text = verdict.inner_text()
    assert text.startswith(f"{leader} is better") or text.startswith(f"No clear winner yet: {leader} leads")
    details = page.locator("#results-details").inner_text()
    assert (f"Per vote (as if every vote were independent): {leader} wins {round(100 * wins[leader] / 17)}% of "
            f"decisive votes ({wins[leader]} of 17, 19 votes in all") in details
    # the leaderboard lists both methods
    board = page.locator("#results-leaderboard")
    board.get_by_text(a).first.wait_for()
    assert b in board.inner_text()
    page.locator("#results-outcomes .js-plotly-plot").first.wait_for()
    assert not page.locator("#results-files").is_visible()  # no empty Exports box before an export
    if SHOTS:
        page.wait_for_timeout(1500)
        page.screenshot(path=os.path.join(SHOTS, "results.png"), full_page=True)
    # leave one annotator out: the verdict counts the other's votes only
    page.locator("#results-exclude").get_by_label("late").check()
    page.locator("#results-details").get_by_text("Left out of the verdict: late (4 votes)").wait_for()
    assert "15 votes in the verdict" in page.locator("#results-details").inner_text()
    page.locator("#results-export").click()
    page.locator("#results-files").get_by_text("summary").first.wait_for()
    assert page.locator("#results-files").is_visible()
    # The files appear right under the button (on main they came ~1,200 px below, out of sight), and
    # a note says what was exported.
    button, files = page.locator("#results-export").bounding_box(), page.locator("#results-files").bounding_box()
    assert 0 <= files["y"] - (button["y"] + button["height"]) < 120, (button, files)
    page.get_by_text(re.compile(r"Exported \d+ votes \(votes.csv")).first.wait_for()
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "results-after.png"), full_page=True)

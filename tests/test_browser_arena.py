"""End to end: vote with the keyboard in Chromium and check the SQLite rows after each key."""

import sqlite3
import time

import pytest

from catalog_helpers import ARENA_METHODS as METHODS

pytestmark = pytest.mark.browser


def _rows(db, sql):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _press(page, key, rounds):
    """Press a key, then wait until the page shows the round that follows (its number in the
    status line), so the next key is for that round."""
    page.keyboard.press(key)
    page.locator("#arena-status").get_by_text(f"Round {rounds}.").wait_for()


def test_keyboard_voting_writes_rows_and_hides_method_names(serve_app, page, arena_catalog, tiny_open_clip_spec):
    catalog, db = arena_catalog
    url = serve_app("--catalog", str(catalog), "--votes", str(db), "--model", tiny_open_clip_spec)
    page.goto(url)
    page.locator("#arena-name input, #arena-name textarea").first.fill("tester")
    page.locator("#arena-start").click()
    page.locator("#arena-left img").first.wait_for()
    page.locator("#arena-status").get_by_text("Round 1.").wait_for()
    _wait(lambda: len(_rows(db, "SELECT * FROM rounds WHERE status != 'auto_skipped'")) == 1)
    assert page.locator("#arena-left img").count() == 4 and page.locator("#arena-right img").count() == 4
    html = page.content()
    for method in METHODS:  # the current round's methods are nowhere in the page before the vote
        assert method not in html

    page.locator("#arena-name input, #arena-name textarea").first.press("a")  # typing: no vote
    time.sleep(0.8)
    assert _rows(db, "SELECT * FROM votes") == []

    page.locator("#arena-query").click()  # focus out of the text field
    page.keyboard.press("Control+b")  # with a modifier: the browser's, not a vote
    time.sleep(0.8)
    assert _rows(db, "SELECT * FROM votes") == []
    for number, (key, choice) in enumerate([("a", "left"), ("b", "right"), ("t", "tie"), ("x", "both_bad")]):
        before = len(_rows(db, "SELECT * FROM votes"))
        _press(page, key, number + 2)
        _wait(lambda: len(_rows(db, "SELECT * FROM votes")) == before + 1)
        last = _rows(db, "SELECT * FROM votes ORDER BY rowid DESC LIMIT 1")[0]
        assert last["choice"] == choice and last["annotator"] == "tester" and last["display_ms"] > 0
        status = page.locator("#arena-status").inner_text()
        assert f"Left was {last['method_left']}" in status and f"Right was {last['method_right']}" in status

    _press(page, "n", 6)
    _wait(lambda: len(_rows(db, "SELECT * FROM rounds WHERE status = 'skipped'")) == 1)
    assert len(_rows(db, "SELECT * FROM votes")) == 4

    _press(page, "u", 7)
    _wait(lambda: len(_rows(db, "SELECT * FROM votes WHERE undone_at IS NOT NULL")) == 1)
    undone = _rows(db, "SELECT * FROM votes WHERE undone_at IS NOT NULL")[0]
    assert undone["choice"] == "both_bad"  # the last vote
    shown_again = _rows(db, "SELECT * FROM rounds ORDER BY rowid DESC LIMIT 1")[0]
    assert shown_again["query_id"] == undone["query_id"] and shown_again["status"] == "shown"

    _press(page, "ArrowRight", 8)
    _wait(lambda: len(_rows(db, "SELECT * FROM votes")) == 5)
    assert _rows(db, "SELECT * FROM votes ORDER BY rowid DESC LIMIT 1")[0]["round_id"] == shown_again["round_id"]

    time.sleep(11)  # past the Results tab's refresh period: it stays empty while not shown
    html = page.content()
    assert "omegamodel wins" not in html and "alphamodel wins" not in html and "vs omegamodel" not in html

    page.keyboard.press("q")
    page.locator("#arena-status").get_by_text("Session finished").wait_for()
    assert "4 votes" in page.locator("#arena-status").inner_text()

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
    """Once the page takes keys (past the debounce of the last round), press a key, then wait until
    the page shows the round that follows (its number in the status line)."""
    page.locator('#arena-root[data-arena-ready="yes"]').wait_for(state="attached")
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

    # While a round is on screen the name and category are out of the way (room for the images);
    # a key typed in any text field is still text, not a vote.
    assert page.locator("#arena-name").is_hidden()
    page.evaluate("() => { const i = document.createElement('input'); i.id = 'typing'; "
                  "document.getElementById('arena-root').prepend(i); }")
    page.locator("#typing").press("a")  # typing: no vote
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
        message = page.locator("#arena-message").inner_text()
        assert f"Left was {last['method_left']}" in message and f"Right was {last['method_right']}" in message

    _press(page, "n", 6)
    _wait(lambda: len(_rows(db, "SELECT * FROM rounds WHERE status = 'skipped'")) == 1)
    assert len(_rows(db, "SELECT * FROM votes")) == 4

    _press(page, "u", 4)  # the round undone is shown again under its own number
    page.locator("#arena-message").get_by_text("Vote withdrawn").wait_for()
    _wait(lambda: len(_rows(db, "SELECT * FROM votes WHERE undone_at IS NOT NULL")) == 1)
    undone = _rows(db, "SELECT * FROM votes WHERE undone_at IS NOT NULL")[0]
    assert undone["choice"] == "both_bad"  # the last vote
    shown_again = _rows(db, "SELECT * FROM rounds ORDER BY rowid DESC LIMIT 1")[0]
    assert shown_again["query_id"] == undone["query_id"] and shown_again["status"] == "shown"

    _press(page, "ArrowRight", 6)  # rounds 1 to 5 were shown; the one on screen at the undo was not judged
    _wait(lambda: len(_rows(db, "SELECT * FROM votes")) == 5)
    assert _rows(db, "SELECT * FROM votes ORDER BY rowid DESC LIMIT 1")[0]["round_id"] == shown_again["round_id"]

    time.sleep(11)  # past the Results tab's refresh period: it stays empty while not shown
    html = page.content()
    assert "omegamodel wins" not in html and "alphamodel wins" not in html and "vs omegamodel" not in html

    page.keyboard.press("q")
    page.locator("#arena-status").get_by_text("Session finished").wait_for()
    finished = page.locator("#arena-status").inner_text()  # the re-vote came after the reveal: apart
    assert "3 votes" in finished and "1 more vote, cast after you saw the methods, is left out" in finished


def _votes(db):
    return len(_rows(db, "SELECT * FROM votes")) if db.exists() else 0


def _no_error_painted(page):
    assert page.locator(".toast-body.error, #arena-root .error").count() == 0
    assert "Error" not in page.locator("#arena-root").inner_text()


def _start(page, name="tester"):
    field = page.locator("#arena-name input, #arena-name textarea").first
    field.fill(name)
    field.press("Enter")  # Enter in the name field starts
    page.locator("#arena-status").get_by_text("Round 1.").wait_for()
    page.locator("#arena-query").click()  # focus out of the text field


def test_keys_before_start_after_finish_and_after_reload_do_nothing(serve_app, page, arena_catalog,
                                                                    tiny_open_clip_spec):
    catalog, db = arena_catalog
    page.goto(serve_app("--catalog", str(catalog), "--votes", str(db), "--model", tiny_open_clip_spec))
    page.locator("#arena-status").wait_for()
    for key in ("a", "b", "t", "x", "n", "u", "q"):  # before Start
        page.keyboard.press(key)
    time.sleep(1.0)
    assert _votes(db) == 0
    _no_error_painted(page)
    assert "Enter your name" in page.locator("#arena-status").inner_text()

    _start(page)
    _press(page, "a", 2)
    _wait(lambda: _votes(db) == 1)
    page.locator('#arena-root[data-arena-ready="yes"]').wait_for(state="attached")
    page.keyboard.press("q")
    page.locator("#arena-status").get_by_text("Session finished").wait_for()
    for key in ("a", "b", "u", "n"):  # after Finish
        page.keyboard.press(key)
    time.sleep(1.0)
    assert _votes(db) == 1 and len(_rows(db, "SELECT * FROM votes WHERE undone_at IS NOT NULL")) == 0
    _no_error_painted(page)

    page.reload()  # the name is remembered by the browser; keys wait for Start
    field = page.locator("#arena-name input, #arena-name textarea").first
    _wait(lambda: field.input_value() == "tester")
    page.locator("#arena-status").click()
    for key in ("a", "x", "u"):
        page.keyboard.press(key)
    time.sleep(1.0)
    assert _votes(db) == 1
    _no_error_painted(page)


def test_caps_lock_and_a_double_press(serve_app, page, arena_catalog, tiny_open_clip_spec):
    catalog, db = arena_catalog
    page.goto(serve_app("--catalog", str(catalog), "--votes", str(db), "--model", tiny_open_clip_spec))
    _start(page)
    tops = page.evaluate("() => [...document.querySelectorAll('#arena-buttons button')]"
                         ".map(b => Math.round(b.getBoundingClientRect().top))")
    assert len(tops) == 7 and len(set(tops)) == 1  # the seven buttons on one line at 1280 px
    sizes = page.evaluate("() => ['#arena-query img', '#arena-left img'].map("
                          "s => document.querySelector(s).getBoundingClientRect().height)")
    assert sizes[0] >= sizes[1] > 72  # the query at least the size of a result, upscaled

    _press(page, "A", 2)  # Caps Lock on: the key is "A" without Shift
    _wait(lambda: _votes(db) == 1)
    assert _rows(db, "SELECT choice FROM votes")[0]["choice"] == "left"
    _press(page, "B", 3)
    _wait(lambda: _votes(db) == 2)

    page.locator('#arena-root[data-arena-ready="yes"]').wait_for(state="attached")
    page.keyboard.press("t")  # a double press: the second key comes before the next round
    page.keyboard.press("t")
    page.locator("#arena-status").get_by_text("Round 4.").wait_for()
    page.keyboard.press("x")  # right after the new round appeared: a bounce, ignored
    time.sleep(1.0)
    assert [r["choice"] for r in _rows(db, "SELECT choice FROM votes ORDER BY rowid")] == ["left", "right", "tie"]
    _no_error_painted(page)
    _press(page, "x", 5)  # after the debounce it votes
    _wait(lambda: _votes(db) == 4)

"""An annotator's own path through a small catalog: each query once, never the same query twice in a
row, a clear stop when every query was met (and an explicit choice to go on), undo that says when a
re-vote is no longer blind, and a session summary that counts as the Results tab does.

On main (before this file) the arena repeated one query round after round once an annotator had met
every query of an 8-query catalog, silently; the Q summary counted re-votes that Results left out,
and the round shown again after Undo took a new number."""

from collections import Counter

import pytest

from catalog_helpers import write_synthetic_catalog
from clip_arena.arena.rounds import MethodsAgree
from clip_arena.arena.session import Arena, Covered
from clip_arena.arena.view import status_line, summary_text
from clip_arena.index.catalog import read_catalog
from clip_arena.index.search import Searcher
from clip_arena.votes.store import VoteStore
from clip_arena.votes.summary import summarize


@pytest.fixture
def small(tmp_path):
    """40 images, 8 of them test queries (every fifth), two methods."""
    write_synthetic_catalog(tmp_path / "c.parquet", n=40, dim=8)
    return Searcher.open(read_catalog(tmp_path / "c.parquet"))


def _vote_until_covered(arena, state):
    shown = []
    r = arena.next_round(state)
    while r is not None:
        shown.append(r.query_id)
        r = arena.vote(state, "left", r.round_id)
    return shown


def test_each_query_once_then_a_clear_stop_then_repeats_only_when_chosen(small, tmp_path):
    store = VoteStore(tmp_path / "v.db")
    arena = Arena(small, store, seed=0)
    tests = {small.catalog.ids[r] for r in arena.maker.candidates}
    assert len(tests) == 8
    for name in ("ann", "bob"):  # the second annotator too, though everyone's counts are now even
        state = arena.start(name)
        shown = _vote_until_covered(arena, state)
        assert sorted(shown) == sorted(tests)
        assert state.covered and state.current is None
        assert state.notice.startswith("You have judged every test query (8); new rounds would repeat")
        assert "**You have judged every test query" in status_line(arena, state)
        with pytest.raises(Covered):
            arena.next_round(state)  # asking again gives the same answer, never a silent repeat
    # A new session of the same annotator (a reload, a restart) knows what they judged.
    again = Arena(small, store, seed=1)
    with pytest.raises(Covered):
        again.next_round(again.start("ann"))
    # They choose to go on: every query again, least met first, never twice in a row.
    state = again.start("ann")
    with pytest.raises(Covered):
        again.next_round(state)
    r = again.go_on(state)
    order = []
    for _ in range(24):
        order.append(r.query_id)
        r = again.vote(state, "right", r.round_id)
    assert all(a != b for a, b in zip(order, order[1:]))
    assert set(Counter(order).values()) == {3}  # 24 rounds over 8 queries: three each


def test_a_category_is_covered_on_its_own_and_a_skip_counts_as_met(small, tmp_path):
    arena = Arena(small, VoteStore(tmp_path / "v.db"), seed=0)
    state = arena.start("ann", category="cat1")
    cat1 = [q for q in arena.maker.candidates if arena.maker.categories[q] == "cat1"]
    r = arena.next_round(state)
    r = arena.skip(state, r.round_id)
    met = 1
    while r is not None:
        met += 1
        r = arena.vote(state, "tie", r.round_id)
    assert met == len(cat1) and "in category cat1" in state.notice
    # one of them was only skipped: said so (on the first version, "judged every" with one not judged)
    assert state.notice.startswith(f"You have judged or skipped every test query in category cat1 ({met})")
    with pytest.raises(MethodsAgree):  # Covered is a MethodsAgree: every handler already catches it
        arena.next_round(state)


def test_undo_keeps_the_round_number_and_says_when_the_re_vote_is_not_blind(small, tmp_path):
    store = VoteStore(tmp_path / "v.db")
    arena = Arena(small, store, seed=0)
    state = arena.start("ann")
    first = arena.next_round(state)
    assert state.rounds_shown == 1
    arena.vote(state, "left", first.round_id, reveal=True)
    assert state.rounds_shown == 2
    again = arena.undo(state)
    assert again.query_id == first.query_id and state.rounds_shown == 1  # "Round 1" again, not "Round 3"
    assert status_line(arena, state).startswith("Round 1.")
    assert again.blind is False  # the reveal showed its methods
    after = arena.vote(state, "right", again.round_id)
    assert after.query_id != again.query_id and state.rounds_shown == 2
    # Undo past a skipped round: the round undone comes back under its own number.
    skipped = arena.skip(state, after.round_id)
    assert state.rounds_shown == 3 and skipped.query_id != after.query_id
    arena.vote(state, "tie", skipped.round_id)
    arena.undo(state)
    assert status_line(arena, state).startswith("Round 3.")
    # A vote cast blind and undone without a reveal stays blind.
    fresh = arena.vote(state, "tie", state.current.round_id)  # the re-vote
    arena.vote(state, "tie", fresh.round_id, reveal=False)
    assert arena.undo(state).blind is True


def test_the_session_summary_counts_as_the_results_tab(small, tmp_path):
    store = VoteStore(tmp_path / "v.db")
    arena = Arena(small, store, seed=0)
    state = arena.start("ann")
    r = arena.next_round(state)
    for choice in ("left", "right", "left", "right"):
        r = arena.vote(state, choice, r.round_id)
    again = arena.undo(state)
    arena.vote(state, "right", again.round_id)  # after the reveal: not blind
    summary = arena.summary(state)
    results = summarize(store.votes(), store.rounds(), bootstrap=0)
    pair = results["pairs"][0]
    assert summary["votes"] == results["votes"] == 3 and summary["not_blind"] == 1
    assert summary["wins"][pair["method_a"]] == pair["wins_a"] and summary["wins"][pair["method_b"]] == pair["wins_b"]
    text = summary_text(summary)
    assert "3 votes" in text and "1 more vote, cast after you saw the methods, is left out" in text


def test_when_the_other_queries_all_agree_the_query_just_judged_is_not_shown_again(tmp_path):
    """Found by a new user: a fine-tuned model that barely moved gives the base model's lists on every
    query but one; after the vote on that one, the arena showed it again (same sides) and took a second
    vote before its stop. Here every query agrees but the first test query's own lists."""
    import numpy as np

    from catalog_helpers import unit_vectors
    from clip_arena.index.catalog import build_table, catalog_meta, write_catalog

    n = 40
    base = unit_vectors(n, 16, seed=1)
    base[:, :2] = 0  # every other image lives away from the first two axes
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    tuned = base.copy()
    noise = unit_vectors(2, 16, seed=9) * 0.3
    base[0] = np.eye(16)[0] + noise[0]  # the first test query, apart from the rest, moved by the fine-tune
    tuned[0] = np.eye(16)[1] + noise[1]
    base[0] /= np.linalg.norm(base[0])
    tuned[0] /= np.linalg.norm(tuned[0])
    table = build_table({"image_id": [f"i{i}" for i in range(n)], "image_uri": [f"{i}.png" for i in range(n)],
                         "split": ["test" if i % 5 == 0 else "train" for i in range(n)]},
                        {"base": base, "tuned": tuned})
    write_catalog(tmp_path / "c.parquet", table, catalog_meta({"base": "b", "tuned": "t"}, {"base": 16, "tuned": 16}))
    store = VoteStore(tmp_path / "v.db")
    arena = Arena(Searcher.open(read_catalog(tmp_path / "c.parquet")), store, seed=0)
    state = arena.start("ann")
    first = arena.next_round(state)
    assert first.query_id == "i0"
    assert arena.vote(state, "left", first.round_id) is None  # the stop, not i0 again
    assert state.covered and state.notice.startswith("You have judged every test query (1)")
    assert len(store.votes()) == 1 and any(r["status"] == "auto_skipped" for r in store.rounds())
    assert arena.progress(state) == (1, 1)  # the status line counts the queries there are to judge

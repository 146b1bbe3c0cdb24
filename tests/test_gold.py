"""Gold rounds: a voted round shown again later with the sides swapped, found again by the
statistics from the votes alone."""

import pytest

from clip_arena.arena.gold import GAP, GoldRounds
from clip_arena.arena.session import Arena
from catalog_helpers import write_synthetic_catalog
from clip_arena.index.catalog import read_catalog
from clip_arena.index.search import Searcher
from clip_arena.votes.annotators import gold_pairs
from clip_arena.votes.store import VoteStore
from clip_arena.votes.summary import summarize


def _arena(tmp_path, share, n=100):
    write_synthetic_catalog(tmp_path / "c.parquet", n=n, dim=16)
    return Arena(Searcher.open(read_catalog(tmp_path / "c.parquet")), VoteStore(tmp_path / f"v{share}.db"), seed=0,
                 gold_share=share)


def test_gold_rounds_repeat_voted_rounds_with_sides_swapped(tmp_path):
    arena = _arena(tmp_path, 0.3, n=1000)  # 200 test queries: no query comes back by chance in 60 rounds
    state = arena.start("ann")
    r = arena.next_round(state)
    shown = []
    for _ in range(60):
        shown.append(r)
        # a self-consistent annotator: always prefers "finetuned", wherever it is
        r = arena.vote(state, "left" if r.method_left == "finetuned" else "right", r.round_id)
    votes = arena.store.votes()
    pairs = gold_pairs(votes)
    gold = {x.round_id for x in shown if x.extra.get("gold")}
    assert 5 <= len(gold) <= 30
    assert gold == {repeat["round_id"] for _, repeat in pairs}  # every gold round is found again, no other
    order = [v["round_id"] for v in votes]
    for first, repeat in pairs:
        assert (first["method_left"], first["method_right"]) == (repeat["method_right"], repeat["method_left"])
        assert (first["results_left"], first["results_right"]) == (repeat["results_right"], repeat["results_left"])
        assert order.index(repeat["round_id"]) - order.index(first["round_id"]) > GAP
    assert len({first["round_id"] for first, _ in pairs}) == len(pairs)  # each round repeated once at most
    row = summarize(votes, [])["annotators"]["table"][0]
    assert row["gold_pairs"] == len(pairs) and row["self_consistency"] == 1.0


def test_no_gold_rounds_by_default(tmp_path):
    arena = _arena(tmp_path, 0.0)
    state = arena.start("ann")
    r = arena.next_round(state)
    while r is not None:  # each query once, then the arena asks before repeating any
        r = arena.vote(state, "left", r.round_id)
        assert r is None or not r.extra.get("gold")
    votes = arena.store.votes()
    assert len(votes) == len({v["query_id"] for v in votes})
    # On main the arena went on with silent repeats, which then counted as gold pairs.
    assert not gold_pairs(votes)


def test_gold_share_is_bounded():
    with pytest.raises(ValueError, match="between 0 and 0.5"):
        GoldRounds(0.9)

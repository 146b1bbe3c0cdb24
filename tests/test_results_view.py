"""The Results tab's plain functions: verdict, tables, figures and export files from a store."""

import csv
import json

from catalog_helpers import write_image_catalog
from clip_arena.index.catalog import read_catalog
from clip_arena.votes.results_view import export_files, results
from clip_arena.votes.store import ShownRound, VoteStore
from clip_arena.votes.summary import proxy_metrics


def _vote(store, i, choice, annotator="ann", left="alphamodel", right="omegamodel", query=None,
          lists=(["img11", "img13", "img15", "img17"], ["img12", "img14", "img16", "img18"])):
    if i % 2:  # every other round the other way round (the same method wins), as the arena's random sides
        left, right, lists, choice = right, left, lists[::-1], {"left": "right", "right": "left"}.get(choice, choice)
    r = ShownRound(f"r{i}", annotator, "s", query or f"img{i % 10}", left, right, lists[0], lists[1], 0, "fp")
    store.record_round(r)
    store.record_vote(r, choice, 300)


def test_results_and_exports(tmp_path):
    catalog = read_catalog(write_image_catalog(tmp_path))
    store = VoteStore(tmp_path / "v.db")
    assert results(store, catalog, None)["verdict"].startswith("**No votes yet")
    for i in range(12):
        _vote(store, i, "right" if i % 3 else "left")
    out = results(store, catalog, None)
    assert out["pair"] == "alphamodel vs omegamodel"
    assert out["verdict"].startswith("**No clear winner yet: omegamodel leads with")
    assert "Per vote (as if every vote were independent): omegamodel wins 67% of decisive votes" in out["details"]
    assert "Proxy, precision@4" in out["details"] and len(out["figures"]) == 4
    # each list is all group1 (left) or all group0 (right); half of the 10 queries are in each group
    assert out["summary"]["proxy"] == {"alphamodel": {"precision@k": 0.5, "k": 4, "queries": 10},
                                       "omegamodel": {"precision@k": 0.5, "k": 4, "queries": 10}}
    forest = out["figures"][2]
    assert "category" in forest.layout.title.text and len(forest.data[0].x) == 2  # group0 and group1
    # the leaderboard has both methods, best first, with an interval and the votes
    board = out["leaderboard"]
    assert [row[1] for row in board] == ["omegamodel", "alphamodel"] and board[0][4] == 12
    assert board[0][2] > board[1][2] and "-" in board[0][3]
    assert out["annotators"][0][:2] == ["ann", 12] and out["annotator_names"] == ["ann"]
    votes_csv, summary_json = export_files(store, out["summary"])
    with open(votes_csv, newline="") as f:
        assert len(list(csv.DictReader(f))) == 12
    assert json.loads(open(summary_json).read())["pairs"][0]["wins_b"] == 8


def test_excluding_an_annotator_changes_the_verdict(tmp_path):
    store = VoteStore(tmp_path / "v.db")
    for i in range(10):
        _vote(store, i, "right", annotator="careful", query=f"q{i}")
    for i in range(10, 40):
        _vote(store, i, "left", annotator="clicker", query=f"q{i}")
    everyone = results(store, None, None)
    assert "alphamodel is better" in everyone["verdict"] or "alphamodel leads" in everyone["verdict"]
    kept = results(store, None, None, exclude=["clicker"])
    assert kept["verdict"].startswith("**omegamodel is better")
    assert "Left out of the verdict: clicker (30 votes)" in kept["details"]
    assert [row[-1] for row in kept["annotators"]] == ["no (excluded)", "yes"]


def test_proxy_never_matches_images_missing_from_the_catalog(tmp_path):
    """Fails on main: a query and results all missing from the catalog matched (None == None): 1.0."""
    catalog = read_catalog(write_image_catalog(tmp_path))
    votes = [{"method_left": "alphamodel", "method_right": "omegamodel", "query_id": "gone", "choice": "left",
              "results_left": json.dumps(["gone1", "gone2"]), "results_right": json.dumps(["gone3", "img1"])}]
    assert proxy_metrics(catalog, votes) == {"alphamodel": {"precision@k": 0.0, "k": 2, "queries": 1},
                                             "omegamodel": {"precision@k": 0.0, "k": 2, "queries": 1}}


def test_each_plain_verdict_names_its_pair_when_there_are_several(tmp_path):
    store = VoteStore(tmp_path / "v.db")
    for i, (left, right) in enumerate([("a", "b"), ("b", "c"), ("a", "c")] * 4):
        _vote(store, i, "right", left=left, right=right, query=f"q{i}")
    out = results(store, None, None)
    lines = out["verdict"].split("\n\n")
    assert [line.split(":")[0] for line in lines] == ["**a vs b", "**a vs c", "**b vs c"]
    assert [row[1] for row in out["leaderboard"]] == ["c", "b", "a"]


def test_votes_under_the_display_floor_are_shown_flagged_in_results_and_stats(tmp_path):
    """The floor flags a too-fast vote rather than keeping it silently: Results, the summary and
    `stats` say how many, and whose. Fails before they were reported (they were only stored)."""
    import json as json_module

    from cli_runner import run_cli

    store = VoteStore(tmp_path / "v.db")
    for i in range(6):
        r = ShownRound(f"r{i}", "fast" if i < 4 else "careful", "s", f"img{i}", "alphamodel", "omegamodel",
                       ["img11", "img13"], ["img12", "img14"], 0, "fp")
        store.record_round(r)
        store.record_vote(r, "right", 90 if i < 3 else 900,
                          flag="cast 90 ms after the round appeared, under the 400 ms floor" if i < 3 else None)
    out = results(store, None, None)
    assert "3 votes were cast faster than the display-time floor and are flagged; 3 of them count" in out["details"]
    table = {row[0]: row for row in out["annotators"]}
    assert table["fast"][3] == 3 and table["careful"][3] == 0  # the "flagged too fast" column
    assert out["summary"]["flagged"] == {"votes": 3, "in_verdict": 3}
    left_out = results(store, None, None, exclude=["fast"])
    assert "3 of them" not in left_out["details"] and "0 of them count" in left_out["details"]
    text = run_cli("stats", "--votes", str(tmp_path / "v.db"), "--bootstrap", "0")
    assert text.returncode == 0 and "3 votes were cast faster than the display-time floor" in text.stdout
    as_json = json_module.loads(run_cli("stats", "--votes", str(tmp_path / "v.db"), "--json", "--bootstrap", "0").stdout)
    assert as_json["flagged"] == {"votes": 3, "in_verdict": 3}
    assert {r["annotator"]: r["flagged"] for r in as_json["annotators"]["table"]} == {"fast": 3, "careful": 0}

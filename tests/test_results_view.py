"""The Results tab's plain functions: verdict, figures and export files from a store."""

import csv
import json

from catalog_helpers import write_image_catalog
from index.catalog import read_catalog
from votes.results_view import export_files, results
from votes.store import ShownRound, VoteStore


def test_results_and_exports(tmp_path):
    catalog = read_catalog(write_image_catalog(tmp_path))
    store = VoteStore(tmp_path / "v.db")
    assert results(store, catalog, None)["verdict"].startswith("**No votes yet")
    for i in range(12):
        r = ShownRound(f"r{i}", "ann", "s", f"img{i % 10}", "alphamodel", "omegamodel",
                       ["img11", "img13", "img15", "img17"], ["img12", "img14", "img16", "img18"], 0, "fp")
        store.record_round(r)
        store.record_vote(r, "right" if i % 3 else "left", 300)
    out = results(store, catalog, None)
    assert out["pair"] == "alphamodel vs omegamodel" and out["verdict"].startswith("**omegamodel wins 67%")
    assert "Proxy, precision@4" in out["details"] and len(out["figures"]) == 4
    # each list is all group1 (left) or all group0 (right); half of the 10 queries are in each group
    assert out["summary"]["proxy"] == {"alphamodel": {"precision@k": 0.5, "k": 4, "queries": 10},
                                       "omegamodel": {"precision@k": 0.5, "k": 4, "queries": 10}}
    forest = out["figures"][2]
    assert "category" in forest.layout.title.text and len(forest.data[0].x) == 2  # group0 and group1
    votes_csv, summary_json = export_files(store, out["summary"])
    with open(votes_csv, newline="") as f:
        assert len(list(csv.DictReader(f))) == 12
    assert json.loads(open(summary_json).read())["pairs"][0]["wins_b"] == 8

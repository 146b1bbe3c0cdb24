"""Votes of a stranger's own catalog: an import from another catalog is refused in one sentence
(unless asked for) and never pooled silently; level methods are level; the same votes give the same
intervals on every refresh and on the command line; and a test split too small for the difference
asked about is said so. Each of these failed on main before this file."""

import json

import pytest

from catalog_helpers import write_synthetic_catalog
from cli_runner import run_cli
from clip_arena.core.errors import UserError
from clip_arena.index.catalog import read_catalog
from clip_arena.votes.fingerprints import clashes, compatible, of_catalog
from clip_arena.votes.results_view import leaderboard, results
from clip_arena.votes.choices import RoundStatus
from clip_arena.votes.store import ShownRound, VoteStore
from clip_arena.votes.summary import summarize
from clip_arena.votes.transfer import export_csv, import_csv

HERE = "base:aaaaaaaaaaaa-finetuned:bbbbbbbbbbbb"
OTHER = "base:aaaaaaaaaaaa-finetuned:cccccccccccc"  # finetuned re-embedded: another experiment
GROWN = "base:aaaaaaaaaaaa-finetuned:bbbbbbbbbbbb-third:dddddddddddd"  # a method added: the pair is the same


def _store(path, fingerprint, prefix, choices, queries=4):
    store = VoteStore(path)
    for i, choice in enumerate(choices):
        sides = ("base", "finetuned", ["a"], ["b"]) if i % 2 else ("finetuned", "base", ["b"], ["a"])
        r = ShownRound(f"{prefix}{i}", "ann", f"s-{prefix}", f"q{i % queries}", *sides, 0, fingerprint)
        store.record_round(r)
        # every other round the other way round with the same winner, as the arena's random sides
        store.record_vote(r, choice if i % 2 else {"left": "right", "right": "left"}.get(choice, choice), 900)
    return store


def test_fingerprints_clash_only_when_a_method_has_other_embeddings():
    assert clashes([HERE, OTHER]) == {"finetuned": {"bbbbbbbbbbbb", "cccccccccccc"}}
    assert not clashes([HERE, GROWN]) and compatible(HERE, GROWN) and not compatible(OTHER, HERE)
    assert not clashes(["fp", "fp"])  # fingerprints of another form compare as a whole


def test_an_import_from_another_catalog_is_refused_unless_asked_and_then_never_pooled_silently(tmp_path):
    store = _store(tmp_path / "mine.db", HERE, "m", ["right"] * 6)
    export_csv(_store(tmp_path / "theirs.db", OTHER, "t", ["left"] * 9), tmp_path / "theirs.csv")
    export_csv(_store(tmp_path / "grown.db", GROWN, "g", ["right"] * 2), tmp_path / "grown.csv")
    with pytest.raises(UserError, match=r"another catalog: method finetuned has other embeddings.*nothing was "
                                        r"imported.*--allow-other-catalog"):
        import_csv(store, tmp_path / "theirs.csv")
    assert len(store.votes()) == 6
    assert import_csv(store, tmp_path / "grown.csv") == 2  # same embeddings of both methods: welcome
    # The command line says it in one line, exit 2, and imports with the flag.
    db = str(tmp_path / "mine.db")
    refused = run_cli("votes", "import", str(tmp_path / "theirs.csv"), "--votes", db)
    assert refused.returncode == 2 and "another catalog" in refused.stderr and len(refused.stderr.splitlines()) == 1
    done = run_cli("votes", "import", str(tmp_path / "theirs.csv"), "--votes", db, "--allow-other-catalog")
    assert done.returncode == 0, done.stderr
    # stats over the pooled store warns first; with the catalog named it counts that catalog's votes only.
    text = run_cli("stats", "--votes", db)
    assert text.returncode == 0 and text.stdout.startswith("Warning: these votes come from 2 different embeddings "
                                                            "of method finetuned: 9 with cccccccccccc, 8 with bbbb")
    pooled = summarize(VoteStore(db).votes(), [], bootstrap=0)
    assert pooled["votes"] == 17 and "pools them" in pooled["catalog_warning"]
    apart = summarize(VoteStore(db).votes(), [], bootstrap=0, fingerprint=HERE)
    assert apart["votes"] == 8 and apart["other_catalog_votes"] == 9 and "catalog_warning" not in apart
    assert apart["pairs"][0]["wins_b"] == 8


def test_stats_with_the_catalog_counts_only_the_votes_cast_on_it(tmp_path):
    write_synthetic_catalog(tmp_path / "c.parquet", n=40, dim=8)
    catalog = read_catalog(tmp_path / "c.parquet")
    here = of_catalog(catalog)
    from clip_arena.arena.session import Arena
    from clip_arena.index.search import Searcher

    # what the arena writes on its votes (and gives the Results tab) is what stats makes from the catalog
    assert Arena(Searcher.open(catalog), VoteStore(tmp_path / "arena.db")).fingerprint == here
    _store(tmp_path / "v.db", here, "m", ["right"] * 5)
    other = here.replace(here.split("-")[1].split(":")[1], "0" * 12)
    store = _store(tmp_path / "v.db", other, "o", ["left"] * 7)
    out = run_cli("stats", "--votes", str(tmp_path / "v.db"), "--catalog", str(tmp_path / "c.parquet"), "--json")
    result = json.loads(out.stdout)
    assert result["votes"] == 5 and result["other_catalog_votes"] == 7 and "left out" in result["catalog_note"]
    web = results(store, catalog, None, fingerprint=here)
    assert web["verdict"].startswith("**7 votes cast on another catalog")


def test_level_methods_are_level_and_intervals_do_not_change_between_refreshes_or_with_the_cli(tmp_path):
    store = _store(tmp_path / "v.db", HERE, "m", ["left", "right"] * 6, queries=6)
    first = results(store, None, None)
    assert [row[0] for row in first["leaderboard"]] == ["=1", "=1"]  # not "1" and "2" at exactly 0.5
    assert "level at 50%" in first["verdict"]
    _store(tmp_path / "v.db", HERE, "x", ["right", "right", "left"], queries=3)
    a, b = results(store, None, None), results(store, None, None)
    assert a["leaderboard"] == b["leaderboard"]
    cli = json.loads(run_cli("stats", "--votes", str(tmp_path / "v.db"), "--json").stdout)
    assert [[round(x, 3) for x in r["ci"]] for r in cli["bradley_terry"]] == [
        [float(x) for x in row[3].split("-")] for row in a["leaderboard"]]
    assert leaderboard(cli)[0][0] == "1"


def test_a_test_split_too_small_for_the_difference_is_said(tmp_path):
    write_synthetic_catalog(tmp_path / "c.parquet", n=40, dim=8)  # 8 test queries
    catalog = read_catalog(tmp_path / "c.parquet")
    tests = [i for i, s in zip(catalog.ids, catalog.frame(["split"])["split"]) if s == "test"]
    store = VoteStore(tmp_path / "v.db")
    for i, q in enumerate(tests[:6]):
        r = ShownRound(f"r{i}", "ann", "s", q, "base", "finetuned", ["a"], ["b"], 0, of_catalog(catalog))
        store.record_round(r)
        store.record_vote(r, "right" if i % 3 else "left", 900)
    text = results(store, catalog, None)["verdict"]
    assert "the test split has 8 queries, only 2 not yet judged: too few to tell it" in text


def test_a_catalog_given_as_the_vote_store_is_one_sentence(tmp_path):
    """On main: sqlite3.DatabaseError's traceback, exit 1 (stats, votes export)."""
    write_synthetic_catalog(tmp_path / "c.parquet", n=20, dim=8)
    for args in (("stats", "--votes", str(tmp_path / "c.parquet")),
                 ("votes", "export", "--votes", str(tmp_path / "c.parquet"), "-o", str(tmp_path / "v.csv"))):
        out = run_cli(*args)
        assert out.returncode == 2 and "is not a vote store" in out.stderr and "Traceback" not in out.stderr


def test_with_the_catalog_named_undone_votes_and_rounds_of_another_catalog_do_not_count(tmp_path):
    store = _store(tmp_path / "v.db", OTHER, "o", ["left"] * 3)
    store.undo_last("s-o")
    store.set_round_status("o0", RoundStatus.SKIPPED)
    _store(tmp_path / "v.db", HERE, "m", ["right"] * 2)
    mine = summarize(store.votes(), store.rounds(), bootstrap=0, fingerprint=HERE)
    assert mine["votes"] == 2 and mine["undone"] == 0 and mine["rounds"]["skipped"] == 0
    assert mine["other_catalog_votes"] == 2


def test_a_refused_import_leaves_no_empty_store_behind(tmp_path):
    (tmp_path / "bad.csv").write_text("not,a,vote,file\n1,2,3,4\n")
    out = run_cli("votes", "import", str(tmp_path / "bad.csv"), "--votes", str(tmp_path / "new.db"))
    assert out.returncode == 2 and not list(tmp_path.glob("new.db*"))

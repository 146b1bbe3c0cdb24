"""Vote export and import (CSV, DESIGN columns), and the stats command."""

import csv
import json

import pytest

from clip_arena.core.errors import UserError
from clip_arena.votes.store import VOTE_COLUMNS, ShownRound, VoteStore
from clip_arena.votes.transfer import export_csv, import_csv
from cli_runner import run_cli


def _store(path, prefix="r", annotator="alice", choices=("left", "right", "tie", "both_bad", "right")):
    store = VoteStore(path)
    for i, choice in enumerate(choices):
        r = ShownRound(f"{prefix}{i}", annotator, "s1", f"q{i % 2}", "base", "finetuned", ["a", "b"], ["b", "c"], 1, "fp")
        store.record_round(r)
        store.record_vote(r, choice, 100 + i)
    store.undo_last("s1")
    return store


def test_round_trip_keeps_every_column(tmp_path):
    source = _store(tmp_path / "a.db", annotator="=HYPERLINK(\"x\")")
    assert export_csv(source, tmp_path / "votes.csv") == 5
    with open(tmp_path / "votes.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == VOTE_COLUMNS
    assert rows[1][2].startswith("'=")  # neutralised for spreadsheets
    assert json.loads(rows[1][VOTE_COLUMNS.index("results_left")]) == ["a", "b"]
    assert rows[1][VOTE_COLUMNS.index("undone_at")] == "" and rows[5][VOTE_COLUMNS.index("undone_at")] != ""
    target = VoteStore(tmp_path / "b.db")
    assert import_csv(target, tmp_path / "votes.csv") == 5
    assert target.votes() == source.votes()


def test_import_refuses_duplicates_and_bad_rows_importing_nothing(tmp_path):
    export_csv(_store(tmp_path / "a.db"), tmp_path / "votes.csv")
    target = _store(tmp_path / "b.db", prefix="other")
    before = target.votes()
    import_csv(target, tmp_path / "votes.csv")
    with pytest.raises(UserError, match="already in .*nothing was imported"):
        import_csv(target, tmp_path / "votes.csv")
    assert len(target.votes()) == len(before) + 5

    lines = (tmp_path / "votes.csv").read_text().splitlines()
    bad = VoteStore(tmp_path / "c.db")
    cases = {
        "choice": lines[1].replace(',"left",', ',"maybe",'),
        "results_left": lines[1].replace('"[""a"", ""b""]"', "not-json", 1),
        "repeats": lines[1],
        "method_left": lines[1].replace(',"base","finetuned",', ',"base","base",'),  # a method against itself
    }
    for name, row in cases.items():
        body = [lines[0], lines[1], row] if name == "repeats" else [lines[0], lines[2], row]
        (tmp_path / f"{name}.csv").write_text("\n".join(body) + "\n")
        with pytest.raises(UserError, match=f"Row 3: .*{name if name != 'repeats' else 'repeats row 2'}"):
            import_csv(bad, tmp_path / f"{name}.csv")
        assert bad.votes() == []
    (tmp_path / "cols.csv").write_text("vote_id,choice\n1,left\n")
    with pytest.raises(UserError, match="vote columns"):
        import_csv(bad, tmp_path / "cols.csv")


def test_stats_and_votesrun_cli(tmp_path):
    _store(tmp_path / "a.db", choices=("right",) * 9 + ("left", "tie"))
    proc = run_cli("stats", "--votes", str(tmp_path / "a.db"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["votes"] == 10 and out["undone"] == 1
    pair = out["pairs"][0]
    for key in ("method_a", "method_b", "wins_a", "wins_b", "ties", "both_bad", "decisive", "win_rate_b",
                "ci_low", "ci_high", "p_value", "position_bias_p"):
        assert key in pair
    assert (pair["method_a"], pair["method_b"], pair["wins_b"], pair["wins_a"], pair["ties"]) == ("base", "finetuned", 9, 1, 0)  # the tie was undone
    text = run_cli("stats", "--votes", str(tmp_path / "a.db"))
    assert "finetuned wins 90% of decisive votes" in text.stdout
    assert run_cli("votes", "export", "--votes", str(tmp_path / "a.db"), "-o", str(tmp_path / "v.csv")).returncode == 0
    proc = run_cli("votes", "import", str(tmp_path / "v.csv"), "--votes", str(tmp_path / "b.db"))
    assert proc.returncode == 0 and "imported 11 votes" in proc.stdout
    again = run_cli("votes", "import", str(tmp_path / "v.csv"), "--votes", str(tmp_path / "b.db"))
    assert again.returncode == 2 and "nothing was imported" in again.stderr
    missing = run_cli("stats", "--votes", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_blind_is_the_last_column_and_old_files_import_as_blind(tmp_path):
    store = VoteStore(tmp_path / "a.db")
    for i, blind in enumerate([True, False, True]):
        r = ShownRound(f"r{i}", "ann", "s1", "q", "base", "finetuned", ["a"], ["b"], 0, "fp", blind)
        store.record_round(r)
        store.record_vote(r, "left", 10)
    assert [v["blind"] for v in store.votes()] == [True, False, True]
    export_csv(store, tmp_path / "votes.csv")
    with open(tmp_path / "votes.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert VOTE_COLUMNS[-1] == "blind" and [r[-1] for r in rows] == ["blind", "true", "false", "true"]
    target = VoteStore(tmp_path / "b.db")
    import_csv(target, tmp_path / "votes.csv")
    assert [v["blind"] for v in target.votes()] == [True, False, True]
    # A file from before the column: every vote in it was blind.
    with open(tmp_path / "old.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(VOTE_COLUMNS[:-1])
        for i, r in enumerate(rows[1:]):
            writer.writerow([f"old{i}", *r[1:4], f"old-round{i}", *r[5:-1]])
    legacy = VoteStore(tmp_path / "c.db")
    assert import_csv(legacy, tmp_path / "old.csv") == 3
    assert [v["blind"] for v in legacy.votes()] == [True, True, True]
    rows[1][-1] = "maybe"
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(UserError, match="Row 2: blind 'maybe' is not true or false"):
        import_csv(VoteStore(tmp_path / "d.db"), tmp_path / "bad.csv")


def test_a_store_made_before_the_blind_column_opens_with_its_votes_blind(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    store = _store(db)
    with sqlite3.connect(db) as conn:  # the table as main created it
        conn.execute("ALTER TABLE votes DROP COLUMN blind")
    reopened = VoteStore(db)
    assert [v["blind"] for v in reopened.votes()] == [True] * 5
    assert len(store.votes()) == 5


def test_export_quotes_every_cell_so_a_semicolon_spreadsheet_cannot_split_one(tmp_path):
    store = _store(tmp_path / "a.db", annotator="x;=cmd|' /C calc'!A0")
    export_csv(store, tmp_path / "votes.csv")
    text = (tmp_path / "votes.csv").read_text(encoding="utf-8")
    assert "\"x;=cmd|' /C calc'!A0\"" in text  # quoted whole: `;` inside quotes starts no cell
    assert all(line.startswith('"') and line.endswith('"') for line in text.splitlines())
    assert {v["annotator"] for v in store.votes()} == {"x;=cmd|' /C calc'!A0"}

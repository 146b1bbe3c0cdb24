"""clip-arena stats as a user runs it: the plain verdict first, annotators left out, a minimal
effect to plan for, bad input as one sentence."""

import json

from cli_runner import run_cli
from clip_arena.votes.store import ShownRound, VoteStore


def _store(path):
    store = VoteStore(path)
    for i in range(40):
        annotator, choice = ("careful", "right") if i < 12 else ("clicker", "left")
        sides = ("base", "finetuned", ["a"], ["b"]) if i % 2 else ("finetuned", "base", ["b"], ["a"])
        r = ShownRound(f"r{i}", annotator, "s", f"q{i}", *sides, 0, "fp")
        store.record_round(r)
        store.record_vote(r, choice if i % 2 else {"left": "right", "right": "left"}[choice], 800)  # the same winner
    return path


def test_stats_excludes_annotators_and_plans_for_a_minimal_effect(tmp_path):
    db = str(_store(tmp_path / "v.db"))
    proc = run_cli("stats", "--votes", db, "--json", "--exclude-annotator", "clicker", "--min-effect", "55",
                   "--bootstrap", "20")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    pair = out["pairs"][0]
    assert out["votes"] == 12 and out["excluded_annotators"] == ["clicker"] and out["excluded_votes"] == 28
    assert (pair["wins_b"], pair["wins_a"]) == (12, 0)
    assert pair["plain"].startswith("finetuned is better: it wins 100% of the time, query by query")
    assert pair["votes_needed"]["win_rate"] == 0.55 and pair["votes_needed"]["source"] == "min_effect"
    assert pair["headline"]["queries"] == 12 and pair["headline"]["significant"]
    assert [r["method"] for r in out["bradley_terry"]] == ["finetuned", "base"]
    text = run_cli("stats", "--votes", db, "--bootstrap", "0")
    assert text.returncode == 0, text.stderr
    first = text.stdout.splitlines()[0]
    assert first.startswith("base is better") or first.startswith("No clear winner yet: base leads")
    assert "Per vote (as if every vote were independent)" in text.stdout


def test_stats_bad_input_is_one_sentence(tmp_path):
    db = str(_store(tmp_path / "v.db"))
    for args, words in [(("--exclude-annotator", "nobody"), "No votes from annotator 'nobody'"),
                        (("--min-effect", "0.5"), "other than 50%"), (("--min-effect", "lots"), "not a number"),
                        (("--bootstrap", "-1"), "0 or more"),
                        (("--plan", "effect=0.6"), "the plan needs max_votes")]:
        proc = run_cli("stats", "--votes", db, *args)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr

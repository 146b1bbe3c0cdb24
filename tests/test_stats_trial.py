"""What a stranger's trial of the verdict found (issue #25's follow-up), each failing before its fix:
votes about methods the catalog lacks, confounded sides in the leaderboard, the sequential p-value's
direction, a changed plan, a method against itself, and numbers where nothing can be estimated."""

from test_stats import balanced, vote

from clip_arena.votes.summary import summarize

HERE = "base:aaaaaaaaaaaa-finetuned:bbbbbbbbbbbb"


def test_votes_naming_a_method_the_catalog_lacks_are_left_out_and_said():
    # an import with no fingerprint: compatible with any catalog, yet "big" has no embeddings here
    votes = balanced([vote("right", "base", "big", query=f"q{i}", catalog_fingerprint="") for i in range(30)])
    votes += balanced([vote(c, query=f"r{i}", catalog_fingerprint="") for i, c in enumerate(["left", "right"] * 5)])
    out = summarize(votes, [], bootstrap=0, fingerprint=HERE)
    assert out["methods"] == ["base", "finetuned"] and out["votes"] == 10
    assert out["other_method_votes"] == 30 and [p["method_b"] for p in out["pairs"]] == ["finetuned"]
    assert "30 votes naming method big, which this catalog does not have, are left out" in out["catalog_note"]
    assert all(r["method"] != "big" for r in out["bradley_terry"])
    # without a catalog nothing says which methods exist: all of them count
    assert "big" in summarize(votes, [], bootstrap=0)["methods"]


def test_a_confounded_pair_gets_no_order_on_the_leaderboard_and_no_votes_still_needed():
    import random

    from clip_arena.votes.results_view import leaderboard
    from clip_arena.votes.summary import numbers

    rng = random.Random(5)  # finetuned always on the right, an annotator who picks the right 70% of the time
    votes = [vote("right" if rng.random() < 0.7 else "left", query=f"q{i % 40}") for i in range(200)]
    out = summarize(votes, [], bootstrap=20)
    assert out["pairs"][0]["confounded"]
    rows = leaderboard(out)
    assert [r[0] for r in rows] == ["?", "?"]
    assert all("cannot be told (sides confounded)" in r[3] for r in rows)
    assert "cannot order base vs finetuned" in out["bradley_terry_warning"]
    text = numbers(out["pairs"][0])
    assert "vote with sides drawn at random" in text and "more decisive votes" not in text
    # random sides: the leaderboard ranks as before
    fair = summarize(balanced(votes), [], bootstrap=20)
    assert [r[0] for r in leaderboard(fair)] == ["1", "2"] and "cannot be told" not in str(leaderboard(fair))


def test_the_sequential_p_value_names_the_method_it_favours_or_says_not_reached():
    from clip_arena.votes.summary import numbers

    # base wins a long early run, finetuned the later, longer one: the test fired for base
    votes = [vote("left", query=f"a{i}", t=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00") for i in range(60)]
    votes += [vote("right", query=f"b{i}", t=f"2026-01-02T00:{i // 60:02d}:{i % 60:02d}+00:00") for i in range(70)]
    pair = summarize(balanced(votes), [], bootstrap=0)["pairs"][0]
    assert pair["headline"]["estimate"] > 0.5 and pair["headline"]["favours"] == -1
    assert "sequential p < 0.001 for base (from an earlier run" in numbers(pair)
    level = summarize(balanced([vote(c, query=f"q{i}") for i, c in enumerate(["left", "right"] * 4)]), [],
                      bootstrap=0)["pairs"][0]
    first = numbers(level).splitlines()[0]
    assert "sequential p: not reached" in first and "p = 1" not in first


def test_one_vote_and_one_query_are_written_in_the_singular():
    import re

    from clip_arena.votes.summary import count, model_lines, numbers

    assert [count(1, "vote"), count(2, "vote"), count(1, "query"), count(0, "query")] == \
        ["1 vote", "2 votes", "1 query", "0 queries"]
    one = summarize([vote("right", annotator="a"), vote("left", annotator="b", query="q2")], [], bootstrap=0)
    text = numbers(one["pairs"][0]) + "\n".join(model_lines(one))
    assert not re.search(r"\b1 (votes|queries)\b", text), text
    assert "(1 vote):" in text


def test_a_changed_plan_keeps_the_earlier_one_and_says_so(tmp_path):
    import json

    from clip_arena.votes.plan import Plan, plan_path, plan_words, read_plan, write_plan

    db = tmp_path / "votes.db"
    write_plan(db, Plan(0.6, 400), votes_now=0)
    changed = write_plan(db, Plan(0.65, 200), votes_now=13)
    assert read_plan(db) == changed and [p.effect for p in changed.earlier] == [0.6]
    assert json.loads(plan_path(db).read_text())["earlier"][0]["votes_when_stated"] == 0  # in the file
    words = plan_words(read_plan(db))
    assert "Warning: the plan changed after 13 votes" in words and "the earlier plan, stated before voting" in words
    assert "60/40, at most 400 decisive votes a pair" in words and "weakens the guarantee" in words
    assert write_plan(db, Plan(0.65, 200), votes_now=20) == changed  # a restart with the same plan: nothing new
    third = write_plan(db, Plan(0.7, 100), votes_now=30)
    assert [p.effect for p in third.earlier] == [0.6, 0.65] and "2 earlier plans" in plan_words(third)
    from clip_arena.votes.results_view import results
    from clip_arena.votes.store import VoteStore

    assert "Warning: the plan changed after 30 votes" in results(VoteStore(db), None, None)["verdict"]  # Results tab


def test_with_no_decisive_votes_nothing_is_estimated_and_each_line_says_why():
    from clip_arena.votes.summary import model_lines, numbers

    votes = balanced([vote("tie" if i % 3 else "both_bad", query=f"q{i % 12}") for i in range(36)])
    out = summarize(votes, [], bootstrap=20)
    text = numbers(out["pairs"][0]) + "\n" + "\n".join(model_lines(out))
    assert "sign test p" not in text and "the sign test cannot be computed from these votes" in text
    assert "Side term: cannot be estimated from these votes (no decisive votes" in text and "h =" not in text
    assert "nu cannot be estimated from these votes (no decisive votes" in text and "nu =" not in text
    assert out["bradley_terry_model"]["ties"]["nu"] is None
    # one decisive vote each way: both are estimated again
    some = summarize(votes + balanced([vote("left", query="q1"), vote("right", query="q2")]), [], bootstrap=20)
    assert "nu = " in "\n".join(model_lines(some)) and "Side term h = " in "\n".join(model_lines(some))


def test_votes_of_a_method_against_itself_already_in_a_store_are_left_out():
    votes = balanced([vote(c, query=f"q{i}") for i, c in enumerate(["left", "right"] * 6)])
    out = summarize(votes + [vote("left", "base", "base", query="z")] * 3, [], bootstrap=0)
    assert out["votes"] == 12 and out["self_votes"] == 3 and out["methods"] == ["base", "finetuned"]
    assert out["self_vote_note"].startswith("3 votes of a method against itself are left out")

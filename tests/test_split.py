"""Drawing the train/val/test split: shares kept, groups whole, strata each split, reruns equal."""

from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from clip_arena.core.errors import UserError
from clip_arena.index.split import SplitPlan, draw, parse_shares

PLAN = SplitPlan((0.8, 0.1, 0.1))


def test_forty_photos_split_80_10_10_the_same_way_every_time():
    first = draw(40, PLAN)
    assert Counter(first) == {"train": 32, "val": 4, "test": 4}
    assert draw(40, PLAN) == first
    assert draw(40, SplitPlan((0.8, 0.1, 0.1), seed=1)) != first


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from(["", "p1", "p2", "p3", "p4", "p5", "p6"])),
                min_size=1, max_size=120),
       st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.9, 0.1, 0.0), (1.0, 0.0, 0.0), (0.34, 0.33, 0.33)]),
       st.integers(0, 2**16), st.booleans(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_every_row_gets_a_split_groups_stay_whole_and_shares_hold(rows, shares, seed, stratify, grouped):
    strata = [s for s, _ in rows]
    groups = [g for _, g in rows]
    plan = SplitPlan(shares, seed=seed)
    split = draw(len(rows), plan, strata if stratify else None, groups if grouped else None)
    assert set(split) <= {"train", "val", "test"} and len(split) == len(rows)
    assert split == draw(len(rows), plan, strata if stratify else None, groups if grouped else None)
    for name, share in zip(("train", "val", "test"), shares):
        if share == 0:
            assert name not in split
    if grouped:
        for g in set(groups) - {""}:
            assert len({s for s, gg in zip(split, groups) if gg == g}) == 1  # a product never straddles
    else:
        counts = Counter(split)
        for name, share in zip(("train", "val", "test"), shares):
            assert abs(counts[name] - share * len(rows)) <= 1  # to one image
        if stratify:
            for stratum in set(strata):
                members = [s for s, st_ in zip(split, strata) if st_ == stratum]
                for name, share in zip(("train", "val", "test"), shares):
                    assert abs(members.count(name) - share * len(members)) <= 2


def test_stratified_each_category_has_its_share():
    strata = ["shoes"] * 20 + ["bags"] * 10 + ["hats"] * 10
    split = draw(40, PLAN, strata)
    for stratum, n in (("shoes", 20), ("bags", 10), ("hats", 10)):
        got = Counter(s for s, st_ in zip(split, strata) if st_ == stratum)
        assert abs(got["train"] - 0.8 * n) <= 1 and got["test"] >= 1, (stratum, got)


def test_rows_already_split_keep_it_and_new_rows_of_their_group_join_them():
    current = ["test", "train", None, None, None, None]
    groups = ["p1", "p2", "p1", "p2", "p3", ""]
    split = draw(6, PLAN, groups=groups, current=current)
    assert split[:4] == ["test", "train", "test", "train"] and all(split[4:])
    redrawn = draw(6, SplitPlan((0.8, 0.1, 0.1), redraw=True), groups=groups, current=current)
    assert redrawn[0] == redrawn[2] and redrawn[1] == redrawn[3]


@pytest.mark.parametrize("text", ["80/20", "80/10/10/0", "a/b/c", "-10/60/50", "nan/50/50", "inf/0/0", "1e400/0/0",
                                  "80/10/11", "0/50/50", "", "//", "80,10,10", "８０/10/10x"])
def test_bad_split_texts_are_refused_in_one_sentence(text):
    with pytest.raises(UserError, match="--split"):
        parse_shares(text)


@given(st.text(max_size=30))
def test_any_text_is_parsed_or_refused(text):
    try:
        shares = parse_shares(text)
    except UserError:
        return
    assert abs(sum(shares) - 1) < 1e-6 and shares[0] > 0


def test_good_split_texts():
    assert parse_shares("80/10/10") == (0.8, 0.1, 0.1)
    assert parse_shares(" 70 / 15 / 15 ") == (0.7, 0.15, 0.15)
    assert parse_shares("90/10/0") == (0.9, 0.1, 0.0)

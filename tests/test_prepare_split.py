"""prepare's split: stratified, seeded, order-free, stable when rows are added, duplicates together, and
a mini_train subset."""

from collections import Counter

from clip_arena.prepare.split import assign, empty_warning, mini_train


def _catalog(n, seed=0):
    ids = [f"sku-{seed}-{i}" for i in range(n)]
    cats = [("chairs", "tables", "lamps", "rugs")[i % 4] if i % 10 else "mirrors" for i in range(n)]
    return ids, cats


def test_every_category_gets_its_shares_and_the_seed_decides():
    ids, cats = _catalog(400)
    splits = assign(ids, "80/10/10", seed=3, strata=cats)
    for cat in set(cats):
        counts = Counter(s for s, c in zip(splits, cats) if c == cat)
        total = sum(counts.values())
        assert abs(counts["train"] - 0.8 * total) <= 1 and abs(counts["test"] - 0.1 * total) <= 1, (cat, counts)
    assert assign(ids, "80/10/10", seed=3, strata=cats) == splits
    assert assign(ids, "80/10/10", seed=4, strata=cats) != splits
    assert Counter(assign(ids, "50/25/25", seed=3, strata=cats))["test"] == 100


def test_the_rows_order_in_the_csv_does_not_matter():
    ids, cats = _catalog(120)
    splits = dict(zip(ids, assign(ids, "80/10/10", strata=cats)))
    order = list(range(120))[::-1]
    shuffled = assign([ids[i] for i in order], "80/10/10", strata=[cats[i] for i in order])
    assert dict(zip([ids[i] for i in order], shuffled)) == splits


def test_rows_added_later_leave_the_earlier_rows_split_alone():
    ids, cats = _catalog(200)
    first = dict(zip(ids, assign(ids, "80/10/10", strata=cats)))
    more_ids, more_cats = _catalog(60, seed=1)
    grown = assign(ids + more_ids, "80/10/10", strata=cats + more_cats, previous=first)
    assert dict(zip(ids, grown[:200])) == first  # the test split the arena measured on stays the test split
    assert Counter(grown[200:])["test"] >= 3  # the new rows are drawn too


def test_duplicate_images_never_straddle_two_splits():
    ids, cats = _catalog(100)
    groups = [ids[i - i % 5] for i in range(100)]  # twenty images, each with four near copies
    splits = assign(ids, "60/20/20", strata=cats, groups=groups)
    by_group = {}
    for g, s in zip(groups, splits):
        by_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())


def test_mini_train_is_a_small_spread_subset_of_train():
    ids, cats = _catalog(300)
    splits = assign(ids, "80/10/10", strata=cats)
    mini = mini_train(ids, splits, cats, rows=20)
    chosen = [i for i, m in enumerate(mini) if m]
    assert len(chosen) == 20 and all(splits[i] == "train" for i in chosen)
    assert {cats[i] for i in chosen} == set(cats)  # every category is in the smoke run
    assert sum(mini_train(ids, splits, cats, rows=10_000)) == Counter(splits)["train"]


def test_a_split_left_empty_by_duplicate_groups_is_said():
    ids = [f"r{i}" for i in range(29)]
    groups = ["a"] * 10 + ["b"] * 10 + ["c"] * 9  # three groups of near-duplicate images
    splits = assign(ids, "80/10/10", 0, None, groups)
    counts = Counter(splits)
    message = empty_warning(counts, "80/10/10", groups)
    assert message is not None and "split" in message and "3 groups of duplicate images" in message
    assert empty_warning({"train": 8, "val": 1, "test": 1}, "80/10/10", ids[:10]) is None
    assert empty_warning({"train": 10, "val": 0, "test": 0}, "100/0/0", ids[:10]) is None

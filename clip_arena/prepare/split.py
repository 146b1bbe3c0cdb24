"""The split stage: train/val/test drawn by `embed --split`'s own draw (clip_arena.index.split), so the
two commands split a catalog the same way, plus a small `mini_train` subset for smoke runs.

- seeded, and ordered by a hash of each row's id, so the CSV's row order does not matter;
- stratified by a column (the category), so every category gets its shares;
- grouped by duplicate image, so a picture and its near-copy never straddle train and test;
- stable: rows of a previous run's catalog keep their split, and rows added since are drawn around
  them (the test split the arena measured on stays the test split)."""

from __future__ import annotations

from clip_arena.index.split import SplitPlan, draw, hash_rank, parse_shares

MINI_TRAIN_ROWS = 256


def assign(ids: list[str], shares_text: str = "80/10/10", seed: int = 0, strata: list | None = None,
           groups: list | None = None, previous: dict[str, str] | None = None) -> list[str]:
    """A split per row; `previous`: {id: split} of an earlier run, kept."""
    plan = SplitPlan(parse_shares(shares_text), shares_text, seed)
    current = [previous.get(i) for i in ids] if previous else None
    return draw(len(ids), plan, strata=strata, groups=groups, current=current, ids=ids)


def mini_train(ids: list[str], splits: list[str], strata: list | None = None, rows: int = MINI_TRAIN_ROWS,
               seed: int = 0) -> list[bool]:
    """True for at most `rows` train rows, taken in turn from each stratum (by a seeded hash of the id,
    so the subset changes little as rows are added)."""
    def rank(i: int) -> bytes:
        return hash_rank(f"mini:{seed}:{ids[i]}")

    by_stratum: dict[str, list[int]] = {}
    for i, split in enumerate(splits):
        if split == "train":
            by_stratum.setdefault("" if strata is None else str(strata[i] or ""), []).append(i)
    queues = [sorted(rows_, key=rank) for _, rows_ in sorted(by_stratum.items())]
    chosen: set[int] = set()
    depth = 0
    while len(chosen) < rows and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(chosen) < rows:
                chosen.add(q[depth])
        depth += 1
    return [i in chosen for i in range(len(ids))]


def empty_warning(counts: dict[str, int], shares_text: str, groups: list) -> str | None:
    """A sentence when a split that was given a share got no row (every row in a few groups of
    duplicate images, kept together, or too few rows): training would go on without validation."""
    shares = dict(zip(("train", "val", "test"), parse_shares(shares_text)))
    empty = [s for s, share in shares.items() if share > 0 and counts.get(s, 0) == 0]
    if not empty:
        return None
    rows, n = sum(counts.values()), len(set(groups))
    return (f"The {' and '.join(empty)} split{'s' * (len(empty) > 1)} ended up empty: {rows} row{'s' * (rows != 1)} in "
            f"{n} group{'s' * (n != 1)} of duplicate images (each kept in one split), split {shares_text}; see "
            "report.json's duplicates, or add rows.")

"""Round selection and blind side assignment. Plain Python: no Gradio, no storage.

A round: a query image (from the test split when the catalog has one; the query this annotator
has seen least first, then the least voted, random among equals; never the one just shown;
optionally one category), two methods (the pair with the fewest rounds so far),
each method's top-k without the query, sides drawn at random, and the overlap of the two lists.
Identical lists are not worth a person's time: such a round is marked to be skipped, and the
(query, pair) is remembered as agreeing so it is never drawn again for that pair.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field

import numpy as np

from clip_arena.core.errors import UserError
from clip_arena.index.search import Searcher


@dataclass
class Round:
    round_id: str
    query_id: str
    query_row: int
    method_left: str
    method_right: str
    rows_left: list[int]
    rows_right: list[int]
    results_left: list[str]
    results_right: list[str]
    overlap: int
    identical: bool
    extra: dict = field(default_factory=dict)
    blind: bool = True  # False once this round's methods were shown to the annotator (reveal, then undo)


class MethodsAgree(UserError):
    """Every candidate query (in the chosen category) gives the same list for every pair."""


class OnlyRepeat(MethodsAgree):
    """For this pair, the only query left is one to avoid (the one just shown)."""


class RoundMaker:
    def __init__(self, searcher: Searcher, k: int = 4, seed: int | None = None):
        catalog = searcher.catalog
        if len(searcher.indices) < 2:
            raise UserError("The arena needs a catalog with at least two embedding methods.")
        self.searcher, self.k = searcher, k
        self.rng = random.Random(seed)
        self.ids = catalog.ids
        self.candidates, self.has_test_split = catalog.query_rows()
        self.categories = (catalog.frame(["category"])["category"].to_numpy()
                           if "category" in catalog.table.column_names else None)
        self.methods = sorted(searcher.indices)
        self.pairs = list(itertools.combinations(self.methods, 2))
        self.query_votes = np.zeros(len(self.candidates), np.int64)  # live votes per candidate query
        self._position = {int(row): i for i, row in enumerate(self.candidates)}
        # (query row, pair) known to give identical lists: never drawn again for that pair.
        self.agree: dict[tuple[str, str], set[int]] = {p: set() for p in self.pairs}

    # -- counts kept in step with the store --------------------------------------------------
    def load_counts(self, votes_per_query: dict[str, int]) -> None:
        rows = self.searcher.rows_by_id
        self.query_votes[:] = 0
        for query_id, n in votes_per_query.items():
            pos = self._position.get(rows.get(query_id, -1))
            if pos is not None:
                self.query_votes[pos] = n

    def count_vote(self, query_row: int, delta: int = 1) -> None:
        pos = self._position.get(query_row)
        if pos is not None:
            self.query_votes[pos] = max(0, self.query_votes[pos] + delta)

    def mark_identical(self, query_row: int, pair: tuple[str, str]) -> bool:
        """Remember that this query gives identical lists for this pair; True if it was not known."""
        known = self.agree.setdefault(tuple(sorted(pair)), set())
        if query_row in known:
            return False
        known.add(query_row)
        return True

    def load_agreed(self, rounds: list[tuple[str, str, str]]) -> None:
        """(query_id, method_left, method_right) of rounds auto-skipped earlier on this catalog."""
        rows = self.searcher.rows_by_id
        for query_id, left, right in rounds:
            if query_id in rows:
                self.mark_identical(rows[query_id], (left, right))

    def in_category(self, category: str | None = None) -> np.ndarray:
        """Mask over the candidate queries: those of the category (all when None)."""
        if category and self.categories is not None:
            return self.categories[self.candidates] == category
        return np.ones(len(self.candidates), bool)

    def progress(self, category: str | None = None) -> tuple[int, int]:
        """(candidate queries with at least one live vote, candidate queries), in the category; a
        query whose lists agree for every pair is not a candidate (it is never shown)."""
        mask = self._judgeable(category)
        return int((self.query_votes[mask] > 0).sum()), int(mask.sum())

    def _judgeable(self, category: str | None) -> np.ndarray:
        mask = self.in_category(category)
        for row in set.intersection(*(self.agree.get(p, set()) for p in self.pairs)) if self.pairs else ():
            if row in self._position:
                mask[self._position[row]] = False
        return mask

    def category_choices(self) -> list[str]:
        if self.categories is None:
            return []
        return sorted({str(c) for c in self.categories[self.candidates] if c is not None})

    # -- choosing -------------------------------------------------------------------------------
    def pick_query(self, category: str | None = None, avoid: set[int] | None = None,
                   pair: tuple[str, str] | None = None, seen: dict[int, int] | None = None,
                   strict: bool = False) -> int:
        """Row of the candidate query this annotator has seen least (`seen`: query row -> times shown
        to them or voted by them), then least voted by everyone, random among equals; never one of
        `avoid` (the query on screen) while another is left; never a query known to give identical
        lists for `pair`."""
        counts = self.query_votes.astype(np.float64)
        counts[~self.in_category(category)] = np.inf
        if not np.isfinite(counts).any():
            raise UserError(f"No query images in category {category!r}.")
        for row in self.agree.get(tuple(sorted(pair)), ()) if pair else ():
            counts[self._position[row]] = np.inf
        if not np.isfinite(counts).any():
            where = f"in category {category!r}" if category else "in the catalog"
            raise MethodsAgree(f"The two methods agree on every query {where}: there is nothing to judge"
                               + ("; pick another category." if category else
                                  ". A fine-tuned model that barely moved gives the base model's lists: train "
                                  "it longer, or give the arena more test queries (clip-arena embed --split)."))
        for row in avoid or ():
            pos = self._position.get(row)
            if pos is not None and np.isfinite(counts).sum() > 1:
                counts[pos] = np.inf
            elif pos is not None and strict and np.isfinite(counts[pos]):
                raise OnlyRepeat("The only query left for this pair is the one just shown.")
        mine = self._seen_counts(seen)
        usable = np.flatnonzero(np.isfinite(counts))
        order = np.lexsort((counts[usable], mine[usable]))  # the last key sorts first
        best = usable[order]
        first = best[0]
        least = [p for p in best if mine[p] == mine[first] and counts[p] == counts[first]]
        return int(self.candidates[least[self.rng.randrange(len(least))]])

    def _seen_counts(self, seen: dict[int, int] | None) -> np.ndarray:
        mine = np.zeros(len(self.candidates), np.int64)
        for row, n in (seen or {}).items():
            pos = self._position.get(row)
            if pos is not None:
                mine[pos] = n
        return mine

    def unseen(self, category: str | None, seen: dict[int, int]) -> tuple[int, int]:
        """(candidate queries of the category this annotator has not seen, candidate queries),
        leaving out queries whose lists agree for every pair (they are never shown)."""
        mask = self._judgeable(category)
        mine = self._seen_counts(seen)
        return int(((mine == 0) & mask).sum()), int(mask.sum())

    def pick_pair(self, rounds_per_pair: dict[tuple[str, str], int]) -> tuple[str, str]:
        counts = [rounds_per_pair.get(p, 0) for p in self.pairs]
        least = [p for p, n in zip(self.pairs, counts) if n == min(counts)]
        return least[self.rng.randrange(len(least))]

    def choose(self, rounds_per_pair: dict[tuple[str, str], int], category: str | None = None,
               avoid: set[int] | None = None, seen: dict[int, int] | None = None) -> tuple[int, tuple[str, str]]:
        """(query row, pair): the least-compared pair that still has a query to judge, and its
        least-voted query. Raises MethodsAgree when no pair has one."""
        order = sorted(self.pairs, key=lambda p: (rounds_per_pair.get(p, 0), self.rng.random()))
        for strict in (True, False):  # another pair's query before the query just shown again
            for pair in order:
                try:
                    return self.pick_query(category, avoid, pair, seen, strict), pair
                except OnlyRepeat:
                    continue
                except MethodsAgree as err:
                    last = err
        raise last

    def make_round(self, query_row: int, pair: tuple[str, str], map_fn=map) -> Round:
        """`map_fn` runs the two methods' searches (a thread pool's map runs them side by side)."""
        rows = map_fn(lambda m: [int(r) for r in self.searcher.neighbours(m, query_row, self.k)[0]], pair)
        return self.assemble(query_row, pair, dict(zip(pair, rows)))

    def assemble(self, query_row: int, pair: tuple[str, str], lists: dict[str, list[int]],
                 keep_sides: bool = False) -> Round:
        """A round from the two methods' result rows; sides drawn at random unless kept."""
        left, right = pair if keep_sides or self.rng.random() < 0.5 else pair[::-1]
        ids_left = [self.ids[r] for r in lists[left]]
        ids_right = [self.ids[r] for r in lists[right]]
        return Round(
            round_id=uuid.uuid4().hex, query_id=self.ids[query_row], query_row=query_row,
            method_left=left, method_right=right, rows_left=lists[left], rows_right=lists[right],
            results_left=ids_left, results_right=ids_right, overlap=len(set(ids_left) & set(ids_right)),
            identical=ids_left == ids_right,
        )

    def next_round(self, rounds_per_pair: dict[tuple[str, str], int], category: str | None = None,
                   avoid: set[int] | None = None) -> Round:
        query, pair = self.choose(rounds_per_pair, category, avoid)
        return self.make_round(query, pair)

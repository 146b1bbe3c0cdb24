"""Gold rounds: now and then, a round this annotator already voted on, shown again with the sides
swapped, so the Results tab can measure each annotator's self-consistency (votes/annotators.py
finds the pairs from the votes alone: same annotator, query and lists, sides swapped). A query met
again after the annotator chose to go on past the last one (arena/session.py, go_on) counts too,
as it measures the same thing; the Results tab calls the column "same on repeats". Without gold
rounds and without that choice, no query is met twice.

Off by default (share 0). A round is repeated at most once, and only after at least GAP other
rounds, so that it is not recognised at once.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict

from clip_arena.arena.rounds import Round, RoundMaker

GAP = 5
KEEP = 200  # voted rounds remembered per session


class GoldRounds:
    def __init__(self, share: float = 0.0, seed: int | None = None):
        if not 0.0 <= share <= 0.5:
            raise ValueError("The gold round share must be between 0 and 0.5.")
        self.share = share
        self.rng = random.Random(seed)
        self._voted: dict[str, list[tuple[int, Round]]] = defaultdict(list)  # session -> (round number, round)
        self._count: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def remember(self, session_id: str, r: Round) -> None:
        """A round this session voted on (not itself a repeat) becomes a candidate."""
        if not self.share or r.extra.get("gold"):
            return
        with self._lock:
            self._voted[session_id] = (self._voted[session_id] + [(self._count[session_id], r)])[-KEEP:]

    def take(self, session_id: str, maker: RoundMaker) -> Round | None:
        """With probability `share`, a past round with its sides swapped (None otherwise)."""
        with self._lock:
            self._count[session_id] += 1
            now = self._count[session_id]
            if not self.share or self.rng.random() >= self.share:
                return None
            ready = [i for i, (shown, _) in enumerate(self._voted[session_id]) if now - shown > GAP]
            if not ready:
                return None
            _, old = self._voted[session_id].pop(ready[self.rng.randrange(len(ready))])
        return swapped(old, maker)


def swapped(old: Round, maker: RoundMaker) -> Round:
    """The same query and result lists, the sides exchanged, under a new round id."""
    again = maker.assemble(old.query_row, (old.method_right, old.method_left),
                           {old.method_left: old.rows_left, old.method_right: old.rows_right}, keep_sides=True)
    again.extra.update(gold=True, gold_of=old.round_id, gold_blind=old.blind,
                       gold_voted_at=old.extra.get("voted_at", ""))
    return again

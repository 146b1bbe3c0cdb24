"""The arena's server side: rounds shown, votes stored, undo, skip and a session summary.

One Arena serves every browser session; each session's state (its current round, which holds the
method names) lives on the server in a SessionState and reaches the page only after the vote.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from arena.gold import GoldRounds
from arena.rounds import Round, RoundMaker
from core.errors import UserError
from index.search import Searcher
from votes.choices import Choice, RoundStatus
from votes.store import ShownRound, VoteStore

MAX_AUTO_SKIPS = 50


@dataclass
class SessionState:
    session_id: str
    annotator: str
    category: str | None = None
    current: Round | None = None
    shown_at: float = 0.0
    votes: int = 0
    rounds_shown: int = 0
    last_reveal: dict | None = None
    recent: list[int] = field(default_factory=list)  # query rows shown lately, not to repeat at once
    prefetched: Future | None = None  # the next round, prepared while the annotator looks at this one


class Arena:
    def __init__(self, searcher: Searcher, store: VoteStore, k: int = 4, seed: int | None = None,
                 gold_share: float = 0.0):
        self.searcher, self.store = searcher, store
        self.gold = GoldRounds(gold_share, seed)  # rounds shown again, sides swapped (arena/gold.py)
        self.maker = RoundMaker(searcher, k=k, seed=seed)
        self.maker.load_counts(store.votes_per_query())
        self.pair_counts = store.rounds_per_pair()
        self.fingerprint = "-".join(f"{m}:{searcher.indices[m].fingerprint[:12]}" for m in self.maker.methods)
        self._lock = threading.Lock()  # the in-memory counts are shared by all sessions
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="arena-search")
        # A separate pool: a prefetch runs searches on _pool, and must never wait on itself.
        self._prefetcher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="arena-prefetch")
        self.prefetch = True
        self._parallel = any(index.kind != "flat" for index in searcher.indices.values())

    def start(self, annotator: str, session_id: str | None = None, category: str | None = None) -> SessionState:
        annotator = (annotator or "").strip()
        if not annotator:
            raise UserError("Enter your name before voting, so your votes can be told apart.")
        return SessionState(session_id or uuid.uuid4().hex, annotator, category or None)

    def _shown(self, state: SessionState, r: Round) -> ShownRound:
        return ShownRound(r.round_id, state.annotator, state.session_id, r.query_id, r.method_left, r.method_right,
                          r.results_left, r.results_right, r.overlap, self.fingerprint)

    def _make(self, state: SessionState) -> Round:
        with self._lock:
            query = self.maker.pick_query(state.category, set(state.recent))
            pair = self.maker.pick_pair(self.pair_counts)
            key = tuple(sorted(pair))
            self.pair_counts[key] = self.pair_counts.get(key, 0) + 1
        # Large indices: both searches side by side (FAISS and numpy release the GIL); exact search
        # on a small catalog takes less than a thread hand-off.
        return self.maker.make_round(query, pair, self._pool.map if self._parallel else map)

    def _prepare_next(self, state: SessionState) -> tuple[Round, list]:
        """The next round, and the rows to record: rounds whose two lists are identical are
        recorded as auto-skipped, the round to show as shown."""
        again = self.gold.take(state.session_id, self.maker)
        if again is not None:
            return again, [(self._shown(state, again), RoundStatus.SHOWN)]
        records = []
        for _ in range(MAX_AUTO_SKIPS):
            r = self._make(state)
            if not r.identical:
                break
            records.append((self._shown(state, r), RoundStatus.AUTO_SKIPPED))
        records.append((self._shown(state, r), RoundStatus.SHOWN))
        return r, records

    def _show(self, state: SessionState, r: Round) -> Round:
        state.current, state.shown_at = r, time.monotonic()
        state.rounds_shown += 1
        state.recent = (state.recent + [r.query_row])[-20:]
        if self.prefetch and state.prefetched is None:
            # Prepare the next round now: people look at a round for seconds, so the searches are
            # done by the time they vote, and a vote costs one commit (bench/bench_arena.py).
            state.prefetched = self._prefetcher.submit(self._prepare_next, state)
        return r

    def _take_next(self, state: SessionState) -> tuple[Round, list]:
        future, state.prefetched = state.prefetched, None
        return future.result() if future is not None else self._prepare_next(state)

    def next_round(self, state: SessionState) -> Round:
        r, records = self._take_next(state)
        self.store.record_rounds(records)
        return self._show(state, r)

    def vote(self, state: SessionState, choice: Choice | str, round_id: str | None = None) -> Round:
        """Store the vote for the current round (refusing a stale round id) and show the next."""
        r = self._require_round(state, round_id)
        display_ms = int(round((time.monotonic() - state.shown_at) * 1000))
        with self._lock:
            self.maker.count_vote(r.query_row, +1)  # before choosing the next query
        following, records = self._take_next(state)
        try:  # the vote and the next round in one transaction: one fsync per vote
            self.store.record_vote(self._shown(state, r), Choice(choice), display_ms, then=records)
        except BaseException:
            with self._lock:
                self.maker.count_vote(r.query_row, -1)
            raise
        state.votes += 1
        self.gold.remember(state.session_id, r)
        state.last_reveal = {"choice": Choice(choice).value, "left": r.method_left, "right": r.method_right,
                             "query_id": r.query_id}
        return self._show(state, following)

    def skip(self, state: SessionState, round_id: str | None = None) -> Round:
        r = self._require_round(state, round_id)
        self.store.set_round_status(r.round_id, RoundStatus.SKIPPED)
        state.last_reveal = None
        return self.next_round(state)

    def undo(self, state: SessionState) -> Round | None:
        """Undo this session's last live vote and show that round again (as a new round)."""
        row = self.store.undo_last(state.session_id)
        if row is None:
            return None
        if state.current is not None:  # the round on screen was never judged
            self.store.set_round_status(state.current.round_id, RoundStatus.SKIPPED)
        row_of = self.searcher.row_of  # the catalog's id -> row map, built once
        query_row = row_of(row["query_id"])
        with self._lock:
            self.maker.count_vote(query_row, -1)
        left, right = json.loads(row["results_left"]), json.loads(row["results_right"])
        again = self.maker.assemble(query_row, (row["method_left"], row["method_right"]),
                                    {row["method_left"]: [row_of(i) for i in left],
                                     row["method_right"]: [row_of(i) for i in right]}, keep_sides=True)
        self.store.record_round(self._shown(state, again))
        state.current, state.shown_at, state.last_reveal = again, time.monotonic(), None
        state.rounds_shown += 1
        state.votes = max(0, state.votes - 1)
        return again

    def summary(self, state: SessionState) -> dict:
        votes = self.store.session_votes(state.session_id)
        wins: dict[str, int] = {m: 0 for m in self.maker.methods}
        counts = {c.value: 0 for c in Choice}
        for v in votes:
            counts[v["choice"]] += 1
            if v["choice"] == Choice.LEFT.value:
                wins[v["method_left"]] += 1
            elif v["choice"] == Choice.RIGHT.value:
                wins[v["method_right"]] += 1
        return {"annotator": state.annotator, "votes": len(votes), "choices": counts, "wins": wins}

    def _require_round(self, state: SessionState, round_id: str | None) -> Round:
        r = state.current
        if r is None:
            raise UserError("There is no round on screen; press Start.")
        if round_id is not None and round_id != r.round_id:
            raise StaleRound("That key press was for a round already judged; it was ignored.")
        return r


class StaleRound(UserError):
    """A vote for a round that is no longer on screen (a double press, a replayed request)."""

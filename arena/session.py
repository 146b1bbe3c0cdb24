"""The arena's server side: rounds shown, votes stored, undo, skip and a session summary.

One Arena serves every browser session; each session's state (its current round, which holds the
method names) lives on the server in a SessionState and reaches the page only after the vote.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from clip_arena.arena.gold import GoldRounds
from clip_arena.arena.rounds import MethodsAgree, Round, RoundMaker
from clip_arena.core.errors import UserError
from clip_arena.index.search import Searcher
from clip_arena.votes.choices import Choice, RoundStatus
from clip_arena.votes.fingerprints import HASH_DIGITS
from clip_arena.votes.names import clean_name
from clip_arena.votes.store import ShownRound, VoteStore


@dataclass
class SessionState:
    session_id: str  # random, made here: never Gradio's session hash, which addresses a live session
    annotator: str
    category: str | None = None
    current: Round | None = None
    shown_at: float = 0.0
    votes: int = 0
    rounds_shown: int = 0
    last_reveal: dict | None = None
    flagged: int = 0  # votes of this session cast under the display-time floor
    last_flagged: bool = False
    notice: str | None = None  # why there is no round on screen (every query's lists agree)
    revealed: set[str] = field(default_factory=set)  # rounds whose methods this annotator has seen
    # Query row -> times this annotator met it (votes of earlier sessions, rounds shown in this one):
    # the least met comes first, and once every query was met the arena asks before repeating.
    seen: dict[int, int] = field(default_factory=dict)
    judged: dict[int, int] = field(default_factory=dict)  # query row -> this annotator's live votes on it
    last_row: int | None = None  # the query last voted on: the next round's differs, even after a notice
    numbers: dict[str, int] = field(default_factory=dict)  # voted round -> its number, shown again after undo
    repeats: bool = False  # the annotator chose to go on judging queries they have judged
    covered: bool = False  # no round on screen because every query was met (state.notice says so)
    prefetched: Future | None = None  # the next round, prepared while the annotator looks at this one
    # One action of a session at a time: a vote and an undo of one annotator never interleave,
    # while other annotators' actions run beside them.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class Arena:
    def __init__(self, searcher: Searcher, store: VoteStore, k: int = 4, seed: int | None = None,
                 gold_share: float = 0.0, max_votes_per_hour: int = 0, min_display_ms: int = 0):
        self.searcher, self.store = searcher, store
        # Per annotator: at most this many live votes in any hour (0: no cap); a vote cast sooner
        # than min_display_ms after its round appeared is kept but flagged for review.
        self.max_votes_per_hour, self.min_display_ms = max_votes_per_hour, min_display_ms
        self.gold = GoldRounds(gold_share, seed)  # rounds shown again, sides swapped (arena/gold.py)
        self.maker = RoundMaker(searcher, k=k, seed=seed)
        self.maker.load_counts(store.votes_per_query())
        self.pair_counts = store.rounds_per_pair()
        # votes.fingerprints reads it (methods_of) and makes the same from a catalog alone (of_catalog)
        self.fingerprint = "-".join(f"{m}:{searcher.indices[m].fingerprint[:HASH_DIGITS]}" for m in self.maker.methods)
        self.maker.load_agreed(store.auto_skipped(self.fingerprint))
        self._lock = threading.Lock()  # the in-memory counts are shared by all sessions
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="arena-search")
        # A separate pool: a prefetch runs searches on _pool, and must never wait on itself.
        self._prefetcher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="arena-prefetch")
        self.prefetch = True
        self._exports: dict[str | None, str] = {}  # who exported the votes, and when (note_export)
        self._annotator_locks: dict[str, threading.Lock] = {}  # the hourly cap, per annotator
        self._parallel = any(index.kind != "flat" for index in searcher.indices.values())

    def start(self, annotator: str, *, category: str | None = None, repeats: bool = False) -> SessionState:
        if not (annotator or "").strip():
            raise UserError("Enter your name before voting, so your votes can be told apart.")
        # Every stored name has a length and no invisible character (votes.names): a vote row must
        # always be readable back, and two names that look the same must be the same.
        name = clean_name(annotator)
        row_of = self.searcher.rows_by_id
        seen = {row_of[q]: n for q, n in self.store.votes_per_query(name).items() if q in row_of}
        return SessionState(uuid.uuid4().hex, name, category or None, seen=seen, judged=dict(seen), repeats=repeats)

    def go_on(self, state: SessionState) -> Round:
        """The annotator, told that every query was met, chose to judge queries again."""
        with state.lock:
            state.repeats, state.covered = True, False
            if state.prefetched is not None:  # prepared before the choice: it may be the notice
                state.prefetched.cancel() or state.prefetched.result()
                state.prefetched = None
            return self._next_round(state)

    def _shown(self, state: SessionState, r: Round) -> ShownRound:
        return ShownRound(r.round_id, state.annotator, state.session_id, r.query_id, r.method_left, r.method_right,
                          r.results_left, r.results_right, r.overlap, self.fingerprint, r.blind)

    def _make(self, state: SessionState) -> Round:
        with self._lock:
            # never the same query twice in a row: the one on screen, or (after the "every query met"
            # notice, when Continue asks for a repeat) the one last voted on
            on_screen = state.current.query_row if state.current is not None else state.last_row
            shown = {on_screen} if on_screen is not None else set()
            query, pair = self.maker.choose(self.pair_counts, state.category, shown, state.seen)
            key = tuple(sorted(pair))
            self.pair_counts[key] = self.pair_counts.get(key, 0) + 1
        # Large indices: both searches side by side (FAISS and numpy release the GIL); exact search
        # on a small catalog takes less than a thread hand-off.
        return self.maker.make_round(query, pair, self._pool.map if self._parallel else map)

    def _prepare_next(self, state: SessionState) -> tuple[Round | None, list, str | None]:
        """The next round to show, the rows to record with it and, when there is no round to
        show, why. Rows: each newly found identical-list round once, as auto-skipped, then the
        round to show once, as shown. A query found identical for a pair is never drawn again
        for it, so this ends. Once this annotator has met every query, nothing is shown until they
        choose to go on (go_on): silent repeats would weigh some queries more than others."""
        if not state.repeats:
            with self._lock:
                unseen, total = self.maker.unseen(state.category, state.seen)
            if total and not unseen:
                return None, [], COVERED  # worded when taken: the vote on screen may still come
        again = self.gold.take(state.session_id, self.maker)
        if again is not None:  # a repeat is blind only if the round it repeats was never revealed
            again.blind = (again.extra.pop("gold_blind", True) and again.extra["gold_of"] not in state.revealed
                           and not self._exported_since(state.annotator, again.extra.pop("gold_voted_at", "")))
            return again, [(self._shown(state, again), RoundStatus.SHOWN)], None
        records = []
        while True:
            try:
                r = self._make(state)
            except MethodsAgree as err:
                return None, records, str(err)
            if not r.identical:
                return r, records + [(self._shown(state, r), RoundStatus.SHOWN)], None
            with self._lock:
                new = self.maker.mark_identical(r.query_row, (r.method_left, r.method_right))
                unseen, total = self.maker.unseen(state.category, state.seen)
            if new:  # another session may have found it at the same moment: record it once
                records.append((self._shown(state, r), RoundStatus.AUTO_SKIPPED))
            if not state.repeats and total and not unseen:  # the queries left all agree: met them all
                return None, records, COVERED

    def _show(self, state: SessionState, r: Round | None) -> Round | None:
        state.current, state.shown_at = r, time.monotonic()
        if r is None:
            return None
        state.notice, state.covered = None, False
        state.rounds_shown += 1
        r.extra["number"] = state.rounds_shown
        state.seen[r.query_row] = state.seen.get(r.query_row, 0) + 1
        if self.prefetch and state.prefetched is None:
            # Prepare the next round now: people look at a round for seconds, so the searches are
            # done by the time they vote, and a vote costs one commit (bench/bench_arena.py).
            state.prefetched = self._prefetcher.submit(self._prepare_next, state)
        return r

    def _take_next(self, state: SessionState) -> tuple[Round | None, list]:
        """The prepared next round and its rows (None, with state.notice, when every query's
        lists agree)."""
        future, state.prefetched = state.prefetched, None
        r, records, state.notice = future.result() if future is not None else self._prepare_next(state)
        state.covered = r is None and state.notice == COVERED
        if state.covered:
            state.notice = self._covered(state)
        return r, records

    def next_round(self, state: SessionState) -> Round:
        """Show a new round; raises MethodsAgree when there is nothing left to judge."""
        with state.lock:
            return self._next_round(state)

    def _next_round(self, state: SessionState) -> Round:
        r, records = self._take_next(state)
        self.store.record_rounds(records)
        if r is None:
            state.current = None
            raise (Covered if state.covered else MethodsAgree)(state.notice)
        return self._show(state, r)

    def vote(self, state: SessionState, choice: Choice | str, round_id: str | None = None,
             reveal: bool = True) -> Round | None:
        """Store the vote for the current round (refusing a stale round id) and show the next:
        None, with state.notice, when no round is left to judge. With `reveal` the annotator is
        shown the round's methods, which makes a later re-vote of it (after undo) not blind."""
        with state.lock:
            r = self._require_round(state, round_id)
            display_ms = int(round((time.monotonic() - state.shown_at) * 1000))
            flag = (f"cast {display_ms} ms after the round appeared, under the {self.min_display_ms} ms floor"
                    if display_ms < self.min_display_ms else None)
            # The cap is checked and the vote stored under one lock per annotator: two sessions of one
            # login voting at once cannot both pass a check that only one of them may.
            with self._cap_lock(state.annotator):
                self._check_cap(state)
                with self._lock:
                    self.maker.count_vote(r.query_row, +1)  # before choosing the next query
                state.judged[r.query_row] = state.judged.get(r.query_row, 0) + 1
                state.last_row = r.query_row
                following, records = self._take_next(state)
                try:  # the vote and the next round in one transaction: one fsync per vote
                    self.store.record_vote(self._shown(state, r), Choice(choice), display_ms, then=records,
                                           flag=flag)
                except BaseException:
                    with self._lock:
                        self.maker.count_vote(r.query_row, -1)
                    state.judged[r.query_row] -= 1
                    raise
            state.votes += 1
            state.numbers[r.round_id] = r.extra.get("number", state.rounds_shown)
            state.flagged += bool(flag)
            state.last_flagged = bool(flag)
            r.extra["voted_at"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            self.gold.remember(state.session_id, r)
            state.last_reveal = None
            if reveal:
                state.revealed.add(r.round_id)
                state.last_reveal = {"choice": Choice(choice).value, "left": r.method_left,
                                     "right": r.method_right, "query_id": r.query_id}
            return self._show(state, following)

    def skip(self, state: SessionState, round_id: str | None = None) -> Round:
        with state.lock:
            r = self._require_round(state, round_id)
            self.store.set_round_status(r.round_id, RoundStatus.SKIPPED)
            state.last_reveal = None
            return self._next_round(state)

    def undo(self, state: SessionState) -> Round | None:
        """Undo this session's last live vote and show that round again (as a new round, with the
        same sides); the new round is not blind if the undone one's methods were revealed."""
        with state.lock:
            row = self.store.undo_last(state.session_id)
            if row is None:
                return None
            # The next round was prepared beside the one on screen; chosen again after the re-vote,
            # it cannot be the undone round's query a second time in a row.
            discard, state.prefetched = state.prefetched, None
            if discard is not None and not discard.cancel():
                discard.result()
            if state.current is not None:  # on screen, never judged: stays "shown" (not a skip of the annotator)
                state.rounds_shown -= 1
                q = state.current.query_row
                state.seen[q] = state.seen.get(q, 1) - 1
            row_of = self.searcher.row_of  # the catalog's id -> row map, built once
            query_row = row_of(row["query_id"])
            with self._lock:
                self.maker.count_vote(query_row, -1)
            state.judged[query_row] = max(0, state.judged.get(query_row, 0) - 1)
            left, right = json.loads(row["results_left"]), json.loads(row["results_right"])
            again = self.maker.assemble(query_row, (row["method_left"], row["method_right"]),
                                        {row["method_left"]: [row_of(i) for i in left],
                                         row["method_right"]: [row_of(i) for i in right]}, keep_sides=True)
            again.extra["number"] = state.numbers.get(row["round_id"], state.rounds_shown)
            again.blind = (bool(row["blind"]) and row["round_id"] not in state.revealed
                           and not self._exported_since(state.annotator, row["created_at"]))
            if not again.blind:
                state.revealed.add(again.round_id)
            self.store.record_round(self._shown(state, again))
            state.current, state.shown_at, state.last_reveal, state.notice = again, time.monotonic(), None, None
            state.covered = False  # the round undone is the one on screen again, numbered as before
            state.votes = max(0, state.votes - 1)
            return again

    def _covered(self, state: SessionState) -> str:
        with self._lock:
            _, total = self.maker.unseen(state.category, state.seen)
            unjudged, _ = self.maker.unseen(state.category, state.judged)
        return covered_notice(self.maker.has_test_split, state.category, total, skipped=unjudged > 0)

    def note_export(self, name: str | None) -> None:
        """Someone exported the votes (each round's sides): `name`'s votes cast until now are no longer
        blind to them, so a re-vote after undo is stored as not blind. None (nobody signed in, the
        local owner): to everyone."""
        with self._lock:
            self._exports[name] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")

    def _exported_since(self, annotator: str, created_at: str) -> bool:
        marks = [self._exports.get(annotator), self._exports.get(None)]
        return any(mark is not None and created_at <= mark for mark in marks)

    def progress(self, state: SessionState) -> tuple[int, int]:
        """(queries with a live vote, candidate queries) in this session's category."""
        return self.maker.progress(state.category)

    def summary(self, state: SessionState) -> dict:
        """This session's votes, counted as the Results tab counts them: a vote cast after the
        annotator saw the round's methods (a re-vote after undo) is left out, and said apart."""
        votes = self.store.session_votes(state.session_id)
        wins: dict[str, int] = {m: 0 for m in self.maker.methods}
        counts = {c.value: 0 for c in Choice}
        not_blind = [v for v in votes if not v["blind"]]
        votes = [v for v in votes if v["blind"]]
        for v in votes:
            counts[v["choice"]] += 1
            if v["choice"] == Choice.LEFT.value:
                wins[v["method_left"]] += 1
            elif v["choice"] == Choice.RIGHT.value:
                wins[v["method_right"]] += 1
        return {"annotator": state.annotator, "votes": len(votes), "choices": counts, "wins": wins,
                "not_blind": len(not_blind)}

    def _cap_lock(self, annotator: str):
        if self.max_votes_per_hour <= 0:
            return contextlib.nullcontext()
        with self._lock:
            return self._annotator_locks.setdefault(annotator, threading.Lock())

    def _check_cap(self, state: SessionState) -> None:
        """Refuse a vote past the annotator's hourly cap, saying when the next one is possible."""
        if self.max_votes_per_hour <= 0:
            return
        now = datetime.now(timezone.utc)
        since = (now - timedelta(hours=1)).isoformat(timespec="milliseconds")
        if self.store.votes_since(state.annotator, since) >= self.max_votes_per_hour:
            raise VoteCap(f"You have cast {self.max_votes_per_hour} votes in the past hour, the most this arena "
                          "takes from one annotator; please come back in a few minutes.")

    def _require_round(self, state: SessionState, round_id: str | None) -> Round:
        r = state.current
        if r is None:
            raise UserError("There is no round on screen; press Start.")
        if round_id is not None and round_id != r.round_id:
            raise StaleRound("That key press was for a round already judged; it was ignored.")
        return r


COVERED = "covered"  # _prepare_next's word for "every query met"; _take_next words it


def covered_notice(test_split: bool, category: str | None, total: int, skipped: bool = False) -> str:
    """`skipped`: some of the queries were only skipped, never judged."""
    queries = "test query" if test_split else "query"
    where = f" in category {category}" if category else ""
    did = "judged or skipped" if skipped else "judged"
    return (f"You have {did} every {queries}{where} ({total}); new rounds would "
            f"repeat queries you {did}. Press Continue to judge them again, or choose another category and "
            "press Start.")


class Covered(MethodsAgree):
    """This annotator has met every query of their category and has not chosen to go on."""


class VoteCap(UserError):
    """An annotator has reached the votes-per-hour cap."""


class StaleRound(UserError):
    """A vote for a round that is no longer on screen (a double press, a replayed request)."""

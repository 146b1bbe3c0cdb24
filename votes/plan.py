"""An evaluation plan stated before voting, the tests it may use, and the votes each still needs.

A plan is the smallest difference worth acting on (a win rate such as 0.6, read as 60/40 either
way), the most decisive votes to spend on a pair, and alpha for the whole table of pairs. Two
tests can give the verdict of a pair; both run at alpha / K for K pairs of methods (a Bonferroni
over the family, so "better" anywhere in the table is wrong with probability at most alpha):

- the always-valid betting test (votes.clustered), with or without a plan, valid for ever;
- with a plan, a group-sequential test fitted to it: each query enters once, with its first
  decisive vote (under "no difference" a fair coin whatever the query effects), and "better" is
  said when one method leads the other by `d` queries at any moment up to the plan's maximum. A
  constant lead is O'Brien-Fleming's boundary under continuous looks (constant on the B-value
  scale); `d` is the smallest lead whose exact chance of ever being reached by a fair walk of
  `max_votes` steps (or as many as the arena has queries, when fewer), looked at after every step,
  is at most alpha / K. Exact, no normal
  approximation, valid however often one looks before the maximum.

The plan picks, before any vote, the test with the larger power at its effect and maximum
(exact for the group-sequential test, simulated for the betting test), so the choice costs no
validity. Votes still needed are planned for votes on new queries (each query counts once in
both tests) and for the test that gives the verdict.
"""

from __future__ import annotations

import json
import math
import os
import dataclasses
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from clip_arena.votes.clustered import BETTORS, MAX_BET

POWER = 0.8
MOST_VOTES = 20_000  # a plan beyond this is not a plan for an arena of people
SIMULATED_ARENAS = 2000  # per effect and alpha, seeded: the same answer on every call
ALWAYS_VALID = "always-valid"
GROUP_SEQUENTIAL = "group-sequential"


@dataclass(frozen=True)
class Plan:
    effect: float  # the smallest win rate worth acting on, above 1/2 (0.6 = a 60/40 difference)
    max_votes: int  # the most decisive votes to spend on each pair
    alpha: float = 0.05  # for the whole table of pairs
    stated_at: str | None = None  # when the plan was stored (UTC)
    votes_when_stated: int | None = None  # votes in the store then (0 = stated before voting)
    queries: int | None = None  # the arena's query images: a query enters the group-sequential test once
    earlier: tuple = ()  # the plans this one replaced, oldest first: a changed plan is said, never lost

    def entries(self) -> int:
        """The most entries the group-sequential test can have: one per query, within the budget."""
        return min(self.max_votes, self.queries) if self.queries else self.max_votes

    def label(self) -> str:
        return f"{round(100 * self.effect)}/{round(100 * (1 - self.effect))}"

    def as_dict(self) -> dict:
        return asdict(self)


def _effect(text: str) -> float:
    text = text.strip().replace("%", "")
    if "/" in text:  # 60/40
        text = text.split("/", 1)[0]
    value = float(text)
    if 1 < value < 100:
        value /= 100
    if not 0 < value < 1 or abs(value - 0.5) < 0.01:
        raise ValueError("effect must be a win rate other than 50%, such as 0.6, 60 or 60/40")
    return 0.5 + abs(value - 0.5)


def parse_plan(text: str) -> Plan:
    """'effect=0.6,max_votes=400,alpha=0.05' (alpha optional, 0.05) -> Plan; ValueError says why not."""
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or key not in ("effect", "max_votes", "alpha"):
            raise ValueError(f"{part!r} is not one of effect=RATE, max_votes=N, alpha=A")
        fields[key] = value.strip()
    missing = [k for k in ("effect", "max_votes") if k not in fields]
    if missing:
        raise ValueError(f"the plan needs {' and '.join(missing)} (e.g. effect=0.6,max_votes=400,alpha=0.05)")
    try:
        effect = _effect(fields["effect"])
        max_votes = int(fields["max_votes"])
        alpha = float(fields.get("alpha", "0.05"))
    except ValueError as e:
        raise ValueError(str(e) if "effect must" in str(e) else f"the plan's values must be numbers ({e})") from None
    if not 10 <= max_votes <= MOST_VOTES:
        raise ValueError(f"max_votes must be between 10 and {MOST_VOTES}")
    if not 0.0001 <= alpha <= 0.2:
        raise ValueError("alpha must be between 0.0001 and 0.2")
    return Plan(effect, max_votes, alpha)


def plan_path(votes_path) -> Path:
    """The plan lives beside the vote store (votes.db -> votes.db.plan.json): the store's schema stays as it is."""
    p = Path(votes_path)
    return p.with_name(p.name + ".plan.json")


def _from_dict(data: dict, earlier: tuple = ()) -> Plan:
    queries = data.get("queries")
    return Plan(_effect(str(data["effect"])), int(data["max_votes"]), float(data.get("alpha", 0.05)),
                data.get("stated_at"), data.get("votes_when_stated"), int(queries) if queries else None, earlier)


def read_plan(votes_path) -> Plan | None:
    """The stored plan with the ones it replaced, or None (none stored, or a file that is not a plan:
    never stops the app). An earlier plan that cannot be read is left out of the history."""
    try:
        data = json.loads(plan_path(votes_path).read_text())
        earlier = []
        for old in data.get("earlier") or []:
            try:
                earlier.append(_from_dict(old))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        return _from_dict(data, tuple(earlier))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def same(a: Plan | None, b: Plan | None) -> bool:
    return a is not None and b is not None and (a.effect, a.max_votes, a.alpha) == (b.effect, b.max_votes, b.alpha)


def write_plan(votes_path, plan: Plan, votes_now: int, queries: int | None = None) -> Plan:
    """Store the plan with when it was stated and how many votes existed then (written whole, then
    renamed). The same plan stated again (a restart with the same --plan) keeps its first statement;
    another one keeps the plans it replaces in `earlier`, so a plan changed after seeing votes is said."""
    stored = read_plan(votes_path)
    if same(stored, plan):
        return stored
    history = (*stored.earlier, dataclasses.replace(stored, earlier=())) if stored is not None else ()
    stated = Plan(plan.effect, plan.max_votes, plan.alpha, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  votes_now, queries, history)
    path = plan_path(votes_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stated.as_dict(), indent=2))
    os.replace(tmp, path)
    return stated


def plan_change(plan: Plan) -> str | None:
    """The warning a changed plan carries: the first plan stated, and what changing it costs."""
    if not plan.earlier:
        return None
    first = plan.earlier[0]
    n = plan.votes_when_stated or 0
    when = ("stated before voting" if first.votes_when_stated == 0 else
            f"stated after {first.votes_when_stated} vote{'s' if first.votes_when_stated != 1 else ''}"
            if first.votes_when_stated else "stated")
    others = f" ({len(plan.earlier)} earlier plans, all kept beside the vote store)" if len(plan.earlier) > 1 else ""
    return (f"Warning: the plan changed after {n} vote{'s' if n != 1 else ''} ({plan.stated_at}): the earlier plan, "
            f"{when} ({first.stated_at}), was {first.label()}, at most {first.max_votes} decisive votes a pair, alpha "
            f"{first.alpha:g}{others}; a plan changed after seeing votes weakens the guarantee")


def plan_words(plan: Plan) -> str:
    """The plan in one line, and whether it was stated before voting (a plan stated after seeing
    votes can be bent to them: said, not hidden)."""
    when = ""
    if plan.earlier:
        when = f". {plan_change(plan)}"
    elif plan.votes_when_stated == 0:
        when = f", stated before voting ({plan.stated_at})"
    elif plan.votes_when_stated:
        when = (f", stated after {plan.votes_when_stated} votes had been cast ({plan.stated_at}): a plan chosen "
                "after seeing votes can be bent to them")
    return (f"smallest difference worth acting on {plan.label()}, at most {plan.max_votes} decisive votes a pair, "
            f"alpha {plan.alpha:g} for the whole table{when}")


# -- the group-sequential test: a constant lead, exact ------------------------------------------

def _walk(n: int, d: int, p: float, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A walk of n steps (+1 with probability p) from `start`, stopped at +d or -d: the chance of
    having been stopped at +d and at -d by each step (cumulative, length n + 1)."""
    size = 2 * d + 1  # positions -d..d; the ends absorb
    mass = np.zeros(size)
    mass[start + d] = 1.0
    up, down = np.zeros(n + 1), np.zeros(n + 1)
    for i in range(1, n + 1):
        inner = mass[1:-1].copy()
        mass[1:-1] = 0.0
        mass[2:] += p * inner
        mass[:-2] += (1 - p) * inner
        up[i], down[i] = mass[-1], mass[0]
    return up, down


@lru_cache(maxsize=64)
def boundary(n: int, alpha: float) -> int:
    """The smallest lead d with P(a fair walk's |lead| reaches d within n steps) <= alpha."""
    low, high = 1, n + 1  # a lead of n + 1 is never reached
    while low < high:
        mid = (low + high) // 2
        if mid > n:
            return mid
        up, down = _walk(n, mid, 0.5)
        if up[-1] + down[-1] <= alpha:
            high = mid
        else:
            low = mid + 1
    return low


def group_sequential_power(effect: float, n: int, alpha: float, planned: int | None = None) -> float:
    """Exact chance that the better method (win rate `effect`) is called better within n entries,
    by the test fitted to `planned` entries (n when not given)."""
    d = boundary(planned or n, alpha)
    return 0.0 if d > n else float(_walk(n, d, effect)[0][-1])


def group_sequential_test(first_votes, n: int, alpha: float) -> dict:
    """The test over each query's first decisive vote (1 = B won), in time order, up to n entries."""
    x = np.asarray(first_votes, float)[:n]
    d = boundary(n, alpha)
    lead = np.cumsum(2 * x - 1) if len(x) else np.zeros(0)
    hit = np.flatnonzero(np.abs(lead) >= d)
    direction = int(np.sign(lead[hit[0]])) if len(hit) else 0
    return {"boundary": d, "entries": int(len(x)), "lead": int(lead[-1]) if len(lead) else 0,
            "significant": bool(len(hit)), "direction": direction}


def group_sequential_more(effect: float, n: int, alpha: float, entries: int, lead: int,
                          power: float = POWER) -> int | None:
    """Further entries (new queries) after which the test, from its current lead, has fired with
    chance `power` if the leading method truly wins with `effect`; None when not within the plan."""
    d = boundary(n, alpha)
    left = n - entries
    if left <= 0 or d > n:
        return None
    if abs(lead) >= d:
        return 0
    sign = 1 if lead >= 0 else -1
    up = _walk(left, d, effect, start=sign * lead)[0]
    reached = np.flatnonzero(up >= power)
    return int(reached[0]) if len(reached) else None


# -- the always-valid test: simulated, cached -------------------------------------------------

BLOCK = 256  # votes simulated at a time; each block has its own seed, so a longer run extends a shorter one


@lru_cache(maxsize=256)
def _first_fire(effect: float, alpha: float, steps: int) -> np.ndarray:
    """For SIMULATED_ARENAS seeded arenas with one decisive vote per new query (the betting test
    then rests on its first bettor, as votes.clustered.betting_log_wealth bets), the entry at which
    the test fires for the better method (inf when not within `steps`). Every call sees the same
    arenas, whatever `steps`."""
    threshold = math.log(BETTORS / alpha)
    first = np.full(SIMULATED_ARENAS, np.inf)
    total = squares = log_wealth = np.zeros(SIMULATED_ARENAS)
    for block in range(math.ceil(steps / BLOCK)):
        rng = np.random.default_rng([2026, block])
        y = (rng.random((SIMULATED_ARENAS, BLOCK)) < effect) - 0.5
        seen = block * BLOCK + np.arange(BLOCK)
        past_sum = total[:, None] + np.cumsum(y, axis=1) - y
        past_sq = squares[:, None] + np.cumsum(y * y, axis=1) - y * y
        mean = past_sum / np.maximum(seen, 1)
        var = np.maximum(past_sq / np.maximum(seen, 1) - mean * mean, 0.0)
        bet = np.where(mean > 0, np.clip(mean / (var + mean * mean + 1e-12), 0.0, MAX_BET), 0.0)
        bet = np.where(seen == 0, 0.5, bet)
        path = log_wealth[:, None] + np.cumsum(np.log1p(bet * y), axis=1)
        fired = path >= threshold
        hit = fired.any(axis=1) & np.isinf(first)
        first[hit] = block * BLOCK + fired[hit].argmax(axis=1) + 1
        total, squares, log_wealth = past_sum[:, -1] + y[:, -1], past_sq[:, -1] + y[:, -1] ** 2, path[:, -1]
    first[first > steps] = np.inf
    return first


def _steps(n: int) -> int:
    """Simulation lengths come in powers of two, so that nearby questions share one cached run."""
    return max(BLOCK, 1 << max(int(n) - 1, 1).bit_length())


def _rounded(effect: float, alpha: float) -> tuple[float, float]:
    return round(0.5 + abs(effect - 0.5), 3), float(f"{alpha:.3g}")


def always_valid_power(effect: float, n: int, alpha: float) -> float:
    """Simulated chance the betting test has called the better method better within n new queries."""
    effect, alpha = _rounded(effect, alpha)
    return float((_first_fire(effect, alpha, _steps(n)) <= n).mean())


PLANNED_QUERIES = 10_000  # beyond this many new queries a difference "would take more votes than can be planned"


def always_valid_needed(effect: float, alpha: float, power: float = POWER, most: int = PLANNED_QUERIES) -> int | None:
    """New queries (one decisive vote each) by which the betting test fires in `power` of arenas at
    a true win rate `effect` (simulated, with the simulation's own error counted against it: the
    upper 95% bound of the quantile); None beyond `most`. Firing is for good, so this
    share only grows with n: no zig-zag as in a fixed-size test."""
    effect, alpha = _rounded(effect, alpha)
    if effect - 0.5 < 1e-9:
        return None
    guess = (math.log(BETTORS / alpha) + 2.0) / (2 * (effect - 0.5) ** 2)  # about log(1/alpha) / KL
    if 1.4 * guess > most:  # simulated answers run 1.5-1.7 times the guess: clearly beyond, no need to simulate
        return None
    steps = _steps(min(most, 2 * guess))
    while True:
        first = np.sort(_first_fire(effect, alpha, steps))
        # the upper 95% confidence bound of the simulated quantile: the promise holds in fresh arenas too
        r = len(first)
        at = first[min(r, math.ceil(power * r + 1.645 * math.sqrt(r * power * (1 - power)))) - 1]
        if np.isfinite(at):
            return int(at) if at <= most else None
        if steps >= most:
            return None
        steps *= 2


def choose_test(plan: Plan | None, family: int) -> dict:
    """The test that gives the verdict, fixed by the plan and the number of pairs alone (never by
    the votes, so choosing costs no validity): the one with the larger power at the plan."""
    alpha = (plan.alpha if plan else 0.05) / max(family, 1)
    out = {"test": ALWAYS_VALID, "alpha": alpha, "family_pairs": family}
    if plan is None:
        return out
    n = plan.entries()
    gs = group_sequential_power(plan.effect, n, alpha)
    av = always_valid_power(plan.effect, n, alpha)  # on as many new queries (it may also use repeats)
    out.update(power={GROUP_SEQUENTIAL: gs, ALWAYS_VALID: av},
               test=GROUP_SEQUENTIAL if gs > av else ALWAYS_VALID, boundary=boundary(n, alpha), entries_max=n)
    return out

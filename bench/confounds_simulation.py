"""False "better" when the sides were not drawn at random, before and after votes.confounds.

An imported arena of 300 votes on 150 queries, two annotators: a "puller" who picks the left 75%
of the time between equal methods (log-odds 1.1) and a fair one. Scenarios:

- random: sides drawn at random (the arena's own draw); the puller votes first.
- drift: finetuned on the left 90% of the time at first, 10% at the end; the puller first half.
- puller-early: the puller votes the first 40% with finetuned on the left 85% of the time, then the
  fair annotator with it on the left 35%.

Each arena is watched every 20 votes; "before" counts arenas where the always-valid headline
said "better" at some look, "after" those where it did while votes.confounds did not flag the
pair (the verdict a user would have read). effect = B's true log-odds advantage (0: none).

    python bench/confounds_simulation.py              # 200 arenas per setting (about a minute)
    python bench/confounds_simulation.py --arenas 50
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clip_arena.votes.clustered import headline  # noqa: E402
from clip_arena.votes.confounds import pair_confounds  # noqa: E402
from clip_arena.votes.stats import winner  # noqa: E402

SETTINGS = (("random", 0.0), ("drift", 0.0), ("puller-early", 0.0), ("random", 0.5), ("puller-early", 0.5))


def arena(rng, n: int, scenario: str, effect: float) -> list[dict]:
    out = []
    for i in range(n):
        frac = i / n
        if scenario == "drift":
            b_left_p, annotator = 0.9 - 0.8 * frac, "puller" if frac < 0.5 else "fair"
        elif scenario == "puller-early":
            b_left_p, annotator = (0.85, "puller") if frac < 0.4 else (0.35, "fair")
        else:
            b_left_p, annotator = 0.5, "puller" if frac < 0.4 else "fair"
        b_left = rng.random() < b_left_p
        left, right = ("finetuned", "base") if b_left else ("base", "finetuned")
        z = (1.1 if annotator == "puller" else 0.0) + (effect if b_left else -effect)
        out.append({"choice": "left" if rng.random() < 1 / (1 + np.exp(-z)) else "right", "method_left": left,
                    "method_right": right, "query_id": f"q{rng.integers(0, 150)}", "annotator": annotator,
                    "created_at": f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"})
    return out


def watch(votes: list[dict], every: int = 20) -> tuple[bool, bool]:
    """(the headline said "better" at some look, it did while the pair was not flagged)."""
    said = False
    for k in range(every, len(votes) + 1, every):
        decided = [v for v in votes[:k] if winner(v)]
        head = headline([v["query_id"] for v in decided], [winner(v) == "finetuned" for v in decided])
        if head.significant:
            said = True
            if not pair_confounds(votes[:k], "base", "finetuned")["confounded"]:
                return True, True
    return said, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arenas", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'scenario':14} {'effect':>6} {'better, before':>15} {'better, after':>14}")
    for scenario, effect in SETTINGS:
        results = np.array([watch(arena(rng, 300, scenario, effect)) for _ in range(args.arenas)])
        print(f"{scenario:14} {effect:6.1f} {results[:, 0].mean():15.1%} {results[:, 1].mean():14.1%}")


if __name__ == "__main__":
    main()

"""How the Results verdict behaves on simulated arenas with query effects: the false-positive
rate of the headline test looked at after every vote, its interval's coverage and its power at a
true 60/40 difference, beside the per-vote sign test looked at once (the baseline, which
ignores that votes on one query are not independent).

Each query's own win rate is drawn from Beta(mean * c, (1 - mean) * c) (c = 4: queries differ a
lot; c = 1e6: they do not), votes come in passes over the queries, least-voted first, as the
arena asks for them.

    python bench/stats_simulation.py                  # 2,000 arenas per setting (about 2 minutes)
    python bench/stats_simulation.py --arenas 500 --settings 30x10x4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.votes.clustered import headline_interval, sequential_test  # noqa: E402


def simulate(rng, queries, per_query, mean, concentration):
    p = rng.beta(mean * concentration, (1 - mean) * concentration, queries)
    order = np.concatenate([rng.permutation(queries) for _ in range(per_query)])
    return order, (rng.random(len(order)) < p[order]).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arenas", type=int, default=2000)
    parser.add_argument("--settings", nargs="+", default=["30x10x4", "30x10x10", "30x10x1e6", "100x3x4", "300x1x4"],
                        help="QUERIESxVOTESxCONCENTRATION")
    args = parser.parse_args()
    for setting in args.settings:
        q_n, v_n, c = setting.split("x")
        rng = np.random.default_rng(2026)
        row = []
        for mean in (0.5, 0.6):
            hits = covered = baseline = 0
            for _ in range(args.arenas):
                q, o = simulate(rng, int(q_n), int(v_n), mean, float(c))
                p, direction = sequential_test(q, o)
                hits += p <= 0.05 and (mean == 0.5 or direction == 1)
                low, high, _ = headline_interval(np.bincount(q, o) / np.bincount(q), len(o))
                covered += low <= mean <= high
                baseline += binomtest(int(o.sum()), len(o)).pvalue <= 0.05
            row.append((hits / args.arenas, covered / args.arenas, baseline / args.arenas))
        (fp, cov0, base0), (power, cov60, base60) = row
        print(f"{q_n} queries x {v_n} votes, concentration {c}: no difference, watched after every vote: "
              f"false positives {fp:.3f} (per-vote sign test looked at once: {base0:.3f}), coverage {cov0:.3f}; "
              f"60/40: power {power:.3f} (per-vote sign test once: {base60:.3f}), coverage {cov60:.3f}", flush=True)


if __name__ == "__main__":
    main()

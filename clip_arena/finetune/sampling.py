"""Batches for contrastive fine-tuning.

`group_batches` fills each batch from few groups (e.g. one Unicode group, one product category),
so the in-batch negatives are the hard ones: neighbours that a model must tell apart by the finer
attributes, rather than anything else in the catalog."""

from __future__ import annotations

import numpy as np


def group_batches(groups: list, batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch: rows shuffled within their group, groups laid end to end in random order, cut into
    batches of `batch_size` (the last one may be short), and the batches shuffled."""
    by_group: dict = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    keys = sorted(by_group, key=str)
    order = []
    for k in rng.permutation(len(keys)):
        rows = by_group[keys[k]]
        order.extend(rows[j] for j in rng.permutation(len(rows)))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class GroupBatchSampler:
    """A batch_sampler for DataLoader: a new group_batches arrangement each epoch, seeded."""

    def __init__(self, groups: list, batch_size: int, seed: int):
        self.groups, self.batch_size, self.seed, self.epoch = list(groups), batch_size, seed, 0

    def __iter__(self):
        self.epoch += 1
        yield from group_batches(self.groups, self.batch_size, np.random.default_rng([self.seed, self.epoch]))

    def __len__(self) -> int:
        return -(-len(self.groups) // self.batch_size)

"""Training pairs from a catalog: an image and a caption made from a template over its columns."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from clip_arena.analyzer.images import load_image
from clip_arena.core.errors import UserError
from clip_arena.finetune.plan import caption_fields, format_caption
from clip_arena.index.catalog import Catalog


def make_captions(catalog: Catalog, template: str, rows: list[int]) -> list[str]:
    """'{caption}, {category}' -> 'red apple, Food & Drink'; missing values are dropped with their comma."""
    fields = caption_fields(template)
    missing = [f for f in fields if f not in catalog.table.column_names]
    if missing:
        raise UserError(f"The caption template names {', '.join(missing)}, which the catalog does not have.")
    columns = {f: catalog.table.column(f).to_pylist() for f in fields}
    return [format_caption(template, {f: columns[f][row] for f in fields}) for row in rows]


class PairDataset(Dataset):
    """Decoded, transformed images with their tokenised captions. Small catalogs are cached."""

    def __init__(self, catalog: Catalog, rows: list[int], template: str, transform, tokenizer, cache: bool = True,
                 group_column: str | None = None):
        uris = catalog.table.column("image_uri").to_pylist()
        self.sources = [catalog.resolve_uri(uris[r]) for r in rows]
        self.groups = column_codes(catalog, group_column, rows) if group_column else list(range(len(rows)))
        self.tokens = tokenizer(make_captions(catalog, template, rows))
        self.transform = transform
        self.images = [load_image(s) for s in self.sources] if cache else None

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int):
        image = self.images[i] if self.images is not None else load_image(self.sources[i])
        return self.transform(image), self.tokens[i], self.groups[i]


def column_codes(catalog: Catalog, column: str, rows: list[int]) -> list[int]:
    """A metadata column's values as integer codes (rows with no value each get a group of their own)."""
    if column not in catalog.table.column_names:
        raise UserError(f"The catalog has no column {column!r} to group training pairs by.")
    values = catalog.table.column(column).to_pylist()
    codes: dict = {}
    return [codes.setdefault(values[r], len(codes)) if values[r] not in (None, "") else -1 - i
            for i, r in enumerate(rows)]


def collate(batch):
    images, tokens, groups = zip(*batch)
    return torch.stack(images), torch.stack(tokens), torch.tensor(groups)


class CatalogSource:
    """A catalog's train and val rows, checked before any model loads (plan.preflight); the trainer
    asks it for its pairs and its loader, as it asks shards.ShardSource."""

    def __init__(self, catalog_path, cfg):
        from clip_arena.finetune.plan import preflight

        self.cfg = cfg
        self.catalog, self.train_rows, self.val_rows = preflight(catalog_path, cfg)
        self.n_train = len(self.train_rows)

    def train_pairs(self, transform, tokenizer, group_column: str | None, shuffle: bool = True):
        return PairDataset(self.catalog, self.train_rows, self.cfg.caption_template, transform, tokenizer,
                           group_column=group_column)

    def val_pairs(self, transform, tokenizer):
        if not self.val_rows:
            return None
        return PairDataset(self.catalog, self.val_rows, self.cfg.caption_template, transform, tokenizer)

    def loader(self, train_set, cfg, generator):
        """(the batches of an epoch, the sampler whose `epoch` a resumed run sets, or None)."""
        from torch.utils.data import DataLoader

        from clip_arena.finetune.sampling import GroupBatchSampler

        if cfg.batch_groups:
            sampler = GroupBatchSampler(column_codes(self.catalog, cfg.batch_groups, self.train_rows), cfg.batch_size,
                                        cfg.seed)
            return DataLoader(train_set, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.workers), sampler
        return DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_set) > cfg.batch_size,
                          collate_fn=collate, num_workers=cfg.workers, generator=generator), None


def open_source(data, cfg):
    """A catalog path or a shards.Shards, checked: what the run trains and validates on (a source
    already opened, as the command line does before the model loads, is taken as it is)."""
    from clip_arena.finetune.shards import Shards, ShardSource

    if isinstance(data, (CatalogSource, ShardSource)):
        return data
    return ShardSource(data, cfg) if isinstance(data, Shards) else CatalogSource(data, cfg)

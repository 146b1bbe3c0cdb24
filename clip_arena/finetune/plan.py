"""What a fine-tune will do, worked out before any model loads: the catalog's train and val rows (or
one sentence on what is missing and how to fix it), and the run's length in optimiser steps, with
the warmup sized to it and a warning when the run is too short to move the model."""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from pathlib import Path

from clip_arena.core.errors import UserError
from clip_arena.index.catalog import SPLIT, Catalog, read_catalog
from clip_arena.index.split import embed_split_command

# Fewer optimiser steps than this rarely move a CLIP model: warned about, not refused.
MIN_STEPS = 100
OPTIMIZERS = ("adamw", "adamw8bit")
TRACKERS = ("none", "trackio", "wandb")


@dataclass
class TrainConfig:
    scenario: str = "dual_lora"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.1
    warmup_steps: int | None = None  # None: warmup_ratio of the run's optimiser steps
    warmup_ratio: float = 0.1
    keep_checkpoints: int = 1  # most recent epoch checkpoints kept, besides the best by validation recall
    accum_steps: int = 1  # note: contrastive negatives stay within each micro-batch
    caption_template: str = "{caption}"
    lora_rank: int = 8
    seed: int = 0
    workers: int = 0
    max_steps: int | None = None  # stop early (tests, smoke runs)
    positives: str | None = None  # metadata column: pairs sharing its value are positives of each other
    positive_weight: float = 0.5  # with `positives`: the target mass kept on the pair's own caption
    batch_groups: str | None = None  # metadata column: fill each batch from few of its values (hard negatives)
    image_loss_weight: float = 0.0  # with `positives`: add a contrastive loss among images of the same value
    centre_loss_weight: float = 0.0  # with `positives`: pull each image to its value's centre (the start model's mean)
    centre_scale: float = 30.0  # the centre loss's inverse temperature
    freeze_text: bool = False  # train the image tower only: the text tower (and temperature) stay as they start
    optimizer: str = "adamw"  # adamw, or adamw8bit (bitsandbytes' 8-bit states: CUDA only)
    track: str = "none"  # none, trackio or wandb: loss, lr and gradient norm per step, val recall per epoch
    track_project: str = "clip-arena"
    shuffle_buffer: int = 1000  # --shards: samples held to shuffle the stream (0: the shards' own order)


def caption_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def format_caption(template: str, values: dict) -> str:
    """'{caption}, {category}' -> 'red apple, Food & Drink'; missing values are dropped with their comma."""
    text = template.format(**{f: "" if values.get(f) is None else str(values[f]) for f in caption_fields(template)})
    return ", ".join(part.strip() for part in text.split(",") if part.strip())


def preflight(catalog_path: str | Path, cfg: TrainConfig) -> tuple[Catalog, list[int], list[int]]:
    """The catalog and its train and val rows, once the run's numbers and columns are known to be
    usable; raises UserError otherwise. Imports neither torch nor open_clip: it answers at once."""
    check_numbers(cfg)
    check_packages(cfg)
    catalog = read_catalog(catalog_path, require_embeddings=False)  # training needs no vectors
    train, val = check_catalog(catalog, cfg.caption_template,
                               {"positives": cfg.positives, "batch_groups": cfg.batch_groups})
    return catalog, train, val


def split_counts(catalog: Catalog) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in catalog.table.column(SPLIT).to_pylist():
        counts[value or "(empty)"] = counts.get(value or "(empty)", 0) + 1
    return counts


def check_catalog(catalog: Catalog, template: str, columns: dict[str, str | None]) -> tuple[list[int], list[int]]:
    """The train and val rows; UserError naming what the catalog lacks for this run. `columns`:
    option -> metadata column the run reads (e.g. {"positives": "category"})."""
    fix = (f"draw one without re-embedding (the vectors are kept): `{embed_split_command(catalog)}`, "
           "or give the metadata CSV a split column (train/val/test) and re-run embed")
    if SPLIT not in catalog.table.column_names:
        raise UserError(f"{catalog.path} has no split column: fine-tuning trains on the rows whose split is "
                        f"'train' and measures recall on the 'val' rows; {fix}.")
    splits = catalog.table.column(SPLIT).to_pylist()
    train = [i for i, s in enumerate(splits) if s == "train"]
    val = [i for i, s in enumerate(splits) if s == "val"]
    if not train:
        found = ", ".join(f"{k} {n}" for k, n in sorted(split_counts(catalog).items()))
        raise UserError(f"{catalog.path} has no rows with split 'train' (it has {found}); {fix}.")
    missing = [f for f in caption_fields(template) if f not in catalog.table.column_names]
    if missing:
        raise UserError(f"The caption template names {', '.join(missing)}, which the catalog does not have "
                        f"(it has {', '.join(catalog.metadata_columns() + ['caption'])}).")
    for option, column in columns.items():
        if column and column not in catalog.table.column_names:
            raise UserError(f"The catalog has no column {column!r} (named by {option}).")
    return train, val


def check_numbers(cfg: TrainConfig) -> None:
    """The run's numbers, each in the range that makes sense."""
    rules = [("epochs", cfg.epochs >= 1, "1 or more"), ("batch-size", cfg.batch_size >= 1, "1 or more"),
             ("accum-steps", cfg.accum_steps >= 1, "1 or more"), ("lr", 0 < cfg.lr < math.inf, "above 0"),
             ("warmup-steps", cfg.warmup_steps is None or cfg.warmup_steps >= 0, "0 or more"),
             ("warmup-ratio", 0 <= cfg.warmup_ratio <= 1, "between 0 and 1"),
             ("keep-checkpoints", cfg.keep_checkpoints >= 1,
              "1 or more (the last checkpoint is what --resume continues from)"),
             ("shuffle-buffer", cfg.shuffle_buffer >= 0, "0 or more"),
             ("workers", cfg.workers >= 0, "0 or more"),
             ("optimizer", cfg.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
             ("track", cfg.track in TRACKERS, f"one of {', '.join(TRACKERS)}")]
    for name, ok, expected in rules:
        if not ok:
            raise UserError(f"--{name} must be {expected}.")


def check_packages(cfg: TrainConfig) -> None:
    """The optional packages the run's --optimizer and --track need are installed (found, not imported)."""
    from importlib.util import find_spec

    if cfg.optimizer == "adamw8bit" and find_spec("bitsandbytes") is None:
        raise UserError("--optimizer adamw8bit needs bitsandbytes, which is not installed (on a CUDA machine: "
                        "pip install 'clip-arena[gpu]'); --optimizer adamw needs nothing more.")
    if cfg.track != "none" and find_spec(cfg.track) is None:
        raise UserError(f"--track {cfg.track} needs the {cfg.track} package, which is not installed "
                        f"(pip install {cfg.track}); --track none trains without tracking.")


def warmup_for(total_steps: int, warmup_steps: int | None, warmup_ratio: float) -> int:
    """Explicit steps when given, else a share of the run (at least one step when it trains at all)."""
    if warmup_steps is not None:
        return max(0, warmup_steps)
    return min(total_steps, max(1, math.ceil(warmup_ratio * total_steps))) if total_steps else 0


def dropped_note(n_train: int, batch_size: int, batch_groups: str | None = None) -> str | None:
    """Batches are kept full (in-batch negatives), so the remainder of the train rows sits out each
    epoch: said once, with the batch sizes that use every row."""
    left = n_train % batch_size if n_train > batch_size and not batch_groups else 0
    if not left:
        return None
    fits = [b for b in range(batch_size - 1, 1, -1) if n_train % b == 0][:1]
    hint = f"; --batch-size {fits[0]} uses them all" if fits else ""
    return (f"note: {n_train} train images in full batches of {batch_size}: {left} of them sit out each epoch (other "
            f"ones each epoch when the order is shuffled){hint}.")


def short_run_warning(n_train: int, batch_size: int, accum_steps: int, epochs: int, steps_per_epoch: int,
                      total_steps: int, warmup: int) -> str | None:
    """A sentence saying why this run will barely change the model and what to change, or None."""
    per_batch = min(batch_size, n_train)
    why = (f"{n_train} train images in batches of {per_batch}"
           + (f", {accum_steps} batches per step" if accum_steps > 1 else "")
           + f": {steps_per_epoch} step{'s' * (steps_per_epoch != 1)} per epoch x {epochs} epochs")
    if warmup >= total_steps > 0:
        return (f"warning: all {total_steps} optimiser steps of this run are inside the {warmup}-step warmup, so the "
                f"learning rate never reaches --lr ({why}); lower --warmup-steps or raise --epochs.")
    if total_steps < MIN_STEPS:
        epochs_needed = math.ceil(MIN_STEPS / max(1, steps_per_epoch))
        smaller = max(2, min(batch_size, n_train) // 4)
        return (f"warning: this run makes only {total_steps} optimiser steps ({why}); a fine-tune rarely moves "
                f"the model in under {MIN_STEPS}: raise --epochs (--epochs {epochs_needed} gives "
                f"{epochs_needed * steps_per_epoch}) or lower --batch-size (e.g. --batch-size {smaller}).")
    return None

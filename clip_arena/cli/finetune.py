"""clip-arena finetune --catalog PATH | --shards PATTERN [--val-shards PATTERN] --scenario zero_shot|linear_probe|
dual_lora|vision_lora|text_lora|full ..."""

from __future__ import annotations

import argparse

from clip_arena.finetune.scenarios import SCENARIOS


DESCRIPTION = """\
Fine-tune an open_clip model contrastively on a catalog's images and captions (split train; val
for recall@1/5/10 after each epoch), or on the WebDataset shards `clip-arena prepare` writes (streamed):
fully, its projections only, or LoRA adapters. The run folder holds its checkpoints and the result,
which loads as open_clip:local-dir:OUTPUT/model."""
EXAMPLES = """\
examples:
  clip-arena finetune --catalog catalog.parquet --model open_clip:ViT-B-32@openai \\
      --scenario linear_probe -o runs/probe
  clip-arena finetune --catalog catalog.parquet --model open_clip:ViT-B-32@openai -o runs/ft \\
      --scenario dual_lora --caption-template "{caption}, {category}" --epochs 5 --resume
  clip-arena finetune --shards 'prepared/shards/train/shard-{000000..000003}.tar' \\
      --val-shards 'prepared/shards/val/shard-000000.tar' --model open_clip:ViT-B-32@openai \\
      --scenario dual_lora -o runs/ft --workers 4 --track trackio"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune an open_clip model on a catalog's train split",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--catalog", help="catalog Parquet with split and caption columns")
    data.add_argument("--shards", metavar="PATTERN",
                      help="train shards from `clip-arena prepare`, e.g. 'OUT/shards/train/shard-{000000..000009}.tar' "
                           "(quoted: the braces are expanded here) or their folder; samples counted from manifest.json, "
                           "else by a pass")
    p.add_argument("--val-shards", metavar="PATTERN", help="with --shards: val shards for recall after each epoch")
    p.add_argument("--shuffle-buffer", type=int, default=1000, metavar="N",
                   help="with --shards: samples held to shuffle the stream, seeded by --seed and the epoch "
                        "(default 1000; 0 reads the shards in order)")
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--model", required=True, help="initial open_clip spec (CONFIG.json alone: random init)")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoints/, model/, history.json")
    p.add_argument("--epochs", type=int, default=5,
                   help="passes over the train rows (default 5); a small catalog needs many more to learn")
    p.add_argument("--batch-size", type=int, default=64,
                   help="image-caption pairs per batch, each pair's negatives being the batch's other pairs "
                        "(default 64)")
    p.add_argument("--lr", type=float, default=5e-4,
                   help="peak learning rate of AdamW, reached after the warmup, then cosine decay (default 5e-4)")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int,
                   help="optimiser steps of linear warmup (default: --warmup-ratio of the run's steps)")
    p.add_argument("--warmup-ratio", type=float, default=0.1,
                   help="warmup as a share of the run's optimiser steps, when --warmup-steps is not given (default 0.1)")
    p.add_argument("--accum-steps", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--caption-template", default="{caption}",
                   help="caption from catalog columns, e.g. '{caption}, {category}, {subcategory}'")
    p.add_argument("--positives", metavar="COLUMN",
                   help="metadata column (a shard's json field): pairs sharing its value count as matches, "
                        "e.g. a cleaned category (default: only a pair's own caption)")
    p.add_argument("--batch-groups", metavar="COLUMN",
                   help="metadata column: fill each batch from few of its values, for hard negatives (--catalog only)")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0,
                   help="data loading processes (with --shards each reads its own shards: have at least as many)")
    p.add_argument("--optimizer", choices=("adamw", "adamw8bit"), default="adamw",
                   help="adamw (default), or adamw8bit: bitsandbytes' 8-bit AdamW, less GPU memory (CUDA only)")
    p.add_argument("--track", choices=("none", "trackio", "wandb"), default="none",
                   help="log loss, learning rate and gradient norm per step and validation recall per epoch to "
                        "trackio (local; view with `trackio show`) or wandb (when installed) (default none)")
    p.add_argument("--track-project", default="clip-arena", help="the tracker's project (the run is named after -o)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--keep-checkpoints", type=int, default=1, metavar="N",
                   help="most recent epoch checkpoints kept (default 1), besides the best by validation recall; "
                        "older ones are deleted as the run goes")
    p.add_argument("--device", help="cpu, cuda, mps (default: chosen by itself)")
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.core.errors import UserError
    from clip_arena.finetune.plan import TrainConfig, preflight

    cfg = TrainConfig(scenario=args.scenario, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
                      warmup_ratio=args.warmup_ratio, accum_steps=args.accum_steps,
                      caption_template=args.caption_template, lora_rank=args.lora_rank, seed=args.seed,
                      workers=args.workers, max_steps=args.max_steps, keep_checkpoints=args.keep_checkpoints,
                      optimizer=args.optimizer, track=args.track, track_project=args.track_project,
                      shuffle_buffer=args.shuffle_buffer, positives=args.positives,
                      batch_groups=args.batch_groups)
    if args.val_shards is not None and args.shards is None:
        raise UserError("--val-shards goes with --shards; a catalog's val rows are its split 'val'.")
    # At once: before open_clip is even imported, let alone a model loaded.
    if args.shards is not None:  # '' too: refused by the shards' own check
        from clip_arena.finetune.shards import Shards, ShardSource

        source = ShardSource(Shards(args.shards, args.val_shards), cfg)
    else:
        preflight(args.catalog, cfg)  # imports neither torch nor open_clip
        source = args.catalog
    from clip_arena.finetune.train import finetune

    result = finetune(source, args.model, args.output, cfg, resume=args.resume, device=args.device)
    print(f"model saved: open_clip:local-dir:{result.model_dir}")
    if result.best is not None:
        recall = ", ".join(f"{k} {v:.3f}" for k, v in result.best.items() if k.startswith("recall@"))
        where = f"open_clip:local-dir:{result.best_dir}" if result.best_dir else "the model above"
        print(f"best epoch by validation recall: {result.best['epoch']} ({recall}): {where}")
    return 0

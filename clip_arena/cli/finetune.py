"""clip-arena finetune --catalog PATH --scenario zero_shot|linear_probe|dual_lora|vision_lora|text_lora|full ..."""

from __future__ import annotations

import argparse

from clip_arena.finetune.scenarios import SCENARIOS


DESCRIPTION = """\
Fine-tune an open_clip model contrastively on a catalog's images and captions (split train; val
for recall@1/5/10 after each epoch): fully, its projections only, or LoRA adapters. The run folder
holds its checkpoints and the result, which loads as open_clip:local-dir:OUTPUT/model."""
EXAMPLES = """\
examples:
  clip-arena finetune --catalog catalog.parquet --model open_clip:ViT-B-32@openai \\
      --scenario linear_probe -o runs/probe
  clip-arena finetune --catalog catalog.parquet --model open_clip:ViT-B-32@openai -o runs/ft \\
      --scenario dual_lora --caption-template "{caption}, {category}" --epochs 5 --resume"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune an open_clip model on a catalog's train split",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", required=True, help="catalog Parquet with split and caption columns")
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--model", required=True, help="initial open_clip spec (CONFIG.json alone: random init)")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoints/, model/, history.json")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--accum-steps", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--caption-template", default="{caption}",
                   help="caption from catalog columns, e.g. '{caption}, {category}, {subcategory}'")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="data loading processes")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--device", help="cpu, cuda, mps (default: chosen by itself)")
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.finetune.train import TrainConfig, finetune

    cfg = TrainConfig(scenario=args.scenario, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, accum_steps=args.accum_steps,
                      caption_template=args.caption_template, lora_rank=args.lora_rank, seed=args.seed,
                      workers=args.workers, max_steps=args.max_steps)
    result = finetune(args.catalog, args.model, args.output, cfg, resume=args.resume, device=args.device)
    print(f"model saved: open_clip:local-dir:{result.model_dir}")
    return 0

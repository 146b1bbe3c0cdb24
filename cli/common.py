"""Options shared by several subcommands, and output helpers."""

from __future__ import annotations

import argparse
import json
import sys

from core.settings import Settings, apply_offline


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model spec (default: $CLIP_ARENA_MODEL or open_clip:ViT-B-32@openai, "
                                        "with the demo model standing in when that cannot be loaded)")
    add_device_options(parser)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: chosen by itself)")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"], help="default: fp16 on CUDA, else fp32")
    parser.add_argument("--offline", action="store_true", default=None,
                        help="never contact the model hub (same as HF_HUB_OFFLINE=1)")


def add_fetch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-private-urls", dest="allow_private_urls", action="store_true", default=None,
                        help="allow image URLs on private, loopback and link-local addresses")


def add_image_root_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument("--image-root", action="append", dest="image_roots", metavar="DIR",
                        help=f"folder local image paths must stay under (repeatable; default: {default_help})")


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env().with_overrides(**vars(args))
    apply_offline(settings)
    return settings


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")

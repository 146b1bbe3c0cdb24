"""Options shared by several subcommands, and output helpers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from clip_arena.core.errors import UserError

if TYPE_CHECKING:
    from clip_arena.core.settings import Settings


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


def add_decode_option(parser: argparse.ArgumentParser) -> None:
    from clip_arena.models.decode import DECODE_CHOICES

    parser.add_argument("--decode", choices=DECODE_CHOICES, default="auto",
                        help="where JPEGs are decoded: gpu (nvJPEG on the model's device, the default on CUDA; "
                             "other files and failures fall back to the CPU per image) or cpu (worker processes "
                             "or threads, reduced in the DCT to the model's input size)")


def note_decode(decode: str, encoders) -> None:
    """Say so when --decode gpu will not run on a GPU: it still works, on the CPU, and slower."""
    from clip_arena.models.device import on_cuda

    if decode == "gpu" and not any(on_cuda(e.device) for e in encoders):
        print("note: --decode gpu without CUDA decodes JPEGs with torchvision on the CPU, in the main "
              "process (slower than --decode cpu)", file=sys.stderr)


def add_image_root_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument("--image-root", action="append", dest="image_roots", metavar="DIR",
                        help=f"folder local image paths must stay under (repeatable; default: {default_help})")


def settings_from_args(args: argparse.Namespace) -> Settings:
    from clip_arena.core.settings import Settings, apply_offline

    settings = Settings.from_env().with_overrides(**vars(args))
    apply_offline(settings)
    return settings


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--engine and the Ray Data options of `embed` and `score` (engines/ray_runtime.py)."""
    group = parser.add_argument_group("engine (past one machine: --engine ray, needs clip-arena[ray])")
    group.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local (default): this process; ray: Ray Data, on this machine or a cluster")
    group.add_argument("--ray-address", metavar="ADDR",
                       help="Ray cluster to join: auto, HOST:6379 or ray://HOST:10001 (default: start Ray here)")
    group.add_argument("--actors", type=int, help="encoding actors, each loading the model once (default 1)")
    group.add_argument("--gpus-per-actor", type=float, help="GPUs per actor (default 0: encode on CPU)")
    group.add_argument("--part-rows", type=int,
                       help="rows (or images) per part: the unit of scheduling and of resume (default 256)")


RAY_FLAGS = {"ray_address": "--ray-address", "actors": "--actors", "gpus_per_actor": "--gpus-per-actor",
             "part_rows": "--part-rows"}


def ray_options_from_args(args: argparse.Namespace):
    """RayOptions for `--engine ray` (None for the local engine, which refuses the Ray flags)."""
    given = {key: getattr(args, key) for key in RAY_FLAGS if getattr(args, key) is not None}
    if args.engine != "ray":
        if given:
            raise UserError(f"{', '.join(RAY_FLAGS[k] for k in given)} only apply with --engine ray.")
        return None
    from clip_arena.engines.ray_runtime import RayOptions, require_ray

    require_ray()  # the install hint before any work
    return RayOptions(address=given.pop("ray_address", None), **given)

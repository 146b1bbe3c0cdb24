"""`prepare` throughput: shard writing and zero-shot attributes, ours against a plain PIL loop, in one run.

Shards:      ours = stages.sample_part (threaded reads, letterbox, JPEG) into write_shards (webdataset's
             ShardWriter); plain = for each file: PIL open, resize, pad, JPEG, tarfile.addfile.
Attributes:  ours = stages.attributes_part (threaded reads, JPEGs reduced in the DCT, batched encode);
             plain = for each file: PIL open in full, encode a batch of one, softmax per attribute.
--ray additionally runs the whole pipeline on both engines and checks the shards are the same bytes.

    python bench/bench_prepare.py --images 200                        # CPU, the demo model
    python bench/bench_prepare.py --images 5000 --model open_clip:ViT-B-32    # on a GPU machine
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_embed import make_jpegs  # noqa: E402
from clip_arena.models import get_encoder  # noqa: E402
from clip_arena.prepare import stages  # noqa: E402
from clip_arena.prepare.attributes import ZeroShot, load_vocabulary  # noqa: E402
from clip_arena.prepare.shards import DEFAULT_TEMPLATE, write_shards  # noqa: E402


def _records(paths: list[Path]) -> list[dict]:
    return [{"image_id": p.stem, "image_uri": str(p), "clean_title": f"product {p.stem}", "style": "modern",
             "material": "oak", "object_type": "table", "colour": "unknown"} for p in paths]


def plain_shards(paths: list[Path], out: Path, size: int) -> None:
    with tarfile.open(out / "plain.tar", "w") as tar:
        for p in paths:
            image = Image.open(p).convert("RGB")
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            canvas = Image.new("RGB", (size, size), (255, 255, 255))
            canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
            buffer = io.BytesIO()
            canvas.save(buffer, "JPEG", quality=95)
            for ext, data in (("jpg", buffer.getvalue()), ("txt", p.stem.encode())):
                info = tarfile.TarInfo(f"{p.stem}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def our_shards(paths: list[Path], out: Path, size: int, ctx, part_rows: int = 256) -> None:
    records = _records(paths)

    def samples():
        for start in range(0, len(records), part_rows):
            part = stages.sample_part(records[start:start + part_rows], ctx, size, DEFAULT_TEMPLATE)
            yield from (s for s in part if s)

    write_shards(samples(), out / "ours", max_count=1000)


def plain_attributes(paths: list[Path], encoder, zero_shot) -> None:
    for p in paths:
        zero_shot(encoder.encode_images([Image.open(p).convert("RGB")]))


def our_attributes(paths: list[Path], encoder, zero_shot, ctx, part_rows: int = 256) -> None:
    records = _records(paths)
    for start in range(0, len(records), part_rows):
        stages.attributes_part(records[start:start + part_rows], ctx, zero_shot, encoder)


def _rate(n: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def ray_check(folder: Path, paths: list[Path], model: str) -> None:
    from clip_arena.engines.ray_runtime import RayOptions
    from clip_arena.prepare.pipeline import Options, Prepare
    from clip_arena.prepare.ray_engine import RayEngine

    raw = folder / "raw.csv"
    raw.write_text("id,title,image,category\n" + "".join(f"{p.stem},PRODUCT {p.stem} SALE,{p},c{i % 3}\n"
                                                           for i, p in enumerate(paths)))
    timings = {}
    for name in ("local", "ray"):
        engine = RayEngine(RayOptions()) if name == "ray" else None
        start = time.perf_counter()
        try:
            Prepare(Options(csv=raw, out=folder / name, model=model, image_roots=["/"], engine=engine),
                    progress=lambda *a: None).run()
        finally:
            if engine:
                engine.close()
        timings[name] = time.perf_counter() - start
    same = (json.loads((folder / "local" / "manifest.json").read_text())["splits"]
            == json.loads((folder / "ray" / "manifest.json").read_text())["splits"])
    print(f"pipeline: local {timings['local']:.1f} s, ray {timings['ray']:.1f} s (start included); "
          f"shards the same bytes: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", default="demo:base")
    parser.add_argument("--ray", action="store_true", help="also run the pipeline on both engines")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "jpegs").mkdir()
        paths = make_jpegs(folder / "jpegs", args.images)
        encoder = get_encoder(args.model)
        size = int(getattr(encoder.preprocess, "size", 0) or 224)
        ctx = stages.Context((str(folder),), str(folder / "fetched"))
        zero_shot = ZeroShot(encoder, load_vocabulary(None))
        (folder / "ours").mkdir()
        n = len(paths)
        plain_s = _rate(n, lambda: plain_shards(paths, folder, size))
        ours_s = _rate(n, lambda: our_shards(paths, folder, size, ctx))
        plain_a = _rate(n, lambda: plain_attributes(paths, encoder, zero_shot))
        ours_a = _rate(n, lambda: our_attributes(paths, encoder, zero_shot, ctx))
        print(f"{n} JPEGs {paths[0].stat().st_size // 1024} KB each, model {args.model} ({size}px) on "
              f"{encoder.device}, numpy {np.__version__}")
        print(f"shard writing:       ours {ours_s:8.1f} samples/s, plain PIL loop {plain_s:8.1f}/s, "
              f"ratio {ours_s / plain_s:.2f}x")
        print(f"zero-shot attributes: ours {ours_a:8.1f} images/s, plain PIL loop {plain_a:8.1f}/s, "
              f"ratio {ours_a / plain_a:.2f}x")
        if args.ray:
            ray_check(folder, paths[: min(n, 200)], args.model)


if __name__ == "__main__":
    main()

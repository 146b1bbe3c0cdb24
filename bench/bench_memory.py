"""Peak memory of a batch of large JPEGs: full-size decoding (as before: every fetch thread decodes
the whole image) against reduced decoding (PIL's draft decodes at 1/2..1/8 scale in the DCT, to no
less than the model's input size) under the shared pixel budget. Both in one run, each in its own
process, so each peak RSS is that scoring's alone.

    python bench/bench_memory.py                    # 16 distinct 40-megapixel JPEGs, demo:base
    python bench/bench_memory.py --images 32 --megapixels 40 --model demo:base
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_large_jpegs(folder: Path, count: int, megapixels: float) -> list[Path]:
    """Distinct smooth JPEGs (gradients in different directions and colours): large in pixels,
    small enough in bytes to pass the fetch cap."""
    from PIL import Image, ImageOps

    width = int(math.sqrt(megapixels * 1e6 * 4 / 3))
    height = int(width * 3 / 4)
    paths = []
    for i in range(count):
        ramp = Image.linear_gradient("L").rotate(i * 360 / count).resize((width, height))
        image = ImageOps.colorize(ramp, black=(i * 13 % 256, 40, 90), white=(250, 200 - i * 5 % 150, 30))
        path = folder / f"large_{i:02d}.jpg"
        image.save(path, "JPEG", quality=80)
        paths.append(path)
    return paths


def child(mode: str, csv_path: str, model: str) -> None:
    import resource

    from clip_arena.analyzer.batch import BatchOptions, score_csv
    from clip_arena.core.settings import FetchLimits
    from clip_arena.models import get_encoder

    encoder = get_encoder(model, "cpu", "fp32")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    folder = str(Path(csv_path).parent)
    if mode == "before":
        options = BatchOptions(image_roots=[folder], reduced_decode=False, limits=FetchLimits(decode_pixels=0))
    else:
        options = BatchOptions(image_roots=[folder])
    start = time.perf_counter()
    report = score_csv(csv_path, Path(csv_path).with_name(f"out_{mode}.csv"), encoder, options)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "peak_mb": peak / 1024, "model_mb": base / 1024, "scored": report.scored,
                      "errors": dict(report.errors), "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--megapixels", type=float, default=40.0)
    parser.add_argument("--model", default="demo:base")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.model)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_large_jpegs(folder, args.images, args.megapixels)
        csv_path = folder / "large.csv"
        csv_path.write_text("image,caption\n" + "".join(f"{p.name},a colour gradient\n" for p in paths))
        results = {}
        for mode in ("before", "after"):
            out = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", mode, str(csv_path)],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    before, after = results["before"], results["after"]
    print(f"{args.images} distinct {args.megapixels:g}-megapixel JPEGs, model {args.model}, 16 fetch threads")
    for r in (before, after):
        label = "full decode, no budget" if r["mode"] == "before" else "reduced decode + pixel budget"
        print(f"  {r['mode']:>6} ({label}): peak RSS {r['peak_mb']:,.0f} MB (model loaded: {r['model_mb']:,.0f} MB), "
              f"{r['scored']} scored, {r['seconds']:.1f} s")
    print(f"  peak RSS ratio before/after: {before['peak_mb'] / after['peak_mb']:.1f}x; above the loaded model: "
          f"{(before['peak_mb'] - before['model_mb']) / max(1, after['peak_mb'] - after['model_mb']):.1f}x")


if __name__ == "__main__":
    main()

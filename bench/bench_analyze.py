"""Content analysis, ms per image for the costly offline sections, against straightforward
baselines in the same run, on photo-sized synthetic images (smooth colour fields, printed text,
noise), warm (models loaded, one analysis done first).

Palette: ours clusters a 96 px thumbnail (sampled with nearest neighbours, then close clusters
merged); baseline: the same k-means on every pixel. Haar cascades: ours detect at 640 px on the
longest side; baseline: at full size. Agreement with the baseline says what the shortcut costs:
the largest colour's name and share (within 2 points), and all names in the same order (strict:
two near-equal shares swap, and a colour on the border of two CSS names may take either).

    python bench/bench_analyze.py --images 8 --size 1600x1200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.analyzer.content import colours, objects  # noqa: E402
from clip_arena.analyzer.content.component import Context  # noqa: E402
from clip_arena.analyzer.content.report import analyze  # noqa: E402
from clip_arena.core.settings import Settings  # noqa: E402


def make_image(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    base = rng.uniform(0, 255, 3)
    field = np.stack([base[i] + 60 * np.sin(6 * x * rng.uniform(0.5, 2) + rng.uniform(0, 6)) for i in range(3)], -1)
    field[: h // 3] = rng.uniform(0, 255, 3)  # a flat band, as a banner has
    field += rng.normal(0, 6, field.shape)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", h // 10)
    except OSError:
        font = ImageFont.load_default(h // 10)
    ImageDraw.Draw(image).text((w // 12, h // 12), "SUMMER SALE 30%", fill="white", font=font)
    return image


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return 1000 * (time.perf_counter() - start), out


def full_resolution_palette(rgb: np.ndarray) -> list[dict]:
    saved = colours.SAMPLE_SIDE
    colours.SAMPLE_SIDE = 10**9
    try:
        return colours.dominant_colours(rgb)
    finally:
        colours.SAMPLE_SIDE = saved


def haar_at(side: int, ctx: Context) -> dict:
    saved = objects.HAAR_SIDE
    objects.HAAR_SIDE = side
    try:
        return objects.with_haar(ctx)
    finally:
        objects.HAAR_SIDE = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--model", default="demo:finetuned")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    settings = Settings(offline=True)
    images = [make_image(i, size) for i in range(args.images)]
    analyze(images[0], "warm up", settings, model=args.model)
    rows = {k: [] for k in ("palette_ours", "palette_base", "haar_ours", "haar_base", "analysis")}
    agree_top = agree_all = 0
    for image in images:
        ctx = Context(image=image, text="", settings=settings, model=args.model)
        t, ours = timed(colours.dominant_colours, ctx.rgb)
        rows["palette_ours"].append(t)
        t, base = timed(full_resolution_palette, ctx.rgb)
        rows["palette_base"].append(t)
        agree_top += ours[0]["name"] == base[0]["name"] and abs(ours[0]["share"] - base[0]["share"]) <= 0.02
        agree_all += [c["name"] for c in ours] == [c["name"] for c in base]
        rows["haar_ours"].append(timed(haar_at, objects.HAAR_SIDE, ctx)[0])
        rows["haar_base"].append(timed(haar_at, 10**9, ctx)[0])
        t, report = timed(analyze, image, "Summer sale! 30% off everything. Shop now.", settings, args.model)
        rows["analysis"].append(t)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{args.images} images of {size[0]}x{size[1]}, model {args.model}, median ms per image")
    print(f"palette  baseline {med['palette_base']:8.1f}  ours {med['palette_ours']:7.1f}  "
          f"{med['palette_base'] / med['palette_ours']:5.1f}x")
    print(f"         agreement: largest colour (name, share within 2 points) {agree_top}/{args.images}, "
          f"all names in the same order {agree_all}/{args.images}")
    print(f"haar     baseline {med['haar_base']:8.1f}  ours {med['haar_ours']:7.1f}  "
          f"{med['haar_base'] / med['haar_ours']:5.1f}x")
    print(f"whole analysis (all sections, offline tiers) {med['analysis']:.0f} ms; last one by section: "
          + ", ".join(f"{k} {v:.0f}" for k, v in report["timings_ms"].items()))


if __name__ == "__main__":
    main()

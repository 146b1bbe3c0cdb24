"""Batch CSV scoring, rows/s: ours (analyzer.batch.score_csv) against the straightforward baseline
in the same run, on local JPEG paths and on the same JPEGs served by a loopback HTTP server.

Baseline: per batch of 64 rows, thread-pool downloads (or file reads), then HF CLIPProcessor
(image processor + CLIP tokenizer) and CLIPModel, fp32. Ours: fetching one chunk while the model
encodes the previous one, each distinct image fetched and encoded once, fp16 on CUDA, with
`--decode cpu` (fetch threads decode JPEGs reduced in the DCT to uint8; the device normalises)
and `--decode gpu` (fetch threads read bytes; the device decodes the JPEGs; without CUDA this is
torchvision's CPU decoder: the code path, not its speed). Both are ViT-B/32 with random weights.
The CSV has --captions captions per image, as COCO has 5.

    python bench/bench_batch.py --rows 1000           # CPU: about 5 minutes
    python bench/bench_batch.py --rows 5000 --fetch-workers 32   # on a GPU machine
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.analyzer.batch import BatchOptions, score_csv  # noqa: E402
from bench.bench_embed import make_jpegs  # noqa: E402
from clip_arena.core.settings import FetchLimits  # noqa: E402
from clip_arena.models import get_encoder  # noqa: E402


def clip_tokenizer():
    """A real CLIP BPE tokenizer for transformers, built from the vocabulary open_clip ships."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    merges = [tuple(pair) for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda kv: kv[1])]
    special = dict(bos_token="<start_of_text>", eos_token="<end_of_text>", pad_token="<end_of_text>",
                   unk_token="<end_of_text>")  # open_clip's names for them
    return CLIPTokenizer(vocab=simple.encoder, merges=merges, **special)


def baseline(rows: list[tuple[str, str]], batch: int, device: str) -> float:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    model = CLIPModel(CLIPConfig()).to(device).eval()
    images, tokenizer = CLIPImageProcessor(), clip_tokenizer()

    def fetch(src):
        data = urllib.request.urlopen(src, timeout=10).read() if "://" in src else Path(src).read_bytes()
        return Image.open(io.BytesIO(data)).convert("RGB")

    start = time.perf_counter()
    with ThreadPoolExecutor(16) as pool, torch.inference_mode():
        for i in range(0, len(rows), batch):
            part = rows[i : i + batch]
            pics = list(pool.map(fetch, [s for s, _ in part]))
            pixels = images(images=pics, return_tensors="pt")["pixel_values"].to(device)
            tokens = tokenizer([c for _, c in part], padding=True, truncation=True, max_length=77,
                               return_tensors="pt").to(device)
            im = model.get_image_features(pixel_values=pixels)
            tx = model.get_text_features(**tokens)
            im = im if isinstance(im, torch.Tensor) else im.pooler_output
            tx = tx if isinstance(tx, torch.Tensor) else tx.pooler_output
            ((im / im.norm(dim=-1, keepdim=True)) * (tx / tx.norm(dim=-1, keepdim=True))).sum(-1).cpu()
    return len(rows) / (time.perf_counter() - start)


def ours(csv_path: Path, out: Path, root: Path, workers: int, decode: str) -> float:
    encoder = get_encoder("open_clip:ViT-B-32")
    options = BatchOptions(image_roots=[str(root)], fetch_workers=workers, limits=FetchLimits(allow_private_urls=True),
                           decode=decode)
    report = score_csv(csv_path, out, encoder, options)
    assert report.scored == report.rows, report.summary()
    return report.rows_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--captions", type=int, default=5, help="captions per image")
    parser.add_argument("--fetch-workers", type=int, default=16)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_jpegs(root, max(1, args.rows // args.captions))
        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=str(root))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base_url = f"http://127.0.0.1:{server.server_address[1]}"
        warm = [(str(paths[0]), "warm up")] * 8
        baseline(warm, 8, device)
        get_encoder("open_clip:ViT-B-32")
        print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}; {args.rows} rows, "
              f"{len(paths)} distinct 500x375 JPEGs")
        for where in ("local files", "loopback HTTP"):
            rows = [(str(p) if where == "local files" else f"{base_url}/{p.name}", f"photo number {i} of a test scene")
                    for i in range(args.rows) for p in [paths[i % len(paths)]]]
            csv_path = root / f"{where[:5]}.csv"
            with open(csv_path, "w", newline="") as f:
                csv.writer(f).writerows([("image", "caption"), *rows])
            rates = {decode: ours(csv_path, root / "out.csv", root, args.fetch_workers, decode)
                     for decode in ("cpu", "gpu")}
            base_rate = baseline(rows, 64, device)
            print(f"{where:>13}: baseline {base_rate:8.1f} rows/s; " + "; ".join(
                f"ours --decode {d} {r:8.1f} rows/s ({r / base_rate:.2f}x)" for d, r in rates.items()), flush=True)
        server.shutdown()


if __name__ == "__main__":
    main()

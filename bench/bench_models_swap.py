"""Hot swap under load: N clients score one image through the app's HTTP API (gradio_client, the
Similarity tab's endpoint) while the models file flips between demo:base and demo:finetuned every
--every seconds. Reports requests/s and p50/p95 latency with and without flips (the baseline runs first,
in the same server), failed requests (must be 0), answers that do not match the model they name (must
be 0), and the server's resident memory after each flip (it must not grow with the flips).

    python bench/bench_models_swap.py                         # 16 clients, 60 s of flips every 2 s
    python bench/bench_models_swap.py --clients 32 --seconds 300 --every 1
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CAPTIONS = ["a red square", "a smiling face"]
ANSWER = re.compile(r"model `live \((demo:\w+)\)`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path: Path, spec: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"models:\n  live: {spec}\n", encoding="utf-8")
    os.replace(tmp, path)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def expected(picture: Path) -> dict[str, list[float]]:
    from PIL import Image

    from clip_arena.analyzer.similarity import score_image_texts
    from clip_arena.models.registry import get_encoder

    image = Image.open(picture)
    return {spec: sorted(round(r.cosine, 4) for r in score_image_texts(get_encoder(spec), image, CAPTIONS))
            for spec in ("demo:base", "demo:finetuned")}


def load(url: str, picture: Path, want: dict, clients: int, seconds: float, flip=None) -> dict:
    from gradio_client import Client, handle_file

    latencies, failures, mismatched, answers, stop = [], [], [], [], threading.Event()

    def worker():
        client = Client(url, verbose=False, download_files=False)
        while not stop.is_set():
            start = time.perf_counter()
            try:
                table, _, summary = client.predict(handle_file(str(picture)), "", "\n".join(CAPTIONS), "live",
                                                   api_name="/on_score")
                latencies.append(time.perf_counter() - start)
                spec = ANSWER.search(summary).group(1)
                answers.append(spec)
                if not np.allclose(sorted(row[2] for row in table["data"]), want[spec], atol=2e-4):
                    mismatched.append(spec)
            except Exception as err:  # noqa: BLE001 - counted
                failures.append(repr(err)[:200])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    rss = flip(stop) if flip else (time.sleep(seconds), [])[1]
    stop.set()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.perf_counter() - began
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"requests": len(latencies), "per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)), "failed": len(failures), "mismatched": len(mismatched),
            "specs": sorted(set(answers)), "rss_mb": rss, "first_failures": failures[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0, help="of flips (the baseline runs a third as long)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between flips")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_swap_"))
    models = folder / "models.yaml"
    write(models, "demo:base")
    picture = folder / "red.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (210, 30, 30)).save(picture)
    port = free_port()
    log = open(folder / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--models", str(models)],
                            cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}/"
    try:
        want = expected(picture)
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"the app did not start; see {folder / 'server.log'}")
                time.sleep(0.5)
        baseline = load(url, picture, want, args.clients, args.seconds / 3)

        def flips(stop):
            rss, end, flip = [], time.monotonic() + args.seconds, 0
            while time.monotonic() < end:
                flip += 1
                write(models, "demo:finetuned" if flip % 2 else "demo:base")
                time.sleep(args.every)
                rss.append(round(rss_mb(proc.pid), 1))
            return rss

        swapping = load(url, picture, want, args.clients, args.seconds, flips)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    for name, r in (("baseline (no flips)", baseline), (f"flipping every {args.every:g} s", swapping)):
        print(f"{name:>24}: {r['requests']} requests, {r['per_s']:.1f}/s, p50 {r['p50_ms']:.0f} ms, "
              f"p95 {r['p95_ms']:.0f} ms, failed {r['failed']}, mismatched {r['mismatched']}, models {r['specs']}")
    rss = swapping["rss_mb"]
    if rss:
        print(f"server RSS after each flip (MB): first {rss[0]}, last {rss[-1]}, max {max(rss)} over {len(rss)} flips")
    print(f"throughput while flipping: {swapping['per_s'] / max(baseline['per_s'], 1e-9):.2f}x the baseline")
    bad = swapping["failed"] + swapping["mismatched"] + baseline["failed"]
    if bad:
        print("FAILED:", swapping["first_failures"] or baseline["first_failures"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Time from `python app.py` to its first HTTP 200, and to its first Similarity score.

The port must answer at once: the photo model loads in the background (on a Space with network,
downloading it first can take minutes), and the photo tabs say "loading" meanwhile. The first score
waits for the model; the page does not.

Baseline in the same run: a bare Gradio app (one Markdown) started the same way: the floor that
starting Python, importing Gradio and opening the port costs.

    python bench/bench_startup.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE = """
import sys, gradio as gr
with gr.Blocks() as demo:
    gr.Markdown("hello")
demo.launch(server_port=int(sys.argv[1]))
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_200(command: list[str], cwd: Path, first_score: bool) -> tuple[float, float | None]:
    """Seconds from the process start to its first HTTP 200 and (optionally) to its first Similarity
    score of a demo image."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([*command, str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{command} exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        answered = time.perf_counter() - start
        scored = None
        if first_score:
            from gradio_client import Client, handle_file

            image = next((ROOT / "assets" / "demo" / "images").iterdir())
            client = Client(url, verbose=False, download_files=False)
            client.predict(handle_file(str(image)), "", "a smiling face", None, api_name="/on_score")
            scored = time.perf_counter() - start
        return answered, scored
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    rows = {
        "bare Gradio app (baseline)": ([sys.executable, "-c", BARE], False),
        "python app.py (default model)": ([sys.executable, str(ROOT / "app.py"), "--votes", "v.db", "--port"], True),
        "python app.py --model demo:finetuned": ([sys.executable, str(ROOT / "app.py"), "--votes", "v.db",
                                                  "--model", "demo:finetuned", "--port"], True),
    }
    results = {}
    for name, (command, score) in rows.items():
        runs = [first_200(command, work, score) for _ in range(args.runs)]
        results[name] = runs
    base = statistics.median(r[0] for r in results["bare Gradio app (baseline)"])
    print(f"{'command':40} {'first 200 (median s)':>21} {'x baseline':>11} {'first score (median s)':>23}")
    for name, runs in results.items():
        answered = statistics.median(r[0] for r in runs)
        scores = [r[1] for r in runs if r[1] is not None]
        score = f"{statistics.median(scores):.2f}" if scores else "-"
        print(f"{name:40} {answered:21.2f} {answered / base:11.2f} {score:>23}")
    print(f"({args.runs} runs each, HF_HUB_OFFLINE=1: the default model cannot load here and the demo model stands in)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

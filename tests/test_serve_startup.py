"""What `serve` (python app.py) prints as it starts: the model that really scores photos, the demo
model standing in said as such, and no Gradio hint a command-line user cannot follow (issue #21)."""

import time
from urllib.parse import urlparse


def _log_once(tmp_path, url, wanted, timeout_s=90.0):
    log = tmp_path / f"server-{urlparse(url).port}.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text()
        if wanted in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{wanted!r} never printed; the log:\n{text}")


def test_serve_says_when_the_demo_model_stands_in_for_the_default(tmp_path, serve_app, arena_catalog):
    catalog, votes = arena_catalog
    # The default model cannot be had offline with an empty cache: the demo model stands in.
    url = serve_app("--catalog", str(catalog), "--votes", str(votes),
                    env={"CLIP_ARENA_MODEL": "", "HF_HOME": str(tmp_path / "hf")})
    text = _log_once(tmp_path, url, "so the demo model")
    lines = text.splitlines()
    assert any(line.strip().startswith("model: open_clip:ViT-B-32@openai, for the Similarity, Analyze and Batch tabs "
                                       "(the arena and Explore use the catalog's own models; loading in the background")
               for line in lines)
    said = next(line for line in lines if "so the demo model" in line)
    assert said.startswith("model: open_clip:ViT-B-32@openai could not be loaded, so the demo model demo:finetuned "
                           "stands in") and "offline mode" in said
    assert f"ready: {url}" in text
    assert "share=True" not in text and "public link" not in text


def test_serve_says_the_named_model_loaded(tmp_path, serve_app, arena_catalog):
    catalog, votes = arena_catalog
    url = serve_app("--catalog", str(catalog), "--votes", str(votes), "--model", "demo:base")
    text = _log_once(tmp_path, url, "model: demo:base loaded")
    assert "so the demo model" not in text and "share=True" not in text


def test_a_port_in_use_and_a_named_model_that_is_not_there_are_one_sentence(tmp_path, arena_catalog):
    """On main: a Gradio traceback naming GRADIO_SERVER_PORT after the whole summary, and a server that
    started with a --model whose folder does not exist."""
    import socket

    from cli_runner import run_cli

    catalog, votes = arena_catalog
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli("serve", "--catalog", str(catalog), "--votes", str(votes), "--port", str(port))
    assert out.returncode == 2 and out.stderr.strip().endswith("choose another with --port.")
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    out = run_cli("serve", "--catalog", str(catalog), "--votes", str(votes), "--port", "0",
                  "--model", f"open_clip:local-dir:{tmp_path / 'runs' / 'nope'}")
    assert out.returncode == 2 and "its model folder" in out.stderr and "does not exist" in out.stderr

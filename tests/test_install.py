"""Installed from its wheel, CLIP Arena runs anywhere: the wheel built from this checkout goes into a
fresh virtual environment, and its `clip-arena` runs from a folder outside the checkout.

On the old layout the wheel had no assets (serve: "the demo catalog does not exist"; similarity with a
real model: a traceback on reference_captions.txt) and installed twelve generic top-level names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import copy_checkout, free_port, wait_http

GENERIC = {"app", "core", "cli", "models", "demo", "index", "engines", "finetune", "effectiveness", "arena",
           "analyzer", "votes"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the environment's bin folder, a user's folder outside the checkout, env vars)."""
    work = tmp_path_factory.mktemp("install")
    source = copy_checkout(work / "source")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(work / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((work / "dist").glob("clip_arena-*.whl"))
    env_dir = work / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    # The dependencies come from the test environment's own site-packages (no network needed): a path
    # in a .pth file is added to sys.path after the environment's own, and its .pth files (this
    # checkout's editable install among them) are not run.
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(outer)))
    user = work / "user"  # a new user's folder: not the checkout, not the package
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIP_ARENA_", "PYTHON"))}
    env.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    return wheel, env_dir / "bin", user, env, site


def _run(bin_dir, user, env, *args, timeout=300):
    return subprocess.run([str(bin_dir / "clip-arena"), *args], cwd=user, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_installs_one_distinct_top_level_name_and_the_assets(installed):
    wheel, bin_dir, user, env, site = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"clip_arena"}
    assert not tops & GENERIC and "app.py" not in tops
    for asset in ("assets/demo/catalog.parquet", "assets/reference_captions.txt", "assets/ATTRIBUTION.md",
                  "assets/models/demo_finetuned", "analyzer/content/vocabulary.json", "demo/demo_model.json"):
        assert any(n.startswith(f"clip_arena/{asset}") for n in names), asset
    installed_names = {p.name.split("-")[0].removesuffix(".py") for p in site.iterdir()}
    assert not installed_names & GENERIC
    # The environment imports the installed copy, and no generic name at all.
    probe = subprocess.run([str(bin_dir / "python"), "-c", (
        "import importlib.util, json, clip_arena.arena, clip_arena.core.settings as s; "
        f"print(json.dumps([clip_arena.arena.__file__, str(s.ASSETS_DIR), "
        f"[n for n in {sorted(GENERIC)!r} if importlib.util.find_spec(n)]]))")],
        cwd=user, env=env, capture_output=True, text=True, timeout=120)
    arena_file, assets, found = json.loads(probe.stdout)
    assert arena_file.startswith(str(site)) and assets == str(site / "clip_arena" / "assets")
    assert found == []


def test_clip_arena_help_and_similarity_run_from_any_folder(installed, tiny_open_clip_spec):
    wheel, bin_dir, user, env, site = installed
    help_ = _run(bin_dir, user, env, "--help")
    assert help_.returncode == 0 and "serve" in help_.stdout and "similarity" in help_.stdout
    image = user / "photo.png"
    shutil.copy(next((site / "clip_arena" / "assets" / "demo" / "images").iterdir()), image)
    demo = _run(bin_dir, user, env, "similarity", "--image", "photo.png", "--text", "a smiling face",
                "--model", "demo:finetuned", "--json")
    assert demo.returncode == 0, demo.stderr
    result = json.loads(demo.stdout)
    assert result["model"] == "demo:finetuned" and -1 <= result["results"][0]["cosine"] <= 1
    # A real (tiny) CLIP reads the reference captions the package ships: a traceback on the old wheel.
    real = _run(bin_dir, user, env, "similarity", "--image", str(image), "--text", "a cat", "--text", "a dog",
                "--model", tiny_open_clip_spec, "--json")
    assert real.returncode == 0, real.stderr
    results = json.loads(real.stdout)["results"]
    assert sorted(r["text"] for r in results) == ["a cat", "a dog"]
    assert all(0 <= r["percentile"] <= 100 for r in results)  # among the shipped reference captions


def test_serve_runs_the_bundled_demo_from_the_wheel(installed):
    from gradio_client import Client

    wheel, bin_dir, user, env, site = installed
    port = free_port()
    log = open(user / "serve.log", "w+")
    proc = subprocess.Popen([str(bin_dir / "clip-arena"), "serve", "--port", str(port), "--votes", "votes.db"],
                            cwd=user, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=proc)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        out = client.predict("newcomer", "all", api_name="/arena_start")
        status, _, round_id, query = out[:4]
        assert status.startswith("Round 1.") and round_id and query["url"]
        client.predict(round_id, True, api_name="/arena_left")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log.seek(0)
    text = log.read()
    assert f"catalog: {site / 'clip_arena' / 'assets' / 'demo' / 'catalog.parquet'}" in text, text
    import sqlite3

    with sqlite3.connect(user / "votes.db") as db:
        assert db.execute("SELECT annotator, choice FROM votes").fetchall() == [("newcomer", "left")]

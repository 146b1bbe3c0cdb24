"""Shared fixtures: tiny models saved to disk, test images, a running app and a browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_models import save_tiny_hf_clip, save_tiny_open_clip  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM = os.environ.get("CLIP_ARENA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def tiny_open_clip_spec(tmp_path_factory) -> str:
    config, weights = save_tiny_open_clip(tmp_path_factory.mktemp("tiny_open_clip"))
    return f"open_clip:{config}@{weights}"


@pytest.fixture(scope="session")
def tiny_hf_spec(tmp_path_factory) -> str:
    return f"hf:{save_tiny_hf_clip(tmp_path_factory.mktemp('tiny_hf_clip'))}"


@pytest.fixture
def make_image(tmp_path):
    """Write an image and return its path: make_image('a.png', size=(64, 48), color='red', mode='RGB')."""
    from PIL import Image

    def _make(name="img.png", size=(64, 48), color=(200, 30, 30), mode="RGB", **save_kwargs):
        path = tmp_path / name
        Image.new(mode, size, color).save(path, **save_kwargs)
        return path

    return _make


# What a copy of the checkout leaves out: local environments, caches and build leftovers (a stale
# build/lib would put deleted modules into a wheel built from the copy).
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    "runs", ".gradio", "out", "*.faiss", "*.faiss.json", "votes.db*")


def copy_checkout(dest: Path) -> Path:
    """The repository's files as a Space or a source download has them, at `dest`."""
    shutil.copytree(ROOT, dest, ignore=NOT_SOURCE)
    return dest


def with_project(env: dict | None = None) -> dict:
    """Environment variables under which a child Python imports this checkout, whether or not (or
    however) the project is installed, and from any working folder."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test at teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


@pytest.fixture
def serve_app(tmp_path, request):
    """Start `python app.py ARGS...` on a free port; return its base URL. Stopped after the test."""
    procs = []

    def _serve(*args: str, env: dict | None = None) -> str:
        port = free_port()
        log = open(tmp_path / f"server-{port}.log", "w+")
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), *args],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        )
        procs.append((proc, log))
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_http(url, proc=proc)
        except Exception:
            log.seek(0)
            raise RuntimeError(f"app did not start; its log:\n{log.read()}")
        return url

    yield _serve
    for proc, log in procs:
        if _failed(request):  # a browser timeout says little; the server's log says why
            log.seek(0)
            sys.stderr.write(f"\n--- app log (pid {proc.pid}) ---\n{log.read()[-6000:]}\n")
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}; CI must install it (apt-get install chromium)")
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    if _failed(request):  # what the user would have seen: the page's text, toasts included
        shot = Path(request.node.path).parent.parent / ".pytest_cache" / f"{request.node.name}.png"
        try:
            shot.parent.mkdir(exist_ok=True)
            pg.screenshot(path=str(shot), full_page=True)
            sys.stderr.write(f"\n--- page text (screenshot {shot}) ---\n{pg.inner_text('body')[-4000:]}\n")
        except Exception as err:  # the page may be gone; the failure itself is what matters
            sys.stderr.write(f"\n--- no page capture: {err} ---\n")
    context.close()


@pytest.fixture
def arena_catalog(tmp_path):
    """(catalog path, votes path) of a small on-disk catalog for the app."""
    from catalog_helpers import write_image_catalog

    return write_image_catalog(tmp_path), tmp_path / "votes.db"

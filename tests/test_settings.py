"""Configuration: defaults serve the demo; environment variables override them; arguments win."""

import os

from clip_arena.core.settings import DEFAULT_CATALOG, Settings


def test_defaults_serve_the_bundled_demo(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("CLIP_ARENA_", "GRADIO_SERVER", "SPACE_ID")):
            monkeypatch.delenv(name)
    s = Settings.from_env()
    # photos get a real CLIP; the demo model stands in only when it cannot load (models.fallback)
    assert (s.model, s.catalog, s.host, s.port) == ("open_clip:ViT-B-32@openai", str(DEFAULT_CATALOG), "127.0.0.1", 7860)
    assert s.image_roots == [os.getcwd()] and not s.limits.allow_private_urls and s.max_upload == "50mb"


def test_environment_then_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIP_ARENA_MODEL", "hf:/models/mine")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # as on Hugging Face Spaces
    monkeypatch.setenv("CLIP_ARENA_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("CLIP_ARENA_IMAGE_ROOTS", os.pathsep.join([str(tmp_path), "/data"]))
    s = Settings.from_env()
    assert s.model == "hf:/models/mine" and s.host == "0.0.0.0" and s.limits.allow_private_urls
    assert s.image_roots == [str(tmp_path), "/data"]
    t = s.with_overrides(model="demo:base", port=9000, host=None, allow_private_urls=None, timeout_s=2.0)
    assert (t.model, t.port, t.host, t.limits.timeout_s) == ("demo:base", 9000, "0.0.0.0", 2.0)
    assert t.limits.allow_private_urls  # None means "not given on the command line"


def test_hosted_space_turns_local_paths_off(monkeypatch):
    monkeypatch.delenv("CLIP_ARENA_IMAGE_ROOTS", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/clip-arena")
    assert Settings.from_env().image_roots is None

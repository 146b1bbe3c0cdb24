"""The encoder registry, through its real loading path, on tiny models saved to disk."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from clip_arena.core.errors import ModelLoadError
from clip_arena.models import get_encoder, parse_spec
from clip_arena.models.spec import ModelSpec

LONG_CAPTION = ("a very long product description with many words " * 50)[:2000]


def _images(n=5):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)) for i in range(n)]


@pytest.mark.parametrize("spec,expected", [
    ("open_clip:ViT-B-32@openai", ModelSpec("open_clip", "ViT-B-32", "openai")),
    ("open_clip:/m/cfg.json@/m/w@v2.safetensors", ModelSpec("open_clip", "/m/cfg.json", "/m/w@v2.safetensors")),
    ("open_clip:local-dir:/m", ModelSpec("open_clip", "local-dir:/m", None)),
    ("hf:openai/clip-vit-base-patch32", ModelSpec("hf", "openai/clip-vit-base-patch32")),
    ("demo:finetuned", ModelSpec("demo", "finetuned")),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("bad", ["", "clip", "torch:foo", "hf:"])
def test_bad_spec_is_a_clear_error(bad):
    with pytest.raises(ModelLoadError, match="not understood"):
        parse_spec(bad)


@pytest.fixture(params=["open_clip", "hf"])
def encoder(request, tiny_open_clip_spec, tiny_hf_spec):
    spec = tiny_open_clip_spec if request.param == "open_clip" else tiny_hf_spec
    return get_encoder(spec)


def test_embeddings_are_normalised_float32(encoder):
    img = encoder.encode_images(_images())
    txt = encoder.encode_texts(["a red shoe", "a blue bag", LONG_CAPTION])
    for arr in (img, txt):
        assert arr.dtype == np.float32
        assert arr.shape[1] == encoder.dim
        np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)


def test_batch_equals_one_by_one(encoder):
    images, texts = _images(), ["a red shoe", "a blue leather bag with a strap", "x"]
    batched = encoder.encode_images(images, batch_size=4)
    single = np.concatenate([encoder.encode_images([im]) for im in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(encoder.encode_texts(texts), np.concatenate([encoder.encode_texts([t]) for t in texts]), atol=1e-5)


def test_long_caption_is_truncated_not_an_error(encoder):
    vec = encoder.encode_texts([LONG_CAPTION])
    assert vec.shape == (1, encoder.dim) and np.isfinite(vec).all()
    # Truncation keeps the start: two captions that differ only past the context agree.
    twin = encoder.encode_texts([LONG_CAPTION[:1500] + " completely different ending"])
    np.testing.assert_allclose(vec, twin, atol=1e-5)


def test_loaded_once_and_in_eval_mode(encoder):
    assert get_encoder(encoder.spec) is encoder
    assert not encoder.model.training
    assert encoder.device == "cpu" and encoder.precision == "fp32"


def test_missing_local_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        get_encoder(f"open_clip:{tmp_path}/none.json@{tmp_path}/none.safetensors")
    with pytest.raises(ModelLoadError, match="does not exist"):
        get_encoder(f"hf:{tmp_path}/no-such-dir")
    with pytest.raises(ModelLoadError, match="no architecture"):
        get_encoder("open_clip:NoSuchArch@openai")


def test_offline_hub_model_fails_with_one_clear_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for spec in ("hf:openai/clip-vit-base-patch32", "open_clip:ViT-B-32@openai"):
        with pytest.raises(ModelLoadError) as info:
            get_encoder(spec)
        message = str(info.value)
        assert spec in message and "offline mode" in message and "local copy" in message


def test_unreachable_hub_fails_fast_via_cli(tmp_path):
    """Not offline, but the hub does not answer: the CLI says so in one line, no traceback."""
    image = tmp_path / "a.png"
    Image.new("RGB", (32, 32), "white").save(image)
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "clip_arena.cli.main", "similarity", "--image", str(image), "--image-root", str(tmp_path), "--text", "x",
         "--model", "hf:openai/clip-vit-base-patch32"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "hf:openai/clip-vit-base-patch32" in proc.stderr and "could not be reached" in proc.stderr
    assert time.monotonic() - start < 60  # no minutes of silent retries

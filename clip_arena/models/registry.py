"""Lazy, cached access to encoders by spec string; safe to call from many threads."""

from __future__ import annotations

import threading

from clip_arena.models.device import pick_device, pick_precision
from clip_arena.models.encoders import Encoder
from clip_arena.models.loaders import DEMO_MODELS_DIR, DEMO_NAMES, load
from clip_arena.models.spec import ModelSpec, parse_spec

_cache: dict[tuple[str, str, str], Encoder] = {}
_lock = threading.Lock()

EXAMPLE_SPECS = (
    "open_clip:ViT-B-32@openai",
    "hf:openai/clip-vit-base-patch32",
)


def get_encoder(spec: str, device: str | None = None, precision: str | None = None) -> Encoder:
    """The encoder for `spec`, loaded once per (spec, device, precision)."""
    parsed, dev, prec = _resolved(spec, device, precision)
    key = (str(parsed), dev, prec)
    cached = _cache.get(key)  # a hit never waits behind another model's load (a reload's, in the background)
    if cached is not None:
        return cached
    with _lock:  # one load at a time: two tabs asking at once must not load twice
        if key not in _cache:
            _cache[key] = load(parsed, dev, prec)
        return _cache[key]


def _resolved(spec: str, device: str | None, precision: str | None) -> tuple[ModelSpec, str, str]:
    parsed = parse_spec(spec)
    dev = pick_device(device)
    return parsed, dev, pick_precision(dev, precision)


def is_loaded(spec: str, device: str | None = None, precision: str | None = None) -> bool:
    """Whether get_encoder would answer at once (the model is in memory already)."""
    parsed, dev, prec = _resolved(spec, device, precision)
    return (str(parsed), dev, prec) in _cache


def cache_key(spec: str, device: str | None = None, precision: str | None = None) -> tuple[str, str, str]:
    """The cache's key for a model: the same model asked for by two names is loaded once."""
    parsed, dev, prec = _resolved(spec, device, precision)
    return str(parsed), dev, prec


def release(keys) -> list[str]:
    """Forget the cached encoders of `keys` (a reload dropped them), so that their memory is returned
    once the last request still using one ends (values computed per encoder are cached weakly:
    models.per_encoder). Returns the specs released."""
    import gc

    with _lock:
        dropped = [_cache.pop(key) for key in keys if key in _cache]
    if not dropped:
        return []
    specs = [e.spec for e in dropped]
    on_gpu = any(str(e.device).startswith("cuda") for e in dropped)
    del dropped
    gc.collect()
    if on_gpu:
        import torch

        torch.cuda.empty_cache()
    return specs


def known_specs() -> list[str]:
    """Specs to offer in model pickers: the bundled demo models present, then examples."""
    demos = [f"demo:{n}" for n in DEMO_NAMES if (DEMO_MODELS_DIR / f"demo_{n}").is_dir()]
    return demos + list(EXAMPLE_SPECS)


__all__ = ["get_encoder", "known_specs", "parse_spec", "ModelSpec"]

"""Hub models for the better analysis tiers (BLIP, DETR, sentiment, NER): loaded once per process
and shared; a failure is remembered for a while so that an offline machine does not wait on the
hub at every analysis."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

from clip_arena.analyzer.content.component import Unavailable
from clip_arena.core.errors import ModelLoadError

# Default model ids; each can point at a local folder saved with save_pretrained.
DEFAULT_MODELS = {
    "caption": "Salesforce/blip-image-captioning-base",
    "objects": "facebook/detr-resnet-50",
    "sentiment": "cardiffnlp/twitter-roberta-base-sentiment-latest",
    "ner": "dslim/bert-base-NER",
    "transcript": "openai/whisper-tiny",  # speech in a video's audio track (analyzer/video/speech.py)
}
RETRY_AFTER_S = 600.0

_lock = threading.Lock()
_loaded: dict[tuple, object] = {}
_failed: dict[tuple, tuple[float, str]] = {}
_key_locks: dict[tuple, threading.Lock] = {}


def model_id(role: str) -> str:
    """CLIP_ARENA_CAPTION_MODEL, ..._OBJECTS_MODEL, ..._SENTIMENT_MODEL, ..._NER_MODEL, or the default;
    an empty value turns the tier off."""
    return os.environ.get(f"CLIP_ARENA_{role.upper()}_MODEL", DEFAULT_MODELS[role]).strip()


def load(role: str, loader: Callable[[str, str], object], device: str) -> object:
    """The model for `role`, built by loader(model_id, device) once; Unavailable with the reason if
    it cannot be had (not installed, offline and not cached, hub unreachable)."""
    name = model_id(role)
    if not name:
        raise Unavailable(f"turned off (CLIP_ARENA_{role.upper()}_MODEL is empty)")
    key = (role, name, device)
    with _lock:  # one lock per model: a long download of one does not hold up the others
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        if key in _loaded:
            return _loaded[key]
        failed = _failed.get(key)
        if failed and time.monotonic() - failed[0] < RETRY_AFTER_S:
            raise Unavailable(failed[1])
        try:
            model = _load_from_hub(role, name, lambda: loader(name, device))
        except Unavailable as err:
            _failed[key] = (time.monotonic(), str(err))
            raise
        _loaded[key] = model
        return model


def _load_from_hub(role: str, name: str, build: Callable[[], object]) -> object:
    from clip_arena.models.loaders import hub_access

    if os.path.isdir(os.path.expanduser(name)):
        try:
            return build()
        except Exception as err:  # noqa: BLE001 - a broken local folder is a reason, not a crash
            raise Unavailable(f"{name} could not be loaded ({type(err).__name__}: {err})") from err
    hint = f"for a local copy, point CLIP_ARENA_{role.upper()}_MODEL at a folder saved with save_pretrained"
    try:
        with hub_access(name, hint=hint):
            return build()
    except ModelLoadError as err:
        raise Unavailable(str(err).rstrip(".")) from err


def clear() -> None:
    """Forget loaded models and remembered failures (tests, or after going online)."""
    with _lock:
        _loaded.clear()
        _failed.clear()


def backend_name(role: str, suffix: str = "") -> str:
    name = model_id(role)
    return f"transformers:{name}{suffix}" if name else f"transformers (turned off){suffix}"

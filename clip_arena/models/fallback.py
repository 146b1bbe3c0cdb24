"""The model fallback rule for photos (Similarity, Analyze, Batch and their commands).

The configured model (`--model`, by default a real CLIP) is used when it can be loaded, from the
local cache or the hub. Only when it cannot does the bundled demo model stand in, and the tab says so:
the demo model was trained on emoji alone, so its scores on photos mean little. A model the user picks
by hand that cannot be loaded is an error, not a silent stand-in.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from clip_arena.core.errors import ModelLoadError
from clip_arena.models.encoders import Encoder
from clip_arena.models.registry import get_encoder, is_loaded
from clip_arena.models.spec import parse_spec

FALLBACK_MODEL = "demo:finetuned"
DEMO_NOTICE = ("demo model: trained on emoji only, scores on photos mean little; "
               "point --model at a CLIP checkpoint")

FAILED_TTL_S = 60.0  # a model that failed to load is tried again after this long (it may be cached by then)
_FAILED: dict[str, tuple[float, str]] = {}
_PRELOADS: dict[tuple, Future] = {}  # models loading in the background (the app's start)
_PRELOADS_LOCK = threading.Lock()


@dataclass(frozen=True)
class PhotoModel:
    """Which model scored a photo, and whether it is the demo model standing in for another."""

    requested: str
    used: str
    fell_back: bool = False
    reason: str | None = None  # why the requested model could not be loaded

    @property
    def is_demo(self) -> bool:
        return is_demo_spec(self.used)

    def notice(self) -> str | None:
        """The plain-words warning a tab shows above its results, or None for a real model."""
        if not self.is_demo:
            return None
        if self.fell_back:
            return f"{DEMO_NOTICE}. {self.reason}."
        return DEMO_NOTICE


def is_demo_spec(spec: str) -> bool:
    try:
        return parse_spec(spec).backend == "demo"
    except ModelLoadError:
        return False


def pick_photo_model(requested: str, configured: str, device: str | None = None,
                     precision: str | None = None, fallback: bool = True) -> tuple[Encoder, PhotoModel]:
    """The encoder for `requested`; when that is the configured model, it cannot be loaded and
    `fallback` allows it (the configured model is a default, not one the user named), the demo model
    instead, marked as a fallback with the reason."""
    requested = (requested or "").strip() or configured
    fallback_allowed = fallback and requested == configured and not is_demo_spec(requested)
    failed = _FAILED.get(requested)
    if fallback_allowed and failed and time.monotonic() - failed[0] < FAILED_TTL_S:
        reason = failed[1]  # tried moments ago: every page load and click would try again
    else:
        try:
            return get_encoder(requested, device, precision), PhotoModel(requested, requested)
        except ModelLoadError as err:
            if not fallback_allowed:
                raise
            reason = str(err).rstrip(".")
            _FAILED[requested] = (time.monotonic(), reason)
    encoder = get_encoder(FALLBACK_MODEL, device, precision)
    return encoder, PhotoModel(requested, FALLBACK_MODEL, fell_back=True, reason=reason)


def photo_model(settings, requested: str | None = None) -> tuple[Encoder, PhotoModel]:
    """The one rule, for every tab, command and engine: `requested` (a picker's choice; by default the
    configured model), with the demo model standing in only for a configured model the user did not
    name (settings.model_named) that cannot be loaded."""
    return pick_photo_model(requested or settings.model, settings.model, settings.device, settings.precision,
                            fallback=not settings.model_named)


def _key(settings) -> tuple:
    return settings.model, settings.model_named, settings.device, settings.precision


def preload_photo_model(settings) -> Future:
    """Start photo_model(settings) in a background thread (once per configuration): the app answers
    at once, and its tabs say "loading" until the model (or the demo model standing in) is ready."""
    key = _key(settings)
    with _PRELOADS_LOCK:
        if key not in _PRELOADS:
            future: Future = Future()

            def _load():
                try:
                    future.set_result(photo_model(settings)[1])
                except Exception as err:  # noqa: BLE001 - kept for whoever asks; the tab says it when used
                    future.set_exception(err)

            _PRELOADS[key] = future
            threading.Thread(target=_load, daemon=True, name=f"load {settings.model}").start()
        return _PRELOADS[key]


def outcome_line(settings, loading: Future) -> str:
    """What the server's log says once the background load is done: which model scores photos, and,
    when the demo model stands in for the default, that it does and why."""
    try:
        used = loading.result()
    except Exception as err:  # noqa: BLE001 - a named model that cannot load: the tabs say so too
        return (f"model: {settings.model} could not be loaded: {str(err).rstrip('.')}; the Similarity, Analyze "
                "and Batch tabs say so")
    if used.fell_back:
        return (f"model: {used.requested} could not be loaded, so the demo model {used.used} stands in "
                f"(trained on emoji only: scores on photos mean little; point --model at a CLIP checkpoint). "
                f"Why: {used.reason}.")
    return f"model: {used.used} loaded"


def photo_model_if_ready(settings) -> PhotoModel | None:
    """photo_model(settings)'s answer when it is known without loading anything, else None (loading,
    or not asked for yet). Raises ModelLoadError when the model is known not to load and nothing stands in."""
    future = _PRELOADS.get(_key(settings))
    if future is not None:
        return future.result() if future.done() else None
    if is_loaded(settings.model, settings.device, settings.precision):
        return PhotoModel(settings.model, settings.model)
    failed = _FAILED.get(settings.model)
    if failed and not settings.model_named and time.monotonic() - failed[0] < FAILED_TTL_S:
        return PhotoModel(settings.model, FALLBACK_MODEL, fell_back=True, reason=failed[1])
    return None


def looks_like_emoji(image) -> bool:
    """Whether an image could be in the demo model's domain: a small square picture, as the demo
    catalog's emoji renders are (72 px, the glyph filling the square). Photos and ads are larger."""
    width, height = image.size
    return max(width, height) <= 256 and 0.8 <= width / max(height, 1) <= 1.25


def photo_model_for_cli(settings) -> tuple[Encoder, PhotoModel]:
    """A command's model, by the one rule (photo_model); a demo model standing in is said on stderr."""
    import sys

    encoder, used = photo_model(settings)
    if used.notice():
        print(f"note: {used.notice()}", file=sys.stderr)
    return encoder, used

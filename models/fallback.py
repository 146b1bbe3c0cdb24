"""The model fallback rule for photos (Similarity, Analyze, Batch and their commands).

The configured model (`--model`, by default a real CLIP) is used when it can be loaded, from the
local cache or the hub. Only when it cannot does the bundled demo model stand in, and the tab says so:
the demo model was trained on emoji alone, so its scores on photos mean little. A model the user picks
by hand that cannot be loaded is an error, not a silent stand-in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.errors import ModelLoadError
from models.encoders import Encoder
from models.registry import get_encoder
from models.spec import parse_spec

FALLBACK_MODEL = "demo:finetuned"
DEMO_NOTICE = ("demo model: trained on emoji only, scores on photos mean little; "
               "point --model at a CLIP checkpoint")

FAILED_TTL_S = 60.0  # a model that failed to load is tried again after this long (it may be cached by then)
_FAILED: dict[str, tuple[float, str]] = {}


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
                     precision: str | None = None) -> tuple[Encoder, PhotoModel]:
    """The encoder for `requested`; when that is the configured model and it cannot be loaded,
    the demo model instead, marked as a fallback with the reason."""
    requested = (requested or "").strip() or configured
    fallback_allowed = requested == configured and not is_demo_spec(requested)
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


def looks_like_emoji(image) -> bool:
    """Whether an image could be in the demo model's domain: a small square picture, as the demo
    catalog's emoji renders are (72 px, the glyph filling the square). Photos and ads are larger."""
    width, height = image.size
    return max(width, height) <= 256 and 0.8 <= width / max(height, 1) <= 1.25


def photo_model_for_cli(settings) -> tuple[Encoder, PhotoModel]:
    """A command's model: the default falls back to the demo model (said on stderr); a --model the
    user named must load."""
    import sys

    from core.settings import DEFAULT_MODEL

    encoder, used = pick_photo_model(settings.model, DEFAULT_MODEL, settings.device, settings.precision)
    if used.notice():
        print(f"note: {used.notice()}", file=sys.stderr)
    return encoder, used

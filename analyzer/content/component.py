"""What a component is: a named report section with backends tried best first.

A backend declares what it needs (Python modules, binaries, a hub model). The first backend whose
needs are met and that runs fills the section: status "ok" when it is the best tier, "degraded" when
a lower tier had to stand in (the reason says why the better ones did not run), "unavailable" when
none could run. Each backend writes its own fields, so scores of different backends never share one.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
from PIL import Image

from clip_arena.core.settings import Settings
from clip_arena.models.fallback import PhotoModel, is_demo_spec, looks_like_emoji

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"


class Unavailable(Exception):
    """A backend cannot run here; str(err) says why in a few words."""


@dataclass
class Context:
    """One analysis: the inputs, and values computed once and shared by components."""

    image: Image.Image | None
    text: str
    settings: Settings
    model: str  # CLIP encoder spec
    photo_model: "PhotoModel | None" = None  # set when the fallback rule picked the model

    @cached_property
    def encoder(self):
        from clip_arena.models import get_encoder

        return get_encoder(self.model, self.settings.device, self.settings.precision)

    @cached_property
    def image_vector(self) -> np.ndarray:
        return self.encoder.encode_images([self.image])[0]

    @cached_property
    def rgb(self) -> np.ndarray:
        """uint8 H x W x 3."""
        return np.asarray(self.image.convert("RGB"))


@dataclass(frozen=True)
class Backend:
    name: str
    run: Callable[[Context], dict]
    modules: tuple[str, ...] = ()
    binaries: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # hub ids or folders, for the report's "needs"

    def missing(self) -> str | None:
        """Why this backend cannot run here, or None."""
        absent = [m for m in self.modules if importlib.util.find_spec(m) is None]
        if absent:
            return f"Python module {', '.join(absent)} is not installed"
        absent = [b for b in self.binaries if shutil.which(b) is None]
        if absent:
            return f"program {', '.join(absent)} is not installed"
        return None


@dataclass(frozen=True)
class Component:
    name: str  # the report's section name; the Analyze tab's card titles are in analyze_view
    backends: tuple[Backend, ...]
    needs_image: bool = False
    needs_text: bool = False
    caveat: Callable[[Context], str | None] | None = None  # a reason to call a section's result degraded

    def needs(self) -> dict:
        return {
            "image": self.needs_image, "text": self.needs_text,
            "backends": [{"name": b.name, "modules": list(b.modules), "binaries": list(b.binaries),
                          "models": list(b.models), "missing": b.missing()} for b in self.backends],
        }

    def run(self, ctx: Context) -> dict:
        if self.needs_image and ctx.image is None:
            return section(UNAVAILABLE, None, "no image was given")
        if self.needs_text and not ctx.text.strip():
            return section(UNAVAILABLE, None, "no text was given")
        reasons: list[str] = []
        for tier, backend in enumerate(self.backends):
            why = backend.missing()
            if why is None:
                try:
                    values = backend.run(ctx)
                except Unavailable as err:
                    why = str(err)
                else:
                    caveat = self.caveat(ctx) if self.caveat else None
                    if caveat:
                        reasons.append(caveat)
                    status = OK if tier == 0 and not caveat else DEGRADED
                    return section(status, backend.name, "; ".join(reasons) or None, values)
            reasons.append(f"{backend.name}: {why}")
        return section(UNAVAILABLE, None, "; ".join(reasons))


def demo_model_caveat(ctx: Context) -> str | None:
    """CLIP sections made by the demo model on an image outside its domain (emoji) mean little."""
    used = ctx.photo_model.used if ctx.photo_model else ctx.model
    if not is_demo_spec(used) or ctx.image is None or looks_like_emoji(ctx.image):
        return None
    return ctx.photo_model.notice() if ctx.photo_model else PhotoModel(used, used).notice()


def section(status: str, backend: str | None, reason: str | None, values: dict | None = None) -> dict:
    return {"status": status, "backend": backend, "reason": reason, **(values or {})}


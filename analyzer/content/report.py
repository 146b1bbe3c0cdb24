"""Run the components on one image and its text and gather the report:
{"model": SPEC, "sections": {NAME: {"status", "backend", "reason", ...values}}, "timings_ms": {...}}."""

from __future__ import annotations

import logging
import time
from typing import Callable

from PIL import Image

from clip_arena.analyzer.content import (alignment, caption, entities, image_properties, labels, objects, ocr,
                              sentiment, text_properties)
from clip_arena.analyzer.content.component import UNAVAILABLE, Component, Context, section
from clip_arena.core.errors import ModelLoadError
from clip_arena.core.settings import Settings
from clip_arena.models.fallback import photo_model as pick_model

log = logging.getLogger(__name__)

SECTION_NAMES = ("alignment", "labels", "caption", "objects", "ocr", "sentiment", "entities",
                 "image_properties", "text_properties", "effectiveness")
CLIP_SECTIONS = {"alignment", "labels"}
# A predictor turns the context and the sections so far into the effectiveness section.
Predictor = Callable[[Context, dict], dict]


def components(model: str) -> list[Component]:
    return [alignment.component(model), labels.component(model), caption.component(), objects.component(),
            ocr.component(), sentiment.component(), entities.component(), image_properties.component(),
            text_properties.component()]


def analyze(image: Image.Image | None, text: str, settings: Settings, model: str | None = None,
            only: set[str] | None = None, predictor: Predictor | None = None,
            image_vector=None) -> dict:
    """The full report; `only` restricts it to some sections (the others are left out);
    `image_vector`, the image's embedding under `model` when the caller already has it."""
    model = model or settings.model
    photo_model, encoder = None, None
    if image is not None and image_vector is None and (only is None or only & CLIP_SECTIONS):
        try:  # the fallback rule: the demo model stands in for a configured model that cannot load
            encoder, photo_model = pick_model(settings, model)
            model = photo_model.used
        except ModelLoadError:
            pass  # a model picked by hand that cannot load: the CLIP sections say why
    ctx = Context(image=image, text=(text or "").strip(), settings=settings, model=model, photo_model=photo_model)
    if encoder is not None:
        ctx.encoder = encoder  # fills the cached property
    if image_vector is not None:
        ctx.image_vector = image_vector  # fills the cached property
    sections, timings = {}, {}
    for comp in components(model):
        if only is not None and comp.name not in only:
            continue
        start = time.perf_counter()
        sections[comp.name] = run_guarded(comp, ctx)
        timings[comp.name] = round(1000 * (time.perf_counter() - start), 1)
    if only is None or "effectiveness" in only:
        if predictor is None:
            sections["effectiveness"] = section(UNAVAILABLE, None, "no trained model")
        else:
            sections["effectiveness"] = predictor(ctx, sections)
    report = {"model": model, "sections": sections, "timings_ms": timings}
    if photo_model is not None and photo_model.notice():
        report["model_notice"] = photo_model.notice()
    return report


def run_guarded(comp: Component, ctx: Context) -> dict:
    """One failing component must not take the report down: it is reported, with its error."""
    try:
        return comp.run(ctx)
    except Exception as err:  # noqa: BLE001 - shown in its section; the traceback goes to the log
        log.exception("analysis section %s failed", comp.name)
        return section(UNAVAILABLE, None, f"failed: {type(err).__name__}: {err}")

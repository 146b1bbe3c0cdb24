"""A generated caption (BLIP) when its weights can be loaded; otherwise the section is
unavailable with the reason (no offline stand-in writes captions well enough to show)."""

from __future__ import annotations

import torch

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.content.component import Backend, Component, Context

MAX_NEW_TOKENS = 30


def _load_blip(name: str, device: str):
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(name)
    model = BlipForConditionalGeneration.from_pretrained(name).to(device).eval()
    return processor, model


def caption(ctx: Context) -> dict:
    device = ctx.settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    processor, model = hub.load("caption", _load_blip, device)
    inputs = processor(images=ctx.image, return_tensors="pt").to(device)
    with torch.inference_mode():
        ids = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, num_beams=3)
    return {"caption": processor.decode(ids[0], skip_special_tokens=True).strip()}


def component() -> Component:
    name = hub.model_id("caption")
    return Component(
        name="caption",
        needs_image=True,
        backends=(Backend(hub.backend_name("caption"), caption, modules=("transformers",), models=(name,)),),
    )

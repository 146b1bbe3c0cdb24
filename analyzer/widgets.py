"""Gradio widgets more than one tab builds the same way."""

from __future__ import annotations

import gradio as gr

from clip_arena.analyzer.model_choice import browser_models
from clip_arena.core.settings import Settings


def model_picker(settings: Settings, label: str, elem_id: str) -> gr.Dropdown:
    """Only the configured models: the server checks the choice again (analyzer.model_choice)."""
    return gr.Dropdown(choices=browser_models(settings), value=settings.model, allow_custom_value=False,
                       label=label, elem_id=elem_id)


class ImageInput(gr.Image):
    """gr.Image that hands the uploaded file's path on without opening it, so a file that is not an
    image reaches the image policy, which says so in one sentence (Gradio's own preprocessing
    would fail with its internal 'Could not preprocess input component' text)."""

    is_template = True  # the front end draws it as the plain Image component

    def preprocess(self, payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return payload.path
        return super().preprocess(payload)


def image_inputs(elem_prefix: str, placeholder: str) -> tuple[gr.Image, gr.Textbox]:
    """An image to upload, paste or drop, and a URL box for one that lives on the web."""
    image = ImageInput(label="Image (upload, paste or drop)", type="filepath", sources=["upload", "clipboard"],
                       elem_id=f"{elem_prefix}-image")
    url = gr.Textbox(label="...or image URL", placeholder=placeholder, elem_id=f"{elem_prefix}-url")
    return image, url


def error_text(message: str) -> str:
    """What a tab shows in its summary when a run fails: one plain sentence."""
    return f"**Error:** {message[:1].upper()}{message[1:]}"

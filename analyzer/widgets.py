"""Gradio widgets more than one tab builds the same way."""

from __future__ import annotations

import gradio as gr

from core.settings import Settings
from models import known_specs


def model_picker(settings: Settings, label: str, elem_id: str) -> gr.Dropdown:
    """Any registry spec can be typed in; the configured model is always among the choices."""
    choices = known_specs()
    if settings.model not in choices:
        choices = [settings.model] + choices
    return gr.Dropdown(choices=choices, value=settings.model, allow_custom_value=True, label=label, elem_id=elem_id)


def image_inputs(elem_prefix: str, placeholder: str) -> tuple[gr.Image, gr.Textbox]:
    """An image to upload, paste or drop, and a URL box for one that lives on the web."""
    image = gr.Image(label="Image (upload, paste or drop)", type="filepath", sources=["upload", "clipboard"],
                     elem_id=f"{elem_prefix}-image")
    url = gr.Textbox(label="...or image URL", placeholder=placeholder, elem_id=f"{elem_prefix}-url")
    return image, url

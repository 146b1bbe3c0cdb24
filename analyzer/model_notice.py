"""The notice a photo tab shows when the demo model scores its images (models.fallback's rule).

`place` adds it to a tab as its own Markdown, kept apart from the tab's results and error handling:
filled on each page load for the configured model, and again when the model picker changes."""

from __future__ import annotations

import gradio as gr

from core.errors import ModelLoadError
from core.settings import Settings
from models.fallback import pick_photo_model


def notice_markdown(spec: str | None, settings: Settings) -> str:
    """The notice for the model a tab will use, as Markdown; empty for a real model (or one that
    cannot load at all: the tab's own error says so when it runs)."""
    try:
        _, used = pick_photo_model(spec or settings.model, settings.model, settings.device, settings.precision)
    except ModelLoadError:
        return ""
    notice = used.notice()
    return f"⚠️ **{notice.split(':', 1)[0]}:**{notice.split(':', 1)[1]}" if notice else ""


def place(settings: Settings, picker: gr.Dropdown, elem_prefix: str) -> gr.Markdown:
    notice = gr.Markdown(lambda: notice_markdown(settings.model, settings), elem_id=f"{elem_prefix}-model-notice")
    picker.change(lambda spec: notice_markdown(spec, settings), [picker], [notice], show_progress="hidden")
    return notice

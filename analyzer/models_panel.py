"""The models file's status and a Reload button, for admins only (models/live.py does the work).

Shown to the app's owners (core.hosting.is_owner: --admins or the Space's owner when hosted or with
logins; locally, the person at the keyboard); the reload endpoint checks again on the server, so an
annotator who posts to it directly is refused."""

from __future__ import annotations

import re

import gradio as gr

from clip_arena.core.hosting import is_owner
from clip_arena.core.settings import Settings
from clip_arena.models.live import active

ADMINS_ONLY = "Reloading the models is for the app's admins (`--admins`, or the Space's owner)."


def status_markdown(settings: Settings) -> str:
    """The status as Markdown paragraphs and a list, not a code block: a long error wraps instead of
    running off the panel's edge."""
    live = active(settings)
    if live is None:
        return ""
    head, *rest = live.status_lines()
    models = [f"- {_plain(line.strip())}" for line in rest if line.startswith("  ")]
    after = [_plain(line) for line in rest if not line.startswith("  ")]
    return "\n\n".join([_plain(head), "\n".join(models), *after]).strip()


def _plain(text: str) -> str:
    """Text shown as typed in Markdown: its punctuation escaped (a spec's * or _ is no emphasis)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", text)


def reload_as(settings: Settings, request) -> str:
    """The admin's reload: the models file read again now; the status says what is live and why a
    failed reload changed nothing."""
    if not is_owner(settings, request):
        return ADMINS_ONLY
    live = active(settings)
    if live is None:
        return "No models file is configured (serve --models FILE)."
    live.reload("reload asked for in the app")
    return status_markdown(settings)


def place(settings: Settings) -> None:
    if active(settings) is None:
        return
    with gr.Accordion("Models file (admins)", open=False, visible=False, elem_id="models-admin") as box:
        status = gr.Markdown(elem_id="models-status")
        button = gr.Button("Reload the models file", elem_id="models-reload")

    def on_load(request: gr.Request):
        owner = is_owner(settings, request)
        return gr.Accordion(visible=owner), status_markdown(settings) if owner else ""

    gr.on(None, on_load, None, [box, status], api_visibility="private", queue=False, show_progress="hidden")
    def on_reload(request: gr.Request):
        return reload_as(settings, request)

    button.click(on_reload, None, [status], api_name="reload_models", concurrency_id="models-reload",
                 concurrency_limit=1)

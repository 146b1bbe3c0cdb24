"""The notice a photo tab shows when the demo model scores its images (models.fallback's rule).

`place` adds it to a tab as its own Markdown, kept apart from the tab's results and error handling:
filled on each page load for the configured model without waiting for it (the app loads it in the
background and the notice says so until it is ready), and again when the model picker changes."""

from __future__ import annotations

import gradio as gr

from clip_arena.analyzer.widgets import code_specs
from clip_arena.core.errors import ModelLoadError
from clip_arena.core.settings import Settings
from clip_arena.models.fallback import photo_model, photo_model_if_ready

LOADING = "⏳ Loading the photo model ({spec}) in the background: the first score waits for it."


def notice_markdown(spec: str | None, settings: Settings) -> str:
    """The notice for the model a tab will use, as Markdown; empty for a real model (or one that
    cannot load at all: the tab's own error says so when it runs)."""
    from clip_arena.analyzer.model_choice import choose
    from clip_arena.core.errors import UserError

    try:
        chosen = choose(spec, settings, fusions=True)  # a models file's NAME: its spec
        if chosen.handle is not None and chosen.handle.fusion is not None:
            return ""
        _, used = photo_model(chosen.settings, chosen.spec)
    except UserError:  # ModelLoadError included: the tab's own error says so when it runs
        return ""
    return _markdown(used)


def _markdown(used) -> str:
    notice = used.notice()
    return f"⚠️ **{notice.split(':', 1)[0]}:**{code_specs(notice.split(':', 1)[1])}" if notice else ""


def notice_now(settings: Settings) -> tuple[str, bool]:
    """The configured model's notice as things stand, loading nothing: (Markdown, still loading)."""
    try:
        used = photo_model_if_ready(settings)
    except ModelLoadError as err:  # a model the user named, which may not fall back
        return f"⚠️ **The model {code_specs(settings.model)} cannot be loaded:** {code_specs(str(err))}", False
    if used is None:
        return LOADING.format(spec=code_specs(settings.model)), True
    return _markdown(used), False


def _spec_of(choice: str | None, settings: Settings) -> str:
    """The spec a picker's choice stands for (a models file's NAME, or a spec)."""
    from clip_arena.analyzer.model_choice import choose
    from clip_arena.core.errors import UserError

    try:
        return choose(choice, settings, fusions=True).spec
    except UserError:
        return choice or settings.model


def place(settings: Settings, picker: gr.Dropdown, elem_prefix: str) -> gr.Markdown:
    notice = gr.Markdown(lambda: notice_now(settings)[0], elem_id=f"{elem_prefix}-model-notice")
    picker.change(lambda spec: notice_markdown(spec, settings), [picker], [notice], show_progress="hidden")
    # While the configured model loads, the notice is looked at again every 2 s, then no more.
    timer = gr.Timer(2)

    def tick(spec):
        if _spec_of(spec, settings) != settings.model:
            return gr.skip(), gr.Timer(active=False)  # the picker's own notice stands
        text, loading = notice_now(settings)
        return text, gr.Timer(active=loading)

    timer.tick(tick, [picker], [notice, timer], show_progress="hidden", api_visibility="private", queue=False)
    return notice

"""Analyze tab: wiring only; the work is in analyzer.analyze_view."""

from __future__ import annotations

import gradio as gr

from clip_arena.analyzer.analyze_view import run_analyze
from clip_arena.analyzer import model_notice
from clip_arena.analyzer.widgets import error_text, image_inputs, model_picker
from clip_arena.core import background
from clip_arena.core.errors import UserError
from clip_arena.core.gpu import gpu
from clip_arena.core.settings import Settings


def build(settings: Settings) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image, url = image_inputs("an", "https://example.com/ad.jpg")
        with gr.Column(scale=1):
            text = gr.Textbox(label="Text (ad copy, caption, listing)", lines=5, elem_id="an-text",
                              placeholder="Summer sale! 30% off all sneakers. Shop now.")
            model = model_picker(settings, "CLIP model (alignment, labels)", "an-model")
            button = gr.Button("Analyze", variant="primary", elem_id="an-run")
    model_notice.place(settings, model, "an")
    summary = gr.Markdown(elem_id="an-summary")
    cards = gr.HTML(elem_id="an-cards")
    with gr.Row():
        palette = gr.Plot(label="Palette", elem_id="an-palette")
        labels = gr.Plot(label="Labels", elem_id="an-labels")
    download = gr.File(label="Full report (JSON)", elem_id="an-json")

    @gpu  # ZeroGPU: a GPU for the length of this call (no-op elsewhere)
    def on_analyze(image_file, image_url, copy, spec):
        try:
            # On a low-priority thread: a vote in the arena gets the processor first (core.background).
            return background.run("analyze", settings.model_jobs, run_analyze, image_file, image_url, copy, spec,
                                  settings, image.GRADIO_CACHE)
        except UserError as err:  # say it in the summary and clear the last report
            return "", None, None, None, error_text(str(err))

    gr.on([button.click, url.submit], on_analyze, inputs=[image, url, text, model],
          outputs=[cards, palette, labels, download, summary], concurrency_id="analyze",
          concurrency_limit=settings.model_jobs)

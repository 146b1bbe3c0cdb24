"""Similarity tab: wiring only; the work is in analyzer.similarity_view."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from clip_arena.analyzer.similarity_view import COLUMNS, run_similarity
from clip_arena.analyzer import model_notice, models_panel
from clip_arena.analyzer.widgets import error_text, image_inputs, model_picker
from clip_arena.core import background
from clip_arena.core.errors import UserError
from clip_arena.core.gpu import gpu
from clip_arena.core.settings import Settings


def build(settings: Settings) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image, url = image_inputs("sim", "https://example.com/photo.jpg")
        with gr.Column(scale=1):
            captions = gr.Textbox(label="Captions, one per line", lines=6, elem_id="sim-captions",
                                  placeholder="a red running shoe\na leather handbag")
            model = model_picker(settings, "Model", "sim-model", fusions=True)
            button = gr.Button("Score", variant="primary", elem_id="sim-run")
    model_notice.place(settings, model, "sim")
    models_panel.place(settings)  # admins: the models file's status and Reload
    summary = gr.Markdown(elem_id="sim-summary")
    table = gr.Dataframe(headers=COLUMNS, label="Scores, best first", interactive=False, elem_id="sim-table")
    plot = gr.Plot(label="Scores", elem_id="sim-plot")

    @gpu  # ZeroGPU: a GPU for the length of this call (no-op elsewhere)
    def on_score(image_file, image_url, text, spec):
        try:
            # On a low-priority thread: a vote in the arena gets the processor first (core.background).
            df, fig, line = background.run("similarity", settings.model_jobs, run_similarity, image_file, image_url,
                                           text, spec, settings, image.GRADIO_CACHE)
        except UserError as err:  # say it in the summary and clear the last result
            return pd.DataFrame(columns=COLUMNS), None, error_text(str(err))
        return df, fig, line

    gr.on([button.click, captions.submit, url.submit], on_score, inputs=[image, url, captions, model],
          outputs=[table, plot, summary], concurrency_id="similarity", concurrency_limit=settings.model_jobs)

"""Batch tab: wiring only; the work is in analyzer.batch_view."""

from __future__ import annotations

import gradio as gr

from analyzer.batch_view import columns_of, run_batch
from analyzer.widgets import model_picker
from core.errors import UserError
from core.settings import Settings


def build(settings: Settings) -> None:
    roots = ", ".join(settings.image_roots) if settings.image_roots else "off (URLs only)"
    gr.Markdown(f"Drop a CSV with an image column (http(s) URLs or local paths) and a caption column; get it "
                f"back with `cosine`, `similarity`, `clip_score` and `error`. Local paths allowed under: {roots}.")
    with gr.Row():
        upload = gr.File(label="CSV file (drag and drop)", file_types=[".csv", ".tsv", ".txt"], elem_id="batch-upload")
        with gr.Column():
            image_col = gr.Dropdown(label="Image column", choices=[], elem_id="batch-image-col")
            caption_col = gr.Dropdown(label="Caption column", choices=[], elem_id="batch-caption-col")
            model = model_picker(settings, "Model", "batch-model")
            run = gr.Button("Score", variant="primary", elem_id="batch-run")
    summary = gr.Markdown(elem_id="batch-summary")
    result = gr.File(label="Scored CSV", elem_id="batch-result")
    plot = gr.Plot(elem_id="batch-plot")
    preview = gr.Dataframe(label="First rows", interactive=False, elem_id="batch-preview")

    def on_upload(path):
        if not path:
            return gr.update(choices=[], value=None), gr.update(choices=[], value=None)
        try:
            header, image, caption = columns_of(path)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from err
        return gr.update(choices=header, value=image), gr.update(choices=header, value=caption)

    upload.change(on_upload, [upload], [image_col, caption_col])

    def on_run(path, image, caption, spec, progress=gr.Progress()):
        try:
            table, fig, text, output = run_batch(path, image, caption, spec, settings,
                                                 lambda fraction, desc: progress(fraction, desc=desc))
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from err
        return table, fig, text, output

    run.click(on_run, [upload, image_col, caption_col, model], [preview, plot, summary, result])

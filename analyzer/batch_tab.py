"""Batch tab: wiring only; the work is in analyzer.batch_view."""

from __future__ import annotations

import gradio as gr

from analyzer.batch_view import SHOWS, SORTS, columns_of, preview_datatypes, refresh_preview, run_batch
from analyzer import model_notice
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
    model_notice.place(settings, model, "batch")
    summary = gr.Markdown(elem_id="batch-summary")
    result = gr.File(label="Scored CSV", elem_id="batch-result")
    plot = gr.Plot(elem_id="batch-plot")
    with gr.Row():
        sort = gr.Dropdown(list(SORTS), value=SORTS[0], label="Sort the preview", elem_id="batch-sort")
        show = gr.Dropdown(list(SHOWS), value=SHOWS[0], label="Show", elem_id="batch-show")
    preview = gr.Dataframe(label="Preview (first rows as sorted and filtered)", interactive=False,
                           elem_id="batch-preview")

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
        return gr.Dataframe(table, datatype=preview_datatypes(table)), fig, text, output

    run.click(on_run, [upload, image_col, caption_col, model], [preview, plot, summary, result])

    def on_view(scored, image, how, which, spec):
        try:
            table = refresh_preview(scored, image, how, which, spec, settings)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from err
        return gr.Dataframe(table, datatype=preview_datatypes(table)) if table is not None else gr.skip()

    gr.on([sort.change, show.change], on_view, [result, image_col, sort, show, model], [preview])

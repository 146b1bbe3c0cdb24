"""Batch tab: wiring only; the work is in analyzer.batch_view."""

from __future__ import annotations

import gradio as gr

from clip_arena.analyzer.batch_view import (SHOWS, SORTS, CancelFlags, ResultGone, columns_of, local_paths_text,
                                            preview_datatypes, preview_widths, refresh_preview, run_batch)
from clip_arena.analyzer import model_notice
from clip_arena.analyzer.widgets import error_text, model_picker
from clip_arena.core import background
from clip_arena.core.errors import UserError
from clip_arena.core.gpu import gpu
from clip_arena.core.settings import Settings


def build(settings: Settings) -> None:
    gr.Markdown("Drop a CSV with an image column (http(s) URLs or local paths) and a caption column; get it "
                "back with `cosine`, `similarity`, `clip_score`, `cosine_max`, `frames` and `error`. A cell ending "
                "in .mp4, .mov, .m4v, .webm or .mkv is a video: its `cosine` is the mean over frames sampled once "
                f"a second, `cosine_max` the best frame. {local_paths_text(settings)}")
    with gr.Row():
        upload = gr.File(label="CSV file (drag and drop)", file_types=[".csv", ".tsv", ".txt"], elem_id="batch-upload")
        with gr.Column():
            image_col = gr.Dropdown(label="Image column", choices=[], elem_id="batch-image-col")
            caption_col = gr.Dropdown(label="Caption column", choices=[], elem_id="batch-caption-col")
            model = model_picker(settings, "Model", "batch-model", fusions=True)
            with gr.Row():
                run = gr.Button("Score", variant="primary", elem_id="batch-run")
                cancel = gr.Button("Cancel", variant="secondary", elem_id="batch-cancel")
    model_notice.place(settings, model, "batch")
    summary = gr.Markdown(elem_id="batch-summary")
    result = gr.File(label="Scored CSV", elem_id="batch-result")
    plot = gr.Plot(elem_id="batch-plot")
    with gr.Row():
        sort = gr.Dropdown(list(SORTS), value=SORTS[0], elem_id="batch-sort",
                           label="Sort the preview (score: probability with a calibrated model or a fusion, else cosine)")
        show = gr.Dropdown(list(SHOWS), value=SHOWS[0], label="Show", elem_id="batch-show")
    # wrap: an error cell is a sentence; unwrapped, the last column ran off the table's right edge
    preview = gr.Dataframe(label="Preview (first rows as sorted and filtered)", interactive=False, wrap=True,
                           elem_id="batch-preview")
    flags = CancelFlags()

    def on_upload(path):
        if not path:
            return gr.update(choices=[], value=None), gr.update(choices=[], value=None), ""
        try:
            header, image, caption = columns_of(path)
        except UserError as err:
            return gr.update(choices=[], value=None), gr.update(choices=[], value=None), error_text(str(err))
        return gr.update(choices=header, value=image), gr.update(choices=header, value=caption), ""

    upload.change(on_upload, [upload], [image_col, caption_col, summary], concurrency_id="batch-columns",
                  concurrency_limit=settings.model_jobs)

    @gpu  # ZeroGPU: a GPU for the length of this call (no-op elsewhere)
    def on_run(path, image, caption, spec, request: gr.Request, progress=gr.Progress()):
        key = request.session_hash or ""
        flag = flags.start(key)
        try:
            # On a low-priority thread: a vote in the arena gets the processor first (core.background).
            table, fig, text, output = background.run(
                "batch", settings.batch_jobs, run_batch, path, image, caption, spec, settings,
                lambda fraction, desc: progress(fraction, desc=desc), flag.is_set)
        except UserError as err:  # say it in the summary and clear the last result
            return None, None, error_text(str(err)), None
        finally:
            flags.finish(key)
        return gr.Dataframe(table, datatype=preview_datatypes(table), column_widths=preview_widths(table)), fig, text, output

    def on_cancel(request: gr.Request):
        if flags.cancel(request.session_hash or ""):
            gr.Info("Cancelling: the batch stops after the rows being scored now.")

    run.click(on_run, [upload, image_col, caption_col, model], [preview, plot, summary, result],
              concurrency_id="batch", concurrency_limit=settings.batch_jobs)
    cancel.click(on_cancel, None, None, concurrency_limit=None, queue=False)

    def on_view(scored, image, how, which, spec):
        try:
            table = refresh_preview(scored, image, how, which, spec, settings)
        except ResultGone:
            return gr.skip()  # cleaned after an hour: keep what is shown
        except UserError as err:  # not a scored CSV (sent through the API): one sentence
            raise gr.Error(str(err), print_exception=False) from err
        return gr.Dataframe(table, datatype=preview_datatypes(table), column_widths=preview_widths(table)) if table is not None else gr.skip()

    gr.on([sort.change, show.change], on_view, [result, image_col, sort, show, model], [preview],
          concurrency_id="batch-preview", concurrency_limit=settings.model_jobs)

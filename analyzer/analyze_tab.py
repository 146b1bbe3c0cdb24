"""Analyze tab: wiring only; the work is in analyzer.analyze_view (images) and analyzer.video_view (videos)."""

from __future__ import annotations

import gradio as gr

from clip_arena.analyzer.analyze_view import run_tab
from clip_arena.analyzer import model_notice
from clip_arena.analyzer.widgets import error_text, image_inputs, model_picker, video_input
from clip_arena.core import background
from clip_arena.core.errors import UserError
from clip_arena.core.gpu import gpu
from clip_arena.core.settings import Settings


def build(settings: Settings) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image, url = image_inputs("an", "https://example.com/ad.jpg or .../ad.mp4")
            video = video_input("an")
        with gr.Column(scale=1):
            text = gr.Textbox(label="Text (ad copy, caption, listing)", lines=5, elem_id="an-text",
                              placeholder="Summer sale! 30% off all sneakers. Shop now.")
            brand = gr.Textbox(label="Brand (video: when its name is first on screen)", elem_id="an-brand",
                               placeholder="Acme")
            model = model_picker(settings, "CLIP model (alignment, labels)", "an-model")
            button = gr.Button("Analyze", variant="primary", elem_id="an-run")
    model_notice.place(settings, model, "an")
    summary = gr.Markdown(elem_id="an-summary")
    with gr.Column(visible=False, elem_id="an-video-out") as video_out:
        rubric = gr.HTML(elem_id="an-rubric-box")
        timeline = gr.Plot(label="Alignment over time", elem_id="an-timeline")
        gallery = gr.Gallery(label="Keyframes (one per shot)", columns=6, height="auto",
                             object_fit="contain", elem_id="an-keyframes")
    cards = gr.HTML(elem_id="an-cards")
    with gr.Row() as image_out:
        palette = gr.Plot(label="Palette", elem_id="an-palette")
        labels = gr.Plot(label="Labels", elem_id="an-labels")
    download = gr.File(label="Full report (JSON)", elem_id="an-json")

    # One creative at a time: a new image replaces the video, and a new video the image.
    image.upload(lambda: None, None, video, queue=False)
    video.upload(lambda: None, None, image, queue=False)

    @gpu  # ZeroGPU: a GPU for the length of this call (no-op elsewhere)
    def on_analyze(image_file, video_file, image_url, copy, brand_name, spec, progress=gr.Progress()):
        try:
            # On a low-priority thread: a vote in the arena gets the processor first (core.background).
            out = background.run("analyze", settings.model_jobs, run_tab, image_file, video_file, image_url, copy,
                                 brand_name, spec, settings, image.GRADIO_CACHE,
                                 lambda fraction, desc: progress(fraction, desc=desc))
        except UserError as err:  # say it in the summary and clear the last report
            return ("", None, None, None, error_text(str(err)), None, None, "", gr.update(visible=False),
                    gr.update(visible=True))
        return (out.cards, out.palette, out.labels, out.download, out.summary, out.gallery, out.timeline, out.rubric,
                gr.update(visible=out.video), gr.update(visible=not out.video))

    gr.on([button.click, url.submit], on_analyze, inputs=[image, video, url, text, brand, model],
          outputs=[cards, palette, labels, download, summary, gallery, timeline, rubric, video_out, image_out],
          concurrency_id="analyze", concurrency_limit=settings.model_jobs)

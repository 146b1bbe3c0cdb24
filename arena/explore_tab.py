"""Explore tab: wiring only; the work is in arena.explore_view and index.explore."""

from __future__ import annotations

import gradio as gr

from clip_arena.arena.explore_view import details_markdown, gallery_items, run_explore, summary_line
from clip_arena.core.errors import UserError
from clip_arena.core.hosting import OWNERS_ONLY, is_owner
from clip_arena.core.settings import Settings
from clip_arena.index.search import Searcher


def build(searcher: Searcher, settings: Settings, tab: gr.Tab) -> None:
    """The Explore tab. Method names fill in only when the tab is shown, as on the Results tab:
    they must not reach the page while the Arena tab is in use."""
    methods = list(searcher.indices)
    gr.Markdown("Search the catalog by a text or an image with each method, side by side. Not blind: "
                "this is for looking at what the methods retrieve.")
    with gr.Row():
        with gr.Column(scale=2):
            text = gr.Textbox(label="Text query", placeholder="a smiling face", elem_id="explore-text")
            chosen = gr.CheckboxGroup([], label="Methods", elem_id="explore-methods")
        with gr.Column(scale=1):
            image = gr.Image(label="...or an image query (upload, paste or drop)", type="filepath", height=160,
                             sources=["upload", "clipboard"], elem_id="explore-image",
                             elem_classes=["image-drop"])  # a CSV dropped here is said (analyzer/widgets.py)
        with gr.Column(scale=1):
            k = gr.Slider(1, 24, value=8, step=1, label="Results per method", elem_id="explore-k")
            button = gr.Button("Search", variant="primary", elem_id="explore-run")
    summary = gr.Markdown(elem_id="explore-summary")
    hits_state = gr.State({})
    galleries = {}
    with gr.Row():
        for i, method in enumerate(methods):
            with gr.Column():
                galleries[method] = gr.Gallery(label=f"method {i + 1}", columns=4, height=420, object_fit="contain",
                                               allow_preview=True, elem_id=f"explore-gallery-{i}")
    details = gr.Markdown(elem_id="explore-details")

    def on_show(picked, request: gr.Request):
        if not is_owner(settings, request):  # one sentence, and no method name
            return [gr.update(choices=[], value=[]), OWNERS_ONLY] + [gr.update() for _ in methods]
        return [gr.update(choices=methods, value=picked or methods), gr.skip()] + [gr.update(label=m) for m in methods]

    tab.select(on_show, [chosen], [chosen, summary] + [galleries[m] for m in methods])

    def on_search(query, image_file, picked, count, request: gr.Request):
        if not is_owner(settings, request):
            raise gr.Error(OWNERS_ONLY, print_exception=False)
        try:
            hits = run_explore(searcher, query, image_file, picked, count, settings)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from err
        shown = [gallery_items(searcher, hits[m], settings.catalog_limits()) if m in hits else [] for m in methods]
        return [summary_line(query, hits), hits, ""] + shown

    gr.on([button.click, text.submit], on_search, inputs=[text, image, chosen, k],
          outputs=[summary, hits_state, details] + [galleries[m] for m in methods])

    for method, gallery in galleries.items():
        def on_select(hits, evt: gr.SelectData, request: gr.Request, method=method):
            if not is_owner(settings, request):
                return ""
            found = hits.get(method) or []
            if evt.index is None or not 0 <= evt.index < len(found):
                return ""
            return details_markdown(searcher, method, evt.index + 1, found[evt.index])

        gallery.select(on_select, [hits_state], [details])

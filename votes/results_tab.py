"""Results tab: wiring only; the work is in votes.results_view. Refreshes every few seconds."""

from __future__ import annotations

import gradio as gr

from votes.results_view import export_files, results


def build(store, catalog, tab: gr.Tab, other_tabs: list[gr.Tab]) -> None:
    """The Results tab. It fills in (and refreshes) only while shown: method names must not reach
    the page while the Arena tab is in use."""
    with gr.Row():
        pair = gr.Dropdown(label="Pair of methods", choices=[], elem_id="results-pair", scale=2)
        refresh = gr.Button("Refresh", elem_id="results-refresh", scale=1)
        export = gr.Button("Export votes (CSV) and summary (JSON)", elem_id="results-export", scale=2)
    verdict = gr.Markdown(elem_id="results-verdict")
    details = gr.Markdown(elem_id="results-details")
    with gr.Row():
        outcomes, cumulative = gr.Plot(elem_id="results-outcomes"), gr.Plot(elem_id="results-cumulative")
    with gr.Row():
        forest, position = gr.Plot(elem_id="results-forest"), gr.Plot(elem_id="results-position")
    files = gr.File(label="Exports", file_count="multiple", elem_id="results-files")
    summary_state = gr.State(None)

    def update(chosen):
        r = results(store, catalog, chosen)
        return (gr.update(choices=r["pairs"], value=r["pair"]), r["verdict"], r["details"], *r["figures"],
                r["summary"])

    outputs = [pair, verdict, details, outcomes, cumulative, forest, position, summary_state]
    refresh.click(update, [pair], outputs)
    pair.input(update, [pair], outputs)
    timer = gr.Timer(10, active=False)
    tab.select(update, [pair], outputs).then(lambda: gr.Timer(active=True), None, [timer])
    for other in other_tabs:
        other.select(lambda: gr.Timer(active=False), None, [timer])
    timer.tick(update, [pair], outputs, show_progress="hidden")
    export.click(lambda s: list(export_files(store, s or results(store, catalog, None)["summary"])),
                 [summary_state], [files])

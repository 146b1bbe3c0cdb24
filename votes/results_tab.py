"""Results tab: wiring only; the work is in votes.results_view. Refreshes every few seconds."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from clip_arena.core.hosting import OWNERS_ONLY, is_owner, signed_in_name
from clip_arena.votes.results_view import ANNOTATOR_HEADERS, LEADERBOARD_HEADERS, export_files, results


def build(store, catalog, tab: gr.Tab, other_tabs: list[gr.Tab], settings, on_export=None,
          fingerprint: str | None = None) -> None:
    """The Results tab. It fills in (and refreshes) only while shown: method names must not reach
    the page while the Arena tab is in use. Where annotators sign in or the app is hosted, only
    owners get anything from it (core.hosting.is_owner, checked on every call; others read one
    sentence: Gradio cannot hide a tab per visitor); `on_export(name)`
    is told who exported, whose earlier rounds are then no longer blind to them. `fingerprint`: the
    served catalog's (the arena's, votes.fingerprints): votes cast on another catalog stay apart."""
    with gr.Row():
        pair = gr.Dropdown(label="Pair of methods", choices=[], elem_id="results-pair", scale=2)
        refresh = gr.Button("Refresh", elem_id="results-refresh", scale=1)
        export = gr.Button("Export votes (CSV) and summary (JSON)", elem_id="results-export", scale=2)
    # Right under the button that makes them: the files and what they hold (further down, nobody sees them).
    files = gr.File(label="Exports", file_count="multiple", visible=False, elem_id="results-files")
    verdict = gr.Markdown(elem_id="results-verdict")
    leaderboard = gr.Dataframe(headers=LEADERBOARD_HEADERS, label="Leaderboard (Bradley-Terry, intervals from a "
                               "bootstrap over queries)", interactive=False, elem_id="results-leaderboard")
    details = gr.Markdown(elem_id="results-details")
    with gr.Row():
        outcomes, cumulative = gr.Plot(elem_id="results-outcomes"), gr.Plot(elem_id="results-cumulative")
    with gr.Row():
        forest, position = gr.Plot(elem_id="results-forest"), gr.Plot(elem_id="results-position")
    annotators = gr.Dataframe(headers=ANNOTATOR_HEADERS, label="Annotators", interactive=False,
                              elem_id="results-annotators")
    exclude = gr.CheckboxGroup(label="Leave these annotators out of the verdict", choices=[],
                               elem_id="results-exclude")
    summary_state = gr.State(None)

    def update(chosen, excluded, request: gr.Request):
        if not is_owner(settings, request):
            return (gr.update(choices=[], value=None), OWNERS_ONLY, pd.DataFrame(columns=LEADERBOARD_HEADERS), "",
                    None, None, None, None, pd.DataFrame(columns=ANNOTATOR_HEADERS), gr.update(choices=[], value=[]),
                    None)
        r = results(store, catalog, chosen, excluded, fingerprint)
        kept = [a for a in (excluded or []) if a in r["annotator_names"]]
        return (gr.update(choices=r["pairs"], value=r["pair"]), r["verdict"],
                pd.DataFrame(r["leaderboard"], columns=LEADERBOARD_HEADERS), r["details"], *r["figures"],
                pd.DataFrame(r["annotators"], columns=ANNOTATOR_HEADERS),
                gr.update(choices=r["annotator_names"], value=kept), r["summary"])

    inputs = [pair, exclude]
    outputs = [pair, verdict, leaderboard, details, outcomes, cumulative, forest, position, annotators, exclude,
               summary_state]
    refresh.click(update, inputs, outputs, api_name="results_refresh")
    pair.input(update, inputs, outputs)
    exclude.input(update, inputs, outputs)
    timer = gr.Timer(10, active=False)
    tab.select(update, inputs, outputs).then(lambda: gr.Timer(active=True), None, [timer])
    for other in other_tabs:
        other.select(lambda: gr.Timer(active=False), None, [timer])
    timer.tick(update, inputs, outputs, show_progress="hidden")
    def on_export_click(summary, excluded, request: gr.Request):
        if not is_owner(settings, request):
            raise gr.Error(OWNERS_ONLY, print_exception=False)
        paths = list(export_files(store, summary or results(store, catalog, None, excluded, fingerprint)["summary"]))
        if on_export is not None:
            on_export(signed_in_name(request))
        n = len(store.votes())
        gr.Info(f"Exported {n} vote{'s' if n != 1 else ''} (votes.csv, undone ones too) and the summary "
                "(summary.json): download them under the Export button.")
        return gr.update(value=paths, visible=True, label=f"Exports: {n} vote{'s' if n != 1 else ''} and the summary")

    export.click(on_export_click, [summary_state, exclude], [files], api_name="results_export")

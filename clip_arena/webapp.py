"""The CLIP Arena web app: its tabs built over the configured catalog, models and vote store.
`clip-arena serve` and the repository's app.py (the Hugging Face Space's entry) launch it."""

from __future__ import annotations

import sys

import gradio as gr

from clip_arena.core.settings import Settings

THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def open_strict(settings: Settings):
    """The arena over the configured catalog and vote store; raises UserError when it cannot run."""
    import sqlite3

    from clip_arena.arena.session import Arena
    from clip_arena.core.errors import UserError
    from clip_arena.index.catalog import read_catalog
    from clip_arena.index.search import Searcher
    from clip_arena.votes.store import VoteStore

    catalog = read_catalog(settings.catalog)
    try:
        store = VoteStore(settings.votes)
    except (OSError, sqlite3.Error) as err:
        raise UserError(f"Cannot open the votes file {settings.votes}: {err}.") from err
    target = keep_votes(settings, store)
    arena = Arena(Searcher.open(catalog), store, gold_share=settings.gold_share,
                  max_votes_per_hour=settings.max_votes_per_hour, min_display_ms=settings.min_display_ms)
    arena.target = target
    return arena


def keep_votes(settings: Settings, store):
    """The durable vote target, when one is configured: what it holds is merged into the store
    first, then every vote is appended to this replica's log and pushed (votes/targets.py)."""
    from pathlib import Path

    from clip_arena.votes.targets import open_target, restore

    if not settings.vote_target:
        return None
    staging = Path(str(settings.votes) + ".log")  # beside the SQLite file, on local disk
    target = open_target(settings.vote_target, staging, settings.push_minutes)
    restored = restore(store, target)
    print(f"Votes restored from {target.describe()}: {restored['added']} added, {restored['undone']} marked undone "
          f"({restored['files']} files); {restored['to_push']} local votes to push.", flush=True)
    for line in restored["skipped"][:20]:  # nothing the target holds stops the start: said, and left out
        print(f"  skipped {line}", flush=True)
    if len(restored["skipped"]) > 20:
        print(f"  ... and {len(restored['skipped']) - 20} more skipped", flush=True)
    store.listeners.append(target.log)
    target.start()
    if restored["to_push"]:
        target.push()
    return target


def open_arena(settings: Settings):
    """The arena over the configured catalog, or None (with the reason) when it cannot run."""
    from clip_arena.core.errors import UserError

    try:
        return open_strict(settings), None
    except UserError as err:
        return None, str(err)


def build_app(settings: Settings, arena=None) -> gr.Blocks:
    """The app; `arena` when the caller has opened it already (serve checks it before launching)."""
    from clip_arena.core.plot_imports import import_plotting

    import_plotting()  # here, in the main thread: first draws in two request threads can deadlock
    from clip_arena.analyzer import analyze_tab, batch_tab, similarity_tab
    from clip_arena.analyzer.content.service import effectiveness_predictor
    from clip_arena.arena import explore_tab
    from clip_arena.arena import tab as arena_tab
    from clip_arena.core.hosting import EXPLORE_OFF, explore_enabled, identity, is_hosted, storage_notice
    from clip_arena.votes import results_tab

    arena, why_not = (arena, None) if arena is not None else open_arena(settings)
    hosted = is_hosted(settings)
    target = getattr(arena, "target", None)
    if settings.effectiveness_model:
        effectiveness_predictor(settings.effectiveness_model)  # a bad file stops the launch, said clearly
    # Uploads and results are deleted from the temp folder once they are upload_max_age_s old.
    age = max(60, settings.upload_max_age_s)
    with gr.Blocks(title="CLIP Arena", analytics_enabled=False, delete_cache=(max(60, age // 4), age)) as demo:
        gr.Markdown("# CLIP Arena\nCompare, score and analyse CLIP-style image-text models.")
        if arena is not None and (hosted or target is not None):
            # Where votes are kept, how much a restart can lose and when the last push was: refreshed.
            notice = gr.Markdown(storage_notice(target, hosted), elem_id="vote-storage")
            gr.Timer(30).tick(lambda: storage_notice(target, hosted), None, notice, api_visibility="private",
                              queue=False)
        with gr.Tab("Arena", id="arena") as arena_tab_ui:
            if arena is not None:
                arena_tab.build(arena, identity=identity(settings), limits=settings.catalog_limits())
            else:
                gr.Markdown(f"The arena is not available: {why_not}", elem_id="arena-unavailable")
        with gr.Tab("Results", id="results") as results_tab_ui:
            results_slot = gr.Column()
        with gr.Tab("Explore", id="explore") as explore_tab_ui:
            if arena is not None and explore_enabled(settings):
                explore_tab.build(arena.searcher, settings, explore_tab_ui)
            elif arena is not None:
                gr.Markdown(EXPLORE_OFF, elem_id="explore-off")
            else:
                gr.Markdown(f"Explore is not available: {why_not}", elem_id="explore-unavailable")
        with gr.Tab("Similarity", id="similarity") as similarity_tab_ui:
            similarity_tab.build(settings)
        with gr.Tab("Analyze", id="analyze") as analyze_tab_ui:
            analyze_tab.build(settings)
        with gr.Tab("Batch CSV", id="batch") as batch_tab_ui:
            batch_tab.build(settings)
        with results_slot:
            if arena is not None:
                results_tab.build(arena.store, arena.searcher.catalog, results_tab_ui,
                                  [arena_tab_ui, explore_tab_ui, similarity_tab_ui, analyze_tab_ui, batch_tab_ui],
                                  settings, on_export=arena.note_export, fingerprint=arena.fingerprint)
            else:
                gr.Markdown(f"No results: {why_not}")
    return demo


def warm_up(settings: Settings) -> None:
    """Load the configured model in the background (the port answers at once; the photo tabs say
    "loading" until it is ready), then the analysis tiers, so the first click does not wait."""
    import threading

    from clip_arena.models.fallback import outcome_line, preload_photo_model

    loading = preload_photo_model(settings)

    def _load():
        try:
            loading.exception()  # waits for the model
            # serve said "loading in the background": now which model scores photos, fallback included
            print(outcome_line(settings, loading), flush=True)
            # The offline analysis tiers import OpenCV, scikit-learn and the OCR session on first use.
            from PIL import Image

            from clip_arena.analyzer.content.report import analyze

            analyze(Image.new("RGB", (64, 64), "white"), "warm up", settings,
                    only={"image_properties", "ocr", "sentiment", "text_properties"})
        except Exception:  # noqa: BLE001 - the tab reports the error when the model is used
            pass

    threading.Thread(target=_load, daemon=True, name="warm-up").start()


def launch(settings: Settings, arena=None) -> None:
    from clip_arena.analyzer.widgets import IMAGE_DROP_JS
    from clip_arena.arena.tab import KEYBOARD_JS
    from clip_arena.core.auth import Users

    auth = Users.from_settings(settings.auth, settings.users_file)
    from clip_arena.models.live import active, install_sighup

    if active(settings) is not None:
        install_sighup(active(settings))  # `kill -HUP PID` reloads the models file
    warm_up(settings)  # models load in the background: nothing below waits for them
    demo = build_app(settings, arena)
    if getattr(arena, "target", None) is not None:
        # SIGTERM (a Space restarting) exits through Python, so the vote target's last push runs (atexit).
        import signal

        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # No allowed_paths: the browser gets catalog images one by one, by catalog row (arena/images.py),
    # and nothing else from the catalog's folder (its Parquet, FAISS files, a votes.db).
    # Model work (batch, analyze, similarity) runs in its own bounded concurrency groups (see the
    # tabs); the queue turns new events away past queue_size instead of growing without end.
    # Hosted, smaller uploads; Finish ends an annotator's session, never the server.
    from starlette.middleware import Middleware

    from clip_arena.core.hosting import behind_proxy, max_upload
    from clip_arena.core.login_guard import LoginGuard

    # quiet: Gradio's own lines include "To create a public link, set `share=True` in `launch()`", a
    # hint no user of this command can follow; the app says when it answers, then blocks as Gradio would.
    demo.queue(max_size=settings.queue_size).launch(
        quiet=True, prevent_thread_lock=True,
        server_name=settings.host, server_port=settings.port, auth=auth.verify if auth else None, theme=THEME,
        head=KEYBOARD_JS + IMAGE_DROP_JS,
        max_file_size=max_upload(settings), footer_links=["api", "settings"], show_error=True,
        # Gradio's traffic monitor shows every event's timing to anyone signed in: off.
        enable_monitoring=False,
        # Failed sign-ins are limited per client (core.login_guard); the checks run off the event loop.
        app_kwargs={"middleware": [Middleware(LoginGuard, behind_proxy=behind_proxy())]},
    )
    print(f"ready: {demo.local_url} (Ctrl+C stops it)", flush=True)
    demo.block_thread()


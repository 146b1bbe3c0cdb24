"""CLIP Arena web app. `python app.py` serves the bundled demo; Hugging Face Spaces runs this file."""

from __future__ import annotations

import sys

import gradio as gr

from core.settings import Settings

THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
MAX_UPLOAD = "50mb"


def build_app(settings: Settings) -> gr.Blocks:
    from analyzer import similarity_tab

    with gr.Blocks(title="CLIP Arena", analytics_enabled=False) as demo:
        gr.Markdown("# CLIP Arena\nCompare, score and analyse CLIP-style image-text models.")
        with gr.Tab("Similarity", id="similarity"):
            similarity_tab.build(settings)
    return demo


def warm_up(settings: Settings) -> None:
    """Load the default model in the background so the first click does not wait for it."""
    import threading

    from models import get_encoder

    def _load():
        try:
            get_encoder(settings.model, settings.device, settings.precision)
        except Exception:  # noqa: BLE001 - the tab reports the error when the model is used
            pass

    threading.Thread(target=_load, daemon=True, name="warm-up").start()


def launch(settings: Settings) -> None:
    demo = build_app(settings)
    warm_up(settings)
    auth = tuple(settings.auth.split(":", 1)) if settings.auth else None
    demo.queue().launch(
        server_name=settings.host, server_port=settings.port, auth=auth, theme=THEME,
        max_file_size=MAX_UPLOAD, footer_links=["api", "settings"], show_error=True,
    )


if __name__ == "__main__":
    from cli.main import main

    sys.exit(main(["serve", *sys.argv[1:]]))

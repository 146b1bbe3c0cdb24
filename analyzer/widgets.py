"""Gradio widgets more than one tab builds the same way."""

from __future__ import annotations

import re

import gradio as gr

from clip_arena.analyzer.model_choice import browser_models, default_choice
from clip_arena.core.settings import Settings


def model_picker(settings: Settings, label: str, elem_id: str, fusions: bool = False) -> gr.Dropdown:
    """Only the configured models: the server checks the choice again (analyzer.model_choice). With a
    models file, its NAMEs as they are when the page loads (a reload changes them without a restart)."""
    from clip_arena.models.live import active

    live = active(settings) is not None
    # Live: Gradio would check a choice against the NAMEs of the start; the server checks it against
    # the live set instead (model_choice.choose), so a NAME added by a reload is accepted.
    picker = gr.Dropdown(choices=browser_models(settings, fusions), value=default_choice(settings, fusions),
                         allow_custom_value=live, label=label, elem_id=elem_id)
    if live:
        gr.on(None, lambda: gr.Dropdown(choices=browser_models(settings, fusions),
                                        value=default_choice(settings, fusions)),
              None, [picker], api_visibility="private", queue=False, show_progress="hidden")
        # A page open across a reload: the list is read again each time the picker is opened (its
        # choice is kept; one the reload removed is refused with why, by models.live.Snapshot.pick).
        picker.focus(lambda: gr.Dropdown(choices=browser_models(settings, fusions)), None, [picker],
                     api_visibility="private", queue=False, show_progress="hidden")
    return picker


class ImageInput(gr.Image):
    """gr.Image that hands the uploaded file's path on without opening it, so a file that is not an
    image reaches the image policy, which says so in one sentence (Gradio's own preprocessing
    would fail with its internal 'Could not preprocess input component' text)."""

    is_template = True  # the front end draws it as the plain Image component

    def preprocess(self, payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return payload.path
        return super().preprocess(payload)


IMAGE_DROP_CLASS = "image-drop"
# A CSV dropped on an image box: Gradio refuses it with "Only image/* allowed" or, over a shown image,
# not at all. Said where the user looks, with where a CSV goes instead (added to the page's head).
IMAGE_DROP_JS = """
<style>.image-drop-hint { margin-top: 6px; padding: 6px 10px; border-radius: 6px; background: #fff4e5;
  color: #7a4b00; font-size: 0.9em; }</style>
<script>
document.addEventListener("drop", (event) => {
  const box = event.target.closest && event.target.closest(".image-drop");
  if (!box) return;
  const files = Array.from((event.dataTransfer && event.dataTransfer.files) || []);
  const tables = files.filter((f) => /\\.(csv|tsv)$/i.test(f.name) || /csv|tab-separated/i.test(f.type));
  const videos = files.filter((f) => /\\.(mp4|mov|m4v|webm|mkv)$/i.test(f.name) || /^video\\//i.test(f.type));
  let hint = box.parentElement.querySelector(":scope > .image-drop-hint");
  if (!tables.length && !videos.length) { if (hint) hint.remove(); return; }
  event.preventDefault();
  event.stopPropagation();  // capture phase: Gradio's own drop handler never sees it
  event.target.dispatchEvent(new DragEvent("dragleave", {bubbles: true}));  // ends the box's drop highlight
  if (!hint) {
    hint = document.createElement("div");
    hint.className = "image-drop-hint";
    hint.setAttribute("role", "alert");
    box.after(hint);
  }
  hint.textContent = tables.length ? tables[0].name + " is a table: this box takes an image (PNG, JPEG, WebP, ...). " +
    "To score a CSV of images and captions, open the Batch CSV tab." : videos[0].name + " is a video: this box " +
    "takes an image. On the Analyze tab, drop it on the video box.";
}, true);
</script>
"""


def image_inputs(elem_prefix: str, placeholder: str) -> tuple[gr.Image, gr.Textbox]:
    """An image to upload, paste or drop, and a URL box for one that lives on the web."""
    image = ImageInput(label="Image (upload, paste or drop)", type="filepath", sources=["upload", "clipboard"],
                       elem_id=f"{elem_prefix}-image", elem_classes=[IMAGE_DROP_CLASS])
    url = gr.Textbox(label="...or image URL", placeholder=placeholder, elem_id=f"{elem_prefix}-url")
    return image, url


def video_input(elem_prefix: str) -> gr.Video:
    """A video to upload or drop, passed on as the uploaded file's path (format None: never
    converted; audio kept, for the loudness)."""
    return gr.Video(label="...or a video (upload or drop: mp4, mov, webm, mkv)", sources=["upload"], format=None,
                    include_audio=True, elem_id=f"{elem_prefix}-video")


def error_text(message: str) -> str:
    """What a tab shows in its summary when a run fails: one plain sentence."""
    return f"**Error:** {code_specs(message[:1].upper() + message[1:])}"


# A model spec in a sentence: Markdown would make CONFIG.json@WEIGHTS.safetensors a mail link and
# laion2b_s34b_b79k italics. Trailing punctuation stays outside the code span.
_SPEC = re.compile(r"(?<![`\w])(?:open_clip|hf|demo):[^\s`]*[^\s`.,;:!?)'\"]")


def code_specs(text: str) -> str:
    """`text` for Markdown, each model spec in it shown as code (as typed, never a link)."""
    return _SPEC.sub(lambda m: f"`{m.group(0)}`", text)

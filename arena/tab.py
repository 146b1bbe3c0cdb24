"""Arena tab: wiring only. Keys are mapped to the buttons by KEYBOARD_JS (see app.py's head)."""

from __future__ import annotations

import gradio as gr

from arena.session import Arena, StaleRound
from arena.view import KEY_LEGEND, gallery, query_image, status_line, summary_text
from core.errors import UserError

ACTIONS = ("left", "right", "tie", "both_bad", "skip", "undo", "finish")
LABELS = {"left": "A · Left better", "right": "B · Right better", "tie": "T · Tie", "both_bad": "X · Both bad",
          "skip": "N · Skip", "undo": "U · Undo", "finish": "Q · Finish"}

KEYBOARD_JS = """
<script>
document.addEventListener('keydown', (e) => {
  if (e.repeat || e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) return;
  const t = e.target, tag = (t && t.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || tag === 'select' || (t && t.isContentEditable)) return;
  const root = document.getElementById('arena-root');
  if (!root || root.offsetParent === null) return;  // only while the Arena tab is shown
  const map = {a: 'left', ArrowLeft: 'left', b: 'right', ArrowRight: 'right', t: 'tie', ArrowDown: 'tie',
               x: 'both_bad', n: 'skip', ' ': 'skip', u: 'undo', q: 'finish'};
  const action = map[e.key];
  if (!action) return;
  const button = document.getElementById('arena-btn-' + action);
  if (!button || button.disabled) return;
  e.preventDefault();
  button.click();
});
</script>
"""


def build(arena: Arena, login_name: bool = False) -> None:
    state = gr.State(None)
    with gr.Column(elem_id="arena-root"):
        with gr.Row():
            name = gr.Textbox(label="Your name", placeholder="annotator name", scale=2, elem_id="arena-name")
            categories = ["all"] + arena.maker.category_choices()
            category = gr.Dropdown(categories, value="all", label="Category", scale=1, elem_id="arena-category")
            reveal = gr.Checkbox(value=True, label="Reveal methods after each vote", scale=1, elem_id="arena-reveal")
            start = gr.Button("Start", variant="primary", scale=1, elem_id="arena-start")
        status = gr.Markdown("Enter your name and press **Start**.", elem_id="arena-status")
        round_id = gr.Textbox(visible=False, elem_id="arena-round-id")
        query = gr.Image(label="Query", type="filepath", height=260, interactive=False, elem_id="arena-query")
        with gr.Row():
            left = gr.Gallery(label="Left", columns=arena.maker.k, height=240, allow_preview=False,
                              elem_id="arena-left")
            right = gr.Gallery(label="Right", columns=arena.maker.k, height=240, allow_preview=False,
                               elem_id="arena-right")
        with gr.Row():
            buttons = {a: gr.Button(LABELS[a], elem_id=f"arena-btn-{a}",
                                    variant="secondary" if a in ("skip", "undo", "finish") else "primary")
                       for a in ACTIONS}
        gr.Markdown(KEY_LEGEND)

    outputs = [state, status, round_id, query, left, right]

    def show(st, r, show_reveal):
        return st, status_line(st, show_reveal), r.round_id, query_image(arena, r), gallery(arena, r.rows_left), \
            gallery(arena, r.rows_right)

    def on_start(annotator, cat, show_reveal, request: gr.Request):
        annotator = (getattr(request, "username", None) if login_name else None) or annotator
        try:
            st = arena.start(annotator, request.session_hash if request else None, None if cat == "all" else cat)
            return show(st, arena.next_round(st), show_reveal)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from err

    start.click(on_start, [name, category, reveal], outputs)

    def make_handler(action):
        def handler(st, shown_round_id, show_reveal):
            try:
                if st is None:
                    raise UserError("Enter your name and press Start first.")
                if action == "finish":
                    text = summary_text(arena.summary(st))
                    return None, text, "", None, [], []
                if action == "undo":
                    r = arena.undo(st)
                    if r is None:
                        gr.Info("Nothing to undo in this session.")
                        return show(st, st.current, show_reveal)
                    return show(st, r, show_reveal)
                if action == "skip":
                    return show(st, arena.skip(st, shown_round_id), show_reveal)
                return show(st, arena.vote(st, action, shown_round_id), show_reveal)
            except StaleRound:
                return show(st, st.current, show_reveal)  # a double press: ignore the second
            except UserError as err:
                raise gr.Error(str(err), print_exception=False) from err

        return handler

    for action, button in buttons.items():
        # All arena actions share one queue slot: a vote and an undo never interleave, and each
        # takes milliseconds, so annotators do not notice the wait.
        button.click(make_handler(action), [state, round_id, reveal], outputs, concurrency_id="arena",
                     concurrency_limit=1, trigger_mode="once")

"""Arena tab: wiring only. Keys are mapped to the buttons by KEYBOARD_JS (in the page head, clip_arena/webapp.py)."""

from __future__ import annotations

import gradio as gr
from gradio.utils import get_upload_folder

from clip_arena.arena.images import CatalogImages
from clip_arena.arena.rounds import MethodsAgree
from clip_arena.arena.session import Arena, StaleRound
from clip_arena.arena.view import KEY_LEGEND, NOT_BLIND, WITHDRAWN, flash, gallery, query_image, reveal_flash, status_line, summary_text
from clip_arena.core.errors import UserError
from clip_arena.core.hosting import NOBODY, OAUTH, TYPED, annotator_name, voting_texts

ACTIONS = ("left", "right", "tie", "both_bad", "skip", "undo", "finish")
ROUND_ACTIONS = ACTIONS[:5]  # need a round on screen; undo and finish need a session
LABELS = {"left": "A · Left better", "right": "B · Right better", "tie": "T · Tie", "both_bad": "X · Both bad",
          "skip": "N · Skip", "undo": "U · Undo", "finish": "Q · Finish"}
# Arena actions take milliseconds and lock only their own session (SessionState.lock) and one
# SQLite transaction: many annotators vote side by side, in a group of their own so that model
# work in the other tabs never holds them up.
CONCURRENCY_ID, CONCURRENCY_LIMIT = "arena", 16
FLAGGED = ("That vote came less than {ms} ms after the round appeared: it is kept, flagged for review. "
           "Take a moment to look at both sides.")
GRID_HEIGHT = 490
NAME_KEY = "clip-arena-annotator"  # where the browser remembers the annotator's name

KEYBOARD_JS = """
<style>
#arena-buttons { flex-wrap: nowrap; gap: 6px; }
#arena-buttons button { min-width: 0; white-space: nowrap; padding-left: 6px; padding-right: 6px; }
#arena-query img { width: 100%; height: 100%; object-fit: contain; }
/* An enlarged result fills most of the window, not the small gallery box (Escape closes it). */
#arena-left .preview, #arena-right .preview { position: fixed; inset: 4vh 4vw; z-index: 1000; height: auto;
                                              width: auto;
                                              background: var(--background-fill-primary);
                                              box-shadow: 0 0 0 100vmax rgba(0, 0, 0, 0.6); }
#arena-query img, #arena-left img, #arena-right img { image-rendering: auto; }
#arena-message { position: fixed; top: 10px; right: 24px; z-index: 50; max-width: min(56vw, 720px);
                 width: auto; min-width: 0; }
#arena-message .html-container { padding: 0; }
.arena-flash { padding: 1px 10px; border-radius: 6px; font-size: 1rem; line-height: 1.5;
               background: var(--color-accent-soft); border: 1px solid var(--color-accent);
               animation: arena-fade 6s ease-in forwards; }
@keyframes arena-fade { 0%, 70% { opacity: 1; } 100% { opacity: 0; } }
</style>
<script>
(() => {
  const DEBOUNCE_MS = 350;  // a second press this soon after a new round is a bounce, not a vote
  const KEYS = {a: 'left', arrowleft: 'left', b: 'right', arrowright: 'right', t: 'tie', arrowdown: 'tie',
                x: 'both_bad', n: 'skip', ' ': 'skip', u: 'undo', q: 'finish'};
  let readyAt = 0, busyUntil = 0, lastText = null;
  // #arena-root's data-arena-ready says whether a key press would be taken now (tests wait on it).
  const mark = () => {
    const root = document.getElementById('arena-root'), now = performance.now();
    if (root) root.dataset.arenaReady = now >= readyAt && now >= busyUntil ? 'yes' : 'no';
  };
  const later = (ms) => { mark(); setTimeout(mark, ms + 5); };
  const statusText = () => {
    const s = document.getElementById('arena-status');
    return s ? (s.querySelector('.prose, .md') || s).textContent : null;
  };
  const watch = setInterval(() => {
    const s = document.getElementById('arena-status');
    if (!s) return;
    clearInterval(watch);
    lastText = statusText();
    mark();
    new MutationObserver(() => {
      const text = statusText();
      if (text === lastText) return;
      lastText = text;
      readyAt = performance.now() + DEBOUNCE_MS;
      busyUntil = 0;
      later(DEBOUNCE_MS);
    }).observe(s, {subtree: true, childList: true, characterData: true});
  }, 200);
  document.addEventListener('keydown', (e) => {
    if (e.repeat || e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) return;
    const t = e.target, tag = (t && t.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || (t && t.isContentEditable)) return;
    const root = document.getElementById('arena-root');
    if (!root || root.offsetParent === null) return;  // only while the Arena tab is shown
    if (root.querySelector('.preview')) return;  // an enlarged image has the keys (arrows, Escape)
    const action = KEYS[(e.key || '').toLowerCase()];  // lower case: Caps Lock on or off
    if (!action) return;
    const button = document.getElementById('arena-btn-' + action);
    if (!button || button.disabled) return;  // before Start, after Finish, after a reload
    e.preventDefault();
    const now = performance.now();
    if (now < readyAt || now < busyUntil) return;  // a bounce, or the last press still on its way
    busyUntil = now + 3000;  // until the page changes (or, if it does not, 3 s)
    later(3000);
    button.click();
  });
})();
</script>
"""


def build(arena: Arena, identity: str = TYPED, limits=None) -> None:
    """`identity` (core/hosting.py): how the annotator is named: Hugging Face login, the app's
    login, a typed name, or nobody may vote. `limits`: how catalog image URLs are fetched
    (Settings.catalog_limits)."""
    login_name = identity != TYPED
    texts = voting_texts(identity)
    images = CatalogImages(arena.searcher.catalog, get_upload_folder(), limits)
    state = gr.State(None)
    saved_name = gr.BrowserState("", storage_key=NAME_KEY, secret=NAME_KEY)  # a name, not a secret
    with gr.Column(elem_id="arena-root"):
        if identity == OAUTH:
            gr.LoginButton(elem_id="arena-login")
        with gr.Row(elem_id="arena-settings") as settings:  # hidden while a round is on screen: room for images
            name = gr.Textbox(label="Your name", placeholder="annotator name (Enter starts)", scale=2,
                              elem_id="arena-name", interactive=not login_name, info=texts.name_info)
            categories = ["all"] + arena.maker.category_choices()
            category = gr.Dropdown(categories, value="all", label="Category", scale=1, elem_id="arena-category")
            reveal = gr.Checkbox(value=True, label="Reveal methods after each vote", scale=1, elem_id="arena-reveal")
            start = gr.Button("Start", variant="primary", scale=1, elem_id="arena-start",
                              interactive=identity != NOBODY)
        status = gr.Markdown(texts.status, elem_id="arena-status")
        # The last vote's reveal and other notes float at the top right (CSS above), over the page's
        # empty corner: they never push the round, the buttons or the legend out of view.
        message = gr.HTML("", elem_id="arena-message")
        go_on = gr.Button("Continue with queries I judged", visible=False, elem_id="arena-continue", size="sm")
        round_id = gr.Textbox(visible=False, elem_id="arena-round-id")
        # Results in a grid of two columns a side: at 1280x800 each image is about 230 px wide, and
        # the buttons and the legend stay in view (tests/test_browser_arena_layout.py measures it).
        columns = 2 if arena.maker.k > 1 else 1
        with gr.Row(equal_height=True, elem_id="arena-round", visible=False) as round_row:  # shown with a round
            query = gr.Image(label="Query", type="filepath", height=GRID_HEIGHT, interactive=False, scale=2,
                             elem_id="arena-query", buttons=["fullscreen"])
            left = gr.Gallery(label="Left", columns=columns, height=GRID_HEIGHT, allow_preview=True, scale=5,
                              elem_id="arena-left", object_fit="contain")
            right = gr.Gallery(label="Right", columns=columns, height=GRID_HEIGHT, allow_preview=True, scale=5,
                               elem_id="arena-right", object_fit="contain")
        with gr.Row(elem_id="arena-buttons"):
            buttons = {a: gr.Button(LABELS[a], elem_id=f"arena-btn-{a}", interactive=False, min_width=0,
                                    variant="secondary" if a in ("skip", "undo", "finish") else "primary")
                       for a in ACTIONS}
        gr.Markdown(KEY_LEGEND, elem_id="arena-legend")

    outputs = [state, status, message, round_id, query, left, right, go_on, settings, round_row, *buttons.values()]

    def show(st, note=""):
        """Every output for the session's state: the round on screen, or none (finished, nothing left)."""
        r = st.current if st is not None else None
        enabled = {a: (r is not None if a in ROUND_ACTIONS else st is not None) for a in ACTIONS}
        return (st, status_line(arena, st), note, r.round_id if r else "",
                query_image(images, r) if r else None, gallery(images, r.rows_left) if r else [],
                gallery(images, r.rows_right) if r else [], gr.update(visible=bool(st and st.covered)),
                gr.update(visible=r is None), gr.update(visible=r is not None),
                *[gr.update(interactive=enabled[a]) for a in ACTIONS])

    nothing = tuple(gr.skip() for _ in outputs)

    def on_start(annotator, cat, request: gr.Request, profile=None):
        try:
            annotator = annotator_name(identity, annotator, getattr(request, "username", None), profile)
            st = arena.start(annotator, category=None if cat == "all" else cat)
        except UserError as err:
            gr.Warning(str(err))
            return nothing + (gr.skip(),)
        try:
            arena.next_round(st)
        except MethodsAgree:
            pass  # state.notice says so in the status line
        return show(st) + (st.annotator,)

    if identity == OAUTH:  # Gradio fills a gr.OAuthProfile parameter from the Hugging Face login
        def start_fn(annotator, cat, request: gr.Request, profile: gr.OAuthProfile | None):
            return on_start(annotator, cat, request, profile)
    else:
        def start_fn(annotator, cat, request: gr.Request):
            return on_start(annotator, cat, request)

    for trigger, api_name, visibility in ((start.click, "arena_start", "public"),
                                          (name.submit, "arena_start_enter", "undocumented")):
        trigger(start_fn, [name, category], outputs + [saved_name], concurrency_id=CONCURRENCY_ID,
                concurrency_limit=CONCURRENCY_LIMIT, api_name=api_name, api_visibility=visibility)
    root = gr.context.Context.root_block
    if root is not None and not login_name:
        root.load(lambda saved: saved or gr.skip(), [saved_name], [name], api_visibility="private")
    if root is not None and identity == OAUTH:
        def signed_in(profile: gr.OAuthProfile | None):
            """Once signed in, the name box shows the Hugging Face name that votes will carry."""
            if profile is None or not getattr(profile, "username", None):
                return gr.skip(), gr.skip()
            return profile.username, "Press **Start** to vote under your Hugging Face name."

        root.load(signed_in, None, [name, status], api_visibility="private")

    def make_handler(action):
        def handler(st, shown_round_id, show_reveal):
            if st is None:  # no session (a key before Start, a replayed request): nothing to do
                return nothing
            try:
                if action == "finish":
                    text = summary_text(arena.summary(st))
                    return (None, text, "", "", None, [], [], gr.update(visible=False), gr.update(visible=True),
                            gr.update(visible=False), *[gr.update(interactive=False) for _ in ACTIONS])
                if action == "undo":
                    again = arena.undo(st)
                    if again is None:
                        return show(st, flash("Nothing to undo in this session.", "info"))
                    return show(st, flash(WITHDRAWN if again.blind else f"{WITHDRAWN} {NOT_BLIND}", "undo"))
                if action == "skip":
                    arena.skip(st, shown_round_id)
                    return show(st)
                arena.vote(st, action, shown_round_id, reveal=bool(show_reveal))
                note = reveal_flash(st)
                if st.last_flagged:
                    note += flash(FLAGGED.format(ms=arena.min_display_ms), "info")
                return show(st, note)
            except StaleRound:
                return nothing  # a double press: the first one already moved on
            except MethodsAgree:
                return show(st)
            except UserError as err:
                raise gr.Error(str(err), print_exception=False) from err

        return handler

    def on_go_on(st):
        if st is None:
            return nothing
        try:
            arena.go_on(st)
        except MethodsAgree:
            pass
        return show(st)

    go_on.click(on_go_on, [state], outputs, concurrency_id=CONCURRENCY_ID, concurrency_limit=CONCURRENCY_LIMIT,
                trigger_mode="once", api_name="arena_continue")
    for action, button in buttons.items():
        button.click(make_handler(action), [state, round_id, reveal], outputs, concurrency_id=CONCURRENCY_ID,
                     concurrency_limit=CONCURRENCY_LIMIT, trigger_mode="once", api_name=f"arena_{action}")

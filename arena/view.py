"""What the Arena tab shows, as plain values: images, the status line, the reveal and the summary.
Nothing here names the current round's methods."""

from __future__ import annotations

import html
import re
from typing import Callable

from clip_arena.arena.rounds import Round
from clip_arena.arena.session import Arena, SessionState

KEY_LEGEND = ("**Keys** (Caps Lock or not): `A` or `←` left better · `B` or `→` right better · `T` or `↓` tie · "
              "`X` both bad · `N` or `Space` skip · `U` undo · `Q` finish. Click an image to enlarge it.")
CHOICE_WORDS = {"left": "Left better", "right": "Right better", "tie": "Tie", "both_bad": "Both bad"}
WITHDRAWN = "Vote withdrawn: the round is shown again."
NOT_BLIND = ("You saw this round's methods after your vote: a new vote on it is kept, marked as not blind, "
             "and left out of the verdict (as the Results tab and your session summary count).")


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def plain(text: str) -> str:
    """A name typed in the browser, shown as the letters typed: no Markdown, no HTML."""
    return _MARKDOWN.sub(r"\\\1", html.escape(str(text), quote=False))


def gallery(images: Callable[[int], str], rows: list[int]) -> list[tuple[str, str]]:
    """(image, rank) per result row; `images` turns a catalog row into what the page may load."""
    return [(images(r), f"{rank}") for rank, r in enumerate(rows, start=1)]


def query_image(images: Callable[[int], str], r: Round) -> str:
    return images(r.query_row)


def progress_text(arena: Arena, state: SessionState) -> str:
    voted, total = arena.progress(state)
    noun = "test queries" if arena.maker.has_test_split else "queries"
    where = f" in {state.category}" if state.category else ""
    return f"{voted} of {total} {noun}{where} voted."


def status_line(arena: Arena, state: SessionState) -> str:
    votes = f"{state.votes} vote{'s' if state.votes != 1 else ''}"
    if state.current is None and state.notice:
        return f"**{state.notice}** {plain(state.annotator)}: {votes} this session. {progress_text(arena, state)}"
    number = state.current.extra.get("number", state.rounds_shown) if state.current else state.rounds_shown
    return (f"Round {number}. **{plain(state.annotator)}**: {votes} this session. "
            f"{progress_text(arena, state)}")


def flash(text: str, kind: str = "reveal") -> str:
    """A message that fades out by itself (CSS in tab.CSS); each new one starts the fade again."""
    return f'<div class="arena-flash arena-flash-{kind}">{text}</div>' if text else ""


def reveal_flash(state: SessionState) -> str:
    last = state.last_reveal
    if not last:
        return ""
    return flash(f"Last round ({html.escape(CHOICE_WORDS[last['choice']])}): Left was "
                 f"<b>{html.escape(last['left'])}</b>, Right was <b>{html.escape(last['right'])}</b>.")


def summary_text(summary: dict) -> str:
    if not summary["votes"] and not summary.get("not_blind"):
        return f"Session finished for **{plain(summary['annotator'])}**: no votes recorded."
    choices = ", ".join(f"{CHOICE_WORDS[c].lower()} {n}" for c, n in summary["choices"].items())
    wins = ", ".join(f"{m} {n}" for m, n in sorted(summary["wins"].items(), key=lambda kv: -kv[1]))
    n = summary.get("not_blind", 0)
    apart = (f" {n} more vote{'s' if n != 1 else ''}, cast after you saw the methods, {'are' if n != 1 else 'is'} "
             "left out, as in the Results tab." if n else "")
    return (f"Session finished for **{plain(summary['annotator'])}**: {summary['votes']} vote{'s' if summary['votes'] != 1 else ''} ({choices}). "
            f"Wins: {wins}.{apart} Thank you! Press Start to go on.")

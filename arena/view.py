"""What the Arena tab shows, as plain values: images, rank labels, the reveal and the summary.
Nothing here names the current round's methods."""

from __future__ import annotations

from arena.rounds import Round
from arena.session import Arena, SessionState

KEY_LEGEND = ("**Keys:** `A` or `←` left better · `B` or `→` right better · `T` or `↓` tie · "
              "`X` both bad · `N` or `Space` skip · `U` undo · `Q` finish")
CHOICE_WORDS = {"left": "Left better", "right": "Right better", "tie": "Tie", "both_bad": "Both bad"}


def gallery(arena: Arena, rows: list[int]) -> list[tuple[str, str]]:
    catalog = arena.searcher.catalog
    uris = catalog.table.column("image_uri")
    return [(catalog.resolve_uri(uris[r].as_py()), f"{rank}") for rank, r in enumerate(rows, start=1)]


def query_image(arena: Arena, r: Round) -> str:
    catalog = arena.searcher.catalog
    return catalog.resolve_uri(catalog.table.column("image_uri")[r.query_row].as_py())


def status_line(state: SessionState, reveal: bool) -> str:
    parts = [f"Round {state.rounds_shown}. **{state.annotator}**: {state.votes} vote{'s' if state.votes != 1 else ''} "
             "this session."]
    if reveal and state.last_reveal:
        last = state.last_reveal
        parts.append(f"Last round ({CHOICE_WORDS[last['choice']]}): Left was **{last['left']}**, "
                     f"Right was **{last['right']}**.")
    return " ".join(parts)


def summary_text(summary: dict) -> str:
    if not summary["votes"]:
        return f"Session finished for **{summary['annotator']}**: no votes recorded."
    choices = ", ".join(f"{CHOICE_WORDS[c].lower()} {n}" for c, n in summary["choices"].items())
    wins = ", ".join(f"{m} {n}" for m, n in sorted(summary["wins"].items(), key=lambda kv: -kv[1]))
    return (f"Session finished for **{summary['annotator']}**: {summary['votes']} votes ({choices}). "
            f"Wins: {wins}. Thank you! Press Start to go on.")

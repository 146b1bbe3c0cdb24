"""Annotator names: what a typed name may be, and what a vote file may carry.

A name is shown in Results, written into every vote row and pushed to the vote target, so it has a
length (a 200,000-character name once made every later start fail reading the log back) and holds
no invisible character: "alice", "alice" + a zero-width space and "alice" after a byte-order mark
look the same on screen and would count as three annotators.
"""

from __future__ import annotations

import unicodedata

from clip_arena.core.errors import UserError

NAME_MAX = 64
# Control, format (zero-width, BOM, bidi overrides), surrogate, private-use and unassigned
# characters, and line or paragraph separators.
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an annotator's name, or None."""
    if not name.strip():
        return "the name is empty"
    if len(name) > NAME_MAX:
        return f"a name is at most {NAME_MAX} characters"
    bad = next((c for c in name if unicodedata.category(c) in INVISIBLE), None)
    if bad is not None:
        return f"a name cannot hold invisible or control characters (U+{ord(bad):04X})"
    return None


def clean_name(typed: str) -> str:
    """A typed name as it is stored: Unicode NFKC, surrounding and repeated spaces removed; raises
    UserError (one sentence) when it is empty, too long or holds an invisible character."""
    name = " ".join(unicodedata.normalize("NFKC", typed or "")[: NAME_MAX * 4].split())
    if not name:
        raise UserError("Enter your name to start.")
    problem = name_problem(name)
    if problem:
        raise UserError(f"That name cannot be used: {problem}.")
    return name

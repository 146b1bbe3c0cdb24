"""Text properties (offline): length, readability, emoji, punctuation, calls to action.

Readability is Flesch reading ease (higher is easier; 60-70 is plain English), 206.835 - 1.015 (words / sentences) - 84.6 (syllables / words),
and the Flesch-Kincaid grade, 0.39 (words / sentences) + 11.8 (syllables / words) - 15.59, with
syllables counted from pyphen's bundled hyphenation dictionary (no download; hyphenation points
slightly undercount syllables, so scores read a little easier than dictionary-based tools)."""

from __future__ import annotations

import re
from functools import lru_cache

from clip_arena.analyzer.content.calls_to_action import find_calls_to_action
from clip_arena.analyzer.content.component import Backend, Component, Context

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)")
VOWEL_GROUPS = re.compile(r"[aeiouy]+", re.IGNORECASE)


@lru_cache(maxsize=1)
def _hyphenator():
    import pyphen

    return pyphen.Pyphen(lang="en_US")


def syllables_pyphen(word: str) -> int:
    return max(1, len(_hyphenator().positions(word)) + 1)


def syllables_vowels(word: str) -> int:
    """Fallback without pyphen: vowel groups, a silent final e dropped."""
    count = len(VOWEL_GROUPS.findall(word))
    if word.lower().endswith("e") and not word.lower().endswith(("le", "ee")) and count > 1:
        count -= 1
    return max(1, count)


def _emoji(text: str) -> list[str]:
    import emoji

    return [e["emoji"] for e in emoji.emoji_list(text)]


def count_sentences(text: str) -> int:
    """Runs of . ! ? … before a space or the end, plus a trailing fragment without one."""
    text = text.strip()
    trailing = 0 if re.search(r"[.!?…][\W_]*$", text) else 1
    return max(1, len(SENTENCE_END.findall(text)) + trailing)


def properties(text: str, count_syllables) -> dict:
    words = WORD.findall(text)
    sentences = count_sentences(text)
    syllables = sum(count_syllables(w) for w in words)
    letters = [c for c in text if c.isalpha()]
    found_emoji = _emoji(text)
    out = {
        "characters": len(text),
        "words": len(words),
        "sentences": sentences,
        "syllables": syllables,
        "emoji": found_emoji,
        "emoji_count": len(found_emoji),
        "exclamation_marks": text.count("!"),
        "question_marks": text.count("?"),
        "uppercase_ratio": round(sum(c.isupper() for c in letters) / len(letters), 4) if letters else 0.0,
        "calls_to_action": find_calls_to_action(text),
    }
    out["has_call_to_action"] = bool(out["calls_to_action"])
    if words:
        wps, spw = len(words) / sentences, syllables / len(words)
        out["flesch_reading_ease"] = round(206.835 - 1.015 * wps - 84.6 * spw, 2)
        out["flesch_kincaid_grade"] = round(0.39 * wps + 11.8 * spw - 15.59, 2)
    return out


def component() -> Component:
    return Component(
        name="text_properties",
        needs_text=True,
        backends=(
            Backend("rules+pyphen", lambda ctx: properties(ctx.text, syllables_pyphen), modules=("pyphen", "emoji")),
            Backend("rules+vowel-groups", lambda ctx: properties(ctx.text, syllables_vowels), modules=("emoji",)),
        ),
    )

"""Calls to action: the phrases ad copy uses to ask for a click (shared by entities and text)."""

from __future__ import annotations

import re

PHRASES = (
    "buy now", "shop now", "order now", "book now", "call now", "apply now", "act now", "save now",
    "get it now", "download now", "join now", "sign up", "subscribe", "register", "learn more",
    "find out more", "read more", "discover", "get started", "start now", "start your free trial",
    "try it free", "try for free", "free trial", "add to cart", "add to bag", "click here", "tap here",
    "swipe up", "visit us", "contact us", "get yours", "claim your", "don't miss", "limited time",
    "while stocks last", "see more", "watch now", "listen now", "install now", "get the app",
    "request a demo", "get a quote", "donate", "reserve",
)
_PATTERN = re.compile(r"(?<![\w])(" + "|".join(re.escape(p).replace("'", "['’]") for p in
                                               sorted(PHRASES, key=len, reverse=True)) + r")(?![\w])",
                      re.IGNORECASE)


def find_calls_to_action(text: str) -> list[str]:
    """The calls to action in `text`, lower-cased, in order, each once."""
    seen: dict[str, None] = {}
    for match in _PATTERN.finditer(text or ""):
        seen.setdefault(match.group(1).lower().replace("’", "'"), None)
    return list(seen)

"""Entities in the text: people, organisations and places from a BERT NER model when it can be
loaded (field `named_entities`), and always the patterns ad copy is made of, found by rules
(field `patterns`: money, percentages, dates, URLs, e-mails, hashtags, mentions, calls to action)."""

from __future__ import annotations

import re

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.content.calls_to_action import find_calls_to_action
from clip_arena.analyzer.content.component import Backend, Component, Context

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_NUMBER = r"\d{1,3}(?:[,.\s]\d{3})*(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
PATTERNS = {
    "emails": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "urls": re.compile(r"\bhttps?://[^\s<>\"']+|\bwww\.[^\s<>\"']+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\."
                       r"(?:com|org|net|io|co|shop|store|app|dev|ai|eu|uk|de|fr)\b(?:/[^\s<>\"']*)?",
                       re.IGNORECASE),
    "money": re.compile(rf"[$€£¥₹]\s?(?:{_NUMBER})(?:\s?[kKmM]\b)?|\b(?:{_NUMBER})\s?(?:[$€£¥₹]|"
                        rf"(?:USD|EUR|GBP|JPY|dollars?|euros?|pounds?)\b)", re.IGNORECASE),
    "percentages": re.compile(rf"\b(?:{_NUMBER})\s?(?:%|percent\b|per cent\b)", re.IGNORECASE),
    "dates": re.compile(rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b|"
                        rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b|"
                        rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\b(?:\s+\d{{4}})?|"
                        r"\b(?:today|tonight|tomorrow|this (?:week|weekend)|black friday|cyber monday)\b",
                        re.IGNORECASE),
    "hashtags": re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*"),
    "mentions": re.compile(r"(?<![\w@.])@\w{1,30}\b(?!\.\w)"),
}


def find_patterns(text: str) -> dict[str, list[str]]:
    out = {}
    for name, pattern in PATTERNS.items():
        found = [m.group(0).strip() for m in pattern.finditer(text)]
        out[name] = list(dict.fromkeys(found))
    out["urls"] = [u.rstrip(".,;:!?)]}'\"") for u in out["urls"]]
    # A URL's domain part is not also an e-mail's.
    out["urls"] = [u for u in out["urls"] if not any(u in e for e in out["emails"])]
    out["calls_to_action"] = find_calls_to_action(text)
    return out


def _load_ner(name: str, device: str):
    from transformers import pipeline

    return pipeline("token-classification", model=name, aggregation_strategy="simple", device=device)


def with_model(ctx: Context) -> dict:
    ner = hub.load("ner", _load_ner, ctx.settings.device or "cpu")
    found = [{"text": e["word"], "type": e["entity_group"], "score": round(float(e["score"]), 4)}
             for e in ner(ctx.text)]
    return {"named_entities": found, "patterns": find_patterns(ctx.text)}


def rules_only(ctx: Context) -> dict:
    return {"patterns": find_patterns(ctx.text)}


def component() -> Component:
    """Built per analysis, so the backend names the model id configured now."""
    return Component(
        name="entities",
        needs_text=True,
        backends=(
            Backend(hub.backend_name("ner", "+rules"), with_model, modules=("transformers",),
                    models=(hub.model_id("ner"),)),
            Backend("rules", rules_only),
        ),
    )

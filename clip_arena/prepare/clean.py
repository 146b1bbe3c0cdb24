"""The clean stage's plain functions: product titles normalised, images checked and hashed, and exact
and near-duplicate images grouped.

Titles: a raw catalog's titles carry HTML, shouting, marketing noise and stock codes that would become
training text. `clean_title` removes them and is idempotent (cleaning a clean title changes nothing),
never returns control characters, and never returns an empty title for one that had letters."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass

MAX_TITLE_CHARS = 300  # a title longer than this is marketing copy; training text is truncated anyway

_TAG = re.compile(r"<[^<>]*>")
_SCRIPT = re.compile(r"(?is)<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)")  # code, not words
# Markup escaped in the feed ("&lt;b&gt;Linen&lt;/b&gt;") is still markup; any other "<...>" it decodes
# to ("&lt;linen shade&gt;") is the title's text.
_HTML_TAG = re.compile(r"(?i)</?(?:a|abbr|b|big|blockquote|body|br|button|center|code|del|div|em|font|form|h[1-6]"
                       r"|head|hr|html|i|iframe|img|input|ins|label|li|link|mark|meta|nav|ol|option|p|pre|s|section"
                       r"|select|small|span|strike|strong|sub|sup|table|tbody|td|th|thead|title|tr|u|ul)\b[^<>]*>")
# Whole phrases only: "sale" alone may be part of a real title ("garage sale sign"), "ON SALE!" is not.
_NOISE = re.compile(
    r"(?i)\b(?:free\s+(?:shipping|delivery|returns?|gift)|fast\s+(?:shipping|delivery)|best\s+(?:price|seller|deal)s?"
    r"|(?:hot|big|mega|flash|on)\s+sale|limited\s+(?:time\s+)?(?:offer|stock|edition\s+sale)|buy\s+now|new\s+arrivals?"
    r"|top\s+rated|clearance|special\s+offer|\d{1,3}\s*%\s*off|(?:great|best)\s+gift\s+idea)\b[!.]*")
_SHOUTED_SALE = re.compile(r"\b(?:SALE|DEAL|NEW|HOT|PROMO|OFFER)\b!*")  # upper case only: a shout, not a word
# Explicit stock codes ("SKU: AB-123", "Item #4411", "Art.-Nr. 55") and bare ones: an upper-case token
# of letters and at least three digits, seven characters or more ("B07XJ8C8F5", "SKU123456").
# Code labels that are also plain words ("model", "item", "part") count only with a mark after them
# ("Model: X1", "Item #4411", "Art.-Nr. 55"): "Chair model SKU123" keeps "model".
_LABELLED_CODE = re.compile(r"(?i)\b(?:(?:sku|mpn|ean|upc)\s*(?:\.|-)*\s*(?:no\.?|nr\.?|number|#|:)?"
                            r"|(?:item|art(?:icle)?|model|part|ref)(?:\s*[.\-]+\s*(?:no\.?|nr\.?|number)?"
                            r"|\s*(?:no\.?|nr\.?|number|#|:)))"
                            r"\s*[:#]?\s*[A-Z0-9][A-Z0-9\-_/.]*\d[A-Z0-9\-_/]*")
_BARE_CODE = re.compile(r"(?<![\w-])(?=[A-Z0-9\-_]*[A-Z])(?=(?:[A-Z\-_]*\d){3})[A-Z0-9][A-Z0-9\-_]{7,}(?![\w-])")
_HASH_CODE = re.compile(r"(?<!\w)#\d{4,}\b")
_REPEATED_PUNCT = re.compile(r"([!?.,;:*~|\-=+])\1+")  # not / or _: "http://x", "snake__case" are text
_DANGLING = re.compile(r"^[\s\-|,;:/*~_=+.!?]+|[\s\-|,;:/*~_=+]+$")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,;:!?.])")


def _visible(text: str) -> str:
    """Control and format characters out (a title is one line), separators as spaces."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Zl", "Zp", "Zs") or ch.isspace():
            out.append(" ")
        elif cat[0] != "C":  # Cf (zero-width, bidi), Cs (lone surrogates), Co, Cn dropped
            out.append(ch)
    return " ".join("".join(out).split())


def _decoded(text: str) -> str:
    """Tags (and script/style code) stripped, once, then NFKC and HTML entities until stable (entities
    escaped twice are common): what the entities decode to is text, but for escaped markup."""
    text = _TAG.sub(" ", _SCRIPT.sub(" ", text))
    for _ in range(20):  # each unescape that changes the text shortens it; 20 covers any real nesting
        new = unicodedata.normalize("NFKC", html.unescape(text))
        if new == text:
            break
        text = new
    text = _HTML_TAG.sub(" ", _SCRIPT.sub(" ", text))
    # What is left in angle brackets is words: in parentheses, so that cleaning again keeps them.
    text = _TAG.sub(lambda m: f" ({m.group(0)[1:-1]}) ", text)
    return _visible(text)


def _is_shouting(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha() and ch.lower() != ch.upper()]
    return len(letters) >= 4 and sum(ch.isupper() for ch in letters) >= 0.8 * len(letters)


def _recase(text: str) -> str:
    """SHOUTING -> Shouting: each word capitalised; words with digits (4K, 3XL) kept as written."""
    words = []
    for word in text.split(" "):
        if any(ch.isdigit() for ch in word) or not word:
            words.append(word)
        else:
            recased = word[0].upper() + word[1:].lower()
            # Case mappings that change length or normal form (ß, ŉ) keep the word as written.
            words.append(recased if len(recased) == len(word)
                         and unicodedata.normalize("NFKC", recased) == recased else word)
    return " ".join(words)


def _tidy(text: str) -> str:
    text = _EMPTY_BRACKETS.sub(" ", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))
    return _DANGLING.sub("", text)


def _once(text: str) -> str:
    text = _decoded(text)
    stripped = _NOISE.sub(" ", text)
    stripped = _SHOUTED_SALE.sub(" ", stripped)
    stripped = _LABELLED_CODE.sub(" ", stripped)
    stripped = _HASH_CODE.sub(" ", _BARE_CODE.sub(" ", stripped))
    stripped = _tidy(stripped)
    if not any(ch.isalpha() for ch in stripped):  # nothing but noise: keep the title rather than nothing
        stripped = _tidy(text) or text
    if _is_shouting(stripped):
        stripped = _recase(stripped)
    if len(stripped) > MAX_TITLE_CHARS:
        cut = stripped[:MAX_TITLE_CHARS]
        stripped = cut.rsplit(" ", 1)[0] if " " in cut[MAX_TITLE_CHARS // 2:] else cut
        stripped = _tidy(stripped) or stripped
    return stripped


def clean_title(raw) -> str:
    """A raw title -> its clean form; '' only when the title has no letters or digits at all."""
    text = "" if raw is None else str(raw)
    for _ in range(5):  # to a fixed point, so that clean_title(clean_title(t)) == clean_title(t)
        new = _once(text)
        if new == text:
            break
        text = new
    return text


# -- images ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageFacts:
    sha256: str
    phash: int  # 64-bit perceptual hash
    width: int
    height: int


def image_facts(data: bytes, image) -> ImageFacts:
    """The file's checksum and the decoded image's perceptual hash (imagehash's pHash: the sign of
    the low DCT frequencies of a 32x32 greyscale, robust to resizing and recompression)."""
    import imagehash

    bits = imagehash.phash(image).hash.flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return ImageFacts(hashlib.sha256(data).hexdigest(), value, image.size[0], image.size[1])


# A confirmed near copy: 98% of the 16x16 thumbnails' pixels within this (0-255, the largest channel
# difference). Resized and recompressed copies stay under ~20; the same drawing in another colour, over 25.
MAX_THUMB_DIFFERENCE = 24.0


def thumbnail(image) -> "np.ndarray":
    """The image as 16x16 RGB (box-averaged): colour and layout, the second check of a near copy."""
    import numpy as np
    from PIL import Image

    return np.asarray(image.convert("RGB").resize((16, 16), Image.Resampling.BOX), dtype=np.float32)


def same_picture(a, b) -> bool:
    """pHash sees greyscale structure only: two simple drawings on white (the same chair in red and in
    blue) share it. A near copy must also look alike in colour, the object's pixels included (a mean
    would let a white background outvote a small object)."""
    import numpy as np

    return float(np.quantile(abs(a - b).max(axis=2), 0.98)) <= MAX_THUMB_DIFFERENCE


def duplicate_groups(ids: list[str], sha256s: list[str], phashes: list[int], max_distance: int = 4,
                     confirm=None) -> dict[str, tuple[str, str]]:
    """{image id: (id of the first row it duplicates, "exact" | "near")} for every row that duplicates an
    earlier one: the same bytes, or perceptual hashes at most `max_distance` bits apart from the first
    row of the group (not from any member: chains of small steps would join unlike pictures) and,
    when given, `confirm(i, j)` agreeing (a pixel check; pHash alone joins simple drawings).

    Near pairs are found without comparing every pair: the 64 bits are cut into max_distance + 1
    bands, and two hashes that differ in at most max_distance bits agree on at least one band."""
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    exact: dict[str, int] = {}
    for i, digest in enumerate(sha256s):
        if digest in exact:
            union(exact[digest], i)
        else:
            exact.setdefault(digest, i)
    bands = max_distance + 1
    edges = [round(64 * k / bands) for k in range(bands + 1)]
    buckets: dict[tuple[int, int], list[int]] = {}
    for i, value in enumerate(phashes):
        for band in range(bands):
            lo, hi = edges[band], edges[band + 1]
            key = (band, (value >> lo) & ((1 << (hi - lo)) - 1))
            for j in buckets.get(key, ()):
                root = find(j)
                if find(i) != root and bin(value ^ phashes[root]).count("1") <= max_distance and (
                        confirm is None or confirm(root, i)):
                    union(i, j)
            buckets.setdefault(key, []).append(i)
    out = {}
    for i in range(len(ids)):
        root = find(i)
        if root != i:
            out[ids[i]] = (ids[root], "exact" if sha256s[i] == sha256s[root] else "near")
    return out
